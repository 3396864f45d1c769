/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fleet.h — the fleet's shared state in etcd (doc/fleet.md): the key layout, the JSON value of
 * each key as a struct (encode/decode), placement (filters and score, pure functions), and the
 * two transactions that change capacity: the claim and the release.
 *
 * Every key lives under a prefix "/vgpuctl/v1/<cluster>/". Values are JSON objects with the
 * members doc/fleet.md lists; lease ids are decimal strings (they exceed 2^53). Decoders take
 * what a newer writer may add (unknown members are ignored) and refuse what is malformed,
 * naming the member.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgpu/error.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vgpu_etcd;

#define VGPU_FLEET_PREFIX_MAX 256
#define VGPU_FLEET_KEY_MAX    512

/* "/vgpuctl/v1/<cluster>/" into buf; -EINVAL for a cluster name that is not [A-Za-z0-9._-]+. */
int vgpu_fleet_prefix(const char *cluster, char *buf, size_t size);
/* A host, GPU, tenant or session name usable as one key component: [A-Za-z0-9._:-]+, at most
 * 128 characters (no '/', so a prefix range never reaches another's keys). */
bool vgpu_fleet_name_is_valid(const char *name);
/* prefix + each component joined by '/': vgpu_fleet_key(buf, n, prefix, "claims", host, id, NULL) */
int vgpu_fleet_key(char *buf, size_t size, const char *prefix, ...);

/* ---- the values ---- */

struct vgpu_fleet_host {
        char *host, *address, *boot_id, *version;
        int64_t lease; /* the lease its keys are bound to */
        int64_t started_ms;
};

enum vgpu_fleet_mode { VGPU_FLEET_MODE_NONE, VGPU_FLEET_MODE_VGPU, VGPU_FLEET_MODE_SLICE };

struct vgpu_fleet_type {
        char *name;
        uint64_t framebuffer_bytes;
        unsigned free_instances, max_instances;
};

struct vgpu_fleet_gpu {
        char *host, *gpu, *pci_address, *model;
        uint64_t vram_total_bytes, vram_used_bytes;
        enum vgpu_fleet_mode mode;
        struct vgpu_fleet_type *types;
        size_t n_types;
        uint64_t slice_memory_bytes; /* slice_capacity: the GPU less the slices made outside the fleet */
        unsigned slice_share_percent;
        /* slice_capacity's fleet_memory_bytes, fleet_share_percent: the fleet's slices that exist on
         * the host (claims realized), already counted in alloc/<gpu>: placement takes the larger */
        uint64_t slice_fleet_memory_bytes;
        unsigned slice_fleet_share_percent;
        bool degraded; /* health "degraded" */
        char **health_reasons;
        size_t n_health_reasons;
        bool has_temperature;
        int temperature_celsius;
        int64_t updated_ms;
};

/* alloc/<gpu>: what is claimed on one GPU; the compare-and-swap target of every claim. */
struct vgpu_fleet_alloc {
        char *host, *gpu;
        uint64_t vram_bytes;
        unsigned share_percent;
        char *type_lock; /* the vGPU type every claim on the GPU has, NULL when none */
        char **claims;   /* claim ids */
        size_t n_claims;
};

enum vgpu_fleet_kind {
        VGPU_FLEET_KIND_VGPU,
        VGPU_FLEET_KIND_SLICE,
        VGPU_FLEET_KIND_VRAM,
        _VGPU_FLEET_KIND_MAX
};

enum vgpu_fleet_state {
        VGPU_FLEET_PENDING,
        VGPU_FLEET_BOUND,
        VGPU_FLEET_FAILED,
        VGPU_FLEET_RELEASING,
        VGPU_FLEET_LOST,
        _VGPU_FLEET_STATE_MAX
};

struct vgpu_fleet_claim {
        char *claim, *session, *user, *tenant, *host, *gpu;
        enum vgpu_fleet_kind kind;
        char *type; /* the vGPU type; NULL for a slice */
        uint64_t vram_bytes;
        bool has_slice;
        uint64_t slice_memory_bytes;
        unsigned slice_share_percent;
        char *domain;
        enum vgpu_fleet_state state;
        int64_t host_lease; /* the host's lease when placed: vgpud realizes only its own (fencing) */
        int64_t created_ms, deadline_ms;
        char *instance, *error;
};

