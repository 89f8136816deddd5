/* cli/cli_ctl_api.c — the `laurel ctl` commands that talk HTTP to a router (API.md).
 *
 * Commands are data: each row of cli_ctl_api__cmds names its method, path, the key it sends
 * and its fields, and each field says where it goes (a path segment, a JSON body member, a
 * query parameter) and how it is checked. One function parses any row's options, builds the
 * request (bodies with jansson, never by hand), sends it with hclient and prints the answer;
 * usage lines are generated from the same rows, so syntax and --help cannot drift apart.
 *
 * Exit codes: 0 on a 2xx answer (its JSON pretty-printed on stdout), 1 on an HTTP error (the
 * API's code and message on stderr) or when the router cannot be reached, 2 on usage errors.
 * Writes that take an idempotency key get a fresh random one when --key is not given; it is
 * printed on stderr, so an operator whose write timed out can retry it safely (API.md). */
#include <assert.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "cli.h"
#include "cli_ctl_int.h"
#include "../lib/addr.h"
#include "../lib/err.h"
#include "../lib/hclient.h"
#include "../router/keyset.h"

#define CLI_CTL_API__FIELDS 10

enum cli_ctl_api__where {
    CLI_CTL_API__PATH = 1, /* fills the next "{}" of the row's path, %-encoded (0: unused row) */
    CLI_CTL_API__BODY,     /* a member of the JSON body */
    CLI_CTL_API__QUERY,    /* a query parameter, %-encoded */
    CLI_CTL_API__TARGET,   /* the whole request target, as given ("/v1/cluster?x=1") */
};

enum cli_ctl_api__type {
    CLI_CTL_API__STR,
    CLI_CTL_API__INT,  /* a decimal int64, checked here */
    CLI_CTL_API__JSON, /* any JSON text, parsed here and sent as a value */
    CLI_CTL_API__BOOL, /* true or false */
    CLI_CTL_API__LIST, /* comma-separated strings, sent as an array: "alltime,daily" */
};

/* Which key a command sends: the api key suits writes of game data, the admin key everything. */
enum cli_ctl_api__auth {
    CLI_CTL_API__NOKEY, /* public reads */
    CLI_CTL_API__API,   /* the api key, else the admin key */
    CLI_CTL_API__ADMIN, /* the admin key, else the api key, else none */
};

struct cli_ctl_api__field {
    const char *opt;  /* long option without "--", or NULL for a positional argument */
    const char *meta; /* its value's name in usage lines */
    const char *name; /* JSON member or query parameter (unused for path and target) */
    unsigned char where, type, required;
    const char *help;
};

struct cli_ctl_api__cmd {
    const char *word, *sub; /* "player" "put"; sub NULL for one-word commands */
    const char *method;
    const char *path; /* with one "{}" per PATH field, in field order; NULL for TARGET */
    unsigned char auth;
    unsigned char idempotent; /* the body carries "idempotency_key" (--key, else a fresh one) */
    const char *summary;
    struct cli_ctl_api__field f[CLI_CTL_API__FIELDS];
    /* Shows a 2xx answer in its own form (`--json` prints it raw instead); NULL: as JSON.
     * Returns the exit code. A command with a show function has no body fields, so its
     * --json is a switch, not the body escape hatch. */
    int (*show)(FILE *f, const json_t *answer);
};

#define P_ CLI_CTL_API__PATH
#define B_ CLI_CTL_API__BODY
#define Q_ CLI_CTL_API__QUERY
#define S_ CLI_CTL_API__STR
#define I_ CLI_CTL_API__INT
#define J_ CLI_CTL_API__JSON
#define BO_ CLI_CTL_API__BOOL
#define L_ CLI_CTL_API__LIST

