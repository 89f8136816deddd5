/* cli/cli_ctl_watch.c — `laurel ctl watch TOPIC...`: a router's WebSocket events, one JSON
 * object per line, across reconnects.
 *
 * One connection at a time (lib/wsload.h, on a libuv loop of our own). On each open it
 * subscribes to every topic; when the connection ends (the router restarted, a network
 * blip, a slow-consumer close) a timer opens the next one, backing off from 100 ms to
 * --reconnect-max-ms, until the process is killed or --count events have printed.
 *
 * Neither lost nor repeated (docs/api.md, "Resume after a reconnect"):
 * - Player events carry their region's Raft index. `resume` holds, per region, the last index
 *   whose events were printed; the subscribe of each reconnect sends it, and the router
 *   replays what its region's event log holds after it, then live events follow. `floor` is
 *   the `resume` a connection was opened with: an event at or below it was printed on an
 *   earlier connection and is dropped. The floor, not the running maximum, is the test: a
 *   replay's events may arrive after live ones of higher indexes, and must still print.
 * - A region no player event came from yet still needs a resume point, or events committed
 *   while no router streamed them would be lost: the first `subscribed` answer carries
 *   `positions`, where each region's live stream stood as the subscription started, and
 *   those are the first resume points. A router that has just started does not know yet
 *   where its streams start (position 0), nor can it replay up to there (a resume's `error`
 *   `unavailable`): the connection is dropped before any player event can come on it, and
 *   the next one tries again.
 * - Board topics are not resumable: they carry a scope's current top. On every subscribe the
 *   router sends the current top once; a top equal to the one last printed for that board
 *   and scope is dropped, one that changed while disconnected prints (the latest state is
 *   what a top is). `cycle.closed` prints once per board and cycle.
 * What the router says about the session (subscribed, errors) goes to stderr, so stdout
 * holds events only; it is flushed after each line, for pipes. */
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "cli_ctl_int.h"
#include "../lib/err.h"
#include "../lib/wsload.h"

#define CLI_CTL_WATCH__BACKOFF_MIN_MS 100

struct cli_ctl_watch {
    uv_loop_t loop;
    uv_timer_t timer; /* the next connection */
    const char *router;
    json_t *topics;      /* the subscribe's array; owned */
    json_t *resume;      /* region -> last index printed, or the first subscribe's position */
    json_t *floor;       /* region -> the resume point of the current connection */
    json_t *tops;        /* "board\x1fscope" -> the top last printed */
    json_t *cycles;      /* "board\x1fcycle" -> true, once printed */
    int players;         /* a player: topic is watched: resume points matter */
    int positioned;      /* a `subscribed` gave every region's position */
    struct wsload *pool; /* the current connection's pool, NULL between connections */
    unsigned backoff_ms, backoff_max_ms;
    long long count, printed; /* --count (0: no limit), events printed */
    unsigned connects;        /* connections opened (101) */
    int rv;                   /* the exit code when the loop stops */
};

/* ---- resume points --------------------------------------------------------------------------- */

/* Was @ev printed on an earlier connection? If not, remember what it changes. */
static int cli_ctl_watch__seen(struct cli_ctl_watch *w, json_t *ev, const char *type)
{
    const char *board = json_string_value(json_object_get(ev, "board_id"));
    char key[256];
    if (strcmp(type, "leaderboard.changed") == 0 && board) {
        const char *scope = json_string_value(json_object_get(ev, "scope"));
        json_t *top = json_object_get(ev, "top");
        snprintf(key, sizeof key, "%s\x1f%s", board, scope ? scope : "");
        if (top && json_equal(json_object_get(w->tops, key), top)) {
            return 1;
        }
        json_object_set(w->tops, key, top ? top : json_null());
        return 0;
    }
    if (strcmp(type, "cycle.closed") == 0 && board) {
        snprintf(key, sizeof key, "%s\x1f%" JSON_INTEGER_FORMAT, board,
                 json_integer_value(json_object_get(ev, "cycle")));
        if (json_object_get(w->cycles, key)) {
            return 1;
        }
        json_object_set_new(w->cycles, key, json_true());
        return 0;
    }
    const char *region = json_string_value(json_object_get(ev, "region"));
    json_t *index = json_object_get(ev, "index");
    if (region == NULL || !json_is_integer(index)) {
        return 0; /* nothing to tell it by: print */
    }
    json_int_t i = json_integer_value(index);
    json_t *floor = json_object_get(w->floor, region);
    if (floor && i <= json_integer_value(floor)) {
        return 1;
    }
    json_t *last = json_object_get(w->resume, region);
    if (last == NULL || i > json_integer_value(last)) {
        json_object_set_new(w->resume, region, json_integer(i));
    }
    return 0;
}

