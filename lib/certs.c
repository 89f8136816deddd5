/* lib/certs.c — TLS certificate files (see certs.h).
 *
 * The dev CA is a real, if private, CA: its certificate says CA:TRUE (critical) and may only
 * sign certificates (keyCertSign, cRLSign), and both certificates carry subject and authority
 * key identifiers, so strict verifiers (Python's ssl with VERIFY_X509_STRICT, curl, browsers)
 * accept the chain as they would a public one. Keys are ECDSA P-256: small, and fast to make
 * on every first start. Serials are 127 random bits, so two dev CAs never issue look-alike
 * certificates.
 *
 * Which names the server certificate covers is one list (certs__hosts), built the same way
 * for making a certificate and for deciding whether an existing one still covers them.
 * Files are written to a temporary name (0600) and renamed into place, so a crash leaves the
 * old file or the new one, never half of one; the key is written before its certificate, so
 * a certificate on disk always has its key beside it. */
#include "certs.h"

#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "err.h"

#define CERTS__CA_DAYS 3650
#define CERTS__CERT_DAYS 365
#define CERTS__MIN_LEFT_DAYS 30 /* reuse a certificate only while it has this long to live */
#define CERTS__HOSTS 4

/* The last OpenSSL error as text, for a message. */
static const char *certs__ossl(char *buf, size_t cap)
{
    unsigned long e = ERR_peek_last_error();
    if (e == 0) {
        snprintf(buf, cap, "no detail");
    } else {
        ERR_error_string_n(e, buf, cap);
    }
    ERR_clear_error();
    return buf;
}

/* The first PEM certificate (@x) or private key (@k, when @x is NULL) of @path into *@x or
 * *@k: NULL when the file cannot be opened or holds none. */
static void certs__read(const char *path, X509 **x, EVP_PKEY **k)
{
    FILE *f = fopen(path, "r");
    if (x != NULL) {
        *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
    } else {
        *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
    }
    if (f) {
        fclose(f);
    }
}

static X509 *certs__read_cert(const char *path)
{
    X509 *x;
    certs__read(path, &x, NULL);
    return x;
}

static EVP_PKEY *certs__read_key(const char *path)
{
    EVP_PKEY *k;
    certs__read(path, NULL, &k);
    return k;
}

int certs_check_pair(const char *cert, const char *key, enum certs_file *bad, char *errmsg)
{
    char ossl[256];
    int rv;
    if (access(cert, R_OK) != 0) {
        *bad = CERTS_CERT;
        return errmsg_set(errmsg, LR_EIO, "cannot read %s: %s", cert, strerror(errno));
    }
    if (access(key, R_OK) != 0) {
        *bad = CERTS_KEY;
        return errmsg_set(errmsg, LR_EIO, "cannot read %s: %s", key, strerror(errno));
    }
    X509 *x = certs__read_cert(cert);
    if (x == NULL) {
        *bad = CERTS_CERT;
        return errmsg_set(errmsg, LR_EMALFORMED, "%s holds no PEM certificate (%s)", cert,
                          certs__ossl(ossl, sizeof ossl));
    }
    EVP_PKEY *k = certs__read_key(key);
    if (k == NULL) {
        *bad = CERTS_KEY;
        rv = errmsg_set(errmsg, LR_EMALFORMED, "%s holds no unencrypted PEM private key (%s)", key,
                        certs__ossl(ossl, sizeof ossl));
        goto err_after_cert;
    }
    if (X509_check_private_key(x, k) != 1) {
        ERR_clear_error();
        *bad = CERTS_KEY;
        rv = errmsg_set(errmsg, LR_EINVAL, "%s is not the key of the certificate in %s", key, cert);
        goto err_after_key;
    }
    EVP_PKEY_free(k);
    X509_free(x);
    return 0;

err_after_key:
    EVP_PKEY_free(k);
err_after_cert:
    X509_free(x);
    assert(rv != 0);
    return rv;
}

/* ---- the names a dev server certificate covers ---------------------------------------------- */

struct certs__hosts {
    char name[CERTS__HOSTS][256];
    unsigned n;
};

