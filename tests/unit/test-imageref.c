/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test-imageref.c — every IMAGE form of PROTOCOL.md: ids, VOLUME:PATH,
 * gluster URIs exactly as QEMU documents them, json: pseudo-protocol, the
 * malformed variants (with the sentence each gets), and formatting
 * round-trips.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "imageref.h"
#include "jsonutil.h"

/* ---- helpers ------------------------------------------------------------ */

struct want {
    enum gvm_transport tr;
    const char *host;      /* NULL for unix */
    int port;
    const char *socket;    /* NULL unless unix */
    const char *volume;
    const char *path;
};

static void expect_gluster(const char *uri, const struct want *w)
{
    struct imageref r;
    struct gvm_error err = { 0 };
    int ret = imageref_parse_string(uri, "image", &r, &err);

    if (ret != 0)
        fail_msg("%s: parse failed: %s", uri, err.message);
    assert_int_equal(r.kind, IMAGEREF_GLUSTER);
    assert_int_equal(r.nservers, 1);
    assert_int_equal(r.servers[0].transport, w->tr);
    if (w->host)
        assert_string_equal(r.servers[0].host, w->host);
    else
        assert_null(r.servers[0].host);
    assert_int_equal(r.servers[0].port, w->port);
    if (w->socket)
        assert_string_equal(r.servers[0].socket, w->socket);
    else
        assert_null(r.servers[0].socket);
    assert_string_equal(r.volume, w->volume);
    assert_string_equal(r.path, w->path);
    assert_false(gvm_error_isset(&err));
    imageref_clear(&r);
    assert_null(r.volume);
    assert_null(r.servers);
}

/* Parse must fail with INVALID_PARAMS naming `param`, and the message must
 * contain `needle`. */
static void expect_error(const char *s, const char *needle)
{
    struct imageref r;
    struct gvm_error err = { 0 };
    int ret = imageref_parse_string(s, "backing", &r, &err);

    if (ret == 0) {
        imageref_clear(&r);
        fail_msg("'%s' parsed but should have failed (%s)", s, needle);
    }
    assert_int_equal(ret, -EINVAL);
    assert_int_equal(err.cls, GVM_ERR_INVALID_PARAMS);
    assert_string_equal(err.param, "backing");
    if (!strstr(err.message, needle))
        fail_msg("'%s': message '%s' lacks '%s'", s, err.message, needle);
    /* a whole sentence that names the parameter */
    if (!strstr(err.message, "backing"))
        fail_msg("'%s': message '%s' does not name the parameter", s,
                 err.message);
    /* nothing leaked into r */
    assert_null(r.volume);
    assert_null(r.path);
    assert_null(r.servers);
}

/* ---- the QEMU documentation's examples ---------------------------------- */

static void test_qemu_examples(void **state)
{
    (void)state;
    expect_gluster("gluster://1.2.3.4/testvol/a.img", &(struct want){
        GVM_TRANSPORT_TCP, "1.2.3.4", 0, NULL, "testvol", "a.img" });
    expect_gluster("gluster+tcp://1.2.3.4/testvol/a.img", &(struct want){
        GVM_TRANSPORT_TCP, "1.2.3.4", 0, NULL, "testvol", "a.img" });
    expect_gluster("gluster+tcp://1.2.3.4:24007/testvol/dir/a.img",
        &(struct want){ GVM_TRANSPORT_TCP, "1.2.3.4", 24007, NULL,
                        "testvol", "dir/a.img" });
    expect_gluster("gluster+tcp://[1:2:3:4:5:6:7:8]/testvol/dir/a.img",
        &(struct want){ GVM_TRANSPORT_TCP, "1:2:3:4:5:6:7:8", 0, NULL,
                        "testvol", "dir/a.img" });
    expect_gluster("gluster+tcp://[1:2:3:4:5:6:7:8]:24007/testvol/dir/a.img",
        &(struct want){ GVM_TRANSPORT_TCP, "1:2:3:4:5:6:7:8", 24007, NULL,
                        "testvol", "dir/a.img" });
    expect_gluster("gluster+tcp://server.domain.com:24007/testvol/dir/a.img",
        &(struct want){ GVM_TRANSPORT_TCP, "server.domain.com", 24007, NULL,
                        "testvol", "dir/a.img" });
    expect_gluster("gluster+unix:///testvol/dir/a.img?socket=/tmp/glusterd.socket",
        &(struct want){ GVM_TRANSPORT_UNIX, NULL, 0, "/tmp/glusterd.socket",
                        "testvol", "dir/a.img" });
    expect_gluster("gluster+rdma://1.2.3.4:24007/testvol/a.img",
        &(struct want){ GVM_TRANSPORT_RDMA, "1.2.3.4", 24007, NULL,
                        "testvol", "a.img" });
}

