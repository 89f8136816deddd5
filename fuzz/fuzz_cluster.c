/* fuzz/fuzz_cluster.c — the cluster file (conf/cluster.h) through conf_cluster_parse, as read
 * from an operator's disk by every process started with --config.
 *
 * What the decoder accepts must hold what its header promises: 1..CONF_MAX_REGIONS regions
 * of 1..CONF_MAX_REPLICAS replicas with ids >= 1 unique in their group, addresses that are
 * HOST:PORT, region ids unique and none "meta", router ids unique, and relative paths joined
 * to the folder given. Anything else is a bug in the decoder. */
#include "conf/cluster.h"
#include "fuzz/fuzz.h"
#include "lib/addr.h"
#include "lib/err.h"

static void fuzz_cluster__group(const struct conf_group *g)
{
    if (g->n < 1 || g->n > CONF_MAX_REPLICAS) {
        abort();
    }
    for (unsigned i = 0; i < g->n; i++) {
        if (g->r[i].id == 0 || !addr_valid(g->r[i].raft) || !addr_valid(g->r[i].rpc) ||
            conf_group_replica(g, g->r[i].id) != &g->r[i]) {
            abort(); /* a bad address or a repeated id got through */
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_copy(data, size);
    char errmsg[LR_ERRMSG_SIZE];
    struct conf_cluster *c = NULL;
    int rv = conf_cluster_parse(s, size, "/etc/laurel", &c, errmsg);
    if (rv == 0) {
        if (c->nregions < 1 || c->nregions > CONF_MAX_REGIONS) {
            abort();
        }
        for (unsigned g = 0; g < c->nregions; g++) {
            fuzz_cluster__group(&c->regions[g]);
            if (conf_cluster_group(c, c->regions[g].id) != &c->regions[g]) {
                abort(); /* "meta" or a repeated region id */
            }
        }
        if (c->have_meta) {
            fuzz_cluster__group(&c->meta);
        }
        for (unsigned r = 0; r < c->nrouters; r++) {
            if (conf_cluster_router(c, c->routers[r].id) != &c->routers[r] ||
                !addr_valid(c->routers[r].http)) {
                abort();
            }
        }
        if (c->keys_file[0] != '\0' && c->keys_file[0] != '/') {
            abort(); /* a relative path not joined to the folder */
        }
        conf_cluster_free(c);
    } else if (rv != LR_EMALFORMED && rv != LR_ENOMEM) {
        abort();
    }
    free(s);
    return 0;
}
