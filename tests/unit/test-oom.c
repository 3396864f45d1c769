/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-oom.c — libvgpu's main entry points with each of their allocations failing in turn
 * (oom-util.h): the host scan (every flag, five fixtures), host.yaml parsing, mdevctl's store,
 * the slices (list, create, destroy, restore), the plan (vgpu_plan_for, and vgpu_apply with
 * DRY_RUN), the export, the doctor, the support bundle, the hardening audit and ruleset,
 * telemetry, NVML's error events and the <hostdev> element. Each failing run must report -ENOMEM
 * with a message and leave no result and no change behind; a run that succeeds anyway must give
 * the normal result (oom-summary.h describes them). Run under the ASan build it also proves
 * that none of them leaks. Fixtures that get written to (the lock, slices, reports) are copies
 * in a temporary directory; NVML readings come from the double (tests/meson.build puts it on
 * LD_LIBRARY_PATH). Each case's allocation count is printed.
 */
#include "oom-util.h"
#include "oom-summary.h"

#include <dirent.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/macro.h"
#include "vgpu/apply.h"
#include "vgpu/assign.h"
#include "vgpu/config.h"
#include "vgpu/doctor.h"
#include "vgpu/harden.h"
#include "vgpu/host.h"
#include "vgpu/lifecycle.h"
#include "vgpu/nvml-events.h"
#include "vgpu/report.h"
#include "vgpu/slice.h"
#include "vgpu/telemetry.h"

static char tmp[64];

/* VGPU_ROOT at the writable copy NAME (made by setup) */
static void use_copy(const char *name) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/%s", tmp, name);
        setenv("VGPU_ROOT", p, 1);
}

/* Write a file of the host VGPU_ROOT points at (rel: relative to it). */
static void write_file(const char *rel, const char *text) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/%s", getenv("VGPU_ROOT"), rel);
        FILE *f = fopen(p, "we");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

/* One line per case in the test's output: how many allocations it has, and which ones the
 * library worked around (the call succeeded with its normal result). */
static void report_stats(const char *what, struct oom_stats st) {
        print_message("%-40s %4ld allocations, %4ld failing runs, %3ld worked around", what, st.points,
                      st.runs, st.survived);
        for (long i = 0; i < st.survived && i < (long) ELEMENTSOF(st.survived_at); i++)
                print_message("%s%ld", i ? ", " : " (allocation ", st.survived_at[i]);
        print_message("%s\n", st.survived ? ")" : "");
}

/* ---- the host snapshot ---- */

static int case_scan(void *userdata, char **ret, struct vgpu_error *err) {
        struct vgpu_host *host = NULL;
        int r = OOM_CALL(vgpu_host_scan(*(unsigned *) userdata, &host, err));
        if (r < 0) {
                assert_null(host);
                return r;
        }
        *ret = SUMMARIZE(dump_host, host);
        vgpu_host_free(host);
        return r;
}

/* GPUs with mdev types and instances (NVML through the double), vendor-VFIO VFs and their
 * instance, an AMD PF with VFs and hwmon, an Intel iGPU with a GVT-g instance, virtual parents. */
static const char *const scan_fixtures[] = { "nvidia-mdev", "nvidia-sriov-vfio", "amd-mxgpu", "intel-gvtg",
                                             "kernel-samples" };

static void test_scan(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(scan_fixtures); i++) {
                use_fixture(scan_fixtures[i]);
                char what[64];
                /* every flag (names once: loading pci.ids costs more than the rest of a scan); then
                 * what the planner asks for, which reads types on demand */
                unsigned flags = i == 0 ? VGPU_SCAN_ALL : VGPU_SCAN_ALL & ~VGPU_SCAN_NAMES;
                snprintf(what, sizeof(what), "vgpu_host_scan(ALL%s) %s", i == 0 ? "" : "-NAMES",
                         scan_fixtures[i]);
                report_stats(what, oom_check(what, case_scan, &flags));
                flags = VGPU_SCAN_PARENTS | VGPU_SCAN_INSTANCES;
                snprintf(what, sizeof(what), "vgpu_host_scan(PARENTS|INST) %s", scan_fixtures[i]);
                report_stats(what, oom_check(what, case_scan, &flags));
        }
}

/* ---- host.yaml ---- */

#define U_01  "b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01"
#define U_NEW "11111111-2222-4333-8444-000000000001"

/* For nvidia-mdev: 3b keeps its two instances (redefined with the attribute) and gets a fixed
 * UUID more, 5e loses its instance and definition, af gets a counted one; both policies. For
 * nvidia-baremetal (slices need a GPU without the vGPU manager), the slices: alice recreated
 * (other memory), bob created, carol (not in the file) removed. host_yaml is both, to parse. */
