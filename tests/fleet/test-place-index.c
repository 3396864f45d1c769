/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-place-index.c — the broker's placement index (src/vgpu-broker/place-index.c) against
 * vgpu_fleet_place()'s full scan, as a property: random fleets (vGPU, slice and unplaceable
 * GPUs, dead and cordoned hosts, degraded GPUs, type locks, full types, mixed sizes), random
 * requests (a type, a VRAM size with or without a domain, a slice; key, seed, band, shares; more
 * classes than the index keeps), then random changes applied slot by slot: every time the index's
 * tied count and its first fits (slots, in order) equal the full scan's.
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

#include "place-index.h"

#define GiB      (UINT64_C(1) << 30)
#define MAX_GPUS 400
#define N_TYPES  4

static const char *const type_names[N_TYPES] = { "nvidia-230", "nvidia-231", "nvidia-232", "nvidia-233" };
static const unsigned type_gib[N_TYPES] = { 1, 2, 4, 8 };

struct fleet {
        struct vgpu_fleet_candidate c[MAX_GPUS];
        struct vgpu_fleet_gpu gpu[MAX_GPUS];
        struct vgpu_fleet_alloc alloc[MAX_GPUS];
        struct vgpu_fleet_type types[MAX_GPUS][N_TYPES];
        char id[MAX_GPUS][32];
        size_t n;
};

static uint64_t rng;
static unsigned rnd(unsigned n) {
        rng = rng * UINT64_C(6364136223846793005) + UINT64_C(1442695040888963407);
        return (unsigned) ((rng >> 33) % n);
}

/* one GPU at slot i, drawn again (its id stays: a slot's GPU is updated in place) */
static void gpu_draw(struct fleet *f, size_t i) {
        struct vgpu_fleet_gpu *g = &f->gpu[i];
        struct vgpu_fleet_alloc *a = &f->alloc[i];
        static const uint64_t sizes[] = { 16 * GiB, 16 * GiB, 24 * GiB, 48 * GiB, 15 * GiB };
        *g = (struct vgpu_fleet_gpu){ .host = (char *) "h", .gpu = f->id[i], .model = (char *) "Tesla T4" };
        g->vram_total_bytes = sizes[rnd(5)];
        unsigned m = rnd(10);
        g->mode = m < 7 ? VGPU_FLEET_MODE_VGPU : m < 9 ? VGPU_FLEET_MODE_SLICE : VGPU_FLEET_MODE_NONE;
        g->vram_used_bytes = rnd(4) == 0 ? (uint64_t) rnd(20) * GiB : 0;
        g->degraded = rnd(20) == 0;
        g->has_temperature = rnd(2);
        g->temperature_celsius = 30 + (int) rnd(50);
        g->slice_memory_bytes = rnd(2) ? g->vram_total_bytes - (uint64_t) rnd(4) * GiB : 0;
        g->slice_share_percent = rnd(2) ? 100 : 50;
        g->slice_fleet_memory_bytes = (uint64_t) rnd(3) * GiB;
        g->types = f->types[i];
        g->n_types = 0;
        for (size_t t = 0; t < N_TYPES; t++) {
                if (rnd(6) == 0)
                        continue; /* this GPU does not offer it */
                unsigned max = (unsigned) (g->vram_total_bytes / (type_gib[t] * GiB));
                f->types[i][g->n_types++] = (struct vgpu_fleet_type){
                        .name = (char *) type_names[t],
                        .framebuffer_bytes = type_gib[t] * GiB,
                        .max_instances = max,
                        .free_instances = rnd(8) == 0 ? 0 : max - rnd(max + 1) / 2,
                };
        }
        unsigned claims = rnd(4) ? rnd(12) : 0;
        *a = (struct vgpu_fleet_alloc){ .host = (char *) "h", .gpu = f->id[i], .n_claims = claims };
        a->vram_bytes = (uint64_t) rnd(claims * 2 + 1) * GiB;
        a->type_lock = claims && rnd(3) ? (char *) type_names[rnd(N_TYPES)] : NULL;
        a->share_percent = rnd(60);
        f->c[i] = (struct vgpu_fleet_candidate){
                .gpu = g,
                .alloc = rnd(5) ? a : NULL,
                .host_alive = rnd(15) != 0,
                .cordoned = rnd(15) == 0,
        };
}

