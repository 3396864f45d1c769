/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-dlopen.c — basic/dlopen-util.c and the optional libraries libvgpu loads with it:
 * a missing library or symbol gives -EOPNOTSUPP and a message naming it (and no half-filled
 * table), a present one resolves its table once for all threads.
 */
#include <math.h>
#include <pthread.h>

#include "test-util.h"

#include "basic/dlopen-util.h"

static struct {
        __typeof__(cos) *cos;
        __typeof__(sqrt) *sqrt;
        void (*no_such_function)(void);
} m;

static void test_missing_library(void **state) {
        (void) state;
        static const struct dlopen_symbol syms[] = { { "cos", (void **) &m.cos } };
        struct dlopen_library lib = DLOPEN_LIBRARY("libvgpu-test-absent.so.7", "libvgpu-test-absent7", syms);
        struct vgpu_error err = {};
        assert_int_equal(dlopen_library_load(&lib, &err), -EOPNOTSUPP);
        assert_int_equal(err.code, -EOPNOTSUPP);
        assert_non_null(strstr(err.message, "libvgpu-test-absent.so.7 is not installed (Debian: apt install "
                                            "libvgpu-test-absent7; "));
        assert_null(m.cos);
        /* the answer is kept: a second call says the same, and a NULL err is fine */
        vgpu_error_clear(&err);
        assert_int_equal(dlopen_library_load(&lib, &err), -EOPNOTSUPP);
        assert_non_null(strstr(err.message, "libvgpu-test-absent.so.7 is not installed"));
        assert_int_equal(dlopen_library_load(&lib, NULL), -EOPNOTSUPP);
}

static void test_missing_symbol(void **state) {
        (void) state;
        static const struct dlopen_symbol syms[] = { DLOPEN_SYMBOL(m, cos)
                                                             DLOPEN_SYMBOL(m, no_such_function) };
        struct dlopen_library lib = DLOPEN_LIBRARY("libm.so.6", "libc6", syms);
        struct vgpu_error err = {};
        assert_int_equal(dlopen_library_load(&lib, &err), -EOPNOTSUPP);
        assert_string_equal(err.message, "libm.so.6 has no no_such_function (too old?)");
        assert_null(m.cos); /* all of the table or none of it */
}

static void *load_thread(void *userdata) {
        struct dlopen_library *lib = userdata;
        return (void *) (intptr_t) dlopen_library_load(lib, NULL);
}

static void test_loaded(void **state) {
        (void) state;
        static const struct dlopen_symbol syms[] = { DLOPEN_SYMBOL(m, cos) DLOPEN_SYMBOL(m, sqrt) };
        struct dlopen_library lib = DLOPEN_LIBRARY("libm.so.6", "libc6", syms);
        pthread_t t[8];
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                assert_int_equal(pthread_create(&t[i], NULL, load_thread, &lib), 0);
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                void *r;
                assert_int_equal(pthread_join(t[i], &r), 0);
                assert_int_equal((intptr_t) r, 0);
        }
        assert_true(lib.tried);
        assert_non_null(m.cos);
        assert_true(m.cos(0.0) == 1.0);
        assert_true(m.sqrt(16.0) == 4.0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_missing_library),
                cmocka_unit_test(test_missing_symbol),
                cmocka_unit_test(test_loaded),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