#define GPUS_YAML                                                                        \
        "gpus:\n"                                                                        \
        "  - bdf: 3B:00.0\n"                                                             \
        "    policy: {scheduler: fixed-share, timeslice-ms: 3, frame-rate-limit: off}\n" \
        "    devices:\n"                                                                 \
        "      - type: nvidia-232\n"                                                     \
        "        count: 3\n"                                                             \
        "        uuids: [" U_01 ", " U_NEW "]\n"                                         \
        "        attrs: [{nvidia/vgpu_params: \"enable_uvm=1\"}, {nvidia/other: x}]\n"   \
        "  - parent: 0000:5e:00.0\n"                                                     \
        "    devices: []\n"                                                              \
        "  - bdf: 0000:af:00.0\n"                                                        \
        "    policy: {scheduler: equal-share}\n"                                         \
        "    devices:\n"                                                                 \
        "      - {type: nvidia-232, count: 1, auto-start: false}\n"
#define SLICES_YAML                                                      \
        "slices:\n"                                                      \
        "  - {name: alice, gpu: 0000:3b:00.0, memory: 1G, share: 30%}\n" \
        "  - {name: bob, gpu: 0000:af:00.0, memory: 512M, policy: best-effort, scrub: off}\n"
static const char host_yaml[] = "version: 1\n" GPUS_YAML SLICES_YAML;

static int case_parse(void *userdata, char **ret, struct vgpu_error *err) {
        const char *text = userdata;
        struct vgpu_config *cfg = NULL;
        int r = OOM_CALL(vgpu_config_parse_text(text, strlen(text), "host.yaml", &cfg, err));
        if (r < 0) {
                assert_null(cfg);
                return r;
        }
        *ret = SUMMARIZE(dump_config, cfg);
        vgpu_config_free(cfg);
        return r;
}

static void test_config_parse(void **state) {
        (void) state;
        report_stats("vgpu_config_parse_text",
                     oom_check("vgpu_config_parse_text", case_parse, (void *) host_yaml));
}

static int case_load(void *userdata, char **ret, struct vgpu_error *err) {
        (void) userdata;
        struct vgpu_config *cfg = NULL;
        char *text = NULL;
        int r = OOM_CALL(vgpu_config_load(VGPU_STATE_CONFIG, VGPU_CONFIG_HOST_PATH, &cfg, &text, err));
        if (r < 0) {
                assert_null(cfg);
                assert_null(text);
                return r;
        }
        struct summary s;
        summary_open(&s);
        dump_config(s.f, cfg);
        fputs(text, s.f);
        *ret = summary_close(&s);
        vgpu_config_free(cfg);
        free(text);
        return r;
}

/* vgpu_config_load: reading the file into a memory stream, then the parse. (Its open_memstream
 * failing was once reported as "FILE: cannot read", -EIO.) */
static void test_config_load(void **state) {
        (void) state;
        use_copy("mdev");
        char cmd[PATH_MAX + 64];
        snprintf(cmd, sizeof(cmd), "mkdir -p '%s/var/lib/vgpuctl'", getenv("VGPU_ROOT"));
        assert_int_equal(system(cmd), 0);
        write_file(VGPU_STATE_CONFIG + 1, host_yaml);
        report_stats("vgpu_config_load", oom_check("vgpu_config_load", case_load, NULL));
        snprintf(cmd, sizeof(cmd), "%s" VGPU_STATE_CONFIG, getenv("VGPU_ROOT"));
        assert_int_equal(unlink(cmd), 0);
}

static struct vgpu_config *parse(const char *text) {
        struct vgpu_config *cfg = NULL;
        struct vgpu_error err = {};
        if (vgpu_config_parse_text(text, strlen(text), "host.yaml", &cfg, &err) < 0)
                fail_msg("%s", err.message);
        return cfg;
}

/* ---- mdevctl's store ---- */

static int case_definitions(void *userdata, char **ret, struct vgpu_error *err) {
        (void) userdata;
        struct vgpu_mdev_spec *defs = NULL;
        size_t n = 0;
        char *warnings = NULL;
        int r = OOM_CALL(vgpu_mdev_definitions(&defs, &n, &warnings, err));
        if (r < 0) {
                assert_null(defs);
                assert_null(warnings);
                return r;
        }
        struct summary s;
        summary_open(&s);
        dump_specs(s.f, defs, n);
        fprintf(s.f, "warnings: %s\n", strnull(warnings));
        *ret = summary_close(&s);
        vgpu_mdev_specs_free(defs, n);
        free(warnings);
        return r;
}

