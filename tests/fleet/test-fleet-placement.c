/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-fleet-placement.c — lib/fleet without etcd: the JSON of every key round-trips and bad
 * values are refused naming the member; session ids; placement's filters (each counted in the
 * explanation), spread against binpack, the type lock, quotas, holds, and the seeded tie-break
 * (replays for one key, spreads over keys); the allocation arithmetic of claim and release.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "vgpu/fleet-host.h"
#include "vgpu/fleet.h"

#define GiB (UINT64_C(1) << 30)

static void test_keys(void **state) {
        (void) state;
        char p[VGPU_FLEET_PREFIX_MAX], k[VGPU_FLEET_KEY_MAX];
        assert_int_equal(vgpu_fleet_prefix("default", p, sizeof(p)), 0);
        assert_string_equal(p, "/vgpuctl/v1/default/");
        assert_int_equal(vgpu_fleet_prefix("a/b", p, sizeof(p)), -EINVAL);
        assert_int_equal(vgpu_fleet_prefix("", p, sizeof(p)), -EINVAL);
        assert_int_equal(vgpu_fleet_prefix("default", p, sizeof(p)), 0);
        assert_int_equal(vgpu_fleet_key(k, sizeof(k), p, "claims", "h1", "c1", NULL), 0);
        assert_string_equal(k, "/vgpuctl/v1/default/claims/h1/c1");
        assert_int_equal(vgpu_fleet_key(k, 20, p, "claims", "h1", "c1", NULL), -ENAMETOOLONG);
        assert_true(vgpu_fleet_name_is_valid("host-1.example:0000"));
        assert_false(vgpu_fleet_name_is_valid("a/b"));
        assert_false(vgpu_fleet_name_is_valid(".."));
        assert_false(vgpu_fleet_name_is_valid(""));
        char id[33];
        /* SHA-256("abc") = ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad */
        vgpu_fleet_session_id("abc", id);
        assert_string_equal(id, "ba7816bf8f01cfea414140de5dae2223");
        /* two blocks of padding: 56 bytes */
        vgpu_fleet_session_id("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", id);
        assert_string_equal(id, "248d6a61d20638b8e5c026930c3e6039");

        /* the names a claim's instance gets carry a check: vgpud sweeps only those */
        char uuid[37], slice[31];
        vgpu_fleet_claim_instance_uuid("c1", uuid);
        vgpu_fleet_claim_slice_name("c1", slice);
        assert_int_equal(uuid[14], '4'); /* a version 4 layout, as mdevctl wants */
        assert_true(strncmp(slice, "fleet-", 6) == 0 && strlen(slice) == 30);
        assert_true(vgpu_fleet_name_is_claim_instance(uuid));
        assert_true(vgpu_fleet_name_is_claim_instance(slice));
        uuid[0] = uuid[0] == 'a' ? 'b' : 'a'; /* one digit changed: no longer the fleet's */
        slice[6] = slice[6] == 'a' ? 'b' : 'a';
        assert_false(vgpu_fleet_name_is_claim_instance(uuid));
        assert_false(vgpu_fleet_name_is_claim_instance(slice));
        /* an admin's (the fixture's own) and names of other shapes */
        assert_false(vgpu_fleet_name_is_claim_instance("b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01"));
        assert_false(vgpu_fleet_name_is_claim_instance("fleet-build"));
        assert_false(vgpu_fleet_name_is_claim_instance("FLEET-000000000000000000000000"));
        assert_false(vgpu_fleet_name_is_claim_instance(""));
        assert_false(vgpu_fleet_name_is_claim_instance(NULL));
}