static void slot_candidate(size_t slot, struct vgpu_fleet_candidate *ret, void *userdata) {
        struct fleet *f = userdata;
        *ret = f->c[slot];
}

/* the index's choice equals the full scan's for many requests; returns how many had fits */
static unsigned compare(struct fleet *f, struct pindex *x) {
        unsigned placed = 0;
        for (int q = 0; q < 12; q++) {
                char key[32];
                snprintf(key, sizeof(key), "key-%u", rnd(1000000));
                static const unsigned vram_gib[] = { 1, 2, 3, 4, 8, 16, 20 }, slice_gib[] = { 1, 2, 4, 8 },
                                      shares[] = { 0, 10, 30, 60 };
                struct vgpu_fleet_request rq = { .idempotency_key = key };
                unsigned kind = rnd(3);
                if (kind == 0) {
                        rq.kind = VGPU_FLEET_KIND_VGPU;
                        rq.type = rnd(10) ? type_names[rnd(N_TYPES)] : "nvidia-999";
                } else if (kind == 1) {
                        rq.kind = VGPU_FLEET_KIND_VRAM;
                        rq.vram_bytes = vram_gib[rnd(7)] * GiB;
                } else {
                        rq.kind = VGPU_FLEET_KIND_SLICE;
                        rq.slice_memory_bytes = slice_gib[rnd(4)] * GiB;
                        rq.slice_share_percent = shares[rnd(4)];
                }
                if (kind != 2 && rnd(4) == 0)
                        rq.domain = "vm1"; /* a domain takes no slice */
                struct vgpu_fleet_policy pol = { .policy = VGPU_FLEET_SPREAD,
                                                 .seed = rnd(5) +
                                                         (uint64_t) rnd(3) * UINT64_C(0x9e3779b97f4a7c15),
                                                 .near_percent = 1 + rnd(25) };
                if (rnd(2)) {
                        pol.n_shares = 1 + rnd(5);
                        pol.share = rnd(pol.n_shares);
                }
                struct vgpu_fleet_placement p = {};
                struct vgpu_error err = {};
                assert_int_equal(vgpu_fleet_place(f->c, f->n, &rq, &pol, NULL, &p, &err), 0);
                size_t slots[16], n = 0, tied = 0, max = 1 + rnd(16);
                int r = pindex_choose(x, f->n, &rq, &pol, max, slots, &n, &tied);
                if (p.n_fits == 0)
                        assert_int_equal(r, -ENOENT);
                else {
                        assert_int_equal(r, 0);
                        assert_int_equal(tied, p.n_tied);
                        assert_int_equal(n, max < p.n_tied ? max : p.n_tied);
                        for (size_t i = 0; i < n; i++)
                                assert_int_equal(slots[i], p.fits[i].index);
                        placed++;
                }
                vgpu_fleet_placement_free(&p);
        }
        return placed;
}

