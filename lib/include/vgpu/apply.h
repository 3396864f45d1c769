/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * apply.h — making the host match a configuration: snapshot -> plan -> execute.
 *
 * The plan is the minimal ordered list of actions: instances that already match keep their
 * UUIDs, and nothing outside the parents the file selects is touched. Capacity is checked
 * before any action runs. Each executed action records its undo; when one fails, the undo log
 * runs backwards, so a failed apply leaves the host as it found it. `assert` is "the plan is
 * empty"; `apply --dry-run` prints the plan. Software slices are planned only when the file has a
 * 'slices' key (lib/plan/slices.c), after every instance action.
 */
#pragma once

#include <stddef.h>

#include "vgpu/config.h"
#include "vgpu/error.h"
#include "vgpu/lifecycle.h"
#include "vgpu/slice.h"
#include "vgpu/cleanup.h"

#ifdef __cplusplus
extern "C" {
#endif

enum vgpu_action_kind {
        VGPU_ACTION_REMOVE,         /* remove a running instance */
        VGPU_ACTION_UNDEFINE,       /* drop a definition from mdevctl's store */
        VGPU_ACTION_SET_VFS,        /* change a PF's VF count */
        VGPU_ACTION_CREATE,         /* create an instance */
        VGPU_ACTION_DEFINE,         /* write (or rewrite) its definition */
        VGPU_ACTION_SET_POLICY,     /* scheduler policy in a module's options file */
        VGPU_ACTION_WRITE_ATTR,     /* a runtime knob: spec.parent is the sysfs path, detail the value */
        VGPU_ACTION_SLICE_REMOVE,   /* remove a software slice (slice; spec.parent its GPU) */
        VGPU_ACTION_SLICE_CREATE,   /* create one (after removals: a changed slice is recreated) */
        VGPU_ACTION_ENABLE_SERVICE, /* enable (and start) a systemd unit: spec.parent its name */
        VGPU_ACTION_SET_PERSISTENCE, /* NVIDIA persistence mode: spec.parent the GPU, detail "on|off (now ...)" */
        VGPU_ACTION_FRAME_RATE_PENDING, /* a running vGPU's frame-rate limiter differs from the file; it changes at
                                         * the vGPU's next start: changes nothing now (spec: the instance) */
        VGPU_ACTION_RESTART,            /* remove and create again with spec (--force, no VM holds it) */
};

struct vgpu_action {
        enum vgpu_action_kind kind;
        struct vgpu_mdev_spec spec;   /* instance actions: uuid, parent, type, attrs, start */
        bool vendor_vfio;             /* an NVIDIA vendor-VFIO VF, not an mdev */
        unsigned vfs, old_vfs;        /* SET_VFS */
        char *detail;                 /* why, in words ("not in the file", "count 3 > 2") */
        struct vgpu_slice_spec slice; /* SLICE_*: the slice to create or remove (policy, scrub resolved) */
        const char *backend; /* CREATE/REMOVE/RESTART: the vendor backend that carries it out ("nvidia",
                              * "intel", "mdev": the kernel's mdev ABI); a static string */
};

struct vgpu_plan {
        struct vgpu_action *actions;
        size_t n_actions;
        char *notes; /* things an admin must know ("reload nvidia"), or NULL */
};
void vgpu_plan_free(struct vgpu_plan *plan);
VGPU_DEFINE_FREEP(struct vgpu_plan, vgpu_plan_free)

enum {
        VGPU_APPLY_DRY_RUN = 1 << 0, /* compute and check, change nothing */
        VGPU_APPLY_FORCE = 1 << 1,   /* remove instances a running VM holds open; restart idle vGPUs whose
                                         * frame-rate limiter differs */
};

/* Compute the plan for cfg on the host as it is now (takes the lock; changes nothing). */
int vgpu_plan_for(const struct vgpu_config *cfg, unsigned flags, struct vgpu_plan **ret,
                  struct vgpu_error *err);

/*
 * Make the host match cfg: lock, snapshot, plan, check capacity, execute with rollback, and
 * record cfg as the state to restore at boot (/var/lib/vgpuctl/host.yaml). *ret_plan (may be
 * NULL) receives what was done (or, with DRY_RUN, what would be). Returns the number of
 * actions executed (0: the host already matched), or -errno with the host unchanged.
 */
int vgpu_apply(const struct vgpu_config *cfg, const char *cfg_text, unsigned flags,
               struct vgpu_plan **ret_plan, struct vgpu_error *err);

/*
 * Progress of an apply, for a caller that shows it: step() runs before each action is carried
 * out, with its number (1-based) and the plan's length; never during a dry run or a rollback.
 */
struct vgpu_progress {
        void (*step)(size_t n, size_t n_steps, const struct vgpu_action *action, void *userdata);
        void *userdata;
};

/* vgpu_apply() reporting each step to progress (NULL: none). */
int vgpu_apply_progress(const struct vgpu_config *cfg, const char *cfg_text, unsigned flags,
                        const struct vgpu_progress *progress, struct vgpu_plan **ret_plan,
                        struct vgpu_error *err);

/*
 * Restore cfg (the saved state, usually) on some parents only — those that just appeared:
 * what vgpu_apply does (lock, snapshot, plan, capacity check, execute with rollback), limited
 * to actions on parents[0..n_parents) and what they need first (the VF count of a listed PF,
 * or of the PF whose VFs are listed). Other parents are left alone, entries for parents that
 * are not there are skipped, scheduler policy (host-wide module options) is not written, and
 * cfg is NOT recorded as the state to restore (it still is the whole file). Returns the
 * number of actions executed, or -errno with the host unchanged.
 */
int vgpu_apply_parents(const struct vgpu_config *cfg, const char *const *parents, size_t n_parents,
                       unsigned flags, struct vgpu_plan **ret_plan, struct vgpu_error *err);

/* What vgpu_restore() did. */
struct vgpu_restore_report {
        unsigned n_slices;              /* slices brought back from their records */
        struct vgpu_error slices_error; /* .code < 0: some slices could not come back (the others did) */
        bool nothing_saved;             /* no configuration was ever applied here (no VGPU_STATE_CONFIG) */
        struct vgpu_plan *plan;         /* what was applied (DRY_RUN: would be); NULL when nothing
                                         * was saved or on failure. The caller frees it. */
};

/*
 * Restore the host to the state last applied (VGPU_STATE_CONFIG), as at boot. With parents
 * NULL, the whole host: the recorded slices first (vgpu_slice_restore(); not with DRY_RUN),
 * then the saved configuration through vgpu_apply_progress(). With parents, only those parents
 * (vgpu_apply_parents(): they just appeared) and no slices; progress is not reported then. The
 * saved file's 'slices' key is ignored either way: the records know what was made after it.
 * flags: VGPU_APPLY_DRY_RUN, VGPU_APPLY_FORCE. *report is always filled (slice failures are in
 * it, not in the return value); a host with nothing saved is not a failure. Returns the number
 * of actions executed, or -errno when the saved configuration could not be read or applied.
 */
int vgpu_restore(const char *const *parents, size_t n_parents, unsigned flags,
                 const struct vgpu_progress *progress, struct vgpu_restore_report *report,
                 struct vgpu_error *err);
/* Free what report holds (its plan); report itself is the caller's. */
static inline void vgpu_restore_report_free(struct vgpu_restore_report *report) {
        vgpu_plan_free(report->plan);
        report->plan = NULL;
}

const char *vgpu_action_kind_to_string(enum vgpu_action_kind kind);

/* Where apply records the last applied configuration, for boot restore. */
#define VGPU_STATE_CONFIG "/var/lib/vgpuctl/host.yaml"

#ifdef __cplusplus
}
#endif
