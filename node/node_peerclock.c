/* node/node_peerclock.c — the majority's clock: a leader measures its voters' clocks and
 * stamps with the time a majority keeps, not with its own (docs/durability.md, "Time stamps").
 *
 * Stamps never go backwards along the log, so one leader whose wall clock runs ahead drags
 * every later stamp with it, and idempotency keys expire by stamp: a leader 26 h fast would
 * purge keys written minutes ago and apply a retried write twice. CockroachDB bounds clock
 * offset the same way: each node measures its peers, and one that strays from the majority
 * by more than a tolerance does not serve.
 *
 * While it leads, the node asks every other voter for its STATUS (op 3, whose reply carries
 * "now_ms") once a tick and right after it wins an election, over one long-lived connection
 * per peer to the peer's RPC address. A sample is offset = peer_now - (t_send + t_recv) / 2,
 * all in CLOCK_REALTIME: the midpoint assumes the reply was taken halfway through the round
 * trip, so its error is at most half the round trip; samples whose round trip exceeds the
 * tolerance are dropped. The majority's offset is the lower median of {0 (this node), every
 * fresh sample}: with a quorum of values (this node counted), at least half of a quorum
 * agree with a time at or after it. node__stamp uses min(own clock, own clock + offset +
 * tolerance). Without a quorum of fresh samples a leader holds writes (node__may_propose).
 *
 * Each peer's handle lives in struct node (n->pclock[i] for n->cfg.peers[i]); node_stop
 * closes the open ones, each close counted in n->closing_handles. */
#include <stdlib.h>
#include <string.h>

#include "../lib/addr.h"
#include "node_int.h"

/* AUTH: connected, in the cluster-key handshake (with a key only). */
enum { NODE__PC_IDLE = 0, NODE__PC_CONNECTING, NODE__PC_AUTH, NODE__PC_READY, NODE__PC_CLOSING };

static int node__peerclock_is_voter(struct node *n, uint64_t id)
{
    for (unsigned i = 0; i < n->raft.configuration.n; i++) {
        if (n->raft.configuration.servers[i].id == id) {
            return n->raft.configuration.servers[i].role == RAFT_VOTER;
        }
    }
    return 0;
}

static void node__peerclock_closed(uv_handle_t *h)
{
    struct node_peerclock *p = h->data;
    struct node *n = p->n;
    proto_reader_free(&p->rd);
    p->state = NODE__PC_IDLE;
    p->busy = p->writing = 0;
    if (n->stopping) {
        node__closed(n);
    }
}

static void node__peerclock_close(struct node_peerclock *p)
{
    if (p->state == NODE__PC_IDLE || p->state == NODE__PC_CLOSING) {
        return;
    }
    p->state = NODE__PC_CLOSING;
    uv_close((uv_handle_t *)&p->tcp, node__peerclock_closed);
}

static void node__peerclock_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct node_peerclock *p = h->data;
    (void)hint;
    if (p->state == NODE__PC_AUTH) {
        authio_alloc(&p->auth, buf);
        return;
    }
    buf->base = p->n->rbuf; /* consumed before the loop reads anything else */
    buf->len = sizeof p->n->rbuf;
}

/* One STATUS reply: record the sample if it answers the request in flight. */
static void node__peerclock_reply(struct node_peerclock *p, const char *frame, size_t len)
{
    struct node *n = p->n;
    msgpack_unpacked up;
    struct proto_msg m;
    int64_t peer_now;
    int64_t t_recv = node__now_ms();
    msgpack_unpacked_init(&up);
    if (proto_unpack(frame, len, &up) == 0 && proto_msg_decode(&up.data, &m) == 0 && p->busy &&
        m.id == p->req_id && m.op_or_code == 0 &&
        proto_obj_i64(proto_map_get(m.body, "now_ms"), &peer_now) == 0) {
        p->busy = 0;
        int64_t rtt = t_recv - p->t_send;
        if (rtt >= 0 && rtt <= NODE_CLOCK_TOLERANCE_MS) {
            p->offset = peer_now - (p->t_send + t_recv) / 2;
            p->sampled = uv_now(n->loop);
            p->has_sample = 1;
        }
    }
    msgpack_unpacked_destroy(&up);
}

static void node__peerclock_send(struct node_peerclock *p);

static void node__peerclock_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct node_peerclock *p = s->data;
    const char *frame;
    size_t len;
    int rv;
    if (nread < 0) {
        if (p->state == NODE__PC_AUTH) {
            p->n->auth_failures++;
            LOG(p->n->log, LOG_DEBUG, "clock: a peer closed during the cluster-key handshake");
        }
        node__peerclock_close(p);
        return;
    }
    if (p->state == NODE__PC_AUTH) {
        if (nread > 0 && authio_read(&p->auth, (uv_stream_t *)&p->tcp, nread) != 0) {
            p->n->auth_failures++;
            LOG(p->n->log, LOG_DEBUG, "clock: a peer failed the cluster-key handshake: %s",
                authio_why(&p->auth));
            node__peerclock_close(p);
        } else if (authio_done(&p->auth)) {
            p->state = NODE__PC_READY;
            node__peerclock_send(p);
        }
        return;
    }
    if (proto_reader_feed(&p->rd, buf->base, (size_t)nread) != 0) {
        node__peerclock_close(p);
        return;
    }
    while ((rv = proto_reader_next(&p->rd, &frame, &len)) == 1) {
        node__peerclock_reply(p, frame, len);
    }
    if (rv != 0) {
        node__peerclock_close(p);
    }
}

static void node__peerclock_written(uv_write_t *req, int status)
{
    struct node_peerclock *p = req->data;
    p->writing = 0;
    if (status != 0) {
        node__peerclock_close(p);
    }
}

