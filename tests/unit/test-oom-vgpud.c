/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-oom-vgpud.c — vgpud's request handling (api_dispatch, as http.c calls it, without a
 * socket) with each allocation failing in turn (oom-util.h), for every endpoint on a copy of
 * the nvidia-mdev fixture after one collector poll (the snapshot /metrics and /v1/health read):
 * the GETs; the changes in forms that need no kernel (POST /v1/apply with ?dry_run, refused by
 * the planner, or with nothing to do; POST /v1/instances refused by the library or naming one
 * that exists; DELETE of instances that are not there); malformed and refused requests; and the
 * collector's poll that finds vGPU parents appear. For every run with a failed allocation:
 *
 *   - the reply is 500 {"error": "...out of memory..."} (the library's words may name what it
 *     was reading), or exactly the normal reply (a failure worked around; counted and printed);
 *   - the daemon's context is as before: no event added but those the request makes anyway (a
 *     denial, an apply), the host unchanged, and the same request made again normally gets
 *     exactly the normal reply;
 *   - nothing leaks (the ASan build's LeakSanitizer, at exit).
 *
 * NVML readings come from the double (tests/meson.build puts it on LD_LIBRARY_PATH). Each
 * case's allocation count and time are printed; TEST_OOM_VGPUD_VERBOSE=1 prints the normal
 * replies and logs, TEST_OOM_VGPUD_ALL=1 fails every allocation where a case samples.
 */
#include "oom-util.h"

#include <ftw.h>
#include <limits.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "host/host-internal.h"
#include "log.h"
#include "vgpu/apply.h"
#include "vgpu/assign.h"
#include "vgpu/slice.h"

#define U_01     "b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01" /* the fixture's instances */
#define U_02     "b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e02"
#define U_NEW    "11111111-2222-4333-8444-000000000001"
#define U_ABSENT "11111111-2222-4333-8444-0000000000ff"
#define U_BROKEN "11111111-2222-4333-8444-0000000000ee"

static struct vgpud ctx;
static bool every;   /* $TEST_OOM_VGPUD_ALL: no sampling, every allocation fails in turn (slow) */
static char tmp[64]; /* the temporary directory; the host copy is tmp/mdev */

struct request_case {
        const char *name;
        const char *method;
        const char *target; /* PATH[?KEY[=VALUE]&...] */
        const char *body;   /* NULL: none */
        size_t body_size;   /* 0: strlen(body) */
        enum vgpud_access access;
        unsigned listener;
        bool saves;        /* the first, normal request may change the host (apply saves the state file) */
        int events;        /* events each request adds (a denial, an apply), failed or not */
        const char *event; /* ...and what their message says either way */
        bool cold;         /* /metrics: render it again (drop the cache) before each run */
        long dense, step;  /* oom_check_sparse()'s, for the costly cases; 0: every allocation */
        char *want;        /* the normal reply, as reply_text() gives it */
        long rewrites;     /* runs that wrote a file again with the bytes it had */
        long oom_replies;  /* runs answered 500 out of memory */
};

/* The request as http.c builds it: the query split at '&' into key=value pairs. Its strings
 * live in buf (malloc'd here, unarmed), which the caller frees. */
static struct api_request make_request(const struct request_case *c, char **buf) {
        struct api_request req = {
                .d = &ctx,
                .method = c->method,
                .access = c->access,
                .listener = c->listener,
                .caller = "uid 1000 (pid 1)",
                .body = c->body ? c->body : "",
        };
        req.body_size = c->body_size ? c->body_size : strlen(req.body);
        *buf = strdup(c->target);
        assert_non_null(*buf);
        api_request_set_target(&req, *buf);
        return req;
}

/* Blank what follows key up to end (a timestamp). */
static void blank_after(char *s, const char *key, char end) {
        for (char *m = s; (m = strstr(m, key));)
                for (m += strlen(key); *m && *m != end; m++)
                        *m = 'x';
}

/* Leave out the lines that start with prefix. */
static void drop_lines(char *s, const char *prefix) {
        char *out = s;
        for (char *line = s; *line;) {
                size_t n = strcspn(line, "\n") + (line[strcspn(line, "\n")] == '\n');
                if (strncmp(line, prefix, strlen(prefix)) != 0) {
                        memmove(out, line, n);
                        out += n;
                }
                line += n;
        }
        *out = '\0';
}

/* The reply as text: status, headers, body. The one value in /metrics that differs between
 * two renderings of the same snapshot, how long the previous rendering took, is blanked. */
static char *reply_text(const struct api_reply *r) {
        char *s = oom_strf("%u %s allow '%s' auth %d\n%s", r->status, strempty(r->content_type), r->allow,
                           r->want_auth, r->body ? r->body : "(no body)");
        blank_after(s, "\nvgpud_metrics_render_seconds ", '\n');
        return s;
}

/* 500 with {"error": MESSAGE} where MESSAGE says memory ran out: the daemon's "out of memory",
 * or the library's message for -ENOMEM, which may name the file it was reading. */
static bool reply_is_oom(const struct api_reply *r) {
        if (r->status != 500 || !r->body || !streq(strempty(r->content_type), "application/json"))
                return false;
        if (strncmp(r->body, "{\"error\":\"", 10) != 0 || !strchr(r->body, '}'))
                return false;
        return strstr(r->body, "out of memory") || strstr(r->body, "Cannot allocate memory");
}

/* api_dispatch() with a value, for OOM_CALL(). */
static int dispatch(const struct api_request *req, struct api_reply *reply) {
        api_dispatch(req, reply);
        return 0;
}

/* ---- the host: what no request here may change ----
 *
 * inotify on every directory of the copy says whether anything was written, created, removed or
 * renamed (a walk stat()ing its 1,300 paths took longer than most requests); only then are the
 * contents compared with those it had: a file written again with the bytes it had is the same
 * host (apply does that with the state file when it cannot read it to compare). */

static int host_watch = -1;
static char *host_content; /* tree_content() while the host is as it must stay */
static FILE *tree_out;

/* FNV-1a of a file's bytes. */
static uint64_t file_hash(const char *path) {
        uint64_t h = 14695981039346656037ULL;
        char buf[65536];
        FILE *f = fopen(path, "re");
        assert_non_null(f);
        for (size_t n; (n = fread(buf, 1, sizeof(buf), f)) > 0;)
                for (size_t i = 0; i < n; i++)
                        h = (h ^ (unsigned char) buf[i]) * 1099511628211ULL;
        fclose(f);
        return h;
}

static int tree_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        (void) ftw;
        fprintf(tree_out, "%s %d %o %lld", path + strlen(tmp), type, st->st_mode, (long long) st->st_size);
        if (S_ISREG(st->st_mode))
                fprintf(tree_out, " %016llx", (unsigned long long) file_hash(path));
        fputc('\n', tree_out);
        return 0;
}

