/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-etcd.c — the etcd client against a real etcd cluster started by tests/fleet/etcd-client.py.
 *
 * test-etcd SCENARIO; the cluster is named by the environment: ETCD_ENDPOINTS (comma-separated),
 * ETCD_CA, ETCD_CERT, ETCD_KEY, ETCD_USER, ETCD_PASSWORD. Each scenario prints one line per
 * failed check and "SCENARIO: N passed, M failed"; exit status 1 on any failure.
 */
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fleet/etcd-internal.h"
#include "vgpu/etcd.h"

static int passed, failed;

#define CHECK(cond, ...)                                                       \
        do {                                                                   \
                if (cond)                                                      \
                        passed++;                                              \
                else {                                                         \
                        failed++;                                              \
                        printf("FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
                        printf(__VA_ARGS__);                                   \
                        printf("\n");                                          \
                        fflush(stdout);                                        \
                }                                                              \
        } while (0)

static struct vgpu_error err;
static char prefix[128];

static const char *env(const char *name) {
        const char *v = getenv(name);
        return v && *v ? v : NULL;
}

static char **split_endpoints(const char *list) {
        size_t n = 1;
        for (const char *p = list; *p; p++)
                n += *p == ',';
        char **v = calloc(n + 1, sizeof(char *)), *copy = strdup(list), *save = NULL;
        size_t i = 0;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save))
                v[i++] = strdup(t);
        free(copy);
        return v;
}

static struct vgpu_etcd *client_with(const char *endpoints, const char *user, const char *password) {
        char **eps = split_endpoints(endpoints);
        struct vgpu_etcd_config c = {
                .endpoints = (const char *const *) eps,
                .ca_file = env("ETCD_CA"),
                .cert_file = env("ETCD_CERT"),
                .key_file = env("ETCD_KEY"),
                .user = user,
                .password = password,
                .timeout_ms = 2000,
        };
        struct vgpu_etcd *e = NULL;
        int r = vgpu_etcd_new(&c, &e, &err);
        CHECK(r == 0, "vgpu_etcd_new: %s", err.message);
        for (char **p = eps; *p; p++)
                free(*p);
        free(eps);
        return e;
}

static struct vgpu_etcd *client(void) {
        return client_with(env("ETCD_ENDPOINTS"), env("ETCD_USER"), env("ETCD_PASSWORD"));
}

static char *key(const char *name) {
        static char buf[8][256];
        static int i;
        i = (i + 1) % 8;
        snprintf(buf[i], sizeof(buf[i]), "%s%s", prefix, name);
        return buf[i];
}

static int64_t put(struct vgpu_etcd *e, const char *k, const char *v) {
        int64_t rev = 0;
        int r = vgpu_etcd_put(e, k, v, 0, &rev, &err);
        CHECK(r == 0 && rev > 0, "put %s: %d %s", k, r, err.message);
        return rev;
}

static void sleep_ms(long ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
        nanosleep(&ts, NULL);
}

/* ---- codec: base64 both ways at every padding length, the prefix's range end ---- */

