/* shard/valid.h — the input rules of API.md Conventions, shared by the shard's decoders and
 * (later) the router, so both reject exactly the same things. */
#ifndef LAUREL_VALID_H
#define LAUREL_VALID_H

#include <stddef.h>
#include <stdint.h>

#define VALID_ID_MAX 64
#define VALID_GAME_ID_MAX 56
#define VALID_NAME_MAX 64  /* code points */
#define VALID_DESC_MAX 512 /* code points */
#define VALID_IDEM_MIN 8
#define VALID_IDEM_MAX 128
#define VALID_METADATA_MAX 256
#define VALID_REWARD_MAX 64
#define VALID_SCORE_MAX 9007199254740991LL /* 2^53 - 1 */

/** 1 if @s is 1..@max chars of [A-Za-z0-9_.-]. */
int valid_id(const char *s, size_t len, size_t max);

/** 1 if @s is valid UTF-8 of @min..@max code points with no NUL and no control characters
 * other than tab and newline. */
int valid_text(const char *s, size_t len, size_t min, size_t max);

/** 1 if @s is an idempotency key: 8..128 printable ASCII characters. */
int valid_idem(const char *s, size_t len);

/** 1 if -(2^53-1) <= @v <= 2^53-1. */
int valid_score(int64_t v);

#endif
