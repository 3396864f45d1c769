/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fleet.h — vgpud as a member of a fleet in etcd ([fleet] in vgpud.conf; doc/fleet.md).
 *
 * Two threads of their own, each with its own etcd client (the client is not thread-safe): the
 * lease keeper (grant, keepalive every TTL/3, grant again when the lease is gone) and the worker
 * (publish hosts/<host> and gpus/<host>/<gpu> bound to the lease, watch claims/<host>/ and
 * realize, report, tear down and reconcile claims through libvgpu's public calls). The event
 * loop's thread hands the inventory of each poll over under a mutex and never waits on etcd.
 */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "vgpu/etcd.h"
#include "vgpu/fleet.h"
#include "vgpu/host.h"

struct vgpud;

/* One GPU as the worker needs it: its fleet id, BDF and published value. */
struct fleet_gpu {
        char *id, *bdf;
        char *json;      /* gpus/<host>/<id> value, updated_ms as of its last change */
        char *signature; /* the same with updated_ms 0: what "changed" compares */
};

struct fleet {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        pthread_t keeper, worker;
        bool keeper_started, worker_started;

        /* configuration (copies: a reload must not pull strings from under the threads) */
        char **endpoints;
        char *ca, *cert, *key, *user, *password, *address;
        char host[129];
        char prefix[VGPU_FLEET_PREFIX_MAX];
        int ttl_s;
        int64_t started_ms;
        char boot_id[64];

        /* under lock */
        int64_t lease;          /* 0: none (being granted) */
        uint64_t lease_gen;     /* +1 per grant */
        struct fleet_gpu *gpus; /* the latest inventory from the event loop */
        size_t n_gpus;
        uint64_t inventory_gen;
        volatile int stopping;
        int wake_fd; /* eventfd: the worker changed the host, the event loop polls soon */
        struct sd_event_source *wake_source;
        volatile int interrupt_watch; /* the worker's watch ends within 200 ms */
        int64_t watch_since_ms;       /* when the worker's watch began, 0 when none runs */
        bool watch_recycle;           /* the keeper ended it for its age: resume on the next member */
        int64_t retry_at_ms;          /* a failed teardown is due then: the keeper ends the watch */
        bool retry_due;               /* ... and says so: the worker lists and reconciles again */
};

/* fleet.c: start the threads when [fleet] has endpoints (0 when it has none); stop them. */
int fleet_start(struct vgpud *d);
void fleet_stop(struct vgpud *d);
/* After each poll (event loop's thread): the inventory, handed over when it changed. */
void fleet_update_inventory(struct vgpud *d);

/* fleet-claims.c (worker thread) */

/* A claim whose instance could not be torn down (busy, a remove error): tried again after a
 * backoff that doubles with each try, its capacity kept meanwhile. */
struct fleet_retry {
        char claim[129]; /* fleet names have at most 128 characters */
        unsigned tries;
        int64_t next_ms; /* CLOCK_MONOTONIC */
};

/* A VF configured for a claim that does not name it yet (fleet-vfs.c). */
struct fleet_vf {
        char claim[129];
        char bdf[VGPU_BDF_MAX];
};

struct fleet_worker {
        struct fleet *f;
        bool changed_host; /* made or removed an instance since the last wake-up of the event loop */
        struct vgpu_etcd *etcd;
        int64_t lease;          /* the lease its claims must carry */
        struct fleet_gpu *gpus; /* a copy of the inventory: id -> BDF */
        size_t n_gpus;
        char claims_prefix[VGPU_FLEET_KEY_MAX];
        bool relist; /* an etcd write about a claim failed: list the claims again (the watch ends) */
        struct fleet_retry *retries; /* failed teardowns */
        size_t n_retries;
        struct fleet_vf *vfs; /* VFs whose claim's BOUND report was not written yet */
        size_t n_vfs;
};
/* A claim put or deleted (watch or listing); prev: the value before (deletes), may be NULL. */
void fleet_claim_event(struct fleet_worker *w, const struct vgpu_etcd_kv *kv, bool deleted,
                       const struct vgpu_etcd_kv *prev);
/* After a new lease: rebind the claims whose instance runs, release the rest, per GPU in one
 * txn. 0, or -EAGAIN when something changed meanwhile (list again and call again). */
int fleet_reconcile(struct fleet_worker *w, const struct vgpu_etcd_range *claims);
/* fleet-orphans.c: before the sweep removes the instance name ("UUID", or a VF's "BDF"), detach
 * it from every libvirt domain holding it. 0 when none holds it now (or this host has no
 * libvirt); -errno when libvirt cannot be asked or a domain still holds it: keep it. */
int fleet_orphan_detach(const char *name, struct vgpu_error *err);
/* After each listing: remove the fleet's instances (names vgpu_fleet_name_is_claim_instance()
 * knows) that no listed claim names; never an admin's. The number removed, or -errno. */
int fleet_sweep(struct fleet_worker *w, const struct vgpu_etcd_range *claims);
/* fleet-vfs.c: the VFs configured for claims that do not name them yet, kept in
 * /run/vgpuctl/fleet-vfs across restarts. */
int fleet_vfs_load(struct fleet_worker *w);
const char *fleet_vf_of(const struct fleet_worker *w, const char *claim);
int fleet_vf_remember(struct fleet_worker *w, const char *claim, const char *bdf);
void fleet_vf_forget(struct fleet_worker *w, const char *claim);
/* Milliseconds on CLOCK_MONOTONIC (the retries' clock). */
int64_t fleet_now_ms(void);
