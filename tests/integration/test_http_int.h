/* tests/integration/test_http_int.h — what the files of the test_http binary share: the
 * fixture (the server on the test's loop), the handler and the client-thread runner, the
 * blocking HTTP client and the assertions (test_http.c), and each file's scenarios for main. */
#ifndef LAUREL_TEST_HTTP_INT_H
#define LAUREL_TEST_HTTP_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "router/http.h"
#include "tests/lib/testlib.h"

struct fixture {
    uv_loop_t loop;
    uv_async_t wake;
    struct http *http;
    int port;
    int client_done;
    int stopped;
    unsigned requests;   /* handler calls */
    unsigned later_dead; /* /later answers that found their connection gone */
    struct http_req *held;
    uv_timer_t stop_timer;
};

struct conn {
    int fd;
    size_t len; /* bytes in buf not yet consumed */
    char buf[64 * 1024];
};

struct resp {
    int status;      /* 0: the connection closed or timed out first */
    char head[4096]; /* status line and headers, NUL-terminated */
    char *body;      /* malloc'd, NUL-terminated */
    size_t body_len;
};

struct one {
    struct resp r;
    int rv;
};

int conn_sendf(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* test_http.c: the handler, the client-thread runner, the blocking client and the
 * assertions (described where defined) */
uint32_t byte_sum(const char *p, size_t n);
void stopped(void *data);
void handler(void *data, struct http_req *req);
void run_client(struct fixture *f, void (*fn)(struct fixture *, void *), void *arg);
uint64_t now_ms(void);
int conn_open(struct conn *c, int port);
void conn_close(struct conn *c);
int conn_send(struct conn *c, const void *p, size_t n);
void resp_free(struct resp *r);
const char *resp_header(const struct resp *r, const char *name, char *out, size_t cap);
int conn_recv_for(struct conn *c, struct resp *r, int head);
int conn_recv(struct conn *c, struct resp *r);
long conn_wait_closed(struct conn *c, int timeout_ms);
int fetch(int port, const char *req, size_t len, struct resp *r);
int fetch_echo(int port, struct resp *r);
void assert_echo(const struct resp *r, const char *method, const char *path, const char *query,
                 const char *auth, size_t body_len, uint32_t sum);

/* test_http_requests.c: requests as they should be */
void get_carries_path_query_and_auth(void **state);
void bodies_arrive_whole(void **state);
void keepalive_carries_several_requests(void **state);
void later_answers_go_out(void **state);
void extra_headers_go_out(void **state);
void large_answer_goes_out_whole(void **state);

/* test_http_limits.c: limits, garbage, stalls and stopping */
void body_over_limit_gets_413(void **state);
void garbage_closes_the_connection(void **state);
void stalled_clients_are_closed(void **state);
void protocol_corners(void **state);
void stop_leaves_held_requests_dead(void **state);
void start_on_a_taken_port_fails(void **state);

#endif
