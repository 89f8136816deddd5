/* conf/cluster.c — the cluster file's decoder (conf/cluster.h).
 *
 * One pass over the JSON tree with the path of the value being read kept in a buffer
 * (conf__dec.path), so every error names its field the way a reader finds it in the file:
 * "regions[1].replicas[0].rpc: expected HOST:PORT". Each object is first checked against the
 * list of members it may have (conf__members), so an unknown or misspelt member fails with its
 * own path instead of being ignored; then its members are read one by one. Checks that span
 * the file come last: ids unique in their scope, no replica address used twice (two replicas
 * cannot bind one port, and a raft configuration with a repeated address never elects).
 *
 * Input comes from an operator's disk: nothing here asserts on it; everything returns
 * LR_EMALFORMED (STYLE.md 12). The file is fuzzed (fuzz/fuzz_cluster.c). */
#include "cluster.h"

#include <assert.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/addr.h"
#include "../lib/err.h"
#include "../shard/valid.h"

static const struct conf_limit_def conf__limits[CONF_LIMIT_N] = {
#define CONF__DEF(proc, member, flag, kind) {CONF_##proc, #member, flag, kind},
    CONF_LIMITS(CONF__DEF)
#undef CONF__DEF
};

const struct conf_limit_def *conf_limit_def(enum conf_limit l)
{
    return &conf__limits[l];
}

struct conf__dec {
    char path[256]; /* of the value being read: "regions[1].replicas[0]" */
    size_t plen;
    const char *dir; /* base of relative paths, or NULL */
    char *errmsg;
};

/* Append ".name" (or "name" at the root) or "[i]" to the path; returns the length to restore
 * with conf__pop. A path too long for the buffer is cut short: only the message suffers. */
static size_t conf__push(struct conf__dec *d, const char *name, size_t index)
{
    size_t old = d->plen;
    int n = name ? snprintf(d->path + d->plen, sizeof d->path - d->plen, "%s%s", d->plen ? "." : "",
                            name)
                 : snprintf(d->path + d->plen, sizeof d->path - d->plen, "[%zu]", index);
    d->plen += n > 0 ? (size_t)n : 0;
    if (d->plen >= sizeof d->path) {
        d->plen = sizeof d->path - 1;
    }
    return old;
}

static void conf__pop(struct conf__dec *d, size_t old)
{
    d->plen = old;
    d->path[old] = '\0';
}

static int conf__fail(struct conf__dec *d, const char *what)
{
    return errmsg_set(d->errmsg, LR_EMALFORMED, "%s: %s", d->plen ? d->path : "(top)", what);
}

/* conf__fail with @member appended to the path: a check of a member made after it was read. */
static int conf__fail_at(struct conf__dec *d, const char *member, const char *what)
{
    size_t old = conf__push(d, member, 0);
    int rv = conf__fail(d, what);
    conf__pop(d, old);
    return rv;
}

/* @o must be an object whose members are all in @names (NULL-terminated) or start with '_'. */
static int conf__members(struct conf__dec *d, const json_t *o, const char *const *names)
{
    const char *k;
    json_t *v;
    if (!json_is_object(o)) {
        return conf__fail(d, "expected an object");
    }
    json_object_foreach((json_t *)o, k, v)
    {
        size_t i = 0;
        while (names[i] && strcmp(names[i], k) != 0) {
            i++;
        }
        if (names[i] == NULL && k[0] != '_') {
            return conf__fail_at(d, k, "unknown field (names starting with '_' are ignored)");
        }
    }
    return 0;
}

enum conf__str_rule { CONF__ANY, CONF__ADDR, CONF__ID, CONF__PATH };

/* Member @name of @o, a string by @rule, into @out (@cap bytes). Absent: "" if !@required. */
static int conf__str(struct conf__dec *d, const json_t *o, const char *name, int required,
                     enum conf__str_rule rule, char *out, size_t cap)
{
    json_t *v = json_object_get(o, name);
    size_t old = conf__push(d, name, 0);
    int rv = 0;
    out[0] = '\0';
    if (v == NULL) {
        rv = required ? conf__fail(d, "missing") : 0;
        goto out;
    }
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (s == NULL) {
        rv = conf__fail(d, rule == CONF__ADDR ? "expected HOST:PORT" : "expected a string");
        goto out;
    }
    switch (rule) {
    case CONF__ADDR:
        if (len >= cap || !addr_valid(s)) {
            rv = conf__fail(d, "expected HOST:PORT");
            goto out;
        }
        break;
    case CONF__ID:
        if (!valid_id(s, len, CONF_ID_MAX) || s[0] == '.') {
            rv = conf__fail(d, "expected 1 to 64 of [A-Za-z0-9_.-], not starting with '.'");
            goto out;
        }
        break;
    case CONF__PATH:
        if (len == 0 || strlen(s) != len) {
            rv = conf__fail(d, "expected a file name");
            goto out;
        }
        if (s[0] != '/' && d->dir != NULL) {
            int n = snprintf(out, cap, "%s/%s", d->dir, s);
            rv = n < 0 || (size_t)n >= cap ? conf__fail(d, "too long") : 0;
            goto out;
        }
        break;
    case CONF__ANY: break;
    }
    if (len >= cap || strlen(s) != len) {
        rv = conf__fail(d, len >= cap ? "too long" : "contains NUL");
        goto out;
    }
    memcpy(out, s, len + 1);
out:
    conf__pop(d, old);
    return rv;
}