static void test_uri_variants(void **state)
{
    (void)state;
    /* No server: QEMU uses localhost. */
    expect_gluster("gluster:///testvol/a.img", &(struct want){
        GVM_TRANSPORT_TCP, "localhost", 0, NULL, "testvol", "a.img" });
    expect_gluster("gluster+tcp://:24008/testvol/a.img", &(struct want){
        GVM_TRANSPORT_TCP, "localhost", 24008, NULL, "testvol", "a.img" });
    /* Port 0 and an empty port both mean the default. */
    expect_gluster("gluster://h:0/v/a", &(struct want){
        GVM_TRANSPORT_TCP, "h", 0, NULL, "v", "a" });
    expect_gluster("gluster://h:/v/a", &(struct want){
        GVM_TRANSPORT_TCP, "h", 0, NULL, "v", "a" });
    expect_gluster("gluster://h:65535/v/a", &(struct want){
        GVM_TRANSPORT_TCP, "h", 65535, NULL, "v", "a" });
    expect_gluster("gluster://[::1]/v/d/e/f.qcow2", &(struct want){
        GVM_TRANSPORT_TCP, "::1", 0, NULL, "v", "d/e/f.qcow2" });
    /* Repeated slashes, as QEMU tolerates. */
    expect_gluster("gluster://h//v//a.img", &(struct want){
        GVM_TRANSPORT_TCP, "h", 0, NULL, "v", "a.img" });
    /* Percent-escapes are decoded in the path and the socket value. */
    expect_gluster("gluster://h/v/my%20disk.img", &(struct want){
        GVM_TRANSPORT_TCP, "h", 0, NULL, "v", "my disk.img" });
    expect_gluster("gluster+unix:///v/a?socket=/run/g%26d.sock",
        &(struct want){ GVM_TRANSPORT_UNIX, NULL, 0, "/run/g&d.sock",
                        "v", "a" });
    expect_gluster("gluster+rdma://h/v/a", &(struct want){
        GVM_TRANSPORT_RDMA, "h", 0, NULL, "v", "a" });
}

