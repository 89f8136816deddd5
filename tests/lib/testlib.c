/* tests/lib/testlib.c — shared test helpers. */
#include "tests/lib/testlib.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/stat.h>
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

int testlib_private_tree(const char *dir, const char *skip, char *bad, size_t cap)
{
    struct stat st;
    if (lstat(dir, &st) != 0) {
        snprintf(bad, cap, "%s: cannot stat", dir);
        return -1;
    }
    if ((st.st_mode & 077) != 0) {
        snprintf(bad, cap, "%s is %04o", dir, (unsigned)(st.st_mode & 07777));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        return 0;
    }
    DIR *d = opendir(dir);
    if (d == NULL) {
        snprintf(bad, cap, "%s: cannot open", dir);
        return -1;
    }
    int rv = 0;
    for (struct dirent *e = readdir(d); rv == 0 && e != NULL; e = readdir(d)) {
        char path[4096];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0 ||
            (skip && strncmp(e->d_name, skip, strlen(skip)) == 0)) {
            continue;
        }
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        rv = testlib_private_tree(path, skip, bad, cap);
    }
    closedir(d);
    return rv;
}

int testlib_cmdline_has(int pid, const char *needle)
{
    char path[64], buf[65536];
    snprintf(path, sizeof path, "/proc/%d/cmdline", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return 0;
    }
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    /* The arguments are NUL-separated: join them with spaces so one search sees them all. */
    for (size_t i = 0; i < n; i++) {
        buf[i] = buf[i] ? buf[i] : ' ';
    }
    buf[n] = '\0';
    return strstr(buf, needle) != NULL;
}

int testlib_spawn(const char *const *argv, const char *logpath)
{
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid != 0) {
        return pid < 0 ? -1 : (int)pid;
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) { /* the test died before the line above */
        _exit(126);
    }
    int fd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0) {
        _exit(126);
    }
    execv(argv[0], (char *const *)argv);
    _exit(127);
}

int testlib_run(const char *const *argv, const char *logpath)
{
    int status, pid = testlib_spawn(argv, logpath);
    if (pid < 0 || waitpid(pid, &status, 0) != pid) {
        return -1;
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
