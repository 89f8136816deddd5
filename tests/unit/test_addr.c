/* tests/unit/test_addr.c — the one host:port parser: every accepted form splits into the
 * host and port it names, every refused one says why it must be refused, and addr_resolve
 * turns literals (and a passive empty host) into the socket address they mean. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "lib/addr.h"
#include "lib/err.h"

struct accepted {
    const char *in, *host;
    uint16_t port;
};

/* IPv4, bracketed IPv6 (brackets dropped from the host), names, and the port's range. */
static void accepted_forms_split(void **state)
{
    (void)state;
    static const struct accepted cases[] = {
        {"127.0.0.1:80", "127.0.0.1", 80},
        {"10.1.2.3:0", "10.1.2.3", 0},
        {"1.2.3.4:65535", "1.2.3.4", 65535},
        {"[::1]:80", "::1", 80},
        {"[2001:db8::1]:65535", "2001:db8::1", 65535},
        {"[::ffff:10.0.0.1]:7001", "::ffff:10.0.0.1", 7001},
        {"[::]:8080", "::", 8080},
        {"localhost:80", "localhost", 80},
        {"replica-1.eu.internal:7001", "replica-1.eu.internal", 7001},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char host[ADDR_HOST_MAX];
        uint16_t port = 1;
        int rv = addr_split(cases[i].in, host, sizeof host, &port);
        if (rv != 0) {
            fail_msg("%s refused: %s", cases[i].in, err_message(rv));
        }
        assert_string_equal(host, cases[i].host);
        assert_int_equal(port, cases[i].port);
        assert_int_equal(addr_valid(cases[i].in), 1);
    }
}

struct refused {
    const char *in, *why;
};