static int watch_entry(const char *path, const struct stat *st, int type, struct FTW *ftw) {
        (void) st, (void) ftw;
        if (type == FTW_D && inotify_add_watch(host_watch, path,
                                               IN_MODIFY | IN_ATTRIB | IN_CREATE | IN_DELETE | IN_MOVED_FROM |
                                                       IN_MOVED_TO | IN_DELETE_SELF) < 0)
                fail_msg("inotify_add_watch %s: %m", path);
        return 0;
}

/* Every path under the copy with its type, mode, size and bytes' hash. */
static char *tree_content(void) {
        char *buf = NULL;
        size_t size = 0;
        tree_out = open_memstream(&buf, &size);
        assert_non_null(tree_out);
        assert_int_equal(nftw(getenv("VGPU_ROOT"), tree_entry, 16, FTW_PHYS), 0);
        assert_int_equal(fclose(tree_out), 0);
        return buf;
}

/* Was anything changed since the last call? Reads the events queued since. */
static bool host_touched(void) {
        char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
        bool touched = false;
        while (read(host_watch, buf, sizeof(buf)) > 0)
                touched = true;
        return touched;
}

/* The host as it is now is the one to keep (a directory made since is watched too). */
static void host_keep(void) {
        (void) host_touched();
        free(host_content);
        host_content = tree_content();
        assert_int_equal(nftw(getenv("VGPU_ROOT"), watch_entry, 16, FTW_PHYS), 0);
}

/* The host is as host_keep() left it; counts the runs that wrote the same bytes again. */
static void host_check(const char *what, long *rewrites) {
        if (!host_touched())
                return;
        char *now = tree_content();
        oom_assert_unchanged(what, now, host_content);
        free(now);
        (*rewrites)++;
}

/* The newest event's message, or "(none)". */
static const char *last_event_message(void) {
        const struct vgpud_event *e = event_get(&ctx, ctx.next_seq);
        return e ? e->message : "(none)";
}

/* Write a file of the host copy (path: absolute on the host). */
static void write_file(const char *path, const char *text) {
        char p[PATH_MAX];
        snprintf(p, sizeof(p), "%s%s", getenv("VGPU_ROOT"), path);
        FILE *f = fopen(p, "we");
        assert_non_null(f);
        fputs(text, f);
        assert_int_equal(fclose(f), 0);
}

