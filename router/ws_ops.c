/* router/ws_ops.c — the client messages of `GET /v1/ws` (API.md, "WebSocket"; see ws.h):
 * JSON objects with an "op", each op a row of one table (ws_ops__table) with its handler.
 *
 * A bad message gets an error event and the connection stays open: nothing a client sends
 * closes it here. Answers go through the connection's send queue (ws.c), in the order they
 * are made: a subscribe's "subscribed" before the board tops the subscribe itself produced. */
#include <jansson.h>
#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../lib/err.h"
#include "ws_int.h"

#define WS_OPS__TOPICS_MAX 100 /* topics in one subscribe */

/* ---- subscribe, unsubscribe, ping ------------------------------------------------------------ */

/* The strings of @topics (an array of 1..WS_OPS__TOPICS_MAX strings) into @out: the count, or
 * -1 with an error sent. */
static int ws_ops__topics(struct ws_conn *c, json_t *topics, const char **out)
{
    size_t n = json_is_array(topics) ? json_array_size(topics) : 0;
    if (n == 0 || n > WS_OPS__TOPICS_MAX) {
        ws__error(c, LR_EINVAL, "topics must be an array of 1 to 100 topic strings");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        out[i] = json_string_value(json_array_get(topics, i));
        if (out[i] == NULL) {
            ws__error(c, LR_EINVAL, "topics must be strings");
            return -1;
        }
    }
    return (int)n;
}

