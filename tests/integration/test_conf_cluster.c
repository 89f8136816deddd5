/* tests/integration/test_conf_cluster.c — a cluster started from one cluster file
 * (conf/cluster.h), real processes over loopback: three replicas of a region and one of the
 * metadata group (`laurel node --config FILE --region R --id N`) and a router (`laurel router
 * --config FILE --id r1`), all with their peers, data directories, key files and limits from
 * the file, whose paths are relative to its folder. Then: a flag given beside --config
 * overrides the file's value, `laurel ctl --config` finds replicas, the leader, the router and
 * the keys in the file, and an id the file does not list is refused. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "proto/client.h"
#include "tests/lib/httpc.h"
#include "tests/lib/testlib.h"

#define ADMIN "conf-admin-key-0123456"
#define API "conf-api-key-0123456789"
#define NPROCS 5 /* eu 1..3, meta 1, router r1 */

struct fixture {
    char *dir;
    char file[512], http[32], log[600];
    const char *bin;
    int pid[NPROCS + 1];
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void write_file(const char *dir, const char *name, const char *text)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, 0600);
}

static void addr(char *out, size_t cap)
{
    snprintf(out, cap, "127.0.0.1:%d", client_free_port());
}

/* The status of GET @path on @http, polled until it is @want or @ms pass. */
static int wait_status(const char *http, const char *path, const char *auth, int want, int ms)
{
    int status = -1;
    for (int waited = 0; waited < ms; waited += 100) {
        struct httpc_resp r;
        if (httpc_do(http, "GET", path, auth, NULL, &r) == 0) {
            status = r.status;
            httpc_free(&r);
            if (status == want) {
                break;
            }
        }
        sleep_ms(100);
    }
    return status;
}

static int spawn(struct fixture *f, const char *const *argv)
{
    int pid = testlib_spawn(argv, f->log);
    assert_true(pid > 0);
    return pid;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    char a[8][32];
    f->bin = getenv("LAUREL_BIN") ? getenv("LAUREL_BIN") : "./laurel";
    f->dir = testlib_tmpdir();
    for (int i = 0; i < 8; i++) {
        addr(a[i], sizeof a[i]);
    }
    addr(f->http, sizeof f->http);
    json_t *reps = json_array();
    for (int i = 0; i < 3; i++) {
        json_array_append_new(
            reps, json_pack("{s:i,s:s,s:s}", "id", i + 1, "raft", a[2 * i], "rpc", a[2 * i + 1]));
    }
    json_t *j = json_pack(
        "{s:i,s:s,s:[{s:s,s:o}],s:{s:[{s:i,s:s,s:s}]},s:[{s:s,s:s}],s:{s:s,s:s},"
        "s:{s:{s:i,s:i},s:{s:i,s:s}}}",
        "version", 1, "data_dir", "data", "regions", "id", "eu", "replicas", reps, "meta",
        "replicas", "id", 1, "raft", a[6], "rpc", a[7], "routers", "id", "r1", "http", f->http,
        "keys", "keys_file", "keys.json", "cluster_key_file", "cluster.key", "limits", "node",
        "rpc_max_conns", 100, "election_ms", 600, "router", "timeout_ms", 1500, "log_format",
        "json");
    assert_non_null(j);
    char *text = json_dumps(j, JSON_INDENT(2));
    json_decref(j);
    write_file(f->dir, "cluster.json", text);
    free(text);
    write_file(f->dir, "keys.json", "{\"admin_key\":\"" ADMIN "\",\"api_key\":\"" API "\"}\n");
    write_file(f->dir, "cluster.key", "conf-cluster-key-0123456789abcdef\n");
    char data[600];
    snprintf(data, sizeof data, "%s/data", f->dir);
    assert_int_equal(mkdir(data, 0700), 0);
    snprintf(f->file, sizeof f->file, "%s/cluster.json", f->dir);
    snprintf(f->log, sizeof f->log, "%s/procs.log", f->dir);
    for (int i = 0; i < 3; i++) {
        char id[4];
        snprintf(id, sizeof id, "%d", i + 1);
        const char *argv[] = {f->bin, "node", "--config", f->file, "--region",
                              "eu",   "--id", id,         NULL};
        f->pid[i] = spawn(f, argv);
    }
    /* "--region meta" names the metadata group in the file, as --role meta does. */
    const char *meta[] = {f->bin, "node", "--config", f->file, "--region",
                          "meta", "--id", "1",        NULL};
    f->pid[3] = spawn(f, meta);
    const char *router[] = {f->bin, "router", "--config", f->file, "--id", "r1", NULL};
    f->pid[4] = spawn(f, router);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    for (int i = 0; i <= NPROCS; i++) {
        if (f->pid[i] > 0) {
            kill(f->pid[i], SIGTERM);
            waitpid(f->pid[i], NULL, 0);
        }
    }
    testlib_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

/* The router, knowing nothing but the file and its id, reaches every group's leader, and
 * takes the keys of the file's keys_file; each replica keeps its data where the file says. */
static void started_from_the_file(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(wait_status(f->http, "/readyz", "", 200, 30000), 200);
    struct httpc_resp r;
    assert_int_equal(httpc_do(f->http, "PUT", "/v1/players/ann", API,
                              "{\"name\":\"Ann\",\"region\":\"eu\"}", &r),
                     0);
    assert_int_equal(r.status, 201);
    httpc_free(&r);
    assert_int_equal(httpc_do(f->http, "GET", "/v1/cluster", ADMIN, NULL, &r), 0);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\"eu\""));
    assert_non_null(strstr(r.body, "\"meta\""));
    httpc_free(&r);
    char path[700];
    struct stat st;
    for (int i = 1; i <= 3; i++) {
        snprintf(path, sizeof path, "%s/data/eu-%d", f->dir, i);
        assert_int_equal(stat(path, &st), 0);
    }
    snprintf(path, sizeof path, "%s/data/meta-1", f->dir);
    assert_int_equal(stat(path, &st), 0);
}