/* ---- the case ---- */

static int case_request(void *userdata, char **ret, struct vgpu_error *err) {
        struct request_case *c = userdata;
        char *buf = NULL;
        struct api_request req = make_request(c, &buf);
        struct api_reply reply = {};
        uint64_t seq = ctx.next_seq;
        bool failing = oom_fail_at >= 0;

        if (c->cold)
                metrics_clear(&ctx);
        /* each run a first denial, not one coalesced into the run before (events.c) */
        memset(ctx.denial_peers, 0, sizeof(ctx.denial_peers));
        OOM_CALL(dispatch(&req, &reply));
        char *got = reply_text(&reply);
        bool oom = reply_is_oom(&reply);
        if (reply.status < 200 || reply.status > 599 || !reply.body || reply.size != strlen(reply.body))
                fail_msg("%s: allocation %ld failed: a reply without a body or status: %s", c->name,
                         oom_fail_at, got);
        api_reply_done(&reply);

        /* the context: the events (none when memory ran out before the request got as far as
         * an event: a host.yaml that cannot be parsed makes none), the host */
        if (ctx.next_seq != seq + (uint64_t) c->events && !(oom && ctx.next_seq == seq))
                fail_msg("%s: allocation %ld failed: %llu events added, expected %d (last: %s)", c->name,
                         oom_fail_at, (unsigned long long) (ctx.next_seq - seq), c->events,
                         last_event_message());
        if (ctx.next_seq != seq && !strstr(last_event_message(), c->event))
                fail_msg("%s: allocation %ld failed: the event says '%s', expected '%s'", c->name,
                         oom_fail_at, last_event_message(), c->event);
        host_check(c->name, &c->rewrites);
        /* ...and the next request finds the daemon as it was: the normal reply */
        if (failing) {
                struct api_reply again = {};
                if (c->cold)
                        metrics_clear(&ctx);
                api_dispatch(&req, &again);
                char *next = reply_text(&again);
                api_reply_done(&again);
                if (!streq(next, c->want)) {
                        oom_print_difference(next, c->want);
                        fail_msg("%s: allocation %ld failed, and the next request got another reply", c->name,
                                 oom_fail_at);
                }
                free(next);
        }
        free(buf);

        if (oom) {
                if (!failing)
                        fail_msg("%s: out of memory without an allocation failing: %s", c->name, got);
                c->oom_replies++;
                free(got);
                /* for oom_check: the run failed as it must */
                err->code = -ENOMEM;
                snprintf(err->message, sizeof(err->message), "out of memory");
                return -ENOMEM;
        }
        *ret = got;
        return 0;
}

