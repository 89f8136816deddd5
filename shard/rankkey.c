/* shard/rankkey.c — the order's tie rule (see rankkey.h). Steps 1 to 3 are inline in the
 * header for the rank index's hot loop; the id comparison is rare and lives here. */
#include "rankkey.h"

#include <string.h>

int rankkey_cmp_id(const char *x, size_t xlen, const char *y, size_t ylen)
{
    size_t common = xlen < ylen ? xlen : ylen;
    if (common > 0) {
        int c = memcmp(x, y, common);
        if (c != 0) {
            return c < 0 ? -1 : 1;
        }
    }
    return xlen < ylen ? -1 : (xlen > ylen ? 1 : 0);
}

int rankkey_cmp(const struct rankkey *x, const char *xid, const struct rankkey *y, const char *yid)
{
    int c = rankkey_cmp3(x->a, x->b, x->t, y->a, y->b, y->t);
    return c != 0 ? c : rankkey_cmp_id(xid, x->idlen, yid, y->idlen);
}
