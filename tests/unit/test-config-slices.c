/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-config-slices.c — software slices in host.yaml (lib/config/config-slices.c), in the plan
 * (lib/plan/slices.c) and their records (lib/slice/records.c): parse errors with their exact
 * FILE:LINE:COLUMN, which slices a plan keeps, recreates, removes or refuses to touch, and a
 * restore after the /run regions are gone. Runs on a writable copy of the nvidia-baremetal fixture
 * with the NVML double (GPU 0000:3b:00.0 has 15360 MiB).
 */
#include "test-config-util.h"

#include <unistd.h>

#include "plan/plan-internal.h"
#include "slice/manage.h"
#include "slice/slice.h"
#include "vgpu/apply.h"
#include "vgpu/config.h"

#define MiB (UINT64_C(1) << 20)

static char root[64];

/* The names of policies and scrub modes both ways, DEFAULT and out-of-range values refused, and a
 * spec resolved with the defaults `slice create` always had. */
static void test_spec(void **state) {
        (void) state;
        static const char *const policies[] = { "best-effort", "equal-share", "fixed-share" };
        static const char *const scrubs[] = { "on-free", "on-exit", "off" };
        for (size_t i = 0; i < 3; i++) {
                enum vgpu_slice_policy p = VGPU_SLICE_POLICY_DEFAULT;
                enum vgpu_slice_scrub s = VGPU_SLICE_SCRUB_DEFAULT;
                assert_int_equal(vgpu_slice_policy_from_string(policies[i], &p), 0);
                assert_int_not_equal(p, VGPU_SLICE_POLICY_DEFAULT);
                assert_string_equal(vgpu_slice_policy_to_string(p), policies[i]);
                assert_int_equal(vgpu_slice_scrub_from_string(scrubs[i], &s), 0);
                assert_int_not_equal(s, VGPU_SLICE_SCRUB_DEFAULT);
                assert_string_equal(vgpu_slice_scrub_to_string(s), scrubs[i]);
        }
        enum vgpu_slice_policy p = VGPU_SLICE_POLICY_EQUAL_SHARE;
        enum vgpu_slice_scrub sc = VGPU_SLICE_SCRUB_OFF;
        assert_int_equal(vgpu_slice_policy_from_string("fair", &p), -EINVAL);
        assert_int_equal(vgpu_slice_policy_from_string(NULL, &p), -EINVAL);
        assert_int_equal(vgpu_slice_scrub_from_string("", &sc), -EINVAL);
        assert_int_equal(p, VGPU_SLICE_POLICY_EQUAL_SHARE); /* untouched on failure */
        assert_int_equal(sc, VGPU_SLICE_SCRUB_OFF);
        assert_null(vgpu_slice_policy_to_string(VGPU_SLICE_POLICY_DEFAULT));
        assert_null(vgpu_slice_policy_to_string((enum vgpu_slice_policy) 99));
        assert_null(vgpu_slice_scrub_to_string(VGPU_SLICE_SCRUB_DEFAULT));

        /* init: the name checked, the address normalized, the rest zero (= the defaults) */
        struct vgpu_error err = {};
        struct vgpu_slice_spec spec, r;
        assert_int_equal(vgpu_slice_spec_init(&spec, "a", "3b:00.0", &err), 0);
        assert_string_equal(spec.gpu, "0000:3b:00.0");
        assert_int_equal(spec.policy, VGPU_SLICE_POLICY_DEFAULT);
        assert_int_equal(vgpu_slice_spec_init(&spec, "-a", "3b:00.0", &err), -EINVAL);
        assert_non_null(strstr(err.message, "'-a' is not a slice name"));
        char longname[80];
        memset(longname, 'x', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        assert_int_equal(vgpu_slice_spec_init(&spec, longname, "3b:00.0", &err), -EINVAL);
        assert_int_equal(vgpu_slice_spec_init(&spec, "a", "nowhere", &err), -EINVAL);
        assert_non_null(strstr(err.message, "'nowhere' is not a PCI address"));

        /* resolve: no share is equal-share, a share fixed-share; scrub on-free */
        assert_int_equal(vgpu_slice_spec_init(&spec, "a", "3b:00.0", &err), 0);
        assert_int_equal(slice_spec_resolve(&spec, &r, &err), 0);
        assert_int_equal(r.policy, VGPU_SLICE_POLICY_EQUAL_SHARE);
        assert_int_equal(r.scrub, VGPU_SLICE_SCRUB_ON_FREE);
        spec.share = 30;
        assert_int_equal(slice_spec_resolve(&spec, &r, &err), 0);
        assert_int_equal(r.policy, VGPU_SLICE_POLICY_FIXED_SHARE);
        spec.policy = VGPU_SLICE_POLICY_BEST_EFFORT;
        assert_int_equal(slice_spec_resolve(&spec, &r, &err), -EINVAL);
        assert_string_equal(err.message, "--share goes with the fixed-share policy");
        spec.share = 0;
        spec.policy = VGPU_SLICE_POLICY_FIXED_SHARE;
        assert_int_equal(slice_spec_resolve(&spec, &r, &err), -EINVAL);
        spec.policy = (enum vgpu_slice_policy) 7;
        assert_int_equal(slice_spec_resolve(&spec, &r, &err), -EINVAL);
        /* an unterminated name from a caller that filled the array itself */
        spec.policy = VGPU_SLICE_POLICY_DEFAULT;
        memset(spec.name, 'x', sizeof(spec.name));
        assert_int_equal(slice_spec_resolve(&spec, &r, &err), -EINVAL);

        /* the region's numbers and back: what list reports is what was asked */
        assert_int_equal(vgpu_slice_spec_init(&spec, "a", "3b:00.0", &err), 0);
        spec.share = 40;
        spec.scrub = VGPU_SLICE_SCRUB_ON_EXIT;
        spec.memory = 64 * MiB;
        assert_int_equal(slice_spec_resolve(&spec, &r, &err), 0);
        struct slice_params params;
        slice_spec_params(&r, &params);
        assert_int_equal(params.policy, SLICE_POLICY_FIXED_SHARE);
        assert_int_equal(params.scrub, SLICE_SCRUB_ON_EXIT);
        struct slice_info info = { .policy = params.policy,
                                   .scrub = params.scrub,
                                   .weight = params.weight,
                                   .quota = params.quota,
                                   .used = 5,
                                   .processes = 2 };
        snprintf(info.name, sizeof(info.name), "%s", params.name);
        snprintf(info.gpu_bdf, sizeof(info.gpu_bdf), "%s", r.gpu);
        struct vgpu_slice_status st;
        slice_status_from_info(&info, &st);
        assert_string_equal(st.spec.name, "a");
        assert_string_equal(st.spec.gpu, "0000:3b:00.0");
        assert_int_equal(st.spec.memory, 64 * MiB);
        assert_int_equal(st.spec.share, 40);
        assert_int_equal(st.spec.policy, VGPU_SLICE_POLICY_FIXED_SHARE);
        assert_int_equal(st.spec.scrub, VGPU_SLICE_SCRUB_ON_EXIT);
        assert_int_equal(st.usage.used, 5);
        assert_int_equal(st.usage.processes, 2);
}

static void test_parse(void **state) {
        (void) state;
        struct vgpu_config *cfg = parse_ok(
                "version: 1\n"
                "slices:\n"
                "  - name: alice\n"
                "    gpu: 3B:00.0\n"
                "    memory: 1.5G\n"
                "    share: 30%\n"
                "  - {name: bob, gpu: \"0000:3b:00.0\", memory: 4096, policy: best-effort, scrub: off}\n"
                "  - {name: carol, gpu: 3b:00.0, share: 70, scrub: on-exit}\n");
        assert_true(cfg->has_slices);
        assert_int_equal(cfg->n_slices, 3);
        const struct vgpu_slice_spec *a = &cfg->slices[0].spec, *b = &cfg->slices[1].spec,
                                     *c = &cfg->slices[2].spec;
        assert_string_equal(a->name, "alice");
        assert_string_equal(a->gpu, "0000:3b:00.0");
        assert_int_equal(a->memory, 1536 * MiB);
        assert_int_equal(a->share, 30);
        assert_int_equal(a->policy, VGPU_SLICE_POLICY_FIXED_SHARE); /* a share means fixed-share */
        assert_int_equal(a->scrub, VGPU_SLICE_SCRUB_ON_FREE);
        assert_int_equal(cfg->slices[0].line, 3);
        assert_int_equal(b->memory, 4096);
        assert_int_equal(b->policy, VGPU_SLICE_POLICY_BEST_EFFORT);
        assert_int_equal(b->scrub, VGPU_SLICE_SCRUB_OFF);
        assert_int_equal(c->memory, 0); /* unlimited */
        assert_int_equal(c->share, 70);
        vgpu_config_free(cfg);

        /* 'slices:' with nothing is an empty list (manage: remove all); no key: leave slices alone */
        cfg = parse_ok("version: 1\nslices:\n");
        assert_true(cfg->has_slices);
        assert_int_equal(cfg->n_slices, 0);
        vgpu_config_free(cfg);
        cfg = parse_ok("version: 1\ngpus: []\n");
        assert_false(cfg->has_slices);
        vgpu_config_free(cfg);
}

static void test_parse_errors(void **state) {
        (void) state;
        const char *head = "version: 1\nslices:\n";
        char text[1024];
#define FAILS(items, message)                                      \
        do {                                                       \
                snprintf(text, sizeof(text), "%s%s", head, items); \
                parse_fails(text, message);                        \
        } while (0)
        FAILS("  - {name: a, gpu: 3b:00.0, memory: lots}\n",
              "t.yaml:3:37: field 'memory': expected a size like 4G or 512M, got 'lots'");
        FAILS("  - name: a\n    gpu: 3b:00.0\n    memory: 4X\n",
              "t.yaml:5:13: field 'memory': expected a size like 4G or 512M, got '4X'");
        FAILS("  - name: a\n    gpu: 3b:00.0\n    memory: 0\n",
              "t.yaml:5:13: field 'memory': expected a size like 4G or 512M, got '0'");
        FAILS("  - name: a\n    gpu: 3b:00.0\n    share: 130%\n",
              "t.yaml:5:12: field 'share': expected a percentage from 1 to 100 (e.g. 30%), got '130%'");
        FAILS("  - name: a\n    gpu: 3b:00.0\n    policy: fair\n",
              "t.yaml:5:13: field 'policy': expected best-effort, equal-share or fixed-share, got 'fair'");
        FAILS("  - name: a\n    gpu: 3b:00.0\n    scrub: never\n",
              "t.yaml:5:12: field 'scrub': expected on-free, on-exit or off, got 'never'");
        FAILS("  - name: a\n    gpu: 3b:00.0\n    policy: fixed-share\n",
              "t.yaml:5:13: field 'share': slice a has policy fixed-share and needs a share (e.g. share: "
              "30%)");
        FAILS("  - name: a\n    gpu: 3b:00.0\n    policy: best-effort\n    share: 20%\n",
              "t.yaml:6:12: field 'share': a share goes with policy fixed-share, slice a has best-effort");
        FAILS("  - name: a/b\n    gpu: 3b:00.0\n",
              "t.yaml:3:11: field 'name': 'a/b' is not a slice name (letters, digits, '_', '.', '-', "
              "starting and ending with a letter or digit; at most 63)");
        FAILS("  - name: a\n    gpu: 3b:00\n",
              "t.yaml:4:10: field 'gpu': '3b:00' is not a PCI address (DDDD:BB:DD.F)");
        FAILS("  - name: a\n    gpu: 3b:00.0\n    quota: 4G\n",
              "t.yaml:5:5: unknown field 'quota' in a 'slices' item (expected name, gpu, memory, share, "
              "policy, scrub)");
        FAILS("  - name: a\n", "t.yaml:3:5: field 'gpu' missing in slice a (the BDF of an NVIDIA GPU)");
        FAILS("  - gpu: 3b:00.0\n", "t.yaml:3:5: field 'name' missing in a 'slices' item");
        FAILS("  - {name: a, gpu: 3b:00.0}\n  - {name: b, gpu: 3b:00.0}\n  - {name: a, gpu: 5e:00.0}\n",
              "t.yaml:5:5: slice a is declared twice (first at line 3)");
        FAILS("  - {name: a, gpu: 3b:00.0, share: 60%}\n  - {name: b, gpu: 5e:00.0, share: 60%}\n  - {name: "
              "c, gpu: 3b:00.0, share: 41%}\n",
              "t.yaml:5:5: field 'share': the fixed shares of 0000:3b:00.0 add up to 101% with slice c; at "
              "most 100%");
        FAILS("  name: a\n", "t.yaml:3:3: field 'slices': expected a list ('- ' items)");
#undef FAILS
        /* shares of different GPUs are separate: 60 + 60 is fine there */
        vgpu_config_free(parse_ok("version: 1\nslices:\n  - {name: a, gpu: 3b:00.0, share: 60%}\n  - {name: "
                                  "b, gpu: 5e:00.0, share: 60%}\n"));
}

static int setup(void **state) {
        (void) state;
        const char *fixtures = getenv("FIXTURES");
        assert_non_null(fixtures);
        snprintf(root, sizeof(root), "/tmp/vgpu-test-cfgslices.XXXXXX");
        assert_non_null(mkdtemp(root));
        char cmd[4096 + 128];
        snprintf(cmd, sizeof(cmd), "cp -a '%s/nvidia-baremetal' '%s/host'", fixtures, root);
        assert_int_equal(system(cmd), 0);
        snprintf(cmd, sizeof(cmd), "%s/host", root);
        setenv("VGPU_ROOT", cmd, 1);
        return 0;
}

static int teardown(void **state) {
        (void) state;
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
        return system(cmd);
}

static void create(const char *name, const char *gpu, uint64_t memory, unsigned share) {
        struct vgpu_error err = {};
        struct vgpu_slice_spec req;
        if (vgpu_slice_spec_init(&req, name, gpu, &err) < 0)
                fail_msg("%s", err.message);
        req.memory = memory;
        req.share = share;
        if (vgpu_slice_create(&req, &err) < 0)
                fail_msg("creating %s: %s", name, err.message);
}

/* The slice actions for text on the host as it is; r and the message as expected. */
static struct vgpu_plan *plan(const char *text, int expect, const char *message) {
        struct vgpu_config *cfg = parse_ok(text);
        struct vgpu_plan *p = calloc(1, sizeof(*p));
        size_t allocated = 0;
        struct vgpu_error err = {};
        assert_non_null(p);
        /* the snapshot the planner is given: with the GPUs' memory, as apply scans it */
        struct vgpu_host *host = NULL;
        assert_int_equal(vgpu_host_scan(VGPU_SCAN_NVML, &host, &err), 0);
        int r = plan_slices(host, cfg, p, &allocated, &err);
        vgpu_host_free(host);
        vgpu_config_free(cfg);
        if (r != expect)
                fail_msg("plan returned %d, expected %d: %s", r, expect, err.message);
        if (message && strcmp(err.message, message) != 0)
                fail_msg("message:\n  got:  %s\n  want: %s", err.message, message);
        return p;
}

static void test_plan(void **state) {
        (void) state;
        create("alice", "3b:00.0", 64 * MiB, 30);
        create("bob", "3b:00.0", 2048 * MiB, 0);

        /* a file without 'slices' never touches them */
        struct vgpu_plan *p = plan("version: 1\ngpus: []\n", 0, NULL);
        assert_int_equal(p->n_actions, 0);
        vgpu_plan_free(p);
        /* matching: nothing to do */
        p = plan("version: 1\nslices:\n  - {name: alice, gpu: 3b:00.0, memory: 64M, share: 30%}\n"
                 "  - {name: bob, gpu: 3b:00.0, memory: 2G}\n",
                 0, NULL);
        assert_int_equal(p->n_actions, 0);
        vgpu_plan_free(p);
        /* bob's quota differs: recreated; carol is new; alice is not in the file: removed */
        p = plan("version: 1\nslices:\n  - {name: bob, gpu: 3b:00.0, memory: 1G}\n  - {name: carol, gpu: "
                 "5e:00.0, share: 50%}\n",
                 0, NULL);
        assert_int_equal(p->n_actions, 4);
        assert_int_equal(p->actions[0].kind, VGPU_ACTION_SLICE_REMOVE);
        assert_string_equal(p->actions[0].slice.name, "alice");
        assert_string_equal(p->actions[0].detail, "not in the file");
        assert_int_equal(p->actions[0].slice.share, 30); /* the old settings, for the undo */
        assert_int_equal(p->actions[1].kind, VGPU_ACTION_SLICE_REMOVE);
        assert_string_equal(p->actions[1].slice.name, "bob");
        assert_int_equal(p->actions[1].slice.memory, 2048 * MiB);
        assert_int_equal(p->actions[2].kind, VGPU_ACTION_SLICE_CREATE);
        assert_string_equal(p->actions[2].slice.name, "bob");
        assert_int_equal(p->actions[2].slice.memory, 1024 * MiB);
        assert_string_equal(p->actions[2].detail,
                            "differs from the file (memory 2048 MiB -> 1024 MiB): recreated");
        assert_int_equal(p->actions[3].kind, VGPU_ACTION_SLICE_CREATE);
        assert_string_equal(p->actions[3].slice.gpu, "0000:5e:00.0");
        assert_int_equal(p->actions[3].slice.policy, VGPU_SLICE_POLICY_FIXED_SHARE);
        vgpu_plan_free(p);

        /* the host's side: quotas over the GPU's memory together, a GPU that is not NVIDIA's */
        p = plan("version: 1\nslices:\n  - {name: a, gpu: 3b:00.0, memory: 8G}\n  - {name: b, gpu: 3b:00.0, "
                 "memory: 8G}\n",
                 -ENOSPC,
                 "t.yaml:4:5: field 'memory': the quotas of the slices on 0000:3b:00.0 add up to 16384 MiB "
                 "with slice b; the GPU has 15360 MiB");
        vgpu_plan_free(p);
        p = plan("version: 1\nslices:\n  - {name: a, gpu: 03:00.0}\n", -ENODEV,
                 "t.yaml:3:5: slice a: no NVIDIA GPU (physical function) at 0000:03:00.0");
        vgpu_plan_free(p);

        /* a process in alice: neither removed nor changed under it */
        char region[4096];
        snprintf(region, sizeof(region), "%s/host/run/vgpuctl/slices/alice.slice", root);
        struct vgpu_error err = {};
        _cleanup_slice_region_ struct slice_region *reg = NULL;
        assert_int_equal(slice_region_open(region, &reg, &err), 0);
        struct slice *alice = slice_region_slice(reg);
        struct slice_proc *proc;
        assert_int_equal(slice_attach(alice, &proc), 0);
        p = plan("version: 1\nslices:\n  - {name: alice, gpu: 3b:00.0, memory: 128M, share: 30%}\n  - {name: "
                 "bob, gpu: 3b:00.0, memory: 2G}\n",
                 -EBUSY,
                 "slice alice on 0000:3b:00.0: memory 64 MiB -> 128 MiB, but 1 process uses it; a slice "
                 "cannot change under "
                 "running processes: stop them, then apply again");
        vgpu_plan_free(p);
        p = plan("version: 1\nslices: []\n", -EBUSY, NULL);
        vgpu_plan_free(p);
        /* unchanged, alice is kept, process and all */
        p = plan("version: 1\nslices:\n  - {name: alice, gpu: 3b:00.0, memory: 64M, share: 30%}\n", 0, NULL);
        assert_int_equal(p->n_actions, 1);
        assert_string_equal(p->actions[0].slice.name, "bob");
        vgpu_plan_free(p);
        slice_detach(alice, proc);
}

static void test_records_and_restore(void **state) {
        (void) state;
        struct vgpu_error err = {};
        struct vgpu_slice_status *before, *after;
        struct vgpu_slice_spec *rec;
        size_t n_before, n_after, n_rec;
        assert_int_equal(vgpu_slice_list(&before, &n_before, &err), 0);
        assert_int_equal(n_before, 2); /* alice, bob from test_plan */
        assert_int_equal(slice_records_read(&rec, &n_rec, NULL, &err), 0);
        assert_int_equal(n_rec, 2);
        assert_string_equal(rec[0].name, "alice");
        assert_int_equal(rec[0].memory, 64 * MiB);
        assert_int_equal(rec[0].share, 30);
        assert_int_equal(rec[0].policy, VGPU_SLICE_POLICY_FIXED_SHARE);
        free(rec);

        /* nothing missing: nothing restored */
        unsigned n = 99;
        assert_int_equal(vgpu_slice_restore(&n, &err), 0);
        assert_int_equal(n, 0);
        /* a reboot: /run is empty */
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s/host/run/vgpuctl/slices' '%s/host/etc/cdi/vgpuctl.yaml'", root,
                 root);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(vgpu_slice_list(&after, &n_after, &err), 0);
        assert_int_equal(n_after, 0);
        free(after);
        assert_int_equal(vgpu_slice_restore(&n, &err), 2);
        assert_int_equal(n, 2);
        assert_int_equal(vgpu_slice_list(&after, &n_after, &err), 0);
        assert_int_equal(n_after, n_before);
        for (size_t i = 0; i < n_after; i++) {
                assert_string_equal(after[i].spec.name, before[i].spec.name);
                assert_string_equal(after[i].spec.gpu, before[i].spec.gpu);
                assert_int_equal(after[i].spec.policy, before[i].spec.policy);
                assert_int_equal(after[i].spec.scrub, before[i].spec.scrub);
                assert_int_equal(after[i].spec.memory, before[i].spec.memory);
                assert_int_equal(after[i].spec.share, before[i].spec.share);
        }
        free(after);
        free(before);

        /* removed slices lose their record; a broken record is named, the others still restored */
        assert_int_equal(vgpu_slice_destroy("bob", &err), 1);
        assert_int_equal(slice_records_read(&rec, &n_rec, NULL, &err), 0);
        assert_int_equal(n_rec, 1);
        free(rec);
        snprintf(cmd, sizeof(cmd),
                 "echo '{\"name\": \"zed\"}' > '%s/host/var/lib/vgpuctl/slices/zed.json'; rm -rf "
                 "'%s/host/run/vgpuctl/slices'",
                 root, root);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(vgpu_slice_restore(&n, &err), -EBADMSG);
        assert_int_equal(n, 1);
        if (!strstr(err.message, "1 slice restored, but ") ||
            !strstr(err.message, "/var/lib/vgpuctl/slices/zed.json: field \"gpu\""))
                fail_msg("message: %s", err.message);
}