/* Ask @p for its STATUS now. */
static void node__peerclock_send(struct node_peerclock *p)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    size_t mark;
    msgpack_sbuffer_init(&sb);
    proto_frame_begin(&sb, &mark);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    proto_msg_begin(&pk, ++p->req_id, PROTO_OP_STATUS);
    msgpack_pack_map(&pk, 1);
    proto_pack_key(&pk, "peers"); /* passed on: see node__learn_peers */
    node__pack_peers(p->n, &pk);
    proto_frame_end(&sb, mark);
    if (sb.data == NULL || sb.size > sizeof p->wbuf) {
        msgpack_sbuffer_destroy(&sb);
        return; /* out of memory: the next tick tries again */
    }
    memcpy(p->wbuf, sb.data, sb.size);
    uv_buf_t b = uv_buf_init(p->wbuf, (unsigned)sb.size);
    msgpack_sbuffer_destroy(&sb);
    p->wreq.data = p;
    p->t_send = node__now_ms();
    p->sent = uv_now(p->n->loop);
    if (uv_write(&p->wreq, (uv_stream_t *)&p->tcp, &b, 1, node__peerclock_written) != 0) {
        node__peerclock_close(p);
        return;
    }
    p->writing = 1;
    p->busy = 1;
}

static void node__peerclock_connected(uv_connect_t *req, int status)
{
    struct node_peerclock *p = req->data;
    if (p->state != NODE__PC_CONNECTING) {
        return; /* closed meanwhile */
    }
    const struct node *n = p->n;
    p->state = n->cfg.have_cluster_key ? NODE__PC_AUTH : NODE__PC_READY;
    if (status != 0 ||
        authio_start(&p->auth, (uv_stream_t *)&p->tcp,
                     n->cfg.have_cluster_key ? &n->cfg.cluster_key : NULL, 1) != 0 ||
        uv_read_start((uv_stream_t *)&p->tcp, node__peerclock_alloc, node__peerclock_read) != 0) {
        node__peerclock_close(p);
        return;
    }
    if (p->state == NODE__PC_READY) {
        node__peerclock_send(p);
    }
}

static void node__peerclock_connect(struct node *n, struct node_peerclock *p,
                                    const struct node_peer *peer)
{
    struct sockaddr_storage sa;
    socklen_t salen;
    /* Peers are named by IP literals in practice; a name resolves here, on the loop. */
    if (addr_resolve(peer->rpc, 0, &sa, &salen) != 0 || uv_tcp_init(n->loop, &p->tcp) != 0) {
        return;
    }
    p->n = n;
    p->tcp.data = p;
    proto_reader_init(&p->rd);
    p->state = NODE__PC_CONNECTING;
    p->sent = uv_now(n->loop); /* a handshake still unanswered at NODE_CLOCK_FRESH_MS is dropped */
    p->connect.data = p;
    if (uv_tcp_connect(&p->connect, &p->tcp, (struct sockaddr *)&sa, node__peerclock_connected) !=
        0) {
        node__peerclock_close(p);
        return;
    }
    uv_tcp_nodelay(&p->tcp, 1);
}

void node__peerclock_sample(struct node *n)
{
    if (n->stopping || n->fatal) {
        return;
    }
    uint64_t now = uv_now(n->loop);
    for (unsigned i = 0; i < n->cfg.npeers; i++) {
        const struct node_peer *peer = &n->cfg.peers[i];
        struct node_peerclock *p = &n->pclock[i];
        if (peer->id == n->cfg.id || !node__peerclock_is_voter(n, peer->id)) {
            continue;
        }
        switch (p->state) {
        case NODE__PC_IDLE: node__peerclock_connect(n, p, peer); break;
        case NODE__PC_READY:
            if (p->busy && now - p->sent > NODE_CLOCK_FRESH_MS) {
                node__peerclock_close(p); /* no answer: reconnect on the next tick */
            } else if (!p->busy && !p->writing) {
                node__peerclock_send(p);
            }
            break;
        case NODE__PC_AUTH:
            if (now - p->sent > NODE_CLOCK_FRESH_MS) {
                node__peerclock_close(p); /* no answer to the handshake: retry next tick */
            }
            break;
        default: break;
        }
    }
}

static int node__peerclock_cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int node__peerclock_offset(struct node *n, int64_t *offset)
{
    int64_t v[NODE_MAX_PEERS + 1];
    unsigned k = 0, voters = 0;
    uint64_t now = uv_now(n->loop);
    v[k++] = 0; /* this node */
    for (unsigned i = 0; i < n->raft.configuration.n; i++) {
        voters += n->raft.configuration.servers[i].role == RAFT_VOTER;
    }
    for (unsigned i = 0; i < n->cfg.npeers; i++) {
        const struct node_peerclock *p = &n->pclock[i];
        if (n->cfg.peers[i].id != n->cfg.id && p->has_sample &&
            now - p->sampled < NODE_CLOCK_FRESH_MS &&
            node__peerclock_is_voter(n, n->cfg.peers[i].id)) {
            v[k++] = p->offset;
        }
    }
    if (k < voters / 2 + 1) {
        return 0;
    }
    qsort(v, k, sizeof v[0], node__peerclock_cmp);
    *offset = v[(k - 1) / 2];
    return 1;
}

unsigned node__peerclock_close_all(struct node *n)
{
    unsigned open = 0;
    for (unsigned i = 0; i < NODE_MAX_PEERS; i++) {
        struct node_peerclock *p = &n->pclock[i];
        if (p->state != NODE__PC_IDLE) {
            open++;
            node__peerclock_close(p);
        }
    }
    return open;
}
