/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * metrics.c — the broker's /metrics (Prometheus text format 0.0.4): what it placed, refused and
 * lost races on, the placement latency, its cache's size and revision, the janitor's work.
 */
#include <inttypes.h>
#include <stdio.h>

#include "broker.h"

/* placement latency buckets, in seconds (hist[] has one more: +Inf) */
static const double bounds[] = { 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5 };

void broker_observe_latency(struct broker *b, double s) {
        pthread_mutex_lock(&b->hist_lock);
        size_t i = 0;
        while (i < sizeof(bounds) / sizeof(bounds[0]) && s > bounds[i])
                i++;
        b->hist[i]++;
        b->hist_sum += s;
        b->hist_count++;
        pthread_mutex_unlock(&b->hist_lock);
}

static void counter(FILE *f, const char *name, const char *help, uint64_t v) {
        fprintf(f, "# HELP %s %s\n# TYPE %s counter\n%s %" PRIu64 "\n", name, help, name, name, v);
}

static void gauge(FILE *f, const char *name, const char *help, double v) {
        fprintf(f, "# HELP %s %s\n# TYPE %s gauge\n%s %.17g\n", name, help, name, name, v);
}

void metrics_write(struct broker *b, FILE *f) {
        fprintf(f, "# HELP vgpu_broker_requests_total Placement requests by outcome.\n"
                   "# TYPE vgpu_broker_requests_total counter\n");
        struct {
                const char *outcome;
                atomic_uint_least64_t *v;
        } out[] = {
                { "placed", &b->placed },
                { "replayed", &b->replayed },
                { "no_capacity", &b->no_capacity },
                { "retries_exhausted", &b->exhausted },
                { "bad_request", &b->bad_requests },
        };
        for (size_t i = 0; i < sizeof(out) / sizeof(out[0]); i++)
                fprintf(f, "vgpu_broker_requests_total{outcome=\"%s\"} %" PRIu64 "\n", out[i].outcome,
                        (uint64_t) atomic_load(out[i].v));
        counter(f, "vgpu_broker_conflicts_total", "Claim transactions lost to another claim on the same GPU.",
                atomic_load(&b->conflicts));
        counter(f, "vgpu_broker_placements_indexed_total",
                "Placements drawn from the placement index instead of a scan of every GPU.",
                atomic_load(&b->indexed));
        counter(f, "vgpu_broker_index_mismatches_total",
                "Index choices the full scan disagreed with (checked with VGPU_BROKER_CHECK_INDEX=1).",
                atomic_load(&b->index_mismatches));
        counter(f, "vgpu_broker_host_gone_total",
                "Claim transactions refused because the GPU's host was gone.", atomic_load(&b->host_gone));
        counter(f, "vgpu_broker_etcd_errors_total", "Requests that could not reach etcd.",
                atomic_load(&b->etcd_errors));
        counter(f, "vgpu_broker_released_total", "Sessions released through this broker.",
                atomic_load(&b->released));
        counter(f, "vgpu_broker_expired_total", "PENDING claims this broker expired as janitor.",
                atomic_load(&b->expired));
        counter(f, "vgpu_broker_compactions_total",
                "Compactions of etcd's history this broker made as janitor.", atomic_load(&b->compactions));
        counter(f, "vgpu_broker_lost_total", "Claims this broker marked LOST as janitor.",
                atomic_load(&b->lost));
        counter(f, "vgpu_broker_holds_total", "GPUs this broker held for a refused large request.",
                atomic_load(&b->holds));
        counter(f, "vgpu_broker_cache_relists_total", "Full listings of the prefix (start and compactions).",
                atomic_load(&b->cache.relists));

        pthread_mutex_lock(&b->hist_lock);
        fprintf(f, "# HELP vgpu_broker_placement_seconds Time from request to claim written.\n"
                   "# TYPE vgpu_broker_placement_seconds histogram\n");
        uint64_t cum = 0;
        for (size_t i = 0; i < sizeof(bounds) / sizeof(bounds[0]); i++) {
                cum += b->hist[i];
                fprintf(f, "vgpu_broker_placement_seconds_bucket{le=\"%g\"} %" PRIu64 "\n", bounds[i], cum);
        }
        cum += b->hist[sizeof(bounds) / sizeof(bounds[0])];
        fprintf(f, "vgpu_broker_placement_seconds_bucket{le=\"+Inf\"} %" PRIu64 "\n", cum);
        fprintf(f,
                "vgpu_broker_placement_seconds_sum %.9f\nvgpu_broker_placement_seconds_count %" PRIu64 "\n",
                b->hist_sum, b->hist_count);
        pthread_mutex_unlock(&b->hist_lock);

        size_t hosts = 0, gpus = 0, claims = 0;
        int64_t rev;
        pthread_rwlock_rdlock(&b->cache.lock);
        for (struct entry *e = NULL; (e = cache_next(&b->cache, KIND_HOST, e));)
                hosts++;
        for (struct entry *e = NULL; (e = cache_next(&b->cache, KIND_GPU, e));)
                gpus++;
        for (struct entry *e = NULL; (e = cache_next(&b->cache, KIND_CLAIM, e));)
                claims++;
        rev = b->cache.revision;
        pthread_rwlock_unlock(&b->cache.lock);
        gauge(f, "vgpu_broker_ready", "1 once the cache is synced with etcd.", atomic_load(&b->cache.ready));
        gauge(f, "vgpu_broker_janitor_leader", "1 while this broker is the elected janitor.",
              atomic_load(&b->leader));
        gauge(f, "vgpu_broker_cache_revision", "The etcd revision the cache has applied.", (double) rev);
        gauge(f, "vgpu_broker_hosts", "Hosts alive (lease-bound key present).", (double) hosts);
        gauge(f, "vgpu_broker_gpus", "GPUs offered by live hosts.", (double) gpus);
        gauge(f, "vgpu_broker_claims", "Claims in etcd, every state.", (double) claims);
}