static void test_definitions(void **state) {
        (void) state;
        use_copy("mdev");
        /* a definition with attributes, and two the store skips with a warning each */
        char cmd[PATH_MAX + 64];
        snprintf(cmd, sizeof(cmd), "mkdir -p '%s/etc/mdevctl.d/0000:af:00.0'", getenv("VGPU_ROOT"));
        assert_int_equal(system(cmd), 0);
        write_file("etc/mdevctl.d/0000:af:00.0/22222222-2222-4333-8444-000000000001",
                   "{\"mdev_type\": \"nvidia-231\", \"start\": \"manual\", \"attrs\": [{\"a/b\": \"1\"}, "
                   "{\"c\": \"2\"}]}\n");
        write_file("etc/mdevctl.d/0000:af:00.0/22222222-2222-4333-8444-000000000002", "{ not json\n");
        write_file("etc/mdevctl.d/0000:af:00.0/not-a-uuid", "{}\n");
        report_stats("vgpu_mdev_definitions", oom_check("vgpu_mdev_definitions", case_definitions, NULL));
        snprintf(cmd, sizeof(cmd), "rm -r '%s/etc/mdevctl.d/0000:af:00.0'", getenv("VGPU_ROOT"));
        assert_int_equal(system(cmd), 0);
}

/* ---- slices ---- */

static void unlink_name(const char *path, const char *name, void *userdata) {
        (void) userdata;
        char p[PATH_MAX * 2];
        snprintf(p, sizeof(p), "%s/%s", path, name);
        assert_int_equal(unlink(p), 0);
}

static void slice_create(const char *name, const char *gpu, uint64_t memory, unsigned share) {
        struct vgpu_slice_spec req;
        struct vgpu_error err = {};
        if (vgpu_slice_spec_init(&req, name, gpu, &err) < 0)
                fail_msg("%s", err.message);
        req.memory = memory;
        req.share = share;
        if (vgpu_slice_create(&req, &err) < 0)
                fail_msg("%s", err.message);
}

static void slice_destroy(const char *name) {
        struct vgpu_error err = {};
        if (vgpu_slice_destroy(name, &err) < 0)
                fail_msg("%s", err.message);
}

static int case_slice_list(void *userdata, char **ret, struct vgpu_error *err) {
        (void) userdata;
        struct vgpu_slice_status *s = NULL;
        size_t n = 0;
        int r = OOM_CALL(vgpu_slice_list(&s, &n, err));
        if (r < 0) {
                assert_null(s);
                return r;
        }
        *ret = SUMMARIZE(dump_slices, s, n);
        free(s);
        return r;
}

/* create and destroy change the host: each run starts from the same slices, and a failed run
 * must leave them (and records, CDI spec) exactly so. The region file of a GPU may stay, empty:
 * it holds no slice and the CDI spec lists none from it. */
static int case_slice_create(void *userdata, char **ret, struct vgpu_error *err) {
        (void) userdata;
        char *before = slice_state();
        struct vgpu_slice_spec req = {
                .name = "dave", .gpu = "0000:af:00.0", .memory = 1ULL << 30, .share = 20
        };
        int r = OOM_CALL(vgpu_slice_create(&req, err));
        char *after = slice_state();
        if (r < 0)
                oom_assert_unchanged("vgpu_slice_create", after, before);
        else {
                *ret = oom_strf("%d\n%s", r, after);
                slice_destroy("dave");
        }
        free(before);
        free(after);
        return r;
}

static int case_slice_destroy(void *userdata, char **ret, struct vgpu_error *err) {
        (void) userdata;
        char *before = slice_state();
        int r = OOM_CALL(vgpu_slice_destroy("carol", err));
        char *after = slice_state();
        if (r < 0)
                oom_assert_unchanged("vgpu_slice_destroy", after, before);
        else {
                *ret = oom_strf("%d\n%s", r, after);
                slice_create("carol", "0000:3b:00.0", 0, 0);
        }
        free(before);
        free(after);
        return r;
}

/* Restore is not all-or-nothing by contract: a slice that fails is reported after the others
 * were restored. What must hold: -ENOMEM naming it, *ret_restored counting what came back, and
 * a second restore then brings the host to exactly what a restore without failures makes. */
