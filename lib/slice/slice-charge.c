/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * slice-charge.c — device-memory charges of a slice: the quota counter, one slot per process,
 * and giving back what dead processes held.
 *
 * The quota holds by construction: a charge is a compare-exchange that moves `used` from u to
 * u + n only while u + n <= quota, before the driver is asked for memory. The per-process slot
 * only records who holds what, so a charge can be returned when its owner dies. Updating the
 * counter and the slot are two atomic steps; every order below is chosen so that a process
 * killed between them can only leave the slice charged for too much (never too little):
 * charge = counter then slot, uncharge = slot then counter, reclaim = slot then counter.
 *
 * Liveness reads /proc of the calling process's pid namespace (deliberately not under VGPU_ROOT:
 * these are live processes, not a host snapshot); slots of other pid namespaces are left to
 * processes of those namespaces (or the host daemon), since their pids mean nothing here.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "slice.h"

#define OWNER_PID(o)    ((uint32_t) ((o) &UINT32_MAX))
#define OWNER_GEN(o)    ((o) >> 32)
#define OWNER(gen, pid) (((uint64_t) (gen) << 32) | (uint32_t) (pid))

/* Read /proc/PID/stat with one read(): state letter and start time. -errno on failure. */
static int read_stat(pid_t pid, char *ret_state, uint64_t *ret_start) {
        char path[64], buf[1024];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        int e = errno;
        close(fd);
        if (n <= 0)
                return n < 0 ? -e : -EIO;
        buf[n] = '\0';
        /* The command name may contain spaces and parentheses: parse after the last ')'. */
        char *p = strrchr(buf, ')');
        if (!p || p[1] != ' ')
                return -EIO;
        p += 2;
        char state = *p;
        /* Fields after the name: state is field 3, starttime field 22. */
        for (int field = 3; field < 22; field++) {
                p = strchr(p, ' ');
                if (!p)
                        return -EIO;
                p++;
        }
        char *end;
        errno = 0;
        unsigned long long start = strtoull(p, &end, 10);
        if (errno || end == p)
                return -EIO;
        *ret_state = state;
        *ret_start = start;
        return 0;
}

uint64_t proc_start_time(pid_t pid) {
        char state;
        uint64_t start;
        return read_stat(pid, &state, &start) < 0 ? 0 : start;
}

bool proc_alive(pid_t pid, uint64_t start_time) {
        char state;
        uint64_t start;
        int r = read_stat(pid, &state, &start);
        if (r < 0) {
                /* Gone, or hidden from us (hidepid, EACCES): ask the kernel. When it exists
                 * but we may not read it we cannot check reuse: assume alive, never reclaim
                 * a live process's charge. */
                return !(kill(pid, 0) < 0 && errno == ESRCH);
        }
        if (state == 'Z' || state == 'X')
                return false; /* exited: the driver has released its memory */
        return start_time == 0 || start == start_time;
}

uint64_t proc_pidns(void) {
        struct stat st;
        return stat("/proc/self/ns/pid", &st) < 0 ? 0 : (uint64_t) st.st_ino;
}

uint64_t slice_round(const struct slice *s, uint64_t bytes) {
        uint64_t g = s->granularity;
        if (g <= 1 || bytes > UINT64_MAX - g)
                return bytes;
        return (bytes + g - 1) / g * g;
}

static void update_peak(struct slice *s, uint64_t used) {
        uint64_t peak = atomic_load_explicit(&s->peak, memory_order_relaxed);
        while (used > peak && !atomic_compare_exchange_weak(&s->peak, &peak, used))
                ;
}

int slice_charge(struct slice *s, struct slice_proc *p, uint64_t bytes) {
        if (bytes == 0)
                return 0;
        uint64_t quota = s->quota;
        uint64_t used = atomic_load(&s->used);
        do {
                if (used + bytes < used || (quota && used + bytes > quota))
                        return -EDQUOT;
        } while (!atomic_compare_exchange_weak(&s->used, &used, used + bytes));
        atomic_fetch_add(&p->bytes, bytes);
        update_peak(s, used + bytes);
        return 0;
}

