/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * exec.c — running a plan with an undo log, and `apply` itself.
 *
 * Each action that succeeds pushes its inverse (create <-> remove with the same UUID and type,
 * define <-> the previous definition or none, VF count <-> the previous count, policy file <->
 * its previous content, a slice created <-> removed). When an action fails the log runs
 * backwards and the error names the action that failed and whether the rollback was complete.
 * Every action is idempotent against the kernel, so an apply killed half-way is finished by
 * running apply again. The single-instance requests (create, define, start, stop, remove:
 * instance.c) are plans of one or two actions run here too. Creating and removing an instance
 * is the business of the backend the planner chose for its parent (lib/backend).
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "basic/error-util.h"
#include "basic/fileio.h"
#include "basic/lock.h"
#include "basic/macro.h"
#include "basic/root.h"
#include "basic/sysfs.h"
#include "host/host-internal.h"
#include "mdevctl-store/store.h"
#include "plan-internal.h"
#include "slice/manage.h"

bool vfio_group_in_use(int group) {
        char want[64], procdir[4096];
        snprintf(want, sizeof(want), "/dev/vfio/%d", group);
        if (root_path(procdir, sizeof(procdir), "/proc") < 0)
                return false;
        DIR *d = opendir(procdir);
        if (!d)
                return false;
        bool used = false;
        struct dirent *de;
        while (!used && (de = readdir(d))) {
                if (de->d_name[0] < '0' || de->d_name[0] > '9')
                        continue;
                char fddir[4096 + 300];
                snprintf(fddir, sizeof(fddir), "%s/%s/fd", procdir, de->d_name);
                DIR *fds = opendir(fddir);
                if (!fds)
                        continue; /* gone, or not ours to look at */
                struct dirent *fe;
                while (!used && (fe = readdir(fds))) {
                        char target[256];
                        if (fe->d_name[0] != '.' &&
                            sysfs_readlink_at(dirfd(fds), fe->d_name, target, sizeof(target)) > 0)
                                used = strcmp(target, want) == 0;
                }
                closedir(fds);
        }
        closedir(d);
        return used;
}

/* A file's (or attribute's) current text under the root, to put back on undo; NULL when absent. */
static char *read_text(const char *path) {
        char buf[65536];
        return root_read(path, buf, sizeof(buf)) < 0 ? NULL : strdup(buf);
}

/* The definition file's current text, to put back on undo; NULL when there is none. */
static char *read_definition(const char *parent, const char *uuid) {
        char path[512], buf[STORE_FILE_MAX + 1];
        const char *why;
        snprintf(path, sizeof(path), "%s/%s", parent, uuid);
        int fd = root_open_dir(MDEVCTL_STORE);
        if (fd < 0)
                return NULL;
        /* a FIFO or a device node there is no definition to put back (nor to block on) */
        int r = store_read_at(fd, path, buf, sizeof(buf), &why);
        close(fd);
        if (r < 0)
                return NULL;
        strip_trailing_space(buf, (size_t) r); /* restore_text() ends it with one newline */
        return strdup(buf);
}

struct undo {
        enum vgpu_action_kind kind; /* the action done */
        const struct vgpu_action *action;
        char *old_text; /* DEFINE/UNDEFINE/SET_POLICY: what was there, or NULL; SLICE_*: the record */
        unsigned steps; /* SLICE_*: the steps done (exec-slice.c), also of one that failed half-way */
};

static int restore_text(const char *path, const char *text) {
        if (!text) {
                char full[4096];
                int r = root_path(full, sizeof(full), path);
                return r < 0 ? r : unlink(full) < 0 && errno != ENOENT ? -errno : 0;
        }
        size_t n = strlen(text);
        char *with_nl = malloc(n + 2);
        if (!with_nl)
                return -ENOMEM;
        memcpy(with_nl, text, n);
        with_nl[n] = '\n';
        int r = write_file_atomic(path, with_nl, n + 1, 0644);
        free(with_nl);
        return r;
}

/* Create or remove a's instance through the backend the planner chose for its parent. */
static int backend_do(const struct vgpu_action *a, bool create, struct vgpu_error *err) {
        const struct vgpu_backend *be = backend_by_name(a->backend);
        int (*op)(const struct vgpu_action *, struct vgpu_error *) = !be      ? NULL
                                                                     : create ? be->create
                                                                              : be->remove;
        if (!op)
                return vgpu_error_set(err, -EOPNOTSUPP, "%s %s on %s: backend %s does not %s instances",
                                      create ? "creating" : "removing", strempty(a->spec.type),
                                      a->spec.parent, strempty(a->backend), create ? "create" : "remove");
        return op(a, err);
}

