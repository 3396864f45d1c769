/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config.c — which slice this process belongs to, read once when the shim is loaded:
 *   VGPU_SLICE_SHM=PATH   the GPU's slice region (unset: the shim stays out of the way)
 *   VGPU_SLICE=NAME       the slice in it (may be left out when the region holds only one)
 *   VGPU_SHIM_LOG=error|warning|info|debug   messages on stderr (default warning)
 * plus the process-wide pieces: the charge slot, the exit handler and fork.
 *
 * A slice that is configured but cannot be used (missing region, unknown name, other layout
 * version) fails closed: every charged allocation is refused, so a misconfigured container
 * cannot escape its quota by accident.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

struct shim_state shim = { .log_level = SHIM_LOG_WARNING };

static pthread_mutex_t proc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct vgpu_slice_proc *_Atomic proc;
static bool proc_failed;

void shim_log(int level, const char *fmt, ...) {
        if (level > shim.log_level)
                return;
        char buf[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof(buf), fmt, ap);
        va_end(ap);
        /* One write(): lines of concurrent processes do not interleave. */
        dprintf(STDERR_FILENO, "vgpu-shim[%d]: %s\n", (int) getpid(), buf);
}

static int parse_log_level(const char *s) {
        static const char *const names[] = { "error", "warning", "info", "debug" };
        for (int i = 0; i < (int) ELEMENTSOF(names); i++)
                if (streq(s, names[i]))
                        return i;
        return SHIM_LOG_WARNING;
}

/* The slice: by name, or the only active one. */
static int pick_slice(const struct vgpu_slice_shm *shm, const char *name) {
        if (name)
                return vgpu_slice_find(shm, name);
        int found = -ENOENT;
        for (unsigned i = 0; i < VGPU_SLICE_MAX; i++)
                if (atomic_load(&shm->slices[i].state) == VGPU_SLICE_STATE_ACTIVE) {
                        if (found >= 0)
                                return -EUCLEAN;        /* several: the name is needed */
                        found = (int) i;
                }
        return found;
}

__attribute__((constructor)) static void shim_load(void) {
        const char *level = getenv("VGPU_SHIM_LOG");
        if (level)
                shim.log_level = parse_log_level(level);
        const char *path = getenv("VGPU_SLICE_SHM");
        if (!path || !*path)
                return;
        const char *name = getenv("VGPU_SLICE");
        if (name && !*name)
                name = NULL;

        struct vgpu_error err = {};
        int r = vgpu_slice_region_open(path, &shim.region, &err);
        if (r < 0) {
                shim.mode = SHIM_BROKEN;
                shim_log(SHIM_LOG_ERROR, "%s; device memory allocations will fail", err.message);
                return;
        }
        shim.shm = vgpu_slice_region_shm(shim.region);
        int i = pick_slice(shim.shm, name);
        if (i < 0) {
                shim.mode = SHIM_BROKEN;
                shim_log(SHIM_LOG_ERROR, "%s: %s; device memory allocations will fail", path,
                         name ? "no such slice" : "VGPU_SLICE not set and the region has not exactly one slice");
                return;
        }
        shim.index = (unsigned) i;
        shim.slice = &shim.shm->slices[i];
        shim.gated = shim.slice->policy != VGPU_SLICE_POLICY_BEST_EFFORT;
        shim.scrub = shim.slice->scrub;
        shim.mode = SHIM_ON;
        shim_log(SHIM_LOG_INFO, "slice %s: quota %llu bytes, %s, scrub %s", shim.slice->name,
                 (unsigned long long) shim.slice->quota, vgpu_slice_policy_to_string(shim.slice->policy),
                 vgpu_slice_scrub_to_string(shim.slice->scrub));
}

struct vgpu_slice_proc *shim_proc(void) {
        struct vgpu_slice_proc *p = atomic_load_explicit(&proc, memory_order_acquire);
        if (p || shim.mode != SHIM_ON)
                return p;
        pthread_mutex_lock(&proc_lock);
        p = atomic_load(&proc);
        if (!p && !proc_failed) {
                int r = vgpu_slice_attach(shim.slice, &p);
                if (r < 0) {
                        /* Fail closed: without a slot a charge could not be returned at death. */
                        proc_failed = true;
                        shim_log(SHIM_LOG_ERROR, "slice %s: cannot attach this process: %s",
                                 shim.slice->name, r == -ENOSPC ? "process table full" : "quota exhausted");
                } else {
                        atomic_store_explicit(&proc, p, memory_order_release);
                        shim_register_exit();   /* the slot is returned at exit */
                }
        }
        pthread_mutex_unlock(&proc_lock);
        return p;
}

static void shim_exit(void) {
        if (shim.mode != SHIM_ON)
                return;
        shim_turn_exit();
        shim_release_all(NULL);
        struct vgpu_slice_proc *p = atomic_exchange(&proc, NULL);
        if (p)
                vgpu_slice_detach(shim.slice, p);
}

static void register_exit_once(void) {
        atexit(shim_exit);
}

void shim_register_exit(void) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, register_exit_once);
}

/* The child of fork() has no CUDA context and is another process: it starts from nothing. */
static void atfork_child(void) {
        pthread_mutex_init(&proc_lock, NULL);
        atomic_store(&proc, NULL);
        proc_failed = false;
        shim_track_reset();
        shim_pools_atfork_child();
        shim_graphs_atfork_child();
        shim_turn_atfork_child();
}

__attribute__((constructor)) static void shim_register_atfork(void) {
        pthread_atfork(NULL, NULL, atfork_child);
}