static void test_uri_errors(void **state)
{
    (void)state;
    expect_error("gluster+unix://1.2.3.4/v/a?socket=/s", "takes no server or port");
    expect_error("gluster+unix://:24007/v/a?socket=/s", "takes no server or port");
    expect_error("gluster+unix:///v/a", "needs '?socket=PATH'");
    expect_error("gluster+unix:///v/a?socket=", "'socket=' has no value");
    expect_error("gluster+unix:///v/a?socket=rel/s", "not an absolute path");
    expect_error("gluster+unix:///v/a?socket=/a&socket=/b", "'socket' twice");
    expect_error("gluster://h/v/a?socket=/tmp/s", "valid only with gluster+unix");
    expect_error("gluster+tcp://h/v/a?socket=/tmp/s", "valid only with gluster+unix");
    expect_error("gluster+rdma://h/v/a?socket=/tmp/s", "valid only with gluster+unix");
    expect_error("gluster+foo://h/v/a", "unknown transport '+foo'");
    expect_error("gluster+://h/v/a", "unknown transport");
    expect_error("gluster+unix:///v/a?socket=/s&debug=9", "unknown query parameter 'debug'");
    expect_error("gluster://h/v/a?foo=bar", "unknown query parameter 'foo'");
    expect_error("gluster://[1:2:3:4:5:6:7:8/v/a", "unclosed '['");
    expect_error("gluster://[1:2:3:4:5:6:7:8:24007/v/a", "unclosed '['");
    expect_error("gluster://[not:an:addr:zz]/v/a", "is not an IPv6 address");
    expect_error("gluster://[::1]x/v/a", "after the IPv6 address");
    expect_error("gluster://1:2:3:4:5:6:7:8/v/a", "more than one ':'");
    expect_error("gluster://h:65536/v/a", "out of range");
    expect_error("gluster://h:99999999999999999999/v/a", "out of range");
    expect_error("gluster://h:abc/v/a", "'abc' is not a number");
    expect_error("gluster://h:-1/v/a", "is not a number");
    expect_error("gluster://h", "names no volume");
    expect_error("gluster://h/", "names no volume");
    expect_error("gluster://h?socket=/x", "names no volume");
    expect_error("gluster://h/testvol", "names no image path");
    expect_error("gluster://h/testvol/", "names no image path");
    expect_error("gluster://h/testvol/../other/a.img", "..");
    expect_error("gluster://h/testvol/dir/../../a.img", "..");
    expect_error("gluster://h/testvol/%2E%2E/a.img", "..");
    expect_error("gluster://h/te$t/a.img", "volume name 'te$t'");
    expect_error("gluster://h/v/a%2", "not followed by two hex digits");
    expect_error("gluster://h/v/a%zz", "not followed by two hex digits");
    expect_error("gluster://h/v/a%00b", "escaped NUL");
    expect_error("gluster://h%20x/v/a", "not a valid host name");
    expect_error("gluster://user@h/v/a", "user name");
    expect_error("gluster://h/v/a#frag", "fragment");
    /* volume "gluster" with an absolute path: refused by path_check */
    expect_error("gluster:/h/v/a", "");
    expect_error("gluster+tcp:/h/v/a", "lacks '://'");
}

/* ---- json: pseudo-protocol ---------------------------------------------- */

static void test_json_forms(void **state)
{
    (void)state;
    struct imageref r;
    struct gvm_error err = { 0 };

    assert_int_equal(imageref_parse_string(
        "json:{\"driver\":\"gluster\",\"volume\":\"testvol\",\"path\":\"/dir/a.img\","
        "\"server\":[{\"type\":\"tcp\",\"host\":\"1.2.3.4\",\"port\":24008},"
        "{\"type\":\"inet\",\"host\":\"::1\",\"port\":\"24007\"},"
        "{\"type\":\"unix\",\"socket\":\"/var/run/glusterd.socket\"},"
        "{\"type\":\"rdma\",\"host\":\"server.domain.com\"}]}",
        "image", &r, &err), 0);
    assert_int_equal(r.kind, IMAGEREF_GLUSTER);
    assert_string_equal(r.volume, "testvol");
    assert_string_equal(r.path, "dir/a.img");
    assert_int_equal(r.nservers, 4);
    assert_int_equal(r.servers[0].transport, GVM_TRANSPORT_TCP);
    assert_string_equal(r.servers[0].host, "1.2.3.4");
    assert_int_equal(r.servers[0].port, 24008);
    assert_int_equal(r.servers[1].transport, GVM_TRANSPORT_TCP);
    assert_string_equal(r.servers[1].host, "::1");
    assert_int_equal(r.servers[1].port, 24007);
    assert_int_equal(r.servers[2].transport, GVM_TRANSPORT_UNIX);
    assert_string_equal(r.servers[2].socket, "/var/run/glusterd.socket");
    assert_null(r.servers[2].host);
    assert_int_equal(r.servers[3].transport, GVM_TRANSPORT_RDMA);
    assert_string_equal(r.servers[3].host, "server.domain.com");
    assert_int_equal(r.servers[3].port, 0);
    imageref_clear(&r);

    /* wrapped in a format driver, as qemu-img writes backing names */
    assert_int_equal(imageref_parse_string(
        "json:{\"driver\":\"qcow2\",\"file\":{\"driver\":\"gluster\","
        "\"volume\":\"v\",\"path\":\"b.qcow2\",\"debug\":4,"
        "\"server\":[{\"type\":\"unix\",\"path\":\"/run/g.sock\"}]}}",
        "image", &r, &err), 0);
    assert_string_equal(r.volume, "v");
    assert_string_equal(r.path, "b.qcow2");
    assert_int_equal(r.nservers, 1);
    assert_int_equal(r.servers[0].transport, GVM_TRANSPORT_UNIX);
    assert_string_equal(r.servers[0].socket, "/run/g.sock");
    imageref_clear(&r);
    assert_false(gvm_error_isset(&err));
}