static int conf__replica(struct conf__dec *d, const json_t *o, struct conf_replica *r)
{
    static const char *const names[] = {"id", "raft", "rpc", "host", NULL};
    int rv = conf__members(d, o, names);
    if (rv != 0) {
        return rv;
    }
    json_t *id = json_object_get(o, "id");
    size_t old = conf__push(d, "id", 0);
    if (id == NULL || !json_is_integer(id) || json_integer_value(id) < 1) {
        rv = conf__fail(d, id ? "expected a whole number >= 1" : "missing");
    }
    conf__pop(d, old);
    if (rv != 0) {
        return rv;
    }
    r->id = (uint64_t)json_integer_value(id);
    if ((rv = conf__str(d, o, "raft", 1, CONF__ADDR, r->raft, sizeof r->raft)) != 0 ||
        (rv = conf__str(d, o, "rpc", 1, CONF__ADDR, r->rpc, sizeof r->rpc)) != 0 ||
        (rv = conf__str(d, o, "host", 0, CONF__ID, r->host, sizeof r->host)) != 0) {
        return rv;
    }
    if (r->host[0] == '\0' && addr_split(r->rpc, r->host, sizeof r->host, &(uint16_t){0}) != 0) {
        return conf__fail_at(d, "rpc", "expected HOST:PORT");
    }
    return 0;
}

/* A group: {"id": ID, "replicas": [...]}. @meta: the id may be left out and must be "meta". */
static int conf__group(struct conf__dec *d, const json_t *o, int meta, struct conf_group *g)
{
    static const char *const names[] = {"id", "replicas", NULL};
    int rv = conf__members(d, o, names);
    if (rv != 0 || (rv = conf__str(d, o, "id", !meta, CONF__ID, g->id, sizeof g->id)) != 0) {
        return rv;
    }
    if (meta && g->id[0] == '\0') {
        snprintf(g->id, sizeof g->id, "meta");
    }
    if ((meta != 0) != (strcmp(g->id, "meta") == 0)) {
        return conf__fail_at(d, "id",
                             meta ? "the metadata group's id is \"meta\""
                                  : "\"meta\" is the metadata group: describe it under \"meta\"");
    }
    json_t *reps = json_object_get(o, "replicas");
    size_t old = conf__push(d, "replicas", 0);
    if (!json_is_array(reps) || json_array_size(reps) == 0 ||
        json_array_size(reps) > CONF_MAX_REPLICAS) {
        rv = conf__fail(d, reps ? "expected an array of 1 to 9 replicas" : "missing");
        goto out;
    }
    for (size_t i = 0; i < json_array_size(reps); i++) {
        size_t at = conf__push(d, NULL, i);
        struct conf_replica *r = &g->r[i];
        rv = conf__replica(d, json_array_get(reps, i), r);
        for (size_t j = 0; rv == 0 && j < i; j++) {
            if (g->r[j].id == r->id) {
                char msg[64];
                snprintf(msg, sizeof msg, "%llu is used twice in this group",
                         (unsigned long long)r->id);
                rv = conf__fail_at(d, "id", msg);
            }
        }
        conf__pop(d, at);
        if (rv != 0) {
            goto out;
        }
        g->n++;
    }
out:
    conf__pop(d, old);
    return rv;
}

static int conf__router(struct conf__dec *d, const json_t *o, struct conf_router *r)
{
    static const char *const names[] = {"id", "http", "host", NULL};
    int rv = conf__members(d, o, names);
    if (rv != 0 || (rv = conf__str(d, o, "id", 1, CONF__ID, r->id, sizeof r->id)) != 0 ||
        (rv = conf__str(d, o, "http", 1, CONF__ADDR, r->http, sizeof r->http)) != 0 ||
        (rv = conf__str(d, o, "host", 0, CONF__ID, r->host, sizeof r->host)) != 0) {
        return rv;
    }
    if (r->host[0] == '\0' && addr_split(r->http, r->host, sizeof r->host, &(uint16_t){0}) != 0) {
        return conf__fail_at(d, "http", "expected HOST:PORT");
    }
    return 0;
}

