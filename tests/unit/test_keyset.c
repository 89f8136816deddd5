/* tests/unit/test_keyset.c — the router's key set (router/keyset.h): both keys-file forms, the
 * environment lists, several keys per role for rotation, the refusal rules, and the
 * constant-time match agreeing with a plain comparison. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "lib/err.h"
#include "tests/lib/testlib.h"
#include "router/keyset.h"

#define ADMIN1 "admin-key-aaaaaaaaaaaa"
#define ADMIN2 "admin-key-bbbbbbbbbbbb"
#define API1 "api-key-cccccccccccccc"
#define API2 "api-key-dddddddddddddd"

struct fixture {
    char *dir;
    char path[600];
    struct keyset ks;
    char errmsg[LR_ERRMSG_SIZE];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    f->dir = testlib_tmpdir();
    snprintf(f->path, sizeof f->path, "%s/keys.json", f->dir);
    keyset_init(&f->ks);
    unsetenv("LAUREL_ADMIN_KEY");
    unsetenv("LAUREL_API_KEY");
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    unlink(f->path);
    rmdir(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void write_file(struct fixture *f, const char *text)
{
    FILE *fp = fopen(f->path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static enum keyset_role match(const struct keyset *ks, const char *key)
{
    return keyset_match(ks, key, strlen(key));
}

static unsigned all_keys(const struct keyset *ks)
{
    return keyset_count(ks, KEYSET_ADMIN) + keyset_count(ks, KEYSET_API);
}

static int add(struct fixture *f, enum keyset_role role, const char *key)
{
    return keyset_add(&f->ks, role, key, strlen(key), "--test", f->errmsg);
}

/* The form `laurel dev` writes, one key per role, is read; other members are left alone. */
static void test_file_single_form(void **state)
{
    struct fixture *f = *state;
    write_file(f, "{\"admin_key\": \"" ADMIN1 "\", \"api_key\": \"" API1
                  "\", \"cluster_key\": \"not-ours\"}");
    assert_int_equal(keyset_load_file(&f->ks, f->path, f->errmsg), 0);
    assert_int_equal(keyset_count(&f->ks, KEYSET_ADMIN), 1);
    assert_int_equal(keyset_count(&f->ks, KEYSET_API), 1);
    assert_int_equal(match(&f->ks, ADMIN1), KEYSET_ADMIN);
    assert_int_equal(match(&f->ks, API1), KEYSET_API);
    assert_int_equal(match(&f->ks, "not-ours"), KEYSET_NONE);
    assert_string_equal(keyset_first(&f->ks, KEYSET_ADMIN), ADMIN1);
}

/* The array form holds several keys per role, each accepted. */
static void test_file_arrays(void **state)
{
    struct fixture *f = *state;
    write_file(f, "{\"admin_keys\": [\"" ADMIN1 "\", \"" ADMIN2 "\"], \"api_keys\": [\"" API1
                  "\", \"" API2 "\"]}");
    assert_int_equal(keyset_load_file(&f->ks, f->path, f->errmsg), 0);
    assert_int_equal(keyset_count(&f->ks, KEYSET_ADMIN), 2);
    assert_int_equal(keyset_count(&f->ks, KEYSET_API), 2);
    assert_int_equal(match(&f->ks, ADMIN2), KEYSET_ADMIN);
    assert_int_equal(match(&f->ks, API2), KEYSET_API);
}

/* A file that is missing, not JSON, not an object, or has members of the wrong type is
 * refused with a message naming the file and the member. */
static void test_file_refused(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(keyset_load_file(&f->ks, f->path, f->errmsg), LR_EIO);
    assert_non_null(strstr(f->errmsg, f->path));
    write_file(f, "{\"admin_keys\": ");
    assert_int_equal(keyset_load_file(&f->ks, f->path, f->errmsg), LR_EMALFORMED);
    write_file(f, "[\"" ADMIN1 "\"]");
    assert_int_equal(keyset_load_file(&f->ks, f->path, f->errmsg), LR_EMALFORMED);
    write_file(f, "{\"admin_keys\": \"" ADMIN1 "\"}");
    assert_int_equal(keyset_load_file(&f->ks, f->path, f->errmsg), LR_EMALFORMED);
    assert_non_null(strstr(f->errmsg, "admin_keys is not an array"));
    write_file(f, "{\"api_keys\": [\"" API1 "\", 7]}");
    assert_int_equal(keyset_load_file(&f->ks, f->path, f->errmsg), LR_EMALFORMED);
    assert_non_null(strstr(f->errmsg, "api_keys[1] is not a string"));
    write_file(f, "{\"api_key\": [\"" API1 "\"]}");
    assert_int_equal(keyset_load_file(&f->ks, f->path, f->errmsg), LR_EMALFORMED);
    assert_non_null(strstr(f->errmsg, "api_key is not a string"));
}