static const struct cli_ctl_api__cmd cli_ctl_api__cmds[] = {
    {"player",
     "put",
     "PUT",
     "/v1/players/{}",
     CLI_CTL_API__API,
     0,
     "create or update a player (201 created, 200 updated; its region cannot change)",
     {{NULL, "ID", NULL, P_, S_, 1, "player id"},
      {"name", "N", "name", B_, S_, 1, "display name"},
      {"region", "R", "region", B_, S_, 1, "the region the player lives in"},
      {"guild", "G", "guild", B_, S_, 0, "guild id"}},
     NULL},
    {"player",
     "get",
     "GET",
     "/v1/players/{}",
     CLI_CTL_API__NOKEY,
     0,
     "show a player",
     {{NULL, "ID", NULL, P_, S_, 1, "player id"}},
     NULL},
    {"unlock",
     NULL,
     "POST",
     "/v1/unlocks",
     CLI_CTL_API__API,
     1,
     "unlock an achievement, or add --steps of progress to an incremental one",
     {{"player", "P", "player_id", B_, S_, 1, "player id"},
      {"game", "G", "game_id", B_, S_, 1, "game id"},
      {"achievement", "A", "achievement_id", B_, S_, 1, "achievement id"},
      {"steps", "N", "steps", B_, I_, 0, "steps of progress (default: all remaining)"}},
     NULL},
    {"score",
     NULL,
     "POST",
     "/v1/boards/{}/scores",
     CLI_CTL_API__API,
     1,
     "submit a score (the board's operator decides what is stored)",
     {{"board", "B", NULL, P_, S_, 1, "board id"},
      {"player", "P", "player_id", B_, S_, 1, "player id"},
      {"score", "S", "score", B_, I_, 1, "integer score"},
      {"subscore", "N", "subscore", B_, I_, 0, "integer tie-breaker (default 0)"},
      {"metadata", "JSON", "metadata", B_, J_, 0, "a JSON object of at most 256 bytes"}},
     NULL},
    {"top",
     NULL,
     "GET",
     "/v1/boards/{}/top",
     CLI_CTL_API__NOKEY,
     0,
     "a page of a board",
     {{"board", "B", NULL, P_, S_, 1, "board id"},
      {"scope", "S", "scope", Q_, S_, 0, "global (default), region:<id> or guild:<id>"},
      {"window", "W", "window", Q_, S_, 0, "alltime (default), daily, weekly, monthly, cycle"},
      {"period", "P", "period", Q_, S_, 0, "YYYY-MM-DD, YYYY-Www, YYYY-MM or a cycle number"},
      {"limit", "N", "limit", Q_, I_, 0, "entries per page, 1-1000 (default 100)"},
      {"cursor", "C", "cursor", Q_, S_, 0, "next_cursor of the previous page"}},
     NULL},
    {"rank",
     NULL,
     "GET",
     "/v1/boards/{}/players/{}",
     CLI_CTL_API__NOKEY,
     0,
     "a player's rank on a board, with neighbours",
     {{"board", "B", NULL, P_, S_, 1, "board id"},
      {"player", "P", NULL, P_, S_, 1, "player id"},
      {"scope", "S", "scope", Q_, S_, 0, "global (default), region:<id> or guild:<id>"},
      {"window", "W", "window", Q_, S_, 0, "alltime (default), daily, weekly, monthly, cycle"},
      {"period", "P", "period", Q_, S_, 0, "the period (default: the current one)"},
      {"around", "N", "around", Q_, I_, 0, "entries on each side, 0-50"}},
     NULL},
    {"game",
     "put",
     "PUT",
     "/v1/games/{}",
     CLI_CTL_API__ADMIN,
     0,
     "create or update a game (admin key; 201 created, 200 updated)",
     {{NULL, "ID", NULL, P_, S_, 1, "game id (1-56 of A-Z a-z 0-9 _ . -)"},
      {"name", "N", "name", B_, S_, 1, "display name"}},
     NULL},
    {"game",
     "get",
     "GET",
     "/v1/games/{}",
     CLI_CTL_API__NOKEY,
     0,
     "show a game and its achievement count",
     {{NULL, "ID", NULL, P_, S_, 1, "game id"}},
     NULL},
    {"achievement",
     "put",
     "PUT",
     "/v1/games/{}/achievements/{}",
     CLI_CTL_API__ADMIN,
     0,
     "create or update an achievement of a game (admin key)",
     {{NULL, "GAME", NULL, P_, S_, 1, "game id (the game must exist)"},
      {NULL, "ID", NULL, P_, S_, 1, "achievement id"},
      {"name", "N", "name", B_, S_, 1, "display name"},
      {"description", "D", "description", B_, S_, 0, "up to 512 characters (default empty)"},
      {"points", "N", "points", B_, I_, 0, "points added to points.GAME on unlock (default 0)"},
      {"hidden", "BOOL", "hidden", B_, BO_, 0, "true: name and description only for admins"},
      {"steps", "N", "steps", B_, I_, 0, "steps to unlock (default 1; more: incremental)"}},
     NULL},
    {"achievement",
     "list",
     "GET",
     "/v1/games/{}/achievements",
     CLI_CTL_API__NOKEY,
     0,
     "a game's achievements with their unlock counts",
     {{NULL, "GAME", NULL, P_, S_, 1, "game id"}},
     NULL},
    {"board",
     "put",
     "PUT",
     "/v1/boards/{}",
     CLI_CTL_API__ADMIN,
     0,
     "create or update a board (admin key)",
     {{NULL, "ID", NULL, P_, S_, 1, "board id"},
      {"order", "O", "order", B_, S_, 1, "desc (higher is better) or asc"},
      {"operator", "OP", "operator", B_, S_, 1, "best, set, incr or decr"},
      {"windows", "W,...", "windows", B_, L_, 0, "alltime,daily,weekly,monthly (default alltime)"},
      {"reset-period-s", "S", "reset_period_s", B_, I_, 0, "cycle length, >= 60 (default none)"},
      {"snapshot-top", "N", "snapshot_top", B_, I_, 0, "entries kept when a cycle closes"},
      {"rewards", "JSON", "rewards", B_, J_, 0,
       "[{\"rank_from\":1,\"rank_to\":3,\"reward\":\"gold\"}]"},
      {"game", "G", "game_id", B_, S_, 0, "the game the board belongs to"},
      {"keep-periods", "N", "keep_periods", B_, I_, 0, "past periods kept readable (1-1000)"}},
     NULL},
    {"board",
     "get",
     "GET",
     "/v1/boards/{}",
     CLI_CTL_API__NOKEY,
     0,
     "show a board's settings",
     {{NULL, "ID", NULL, P_, S_, 1, "board id"}},
     NULL},
    {"tournament",
     "put",
     "PUT",
     "/v1/tournaments/{}",
     CLI_CTL_API__ADMIN,
     0,
     "create or update a tournament, a board with a start, an end and a cap (admin key)",
     {{NULL, "ID", NULL, P_, S_, 1, "tournament id (also its board's id)"},
      {"name", "N", "name", B_, S_, 1, "display name"},
      {"order", "O", "order", B_, S_, 1, "desc or asc (cannot change later)"},
      {"operator", "OP", "operator", B_, S_, 1, "best, set, incr or decr"},
      {"start-at", "T", "start_at", B_, S_, 1, "RFC 3339 time, e.g. 2026-12-01T00:00:00Z"},
      {"end-at", "T", "end_at", B_, S_, 1, "RFC 3339 time after --start-at"},
      {"max-participants", "N", "max_participants", B_, I_, 1, "joins admitted at most"},
      {"max-attempts", "N", "max_attempts", B_, I_, 0, "scores per player (default no limit)"},
      {"prizes", "JSON", "prizes", B_, J_, 0,
       "[{\"rank_from\":1,\"rank_to\":1,\"reward\":\"cup\"}]"}},
     NULL},
    {"tournament",
     "join",
     "POST",
     "/v1/tournaments/{}/join",
     CLI_CTL_API__API,
     0,
     "admit a player to a tournament (api key; a second join is a no-op)",
     {{NULL, "ID", NULL, P_, S_, 1, "tournament id"},
      {NULL, "PLAYER", "player_id", B_, S_, 1, "player id"}},
     NULL},
    {"tournament",
     "get",
     "GET",
     "/v1/tournaments/{}",
     CLI_CTL_API__NOKEY,
     0,
     "show a tournament, its state and participant count",
     {{NULL, "ID", NULL, P_, S_, 1, "tournament id"}},
     NULL},
    {"region",
     "add",
     "PUT",
     "/v1/regions/{}",
     CLI_CTL_API__ADMIN,
     0,
     "add a region to the running cluster (admin key; its replicas must be up and have a "
     "leader): every router serves it within a second (docs/operations.md)",
     {{NULL, "ID", NULL, P_, S_, 1, "region id, as its replicas' --region"},
      {"rpc", "HOST:PORT,...", "rpc", B_, L_, 1, "its replicas' RPC addresses"}},
     NULL},
    {"cluster",
     NULL,
     "GET",
     "/v1/cluster",
     CLI_CTL_API__ADMIN,
     0,
     "a table of the regions and the meta group: replicas, roles, terms, indexes, lag, health",
     {{NULL, NULL, NULL, 0, 0, 0, NULL}},
     cli_ctl_cluster_show},
    {"get",
     NULL,
     "GET",
     NULL,
     CLI_CTL_API__ADMIN,
     0,
     "any GET, e.g. /v1/cluster (sent with the admin key when there is one)",
     {{NULL, "PATH", NULL, CLI_CTL_API__TARGET, S_, 1, "path and query, e.g. /v1/cluster"}},
     NULL},
};

