/* bench/bench_shard.c — the shard benches: apply throughput and the snapshot copy.
 *
 * Apply runs the real shard on a real LMDB environment in a temporary directory, in the mode
 * a replica runs it (fast: the raft log is the durable record, docs/durability.md), and
 * commits once per entry, so the figure for 1 command per entry is the cost of a commit and
 * the figure for 1024 is the cost of apply itself. Entries are encoded before the clock
 * starts. The snapshot bench fills a shard with one board of @n scored players, then times
 * shard_copy (what a raft snapshot is) into a memory file. `laurel bench shard` and `laurel
 * bench rpc` (bench.c) run them. Nothing here asserts a time: it prints figures. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../lib/err.h"
#include "../raft/fsm.h"
#include "../shard/shard.h"
#include "bench_int.h"

#define BENCH_SHARD__PLAYERS 100000

struct bench_shard__rng {
    uint64_t s;
};

static uint64_t bench_shard__next(struct bench_shard__rng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double bench_shard__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Encode one entry of @n commands made by @make(i) into @sb. */
static int bench_shard__entry(msgpack_sbuffer *sb, uint32_t n,
                              void (*make)(struct cmd *c, uint64_t i, void *ctx), uint64_t first,
                              void *ctx)
{
    msgpack_packer pk;
    struct cmd c;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    if (cmd_entry_begin(&pk, n) != 0) {
        return LR_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++) {
        make(&c, first + i, ctx);
        if (cmd_encode(&pk, &c) != 0) {
            return LR_ENOMEM;
        }
    }
    return 0;
}

struct bench_shard__ctx {
    char ids[BENCH_SHARD__PLAYERS][16];
    struct bench_shard__rng rng;
    int64_t ts;
};

static void bench_shard__make_player(struct cmd *c, uint64_t i, void *ctx)
{
    struct bench_shard__ctx *b = ctx;
    memset(c, 0, sizeof *c);
    c->type = CMD_PLAYER_PUT;
    c->ts = b->ts;
    c->u.player_put.player_id = lr_str_of(b->ids[i]);
    c->u.player_put.name = lr_str_of(b->ids[i]);
    c->u.player_put.region = lr_str_of("bench");
    c->u.player_put.guild = lr_str_of(i % 10 == 0 ? "g1" : "");
}

static void bench_shard__make_score(struct cmd *c, uint64_t i, void *ctx)
{
    struct bench_shard__ctx *b = ctx;
    (void)i;
    memset(c, 0, sizeof *c);
    c->type = CMD_SCORE;
    c->ts = b->ts++;
    c->u.score.board_id = lr_str_of("arena");
    c->u.score.player_id = lr_str_of(b->ids[bench_shard__next(&b->rng) % BENCH_SHARD__PLAYERS]);
    c->u.score.score = (int64_t)(bench_shard__next(&b->rng) % 1000000000);
    c->u.score.subscore = 0;
    c->u.score.metadata = lr_str_of("");
    c->u.score.idempotency_key = lr_str_of("");
}

static void bench_shard__make_board(struct cmd *c, uint64_t i, void *ctx)
{
    struct bench_shard__ctx *b = ctx;
    (void)i;
    memset(c, 0, sizeof *c);
    c->type = CMD_BOARD_PUT;
    c->ts = b->ts;
    c->u.board_put.board_id = lr_str_of("arena");
    c->u.board_put.order = CMD_ORDER_DESC;
    c->u.board_put.op = CMD_OP_SET;
    c->u.board_put.windows = 1;
    c->u.board_put.game_id = lr_str_of("");
}

static int bench_shard__apply_one(struct shard *s, uint64_t *index, msgpack_sbuffer *sb)
{
    int rv = shard_apply(s, ++*index, sb->data, sb->size, NULL);
    if (rv == 0) {
        rv = shard_commit(s);
    }
    if (rv != 0) {
        fprintf(stderr, "bench: apply: %s\n", shard_errmsg(s));
    }
    return rv;
}