struct vgpu_fleet_session {
        char *session, *claim_key, *user, *tenant, *idempotency_key;
        int64_t created_ms;
};

struct vgpu_fleet_cordon {
        bool draining;
        int64_t since_ms;
};

/* quota/<tenant>: the tenant's usage (the limits are the broker's configuration) */
struct vgpu_fleet_quota {
        uint64_t vram_bytes;
        unsigned sessions;
};

const char *vgpu_fleet_kind_to_string(enum vgpu_fleet_kind k);
int vgpu_fleet_kind_from_string(const char *s); /* the kind or -EINVAL */
const char *vgpu_fleet_state_to_string(enum vgpu_fleet_state s);
int vgpu_fleet_state_from_string(const char *s);
const char *vgpu_fleet_mode_to_string(enum vgpu_fleet_mode m);

/* Encoders: a NUL-terminated JSON text in *ret (free()), -ENOMEM. Decoders: 0, or -EINVAL with
 * the member named in err; *ret is written only on success; *_free() frees the members. */
int vgpu_fleet_host_to_json(const struct vgpu_fleet_host *h, char **ret, struct vgpu_error *err);
int vgpu_fleet_host_from_json(const char *text, struct vgpu_fleet_host *ret, struct vgpu_error *err);
void vgpu_fleet_host_free(struct vgpu_fleet_host *h);
int vgpu_fleet_gpu_to_json(const struct vgpu_fleet_gpu *g, char **ret, struct vgpu_error *err);
int vgpu_fleet_gpu_from_json(const char *text, struct vgpu_fleet_gpu *ret, struct vgpu_error *err);
void vgpu_fleet_gpu_free(struct vgpu_fleet_gpu *g);
int vgpu_fleet_alloc_to_json(const struct vgpu_fleet_alloc *a, char **ret, struct vgpu_error *err);
int vgpu_fleet_alloc_from_json(const char *text, struct vgpu_fleet_alloc *ret, struct vgpu_error *err);
void vgpu_fleet_alloc_free(struct vgpu_fleet_alloc *a);
int vgpu_fleet_claim_to_json(const struct vgpu_fleet_claim *c, char **ret, struct vgpu_error *err);
int vgpu_fleet_claim_from_json(const char *text, struct vgpu_fleet_claim *ret, struct vgpu_error *err);
void vgpu_fleet_claim_free(struct vgpu_fleet_claim *c);
int vgpu_fleet_session_to_json(const struct vgpu_fleet_session *s, char **ret, struct vgpu_error *err);
int vgpu_fleet_session_from_json(const char *text, struct vgpu_fleet_session *ret, struct vgpu_error *err);
void vgpu_fleet_session_free(struct vgpu_fleet_session *s);
int vgpu_fleet_cordon_to_json(const struct vgpu_fleet_cordon *c, char **ret, struct vgpu_error *err);
int vgpu_fleet_cordon_from_json(const char *text, struct vgpu_fleet_cordon *ret, struct vgpu_error *err);
int vgpu_fleet_quota_to_json(const struct vgpu_fleet_quota *q, char **ret, struct vgpu_error *err);
int vgpu_fleet_quota_from_json(const char *text, struct vgpu_fleet_quota *ret, struct vgpu_error *err);

/* The session id of an idempotency key: the first 32 hex digits of its SHA-256, so a retried
 * request names the same sessions/<id> key. buf: at least 33 bytes. */
void vgpu_fleet_session_id(const char *idempotency_key, char buf[33]);

/* ---- placement (pure: the caller gives its view of the fleet) ---- */