/* "RATE" or "RATE/BURST": digits, as `laurel router --limit-*` reads them. */
static int conf__rate_ok(const char *s)
{
    size_t i = 0, digits = 0;
    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        digits++;
    }
    if (digits == 0 || digits > 10) {
        return 0;
    }
    if (s[i] == '\0') {
        return 1;
    }
    return s[i] == '/' && conf__rate_ok(s + i + 1) && strchr(s + i + 1, '/') == NULL;
}

static int conf__limit(struct conf__dec *d, const json_t *v, enum conf_limit l,
                       struct conf_cluster *c)
{
    const struct conf_limit_def *def = &conf__limits[l];
    char *out = c->limit[l];
    size_t cap = sizeof c->limit[l];
    const char *s = json_string_value(v);
    switch (def->kind) {
    case CONF_UINT:
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > (json_int_t)UINT_MAX) {
            return conf__fail(d, "expected a whole number from 0 to 4294967295");
        }
        snprintf(out, cap, "%lld", (long long)json_integer_value(v));
        break;
    case CONF_RATE:
        if (json_is_integer(v) && json_integer_value(v) >= 0 &&
            json_integer_value(v) <= (json_int_t)UINT_MAX) {
            snprintf(out, cap, "%lld", (long long)json_integer_value(v));
        } else if (s != NULL && conf__rate_ok(s)) {
            snprintf(out, cap, "%s", s);
        } else {
            return conf__fail(d, "expected RATE or \"RATE/BURST\" (0: unlimited)");
        }
        break;
    case CONF_BOOL:
        if (!json_is_boolean(v)) {
            return conf__fail(d, "expected true or false");
        }
        if (json_is_false(v)) {
            return 0; /* the flag's absence is false */
        }
        out[0] = '\0';
        break;
    case CONF_STR:
        if (s == NULL || strlen(s) != json_string_length(v) || json_string_length(v) >= cap) {
            return conf__fail(d, "expected a string");
        }
        snprintf(out, cap, "%s", s);
        break;
    }
    c->limit_set[l] = 1;
    return 0;
}

/* "limits": {"node": {...}, "router": {...}}, members from CONF_LIMITS. */
static int conf__limits_read(struct conf__dec *d, const json_t *o, struct conf_cluster *c)
{
    static const char *const procs[] = {"node", "router", NULL};
    int rv = conf__members(d, o, procs);
    for (int p = 0; rv == 0 && procs[p]; p++) {
        const json_t *po = json_object_get(o, procs[p]);
        const char *names[CONF_LIMIT_N + 1];
        size_t n = 0;
        if (po == NULL) {
            continue;
        }
        for (int l = 0; l < CONF_LIMIT_N; l++) {
            if (conf__limits[l].proc == (enum conf_proc)p) {
                names[n++] = conf__limits[l].member;
            }
        }
        names[n] = NULL;
        size_t old = conf__push(d, procs[p], 0);
        rv = conf__members(d, po, names);
        for (int l = 0; rv == 0 && l < CONF_LIMIT_N; l++) {
            const json_t *v = json_object_get(po, conf__limits[l].member);
            if (conf__limits[l].proc != (enum conf_proc)p || v == NULL) {
                continue;
            }
            size_t at = conf__push(d, conf__limits[l].member, 0);
            rv = conf__limit(d, v, (enum conf_limit)l, c);
            conf__pop(d, at);
        }
        conf__pop(d, old);
    }
    return rv;
}

/* A replica address used twice anywhere in the file: 1 with @where ("regions[0].replicas[1]
 * .raft") and the address, else 0. */