/* ---- the connection -------------------------------------------------------------------------- */

static void cli_ctl_watch__connect(struct cli_ctl_watch *w);

static void cli_ctl_watch__opened(void *data, unsigned conn)
{
    struct cli_ctl_watch *w = data;
    json_t *msg = json_pack("{s:s,s:O}", "op", "subscribe", "topics", w->topics);
    char *s;
    /* The first subscribe starts from the present; a reconnect resumes. */
    if (msg && w->connects > 0 && w->players && json_object_size(w->resume) > 0) {
        json_object_set(msg, "resume", w->resume);
    }
    s = msg ? json_dumps(msg, JSON_COMPACT) : NULL;
    fprintf(stderr, "laurel ctl watch: %s %s\n", w->connects ? "reconnected to" : "connected to",
            w->router);
    w->connects++;
    w->backoff_ms = CLI_CTL_WATCH__BACKOFF_MIN_MS;
    if (s == NULL || wsload_send(w->pool, conn, s, strlen(s)) != 0) {
        fprintf(stderr, "laurel ctl watch: out of memory\n");
        w->rv = 1;
        uv_stop(&w->loop);
    }
    free(s);
    json_decref(msg);
}

static void cli_ctl_watch__retry(uv_timer_t *t)
{
    struct cli_ctl_watch *w = t->data;
    cli_ctl_watch__connect(w);
}

/* The next connection after the backoff; the timer frees this one's pool first. */
static void cli_ctl_watch__again(struct cli_ctl_watch *w)
{
    unsigned delay = w->backoff_ms;
    w->backoff_ms = w->backoff_ms * 2 < w->backoff_max_ms ? w->backoff_ms * 2 : w->backoff_max_ms;
    uv_timer_start(&w->timer, cli_ctl_watch__retry, delay, 0);
}

/* Drop connection @conn and open the next one: the router cannot yet say or serve where a
 * region's events resume. Called with the subscribe's answer, before any player event can
 * arrive on it; the next connection resumes from the same points. */
static void cli_ctl_watch__abandon(struct cli_ctl_watch *w, unsigned conn)
{
    fprintf(stderr, "laurel ctl watch: the router's event streams are starting; reconnecting\n");
    wsload_close(w->pool, conn); /* no closed callback for this */
    cli_ctl_watch__again(w);
}

/* The first `subscribed`'s positions become the resume points of regions without one.
 * @return 0, or -1 when a region's position is not known yet. */
static int cli_ctl_watch__positions(struct cli_ctl_watch *w, json_t *msg)
{
    json_t *pos = json_object_get(msg, "positions"), *v;
    const char *region;
    if (!w->players || w->positioned || !json_is_object(pos)) {
        return 0;
    }
    json_object_foreach(pos, region, v)
    {
        if (!json_is_integer(v) || json_integer_value(v) <= 0) {
            return -1;
        }
    }
    json_object_foreach(pos, region, v)
    {
        if (json_object_get(w->resume, region) == NULL) {
            json_object_set(w->resume, region, v);
        }
    }
    w->positioned = 1;
    return 0;
}

/* What the router says about the session: to stderr. @return 1 if the connection was
 * abandoned (its later messages must not count). */
static int cli_ctl_watch__control(struct cli_ctl_watch *w, unsigned conn, const char *type,
                                  json_t *msg)
{
    if (strcmp(type, "subscribed") == 0) {
        char *t = json_dumps(json_object_get(msg, "topics"), JSON_COMPACT);
        fprintf(stderr, "laurel ctl watch: subscribed to %s\n", t ? t : "?");
        free(t);
        if (cli_ctl_watch__positions(w, msg) != 0) {
            cli_ctl_watch__abandon(w, conn);
            return 1;
        }
    } else if (strcmp(type, "error") == 0) {
        json_t *e = json_object_get(msg, "error");
        const char *code = json_string_value(json_object_get(e, "code"));
        const char *m = json_string_value(json_object_get(e, "message"));
        fprintf(stderr, "laurel ctl watch: error %s: %s\n", code ? code : "?", m ? m : "");
        if (code && strcmp(code, "unavailable") == 0 && m && strncmp(m, "resume:", 7) == 0) {
            cli_ctl_watch__abandon(w, conn);
            return 1;
        }
    }
    return 0;
}

