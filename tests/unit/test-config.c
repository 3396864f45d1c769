/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-config.c — host.yaml parsing and validation (lib/config), export, and planning
 * (lib/plan) on fixture hosts: which instances are kept, created, removed; capacity refusals;
 * policy values. Execution against a real kernel is tests/vm/scenarios/30-apply.sh.
 */
#include "test-config-util.h"

#include <time.h>

#include "plan/plan-internal.h"
#include "vgpu/apply.h"
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

/* Plan cfg on a fixture with its definitions, as apply would (nothing executes). */
static struct vgpu_plan *plan(const char *fixture, const char *text, int expect, const char *message) {
        use_fixture(fixture);
        struct vgpu_config *cfg = parse_ok(text);
        struct vgpu_error err = {};
        struct vgpu_host *host;
        assert_int_equal(vgpu_host_scan(VGPU_SCAN_PARENTS | VGPU_SCAN_INSTANCES, &host, &err), 0);
        struct vgpu_mdev_spec *defs;
        size_t n_defs;
        assert_int_equal(vgpu_mdev_definitions(&defs, &n_defs, NULL, &err), 0);
        struct vgpu_plan *p = NULL;
        int r = plan_compute(host, defs, n_defs, cfg, 0, &p, &err);
        vgpu_mdev_specs_free(defs, n_defs);
        vgpu_host_free(host);
        vgpu_config_free(cfg);
        if (r != expect)
                fail_msg("plan returned %d, expected %d: %s", r, expect, err.message);
        if (message && !strstr(err.message, message))
                fail_msg("message: %s\nwanted: %s", err.message, message);
        return p;
}

static size_t count_kind(const struct vgpu_plan *p, enum vgpu_action_kind k) {
        size_t n = 0;
        for (size_t i = 0; i < p->n_actions; i++)
                n += p->actions[i].kind == k;
        return n;
}

static void test_plan_keeps_and_creates(void **state) {
        (void) state;
        /* the host as it is (its export): nothing to do */
        struct vgpu_plan *p = plan(
                "nvidia-mdev",
                "version: 1\ngpus:\n  - parent: 0000:3b:00.0\n    devices: [{type: nvidia-232, count: 2}]\n"
                "  - bdf: 0000:5e:00.0\n    devices: [{type: nvidia-233, count: 1}]\n",
                0, NULL);
        assert_int_equal(p->n_actions, 0);
        vgpu_plan_free(p);

        /* one more T4-4Q on the first GPU: the two running ones are kept, one created and defined */
        p = plan("nvidia-mdev",
                 "version: 1\ngpus:\n  - bdf: 3b:00.0\n    devices: [{type: nvidia-232, count: 3}]\n", 0,
                 NULL);
        assert_int_equal(p->n_actions, 2);
        assert_int_equal(p->actions[0].kind, VGPU_ACTION_CREATE);
        assert_string_equal(p->actions[0].spec.parent, "0000:3b:00.0");
        assert_string_equal(p->actions[0].spec.type, "nvidia-232");
        assert_true(vgpu_uuid_valid(p->actions[0].spec.uuid));
        assert_int_equal(p->actions[1].kind, VGPU_ACTION_DEFINE);
        assert_string_equal(p->actions[1].spec.uuid, p->actions[0].spec.uuid);
        assert_true(p->actions[1].spec.auto_start);
        vgpu_plan_free(p);

        /* down to one: the other is removed and undefined, in that order, before anything else */
        p = plan("nvidia-mdev",
                 "version: 1\ngpus:\n  - bdf: 3b:00.0\n    devices:\n      - type: nvidia-232\n"
                 "        uuids: [b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e02]\n",
                 0, NULL);
        assert_int_equal(p->n_actions, 2);
        assert_int_equal(p->actions[0].kind, VGPU_ACTION_REMOVE);
        assert_string_equal(p->actions[0].spec.uuid,
                            "b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01"); /* the fixed one stays */
        assert_int_equal(p->actions[1].kind, VGPU_ACTION_UNDEFINE);
        assert_string_equal(p->actions[1].spec.uuid, "b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01");
        vgpu_plan_free(p);

        /* an attribute or start mode that differs redefines, without touching the device */
        p = plan(
                "nvidia-mdev",
                "version: 1\ngpus:\n  - bdf: 5e:00.0\n    devices: [{type: nvidia-233, auto-start: false}]\n",
                0, NULL);
        assert_int_equal(p->n_actions, 1);
        assert_int_equal(p->actions[0].kind, VGPU_ACTION_DEFINE);
        assert_false(p->actions[0].spec.auto_start);
        assert_string_equal(p->actions[0].detail, "definition differs from the file");
        vgpu_plan_free(p);

        /* every T4 by PCI id: the third gets its first instance, the others keep theirs untouched */
        p = plan("nvidia-mdev",
                 "version: 1\ngpus:\n  - pci-id: 10de:1eb8\n    devices: [{type: nvidia-232, count: 2}]\n", 0,
                 NULL);
        assert_int_equal(count_kind(p, VGPU_ACTION_REMOVE), 1); /* the T4-8Q on 5e */
        assert_int_equal(count_kind(p, VGPU_ACTION_CREATE), 4); /* 2 on 5e, 2 on af */
        assert_int_equal(count_kind(p, VGPU_ACTION_DEFINE), 4);
        vgpu_plan_free(p);
}

