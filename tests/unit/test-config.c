/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-config.c — host.yaml parsing and validation (lib/config) and its export from a fixture
 * host. What the planner makes of a parsed file is test-plan.c, scheduler policies test-policy.c.
 */
#include "test-config-util.h"

#include <time.h>

#include "vgpu/config.h"

static void test_parse(void **state) {
        (void) state;
        struct vgpu_config *cfg =
                parse_ok("version: 1\n"
                         "gpus:\n"
                         "  - bdf: 3B:00.0\n"
                         "    vfs: 4\n"
                         "    policy: {scheduler: fixed-share, timeslice-ms: 24, frame-rate-limit: off}\n"
                         "    devices:\n"
                         "      - type: nvidia-232\n"
                         "        uuids: [B1E5C3F2-6A7D-4E21-9C43-1A2B3C4D5E01]\n"
                         "        attrs:\n"
                         "          - nvidia/vgpu_params: \"frame_rate_limiter=0\"\n"
                         "      - type: nvidia-230\n"
                         "        count: 0\n"
                         "        auto-start: no\n"
                         "  - pci-id: \"10de:1eb8\"\n"
                         "  - all: true\n"
                         "    devices: []\n");
        assert_int_equal(cfg->n_gpus, 3);
        const struct vgpu_config_gpu *g = &cfg->gpus[0];
        assert_int_equal(g->select, VGPU_SELECT_BDF);
        assert_string_equal(g->value, "0000:3b:00.0"); /* normalised */
        assert_int_equal(g->vfs, 4);
        assert_true(g->has_policy);
        assert_int_equal(g->policy.scheduler, VGPU_SCHED_FIXED_SHARE);
        assert_int_equal(g->policy.timeslice_ms, 24);
        assert_int_equal(g->policy.frame_rate_limit, 0);
        assert_int_equal(g->n_devices, 2);
        assert_int_equal(g->devices[0].count, 1); /* from the UUID list */
        assert_string_equal(g->devices[0].uuids[0], "b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01");
        assert_string_equal(g->devices[0].attrs[0].key, "nvidia/vgpu_params");
        assert_string_equal(g->devices[0].attrs[0].value, "frame_rate_limiter=0");
        assert_true(g->devices[0].auto_start);
        assert_int_equal(g->devices[1].count, 0);
        assert_false(g->devices[1].auto_start);
        assert_int_equal(g->devices[1].line, 11);
        assert_int_equal(cfg->gpus[1].select, VGPU_SELECT_PCI_ID);
        assert_int_equal(cfg->gpus[1].vfs, -1);
        assert_int_equal(cfg->gpus[2].select, VGPU_SELECT_ALL);
        vgpu_config_free(cfg);
}

