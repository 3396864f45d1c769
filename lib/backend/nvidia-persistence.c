/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * nvidia-persistence.c — the NVIDIA backend's persistence mode (host.yaml's `persistence:
 * on|off` per GPU; lib/plan/persistence.c selects the GPUs): the driver mode which
 * keeps the driver initialised with no client, so a vGPU's VM does not pay the driver's start-up
 * (seconds) at every boot and NVML answers at once.
 *
 * What makes it stick is nvidia-persistenced: where its unit is installed, `on` asks for the
 * unit enabled (and, on the real root, running) — the mode then survives reboots and driver
 * reloads. On top, and where the daemon is not installed, each GPU whose NVML mode differs
 * gets nvmlDeviceSetPersistenceMode (lost at the next driver load: vgpud re-applies it when the
 * parent comes back). Drift is read from NVML, so `assert` reports a GPU whose mode is not what
 * the file says.
 *
 * Fixture roots (VGPU_ROOT not /): the unit is enabled with the real `systemctl --root=ROOT
 * enable`, which writes the same symlinks into the tree as it would on a host and needs no
 * running systemd; "running" cannot be asked of a tree, so only "enabled" is checked there, and
 * the mode itself goes through NVML (the test double records it in ROOT/nvml.conf).
 */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "backend.h"
#include "basic/error-util.h"
#include "basic/macro.h"
#include "basic/root.h"
#include "host/host-internal.h"
#include "nvidia.h"

#define PERSISTENCED_UNIT  "nvidia-persistenced.service"
/* its [Install] section: WantedBy=multi-user.target, so enabled is this link */
#define PERSISTENCED_WANTS "/etc/systemd/system/multi-user.target.wants/" PERSISTENCED_UNIT
#define PERSISTENCED_PID   "/run/nvidia-persistenced/nvidia-persistenced.pid"

static bool persistenced_installed(void) {
        static const char *const dirs[] = { "/etc/systemd/system", "/usr/lib/systemd/system",
                                            "/lib/systemd/system" };
        for (size_t i = 0; i < ELEMENTSOF(dirs); i++) {
                char path[128];
                snprintf(path, sizeof(path), "%s/%s", dirs[i], PERSISTENCED_UNIT);
                if (root_access(path, F_OK) == 0)
                        return true;
        }
        return false;
}

static bool persistenced_enabled(void) {
        char p[4096];
        struct stat st;
        return root_path(p, sizeof(p), PERSISTENCED_WANTS) >= 0 && lstat(p, &st) == 0;
}

/* The daemon's pid file names a live process. */
static bool persistenced_running(void) {
        char buf[32], proc[64];
        if (root_read(PERSISTENCED_PID, buf, sizeof(buf)) < 0)
                return false;
        long pid = strtol(buf, NULL, 10);
        if (pid <= 0)
                return false;
        snprintf(proc, sizeof(proc), "/proc/%ld", pid);
        return root_access(proc, F_OK) == 0;
}

static bool is_real_root(void) {
        return root_prefix()[0] == '\0';
}

/* Where the daemon is installed and some GPU wants the mode on: the unit enabled and running. */
static bool want_daemon = true; /* the state plan_persistence_done gets: not allocated */

int nvidia_plan_persistence(struct backend_plan *ctx, const struct vgpu_config_gpu *cg,
                            const struct vgpu_gpu *gpu, void **state, struct vgpu_error *err) {
        (void) err;
        if (cg->persistence == 1)
                *state = &want_daemon;
        const struct vgpu_nvml_gpu *n = gpu->nvml;
        if (n && n->persistence_mode == cg->persistence)
                return 0;
        /* NVML does not answer (driver not loaded yet): where nvidia-persistenced is installed,
         * enabling it is what keeps the mode; else the NVML call fails and says why */
        if ((!n || n->persistence_mode < 0) && cg->persistence == 1 && persistenced_installed())
                return 0;
        char detail[96];
        snprintf(detail, sizeof(detail), "%s (now %s)", cg->persistence ? "on" : "off",
                 !n || n->persistence_mode < 0 ? "unknown: NVML does not answer"
                 : n->persistence_mode         ? "on"
                                               : "off");
        return backend_plan_action(ctx, &backend_nvidia, VGPU_ACTION_SET_PERSISTENCE, gpu->bdf, detail)
                       ? 0
                       : -ENOMEM;
}