/* subscribe (@subscribe 1, with an optional resume) and unsubscribe (0) share their shape. */
static void ws_ops__topics_op(struct ws_conn *c, json_t *msg, int subscribe)
{
    const char *names[WS_OPS__TOPICS_MAX];
    char err[320];
    int n = ws_ops__topics(c, json_object_get(msg, "topics"), names);
    json_t *resume = json_object_get(msg, "resume");
    if (n < 0) {
        return;
    }
    if (resume && (!subscribe || !json_is_object(resume))) {
        ws__error(c, LR_EINVAL, "resume must be an object of region: last index seen");
        return;
    }
    json_t *ok = json_array();
    if (ok == NULL) {
        ws__kill(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
        return;
    }
    /* A board topic's current top comes from inside the subscribe: hold it until the
     * "subscribed" answer is queued, so the client learns of the subscription first. */
    c->holding = 1;
    for (int i = 0; i < n; i++) {
        if (!subscribe) {
            gateway_client_unsubscribe(c->cl, names[i]);
            json_array_append_new(ok, json_string(names[i]));
            continue;
        }
        int rv = gateway_client_subscribe(c->cl, names[i], err, sizeof err);
        if (rv != 0) {
            c->holding = 0;
            ws__error(c, rv, err);
            c->holding = 1;
        } else {
            json_array_append_new(ok, json_string(names[i]));
        }
    }
    c->holding = 0;
    if (json_array_size(ok) > 0 && subscribe) { /* every topic refused: the errors said it all */
        /* Where the live streams stand as this subscription starts: what a client that had no
         * event of a region yet resumes from after a reconnect (docs/api.md). */
        ws__send_json(c, json_pack("{s:s,s:o,s:o*}", "type", "subscribed", "topics", ok,
                                   "positions", gateway_client_positions(c->cl)));
    } else if (json_array_size(ok) > 0) {
        ws__send_json(c, json_pack("{s:s,s:o}", "type", "unsubscribed", "topics", ok));
    } else {
        json_decref(ok);
    }
    ws__send_held(c);
    if (resume) {
        const char *region;
        json_t *v;
        json_object_foreach(resume, region, v)
        {
            if (!json_is_integer(v) || json_integer_value(v) < 0) {
                ws__error(c, LR_EINVAL, "resume: each region's last index is an integer >= 0");
                continue;
            }
            /* Each replay is a stream from a replica: a client must not open them without
             * bound. The subscription above stands; only the replay is refused. */
            if (gateway_client_replays(c->cl) >= c->w->cfg.max_resumes) {
                snprintf(err, sizeof err,
                         "resume: %u resumes are replaying on this connection already; "
                         "resume again once they end",
                         c->w->cfg.max_resumes);
                c->w->st.resumes_refused++;
                ws__error(c, LR_ERATELIMIT, err);
                continue;
            }
            int rv = gateway_client_resume(c->cl, region, (uint64_t)json_integer_value(v), names,
                                           (size_t)n, err, sizeof err);
            if (rv != 0) {
                ws__error(c, rv, err); /* LR_EUNAVAILABLE: resume again; else the request */
            }
        }
    }
}

static void ws_ops__subscribe(struct ws_conn *c, json_t *msg)
{
    ws_ops__topics_op(c, msg, 1);
}

static void ws_ops__unsubscribe(struct ws_conn *c, json_t *msg)
{
    ws_ops__topics_op(c, msg, 0);
}

static void ws_ops__ping(struct ws_conn *c, json_t *msg)
{
    (void)msg;
    ws__send_json(c, json_pack("{s:s}", "type", "pong"));
}

/* ---- get ------------------------------------------------------------------------------------- */

/* A get in flight: the connection (one reference) and the request's id, as JSON text. */
struct ws_ops__get {
    struct ws_conn *c;
    char *id;
};

static void ws_ops__get_reply(void *data, int status, const char *body, size_t len)
{
    struct ws_ops__get *gr = data;
    struct ws_conn *c = gr->c;
    if (c->wsi != NULL) {
        /* The body is JSON the router just encoded: it is spliced in as is rather than parsed
         * and encoded again. Every other piece comes from jansson. */
        json_t *head = json_pack("{s:s,s:i}", "type", "response", "status", status);
        char *h = head ? json_dumps(head, JSON_COMPACT) : NULL;
        size_t hl = h ? strlen(h) : 0, il = strlen(gr->id);
        static const char kid[] = ",\"id\":", kbody[] = ",\"body\":";
        size_t total = hl - 1 + sizeof kid - 1 + il + sizeof kbody - 1 + len + 1;
        struct gateway_msg *m = h ? malloc(sizeof *m + GATEWAY_MSG_PRE + total) : NULL;
        if (m) {
            char *p = (char *)m->data + GATEWAY_MSG_PRE;
            memcpy(p, h, hl - 1); /* without its closing brace */
            p += hl - 1;
            memcpy(p, kid, sizeof kid - 1);
            p += sizeof kid - 1;
            memcpy(p, gr->id, il);
            p += il;
            memcpy(p, kbody, sizeof kbody - 1);
            p += sizeof kbody - 1;
            memcpy(p, body, len);
            p += len;
            *p = '}';
            m->refs = 1;
            m->len = total;
            ws__send(c, m);
            gateway_msg_unref(m);
        } else {
            ws__kill(c, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
        }
        free(h);
        json_decref(head);
    }
    c->gets--;
    free(gr->id);
    free(gr);
    ws__conn_unref(c);
}

static int ws_ops__hex(int ch)
{
    if (ch >= '0' && ch <= '9') {
        return ch - '0';
    }
    if (ch >= 'a' && ch <= 'f') {
        return ch - 'a' + 10;
    }
    if (ch >= 'A' && ch <= 'F') {
        return ch - 'A' + 10;
    }
    return -1;
}

/* %-decode @s in place as lws decodes an HTTP request ('+' is a space in the query); a NUL
 * or a bad escape makes it malformed: -1. */
static int ws_ops__decode(char *s, int query)
{
    char *o = s;
    for (char *p = s; *p; p++) {
        if (*p == '%') {
            int hi = ws_ops__hex(p[1]), lo = hi < 0 ? -1 : ws_ops__hex(p[2]);
            if (lo < 0 || (hi == 0 && lo == 0)) {
                return -1;
            }
            *o++ = (char)(hi * 16 + lo);
            p += 2;
        } else {
            *o++ = query && *p == '+' ? ' ' : *p;
        }
    }
    *o = '\0';
    return 0;
}

static void ws_ops__get(struct ws_conn *c, json_t *msg)
{
    json_t *id = json_object_get(msg, "id");
    const char *path = json_string_value(json_object_get(msg, "path"));
    char buf[2048];
    if (path == NULL || strncmp(path, "/v1/", 4) != 0 || strlen(path) >= sizeof buf) {
        ws__error(c, LR_EINVAL, "get: path must be a /v1/ read path of at most 2047 bytes");
        return;
    }
    if (c->gets >= c->w->cfg.max_gets) {
        char e[160];
        snprintf(e, sizeof e,
                 "get: %u gets are in flight on this connection already; wait for an answer",
                 c->w->cfg.max_gets);
        c->w->st.gets_refused++;
        ws__error(c, LR_ERATELIMIT, e);
        return;
    }
    snprintf(buf, sizeof buf, "%s", path);
    char *q = strchr(buf, '?');
    if (q) {
        *q++ = '\0';
    }
    /* Each query field is decoded alone and joined with '&' again, as lws does. */
    if (ws_ops__decode(buf, 0) != 0 || (q && ws_ops__decode(q, 1) != 0)) {
        ws__error(c, LR_EINVAL, "get: malformed %-escape in path");
        return;
    }
    struct ws_ops__get *gr = malloc(sizeof *gr);
    if (gr == NULL ||
        (gr->id = json_dumps(id ? id : json_null(), JSON_ENCODE_ANY | JSON_COMPACT)) == NULL) {
        free(gr);
        ws__error(c, LR_ENOMEM, "out of memory");
        return;
    }
    gr->c = c;
    c->refs++;
    c->gets++;
    if (c->w->get(c->w->get_data, buf, q ? q : "", ws_ops__get_reply, gr) != 0) {
        c->gets--;
        free(gr->id);
        free(gr);
        ws__conn_unref(c);
        ws__error(c, LR_ENOMEM, "out of memory");
    }
}

/* ---- the table ------------------------------------------------------------------------------- */

static const struct ws_ops__op {
    const char *name;
    void (*handle)(struct ws_conn *c, json_t *msg); /* @msg: a JSON object, borrowed */
} ws_ops__table[] = {
    {"subscribe", ws_ops__subscribe},
    {"unsubscribe", ws_ops__unsubscribe},
    {"ping", ws_ops__ping},
    {"get", ws_ops__get},
};

/* The ops as the error sentences list them: a row added above belongs here too. */
#define WS_OPS__NAMES "subscribe, unsubscribe, ping or get"
_Static_assert(sizeof ws_ops__table / sizeof ws_ops__table[0] == 4,
               "WS_OPS__NAMES must list every op of ws_ops__table");

void ws_ops__message(struct ws_conn *c, const char *p, size_t len)
{
    json_error_t jerr;
    json_t *msg = json_loadb(p, len, JSON_REJECT_DUPLICATES, &jerr);
    const char *op = json_string_value(json_object_get(msg, "op"));
    const struct ws_ops__op *row = NULL;
    for (size_t i = 0; op && i < sizeof ws_ops__table / sizeof ws_ops__table[0]; i++) {
        if (strcmp(op, ws_ops__table[i].name) == 0) {
            row = &ws_ops__table[i];
        }
    }
    if (msg == NULL || !json_is_object(msg)) {
        char e[256];
        snprintf(e, sizeof e, "a message must be a JSON object: %s", msg ? "it is not" : jerr.text);
        ws__error(c, LR_EINVAL, e);
    } else if (op == NULL) {
        ws__error(c, LR_EINVAL, "op is required: " WS_OPS__NAMES);
    } else if (row == NULL) {
        ws__error(c, LR_EINVAL, "unknown op: use " WS_OPS__NAMES);
    } else {
        row->handle(c, msg);
    }
    json_decref(msg);
}