static int case_slice_restore(void *userdata, char **ret, struct vgpu_error *err) {
        (void) userdata;
        /* as after a reboot: no region, no CDI spec (it is rewritten) */
        for_each_name(VGPU_SLICE_DIR, unlink_name, NULL);
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s" VGPU_CDI_SPEC, getenv("VGPU_ROOT"));
        (void) unlink(p);
        unsigned restored = 99;
        int r = OOM_CALL(vgpu_slice_restore(&restored, err));
        if (r >= 0) {
                assert_int_equal(restored, r);
                char *state = slice_state();
                *ret = oom_strf("%d\n%s", r, state);
                free(state);
                return r;
        }
        assert_true(restored < 3);
        struct vgpu_error again = {};
        unsigned more = 0;
        if (vgpu_slice_restore(&more, &again) < 0)
                fail_msg("restore after the failure: %s", again.message);
        if (restored + more != 3)
                fail_msg("vgpu_slice_restore: %u restored, then %u more, of 3 (%s)", restored, more,
                         err->message);
        return r;
}

static void test_slices(void **state) {
        (void) state;
        use_copy("bare");
        slice_create("alice", "0000:3b:00.0", 2ULL << 30, 30);
        slice_create("carol", "0000:3b:00.0", 0, 0);
        slice_create("erin", "0000:5e:00.0", 256ULL << 20, 0);
        report_stats("vgpu_slice_list", oom_check("vgpu_slice_list", case_slice_list, NULL));
        report_stats("vgpu_slice_create", oom_check("vgpu_slice_create", case_slice_create, NULL));
        report_stats("vgpu_slice_destroy", oom_check("vgpu_slice_destroy", case_slice_destroy, NULL));
        report_stats("vgpu_slice_restore", oom_check("vgpu_slice_restore", case_slice_restore, NULL));
        slice_destroy("alice");
        slice_destroy("carol");
        slice_destroy("erin");
}

/* ---- planning: vgpu_plan_for, and vgpu_apply with DRY_RUN ---- */

static int case_plan(void *userdata, char **ret, struct vgpu_error *err) {
        const struct vgpu_config *cfg = userdata;
        struct vgpu_plan *plan = NULL;
        int r = OOM_CALL(vgpu_plan_for(cfg, 0, &plan, err));
        if (r < 0) {
                assert_null(plan);
                return r;
        }
        *ret = SUMMARIZE(dump_plan, plan);
        vgpu_plan_free(plan);
        return r;
}

static int case_apply_dry_run(void *userdata, char **ret, struct vgpu_error *err) {
        const char *text = userdata;
        struct vgpu_config *cfg = parse(text);
        struct vgpu_plan *plan = NULL;
        int r = OOM_CALL(vgpu_apply(cfg, text, VGPU_APPLY_DRY_RUN, &plan, err));
        vgpu_config_free(cfg);
        if (r < 0) {
                assert_null(plan);
                return r;
        }
        *ret = SUMMARIZE(dump_plan, plan);
        vgpu_plan_free(plan);
        return r;
}

static void test_plan(void **state) {
        (void) state;
        use_copy("mdev");
        struct vgpu_config *cfg = parse("version: 1\n" GPUS_YAML);
        report_stats("vgpu_plan_for nvidia-mdev", oom_check("vgpu_plan_for nvidia-mdev", case_plan, cfg));
        vgpu_config_free(cfg);
        use_copy("bare");
        slice_create("alice", "0000:3b:00.0", 2ULL << 30, 30);
        slice_create("carol", "0000:3b:00.0", 0, 0);
        cfg = parse("version: 1\n" SLICES_YAML);
        report_stats("vgpu_plan_for nvidia-baremetal",
                     oom_check("vgpu_plan_for nvidia-baremetal", case_plan, cfg));
        vgpu_config_free(cfg);
        slice_destroy("alice");
        slice_destroy("carol");

        /* xe: VFs and the GuC profile of every function; GIM: VFs and its module options */
        use_copy("xe");
        report_stats("vgpu_apply(DRY_RUN) intel-xe-sriov",
                     oom_check("vgpu_apply(DRY_RUN) intel-xe-sriov", case_apply_dry_run,
                               (void *) "version: 1\ngpus:\n  - bdf: 0000:03:00.0\n    vfs: 4\n    policy: "
                                        "{scheduler: equal-share, timeslice-ms: 5}\n"));
        use_copy("amd");
        report_stats("vgpu_apply(DRY_RUN) amd-mxgpu",
                     oom_check("vgpu_apply(DRY_RUN) amd-mxgpu", case_apply_dry_run,
                               (void *) "version: 1\ngpus:\n  - bdf: 0000:03:00.0\n    vfs: 2\n    policy: "
                                        "{scheduler: fixed-share, timeslice-ms: 4}\n"));
}

/* Not out of memory, but the same promise: a plan refused after the NVIDIA policy text was begun
 * (a policy for a parent that is no GPU) frees it; the ASan build checks. */
