/* tests/unit/test_conf.c — the cluster file's decoder (conf/cluster.h): a complete file read
 * member by member, relative paths joined to the file's folder, and a table of bad files, each
 * refused with LR_EMALFORMED and a message naming the bad field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/cluster.h"
#include "lib/err.h"
#include "tests/lib/testlib.h"

/* One region of one replica: the smallest file there is, and the start of most bad ones. */
#define R1                                                                                         \
    "{\"id\":\"eu\",\"replicas\":[{\"id\":1,\"raft\":\"10.0.0.1:7001\",\"rpc\":\"10.0.0.1:8001\"}" \
    "]}"
#define REGIONS "\"regions\":[" R1 "]"

static const char good[] =
    "{\"version\":1, \"data_dir\":\"/var/lib/laurel\", \"_comment\":\"ignored\",\n"
    " \"regions\":[{\"id\":\"eu\",\"replicas\":[\n"
    "   {\"id\":1,\"raft\":\"eu1.example:7001\",\"rpc\":\"eu1.example:8001\",\"host\":\"eu1\"},\n"
    "   {\"id\":2,\"raft\":\"10.0.0.2:7001\",\"rpc\":\"10.0.0.2:8001\"}]},\n"
    "  {\"id\":\"us\",\"replicas\":[{\"id\":1,\"raft\":\"[::1]:7001\",\"rpc\":\"[::1]:8001\"}]}],\n"
    " \"meta\":{\"replicas\":[{\"id\":1,\"raft\":\"10.0.0.1:7101\",\"rpc\":\"10.0.0.1:8101\"}]},\n"
    " \"routers\":[{\"id\":\"r1\",\"http\":\"0.0.0.0:8080\",\"host\":\"eu1\"},\n"
    "              {\"id\":\"r2\",\"http\":\"0.0.0.0:8080\",\"host\":\"us1\"}],\n"
    " \"tls\":{\"cert\":\"tls/router.crt\",\"key\":\"/etc/laurel/tls/router.key\"},\n"
    " \"keys\":{\"keys_file\":\"keys.json\",\"cluster_key_file\":\"/etc/laurel/cluster.key\"},\n"
    " \"limits\":{\"node\":{\"rpc_max_conns\":20000,\"sync\":true,\"disk_reserve_mb\":0},\n"
    "            \"router\":{\"limit_key_writes\":\"100/200\",\"limit_addr_reads\":0,\n"
    "                        \"hold_boards\":\"\",\"timeout_ms\":3000}}}\n";

/* A complete file: every member lands where conf/cluster.h says. */
static void test_good_file(void **state)
{
    (void)state;
    struct conf_cluster *c = NULL;
    char errmsg[LR_ERRMSG_SIZE];
    assert_int_equal(conf_cluster_parse(good, strlen(good), "/etc/laurel", &c, errmsg), 0);
    assert_int_equal(c->nregions, 2);
    assert_string_equal(c->regions[0].id, "eu");
    assert_int_equal(c->regions[0].n, 2);
    assert_string_equal(c->regions[0].r[0].host, "eu1");
    assert_string_equal(c->regions[0].r[1].host, "10.0.0.2"); /* the rpc address's host */
    assert_string_equal(c->regions[1].r[0].rpc, "[::1]:8001");
    assert_true(c->have_meta);
    assert_string_equal(c->meta.id, "meta");
    assert_int_equal(c->nrouters, 2);
    assert_string_equal(c->data_dir, "/var/lib/laurel");
    assert_string_equal(c->tls_cert, "/etc/laurel/tls/router.crt");
    assert_string_equal(c->tls_key, "/etc/laurel/tls/router.key");
    assert_string_equal(c->keys_file, "/etc/laurel/keys.json");
    assert_string_equal(c->cluster_key_file, "/etc/laurel/cluster.key");
    assert_true(c->limit_set[CONF_LIMIT_NODE_rpc_max_conns]);
    assert_string_equal(c->limit[CONF_LIMIT_NODE_rpc_max_conns], "20000");
    assert_true(c->limit_set[CONF_LIMIT_NODE_sync]);
    assert_string_equal(c->limit[CONF_LIMIT_ROUTER_limit_key_writes], "100/200");
    assert_string_equal(c->limit[CONF_LIMIT_ROUTER_limit_addr_reads], "0");
    assert_true(c->limit_set[CONF_LIMIT_ROUTER_hold_boards]);
    assert_false(c->limit_set[CONF_LIMIT_ROUTER_ws_max_conns]);
    assert_non_null(conf_cluster_group(c, "us"));
    assert_ptr_equal(conf_cluster_group(c, "meta"), &c->meta);
    assert_null(conf_cluster_group(c, "asia"));
    assert_ptr_equal(conf_group_replica(&c->regions[0], 2), &c->regions[0].r[1]);
    assert_null(conf_group_replica(&c->regions[0], 3));
    assert_ptr_equal(conf_cluster_router(c, "r2"), &c->routers[1]);
    assert_null(conf_cluster_router(c, "r3"));
    conf_cluster_free(c);
}