static void test_codecs(void **state) {
        (void) state;
        struct vgpu_error err = {};
        char *text = NULL;
        char *reasons[] = { "xid 79" };
        struct vgpu_fleet_type types[] = { { "nvidia-231", 2 * GiB, 8, 8 }, { "nvidia-232", 4 * GiB, 4, 4 } };
        struct vgpu_fleet_gpu g = { .host = "h1",
                                    .gpu = "GPU-1",
                                    .pci_address = "0000:3b:00.0",
                                    .model = "Tesla T4",
                                    .vram_total_bytes = 16 * GiB,
                                    .mode = VGPU_FLEET_MODE_VGPU,
                                    .types = types,
                                    .n_types = 2,
                                    .degraded = true,
                                    .health_reasons = reasons,
                                    .n_health_reasons = 1,
                                    .has_temperature = true,
                                    .temperature_celsius = 61,
                                    .slice_fleet_memory_bytes = 3 * GiB,
                                    .slice_fleet_share_percent = 30,
                                    .updated_ms = 5 };
        assert_int_equal(vgpu_fleet_gpu_to_json(&g, &text, &err), 0);
        struct vgpu_fleet_gpu g2;
        assert_int_equal(vgpu_fleet_gpu_from_json(text, &g2, &err), 0);
        assert_string_equal(g2.model, "Tesla T4");
        assert_int_equal(g2.n_types, 2);
        assert_string_equal(g2.types[1].name, "nvidia-232");
        assert_int_equal(g2.types[1].framebuffer_bytes, 4 * GiB);
        assert_true(g2.degraded);
        assert_string_equal(g2.health_reasons[0], "xid 79");
        assert_int_equal(g2.temperature_celsius, 61);
        assert_int_equal(g2.mode, VGPU_FLEET_MODE_VGPU);
        assert_int_equal(g2.slice_fleet_memory_bytes, 3 * GiB);
        assert_int_equal(g2.slice_fleet_share_percent, 30);
        vgpu_fleet_gpu_free(&g2);
        free(text);

        /* lease ids above 2^53 survive as strings */
        struct vgpu_fleet_claim c = { .claim = "c1",
                                      .session = "s1",
                                      .user = "u",
                                      .tenant = "t",
                                      .host = "h1",
                                      .gpu = "GPU-1",
                                      .kind = VGPU_FLEET_KIND_SLICE,
                                      .vram_bytes = GiB,
                                      .has_slice = true,
                                      .slice_memory_bytes = GiB,
                                      .slice_share_percent = 30,
                                      .state = VGPU_FLEET_PENDING,
                                      .host_lease = INT64_C(7587869512345678901),
                                      .created_ms = 1,
                                      .deadline_ms = 2 };
        assert_int_equal(vgpu_fleet_claim_to_json(&c, &text, &err), 0);
        assert_non_null(strstr(text, "\"host_lease\":\"7587869512345678901\""));
        struct vgpu_fleet_claim c2;
        assert_int_equal(vgpu_fleet_claim_from_json(text, &c2, &err), 0);
        assert_true(c2.host_lease == INT64_C(7587869512345678901));
        assert_int_equal(c2.slice_share_percent, 30);
        assert_null(c2.domain);
        assert_int_equal(c2.state, VGPU_FLEET_PENDING);
        vgpu_fleet_claim_free(&c2);
        free(text);

        /* refusals name the member */
        assert_int_equal(
                vgpu_fleet_claim_from_json("{\"claim\":\"c\",\"host\":\"h\",\"gpu\":\"g\",\"kind\":\"vgpu\","
                                           "\"vram_bytes\":1,\"state\":\"ASLEEP\",\"host_lease\":\"1\"}",
                                           &c2, &err),
                -EINVAL);
        assert_non_null(strstr(err.message, "\"state\""));
        assert_int_equal(
                vgpu_fleet_alloc_from_json("{\"host\":\"h\",\"gpu\":\"g\",\"vram_bytes\":-1,\"claims\":[]}",
                                           &(struct vgpu_fleet_alloc){}, &err),
                -EINVAL);
        assert_non_null(strstr(err.message, "\"vram_bytes\""));
        assert_int_equal(vgpu_fleet_host_from_json("[1]", &(struct vgpu_fleet_host){}, &err), -EINVAL);
        assert_int_equal(vgpu_fleet_host_from_json("{\"host\":\"h\",\"lease\":\"12x\"}",
                                                   &(struct vgpu_fleet_host){}, &err),
                         -EINVAL);
        assert_non_null(strstr(err.message, "\"lease\""));

        struct vgpu_fleet_host h = { .host = "h1",
                                     .address = "10.0.0.1",
                                     .lease = INT64_C(9000000000000000001) },
                               h2;
        assert_int_equal(vgpu_fleet_host_to_json(&h, &text, &err), 0);
        assert_int_equal(vgpu_fleet_host_from_json(text, &h2, &err), 0);
        assert_true(h2.lease == INT64_C(9000000000000000001));
        assert_string_equal(h2.address, "10.0.0.1");
        vgpu_fleet_host_free(&h2);
        free(text);

        struct vgpu_fleet_session s = { .session = "s",
                                        .claim_key = "/k",
                                        .idempotency_key = "i",
                                        .created_ms = 3 },
                                  s2;
        assert_int_equal(vgpu_fleet_session_to_json(&s, &text, &err), 0);
        assert_int_equal(vgpu_fleet_session_from_json(text, &s2, &err), 0);
        assert_string_equal(s2.claim_key, "/k");
        vgpu_fleet_session_free(&s2);
        free(text);
        struct vgpu_fleet_cordon co = { .draining = true, .since_ms = 9 }, co2;
        assert_int_equal(vgpu_fleet_cordon_to_json(&co, &text, &err), 0);
        assert_int_equal(vgpu_fleet_cordon_from_json(text, &co2, &err), 0);
        assert_true(co2.draining);
        free(text);
        struct vgpu_fleet_quota q = { .vram_bytes = 5, .sessions = 2 }, q2;
        assert_int_equal(vgpu_fleet_quota_to_json(&q, &text, &err), 0);
        assert_int_equal(vgpu_fleet_quota_from_json(text, &q2, &err), 0);
        assert_int_equal(q2.sessions, 2);
        free(text);
}