static void test_plan_refused(void **state) {
        (void) state;
        use_copy("mdev");
        struct vgpu_config *cfg =
                parse("version: 1\ngpus:\n  - bdf: 0000:3b:00.0\n    policy: {scheduler: equal-share}\n"
                      "  - parent: mtty\n    policy: {scheduler: equal-share}\n");
        struct vgpu_plan *plan = NULL;
        struct vgpu_error err = {};
        assert_int_equal(vgpu_plan_for(cfg, 0, &plan, &err), -EOPNOTSUPP);
        assert_null(plan);
        assert_string_equal(err.message, "host.yaml:5: a scheduler policy needs a GPU; mtty is none");
        vgpu_config_free(cfg);
}

/* ---- export ---- */

struct export_input {
        struct vgpu_host *host;
        struct vgpu_mdev_spec *defs;
        size_t n_defs;
        struct vgpu_slice_status *slices;
        size_t n_slices;
};

static int case_export(void *userdata, char **ret, struct vgpu_error *err) {
        const struct export_input *in = userdata;
        char *text = NULL;
        int r = OOM_CALL(vgpu_config_export_slices(in->host, in->defs, in->n_defs, in->slices, in->n_slices,
                                                   &text, err));
        if (r < 0) {
                assert_null(text);
                return r;
        }
        *ret = text;
        return r;
}

static void test_export(void **state) {
        (void) state;
        use_copy("bare");
        slice_create("alice", "0000:3b:00.0", 2ULL << 30, 30);
        struct export_input in = {};
        struct vgpu_error err = {};
        assert_int_equal(vgpu_host_scan(VGPU_SCAN_ALL, &in.host, &err), 0);
        assert_int_equal(vgpu_mdev_definitions(&in.defs, &in.n_defs, NULL, &err), 0);
        assert_int_equal(vgpu_slice_list(&in.slices, &in.n_slices, &err), 0);
        report_stats("vgpu_config_export_slices", oom_check("vgpu_config_export_slices", case_export, &in));
        vgpu_host_free(in.host);
        vgpu_mdev_specs_free(in.defs, in.n_defs);
        free(in.slices);
        slice_destroy("alice");
}

/* ---- the doctor ---- */

static int case_doctor(void *userdata, char **ret, struct vgpu_error *err) {
        const struct vgpu_host *host = userdata;
        struct vgpu_doctor_report *report = NULL;
        int r = OOM_CALL(vgpu_doctor_run(host, &report, err));
        if (r < 0) {
                assert_null(report);
                return r;
        }
        *ret = SUMMARIZE(dump_report, report);
        vgpu_doctor_report_free(report);
        return r;
}

/* healthy, IOMMU off (GRUB remedies), AMD with hwmon, vendor-VFIO, a BAR and a secure boot fault;
 * KVM off (kern.log), a failed manager service (syslog), GIM errors, a stale module (libkmod,
 * DKMS), VFs in the PF's group */
static const char *const doctor_fixtures[] = {
        "nvidia-mdev",
        "broken-iommu-off",
        "amd-mxgpu",
        "nvidia-sriov-vfio",
        "broken-bar-below4g",
        "broken-secureboot-unsigned",
        "broken-kvm-bios",
        "broken-vgpu-mgr-failed",
        "broken-gim-errors",
        "broken-kernel-upgraded",
        "broken-vf-group-shared",
};

static void test_doctor(void **state) {
        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(doctor_fixtures); i++) {
                use_fixture(doctor_fixtures[i]);
                struct vgpu_host *host = NULL;
                struct vgpu_error err = {};
                assert_int_equal(vgpu_host_scan(VGPU_SCAN_ALL, &host, &err), 0);
                char what[64];
                snprintf(what, sizeof(what), "vgpu_doctor_run %s", doctor_fixtures[i]);
                report_stats(what, oom_check(what, case_doctor, host));
                vgpu_host_free(host);
        }
}

/* ---- the support bundle ---- */

