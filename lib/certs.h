/* lib/certs.h — TLS certificate files (docs/security.md, "TLS"): checking a certificate and
 * key before a server is given them, and the private CA and server certificate of
 * `laurel dev --tls`. OpenSSL's libcrypto, blocking file I/O: call before the loop runs. */
#ifndef LAUREL_CERTS_H
#define LAUREL_CERTS_H

#include <stddef.h>

/* Which of the two files a failed check is about. */
enum certs_file { CERTS_CERT, CERTS_KEY };

/**
 * Check that @cert (PEM: the server certificate first, then any intermediates) and @key (a PEM
 * private key, unencrypted) can be read and belong together, as a TLS server needs them. Both
 * borrowed for the call.
 *
 * @return 0, or with *@bad naming the file at fault and a sentence in @errmsg
 * (LR_ERRMSG_SIZE bytes): LR_EIO (cannot open it), LR_EMALFORMED (no PEM certificate or key
 * in it), LR_EINVAL (the key is not the certificate's).
 */
int certs_check_pair(const char *cert, const char *key, enum certs_file *bad, char *errmsg);

#define CERTS_PATH_MAX 3200

/** Where certs_dev_ensure keeps its files, and what it did. */
struct certs_dev {
    char ca[CERTS_PATH_MAX];     /* DIR/ca.pem: what clients trust (curl --cacert) */
    char ca_key[CERTS_PATH_MAX]; /* DIR/ca-key.pem, 0600 */
    char cert[CERTS_PATH_MAX];   /* DIR/server.pem: the server certificate */
    char key[CERTS_PATH_MAX];    /* DIR/server-key.pem, 0600 */
    int made_ca, made_cert;      /* 1: made by this call; 0: an earlier one reused */
};

/**
 * The files of a private CA and of a server certificate it signed, under @dir (created 0700
 * when missing; every file 0600): ca.pem, ca-key.pem, server.pem, server-key.pem. The server
 * certificate names localhost, 127.0.0.1, ::1 and @host (the host of the listen address, a
 * name or a numeric address; NULL or "" adds nothing; an unspecified address such as 0.0.0.0
 * adds this machine's name instead), and serves TLS servers only (extendedKeyUsage
 * serverAuth).
 *
 * Files of an earlier call are reused while they still hold: the CA while it reads back,
 * matches its key and has 30 days left; the server certificate while, besides, the CA signed
 * it and it names every host above. A new CA means a new server certificate; a server
 * certificate is made anew without touching a CA that holds, so clients that trust ca.pem
 * keep trusting it.
 *
 * @return 0 with *@out filled, or LR_EIO (a file or directory cannot be written),
 * LR_EINVAL (@dir too long), LR_ENOMEM, LR_EINTERNAL (OpenSSL failed), with @errmsg.
 */
int certs_dev_ensure(const char *dir, const char *host, struct certs_dev *out, char *errmsg);

#endif