int bench_shard_apply(void)
{
    char dir[] = "/tmp/laurel-bench-XXXXXX", errmsg[LR_ERRMSG_SIZE];
    struct shard *s = NULL;
    struct bench_shard__ctx *b = calloc(1, sizeof *b);
    msgpack_sbuffer sb;
    uint64_t index = 0;
    int rv;
    static const uint32_t batch[3] = {1, 64, 1024};
    static const uint32_t entries[3] = {20000, 2000, 200};
    if (b == NULL || mkdtemp(dir) == NULL) {
        free(b);
        return LR_EIO;
    }
    struct shard_config cfg = {dir, "bench", 1ULL << 30, 1};
    if ((rv = shard_open(&cfg, &s, errmsg)) != 0) {
        fprintf(stderr, "bench: %s\n", errmsg);
        goto out;
    }
    msgpack_sbuffer_init(&sb);
    b->ts = 1795000000000LL;
    b->rng.s = 42;
    for (int i = 0; i < BENCH_SHARD__PLAYERS; i++) {
        snprintf(b->ids[i], sizeof b->ids[i], "player%06d", i);
    }
    if ((rv = bench_shard__entry(&sb, 1, bench_shard__make_board, 0, b)) != 0 ||
        (rv = bench_shard__apply_one(s, &index, &sb)) != 0) {
        goto out_sb;
    }
    for (uint64_t i = 0; i < BENCH_SHARD__PLAYERS; i += 1000) {
        msgpack_sbuffer_clear(&sb);
        if ((rv = bench_shard__entry(&sb, 1000, bench_shard__make_player, i, b)) != 0 ||
            (rv = bench_shard__apply_one(s, &index, &sb)) != 0) {
            goto out_sb;
        }
    }
    for (int k = 0; k < 3; k++) {
        msgpack_sbuffer *bufs = calloc(entries[k], sizeof *bufs);
        if (bufs == NULL) {
            rv = LR_ENOMEM;
            goto out_sb;
        }
        for (uint32_t e = 0; e < entries[k] && rv == 0; e++) {
            msgpack_sbuffer_init(&bufs[e]);
            rv = bench_shard__entry(&bufs[e], batch[k], bench_shard__make_score, 0, b);
        }
        double t0 = bench_shard__now();
        for (uint32_t e = 0; e < entries[k] && rv == 0; e++) {
            rv = bench_shard__apply_one(s, &index, &bufs[e]);
        }
        double dt = bench_shard__now() - t0;
        for (uint32_t e = 0; e < entries[k]; e++) {
            msgpack_sbuffer_destroy(&bufs[e]);
        }
        free(bufs);
        if (rv != 0) {
            goto out_sb;
        }
        printf("figure shard_apply_cps_b%u %.0f commands/s\n", batch[k],
               (double)entries[k] * batch[k] / dt);
        fflush(stdout);
    }
out_sb:
    msgpack_sbuffer_destroy(&sb);
out:
    shard_close(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "bench: could not remove %s\n", dir);
    }
    free(b);
    return rv;
}

/* Player ids for bench_shard_snapshot, made on the fly (the ctx's fixed array holds 100 K). */
struct bench_shard__snap {
    char id[2][16];
    uint64_t n;
    int64_t ts;
    int which;
};

static void bench_shard__make_snap_player(struct cmd *c, uint64_t i, void *ctx)
{
    struct bench_shard__snap *b = ctx;
    char *id = b->id[0];
    snprintf(id, 16, "s%08llu", (unsigned long long)i);
    memset(c, 0, sizeof *c);
    c->type = CMD_PLAYER_PUT;
    c->ts = b->ts;
    c->u.player_put.player_id = lr_str_of(id);
    c->u.player_put.name = lr_str_of(id);
    c->u.player_put.region = lr_str_of("bench");
    c->u.player_put.guild = lr_str_of("");
}

static void bench_shard__make_snap_score(struct cmd *c, uint64_t i, void *ctx)
{
    struct bench_shard__snap *b = ctx;
    char *id = b->id[1];
    snprintf(id, 16, "s%08llu", (unsigned long long)i);
    memset(c, 0, sizeof *c);
    c->type = CMD_SCORE;
    c->ts = b->ts;
    c->u.score.board_id = lr_str_of("arena");
    c->u.score.player_id = lr_str_of(id);
    c->u.score.score = (int64_t)(i * 2654435761u % 1000000007u);
    c->u.score.metadata = lr_str_of("");
    c->u.score.idempotency_key = lr_str_of("");
}

/* ---- the loop's stall while a snapshot is taken ------------------------------------------- */

#define BENCH_SHARD__STALL_CMDS 100 /* scores per entry of the stand-in loop */

struct bench_shard__worker {
    struct raft_fsm *rf;
    struct raft_buffer *bufs;
    unsigned n_bufs;
    int rv;
    atomic_int done;
};

static void *bench_shard__worker_run(void *data)
{
    struct bench_shard__worker *w = data;
    w->rv = w->rf->snapshot_async(w->rf, &w->bufs, &w->n_bufs);
    atomic_store(&w->done, 1);
    return NULL;
}