static int conf__addr_twice(const struct conf_cluster *c, char *msg, size_t cap)
{
    const struct conf_group *gs[CONF_MAX_REGIONS + 1];
    unsigned ng = 0;
    for (unsigned g = 0; g < c->nregions; g++) {
        gs[ng++] = &c->regions[g];
    }
    if (c->have_meta) {
        gs[ng++] = &c->meta;
    }
    for (unsigned g = 0; g < ng; g++) {
        for (unsigned i = 0; i < gs[g]->n; i++) {
            const char *mine[2] = {gs[g]->r[i].raft, gs[g]->r[i].rpc};
            for (unsigned h = 0; h <= g; h++) {
                for (unsigned j = 0; j < gs[h]->n && (h < g || j <= i); j++) {
                    const char *theirs[2] = {gs[h]->r[j].raft, gs[h]->r[j].rpc};
                    for (int a = 0; a < 2; a++) {
                        for (int b = 0; b < 2; b++) {
                            if ((h != g || j != i || b < a) && strcmp(mine[a], theirs[b]) == 0) {
                                snprintf(msg, cap, "%s replica %llu: %s %s is also %s's %s",
                                         gs[g]->id, (unsigned long long)gs[g]->r[i].id,
                                         a ? "rpc" : "raft", mine[a], gs[h]->id,
                                         b ? "rpc" : "raft");
                                return 1;
                            }
                        }
                    }
                }
            }
        }
    }
    return 0;
}

static int conf__root(struct conf__dec *d, const json_t *root, struct conf_cluster *c)
{
    static const char *const names[] = {"version", "data_dir", "regions", "meta", "routers",
                                        "tls",     "keys",     "limits",  NULL};
    static const char *const keys[] = {"keys_file", "cluster_key_file", NULL};
    static const char *const tls[] = {"cert", "key", NULL};
    int rv = conf__members(d, root, names);
    if (rv != 0) {
        return rv;
    }
    json_t *v = json_object_get(root, "version");
    if (v != NULL && (!json_is_integer(v) || json_integer_value(v) != 1)) {
        return conf__fail_at(d, "version", "expected 1 (the only version there is)");
    }
    if ((rv = conf__str(d, root, "data_dir", 0, CONF__PATH, c->data_dir, sizeof c->data_dir)) !=
        0) {
        return rv;
    }
    json_t *regs = json_object_get(root, "regions");
    size_t old = conf__push(d, "regions", 0);
    if (!json_is_array(regs) || json_array_size(regs) == 0 ||
        json_array_size(regs) > CONF_MAX_REGIONS) {
        rv = conf__fail(d, regs ? "expected an array of 1 to 16 regions" : "missing");
    }
    for (size_t i = 0; rv == 0 && i < json_array_size(regs); i++) {
        size_t at = conf__push(d, NULL, i);
        rv = conf__group(d, json_array_get(regs, i), 0, &c->regions[i]);
        for (size_t j = 0; rv == 0 && j < i; j++) {
            if (strcmp(c->regions[j].id, c->regions[i].id) == 0) {
                rv = conf__fail_at(d, "id", "this region is described twice");
            }
        }
        conf__pop(d, at);
        c->nregions += rv == 0;
    }
    conf__pop(d, old);
    if (rv == 0 && (v = json_object_get(root, "meta")) != NULL) {
        old = conf__push(d, "meta", 0);
        rv = conf__group(d, v, 1, &c->meta);
        c->have_meta = rv == 0;
        conf__pop(d, old);
    }
    if (rv == 0 && (v = json_object_get(root, "routers")) != NULL) {
        old = conf__push(d, "routers", 0);
        if (!json_is_array(v) || json_array_size(v) > CONF_MAX_ROUTERS) {
            rv = conf__fail(d, "expected an array of at most 16 routers");
        }
        for (size_t i = 0; rv == 0 && i < json_array_size(v); i++) {
            size_t at = conf__push(d, NULL, i);
            struct conf_router *r = &c->routers[i];
            rv = conf__router(d, json_array_get(v, i), r);
            for (size_t j = 0; rv == 0 && j < i; j++) {
                if (strcmp(c->routers[j].id, r->id) == 0) {
                    rv = conf__fail_at(d, "id", "this router is described twice");
                } else if (strcmp(c->routers[j].http, r->http) == 0 &&
                           strcmp(c->routers[j].host, r->host) == 0) {
                    rv = conf__fail_at(d, "http", "another router of this host listens there");
                }
            }
            conf__pop(d, at);
            c->nrouters += rv == 0;
        }
        conf__pop(d, old);
    }
    if (rv == 0 && (v = json_object_get(root, "keys")) != NULL) {
        old = conf__push(d, "keys", 0);
        if ((rv = conf__members(d, v, keys)) == 0 &&
            (rv = conf__str(d, v, "keys_file", 0, CONF__PATH, c->keys_file, sizeof c->keys_file)) ==
                0) {
            rv = conf__str(d, v, "cluster_key_file", 0, CONF__PATH, c->cluster_key_file,
                           sizeof c->cluster_key_file);
        }
        conf__pop(d, old);
    }
    if (rv == 0 && (v = json_object_get(root, "tls")) != NULL) {
        old = conf__push(d, "tls", 0);
        if ((rv = conf__members(d, v, tls)) == 0 &&
            (rv = conf__str(d, v, "cert", 0, CONF__PATH, c->tls_cert, sizeof c->tls_cert)) == 0 &&
            (rv = conf__str(d, v, "key", 0, CONF__PATH, c->tls_key, sizeof c->tls_key)) == 0 &&
            (c->tls_cert[0] == '\0') != (c->tls_key[0] == '\0')) {
            rv = conf__fail(d, "cert and key go together");
        }
        conf__pop(d, old);
    }
    if (rv == 0 && (v = json_object_get(root, "limits")) != NULL) {
        old = conf__push(d, "limits", 0);
        rv = conf__limits_read(d, v, c);
        conf__pop(d, old);
    }
    char msg[LR_ERRMSG_SIZE];
    if (rv == 0 && conf__addr_twice(c, msg, sizeof msg)) {
        rv = errmsg_set(d->errmsg, LR_EMALFORMED, "%s", msg);
    }
    return rv;
}

