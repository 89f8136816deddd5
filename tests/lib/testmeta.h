/* tests/lib/testmeta.h — driving a real metadata state machine (meta/meta.h) from tests:
 * building commands, applying them as raft entries, reading answers (testshard.h's readers). */
#ifndef LAUREL_TESTMETA_H
#define LAUREL_TESTMETA_H

#include <msgpack.h>
#include <stdint.h>

#include "meta/meta.h"
#include "tests/lib/testshard.h"

/* Command builders (strings are borrowed until the command is applied). */
struct mcmd tmeta_claim(int64_t ts, const char *player, const char *region);
struct mcmd tmeta_catalog(int64_t ts, int kind, const char *id, const char *body);
struct mcmd tmeta_tourn(int64_t ts, const char *id, int64_t cap, int64_t start_ms, int64_t end_ms);
struct mcmd tmeta_join(int64_t ts, const char *tournament, const char *player);
struct mcmd tmeta_close(int64_t ts, const char *board, int64_t cycle, const char *record);
struct mcmd tmeta_region_put(int64_t ts, const char *region, const char *rpc);

#define TMETA_MAX_RESULTS 256

/** What one entry answered, command by command. */
struct tmeta_apply {
    struct ts_result res[TMETA_MAX_RESULTS];
    uint32_t nres;
};

/** Encode @cmds as one padded entry into @sb (initialised here; the caller destroys it). */
void tmeta_entry(const struct mcmd *cmds, uint32_t n, msgpack_sbuffer *sb);

/** Apply @cmds as the entry of @index inside the open group, without committing; results
 * into @out (reset first). Fails the test on a fatal error. */
void tmeta_apply_at(struct meta *m, uint64_t index, const struct mcmd *cmds, uint32_t n,
                    struct tmeta_apply *out);

/** tmeta_apply_at at ++*@index, then commit. */
void tmeta_apply(struct meta *m, uint64_t *index, const struct mcmd *cmds, uint32_t n,
                 struct tmeta_apply *out);
void tmeta_apply_free(struct tmeta_apply *a);

/** Run @q; on success *@out holds the answer (release with ts_answer_free). Returns rv. */
int tmeta_query(struct meta *m, const struct meta_query *q, struct ts_answer *out, char *errmsg);

#endif
