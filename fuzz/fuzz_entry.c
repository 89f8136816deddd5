/* fuzz/fuzz_entry.c — a raft entry from the log (or from a peer's AppendEntries) decoded and
 * applied to a scratch shard (shard/shard.c), as raft/fsm.c does.
 *
 * One LMDB environment per process, in a temporary directory, each input applied at the next
 * index and committed: state carries from input to input, as on a replica. The input is also
 * offered to the metadata group's decoder (meta/mcmd.c). A fatal return is allowed only for
 * what the header names (a full map, which the harness grows, and I/O). */
#include <stdio.h>
#include <unistd.h>

#include "fuzz/fuzz.h"
#include "lib/err.h"
#include "meta/mcmd.h"
#include "shard/cmd.h"
#include "shard/shard.h"

struct fuzz_entry_state {
    struct shard *s;
    uint64_t index;
};

static void fuzz_entry_result(void *data, uint32_t i, int status, const char *body, size_t len,
                              int replayed)
{
    (void)data, (void)i, (void)body, (void)len, (void)replayed;
    if (status < 200 || status > 599) {
        abort();
    }
}

static void fuzz_entry_event(void *data, const char *body, size_t len)
{
    (void)data, (void)body, (void)len;
}

/* libFuzzer gives no per-process setup hook in C but this one; its state lives for the run. */
static struct fuzz_entry_state *fuzz_entry_open(void)
{
    static struct fuzz_entry_state st; /* the run's scratch shard: a harness, not laurel */
    if (st.s == NULL) {
        char dir[] = "/tmp/laurel-fuzz-entry-XXXXXX";
        char errmsg[LR_ERRMSG_SIZE];
        if (mkdtemp(dir) == NULL) {
            abort();
        }
        struct shard_config cfg = {.dir = dir, .region = "na", .map_size = 64u << 20, .fast = 1};
        if (shard_open(&cfg, &st.s, errmsg) != 0) {
            fprintf(stderr, "fuzz_entry: %s\n", errmsg);
            abort();
        }
    }
    return &st;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_entry_state *st = fuzz_entry_open();
    char *p = fuzz_copy(data, size);
    char errmsg[LR_ERRMSG_SIZE];
    struct mcmd_entry me;
    (void)mcmd_entry_decode(p, size, &me, errmsg);
    struct shard_sink sink = {st, fuzz_entry_result, fuzz_entry_event};
    for (int tries = 0; tries < 3; tries++) {
        int rv = shard_apply(st->s, st->index + 1, p, size, &sink);
        if (rv == 0) {
            rv = shard_commit(st->s);
        }
        if (rv == 0) {
            st->index++;
            break;
        }
        if (rv != LR_EMAPFULL) {
            fprintf(stderr, "fuzz_entry: apply: %s\n", err_name(rv));
            abort();
        }
        (void)shard_abort(st->s);
        if (shard_grow(st->s) != 0) {
            abort();
        }
    }
    free(p);
    return 0;
}