static int case_report(void *userdata, char **ret, struct vgpu_error *err) {
        const struct vgpu_host *host = userdata;
        char dir[PATH_MAX], path[PATH_MAX + 16], cmd[PATH_MAX * 2];
        snprintf(dir, sizeof(dir), "%s/out", tmp);
        snprintf(path, sizeof(path), "%s/report.tar.gz", dir);
        static const char doctor_json[] = "{\"checks\": []}\n";
        const struct vgpu_report_extra extra = { "vgpuctl/doctor.json", doctor_json,
                                                 sizeof(doctor_json) - 1 };
        int r = OOM_CALL(vgpu_report_write(host, path, &extra, 1, err));
        if (r < 0) {
                /* a failed report leaves no file at all, not even its temporary one */
                struct dirent **names = NULL;
                int n = scandir(dir, &names, NULL, NULL);
                for (int i = 0; i < n; i++) {
                        if (!streq(names[i]->d_name, ".") && !streq(names[i]->d_name, ".."))
                                fail_msg("vgpu_report_write: allocation %ld failed, and %s/%s was left",
                                         oom_fail_at, dir, names[i]->d_name);
                        free(names[i]);
                }
                free(names);
                return r;
        }
        /* the entries, not the bytes: gzip stamps the time */
        snprintf(cmd, sizeof(cmd), "tar -tzf '%s' | sort; rm '%s'", path, path);
        FILE *ls = popen(cmd, "r");
        assert_non_null(ls);
        struct summary s;
        summary_open(&s);
        fprintf(s.f, "%d entries\n", r);
        char line[PATH_MAX];
        while (fgets(line, sizeof(line), ls))
                fputs(line, s.f);
        assert_int_equal(pclose(ls), 0);
        *ret = summary_close(&s);
        return r;
}

static void test_report(void **state) {
        (void) state;
        use_fixture("nvidia-mdev");
        struct vgpu_host *host = NULL;
        struct vgpu_error err = {};
        assert_int_equal(vgpu_host_scan(VGPU_SCAN_ALL, &host, &err), 0);
        /* one allocation per entry recorded (~500), each run a compressed tarball: the first and
         * last 40 (the archive, the first entries, nvml.conf, the extras), between them every 20th */
        report_stats("vgpu_report_write", oom_check_sparse("vgpu_report_write", case_report, host, 40, 20));
        vgpu_host_free(host);
}

/* ---- hardening ---- */

static int case_harden(void *userdata, char **ret, struct vgpu_error *err) {
        const struct vgpu_harden_options *opts = userdata;
        struct vgpu_doctor_report *report = NULL;
        int r = OOM_CALL(vgpu_harden_audit(opts, &report, err));
        if (r < 0) {
                assert_null(report);
                return r;
        }
        *ret = SUMMARIZE(dump_report, report);
        vgpu_doctor_report_free(report);
        return r;
}

static int case_ruleset(void *userdata, char **ret, struct vgpu_error *err) {
        char *rules = NULL;
        int r = OOM_CALL(vgpu_harden_ruleset(userdata, &rules, err));
        if (r < 0) {
                assert_null(rules);
                return r;
        }
        *ret = rules;
        return r;
}

static void test_harden(void **state) {
        (void) state;
        use_copy("mdev");
        /* a VFIO group (no char device here) and the daemon's socket, so every check has files;
         * gid 0 by number, so no group database decides the result */
        char cmd[PATH_MAX * 2];
        snprintf(cmd, sizeof(cmd),
                 "cd '%s' && mkdir -p dev/vfio run/vgpud && touch dev/vfio/vfio dev/vfio/17 "
                 "run/vgpud/vgpud.sock",
                 getenv("VGPU_ROOT"));
        assert_int_equal(system(cmd), 0);
        static const char *const ifaces[] = { "eth0", "wan1" };
        const struct vgpu_harden_options opts = {
                .public_ifaces = ifaces,
                .n_public_ifaces = ELEMENTSOF(ifaces),
                .vfio_group = "0",
                .socket_group = "0",
        };
        /* the audit runs `nft -c` on the ruleset: without nft on PATH it says "not run", the same
         * on every host and without a process per run */
        char *path = strdup(getenv("PATH"));
        setenv("PATH", "/nonexistent", 1);
        report_stats("vgpu_harden_audit", oom_check("vgpu_harden_audit", case_harden, (void *) &opts));
        /* again with the ruleset installed: the audit reads it back to compare */
        char *rules = NULL;
        struct vgpu_error err = {};
        assert_int_equal(vgpu_harden_ruleset(&opts, &rules, &err), 0);
        snprintf(cmd, sizeof(cmd), "%s/etc/nftables.d", getenv("VGPU_ROOT"));
        assert_int_equal(mkdir(cmd, 0755), 0);
        write_file(VGPU_HARDEN_NFT_PATH + 1, rules);
        free(rules);
        report_stats("vgpu_harden_audit (ruleset installed)",
                     oom_check("vgpu_harden_audit installed", case_harden, (void *) &opts));
        setenv("PATH", path, 1);
        free(path);
        report_stats("vgpu_harden_ruleset", oom_check("vgpu_harden_ruleset", case_ruleset, (void *) &opts));
        snprintf(cmd, sizeof(cmd), "cd '%s' && rm -r dev run/vgpud etc/nftables.d", getenv("VGPU_ROOT"));
        assert_int_equal(system(cmd), 0);
}