int nvidia_plan_persistence_done(struct backend_plan *ctx, void *state, bool commit, struct vgpu_error *err) {
        (void) state;
        (void) err;
        if (!commit || !persistenced_installed())
                return 0;
        bool enabled = persistenced_enabled(), running = !is_real_root() || persistenced_running();
        if (enabled && running)
                return 0;
        /* runs before the NVML calls (the plan is ordered by kind): the daemon turns the mode on
         * itself, and they only fill in where it does not */
        return backend_plan_action(
                       ctx, &backend_nvidia, VGPU_ACTION_ENABLE_SERVICE, PERSISTENCED_UNIT,
                       !enabled ? "keeps persistence mode across reboots and driver reloads; not enabled"
                                : "enabled, not running")
                       ? 0
                       : -ENOMEM;
}

extern char **environ;

/* Run argv (PATH searched) with its output discarded: its exit status, or -errno. */
static int spawn_quiet(const char *const *argv) {
        posix_spawn_file_actions_t fa;
        pid_t pid;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        int e = posix_spawnp(&pid, argv[0], &fa, NULL, (char *const *) argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        if (e != 0)
                return -e;
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR)
                        return -errno;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* systemctl [--root=ROOT] enable|disable [--now] UNIT, quietly; 0 or -EIO with the reason. */
static int persistenced_set_enabled(bool enable, struct vgpu_error *err) {
        char root_arg[4200];
        const char *argv[8];
        size_t n = 0;
        argv[n++] = "systemctl";
        if (!is_real_root()) {
                snprintf(root_arg, sizeof(root_arg), "--root=%s", root_prefix());
                argv[n++] = root_arg;
        }
        argv[n++] = "--quiet";
        argv[n++] = enable ? "enable" : "disable";
        if (is_real_root())
                argv[n++] = "--now";
        argv[n++] = PERSISTENCED_UNIT;
        argv[n] = NULL;
        int r = spawn_quiet(argv);
        if (r != 0)
                return vgpu_error_set(err, -EIO, "systemctl %s %s%s failed (%s %d)",
                                      enable ? "enable" : "disable", is_real_root() ? "--now " : "",
                                      PERSISTENCED_UNIT, r < 0 ? "could not run it:" : "exit status",
                                      r < 0 ? -r : r);
        return 0;
}

int nvidia_run_action(const struct vgpu_action *a, char **ret_undo, struct vgpu_error *err) {
        switch (a->kind) {
        case VGPU_ACTION_ENABLE_SERVICE:
                /* undone only when this apply enabled it (a unit enabled but stopped stays enabled) */
                if (!persistenced_enabled() && !(*ret_undo = strdup("disable")))
                        return -ENOMEM;
                return persistenced_set_enabled(true, err) < 0 ? -EIO : 1;
        case VGPU_ACTION_SET_PERSISTENCE: {
                /* detail: "on (now off)"; the mode before goes back on undo when it was known */
                const char *d = strempty(a->detail);
                bool was_on = strstr(d, "(now on)"), was_off = strstr(d, "(now off)");
                if ((was_on || was_off) && !(*ret_undo = strdup(was_on ? "on" : "off")))
                        return -ENOMEM;
                int r = nvml_set_persistence(a->spec.parent, strncmp(d, "on", 2) == 0, err);
                return r < 0 ? r : 1;
        }
        default:
                return vgpu_error_set(err, -EOPNOTSUPP, "%s: not an action of the NVIDIA backend",
                                      vgpu_action_kind_to_string(a->kind));
        }
}

int nvidia_undo_action(const struct vgpu_action *a, const char *undo) {
        struct vgpu_error ignore = {};
        if (!undo)
                return 0;
        if (a->kind == VGPU_ACTION_ENABLE_SERVICE)
                return persistenced_set_enabled(false, &ignore);
        if (a->kind == VGPU_ACTION_SET_PERSISTENCE)
                return nvml_set_persistence(a->spec.parent, streq(undo, "on"), &ignore);
        return -EINVAL;
}