/* The session's own messages, not events: they never print on stdout. */
static const char *const cli_ctl_watch__controls[] = {"subscribed", "unsubscribed", "error", "pong",
                                                      "response"};

static void cli_ctl_watch__message(void *data, unsigned conn, const char *text, size_t len)
{
    struct cli_ctl_watch *w = data;
    json_t *msg = json_loadb(text, len, 0, NULL);
    const char *type = json_string_value(json_object_get(msg, "type"));
    if (type == NULL) {
        fprintf(stderr, "laurel ctl watch: ignored a message that is not an event: %.*s\n",
                (int)(len < 200 ? len : 200), text);
        json_decref(msg);
        return;
    }
    for (size_t i = 0; i < sizeof cli_ctl_watch__controls / sizeof *cli_ctl_watch__controls; i++) {
        if (strcmp(type, cli_ctl_watch__controls[i]) == 0) {
            cli_ctl_watch__control(w, conn, type, msg);
            json_decref(msg);
            return;
        }
    }
    if (!cli_ctl_watch__seen(w, msg, type)) {
        /* The router's text as it is (one line: it sends compact JSON). */
        fwrite(text, 1, len, stdout);
        fputc('\n', stdout);
        fflush(stdout);
        if (w->count > 0 && ++w->printed >= w->count) {
            w->rv = 0;
            uv_stop(&w->loop);
        }
    }
    json_decref(msg);
}

static void cli_ctl_watch__closed(void *data, unsigned conn, int opened, int code, const char *why)
{
    struct cli_ctl_watch *w = data;
    (void)conn;
    if (opened) {
        fprintf(stderr, "laurel ctl watch: disconnected (%d %s); reconnecting\n", code, why);
    } else {
        fprintf(stderr, "laurel ctl watch: cannot connect to %s (%s); retrying in %u ms\n",
                w->router, why, w->backoff_ms);
    }
    /* Not from inside the pool's callback: the timer frees the pool, then opens the next. */
    cli_ctl_watch__again(w);
}

static void cli_ctl_watch__connect(struct cli_ctl_watch *w)
{
    struct wsload_spec spec = {
        .addr = w->router,
        .target = "/v1/ws",
        .cap = 1,
        .cbs = {cli_ctl_watch__opened, cli_ctl_watch__message, cli_ctl_watch__closed},
        .data = w};
    int rv;
    if (w->pool) {
        wsload_free(w->pool, NULL, NULL);
        w->pool = NULL;
    }
    json_decref(w->floor);
    w->floor = json_deep_copy(w->resume);
    rv = w->floor ? wsload_new(&w->loop, &spec, &w->pool) : LR_ENOMEM;
    if (rv != 0) {
        fprintf(stderr, "laurel ctl watch: %s\n",
                rv == LR_EINVAL ? "--router wants HOST:PORT (or [v6]:PORT) that resolves"
                                : "out of memory");
        w->rv = rv == LR_EINVAL ? 2 : 1;
        uv_stop(&w->loop);
        return;
    }
    wsload_grow(w->pool, 1);
}

/* ---- the command ----------------------------------------------------------------------------- */

void cli_ctl_watch_usage(FILE *f, const char *word)
{
    (void)word;
    fprintf(f,
            "  watch TOPIC... [--count N] [--reconnect-max-ms MS]\n"
            "      print events as they commit, one JSON object per line; resumes after a "
            "reconnect\n");
}

static void cli_ctl_watch__help(FILE *f)
{
    fprintf(f,
            "usage: laurel ctl watch TOPIC... [--router HOST:PORT] [--count N]\n"
            "                        [--reconnect-max-ms MS]\n\n"
            "Subscribe to TOPICs on the router's WebSocket (GET /v1/ws) and print each event as\n"
            "one JSON object per line on stdout, flushed. Runs until killed; when the connection\n"
            "ends it reconnects and resumes, so an event is neither lost nor printed twice\n"
            "(player topics by their regions' indexes; a board's top prints again only if it\n"
            "changed). Connection notes and the router's errors go to stderr.\n\n"
            "topics:\n"
            "  player:ID               the player's unlocks, scores, rewards and name changes\n"
            "  board:ID                the board's global top (first as it is, then when it\n"
            "                          changes) and its cycle closes\n"
            "  board:ID:region:R       the same for the board's top in region R\n\n"
            "options:\n"
            "  --router HOST:PORT      the router, [v6]:PORT for IPv6 (default: $LAUREL_ROUTER,\n"
            "                          else 127.0.0.1:8080); no key is needed\n"
            "  --count N               exit 0 after N events\n"
            "  --reconnect-max-ms MS   longest wait between connection attempts (default 2000)\n");
}

