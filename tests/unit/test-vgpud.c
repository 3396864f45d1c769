/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-vgpud.c — the daemon's decisions as plain functions: who may write (fake peer
 * credentials and bearer tokens), the thermal policy's state table, the configuration's
 * messages (FILE:LINE and key), and the API's routing rules (403/401/404/405/400) without a
 * socket.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api.h"
#include "auth.h"
#include "conf.h"
#include "vgpu/telemetry.h"

static void test_peer_access(void **state) {
        (void) state;
        struct vgpud_peer root = { .uid = 0, .gid = 0 };
        struct vgpud_peer member_primary = { .uid = 1000, .gid = 990 };
        struct vgpud_peer member_supp = { .uid = 1000, .gid = 1000, .groups = { 27, 990 }, .n_groups = 2 };
        struct vgpud_peer other = { .uid = 1000, .gid = 1000, .groups = { 27, 100 }, .n_groups = 2 };
        struct vgpud_peer nobody = { .uid = 65534, .gid = 65534 };

        assert_int_equal(auth_access_for_peer(&root, true, 990), ACCESS_WRITE);
        assert_int_equal(auth_access_for_peer(&root, false, 0), ACCESS_WRITE);
        assert_int_equal(auth_access_for_peer(&member_primary, true, 990), ACCESS_WRITE);
        assert_int_equal(auth_access_for_peer(&member_supp, true, 990), ACCESS_WRITE);
        assert_int_equal(auth_access_for_peer(&other, true, 990), ACCESS_READ);
        assert_int_equal(auth_access_for_peer(&nobody, true, 990), ACCESS_READ);
        /* the group does not exist: its gid means nothing, only root writes */
        assert_int_equal(auth_access_for_peer(&member_supp, false, 990), ACCESS_READ);
        /* a bogus count never reads past the array */
        struct vgpud_peer liar = { .uid = 5, .gid = 5, .n_groups = 1000 };
        assert_int_equal(auth_access_for_peer(&liar, true, 990), ACCESS_READ);
}

static void test_bearer(void **state) {
        (void) state;
        assert_int_equal(auth_access_for_bearer("Bearer s3cret", "s3cret"), ACCESS_WRITE);
        assert_int_equal(auth_access_for_bearer("bearer s3cret", "s3cret"), ACCESS_WRITE);
        assert_int_equal(auth_access_for_bearer("Bearer s3cre", "s3cret"), ACCESS_NONE);
        assert_int_equal(auth_access_for_bearer("Bearer s3cretX", "s3cret"), ACCESS_NONE);
        assert_int_equal(auth_access_for_bearer("Basic s3cret", "s3cret"), ACCESS_NONE);
        assert_int_equal(auth_access_for_bearer(NULL, "s3cret"), ACCESS_NONE);
        assert_int_equal(auth_access_for_bearer("Bearer ", ""), ACCESS_NONE);
        assert_int_equal(auth_access_for_bearer("Bearer x", NULL), ACCESS_NONE);
}