/* 'framebuffer' instead of 'type': per parent, the smallest type that gives as much; of several
 * that size one running there, else the first listed; types of unknown size never */
static void test_plan_framebuffer(void **state) {
        (void) state;
        struct vgpu_config *cfg = parse_ok(
                "version: 1\ngpus:\n  - bdf: af:00.0\n    devices:\n      - {framebuffer: 3G, count: 2}\n");
        assert_null(cfg->gpus[0].devices[0].type);
        assert_int_equal(cfg->gpus[0].devices[0].framebuffer, 3ULL << 30);
        assert_int_equal(cfg->gpus[0].devices[0].framebuffer_line, 5);
        assert_int_equal(cfg->gpus[0].devices[0].framebuffer_column, 23);
        vgpu_config_free(cfg);
        parse_fails("version: 1\ngpus:\n  - bdf: af:00.0\n    devices:\n      - framebuffer: lots\n",
                    "t.yaml:5:22: field 'framebuffer': expected a size like 4G or 512M, got 'lots'");
        parse_fails("version: 1\ngpus:\n  - bdf: af:00.0\n    devices:\n      - framebuffer: 0\n",
                    "t.yaml:5:22: field 'framebuffer': expected a size like 4G or 512M, got '0'");
        parse_fails("version: 1\ngpus:\n  - bdf: af:00.0\n    devices:\n      - {type: nvidia-232, "
                    "framebuffer: 4G}\n",
                    "t.yaml:5:9: 'type' and 'framebuffer' both pick the type of a 'devices' item: give one");

        /* af runs nothing: of the three 4G types (T4-4A nvidia-227, -4Q 232, -4C 319) the first listed */
        struct vgpu_plan *p = plan(
                "nvidia-mdev",
                "version: 1\ngpus:\n  - bdf: af:00.0\n    devices:\n      - {framebuffer: 3G, count: 2}\n", 0,
                NULL);
        assert_int_equal(count_kind(p, VGPU_ACTION_CREATE), 2);
        assert_string_equal(p->actions[0].spec.type, "nvidia-227");
        vgpu_plan_free(p);
        /* 5000M: no 4G type gives it, an 8G one (T4-8A) */
        p = plan("nvidia-mdev",
                 "version: 1\ngpus:\n  - bdf: af:00.0\n    devices:\n      - framebuffer: 5000M\n", 0, NULL);
        assert_string_equal(p->actions[0].spec.type, "nvidia-228");
        vgpu_plan_free(p);
        /* 3b runs two T4-4Q: 4G picks that type, so the host as it is needs nothing (applying the
         * file again never swaps what runs for another type of the same size) */
        p = plan("nvidia-mdev",
                 "version: 1\ngpus:\n  - bdf: 3b:00.0\n    devices: [{framebuffer: 4G, count: 2}]\n", 0,
                 NULL);
        assert_int_equal(p->n_actions, 0);
        vgpu_plan_free(p);
        /* vendor-VFIO: the size from NVML (nvmlVgpuTypeGetFramebufferSize); of 8Q and 8A, 8Q is listed first */
        p = plan("nvidia-sriov-vfio",
                 "version: 1\ngpus:\n  - bdf: 41:00.5\n    devices: [{framebuffer: 6G}]\n", 0, NULL);
        assert_int_equal(count_kind(p, VGPU_ACTION_CREATE), 1);
        assert_string_equal(p->actions[0].spec.type, "1152");
        vgpu_plan_free(p);

        /* none fits: the largest named, at the field's place in the file */
        vgpu_plan_free(plan(
                "nvidia-mdev",
                "version: 1\ngpus:\n  - bdf: af:00.0\n    devices:\n      - framebuffer: 100G\n", -ENOSPC,
                "t.yaml:5:22: field 'framebuffer': 0000:af:00.0: no type gives 102400 MiB of frame buffer; "
                "the largest is nvidia-229 (GRID T4-16A, 16384 MiB)"));
        /* mtty's serial-port types have no frame buffer: never picked */
        vgpu_plan_free(
                plan("kernel-samples",
                     "version: 1\ngpus:\n  - parent: mtty\n    devices:\n      - framebuffer: 1M\n", -ENOENT,
                     "t.yaml:5:22: field 'framebuffer': mtty: no type with a known frame buffer size"));
}

