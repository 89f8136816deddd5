/* bench/httpload.h — a closed-loop HTTP/1.1 load generator on its own libuv loop.
 *
 * N keep-alive TCP connections, each with at most one request outstanding: a connection sends
 * its next request as soon as the answer to the previous one is complete. Requests are made
 * by the caller's callback into a buffer the connection owns; answers are parsed minimally
 * (status line and Content-Length; no chunked bodies) and their latency goes into a
 * log-bucketed histogram, so nothing is allocated per request. Used by `laurel bench http`
 * for the measured workloads and the seeding (one-off requests go through hclient.h). */
#ifndef LAUREL_HTTPLOAD_H
#define LAUREL_HTTPLOAD_H

#include <stddef.h>
#include <stdint.h>

/* Latency histogram, HDR-like: 32 linear sub-buckets per power of two of nanoseconds (about
 * 3% resolution), exact below 32 ns, up to 2^38 ns (about 270 s; longer ones count there). */
#define HTTPLOAD_HIST_SUB 32
#define HTTPLOAD_HIST_POW 34
struct httpload_hist {
    uint64_t n;
    uint64_t bucket[HTTPLOAD_HIST_POW][HTTPLOAD_HIST_SUB];
};

/** Count one latency of @ns nanoseconds. */
void httpload_hist_add(struct httpload_hist *h, uint64_t ns);

/** The latency in milliseconds below which a fraction @q (0..1) of the counts fall (the
 * upper edge of its bucket); 0 when empty. */
double httpload_hist_quantile_ms(const struct httpload_hist *h, double q);

/**
 * Make the request numbered @seq (0, 1, 2, ... across all connections) for connection @conn
 * into @buf, at most @cap bytes: the whole request, head and body.
 * @return its length, or 0 when there is nothing more to send (the connection then closes).
 */
typedef size_t (*httpload_make_cb)(void *data, unsigned conn, uint64_t seq, char *buf, size_t cap);

/**
 * An answer arrived: @status, and its body (@len bytes, not NUL-terminated) when the whole
 * answer fit in the connection's buffer (HTTPLOAD_RBUF), else @body is NULL. @body is
 * borrowed for the call. Called for answers after the end of a timed run too (they are not
 * counted in the result).
 */
typedef void (*httpload_done_cb)(void *data, unsigned conn, uint64_t seq, int status,
                                 const char *body, size_t len);

#define HTTPLOAD_WBUF (64 * 1024) /* largest request */
#define HTTPLOAD_RBUF (64 * 1024) /* largest answer whose body the done callback sees */
#define HTTPLOAD_MAX_CONNS 1024

struct httpload_spec {
    const char *addr;      /* IPv4 "host:port"; borrowed for the run */
    unsigned conns;        /* 1..HTTPLOAD_MAX_CONNS */
    double seconds;        /* > 0: a timed run; 0: until @make returns 0 on every connection */
    httpload_make_cb make; /* required */
    httpload_done_cb done; /* optional */
    void *data;            /* passed to the callbacks */
};

struct httpload_result {
    double seconds;            /* measured window: first connect to the end of the run */
    uint64_t sent;             /* requests sent in the window */
    uint64_t answered;         /* answers complete in the window */
    uint64_t ok;               /* of which 2xx */
    uint64_t status[600];      /* answers by status code */
    uint64_t transport_errors; /* failed connects, resets and unparseable answers */
    struct httpload_hist hist; /* latency of every answer in the window */
    char errmsg[256];          /* the first transport error, "" if none */
};

/**
 * Run @spec to completion on a private loop, blocking the caller. A timed run stops sending
 * at the deadline and then waits (at most 10 s) for the answers in flight, which are not
 * counted. A connection that fails is counted in transport_errors and connected again (up to
 * 100 times in a run); its request in flight is lost.
 * @return 0 and *@res, or LR_EINVAL (bad @spec or address) or LR_ENOMEM. Transport errors do
 * not fail the call: they are in *@res.
 */
int httpload_run(const struct httpload_spec *spec, struct httpload_result *res);

/**
 * Write the head of a request, "@method @path HTTP/1.1" with Host, an Authorization header
 * when @key is not NULL and, for a body of @body_len bytes (when @with_body), Content-Type
 * JSON and Content-Length; borrowed for the call.
 * @return its length, or 0 if it does not fit @cap.
 */
size_t httpload_head(char *buf, size_t cap, const char *method, const char *path, const char *addr,
                     const char *key, int with_body, size_t body_len);

#endif