int conf_cluster_parse(const char *text, size_t len, const char *dir, struct conf_cluster **out,
                       char *errmsg)
{
    struct conf__dec d = {.dir = dir, .errmsg = errmsg};
    json_error_t jerr;
    int rv;
    /* Duplicate members are refused: which of two "rpc" would win is nobody's guess. */
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        return errmsg_set(errmsg, LR_EMALFORMED, "line %d column %d: %s", jerr.line, jerr.column,
                          jerr.text);
    }
    struct conf_cluster *c = calloc(1, sizeof *c);
    if (c == NULL) {
        rv = errmsg_set(errmsg, LR_ENOMEM, "out of memory");
        goto err_after_root;
    }
    rv = conf__root(&d, root, c);
    if (rv != 0) {
        goto err_after_alloc;
    }
    json_decref(root);
    *out = c;
    return 0;

err_after_alloc:
    free(c);
err_after_root:
    json_decref(root);
    assert(rv != 0);
    return rv;
}

int conf_cluster_load(const char *path, struct conf_cluster **out, char *errmsg)
{
    char dir[CONF_PATH_MAX], msg[LR_ERRMSG_SIZE];
    size_t len = 0;
    int rv;
    FILE *f = fopen(path, "re");
    if (f == NULL) {
        return errmsg_set(errmsg, LR_EIO, "%s: cannot open", path);
    }
    /* A cluster file is small: 1 MiB is far more than 16 regions of 9 replicas need. */
    char *text = malloc(1 << 20);
    if (text == NULL) {
        rv = errmsg_set(errmsg, LR_ENOMEM, "%s: out of memory", path);
        goto err_after_open;
    }
    len = fread(text, 1, 1 << 20, f);
    if (ferror(f) || len == 1 << 20) {
        rv = errmsg_set(errmsg, LR_EIO, "%s: %s", path,
                        ferror(f) ? "cannot read" : "larger than 1 MiB");
        goto err_after_text;
    }
    const char *slash = strrchr(path, '/');
    snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - path) : 1, slash ? path : ".");
    if (slash == path) {
        snprintf(dir, sizeof dir, "/");
    }
    rv = conf_cluster_parse(text, len, dir, out, msg);
    if (rv != 0) {
        errmsg_set(errmsg, rv, "%s: %s", path, msg);
        goto err_after_text;
    }
    free(text);
    fclose(f);
    return 0;

err_after_text:
    free(text);
err_after_open:
    fclose(f);
    assert(rv != 0);
    return rv;
}

void conf_cluster_free(struct conf_cluster *c)
{
    free(c);
}

const struct conf_group *conf_cluster_group(const struct conf_cluster *c, const char *id)
{
    if (strcmp(id, "meta") == 0) {
        return c->have_meta ? &c->meta : NULL;
    }
    for (unsigned g = 0; g < c->nregions; g++) {
        if (strcmp(c->regions[g].id, id) == 0) {
            return &c->regions[g];
        }
    }
    return NULL;
}

const struct conf_replica *conf_group_replica(const struct conf_group *g, uint64_t id)
{
    for (unsigned i = 0; i < g->n; i++) {
        if (g->r[i].id == id) {
            return &g->r[i];
        }
    }
    return NULL;
}

const struct conf_router *conf_cluster_router(const struct conf_cluster *c, const char *id)
{
    for (unsigned i = 0; i < c->nrouters; i++) {
        if (strcmp(c->routers[i].id, id) == 0) {
            return &c->routers[i];
        }
    }
    return NULL;
}