static char *host_file(const char *rel) {
        char path[4096], buf[8192];
        snprintf(path, sizeof(path), "%s/host/%s", root, rel);
        FILE *f = fopen(path, "re");
        if (!f)
                return NULL;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        return strdup(buf);
}

static bool host_exists(const char *rel) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/host/%s", root, rel);
        return access(path, F_OK) == 0;
}

static void host_sh(const char *fmt, const char *arg) {
        char cmd[8192], script[4096];
        snprintf(script, sizeof(script), fmt, arg);
        snprintf(cmd, sizeof(cmd), "cd '%s/host' && %s", root, script);
        assert_int_equal(system(cmd), 0);
}

/* `slice create` is a plan of one action, checked by the planner in apply's words: nothing to
 * do when the slice is there as asked, a conflict with the difference, the GPU's memory */
static void test_create_plan(void **state) {
        (void) state;
        struct vgpu_error err = {};
        struct vgpu_slice_spec s;
        struct vgpu_plan *p = NULL;
        host_sh("rm -f var/lib/vgpuctl/slices/zed.json%s", "");
        assert_int_equal(vgpu_slice_spec_init(&s, "erin", "3b:00.0", &err), 0);
        s.memory = 64 * MiB;
        assert_int_equal(plan_slice_create(&s, &p, &err), 0);
        assert_int_equal(p->n_actions, 1);
        assert_int_equal(p->actions[0].kind, VGPU_ACTION_SLICE_CREATE);
        assert_string_equal(p->actions[0].detail, "not created yet");
        assert_int_equal(p->actions[0].slice.policy, VGPU_SLICE_POLICY_EQUAL_SHARE); /* resolved */
        vgpu_plan_free(p);
        assert_int_equal(vgpu_slice_create(&s, &err), 1);
        assert_int_equal(plan_slice_create(&s, &p, &err), 0);
        assert_int_equal(p->n_actions, 0);
        vgpu_plan_free(p);
        assert_int_equal(vgpu_slice_create(&s, &err), 0);
        s.memory = 128 * MiB;
        assert_int_equal(vgpu_slice_create(&s, &err), -EEXIST);
        assert_string_equal(err.message,
                            "slice erin exists on 0000:3b:00.0 with other settings (memory 64 MiB -> "
                            "128 MiB); remove it first");

        /* over the GPU's memory: create says what apply says, less the place in the file */
        snprintf(s.name, sizeof(s.name), "huge");
        s.memory = 16384 * MiB;
        assert_int_equal(vgpu_slice_create(&s, &err), -ENOSPC);
        assert_string_equal(err.message, "the quotas of the slices on 0000:3b:00.0 add up to 16512 MiB with "
                                         "slice huge; the GPU has 15360 MiB");
        char create_message[VGPU_ERROR_MESSAGE_MAX];
        snprintf(create_message, sizeof(create_message), "%s", err.message);
        p = plan("version: 1\nslices:\n  - {name: alice, gpu: 3b:00.0, memory: 64M, share: 30%}\n"
                 "  - {name: erin, gpu: 3b:00.0, memory: 64M}\n  - {name: huge, gpu: 3b:00.0, memory: 16G}\n",
                 -ENOSPC, NULL);
        vgpu_plan_free(p);
        struct vgpu_config *cfg =
                parse_ok("version: 1\nslices:\n  - {name: alice, gpu: 3b:00.0, memory: 64M, "
                         "share: 30%}\n  - {name: erin, gpu: 3b:00.0, memory: 64M}\n  - {name: "
                         "huge, gpu: 3b:00.0, memory: 16G}\n");
        p = calloc(1, sizeof(*p));
        size_t allocated = 0;
        struct vgpu_host *host = NULL;
        assert_int_equal(vgpu_host_scan(VGPU_SCAN_NVML, &host, &err), 0);
        assert_int_equal(plan_slices(host, cfg, p, &allocated, &err), -ENOSPC);
        vgpu_host_free(host);
        assert_string_equal(err.message,
                            "t.yaml:5:5: field 'memory': the quotas of the slices on 0000:3b:00.0 "
                            "add up to 16512 MiB with slice huge; the GPU has 15360 MiB");
        assert_non_null(strstr(err.message, create_message));
        vgpu_plan_free(p);
        vgpu_config_free(cfg);

        assert_int_equal(vgpu_slice_destroy("erin", &err), 1);
        assert_int_equal(vgpu_slice_destroy("erin", &err), -ENOENT);
        assert_string_equal(err.message, "no slice named erin");
}

