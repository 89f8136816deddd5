/* tests/unit/test_certs.c — lib/certs: the dev CA and server certificate are made once and
 * reused, a server certificate is made anew (under the same CA) when the host changes, a CA
 * that no longer reads back is replaced with its certificate; certs_check_pair names the file
 * at fault. Real files in a temporary directory. */
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/certs.h"
#include "lib/err.h"
#include "tests/lib/testlib.h"

struct fixture {
    char *dir;
    char tls[600];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->dir = testlib_tmpdir();
    snprintf(f->tls, sizeof f->tls, "%s/tls", f->dir);
    *state = f;
    return f->dir ? 0 : -1;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    testlib_rmrf(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static char *slurp(const char *path)
{
    FILE *fp = fopen(path, "r");
    char *buf = calloc(1, 8192);
    assert_non_null(fp);
    assert_true(fread(buf, 1, 8191, fp) > 0);
    fclose(fp);
    return buf;
}

/* Does the certificate in @path name @host (a name or an IP address)? */
static int names(const char *path, const char *host, int ip)
{
    FILE *fp = fopen(path, "r");
    X509 *x = fp ? PEM_read_X509(fp, NULL, NULL, NULL) : NULL;
    if (fp) {
        fclose(fp);
    }
    assert_non_null(x);
    int ok = ip ? X509_check_ip_asc(x, host, 0) : X509_check_host(x, host, 0, 0, NULL);
    X509_free(x);
    return ok == 1;
}

/* A first call makes all four files, 0600 in a 0700 directory, and the server certificate
 * names localhost, both loopback addresses and the host; a second call reuses them. */
static void made_once_then_reused(void **state)
{
    struct fixture *f = *state;
    struct certs_dev d;
    char errmsg[LR_ERRMSG_SIZE];
    struct stat st;
    assert_int_equal(certs_dev_ensure(f->tls, "game.example", &d, errmsg), 0);
    assert_int_equal(d.made_ca, 1);
    assert_int_equal(d.made_cert, 1);
    assert_int_equal(stat(f->tls, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0700);
    const char *files[] = {d.ca, d.ca_key, d.cert, d.key};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(stat(files[i], &st), 0);
        assert_int_equal(st.st_mode & 07777, 0600);
    }
    assert_true(names(d.cert, "localhost", 0));
    assert_true(names(d.cert, "game.example", 0));
    assert_true(names(d.cert, "127.0.0.1", 1));
    assert_true(names(d.cert, "::1", 1));
    assert_false(names(d.cert, "other.example", 0));
    enum certs_file bad;
    assert_int_equal(certs_check_pair(d.cert, d.key, &bad, errmsg), 0);
    char *cert = slurp(d.cert);
    assert_int_equal(certs_dev_ensure(f->tls, "game.example", &d, errmsg), 0);
    assert_int_equal(d.made_ca, 0);
    assert_int_equal(d.made_cert, 0);
    char *again = slurp(d.cert);
    assert_string_equal(cert, again);
    free(cert);
    free(again);
}

/* Another host: a new server certificate naming it, under the same CA. */
static void new_host_new_certificate_same_ca(void **state)
{
    struct fixture *f = *state;
    struct certs_dev d;
    char errmsg[LR_ERRMSG_SIZE];
    assert_int_equal(certs_dev_ensure(f->tls, "127.0.0.1", &d, errmsg), 0);
    char *ca = slurp(d.ca);
    assert_int_equal(certs_dev_ensure(f->tls, "10.1.2.3", &d, errmsg), 0);
    assert_int_equal(d.made_ca, 0);
    assert_int_equal(d.made_cert, 1);
    assert_true(names(d.cert, "10.1.2.3", 1));
    char *ca2 = slurp(d.ca);
    assert_string_equal(ca, ca2);
    free(ca);
    free(ca2);
}

/* A CA file that no longer reads back is replaced, and so is the certificate it signed. */
static void broken_ca_replaced(void **state)
{
    struct fixture *f = *state;
    struct certs_dev d;
    char errmsg[LR_ERRMSG_SIZE];
    assert_int_equal(certs_dev_ensure(f->tls, "localhost", &d, errmsg), 0);
    FILE *fp = fopen(d.ca, "w");
    assert_non_null(fp);
    fputs("not a certificate\n", fp);
    fclose(fp);
    assert_int_equal(certs_dev_ensure(f->tls, "localhost", &d, errmsg), 0);
    assert_int_equal(d.made_ca, 1);
    assert_int_equal(d.made_cert, 1);
}

/* certs_check_pair names the file at fault: missing, not PEM, or a key of another
 * certificate. */
static void check_pair_names_the_bad_file(void **state)
{
    struct fixture *f = *state;
    struct certs_dev d;
    char errmsg[LR_ERRMSG_SIZE], missing[700];
    enum certs_file bad;
    assert_int_equal(certs_dev_ensure(f->tls, "localhost", &d, errmsg), 0);
    snprintf(missing, sizeof missing, "%s/nope.pem", f->tls);
    assert_int_equal(certs_check_pair(missing, d.key, &bad, errmsg), LR_EIO);
    assert_int_equal(bad, CERTS_CERT);
    assert_non_null(strstr(errmsg, "nope.pem"));
    assert_int_equal(certs_check_pair(d.cert, missing, &bad, errmsg), LR_EIO);
    assert_int_equal(bad, CERTS_KEY);
    assert_int_equal(certs_check_pair(d.key, d.key, &bad, errmsg), LR_EMALFORMED);
    assert_int_equal(bad, CERTS_CERT);
    assert_int_equal(certs_check_pair(d.cert, d.cert, &bad, errmsg), LR_EMALFORMED);
    assert_int_equal(bad, CERTS_KEY);
    assert_int_equal(certs_check_pair(d.cert, d.ca_key, &bad, errmsg), LR_EINVAL);
    assert_int_equal(bad, CERTS_KEY);
    assert_non_null(strstr(errmsg, "not the key"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(made_once_then_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(new_host_new_certificate_same_ca, setup, teardown),
        cmocka_unit_test_setup_teardown(broken_ca_replaced, setup, teardown),
        cmocka_unit_test_setup_teardown(check_pair_names_the_bad_file, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
