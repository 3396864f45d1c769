/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-util.h — what the unit tests share: pointing VGPU_ROOT at a fixture host, temp trees. */
#pragma once

#include <errno.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

/* Point VGPU_ROOT at tests/fixtures/hosts/NAME (meson passes FIXTURES). */
static inline void use_fixture(const char *name) {
        const char *dir = getenv("FIXTURES");
        assert_non_null(dir);
        char p[4096];
        snprintf(p, sizeof(p), "%s/%s", dir, name);
        setenv("VGPU_ROOT", p, 1);
}

/* Remove a temporary tree the test made (its path has no quote in it: mkdtemp's). */
static inline void rm_rf(const char *path) {
        char cmd[4200];
        snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
        assert_int_equal(system(cmd), 0);
}
