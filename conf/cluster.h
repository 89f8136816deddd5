/* conf/cluster.h — the cluster file: one JSON document that describes a whole deployment
 * (docs/operations.md, "The cluster file"; deploy/README.md).
 *
 * It names the regions and their replicas, the metadata group, the routers, the router's TLS
 * files, the key files and the limits of each kind of process. Every process reads the same
 * file (`--config FILE`) and finds itself in it by `--region`/`--id` (a replica) or `--id` (a
 * router). The decoder checks every field and names the first bad one by its path
 * ("regions[1].replicas[0].rpc: expected HOST:PORT"); unknown members are refused, except
 * those whose name starts with '_' (comments, other tools' notes), so a misspelt limit cannot
 * be silently ignored. Relative file paths are taken relative to the cluster file's folder.
 *
 * Not thread-safe; a decoded file is read-only and owned by whoever loaded it. */
#ifndef LAUREL_CONF_CLUSTER_H
#define LAUREL_CONF_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#define CONF_MAX_REPLICAS 9 /* NODE_MAX_PEERS, UPSTREAM_MAX_REPLICAS */
#define CONF_MAX_REGIONS 16 /* ROUTER_MAX_REGIONS */
#define CONF_MAX_ROUTERS 16
#define CONF_ID_MAX 64   /* VALID_ID_MAX: region and router ids */
#define CONF_ADDR_MAX 64 /* NODE_ADDR_MAX, with its NUL: HOST:PORT */
#define CONF_PATH_MAX 1024

/* The limits a cluster file may set, each the value of one flag of `laurel node` or `laurel
 * router` (their --help says what each means). X(process, member, flag, kind): the member of
 * "limits": {"node": {...}, "router": {...}} and the flag it becomes. Kinds: CONF_UINT, a
 * whole number 0..UINT_MAX (the flag refuses what it refuses, e.g. 0 where 0 makes no sense);
 * CONF_RATE, a whole number or "RATE/BURST"; CONF_BOOL, true adds the flag, false nothing;
 * CONF_STR, a string passed as it is. */
#define CONF_LIMITS(X)                                                                             \
    X(NODE, election_ms, "election-ms", CONF_UINT)                                                 \
    X(NODE, heartbeat_ms, "heartbeat-ms", CONF_UINT)                                               \
    X(NODE, snapshot_every, "snapshot-every", CONF_UINT)                                           \
    X(NODE, snapshot_trailing, "snapshot-trailing", CONF_UINT)                                     \
    X(NODE, state_max, "state-max", CONF_UINT)                                                     \
    X(NODE, disk_reserve_mb, "disk-reserve-mb", CONF_UINT)                                         \
    X(NODE, rpc_max_conns, "rpc-max-conns", CONF_UINT)                                             \
    X(NODE, rpc_idle_s, "rpc-idle-s", CONF_UINT)                                                   \
    X(NODE, sync, "sync", CONF_BOOL)                                                               \
    X(NODE, log_format, "log-format", CONF_STR)                                                    \
    X(ROUTER, timeout_ms, "timeout-ms", CONF_UINT)                                                 \
    X(ROUTER, ws_max_conns, "ws-max-conns", CONF_UINT)                                             \
    X(ROUTER, ws_max_per_ip, "ws-max-per-ip", CONF_UINT)                                           \
    X(ROUTER, ws_ping_ms, "ws-ping-ms", CONF_UINT)                                                 \
    X(ROUTER, ws_queue_msgs, "ws-queue-msgs", CONF_UINT)                                           \
    X(ROUTER, ws_max_gets, "ws-max-gets", CONF_UINT)                                               \
    X(ROUTER, ws_max_resumes, "ws-max-resumes", CONF_UINT)                                         \
    X(ROUTER, http_max_conns, "http-max-conns", CONF_UINT)                                         \
    X(ROUTER, http_max_per_ip, "http-max-per-ip", CONF_UINT)                                       \
    X(ROUTER, player_cache, "player-cache", CONF_UINT)                                             \
    X(ROUTER, hold_boards, "hold-boards", CONF_STR)                                                \
    X(ROUTER, limit_key_writes, "limit-key-writes", CONF_RATE)                                     \
    X(ROUTER, limit_addr_writes, "limit-addr-writes", CONF_RATE)                                   \
    X(ROUTER, limit_addr_reads, "limit-addr-reads", CONF_RATE)                                     \
    X(ROUTER, limit_table, "limit-table", CONF_UINT)                                               \
    X(ROUTER, log_requests, "log-requests", CONF_UINT)                                             \
    X(ROUTER, log_format, "log-format", CONF_STR)

