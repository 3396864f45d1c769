/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * persistence.c — host.yaml's `persistence: on|off` per GPU: NVIDIA's persistence mode, which
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

#include "basic/error-util.h"
#include "basic/macro.h"
#include "basic/root.h"
#include "plan-internal.h"

#define PERSISTENCED_UNIT  "nvidia-persistenced.service"
/* its [Install] section: WantedBy=multi-user.target, so enabled is this link */
#define PERSISTENCED_WANTS "/etc/systemd/system/multi-user.target.wants/" PERSISTENCED_UNIT
#define PERSISTENCED_PID   "/run/nvidia-persistenced/nvidia-persistenced.pid"

bool persistenced_installed(void) {
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

bool persistenced_enabled(void) {
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

static bool gpu_selected(const struct vgpu_config_gpu *cg, const struct vgpu_gpu *gpu) {
        unsigned v, d;
        switch (cg->select) {
        case VGPU_SELECT_ALL:
                return gpu->vendor_id == 0x10de;
        case VGPU_SELECT_BDF:
        case VGPU_SELECT_PARENT:
                return streq(cg->value, gpu->bdf);
        case VGPU_SELECT_PCI_ID:
                return sscanf(cg->value, "%x:%x", &v, &d) == 2 && gpu->vendor_id == v && gpu->device_id == d;
        }
        return false;
}

/* A restore limited to only[]: the GPU is listed, or one of its VFs is. */
static bool gpu_in_only(const struct vgpu_host *host, const char *const *only, size_t n_only,
                        const char *bdf) {
        if (!only)
                return true;
        for (size_t i = 0; i < n_only; i++) {
                if (streq(only[i], bdf))
                        return true;
                const struct vgpu_gpu *vf = vgpu_host_find_gpu(host, only[i]);
                if (vf && streq(vf->physfn, bdf))
                        return true;
        }
        return false;
}

static struct vgpu_action *add_action(struct vgpu_plan *plan, size_t *allocated, enum vgpu_action_kind kind,
                                      const char *target, const char *detail) {
        if (!GREEDY_REALLOC(plan->actions, *allocated, plan->n_actions + 1))
                return NULL;
        struct vgpu_action *a = &plan->actions[plan->n_actions++];
        *a = (struct vgpu_action){ .kind = kind,
                                   .spec = { .parent = strdup(target) },
                                   .detail = strdup(detail) };
        return a->spec.parent && a->detail ? a : NULL;
}

int plan_persistence(const struct vgpu_host *host, const struct vgpu_config *cfg, const char *const *only,
                     size_t n_only, struct vgpu_plan *plan, size_t *allocated, struct vgpu_error *err) {
        bool want_daemon = false;
        for (size_t c = 0; c < cfg->n_gpus; c++) {
                const struct vgpu_config_gpu *cg = &cfg->gpus[c];
                if (cg->persistence < 0)
                        continue;
                bool found = false;
                for (size_t i = 0; i < host->n_gpus; i++) {
                        const struct vgpu_gpu *gpu = &host->gpus[i];
                        if (gpu->physfn[0] || !gpu_selected(cg, gpu))
                                continue;
                        found = true;
                        if (gpu->vendor_id != 0x10de)
                                return vgpu_error_set(
                                        err, -EOPNOTSUPP,
                                        "%s:%d: persistence is NVIDIA's driver mode; %s (driver %s) has none",
                                        cfg->source, cg->line, gpu->bdf, strempty(gpu->driver));
                        if (!gpu_in_only(host, only, n_only, gpu->bdf))
                                continue;
                        want_daemon |= cg->persistence == 1;
                        const struct vgpu_nvml_gpu *n = gpu->nvml;
                        if (n && n->persistence_mode == cg->persistence)
                                continue;
                        /* NVML does not answer (driver not loaded yet): where nvidia-persistenced
                         * is installed, enabling it is what keeps the mode; else the NVML call
                         * below fails and says why */
                        if ((!n || n->persistence_mode < 0) && cg->persistence == 1 &&
                            persistenced_installed())
                                continue;
                        char detail[96];
                        snprintf(detail, sizeof(detail), "%s (now %s)", cg->persistence ? "on" : "off",
                                 !n || n->persistence_mode < 0 ? "unknown: NVML does not answer"
                                 : n->persistence_mode         ? "on"
                                                               : "off");
                        if (!add_action(plan, allocated, VGPU_ACTION_SET_PERSISTENCE, gpu->bdf, detail))
                                return -ENOMEM;
                }
                if (!found && (cg->select == VGPU_SELECT_BDF || cg->select == VGPU_SELECT_PARENT) && !only)
                        return vgpu_error_set(err, -ENODEV, "%s:%d: persistence: no GPU %s on this host",
                                              cfg->source, cg->line, cg->value);
        }
        if (!want_daemon || !persistenced_installed())
                return 0;
        bool enabled = persistenced_enabled(), running = !is_real_root() || persistenced_running();
        if (enabled && running)
                return 0;
        /* runs before the NVML calls (the plan is ordered by kind): the daemon turns the mode on
         * itself, and they only fill in where it does not */
        if (!add_action(plan, allocated, VGPU_ACTION_ENABLE_SERVICE, PERSISTENCED_UNIT,
                        !enabled ? "keeps persistence mode across reboots and driver reloads; not enabled"
                                 : "enabled, not running"))
                return -ENOMEM;
        return 0;
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
int persistenced_set_enabled(bool enable, struct vgpu_error *err) {
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
