/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fake-gpu.c — the simulated GPU of the fake driver, shared by all processes that name the same
 * file in $FAKE_CUDA_GPU (a private one per process when unset): $FAKE_CUDA_MEM bytes of device
 * memory (default 256 MiB, sparse), and one engine.
 *
 * Two behaviours make the shim's promises testable:
 *   - freed blocks are handed out again last-in first-out, and their contents are left as they
 *     were, including the blocks of processes that died (like a driver that does not clear):
 *     a second tenant gets exactly the memory the first one freed, and reads whatever is in it;
 *   - kernels run one at a time in arrival order (a ticket lock), each holding the engine for
 *     its duration, so two tenants' GPU time adds up to at most the wall time, and without a
 *     scheduler a tenant of short kernels gets a short kernel's worth per long kernel of the other.
 * Nothing here may hang when a process dies inside: the allocator's lock is a robust mutex, and
 * a ticket whose process is gone is skipped.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fake-gpu.h"

#define FAKE_MAGIC    UINT64_C(0x5550474548414b46)
#define BLOCKS_MAX    4096
#define TICKETS       256
#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

enum { BLOCK_NONE, BLOCK_USED, BLOCK_FREE };

struct block {
        uint64_t off, size, freed_seq;
        int32_t pid;
        uint32_t state;
};

struct gpu {
        uint64_t magic, mem_size, arena_off;
        pthread_mutex_t lock;
        uint64_t top, seq;
        struct block blocks[BLOCKS_MAX];
        _Atomic uint32_t next_ticket, serving;
        _Atomic int32_t ticket_pid[TICKETS];
};

static struct gpu *gpu;
static char *arena;
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;

uint64_t fake_now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

static void init_gpu(struct gpu *g, uint64_t mem, uint64_t arena_off) {
        pthread_mutexattr_t a;
        pthread_mutexattr_init(&a);
        pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
        pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
        pthread_mutex_init(&g->lock, &a);
        pthread_mutexattr_destroy(&a);
        g->mem_size = mem;
        g->arena_off = arena_off;
        g->magic = FAKE_MAGIC;
}

int fake_gpu_open(void) {
        pthread_mutex_lock(&open_lock);
        if (gpu) {
                pthread_mutex_unlock(&open_lock);
                return 0;
        }
        const char *m = getenv("FAKE_CUDA_MEM"), *path = getenv("FAKE_CUDA_GPU");
        uint64_t mem = m ? strtoull(m, NULL, 0) : UINT64_C(256) << 20;
        size_t page = (size_t) sysconf(_SC_PAGESIZE);
        uint64_t arena_off = (sizeof(struct gpu) + page - 1) / page * page, total = arena_off + mem;
        void *p;
        int r = 0;
        if (!path || !*path) {
                p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1,
                         0);
                if (p != MAP_FAILED)
                        init_gpu(p, mem, arena_off);
        } else {
                int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
                if (fd < 0) {
                        r = -errno;
                        goto out;
                }
                flock(fd, LOCK_EX); /* the first process initializes, the others wait */
                struct stat st;
                fstat(fd, &st);
                if (st.st_size == 0 && ftruncate(fd, (off_t) total) < 0) {
                        r = -errno;
                        close(fd);
                        goto out;
                }
                fstat(fd, &st);
                total = (uint64_t) st.st_size;
                p = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
                if (p != MAP_FAILED && ((struct gpu *) p)->magic != FAKE_MAGIC)
                        init_gpu(p, total - arena_off, arena_off);
                flock(fd, LOCK_UN);
                close(fd);
        }
        if (p == MAP_FAILED) {
                r = -errno;
                goto out;
        }
        gpu = p;
        arena = (char *) p + gpu->arena_off;
out:
        pthread_mutex_unlock(&open_lock);
        return r;
}

static void lock(void) {
        if (pthread_mutex_lock(&gpu->lock) == EOWNERDEAD)
                pthread_mutex_consistent(&gpu->lock);
}

static void unlock(void) {
        pthread_mutex_unlock(&gpu->lock);
}

static bool pid_dead(pid_t pid) {
        char path[64], buf[512];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int) pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return kill(pid, 0) < 0 && errno == ESRCH;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        if (n <= 0)
                return false;
        buf[n] = '\0';
        const char *p = strrchr(buf, ')');
        return p && (p[2] == 'Z' || p[2] == 'X');
}

/* The driver frees a dead process's memory, without clearing it. Lock held. Each owner's
 * liveness is read once per call (there are thousands of blocks, a handful of owners). */
static void reclaim_dead(void) {
        struct {
                pid_t pid;
                bool dead;
        } seen[32];
        unsigned n_seen = 0;
        for (unsigned i = 0; i < BLOCKS_MAX; i++) {
                struct block *b = &gpu->blocks[i];
                if (b->state != BLOCK_USED || b->pid == getpid())
                        continue;
                unsigned k;
                for (k = 0; k < n_seen && seen[k].pid != b->pid; k++)
                        ;
                bool dead;
                if (k < n_seen)
                        dead = seen[k].dead;
                else {
                        dead = pid_dead(b->pid);
                        if (n_seen < ELEMENTSOF(seen))
                                seen[n_seen++] = (__typeof__(seen[0])){ b->pid, dead };
                }
                if (dead) {
                        b->state = BLOCK_FREE;
                        b->freed_seq = ++gpu->seq;
                }
        }
}

