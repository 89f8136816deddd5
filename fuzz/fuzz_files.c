/* fuzz/fuzz_files.c — the JSON files laurel reads, through the functions that read them from
 * disk: keys.json as the router reads it (keyset_load_file, router/keyset.c) and as every
 * process reads its cluster key (peerauth_key_load, proto/peerauth.c, which also takes a file
 * holding the key alone). The same bytes also go where a key list or a key comes from a flag
 * or the environment (keyset_add_list, peerauth_key_set).
 *
 * The input is written to a memfd and read back through /proc/self/fd, so the code under test
 * opens a real path as it does in production, and nothing reaches the disk.
 *
 * Checks: an accepted key set matches each role's first key with that role; an accepted
 * cluster key has PEERAUTH_KEY_MIN..PEERAUTH_KEY_MAX bytes; every error has a sentence. */
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz/fuzz.h"
#include "lib/err.h"
#include "proto/peerauth.h"
#include "router/keyset.h"

static void fuzz_files__check_keys(const struct keyset *ks)
{
    static const enum keyset_role roles[] = {KEYSET_ADMIN, KEYSET_API};
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++) {
        const char *k = keyset_first(ks, roles[i]);
        if ((k == NULL) != (keyset_count(ks, roles[i]) == 0) ||
            (k && keyset_match(ks, k, strlen(k)) != roles[i])) {
            fprintf(stderr, "fuzz_files: a key of role %d does not match itself\n", roles[i]);
            abort();
        }
    }
}

static void fuzz_files__check_err(int rv, const char *errmsg)
{
    if (rv != 0 && errmsg[0] == '\0') {
        fprintf(stderr, "fuzz_files: error %d without a sentence\n", rv);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    char path[64], errmsg[LR_ERRMSG_SIZE];
    if (fd < 0 && (fd = memfd_create("fuzz_files", 0)) < 0) {
        abort();
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) {
        abort();
    }
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);

    struct keyset ks;
    keyset_init(&ks);
    errmsg[0] = '\0';
    int rv = keyset_load_file(&ks, path, errmsg);
    fuzz_files__check_err(rv, errmsg);
    fuzz_files__check_keys(&ks); /* keys added before an error stay: they are valid too */

    struct peerauth_key k;
    int have;
    errmsg[0] = '\0';
    rv = peerauth_key_config(&k, &have, path, NULL, errmsg);
    fuzz_files__check_err(rv, errmsg);
    if (rv == 0 && (!have || k.len < PEERAUTH_KEY_MIN || k.len > PEERAUTH_KEY_MAX)) {
        fprintf(stderr, "fuzz_files: a cluster key of %zu bytes\n", k.len);
        abort();
    }

    /* The flag and environment forms of the same bytes. */
    char *text = fuzz_str(data, size);
    keyset_init(&ks);
    errmsg[0] = '\0';
    rv = keyset_add_list(&ks, KEYSET_API, text, "fuzz", errmsg);
    fuzz_files__check_err(rv, errmsg);
    fuzz_files__check_keys(&ks);
    errmsg[0] = '\0';
    rv = peerauth_key_set(&k, text, size, errmsg);
    fuzz_files__check_err(rv, errmsg);
    free(text);
    return 0;
}