/* The executor takes back what a slice action did before it failed: the CDI spec cannot be
 * written (a directory where it goes) after the region and the record were */
static void test_create_rolled_back(void **state) {
        (void) state;
        struct vgpu_error err = {};
        struct vgpu_slice_spec s;
        _cleanup_free_ char *cdi = host_file("etc/cdi/vgpuctl.yaml");
        assert_non_null(cdi);
        host_sh("mv etc/cdi/vgpuctl.yaml etc/cdi/saved%s && mkdir etc/cdi/vgpuctl.yaml", "");
        assert_int_equal(vgpu_slice_spec_init(&s, "frank", "3b:00.0", &err), 0);
        assert_int_equal(vgpu_slice_create(&s, &err), -EISDIR);
        assert_non_null(strstr(err.message, "step 1 of 1 (slice-create 0000:3b:00.0) failed: slice frank: "));
        assert_non_null(strstr(err.message, "nothing had been changed"));
        assert_false(host_exists("run/vgpuctl/slices/frank.slice"));
        assert_false(host_exists("var/lib/vgpuctl/slices/frank.json"));
        struct vgpu_slice_status *l = NULL;
        size_t n = 0;
        assert_int_equal(vgpu_slice_list(&l, &n, &err), 0);
        for (size_t i = 0; i < n; i++)
                assert_string_not_equal(l[i].spec.name, "frank");
        free(l);

        /* a restore (the record was there): the record stays as it was, byte for byte */
        host_sh("printf '%s' >var/lib/vgpuctl/slices/frank.json",
                "{ \"name\": \"frank\", \"gpu\": \"0000:3b:00.0\", \"policy\": \"equal-share\", \"scrub\": "
                "\"off\" }\\n");
        _cleanup_free_ char *record = host_file("var/lib/vgpuctl/slices/frank.json");
        s.scrub = VGPU_SLICE_SCRUB_ON_EXIT;
        assert_true(vgpu_slice_create(&s, &err) < 0);
        _cleanup_free_ char *record_after = host_file("var/lib/vgpuctl/slices/frank.json");
        assert_non_null(record_after);
        assert_string_equal(record_after, record);
        assert_false(host_exists("run/vgpuctl/slices/frank.slice"));

        /* a removal that fails at the CDI spec: the slice comes back, record and all */
        host_sh("rmdir etc/cdi/vgpuctl.yaml && mv etc/cdi/saved etc/cdi/vgpuctl.yaml%s", "");
        assert_int_equal(vgpu_slice_create(&s, &err), 1);
        _cleanup_free_ char *record_made = host_file("var/lib/vgpuctl/slices/frank.json");
        host_sh("mv etc/cdi/vgpuctl.yaml etc/cdi/saved%s && mkdir etc/cdi/vgpuctl.yaml", "");
        assert_int_equal(vgpu_slice_destroy("frank", &err), -EISDIR);
        assert_non_null(strstr(err.message, "step 1 of 1 (slice-remove 0000:3b:00.0) failed: slice frank: "));
        assert_non_null(strstr(err.message, "nothing had been changed"));
        assert_true(host_exists("run/vgpuctl/slices/frank.slice"));
        _cleanup_free_ char *record_back = host_file("var/lib/vgpuctl/slices/frank.json");
        assert_non_null(record_back);
        assert_string_equal(record_back, record_made);
        assert_int_equal(vgpu_slice_list(&l, &n, &err), 0);
        bool found = false;
        for (size_t i = 0; i < n; i++)
                if (streq(l[i].spec.name, "frank")) {
                        found = true;
                        assert_int_equal(l[i].spec.scrub, VGPU_SLICE_SCRUB_ON_EXIT);
                }
        free(l);
        assert_true(found);
        host_sh("rmdir etc/cdi/vgpuctl.yaml && mv etc/cdi/saved etc/cdi/vgpuctl.yaml%s", "");
        assert_int_equal(vgpu_slice_destroy("frank", &err), 1);
}

