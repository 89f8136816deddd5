/* cli/cli_conf.c — `--config FILE`: what the cluster file (conf/cluster.h) tells one process,
 * turned into the flags that process already takes.
 *
 * The file's values become flags placed before the command line's own: every value then
 * passes through the one parser and the one set of checks each flag has, and a flag given on
 * the command line, read later, overrides the file's. The repeatable flags that describe the
 * cluster (--peer of a replica, --region and --meta of a router) are the exception: the file
 * gives them only when the command line gives none, since adding the file's peers to the
 * operator's would mix two clusters. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

void cli_argv_free(struct cli_argv *a)
{
    for (int i = 0; i < a->argc; i++) {
        free(a->argv[i]);
    }
    free(a->argv);
    memset(a, 0, sizeof *a);
}

/* Append one argument, printf-style. 0, or -1 when out of memory. */
static int cli_conf__add(struct cli_argv *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int cli_conf__add(struct cli_argv *a, const char *fmt, ...)
{
    if (a->argc + 2 > a->cap) {
        int cap = a->cap ? 2 * a->cap : 32;
        char **p = realloc(a->argv, (size_t)cap * sizeof *p);
        if (p == NULL) {
            return -1;
        }
        a->argv = p;
        a->cap = cap;
    }
    va_list ap;
    va_start(ap, fmt);
    int rv = vasprintf(&a->argv[a->argc], fmt, ap);
    va_end(ap);
    if (rv < 0) {
        return -1;
    }
    a->argv[++a->argc] = NULL;
    return 0;
}

/* The file's limits of @proc, as flags. */
static int cli_conf__limits(struct cli_argv *a, const struct conf_cluster *c, enum conf_proc proc)
{
    int rv = 0;
    for (int l = 0; rv == 0 && l < CONF_LIMIT_N; l++) {
        const struct conf_limit_def *def = conf_limit_def((enum conf_limit)l);
        if (def->proc != proc || !c->limit_set[l]) {
            continue;
        }
        rv = def->kind == CONF_BOOL ? cli_conf__add(a, "--%s", def->flag)
                                    : cli_conf__add(a, "--%s=%s", def->flag, c->limit[l]);
    }
    return rv;
}

/* The command line's own arguments after the file's. */
static int cli_conf__rest(struct cli_argv *a, int argc, char **argv)
{
    int rv = 0;
    for (int i = 1; rv == 0 && i < argc; i++) {
        rv = cli_conf__add(a, "%s", argv[i]);
    }
    return rv;
}

int cli_conf_node_argv(const char *path, const struct conf_cluster *c, const char *group,
                       uint64_t id, int own_peers, int argc, char **argv, struct cli_argv *out)
{
    const struct conf_group *g = conf_cluster_group(c, group);
    if (g == NULL || conf_group_replica(g, id) == NULL) {
        fprintf(stderr, "laurel node: %s: %s%s has no replica %llu\n", path,
                strcmp(group, "meta") == 0 ? "" : "region ", g ? g->id : group,
                (unsigned long long)id);
        return 2;
    }
    int rv = cli_conf__add(out, "%s", argv[0]);
    for (unsigned i = 0; rv == 0 && !own_peers && i < g->n; i++) {
        rv = cli_conf__add(out, "--peer=%llu=%s,%s", (unsigned long long)g->r[i].id, g->r[i].raft,
                           g->r[i].rpc);
    }
    if (rv == 0 && c->data_dir[0]) {
        rv = cli_conf__add(out, "--data=%s/%s-%llu", c->data_dir, g->id, (unsigned long long)id);
    }
    if (rv == 0 && c->cluster_key_file[0]) {
        rv = cli_conf__add(out, "--cluster-key-file=%s", c->cluster_key_file);
    }
    rv = rv ? rv : cli_conf__limits(out, c, CONF_NODE);
    rv = rv ? rv : cli_conf__rest(out, argc, argv);
    if (rv != 0) {
        fprintf(stderr, "laurel node: out of memory\n");
        cli_argv_free(out);
        return 1;
    }
    return 0;
}

/* "ID=RPC,RPC..." of group @g (without "ID=" for the metadata group). */
static int cli_conf__group_spec(struct cli_argv *a, const struct conf_group *g, int meta)
{
    char spec[CONF_MAX_REPLICAS * CONF_ADDR_MAX + CONF_ID_MAX + 16];
    size_t n = 0;
    if (!meta) {
        n += (size_t)snprintf(spec, sizeof spec, "%s=", g->id);
    }
    for (unsigned i = 0; i < g->n; i++) {
        n += (size_t)snprintf(spec + n, sizeof spec - n, "%s%s", i ? "," : "", g->r[i].rpc);
    }
    return cli_conf__add(a, meta ? "--meta=%s" : "--region=%s", spec);
}

int cli_conf_router_argv(const char *path, const struct conf_cluster *c, const char *id,
                         int own_groups, int has_tls, int argc, char **argv, struct cli_argv *out)
{
    const struct conf_router *r = NULL;
    if (c->nrouters > 0 || id != NULL) {
        r = id ? conf_cluster_router(c, id) : NULL;
        if (r == NULL) {
            fprintf(stderr, "laurel router: %s: %s\n", path,
                    id ? "no router of that --id in \"routers\"" : "--id ID names the router");
            return 2;
        }
    }
    if (c->tls_cert[0] && !has_tls) {
        /* Refused rather than ignored: serving plain HTTP where the file asks for TLS would
         * send keys in clear. */
        fprintf(stderr,
                "laurel router: %s: tls: this laurel has no --tls-cert/--tls-key; terminate TLS "
                "in front of it (deploy/README.md) and drop \"tls\" from the file\n",
                path);
        return 2;
    }
    int rv = cli_conf__add(out, "%s", argv[0]);
    if (rv == 0 && r != NULL) {
        rv = cli_conf__add(out, "--http=%s", r->http);
    }
    for (unsigned g = 0; rv == 0 && !own_groups && g < c->nregions; g++) {
        rv = cli_conf__group_spec(out, &c->regions[g], 0);
    }
    if (rv == 0 && !own_groups && c->have_meta) {
        rv = cli_conf__group_spec(out, &c->meta, 1);
    }
    if (rv == 0 && c->keys_file[0]) {
        rv = cli_conf__add(out, "--keys-file=%s", c->keys_file);
    }
    if (rv == 0 && c->cluster_key_file[0]) {
        rv = cli_conf__add(out, "--cluster-key-file=%s", c->cluster_key_file);
    }
    if (rv == 0 && c->tls_cert[0]) {
        rv = cli_conf__add(out, "--tls-cert=%s", c->tls_cert);
        rv = rv ? rv : cli_conf__add(out, "--tls-key=%s", c->tls_key);
    }
    rv = rv ? rv : cli_conf__limits(out, c, CONF_ROUTER);
    rv = rv ? rv : cli_conf__rest(out, argc, argv);
    if (rv != 0) {
        fprintf(stderr, "laurel router: out of memory\n");
        cli_argv_free(out);
        return 1;
    }
    return 0;
}