static void test_json_errors(void **state)
{
    (void)state;
    expect_error("json:{\"driver\":\"gluster\",", "not valid JSON");
    expect_error("json:{\"driver\":\"nbd\",\"server\":{}}", "driver 'nbd'");
    expect_error("json:{\"volume\":\"v\"}", "no 'driver'");
    expect_error("json:{\"driver\":\"gluster\",\"path\":\"a\","
                 "\"server\":[{\"type\":\"tcp\",\"host\":\"h\"}]}",
                 "needs a 'volume'");
    expect_error("json:{\"driver\":\"gluster\",\"volume\":\"v\","
                 "\"server\":[{\"type\":\"tcp\",\"host\":\"h\"}]}",
                 "needs a 'path'");
    expect_error("json:{\"driver\":\"gluster\",\"volume\":\"v\",\"path\":\"a\"}",
                 "non-empty 'server' array");
    expect_error("json:{\"driver\":\"gluster\",\"volume\":\"v\",\"path\":\"a\","
                 "\"server\":[]}", "non-empty 'server' array");
    expect_error("json:{\"driver\":\"gluster\",\"volume\":\"v\",\"path\":\"a\","
                 "\"server\":[{\"type\":\"tcp\"}]}", "needs a 'host'");
    expect_error("json:{\"driver\":\"gluster\",\"volume\":\"v\",\"path\":\"a\","
                 "\"server\":[{\"type\":\"unix\"}]}", "needs a 'socket'");
    expect_error("json:{\"driver\":\"gluster\",\"volume\":\"v\",\"path\":\"a\","
                 "\"server\":[{\"type\":\"vsock\",\"host\":\"h\"}]}",
                 "unknown type 'vsock'");
    expect_error("json:{\"driver\":\"gluster\",\"volume\":\"v\",\"path\":\"a\","
                 "\"server\":[{\"type\":\"tcp\",\"host\":\"h\",\"port\":\"x1\"}]}",
                 "'x1' is not a number");
    expect_error("json:{\"driver\":\"gluster\",\"volume\":\"v\",\"path\":\"a\","
                 "\"server\":[{\"type\":\"tcp\",\"host\":\"h\",\"port\":70000}]}",
                 "out of range");
    expect_error("json:{\"driver\":\"gluster\",\"volume\":\"v\",\"path\":\"a\","
                 "\"server\":[{\"type\":\"tcp\",\"host\":\"h\",\"socket\":\"/s\"}]}",
                 "unknown key 'socket'");
    expect_error("json:{\"driver\":\"gluster\",\"volume\":\"v\",\"path\":\"a\","
                 "\"server\":[{\"type\":\"unix\",\"socket\":\"/s\",\"host\":\"h\"}]}",
                 "unknown key 'host'");
    expect_error("json:{\"driver\":\"gluster\",\"volume\":\"v\",\"path\":\"a\","
                 "\"bogus\":1,\"server\":[{\"type\":\"tcp\",\"host\":\"h\"}]}",
                 "unknown key 'bogus'");
    expect_error("json:{\"driver\":\"gluster\",\"volume\":\"v\",\"path\":\"../a\","
                 "\"server\":[{\"type\":\"tcp\",\"host\":\"h\"}]}", "..");
    expect_error("json:{\"driver\":\"gluster\",\"volume\":\"v\",\"path\":\"a\","
                 "\"server\":[{\"type\":\"tcp\",\"host\":\"h\"},{\"type\":\"tcp\","
                 "\"host\":\"bad host\"}]}", "server 1");
}