static void test_thermal_table(void **state) {
        (void) state;
        const struct vgpu_thermal_limits l = { .warn_c = 75, .critical_c = 85, .hysteresis_c = 5 };
        static const struct {
                enum vgpu_thermal_state from;
                int temp;
                enum vgpu_thermal_state to;
        } cases[] = {
                { VGPU_THERMAL_UNKNOWN, 40, VGPU_THERMAL_OK },
                { VGPU_THERMAL_UNKNOWN, 80, VGPU_THERMAL_WARN },
                { VGPU_THERMAL_UNKNOWN, 90, VGPU_THERMAL_CRITICAL },
                { VGPU_THERMAL_UNKNOWN, VGPU_TEMP_UNKNOWN, VGPU_THERMAL_UNKNOWN },
                { VGPU_THERMAL_OK, 74, VGPU_THERMAL_OK },
                { VGPU_THERMAL_OK, 75, VGPU_THERMAL_WARN },
                { VGPU_THERMAL_OK, 85, VGPU_THERMAL_CRITICAL },
                { VGPU_THERMAL_WARN, 70, VGPU_THERMAL_WARN }, /* inside the band */
                { VGPU_THERMAL_WARN, 69, VGPU_THERMAL_OK },
                { VGPU_THERMAL_WARN, 84, VGPU_THERMAL_WARN },
                { VGPU_THERMAL_CRITICAL, 80, VGPU_THERMAL_CRITICAL },
                { VGPU_THERMAL_CRITICAL, 79, VGPU_THERMAL_WARN },
                { VGPU_THERMAL_CRITICAL, 60, VGPU_THERMAL_OK },
                { VGPU_THERMAL_CRITICAL, VGPU_TEMP_UNKNOWN,
                  VGPU_THERMAL_CRITICAL }, /* no reading: no recovery */
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
                assert_int_equal(vgpu_thermal_next(cases[i].from, cases[i].temp, &l), cases[i].to);
        /* a hysteresis wider than the warn-critical gap: critical holds down to critical - h */
        const struct vgpu_thermal_limits wide = { .warn_c = 75, .critical_c = 78, .hysteresis_c = 10 };
        assert_int_equal(vgpu_thermal_next(VGPU_THERMAL_CRITICAL, 70, &wide), VGPU_THERMAL_CRITICAL);
        assert_int_equal(vgpu_thermal_next(VGPU_THERMAL_CRITICAL, 67, &wide), VGPU_THERMAL_WARN);
        assert_false(vgpu_thermal_limits_valid(&(struct vgpu_thermal_limits){ 80, 80, 5 }));
        assert_false(vgpu_thermal_limits_valid(&(struct vgpu_thermal_limits){ 75, 85, 75 }));
}

static void expect_config_error(const char *text, const char *message) {
        struct vgpud_config *c = NULL;
        struct vgpu_error err = {};
        assert_int_equal(vgpud_config_parse(text, "vgpud.conf", &c, &err), -EINVAL);
        assert_null(c);
        if (!strstr(err.message, message))
                fail_msg("expected '%s' in '%s'", message, err.message);
}

/* [fleet]: the keys, both spellings of lease_ttl, and each bad value named */
static void test_config_fleet(void **state) {
        (void) state;
        struct vgpud_config *c = NULL;
        struct vgpu_error err = {};
        assert_int_equal(vgpud_config_parse("# nothing\n", "vgpud.conf", &c, &err), 0);
        assert_null(c->fleet.endpoints); /* off */
        assert_int_equal(c->fleet.lease_ttl_s, 10);
        vgpud_config_free(c);
        const char *text =
                "[fleet]\nendpoints = http://127.0.0.1:20001, https://10.0.0.2:2379\ncluster = lab\n"
                "host = gpu-07\naddress = 10.0.0.7:9836\nca = /etc/ca.pem\ncert = /etc/c.pem\n"
                "key = /etc/c.key\nuser = vgpud\npassword = s e c\nlease_ttl = 3\n";
        assert_int_equal(vgpud_config_parse(text, "vgpud.conf", &c, &err), 0);
        assert_string_equal(c->fleet.endpoints[0], "http://127.0.0.1:20001");
        assert_string_equal(c->fleet.endpoints[1], "https://10.0.0.2:2379");
        assert_null(c->fleet.endpoints[2]);
        assert_string_equal(c->fleet.cluster, "lab");
        assert_string_equal(c->fleet.host, "gpu-07");
        assert_string_equal(c->fleet.password, "s e c");
        assert_int_equal(c->fleet.lease_ttl_s, 3);
        vgpud_config_free(c);
        expect_config_error("[fleet]\nendpoints = 127.0.0.1:2379\n",
                            "vgpud.conf:2: [fleet] endpoints: '127.0.0.1:2379'");
        expect_config_error("[fleet]\nhost = a/b\n", "vgpud.conf:2: [fleet] host = 'a/b'");
        expect_config_error("[fleet]\nlease-ttl = 1\n", "seconds from 2 to 600");
        expect_config_error("[fleet]\ncert = /c.pem\n", "cert and key go together");
        expect_config_error("[fleet]\npassword = x\n", "password is set but user is not");
        expect_config_error("[fleet]\nendpoint = http://x:1\n", "unknown key 'endpoint'");
}

static void test_config(void **state) {
        (void) state;
        struct vgpud_config *c = NULL;
        struct vgpu_error err = {};
        assert_int_equal(vgpud_config_parse("# nothing\n", "vgpud.conf", &c, &err), 0);
        assert_string_equal(c->socket_path, "/run/vgpud/vgpud.sock");
        assert_string_equal(c->group, "vgpu");
        assert_true(c->metrics.enabled);
        assert_string_equal(c->metrics.host, "127.0.0.1");
        assert_int_equal(c->metrics.port, 9835);
        assert_false(c->api.enabled);
        assert_int_equal(c->thermal.warn_c, 75);
        assert_int_equal(c->thermal.critical_c, 85);
        assert_int_equal(c->poll_interval_usec, 10000000);
        assert_int_equal(c->request_timeout_usec, 10000000);
        assert_true(c->collect_sensors &&
                    c->collect_ipmi); /* on by default: each turns itself off without a source */
        vgpud_config_free(c);

        const char *text = "[daemon]\npoll-interval = 500ms\nrequest-timeout = 3s\ngroup = "
                           "kvm\n[metrics]\nlisten = [::1]:9100\n[api]\nlisten = 0.0.0.0:9836\n"
                           "token-file = /etc/vgpuctl/t\n[collectors]\nhwmon = off\nipmi = no\n[thermal "
                           "\"Tesla T4\"]\ncritical = 90\n[thermal]\nwarn = 70\n";
        assert_int_equal(vgpud_config_parse(text, "vgpud.conf", &c, &err), 0);
        assert_int_equal(c->poll_interval_usec, 500000);
        assert_int_equal(c->request_timeout_usec, 3000000);
        assert_string_equal(c->group, "kvm");
        assert_string_equal(c->metrics.host, "::1");
        assert_int_equal(c->metrics.port, 9100);
        assert_true(c->api.enabled);
        assert_false(c->collect_hwmon);
        assert_false(c->collect_ipmi);
        assert_true(c->collect_sensors); /* the default */
        /* the rule inherits what it leaves out, wherever [thermal] is in the file */
        const struct vgpu_thermal_limits *l =
                vgpud_config_limits_for(c, "0000:3b:00.0", "Tesla T4", "10de:1eb8");
        assert_int_equal(l->warn_c, 70);
        assert_int_equal(l->critical_c, 90);
        assert_int_equal(vgpud_config_limits_for(c, "0000:3b:00.0", "Tesla V100", "10de:1db4")->critical_c,
                         85);
        vgpud_config_free(c);

        expect_config_error("[thermal]\nwarn = hot\n",
                            "vgpud.conf:2: [thermal] warn = 'hot': expected degrees C");
        expect_config_error("\n\n[daemon]\npoll-interval = 1y\n",
                            "vgpud.conf:4: [daemon] poll-interval = '1y'");
        expect_config_error("[daemon]\npoll-interval = 10ms\n", "vgpud.conf:2:");
        expect_config_error("[daemon]\nrequest-timeout = 500ms\n",
                            "vgpud.conf:2: [daemon] request-timeout = '500ms': expected a duration from 1s");
        expect_config_error("[daemon]\nsocket-mode = 999\n", "vgpud.conf:2: [daemon] socket-mode");
        expect_config_error("[metrics]\nlisten = 127.0.0.1\n",
                            "vgpud.conf:2: [metrics] listen = '127.0.0.1'");
        expect_config_error("[metrics]\nlisten = 127.0.0.1:99999\n", "vgpud.conf:2:");
        expect_config_error("x = 1\n", "vgpud.conf:1: 'x' is outside any section");
        expect_config_error("[daemon]\n[bogus\n", "vgpud.conf:2: syntax error");
        expect_config_error("[thermal]\nwarn = 80\ncritical = 70\n",
                            "vgpud.conf:3: [thermal] warn 80, critical 70");
        expect_config_error("[thermal nope]\nwarn = 80\n",
                            "vgpud.conf:2: [thermal nope]: expected [thermal] or [thermal \"MATCH\"]");
        expect_config_error("[collectors]\nsmart = yes\n",
                            "vgpud.conf:2: [collectors] unknown collector 'smart' (known: nvml, hwmon, pcie, "
                            "sensors, ipmi)");
        expect_config_error("[collectors]\n\nipmi = maybe\n",
                            "vgpud.conf:3: [collectors] ipmi = 'maybe': expected yes or no");
        expect_config_error("[api]\nlisten = 127.0.0.1:1\n", "[api] listen is on but token-file is not set");
        expect_config_error("[snmp]\nenable = perhaps\n",
                            "vgpud.conf:2: [snmp] enable = 'perhaps': expected yes or no");
        expect_config_error("[snmp]\ncommunity = public\n",
                            "vgpud.conf:2: [snmp] unknown key 'community' (known: enable, agentx-socket)");
        char longline[400];
        snprintf(longline, sizeof(longline), "[daemon]\nhook = %0300d\n", 0);
        expect_config_error(longline, "vgpud.conf:2: line longer than");
        /* the first error wins, and later lines are still counted right */
        expect_config_error("[daemon]\nfoo = 1\nbar = 2\n", "vgpud.conf:2: [daemon] unknown key 'foo'");
}

static struct vgpud ctx;

/* path is writable: "?KEY" is cut off it into one query argument without a value */
static void dispatch(const char *method, char *path, enum vgpud_access access, unsigned listener,
                     struct api_reply *reply) {
        struct api_request req = { .d = &ctx,
                                   .listener = listener,
                                   .method = method,
                                   .path = path,
                                   .body = "",
                                   .access = access,
                                   .caller = "uid 1000 (pid 1)" };
        char *q = strchr(path, '?');
        if (q) { /* one argument: "?key" or "?key=value" */
                *q = '\0';
                char *eq = strchr(q + 1, '=');
                if (eq)
                        *eq = '\0';
                req.query[req.n_query++] = (struct api_query){ q + 1, eq ? eq + 1 : NULL };
        }
        api_dispatch(&req, reply);
}

static void expect(const char *method, const char *path, enum vgpud_access access, unsigned listener,
                   unsigned status, const char *needle) {
        char buf[256];
        struct api_reply reply;
        snprintf(buf, sizeof(buf), "%s", path);
        dispatch(method, buf, access, listener, &reply);
        if (reply.status != status || (needle && !strstr(reply.body, needle)))
                fail_msg("%s %s: got %u %s, expected %u with '%s'", method, path, reply.status, reply.body,
                         status, strempty(needle));
        api_reply_done(&reply);
}

static void test_routes(void **state) {
        (void) state;
        assert_int_equal(vgpud_config_default(&ctx.config), 0);
        expect("GET", "/v1/events", ACCESS_READ, LISTENER_LOCAL, 200, "\"next_seq\":0");
        expect("POST", "/v1/apply", ACCESS_READ, LISTENER_LOCAL, 403,
               "permission denied: uid 1000 (pid 1) may only read");
        expect("DELETE", "/v1/instances/x", ACCESS_READ, LISTENER_LOCAL, 403,
               "group 'vgpu'\",\"group\":\"vgpu\"}");
        expect("GET", "/v1/events", ACCESS_NONE, LISTENER_TCP_API, 401, "bearer token");
        expect("GET", "/metrics", ACCESS_READ, LISTENER_TCP_API, 404, "no such resource");
        expect("GET", "/v1/gpus", ACCESS_READ, LISTENER_METRICS, 404, NULL);
        expect("PATCH", "/v1/instances", ACCESS_WRITE, LISTENER_LOCAL, 405, "allowed: GET, POST");
        expect("DELETE", "/v1/instances/", ACCESS_WRITE, LISTENER_LOCAL, 404, NULL);
        expect("DELETE", "/v1/instances/a/b", ACCESS_WRITE, LISTENER_LOCAL, 404, NULL);
        expect("DELETE", "/v1/instances/zz", ACCESS_WRITE, LISTENER_LOCAL, 400,
               "neither a UUID nor a PCI address");
        expect("GET", "/v1/events?bogus", ACCESS_READ, LISTENER_LOCAL, 400, "unknown query argument 'bogus'");
        expect("POST", "/v1/apply?format=yaml", ACCESS_WRITE, LISTENER_LOCAL, 400,
               "format='yaml': expected json or text");
        expect("DELETE", "/v1/instances/zz?pretty=maybe", ACCESS_WRITE, LISTENER_LOCAL, 400,
               "pretty='maybe'");
        expect("POST", "/v1/instances", ACCESS_WRITE, LISTENER_LOCAL, 400, "expected a JSON object");
        expect("POST", "/v1/apply", ACCESS_WRITE, LISTENER_LOCAL, 400, "the body must be a host.yaml");
        /* every denial is counted */
        assert_int_equal(ctx.events_total[EV_ACCESS_DENIED], 3);
        events_clear(&ctx);
        vgpud_config_free(ctx.config);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_peer_access),   cmocka_unit_test(test_bearer),
                cmocka_unit_test(test_thermal_table), cmocka_unit_test(test_config),
                cmocka_unit_test(test_config_fleet),  cmocka_unit_test(test_routes),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
