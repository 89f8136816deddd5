/* tests/lib/kwriter.c — see kwriter.h. */
#include "kwriter.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "httpc.h"

static void kwriter__sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* One write at a time, as fast as they are answered. */
static void *kwriter__main(void *arg)
{
    struct kwriter *w = arg;
    while (!atomic_load(&w->stop)) {
        char body[256];
        int k = w->next % w->nplayers;
        snprintf(body, sizeof body,
                 "{\"player_id\":\"%s-%d\",\"score\":1,\"idempotency_key\":\"%s-%06d\"}", w->player,
                 k, w->key, w->next);
        for (;;) {
            struct httpc_resp r;
            int s = httpc_do(w->http, "POST", w->path, w->api_key, body, &r) == 0 ? r.status : -1;
            if (s >= 200 && s < 300) {
                httpc_free(&r);
                w->keys[k]++;
                atomic_fetch_add(&w->acked, 1);
                break;
            }
            if (w->failed++ == 0) {
                snprintf(w->error, sizeof w->error, "%s: status %d: %.300s", body, s,
                         s >= 0 && r.body ? r.body : "(no answer)");
            }
            if (s >= 0) {
                httpc_free(&r);
            }
            kwriter__sleep_ms(20);
        }
        w->next++;
    }
    return NULL;
}

int kwriter_start(struct kwriter *w)
{
    if (w->running || w->nplayers < 1 || w->nplayers > KWRITER_PLAYERS_MAX) {
        return -1;
    }
    atomic_store(&w->stop, 0);
    if (pthread_create(&w->th, NULL, kwriter__main, w) != 0) {
        return -1;
    }
    w->running = 1;
    return 0;
}

int kwriter_wait(struct kwriter *w, int n)
{
    int until = atomic_load(&w->acked) + n;
    for (int i = 0; i < 3000 && atomic_load(&w->acked) < until; i++) {
        kwriter__sleep_ms(10);
    }
    return atomic_load(&w->acked) >= until ? 0 : -1;
}

void kwriter_stop(struct kwriter *w)
{
    if (w->running) {
        atomic_store(&w->stop, 1);
        pthread_join(w->th, NULL);
        w->running = 0;
    }
}

int kwriter_mismatch(const struct kwriter *w, const json_t *entries)
{
    int scores[KWRITER_PLAYERS_MAX] = {0};
    size_t i, plen = strlen(w->player);
    json_t *e;
    json_array_foreach(entries, i, e)
    {
        int k;
        const char *p = json_string_value(json_object_get(e, "player_id"));
        if (p && strncmp(p, w->player, plen) == 0 && sscanf(p + plen, "-%d", &k) == 1 && k >= 0 &&
            k < w->nplayers) {
            scores[k] = (int)json_integer_value(json_object_get(e, "score"));
        }
    }
    for (int k = 0; k < w->nplayers; k++) {
        if (scores[k] != w->keys[k]) {
            fprintf(stderr, "# %s-%d: score %d, %d writes acknowledged\n", w->player, k, scores[k],
                    w->keys[k]);
            return k;
        }
    }
    return -1;
}