/* An action of the backend's own (a driver mode, its service): run by the backend that planned it. */
static int backend_run(const struct vgpu_action *a, char **ret_undo, struct vgpu_error *err) {
        const struct vgpu_backend *be = backend_by_name(a->backend);
        if (!be || !be->run_action)
                return vgpu_error_set(err, -EOPNOTSUPP, "%s %s: backend %s has no such action",
                                      vgpu_action_kind_to_string(a->kind), strempty(a->spec.parent),
                                      strempty(a->backend));
        return be->run_action(a, ret_undo, err);
}

static int do_action(const struct vgpu_action *a, struct undo *u, struct vgpu_error *err) {
        char path[512];
        *u = (struct undo){ .kind = a->kind, .action = a };
        switch (a->kind) {
        case VGPU_ACTION_CREATE:
                return backend_do(a, true, err);
        case VGPU_ACTION_REMOVE:
                return backend_do(a, false, err);
        case VGPU_ACTION_DEFINE:
        case VGPU_ACTION_UNDEFINE: {
                u->old_text = read_definition(a->spec.parent, a->spec.uuid);
                snprintf(path, sizeof(path), MDEVCTL_STORE "/%s/%s", a->spec.parent, a->spec.uuid);
                int r = a->kind == VGPU_ACTION_DEFINE ? store_write(&a->spec) : restore_text(path, NULL);
                return r < 0 ? vgpu_error_set_errno(err, r, "%s %s%s",
                                                    a->kind == VGPU_ACTION_DEFINE ? "writing" : "removing",
                                                    root_prefix(), path)
                             : 1;
        }
        case VGPU_ACTION_SET_VFS:
                return lifecycle_set_vfs(a->spec.parent, a->vfs, 0, err);
        case VGPU_ACTION_WRITE_ATTR: {
                u->old_text = read_text(a->spec.parent);
                int r = sysfs_write(a->spec.parent, a->detail);
                return r < 0 ? vgpu_error_set_errno(err, r, "writing '%s' to %s%s", a->detail, root_prefix(),
                                                    a->spec.parent)
                             : 1;
        }
        case VGPU_ACTION_SLICE_CREATE:
        case VGPU_ACTION_SLICE_REMOVE: {
                struct vgpu_error why = {};
                int r = plan_slice_do(a, &u->steps, &u->old_text, &why);
                return r < 0 ? vgpu_error_set(err, r, "slice %s: %s", a->slice.name, why.message) : 1;
        }
        case VGPU_ACTION_SET_POLICY: {
                /* spec.parent holds the modprobe.d file the policy goes to */
                u->old_text = read_text(a->spec.parent);
                int r = write_file_atomic(a->spec.parent, a->detail, strlen(a->detail), 0644);
                return r < 0 ? vgpu_error_set_errno(err, r, "writing %s%s", root_prefix(), a->spec.parent)
                             : 1;
        }
        case VGPU_ACTION_ENABLE_SERVICE:
        case VGPU_ACTION_SET_PERSISTENCE:
                return backend_run(a, &u->old_text, err);
        case VGPU_ACTION_FRAME_RATE_PENDING:
                return 0; /* said, not done: the vGPU takes the limiter at its next start */
        case VGPU_ACTION_RESTART: {
                struct vgpu_error why = {};
                int r = backend_do(a, false, &why);
                if (r < 0)
                        return vgpu_error_set(err, r, "stopping %s (%s on %s) to restart it: %s",
                                              a->spec.uuid, a->spec.type, a->spec.parent, why.message);
                return backend_do(a, true, err);
        }
        }
        return -EINVAL;
}

