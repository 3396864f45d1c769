/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-store.c — mdevctl's definition store (lib/mdevctl-store/store.c) on a scratch root: a
 * definition written and read back unchanged, in mdevctl's exact JSON; every way a file can be
 * malformed refused with the reason, and in vgpu_mdev_definitions() reported as "PATH: reason,
 * skipped" naming the file while the good definitions beside it still load; a FIFO and an
 * oversized file skipped without blocking; the temporary files of a killed write removed.
 */
#include "test-util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mdevctl-store/store.h"
#include "vgpu/lifecycle.h"

#define P  "0000:3b:00.0"
#define U1 "b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01"
#define U2 "b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e02"
#define U3 "b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e03"

static char root[64];

static int setup(void **state) {
        (void) state;
        snprintf(root, sizeof(root), "/tmp/test-store-XXXXXX");
        assert_non_null(mkdtemp(root));
        char cmd[256];
        snprintf(cmd, sizeof(cmd), "mkdir -p '%s/etc/mdevctl.d/" P "'", root);
        assert_int_equal(system(cmd), 0);
        setenv("VGPU_ROOT", root, 1);
        return 0;
}

static int teardown(void **state) {
        (void) state;
        rm_rf(root);
        return 0;
}

/* Write REL (below the root) with TEXT. */
static void put(const char *rel, const char *text) {
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", root, rel);
        FILE *f = fopen(p, "we");
        assert_non_null(f);
        fputs(text, f);
        assert_int_equal(fclose(f), 0);
}

static char *slurp(const char *rel) {
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", root, rel);
        FILE *f = fopen(p, "re");
        if (!f)
                return NULL;
        static char buf[8192];
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        buf[n] = '\0';
        fclose(f);
        return buf;
}

/* A spec written, read back from the store: the same fields, mdevctl's own layout on disk. */
static void test_round_trip(void **state) {
        (void) state;
        struct vgpu_mdev_attr attrs[] = {
                { .key = (char *) "nvidia/vgpu_params", .value = (char *) "frame_rate_limiter=0" },
                { .key = (char *) "a/b", .value = (char *) "x y \"quoted\"" },
        };
        struct vgpu_mdev_spec spec = {
                .parent = (char *) P,
                .type = (char *) "nvidia-232",
                .uuid = U1,
                .auto_start = true,
                .attrs = attrs,
                .n_attrs = 2,
        };
        assert_int_equal(store_write(&spec), 0);
        assert_string_equal(slurp("etc/mdevctl.d/" P "/" U1),
                            "{\n"
                            "  \"mdev_type\": \"nvidia-232\",\n"
                            "  \"start\": \"auto\",\n"
                            "  \"attrs\": [\n"
                            "    {\n"
                            "      \"nvidia/vgpu_params\": \"frame_rate_limiter=0\"\n"
                            "    },\n"
                            "    {\n"
                            "      \"a/b\": \"x y \\\"quoted\\\"\"\n"
                            "    }\n"
                            "  ]\n"
                            "}\n");
        struct vgpu_mdev_spec manual = { .parent = (char *) P, .type = (char *) "nvidia-233", .uuid = U2 };
        assert_int_equal(store_write(&manual), 0);

        struct vgpu_mdev_spec *defs = NULL;
        size_t n = 0;
        char *warnings = NULL;
        struct vgpu_error err = {};
        assert_int_equal(vgpu_mdev_definitions(&defs, &n, &warnings, &err), 0);
        assert_int_equal(n, 2);
        assert_string_equal(warnings, "");
        assert_string_equal(defs[0].parent, P);
        assert_string_equal(defs[0].uuid, U1);
        assert_string_equal(defs[0].type, "nvidia-232");
        assert_true(defs[0].auto_start);
        assert_int_equal(defs[0].n_attrs, 2);
        assert_string_equal(defs[0].attrs[0].key, "nvidia/vgpu_params");
        assert_string_equal(defs[0].attrs[0].value, "frame_rate_limiter=0");
        assert_string_equal(defs[0].attrs[1].key, "a/b");
        assert_string_equal(defs[0].attrs[1].value, "x y \"quoted\"");
        assert_string_equal(defs[1].uuid, U2);
        assert_false(defs[1].auto_start);
        assert_int_equal(defs[1].n_attrs, 0);

        /* what the store formats parses back to the same spec */
        char *text = store_format(&defs[0]);
        assert_non_null(text);
        struct vgpu_mdev_spec again = {};
        const char *why = NULL;
        assert_int_equal(store_parse(text, P, U1, &again, &why), 0);
        assert_string_equal(again.type, defs[0].type);
        assert_int_equal(again.auto_start, defs[0].auto_start);
        assert_int_equal(again.n_attrs, 2);
        assert_string_equal(again.attrs[1].value, "x y \"quoted\"");
        vgpu_mdev_spec_free(&again);
        free(text);
        vgpu_mdev_specs_free(defs, n);
        free(warnings);

        /* removed: gone from the store, the other one stays */
        assert_int_equal(store_remove(P, U1), 0);
        assert_null(slurp("etc/mdevctl.d/" P "/" U1));
        assert_int_equal(store_remove(P, U1), -ENOENT);
        assert_int_equal(vgpu_mdev_definitions(&defs, &n, NULL, &err), 0);
        assert_int_equal(n, 1);
        assert_string_equal(defs[0].uuid, U2);
        vgpu_mdev_specs_free(defs, n);
}