#undef P_
#undef B_
#undef Q_
#undef S_
#undef I_
#undef J_
#undef BO_
#undef L_

#define CLI_CTL_API__N (sizeof cli_ctl_api__cmds / sizeof cli_ctl_api__cmds[0])

/* The three arguments that print a command's name, one word or two ("board put"), for "%s%s%s". */
#define CLI_CTL_API__NAME(c) (c)->word, (c)->sub ? " " : "", (c)->sub ? (c)->sub : ""

/* Options every command takes; their getopt values sit below the fields' (0..FIELDS-1). */
enum {
    CLI_CTL_API__O_ROUTER = CLI_CTL_API__FIELDS,
    CLI_CTL_API__O_API_KEY,
    CLI_CTL_API__O_ADMIN_KEY,
    CLI_CTL_API__O_DATA,
    CLI_CTL_API__O_TIMEOUT,
    CLI_CTL_API__O_IDEM,
    CLI_CTL_API__O_JSON,
    CLI_CTL_API__O_CACERT,
    CLI_CTL_API__O_HELP,
    CLI_CTL_API__O_CONFIG,
};

/* What one invocation was given. Strings are borrowed from argv and the environment. */
struct cli_ctl_api__args {
    const char *router, *api_key, *admin_key, *data, *idem;
    const char *config; /* --config: the cluster file's first router and keys file */
    int router_given;   /* --router: it wins over the file's */
    const char *json;   /* --json BODY: the body's starting object (flags add to it) */
    int raw;            /* --json of a command with a show function: print the answer as it is */
    const char *cacert; /* --cacert or $LAUREL_CACERT: HTTPS trusting this CA; NULL: none */
    int timeout_ms;
    const char *v[CLI_CTL_API__FIELDS]; /* each field's value, or NULL */
};

/* ---- usage ----------------------------------------------------------------------------------- */

/* Does @c send a JSON body built from fields? Those take --json BODY as their escape hatch. */
static int cli_ctl_api__has_body(const struct cli_ctl_api__cmd *c)
{
    for (int i = 0; i < CLI_CTL_API__FIELDS && c->f[i].meta; i++) {
        if (c->f[i].where == CLI_CTL_API__BODY) {
            return 1;
        }
    }
    return 0;
}

static void cli_ctl_api__synopsis(FILE *f, const struct cli_ctl_api__cmd *c)
{
    fprintf(f, "%s%s%s", c->word, c->sub ? " " : "", c->sub ? c->sub : "");
    for (int i = 0; i < CLI_CTL_API__FIELDS && c->f[i].meta; i++) {
        const struct cli_ctl_api__field *fd = &c->f[i];
        if (fd->opt == NULL) {
            fprintf(f, " %s", fd->meta);
        } else {
            fprintf(f, " %s--%s %s%s", fd->required ? "" : "[", fd->opt, fd->meta,
                    fd->required ? "" : "]");
        }
    }
    if (c->idempotent) {
        fprintf(f, " [--key K]");
    }
    if (c->show) {
        fprintf(f, " [--json]");
    } else if (cli_ctl_api__has_body(c)) {
        fprintf(f, " [--json BODY]");
    }
}

