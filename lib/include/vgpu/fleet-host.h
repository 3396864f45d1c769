/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fleet-host.h — the host's side of the fleet's claims (vgpud): the instance each claim gets,
 * the report of BOUND/FAILED by compare-and-swap, and the reconcile after
 * the host's lease was lost and granted again. Each is one etcd txn (doc/fleet.md).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgpu/error.h"
#include "vgpu/fleet.h"

#ifdef __cplusplus
extern "C" {
#endif

struct vgpu_etcd;

/* The instance a claim gets, derived from its id so realizing it twice finds the same one:
 * an mdev UUID (RFC 4122 layout, from SHA-256 of the id; its node field a check of the rest) and
 * a slice name ("fleet-" + 16 hex from the id + 8 hex checking them). */
void vgpu_fleet_claim_instance_uuid(const char *claim, char buf[37]);
void vgpu_fleet_claim_slice_name(const char *claim, char buf[31]);
/* Whether name (an mdev UUID or a slice name) is one the two above make: part of the name checks
 * the rest, so the host can sweep the fleet's instances no claim names and never an admin's. */
bool vgpu_fleet_name_is_claim_instance(const char *name);

/* Write c at key if the claim is still at mod_revision and <prefix>hosts/<c->host> is still bound
 * to lease (the host's current lease: fencing): 1 written (*ret_revision, may be NULL, its new
 * mod_revision), 0 it changed or went meanwhile, or the host's lease is not lease any more. */
int vgpu_fleet_claim_report(struct vgpu_etcd *e, const char *prefix, const char *key, int64_t mod_revision,
                            int64_t lease, const struct vgpu_fleet_claim *c, int64_t *ret_revision,
                            struct vgpu_error *err);

enum vgpu_fleet_reconcile_action {
        VGPU_FLEET_RECONCILE_KEEP,    /* as it is (counted in alloc) */
        VGPU_FLEET_RECONCILE_REBIND,  /* its instance runs: BOUND with the new lease */
        VGPU_FLEET_RECONCILE_RELEASE, /* delete it and its session */
};

struct vgpu_fleet_reconcile_item {
        const char *key; /* claims/<host>/<id> */
        int64_t mod_revision;
        const struct vgpu_fleet_claim *claim;
        enum vgpu_fleet_reconcile_action action;
};

/* One GPU after the host got lease: every claim on it (items), in one txn that compares each
 * claim's and alloc/<gpu>'s mod_revision: REBIND ones become BOUND with host_lease = lease,
 * RELEASE ones go with their sessions and out of their tenant's quota/<tenant> usage, alloc/<gpu>
 * is rewritten from the claims that stay (deleted when none stays, as the brokers' release does).
 * (A release the host finished tearing down is vgpu_fleet_release_claim(finish) of vgpu/fleet.h.)
 * 1 done, 0 something changed meanwhile (re-read, decide again). */
int vgpu_fleet_host_reconcile(struct vgpu_etcd *e, const char *prefix, const char *gpu,
                              const struct vgpu_fleet_reconcile_item *items, size_t n, int64_t lease,
                              struct vgpu_error *err);

#ifdef __cplusplus
}
#endif
