/* fuzz/fuzz_ws.c — WebSocket client messages (router/ws_ops.c: subscribe, unsubscribe with
 * resume, ping, get) on one connection of fuzz_router.h's headless router, without a socket.
 *
 * Input: the messages of one connection, one per line; each goes to ws_ops__message whole, as
 * ws.c hands over a reassembled message, and a get's request runs through the router's
 * pipeline to the regions' stand-ins (fuzz_upstream.c), which answer with an error.
 *
 * The connection is built here as ws.c's LWS_CALLBACK_ESTABLISHED builds it, with a dummy lws
 * handle: the three libwebsockets calls the send path makes on it are defined below, and the
 * executable's definitions take precedence over the shared library's. Nothing is written.
 *
 * Checks: after each message, everything queued for the client is a JSON object with a string
 * "type"; an error event carries error.code and error.message strings; a get's response has a
 * status of 200..599 and a JSON body, {"error":...} when 400 and up. FUZZ_VERBOSE=1 in the
 * environment prints each message queued for the client. */
#include <jansson.h>
#include <libwebsockets.h>
#include <stdio.h>

#include "fuzz/fuzz.h"
#include "fuzz/fuzz_router.h"
#include "router/gateway.h"
#include "router/router_int.h"
#include "router/ws_int.h"

/* ---- libwebsockets, as the send path sees it ----------------------------------------------- */

int lws_callback_on_writable(struct lws *wsi)
{
    (void)wsi;
    return 1;
}

void lws_set_timeout(struct lws *wsi, enum pending_timeout reason, int secs)
{
    (void)wsi, (void)reason, (void)secs;
}

int lws_send_pipe_choked(struct lws *wsi)
{
    (void)wsi;
    return 0; /* the harness empties the queue after each message */
}

/* ---- the checks ---------------------------------------------------------------------------- */

static void fuzz_ws__bad(const char *why, const struct gateway_msg *m)
{
    fprintf(stderr, "fuzz_ws: %s: %.*s\n", why, (int)m->len, (const char *)gateway_msg_text(m));
    abort();
}

static int fuzz_ws__is_error(json_t *j)
{
    json_t *e = json_object_get(j, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    return code != NULL && code[0] != '\0' && json_is_string(json_object_get(e, "message"));
}

static void fuzz_ws__check(const struct gateway_msg *m)
{
    if (getenv("FUZZ_VERBOSE")) { /* to see what a reproduced input was answered */
        fprintf(stderr, "fuzz_ws: %.*s\n", (int)m->len, (const char *)gateway_msg_text(m));
    }
    json_t *j = json_loadb((const char *)gateway_msg_text(m), m->len, JSON_ALLOW_NUL, NULL);
    const char *type = json_string_value(json_object_get(j, "type"));
    if (!json_is_object(j) || type == NULL) {
        fuzz_ws__bad("not an object with a type", m);
    }
    if (strcmp(type, "error") == 0 && !fuzz_ws__is_error(j)) {
        fuzz_ws__bad("an error without code and message", m);
    }
    if (strcmp(type, "response") == 0) {
        json_int_t status = json_integer_value(json_object_get(j, "status"));
        json_t *body = json_object_get(j, "body");
        if (status < 200 || status > 599 || body == NULL ||
            (status >= 400 && !fuzz_ws__is_error(body))) {
            fuzz_ws__bad("a malformed response", m);
        }
    }
    json_decref(j);
}

/* Check and drop what is queued for @c, as ws.c's writeable callback would send it. */
static void fuzz_ws__flush(struct ws_conn *c)
{
    if (c->nheld != 0) {
        fprintf(stderr, "fuzz_ws: %zu messages still held after a message\n", c->nheld);
        abort();
    }
    for (; c->qn > 0; c->qn--) {
        struct gateway_msg *m = c->q[c->qhead];
        fuzz_ws__check(m);
        c->qhead = (c->qhead + 1) % c->qcap;
        c->qbytes -= m->len;
        c->w->st.queued--;
        c->w->st.queued_bytes -= m->len;
        gateway_msg_unref(m);
    }
}

static void fuzz_ws__on_gateway(void *data, struct gateway_msg *m)
{
    ws__send(data, m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int dummy_wsi;
    struct router *r = fuzz_router();
    struct ws *w = r->ws;
    struct ws_conn *c = calloc(1, sizeof *c);
    if (c == NULL) {
        abort();
    }
    c->w = w;
    c->wsi = (struct lws *)&dummy_wsi;
    c->refs = 1;
    snprintf(c->ip, sizeof c->ip, "127.0.0.1");
    if ((c->cl = gateway_client_new(w->g, fuzz_ws__on_gateway, c)) == NULL) {
        abort();
    }
    w->nalloc++;
    char *text = fuzz_copy(data, size);
    for (size_t at = 0; at < size && !c->kill;) {
        char *nl = memchr(text + at, '\n', size - at);
        size_t len = nl ? (size_t)(nl - (text + at)) : size - at;
        ws_ops__message(c, text + at, len);
        fuzz_router_settle(r, LR_EUNAVAILABLE, NULL, 16);
        fuzz_ws__flush(c);
        at += len + 1;
    }
    free(text);
    /* Closed as ws.c's LWS_CALLBACK_CLOSED closes it: late answers are dropped. */
    c->wsi = NULL;
    gateway_client_free(c->cl);
    c->cl = NULL;
    ws__conn_unref(c);
    fuzz_router_settle(r, LR_EUNAVAILABLE, NULL, 16);
    return 0;
}
