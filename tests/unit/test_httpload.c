/* tests/unit/test_httpload.c — the load generator's pure parts (latency histogram, request
 * heads) and its failure path against a port nobody listens on. Its work against a real
 * router is covered by test_bench_http. */
#include <stdio.h>
#include <string.h>

#include "proto/client.h"
#include "bench/httpload.h"
#include "lib/err.h"
#include "tests/lib/testlib.h"

static struct httpload_hist hist;

/* Below 32 ns every nanosecond has its own bucket, so quantiles are exact. */
static void hist_exact_below_32ns(void **state)
{
    (void)state;
    memset(&hist, 0, sizeof hist);
    for (uint64_t ns = 0; ns < 20; ns++) {
        httpload_hist_add(&hist, ns);
    }
    assert_int_equal(hist.n, 20);
    /* The upper edge of the bucket of 9 ns (the 10th of 20 values) is 10 ns. */
    assert_true(httpload_hist_quantile_ms(&hist, 0.5) == 10 / 1e6);
}

/* Uniform latencies from 1 µs to 10 ms: p50 and p99 within the 1/32 bucket width. */
static void hist_quantiles_within_resolution(void **state)
{
    (void)state;
    memset(&hist, 0, sizeof hist);
    for (uint64_t us = 1; us <= 10000; us++) {
        httpload_hist_add(&hist, us * 1000);
    }
    double p50 = httpload_hist_quantile_ms(&hist, 0.50);
    double p99 = httpload_hist_quantile_ms(&hist, 0.99);
    assert_true(p50 >= 5.0 && p50 <= 5.0 * (1 + 1.0 / 16));
    assert_true(p99 >= 9.9 && p99 <= 9.9 * (1 + 1.0 / 16));
    assert_true(httpload_hist_quantile_ms(&hist, 1.0) >= 10.0);
}

/* An empty histogram answers 0; a latency beyond the range counts in the last bucket. */
static void hist_empty_and_overflow(void **state)
{
    (void)state;
    memset(&hist, 0, sizeof hist);
    assert_true(httpload_hist_quantile_ms(&hist, 0.99) == 0.0);
    httpload_hist_add(&hist, UINT64_MAX);
    assert_int_equal(hist.n, 1);
    assert_int_equal(hist.bucket[HTTPLOAD_HIST_POW - 1][HTTPLOAD_HIST_SUB - 1], 1);
    assert_true(httpload_hist_quantile_ms(&hist, 0.5) > 200000.0); /* > 200 s */
}

/* A head with a key and a body carries both headers; one that does not fit gives 0. */
static void head_with_and_without_body(void **state)
{
    char buf[512];
    (void)state;
    size_t n = httpload_head(buf, sizeof buf, "POST", "/v1/events", "127.0.0.1:8080", "K2", 1, 42);
    assert_int_equal(n, strlen(buf));
    assert_string_equal(buf,
                        "POST /v1/events HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
                        "Authorization: Bearer K2\r\nContent-Type: application/json\r\n"
                        "Content-Length: 42\r\n\r\n");
    n = httpload_head(buf, sizeof buf, "GET", "/readyz", "h:1", NULL, 0, 0);
    assert_string_equal(buf, "GET /readyz HTTP/1.1\r\nHost: h:1\r\n\r\n");
    assert_int_equal(httpload_head(buf, 20, "GET", "/readyz", "h:1", NULL, 0, 0), 0);
}

static size_t make_get(void *data, unsigned conn, uint64_t seq, char *buf, size_t cap)
{
    (void)conn;
    (void)seq;
    return httpload_head(buf, cap, "GET", "/readyz", data, NULL, 0, 0);
}

/* Nobody listens: the run ends by itself with transport errors and nothing answered (each
 * connection is dialled again a bounded number of times); a bad address is refused. */
static void nobody_listening(void **state)
{
    static struct httpload_result res;
    char addr[32];
    (void)state;
    snprintf(addr, sizeof addr, "127.0.0.1:%d", client_free_port());
    struct httpload_spec spec = {addr, 2, 0, make_get, NULL, addr};
    assert_int_equal(httpload_run(&spec, &res), 0);
    assert_int_equal(res.answered, 0);
    assert_true(res.transport_errors > 0);
    assert_non_null(strstr(res.errmsg, "connect"));
    spec.addr = "no-port";
    assert_int_equal(httpload_run(&spec, &res), LR_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(hist_exact_below_32ns),
        cmocka_unit_test(hist_quantiles_within_resolution),
        cmocka_unit_test(hist_empty_and_overflow),
        cmocka_unit_test(head_with_and_without_body),
        cmocka_unit_test(nobody_listening),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