/* ---- ids and VOLUME:PATH ------------------------------------------------ */

static void test_id_and_volpath(void **state)
{
    (void)state;
    struct imageref r;
    struct gvm_error err = { 0 };
    _cleanup_json_ json_t *i42 = json_integer(42);
    _cleanup_json_ json_t *i0 = json_integer(0);
    _cleanup_json_ json_t *neg = json_integer(-3);
    _cleanup_json_ json_t *str = json_string("local:vm/disk.qcow2");
    _cleanup_json_ json_t *flt = json_real(1.5);
    _cleanup_json_ json_t *obj = json_object();

    assert_int_equal(imageref_parse_json(i42, "image", &r, &err), 0);
    assert_int_equal(r.kind, IMAGEREF_ID);
    assert_int_equal(r.id, 42);
    imageref_clear(&r);

    assert_int_equal(imageref_parse_string("17", "image", &r, &err), 0);
    assert_int_equal(r.kind, IMAGEREF_ID);
    assert_int_equal(r.id, 17);
    imageref_clear(&r);

    assert_int_equal(imageref_parse_json(str, "image", &r, &err), 0);
    assert_int_equal(r.kind, IMAGEREF_VOLPATH);
    assert_string_equal(r.volume, "local");
    assert_string_equal(r.path, "vm/disk.qcow2");
    assert_int_equal(r.nservers, 0);
    imageref_clear(&r);

    /* A volume called "json" or "gluster" is still VOLUME:PATH. */
    assert_int_equal(imageref_parse_string("json:a.img", "image", &r, &err), 0);
    assert_int_equal(r.kind, IMAGEREF_VOLPATH);
    assert_string_equal(r.volume, "json");
    imageref_clear(&r);
    assert_int_equal(imageref_parse_string("gluster:x/a.img", "image", &r, &err), 0);
    assert_int_equal(r.kind, IMAGEREF_VOLPATH);
    assert_string_equal(r.volume, "gluster");
    assert_string_equal(r.path, "x/a.img");
    imageref_clear(&r);
    assert_false(gvm_error_isset(&err));

    /* errors */
    struct gvm_error e = { 0 };
    assert_int_equal(imageref_parse_json(i0, "backing", &r, &e), -EINVAL);
    assert_non_null(strstr(e.message, "not positive"));
    gvm_error_clear(&e);
    assert_int_equal(imageref_parse_json(neg, "backing", &r, &e), -EINVAL);
    assert_non_null(strstr(e.message, "-3"));
    gvm_error_clear(&e);
    assert_int_equal(imageref_parse_json(flt, "backing", &r, &e), -EINVAL);
    assert_non_null(strstr(e.message, "integer catalog id or a string"));
    assert_string_equal(e.param, "backing");
    gvm_error_clear(&e);
    assert_int_equal(imageref_parse_json(obj, "backing", &r, &e), -EINVAL);
    gvm_error_clear(&e);

    expect_error("", "empty");
    expect_error("0", "not positive");
    expect_error("99999999999999999999999", "too large");
    expect_error("noColonHere", "is not an image reference");
    expect_error("bad vol:a.img", "volume name 'bad vol'");
    expect_error(":a.img", "volume name is empty");
    expect_error("local:", "no path after the volume");
    expect_error("local:../etc/passwd", "..");
    expect_error("local:/etc/passwd", "");
    expect_error("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa:x",
                 "longer than 64");
}

/* ---- formatting --------------------------------------------------------- */