/* One entry of BENCH_SHARD__STALL_CMDS scores to existing players on @f's shard; its time. */
static double bench_shard__turn(struct fsm *f, uint64_t *index, uint64_t n, uint64_t *next,
                                msgpack_sbuffer *sb, struct bench_shard__snap *b, int *rv)
{
    double t0 = bench_shard__now();
    msgpack_sbuffer_clear(sb);
    b->ts++;
    *rv = bench_shard__entry(sb, BENCH_SHARD__STALL_CMDS, bench_shard__make_snap_score,
                             *next % (n - BENCH_SHARD__STALL_CMDS), b);
    *next += 7919;
    if (*rv == 0) {
        *rv = shard_apply(f->shard, ++*index, sb->data, sb->size, NULL);
        *rv = *rv == 0 ? shard_commit(f->shard) : *rv;
        if (*rv != 0) { /* a full map too: growing it under a copy is fsm.c's business */
            fprintf(stderr, "bench: apply: %s\n", shard_errmsg(f->shard));
        }
    }
    return bench_shard__now() - t0;
}

/*
 * What a snapshot costs the loop that applies entries, on the state bench_shard_snapshot built
 * in @dir (@index its last applied entry): a stand-in loop applies entries of 100 scores back
 * to back while a snapshot is taken
 *   - as fsm.c took it before raft_fsm version 3: a compact copy and a read of it into a heap
 *     buffer, both on the loop (snapshot_stall_sync_ms: the longest turn);
 *   - as raft/fsm.c takes it now under libraft 0.15: fsm__snapshot on the loop, the copy on a
 *     worker (a thread here, libuv's pool in a replica) while the loop applies on, then
 *     snapshot_finalize on the loop (snapshot_stall_async_ms: the longest turn while the copy
 *     ran; snapshot_async_copy_ms: the worker's copy).
 * snapshot_turn_p50_ms is a turn without a snapshot, for scale.
 */
static int bench_shard__stall(const char *dir, uint64_t n, uint64_t index, const char *suffix)
{
    struct fsm f;
    char errmsg[LR_ERRMSG_SIZE];
    struct bench_shard__snap b = {.n = n, .ts = 1795000001000LL};
    msgpack_sbuffer sb;
    uint64_t next = 0;
    double turns[64], worst_sync = 0, worst_async = 0, t0, copy = 0;
    int rv = fsm_init(&f, FSM_REGION, dir, "bench", 1, NULL, errmsg);
    if (rv != 0) {
        fprintf(stderr, "bench: %s\n", errmsg);
        return rv;
    }
    /* Room to write while the copy holds its pages (a reader keeps freed pages from reuse):
     * a growth inside the measurement would time the map's growth, not the snapshot. */
    for (int g = 0; g < 2 && rv == 0; g++) {
        rv = shard_grow(f.shard);
    }
    msgpack_sbuffer_init(&sb);
    for (unsigned i = 0; i < 64 && rv == 0; i++) {
        turns[i] = bench_shard__turn(&f, &index, n, &next, &sb, &b, &rv);
    }
    for (unsigned i = 1; i < 64; i++) { /* insertion sort for the median */
        for (unsigned j = i; j > 0 && turns[j] < turns[j - 1]; j--) {
            double t = turns[j];
            turns[j] = turns[j - 1];
            turns[j - 1] = t;
        }
    }
    /* Two rounds, each way in turn: the first copy also warms the page cache for the rest. */
    for (int round = 0; round < 2 && rv == 0; round++) {
        double ws = 0, wa = 0;
        /* Before: the copy and a heap copy of it in one turn of the loop. */
        if (rv == 0) {
            struct stat st;
            int fd = memfd_create("laurel-bench-sync", MFD_CLOEXEC);
            t0 = bench_shard__now();
            rv = fd < 0 ? LR_EIO : shard_copy(f.shard, fd);
            char *heap = NULL;
            if (rv == 0 && fstat(fd, &st) == 0 && (heap = malloc((size_t)st.st_size)) != NULL &&
                pread(fd, heap, (size_t)st.st_size, 0) != st.st_size) {
                rv = LR_EIO;
            }
            ws = bench_shard__now() - t0;
            free(heap);
            if (fd >= 0) {
                close(fd);
            }
        }
        /* Now: the loop applies on while the worker copies. */
        if (rv == 0) {
            struct bench_shard__worker w = {.rf = &f.raft_fsm};
            pthread_t th;
            fsm_snapshot_on_worker(&f);
            t0 = bench_shard__now();
            rv = f.raft_fsm.snapshot(&f.raft_fsm, &w.bufs, &w.n_bufs) != 0 ? LR_EIO : 0;
            wa = bench_shard__now() - t0;
            if (rv == 0 && pthread_create(&th, NULL, bench_shard__worker_run, &w) != 0) {
                f.raft_fsm.snapshot_finalize(&f.raft_fsm, &w.bufs, &w.n_bufs);
                rv = LR_EIO;
            }
            if (rv == 0) {
                while (!atomic_load(&w.done) && rv == 0) {
                    double t = bench_shard__turn(&f, &index, n, &next, &sb, &b, &rv);
                    wa = t > wa ? t : wa;
                }
                pthread_join(th, NULL);
                copy = bench_shard__now() - t0;
                t0 = bench_shard__now();
                f.raft_fsm.snapshot_finalize(&f.raft_fsm, &w.bufs, &w.n_bufs);
                double fin = bench_shard__now() - t0;
                wa = fin > wa ? fin : wa;
                if (w.rv != 0) {
                    rv = LR_EIO;
                }
            }
        }

        worst_sync = round == 0 || ws > worst_sync ? ws : worst_sync;
        worst_async = round == 0 || wa > worst_async ? wa : worst_async;
        if (rv == 0) {
            printf("figure snapshot_round%d_stall_sync_ms_%s %.1f ms\n", round, suffix,
                   ws * 1000.0);
            printf("figure snapshot_round%d_stall_async_ms_%s %.1f ms\n", round, suffix,
                   wa * 1000.0);
        }
    }
    if (rv == 0) {
        printf("figure snapshot_turn_p50_ms_%s %.2f ms\n", suffix, turns[32] * 1000.0);
        printf("figure snapshot_stall_sync_ms_%s %.1f ms\n", suffix, worst_sync * 1000.0);
        printf("figure snapshot_stall_async_ms_%s %.1f ms\n", suffix, worst_async * 1000.0);
        printf("figure snapshot_async_copy_ms_%s %.1f ms\n", suffix, copy * 1000.0);
        printf("figure snapshot_async_bytes_%s %llu bytes\n", suffix,
               (unsigned long long)f.snapshot_bytes);
        fflush(stdout);
    }
    msgpack_sbuffer_destroy(&sb);
    fsm_close(&f);
    return rv;
}