enum vgpu_fleet_filter {
        VGPU_FLEET_FILTER_HOST_ALIVE, /* the host's lease-bound key is gone */
        VGPU_FLEET_FILTER_CORDONED,
        VGPU_FLEET_FILTER_HEALTH,
        VGPU_FLEET_FILTER_MODEL,
        VGPU_FLEET_FILTER_TYPE, /* no such type, another type locks the GPU, wrong mode */
        VGPU_FLEET_FILTER_VRAM, /* not enough free memory (or instances, or share) */
        VGPU_FLEET_FILTER_HELD, /* memory held for an older, larger request */
        VGPU_FLEET_FILTER_QUOTA,
        _VGPU_FLEET_FILTER_MAX
};
const char *vgpu_fleet_filter_to_string(enum vgpu_fleet_filter f);

struct vgpu_fleet_request {
        const char *user, *tenant, *idempotency_key, *domain;
        enum vgpu_fleet_kind kind;
        const char *type;             /* kind vgpu */
        uint64_t vram_bytes;          /* kind vram */
        uint64_t slice_memory_bytes;  /* kind slice */
        unsigned slice_share_percent; /* kind slice */
        const char *const *models;    /* hard: the GPU's model is one of these (none: any) */
        size_t n_models;
        const char *const *prefer; /* soft, ordered: host names, GPU ids or models */
        size_t n_prefer;
};

/* One GPU as the caller sees it. */
struct vgpu_fleet_candidate {
        const struct vgpu_fleet_gpu *gpu;
        const struct vgpu_fleet_alloc *alloc; /* NULL: nothing claimed */
        bool host_alive, cordoned;
        /* a hold on this GPU for another request (memory kept free for it), 0 when none */
        uint64_t held_bytes;
        const char *held_for; /* the holder's idempotency key */
};

enum vgpu_fleet_policy_kind { VGPU_FLEET_SPREAD, VGPU_FLEET_BINPACK };

struct vgpu_fleet_policy {
        enum vgpu_fleet_policy_kind policy;
        uint64_t seed;             /* mixed with the idempotency key: the tie-break replays */
        uint64_t quota_vram_bytes; /* per tenant, 0 = no limit */
        unsigned quota_sessions;   /* per tenant, 0 = no limit */
        /* near-equal: candidates whose utilization after placement is within this many percentage
         * points of the lowest (and that match the best preference among those) are tied and one
         * is drawn; 0 = only candidates equal in every score key are tied */
        unsigned near_percent;
        /* placers deciding at once (brokers): with n_shares > 1 the tied candidates, ordered
         * by a hash of the GPU id, are cut into n_shares equal runs and the draw is among this
         * placer's run while it has any (lib/fleet/shares.h), so concurrent brokers pick
         * different GPUs instead of racing for one */
        unsigned share, n_shares;
};

/* What placing the request on one candidate takes. */
struct vgpu_fleet_fit {
        size_t index;              /* into the candidates */
        enum vgpu_fleet_kind kind; /* vgpu or slice: what the host creates */
        const char *type;          /* the vGPU type (points into the candidate's GPU), NULL for a slice */
        uint64_t vram_bytes;       /* charged to alloc */
        unsigned share_percent;
        double utilization_after; /* (claimed + this) / total */
        unsigned preference;      /* index of the first prefer entry matched, n_prefer when none */
        unsigned sessions;        /* claims on the GPU before */
};

struct vgpu_fleet_placement {
        struct vgpu_fleet_fit *fits; /* every candidate passing the filters, best first */
        size_t n_fits;
        size_t n_tied;                             /* how many were equal with the best before the draw */
        unsigned rejected[_VGPU_FLEET_FILTER_MAX]; /* per filter: candidates it rejected (first one failed) */
};
void vgpu_fleet_placement_free(struct vgpu_fleet_placement *p);

/* Filter and rank. Returns 0 with p->n_fits possibly 0 (then rejected[] says why), -EINVAL for
 * a request that cannot be valid, -ENOMEM. usage: the tenant's current usage (NULL: none). */
int vgpu_fleet_place(const struct vgpu_fleet_candidate *c, size_t n, const struct vgpu_fleet_request *req,
                     const struct vgpu_fleet_policy *policy, const struct vgpu_fleet_quota *usage,
                     struct vgpu_fleet_placement *ret, struct vgpu_error *err);

