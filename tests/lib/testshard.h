/* tests/lib/testshard.h — driving a real shard from tests: building commands, applying them as
 * raft entries, and reading msgpack answers by key. */
#ifndef LAUREL_TESTSHARD_H
#define LAUREL_TESTSHARD_H

#include <msgpack.h>
#include <stdint.h>

#include "shard/shard.h"

#define ts_s lr_str_of /* tests spell it short */

/* Command builders (strings are borrowed until the command is applied). */
struct cmd ts_player(int64_t ts, const char *id, const char *region, const char *guild);
struct cmd ts_game(int64_t ts, const char *game);
struct cmd ts_ach(int64_t ts, const char *game, const char *ach, int64_t points, int64_t steps,
                  int hidden);
struct cmd ts_board(int64_t ts, const char *board, int order, int op, unsigned windows,
                    int64_t reset_s);
struct cmd ts_score(int64_t ts, const char *board, const char *player, int64_t score, int64_t sub,
                    const char *idem);
struct cmd ts_unlock(int64_t ts, const char *player, const char *game, const char *ach,
                     int64_t steps, const char *idem);
struct cmd ts_grant(int64_t ts, const char *board, int64_t cycle, const char *player, int64_t rank,
                    const char *reward);
struct cmd ts_claim(int64_t ts, const char *player, const char *board, int64_t cycle,
                    const char *idem);

/** One command's outcome. */
struct ts_result {
    int status;
    int replayed;
    msgpack_unpacked body; /* the answer as a msgpack object */
    char *raw;             /* the bytes it borrows from (msgpack-c does not copy strings) */
};

/** Copy @len bytes of msgpack at @buf and unpack them into @u (initialised here); fails the
 * test unless they hold a value. Returns the copy, which @u borrows (free it after @u). */
char *ts_unpack(msgpack_unpacked *u, const char *buf, size_t len);

#define TS_MAX_RESULTS 1024
#define TS_MAX_EVENTS 4096

/** Collects what apply produced. */
struct ts_apply {
    struct ts_result res[TS_MAX_RESULTS];
    uint32_t nres;
    msgpack_unpacked ev[TS_MAX_EVENTS];
    char *evraw[TS_MAX_EVENTS];
    uint32_t nev;
};

/**
 * Encode @cmds as one entry at index ++*@index, apply it, commit, and collect results and
 * events into @out (reset first; free with ts_apply_free). Fails the test on a fatal error.
 */
void ts_apply(struct shard *s, uint64_t *index, const struct cmd *cmds, uint32_t n,
              struct ts_apply *out);
void ts_apply_free(struct ts_apply *a);

/** Apply a single command and return its status (results freed). */
int ts_apply1(struct shard *s, uint64_t *index, struct cmd c);

/** Run @q; on success *@out holds the answer (release with ts_answer_free). Returns rv. */
struct ts_answer {
    msgpack_unpacked u;
    msgpack_object data; /* == u.data */
    msgpack_sbuffer buf;
};
int ts_query(struct shard *s, const struct shard_query *q, struct ts_answer *out, char *errmsg);
void ts_answer_free(struct ts_answer *a);
/** For other state machines' queries: init @out, let the query append to out->buf, then
 * ts_answer_check with its rv parses the answer (or checks nothing was left). Returns rv. */
void ts_answer_init(struct ts_answer *out);
int ts_answer_check(struct ts_answer *out, int rv);

/* Map lookups on a msgpack object; fail the test if the key is missing or has another type. */
const msgpack_object *ts_get(const msgpack_object *map, const char *key);
int64_t ts_i64(const msgpack_object *map, const char *key);
int ts_bool(const msgpack_object *map, const char *key);
double ts_f64(const msgpack_object *map, const char *key);
/** String (or bin) value copied into a static buffer of the caller (@buf of @cap bytes). */
const char *ts_str(const msgpack_object *map, const char *key, char *buf, size_t cap);
int ts_is_nil(const msgpack_object *map, const char *key);

#endif