/* Each malformed form is LR_EINVAL, and addr_valid says 0. */
static void malformed_forms_refused(void **state)
{
    (void)state;
    static const struct refused cases[] = {
        {"127.0.0.1", "no port"},
        {"127.0.0.1:", "empty port"},
        {"[::1]", "no port after the brackets"},
        {"1.2.3.4:65536", "port > 65535"},
        {"1.2.3.4:99999999999999999999", "port overflows"},
        {"1.2.3.4:-1", "negative port"},
        {"1.2.3.4:80x", "trailing junk after the port"},
        {"1.2.3.4:80 ", "trailing space after the port"},
        {"[::1]:80]", "trailing bracket"},
        {"::1:80", "unbracketed IPv6: which colon ends the host?"},
        {"2001:db8::1:80", "unbracketed IPv6"},
        {"[]:80", "empty brackets"},
        {"[::1:80", "missing ]"},
        {"::1]:80", "missing ["},
        {"[::1]80", "no colon between ] and the port"},
        {"[1.2.3.4]:80", "brackets hold an IPv6 literal only"},
        {"[[::1]]:80", "nested brackets"},
        {"[::1]]:80", "a stray ] inside the brackets"},
        {"a]b:80", "stray bracket in a name"},
        {"", "empty"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char host[ADDR_HOST_MAX];
        uint16_t port;
        if (addr_split(cases[i].in, host, sizeof host, &port) != LR_EINVAL) {
            fail_msg("\"%s\" not refused with LR_EINVAL: %s", cases[i].in, cases[i].why);
        }
        if (addr_valid(cases[i].in)) {
            fail_msg("\"%s\" valid: %s", cases[i].in, cases[i].why);
        }
    }
    assert_int_equal(addr_split(NULL, NULL, 0, NULL), LR_EINVAL);
    assert_string_equal(err_message(LR_EINVAL), "invalid argument");
}

/* A host of ADDR_HOST_MAX - 1 bytes fits; one more does not, nor a short one in a small
 * buffer. An empty host splits (listeners read it as every address) but is not valid. */
static void host_length_bounds(void **state)
{
    (void)state;
    char in[ADDR_HOST_MAX + 16], host[ADDR_HOST_MAX];
    uint16_t port;
    memset(in, 'a', ADDR_HOST_MAX - 1);
    snprintf(in + ADDR_HOST_MAX - 1, 16, ":80");
    assert_int_equal(addr_split(in, host, sizeof host, &port), 0);
    assert_int_equal(strlen(host), ADDR_HOST_MAX - 1);
    assert_int_equal(addr_valid(in), 1);
    memset(in, 'a', ADDR_HOST_MAX);
    snprintf(in + ADDR_HOST_MAX, 16, ":80");
    assert_int_equal(addr_split(in, host, sizeof host, &port), LR_EINVAL);
    assert_int_equal(addr_valid(in), 0);
    char small[4];
    assert_int_equal(addr_split("abcd:80", small, sizeof small, &port), LR_EINVAL);
    assert_int_equal(addr_split("abc:80", small, sizeof small, &port), 0);
    assert_int_equal(addr_split(":80", host, sizeof host, &port), 0);
    assert_string_equal(host, "");
    assert_int_equal(port, 80);
    assert_int_equal(addr_valid(":80"), 0);
}

/* Literals resolve to their family, address and port without a name server. */
static void resolve_literals(void **state)
{
    (void)state;
    struct sockaddr_storage sa;
    socklen_t len;
    char ip[INET6_ADDRSTRLEN];

    assert_int_equal(addr_resolve("127.0.0.1:7001", 0, &sa, &len), 0);
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)&sa;
    assert_int_equal(sa.ss_family, AF_INET);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    assert_int_equal(ntohs(in4->sin_port), 7001);
    assert_int_equal(in4->sin_addr.s_addr, htonl(INADDR_LOOPBACK));

    assert_int_equal(addr_resolve("[::1]:80", 0, &sa, &len), 0);
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&sa;
    assert_int_equal(sa.ss_family, AF_INET6);
    assert_int_equal(len, sizeof(struct sockaddr_in6));
    assert_int_equal(ntohs(in6->sin6_port), 80);
    assert_true(IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr));

    assert_int_equal(addr_resolve("[2001:db8::1]:65535", 0, &sa, &len), 0);
    assert_int_equal(sa.ss_family, AF_INET6);
    assert_int_equal(ntohs(in6->sin6_port), 65535);
    inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
    assert_string_equal(ip, "2001:db8::1");

    /* A name: localhost is in every hosts file, as IPv4, IPv6 or both. */
    assert_int_equal(addr_resolve("localhost:80", 0, &sa, &len), 0);
    assert_true(sa.ss_family == AF_INET || sa.ss_family == AF_INET6);
    assert_int_equal(ntohs(sa.ss_family == AF_INET ? in4->sin_port : in6->sin6_port), 80);

    assert_int_equal(addr_resolve("::1:80", 0, &sa, &len), LR_EINVAL);
    assert_int_equal(addr_resolve("1.2.3.4:65536", 0, &sa, &len), LR_EINVAL);
}

/* An empty host is every IPv4 address for a listener (passive) and refused for a dialler. */
static void resolve_passive_empty_host(void **state)
{
    (void)state;
    struct sockaddr_storage sa;
    socklen_t len;
    assert_int_equal(addr_resolve(":8080", 1, &sa, &len), 0);
    const struct sockaddr_in *in4 = (const struct sockaddr_in *)&sa;
    assert_int_equal(sa.ss_family, AF_INET);
    assert_int_equal(len, sizeof(struct sockaddr_in));
    assert_int_equal(in4->sin_addr.s_addr, htonl(INADDR_ANY));
    assert_int_equal(ntohs(in4->sin_port), 8080);
    assert_int_equal(addr_resolve(":8080", 0, &sa, &len), LR_EINVAL);
    /* A passive IPv6 literal is that address, not every address. */
    assert_int_equal(addr_resolve("[::1]:8080", 1, &sa, &len), 0);
    assert_int_equal(sa.ss_family, AF_INET6);
    assert_true(IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)&sa)->sin6_addr));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(accepted_forms_split),       cmocka_unit_test(malformed_forms_refused),
        cmocka_unit_test(host_length_bounds),         cmocka_unit_test(resolve_literals),
        cmocka_unit_test(resolve_passive_empty_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