/* a small fleet: four T4-like GPUs in vGPU mode, one in slice mode */
static struct vgpu_fleet_type t4[] = { { "nvidia-231", 2 * GiB, 8, 8 },
                                       { "nvidia-232", 4 * GiB, 4, 4 },
                                       { "nvidia-234", 8 * GiB, 2, 2 } };
static struct vgpu_fleet_gpu gpus[5];
static struct vgpu_fleet_alloc allocs[5];
static struct vgpu_fleet_candidate cands[5];
static char *claim_ids[] = { "a", "b", "c", "d" };

static void fleet_reset(void) {
        static char *hosts[] = { "h0", "h1", "h2", "h3", "h4" }, *ids[] = { "g0", "g1", "g2", "g3", "g4" };
        for (int i = 0; i < 5; i++) {
                gpus[i] = (struct vgpu_fleet_gpu){ .host = hosts[i],
                                                   .gpu = ids[i],
                                                   .model = "Tesla T4",
                                                   .vram_total_bytes = 16 * GiB,
                                                   .mode = VGPU_FLEET_MODE_VGPU,
                                                   .types = t4,
                                                   .n_types = 3 };
                allocs[i] = (struct vgpu_fleet_alloc){ .host = hosts[i], .gpu = ids[i] };
                cands[i] = (struct vgpu_fleet_candidate){ .gpu = &gpus[i],
                                                          .alloc = &allocs[i],
                                                          .host_alive = true };
        }
        gpus[4].mode = VGPU_FLEET_MODE_SLICE;
        gpus[4].model = "NVIDIA A10";
        gpus[4].slice_memory_bytes = 20 * GiB;
        gpus[4].vram_total_bytes = 24 * GiB;
        gpus[4].slice_share_percent = 100;
}

static void use(int i, uint64_t bytes, const char *lock, size_t n_claims) {
        allocs[i].vram_bytes = bytes;
        allocs[i].type_lock = (char *) lock;
        allocs[i].claims = claim_ids;
        allocs[i].n_claims = n_claims;
}

static struct vgpu_fleet_placement place(const struct vgpu_fleet_request *req,
                                         const struct vgpu_fleet_policy *pol,
                                         const struct vgpu_fleet_quota *usage) {
        struct vgpu_fleet_placement p;
        struct vgpu_error err = {};
        assert_int_equal(vgpu_fleet_place(cands, 5, req, pol, usage, &p, &err), 0);
        return p;
}

static void test_spread_binpack(void **state) {
        (void) state;
        fleet_reset();
        use(0, 4 * GiB, "nvidia-232", 1);
        use(1, 8 * GiB, "nvidia-232", 2);
        use(2, 12 * GiB, "nvidia-232", 3);
        use(3, 14 * GiB, "nvidia-231", 7);
        struct vgpu_fleet_request req = { .kind = VGPU_FLEET_KIND_VGPU,
                                          .type = "nvidia-232",
                                          .idempotency_key = "k" };
        struct vgpu_fleet_policy spread = { .policy = VGPU_FLEET_SPREAD },
                                 binpack = { .policy = VGPU_FLEET_BINPACK };
        struct vgpu_fleet_placement p = place(&req, &spread, NULL);
        /* g3 is locked to another type, g4 is in slice mode: the type filter counts both */
        assert_int_equal(p.rejected[VGPU_FLEET_FILTER_TYPE], 2);
        assert_int_equal(p.n_fits, 3);
        assert_int_equal(p.fits[0].index, 0); /* lowest utilization after: 8/16 */
        assert_int_equal(p.fits[1].index, 1);
        assert_int_equal(p.fits[2].index, 2);
        assert_int_equal(p.fits[0].vram_bytes, 4 * GiB);
        assert_string_equal(p.fits[0].type, "nvidia-232");
        assert_true(p.fits[0].utilization_after > 0.49 && p.fits[0].utilization_after < 0.51);
        vgpu_fleet_placement_free(&p);
        p = place(&req, &binpack, NULL);
        assert_int_equal(p.fits[0].index, 2); /* fullest after: 16/16 */
        vgpu_fleet_placement_free(&p);

        /* vram: the smallest type that holds it, honouring the lock; slices on slice-mode GPUs */
        req = (struct vgpu_fleet_request){ .kind = VGPU_FLEET_KIND_VRAM, .vram_bytes = 3 * GiB };
        p = place(&req, &spread, NULL);
        assert_int_equal(p.n_fits, 4);
        for (size_t i = 0; i < p.n_fits; i++)
                if (p.fits[i].index == 4) {
                        assert_int_equal(p.fits[i].kind, VGPU_FLEET_KIND_SLICE);
                        assert_int_equal(p.fits[i].vram_bytes, 3 * GiB);
                } else
                        assert_string_equal(p.fits[i].type, "nvidia-232");
        assert_int_equal(p.fits[0].index, 4); /* 3/20 is the lowest utilization */
        vgpu_fleet_placement_free(&p);

        /* with a libvirt domain only vGPUs fit: a slice cannot be attached to a VM */
        req.domain = "vm1";
        p = place(&req, &spread, NULL);
        assert_int_equal(p.n_fits, 3);
        assert_int_equal(p.rejected[VGPU_FLEET_FILTER_TYPE], 2); /* g3 (locked), g4 (slices) */
        for (size_t i = 0; i < p.n_fits; i++)
                assert_int_equal(p.fits[i].kind, VGPU_FLEET_KIND_VGPU);
        vgpu_fleet_placement_free(&p);
}

