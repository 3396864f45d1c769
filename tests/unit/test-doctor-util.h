/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-doctor-util.h — what the doctor's unit tests share: running the doctor on a fixture
 * host, finding one result and asserting its status, summary, evidence and remedy, and the
 * status vector ("id@subject=status" lines) of a whole run.
 */
#pragma once

#include <unistd.h>

#include "test-util.h"

#include "doctor/doctor-internal.h"
#include "vgpu/doctor.h"

struct run {
        struct vgpu_host *host;
        struct vgpu_doctor_report *report;
        char fixture[64];
};

static inline void run_flags(struct run *run, const char *fixture, unsigned flags) {
        struct vgpu_error err = {};
        use_fixture(fixture);
        snprintf(run->fixture, sizeof(run->fixture), "%s", fixture);
        int r = vgpu_host_scan(flags, &run->host, &err);
        if (r < 0)
                fail_msg("%s: scan failed: %s", fixture, err.message);
        r = vgpu_doctor_run(run->host, &run->report, &err);
        if (r < 0)
                fail_msg("%s: doctor failed: %s", fixture, err.message);
}

static inline void run_doctor(struct run *run, const char *fixture) {
        run_flags(run, fixture, VGPU_SCAN_ALL);
}

static inline void run_done(struct run *run) {
        vgpu_doctor_report_free(run->report);
        vgpu_host_free(run->host);
        *run = (struct run){};
}

static inline const struct vgpu_check_result *find(const struct run *run, const char *id,
                                                   const char *subject) {
        for (size_t i = 0; i < run->report->n_results; i++) {
                const struct vgpu_check_result *r = &run->report->results[i];
                if (strcmp(r->id, id) == 0 && streq_ptr(r->subject, subject))
                        return r;
        }
        fail_msg("%s: no result %s for %s", run->fixture, id, subject ? subject : "the host");
        return NULL;
}

static inline void print_result(const char *fixture, const struct vgpu_check_result *r) {
        print_error("%s: %s %s = %s\n  summary: %s\n  evidence: %s\n  remedy: %s\n", fixture, r->id,
                    r->subject ? r->subject : "(host)", vgpu_check_status_to_string(r->status), r->summary,
                    r->evidence, r->remedy ? r->remedy : "(null)");
}

static inline void expect_in(const char *fixture, const struct vgpu_check_result *r, const char *what,
                             const char *text, const char *needle) {
        if (!needle)
                return;
        if (!text || !strstr(text, needle)) {
                print_result(fixture, r);
                fail_msg("%s: %s of %s lacks \"%s\"", fixture, what, r->id, needle);
        }
}

/* The result of check `id` for `subject` has `status`, and its summary, evidence and remedy
 * hold the given pieces (NULL: not checked). Pass and skip results must have no remedy. */
static inline void expect(const struct run *run, const char *id, const char *subject,
                          enum vgpu_check_status status, const char *summary, const char *evidence,
                          const char *remedy) {
        const struct vgpu_check_result *r = find(run, id, subject);
        if (r->status != status) {
                print_result(run->fixture, r);
                fail_msg("%s: %s is %s, expected %s", run->fixture, id,
                         vgpu_check_status_to_string(r->status), vgpu_check_status_to_string(status));
        }
        assert_non_null(r->summary);
        assert_non_null(r->evidence);
        assert_null(strchr(r->summary, '\n'));
        if (status == VGPU_CHECK_PASS || status == VGPU_CHECK_SKIP)
                assert_null(r->remedy);
        else
                assert_non_null(r->remedy);
        expect_in(run->fixture, r, "summary", r->summary, summary);
        expect_in(run->fixture, r, "evidence", r->evidence, evidence);
        expect_in(run->fixture, r, "remedy", r->remedy, remedy);
}

/* One expected result of a check: on fixture (scanned with scan, VGPU_SCAN_ALL when 0), what
 * expect() checks of it for subject, and what its remedy must not say. */
struct want {
        const char *fixture, *subject;
        enum vgpu_check_status status;
        const char *summary, *evidence, *remedy;
        unsigned scan;
        const char *not_in_remedy;
};

