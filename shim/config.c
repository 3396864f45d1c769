/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config.c — which slice this process belongs to, read once when the shim is loaded:
 *   VGPU_SLICE_SHM=PATH     the slice's own region, NAME.slice (unset: the shim stays out of the way)
 *   VGPU_SLICE_SCHED=PATH   its GPU's scheduler, BDF.shm (default: BDF.shm beside the region)
 *   VGPU_SLICE=NAME         the slice's name, checked against the region's when set
 *   VGPU_SHIM_LOG=error|warning|info|debug   messages on stderr (default warning)
 * plus the process-wide pieces: the charge slot, the exit handler and fork.
 *
 * A slice that is configured but cannot be used (missing region, another name, other layout
 * version) fails closed: every charged allocation is refused, so a misconfigured container
 * cannot escape its quota by accident. A scheduler that cannot be used leaves launches ungated.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "shim.h"

struct shim_state shim = { .log_level = SHIM_LOG_WARNING };

static pthread_mutex_t proc_lock = PTHREAD_MUTEX_INITIALIZER;
static struct slice_proc *_Atomic proc;
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
        int r = slice_region_open(path, &shim.region, &err);
        if (r < 0) {
                shim.mode = SHIM_BROKEN;
                shim_log(SHIM_LOG_ERROR, "%s; device memory allocations will fail", err.message);
                return;
        }
        struct slice_file *f = slice_region_file(shim.region);
        shim.slice = &f->slice;
        if (name && strncmp(name, shim.slice->name, sizeof(shim.slice->name)) != 0) {
                shim.mode = SHIM_BROKEN;
                shim_log(SHIM_LOG_ERROR,
                         "%s: the region of slice %.63s, not %s; device memory allocations will fail", path,
                         shim.slice->name, name);
                return;
        }
        /* copies: the mapping is the tenants' to write */
        shim.index = f->sched_index;
        snprintf(shim.gpu_bdf, sizeof(shim.gpu_bdf), "%.31s", f->gpu_bdf);
        shim.scrub = shim.slice->scrub;
        shim.gated = shim.slice->policy != SLICE_POLICY_BEST_EFFORT;
        shim.mode = SHIM_ON;
        if (shim.gated) {
                char sched[4096];
                const char *sp = getenv("VGPU_SLICE_SCHED");
                if (!sp || !*sp) {
                        const char *slash = strrchr(path, '/');
                        snprintf(sched, sizeof(sched), "%.*s%s.shm", slash ? (int) (slash - path + 1) : 0,
                                 path, shim.gpu_bdf);
                        sp = sched;
                }
                struct slice_shm state;
                if (slice_sched_file_open(sp, &shim.sched, &err) < 0 ||
                    slice_sched_file_read(shim.sched, &state, &err) < 0) {
                        shim.sched = slice_sched_file_close(shim.sched);
                        shim.gated = false;
                        shim_log(SHIM_LOG_ERROR, "%s; launches are not gated", err.message);
                } else
                        shim.quantum_ns = state.sched.quantum_ns;
        }
        shim_log(SHIM_LOG_INFO, "slice %s: quota %llu bytes, %s, scrub %s", shim.slice->name,
                 (unsigned long long) shim.slice->quota, slice_policy_to_string(shim.slice->policy),
                 slice_scrub_to_string(shim.slice->scrub));
}

struct slice_proc *shim_proc(void) {
        struct slice_proc *p = atomic_load_explicit(&proc, memory_order_acquire);
        if (p || shim.mode != SHIM_ON)
                return p;
        pthread_mutex_lock(&proc_lock);
        p = atomic_load(&proc);
        if (!p && !proc_failed) {
                int r = slice_attach(shim.slice, &p);
                if (r < 0) {
                        /* Fail closed: without a slot a charge could not be returned at death. */
                        proc_failed = true;
                        shim_log(SHIM_LOG_ERROR, "slice %s: cannot attach this process: %s", shim.slice->name,
                                 r == -ENOSPC ? "process table full" : "quota exhausted");
                } else {
                        atomic_store_explicit(&proc, p, memory_order_release);
                        shim_register_exit(); /* the slot is returned at exit */
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
        struct slice_proc *p = atomic_exchange(&proc, NULL);
        if (p)
                slice_detach(shim.slice, p);
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