/* The normal reply first (it must be the one expected), then every allocation failing. */
static void check_request(struct request_case *c, unsigned status, const char *needle) {
        char *buf = NULL;
        struct api_request req = make_request(c, &buf);
        struct api_reply reply = {};
        (void) host_touched();
        if (c->cold)
                metrics_clear(&ctx);
        memset(ctx.denial_peers, 0, sizeof(ctx.denial_peers)); /* a first denial (events.c) */
        uint64_t seq = ctx.next_seq;
        api_dispatch(&req, &reply);
        c->want = reply_text(&reply);
        if (getenv("TEST_OOM_VGPUD_VERBOSE"))
                fprintf(stderr, "%s: %s\n", c->name, c->want);
        if (reply.status != status || !strstr(reply.body, needle))
                fail_msg("%s: got %s\nexpected %u with '%s'", c->name, c->want, status, needle);
        api_reply_done(&reply);
        free(buf);
        assert_true(ctx.next_seq == seq + (uint64_t) c->events);
        if (c->saves)
                host_keep();
        else
                host_check(c->name, &c->rewrites);

        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        struct oom_stats st = c->dense && !every
                                      ? oom_check_sparse(c->name, case_request, c, c->dense, c->step)
                                      : oom_check(c->name, case_request, c);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        print_message(
                "%-44s %4ld allocations, %4ld failing runs, %4ld out of memory, %3ld worked around, %5.0f ms",
                c->name, st.points, st.runs, c->oom_replies, st.survived,
                (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
        for (long i = 0; i < st.survived && i < (long) ELEMENTSOF(st.survived_at); i++)
                print_message("%s%ld", i ? ", " : " (allocation ", st.survived_at[i]);
        print_message("%s\n", st.survived ? ")" : "");
        if (c->rewrites)
                print_message("%-44s %4ld runs wrote a file again with the same bytes\n", "", c->rewrites);
        free(c->want);
        c->want = NULL;
}

#define REQ(m, t, a, l) .method = (m), .target = (t), .access = (a), .listener = (l)
#define GET(t)          REQ("GET", t, ACCESS_READ, LISTENER_LOCAL)

/* ---- the GET endpoints, on the snapshot of one poll ---- */

static void test_reads(void **state) {
        (void) state;
        struct request_case gpus = { "GET /v1/gpus", GET("/v1/gpus") };
        check_request(&gpus, 200, "\"health\":{\"state\":");
        struct request_case types = { "GET /v1/types", GET("/v1/types") };
        check_request(&types, 200, "nvidia-232");
        struct request_case types_parent = { "GET /v1/types?parent=3b:00.0&available",
                                             GET("/v1/types?parent=3b:00.0&available") };
        check_request(&types_parent, 200, "nvidia-232");
        struct request_case instances = { "GET /v1/instances", GET("/v1/instances") };
        check_request(&instances, 200, "\"definitions\":");
        /* Sampled, the one case that is: its 300 allocations are the host scan's (VGPU_SCAN_ALL)
         * and the doctor's, which test-oom.c fails one by one, and each run reads pci.ids for the
         * names (20 ms a run under ASan with the request after it, 6 s for all); the handler's
         * own are the first and the last. */
        struct request_case health = { "GET /v1/health", GET("/v1/health"), .dense = 30, .step = 15 };
        check_request(&health, 200, "\"checks\":[{");
        struct request_case health_nochecks = { "GET /v1/health?checks=false",
                                                GET("/v1/health?checks=false") };
        check_request(&health_nochecks, 200, "\"checks\":null");
        struct request_case events = { "GET /v1/events", GET("/v1/events") };
        check_request(&events, 200, "\"next_seq\":");
        struct request_case events_since = { "GET /v1/events?since=1", GET("/v1/events?since=1") };
        check_request(&events_since, 200, "\"next_seq\":");
        struct request_case slices = { "GET /v1/slices", GET("/v1/slices") };
        check_request(&slices, 200, "\"name\":\"alice\"");
        /* rendered from the snapshot each run, then a copy of the kept text */
        struct request_case metrics_cold = { "GET /metrics (rendered)",
                                             REQ("GET", "/metrics", ACCESS_READ, LISTENER_METRICS),
                                             .cold = true };
        check_request(&metrics_cold, 200, "vgpu_slice_memory_quota_bytes{slice=\"alice\"");
        struct request_case metrics = { "GET /metrics (kept)",
                                        REQ("GET", "/metrics", ACCESS_READ, LISTENER_METRICS) };
        check_request(&metrics, 200, "vgpu_gpu_temperature_celsius{");
}

/* ---- the changing endpoints, in forms that need no kernel ---- */

/* For nvidia-mdev (as in test-oom.c): instances kept, redefined, added, removed, policies.
 * Every UUID is given: one made up for a count would differ from run to run. No 'slices' key:
 * the GPUs are vGPU hosts, where the planner refuses slices (host_yaml_slices). */
static const char host_yaml[] =
        "version: 1\n"
        "gpus:\n"
        "  - bdf: 3B:00.0\n"
        "    policy: {scheduler: fixed-share, timeslice-ms: 3, frame-rate-limit: off}\n"
        "    devices:\n"
        "      - type: nvidia-232\n"
        "        count: 3\n"
        "        uuids: [" U_01 ", " U_02 ", " U_NEW "]\n"
        "        attrs: [{nvidia/vgpu_params: \"enable_uvm=1\"}]\n"
        "  - parent: 0000:5e:00.0\n"
        "    devices: []\n";

/* Slices on a vGPU host: refused before anything changes, with the reason. */
static const char host_yaml_slices[] =
        "version: 1\n"
        "slices:\n"
        "  - {name: alice, gpu: 0000:3b:00.0, memory: 1G, share: 30%}\n"
        "  - {name: bob, gpu: 0000:af:00.0, memory: 512M, policy: best-effort}\n";

/* The host as setup() leaves it (as `vgpuctl export` writes it), in the short forms; without
 * its slices, which a file may not declare on these GPUs (and without 'slices' leaves alone). */
static const char host_yaml_now[] =
        "version: 1\n"
        "gpus:\n"
        "  - parent: 0000:3b:00.0\n"
        "    devices:\n"
        "      - {type: nvidia-232, count: 2, uuids: [" U_01 ", " U_02 "]}\n"
        "  - parent: 0000:5e:00.0\n"
        "    devices:\n"
        "      - {type: nvidia-233, count: 1, uuids: [c7a1d2e3-8b4f-4a5c-9d6e-7f8091a2b3c4]}\n";

#define CHANGE(m, t) REQ(m, t, ACCESS_WRITE, LISTENER_LOCAL)

static void test_changes(void **state) {
        (void) state;
        struct request_case apply = { "POST /v1/apply?dry_run=1&diff",
                                      CHANGE("POST", "/v1/apply?dry_run=1&diff"), .body = host_yaml };
        check_request(&apply, 200, "\"changes\":7");
        struct request_case apply_text = { "POST /v1/apply?dry_run&format=text",
                                           CHANGE("POST", "/v1/apply?dry_run&format=text"),
                                           .body = host_yaml };
        check_request(&apply_text, 200, "0000:5e:00.0");
        struct request_case apply_slices = { "POST /v1/apply?dry_run (slices on a vGPU host)",
                                             CHANGE("POST", "/v1/apply?dry_run"), .body = host_yaml_slices };
        check_request(&apply_slices, 409,
                      "POST /v1/apply:3:5: slice alice: 0000:3b:00.0: the GPU is in vGPU host mode");
        /* through the daemon's checks, refused by the library's: no such type on that parent */
        struct request_case create = {
                "POST /v1/instances (type refused)", CHANGE("POST", "/v1/instances?pretty"),
                .body = "{\"parent\": \"0000:3b:00.0\", \"type\": \"nvidia-999\", \"uuid\": \"" U_ABSENT
                        "\", \"persist\": true, "
                        "\"auto_start\": true, \"attrs\": [{\"nvidia/vgpu_params\": \"enable_uvm=1\"}, "
                        "{\"k\": \"v\"}]}"
        };
        check_request(&create, 400, "no type nvidia-999");
        /* the one it names exists already: 200, nothing done */
        struct request_case exists = {
                "POST /v1/instances (exists)", CHANGE("POST", "/v1/instances?format=text"),
                .body = "{\"parent\": \"0000:3b:00.0\", \"type\": \"nvidia-232\", \"uuid\": \"" U_01 "\"}"
        };
        check_request(&exists, 200, "already exists");
        struct request_case remove = { "DELETE /v1/instances/ABSENT",
                                       CHANGE("DELETE", "/v1/instances/" U_ABSENT) };
        check_request(&remove, 404, "no such vGPU instance");
        struct request_case remove_vf = { "DELETE /v1/instances/BDF",
                                          CHANGE("DELETE", "/v1/instances/0000:3b:00.7?format=text") };
        check_request(&remove_vf, 404, "not a vendor-VFIO VF");

        /* Applied for real: refused by the planner (an apply_failed event), and the host as it is
         * (nothing to do; an apply event; the first request saves the state file). One failure is
         * worked around: when the state file cannot be read to compare (vgpu_apply's state_is()),
         * it is written again, with the bytes it had. */
        struct request_case refused = {
                "POST /v1/apply (refused)", CHANGE("POST", "/v1/apply"),
                .body = "version: 1\ngpus:\n  - parent: mtty\n    policy: {scheduler: equal-share}\n",
                .events = 1, .event = "apply for uid 1000 (pid 1) failed (host left as it was): "
        };
        check_request(&refused, 501, "a scheduler policy needs a GPU");
        struct request_case noop = { "POST /v1/apply (nothing to do)",
                                     CHANGE("POST", "/v1/apply"),
                                     .body = host_yaml_now,
                                     .saves = true,
                                     .events = 1,
                                     .event = "apply for uid 1000 (pid 1)" };
        check_request(&noop, 200, "\"changes\":0");
}

/* ---- malformed and refused requests ---- */

static void test_malformed(void **state) {
        (void) state;
        static const char nul_body[] = "version: 1\0gpus: []\n";
        struct request_case cases[] = {
                { "GET /nope (404)", GET("/nope") },
                { "PATCH /v1/instances (405)", REQ("PATCH", "/v1/instances", ACCESS_READ, LISTENER_LOCAL) },
                { "GET /v1/events?since=x", GET("/v1/events?since=x") },
                { "GET /v1/types?available=maybe", GET("/v1/types?available=maybe") },
                { "GET /v1/types?parent=NOT-A-PARENT", GET("/v1/types?parent=0000:00:02.0") },
                { "GET /v1/gpus?bogus", GET("/v1/gpus?bogus") },
                { "GET /v1/health?checks=maybe", GET("/v1/health?checks=maybe") },
                { "GET 17 query arguments", GET("/v1/events?a&b&c&d&e&f&g&h&i&j&k&l&m&n&o&p&q") },
                { "POST /v1/instances bad JSON", CHANGE("POST", "/v1/instances"), .body = "{\"parent\": " },
                { "POST /v1/instances trailing data", CHANGE("POST", "/v1/instances"), .body = "{} []" },
                { "POST /v1/instances unknown member", CHANGE("POST", "/v1/instances"),
                  .body = "{\"parent\": \"x\", \"tpye\": \"y\"}" },
                { "POST /v1/instances bad attrs", CHANGE("POST", "/v1/instances"),
                  .body = "{\"parent\": \"0000:3b:00.0\", \"type\": \"nvidia-232\", \"attrs\": [{\"a\": "
                          "\"1\"}, {\"b\": 2}]}" },
                { "POST /v1/instances auto_start alone", CHANGE("POST", "/v1/instances"),
                  .body = "{\"parent\": \"0000:3b:00.0\", \"type\": \"nvidia-232\", \"auto_start\": true}" },
                { "POST /v1/instances bad uuid", CHANGE("POST", "/v1/instances"),
                  .body = "{\"parent\": \"0000:3b:00.0\", \"type\": \"nvidia-232\", \"uuid\": "
                          "\"not-a-uuid\"}" },
                { "POST /v1/apply bad YAML", CHANGE("POST", "/v1/apply?source=host.yaml"),
                  .body = "version: 1\ngpus: [\n" },
                { "POST /v1/apply NUL byte", CHANGE("POST", "/v1/apply"), .body = nul_body,
                  .body_size = sizeof(nul_body) - 1 },
                { "POST /v1/apply?format=yaml", CHANGE("POST", "/v1/apply?format=yaml"), .body = host_yaml },
                { "POST /v1/apply?force=perhaps", CHANGE("POST", "/v1/apply?force=perhaps"),
                  .body = host_yaml },
                { "DELETE /v1/instances/zz", CHANGE("DELETE", "/v1/instances/zz") },
                { "POST /v1/apply read-only (403)", REQ("POST", "/v1/apply", ACCESS_READ, LISTENER_LOCAL),
                  .body = host_yaml, .events = 1, .event = "denied POST /v1/apply to uid 1000 (pid 1)" },
                { "GET /v1/events no token (401)", REQ("GET", "/v1/events", ACCESS_NONE, LISTENER_TCP_API),
                  .events = 1, .event = "denied GET /v1/events to uid 1000 (pid 1)" },
        };
        static const unsigned status[] = { 404, 405, 400, 400, 404, 400, 400, 400, 400, 400, 400,
                                           400, 400, 400, 400, 400, 400, 400, 400, 403, 401 };
        _Static_assert(ELEMENTSOF(status) == ELEMENTSOF(cases), "a status for each case");
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                check_request(&cases[i], status[i], "{\"error\":");
}

/* ---- the collector: a poll with each allocation failing ---- */

/* What the daemon's context shows: /metrics and GET /v1/health?checks=false, made normally. */
static char *context_text(void) {
        static const char *const get[][2] = { { "/metrics", "" }, { "/v1/health", "checks=false" } };
        char *all = oom_strf("%s", "");
        for (size_t i = 0; i < ELEMENTSOF(get); i++) {
                struct api_request req = { .d = &ctx,
                                           .method = "GET",
                                           .path = get[i][0],
                                           .body = "",
                                           .access = ACCESS_READ,
                                           .listener = LISTENER_LOCAL,
                                           .caller = "test" };
                if (get[i][1][0])
                        req.query[req.n_query++] = (struct api_query){ "checks", "false" };
                struct api_reply reply = {};
                api_dispatch(&req, &reply);
                assert_int_equal(reply.status, 200);
                char *t = oom_strf("%s%s\n", all, reply.body);
                api_reply_done(&reply);
                free(all);
                all = t;
        }
        /* what changes by itself from poll to poll: when, how long, how many; and the event
         * counters, which every poll here adds to (the events are compared one by one) */
        drop_lines(all, "vgpud_");
        drop_lines(all, "vgpu_events_total{");
        blank_after(all, "\"updated\":\"", '"');
        return all;
}

/* The events added since seq, one per line. */
static char *events_since(uint64_t seq) {
        char *all = oom_strf("%s", "");
        for (uint64_t s = seq + 1; s <= ctx.next_seq; s++) {
                const struct vgpud_event *e = event_get(&ctx, s);
                if (!e)
                        continue;
                char *t = oom_strf("%s%s %s: %s\n", all, event_kind_to_string(e->kind), e->bdf, e->message);
                free(all);
                all = t;
        }
        return all;
}

/* As after a poll that saw no vGPU parents and watched no GPU for Xids (before the driver
 * loaded): this poll finds them appear, logs each, restores the saved state on them. */
static void forget_parents(void) {
        vgpu_instance_domains_free(ctx.domains, ctx.host ? ctx.host->n_instances : 0);
        ctx.domains = NULL;
        vgpu_host_free(ctx.host);
        /* an empty snapshot as the library makes one: vgpu_host_free() frees more than the struct */
        ctx.host = host_new();
        assert_non_null(ctx.host);
        collect_xid_stop(&ctx);
}

/* The events and context of a poll that finds the parents appear. */
static char *want_events, *want_context;
static long poll_rewrites;

static int case_poll(void *userdata, char **ret, struct vgpu_error *err) {
        (void) userdata;
        bool failing = oom_fail_at >= 0;
        forget_parents();
        const struct vgpu_host *before = ctx.host;
        uint64_t seq = ctx.next_seq;
        int r = OOM_CALL(collect_poll(&ctx));
        char *events = events_since(seq);
        bool oom = false;
        host_check("collect_poll", &poll_rewrites); /* the restore changed nothing, failed or not */
        if (r < 0) {
                /* failed as a whole: the snapshot is the last one, so the next poll sees the parents appear */
                if (r != -ENOMEM || ctx.host != before)
                        fail_msg("collect_poll: allocation %ld failed: returned %d, snapshot %s", oom_fail_at,
                                 r, ctx.host == before ? "kept" : "replaced");
                if (ctx.next_seq != seq && !strstr(events, "scanning the host failed: "))
                        fail_msg("collect_poll: allocation %ld failed: it failed with events:\n%s",
                                 oom_fail_at, events);
                oom = true;
        } else if (strstr(events, "restore_failed ")) {
                /* reported: the restore on the parents that appeared failed (the event says why) */
                if (!strstr(events, "out of memory") && !strstr(events, "Cannot allocate memory"))
                        fail_msg("collect_poll: allocation %ld failed: the restore failed for another "
                                 "reason:\n%s",
                                 oom_fail_at, events);
                oom = true;
        }
        /* The next poll, on the same host: it finds the parents appear when this one failed, nothing
         * new when it completed, and leaves the normal context, the Xid watcher included. */
        if (failing) {
                seq = ctx.next_seq;
                assert_int_equal(collect_poll(&ctx), 0);
                char *ev = events_since(seq), *context = context_text();
                if (!streq(ev, r < 0 ? want_events : "") || !streq(context, want_context)) {
                        oom_print_difference(ev, r < 0 ? want_events : "");
                        oom_print_difference(context, want_context);
                        fail_msg("collect_poll: allocation %ld failed (returned %d), and the next poll made "
                                 "another context",
                                 oom_fail_at, r);
                }
                if (!ctx.nvml_events)
                        fail_msg("collect_poll: allocation %ld failed, and the next poll watches no GPU for "
                                 "Xids",
                                 oom_fail_at);
                free(ev);
                free(context);
        }
        if (oom) {
                free(events);
                err->code = -ENOMEM;
                snprintf(err->message, sizeof(err->message), "out of memory");
                return -ENOMEM;
        }
        char *context = context_text();
        *ret = oom_strf("%s%s", events, context);
        free(events);
        free(context);
        return 0;
}

/* A poll that finds vGPU parents appear, with each allocation failing: it fails whole (the next
 * poll does it again), or reports the failed restore as an event, or does it all. Worked
 * around, and printed so: the Xid watcher not made (the next poll makes it; checked), the
 * slices' usage not read (the last numbers stay, the same here). */
static void test_poll(void **state) {
        (void) state;
        write_file(VGPU_STATE_CONFIG, host_yaml_now);
        forget_parents();
        uint64_t seq = ctx.next_seq;
        assert_int_equal(collect_poll(&ctx), 0);
        host_keep();
        want_events = events_since(seq);
        want_context = context_text();
        if (!strstr(want_events, "parent_added 0000:af:00.0: 0000:af:00.0: vGPU parent appeared\n") ||
            !strstr(want_events, "restore : parent appeared: restored " VGPU_STATE_CONFIG
                                 " on 0000:3b:00.0, 0000:5e:00.0, 0000:af:00.0: 0 changes"))
                fail_msg("collect_poll: events:\n%s", want_events);
        assert_non_null(ctx.nvml_events);
        if (getenv("TEST_OOM_VGPUD_VERBOSE"))
                fprintf(stderr, "poll: %s%s\n", want_events, want_context);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        struct oom_stats st = oom_check("collect_poll", case_poll, NULL);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        print_message("%-44s %4ld allocations, %4ld failing runs, %3ld worked around, %5.0f ms",
                      "collect_poll (parents appear)", st.points, st.runs, st.survived,
                      (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
        for (long i = 0; i < st.survived && i < (long) ELEMENTSOF(st.survived_at); i++)
                print_message("%s%ld", i ? ", " : " (allocation ", st.survived_at[i]);
        print_message("%s\n", st.survived ? ")" : "");
        free(want_events);
        free(want_context);
}

/* The daemon's context as vgpud has it before its first request: the default configuration
 * and one poll of a copy of nvidia-mdev with two slices (so /metrics and /v1/slices have some).
 * Slices cannot be made on its vGPU-host GPUs: they are made on a copy of nvidia-baremetal (the
 * same machine with the plain driver) and carried over, as a host keeps them when its driver
 * is changed under them. */
static int setup(void **state) {
        (void) state;
        /* tmpfs where there is one: the library fsyncs what it writes (see test-oom.c) */
        snprintf(tmp, sizeof(tmp), "%s/vgpu-test-oom-vgpud.XXXXXX",
                 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
        assert_non_null(mkdtemp(tmp));
        const char *fixtures = getenv("FIXTURES");
        assert_non_null(fixtures);
        char cmd[PATH_MAX * 2];
        snprintf(cmd, sizeof(cmd),
                 "cp -a '%1$s/nvidia-mdev' '%2$s/mdev' && cp -a '%1$s/nvidia-baremetal' '%2$s/bare'",
                 fixtures, tmp);
        assert_int_equal(system(cmd), 0);
        snprintf(cmd, sizeof(cmd), "%s/bare", tmp);
        setenv("VGPU_ROOT", cmd, 1);
        struct vgpu_error err = {};
        struct vgpu_slice_spec alice = {
                .name = "alice", .gpu = "0000:3b:00.0", .memory = 2ULL << 30, .share = 30
        };
        struct vgpu_slice_spec carol = { .name = "carol", .gpu = "0000:3b:00.0" };
        if (vgpu_slice_create(&alice, &err) < 0 || vgpu_slice_create(&carol, &err) < 0)
                fail_msg("%s", err.message);
        snprintf(cmd, sizeof(cmd),
                 "cd '%1$s/bare' && mkdir -p '%1$s/mdev/run/vgpuctl' '%1$s/mdev/var/lib/vgpuctl' "
                 "'%1$s/mdev/etc/cdi' && "
                 "cp -a run/vgpuctl/. '%1$s/mdev/run/vgpuctl/' && cp -a var/lib/vgpuctl/slices "
                 "'%1$s/mdev/var/lib/vgpuctl/' && "
                 "cp -a etc/cdi/vgpuctl.yaml '%1$s/mdev/etc/cdi/'",
                 tmp);
        assert_int_equal(system(cmd), 0);
        snprintf(cmd, sizeof(cmd), "%s/mdev", tmp);
        setenv("VGPU_ROOT", cmd, 1);
        /* mdevctl's store with a definition that does not parse and a stray file: skipped, each
         * logged by GET /v1/instances with the library's warning */
        write_file("/etc/mdevctl.d/0000:3b:00.0/" U_BROKEN, "{\"mdev_type\": ");
        write_file("/etc/mdevctl.d/0000:3b:00.0/notes.txt", "not a definition\n");

        /* denials and doctor findings are logged: quiet unless asked */
        log_setup(getenv("TEST_OOM_VGPUD_VERBOSE") ? LOG_DEBUG : LOG_CRIT);
        every = getenv("TEST_OOM_VGPUD_ALL");
        assert_int_equal(vgpud_config_default(&ctx.config), 0);
        assert_int_equal(collect_poll(&ctx), 0);
        /* the fixture's poll makes none: one for /v1/events to print (as a SIGHUP makes it) */
        event_add(&ctx, EV_CONFIG_RELOADED, LOG_NOTICE, NULL, NULL, VGPU_TEMP_UNKNOWN,
                  "configuration reloaded from %s", ctx.config->source);
        host_watch = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        assert_true(host_watch >= 0);
        host_keep();
        return 0;
}

static int teardown(void **state) {
        (void) state;
        collect_stop(&ctx);
        events_clear(&ctx);
        metrics_clear(&ctx);
        vgpud_config_free(ctx.config);
        close(host_watch);
        free(host_content);
        rm_rf(tmp);
        return 0;
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_reads),
                cmocka_unit_test(test_changes),
                cmocka_unit_test(test_malformed),
                cmocka_unit_test(test_poll),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