static void test_type_lock(void **state) {
        (void) state;
        fleet_reset();
        /* every vGPU-mode GPU locked to nvidia-231 but g2, which is empty (its stale lock does not count) */
        use(0, 2 * GiB, "nvidia-231", 1);
        use(1, 2 * GiB, "nvidia-231", 1);
        use(2, 0, "nvidia-231", 0);
        use(3, 2 * GiB, "nvidia-231", 1);
        struct vgpu_fleet_request req = { .kind = VGPU_FLEET_KIND_VGPU, .type = "nvidia-234" };
        struct vgpu_fleet_policy spread = {};
        struct vgpu_fleet_placement p = place(&req, &spread, NULL);
        assert_int_equal(p.n_fits, 1);
        assert_int_equal(p.fits[0].index, 2);
        assert_int_equal(p.rejected[VGPU_FLEET_FILTER_TYPE], 4);
        vgpu_fleet_placement_free(&p);
        /* instances: nvidia-234 has 2 per GPU */
        use(2, 16 * GiB, "nvidia-234", 2);
        allocs[2].vram_bytes = 8 * GiB; /* memory alone would fit a third */
        p = place(&req, &spread, NULL);
        assert_int_equal(p.n_fits, 0);
        assert_int_equal(p.rejected[VGPU_FLEET_FILTER_VRAM], 1);
        vgpu_fleet_placement_free(&p);
        /* an unknown type is the type filter's */
        req.type = "nvidia-999";
        p = place(&req, &spread, NULL);
        assert_int_equal(p.rejected[VGPU_FLEET_FILTER_TYPE], 5);
        vgpu_fleet_placement_free(&p);
}

/* A GPU that runs instances outside the fleet (an admin's) says so in gpus/: its used memory and
 * each type's free instances count, without counting the fleet's own realized claims twice. */
static void test_published_usage(void **state) {
        (void) state;
        fleet_reset();
        /* g0 runs 2 x nvidia-232 of an admin's: 8 GiB used, nvidia-232 has 2 of 4 free, the other
         * types none (equal-size mode) */
        struct vgpu_fleet_type busy[] = { { "nvidia-231", 2 * GiB, 0, 8 },
                                          { "nvidia-232", 4 * GiB, 2, 4 },
                                          { "nvidia-234", 8 * GiB, 0, 2 } };
        gpus[0].types = busy;
        gpus[0].vram_used_bytes = 8 * GiB;
        for (int i = 1; i < 5; i++)
                cands[i].host_alive = false;
        struct vgpu_fleet_policy spread = {};
        struct vgpu_fleet_request req = { .kind = VGPU_FLEET_KIND_VGPU, .type = "nvidia-231" };
        struct vgpu_fleet_placement p = place(&req, &spread, NULL);
        assert_int_equal(p.n_fits, 0); /* no free nvidia-231: the GPU runs another type */
        assert_int_equal(p.rejected[VGPU_FLEET_FILTER_TYPE], 1);
        vgpu_fleet_placement_free(&p);
        req.type = "nvidia-232";
        p = place(&req, &spread, NULL);
        assert_int_equal(p.n_fits, 1);
        /* utilization after counts the admin's 8 GiB: (8 + 4) / 16 */
        assert_true(p.fits[0].utilization_after > 0.74 && p.fits[0].utilization_after < 0.76);
        vgpu_fleet_placement_free(&p);
        /* one fleet claim PENDING (the host's numbers do not show it yet): the max counts 8 GiB
         * and 2 instances taken, so one more fits */
        use(0, 4 * GiB, "nvidia-232", 1);
        p = place(&req, &spread, NULL);
        assert_int_equal(p.n_fits, 1);
        vgpu_fleet_placement_free(&p);
        /* both realized: the host shows 16 GiB used and no free nvidia-232; alloc says 8 GiB of
         * the fleet's, counted once, and the GPU is full */
        busy[1].free_instances = 0;
        gpus[0].vram_used_bytes = 16 * GiB;
        use(0, 8 * GiB, "nvidia-232", 2);
        p = place(&req, &spread, NULL);
        assert_int_equal(p.n_fits, 0);
        assert_int_equal(p.rejected[VGPU_FLEET_FILTER_VRAM], 1);
        vgpu_fleet_placement_free(&p);
        /* memory alone: 14 GiB used by processes outside the fleet leaves no room for 4 GiB */
        fleet_reset();
        for (int i = 1; i < 5; i++)
                cands[i].host_alive = false;
        gpus[0].vram_used_bytes = 14 * GiB;
        p = place(&req, &spread, NULL);
        assert_int_equal(p.n_fits, 0);
        assert_int_equal(p.rejected[VGPU_FLEET_FILTER_VRAM], 1);
        vgpu_fleet_placement_free(&p);
        /* vram requests take the smallest type the host still offers */
        gpus[0].vram_used_bytes = 0;
        gpus[0].types = busy;
        busy[1].free_instances = 2;
        req = (struct vgpu_fleet_request){ .kind = VGPU_FLEET_KIND_VRAM, .vram_bytes = 1 * GiB };
        p = place(&req, &spread, NULL);
        assert_int_equal(p.n_fits, 1);
        assert_string_equal(p.fits[0].type, "nvidia-232");
        vgpu_fleet_placement_free(&p);
        gpus[0].types = t4;
}