/* alloc after adding (sign +1) or removing (-1) a claim; NULL before = empty. */
int vgpu_fleet_alloc_apply(const struct vgpu_fleet_alloc *before, const struct vgpu_fleet_claim *claim,
                           int sign, struct vgpu_fleet_alloc *ret, struct vgpu_error *err);

/* ---- the transactions ---- */

enum vgpu_fleet_claim_outcome {
        VGPU_FLEET_CLAIMED,        /* the claim, alloc and session were written */
        VGPU_FLEET_SESSION_EXISTS, /* the session existed: *ret_session holds it (a retried request) */
        VGPU_FLEET_ALLOC_CHANGED,  /* another claim came first: *ret_alloc is fresh, try again */
        VGPU_FLEET_HOST_GONE,      /* the GPU's inventory key is gone (host dead) */
        VGPU_FLEET_HOST_CHANGED,   /* it is another incarnation (the host rejoined, a new lease): gpu_kv */
        VGPU_FLEET_QUOTA_CHANGED,  /* the tenant's usage moved: *ret_quota is fresh */
};

struct vgpu_fleet_claim_txn {
        const char *prefix;
        const struct vgpu_fleet_claim *claim; /* state PENDING, host_lease set */
        const struct vgpu_fleet_alloc *alloc; /* the allocation after the claim */
        int64_t alloc_mod_revision;           /* as seen; 0: the key must not exist */
        /* the create_revision of gpus/<host>/<gpu> as seen: the claim's host_lease is that key's
         * lease, so a key made again under a new lease must fail the claim; 0: only VERSION > 0 */
        int64_t gpu_create_revision;
        const struct vgpu_fleet_session *session;
        const struct vgpu_fleet_quota *quota; /* the tenant's usage after the claim; NULL: not kept */
        int64_t quota_mod_revision;
};

struct vgpu_fleet_claim_result {
        enum vgpu_fleet_claim_outcome outcome;
        int64_t revision;
        struct vgpu_fleet_alloc alloc; /* fresh, on ALLOC_CHANGED (empty when the key is gone) */
        int64_t alloc_mod_revision;
        struct vgpu_fleet_session session; /* on SESSION_EXISTS */
        struct vgpu_fleet_quota quota;
        int64_t quota_mod_revision;
        /* on HOST_CHANGED: the GPU's key now (value NUL-terminated, revisions, lease) */
        char *gpu_value;
        int64_t gpu_mod_revision, gpu_create_revision, gpu_lease;
};
void vgpu_fleet_claim_result_free(struct vgpu_fleet_claim_result *r);

/* One try of the claim txn (the caller re-places and retries, bounded). */
int vgpu_fleet_claim_txn(struct vgpu_etcd *e, const struct vgpu_fleet_claim_txn *t,
                         struct vgpu_fleet_claim_result *ret, struct vgpu_error *err);

enum vgpu_fleet_release_outcome {
        VGPU_FLEET_RELEASE_DONE,   /* claim, session gone, alloc decremented */
        VGPU_FLEET_RELEASE_MARKED, /* BOUND or LOST: marked RELEASING; the host tears down, finishes */
        VGPU_FLEET_RELEASE_ABSENT, /* no such session or claim: released before (idempotent) */
};

/* Release the session: a claim the host has not realized (PENDING, FAILED) goes at once, a
 * realized one (BOUND, LOST) is marked RELEASING. finish: delete whatever the state (vgpud
 * after tearing down, the janitor for expired PENDING claims). Retries conflicts (bounded). */
int vgpu_fleet_release(struct vgpu_etcd *e, const char *prefix, const char *session, bool finish,
                       enum vgpu_fleet_release_outcome *ret, struct vgpu_error *err);
/* The same for a claim key (claims/<host>/<id>); the session is deleted with it. expect_state:
 * only if the claim is in that state (-1: any); -ESTALE when it is not. */
int vgpu_fleet_release_claim(struct vgpu_etcd *e, const char *prefix, const char *claim_key, bool finish,
                             int expect_state, enum vgpu_fleet_release_outcome *ret, struct vgpu_error *err);

#ifdef __cplusplus
}
#endif
