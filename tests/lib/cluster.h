/* tests/lib/cluster.h — a launcher of real `laurel node` processes on loopback, for tests
 * that kill, pause and restart replicas. Ports are picked free by the kernel; data and logs
 * live under one temporary directory removed by tcluster_stop. */
#ifndef LAUREL_TCLUSTER_H
#define LAUREL_TCLUSTER_H

#include <stdint.h>
#include <sys/types.h>

#include "proto/client.h"

#define TCLUSTER_MAX 5

struct tcluster_replica {
    uint64_t id;
    char raft[32], rpc[32];
    char data[600];
    char log[600];
    pid_t pid;      /* 0 when not running */
    int joined;     /* started with --join */
    char env[1100]; /* "NAME=value" put into its environment at each spawn, or "" */
};

struct tcluster {
    char dir[512];
    char region[16];
    const char *bin;
    unsigned n; /* replicas configured (voters at start: nvoters) */
    unsigned nvoters;
    unsigned election_ms;
    /* --snapshot-every and --snapshot-trailing of every replica spawned; 0: 256 and the node's
     * default (tcluster_start_snapshots sets them). */
    unsigned snapshot_every, snapshot_trailing;
    unsigned long long state_max; /* --state-max of replicas spawned from now on; 0: default */
    char host[24];                /* every replica's raft and rpc address is host:port */
    const char *args[8];          /* more `laurel node` flags for every replica (borrowed) */
    unsigned nargs;
    /* The cluster key the replicas were given (through args: --cluster-key-file), which
     * tcluster's own status calls prove; NULL: none (borrowed). */
    const struct peerauth_key *key;
    struct tcluster_replica r[TCLUSTER_MAX];
};

/** Configure @nvoters replicas (and room for more) and start them. @return 0 or -1. */
int tcluster_start(struct tcluster *c, unsigned nvoters, const char *region);

/** tcluster_start with every address on @host ("127.0.0.1", "[::1]"). @return 0 or -1. */
int tcluster_start_on(struct tcluster *c, unsigned nvoters, const char *region, const char *host);

/** tcluster_start_on without starting anything: set args, env or data paths, then
 * tcluster_spawn each replica. @return 0 or -1. */
int tcluster_init_on(struct tcluster *c, unsigned nvoters, const char *region, const char *host);

/** tcluster_start with replicas that snapshot every @every entries and keep @trailing entries
 * behind each snapshot, so a follower that misses more than that must install one. */
int tcluster_start_snapshots(struct tcluster *c, unsigned nvoters, const char *region,
                             unsigned every, unsigned trailing);

/** (Re)start replica @i (with --join if it was not an initial voter). */
int tcluster_spawn(struct tcluster *c, unsigned i);

/** Configure one more replica (not started). Returns its index. */
unsigned tcluster_add_replica(struct tcluster *c);

/** Send @sig to replica @i and reap it. */
void tcluster_kill(struct tcluster *c, unsigned i, int sig);

/** Index of the replica all running replicas agree leads, within @timeout_ms; -1 if none. */
int tcluster_leader(struct tcluster *c, int timeout_ms);

/** Status of replica @i: its applied index, digest and role ("leader", ...). @return 0 or -1. */
int tcluster_status(struct tcluster *c, unsigned i, uint64_t *applied, uint64_t *digest, char *role,
                    size_t rolelen);

/** Connect to replica @i's RPC port, proving c->key when set. @return 0 or -1; close @cl
 * with client_close either way. */
int tcluster_connect(struct tcluster *c, unsigned i, struct client *cl, int timeout_ms);

/** Wait until every running replica reports the same applied index and digest. */
int tcluster_converged(struct tcluster *c, int timeout_ms, uint64_t *applied, uint64_t *digest);

/** SIGTERM every replica, wait, remove the directory. */
void tcluster_stop(struct tcluster *c);

#endif
