/* tests/integration/test_tls.c — `laurel dev --tls` and `laurel router --tls-cert/--tls-key`
 * as a user meets them (docs/security.md, "TLS"): the CA and the server certificate under
 * DATA/tls/ with private modes; a client that trusts the CA gets in (curl, laurel ctl, the
 * HTTP client of lib/hclient), one that does not is refused, plain HTTP and TLS 1.1 are not
 * served; WSS carries events; a restart keeps the certificates; and the router refuses to
 * start on half a pair or on files it cannot use, naming the flag.
 *
 * One dev cluster (one region, one replica) serves every test of the group, in order. Every
 * process a test starts dies with the test (PR_SET_PDEATHSIG), curl and openssl included. */
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/hclient.h"
#include "proto/client.h"
#include "tests/lib/httpc.h"
#include "tests/lib/testlib.h"

#define ADMIN "tls-test-admin-key-01"
#define API "tls-test-api-key-0002"

struct fixture {
    char dir[512]; /* the dev data directory */
    char http[32]; /* 127.0.0.1:PORT */
    char url[64];  /* https://127.0.0.1:PORT */
    char ca[600];  /* DATA/tls/ca.pem */
    const char *bin;
    pid_t dev;
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Start @argv with its stdout and stderr on a pipe (*@fd), dying with the test. */
static pid_t spawn(char *const argv[], int *fd)
{
    int p[2];
    if (pipe(p) != 0) {
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* Nothing on stdin: openssl s_client would otherwise wait for it. */
        int nul = open("/dev/null", O_RDONLY);
        dup2(nul, 0);
        dup2(p[1], 1);
        dup2(p[1], 2);
        close(p[0]);
        close(p[1]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(p[1]);
    *fd = p[0];
    return pid;
}

/* Everything @fd gives until it closes, NUL-terminated in @out (cut at @cap - 1 bytes). */
static void read_all(int fd, char *out, size_t cap)
{
    size_t len = 0;
    for (ssize_t n; len < cap - 1 && (n = read(fd, out + len, cap - 1 - len)) > 0;) {
        len += (size_t)n;
    }
    out[len] = '\0';
    close(fd);
}

/* Run @argv to its end: its exit status (-1 if it did not exit), its output in @out. */
static int run(char *const argv[], char *out, size_t cap)
{
    int fd, status;
    pid_t pid = spawn(argv, &fd);
    assert_true(pid > 0);
    read_all(fd, out, cap);
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* An HTTPS request trusting @ca (NULL: the system's store, which does not hold the dev CA).
 * The status, or -1 with @errmsg; the body into @body (when not NULL) as JSON. */
static int https(const struct fixture *f, const char *ca, const char *method, const char *path,
                 const char *key, json_t *body, json_t **out, char *errmsg)
{
    struct hclient_tls tls = {ca};
    struct hclient_resp resp;
    char *b = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct hclient_req req = {method, path, key, b, b ? strlen(b) : 0};
    json_decref(body);
    int rv = hclient_do_tls(f->http, &tls, &req, 5000, &resp, errmsg);
    free(b);
    if (rv != 0) {
        return -1;
    }
    if (out != NULL) {
        *out = json_loads(resp.body, 0, NULL);
    }
    int status = resp.status;
    hclient_resp_free(&resp);
    return status;
}

static int start_dev(struct fixture *f)
{
    f->dev = fork();
    if (f->dev == 0) {
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        char log[700];
        snprintf(log, sizeof log, "%s/dev.out", f->dir);
        if (freopen(log, "a", stdout) == NULL || freopen(log, "a", stderr) == NULL) {
            _exit(126);
        }
        execl(f->bin, f->bin, "dev", "--data", f->dir, "--http", f->http, "--tls", (char *)NULL);
        _exit(127);
    }
    /* Ready once the router answers over TLS, trusting the CA dev printed. */
    for (int waited = 0; waited < 30000; waited += 100) {
        char errmsg[LR_ERRMSG_SIZE];
        if (access(f->ca, R_OK) == 0 &&
            https(f, f->ca, "GET", "/readyz", NULL, NULL, NULL, errmsg) == 200) {
            return 0;
        }
        if (waitpid(f->dev, NULL, WNOHANG) == f->dev) {
            fprintf(stderr, "# laurel dev exited; see %s/dev.out\n", f->dir);
            f->dev = 0;
            return -1;
        }
        sleep_ms(100);
    }
    fprintf(stderr, "# laurel dev --tls not ready; see %s/dev.out\n", f->dir);
    return -1;
}

static void stop_dev(struct fixture *f)
{
    if (f->dev > 0) {
        kill(f->dev, SIGTERM);
        waitpid(f->dev, NULL, 0);
        f->dev = 0;
    }
}

static int setup(void **state)
{
    static struct fixture f;
    char *dir = testlib_tmpdir(), path[700];
    memset(&f, 0, sizeof f);
    if (dir == NULL) {
        return -1;
    }
    snprintf(f.dir, sizeof f.dir, "%s", dir);
    free(dir);
    f.bin = getenv("LAUREL_BIN") ? getenv("LAUREL_BIN") : "build/laurel";
    snprintf(f.http, sizeof f.http, "127.0.0.1:%d", client_free_port());
    snprintf(f.url, sizeof f.url, "https://%s", f.http);
    snprintf(f.ca, sizeof f.ca, "%s/tls/ca.pem", f.dir);
    /* Known keys, in the file dev reads (never on a command line). */
    snprintf(path, sizeof path, "%s/keys.json", f.dir);
    json_t *keys = json_pack("{s:s,s:s}", "admin_key", ADMIN, "api_key", API);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int rv = keys && fd >= 0 ? json_dumpfd(keys, fd, 0) : -1;
    if (fd >= 0) {
        close(fd);
    }
    json_decref(keys);
    if (rv != 0 || start_dev(&f) != 0) {
        return -1;
    }
    *state = &f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    stop_dev(f);
    if (getenv("LAUREL_KEEP") == NULL) {
        testlib_rmrf(f->dir);
    } else {
        fprintf(stderr, "# kept %s\n", f->dir);
    }
    return 0;
}

/* The CA and the server certificate are under DATA/tls/ (0700), every file 0600, and
 * dev.json tells clients the scheme and what to trust. */
static void tls_files_are_private(void **state)
{
    struct fixture *f = *state;
    static const char *const names[] = {"ca.pem", "ca-key.pem", "server.pem", "server-key.pem"};
    char path[700];
    struct stat st;
    snprintf(path, sizeof path, "%s/tls", f->dir);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/tls/%s", f->dir, names[i]);
        assert_int_equal(stat(path, &st), 0);
        if ((st.st_mode & 07777) != 0600) {
            fail_msg("%s has mode %o, expected 600", names[i], st.st_mode & 07777);
        }
    }
    snprintf(path, sizeof path, "%s/dev.json", f->dir);
    json_t *j = json_load_file(path, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "url")), f->url);
    assert_string_equal(json_string_value(json_object_get(j, "cacert")), f->ca);
    json_decref(j);
    /* dev says where the CA is, with a curl line to try. */
    char out[8192], cmd[700];
    snprintf(path, sizeof path, "%s/dev.out", f->dir);
    snprintf(cmd, sizeof cmd, "curl --cacert %s %s/readyz", f->ca, f->url);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    out[fread(out, 1, sizeof out - 1, fp)] = '\0';
    fclose(fp);
    assert_non_null(strstr(out, cmd));
}

/* curl, laurel ctl and hclient trusting the CA get in. */
static void client_trusting_the_ca_connects(void **state)
{
    struct fixture *f = *state;
    char out[4096], url[128], errmsg[LR_ERRMSG_SIZE];
    snprintf(url, sizeof url, "%s/healthz", f->url);
    char *curl[] = {"curl", "-sS", "--max-time", "10", "--cacert", f->ca, url, NULL};
    assert_int_equal(run(curl, out, sizeof out), 0);
    assert_non_null(strstr(out, "\"ok\""));
    /* By name too: the certificate names localhost. */
    char byname[128];
    snprintf(byname, sizeof byname, "https://localhost:%s/healthz", strchr(f->http, ':') + 1);
    char *curl_name[] = {"curl", "-sS", "--max-time", "10", "--cacert", f->ca, byname, NULL};
    assert_int_equal(run(curl_name, out, sizeof out), 0);
    char *ctl[] = {(char *)f->bin, "ctl", "get",    "/v1/cluster", "--router", f->url,
                   "--cacert",     f->ca, "--data", f->dir,        NULL};
    if (run(ctl, out, sizeof out) != 0) {
        fail_msg("laurel ctl over https failed: %s", out);
    }
    assert_non_null(strstr(out, "\"regions\""));
    json_t *j = NULL;
    assert_int_equal(https(f, f->ca, "GET", "/v1/cluster", ADMIN, NULL, &j, errmsg), 200);
    assert_non_null(json_object_get(j, "regions"));
    json_decref(j);
}

/* Without the CA, curl, ctl and hclient refuse the router's certificate. */
static void client_not_trusting_the_ca_is_refused(void **state)
{
    struct fixture *f = *state;
    char out[4096], url[128], errmsg[LR_ERRMSG_SIZE];
    snprintf(url, sizeof url, "%s/healthz", f->url);
    char *curl[] = {"curl", "-sS", "--max-time", "10", url, NULL};
    assert_int_equal(run(curl, out, sizeof out), 60); /* CURLE_PEER_FAILED_VERIFICATION */
    assert_non_null(strstr(out, "certificate"));
    char *ctl[] = {(char *)f->bin, "ctl", "get", "/healthz", "--router", f->url, NULL};
    assert_int_equal(run(ctl, out, sizeof out), 1);
    assert_non_null(strstr(out, "certificate verify failed"));
    assert_int_equal(https(f, NULL, "GET", "/healthz", NULL, NULL, NULL, errmsg), -1);
    assert_non_null(strstr(errmsg, "certificate verify failed"));
}

/* Plain HTTP on the TLS port gets no answer: no status line, no body. */
static void plain_http_is_not_served(void **state)
{
    struct fixture *f = *state;
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    char out[4096], url[128];
    long n = httpc_raw(f->http, req, sizeof req - 1, out, sizeof out - 1, 2000);
    out[n > 0 ? n : 0] = '\0';
    assert_null(strstr(out, "HTTP/1."));
    assert_null(strstr(out, "\"ok\""));
    snprintf(url, sizeof url, "http://%s/healthz", f->http);
    char *curl[] = {"curl", "-sS", "--max-time", "10", url, NULL};
    assert_int_not_equal(run(curl, out, sizeof out), 0);
    assert_null(strstr(out, "\"ok\""));
}

/* TLS 1.1 is refused by the server (a protocol_version alert), though the client offers it:
 * its security level is lowered so that OpenSSL 3 sends a TLS 1.1 hello at all. TLS 1.2 with
 * the CA verifies. */
static void tls_1_1_is_refused(void **state)
{
    struct fixture *f = *state;
    char out[16384];
    char *old[] = {"timeout",  "10",       "openssl",
                   "s_client", "-connect", f->http,
                   "-tls1_1",  "-cipher",  "DEFAULT:@SECLEVEL=0",
                   "-CAfile",  f->ca,      NULL};
    run(old, out, sizeof out); /* fails either way: what matters is which side refused */
    if (strstr(out, "alert protocol version") == NULL) {
        fail_msg("TLS 1.1 was not refused with a protocol_version alert:\n%s", out);
    }
    char url[128];
    snprintf(url, sizeof url, "%s/healthz", f->url);
    char *curl[] = {"curl", "-sS",       "--max-time", "10", "--cacert",
                    f->ca,  "--tls-max", "1.1",        url,  NULL};
    assert_int_not_equal(run(curl, out, sizeof out), 0);
    char *v12[] = {"curl",      "-sS",       "--max-time", "10", "--cacert", f->ca,
                   "--tlsv1.2", "--tls-max", "1.2",        url,  NULL};
    assert_int_equal(run(v12, out, sizeof out), 0);
}

/* A WebSocket over TLS (tests/ws_client.py --cacert) subscribed to a player gets the
 * score.updated of a score submitted over HTTPS. */
static void wss_carries_events(void **state)
{
    struct fixture *f = *state;
    char errmsg[LR_ERRMSG_SIZE], wss[128], line[4096];
    int st = https(
        f, f->ca, "PUT", "/v1/boards/tlsboard", ADMIN,
        json_pack("{s:s,s:s,s:[s]}", "order", "desc", "operator", "best", "windows", "alltime"),
        NULL, errmsg);
    assert_true(st == 201 || st == 200);
    st = https(f, f->ca, "PUT", "/v1/players/tlsplayer", API,
               json_pack("{s:s,s:s}", "name", "T", "region", "local"), NULL, errmsg);
    assert_true(st == 201 || st == 200);
    snprintf(wss, sizeof wss, "wss://%s/v1/ws", f->http);
    char *py[] = {"/usr/bin/python3",
                  LAUREL_SRC "/tests/ws_client.py",
                  "--cacert",
                  f->ca,
                  "listen",
                  wss,
                  "20",
                  "1",
                  "player:tlsplayer",
                  NULL};
    int fd;
    pid_t pid = spawn(py, &fd);
    assert_true(pid > 0);
    FILE *in = fdopen(fd, "r");
    assert_non_null(in);
    assert_non_null(fgets(line, sizeof line, in));
    if (strstr(line, "\"ready\"") == NULL) {
        fail_msg("ws_client over wss: %s", line);
    }
    json_t *ans = NULL;
    assert_int_equal(https(f, f->ca, "POST", "/v1/boards/tlsboard/scores", API,
                           json_pack("{s:s,s:i,s:s}", "player_id", "tlsplayer", "score", 42,
                                     "idempotency_key", "tls-score-0001"),
                           &ans, errmsg),
                     200);
    json_decref(ans);
    assert_non_null(fgets(line, sizeof line, in));
    json_t *ev = json_loads(line, 0, NULL);
    assert_non_null(ev);
    assert_string_equal(json_string_value(json_object_get(ev, "type")), "score.updated");
    assert_string_equal(json_string_value(json_object_get(ev, "player_id")), "tlsplayer");
    assert_int_equal(json_integer_value(json_object_get(ev, "score")), 42);
    json_decref(ev);
    fclose(in);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

/* `laurel router` refuses half a TLS pair, a file it cannot read, and a key that is not the
 * certificate's, naming the flag; with the dev's pair it serves HTTPS over the dev's replicas. */
static void router_tls_flags(void **state)
{
    struct fixture *f = *state;
    char out[4096], cert[700], key[700], cakey[700], keys[700], http[32], missing[700];
    snprintf(cert, sizeof cert, "%s/tls/server.pem", f->dir);
    snprintf(key, sizeof key, "%s/tls/server-key.pem", f->dir);
    snprintf(cakey, sizeof cakey, "%s/tls/ca-key.pem", f->dir);
    snprintf(keys, sizeof keys, "%s/keys.json", f->dir);
    snprintf(missing, sizeof missing, "%s/tls/nope.pem", f->dir);
    snprintf(http, sizeof http, "127.0.0.1:%d", client_free_port());
    /* The replicas' addresses, from dev.json. */
    char path[700], region[128], meta[64];
    snprintf(path, sizeof path, "%s/dev.json", f->dir);
    json_t *j = json_load_file(path, 0, NULL), *p;
    size_t i;
    assert_non_null(j);
    json_array_foreach(json_object_get(j, "processes"), i, p)
    {
        const char *role = json_string_value(json_object_get(p, "role"));
        const char *rpc = json_string_value(json_object_get(p, "rpc"));
        if (strcmp(role, "node") == 0) {
            snprintf(region, sizeof region, "local=%s", rpc);
        } else if (strcmp(role, "meta") == 0) {
            snprintf(meta, sizeof meta, "%s", rpc);
        }
    }
    json_decref(j);
    struct {
        const char *flag1, *file1, *flag2, *file2;
        const char *named; /* the flag the message names */
    } bad[] = {
        {"--tls-cert", cert, NULL, NULL, "--tls-key"},
        {"--tls-key", key, NULL, NULL, "--tls-cert"},
        {"--tls-cert", missing, "--tls-key", key, "--tls-cert"},
        {"--tls-cert", cert, "--tls-key", missing, "--tls-key"},
        {"--tls-cert", key, "--tls-key", key, "--tls-cert"}, /* a key is no certificate */
        {"--tls-cert", cert, "--tls-key", cakey, "--tls-key"},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        char *argv[] = {(char *)f->bin,
                        "router",
                        "--http",
                        http,
                        "--region",
                        region,
                        "--keys-file",
                        keys,
                        "--cluster-key-file",
                        keys,
                        (char *)bad[k].flag1,
                        (char *)bad[k].file1,
                        (char *)bad[k].flag2,
                        (char *)bad[k].file2,
                        NULL};
        assert_int_equal(run(argv, out, sizeof out), 2);
        if (strstr(out, bad[k].named) == NULL) {
            fail_msg("case %zu: the message does not name %s: %s", k, bad[k].named, out);
        }
    }
    /* The good pair: HTTPS on the router's own port. */
    char *argv[] = {(char *)f->bin,
                    "router",
                    "--http",
                    http,
                    "--region",
                    region,
                    "--meta",
                    meta,
                    "--keys-file",
                    keys,
                    "--cluster-key-file",
                    keys,
                    "--tls-cert",
                    cert,
                    "--tls-key",
                    key,
                    NULL};
    int fd;
    pid_t pid = spawn(argv, &fd);
    assert_true(pid > 0);
    struct fixture rf = *f;
    snprintf(rf.http, sizeof rf.http, "%s", http);
    int status = -1;
    char errmsg[LR_ERRMSG_SIZE];
    for (int waited = 0; waited < 10000 && status != 200; waited += 100) {
        status = https(&rf, f->ca, "GET", "/readyz", NULL, NULL, NULL, errmsg);
        if (status != 200) {
            sleep_ms(100);
        }
    }
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    read_all(fd, out, sizeof out);
    if (status != 200) {
        fail_msg("laurel router --tls-cert: /readyz %d (%s); its output: %s", status, errmsg, out);
    }
    assert_non_null(strstr(out, "serving https://"));
}

/* Restarted, dev keeps the CA and the server certificate (clients keep trusting ca.pem), and
 * serves HTTPS again. */
static void restart_keeps_the_certificates(void **state)
{
    struct fixture *f = *state;
    char path[700], before[2][4096], after[2][4096], errmsg[LR_ERRMSG_SIZE];
    static const char *const names[] = {"ca.pem", "server.pem"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/tls/%s", f->dir, names[i]);
        FILE *fp = fopen(path, "r");
        assert_non_null(fp);
        before[i][fread(before[i], 1, sizeof before[i] - 1, fp)] = '\0';
        fclose(fp);
    }
    stop_dev(f);
    assert_int_equal(start_dev(f), 0);
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/tls/%s", f->dir, names[i]);
        FILE *fp = fopen(path, "r");
        assert_non_null(fp);
        after[i][fread(after[i], 1, sizeof after[i] - 1, fp)] = '\0';
        fclose(fp);
        assert_string_equal(before[i], after[i]);
    }
    assert_int_equal(https(f, f->ca, "GET", "/healthz", NULL, NULL, NULL, errmsg), 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(tls_files_are_private),
        cmocka_unit_test(client_trusting_the_ca_connects),
        cmocka_unit_test(client_not_trusting_the_ca_is_refused),
        cmocka_unit_test(plain_http_is_not_served),
        cmocka_unit_test(tls_1_1_is_refused),
        cmocka_unit_test(wss_carries_events),
        cmocka_unit_test(router_tls_flags),
        cmocka_unit_test(restart_keeps_the_certificates),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