static void test_plan_refusals(void **state) {
        (void) state;
        /* capacity: checked before anything runs */
        vgpu_plan_free(
                plan("nvidia-mdev",
                     "version: 1\ngpus:\n  - bdf: 3b:00.0\n    devices: [{type: nvidia-232, count: 5}]\n",
                     -ENOSPC, "0000:3b:00.0: 3 more nvidia-232 wanted, 2 available: nothing was changed"));
        vgpu_plan_free(
                plan("kernel-samples",
                     "version: 1\ngpus:\n  - parent: mbochs\n    devices:\n"
                     "      - {type: mbochs-medium, count: 10}\n      - {type: mbochs-large, count: 2}\n",
                     -ENOSPC, "mbochs: the new instances need 288 MiB of frame buffer, 256 MiB are free"));
        vgpu_plan_free(plan("nvidia-mdev",
                            "version: 1\ngpus:\n  - bdf: 3b:00.0\n    devices: [{type: nvidia-999}]\n",
                            -EINVAL, "0000:3b:00.0 offers no type nvidia-999"));
        vgpu_plan_free(plan("nvidia-mdev",
                            "version: 1\ngpus:\n  - bdf: 0000:99:00.0\n    devices: [{type: nvidia-232}]\n",
                            -ENODEV, "t.yaml:3: selects no vGPU parent on this host"));
        vgpu_plan_free(plan("nvidia-mdev", "version: 1\ngpus:\n  - bdf: 3b:00.0\n    vfs: 2\n", -EOPNOTSUPP,
                            "t.yaml:3: 0000:3b:00.0 has no SR-IOV"));
        vgpu_plan_free(plan("nvidia-sriov-vfio", "version: 1\ngpus:\n  - bdf: 41:00.0\n    vfs: 33\n",
                            -EINVAL, "supports at most 32 VFs, not 33"));
        vgpu_plan_free(
                plan("nvidia-mdev",
                     "version: 1\ngpus:\n  - pci-id: 10de:1eb8\n    policy: {scheduler: equal-share}\n"
                     "  - bdf: 03:00.0\n    policy: {scheduler: equal-share}\n",
                     -EOPNOTSUPP,
                     "t.yaml:5: 0000:03:00.0 (driver ast): vgpuctl knows no scheduler knob for this driver"));
        vgpu_plan_free(plan("kernel-samples",
                            "version: 1\ngpus:\n  - parent: mdpy\n    policy: {scheduler: equal-share}\n",
                            -EOPNOTSUPP, "t.yaml:3: a scheduler policy needs a GPU; mdpy is none"));
}