enum conf_proc { CONF_NODE, CONF_ROUTER };
enum conf_kind { CONF_UINT, CONF_RATE, CONF_BOOL, CONF_STR };

enum conf_limit {
#define CONF__ENUM(proc, member, flag, kind) CONF_LIMIT_##proc##_##member,
    CONF_LIMITS(CONF__ENUM)
#undef CONF__ENUM
        CONF_LIMIT_N
};

struct conf_limit_def {
    enum conf_proc proc;
    const char *member; /* in "limits"."node" or "limits"."router" */
    const char *flag;   /* without the leading "--" */
    enum conf_kind kind;
};

/** The definition of limit @l (< CONF_LIMIT_N): a static table. */
const struct conf_limit_def *conf_limit_def(enum conf_limit l);

struct conf_replica {
    uint64_t id; /* >= 1, unique in its group */
    char raft[CONF_ADDR_MAX];
    char rpc[CONF_ADDR_MAX];
    char host[CONF_ADDR_MAX]; /* "host": the machine that runs it; default the rpc host */
};

struct conf_group {
    char id[CONF_ID_MAX + 1]; /* a region id, or "meta" */
    unsigned n;
    struct conf_replica r[CONF_MAX_REPLICAS];
};

struct conf_router {
    char id[CONF_ID_MAX + 1];
    char http[CONF_ADDR_MAX];
    char host[CONF_ADDR_MAX]; /* default the http host */
};

struct conf_cluster {
    unsigned nregions;
    struct conf_group regions[CONF_MAX_REGIONS];
    int have_meta;
    struct conf_group meta; /* id "meta" */
    unsigned nrouters;
    struct conf_router routers[CONF_MAX_ROUTERS];
    /* Absolute, or relative to the current directory when the file was parsed from memory
     * with no folder; "" when absent. */
    char data_dir[CONF_PATH_MAX];         /* "data_dir": replica data in DATA_DIR/<group>-<id> */
    char keys_file[CONF_PATH_MAX];        /* "keys"."keys_file": the router's API keys */
    char cluster_key_file[CONF_PATH_MAX]; /* "keys"."cluster_key_file" */
    char tls_cert[CONF_PATH_MAX];         /* "tls"."cert": the routers' certificate (PEM) */
    char tls_key[CONF_PATH_MAX];          /* "tls"."key" */
    /* "limits": the value of each limit given, as its flag's argument ("" for a true bool). */
    int limit_set[CONF_LIMIT_N];
    char limit[CONF_LIMIT_N][CONF_PATH_MAX];
};

/**
 * Decode the cluster file @text (@len bytes, borrowed for the call; need not be
 * NUL-terminated). Relative paths in it are joined to @dir when @dir is not NULL (the file's
 * folder); @dir is borrowed for the call.
 * @return 0 with *@out, owned by the caller (conf_cluster_free); LR_EMALFORMED with @errmsg
 * naming the field ("regions[1].replicas[0].rpc: expected HOST:PORT"), or "line L: ..." when
 * the text is not JSON; LR_ENOMEM. On error *@out is untouched.
 */
int conf_cluster_parse(const char *text, size_t len, const char *dir, struct conf_cluster **out,
                       char *errmsg);

/**
 * Read and decode the file @path (borrowed), its folder the base of relative paths.
 * @return as conf_cluster_parse, with @errmsg starting "PATH: "; LR_EIO when it cannot be read.
 */
int conf_cluster_load(const char *path, struct conf_cluster **out, char *errmsg);

/** Free @c (NULL is fine). */
void conf_cluster_free(struct conf_cluster *c);

/** The group @id ("meta" or a region id) of @c, or NULL. The result lives as long as @c. */
const struct conf_group *conf_cluster_group(const struct conf_cluster *c, const char *id);

/** Replica @id of group @g, or NULL. */
const struct conf_replica *conf_group_replica(const struct conf_group *g, uint64_t id);

/** The router @id of @c, or NULL. */
const struct conf_router *conf_cluster_router(const struct conf_cluster *c, const char *id);

#endif