static int undo_action(const struct undo *u) {
        const struct vgpu_action *a = u->action;
        struct vgpu_error ignore = {};
        char path[512];
        switch (u->kind) {
        case VGPU_ACTION_CREATE:
                return backend_do(a, false, &ignore);
        case VGPU_ACTION_REMOVE:
                return backend_do(a, true, &ignore);
        case VGPU_ACTION_DEFINE:
        case VGPU_ACTION_UNDEFINE:
                snprintf(path, sizeof(path), MDEVCTL_STORE "/%s/%s", a->spec.parent, a->spec.uuid);
                return restore_text(path, u->old_text);
        case VGPU_ACTION_SET_VFS:
                return lifecycle_set_vfs(a->spec.parent, a->old_vfs, 0, &ignore);
        case VGPU_ACTION_SET_POLICY:
                return restore_text(a->spec.parent, u->old_text);
        case VGPU_ACTION_WRITE_ATTR:
                return u->old_text ? sysfs_write(a->spec.parent, u->old_text) : 0;
        case VGPU_ACTION_SLICE_CREATE:
        case VGPU_ACTION_SLICE_REMOVE:
                return plan_slice_undo(a, u->steps, u->old_text);
        case VGPU_ACTION_ENABLE_SERVICE:
        case VGPU_ACTION_SET_PERSISTENCE: {
                const struct vgpu_backend *be = backend_by_name(a->backend);
                return be && be->undo_action ? be->undo_action(a, u->old_text) : -EOPNOTSUPP;
        }
        case VGPU_ACTION_FRAME_RATE_PENDING:
                return 0;
        case VGPU_ACTION_RESTART:
                /* running again is what matters; its definition (undone too) holds the old limiter */
                (void) backend_do(a, false, &ignore);
                return backend_do(a, true, &ignore);
        }
        return -EINVAL;
}

static int execute(struct vgpu_plan *plan, const struct vgpu_progress *progress, bool as_one,
                   struct vgpu_error *err) {
        _cleanup_free_ struct undo *log = calloc(plan->n_actions + 1, sizeof(*log));
        if (!log)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        size_t done = 0;
        int r = 0;
        for (; done < plan->n_actions; done++) {
                if (progress && progress->step)
                        progress->step(done + 1, plan->n_actions, &plan->actions[done], progress->userdata);
                r = do_action(&plan->actions[done], &log[done], err);
                if (r < 0)
                        break;
        }
        if (r < 0) {
                /* undo backwards, from what the failed action did before it stopped (only slice
                 * actions are done in steps); keep the first error, say whether the host is back */
                size_t failed_undos = log[done].steps && undo_action(&log[done]) < 0;
                free(log[done].old_text);
                for (size_t i = done; i-- > 0;) {
                        if (undo_action(&log[i]) < 0)
                                failed_undos++;
                        free(log[i].old_text);
                }
                char msg[VGPU_ERROR_MESSAGE_MAX];
                snprintf(msg, sizeof(msg), "%s", err ? err->message : "");
                /* one request (vgpuctl create): its own words, unless the host is not back */
                if (as_one)
                        return failed_undos
                                       ? vgpu_error_set(err, r, "%s; rollback INCOMPLETE: see 'vgpuctl list'",
                                                        msg)
                                       : r;
                const struct vgpu_action *a = &plan->actions[done];
                return vgpu_error_set(err, r, "step %zu of %zu (%s %s%s%s) failed: %s; %s", done + 1,
                                      plan->n_actions, vgpu_action_kind_to_string(a->kind),
                                      a->spec.uuid[0] ? a->spec.uuid : strempty(a->spec.parent),
                                      a->spec.type ? " " : "", strempty(a->spec.type), msg,
                                      failed_undos
                                              ? "rollback INCOMPLETE: run 'vgpuctl assert' and apply again"
                                      : done ? "every earlier step was rolled back"
                                             : "nothing had been changed");
        }
        for (size_t i = 0; i < done; i++)
                free(log[i].old_text);
        return (int) done;
}

int plan_execute(struct vgpu_plan *plan, const struct vgpu_progress *progress, struct vgpu_error *err) {
        return execute(plan, progress, false, err);
}

int plan_execute_request(struct vgpu_plan *plan, struct vgpu_error *err) {
        return execute(plan, NULL, true, err);
}

static bool state_is(const char *text) {
        char full[4096];
        if (root_path(full, sizeof(full), VGPU_STATE_CONFIG) < 0)
                return false;
        FILE *f = fopen(full, "re");
        if (!f)
                return false;
        size_t n = strlen(text);
        char *old = malloc(n + 2);
        bool same = old && fread(old, 1, n + 1, f) == n && memcmp(old, text, n) == 0;
        free(old);
        fclose(f);
        return same;
}