void cli_ctl_api_usage(FILE *f, const char *word)
{
    for (size_t i = 0; i < CLI_CTL_API__N; i++) {
        if (word == NULL || strcmp(word, cli_ctl_api__cmds[i].word) == 0) {
            fprintf(f, "  ");
            cli_ctl_api__synopsis(f, &cli_ctl_api__cmds[i]);
            fprintf(f, "\n      %s\n", cli_ctl_api__cmds[i].summary);
        }
    }
}

void cli_ctl_api_options(FILE *f)
{
    fprintf(f,
            "options of the router commands (all but status, add, remove, transfer):\n"
            "  --router HOST:PORT   the router (default: $LAUREL_ROUTER, else 127.0.0.1:8080);\n"
            "                       https://HOST:PORT for a router with --tls (http:// is the\n"
            "                       same as none)\n"
            "  --cacert FILE        HTTPS, trusting the CA certificates of FILE (PEM), such as\n"
            "                       DATA/tls/ca.pem of `laurel dev --tls` (default:\n"
            "                       $LAUREL_CACERT; https:// without it trusts the system's CAs)\n"
            "  --api-key K          default: $LAUREL_API_KEY, else DATA/keys.json\n"
            "  --admin-key K        default: $LAUREL_ADMIN_KEY, else DATA/keys.json\n"
            "  --data DIR           where `laurel dev` keeps keys.json (default ./laurel-data)\n"
            "  --config FILE        the cluster file: its first router (unless --router) and\n"
            "                       its keys_file instead of DATA/keys.json\n"
            "  --timeout-ms MS      deadline of the whole request (default 5000)\n"
            "  --key K              idempotency key of unlock and score (default: a new random\n"
            "                       one, printed on stderr: retry with it)\n"
            "  --json BODY          commands with a body: the body as JSON, flags add to it\n"
            "The answer prints as JSON on stdout. Exit 0 on 2xx, 1 on an HTTP error (its code\n"
            "and message on stderr) or an unreachable router, 2 on usage errors.\n");
}

static void cli_ctl_api__cmd_usage(FILE *f, const struct cli_ctl_api__cmd *c)
{
    fprintf(f, "usage: laurel ctl ");
    cli_ctl_api__synopsis(f, c);
    fprintf(f, "\n\n%s: %s %s\n\n", c->summary, c->method, c->path ? c->path : "PATH");
    for (int i = 0; i < CLI_CTL_API__FIELDS && c->f[i].meta; i++) {
        const struct cli_ctl_api__field *fd = &c->f[i];
        char lhs[64];
        snprintf(lhs, sizeof lhs, "%s%s%s%s", fd->opt ? "--" : "", fd->opt ? fd->opt : "",
                 fd->opt ? " " : "", fd->meta);
        fprintf(f, "  %-20s %s\n", lhs, fd->help);
    }
    if (c->show) {
        fprintf(f, "  %-20s %s\n", "--json", "print the answer as JSON instead of a table");
    } else if (cli_ctl_api__has_body(c)) {
        fprintf(f, "  %-20s %s\n", "--json BODY",
                "a JSON object to send as the body (API.md); the flags above add to it, and");
        fprintf(f, "  %-20s %s\n", "", "with it no body flag is required");
    }
    fprintf(f, "\n");
    cli_ctl_api_options(f);
}

/* ---- request building ------------------------------------------------------------------------ */

/* A growing string for the request target (not JSON: JSON goes through jansson). */
struct cli_ctl_api__buf {
    char *p;
    size_t len, cap;
};

static int cli_ctl_api__put(struct cli_ctl_api__buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            return LR_ENOMEM;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* Append @s %-encoded: everything but RFC 3986's unreserved characters. */
static int cli_ctl_api__put_enc(struct cli_ctl_api__buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        char e[3] = {'%', hex[ch >> 4], hex[ch & 15]};
        int plain = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' || ch == '~';
        if (cli_ctl_api__put(b, plain ? (const char *)s : e, plain ? 1 : 3) != 0) {
            return LR_ENOMEM;
        }
    }
    return 0;
}

static int cli_ctl_api__int(const char *s, long long *out)
{
    char *end;
    errno = 0;
    *out = strtoll(s, &end, 10);
    return s[0] != '\0' && *end == '\0' && errno == 0 ? 0 : -1;
}