/* Each malformed text: refused with exactly this reason. */
static void test_parse_errors(void **state) {
        (void) state;
        static const struct {
                const char *text, *why;
        } bad[] = {
                { "{ not json", "not valid JSON" },
                { "", "not valid JSON" },
                { "{\"mdev_type\": \"t\"} {}", "trailing data after the JSON object" },
                { "[1, 2]", "not a JSON object" },
                { "{\"start\": \"auto\"}", "field \"mdev_type\" missing or not a string" },
                { "{\"mdev_type\": 7}", "field \"mdev_type\" missing or not a string" },
                { "{\"mdev_type\": \"../create\"}", "field \"mdev_type\" is not a type name" },
                { "{\"mdev_type\": \"t\", \"start\": \"boot\"}",
                  "field \"start\" is neither \"auto\" nor \"manual\"" },
                { "{\"mdev_type\": \"t\", \"start\": true}",
                  "field \"start\" is neither \"auto\" nor \"manual\"" },
                { "{\"mdev_type\": \"t\", \"attrs\": {}}", "field \"attrs\" is not an array" },
                { "{\"mdev_type\": \"t\", \"attrs\": [{\"a\": \"1\", \"b\": \"2\"}]}",
                  "an \"attrs\" entry is not a one-key object" },
                { "{\"mdev_type\": \"t\", \"attrs\": [\"a\"]}",
                  "an \"attrs\" entry is not a one-key object" },
                { "{\"mdev_type\": \"t\", \"attrs\": [{\"a\": 1}]}", "an \"attrs\" value is not a string" },
                { "{\"mdev_type\": \"t\", \"attrs\": [{\"../../remove\": \"1\"}]}",
                  "an \"attrs\" key is not a path below the device" },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct vgpu_mdev_spec s = {};
                const char *why = NULL;
                int r = store_parse(bad[i].text, P, U1, &s, &why);
                if (r != -EBADMSG || !why || strcmp(why, bad[i].why) != 0)
                        fail_msg("'%s': %d '%s', wanted -EBADMSG '%s'", bad[i].text, r, why ? why : "(none)",
                                 bad[i].why);
                assert_null(s.type);
        }
        /* mdevctl writes no "start" or "attrs" for some definitions: manual, none */
        struct vgpu_mdev_spec s = {};
        const char *why = NULL;
        assert_int_equal(store_parse(" {\"mdev_type\": \"mtty-2\"}\n\n", "mtty", U3, &s, &why), 0);
        assert_string_equal(s.parent, "mtty");
        assert_string_equal(s.uuid, U3);
        assert_false(s.auto_start);
        assert_int_equal(s.n_attrs, 0);
        vgpu_mdev_spec_free(&s);
}

/* The usual form is read without json-c (store.c's parse_plain): only what json-c reads the same
 * way is taken there. Near misses go to json-c, which says what it says: a missing comma is not
 * JSON, a trailing comma and a repeated key are (the last one wins), an escape is decoded. */
