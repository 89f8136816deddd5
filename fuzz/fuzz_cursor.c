/* fuzz/fuzz_cursor.c — the strings a client puts in a query string: page cursors
 * (shard/cursor.c) and windows, periods and RFC 3339 times (shard/timefmt.c).
 *
 * What a decoder accepts must encode back to the same text it read (cursors and periods are
 * canonical), so a cursor cannot name two places. */
#include "fuzz/fuzz.h"
#include "lib/err.h"
#include "shard/cursor.h"
#include "shard/timefmt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_copy(data, size);
    uint64_t seq;
    if (cursor_decode_seq(s, size, &seq) == 0) {
        char out[CURSOR_MAX];
        if (cursor_encode_seq(seq, out) != 0 || strlen(out) != size || memcmp(out, s, size)) {
            abort(); /* two texts for one cursor */
        }
    }
    uint64_t index;
    uint32_t pos;
    if (cursor_decode_pos(s, size, &index, &pos) == 0) {
        char out[CURSOR_MAX];
        if (cursor_encode_pos(index, pos, out) != 0 || strlen(out) != size ||
            memcmp(out, s, size)) {
            abort(); /* two texts for one audit cursor */
        }
    }
    struct rankkey k;
    char id[65];
    (void)cursor_decode_key(s, size, &k, id);
    enum timefmt_window w;
    (void)timefmt_window_parse(s, size, &w);
    int64_t ms, p;
    (void)timefmt_parse_rfc3339(s, size, &ms);
    for (int i = 0; i < TIMEFMT_NWINDOWS; i++) {
        (void)timefmt_period_parse((enum timefmt_window)i, s, size, &p);
    }
    free(s);
    return 0;
}