/* Subtract up to n from *v without going below zero; the amount subtracted. */
static uint64_t sub_clamped(_Atomic uint64_t *v, uint64_t n) {
        uint64_t cur = atomic_load(v), take;
        do
                take = cur < n ? cur : n;
        while (!atomic_compare_exchange_weak(v, &cur, cur - take));
        return take;
}

void slice_uncharge(struct slice *s, struct slice_proc *p, uint64_t bytes) {
        uint64_t taken = sub_clamped(&p->bytes, bytes);
        sub_clamped(&s->used, taken);
}

int slice_attach(struct slice *s, struct slice_proc **ret) {
        pid_t me = getpid();
        uint64_t start = proc_start_time(me), ns = proc_pidns();

        for (int attempt = 0; attempt < 2; attempt++) {
                for (unsigned i = 0; i < SLICE_PROCS_MAX; i++) {
                        struct slice_proc *p = &s->procs[i];
                        uint64_t o = atomic_load(&p->owner);
                        if (OWNER_PID(o) != 0 ||
                            !atomic_compare_exchange_strong(&p->owner, &o, OWNER(OWNER_GEN(o), me)))
                                continue;
                        atomic_store(&p->pidns, ns);
                        atomic_store(&p->start_time, start);
                        if (slice_charge(s, p, s->proc_overhead) < 0) {
                                slice_detach(s, p);
                                return -EDQUOT;
                        }
                        *ret = p;
                        return 0;
                }
                if (slice_reclaim_dead(s) == 0)
                        break;
        }
        return -ENOSPC;
}

/* Empty a slot we own (as its process, or as its reclaimer): charge back, then free it. */
static void slot_release(struct slice *s, struct slice_proc *p, uint64_t owner) {
        uint64_t bytes = atomic_exchange(&p->bytes, 0);
        sub_clamped(&s->used, bytes);
        atomic_store(&p->start_time, 0);
        atomic_store(&p->pidns, 0);
        atomic_store(&p->owner, OWNER(OWNER_GEN(owner) + 1, 0));
}

void slice_detach(struct slice *s, struct slice_proc *p) {
        if (!p)
                return;
        slot_release(s, p, atomic_load(&p->owner));
}

int slice_reclaim_dead(struct slice *s) {
        uint64_t myns = proc_pidns();
        uint32_t me = (uint32_t) getpid();
        int count = 0;

        for (unsigned i = 0; i < SLICE_PROCS_MAX; i++) {
                struct slice_proc *p = &s->procs[i];
                uint64_t o = atomic_load(&p->owner);
                uint32_t pid = OWNER_PID(o);
                if (pid == 0 || pid == me)
                        continue;
                uint64_t ns = atomic_load(&p->pidns);
                if (ns && myns && ns != myns)
                        continue;
                if (pid & SLICE_PROC_RECLAIMING) {
                        /* Another reclaimer; take over only if it died half-way. */
                        if (!(kill((pid_t) (pid & ~SLICE_PROC_RECLAIMING), 0) < 0 && errno == ESRCH))
                                continue;
                } else if (proc_alive((pid_t) pid, atomic_load(&p->start_time)))
                        continue;
                uint64_t mine = OWNER(OWNER_GEN(o), SLICE_PROC_RECLAIMING | me);
                if (!atomic_compare_exchange_strong(&p->owner, &o, mine))
                        continue; /* someone else got there first */
                slot_release(s, p, mine);
                count++;
        }
        return count;
}

unsigned slice_count_procs(const struct slice *s) {
        unsigned n = 0;
        for (unsigned i = 0; i < SLICE_PROCS_MAX; i++)
                if (OWNER_PID(atomic_load(&s->procs[i].owner)) != 0)
                        n++;
        return n;
}