static void roundtrip(const struct gvm_server *s, const char *vol,
                      const char *path, const char *expect)
{
    _cleanup_free_ char *uri = imageref_format_uri(s, vol, path);
    struct imageref r;
    struct gvm_error err = { 0 };

    assert_non_null(uri);
    if (expect)
        assert_string_equal(uri, expect);
    if (imageref_parse_string(uri, "image", &r, &err) != 0)
        fail_msg("formatted '%s' does not parse: %s", uri, err.message);
    assert_int_equal(r.kind, IMAGEREF_GLUSTER);
    assert_int_equal(r.servers[0].transport, s->transport);
    if (s->transport == GVM_TRANSPORT_UNIX) {
        assert_string_equal(r.servers[0].socket, s->socket);
    } else {
        assert_string_equal(r.servers[0].host, s->host);
        /* the default port is omitted and comes back as 0 */
        assert_int_equal(r.servers[0].port,
                         s->port == GVM_GLUSTER_PORT ? 0 : s->port);
    }
    assert_string_equal(r.volume, vol);
    assert_string_equal(r.path, path);
    imageref_clear(&r);
}

static void test_format(void **state)
{
    (void)state;
    roundtrip(&(struct gvm_server){ GVM_TRANSPORT_TCP, "1.2.3.4", 0, NULL },
              "testvol", "a.img", "gluster://1.2.3.4/testvol/a.img");
    roundtrip(&(struct gvm_server){ GVM_TRANSPORT_TCP, "1.2.3.4", 24007, NULL },
              "testvol", "dir/a.img", "gluster://1.2.3.4/testvol/dir/a.img");
    roundtrip(&(struct gvm_server){ GVM_TRANSPORT_TCP, "h.example", 24008, NULL },
              "v", "a.img", "gluster://h.example:24008/v/a.img");
    roundtrip(&(struct gvm_server){ GVM_TRANSPORT_TCP, "1:2:3:4:5:6:7:8", 0, NULL },
              "testvol", "dir/a.img", "gluster://[1:2:3:4:5:6:7:8]/testvol/dir/a.img");
    roundtrip(&(struct gvm_server){ GVM_TRANSPORT_TCP, "::1", 24010, NULL },
              "v", "a", "gluster://[::1]:24010/v/a");
    roundtrip(&(struct gvm_server){ GVM_TRANSPORT_RDMA, "1.2.3.4", 24007, NULL },
              "testvol", "a.img", "gluster+rdma://1.2.3.4/testvol/a.img");
    roundtrip(&(struct gvm_server){ GVM_TRANSPORT_UNIX, NULL, 0,
                                    "/tmp/glusterd.socket" },
              "testvol", "dir/a.img",
              "gluster+unix:///testvol/dir/a.img?socket=/tmp/glusterd.socket");
    /* characters that need escaping survive the round trip */
    roundtrip(&(struct gvm_server){ GVM_TRANSPORT_TCP, "h", 0, NULL },
              "v", "my disk?#%.img", "gluster://h/v/my%20disk%3F%23%25.img");
    roundtrip(&(struct gvm_server){ GVM_TRANSPORT_UNIX, NULL, 0,
                                    "/run/a&b=c+d#e%f.sock" },
              "v", "x", NULL);

    /* parse -> format reproduces the canonical URI */
    static const char *const canon[] = {
        "gluster://1.2.3.4/testvol/a.img",
        "gluster://server.domain.com:24008/testvol/dir/a.img",
        "gluster://[1:2:3:4:5:6:7:8]/testvol/dir/a.img",
        "gluster+unix:///testvol/dir/a.img?socket=/tmp/glusterd.socket",
        "gluster+rdma://1.2.3.4:24009/testvol/a.img",
    };
    for (size_t i = 0; i < GVM_ARRAY_SIZE(canon); i++) {
        struct imageref r;
        struct gvm_error err = { 0 };
        assert_int_equal(imageref_parse_string(canon[i], "image", &r, &err), 0);
        _cleanup_free_ char *u = imageref_format_uri(&r.servers[0], r.volume,
                                                     r.path);
        assert_string_equal(u, canon[i]);
        imageref_clear(&r);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_qemu_examples),
        cmocka_unit_test(test_uri_variants),
        cmocka_unit_test(test_uri_errors),
        cmocka_unit_test(test_json_forms),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_id_and_volpath),
        cmocka_unit_test(test_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