/* Is @s a numeric address (v4 or v6)? */
static int certs__is_ip(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

static int certs__is_unspecified(const char *s)
{
    return strcmp(s, "0.0.0.0") == 0 || strcmp(s, "::") == 0;
}

static void certs__hosts_add(struct certs__hosts *h, const char *s)
{
    for (unsigned i = 0; i < h->n; i++) {
        if (strcmp(h->name[i], s) == 0) {
            return;
        }
    }
    if (h->n < CERTS__HOSTS && s[0] != '\0' && strlen(s) < sizeof h->name[0]) {
        snprintf(h->name[h->n++], sizeof h->name[0], "%s", s);
    }
}

/* localhost, the loopback addresses, and @host (or, for an unspecified address, this
 * machine's name: what other hosts would call it by). */
static void certs__hosts(struct certs__hosts *h, const char *host)
{
    char self[256];
    h->n = 0;
    certs__hosts_add(h, "localhost");
    certs__hosts_add(h, "127.0.0.1");
    certs__hosts_add(h, "::1");
    if (host != NULL && certs__is_unspecified(host)) {
        if (gethostname(self, sizeof self) == 0) {
            self[sizeof self - 1] = '\0';
            certs__hosts_add(h, self);
        }
    } else if (host != NULL) {
        certs__hosts_add(h, host);
    }
}

/* The subjectAltName value naming every host: "DNS:localhost,IP:127.0.0.1,...". */
static int certs__san(const struct certs__hosts *h, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (unsigned i = 0; i < h->n; i++) {
        int n = snprintf(out + len, cap - len, "%s%s:%s", i ? "," : "",
                         certs__is_ip(h->name[i]) ? "IP" : "DNS", h->name[i]);
        if (n < 0 || (size_t)n >= cap - len) {
            return -1;
        }
        len += (size_t)n;
    }
    return 0;
}

static int certs__covers(X509 *x, const struct certs__hosts *h)
{
    for (unsigned i = 0; i < h->n; i++) {
        int ok = certs__is_ip(h->name[i]) ? X509_check_ip_asc(x, h->name[i], 0)
                                          : X509_check_host(x, h->name[i], 0, 0, NULL);
        if (ok != 1) {
            return 0;
        }
    }
    return 1;
}

/* ---- making keys and certificates ----------------------------------------------------------- */

/* One extension of a certificate we make: its NID and its value in OpenSSL's config syntax. */
struct certs__ext {
    int nid;
    const char *value; /* NULL: the subjectAltName built for the hosts */
};

/* The subject key identifier comes before the authority's: a self-signed CA's authority key
 * identifier is read from its own subject key identifier. */
static const struct certs__ext certs__ca_exts[] = {
    {NID_basic_constraints, "critical,CA:TRUE,pathlen:0"},
    {NID_key_usage, "critical,keyCertSign,cRLSign"},
    {NID_subject_key_identifier, "hash"},
    {NID_authority_key_identifier, "keyid:always"},
};

static const struct certs__ext certs__server_exts[] = {
    {NID_basic_constraints, "critical,CA:FALSE"},
    {NID_key_usage, "critical,digitalSignature"},
    {NID_ext_key_usage, "serverAuth"},
    {NID_subject_key_identifier, "hash"},
    {NID_authority_key_identifier, "keyid:always"},
    {NID_subject_alt_name, NULL},
};

/* A positive random serial of 127 bits. */
static int certs__serial(X509 *x)
{
    unsigned char b[16];
    if (RAND_bytes(b, sizeof b) != 1) {
        return -1;
    }
    b[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(b, sizeof b, NULL);
    ASN1_INTEGER *ai = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    int ok = ai != NULL && X509_set_serialNumber(x, ai) == 1;
    ASN1_INTEGER_free(ai);
    BN_free(bn);
    return ok ? 0 : -1;
}

/* A certificate for @key named @cn, valid from an hour ago (clocks differ) for @days, signed
 * by @issuer_key as @issuer (NULL both: self-signed), with extensions @exts (@san for the one
 * whose value is NULL). NULL on failure. */
static X509 *certs__make(EVP_PKEY *key, const char *cn, X509 *issuer, EVP_PKEY *issuer_key,
                         long days, const struct certs__ext *exts, size_t nexts, const char *san)
{
    X509 *x = X509_new();
    X509_NAME *name = x ? X509_get_subject_name(x) : NULL;
    X509V3_CTX ctx;
    if (x == NULL || X509_set_version(x, 2) != 1 || certs__serial(x) != 0 ||
        X509_gmtime_adj(X509_getm_notBefore(x), -3600) == NULL ||
        X509_gmtime_adj(X509_getm_notAfter(x), days * 86400L) == NULL ||
        X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"laurel dev", -1,
                                   -1, 0) != 1 ||
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1,
                                   0) != 1 ||
        X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) != 1 ||
        X509_set_pubkey(x, key) != 1) {
        goto err;
    }
    X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
    for (size_t i = 0; i < nexts; i++) {
        X509_EXTENSION *e =
            X509V3_EXT_conf_nid(NULL, &ctx, exts[i].nid, exts[i].value ? exts[i].value : san);
        int ok = e != NULL && X509_add_ext(x, e, -1) == 1;
        X509_EXTENSION_free(e);
        if (!ok) {
            goto err;
        }
    }
    if (X509_sign(x, issuer_key ? issuer_key : key, EVP_sha256()) <= 0) {
        goto err;
    }
    return x;
