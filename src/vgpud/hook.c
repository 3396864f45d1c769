/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hook.c — the admin's command, run on thermal and link events and on critical Xids:
 * `/bin/sh -c HOOK` with the event in its environment (VGPU_EVENT, VGPU_BDF, VGPU_MODEL,
 * VGPU_TEMPERATURE, VGPU_THRESHOLD, VGPU_STATE, VGPU_PREVIOUS_STATE, VGPU_MESSAGE; VGPU_XID for an
 * Xid, whose STATE is "degraded"). It runs beside the loop, never in it: the
 * child is reaped by an sd-event child source, and at most HOOKS_MAX run at once so a hook
 * that hangs cannot pile up processes.
 */
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "log.h"
#include "vgpud.h"

extern char **environ;

struct hook_child {
        struct vgpud *d;
        size_t slot; /* in d->hooks */
        char kind[32];
        char bdf[VGPU_BDF_MAX];
};

static int on_hook_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        struct hook_child *c = userdata;
        struct vgpud *d = c->d;
        if (si->si_code != CLD_EXITED || si->si_status != 0)
                event_add(d, EV_HOOK_FAILED, LOG_WARNING, c->bdf, NULL, VGPU_TEMP_UNKNOWN,
                          "hook for %s on %s %s %d", c->kind, c->bdf,
                          si->si_code == CLD_EXITED ? "exited with status" : "was killed by signal",
                          si->si_status);
        else
                log_debug("hook for %s on %s done", c->kind, c->bdf);
        d->hooks[c->slot] = NULL;
        d->hooks_running--;
        sd_event_source_unref(s); /* frees c through the destroy callback */
        return 0;
}

void hook_stop(struct vgpud *d) {
        /* hooks still running are left to finish on their own; only our bookkeeping goes */
        for (size_t i = 0; i < HOOKS_MAX; i++)
                d->hooks[i] = sd_event_source_unref(d->hooks[i]);
        d->hooks_running = 0;
}

/* What a hook is told: one event on one GPU. */
struct hook_event {
        const char *kind, *bdf, *model, *state, *previous, *message;
        int temperature_c, threshold_c; /* VGPU_TEMP_UNKNOWN: 0 in the environment */
        uint64_t xid;                   /* 0: not an Xid (no VGPU_XID) */
};

static void hook_spawn(struct vgpud *d, const struct hook_event *e);

void hook_run(struct vgpud *d, const struct vgpu_telemetry_event *e, const struct vgpu_gpu_telemetry *g) {
        hook_spawn(d, &(const struct hook_event){
                              .kind = vgpu_telemetry_event_kind_to_string(e->kind),
                              .bdf = e->bdf,
                              .model = g ? g->model : "",
                              .state = vgpu_thermal_state_to_string(e->to),
                              .previous = vgpu_thermal_state_to_string(e->from),
                              .message = e->message,
                              .temperature_c = e->temperature_c,
                              .threshold_c = e->threshold_c,
                      });
}

void hook_run_xid(struct vgpud *d, const char *bdf, uint64_t xid, const char *message,
                  const struct vgpu_gpu_telemetry *g) {
        /* what an admin's hook does with it: drain the host, open a ticket, reset the GPU */
        hook_spawn(d, &(const struct hook_event){
                              .kind = "xid",
                              .bdf = bdf,
                              .model = g ? g->model : "",
                              .state = "degraded",
                              .previous = g ? vgpud_gpu_state(g) : "unknown",
                              .message = message,
                              .temperature_c = VGPU_TEMP_UNKNOWN,
                              .threshold_c = VGPU_TEMP_UNKNOWN,
                              .xid = xid,
                      });
}