/* Every limit's flag is a distinct flag of its process, so the file cannot set one twice. */
static void test_limit_table(void **state)
{
    (void)state;
    for (int i = 0; i < CONF_LIMIT_N; i++) {
        const struct conf_limit_def *a = conf_limit_def((enum conf_limit)i);
        assert_non_null(a->member);
        for (int j = 0; j < i; j++) {
            const struct conf_limit_def *b = conf_limit_def((enum conf_limit)j);
            assert_false(a->proc == b->proc && strcmp(a->flag, b->flag) == 0);
            assert_false(a->proc == b->proc && strcmp(a->member, b->member) == 0);
        }
    }
}

/* A file loaded from disk takes its folder as the base of relative paths, and a file that
 * cannot be read is LR_EIO naming it. */
static void test_load_relative(void **state)
{
    (void)state;
    char *dir = testlib_tmpdir(), path[512], errmsg[LR_ERRMSG_SIZE], want[600];
    snprintf(path, sizeof path, "%s/cluster.json", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs("{" REGIONS ",\"data_dir\":\"data\",\"keys\":{\"keys_file\":\"k.json\"}}", f);
    fclose(f);
    struct conf_cluster *c = NULL;
    assert_int_equal(conf_cluster_load(path, &c, errmsg), 0);
    snprintf(want, sizeof want, "%s/data", dir);
    assert_string_equal(c->data_dir, want);
    snprintf(want, sizeof want, "%s/k.json", dir);
    assert_string_equal(c->keys_file, want);
    conf_cluster_free(c);
    unlink(path);
    assert_int_equal(conf_cluster_load(path, &c, errmsg), LR_EIO);
    assert_non_null(strstr(errmsg, path));
    rmdir(dir);
    free(dir);
}

/* Bad files, each with the words its error must hold. */
static const struct {
    const char *text, *error;
} bad[] = {
    {"", "line 1"},
    {"[1]", "(top): expected an object"},
    {"{\"regions\":[" R1 "],\"regions\":[]}", "duplicate"},
    {"{}", "regions: missing"},
    {"{\"regions\":[]}", "regions: expected an array of 1 to 16 regions"},
    {"{\"regions\":{}}", "regions: expected an array"},
    {"{" REGIONS ",\"region\":\"eu\"}", "region: unknown field"},
    {"{" REGIONS ",\"version\":2}", "version: expected 1"},
    {"{\"regions\":[7]}", "regions[0]: expected an object"},
    {"{\"regions\":[{\"replicas\":[]}]}", "regions[0].id: missing"},
    {"{\"regions\":[{\"id\":\"e u\",\"replicas\":[]}]}", "regions[0].id: expected 1 to 64"},
    {"{\"regions\":[{\"id\":\"meta\",\"replicas\":[]}]}", "regions[0].id: \"meta\" is the"},
    {"{\"regions\":[{\"id\":\"eu\"}]}", "regions[0].replicas: missing"},
    {"{\"regions\":[{\"id\":\"eu\",\"replicas\":[]}]}", "regions[0].replicas: expected an array"},
    {"{\"regions\":[{\"id\":\"eu\",\"replicas\":[{}]}]}", "regions[0].replicas[0].id: missing"},
    {"{\"regions\":[{\"id\":\"eu\",\"replicas\":[{\"id\":0}]}]}",
     "regions[0].replicas[0].id: expected a whole number >= 1"},
    {"{\"regions\":[{\"id\":\"eu\",\"replicas\":[{\"id\":\"1\"}]}]}",
     "regions[0].replicas[0].id: expected a whole number"},
    {"{\"regions\":[{\"id\":\"eu\",\"replicas\":[{\"id\":1,\"rpc\":\"a:1\"}]}]}",
     "regions[0].replicas[0].raft: missing"},
    {"{\"regions\":[" R1
     ",{\"id\":\"us\",\"replicas\":[{\"id\":1,\"raft\":\"b:1\",\"rpc\":\"b\"}]}]}",
     "regions[1].replicas[0].rpc: expected HOST:PORT"},
    {"{\"regions\":[{\"id\":\"eu\",\"replicas\":[{\"id\":1,\"raft\":5,\"rpc\":\"a:2\"}]}]}",
     "regions[0].replicas[0].raft: expected HOST:PORT"},
    {"{\"regions\":[{\"id\":\"eu\",\"replicas\":[{\"id\":1,\"raft\":\"a:1\",\"rpc\":\"a:2\","
     "\"port\":3}]}]}",
     "regions[0].replicas[0].port: unknown field"},
    {"{\"regions\":[{\"id\":\"eu\",\"replicas\":[{\"id\":1,\"raft\":\"a:1\",\"rpc\":\"a:2\","
     "\"host\":\"../x\"}]}]}",
     "regions[0].replicas[0].host: expected"},
    {"{\"regions\":[{\"id\":\"eu\",\"replicas\":[{\"id\":1,\"raft\":\"a:1\",\"rpc\":\"a:2\"},"
     "{\"id\":1,\"raft\":\"b:1\",\"rpc\":\"b:2\"}]}]}",
     "regions[0].replicas[1].id: 1 is used twice"},
    {"{\"regions\":[" R1 "," R1 "]}", "regions[1].id: this region is described twice"},
    {"{\"regions\":[{\"id\":\"eu\",\"replicas\":[{\"id\":1,\"raft\":\"a:1\",\"rpc\":\"a:2\"},"
     "{\"id\":2,\"raft\":\"b:1\",\"rpc\":\"a:1\"}]}]}",
     "eu replica 2: rpc a:1 is also eu's raft"},
    {"{" REGIONS ",\"meta\":{\"id\":\"eu\",\"replicas\":[]}}", "meta.id: the metadata group"},
    {"{" REGIONS
     ",\"meta\":{\"replicas\":[{\"id\":1,\"raft\":\"10.0.0.1:7001\",\"rpc\":\"m:1\"}]}}",
     "meta replica 1: raft 10.0.0.1:7001 is also eu's raft"},
    {"{" REGIONS ",\"routers\":{}}", "routers: expected an array"},
    {"{" REGIONS ",\"routers\":[{\"http\":\"a:1\"}]}", "routers[0].id: missing"},
    {"{" REGIONS ",\"routers\":[{\"id\":\"r\",\"http\":\"a\"}]}", "routers[0].http: expected HOST"},
    {"{" REGIONS ",\"routers\":[{\"id\":\"r\",\"http\":\"a:1\"},{\"id\":\"r\",\"http\":\"b:1\"}]}",
     "routers[1].id: this router is described twice"},
    {"{" REGIONS ",\"routers\":[{\"id\":\"r\",\"http\":\"a:1\"},{\"id\":\"s\",\"http\":\"a:1\"}]}",
     "routers[1].http: another router of this host"},
    {"{" REGIONS ",\"tls\":{\"cert\":\"c.pem\"}}", "tls: cert and key go together"},
    {"{" REGIONS ",\"tls\":{\"cert\":\"c.pem\",\"key\":\"\"}}", "tls.key: expected a file name"},
    {"{" REGIONS ",\"tls\":{\"ca\":\"c.pem\"}}", "tls.ca: unknown field"},
    {"{" REGIONS ",\"keys\":{\"keys_file\":1}}", "keys.keys_file: expected a string"},
    {"{" REGIONS ",\"keys\":{\"cluster_key\":\"x\"}}", "keys.cluster_key: unknown field"},
    {"{" REGIONS ",\"data_dir\":[]}", "data_dir: expected a string"},
    {"{" REGIONS ",\"limits\":[]}", "limits: expected an object"},
    {"{" REGIONS ",\"limits\":{\"meta\":{}}}", "limits.meta: unknown field"},
    {"{" REGIONS ",\"limits\":{\"node\":{\"rpc_max_conn\":1}}}",
     "limits.node.rpc_max_conn: unknown field"},
    {"{" REGIONS ",\"limits\":{\"node\":{\"timeout_ms\":1}}}", "limits.node.timeout_ms: unknown"},
    {"{" REGIONS ",\"limits\":{\"node\":{\"rpc_max_conns\":-1}}}",
     "limits.node.rpc_max_conns: expected a whole number from 0"},
    {"{" REGIONS ",\"limits\":{\"node\":{\"rpc_max_conns\":4294967296}}}",
     "limits.node.rpc_max_conns: expected a whole number"},
    {"{" REGIONS ",\"limits\":{\"node\":{\"rpc_max_conns\":\"5\"}}}",
     "limits.node.rpc_max_conns: expected a whole number"},
    {"{" REGIONS ",\"limits\":{\"node\":{\"sync\":1}}}", "limits.node.sync: expected true or"},
    {"{" REGIONS ",\"limits\":{\"router\":{\"limit_key_writes\":\"10/\"}}}",
     "limits.router.limit_key_writes: expected RATE"},
    {"{" REGIONS ",\"limits\":{\"router\":{\"limit_key_writes\":\"1/2/3\"}}}",
     "limits.router.limit_key_writes: expected RATE"},
    {"{" REGIONS ",\"limits\":{\"router\":{\"hold_boards\":3}}}",
     "limits.router.hold_boards: expected a string"},
};

/* Each bad file is refused, with its field's path in the message, and leaves *out alone. */
static void test_bad_files(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct conf_cluster *c = (struct conf_cluster *)state;
        char errmsg[LR_ERRMSG_SIZE] = "";
        int rv = conf_cluster_parse(bad[i].text, strlen(bad[i].text), NULL, &c, errmsg);
        if (rv != LR_EMALFORMED || strstr(errmsg, bad[i].error) == NULL) {
            fail_msg("bad[%zu] %s: rv %d, \"%s\" (wanted \"%s\")", i, bad[i].text, rv, errmsg,
                     bad[i].error);
        }
        assert_ptr_equal(c, (struct conf_cluster *)state);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_file),
        cmocka_unit_test(test_limit_table),
        cmocka_unit_test(test_load_relative),
        cmocka_unit_test(test_bad_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