/* The request target: the path with its "{}" filled, then the query. 0 or LR_ENOMEM. */
static int cli_ctl_api__target(const struct cli_ctl_api__cmd *c, const struct cli_ctl_api__args *a,
                               struct cli_ctl_api__buf *b)
{
    const char *p = c->path;
    int i = 0, nq = 0, rv = 0;
    if (p == NULL) { /* a TARGET command: its one field is the target */
        return cli_ctl_api__put(b, a->v[0], strlen(a->v[0]));
    }
    while (rv == 0 && *p) {
        const char *hole = strstr(p, "{}");
        size_t n = hole ? (size_t)(hole - p) : strlen(p);
        rv = cli_ctl_api__put(b, p, n);
        p += n;
        if (rv == 0 && hole) {
            while (i < CLI_CTL_API__FIELDS && c->f[i].where != CLI_CTL_API__PATH) {
                i++;
            }
            assert(i < CLI_CTL_API__FIELDS && c->f[i].meta); /* a "{}" per PATH field */
            rv = cli_ctl_api__put_enc(b, a->v[i++]);
            p += 2;
        }
    }
    for (i = 0; rv == 0 && i < CLI_CTL_API__FIELDS && c->f[i].meta; i++) {
        if (c->f[i].where == CLI_CTL_API__QUERY && a->v[i]) {
            rv = cli_ctl_api__put(b, nq++ ? "&" : "?", 1);
            rv = rv ? rv : cli_ctl_api__put(b, c->f[i].name, strlen(c->f[i].name));
            rv = rv ? rv : cli_ctl_api__put(b, "=", 1);
            rv = rv ? rv : cli_ctl_api__put_enc(b, a->v[i]);
        }
    }
    return rv;
}

/* A fresh idempotency key: 128 random bits in hex. */
static int cli_ctl_api__idem_new(char *out, size_t cap)
{
    unsigned char r[16];
    if (cap < 2 * sizeof r + 1 || getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
        return -1;
    }
    for (size_t i = 0; i < sizeof r; i++) {
        snprintf(out + 2 * i, 3, "%02x", r[i]);
    }
    return 0;
}

/* "a,b,c" as the JSON array ["a","b","c"] (an empty item is kept: the router refuses it), or
 * NULL when an item is not UTF-8 or memory runs out. */
static json_t *cli_ctl_api__list(const char *s)
{
    json_t *arr = json_array();
    while (arr != NULL) {
        const char *comma = strchr(s, ',');
        size_t n = comma ? (size_t)(comma - s) : strlen(s);
        if (json_array_append_new(arr, json_stringn(s, n)) != 0) {
            json_decref(arr);
            return NULL;
        }
        if (comma == NULL) {
            break;
        }
        s = comma + 1;
    }
    return arr;
}

/* The JSON body in *@out (NULL for a command without body fields), checking each value's type.
 * @return 0, or 2 after saying on stderr what is wrong. */
