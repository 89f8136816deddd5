/* tests/integration/test_ws_int.h — what the two files of the test_ws binary share: the
 * keys, two timing helpers (test_ws.c) and the writer thread of the failover scenario
 * (test_ws_writer.c). */
#ifndef LAUREL_TEST_WS_INT_H
#define LAUREL_TEST_WS_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "tests/lib/testlib.h"

#define ADMIN "router-admin-key-0123"
#define API "router-api-key-04567"

#define FO_PLAYERS 4

struct fo_writer {
    const char *http; /* the router written through */
    pthread_t th;
    int running;
    atomic_int stop;
    atomic_int acked;    /* acknowledged writes, all players */
    int seq[FO_PLAYERS]; /* acknowledged writes of player fo<p>: its scores 1..seq[p] */
    int retries;
    char error[512];
};

#define fo_fail(w, ...)                                                                            \
    do {                                                                                           \
        fo_stop(w);                                                                                \
        fail_msg(__VA_ARGS__);                                                                     \
    } while (0)

/* test_ws.c: timing helpers */
void sleep_ms(int ms);
double now_s(void);

/* test_ws_writer.c: the writer thread (described where defined) */
int fo_write(struct fo_writer *w, const char *body);
void *fo_writer_main(void *arg);
void fo_stop(struct fo_writer *w);
void fo_wait_acked(struct fo_writer *w, int n);

#endif