/* ---- telemetry ---- */

struct telemetry_input {
        const struct vgpu_host *before, *after;
};

/* Thresholds low enough that the T4s (41 C and up) cross them: thermal events. */
static const struct vgpu_thermal_limits low_limits = { .warn_c = 30, .critical_c = 45, .hysteresis_c = 2 };

static int case_telemetry(void *userdata, char **ret, struct vgpu_error *err) {
        const struct telemetry_input *in = userdata;
        struct vgpu_telemetry t = {};
        struct vgpu_error ignore = {};
        /* a first update from another host: the second one adds and removes GPUs */
        assert_int_equal(
                vgpu_telemetry_update(&t, in->before,
                                      VGPU_TELEMETRY_NVML | VGPU_TELEMETRY_HWMON | VGPU_TELEMETRY_PCIE,
                                      &low_limits, NULL, NULL, NULL, NULL, &ignore),
                0);
        char *before = SUMMARIZE(dump_telemetry, &t);

        struct vgpu_telemetry_event *events = NULL;
        size_t n_events = 0;
        int r = OOM_CALL(vgpu_telemetry_update(
                &t, in->after, VGPU_TELEMETRY_NVML | VGPU_TELEMETRY_HWMON | VGPU_TELEMETRY_PCIE, &low_limits,
                NULL, NULL, &events, &n_events, err));
        struct summary s;
        summary_open(&s);
        dump_telemetry(s.f, &t);
        if (r < 0) {
                /* "On failure t is unchanged" */
                assert_null(events);
                char *after = summary_close(&s);
                oom_assert_unchanged("vgpu_telemetry_update", after, before);
                free(after);
        } else {
                for (size_t i = 0; i < n_events; i++)
                        fprintf(s.f, "event %s %s\n", vgpu_telemetry_event_kind_to_string(events[i].kind),
                                events[i].message);
                *ret = summary_close(&s);
        }
        free(before);
        free(events);
        vgpu_telemetry_free(&t);
        return r;
}

static void test_telemetry(void **state) {
        (void) state;
        struct telemetry_input in;
        struct vgpu_host *before = NULL, *after = NULL;
        struct vgpu_error err = {};
        use_fixture("amd-mxgpu");
        assert_int_equal(vgpu_host_scan(VGPU_SCAN_DETAILS | VGPU_SCAN_NVML, &before, &err), 0);
        use_fixture("nvidia-mdev");
        assert_int_equal(vgpu_host_scan(VGPU_SCAN_DETAILS | VGPU_SCAN_NVML, &after, &err), 0);
        in = (struct telemetry_input){ before, after };
        report_stats("vgpu_telemetry_update", oom_check("vgpu_telemetry_update", case_telemetry, &in));
        vgpu_host_free(before);
        vgpu_host_free(after);
}

/* ---- NVML's error events, through the double ---- */

static int case_events_open(void *userdata, char **ret, struct vgpu_error *err) {
        struct vgpu_nvml_events *w = NULL;
        int r = OOM_CALL(vgpu_nvml_events_open(userdata, &w, err));
        if (r < 0) {
                assert_null(w);
                return r;
        }
        assert_non_null(w);
        *ret = oom_strf("%zu GPUs\n", vgpu_nvml_events_n_gpus(w));
        vgpu_nvml_events_free(w);
        return r;
}

static void append_events(const char *text) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s/nvml-events", getenv("VGPU_ROOT"));
        FILE *f = fopen(p, "ae");
        assert_non_null(f);
        fputs(text, f);
        fclose(f);
}

static void dump_events(FILE *f, const struct vgpu_nvml_event *e, size_t n) {
        for (size_t i = 0; i < n; i++)
                fprintf(f, "%s %d %llu\n", e[i].bdf, e[i].type, (unsigned long long) e[i].data);
}

/* Events read from NVML are gone from there: a read that fails must not have taken any, so the
 * next read still gets them all. Out of room after some, a read returns those (documented as
 * worked around): the next read gets the rest, so both reads together are the summary. */