static void test_plan_vfio_and_vfs(void **state) {
        (void) state;
        /* vendor-VFIO: a VF takes a type; VF count on the second L40S */
        struct vgpu_plan *p = plan("nvidia-sriov-vfio",
                                   "version: 1\ngpus:\n  - bdf: 41:00.5\n    devices: [{type: \"1152\"}]\n"
                                   "  - bdf: 61:00.0\n    vfs: 8\n",
                                   0, NULL);
        assert_int_equal(p->n_actions, 2);
        assert_int_equal(p->actions[0].kind, VGPU_ACTION_SET_VFS);
        assert_string_equal(p->actions[0].spec.parent, "0000:61:00.0");
        assert_int_equal(p->actions[0].vfs, 8);
        assert_int_equal(p->actions[0].old_vfs, 0);
        assert_int_equal(p->actions[1].kind, VGPU_ACTION_CREATE);
        assert_true(p->actions[1].vendor_vfio);
        assert_string_equal(p->actions[1].spec.uuid, "");
        vgpu_plan_free(p);
        /* the busy VF already runs 1152: nothing to do; asking for another type removes it first */
        p = plan("nvidia-sriov-vfio",
                 "version: 1\ngpus:\n  - bdf: 41:00.4\n    devices: [{type: \"1152\"}]\n", 0, NULL);
        assert_int_equal(p->n_actions, 0);
        vgpu_plan_free(p);
}

static void test_policy(void **state) {
        (void) state;
        struct vgpu_plan *p = plan(
                "nvidia-mdev",
                "version: 1\ngpus:\n  - bdf: 3b:00.0\n    policy: {scheduler: equal-share, timeslice-ms: 3}\n"
                "  - bdf: 5e:00.0\n    policy: {scheduler: fixed-share}\n  - bdf: af:00.0\n    policy: "
                "{scheduler: best-effort}\n",
                0, NULL);
        /* selecting without devices manages the parents: 3b and 5e lose their instances too */
        assert_int_equal(count_kind(p, VGPU_ACTION_SET_POLICY), 1);
        const struct vgpu_action *a = &p->actions[p->n_actions - 1];
        assert_int_equal(a->kind, VGPU_ACTION_SET_POLICY);
        assert_string_equal(a->detail,
                            "# Written by vgpuctl apply: NVIDIA vGPU scheduler per GPU (RmPVMRL).\n"
                            "options nvidia "
                            "NVreg_RegistryDwordsPerDevice=\"pci=0000:3b:00.0;RmPVMRL=0x30001;pci=0000:5e:00."
                            "0;RmPVMRL=0x11;"
                            "pci=0000:af:00.0;RmPVMRL=0x00\"\n");
        assert_non_null(strstr(p->notes, "reloaded"));
        vgpu_plan_free(p);
}