static void test_parse_plain_or_json_c(void **state) {
        (void) state;
        static const struct {
                const char *text, *type, *attr; /* type NULL: refused as not valid JSON */
                bool auto_start;
        } cases[] = {
                { "{\n  \"mdev_type\": \"nvidia-232\",\n  \"start\": \"auto\",\n  \"attrs\": [\n    {\n      "
                  "\"nvidia/vgpu_params\": \"frame_rate_limiter=0\"\n    }\n  ]\n}\n",
                  "nvidia-232", "frame_rate_limiter=0", true },
                { "{\"mdev_type\":\"mtty-2\",\"attrs\":[]}", "mtty-2", NULL, false },
                { "{\"mdev_type\": \"a-1\", \"mdev_type\": \"b-2\"}", "b-2", NULL, false },
                { "{\"mdev_type\": \"a-1\", \"attrs\": [{\"k\": \"1\"} {\"j\": \"2\"}]}", NULL, NULL, false },
                { "{\"mdev_type\": \"a-1\" \"start\": \"auto\"}", NULL, NULL, false },
                { "{\"mdev_type\": \"nvidia\\u002d1\", \"start\": \"auto\"}", "nvidia-1", NULL, true },
                { "{\"mdev_type\": \"a-1\", \"attrs\": [{\"k\": \"1\"},]}", "a-1", "1", false },
                { "{\"mdev_type\": \"a-1\", \"attrs\": [{\"k\": \"1\", \"k\": \"2\"}]}", "a-1", "2", false },
                { "{\"mdev_type\": \"a-1\",}", "a-1", NULL, false },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                struct vgpu_mdev_spec s = {};
                const char *why = NULL;
                int r = store_parse(cases[i].text, P, U1, &s, &why);
                if (!cases[i].type) {
                        if (r != -EBADMSG || !why || strcmp(why, "not valid JSON") != 0)
                                fail_msg("'%s': %d '%s', wanted not valid JSON", cases[i].text, r,
                                         why ? why : "");
                        continue;
                }
                if (r != 0)
                        fail_msg("'%s': %d '%s'", cases[i].text, r, why ? why : "");
                assert_string_equal(s.type, cases[i].type);
                assert_string_equal(s.parent, P);
                assert_string_equal(s.uuid, U1);
                assert_int_equal(s.auto_start, cases[i].auto_start);
                assert_int_equal(s.n_attrs, cases[i].attr ? 1 : 0);
                if (cases[i].attr)
                        assert_string_equal(s.attrs[0].value, cases[i].attr);
                vgpu_mdev_spec_free(&s);
        }
}

/* A store with bad files: each named with its path and reason, the good one still read. */
static void test_malformed_files_named(void **state) {
        (void) state;
        put("etc/mdevctl.d/" P "/" U1, "{\"mdev_type\": \"nvidia-232\", \"start\": \"auto\"}\n");
        put("etc/mdevctl.d/" P "/" U2, "{\"mdev_type\": \"nvidia-232\", \"start\": \"sometimes\"}\n");
        put("etc/mdevctl.d/" P "/not-a-uuid", "{}\n");
        /* a FIFO must not block the read (nobody ever writes to it) */
        char p[512];
        snprintf(p, sizeof(p), "%s/etc/mdevctl.d/" P "/" U3, root);
        assert_int_equal(mkfifo(p, 0600), 0);
        /* larger than any definition */
        assert_int_equal(mkdir(strcat(strcpy(p, root), "/etc/mdevctl.d/mbochs"), 0755), 0);
        char *big = malloc(70000);
        assert_non_null(big);
        memset(big, ' ', 69999);
        big[0] = '{';
        big[69998] = '}';
        big[69999] = '\0';
        put("etc/mdevctl.d/mbochs/" U1, big);
        free(big);
        /* a killed write's temporary file is no definition, and not worth a warning */
        put("etc/mdevctl.d/" P "/" U1 ".a1B2c3", "{\"mdev_ty");

        struct vgpu_mdev_spec *defs = NULL;
        size_t n = 0;
        char *warnings = NULL;
        struct vgpu_error err = {};
        assert_int_equal(vgpu_mdev_definitions(&defs, &n, &warnings, &err), 0);
        assert_int_equal(n, 1);
        assert_string_equal(defs[0].uuid, U1);
        assert_true(defs[0].auto_start);
        vgpu_mdev_specs_free(defs, n);

        char want[2048];
        const char *lines[] = {
                "/etc/mdevctl.d/" P "/not-a-uuid: file name is not a UUID, skipped\n",
                "/etc/mdevctl.d/" P "/" U2 ": field \"start\" is neither \"auto\" nor \"manual\", skipped\n",
                "/etc/mdevctl.d/" P "/" U3 ": not a regular file, skipped\n",
                "/etc/mdevctl.d/mbochs/" U1 ": larger than a definition can be (64 KiB), skipped\n",
        };
        for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
                snprintf(want, sizeof(want), "%s%s", root, lines[i]);
                if (!strstr(warnings, want))
                        fail_msg("no line\n  %s in the warnings:\n%s", want, warnings);
        }
        /* one line per skipped file, nothing about the temporary file */
        size_t n_lines = 0;
        for (const char *c = warnings; *c; c++)
                n_lines += *c == '\n';
        assert_int_equal(n_lines, 4);
        assert_null(strstr(warnings, ".a1B2c3"));
        free(warnings);

        /* the temporary file is removed under the lock; the FIFO and the others stay */
        assert_int_equal(store_remove_temps(), 1);
        assert_null(slurp("etc/mdevctl.d/" P "/" U1 ".a1B2c3"));
        assert_non_null(slurp("etc/mdevctl.d/" P "/" U2));
        assert_int_equal(store_remove_temps(), 0);
}

