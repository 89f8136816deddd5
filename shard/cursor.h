/* shard/cursor.h — opaque page cursors (API.md: "Lists page with an opaque cursor").
 *
 * A cursor is base64url (no padding) of: version byte, kind byte, payload. A board page
 * cursor carries the sort key of the last entry returned, so the next page starts strictly
 * after it however the board moved in between, and a router can hand the same cursor to every
 * region of a global merge. A history cursor carries the last item's sequence number; an audit
 * cursor the last item's raft index and position in its entry. */
#ifndef LAUREL_CURSOR_H
#define LAUREL_CURSOR_H

#include <stddef.h>
#include <stdint.h>

#include "rankidx.h"

#define CURSOR_MAX 128 /* encoded length bound, NUL included */

/** Encode board key @k (order-folded a, b, t) and player id @id into @out. */
int cursor_encode_key(const struct rankkey *k, const char *id, size_t idlen, char *out);

/**
 * Decode a board cursor into *@k (pid RANKKEY_FOREIGN, id pointing into @idbuf, which must
 * hold 65 bytes). @return 0, or LR_EINVAL for anything that is not a cursor we made.
 */
int cursor_decode_key(const char *s, size_t len, struct rankkey *k, char *idbuf);

/** Encode a position cursor: the (raft index, command position) of an audit item. */
int cursor_encode_pos(uint64_t index, uint32_t pos, char *out);

/** Decode a position cursor. @return 0 or LR_EINVAL. */
int cursor_decode_pos(const char *s, size_t len, uint64_t *index, uint32_t *pos);

/** Encode a sequence cursor. */
int cursor_encode_seq(uint64_t seq, char *out);

/** Decode a sequence cursor. @return 0 or LR_EINVAL. */
int cursor_decode_seq(const char *s, size_t len, uint64_t *seq);

#endif