static void test_index_equals_full_scan(void **state) {
        (void) state;
        static struct fleet f;
        unsigned placed = 0, fleets = 300;
        rng = 42;
        for (unsigned k = 0; k < fleets; k++) {
                f.n = 1 + rnd(k % 3 == 0 ? 8 : MAX_GPUS);
                for (size_t i = 0; i < f.n; i++) {
                        snprintf(f.id[i], sizeof(f.id[i]), "GPU-%u-%zu", k, i);
                        gpu_draw(&f, i);
                }
                struct pindex x;
                pindex_init(&x, slot_candidate, &f);
                placed += compare(&f, &x);
                for (int round = 0; round < 6; round++) {
                        /* some GPUs change in place (a claim, a release, inventory): update */
                        for (unsigned j = 0, m = 1 + rnd(10); j < m; j++) {
                                size_t i = rnd((unsigned) f.n);
                                if (rnd(2)) {
                                        f.alloc[i].n_claims = rnd(12);
                                        f.alloc[i].vram_bytes += GiB;
                                        f.c[i].alloc = &f.alloc[i];
                                } else
                                        gpu_draw(&f, i);
                                pindex_update(&x, i);
                        }
                        /* GPUs go (the last one takes the slot, as the cache's array does) and
                         * come (appended), one or two a round, the last one too */
                        for (unsigned j = 0, m = rnd(3); j < m && f.n > 1; j++) {
                                size_t i = rnd(4) ? rnd((unsigned) f.n) : f.n - 1;
                                if (i != f.n - 1) {
                                        f.gpu[i] = f.gpu[f.n - 1];
                                        f.alloc[i] = f.alloc[f.n - 1];
                                        memcpy(f.types[i], f.types[f.n - 1], sizeof(f.types[i]));
                                        memcpy(f.id[i], f.id[f.n - 1], sizeof(f.id[i]));
                                        f.c[i] = f.c[f.n - 1];
                                        f.c[i].gpu = &f.gpu[i];
                                        f.gpu[i].types = f.types[i];
                                        f.gpu[i].gpu = f.id[i];
                                        f.alloc[i].gpu = f.id[i];
                                        if (f.c[i].alloc)
                                                f.c[i].alloc = &f.alloc[i];
                                }
                                f.n--;
                                pindex_remove_slot(&x, i);
                        }
                        for (unsigned j = 0, m = rnd(3); j < m && f.n < MAX_GPUS; j++) {
                                size_t i = f.n++;
                                snprintf(f.id[i], sizeof(f.id[i]), "GPU-%u-new-%d-%u", k, round, j);
                                gpu_draw(&f, i);
                                pindex_add_slot(&x);
                        }
                        if (round == 5 && rnd(2))
                                pindex_invalidate(&x); /* a relist */
                        placed += compare(&f, &x);
                }
                pindex_done(&x);
        }
        /* the property was exercised: most requests found GPUs (the rest: -ENOENT agreed) */
        printf("# %u placements compared over %u fleets\n", placed, fleets);
        assert_true(placed > fleets * 7 * 12 / 3);
}

/* A GPU whose rank the index takes from placement itself: a full type, a type lock, another
 * type running, a dead host each say no fit; otherwise the utilization after, in percent. */
static void test_fit_percent(void **state) {
        (void) state;
        struct vgpu_fleet_type t[2] = { { .name = (char *) "a",
                                          .framebuffer_bytes = 4 * GiB,
                                          .free_instances = 4,
                                          .max_instances = 4 },
                                        { .name = (char *) "b",
                                          .framebuffer_bytes = 8 * GiB,
                                          .free_instances = 2,
                                          .max_instances = 2 } };
        struct vgpu_fleet_gpu g = { .host = (char *) "h",
                                    .gpu = (char *) "g",
                                    .vram_total_bytes = 16 * GiB,
                                    .mode = VGPU_FLEET_MODE_VGPU,
                                    .types = t,
                                    .n_types = 2 };
        struct vgpu_fleet_alloc a = { .vram_bytes = 4 * GiB, .n_claims = 1, .type_lock = (char *) "a" };
        struct vgpu_fleet_candidate c = { .gpu = &g, .host_alive = true };
        struct vgpu_fleet_request ta = { .kind = VGPU_FLEET_KIND_VGPU, .type = "a" },
                                  tb = { .kind = VGPU_FLEET_KIND_VGPU, .type = "b" },
                                  tz = { .kind = VGPU_FLEET_KIND_VGPU, .type = "zz" },
                                  v5 = { .kind = VGPU_FLEET_KIND_VRAM, .vram_bytes = 5 * GiB },
                                  sl = { .kind = VGPU_FLEET_KIND_SLICE, .slice_memory_bytes = GiB };
        assert_int_equal(pindex_fit_percent(&c, &ta), 25);
        assert_int_equal(pindex_fit_percent(&c, &tb), 50);
        assert_int_equal(pindex_fit_percent(&c, &tz), PINDEX_NO_FIT);
        assert_int_equal(pindex_fit_percent(&c, &v5), 50);            /* the smallest type >= 5 GiB: b */
        assert_int_equal(pindex_fit_percent(&c, &sl), PINDEX_NO_FIT); /* vGPU mode */
        c.alloc = &a;
        assert_int_equal(pindex_fit_percent(&c, &ta), 50);
        assert_int_equal(pindex_fit_percent(&c, &tb), PINDEX_NO_FIT); /* locked to a */
        c.host_alive = false;
        assert_int_equal(pindex_fit_percent(&c, &ta), PINDEX_NO_FIT);
}

