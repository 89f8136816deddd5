/* tests/lib/testlib.c — shared test helpers. */
#include "tests/lib/testlib.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

uint64_t testrng_next(struct testrng *r)
{
    uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t testrng_below(struct testrng *r, uint64_t n)
{
    return n == 0 ? 0 : testrng_next(r) % n;
}

uint64_t testlib_seed(uint64_t fallback)
{
    const char *s = getenv("LAUREL_SEED");
    uint64_t seed = s ? strtoull(s, NULL, 0) : fallback;
    fprintf(stderr, "# seed %llu (replay with LAUREL_SEED)\n", (unsigned long long)seed);
    return seed;
}

char *testlib_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char tmpl[512];
    snprintf(tmpl, sizeof tmpl, "%s/laurel-test-XXXXXX", base ? base : "/tmp");
    char *dir = mkdtemp(tmpl);
    return dir ? strdup(dir) : NULL;
}

static int testlib__rm(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void testlib_rmrf(const char *path)
{
    if (path) {
        nftw(path, testlib__rm, 16, FTW_DEPTH | FTW_PHYS);
    }
}