static int cli_ctl_api__body(const struct cli_ctl_api__cmd *c, const struct cli_ctl_api__args *a,
                             json_t **out)
{
    json_t *body = NULL;
    json_error_t jerr;
    *out = NULL;
    if (a->json) {
        body = json_loads(a->json, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(body)) {
            fprintf(stderr, "laurel ctl %s%s%s: --json wants a JSON object%s%s\n",
                    CLI_CTL_API__NAME(c), body ? "" : ": ", body ? "" : jerr.text);
            goto err_after_body;
        }
    }
    for (int i = 0; i < CLI_CTL_API__FIELDS && c->f[i].meta; i++) {
        const struct cli_ctl_api__field *fd = &c->f[i];
        json_t *v = NULL;
        long long n = 0;
        if (fd->type == CLI_CTL_API__INT && a->v[i] && cli_ctl_api__int(a->v[i], &n) != 0) {
            fprintf(stderr, "laurel ctl %s%s%s: --%s wants an integer, not '%s'\n",
                    CLI_CTL_API__NAME(c), fd->opt, a->v[i]);
            goto err_after_body;
        }
        if (fd->type == CLI_CTL_API__BOOL && a->v[i] && strcmp(a->v[i], "true") != 0 &&
            strcmp(a->v[i], "false") != 0) {
            fprintf(stderr, "laurel ctl %s%s%s: --%s wants true or false, not '%s'\n",
                    CLI_CTL_API__NAME(c), fd->opt, a->v[i]);
            goto err_after_body;
        }
        if (fd->where != CLI_CTL_API__BODY || a->v[i] == NULL) {
            continue;
        }
        switch (fd->type) {
        case CLI_CTL_API__INT: v = json_integer((json_int_t)n); break;
        case CLI_CTL_API__BOOL: v = json_boolean(strcmp(a->v[i], "true") == 0); break;
        case CLI_CTL_API__LIST: v = cli_ctl_api__list(a->v[i]); break;
        case CLI_CTL_API__JSON:
            v = json_loads(a->v[i], JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
            if (v == NULL) {
                fprintf(stderr, "laurel ctl %s%s%s: --%s is not JSON: %s\n", CLI_CTL_API__NAME(c),
                        fd->opt, jerr.text);
                goto err_after_body;
            }
            break;
        default: v = json_string(a->v[i]);
        }
        if (v == NULL) { /* json_string's refusal; else out of memory */
            fprintf(stderr, "laurel ctl %s%s%s: %s%s is not UTF-8\n", CLI_CTL_API__NAME(c),
                    fd->opt ? "--" : "", fd->opt ? fd->opt : fd->meta);
            goto err_after_body;
        }
        if (body == NULL) {
            body = json_object();
        }
        json_object_set_new(body, fd->name, v);
    }
    if (c->idempotent) {
        char fresh[40];
        if (a->idem == NULL && cli_ctl_api__idem_new(fresh, sizeof fresh) != 0) {
            fprintf(stderr, "laurel ctl %s%s%s: no random bytes for an idempotency key\n",
                    CLI_CTL_API__NAME(c));
            goto err_after_body;
        }
        if (body == NULL) {
            body = json_object();
        }
        if (a->idem == NULL) {
            fprintf(stderr, "idempotency key %s (retry safely with --key %s)\n", fresh, fresh);
        }
        json_object_set_new(body, "idempotency_key", json_string(a->idem ? a->idem : fresh));
    }
    *out = body;
    return 0;

err_after_body:
    json_decref(body);
    return 2;
}

/* ---- keys ------------------------------------------------------------------------------------ */

/* A key of @role: @flag, else the first of its environment variable (LAUREL_API_KEY or
 * LAUREL_ADMIN_KEY), else the first of DATA/keys.json (copied into @buf), else NULL. */
static const char *cli_ctl_api__key(const char *flag, enum keyset_role role, const char *data,
                                    const char *keys_file, char *buf, size_t cap)
{
    char path[4096], errmsg[LR_ERRMSG_SIZE];
    struct keyset ks;
    const char *k = NULL;
    if (flag) {
        return flag;
    }
    /* Read as the router reads them (router/keyset.h), so a list in the environment or a
     * keys file listing several keys of a role (a rotation) gives its first key. */
    keyset_init(&ks);
    if (keyset_load_env(&ks, errmsg) == 0) {
        k = keyset_first(&ks, role);
    }
    if (k == NULL) {
        keyset_init(&ks);
        snprintf(path, sizeof path, "%s/keys.json", data);
        k = keyset_load_file(&ks, keys_file ? keys_file : path, errmsg) == 0
                ? keyset_first(&ks, role)
                : NULL;
    }
    if (k != NULL) {
        snprintf(buf, cap, "%s", k);
    }
    return k ? buf : NULL;
}

/* --config FILE: the router is the file's first (unless --router was given), reached at its
 * "host" when its http address listens on every address; the API keys default to the file's
 * keys_file. 0, or 2 after a line on stderr. */
static int cli_ctl_api__config(struct cli_ctl_api__args *a, char *router, size_t cap,
                               char keys_path[CONF_PATH_MAX], const char **keys_file)
{
    struct conf_cluster *cc;
    char errmsg[LR_ERRMSG_SIZE], host[ADDR_HOST_MAX];
    uint16_t port;
    if (conf_cluster_load(a->config, &cc, errmsg) != 0) {
        fprintf(stderr, "laurel ctl: %s\n", errmsg);
        return 2;
    }
    if (!a->router_given && cc->nrouters == 0) {
        fprintf(stderr, "laurel ctl: %s lists no router: pass --router HOST:PORT\n", a->config);
        conf_cluster_free(cc);
        return 2;
    }
    if (!a->router_given) {
        const struct conf_router *r = &cc->routers[0];
        if (addr_split(r->http, host, sizeof host, &port) == 0 &&
            (host[0] == '\0' || strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0)) {
            snprintf(router, cap, strchr(r->host, ':') ? "[%s]:%u" : "%s:%u", r->host, port);
        } else {
            snprintf(router, cap, "%s", r->http);
        }
        a->router = router;
    }
    if (cc->keys_file[0] != '\0') {
        snprintf(keys_path, CONF_PATH_MAX, "%s", cc->keys_file);
        *keys_file = keys_path;
    }
    conf_cluster_free(cc);
    return 0;
}

/* ---- the answer ------------------------------------------------------------------------------ */

static int cli_ctl_api__print(const struct cli_ctl_api__cmd *c, const struct cli_ctl_api__args *a,
                              const struct hclient_resp *r)
{
    json_t *j = json_loadb(r->body, r->body_len, JSON_DECODE_ANY, NULL);
    char hdr[64];
    int ok = r->status >= 200 && r->status < 300;
    if (hclient_header(r, "Idempotent-Replayed", hdr, sizeof hdr) && strcmp(hdr, "true") == 0) {
        fprintf(stderr, "replayed: this key's first answer\n");
    }
    if (ok && c->show && !a->raw && j) {
        ok = c->show(stdout, j) == 0;
    } else if (ok) {
        char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_ENCODE_ANY) : NULL;
        if (s) {
            printf("%s\n", s);
        } else if (r->body_len) { /* not JSON, e.g. `get /metrics` */
            fwrite(r->body, 1, r->body_len, stdout);
        }
        free(s);
    } else {
        json_t *e = json_object_get(j, "error");
        const char *code = json_string_value(json_object_get(e, "code"));
        const char *msg = json_string_value(json_object_get(e, "message"));
        if (code) {
            fprintf(stderr, "error %s: %s", code, msg ? msg : "");
        } else {
            fprintf(stderr, "error http %d: %.200s", r->status, r->body);
        }
        if (hclient_header(r, "Retry-After", hdr, sizeof hdr)) {
            fprintf(stderr, " (retry after %s s)", hdr);
        }
        fprintf(stderr, "\n");
        if (r->status == 401 && c->auth != CLI_CTL_API__NOKEY) {
            fprintf(stderr,
                    "hint: pass --api-key/--admin-key, set LAUREL_API_KEY/"
                    "LAUREL_ADMIN_KEY, or --data DIR of a `laurel dev` cluster\n");
        }
        if (r->status == 403 && c->auth == CLI_CTL_API__ADMIN) {
            fprintf(stderr,
                    "hint: this needs the admin key: pass --admin-key or set "
                    "LAUREL_ADMIN_KEY (the api key was sent)\n");
        }
    }
    json_decref(j);
    fflush(stdout);
    return ok ? 0 : 1;
}

