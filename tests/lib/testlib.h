/* tests/lib/testlib.h — helpers shared by laurel's tests. */
#ifndef LAUREL_TESTLIB_H
#define LAUREL_TESTLIB_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/** Deterministic PRNG (splitmix64) so a failing seed can be replayed. */
struct testrng {
    uint64_t s;
};
uint64_t testrng_next(struct testrng *r);
/** Uniform in [0, n). */
uint64_t testrng_below(struct testrng *r, uint64_t n);

/** Seed from $LAUREL_SEED or @fallback, printed so failures can be replayed. */
uint64_t testlib_seed(uint64_t fallback);

/** Make a fresh temporary directory (mkdtemp under $TMPDIR); the caller owns the string. */
char *testlib_tmpdir(void);

/** rm -rf @path (test cleanup only). */
void testlib_rmrf(const char *path);

/**
 * Check that nothing under @dir (itself included) grants group or other any permission,
 * skipping entries whose name starts with @skip (NULL: none). 0, or -1 with the first
 * offender and its mode in @bad (@cap bytes).
 */
int testlib_private_tree(const char *dir, const char *skip, char *bad, size_t cap);

/** 1 if process @pid's command line (/proc/PID/cmdline, every argument) contains @needle. */
int testlib_cmdline_has(int pid, const char *needle);

/**
 * Start @argv (argv[0] the binary's path, NULL-terminated) with stdout and stderr appended to
 * @logpath. The child gets SIGKILL when the test dies (PR_SET_PDEATHSIG): a crashed test
 * leaves no process holding its ports, or the descriptors it inherited (such as a CPU lock
 * held by whoever ran ctest). @return its pid, or -1.
 */
int testlib_spawn(const char *const *argv, const char *logpath);

/** testlib_spawn, then wait for it to exit. @return its exit code, or -1 (killed, or not
 * started). */
int testlib_run(const char *const *argv, const char *logpath);

#endif
