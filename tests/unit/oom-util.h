/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * oom-util.h — making libvgpu's allocations fail on purpose, one at a time, to prove that every
 * allocation failure is reported (-ENOMEM and a message), leaves no partial result behind and
 * leaks nothing (the ASan build's LeakSanitizer checks that at exit).
 *
 * The test that includes this is linked with -Wl,--wrap=SYMBOL for each allocator below
 * (tests/meson.build, unit_link_args), so the calls libvgpu's objects make — the static
 * libvgpu-internal archive is linked into the test — come to the __wrap_ functions here, and
 * __real_SYMBOL is the C library's (or ASan's). Allocations made inside other shared libraries
 * (libc's own opendir/fopen, json-c, libyaml, libpci, zlib) are not seen: only those libvgpu
 * makes itself. Include this from one file only: it defines the wrappers.
 *
 * A case is a function that makes the library call (or calls) under test through OOM_CALL()
 * and, when it succeeded, describes the result in a string (its "summary"). oom_check() runs it
 * once normally, counting the allocations made, then again with the Nth of them failing, once
 * per run, for N = 0, 1, ... until a run makes no Nth allocation. Every failing run must return -ENOMEM
 * with a non-empty message (err->code agreeing), and the case must have checked that it produced
 * nothing; a run that succeeds although an allocation failed must give the same summary as the
 * normal run (a failure the library legitimately works around changes nothing), else that is
 * a silently degraded result and the test fails.
 */
#pragma once

#include <limits.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test-util.h"
#include "basic/macro.h"
#include "vgpu/error.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t size);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
int __real_vasprintf(char **ret, const char *fmt, va_list ap);
FILE *__real_open_memstream(char **buf, size_t *size);

void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t size);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
int __wrap_asprintf(char **ret, const char *fmt, ...);
int __wrap_vasprintf(char **ret, const char *fmt, va_list ap);
FILE *__wrap_open_memstream(char **buf, size_t *size);

/* Counted only while armed (inside OOM_CALL), so the test's own allocations never fail. Atomic:
 * the scan reads PCI functions, mdev types and definitions on worker threads. */
static atomic_bool oom_armed;
static atomic_long oom_seen;   /* allocations made since armed */
static long oom_fail_at = -1;  /* the one to fail; -1 none */
static atomic_bool oom_failed; /* ...and it was reached */

static bool oom_fail_now(void) {
        if (!atomic_load(&oom_armed))
                return false;
        long i = atomic_fetch_add(&oom_seen, 1);
        if (i != oom_fail_at)
                return false;
        atomic_store(&oom_failed, true);
        errno = ENOMEM;
        return true;
}

void *__wrap_malloc(size_t size) {
        return oom_fail_now() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t n, size_t size) {
        return oom_fail_now() ? NULL : __real_calloc(n, size);
}

/* A failed realloc() leaves the block as it was, as the C library's does. */
void *__wrap_realloc(void *p, size_t size) {
        return oom_fail_now() ? NULL : __real_realloc(p, size);
}

char *__wrap_strdup(const char *s) {
        return oom_fail_now() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n) {
        return oom_fail_now() ? NULL : __real_strndup(s, n);
}

/* A failed asprintf() leaves *ret alone, as glibc's does (POSIX leaves it undefined). */
int __wrap_vasprintf(char **ret, const char *fmt, va_list ap) {
        return oom_fail_now() ? -1 : __real_vasprintf(ret, fmt, ap);
}

int __wrap_asprintf(char **ret, const char *fmt, ...) {
        if (oom_fail_now())
                return -1;
        va_list ap;
        va_start(ap, fmt);
        int r = __real_vasprintf(ret, fmt, ap);
        va_end(ap);
        return r;
}

/* The stream's buffer grows inside libc, out of our sight: only opening it can fail here. */
FILE *__wrap_open_memstream(char **buf, size_t *size) {
        return oom_fail_now() ? NULL : __real_open_memstream(buf, size);
}

/* Arm the counter around one library call; evaluates to the call's value. A case may make
 * several: allocations are counted across them, from the start of the run. */
#define OOM_CALL(call)                            \
        ({                                        \
                atomic_store(&oom_armed, true);   \
                __typeof__(call) _oom_r = (call); \
                atomic_store(&oom_armed, false);  \
                _oom_r;                           \
        })

/* A case: its calls through OOM_CALL; on success *ret_summary describes the result (malloc'd),
 * on failure the case has checked that nothing came back (and, for calls with side effects,
 * that nothing changed) and leaves *ret_summary NULL. Returns what the call returned. */