static int cli_ctl_watch__num(const char *s, long long min, long long max, long long *out)
{
    char *end;
    *out = strtoll(s, &end, 10);
    return s[0] != '\0' && *end == '\0' && *out >= min && *out <= max ? 0 : -1;
}

/* Options and topics into @w. @return -1 to go on, else the exit code. */
static int cli_ctl_watch__parse(struct cli_ctl_watch *w, int argc, char **argv)
{
    static const struct option opts[] = {{"router", required_argument, NULL, 'r'},
                                         {"count", required_argument, NULL, 'c'},
                                         {"reconnect-max-ms", required_argument, NULL, 'm'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    long long n;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
        switch (c) {
        case 'r': w->router = optarg; break;
        case 'c':
            if (cli_ctl_watch__num(optarg, 1, INT64_MAX, &n) != 0) {
                fprintf(stderr, "laurel ctl watch: --count wants a number >= 1\n");
                return 2;
            }
            w->count = n;
            break;
        case 'm':
            if (cli_ctl_watch__num(optarg, CLI_CTL_WATCH__BACKOFF_MIN_MS, 600000, &n) != 0) {
                fprintf(stderr, "laurel ctl watch: --reconnect-max-ms wants 100 to 600000\n");
                return 2;
            }
            w->backoff_max_ms = (unsigned)n;
            break;
        case 'h': cli_ctl_watch__help(stdout); return 0;
        case ':':
            fprintf(stderr, "laurel ctl watch: %s wants a value\n\n", argv[optind - 1]);
            cli_ctl_watch__help(stderr);
            return 2;
        default:
            fprintf(stderr, "laurel ctl watch: unknown option %s\n\n", argv[optind - 1]);
            cli_ctl_watch__help(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "laurel ctl watch: name at least one TOPIC, e.g. board:arena\n\n");
        cli_ctl_watch__help(stderr);
        return 2;
    }
    for (int i = optind; i < argc; i++) {
        json_t *t = json_string(argv[i]);
        if (t == NULL) {
            fprintf(stderr, "laurel ctl watch: topic '%s' is not UTF-8\n", argv[i]);
            return 2;
        }
        w->players |= strncmp(argv[i], "player:", 7) == 0;
        json_array_append_new(w->topics, t);
    }
    return -1;
}

static void cli_ctl_watch__walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h)) {
        uv_close(h, NULL);
    }
}

int cli_ctl_watch(int argc, char **argv)
{
    struct cli_ctl_watch w;
    const char *env = getenv("LAUREL_ROUTER");
    int rv;
    memset(&w, 0, sizeof w);
    w.router = env && env[0] ? env : "127.0.0.1:8080";
    w.backoff_ms = CLI_CTL_WATCH__BACKOFF_MIN_MS;
    w.backoff_max_ms = 2000;
    w.topics = json_array();
    w.resume = json_object();
    w.tops = json_object();
    w.cycles = json_object();
    if (!w.topics || !w.resume || !w.tops || !w.cycles) {
        fprintf(stderr, "laurel ctl watch: out of memory\n");
        rv = 1;
        goto err_after_json;
    }
    rv = cli_ctl_watch__parse(&w, argc, argv);
    if (rv >= 0) {
        goto err_after_json; /* --help (0) or a usage error (2) */
    }
    if ((rv = uv_loop_init(&w.loop)) != 0) {
        fprintf(stderr, "laurel ctl watch: event loop: %s\n", uv_strerror(rv));
        rv = 1;
        goto err_after_json;
    }
    /* A router gone mid-write must end the connection, not the process: reconnecting is the
     * point. */
    signal(SIGPIPE, SIG_IGN);
    uv_timer_init(&w.loop, &w.timer);
    w.timer.data = &w;
    w.rv = 1;
    cli_ctl_watch__connect(&w);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    rv = w.rv;
    /* Stopped by --count or an error: free the pool (its handles close on the loop), then
     * close what is left and drain. */
    if (w.pool) {
        wsload_free(w.pool, NULL, NULL);
    }
    uv_walk(&w.loop, cli_ctl_watch__walk_close, NULL);
    uv_run(&w.loop, UV_RUN_DEFAULT);
    uv_loop_close(&w.loop);
err_after_json:
    json_decref(w.topics);
    json_decref(w.resume);
    json_decref(w.floor);
    json_decref(w.tops);
    json_decref(w.cycles);
    return rv;
}