static void test_parse_errors(void **state) {
        (void) state;
        parse_fails("", "t.yaml: empty file (expected 'version: 1' and 'gpus:')");
        parse_fails("gpus: []\n", "t.yaml:1:1: field 'version' missing (write 'version: 1')");
        parse_fails("version: 2\ngpus: []\n",
                    "t.yaml:1:10: field 'version': this vgpuctl reads version 1, got '2'");
        parse_fails("version: 1\ngpu: []\n",
                    "t.yaml:2:1: unknown top-level field 'gpu' (expected version, gpus, slices)");
        parse_fails("version: 1\ngpus:\n  - bdf: 3b:00.0\n    devices:\n      - type: x\n        cuont: 2\n",
                    "t.yaml:6:9: unknown field 'cuont' in a 'devices' item (expected type or framebuffer, "
                    "count, uuids, attrs, auto-start, persistent, running)");
        parse_fails("version: 1\ngpus:\n  - bdf: 3b:00.0\n    devices:\n      - type: x\n        count: 2\n  "
                    "      running: false\n",
                    "t.yaml:5:9: 'running: false' needs every UUID listed (0 for count 2)");
        parse_fails("version: 1\ngpus:\n  - bdf: 3b:00.0\n    devices:\n      - {type: x, count: 0, running: "
                    "false, persistent: false}\n",
                    "t.yaml:5:9: 'running: false' with 'persistent: false' leaves nothing to apply");
        parse_fails("version: 1\ngpus:\n  - bdf: 3b:00.0\n    devices:\n      - type: x\n        count: -1\n",
                    "t.yaml:6:16: field 'count': expected a whole number from 0 to 4096, got '-1'");
        parse_fails("version: 1\ngpus:\n  - bdf: 3b:00\n",
                    "t.yaml:3:10: field 'bdf': '3b:00' is not a PCI address (DDDD:BB:DD.F)");
        parse_fails("version: 1\ngpus:\n  - pci-id: nvidia\n",
                    "t.yaml:3:13: field 'pci-id': 'nvidia' is not VENDOR:DEVICE in hex (10de:1eb8)");
        parse_fails("version: 1\ngpus:\n  - bdf: 3b:00.0\n    parent: mdpy\n",
                    "t.yaml:3:5: a 'gpus' item needs exactly one of bdf, parent, pci-id, all (found 2)");
        parse_fails("version: 1\ngpus:\n  - parent: mdpy\n    vfs: 2\n",
                    "t.yaml:3:5: field 'vfs': only with 'bdf' (one physical function)");
        parse_fails("version: 1\ngpus:\n  - parent: mdpy\n    devices:\n      - count: 2\n",
                    "t.yaml:5:9: field 'type' (or 'framebuffer') missing in a 'devices' item");
        parse_fails(
                "version: 1\ngpus:\n  - parent: m\n    devices:\n      - type: t\n        count: 1\n        "
                "uuids: [11111111-2222-4333-8444-555555555555, 11111111-2222-4333-8444-666666666666]\n",
                "t.yaml:5:9: field 'uuids': 2 UUIDs for count 1");
        parse_fails("version: 1\ngpus:\n  - parent: m\n    devices:\n      - type: t\n        uuids: "
                    "[not-a-uuid]\n",
                    "t.yaml:6:17: field 'uuids': 'not-a-uuid' is not a UUID");
        parse_fails("version: 1\ngpus:\n  - parent: m\n    policy: {scheduler: round-robin}\n",
                    "t.yaml:4:25: field 'scheduler': expected best-effort, equal-share or fixed-share, got "
                    "'round-robin'");
        parse_fails(
                "version: 1\ngpus:\n  - parent: m\n    policy: {scheduler: equal-share, timeslice-ms: 31}\n",
                "t.yaml:4:52: field 'timeslice-ms': expected a whole number from 0 to 30, got '31'");
        parse_fails("version: 1\ngpus:\n  - parent: m\n    devices:\n      - type: t\n        attrs:\n       "
                    "   - ../../remove: 1\n",
                    "t.yaml:7:13: field 'attrs': '../../remove' must be a path below the device");
        /* a repeated key is refused (a repeated list once overflowed its array) */
        parse_fails("version: 1\ngpus: []\ngpus: []\n",
                    "t.yaml:3:1: field 'gpus' given twice (first at line 2)");
        parse_fails("version: 1\ngpus:\n  - parent: m\n    devices: []\n    devices: [{type: t}]\n",
                    "t.yaml:5:5: field 'devices' given twice (first at line 4)");
        parse_fails("version: 1\ngpus:\n  - parent: m\n    devices:\n      - type: t\n        uuids: []\n    "
                    "    uuids: []\n",
                    "t.yaml:7:9: field 'uuids' given twice (first at line 6)");
        parse_fails(
                "version: 1\ngpus: [\n",
                "t.yaml:3:1: not valid YAML: did not find expected node content while parsing a flow node");
        parse_fails(
                "version: 1\ngpus:\n  - parent: a\n    devices: [{type: t, uuids: "
                "[11111111-2222-4333-8444-555555555555]}]\n"
                "  - parent: b\n    devices: [{type: t, uuids: [11111111-2222-4333-8444-555555555555]}]\n",
                "t.yaml:6: UUID 11111111-2222-4333-8444-555555555555 is also used at line 4");
}