/* expect() check id as each of wants (a table ending in {}) says, running the doctor once for
 * each run of wants on the same fixture. */
static inline void expect_all(const char *id, const struct want *wants) {
        struct run run = {};
        for (const struct want *w = wants; w->fixture; w++) {
                if (w == wants || strcmp(w->fixture, w[-1].fixture) != 0 || w->scan != w[-1].scan) {
                        if (w != wants)
                                run_done(&run);
                        run_flags(&run, w->fixture, w->scan ? w->scan : VGPU_SCAN_ALL);
                }
                expect(&run, id, w->subject, w->status, w->summary, w->evidence, w->remedy);
                if (w->not_in_remedy)
                        assert_null(strstr(find(&run, id, w->subject)->remedy, w->not_in_remedy));
        }
        if (wants->fixture)
                run_done(&run);
}

struct check_wants {
        const char *id;
        const struct want *wants;
};

/* A cmocka test of the struct check_wants in its state; want_test(table, id) names it
 * test_<table>. */
static inline void test_wants(void **state) {
        const struct check_wants *cw = *state;
        expect_all(cw->id, cw->wants);
}
#define want_test(table, check_id)                                              \
        {                                                                       \
                "test_" #table, test_wants, NULL, NULL, &(struct check_wants) { \
                        check_id, table                                         \
                }                                                               \
        }

/* "id[@subject]=status\n" for every result, or only for warnings and failures. */
static inline char *status_vector(const struct run *run, bool problems_only) {
        static char buf[8192];
        size_t n = 0;
        buf[0] = '\0';
        for (size_t i = 0; i < run->report->n_results; i++) {
                const struct vgpu_check_result *r = &run->report->results[i];
                if (problems_only && r->status != VGPU_CHECK_WARN && r->status != VGPU_CHECK_FAIL)
                        continue;
                n += snprintf(buf + n, sizeof(buf) - n, "%s%s%s=%s\n", r->id, r->subject ? "@" : "",
                              r->subject ? r->subject : "", vgpu_check_status_to_string(r->status));
                assert_true(n < sizeof(buf));
        }
        return buf;
}

/* A scratch root: an empty tree the test fills file by file (VGPU_ROOT points at it). */
static char scratch[64];

/* The path of rel under the scratch root in p, its directory made. */
static inline void scratch_parent(const char *rel, char *p, size_t size) {
        char cmd[320];
        snprintf(p, size, "%s/%s", scratch, rel);
        snprintf(cmd, sizeof(cmd), "mkdir -p \"$(dirname '%s')\"", p);
        assert_int_equal(system(cmd), 0);
}

static inline void scratch_file(const char *rel, const char *content) {
        char p[256];
        scratch_parent(rel, p, sizeof(p));
        FILE *f = fopen(p, "w");
        assert_non_null(f);
        fputs(content, f);
        fclose(f);
}

static inline void scratch_link(const char *rel, const char *target) {
        char p[256];
        scratch_parent(rel, p, sizeof(p));
        assert_int_equal(symlink(target, p), 0);
}

static inline void scratch_rm(const char *rel) {
        char p[256];
        snprintf(p, sizeof(p), "%s/%s", scratch, rel);
        rm_rf(p);
}

static inline int scratch_setup(void **state) {
        (void) state;
        snprintf(scratch, sizeof(scratch), "/tmp/vgpu-test-doctor.XXXXXX");
        assert_non_null(mkdtemp(scratch));
        setenv("VGPU_ROOT", scratch, 1);
        return 0;
}

static inline int scratch_teardown(void **state) {
        (void) state;
        rm_rf(scratch);
        return 0;
}

/* The doctor on the scratch root (no /sys: a host without PCI). */
static inline void scratch_doctor(struct run *run) {
        struct vgpu_error err = {};
        snprintf(run->fixture, sizeof(run->fixture), "scratch");
        assert_int_equal(vgpu_host_scan(VGPU_SCAN_ALL, &run->host, &err), 0);
        assert_int_equal(vgpu_doctor_run(run->host, &run->report, &err), 0);
}