/* The environment lists are comma-separated; empty items and unset variables add nothing. */
static void test_env_lists(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(keyset_load_env(&f->ks, f->errmsg), 0);
    assert_int_equal(all_keys(&f->ks), 0);
    setenv("LAUREL_ADMIN_KEY", ADMIN1 "," ADMIN2 ",", 1);
    setenv("LAUREL_API_KEY", API1, 1);
    assert_int_equal(keyset_load_env(&f->ks, f->errmsg), 0);
    assert_int_equal(keyset_count(&f->ks, KEYSET_ADMIN), 2);
    assert_int_equal(keyset_count(&f->ks, KEYSET_API), 1);
    assert_int_equal(match(&f->ks, ADMIN2), KEYSET_ADMIN);
    assert_int_equal(match(&f->ks, API1), KEYSET_API);
    setenv("LAUREL_API_KEY", API2 ",short", 1);
    assert_int_equal(keyset_load_env(&f->ks, f->errmsg), LR_EINVAL);
    assert_non_null(strstr(f->errmsg, "LAUREL_API_KEY"));
    unsetenv("LAUREL_ADMIN_KEY");
    unsetenv("LAUREL_API_KEY");
}

/* Rotation: the old and the new key both work while both are configured; a set built without
 * the old one (the next start) refuses it and keeps the new one. */
static void test_rotation(void **state)
{
    struct fixture *f = *state;
    write_file(f, "{\"api_keys\": [\"" API1 "\"], \"admin_key\": \"" ADMIN1 "\"}");
    assert_int_equal(keyset_load_file(&f->ks, f->path, f->errmsg), 0);
    assert_int_equal(match(&f->ks, API1), KEYSET_API);
    assert_int_equal(match(&f->ks, API2), KEYSET_NONE);

    /* Step 1: the new key beside the old. */
    keyset_init(&f->ks);
    write_file(f, "{\"api_keys\": [\"" API1 "\", \"" API2 "\"], \"admin_key\": \"" ADMIN1 "\"}");
    assert_int_equal(keyset_load_file(&f->ks, f->path, f->errmsg), 0);
    assert_int_equal(match(&f->ks, API1), KEYSET_API);
    assert_int_equal(match(&f->ks, API2), KEYSET_API);

    /* Step 2: the old key retired. */
    keyset_init(&f->ks);
    write_file(f, "{\"api_keys\": [\"" API2 "\"], \"admin_key\": \"" ADMIN1 "\"}");
    assert_int_equal(keyset_load_file(&f->ks, f->path, f->errmsg), 0);
    assert_int_equal(match(&f->ks, API1), KEYSET_NONE);
    assert_int_equal(match(&f->ks, API2), KEYSET_API);
    assert_int_equal(match(&f->ks, ADMIN1), KEYSET_ADMIN);
}

/* Keys shorter than 16 or longer than 255 bytes are refused, never cut; 16 and 255 are fine. */
static void test_length_bounds(void **state)
{
    struct fixture *f = *state;
    char key[300];
    memset(key, 'k', sizeof key);
    key[15] = '\0';
    assert_int_equal(add(f, KEYSET_API, key), LR_EINVAL);
    assert_non_null(strstr(f->errmsg, "--test: an api key is 16 to 255 bytes, this one is 15"));
    key[15] = 'k';
    key[16] = '\0';
    assert_int_equal(add(f, KEYSET_API, key), 0);
    memset(key, 'x', sizeof key);
    key[255] = '\0';
    assert_int_equal(add(f, KEYSET_ADMIN, key), 0);
    assert_int_equal(match(&f->ks, key), KEYSET_ADMIN);
    key[255] = 'x';
    key[256] = '\0';
    assert_int_equal(add(f, KEYSET_ADMIN, key), LR_EINVAL);
    assert_non_null(strstr(f->errmsg, "this one is 256"));
    /* The 256-byte key whose first 255 bytes are a configured key does not match it. */
    assert_int_equal(match(&f->ks, key), KEYSET_NONE);
    assert_int_equal(add(f, KEYSET_API, ""), LR_EINVAL);
    assert_int_equal(all_keys(&f->ks), 2);
}