/* A read of the store under the lock removes the killed writes' temporary files as it goes (one
 * walk instead of store_remove_temps() and then the read): regular files in real parent
 * directories only, never through a link to a directory elsewhere; the definitions it gives are
 * vgpu_mdev_definitions()'s. */
static void test_read_removes_temps(void **state) {
        (void) state;
        put("etc/mdevctl.d/" P "/" U1, "{\"mdev_type\": \"nvidia-232\", \"start\": \"auto\"}\n");
        put("etc/mdevctl.d/" P "/" U1 ".a1B2c3", "{\"mdev_ty");
        char p[512], q[512];
        /* a temporary file's name on a directory: not a file a write left */
        snprintf(p, sizeof(p), "%s/etc/mdevctl.d/" P "/" U2 ".x1Y2z3", root);
        assert_int_equal(mkdir(p, 0755), 0);
        /* a parent that is a link to a directory outside the store */
        snprintf(p, sizeof(p), "%s/elsewhere", root);
        assert_int_equal(mkdir(p, 0755), 0);
        put("elsewhere/" U3, "{\"mdev_type\": \"mtty-1\"}\n");
        put("elsewhere/" U3 ".q1W2e3", "{");
        snprintf(q, sizeof(q), "%s/etc/mdevctl.d/mtty", root);
        assert_int_equal(symlink(p, q), 0);

        struct vgpu_mdev_spec *defs = NULL, *plain = NULL;
        size_t n = 0, n_plain = 0;
        char *warnings = NULL, *plain_warnings = NULL;
        struct vgpu_error err = {};
        assert_int_equal(vgpu_mdev_definitions(&plain, &n_plain, &plain_warnings, &err), 0);
        assert_non_null(slurp("etc/mdevctl.d/" P "/" U1 ".a1B2c3")); /* a plain read leaves it */
        assert_int_equal(store_definitions(&defs, &n, &warnings, STORE_REMOVE_TEMPS, &err), 0);
        assert_null(slurp("etc/mdevctl.d/" P "/" U1 ".a1B2c3"));
        assert_non_null(slurp("elsewhere/" U3 ".q1W2e3"));
        snprintf(p, sizeof(p), "%s/etc/mdevctl.d/" P "/" U2 ".x1Y2z3", root);
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(n, 2);
        assert_int_equal(n_plain, 2);
        for (size_t i = 0; i < n; i++) {
                assert_string_equal(defs[i].parent, plain[i].parent);
                assert_string_equal(defs[i].uuid, plain[i].uuid);
                assert_string_equal(defs[i].type, plain[i].type);
        }
        assert_string_equal(defs[1].parent, "mtty");
        assert_string_equal(warnings, plain_warnings);
        free(warnings);
        free(plain_warnings);
        vgpu_mdev_specs_free(defs, n);
        vgpu_mdev_specs_free(plain, n_plain);
        /* nothing left for the lock's own clean-up */
        assert_int_equal(store_remove_temps(), 0);
}

/* No store at all: no definitions, no error (a host that never defined one). */
static void test_no_store(void **state) {
        (void) state;
        rm_rf(root);
        assert_int_equal(mkdir(root, 0755), 0);
        struct vgpu_mdev_spec *defs = NULL;
        size_t n = 7;
        char *warnings = NULL;
        struct vgpu_error err = {};
        assert_int_equal(vgpu_mdev_definitions(&defs, &n, &warnings, &err), 0);
        assert_int_equal(n, 0);
        assert_string_equal(warnings, "");
        free(warnings);
        vgpu_mdev_specs_free(defs, n);
        assert_int_equal(store_remove_temps(), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
                cmocka_unit_test(test_parse_errors),
                cmocka_unit_test(test_parse_plain_or_json_c),
                cmocka_unit_test_setup_teardown(test_malformed_files_named, setup, teardown),
                cmocka_unit_test_setup_teardown(test_read_removes_temps, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_store, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
