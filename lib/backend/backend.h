/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * backend.h — the vendor layer: one ops table per vendor, one file per vendor (lib/backend/).
 *
 * The generic code (the host scan in lib/host, the planner and executor in lib/plan) knows the
 * kernel's ABIs; a backend adds what only its vendor knows: how to read frame buffer size and
 * instance limits out of its type descriptions, which types it offers outside the mdev ABI, how
 * an instance is created and removed on its parents, which scheduler knob a host.yaml policy
 * turns, which attributes a policy adds to each instance (and whether a running one has them),
 * and the vendor's driver modes (persistence). The planner asks the backend of each parent (by
 * driver; for driver modes, of each GPU's PCI vendor); the executor carries out CREATE, REMOVE,
 * RESTART and the backend's own actions through the backend the action names
 * (vgpu_action.backend).
 *
 * Adding a vendor is adding one file: define a `struct vgpu_backend` and BACKEND_REGISTER() it.
 * Registration is a pointer in the "vgpu_backends" ELF section, which backend.c walks; the
 * backend objects are linked whole (lib/meson.build), so a backend nobody names by symbol is
 * still there. A test links its own backend the same way (tests/unit/test-backend-registry.c).
 */
#pragma once

#include <stdbool.h>

#include "vgpu/apply.h"
#include "vgpu/config.h"
#include "vgpu/host.h"

struct backend_plan; /* the planner's side, while a backend plans (lib/plan/policy.c) */

struct vgpu_backend {
        const char *name;
        const char *vendor; /* as messages name it ("NVIDIA"); NULL: the name */
        /* Drivers whose parents this backend owns, NULL-terminated. */
        const char *const *drivers;
        /* Fill t->framebuffer_bytes / t->max_instances from t->name and t->description.
         * Leaves them at -1 when the vendor's text does not say: never a guess. Required. */
        void (*describe_type)(struct vgpu_type *t);
        /* Types a parent offers outside the mdev ABI, read relative to the parent's sysfs dir.
         * Returns the number of types added to *p, or -errno. NULL when the vendor has none. */
        int (*list_vfio_types)(int devfd, struct vgpu_parent *p);

        /* Does this function take one vGPU type instead of creating mdev devices (one instance,
         * no UUID, no mdevctl definition)? NULL: never (mdev devices only). */
        bool (*typed_vf)(const struct vgpu_gpu *gpu);
        /* Carry out a CREATE or REMOVE action (a->spec: uuid, parent, type, attrs; a->vendor_vfio
         * for a typed VF). 1 done, -errno with err set. NULL: the vendor's instances are not made
         * this way (AMD's VFs are the vGPUs), and the action is refused. */
        int (*create)(const struct vgpu_action *a, struct vgpu_error *err);
        int (*remove)(const struct vgpu_action *a, struct vgpu_error *err);
        /* An attribute the vendor adds to each instance of entry dev of g on parent p (NVIDIA's
         * frame-rate limiter from the policy): fills *ret (static strings) and returns 1, or 0. */
        int (*instance_attrs)(const struct vgpu_parent *p, const struct vgpu_config_gpu *g,
                              const struct vgpu_config_device *dev, struct vgpu_mdev_attr *ret);
        /* Does running instance in on p have another value than attr (one instance_attrs gave),
         * as the vendor reads it back (NVIDIA: the frame-rate limit through NVML)? 1 with *detail
         * saying what it has and what the file says; 0 the same, or unknown. NULL: never known. */
        int (*instance_attr_differs)(const struct vgpu_parent *p, const struct vgpu_instance *in,
                                     const struct vgpu_mdev_attr *attr, char *detail, size_t size);
        /* Plan the scheduler policy of entry cg on gpu (one of this backend's): append actions
         * through backend_policy_*() or keep what is module-wide in *state (NULL at first) for
         * plan_policy_done, called once for a state kept: to append its actions (commit), or only
         * to free it (another GPU's policy failed); needed when a state is kept. NULL: no knob,
         * the policy is refused. */
        int (*plan_policy)(struct backend_plan *ctx, const struct vgpu_config_gpu *cg,
                           const struct vgpu_gpu *gpu, void **state, struct vgpu_error *err);
        int (*plan_policy_done)(struct backend_plan *ctx, void *state, bool commit, struct vgpu_error *err);