/* A slice-mode GPU: slice_capacity leaves out the fleet's own slices (published apart as
 * fleet_memory_bytes/fleet_share_percent), which alloc counts as claims: each slice once. */
static void test_slice_accounting(void **state) {
        (void) state;
        fleet_reset();
        for (int i = 0; i < 4; i++)
                cands[i].host_alive = false;
        /* g4: 20 GiB for slices; 4 fleet slices of 4 GiB and 20 % realized */
        gpus[4].slice_fleet_memory_bytes = 16 * GiB;
        gpus[4].slice_fleet_share_percent = 80;
        use(4, 16 * GiB, NULL, 4);
        allocs[4].share_percent = 80;
        struct vgpu_fleet_policy spread = {};
        struct vgpu_fleet_request req = { .kind = VGPU_FLEET_KIND_SLICE,
                                          .slice_memory_bytes = 4 * GiB,
                                          .slice_share_percent = 20 };
        struct vgpu_fleet_placement p = place(&req, &spread, NULL);
        assert_int_equal(p.n_fits, 1); /* the fifth of five fits: 16 + 4 <= 20, 80 + 20 <= 100 */
        assert_true(p.fits[0].utilization_after > 0.99);
        vgpu_fleet_placement_free(&p);
        /* full: a sixth does not */
        gpus[4].slice_fleet_memory_bytes = 20 * GiB;
        gpus[4].slice_fleet_share_percent = 100;
        use(4, 20 * GiB, NULL, 5);
        allocs[4].share_percent = 100;
        p = place(&req, &spread, NULL);
        assert_int_equal(p.n_fits, 0);
        assert_int_equal(p.rejected[VGPU_FLEET_FILTER_VRAM], 1);
        vgpu_fleet_placement_free(&p);
        /* a fleet slice whose claim is gone (torn down soon) still takes its memory: the larger
         * of alloc and the host's count */
        gpus[4].slice_fleet_memory_bytes = 20 * GiB;
        gpus[4].slice_fleet_share_percent = 100;
        use(4, 16 * GiB, NULL, 4);
        allocs[4].share_percent = 80;
        p = place(&req, &spread, NULL);
        assert_int_equal(p.n_fits, 0);
        vgpu_fleet_placement_free(&p);
        /* an admin's slices shrink the capacity itself (12 of 20 GiB left): 2 fleet slices + 1 */
        gpus[4].slice_memory_bytes = 12 * GiB;
        gpus[4].slice_share_percent = 60;
        gpus[4].slice_fleet_memory_bytes = 8 * GiB;
        gpus[4].slice_fleet_share_percent = 40;
        use(4, 8 * GiB, NULL, 2);
        allocs[4].share_percent = 40;
        p = place(&req, &spread, NULL);
        assert_int_equal(p.n_fits, 1);
        vgpu_fleet_placement_free(&p);
        use(4, 12 * GiB, NULL, 3); /* a third PENDING: alloc counts it before the host shows it */
        allocs[4].share_percent = 60;
        p = place(&req, &spread, NULL);
        assert_int_equal(p.n_fits, 0);
        vgpu_fleet_placement_free(&p);
}

