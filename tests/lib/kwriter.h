/* tests/lib/kwriter.h — a steady keyed write load for tests of online changes (test_grow,
 * test_region_add): a thread that sends `incr` +1 scores through one router without pause,
 * round robin over a few players, each write with its own idempotency key. A write not
 * answered 2xx counts as failed and is retried with the same key until it is acknowledged,
 * so the tally of acknowledged keys per player is exact whatever happens: a test checks the
 * board against it, and that nothing failed. */
#ifndef LAUREL_KWRITER_H
#define LAUREL_KWRITER_H

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>

#define KWRITER_PLAYERS_MAX 16

struct kwriter {
    /* Set before kwriter_start (strings borrowed while it runs). */
    const char *http;    /* the router, host:port */
    const char *path;    /* e.g. "/v1/boards/grow/scores" */
    const char *api_key; /* sent as Bearer */
    const char *player;  /* player ids are <player>-<k>, k < nplayers */
    const char *key;     /* idempotency keys are <key>-<n> */
    int nplayers;        /* 1..KWRITER_PLAYERS_MAX */
    /* Results: read after kwriter_stop (acked also while it runs). */
    atomic_int acked;
    int keys[KWRITER_PLAYERS_MAX]; /* acknowledged writes per player, over the whole run */
    int failed;                    /* answers other than 2xx, over the whole run */
    char error[640];               /* the first of them, or "" */
    /* Private. */
    pthread_t th;
    atomic_int stop;
    int running, next;
};

/** Start (or start again) the writer thread of @w: 0, or -1. */
int kwriter_start(struct kwriter *w);

/** Wait until @n more writes are acknowledged: 0, or -1 after 30 s (the load is stuck). */
int kwriter_wait(struct kwriter *w, int n);

/** Compare @entries, the "entries" of a board page that holds every player of @w (a GET
 * .../top answer), with the writes acknowledged: -1 when each player's score is its count of
 * acknowledged writes, else the first player that differs (its score printed on stderr). */
int kwriter_mismatch(const struct kwriter *w, const json_t *entries);

/** Stop the thread (a no-op when it is not running). */
void kwriter_stop(struct kwriter *w);

#endif