err:
    X509_free(x);
    return NULL;
}

/* What certs_dev_ensure makes: the CA, or a server certificate. */
struct certs__kind {
    const char *what; /* for messages */
    long days;
    const struct certs__ext *exts;
    size_t nexts;
};

static const struct certs__kind certs__ca = {"the CA", CERTS__CA_DAYS, certs__ca_exts,
                                             sizeof certs__ca_exts / sizeof certs__ca_exts[0]};
static const struct certs__kind certs__server = {
    "the server certificate", CERTS__CERT_DAYS, certs__server_exts,
    sizeof certs__server_exts / sizeof certs__server_exts[0]};

static int certs__write(const char *path, X509 *x, EVP_PKEY *k);

/* A new key and a certificate of @kind for it named @cn, signed by @issuer with @issuer_key
 * (NULL both: self-signed), with @san for the subjectAltName; written to @key_path, then
 * @cert_path. 0 with *@x and *@k, the caller's to free; or LR_EINTERNAL or LR_EIO with
 * @errmsg, and nothing to free. */
static int certs__issue(const struct certs__kind *kind, const char *cn, X509 *issuer,
                        EVP_PKEY *issuer_key, const char *san, const char *cert_path,
                        const char *key_path, X509 **x, EVP_PKEY **k, char *errmsg)
{
    char ossl[256];
    int rv;
    *k = EVP_EC_gen("P-256");
    *x = *k ? certs__make(*k, cn, issuer, issuer_key, kind->days, kind->exts, kind->nexts, san)
            : NULL;
    if (*x == NULL) {
        rv = errmsg_set(errmsg, LR_EINTERNAL, "tls: cannot make %s: %s", kind->what,
                        certs__ossl(ossl, sizeof ossl));
        goto err_after_make;
    }
    if (certs__write(key_path, NULL, *k) != 0 || certs__write(cert_path, *x, NULL) != 0) {
        rv = errmsg_set(errmsg, LR_EIO, "tls: cannot write %s to %s: %s", kind->what, cert_path,
                        strerror(errno));
        goto err_after_make;
    }
    return 0;

err_after_make:
    X509_free(*x);
    EVP_PKEY_free(*k);
    *x = NULL;
    *k = NULL;
    assert(rv != 0);
    return rv;
}

/* Write @path through a temporary file, 0600, then rename it into place: the key (@k) or the
 * certificate (@x). 0, or -1 with errno. */
static int certs__write(const char *path, X509 *x, EVP_PKEY *k)
{
    char tmp[CERTS_PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return -1;
    }
    /* A leftover tmp keeps its old mode through O_TRUNC; fchmod ignores the umask. */
    FILE *f = fchmod(fd, 0600) == 0 ? fdopen(fd, "w") : NULL;
    if (f == NULL) {
        close(fd);
        return -1;
    }
    int ok = x ? PEM_write_X509(f, x) : PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
    ok = ok == 1 && fflush(f) == 0 && fsync(fileno(f)) == 0;
    if (fclose(f) != 0 || !ok) {
        unlink(tmp);
        errno = errno ? errno : EIO;
        return -1;
    }
    return rename(tmp, path);
}