/* ---- the entry point ------------------------------------------------------------------------- */

/* The row for argv[0] (and argv[1] for two-word commands), with *@next the first argv index
 * after its words; NULL if none. */
static const struct cli_ctl_api__cmd *cli_ctl_api__find(int argc, char **argv, int *next)
{
    for (size_t i = 0; i < CLI_CTL_API__N; i++) {
        const struct cli_ctl_api__cmd *c = &cli_ctl_api__cmds[i];
        if (strcmp(argv[0], c->word) != 0) {
            continue;
        }
        if (c->sub == NULL) {
            *next = 1;
            return c;
        }
        if (argc > 1 && strcmp(argv[1], c->sub) == 0) {
            *next = 2;
            return c;
        }
    }
    return NULL;
}

/* The address in --router @router without its scheme, with *@https set: https:// or @tls (a CA
 * was given) means TLS. NULL when the scheme is unknown, or http:// with a CA. */
static const char *cli_ctl_api__scheme(const char *router, int tls, int *https)
{
    static const char http[] = "http://", https_[] = "https://";
    *https = tls;
    if (strncmp(router, https_, sizeof https_ - 1) == 0) {
        *https = 1;
        router += sizeof https_ - 1;
    } else if (strncmp(router, http, sizeof http - 1) == 0) {
        router += sizeof http - 1;
        if (tls) {
            return NULL;
        }
    }
    return strstr(router, "://") == NULL && strchr(router, '/') == NULL ? router : NULL;
}

static int cli_ctl_api__parse(const struct cli_ctl_api__cmd *c, int argc, char **argv, int first,
                              struct cli_ctl_api__args *a)
{
    struct option opts[CLI_CTL_API__FIELDS + 10];
    int n = 0, ch, npos = 0;
    for (int i = 0; i < CLI_CTL_API__FIELDS && c->f[i].meta; i++) {
        if (c->f[i].opt) {
            opts[n++] = (struct option){c->f[i].opt, required_argument, NULL, i};
        }
    }
    opts[n++] = (struct option){"router", required_argument, NULL, CLI_CTL_API__O_ROUTER};
    opts[n++] = (struct option){"api-key", required_argument, NULL, CLI_CTL_API__O_API_KEY};
    opts[n++] = (struct option){"admin-key", required_argument, NULL, CLI_CTL_API__O_ADMIN_KEY};
    opts[n++] = (struct option){"data", required_argument, NULL, CLI_CTL_API__O_DATA};
    opts[n++] = (struct option){"timeout-ms", required_argument, NULL, CLI_CTL_API__O_TIMEOUT};
    opts[n++] = (struct option){"cacert", required_argument, NULL, CLI_CTL_API__O_CACERT};
    opts[n++] = (struct option){"help", no_argument, NULL, CLI_CTL_API__O_HELP};
    opts[n++] = (struct option){"config", required_argument, NULL, CLI_CTL_API__O_CONFIG};
    if (c->idempotent) {
        opts[n++] = (struct option){"key", required_argument, NULL, CLI_CTL_API__O_IDEM};
    }
    if (c->show || cli_ctl_api__has_body(c)) {
        opts[n++] = (struct option){"json", c->show ? no_argument : required_argument, NULL,
                                    CLI_CTL_API__O_JSON};
    }
    opts[n] = (struct option){NULL, 0, NULL, 0};
    optind = first;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        long long ms;
        switch (ch) {
        case CLI_CTL_API__O_ROUTER:
            a->router = optarg;
            a->router_given = 1;
            break;
        case CLI_CTL_API__O_CONFIG: a->config = optarg; break;
        case CLI_CTL_API__O_API_KEY: a->api_key = optarg; break;
        case CLI_CTL_API__O_ADMIN_KEY: a->admin_key = optarg; break;
        case CLI_CTL_API__O_DATA: a->data = optarg; break;
        case CLI_CTL_API__O_IDEM: a->idem = optarg; break;
        case CLI_CTL_API__O_JSON:
            a->json = c->show ? NULL : optarg;
            a->raw = c->show != NULL;
            break;
        case CLI_CTL_API__O_CACERT: a->cacert = optarg; break;
        case CLI_CTL_API__O_TIMEOUT:
            if (cli_ctl_api__int(optarg, &ms) != 0 || ms < 1 || ms > 3600000) {
                fprintf(stderr, "laurel ctl: --timeout-ms wants 1 to 3600000\n");
                return 2;
            }
            a->timeout_ms = (int)ms;
            break;
        case CLI_CTL_API__O_HELP: cli_ctl_api__cmd_usage(stdout, c); return 0;
        case ':':
            fprintf(stderr, "laurel ctl %s%s%s: %s wants a value\n\n", CLI_CTL_API__NAME(c),
                    argv[optind - 1]);
            cli_ctl_api__cmd_usage(stderr, c);
            return 2;
        case '?':
            fprintf(stderr, "laurel ctl %s%s%s: unknown option %s\n\n", CLI_CTL_API__NAME(c),
                    argv[optind - 1]);
            cli_ctl_api__cmd_usage(stderr, c);
            return 2;
        default: a->v[ch] = optarg; break;
        }
    }
    for (int i = 0; i < CLI_CTL_API__FIELDS && c->f[i].meta; i++) {
        if (c->f[i].opt == NULL && optind + npos < argc) {
            a->v[i] = argv[optind + npos++];
        }
        /* With --json BODY the body's members may come from it: the router checks them. */
        if (c->f[i].required && a->v[i] == NULL &&
            !(a->json && c->f[i].where == CLI_CTL_API__BODY && c->f[i].opt)) {
            fprintf(stderr, "laurel ctl %s%s%s: %s%s is required\n\n", CLI_CTL_API__NAME(c),
                    c->f[i].opt ? "--" : "", c->f[i].opt ? c->f[i].opt : c->f[i].meta);
            cli_ctl_api__cmd_usage(stderr, c);
            return 2;
        }
    }
    if (optind + npos < argc) {
        fprintf(stderr, "laurel ctl %s%s%s: unexpected argument '%s'\n\n", CLI_CTL_API__NAME(c),
                argv[optind + npos]);
        cli_ctl_api__cmd_usage(stderr, c);
        return 2;
    }
    if (c->path == NULL && a->v[0][0] != '/') {
        fprintf(stderr, "laurel ctl %s%s%s: PATH starts with '/'\n", CLI_CTL_API__NAME(c));
        return 2;
    }
    return -1; /* go on */
}