/* Brokers split the tied GPUs equally: n_shares runs whose sizes differ by at most one, so no
 * broker runs out of GPUs of its own long before the others and draws from theirs (conflicts).
 * Cut by the remainder of each GPU's key, 200 GPUs were 61/54/46/39 among four brokers. The
 * first fits of a placement are its placer's run: over the shares those runs are disjoint and
 * cover the tied, in the full scan and in the index alike. */
static void test_shares_equal(void **state) {
        (void) state;
        static struct fleet f;
        static size_t slots[MAX_GPUS];
        for (int filled = 0; filled < 2; filled++) {
                f.n = 200;
                for (size_t i = 0; i < f.n; i++) {
                        snprintf(f.id[i], sizeof(f.id[i]), "GPU-h%03zu-%04zu", i / 8, i % 8);
                        f.gpu[i] = (struct vgpu_fleet_gpu){ .host = (char *) "h",
                                                            .gpu = f.id[i],
                                                            .model = (char *) "Tesla T4",
                                                            .vram_total_bytes = 16 * GiB,
                                                            .mode = VGPU_FLEET_MODE_VGPU,
                                                            .types = f.types[i],
                                                            .n_types = 1 };
                        f.types[i][0] = (struct vgpu_fleet_type){ .name = (char *) "nvidia-230",
                                                                  .framebuffer_bytes = GiB,
                                                                  .max_instances = 16,
                                                                  .free_instances = 16 };
                        /* the second fleet: half the GPUs two claims up, out of a 10-point band */
                        unsigned claims = filled && i % 2 ? 2 : 0;
                        f.alloc[i] = (struct vgpu_fleet_alloc){ .host = (char *) "h",
                                                                .gpu = f.id[i],
                                                                .vram_bytes = claims * GiB,
                                                                .n_claims = claims };
                        f.c[i] = (struct vgpu_fleet_candidate){ .gpu = &f.gpu[i],
                                                                .alloc = &f.alloc[i],
                                                                .host_alive = true };
                }
                size_t tied = filled ? 100 : 200;
                struct pindex x;
                pindex_init(&x, slot_candidate, &f);
                for (unsigned n_shares = 2; n_shares <= 7; n_shares++) {
                        unsigned owner[MAX_GPUS] = {}; /* 1 + the share whose run holds the GPU */
                        for (unsigned s = 0; s < n_shares; s++) {
                                size_t run = ((s + 1) * tied + n_shares - 1) / n_shares -
                                             (s * tied + n_shares - 1) / n_shares,
                                       n = 0, t = 0;
                                struct vgpu_fleet_request rq = { .kind = VGPU_FLEET_KIND_VGPU,
                                                                 .type = "nvidia-230",
                                                                 .idempotency_key = "k" };
                                struct vgpu_fleet_policy pol = { .policy = VGPU_FLEET_SPREAD,
                                                                 .near_percent = 10,
                                                                 .share = s,
                                                                 .n_shares = n_shares };
                                struct vgpu_fleet_placement p = {};
                                struct vgpu_error err = {};
                                assert_int_equal(vgpu_fleet_place(f.c, f.n, &rq, &pol, NULL, &p, &err), 0);
                                assert_int_equal(p.n_tied, tied);
                                assert_int_equal(pindex_choose(&x, f.n, &rq, &pol, MAX_GPUS, slots, &n, &t),
                                                 0);
                                assert_int_equal(n, tied);
                                for (size_t i = 0; i < run; i++) {
                                        assert_int_equal(slots[i], p.fits[i].index);
                                        assert_int_equal(owner[slots[i]], 0);
                                        owner[slots[i]] = s + 1;
                                }
                                vgpu_fleet_placement_free(&p);
                        }
                        size_t owned = 0;
                        for (size_t i = 0; i < f.n; i++)
                                owned += owner[i] != 0;
                        assert_int_equal(owned, tied);
                }
                pindex_done(&x);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_fit_percent),
                cmocka_unit_test(test_index_equals_full_scan),
                cmocka_unit_test(test_shares_equal),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