/* Spaces, commas and control bytes cannot travel in a header or a list: refused. */
static void test_alphabet(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(add(f, KEYSET_API, "api key with spaces"), LR_EINVAL);
    assert_non_null(strstr(f->errmsg, "byte 4 is not"));
    assert_int_equal(keyset_add(&f->ks, KEYSET_API, API1 ",x", strlen(API1) + 2, "--t", f->errmsg),
                     LR_EINVAL);
    assert_int_equal(add(f, KEYSET_API, "api-key-\x01-cccccccccc"), LR_EINVAL);
    assert_int_equal(all_keys(&f->ks), 0);
}

/* A key of both roles is refused, whichever role came first, without the key in the message;
 * the same key twice in one role is kept once. */
static void test_admin_equals_api(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(add(f, KEYSET_ADMIN, ADMIN1), 0);
    assert_int_equal(add(f, KEYSET_API, ADMIN1), LR_EINVAL);
    assert_non_null(strstr(f->errmsg, "this api key is also an admin key"));
    assert_null(strstr(f->errmsg, ADMIN1));
    assert_int_equal(add(f, KEYSET_ADMIN, ADMIN1), 0);
    assert_int_equal(all_keys(&f->ks), 1);
    write_file(f, "{\"admin_key\": \"" API1 "\", \"api_keys\": [\"" API1 "\"]}");
    keyset_init(&f->ks);
    assert_int_equal(keyset_load_file(&f->ks, f->path, f->errmsg), LR_EINVAL);
    assert_non_null(strstr(f->errmsg, "api_keys[0]: this api key is also an admin key"));
}

/* More than KEYSET_MAX keys are refused rather than dropped. */
static void test_too_many(void **state)
{
    struct fixture *f = *state;
    char key[32];
    for (unsigned i = 0; i < KEYSET_MAX; i++) {
        snprintf(key, sizeof key, "many-keys-%08u", i);
        assert_int_equal(add(f, i % 2 ? KEYSET_API : KEYSET_ADMIN, key), 0);
    }
    assert_int_equal(add(f, KEYSET_API, "one-key-too-many-x"), LR_ERANGE);
    assert_non_null(strstr(f->errmsg, "at most 16 keys"));
}

/* The constant-time match agrees with a plain comparison on random near misses: keys that
 * differ in one byte anywhere, prefixes, extensions, and the empty key. */
static void test_match_model(void **state)
{
    struct fixture *f = *state;
    char keys[6][80], probe[300];
    enum keyset_role roles[6];
    struct testrng rng = {testlib_seed(16)};
    for (unsigned i = 0; i < 6; i++) {
        size_t len = KEYSET_KEY_MIN + testrng_below(&rng, 60);
        for (size_t k = 0; k < len; k++) {
            keys[i][k] = (char)('a' + testrng_below(&rng, 26));
        }
        keys[i][len] = '\0';
        roles[i] = i % 2 ? KEYSET_API : KEYSET_ADMIN;
        assert_int_equal(add(f, roles[i], keys[i]), 0);
    }
    for (unsigned t = 0; t < 5000; t++) {
        size_t i = testrng_below(&rng, 6), len = strlen(keys[i]);
        memcpy(probe, keys[i], len + 1);
        switch (testrng_below(&rng, 5)) {
        case 0: break; /* the key itself */
        case 1: probe[testrng_below(&rng, len)] ^= (char)(1 + testrng_below(&rng, 31)); break;
        case 2: probe[testrng_below(&rng, len)] = '\0'; break;
        case 3: strcat(probe, "z"); break;
        default: probe[0] = '\0'; break;
        }
        enum keyset_role want = KEYSET_NONE;
        for (unsigned k = 0; k < 6; k++) {
            if (strcmp(probe, keys[k]) == 0) {
                want = roles[k];
            }
        }
        assert_int_equal(match(&f->ks, probe), want);
    }
    /* An empty set matches nothing, not even the empty key. */
    keyset_init(&f->ks);
    assert_int_equal(match(&f->ks, ""), KEYSET_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_file_single_form, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_arrays, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_length_bounds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alphabet, setup, teardown),
        cmocka_unit_test_setup_teardown(test_admin_equals_api, setup, teardown),
        cmocka_unit_test_setup_teardown(test_too_many, setup, teardown),
        cmocka_unit_test_setup_teardown(test_match_model, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