/* Repeated keys are found by sorting: comparing each key with every earlier one took a minute of
 * CPU for the 100000 keys of a 1 MiB POST /v1/apply body (seen reviewing the parser for
 * bench/fuzz/fuzz-yaml.c, whose 8 KiB inputs are too short to show it). Still the repeat that
 * comes first in the file is named, with the key's first line. */
static void test_parse_many_keys(void **state) {
        (void) state;
        parse_fails("version: 1\nb: 1\na: 1\nb: 2\na: 2\nb: 3\n",
                    "t.yaml:4:1: field 'b' given twice (first at line 2)");
        parse_fails("version: 1\ngpus:\n  - {parent: m, devices: [], vfs: 1, vfs: 2, devices: []}\n",
                    "t.yaml:3:38: field 'vfs' given twice (first at line 3)");
        size_t n_keys = 50000, size = n_keys * 11 + 16;
        char *text = malloc(size);
        assert_non_null(text);
        size_t n = (size_t) snprintf(text, size, "version: 1\n");
        for (size_t i = 0; i < n_keys; i++)
                n += (size_t) snprintf(text + n, size - n, "k%06zu: 1\n", i);
        clock_t start = clock();
        parse_fails(text, "t.yaml:2:1: unknown top-level field 'k000000' (expected version, gpus, slices)");
        /* 0.05 s; 15 s before */
        assert_true(clock() - start < 3 * CLOCKS_PER_SEC);
        free(text);
}

/* Anchors and aliases mean what YAML says; a file whose aliases expand past the limit (nested
 * lists of aliases multiply: the 3 KiB text below meant 27 million attributes, 2 GiB, and timed
 * out bench/fuzz/fuzz-yaml.c) is refused before anything is built, as are nesting no host.yaml
 * has and a second document. */
static void test_parse_yaml_structure(void **state) {
        (void) state;
        struct vgpu_config *cfg =
                parse_ok("version: 1\ngpus:\n  - parent: m1\n    devices: &devs\n"
                         "      - {type: t, count: 2, attrs: &at [{k: v}]}\n"
                         "  - parent: m2\n    devices: *devs\n"
                         "  - parent: m3\n    devices: [{type: u, count: 1, attrs: *at}]\n");
        assert_int_equal(cfg->n_gpus, 3);
        for (size_t i = 0; i < 2; i++) {
                assert_int_equal(cfg->gpus[i].n_devices, 1);
                assert_string_equal(cfg->gpus[i].devices[0].type, "t");
                assert_int_equal(cfg->gpus[i].devices[0].count, 2);
                assert_int_equal(cfg->gpus[i].devices[0].n_attrs, 1);
        }
        assert_string_equal(cfg->gpus[2].devices[0].attrs[0].value, "v");
        vgpu_config_free(cfg);

        char text[4096];
        int n = snprintf(text, sizeof(text),
                         "version: 1\ngpus: [&g {all: true, devices: [&d {type: t, attrs: [&a {k: v}");
        for (int i = 0; i < 300; i++)
                n += snprintf(text + n, sizeof(text) - (size_t) n, ", *a");
        n += snprintf(text + n, sizeof(text) - (size_t) n, "]}");
        for (int i = 0; i < 300; i++)
                n += snprintf(text + n, sizeof(text) - (size_t) n, ", *d");
        n += snprintf(text + n, sizeof(text) - (size_t) n, "]}");
        for (int i = 0; i < 300; i++)
                n += snprintf(text + n, sizeof(text) - (size_t) n, ", *g");
        snprintf(text + n, sizeof(text) - (size_t) n, "]\n");
        parse_fails(text, "t.yaml:2:2143: the file expands to more than 200000 YAML nodes "
                          "(counting each alias as the node it names)");

        char deep[200] = "version: 1\ngpus: ";
        for (int i = 0; i < 70; i++)
                strcat(deep, "[");
        parse_fails(deep, "t.yaml:2:70: nested more than 64 levels deep");
        /* one document: a second would be dropped by the loader without a word */
        parse_fails("version: 1\ngpus: []\n---\nanything\n",
                    "t.yaml:3:1: a second YAML document ('---'): host.yaml is one document");
        vgpu_config_free(parse_ok("---\nversion: 1\ngpus: []\n...\n"));
        /* a syntax error before any of that is still reported as one */
        parse_fails(
                "version: 1\ngpus: [}, *g]\n",
                "t.yaml:2:8: not valid YAML: did not find expected node content while parsing a flow node");
}