typedef int (*oom_case_fn)(void *userdata, char **ret_summary, struct vgpu_error *err);

/* A printf-style string for summaries, with the real allocator. */
_printf_(1, 2) static inline char *oom_strf(const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *s = NULL;
        int n = __real_vasprintf(&s, fmt, ap);
        va_end(ap);
        assert_true(n >= 0);
        return s;
}

/* Where two summaries part: the first line that differs (cmocka cuts long messages short). */
static inline void oom_print_difference(const char *got, const char *want) {
        size_t line = 1;
        for (;;) {
                size_t a = strcspn(got, "\n"), b = strcspn(want, "\n");
                if (a != b || strncmp(got, want, a) != 0 || !got[a] || !want[b]) {
                        print_error("first difference, line %zu:\n  got:  %.*s\n  want: %.*s\n", line,
                                    (int) a, got, (int) b, want);
                        return;
                }
                got += a + 1, want += b + 1, line++;
        }
}

/* For cases whose call changes the host: after a failed run it must be as before. */
static inline void oom_assert_unchanged(const char *what, const char *after, const char *before) {
        if (strcmp(after, before) == 0)
                return;
        oom_print_difference(after, before);
        fail_msg("%s: allocation %ld failed, and the call changed what it must leave alone", what,
                 oom_fail_at);
}

struct oom_stats {
        long points;         /* allocations a normal call makes */
        long runs;           /* runs with one of them failing */
        long survived;       /* ...that still succeeded, with the normal result */
        long survived_at[8]; /* the first of those allocations, for the case to explain */
};

/* The allocation to fail after n: each of the first and the last `dense`, every step-th in
 * between, and a step stops where the last ones begin rather than jump over them. */
static inline long oom_next(long n, long points, long dense, long step) {
        if (n < dense || n >= points - dense)
                return n + 1;
        return n + step < points - dense ? n + step : points - dense;
}

/*
 * Run fn normally, then with allocation N failing for each N among the first and the last
 * `dense` of the normal run's allocations, and between those every step-th only: for calls that
 * make hundreds of allocations of the same few kinds (one per file, say) and cost much per run.
 * The first and last ones are where the kinds differ (setup, and what is done at the end).
 */
static inline struct oom_stats oom_check_sparse(const char *name, oom_case_fn fn, void *userdata, long dense,
                                                long step) {
        struct oom_stats st = {};
        struct vgpu_error err = {};
        char *want = NULL;

        oom_fail_at = -1;
        atomic_store(&oom_seen, 0);
        int r0 = fn(userdata, &want, &err);
        if (r0 < 0)
                fail_msg("%s: the call failed without any allocation failing: %s", name, err.message);
        assert_non_null(want);
        st.points = atomic_load(&oom_seen);

        for (long n = 0;; n = oom_next(n, st.points, dense, step)) {
                char *got = NULL;
                err = (struct vgpu_error){};
                oom_fail_at = n;
                atomic_store(&oom_seen, 0);
                atomic_store(&oom_failed, false);
                int r = fn(userdata, &got, &err);
                oom_fail_at = -1;
                if (!atomic_load(&oom_failed)) {
                        /* past the last allocation: the call as normal */
                        if (r != r0 || !got || strcmp(got, want) != 0) {
                                oom_print_difference(got ? got : "(nothing)", want);
                                fail_msg("%s: a run without failures returned %d, not %d, or another result",
                                         name, r, r0);
                        }
                        free(got);
                        break;
                }
                st.runs++;
                if (r >= 0) {
                        if (!got || strcmp(got, want) != 0) {
                                oom_print_difference(got ? got : "(nothing)", want);
                                fail_msg("%s: allocation %ld failed, yet the call returned %d with another "
                                         "result",
                                         name, n, r);
                        }
                        if ((size_t) st.survived < ELEMENTSOF(st.survived_at))
                                st.survived_at[st.survived] = n;
                        st.survived++;
                        free(got);
                        continue;
                }
                if (r != -ENOMEM || err.code != r || !err.message[0])
                        fail_msg("%s: allocation %ld failed: returned %d (error code %d, message \"%s\"), "
                                 "expected -ENOMEM "
                                 "with a message",
                                 name, n, r, err.code, err.message);
                if (got)
                        fail_msg("%s: allocation %ld failed, yet there is a result: %.200s", name, n, got);
        }
        free(want);
        return st;
}

static inline struct oom_stats oom_check(const char *name, oom_case_fn fn, void *userdata) {
        return oom_check_sparse(name, fn, userdata, LONG_MAX, 1);
}