static int scan_and_plan(const struct vgpu_config *cfg, const char *const *only, size_t n_only,
                         unsigned flags, struct vgpu_plan **ret, struct vgpu_error *err) {
        struct vgpu_host *host;
        /* parents without their types: the planner reads those it creates on */
        unsigned scan = VGPU_SCAN_PARENTS | VGPU_SCAN_INSTANCES;
        /* persistence mode (and frame-rate limits) are read back through NVML: only when asked for */
        for (size_t i = 0; i < cfg->n_gpus; i++)
                if (cfg->gpus[i].persistence >= 0 ||
                    (cfg->gpus[i].has_policy && cfg->gpus[i].policy.frame_rate_limit >= 0))
                        scan |= VGPU_SCAN_NVML;
        /* ... and the GPUs' memory, for the quotas of the file's slices */
        if (cfg->has_slices && cfg->n_slices > 0)
                scan |= VGPU_SCAN_NVML;
        int r = vgpu_host_scan(scan, &host, err);
        if (r < 0) {
                (void) store_remove_temps(); /* what the lock would have done */
                return r;
        }
        struct vgpu_mdev_spec *defs = NULL;
        size_t n_defs = 0;
        /* the lock was taken with LOCK_STORE_TEMPS_LATER: one walk of the store for both */
        r = store_definitions(&defs, &n_defs, NULL, STORE_REMOVE_TEMPS, err);
        if (r >= 0)
                r = plan_compute_only(host, defs, n_defs, cfg, only, n_only, flags, ret, err);
        vgpu_mdev_specs_free(defs, n_defs);
        vgpu_host_free(host);
        return r;
}

_public_ int vgpu_plan_for(const struct vgpu_config *cfg, unsigned flags, struct vgpu_plan **ret,
                           struct vgpu_error *err) {
        int lock = lifecycle_lock_flags(LOCK_STORE_TEMPS_LATER, err);
        if (lock < 0)
                return lock;
        int r = scan_and_plan(cfg, NULL, 0, flags, ret, err);
        host_lock_release(lock);
        return r;
}

/* Lock, scan, plan (limited to only[] when not NULL), execute with rollback, and — for a whole
 * apply with its text — record cfg as the state to restore. */
static int apply_locked(const struct vgpu_config *cfg, const char *cfg_text, const char *const *only,
                        size_t n_only, unsigned flags, const struct vgpu_progress *progress,
                        struct vgpu_plan **ret_plan, struct vgpu_error *err) {
        int lock = lifecycle_lock_flags(LOCK_STORE_TEMPS_LATER, err);
        if (lock < 0)
                return lock;
        struct vgpu_plan *plan = NULL;
        int r = scan_and_plan(cfg, only, n_only, flags, &plan, err);
        if (r >= 0 && !(flags & VGPU_APPLY_DRY_RUN))
                r = plan_execute(plan, progress, err);
        /* the state to restore at boot: what was applied last, whole (unless it already is) */
        if (r >= 0 && !(flags & VGPU_APPLY_DRY_RUN) && cfg_text && !state_is(cfg_text)) {
                int q = write_file_atomic(VGPU_STATE_CONFIG, cfg_text, strlen(cfg_text), 0644);
                if (q < 0)
                        r = vgpu_error_set_errno(err, q, "the host matches, but recording it in %s%s failed",
                                                 root_prefix(), VGPU_STATE_CONFIG);
        }
        host_lock_release(lock);
        if (r < 0) {
                vgpu_plan_free(plan);
                return r;
        }
        if (ret_plan)
                *ret_plan = plan;
        else
                vgpu_plan_free(plan);
        return r;
}

_public_ int vgpu_apply(const struct vgpu_config *cfg, const char *cfg_text, unsigned flags,
                        struct vgpu_plan **ret_plan, struct vgpu_error *err) {
        return apply_locked(cfg, cfg_text, NULL, 0, flags, NULL, ret_plan, err);
}

_public_ int vgpu_apply_progress(const struct vgpu_config *cfg, const char *cfg_text, unsigned flags,
                                 const struct vgpu_progress *progress, struct vgpu_plan **ret_plan,
                                 struct vgpu_error *err) {
        return apply_locked(cfg, cfg_text, NULL, 0, flags, progress, ret_plan, err);
}

_public_ int vgpu_apply_parents(const struct vgpu_config *cfg, const char *const *parents, size_t n_parents,
                                unsigned flags, struct vgpu_plan **ret_plan, struct vgpu_error *err) {
        if (!parents && n_parents > 0)
                return vgpu_error_set(err, -EINVAL, "no parent names given");
        /* never recorded: the saved state is the whole file, of which this is a part */
        return apply_locked(cfg, NULL, parents ? parents : (const char *const[]){ NULL }, n_parents, flags,
                            NULL, ret_plan, err);
}