static void test_filters_explain(void **state) {
        (void) state;
        fleet_reset();
        cands[0].host_alive = false;
        cands[1].cordoned = true;
        gpus[2].degraded = true;
        gpus[3].model = "NVIDIA L4";
        struct vgpu_fleet_request req = { .kind = VGPU_FLEET_KIND_VRAM, .vram_bytes = 30 * GiB };
        const char *models[] = { "t4", "A10" };
        req.models = models;
        req.n_models = 2;
        struct vgpu_fleet_policy pol = {};
        struct vgpu_fleet_placement p = place(&req, &pol, NULL);
        assert_int_equal(p.n_fits, 0);
        assert_int_equal(p.rejected[VGPU_FLEET_FILTER_HOST_ALIVE], 1);
        assert_int_equal(p.rejected[VGPU_FLEET_FILTER_CORDONED], 1);
        assert_int_equal(p.rejected[VGPU_FLEET_FILTER_HEALTH], 1);
        assert_int_equal(p.rejected[VGPU_FLEET_FILTER_MODEL], 1);
        assert_int_equal(p.rejected[VGPU_FLEET_FILTER_VRAM], 1); /* A10: 30 GiB > 20 GiB of slices */
        vgpu_fleet_placement_free(&p);

        /* quota: the tenant's usage plus this over the limit */
        fleet_reset();
        req = (struct vgpu_fleet_request){ .kind = VGPU_FLEET_KIND_VGPU,
                                           .type = "nvidia-231",
                                           .tenant = "t" };
        pol.quota_vram_bytes = 5 * GiB;
        struct vgpu_fleet_quota usage = { .vram_bytes = 4 * GiB, .sessions = 2 };
        p = place(&req, &pol, &usage);
        assert_int_equal(p.n_fits, 0);
        assert_int_equal(p.rejected[VGPU_FLEET_FILTER_QUOTA], 4);
        vgpu_fleet_placement_free(&p);
        usage.vram_bytes = 3 * GiB;
        p = place(&req, &pol, &usage);
        assert_int_equal(p.n_fits, 4);
        vgpu_fleet_placement_free(&p);
        pol = (struct vgpu_fleet_policy){ .quota_sessions = 2 };
        p = place(&req, &pol, &usage);
        assert_int_equal(p.rejected[VGPU_FLEET_FILTER_QUOTA], 4);
        vgpu_fleet_placement_free(&p);

        /* a hold keeps memory for its holder only */
        fleet_reset();
        pol = (struct vgpu_fleet_policy){};
        for (int i = 0; i < 4; i++)
                cands[i].host_alive = i == 0;
        use(0, 4 * GiB, "nvidia-232", 1);
        cands[0].held_bytes = 12 * GiB;
        cands[0].held_for = "big";
        req = (struct vgpu_fleet_request){ .kind = VGPU_FLEET_KIND_VGPU,
                                           .type = "nvidia-232",
                                           .idempotency_key = "small" };
        p = place(&req, &pol, NULL);
        assert_int_equal(p.rejected[VGPU_FLEET_FILTER_HELD], 1);
        vgpu_fleet_placement_free(&p);
        req.idempotency_key = "big";
        p = place(&req, &pol, NULL);
        assert_int_equal(p.rejected[VGPU_FLEET_FILTER_HELD], 0);
        assert_int_equal(p.fits[0].index, 0);
        vgpu_fleet_placement_free(&p);

        /* a bad request is refused naming the field */
        struct vgpu_error err = {};
        req = (struct vgpu_fleet_request){ .kind = VGPU_FLEET_KIND_SLICE,
                                           .slice_memory_bytes = GiB,
                                           .slice_share_percent = 101 };
        assert_int_equal(vgpu_fleet_place(cands, 5, &req, &pol, NULL, &p, &err), -EINVAL);
        assert_non_null(strstr(err.message, "share_percent"));
}

/* The fleet of the tie-break tests: g0..g3 alike and empty, g4 out of play; the request they
 * all fit, an nvidia-231 vGPU. */
static struct vgpu_fleet_request tie_fleet_reset(void) {
        fleet_reset();
        gpus[4].mode = VGPU_FLEET_MODE_NONE;
        return (struct vgpu_fleet_request){ .kind = VGPU_FLEET_KIND_VGPU, .type = "nvidia-231" };
}

/* The tie-break draws by idempotency key: req gets "key-<i>" (it keeps pointing at the last one). */
static void set_key(struct vgpu_fleet_request *req, int i) {
        static char key[32];
        snprintf(key, sizeof(key), "key-%d", i);
        req->idempotency_key = key;
}

/* Places req under 200 keys, twice each: every draw ties n_tied GPUs and replays for its key
 * and seed; ret_seen counts how often each GPU came first. */
static void draw_200_keys(struct vgpu_fleet_request *req, const struct vgpu_fleet_policy *pol, size_t n_tied,
                          unsigned ret_seen[5]) {
        memset(ret_seen, 0, 5 * sizeof(ret_seen[0]));
        for (int i = 0; i < 200; i++) {
                set_key(req, i);
                struct vgpu_fleet_placement p = place(req, pol, NULL), again = place(req, pol, NULL);
                assert_int_equal(p.n_tied, n_tied);
                assert_int_equal(p.fits[0].index, again.fits[0].index); /* the same key and seed replay */
                ret_seen[p.fits[0].index]++;
                vgpu_fleet_placement_free(&p);
                vgpu_fleet_placement_free(&again);
        }
}