static void hook_spawn(struct vgpud *d, const struct hook_event *e) {
        const char *hook = d->config->hook;
        if (!hook)
                return;
        const char *kind = e->kind;
        if (d->hooks_running >= HOOKS_MAX) {
                event_add(d, EV_HOOK_FAILED, LOG_WARNING, e->bdf, NULL, VGPU_TEMP_UNKNOWN,
                          "hook not run for %s on %s: %u hooks still running", kind, e->bdf,
                          d->hooks_running);
                return;
        }

        char env_event[64], env_bdf[48], env_model[160], env_temp[48], env_thr[48], env_state[48],
                env_prev[48], env_msg[300], env_xid[48];
        snprintf(env_event, sizeof(env_event), "VGPU_EVENT=%s", kind);
        snprintf(env_bdf, sizeof(env_bdf), "VGPU_BDF=%s", e->bdf);
        snprintf(env_model, sizeof(env_model), "VGPU_MODEL=%s", strempty(e->model));
        snprintf(env_temp, sizeof(env_temp), "VGPU_TEMPERATURE=%d",
                 e->temperature_c == VGPU_TEMP_UNKNOWN ? 0 : e->temperature_c);
        snprintf(env_thr, sizeof(env_thr), "VGPU_THRESHOLD=%d",
                 e->threshold_c == VGPU_TEMP_UNKNOWN ? 0 : e->threshold_c);
        snprintf(env_state, sizeof(env_state), "VGPU_STATE=%s", e->state);
        snprintf(env_prev, sizeof(env_prev), "VGPU_PREVIOUS_STATE=%s", e->previous);
        snprintf(env_msg, sizeof(env_msg), "VGPU_MESSAGE=%s", e->message);
        snprintf(env_xid, sizeof(env_xid), "VGPU_XID=%" PRIu64, e->xid);

        size_t n_env = 0;
        while (environ && environ[n_env])
                n_env++;
        char **envp = calloc(n_env + 10, sizeof(char *));
        struct hook_child *c = calloc(1, sizeof(*c));
        if (!envp || !c) {
                free(envp);
                free(c);
                log_error("hook for %s on %s: out of memory", kind, e->bdf);
                return;
        }
        size_t k = 0;
        for (size_t i = 0; i < n_env; i++)
                if (strncmp(environ[i], "VGPU_", 5) != 0 || strncmp(environ[i], "VGPU_ROOT=", 10) == 0)
                        envp[k++] = environ[i];
        char *ours[] = { env_event, env_bdf,  env_model, env_temp, env_thr,
                         env_state, env_prev, env_msg,   env_xid };
        for (size_t i = 0; i < ELEMENTSOF(ours) - (e->xid ? 0 : 1); i++)
                envp[k++] = ours[i];

        /* the loop blocks the signals it handles; the hook must start with none blocked */
        posix_spawnattr_t attr;
        sigset_t none, defaults;
        sigemptyset(&none);
        sigemptyset(&defaults);
        sigaddset(&defaults, SIGTERM);
        sigaddset(&defaults, SIGHUP);
        sigaddset(&defaults, SIGINT);
        sigaddset(&defaults, SIGCHLD);
        sigaddset(&defaults, SIGPIPE);
        posix_spawnattr_init(&attr);
        posix_spawnattr_setsigmask(&attr, &none);
        posix_spawnattr_setsigdefault(&attr, &defaults);
        posix_spawnattr_setflags(&attr,
                                 POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

        char *argv[] = { (char *) "/bin/sh", (char *) "-c", (char *) hook, NULL };
        pid_t pid;
        int r = posix_spawn(&pid, "/bin/sh", NULL, &attr, argv, envp);
        posix_spawnattr_destroy(&attr);
        free(envp);
        if (r != 0) {
                event_add(d, EV_HOOK_FAILED, LOG_WARNING, e->bdf, NULL, VGPU_TEMP_UNKNOWN,
                          "hook for %s on %s: cannot start /bin/sh: %s", kind, e->bdf, strerror(r));
                free(c);
                return;
        }
        c->d = d;
        snprintf(c->kind, sizeof(c->kind), "%s", kind);
        snprintf(c->bdf, sizeof(c->bdf), "%s", e->bdf);
        while (d->hooks[c->slot])
                c->slot++; /* hooks_running < HOOKS_MAX: a free slot exists */
        if (sd_event_add_child(d->event, &d->hooks[c->slot], pid, WEXITED, on_hook_exit, c) < 0) {
                /* cannot watch it: reap it blocking rather than leave a zombie */
                (void) waitpid(pid, NULL, 0);
                free(c);
                return;
        }
        sd_event_source_set_destroy_callback(d->hooks[c->slot], free);
        d->hooks_running++;
        log_debug("hook for %s on %s started (pid %d)", kind, e->bdf, (int) pid);
}
