/* tests/integration/test_dev.c — `laurel dev` as a user runs it: a cluster comes up with its
 * metadata group, answers ready, lists its processes in dev.json, shows the group in
 * /v1/cluster, stays ready when a metadata replica dies, keeps its keys and ports across a
 * restart (and adopts a cluster.json written before it ran a metadata group), and SIGTERM
 * leaves no process behind. Its keys never show in ps, and its data is the user's alone. */
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/client.h"
#include "tests/lib/httpc.h"
#include "tests/lib/testlib.h"

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static pid_t start_dev(const char *dir, const char *http)
{
    const char *bin = getenv("LAUREL_BIN") ? getenv("LAUREL_BIN") : "build/laurel";
    pid_t pid = fork();
    if (pid == 0) {
        /* The cluster dies with the test: a failed assertion must not leave it running (and
         * holding whatever descriptors the test inherited). */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        char log[600];
        snprintf(log, sizeof log, "%s.out", dir);
        if (freopen(log, "a", stdout) == NULL || freopen(log, "a", stderr) == NULL) {
            _exit(126);
        }
        execl(bin, bin, "dev", "--data", dir, "--http", http, "--regions", "eu,na", "--replicas",
              "3", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Where dev.json puts the replicas of one group, by replica number - 1. */
struct group {
    pid_t pid[3];
    char rpc[3][32];
    unsigned n;
};

/* Read @dir/dev.json into @regions (eu and na, in that order) and @meta, checking every
 * process's fields on the way; the router is @dev. */
static void read_manifest(const char *dir, pid_t dev, struct group *regions, struct group *meta)
{
    char path[700];
    snprintf(path, sizeof path, "%s/dev.json", dir);
    json_t *j = json_load_file(path, 0, NULL), *p;
    assert_non_null(j);
    json_t *procs = json_object_get(j, "processes");
    assert_int_equal(json_array_size(procs), 10); /* 2 regions x 3, meta x 3, the router */
    memset(regions, 0, 2 * sizeof *regions);
    memset(meta, 0, sizeof *meta);
    size_t i;
    json_array_foreach(procs, i, p)
    {
        const char *role = json_string_value(json_object_get(p, "role"));
        const char *region = json_string_value(json_object_get(p, "region"));
        json_int_t replica = json_integer_value(json_object_get(p, "replica"));
        struct group *g = NULL;
        assert_non_null(role);
        if (strcmp(role, "router") == 0) {
            assert_int_equal(json_integer_value(json_object_get(p, "pid")), dev);
            continue;
        }
        assert_non_null(region);
        if (strcmp(role, "meta") == 0) {
            assert_string_equal(region, "meta");
            g = meta;
        } else {
            assert_string_equal(role, "node");
            g = strcmp(region, "eu") == 0 ? &regions[0] : &regions[1];
            assert_string_equal(region, g == regions ? "eu" : "na");
        }
        assert_true(replica >= 1 && replica <= 3 && g->pid[replica - 1] == 0);
        assert_non_null(json_string_value(json_object_get(p, "raft")));
        assert_non_null(json_string_value(json_object_get(p, "rpc")));
        g->pid[replica - 1] = (pid_t)json_integer_value(json_object_get(p, "pid"));
        assert_true(g->pid[replica - 1] > 0);
        snprintf(g->rpc[replica - 1], sizeof g->rpc[0], "%s",
                 json_string_value(json_object_get(p, "rpc")));
        g->n++;
    }
    json_decref(j);
    assert_int_equal(regions[0].n, 3);
    assert_int_equal(regions[1].n, 3);
    assert_int_equal(meta->n, 3);
}

/* GET /v1/cluster shows the metadata group under "meta" (not among the regions), its three
 * replicas at dev.json's addresses and its leader, which is the one replica answering as
 * leader; replica @dead (0: none) is unreachable. The leader's id, or -1 without one. */
static json_int_t check_cluster_meta(const char *http, const char *admin, const struct group *meta,
                                     unsigned dead)
{
    struct httpc_resp r;
    size_t i;
    json_t *g, *rep;
    assert_int_equal(httpc_do(http, "GET", "/v1/cluster", admin, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    json_t *regions = json_object_get(r.json, "regions");
    assert_int_equal(json_array_size(regions), 2);
    json_array_foreach(regions, i, g)
    {
        assert_string_not_equal(json_string_value(json_object_get(g, "id")), "meta");
    }
    json_t *m = json_object_get(r.json, "meta");
    assert_non_null(m);
    assert_string_equal(json_string_value(json_object_get(m, "id")), "meta");
    json_t *reps = json_object_get(m, "replicas");
    assert_int_equal(json_array_size(reps), 3);
    json_int_t leader = json_is_integer(json_object_get(m, "leader"))
                            ? json_integer_value(json_object_get(m, "leader"))
                            : -1;
    int leaders = 0;
    json_array_foreach(reps, i, rep)
    {
        const char *role = json_string_value(json_object_get(rep, "role"));
        assert_string_equal(json_string_value(json_object_get(rep, "address")), meta->rpc[i]);
        assert_non_null(role);
        if (i + 1 == dead) {
            assert_string_equal(role, "unreachable");
            assert_false(json_is_true(json_object_get(rep, "healthy")));
        } else if (strcmp(role, "leader") == 0) {
            leaders++;
            assert_int_equal(json_integer_value(json_object_get(rep, "id")), leader);
        }
    }
    assert_int_equal(leaders, leader > 0 ? 1 : 0);
    httpc_free(&r);
    return leader;
}

/* `laurel ctl status --rpc @rpc` exits 0 and prints the status of a replica of @region. */
static void check_ctl_status(const char *dir, const char *rpc, const char *region)
{
    const char *bin = getenv("LAUREL_BIN") ? getenv("LAUREL_BIN") : "build/laurel";
    char cmd[1200];
    /* dev's replicas require its cluster key, which ctl finds in DATA/keys.json. */
    snprintf(cmd, sizeof cmd, "%s ctl status --rpc %s --data %s", bin, rpc, dir);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    json_t *j = json_loadf(f, 0, NULL);
    assert_int_equal(pclose(f), 0);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "region")), region);
    assert_true(json_is_integer(json_object_get(j, "leader_id")));
    json_decref(j);
}

/* No process of the cluster (dev, which serves as the router, and every replica) carries
 * @key in its command line: what `ps` would show any local user. */
static void check_no_key_in_cmdline(pid_t dev, const struct group *regions,
                                    const struct group *meta, const char *key)
{
    assert_true(strlen(key) >= 16);
    assert_false(testlib_cmdline_has(dev, key));
    for (unsigned g = 0; g < 3; g++) {
        const struct group *grp = g < 2 ? &regions[g] : meta;
        for (unsigned i = 0; i < grp->n; i++) {
            assert_false(testlib_cmdline_has(grp->pid[i], key));
        }
    }
}

/* Nothing dev or a replica created grants group or other any permission (umask 077; the
 * directories 0700): keys.json, the logs, LMDB files, raft segments. keys.json is 0600. */
static void check_private(const char *dir)
{
    char bad[4200], path[700];
    struct stat st;
    if (testlib_private_tree(dir, NULL, bad, sizeof bad) != 0) {
        fail_msg("not private: %s", bad);
    }
    snprintf(path, sizeof path, "%s/keys.json", dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);
    /* The tree holds what it should: a replica's LMDB file and raft directory. */
    snprintf(path, sizeof path, "%s/eu-1/shard/data.mdb", dir);
    assert_int_equal(stat(path, &st), 0);
    snprintf(path, sizeof path, "%s/meta-1/raft", dir);
    assert_int_equal(stat(path, &st), 0);
}

static int wait_ready(const char *http)
{
    for (int i = 0; i < 300; i++) {
        struct httpc_resp r;
        if (httpc_do(http, "GET", "/readyz", "", NULL, &r) == 0) {
            int s = r.status;
            httpc_free(&r);
            if (s == 200) {
                return 0;
            }
        }
        sleep_ms(100);
    }
    return -1;
}

/* Up, ready, described in dev.json with its metadata group, which /v1/cluster and ctl show
 * and whose leader's death leaves the cluster ready; down on SIGTERM with every replica gone;
 * same keys and ports after a restart, also from a cluster.json without the group. */
static void dev_cluster_lifecycle(void **state)
{
    (void)state;
    char *dir = testlib_tmpdir(), path[700], http[32];
    struct group regions[2], meta, again[2], meta2;
    snprintf(http, sizeof http, "127.0.0.1:%d", client_free_port());
    pid_t dev = start_dev(dir, http);
    assert_int_equal(wait_ready(http), 0);
    read_manifest(dir, dev, regions, &meta);

    snprintf(path, sizeof path, "%s/keys.json", dir);
    json_t *keys = json_load_file(path, 0, NULL);
    char admin[128], api[128];
    snprintf(admin, sizeof admin, "%s", json_string_value(json_object_get(keys, "admin_key")));
    snprintf(api, sizeof api, "%s", json_string_value(json_object_get(keys, "api_key")));
    json_decref(keys);
    check_no_key_in_cmdline(dev, regions, &meta, admin);
    check_no_key_in_cmdline(dev, regions, &meta, api);
    check_private(dir);
    struct httpc_resp r;
    assert_int_equal(httpc_do(http, "PUT", "/v1/games/g1", admin, "{\"name\":\"G\"}", &r), 0);
    assert_int_equal(r.status, 201);
    httpc_free(&r);

    /* The metadata group: in /v1/cluster, and a replica like any other to `laurel ctl`. */
    json_int_t leader = check_cluster_meta(http, admin, &meta, 0);
    assert_true(leader >= 1 && leader <= 3);
    check_ctl_status(dir, meta.rpc[leader - 1], "meta");
    /* Its leader dies: the other two elect another (an election timeout, about a second) and
     * the cluster is ready with the group's majority. */
    kill(meta.pid[leader - 1], SIGKILL);
    json_int_t next = -1;
    for (int i = 0; i < 100 && next < 0; i++) {
        sleep_ms(100);
        next = check_cluster_meta(http, admin, &meta, (unsigned)leader);
    }
    assert_true(next >= 1 && next != leader);
    assert_int_equal(wait_ready(http), 0);

    kill(dev, SIGTERM);
    int status;
    assert_int_equal(waitpid(dev, &status, 0), dev);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    for (unsigned g = 0; g < 3; g++) {
        const struct group *grp = g < 2 ? &regions[g] : &meta;
        for (unsigned i = 0; i < 3; i++) {
            assert_int_equal(kill(grp->pid[i], 0), -1); /* every replica is gone */
        }
    }

    /* Restart from a data dir of before the metadata group: no "meta" in cluster.json, no
     * meta-<n> directories. The regions keep their ports and data (the same keys work and the
     * catalog is still there); the group gets ports of its own, written back. */
    snprintf(path, sizeof path, "%s/cluster.json", dir);
    json_t *layout = json_load_file(path, 0, NULL);
    assert_int_equal(json_object_del(layout, "meta"), 0);
    assert_int_equal(json_dump_file(layout, path, 0), 0);
    json_decref(layout);
    for (unsigned i = 1; i <= 3; i++) {
        char mdir[800];
        snprintf(mdir, sizeof mdir, "%s/meta-%u", dir, i);
        testlib_rmrf(mdir);
    }
    dev = start_dev(dir, http);
    assert_int_equal(wait_ready(http), 0);
    read_manifest(dir, dev, again, &meta2);
    for (unsigned g = 0; g < 2; g++) {
        for (unsigned i = 0; i < 3; i++) {
            assert_string_equal(again[g].rpc[i], regions[g].rpc[i]);
        }
    }
    layout = json_load_file(path, 0, NULL);
    json_t *saved = json_array_get(json_object_get(json_object_get(layout, "meta"), "replicas"), 0);
    assert_string_equal(json_string_value(json_object_get(saved, "rpc")), meta2.rpc[0]);
    json_decref(layout);
    /* The catalog the regions hold is still served. (A put of it now would be versioned by the
     * new group's log, which starts again at 1: docs/api.md, "Catalog versions", says such a
     * cluster is started afresh.) */
    assert_int_equal(httpc_do(http, "GET", "/v1/games/g1", "", NULL, &r), 0);
    assert_int_equal(r.status, 200);
    httpc_free(&r);
    kill(dev, SIGTERM);
    waitpid(dev, &status, 0);
    testlib_rmrf(dir);
    free(dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {cmocka_unit_test(dev_cluster_lifecycle)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