static void test_ties(void **state) {
        (void) state;
        struct vgpu_fleet_request req = tie_fleet_reset();
        struct vgpu_fleet_policy pol = { .seed = 42 };
        unsigned seen[5];
        draw_200_keys(&req, &pol, 4, seen);
        /* ... and different keys spread over every tied GPU */
        for (int i = 0; i < 4; i++)
                assert_true(seen[i] > 20);
        /* another seed draws differently for some key */
        bool differs = false;
        for (int i = 0; i < 20 && !differs; i++) {
                set_key(&req, i);
                struct vgpu_fleet_policy other = { .seed = 43 };
                struct vgpu_fleet_placement a = place(&req, &pol, NULL), b = place(&req, &other, NULL);
                differs = a.fits[0].index != b.fits[0].index;
                vgpu_fleet_placement_free(&a);
                vgpu_fleet_placement_free(&b);
        }
        assert_true(differs);
        /* a preference breaks the tie; near-equal (same percent) stays tied, more sessions does not */
        const char *prefer[] = { "h2" };
        req.prefer = prefer;
        req.n_prefer = 1;
        struct vgpu_fleet_placement p = place(&req, &pol, NULL);
        assert_int_equal(p.n_tied, 1);
        assert_int_equal(p.fits[0].index, 2);
        vgpu_fleet_placement_free(&p);
        req.n_prefer = 0;
        use(1, 1, NULL, 0); /* one byte more used: the same percent */
        use(3, 0, NULL, 1); /* a session more: after */
        p = place(&req, &pol, NULL);
        assert_int_equal(p.n_tied, 3);
        assert_int_equal(p.fits[3].index, 3);
        vgpu_fleet_placement_free(&p);
}

/* The near-equal band: GPUs within near_percent points of the lowest utilization are tied (the
 * issue's "ties broken at random among near-equal candidates"); outside it the lowest still wins,
 * and within it the preference decides before the draw. */
static void test_near_equal(void **state) {
        (void) state;
        struct vgpu_fleet_request req = tie_fleet_reset();
        use(0, 2 * GiB, "nvidia-231", 1); /* 25 % after a 2 GiB vGPU, the others 12 % */
        use(1, 0, NULL, 0);
        use(2, 0, NULL, 0);
        use(3, 0, NULL, 0);
        struct vgpu_fleet_policy pol = { .seed = 7, .near_percent = 10 };
        unsigned seen[5] = {};
        for (int i = 0; i < 200; i++) {
                set_key(&req, i);
                struct vgpu_fleet_placement p = place(&req, &pol, NULL);
                assert_int_equal(p.n_tied, 3); /* 25 - 12 > 10: g0 is not near-equal */
                assert_int_equal(p.n_fits, 4);
                assert_int_equal(p.fits[3].index, 0); /* the rest after the tied ones */
                seen[p.fits[0].index]++;
                vgpu_fleet_placement_free(&p);
        }
        assert_int_equal(seen[0], 0);
        for (int i = 1; i < 4; i++)
                assert_true(seen[i] > 30);

        /* a band of 15 ties g0 too, sessions no longer decide within it ... */
        pol.near_percent = 15;
        use(3, 0, NULL, 2);
        draw_200_keys(&req, &pol, 4, seen);
        for (int i = 0; i < 4; i++)
                assert_true(seen[i] > 20);
        /* ... but without a band they do: g3's two sessions put it after g1 and g2 */
        pol.near_percent = 0;
        struct vgpu_fleet_placement p = place(&req, &pol, NULL);
        assert_int_equal(p.n_tied, 2);
        assert_true(p.fits[0].index == 1 || p.fits[0].index == 2);
        assert_int_equal(p.fits[2].index, 3);
        assert_int_equal(p.fits[3].index, 0);
        vgpu_fleet_placement_free(&p);

        /* within the band a preference wins, even for the busier GPU */
        const char *prefer[] = { "h0" };
        req.prefer = prefer;
        req.n_prefer = 1;
        pol.near_percent = 15;
        p = place(&req, &pol, NULL);
        assert_int_equal(p.n_tied, 1);
        assert_int_equal(p.fits[0].index, 0);
        vgpu_fleet_placement_free(&p);
        /* outside it utilization wins over the preference */
        pol.near_percent = 10;
        p = place(&req, &pol, NULL);
        assert_int_equal(p.n_tied, 3);
        assert_int_not_equal(p.fits[0].index, 0);
        vgpu_fleet_placement_free(&p);

        /* binpack: the band is around the highest utilization */
        req.n_prefer = 0;
        pol = (struct vgpu_fleet_policy){ .policy = VGPU_FLEET_BINPACK, .near_percent = 10 };
        p = place(&req, &pol, NULL);
        assert_int_equal(p.n_tied, 1);
        assert_int_equal(p.fits[0].index, 0);
        vgpu_fleet_placement_free(&p);
}