static void scenario_codec(void) {
        const char *plain[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar" };
        const char *coded[] = {
                "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"
        }; /* RFC 4648 */
        for (size_t i = 0; i < ELEMENTSOF(plain); i++) {
                _cleanup_free_ char *c = etcd_base64_encode(plain[i], strlen(plain[i]));
                size_t n = 99;
                _cleanup_free_ char *d = etcd_base64_decode(coded[i], &n);
                CHECK(streq(c, coded[i]), "encode '%s': %s", plain[i], c);
                CHECK(d && streq(d, plain[i]) && n == strlen(plain[i]), "decode '%s'", coded[i]);
        }
        const unsigned char bin[] = { 0x00, 0xff, 0x10, 0x80 };
        _cleanup_free_ char *c = etcd_base64_encode(bin, sizeof(bin));
        size_t n = 0;
        _cleanup_free_ char *d = etcd_base64_decode(c, &n);
        CHECK(d && n == sizeof(bin) && memcmp(d, bin, n) == 0, "binary round trip (NUL and 0xff)");
        CHECK(etcd_base64_decode("Zm9v!", NULL) == NULL, "bad base64 refused");
        CHECK(etcd_base64_decode("Zm9v\xff", NULL) == NULL, "a byte above 0x7f refused");
        /* every byte value: the encoding uses all 64 letters of the alphabet, the decoder's table too */
        unsigned char all[256];
        for (size_t i = 0; i < sizeof(all); i++)
                all[i] = (unsigned char) i;
        _cleanup_free_ char *ca = etcd_base64_encode(all, sizeof(all));
        size_t na = 0;
        _cleanup_free_ char *da = etcd_base64_decode(ca, &na);
        CHECK(da && na == sizeof(all) && memcmp(da, all, na) == 0, "round trip of every byte value");
        _cleanup_free_ char *e1 = etcd_prefix_end("/a/b/"), *e2 = etcd_prefix_end("a\xff"),
                            *e3 = etcd_prefix_end("");
        CHECK(streq(e1, "/a/b0"), "range end of /a/b/: %s", e1);
        CHECK(streq(e2, "b"), "range end of a\\xff: the last byte below 0xff + 1, the rest cut: %s", e2);
        CHECK(e3 && e3[0] == '\0', "range end of the empty prefix: \"\\0\" (every key)");
}

/* ---- protobuf: the wire format both ways (protobuf.h), the gRPC frame ---- */

static void scenario_protobuf(void) {
        /* varints at their length boundaries, and a negative int64 (ten bytes, two's complement) */
        const uint64_t values[] = { 0, 1, 127, 128, 16383, 16384, (uint64_t) INT64_MAX, (uint64_t) -1 };
        const size_t lengths[] = { 1, 1, 1, 2, 2, 3, 9, 10 };
        for (size_t i = 0; i < ELEMENTSOF(values); i++) {
                struct pb_writer w = {};
                pb_put_varint(&w, 1, values[i]);
                CHECK(!w.oom && w.len == 1 + lengths[i], "varint %" PRIu64 ": %zu bytes", values[i], w.len);
                struct pb_reader rd = pb_reader_new(w.data, w.len);
                struct pb_field f;
                CHECK(pb_next(&rd, &f) == 1 && f.number == 1 && f.wire == PB_VARINT && f.varint == values[i],
                      "varint %" PRIu64 " read back: %" PRIu64, values[i], f.varint);
                CHECK(pb_next(&rd, &f) == 0, "varint %" PRIu64 ": then the end", values[i]);
                pb_writer_free(&w);
        }
        /* a field number above 15 takes a two-byte tag (Compare's range_end is 64) */
        struct pb_writer w = {}, sub = {};
        pb_put_bytes(&sub, 64, "k\0y", 3);
        pb_put_message(&w, 2, &sub);
        pb_put_string(&w, 7, "");
        const uint8_t want[] = { 0x12, 0x06, 0x82, 0x04, 0x03, 'k', 0x00, 'y', 0x3a, 0x00 };
        CHECK(w.len == sizeof(want) && memcmp(w.data, want, sizeof(want)) == 0, "nested message bytes");
        struct pb_reader rd = pb_reader_new(w.data, w.len);
        struct pb_field f, g;
        CHECK(pb_next(&rd, &f) == 1 && f.number == 2 && f.wire == PB_LEN && f.len == 6,
              "nested: outer field");
        struct pb_reader in = pb_reader_new(f.data, f.len);
        CHECK(pb_next(&in, &g) == 1 && g.number == 64 && g.len == 3 && memcmp(g.data, "k\0y", 3) == 0,
              "nested: field 64, bytes with a NUL");
        CHECK(pb_next(&rd, &f) == 1 && f.number == 7 && f.len == 0, "empty string field");
        /* the frame: flag 0, length big-endian */
        size_t framed_len = 0;
        _cleanup_free_ uint8_t *framed = etcd_grpc_frame(&w, &framed_len);
        CHECK(framed && framed_len == w.len + 5 && framed[0] == 0 && framed[4] == w.len &&
                      memcmp(framed + 5, w.data, w.len) == 0,
              "gRPC frame");
        const uint8_t *msg;
        size_t msg_len;
        CHECK(etcd_grpc_next_frame(framed, framed_len - 1, &msg, &msg_len) == 0, "a partial frame waits");
        CHECK(etcd_grpc_next_frame(framed, framed_len, &msg, &msg_len) == framed_len && msg_len == w.len,
              "a whole frame");
        pb_writer_free(&w);
        pb_writer_free(&sub);
        /* what is not a message */
        const uint8_t truncated_varint[] = { 0x08, 0x80 }, long_len[] = { 0x0a, 0x05, 'a' },
                      group[] = { 0x0b }, zero_field[] = { 0x00, 0x01 };
        const struct {
                const uint8_t *p;
                size_t n;
                const char *what;
        } bad[] = {
                { truncated_varint, sizeof(truncated_varint), "a varint cut short" },
                { long_len, sizeof(long_len), "a length past the end" },
                { group, sizeof(group), "a group (not proto3)" },
                { zero_field, sizeof(zero_field), "field number 0" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                rd = pb_reader_new(bad[i].p, bad[i].n);
                CHECK(pb_next(&rd, &f) == -EBADMSG, "%s refused", bad[i].what);
        }
        /* a KeyValue without value (proto3 leaves out the empty value) still has one */
        const uint8_t kv[] = { 0x0a, 0x01, 'k', 0x10, 0x05, 0x18, 0x07, 0x20, 0x01 };
        struct vgpu_etcd_kv k;
        CHECK(etcd_pb_kv(kv, sizeof(kv), &k) == 0 && streq(k.key, "k") && k.value && k.value_len == 0 &&
                      k.create_revision == 5 && k.mod_revision == 7 && k.version == 1,
              "KeyValue read");
        etcd_kv_clear(&k);
        /* the transport is chosen by VGPU_ETCD_TRANSPORT; anything else is refused by name */
        const char *eps[] = { "http://127.0.0.1:1", NULL };
        struct vgpu_etcd_config c = { .endpoints = eps };
        struct vgpu_etcd *e = NULL;
        setenv("VGPU_ETCD_TRANSPORT", "carrier-pigeon", 1);
        CHECK(vgpu_etcd_new(&c, &e, &err) == -EINVAL && strstr(err.message, "carrier-pigeon"),
              "a bad transport refused: %s", err.message);
        setenv("VGPU_ETCD_TRANSPORT", "json", 1);
        CHECK(vgpu_etcd_new(&c, &e, &err) == 0 && !e->grpc, "json: the gateway");
        vgpu_etcd_free(e);
        e = NULL;
        unsetenv("VGPU_ETCD_TRANSPORT");
        CHECK(vgpu_etcd_new(&c, &e, &err) == 0 && e->grpc, "by default gRPC (libcurl with HTTP/2)");
        vgpu_etcd_free(e);
}

/* ---- kv: range, put, delete, txn with each compare target ---- */

static bool txn1(struct vgpu_etcd *e, struct vgpu_etcd_compare c) {
        struct vgpu_etcd_op ok = { .kind = VGPU_ETCD_OP_PUT, .key = key("txn/ok"), .value = "1" };
        struct vgpu_etcd_txn_result res = {};
        int r = vgpu_etcd_txn(e, &c, 1, &ok, 1, NULL, 0, &res, &err);
        CHECK(r == 0, "txn: %s", err.message);
        bool s = res.succeeded;
        vgpu_etcd_txn_result_free(&res);
        return s;
}

static void scenario_kv(void) {
        _cleanup_(vgpu_etcd_freep) struct vgpu_etcd *e = client();
        if (!e)
                return;
        struct vgpu_etcd_range rg = {};
        /* a value with bytes JSON and base64 must carry: quotes, newline, UTF-8, '=' padding lengths */
        const char *v1 = "{\"a\": \"x\\n\"}\n\xc3\xa9";
        int64_t r1 = put(e, key("a/1"), v1);
        int64_t r2 = put(e, key("a/2"), "v2");
        put(e, key("b"), "outside");
        CHECK(r2 > r1, "revisions grow: %" PRId64 " %" PRId64, r1, r2);

        CHECK(vgpu_etcd_get(e, key("a/1"), &rg, &err) == 0 && rg.n == 1, "get: %s", err.message);
        if (rg.n == 1) {
                CHECK(streq(rg.kvs[0].key, key("a/1")), "key %s", rg.kvs[0].key);
                CHECK(streq(rg.kvs[0].value, v1) && rg.kvs[0].value_len == strlen(v1), "value '%s'",
                      rg.kvs[0].value);
                CHECK(rg.kvs[0].mod_revision == r1 && rg.kvs[0].create_revision == r1 &&
                              rg.kvs[0].version == 1,
                      "revisions %" PRId64 " %" PRId64 " %" PRId64, rg.kvs[0].mod_revision,
                      rg.kvs[0].create_revision, rg.kvs[0].version);
                CHECK(rg.revision >= r2, "header revision %" PRId64, rg.revision);
        }
        vgpu_etcd_range_free(&rg);
        CHECK(vgpu_etcd_get(e, key("none"), &rg, &err) == 0 && rg.n == 0, "get absent: %s", err.message);
        vgpu_etcd_range_free(&rg);

        CHECK(vgpu_etcd_range_prefix(e, key("a/"), 0, 0, &rg, &err) == 0 && rg.n == 2, "prefix: n=%zu %s",
              rg.n, err.message);
        vgpu_etcd_range_free(&rg);
        /* at a revision: the store as it was */
        CHECK(vgpu_etcd_range_prefix(e, key("a/"), r1, 0, &rg, &err) == 0 && rg.n == 1,
              "at revision: n=%zu %s", rg.n, err.message);
        vgpu_etcd_range_free(&rg);
        /* min_mod_revision filters out older keys */
        CHECK(vgpu_etcd_range_prefix(e, key("a/"), 0, r2, &rg, &err) == 0 && rg.n == 1 &&
                      streq(rg.kvs[0].key, key("a/2")),
              "min_mod_revision: n=%zu %s", rg.n, err.message);
        vgpu_etcd_range_free(&rg);
        /* a future revision */
        CHECK(vgpu_etcd_range_prefix(e, key("a/"), r2 + 1000000, 0, &rg, &err) == -ESTALE,
              "future revision: %s", err.message);

        /* a second put: version 2, create stays */
        int64_t r3 = put(e, key("a/1"), "again");
        CHECK(vgpu_etcd_get(e, key("a/1"), &rg, &err) == 0 && rg.n == 1 && rg.kvs[0].version == 2 &&
                      rg.kvs[0].create_revision == r1 && rg.kvs[0].mod_revision == r3,
              "second put: %s", err.message);
        vgpu_etcd_range_free(&rg);

        /* txn: each target, each result, both outcomes */
        CHECK(txn1(e, (struct vgpu_etcd_compare){ key("a/1"), VGPU_ETCD_MOD, VGPU_ETCD_EQUAL, r3, NULL }),
              "MOD ==");
        CHECK(!txn1(e, (struct vgpu_etcd_compare){ key("a/1"), VGPU_ETCD_MOD, VGPU_ETCD_EQUAL, r1, NULL }),
              "MOD == old fails");
        CHECK(txn1(e, (struct vgpu_etcd_compare){ key("a/1"), VGPU_ETCD_MOD, VGPU_ETCD_GREATER, r1, NULL }),
              "MOD >");
        CHECK(txn1(e, (struct vgpu_etcd_compare){ key("a/1"), VGPU_ETCD_MOD, VGPU_ETCD_LESS, r3 + 1, NULL }),
              "MOD <");
        CHECK(txn1(e, (struct vgpu_etcd_compare){ key("a/1"), VGPU_ETCD_CREATE, VGPU_ETCD_EQUAL, r1, NULL }),
              "CREATE ==");
        CHECK(txn1(e, (struct vgpu_etcd_compare){ key("none"), VGPU_ETCD_CREATE, VGPU_ETCD_EQUAL, 0, NULL }),
              "CREATE == 0 (absent)");
        CHECK(!txn1(e, (struct vgpu_etcd_compare){ key("a/1"), VGPU_ETCD_CREATE, VGPU_ETCD_EQUAL, 0, NULL }),
              "CREATE == 0 fails for a present key");
        CHECK(txn1(e, (struct vgpu_etcd_compare){ key("a/1"), VGPU_ETCD_VERSION, VGPU_ETCD_EQUAL, 2, NULL }),
              "VERSION ==");
        CHECK(txn1(e,
                   (struct vgpu_etcd_compare){ key("a/1"), VGPU_ETCD_VERSION, VGPU_ETCD_GREATER, 0, NULL }),
              "VERSION > 0");
        CHECK(!txn1(e,
                    (struct vgpu_etcd_compare){ key("none"), VGPU_ETCD_VERSION, VGPU_ETCD_GREATER, 0, NULL }),
              "VERSION > 0 fails for an absent key");
        CHECK(txn1(e,
                   (struct vgpu_etcd_compare){ key("a/1"), VGPU_ETCD_VERSION, VGPU_ETCD_NOT_EQUAL, 7, NULL }),
              "VERSION !=");
        CHECK(txn1(e, (struct vgpu_etcd_compare){ key("a/1"), VGPU_ETCD_VALUE, VGPU_ETCD_EQUAL, 0, "again" }),
              "VALUE ==");
        CHECK(!txn1(e,
                    (struct vgpu_etcd_compare){ key("a/1"), VGPU_ETCD_VALUE, VGPU_ETCD_EQUAL, 0, "other" }),
              "VALUE == other fails");
        CHECK(txn1(e, (struct vgpu_etcd_compare){ key("a/1"), VGPU_ETCD_VALUE, VGPU_ETCD_NOT_EQUAL, 0,
                                                  "other" }),
              "VALUE !=");
        /* LEASE (vgpud's BOUND report is fenced by it): the key's lease, 0 for none or absent */
        int64_t lid = 0;
        CHECK(vgpu_etcd_lease_grant(e, 30, &lid, &err) == 0 && lid != 0, "grant: %s", err.message);
        CHECK(vgpu_etcd_put(e, key("leased"), "x", lid, NULL, &err) == 0, "put with lease: %s", err.message);
        CHECK(txn1(e,
                   (struct vgpu_etcd_compare){ key("leased"), VGPU_ETCD_LEASE, VGPU_ETCD_EQUAL, lid, NULL }),
              "LEASE == the key's lease");
        CHECK(!txn1(e, (struct vgpu_etcd_compare){ key("leased"), VGPU_ETCD_LEASE, VGPU_ETCD_EQUAL, lid + 1,
                                                   NULL }),
              "LEASE == another lease fails");
        CHECK(txn1(e, (struct vgpu_etcd_compare){ key("a/1"), VGPU_ETCD_LEASE, VGPU_ETCD_EQUAL, 0, NULL }),
              "LEASE == 0 on a key without lease");
        CHECK(!txn1(e,
                    (struct vgpu_etcd_compare){ key("none"), VGPU_ETCD_LEASE, VGPU_ETCD_EQUAL, lid, NULL }),
              "LEASE == id fails on an absent key");
        CHECK(vgpu_etcd_lease_revoke(e, lid, &err) == 0, "revoke: %s", err.message);

        /* the claim's shape: several compares, puts on success, ranges on failure */
        struct vgpu_etcd_compare cmp[] = {
                { key("alloc"), VGPU_ETCD_CREATE, VGPU_ETCD_EQUAL, 0, NULL },
                { key("a/2"), VGPU_ETCD_VERSION, VGPU_ETCD_GREATER, 0, NULL },
        };
        struct vgpu_etcd_op success[] = {
                { .kind = VGPU_ETCD_OP_PUT, .key = key("alloc"), .value = "{\"n\":1}" },
                { .kind = VGPU_ETCD_OP_RANGE, .key = key("a/"), .prefix = true },
                { .kind = VGPU_ETCD_OP_DELETE, .key = key("txn/ok") },
        };
        struct vgpu_etcd_op failure[] = {
                { .kind = VGPU_ETCD_OP_RANGE, .key = key("alloc") },
                { .kind = VGPU_ETCD_OP_RANGE, .key = key("a/2") },
        };
        struct vgpu_etcd_txn_result res = {};
        CHECK(vgpu_etcd_txn(e, cmp, 2, success, 3, failure, 2, &res, &err) == 0 && res.succeeded &&
                      res.n_ranges == 1 && res.ranges[0].n == 2,
              "claim txn: %s succeeded=%d n_ranges=%zu", err.message, res.succeeded, res.n_ranges);
        int64_t claim_rev = res.revision;
        vgpu_etcd_txn_result_free(&res);
        CHECK(vgpu_etcd_txn(e, cmp, 2, success, 3, failure, 2, &res, &err) == 0 && !res.succeeded &&
                      res.n_ranges == 2 && res.ranges[0].n == 1 &&
                      res.ranges[0].kvs[0].mod_revision == claim_rev &&
                      streq(res.ranges[0].kvs[0].value, "{\"n\":1}") && res.ranges[1].n == 1,
              "lost txn returns the current values: %s succeeded=%d n_ranges=%zu", err.message, res.succeeded,
              res.n_ranges);
        CHECK(res.revision == claim_rev, "a failed txn does not move the revision: %" PRId64 " %" PRId64,
              res.revision, claim_rev);
        vgpu_etcd_txn_result_free(&res);

        /* delete one, delete a prefix */
        int64_t rev = 0;
        CHECK(vgpu_etcd_delete(e, key("b"), false, &rev, &err) == 0 && rev > claim_rev, "delete: %s",
              err.message);
        CHECK(vgpu_etcd_delete(e, key("a/"), true, NULL, &err) == 0, "delete prefix: %s", err.message);
        CHECK(vgpu_etcd_range_prefix(e, prefix, 0, 0, &rg, &err) == 0 && rg.n == 1 &&
                      streq(rg.kvs[0].key, key("alloc")),
              "after deletes: n=%zu %s", rg.n, err.message);
        vgpu_etcd_range_free(&rg);

        /* bad input: no key */
        CHECK(vgpu_etcd_put(e, NULL, "x", 0, NULL, &err) == -EINVAL, "put without key");
}

/* ---- leases ---- */

static void scenario_lease(void) {
        _cleanup_(vgpu_etcd_freep) struct vgpu_etcd *e = client();
        if (!e)
                return;
        int64_t id = 0, ttl = -1;
        CHECK(vgpu_etcd_lease_grant(e, 2, &id, &err) == 0 && id != 0, "grant: %s", err.message);
        printf("lease id %" PRId64 " (0x%" PRIx64 ")\n", id, (uint64_t) id);
        CHECK(vgpu_etcd_put(e, key("leased"), "x", id, NULL, &err) == 0, "put with lease: %s", err.message);
        struct vgpu_etcd_range rg = {};
        CHECK(vgpu_etcd_get(e, key("leased"), &rg, &err) == 0 && rg.n == 1 && rg.kvs[0].lease == id,
              "the key carries the lease id exactly (beyond 2^53): %s", err.message);
        vgpu_etcd_range_free(&rg);
        /* keepalive for a while: the key outlives its TTL */
        for (int i = 0; i < 4; i++) {
                CHECK(vgpu_etcd_lease_keepalive(e, id, &ttl, &err) == 0 && ttl >= 1 && ttl <= 2,
                      "keepalive: ttl=%" PRId64 " %s", ttl, err.message);
                sleep_ms(700);
        }
        CHECK(vgpu_etcd_get(e, key("leased"), &rg, &err) == 0 && rg.n == 1, "kept alive past the TTL");
        vgpu_etcd_range_free(&rg);
        /* stop: the key goes at TTL + ~0.5 s */
        sleep_ms(3200);
        CHECK(vgpu_etcd_get(e, key("leased"), &rg, &err) == 0 && rg.n == 0,
              "lease expiry removed the key: n=%zu", rg.n);
        vgpu_etcd_range_free(&rg);
        ttl = -1;
        CHECK(vgpu_etcd_lease_keepalive(e, id, &ttl, &err) == 0 && ttl == 0,
              "keepalive after expiry reports 0: ttl=%" PRId64 " %s", ttl, err.message);
        CHECK(vgpu_etcd_put(e, key("leased"), "x", id, NULL, &err) == -ENOENT,
              "put with an expired lease: %s", err.message);
        /* revoke drops the keys at once */
        int64_t id2 = 0;
        CHECK(vgpu_etcd_lease_grant(e, 30, &id2, &err) == 0, "grant: %s", err.message);
        CHECK(vgpu_etcd_put(e, key("leased2"), "y", id2, NULL, &err) == 0, "put: %s", err.message);
        CHECK(vgpu_etcd_lease_revoke(e, id2, &err) == 0, "revoke: %s", err.message);
        CHECK(vgpu_etcd_get(e, key("leased2"), &rg, &err) == 0 && rg.n == 0, "revoke removed the key");
        vgpu_etcd_range_free(&rg);
        CHECK(vgpu_etcd_lease_revoke(e, id2, &err) == -ENOENT, "revoke twice: %d %s", err.code, err.message);
        CHECK(vgpu_etcd_lease_grant(e, 0, &id2, &err) == -EINVAL, "grant TTL 0");
}

/* ---- watch ---- */

struct seen {
        int n_events, n_deleted, n_prev, stop_after;
        int64_t last_revision;
        char first_key[256];
};

static int on_events(const struct vgpu_etcd_event *ev, size_t n, int64_t revision, void *userdata) {
        struct seen *s = userdata;
        for (size_t i = 0; i < n; i++) {
                if (s->n_events == 0)
                        snprintf(s->first_key, sizeof(s->first_key), "%s", ev[i].kv.key);
                s->n_events++;
                s->n_deleted += ev[i].deleted;
                s->n_prev += ev[i].prev.key != NULL;
                if (ev[i].deleted && ev[i].prev.key && !streq(ev[i].prev.value, "v"))
                        s->n_prev = -1000; /* a delete's prev_kv is the deleted value */
        }
        s->last_revision = revision;
        return s->stop_after && s->n_events >= s->stop_after ? 42 : 0;
}

struct watcher {
        struct vgpu_etcd *e;
        int64_t start;
        struct seen seen;
        volatile int stop;
        int result;
        int64_t compact;
        struct vgpu_error err;
        unsigned flags; /* vgpu_etcd_watch_flags()'s, when set */
};

static void *watch_thread(void *p) {
        struct watcher *w = p;
        if (w->flags)
                w->result = vgpu_etcd_watch_flags(w->e, key("w/"), w->start, w->flags, on_events, &w->seen,
                                                  &w->stop, &w->compact, &w->err);
        else
                w->result = vgpu_etcd_watch(w->e, key("w/"), w->start, on_events, &w->seen, &w->stop,
                                            &w->compact, &w->err);
        return NULL;
}

static void scenario_watch(void) {
        _cleanup_(vgpu_etcd_freep) struct vgpu_etcd *e = client();
        _cleanup_(vgpu_etcd_freep) struct vgpu_etcd *we = client();
        if (!e || !we)
                return;
        int64_t before = put(e, key("other"), "not watched");
        struct watcher w = { .e = we, .start = before + 1 };
        pthread_t t;
        pthread_create(&t, NULL, watch_thread, &w);
        sleep_ms(300);
        int64_t first = put(e, key("w/1"), "v");
        put(e, key("w/2"), "v");
        put(e, key("w/1"), "v"); /* an update: prev_kv set */
        put(e, key("x/3"), "v"); /* outside the prefix */
        int64_t last = 0;
        CHECK(vgpu_etcd_delete(e, key("w/2"), false, &last, &err) == 0, "delete: %s", err.message);
        for (int i = 0; i < 50 && w.seen.n_events < 4; i++)
                sleep_ms(100);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        w.stop = 1;
        pthread_join(t, NULL);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double stop_ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
        CHECK(w.result == 0, "stopped watch returns 0: %d %s", w.result, w.err.message);
        CHECK(stop_ms < 400, "stop noticed within 200 ms (+ slack): %.0f ms", stop_ms);
        CHECK(w.seen.n_events == 4 && w.seen.n_deleted == 1, "events: %d deleted %d", w.seen.n_events,
              w.seen.n_deleted);
        CHECK(w.seen.n_prev == 2, "prev_kv on the update and the delete: %d", w.seen.n_prev);
        CHECK(streq(w.seen.first_key, key("w/1")), "first event key %s", w.seen.first_key);
        CHECK(w.seen.last_revision == last, "revision of the last event %" PRId64 " (delete at %" PRId64 ")",
              w.seen.last_revision, last);

        /* resume from a revision: the events from there on, already in history; the callback ends it */
        struct watcher r = { .e = we, .start = first + 1, .seen = { .stop_after = 2 } };
        pthread_create(&t, NULL, watch_thread, &r);
        pthread_join(t, NULL);
        CHECK(r.result == 42, "the callback's value ends the watch: %d %s", r.result, r.err.message);
        CHECK(r.seen.n_events >= 2 && streq(r.seen.first_key, key("w/2")), "resumed after the first put: %s",
              r.seen.first_key);

        /* prev_kv off: the same events, none with a previous value */
        struct watcher np = {
                .e = we, .start = first, .flags = VGPU_ETCD_WATCH_NO_PREV_KV, .seen = { .stop_after = 4 }
        };
        pthread_create(&t, NULL, watch_thread, &np);
        pthread_join(t, NULL);
        CHECK(np.result == 42 && np.seen.n_events >= 4 && np.seen.n_deleted == 1 && np.seen.n_prev == 0,
              "VGPU_ETCD_WATCH_NO_PREV_KV: %d events, %d deleted, %d with prev_kv (want 0): %d %s",
              np.seen.n_events, np.seen.n_deleted, np.seen.n_prev, np.result, np.err.message);

        /* compaction: a watch from before it is refused with the compacted revision */
        int64_t now = put(e, key("w/3"), "v");
        CHECK(vgpu_etcd_compact(e, now, &err) == 0, "compact: %s", err.message);
        struct watcher c = { .e = we, .start = first };
        pthread_create(&t, NULL, watch_thread, &c);
        pthread_join(t, NULL);
        CHECK(c.result == -ESTALE && c.compact == now,
              "compacted start: %d compact=%" PRId64 " (want %" PRId64 ") %s", c.result, c.compact, now,
              c.err.message);
        struct vgpu_etcd_range rg = {};
        CHECK(vgpu_etcd_range_prefix(e, key("w/"), first, 0, &rg, &err) == -ESTALE,
              "range at a compacted revision");
        vgpu_etcd_range_free(&rg);
}

/* ---- rotation: ETCD_ENDPOINTS starts with dead endpoints ---- */

static void scenario_rotation(void) {
        _cleanup_(vgpu_etcd_freep) struct vgpu_etcd *e = client();
        if (!e)
                return;
        const char *first = vgpu_etcd_endpoint(e);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        int64_t rev = put(e, key("w/rot"), "x");
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
        CHECK(rev > 0 && !streq(vgpu_etcd_endpoint(e), first), "rotated away from %s to %s", first,
              vgpu_etcd_endpoint(e));
        printf("put past the dead endpoints took %.1f ms\n", ms);
        struct vgpu_etcd_range rg = {};
        CHECK(vgpu_etcd_get(e, key("w/rot"), &rg, &err) == 0 && rg.n == 1, "get: %s", err.message);
        vgpu_etcd_range_free(&rg);
        /* the watch rotates too */
        struct watcher w = { .e = e, .start = rev, .seen = { .stop_after = 1 } };
        _cleanup_(vgpu_etcd_freep) struct vgpu_etcd *we = client();
        w.e = we;
        pthread_t t;
        pthread_create(&t, NULL, watch_thread, &w);
        pthread_join(t, NULL);
        CHECK(w.result == 42, "watch past the dead endpoints: %d %s", w.result, w.err.message);

        /* nothing alive: -ECONNREFUSED after trying each */
        _cleanup_(vgpu_etcd_freep) struct vgpu_etcd *dead = client_with(env("ETCD_DEAD"), NULL, NULL);
        int r = vgpu_etcd_put(dead, key("rot"), "x", 0, NULL, &err);
        CHECK(r == -ECONNREFUSED, "all endpoints dead: %d %s", r, err.message);
}

/* ---- failover: ETCD_ENDPOINTS starts with the leader, ETCD_KILL_PID is its pid ---- */

static double ms_since(const struct timespec *t0) {
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        return (t1.tv_sec - t0->tv_sec) * 1e3 + (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void scenario_failover(void) {
        _cleanup_(vgpu_etcd_freep) struct vgpu_etcd *e = client();
        _cleanup_(vgpu_etcd_freep) struct vgpu_etcd *we = client();
        if (!e || !we || !env("ETCD_KILL_PID"))
                return;
        int64_t first = put(e, key("w/1"), "v");
        struct watcher w = { .e = we, .start = first };
        pthread_t t;
        pthread_create(&t, NULL, watch_thread, &w);
        for (int i = 0; i < 50 && w.seen.n_events < 1; i++)
                sleep_ms(100);
        CHECK(w.seen.n_events == 1, "watch on the leader saw the first put");
        kill(atoi(env("ETCD_KILL_PID")), SIGKILL);
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        /* writes go on past the election: a put, and a txn (refused with "no leader" is safe to resend) */
        int64_t second = 0;
        int r = vgpu_etcd_put(e, key("w/2"), "v", 0, &second, &err);
        double put_ms = ms_since(&t0);
        CHECK(r == 0 && second > first, "put after the leader's kill -9: %d %s", r, err.message);
        struct vgpu_etcd_compare cmp = { key("w/2"), VGPU_ETCD_MOD, VGPU_ETCD_EQUAL, second, NULL };
        struct vgpu_etcd_op op = { .kind = VGPU_ETCD_OP_PUT, .key = key("w/3"), .value = "v" };
        struct vgpu_etcd_txn_result res = {};
        r = vgpu_etcd_txn(e, &cmp, 1, &op, 1, NULL, 0, &res, &err);
        CHECK(r == 0 && res.succeeded, "txn after the failover: %d %s", r, err.message);
        vgpu_etcd_txn_result_free(&res);
        printf("put %.0f ms after the leader's kill -9, served by %s\n", put_ms, vgpu_etcd_endpoint(e));
        /* the watch on the dead member ends with an error; resumed from the last revision + 1 it
         * gets what happened meanwhile, from another member */
        pthread_join(t, NULL);
        CHECK(w.result < 0 && w.result != -ESTALE, "the watch on the killed member ends: %d %s", w.result,
              w.err.message);
        struct watcher again = { .e = we, .start = w.seen.last_revision + 1, .seen = { .stop_after = 2 } };
        pthread_create(&t, NULL, watch_thread, &again);
        pthread_join(t, NULL);
        CHECK(again.result == 42 && streq(again.seen.first_key, key("w/2")),
              "resumed watch sees the writes made during the failover: %d first %s %s", again.result,
              again.seen.first_key, again.err.message);
}

/* ---- reconnect: the one endpoint's member restarted between two requests of one client ----
 * Over gRPC the client's first request opened its connection with HTTP/2's preface and the next
 * ones reuse it (etcd.c: libcurl 7.88 cannot reuse a prior-knowledge connection); once the member
 * is back, the next request must open a fresh connection the same way. ETCD_READY: a file this
 * scenario creates after its first put; ETCD_RESTARTED: one the driver creates once the member
 * was restarted. */
static void scenario_reconnect(void) {
        _cleanup_(vgpu_etcd_freep) struct vgpu_etcd *e = client();
        if (!e || !env("ETCD_READY") || !env("ETCD_RESTARTED"))
                return;
        int64_t first = put(e, key("r/1"), "v");
        int64_t second = put(e, key("r/2"), "v"); /* the same connection, reused */
        CHECK(second > first, "two puts on one connection: %" PRId64 " %" PRId64, first, second);
        FILE *f = fopen(env("ETCD_READY"), "w");
        if (f)
                fclose(f);
        for (int i = 0; i < 300 && access(env("ETCD_RESTARTED"), F_OK) != 0; i++)
                sleep_ms(100);
        CHECK(access(env("ETCD_RESTARTED"), F_OK) == 0, "the driver restarted the member");
        int64_t third = 0;
        int r = vgpu_etcd_put(e, key("r/3"), "v", 0, &third, &err);
        CHECK(r == 0 && third > second, "put after the member's restart: %d %s", r, err.message);
        struct vgpu_etcd_range rg = {};
        r = vgpu_etcd_range_prefix(e, key("r/"), 0, 0, &rg, &err);
        CHECK(r == 0 && rg.n == 3, "and the keys read back: %d n=%zu %s", r, rg.n, err.message);
        vgpu_etcd_range_free(&rg);
}

/* ---- TLS: ETCD_CA/CERT/KEY set; a client without the client certificate is refused ---- */

static void scenario_tls(void) {
        _cleanup_(vgpu_etcd_freep) struct vgpu_etcd *e = client();
        if (!e)
                return;
        put(e, key("tls"), "x");
        struct vgpu_etcd_range rg = {};
        CHECK(vgpu_etcd_get(e, key("tls"), &rg, &err) == 0 && rg.n == 1, "get over TLS: %s", err.message);
        vgpu_etcd_range_free(&rg);
        char **eps = split_endpoints(env("ETCD_ENDPOINTS"));
        struct vgpu_etcd_config c = { .endpoints = (const char *const *) eps, .ca_file = env("ETCD_CA") };
        _cleanup_(vgpu_etcd_freep) struct vgpu_etcd *nocert = NULL;
        CHECK(vgpu_etcd_new(&c, &nocert, &err) == 0, "new: %s", err.message);
        int r = vgpu_etcd_get(nocert, key("tls"), &rg, &err);
        CHECK(r < 0, "no client certificate: refused (%d %s)", r, err.message);
        c.ca_file = NULL;
        c.cert_file = env("ETCD_CERT");
        c.key_file = env("ETCD_KEY");
        _cleanup_(vgpu_etcd_freep) struct vgpu_etcd *noca = NULL;
        CHECK(vgpu_etcd_new(&c, &noca, &err) == 0, "new: %s", err.message);
        r = vgpu_etcd_get(noca, key("tls"), &rg, &err);
        CHECK(r < 0, "server certificate not trusted without the CA: refused (%d %s)", r, err.message);
        for (char **p = eps; *p; p++)
                free(*p);
        free(eps);
}

/* ---- auth: ETCD_USER/PASSWORD; a user limited to the prefix (role set up by the wrapper) ---- */

static void scenario_auth(void) {
        _cleanup_(vgpu_etcd_freep) struct vgpu_etcd *e = client();
        if (!e)
                return;
        put(e, key("auth"), "x");
        struct vgpu_etcd_range rg = {};
        CHECK(vgpu_etcd_get(e, key("auth"), &rg, &err) == 0 && rg.n == 1, "get with a token: %s",
              err.message);
        vgpu_etcd_range_free(&rg);
        /* a token the server no longer knows (expired, member restarted): authenticate again */
        free(e->token);
        e->token = strdup("bogus.token");
        CHECK(vgpu_etcd_get(e, key("auth"), &rg, &err) == 0 && rg.n == 1,
              "re-authenticated after an invalid token: %s", err.message);
        vgpu_etcd_range_free(&rg);
        int64_t rev = put(e, key("w/auth"), "x");
        free(e->token);
        e->token = strdup("bogus.token");
        struct watcher w = { .e = e, .start = rev, .seen = { .stop_after = 1 } };
        pthread_t t;
        pthread_create(&t, NULL, watch_thread, &w);
        pthread_join(t, NULL);
        CHECK(w.result == 42 && w.seen.n_events == 1, "watch re-authenticates after an invalid token: %d %s",
              w.result, w.err.message);
        /* outside the role's prefix: permission denied */
        int r = vgpu_etcd_put(e, "/elsewhere", "x", 0, NULL, &err);
        CHECK(r == -EACCES, "outside the role: %d %s", r, err.message);
        /* wrong password, no user */
        _cleanup_(vgpu_etcd_freep) struct vgpu_etcd *bad =
                client_with(env("ETCD_ENDPOINTS"), env("ETCD_USER"), "wrong");
        r = vgpu_etcd_get(bad, key("auth"), &rg, &err);
        CHECK(r == -EINVAL || r == -EACCES, "wrong password: %d %s", r, err.message);
        _cleanup_(vgpu_etcd_freep) struct vgpu_etcd *anon = client_with(env("ETCD_ENDPOINTS"), NULL, NULL);
        r = vgpu_etcd_get(anon, key("auth"), &rg, &err);
        CHECK(r < 0, "no user: refused (%d %s)", r, err.message);
        vgpu_etcd_range_free(&rg);
}

int main(int argc, char **argv) {
        if (argc != 2 || !env("ETCD_ENDPOINTS")) {
                fprintf(stderr,
                        "usage: ETCD_ENDPOINTS=URL[,URL] %s "
                        "codec|protobuf|kv|lease|watch|rotation|failover|reconnect|tls|auth\n",
                        argv[0]);
                return 2;
        }
        snprintf(prefix, sizeof(prefix), "/vgpuctl/test/%d-%s/", (int) getpid(), argv[1]);
        static const struct {
                const char *name;
                void (*fn)(void);
        } scenarios[] = {
                { "codec", scenario_codec },
                { "protobuf", scenario_protobuf },
                { "kv", scenario_kv },
                { "lease", scenario_lease },
                { "watch", scenario_watch },
                { "rotation", scenario_rotation },
                { "failover", scenario_failover },
                { "reconnect", scenario_reconnect },
                { "tls", scenario_tls },
                { "auth", scenario_auth },
        };
        for (size_t i = 0; i < ELEMENTSOF(scenarios); i++)
                if (streq(scenarios[i].name, argv[1])) {
                        scenarios[i].fn();
                        printf("%s: %d passed, %d failed\n", argv[1], passed, failed);
                        return failed || passed == 0 ? 1 : 0;
                }
        fprintf(stderr, "unknown scenario %s\n", argv[1]);
        return 2;
}