int bench_shard_snapshot(uint64_t n, const char *suffix)
{
    char dir[] = "/tmp/laurel-bench-XXXXXX", errmsg[LR_ERRMSG_SIZE], name[64];
    struct shard *s = NULL;
    struct bench_shard__snap b = {.n = n, .ts = 1795000000000LL};
    struct bench_shard__ctx *bc = calloc(1, sizeof *bc);
    msgpack_sbuffer sb;
    uint64_t index = 0;
    int rv;
    if (bc == NULL || mkdtemp(dir) == NULL) {
        free(bc);
        return LR_EIO;
    }
    struct shard_config cfg = {dir, "bench", 1ULL << 30, 1};
    msgpack_sbuffer_init(&sb);
    if ((rv = shard_open(&cfg, &s, errmsg)) != 0) {
        fprintf(stderr, "bench: %s\n", errmsg);
        goto out;
    }
    bc->ts = b.ts;
    if ((rv = bench_shard__entry(&sb, 1, bench_shard__make_board, 0, bc)) != 0 ||
        (rv = bench_shard__apply_one(s, &index, &sb)) != 0) {
        goto out;
    }
    for (uint64_t i = 0; i < n && rv == 0; i += 1000) {
        msgpack_sbuffer_clear(&sb);
        rv = bench_shard__entry(&sb, 1000, bench_shard__make_snap_player, i, &b);
        if (rv == 0) {
            rv = bench_shard__apply_one(s, &index, &sb);
        }
        msgpack_sbuffer_clear(&sb);
        if (rv == 0) {
            rv = bench_shard__entry(&sb, 1000, bench_shard__make_snap_score, i, &b);
        }
        if (rv == 0) {
            rv = bench_shard__apply_one(s, &index, &sb);
        }
    }
    if (rv != 0) {
        goto out;
    }
    int fd = memfd_create("laurel-bench-snapshot", MFD_CLOEXEC);
    struct stat st;
    double t0 = bench_shard__now();
    rv = fd < 0 ? LR_EIO : shard_copy(s, fd);
    double dt = bench_shard__now() - t0;
    if (rv == 0 && fstat(fd, &st) == 0) {
        snprintf(name, sizeof name, "snapshot_ms_%s", suffix);
        printf("figure %s %.0f ms\n", name, dt * 1000.0);
        snprintf(name, sizeof name, "snapshot_bytes_%s", suffix);
        printf("figure %s %lld bytes\n", name, (long long)st.st_size);
        fflush(stdout);
    }
    if (fd >= 0) {
        close(fd);
    }
    if (rv == 0) {
        shard_close(s);
        s = NULL;
        rv = bench_shard__stall(dir, n, index, suffix);
    }
out:
    msgpack_sbuffer_destroy(&sb);
    shard_close(s);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) {
        fprintf(stderr, "bench: could not remove %s\n", dir);
    }
    free(bc);
    return rv;
}