        /* The PCI vendor id of the vendor's GPUs (0: none): host.yaml's driver modes are the
         * vendor's, whatever driver is bound (lib/plan/persistence.c). */
        uint16_t pci_vendor;
        /* host.yaml's `persistence` for gpu, one of the vendor's physical functions: append
         * actions with backend_plan_action(), keep what is host-wide in *state for
         * plan_persistence_done (as for policy). NULL: the driver has no such mode, refused. */
        int (*plan_persistence)(struct backend_plan *ctx, const struct vgpu_config_gpu *cg,
                                const struct vgpu_gpu *gpu, void **state, struct vgpu_error *err);
        int (*plan_persistence_done)(struct backend_plan *ctx, void *state, bool commit,
                                     struct vgpu_error *err);
        /* Carry out an action this backend planned (a->backend names it; SET_PERSISTENCE,
         * ENABLE_SERVICE): 1 done, or -errno with err set. *ret_undo (NULL: nothing to undo) is
         * what undo_action gets back when a later step fails. */
        int (*run_action)(const struct vgpu_action *a, char **ret_undo, struct vgpu_error *err);
        int (*undo_action)(const struct vgpu_action *a, const char *undo);
};

/* ASan must not pad the entries (the section is walked as an array): gcc leaves variables in
 * named sections alone, clang is told. */
#ifdef __clang__
#define BACKEND_NO_SANITIZE __attribute__((no_sanitize_address))
#else
#define BACKEND_NO_SANITIZE
#endif
#define BACKEND_REGISTER(b)                                                              \
        static const struct vgpu_backend *const backend_entry_##b                        \
                __attribute__((used, section("vgpu_backends"), aligned(sizeof(void *)))) \
                BACKEND_NO_SANITIZE = &(b)

/* The fallback for parents no registered backend claims: the kernel's mdev ABI (mdev.c). */
extern const struct vgpu_backend backend_mdev;
/* Named by the host scan for vendor-VFIO VFs (lib/host/mdev.c), until it asks the registry. */
extern const struct vgpu_backend backend_nvidia;

/* The backend for a parent bound to driver (NULL: a virtual parent); never NULL. */
const struct vgpu_backend *backend_for_driver(const char *driver);
/* The registered backend for the GPUs of PCI vendor id vendor, or NULL. */
const struct vgpu_backend *backend_for_vendor(uint16_t vendor);
/* The backend called name (vgpu_action.backend; NULL: backend_mdev), or NULL when none is. */
const struct vgpu_backend *backend_by_name(const char *name);
/* Does the backend of gpu (NULL: none) make it take one typed vGPU? */
bool backend_typed_vf(const struct vgpu_gpu *gpu);
/* The registered backends (not the fallback), for listing: the count, *ret the first. */
size_t backend_list(const struct vgpu_backend *const **ret);

/* Parse "<number><unit>" with unit K/M/G(B) (binary, as drivers mean it) at s. -1 if none. */
int64_t parse_size_with_unit(const char *s);

/* mdev.c: the kernel's mdev ABI, which several vendors' parents use (NVIDIA before vGPU 17,
 * GVT-g, the sample drivers). Create writes the UUID to the type's create file, waits for the
 * device and writes its attributes (removing it again when one fails); 1 or -errno. */
int backend_mdev_create(const struct vgpu_mdev_spec *spec, struct vgpu_error *err);
int backend_mdev_remove_device(const char *uuid);
int backend_mdev_create_action(const struct vgpu_action *a, struct vgpu_error *err);
int backend_mdev_remove_action(const struct vgpu_action *a, struct vgpu_error *err);
/* -EINVAL unless the spec's parent, type and attribute names stay inside their directories:
 * they become sysfs and mdevctl-store paths */
int backend_mdev_check_names(const struct vgpu_mdev_spec *spec, struct vgpu_error *err);
/* Remove devices whose creation timed out and that appeared later (under the lock). */
void backend_mdev_reap_abandoned(void);

/* What planning offers a backend (lib/plan/policy.c). */
const struct vgpu_config *backend_plan_config(const struct backend_plan *ctx);
/* Write content (taken) to the module options file path unless it already says so; note says when
 * it takes effect. */
int backend_policy_file(struct backend_plan *ctx, const char *path, char *content, const char *note);
/* Write value to the sysfs attribute path (a runtime knob). */
int backend_policy_write(struct backend_plan *ctx, const char *path, const char *value);
/* Append an action of kind on target (spec.parent) with detail, carried out by backend be
 * (run_action); NULL when out of memory. */
struct vgpu_action *backend_plan_action(struct backend_plan *ctx, const struct vgpu_backend *be,
                                        enum vgpu_action_kind kind, const char *target, const char *detail);
/* Refuse cg's policy on gpu: the driver has no knob vgpuctl knows (why: NULL for the generic). */
int backend_policy_refuse(struct backend_plan *ctx, const struct vgpu_config_gpu *cg,
                          const struct vgpu_gpu *gpu, const char *why, struct vgpu_error *err);