static int case_events_read(void *userdata, char **ret, struct vgpu_error *err) {
        struct vgpu_nvml_events *w = NULL;
        struct vgpu_error ignore = {};
        assert_int_equal(vgpu_nvml_events_open(userdata, &w, &ignore), 0);
        assert_non_null(w);
        append_events("00000000:3B:00.0 xid 79\n00000000:5E:00.0 dbe 2\n00000000:AF:00.0 sbe 1\n"
                      "00000000:3B:00.0 xid 43\n00000000:3B:00.0 xid 48\n00000000:AF:00.0 xid 13\n"
                      "00000000:5E:00.0 xid 31\n00000000:5E:00.0 xid 94\n00000000:AF:00.0 xid 119\n");
        struct vgpu_nvml_event *events = NULL, *rest = NULL;
        size_t n = 0, n_rest = 0;
        int r = OOM_CALL(vgpu_nvml_events_read(w, &events, &n, err));
        if (r < 0)
                assert_null(events);
        assert_int_equal(vgpu_nvml_events_read(w, &rest, &n_rest, &ignore), 0);
        if (r < 0)
                assert_int_equal(n_rest, 9);
        else {
                struct summary s;
                summary_open(&s);
                dump_events(s.f, events, n);
                dump_events(s.f, rest, n_rest);
                *ret = summary_close(&s);
        }
        free(events);
        free(rest);
        vgpu_nvml_events_free(w);
        return r;
}

static void test_nvml_events(void **state) {
        (void) state;
        use_copy("mdev");
        struct vgpu_host *host = NULL;
        struct vgpu_error err = {};
        assert_int_equal(vgpu_host_scan(0, &host, &err), 0);
        report_stats("vgpu_nvml_events_open", oom_check("vgpu_nvml_events_open", case_events_open, host));
        report_stats("vgpu_nvml_events_read", oom_check("vgpu_nvml_events_read", case_events_read, host));
        vgpu_host_free(host);
}

/* ---- assigning: the <hostdev> element and QEMU's argument ---- */

static int case_hostdev(void *userdata, char **ret, struct vgpu_error *err) {
        const struct vgpu_hostdev *dev = userdata;
        char *xml = NULL, *qemu = NULL;
        int r = OOM_CALL(vgpu_hostdev_xml(dev, VGPU_ASSIGN_DISPLAY_OFF, &xml, err));
        if (r < 0) {
                assert_null(xml);
                return r;
        }
        r = OOM_CALL(vgpu_hostdev_qemu_device(dev, &qemu, err));
        if (r < 0) {
                assert_null(qemu);
                free(xml);
                return r;
        }
        *ret = oom_strf("%s\n%s\n", xml, qemu);
        free(xml);
        free(qemu);
        return r;
}

static void test_hostdev(void **state) {
        (void) state;
        struct vgpu_hostdev dev;
        struct vgpu_error err = {};
        assert_int_equal(vgpu_hostdev_parse(U_01, &dev, &err), 0);
        report_stats("vgpu_hostdev_xml/qemu_device mdev",
                     oom_check("vgpu_hostdev_xml mdev", case_hostdev, &dev));
        assert_int_equal(vgpu_hostdev_parse("0000:41:00.4", &dev, &err), 0);
        report_stats("vgpu_hostdev_xml/qemu_device pci",
                     oom_check("vgpu_hostdev_xml pci", case_hostdev, &dev));
}

static int setup(void **state) {
        (void) state;
        /* on tmpfs where there is one: the library fsyncs every state file it writes, a disk
         * flush each on /tmp, which over the thousands of runs here took seconds */
        snprintf(tmp, sizeof(tmp), "%s/vgpu-test-oom.XXXXXX",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        assert_non_null(mkdtemp(tmp));
        const char *fixtures = getenv("FIXTURES");
        assert_non_null(fixtures);
        char cmd[PATH_MAX * 4];
        snprintf(cmd, sizeof(cmd),
                 "cp -a '%1$s/nvidia-mdev' '%2$s/mdev' && cp -a '%1$s/nvidia-baremetal' '%2$s/bare' && "
                 "cp -a '%1$s/intel-xe-sriov' '%2$s/xe' && "
                 "cp -a '%1$s/amd-mxgpu' '%2$s/amd' && mkdir '%2$s/out'",
                 fixtures, tmp);
        assert_int_equal(system(cmd), 0);
        return 0;
}

static int teardown(void **state) {
        (void) state;
        rm_rf(tmp);
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_scan),         cmocka_unit_test(test_config_parse),
                cmocka_unit_test(test_config_load),  cmocka_unit_test(test_definitions),
                cmocka_unit_test(test_slices),       cmocka_unit_test(test_plan),
                cmocka_unit_test(test_plan_refused), cmocka_unit_test(test_export),
                cmocka_unit_test(test_doctor),       cmocka_unit_test(test_report),
                cmocka_unit_test(test_harden),       cmocka_unit_test(test_telemetry),
                cmocka_unit_test(test_nvml_events),  cmocka_unit_test(test_hostdev),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
