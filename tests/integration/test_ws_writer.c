/* tests/integration/test_ws_writer.c — part of test_ws (test_ws.c): the writer thread of
 * stream_follows_another_replica. It writes scores round robin over FO_PLAYERS players through
 * the router, retries each write with its idempotency key on 5xx and errors until it is
 * acknowledged, and counts what was acknowledged per player, which is what the subscriber
 * must then have received. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>

#include "tests/lib/httpc.h"
#include "tests/lib/testlib.h"
#include "test_ws_int.h"

/* Acknowledge @body on board fo, retrying it with the same idempotency key on 5xx and
 * errors for up to 30 s. @return 0, or -1 with the reason in @w->error. */
int fo_write(struct fo_writer *w, const char *body)
{
    double start = now_s();
    for (;;) {
        struct httpc_resp r;
        int s =
            httpc_do(w->http, "POST", "/v1/boards/fo/scores", API, body, &r) == 0 ? r.status : -1;
        if (s == 200) {
            httpc_free(&r);
            return 0;
        }
        if ((s >= 0 && s != 502 && s != 503 && s != 504) || now_s() - start > 30) {
            snprintf(w->error, sizeof w->error, "%s: status %d: %.300s", body, s,
                     s >= 0 && r.body ? r.body : "(no answer)");
            if (s >= 0) {
                httpc_free(&r);
            }
            return -1;
        }
        if (s >= 0) {
            httpc_free(&r);
        }
        w->retries++;
        sleep_ms(20);
    }
}

/* Round robin over the players: player p's k-th write sets its score to k. */
void *fo_writer_main(void *arg)
{
    struct fo_writer *w = arg;
    for (unsigned n = 0; !atomic_load(&w->stop); n++) {
        char body[160];
        unsigned p = n % FO_PLAYERS;
        int k = w->seq[p] + 1;
        snprintf(body, sizeof body,
                 "{\"player_id\":\"fo%u\",\"score\":%d,\"idempotency_key\":\"fo-%u-%06d\"}", p, k,
                 p, k);
        if (fo_write(w, body) != 0) {
            break;
        }
        w->seq[p] = k;
        atomic_fetch_add(&w->acked, 1);
        sleep_ms(5);
    }
    return NULL;
}

/* Stop the writer (before a test fails too: it must not outlive the test). */
void fo_stop(struct fo_writer *w)
{
    if (w->running) {
        atomic_store(&w->stop, 1);
        pthread_join(w->th, NULL);
        w->running = 0;
    }
}

void fo_wait_acked(struct fo_writer *w, int n)
{
    for (int waited = 0; atomic_load(&w->acked) < n && w->error[0] == '\0'; waited += 50) {
        if (waited > 60000) {
            fo_fail(w, "writes stalled at %d acknowledged (waiting for %d)", atomic_load(&w->acked),
                    n);
        }
        sleep_ms(50);
    }
    if (w->error[0]) {
        fo_fail(w, "a write was never acknowledged: %s", w->error);
    }
}