/* A flag beside --config wins over the file: a second router from the same entry, on another
 * --http, serves there. */
static void flag_overrides_file(void **state)
{
    struct fixture *f = *state;
    char http[32];
    addr(http, sizeof http);
    const char *argv[] = {f->bin, "router", "--config", f->file, "--id",
                          "r1",   "--http", http,       NULL};
    f->pid[5] = spawn(f, argv);
    assert_int_equal(wait_status(http, "/readyz", "", 200, 30000), 200);
}

/* `laurel ctl` with the file instead of addresses and keys: status of one replica, a transfer
 * sent to the leader it finds, and a router command with the file's admin key. */
static void ctl_from_the_file(void **state)
{
    struct fixture *f = *state;
    char log[700];
    snprintf(log, sizeof log, "%s/ctl.log", f->dir);
    assert_int_equal(wait_status(f->http, "/readyz", "", 200, 30000), 200);
    const char *status[] = {f->bin,     "ctl", "status",    "--config", f->file,
                            "--region", "eu",  "--replica", "2",        NULL};
    assert_int_equal(testlib_run(status, log), 0);
    const char *meta[] = {f->bin, "ctl", "status", "--config", f->file, "--region", "meta", NULL};
    assert_int_equal(testlib_run(meta, log), 0);
    const char *transfer[] = {f->bin,  "ctl",      "transfer", "--config",
                              f->file, "--region", "eu",       NULL};
    assert_int_equal(testlib_run(transfer, log), 0);
    const char *cluster[] = {f->bin, "ctl", "cluster", "--config", f->file, NULL};
    assert_int_equal(testlib_run(cluster, log), 0);
    const char *player[] = {f->bin, "ctl", "player", "get", "ann", "--config", f->file, NULL};
    assert_int_equal(testlib_run(player, log), 0);
    const char *bad[] = {f->bin,     "ctl", "status",    "--config", f->file,
                         "--region", "eu",  "--replica", "7",        NULL};
    assert_int_equal(testlib_run(bad, log), 2);
}

/* A replica or router the file does not list is refused at once, naming the file. */
static void unknown_ids_refused(void **state)
{
    struct fixture *f = *state;
    char log[700];
    snprintf(log, sizeof log, "%s/refused.log", f->dir);
    const char *node[] = {f->bin, "node", "--config", f->file, "--region", "eu", "--id", "9", NULL};
    assert_int_equal(testlib_run(node, log), 2);
    const char *region[] = {f->bin, "node", "--config", f->file, "--region",
                            "us",   "--id", "1",        NULL};
    assert_int_equal(testlib_run(region, log), 2);
    const char *router[] = {f->bin, "router", "--config", f->file, "--id", "r9", NULL};
    assert_int_equal(testlib_run(router, log), 2);
    const char *noid[] = {f->bin, "node", "--config", f->file, "--region", "eu", NULL};
    assert_int_equal(testlib_run(noid, log), 2);
    FILE *fp = fopen(log, "r");
    assert_non_null(fp);
    char text[4096];
    size_t n = fread(text, 1, sizeof text - 1, fp);
    fclose(fp);
    text[n] = '\0';
    assert_non_null(strstr(text, "region eu has no replica 9"));
    assert_non_null(strstr(text, "region us has no replica 1"));
    assert_non_null(strstr(text, "no router of that --id"));
    assert_non_null(strstr(text, "--config needs --id N"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(started_from_the_file),
        cmocka_unit_test(flag_overrides_file),
        cmocka_unit_test(ctl_from_the_file),
        cmocka_unit_test(unknown_ids_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