/* vgpu_restore() at boot: the recorded slices come back first (their truncated scheduler
 * rebuilt, which is no failure), and a saved file with a 'slices' key (here: none) does not
 * remove them, since it may predate them; a dry run restores none. */
static void test_restore_keeps_recorded_slices(void **state) {
        (void) state;
        char cmd[512];
        snprintf(cmd, sizeof(cmd),
                 "rm -f '%s/host/var/lib/vgpuctl/slices/zed.json' '%s/host/run/vgpuctl/slices/alice.slice'; "
                 "truncate -s 0 '%s/host/run/vgpuctl/slices/0000:3b:00.0.shm'",
                 root, root, root);
        assert_int_equal(system(cmd), 0);
        snprintf(cmd, sizeof(cmd), "%s/host" VGPU_STATE_CONFIG, root);
        FILE *f = fopen(cmd, "we");
        assert_non_null(f);
        fputs("version: 1\ngpus: []\nslices: []\n", f);
        fclose(f);
        struct vgpu_error err = {};
        struct vgpu_restore_report report;
        struct vgpu_slice_status *list;
        size_t n;

        assert_int_equal(vgpu_restore(NULL, 0, VGPU_APPLY_DRY_RUN, NULL, &report, &err), 0);
        assert_int_equal(report.n_slices, 0);
        assert_false(report.nothing_saved);
        assert_non_null(report.plan);
        assert_int_equal(report.plan->n_actions, 0);
        vgpu_plan_free(report.plan);
        assert_int_equal(vgpu_slice_list(&list, &n, &err), 0);
        for (size_t i = 0; i < n; i++) /* its region is gone: not listed */
                assert_false(streq(list[i].spec.name, "alice"));
        free(list);

        int r = vgpu_restore(NULL, 0, 0, NULL, &report, &err);
        if (r < 0)
                fail_msg("restore: %s", err.message);
        assert_int_equal(r, 0);
        assert_int_equal(report.n_slices, 0); /* the scheduler's repair brought alice back */
        assert_int_equal(report.slices_error.code, 0);
        assert_int_equal(report.plan->n_actions, 0); /* no SLICE_REMOVE for alice */
        vgpu_plan_free(report.plan);
        assert_int_equal(vgpu_slice_list(&list, &n, &err), 0);
        bool alice = false;
        for (size_t i = 0; i < n; i++)
                alice |= streq(list[i].spec.name, "alice");
        assert_true(alice);
        free(list);

        /* a host never configured: nothing to do, no error */
        snprintf(cmd, sizeof(cmd), "rm -f '%s/host" VGPU_STATE_CONFIG "'", root);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(vgpu_restore(NULL, 0, 0, NULL, &report, &err), 0);
        assert_true(report.nothing_saved);
        assert_null(report.plan);
        assert_int_equal(report.n_slices, 0); /* alice is there already */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_spec),
                cmocka_unit_test(test_parse),
                cmocka_unit_test(test_parse_errors),
                cmocka_unit_test(test_plan),
                cmocka_unit_test(test_records_and_restore),
                cmocka_unit_test(test_create_plan),
                cmocka_unit_test(test_create_rolled_back),
                cmocka_unit_test(test_restore_keeps_recorded_slices),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
