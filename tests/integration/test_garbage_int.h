/* tests/integration/test_garbage_int.h — what the files of the test_garbage binary share:
 * the scale of a run, the fixture (seed entries and the buffers the generators fill), and the
 * generators and checks (test_garbage.c, test_garbage_decode.c) the other files call. */
#ifndef LAUREL_TEST_GARBAGE_INT_H
#define LAUREL_TEST_GARBAGE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "shard/cmd.h"
#include "tests/lib/testlib.h"

#define TS0 1795350660123LL
#define TS_MAX 253402300799999LL
#define N_RANDOM 200000
#define N_MUTATED 100000
#define N_STRINGS 200000
#define N_MP 200000
#define GROUP 1000 /* entries per group commit on the first replica */

/* Group state: the seed and the scale, read once per run. */
struct group {
    uint64_t seed;
    unsigned pct;
};

/* A byte buffer owned by the test. */
struct buf {
    char *p;
    size_t n, cap;
};

#define NSEEDS 16

struct fixture {
    struct group *g;
    struct testrng rng;
    msgpack_sbuffer sb; /* scratch for encoding */
    msgpack_packer pk;
    struct buf seeds[NSEEDS]; /* valid encoded entries */
    uint32_t nseeds;
    struct buf m;  /* the current mutation */
    int64_t clock; /* ts of the last random command */
    /* What the decoders answered, so the test can check it reached deep code. */
    uint64_t entries_ok, entries_bad, cmds_ok, cmds_bad;
};

/* Bytes on msgpack's type boundaries, for the mutations and the msgpack reader's garbage.
 * Defined here, a copy in each file, so that the users can take its size. */
static const unsigned char interesting[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0xc0, 0xc1, 0xc2,
                                            0xc3, 0xcc, 0xcf, 0xd0, 0xd3, 0xd9, 0xdb, 0xdc,
                                            0xdd, 0xde, 0xdf, 0x90, 0x9f, 0xa0, 0xbf, 0xe0};

/* test_garbage.c: scale, buffers and the generators (described where defined) */
uint64_t scaled(const struct fixture *f, uint64_t n);
void buf_set(struct buf *b, const void *p, size_t n);
void mutate(struct fixture *f);
void pack_random(struct fixture *f, int depth);
void random_valid_entry(struct fixture *f, int64_t *clock);
void random_entry(struct fixture *f);

/* test_garbage_decode.c: garbage into the decoders and parsers */
uint32_t decode_check(struct fixture *f, const char *buf, size_t len);
void random_buffers_into_decoders(void **state);
void mutated_entries_into_decoders(void **state);
void random_strings_into_cursors(void **state);
void random_strings_into_time_parsers(void **state);
void random_bytes_into_mp_reader(void **state);

/* test_garbage_shard.c: garbage into the real shard */
void mutated_entries_into_shard(void **state);
void abort_before_first_commit_forgets_the_group(void **state);
void full_map_grows_and_retries(void **state);

#endif