/* Has @x at least CERTS__MIN_LEFT_DAYS to live? */
static int certs__lasts(X509 *x)
{
    time_t then = time(NULL) + CERTS__MIN_LEFT_DAYS * 86400L;
    return X509_cmp_time(X509_get0_notAfter(x), &then) > 0;
}

/* The CA of an earlier call, if it holds (certs.h): *@x and *@k, else both NULL. */
static void certs__reuse_ca(const struct certs_dev *d, X509 **x, EVP_PKEY **k)
{
    *x = certs__read_cert(d->ca);
    *k = *x ? certs__read_key(d->ca_key) : NULL;
    if (*k == NULL || X509_check_private_key(*x, *k) != 1 || !certs__lasts(*x) ||
        X509_check_ca(*x) == 0) {
        X509_free(*x);
        EVP_PKEY_free(*k);
        *x = NULL;
        *k = NULL;
    }
    ERR_clear_error();
}

/* Does the server certificate of an earlier call still hold, for CA @ca and @hosts? */
static int certs__reuse_cert(const struct certs_dev *d, X509 *ca, const struct certs__hosts *h)
{
    X509 *x = certs__read_cert(d->cert);
    EVP_PKEY *k = x ? certs__read_key(d->key) : NULL;
    EVP_PKEY *ca_pub = X509_get0_pubkey(ca);
    int ok = k != NULL && ca_pub != NULL && X509_check_private_key(x, k) == 1 &&
             X509_verify(x, ca_pub) == 1 && certs__lasts(x) && certs__covers(x, h);
    EVP_PKEY_free(k);
    X509_free(x);
    ERR_clear_error();
    return ok;
}

static int certs__paths(const char *dir, struct certs_dev *d)
{
    struct {
        char *out;
        const char *name;
    } f[] = {{d->ca, "ca.pem"},
             {d->ca_key, "ca-key.pem"},
             {d->cert, "server.pem"},
             {d->key, "server-key.pem"}};
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        int n = snprintf(f[i].out, CERTS_PATH_MAX, "%s/%s", dir, f[i].name);
        if (n < 0 || n >= CERTS_PATH_MAX) {
            return -1;
        }
    }
    return 0;
}

int certs_dev_ensure(const char *dir, const char *host, struct certs_dev *out, char *errmsg)
{
    struct certs__hosts hosts;
    char san[1200];
    X509 *ca = NULL, *cert = NULL;
    EVP_PKEY *ca_key = NULL, *key = NULL;
    int rv;
    memset(out, 0, sizeof *out);
    if (certs__paths(dir, out) != 0) {
        return errmsg_set(errmsg, LR_EINVAL, "tls: directory name too long: %s", dir);
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        return errmsg_set(errmsg, LR_EIO, "tls: mkdir %s: %s", dir, strerror(errno));
    }
    if (chmod(dir, 0700) != 0) {
        return errmsg_set(errmsg, LR_EIO, "tls: chmod %s: %s", dir, strerror(errno));
    }
    certs__hosts(&hosts, host);
    if (certs__san(&hosts, san, sizeof san) != 0) {
        return errmsg_set(errmsg, LR_EINVAL, "tls: host name too long: %s", host);
    }
    certs__reuse_ca(out, &ca, &ca_key);
    if (ca == NULL) {
        if ((rv = certs__issue(&certs__ca, "laurel dev CA", NULL, NULL, NULL, out->ca, out->ca_key,
                               &ca, &ca_key, errmsg)) != 0) {
            return rv;
        }
        out->made_ca = 1;
    }
    if (!out->made_ca && certs__reuse_cert(out, ca, &hosts)) {
        goto done;
    }
    if ((rv = certs__issue(&certs__server, "laurel dev server", ca, ca_key, san, out->cert,
                           out->key, &cert, &key, errmsg)) != 0) {
        goto err_after_ca;
    }
    out->made_cert = 1;
done:
    X509_free(cert);
    EVP_PKEY_free(key);
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    return 0;

err_after_ca:
    X509_free(ca);
    EVP_PKEY_free(ca_key);
    assert(rv != 0);
    return rv;
}