/* One pass of the parser both counts and composes (config-load.c): the loader's own errors keep
 * its words, positions and their place behind the count's, and what it never reads stays unread. */
static void test_parse_yaml_loader(void **state) {
        (void) state;
        parse_fails("version: 1\ngpus: *nope\n", "t.yaml:2:7: not valid YAML: found undefined alias");
        parse_fails("version: 1\ngpus: &a []\nslices: &a []\n",
                    "t.yaml:3:9: not valid YAML: second occurrence found duplicate anchor; first occurrence");
        /* the count reads on past the loader's error: its own error, further on, comes first */
        parse_fails("version: 1\ngpus: *nope\n---\nx\n",
                    "t.yaml:3:1: a second YAML document ('---'): host.yaml is one document");
        /* an alias inside its own anchor's collection names that collection, as in libyaml */
        parse_fails("version: 1\ngpus: &g [*g]\n",
                    "t.yaml:2:7: a 'gpus' item: expected a mapping (key: value lines)");
        /* the loader stops at the end of the first document: a syntax error after it is unread */
        struct vgpu_config *cfg = parse_ok("version: 1\ngpus: []\n...\n: : [\n");
        assert_int_equal(cfg->n_gpus, 0);
        vgpu_config_free(cfg);
        cfg = parse_ok("version: 1\ngpus: [&d {parent: m1, devices: [{type: t}]}, *d]\n");
        assert_int_equal(cfg->n_gpus, 2);
        assert_string_equal(cfg->gpus[1].value, "m1");
        assert_int_equal(cfg->gpus[1].line, 2);
        vgpu_config_free(cfg);
        /* nesting is refused as it comes, before the rest is parsed: libyaml takes minutes over a
         * MiB of '[' */
        size_t size = 1u << 20;
        char *deep = malloc(size + 1);
        assert_non_null(deep);
        const char head[] = "version: 1\ngpus: ";
        memcpy(deep, head, strlen(head));
        memset(deep + strlen(head), '[', size - strlen(head));
        deep[size] = '\0';
        clock_t start = clock();
        parse_fails(deep, "t.yaml:2:70: nested more than 64 levels deep");
        assert_true(clock() - start < 2 * CLOCKS_PER_SEC);
        free(deep);
}

static void test_export(void **state) {
        (void) state;
        use_fixture("nvidia-mdev");
        struct vgpu_error err = {};
        struct vgpu_host *host;
        assert_int_equal(vgpu_host_scan(VGPU_SCAN_INSTANCES | VGPU_SCAN_DETAILS, &host, &err), 0);
        char *text;
        assert_int_equal(vgpu_config_export(host, NULL, 0, &text, &err), 0);
        assert_non_null(strstr(text, "  - parent: \"0000:3b:00.0\"\n    devices:\n      - type: "
                                     "\"nvidia-232\"\n        count: 2\n        uuids:\n"
                                     "          - \"b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01\"\n"));
        /* and it parses back */
        struct vgpu_config *cfg = parse_ok(text);
        assert_int_equal(cfg->n_gpus, 2);
        assert_int_equal(cfg->gpus[1].devices[0].n_uuids, 1);
        vgpu_config_free(cfg);
        free(text);
        vgpu_host_free(host);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_parse_errors),
                cmocka_unit_test(test_parse_many_keys),
                cmocka_unit_test(test_parse_yaml_structure),
                cmocka_unit_test(test_parse_yaml_loader),
                cmocka_unit_test(test_export),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