static struct block *new_slot(void) {
        for (unsigned i = 0; i < BLOCKS_MAX; i++)
                if (gpu->blocks[i].state == BLOCK_NONE)
                        return &gpu->blocks[i];
        return NULL;
}

int fake_gpu_alloc(uint64_t n, CUdeviceptr *ret) {
        if (fake_gpu_open() < 0)
                return -ENODEV;
        n = n ? (n + FAKE_ALIGN - 1) / FAKE_ALIGN * FAKE_ALIGN : FAKE_ALIGN;
        lock();
        reclaim_dead();
        /* Last freed first: the most recently freed block that fits. */
        struct block *best = NULL;
        for (unsigned i = 0; i < BLOCKS_MAX; i++) {
                struct block *b = &gpu->blocks[i];
                if (b->state == BLOCK_FREE && b->size >= n && (!best || b->freed_seq > best->freed_seq))
                        best = b;
        }
        int r = 0;
        if (best) {
                struct block *rest = best->size - n >= 65536 ? new_slot() : NULL;
                if (rest) {
                        *rest = (struct block){ .off = best->off + n,
                                                .size = best->size - n,
                                                .state = BLOCK_FREE,
                                                .freed_seq = best->freed_seq };
                        best->size = n;
                }
        } else if (gpu->top + n <= gpu->mem_size && (best = new_slot())) {
                *best = (struct block){ .off = gpu->top, .size = n };
                gpu->top += n;
        } else
                r = -ENOMEM;
        if (best) {
                best->state = BLOCK_USED;
                best->pid = getpid();
                *ret = FAKE_DPTR_BASE + best->off;
        }
        unlock();
        return r;
}

static struct block *find_block(CUdeviceptr p) {
        for (unsigned i = 0; i < BLOCKS_MAX; i++) {
                struct block *b = &gpu->blocks[i];
                if (b->state == BLOCK_USED && FAKE_DPTR_BASE + b->off == p)
                        return b;
        }
        return NULL;
}

int fake_gpu_free(CUdeviceptr p) {
        if (!gpu)
                return -EINVAL;
        lock();
        struct block *b = find_block(p);
        if (b) {
                b->state = BLOCK_FREE;
                b->freed_seq = ++gpu->seq;
        }
        unlock();
        return b ? 0 : -EINVAL;
}

void fake_gpu_free_all_mine(void) {
        if (!gpu)
                return;
        lock();
        for (unsigned i = 0; i < BLOCKS_MAX; i++) {
                struct block *b = &gpu->blocks[i];
                if (b->state == BLOCK_USED && b->pid == getpid()) {
                        b->state = BLOCK_FREE;
                        b->freed_seq = ++gpu->seq;
                }
        }
        unlock();
}

uint64_t fake_gpu_mem_size(void) {
        return fake_gpu_open() < 0 ? 0 : gpu->mem_size;
}

uint64_t fake_gpu_mem_used(void) {
        if (fake_gpu_open() < 0)
                return 0;
        uint64_t used = 0;
        lock();
        reclaim_dead();
        for (unsigned i = 0; i < BLOCKS_MAX; i++)
                if (gpu->blocks[i].state == BLOCK_USED)
                        used += gpu->blocks[i].size;
        unlock();
        return used;
}

void *fake_gpu_host(CUdeviceptr p, uint64_t n) {
        p = fake_vmm_translate(p);
        if (!gpu || p < FAKE_DPTR_BASE)
                return NULL;
        uint64_t off = p - FAKE_DPTR_BASE;
        /* Any range inside the arena that was ever allocated: enough for a test double. */
        if (off > gpu->top || n > gpu->top - off)
                return NULL;
        return arena + off;
}

static void futex_wait(_Atomic uint32_t *w, uint32_t v, long ns) {
        struct timespec ts = { .tv_sec = 0, .tv_nsec = ns };
        syscall(SYS_futex, w, FUTEX_WAIT, v, &ts, NULL, 0);
}

static void futex_wake(_Atomic uint32_t *w) {
        syscall(SYS_futex, w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void fake_gpu_run(uint64_t ns, uint64_t *ret_start, uint64_t *ret_end) {
        uint32_t t = atomic_fetch_add(&gpu->next_ticket, 1);
        atomic_store(&gpu->ticket_pid[t % TICKETS], getpid());
        for (;;) {
                uint32_t s = atomic_load(&gpu->serving);
                if (s == t)
                        break;
                futex_wait(&gpu->serving, s, 5000000);
                /* Still the same ticket after a while: skip it if its process is gone. */
                int32_t holder = atomic_load(&gpu->ticket_pid[s % TICKETS]);
                if (atomic_load(&gpu->serving) == s && holder > 0 && pid_dead(holder) &&
                    atomic_compare_exchange_strong(&gpu->serving, &s, s + 1))
                        futex_wake(&gpu->serving);
        }
        uint64_t start = fake_now_ns(), end = start + ns;
        struct timespec ts = { .tv_sec = (time_t) (end / 1000000000u),
                               .tv_nsec = (long) (end % 1000000000u) };
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
                ;
        *ret_start = start;
        *ret_end = fake_now_ns();
        atomic_store(&gpu->ticket_pid[t % TICKETS], 0);
        atomic_fetch_add(&gpu->serving, 1);
        futex_wake(&gpu->serving);
}