/* Shares: brokers placing at once draw from different tied GPUs (each GPU's share is a hash of
 * its id, the same in every broker), so their claims do not race for one GPU; a share without a
 * tied GPU draws from all of them. */
static void test_shares(void **state) {
        (void) state;
        struct vgpu_fleet_request req = tie_fleet_reset();
        bool drawn[2][5] = {};
        for (unsigned s = 0; s < 2; s++)
                for (int i = 0; i < 100; i++) {
                        set_key(&req, i);
                        struct vgpu_fleet_policy pol = { .seed = 1, .share = s, .n_shares = 2 };
                        struct vgpu_fleet_placement p = place(&req, &pol, NULL);
                        assert_int_equal(p.n_tied, 4);
                        assert_int_equal(p.n_fits, 4);
                        drawn[s][p.fits[0].index] = true;
                        /* the fallbacks: the rest of the own share, then the other's */
                        for (size_t j = 1; j < p.n_fits; j++)
                                assert_int_not_equal(p.fits[j].index, p.fits[0].index);
                        vgpu_fleet_placement_free(&p);
                }
        unsigned n = 0;
        for (int g = 0; g < 4; g++) {
                assert_false(drawn[0][g] && drawn[1][g]); /* never the same GPU */
                n += drawn[0][g] + drawn[1][g];
        }
        assert_int_equal(n, 4); /* and every GPU is someone's */
        /* eight shares over four GPUs: some share has none and draws from all */
        unsigned empty_share_draws = 0;
        for (unsigned s = 0; s < 8; s++) {
                bool any[5] = {};
                for (int i = 0; i < 50; i++) {
                        set_key(&req, i);
                        struct vgpu_fleet_policy pol = { .seed = 1, .share = s, .n_shares = 8 };
                        struct vgpu_fleet_placement p = place(&req, &pol, NULL);
                        any[p.fits[0].index] = true;
                        vgpu_fleet_placement_free(&p);
                }
                unsigned k = any[0] + any[1] + any[2] + any[3];
                assert_true(k == 1 || k == 4);
                empty_share_draws += k == 4;
        }
        assert_true(empty_share_draws >= 4);
}

static void test_alloc_apply(void **state) {
        (void) state;
        struct vgpu_error err = {};
        struct vgpu_fleet_claim c1 = { .claim = "c1",
                                       .host = "h",
                                       .gpu = "g",
                                       .kind = VGPU_FLEET_KIND_VGPU,
                                       .type = "nvidia-232",
                                       .vram_bytes = 4 * GiB };
        struct vgpu_fleet_claim c2 = c1;
        c2.claim = "c2";
        struct vgpu_fleet_alloc a1, a2, a3, a4;
        assert_int_equal(vgpu_fleet_alloc_apply(NULL, &c1, +1, &a1, &err), 0);
        assert_string_equal(a1.type_lock, "nvidia-232");
        assert_int_equal(a1.vram_bytes, 4 * GiB);
        assert_int_equal(vgpu_fleet_alloc_apply(&a1, &c1, +1, &a2, &err), -EEXIST);
        assert_int_equal(vgpu_fleet_alloc_apply(&a1, &c2, +1, &a2, &err), 0);
        assert_int_equal(a2.n_claims, 2);
        assert_int_equal(a2.vram_bytes, 8 * GiB);
        assert_int_equal(vgpu_fleet_alloc_apply(&a2, &c1, -1, &a3, &err), 0);
        assert_int_equal(a3.n_claims, 1);
        assert_string_equal(a3.claims[0], "c2");
        assert_int_equal(a3.vram_bytes, 4 * GiB);
        assert_string_equal(a3.type_lock, "nvidia-232");
        /* releasing one not counted changes nothing; the last one takes the lock along */
        assert_int_equal(vgpu_fleet_alloc_apply(&a3, &c1, -1, &a4, &err), 0);
        assert_int_equal(a4.vram_bytes, 4 * GiB);
        vgpu_fleet_alloc_free(&a4);
        assert_int_equal(vgpu_fleet_alloc_apply(&a3, &c2, -1, &a4, &err), 0);
        assert_int_equal(a4.n_claims, 0);
        assert_int_equal(a4.vram_bytes, 0);
        assert_null(a4.type_lock);
        vgpu_fleet_alloc_free(&a1);
        vgpu_fleet_alloc_free(&a2);
        vgpu_fleet_alloc_free(&a3);
        vgpu_fleet_alloc_free(&a4);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_keys),
                cmocka_unit_test(test_codecs),
                cmocka_unit_test(test_spread_binpack),
                cmocka_unit_test(test_type_lock),
                cmocka_unit_test(test_published_usage),
                cmocka_unit_test(test_slice_accounting),
                cmocka_unit_test(test_filters_explain),
                cmocka_unit_test(test_ties),
                cmocka_unit_test(test_near_equal),
                cmocka_unit_test(test_shares),
                cmocka_unit_test(test_alloc_apply),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