int cli_ctl_api(int argc, char **argv)
{
    struct cli_ctl_api__args a;
    struct cli_ctl_api__buf target = {NULL, 0, 0};
    struct hclient_resp resp;
    char errmsg[LR_ERRMSG_SIZE], kbuf[2][256];
    const char *key = NULL;
    char *body_s = NULL;
    json_t *body = NULL;
    int first, rv, https;
    const struct cli_ctl_api__cmd *c = cli_ctl_api__find(argc, argv, &first);
    if (c == NULL) { /* a group word without (a known) second word: "player", "player --help" */
        int help = argc > 1 && strcmp(argv[1], "--help") == 0;
        if (!help) {
            fprintf(stderr, "laurel ctl %s: unknown or missing subcommand\n", argv[0]);
        }
        fprintf(help ? stdout : stderr, "usage: laurel ctl %s ...\n", argv[0]);
        cli_ctl_api_usage(help ? stdout : stderr, argv[0]);
        return help ? 0 : 2;
    }
    memset(&a, 0, sizeof a);
    a.router = getenv("LAUREL_ROUTER") && getenv("LAUREL_ROUTER")[0] ? getenv("LAUREL_ROUTER")
                                                                     : "127.0.0.1:8080";
    a.data = "./laurel-data";
    a.cacert =
        getenv("LAUREL_CACERT") && getenv("LAUREL_CACERT")[0] ? getenv("LAUREL_CACERT") : NULL;
    a.timeout_ms = 5000;
    rv = cli_ctl_api__parse(c, argc, argv, first, &a);
    if (rv >= 0) {
        return rv;
    }
    if (cli_ctl_api__body(c, &a, &body) != 0) {
        return 2;
    }
    char router[CONF_ADDR_MAX + 2], keys_path[CONF_PATH_MAX];
    const char *keys_file = NULL;
    if (a.config != NULL) {
        rv = cli_ctl_api__config(&a, router, sizeof router, keys_path, &keys_file);
        if (rv != 0) {
            json_decref(body);
            return rv;
        }
    }
    if (c->auth == CLI_CTL_API__API) {
        key = cli_ctl_api__key(a.api_key, KEYSET_API, a.data, keys_file, kbuf[0], sizeof kbuf[0]);
    }
    if (c->auth != CLI_CTL_API__NOKEY && key == NULL) {
        key =
            cli_ctl_api__key(a.admin_key, KEYSET_ADMIN, a.data, keys_file, kbuf[1], sizeof kbuf[1]);
    }
    if (c->auth == CLI_CTL_API__ADMIN && key == NULL) {
        key = cli_ctl_api__key(a.api_key, KEYSET_API, a.data, keys_file, kbuf[0], sizeof kbuf[0]);
    }
    if (body && (body_s = json_dumps(body, JSON_COMPACT)) == NULL) {
        rv = errmsg_set(errmsg, LR_ENOMEM, "out of memory");
        goto err_after_body;
    }
    if (cli_ctl_api__target(c, &a, &target) != 0) {
        rv = errmsg_set(errmsg, LR_ENOMEM, "out of memory");
        goto err_after_target;
    }
    struct hclient_req req = {c->method, target.p, key, body_s, body_s ? strlen(body_s) : 0};
    struct hclient_tls tls = {a.cacert};
    const char *addr = cli_ctl_api__scheme(a.router, a.cacert != NULL, &https);
    if (addr == NULL) {
        rv = errmsg_set(errmsg, LR_EINVAL,
                        "--router %s: expected HOST:PORT, http://HOST:PORT or https://HOST:PORT "
                        "(--cacert means https)",
                        a.router);
        goto err_after_target;
    }
    rv = hclient_do_tls(addr, https ? &tls : NULL, &req, a.timeout_ms, &resp, errmsg);
    if (rv != 0) {
        goto err_after_target;
    }
    rv = cli_ctl_api__print(c, &a, &resp);
    hclient_resp_free(&resp);
    free(target.p);
    free(body_s);
    json_decref(body);
    return rv;

err_after_target:
    free(target.p);
    free(body_s);
err_after_body:
    json_decref(body);
    fprintf(stderr, "laurel ctl %s%s%s: %s\n", CLI_CTL_API__NAME(c), errmsg);
    return rv == LR_EINVAL ? 2 : 1;
}