static void test_policy_vendors(void **state) {
        (void) state;
        /* AMD GIM: module-wide parameters */
        struct vgpu_plan *p = plan("amd-mxgpu",
                                   "version: 1\ngpus:\n  - bdf: 03:00.0\n    policy: {scheduler: "
                                   "fixed-share, timeslice-ms: 10}\n",
                                   0, NULL);
        assert_int_equal(p->n_actions, 1);
        assert_string_equal(p->actions[0].spec.parent, "/etc/modprobe.d/gim-vgpuctl.conf");
        assert_string_equal(p->actions[0].detail,
                            "# Written by vgpuctl apply: AMD GIM world-switch scheduler.\noptions gim "
                            "sched_option=0 sched_interval=10\n");
        assert_non_null(strstr(p->notes, "gim module is reloaded"));
        vgpu_plan_free(p);
        p = plan("amd-mxgpu",
                 "version: 1\ngpus:\n  - pci-id: 1002:73a1\n    policy: {scheduler: equal-share}\n", 0, NULL);
        assert_string_equal(
                p->actions[0].detail,
                "# Written by vgpuctl apply: AMD GIM world-switch scheduler.\noptions gim sched_option=2\n");
        vgpu_plan_free(p);
        /* Intel xe: the GuC profile of the PF and every possible VF, in sysfs at run time */
        p = plan("intel-xe-sriov",
                 "version: 1\ngpus:\n  - bdf: 03:00.0\n    policy: {scheduler: equal-share, timeslice-ms: "
                 "10}\n",
                 0, NULL);
        assert_int_equal(p->n_actions, 18); /* 2 knobs x (PF + 8 VFs) */
        assert_int_equal(p->actions[0].kind, VGPU_ACTION_WRITE_ATTR);
        assert_string_equal(p->actions[0].spec.parent,
                            "/sys/bus/pci/devices/0000:03:00.0/sriov_admin/pf/profile/exec_quantum_ms");
        assert_string_equal(p->actions[0].detail, "10");
        assert_string_equal(p->actions[3].spec.parent,
                            "/sys/bus/pci/devices/0000:03:00.0/sriov_admin/vf1/profile/preempt_timeout_us");
        assert_string_equal(p->actions[3].detail, "20000");
        assert_null(p->notes); /* takes effect at once: no reload */
        vgpu_plan_free(p);
        p = plan("intel-xe-sriov",
                 "version: 1\ngpus:\n  - bdf: 03:00.0\n    policy: {scheduler: best-effort}\n", 0, NULL);
        assert_int_equal(p->n_actions, 0); /* the driver's defaults are best effort already */
        vgpu_plan_free(p);
        vgpu_plan_free(plan("intel-xe-sriov",
                            "version: 1\ngpus:\n  - bdf: 03:00.0\n    policy: {scheduler: fixed-share}\n",
                            -EOPNOTSUPP, "xe's sysfs has no strict fixed share"));
        /* Intel GVT-g: refused with the reason */
        vgpu_plan_free(plan(
                "intel-gvtg", "version: 1\ngpus:\n  - bdf: 00:02.0\n    policy: {scheduler: fixed-share}\n",
                -EOPNOTSUPP, "0000:00:02.0 (driver i915): GVT-g schedules by the weight fixed in each type"));
        /* NVIDIA frame-rate limiter: an attribute on the vGPUs created and defined */
        p = plan("nvidia-mdev",
                 "version: 1\ngpus:\n  - bdf: af:00.0\n    policy: {frame-rate-limit: off}\n    devices: "
                 "[{type: nvidia-230}]\n",
                 0, NULL);
        assert_int_equal(p->n_actions, 2);
        assert_int_equal(p->actions[0].kind, VGPU_ACTION_CREATE);
        assert_int_equal(p->actions[0].spec.n_attrs, 1);
        assert_string_equal(p->actions[0].spec.attrs[0].key, "nvidia/vgpu_params");
        assert_string_equal(p->actions[0].spec.attrs[0].value, "frame_rate_limiter=0");
        assert_string_equal(p->actions[1].spec.attrs[0].value, "frame_rate_limiter=0");
        vgpu_plan_free(p);
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
                cmocka_unit_test(test_plan_keeps_and_creates),
                cmocka_unit_test(test_plan_refusals),
                cmocka_unit_test(test_plan_framebuffer),
                cmocka_unit_test(test_plan_vfio_and_vfs),
                cmocka_unit_test(test_policy),
                cmocka_unit_test(test_policy_vendors),
                cmocka_unit_test(test_export),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
