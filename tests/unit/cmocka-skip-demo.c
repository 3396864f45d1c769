/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cmocka-skip-demo.c — a cmocka program whose cases pass, skip or fail as argv[1] says, for
 * test-cmocka-run.sh to prove that cmocka-run.py counts and names skipped cases and turns a
 * program whose every case skipped into meson's SKIP. Not a test by itself.
 *   some: one case passes, one skips    all: both skip    fail: one fails, one skips
 */
#include "test-util.h"

static const char *mode = "some";

static void case_by_mode(void **state) {
        (void) state;
        if (strcmp(mode, "all") == 0) {
                print_message("skipped: the mode says so\n");
                skip();
        }
        if (strcmp(mode, "fail") == 0)
                fail_msg("failing on purpose");
}

static void case_skips(void **state) {
        (void) state;
        print_message("skipped: no widget on this host\n");
        skip();
}

int main(int argc, char **argv) {
        if (argc > 1)
                mode = argv[1];
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(case_by_mode),
                cmocka_unit_test(case_skips),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
