/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sched-file.c — the GPU's scheduler file, BDF.shm (slice/slice-shm.h), as its users touch it:
 * every tenant of the GPU can write it, so no one maps it for loads and stores (a tenant that
 * truncated it would SIGBUS every other tenant). The state is read and written whole with
 * pread()/pwrite() under flock() — a few microseconds, once per turn change — into a copy that
 * slice-sched.c works on; the file is mapped only so that its wake word can serve as a futex
 * (the kernel answers EFAULT on a truncated file where a load would be SIGBUS).
 *
 * flock() locks belong to the open file description: a thread of the same process, or a child
 * sharing the descriptor after fork(), would get the lock again. So a process-local mutex
 * serializes the threads, and a child reopens the file before its first lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "basic/error-util.h"
#include "slice.h"

/* A holder updates the state in microseconds; one that holds the lock this long is stuck or
 * hostile, and the caller runs without the scheduler rather than wait for it. */
#define LOCK_PATIENCE_NS UINT64_C(20000000)

struct slice_sched_file {
        int fd;
        pid_t pid; /* the process that opened fd */
        char *path;
        void *futex_page; /* the file's first page, for futex syscalls only */
        size_t page_size;
        pthread_mutex_t lock;
        uint32_t wake_before;
        struct slice_shm state; /* the copy between begin and end */
};

static const char *state_problem(const struct slice_shm *shm, ssize_t n) {
        if (n != (ssize_t) sizeof(*shm))
                return "a short slice scheduler file";
        return slice_sched_problem(shm);
}

struct slice_sched_file *slice_sched_file_close(struct slice_sched_file *f) {
        if (!f)
                return NULL;
        if (f->futex_page)
                munmap(f->futex_page, f->page_size);
        if (f->fd >= 0)
                close(f->fd);
        pthread_mutex_destroy(&f->lock);
        free(f->path);
        free(f);
        return NULL;
}

/* Open path as f's file (again, in a child after fork()). */
static int attach(struct slice_sched_file *f) {
        int fd = open(f->path, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return -EPROTO;
        }
        if (f->futex_page)
                munmap(f->futex_page, f->page_size);
        /* read-only is enough for FUTEX_WAIT / FUTEX_WAKE; never dereferenced */
        void *p = mmap(NULL, f->page_size, PROT_READ, MAP_SHARED, fd, 0);
        f->futex_page = p == MAP_FAILED ? NULL : p;
        if (f->fd >= 0)
                close(f->fd);
        f->fd = fd;
        f->pid = getpid();
        return 0;
}

static int file_new(const char *path, struct slice_sched_file **ret) {
        struct slice_sched_file *f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        f->fd = -1;
        f->page_size = (size_t) sysconf(_SC_PAGESIZE);
        pthread_mutex_init(&f->lock, NULL);
        f->path = strdup(path);
        if (!f->path) {
                slice_sched_file_close(f);
                return -ENOMEM;
        }
        *ret = f;
        return 0;
}

int slice_sched_file_open(const char *path, struct slice_sched_file **ret, struct vgpu_error *err) {
        struct slice_sched_file *f = NULL;
        int r = file_new(path, &f);
        if (r < 0)
                return vgpu_error_set(err, r, "%s: out of memory", path);
        r = attach(f);
        if (r < 0) {
                slice_sched_file_close(f);
                return r == -EPROTO ? vgpu_error_set(err, r, "%s: not a slice scheduler file", path)
                                    : vgpu_error_set_errno(err, r, "%s: cannot open slice scheduler", path);
        }
        r = slice_sched_file_read(f, &f->state, err);
        if (r < 0) {
                slice_sched_file_close(f);
                return r;
        }
        *ret = f;
        return 0;
}

int slice_sched_file_create(const char *path, const struct slice_gpu_params *gpu, mode_t mode,
                            struct slice_sched_file **ret, struct vgpu_error *err) {
        uint64_t quantum = gpu && gpu->quantum_ns ? gpu->quantum_ns : SLICE_QUANTUM_DEFAULT_NS;
        size_t page = (size_t) sysconf(_SC_PAGESIZE);
        _cleanup_free_ struct slice_shm *init = calloc(1, page);
        if (!init)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        if (slice_sched_init(init, gpu) < 0)
                return vgpu_error_set(err, -EINVAL, "time slice %llu ns: expected 1 to 30 ms",
                                      (unsigned long long) quantum);

        /* written whole under another name, then linked: nobody sees half a file */
        char tmp[4096];
        if (snprintf(tmp, sizeof(tmp), "%s.new", path) >= (int) sizeof(tmp))
                return vgpu_error_set(err, -ENAMETOOLONG, "%s: path too long", path);
        (void) unlink(tmp);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd < 0)
                return vgpu_error_set_errno(err, -errno, "%s: cannot create slice scheduler", tmp);
        int r = 0;
        /* open() applies the umask; fchmod gives the mode asked for */
        ssize_t n = fchmod(fd, mode) < 0 ? -1 : pwrite(fd, init, page, 0);
        if (n != (ssize_t) page)
                r = vgpu_error_set_errno(err, n < 0 ? -errno : -EIO, "%s: cannot write slice scheduler", tmp);
        else if (link(tmp, path) < 0)
                r = vgpu_error_set_errno(err, -errno, "%s: cannot create slice scheduler", path);
        close(fd);
        unlink(tmp);
        if (r < 0)
                return r;
        struct slice_sched_file *f = NULL;
        r = slice_sched_file_open(path, &f, err);
        if (r < 0)
                return r;
        if (ret)
                *ret = f;
        else
                slice_sched_file_close(f);
        return 0;
}

int slice_sched_file_read(struct slice_sched_file *f, struct slice_shm *ret, struct vgpu_error *err) {
        ssize_t n = pread(f->fd, ret, sizeof(*ret), 0);
        const char *problem = state_problem(ret, n);
        if (problem)
                return vgpu_error_set(err, -EPROTO, "%s: %s", f->path, problem);
        slice_sched_repair(ret);
        return 0;
}

static int lock_file(struct slice_sched_file *f) {
        if (f->pid != getpid()) {
                int r = attach(f); /* a child of fork(): its own lock */
                if (r < 0)
                        return r;
        }
        uint64_t start = slice_now_ns();
        for (unsigned spins = 0;; spins++) {
                if (flock(f->fd, LOCK_EX | LOCK_NB) == 0)
                        return 0;
                if (errno != EWOULDBLOCK && errno != EINTR)
                        return -errno;
                if (slice_now_ns() - start > LOCK_PATIENCE_NS)
                        return -EBUSY;
                if (spins > 8) {
                        struct timespec ts = { .tv_nsec = 20000 };
                        nanosleep(&ts, NULL);
                } else
                        sched_yield();
        }
}

int slice_sched_file_begin(struct slice_sched_file *f, struct slice_shm **ret) {
        pthread_mutex_lock(&f->lock);
        int r = lock_file(f);
        if (r < 0) {
                pthread_mutex_unlock(&f->lock);
                return r;
        }
        r = slice_sched_file_read(f, &f->state, NULL);
        if (r < 0) {
                flock(f->fd, LOCK_UN);
                pthread_mutex_unlock(&f->lock);
                return r;
        }
        f->wake_before = atomic_load(&f->state.sched.wake);
        *ret = &f->state;
        return 0;
}

static void futex_wake_all(struct slice_sched_file *f) {
        if (f->futex_page)
                syscall(SYS_futex, (char *) f->futex_page + offsetof(struct slice_shm, sched.wake),
                        FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

int slice_sched_file_end(struct slice_sched_file *f, bool changed) {
        int r = 0;
        if (changed && pwrite(f->fd, &f->state, sizeof(f->state), 0) != (ssize_t) sizeof(f->state))
                r = -EIO;
        bool wake = atomic_load(&f->state.sched.wake) != f->wake_before;
        flock(f->fd, LOCK_UN);
        pthread_mutex_unlock(&f->lock);
        if (changed && wake)
                futex_wake_all(f);
        return r;
}

void slice_sched_file_wait(struct slice_sched_file *f, uint32_t wake, uint64_t until) {
        uint64_t now = slice_now_ns();
        if (until <= now)
                return;
        uint64_t d = until - now;
        struct timespec ts = { .tv_sec = (time_t) (d / 1000000000), .tv_nsec = (long) (d % 1000000000) };
        /* A shared (not private) futex: the word is in a file mapping of several processes. On a
         * file someone truncated it fails (EFAULT): then the time-out is all there is. */
        if (!f->futex_page ||
            syscall(SYS_futex, (char *) f->futex_page + offsetof(struct slice_shm, sched.wake), FUTEX_WAIT,
                    wake, &ts, NULL, 0) < 0) {
                if (errno == EFAULT || !f->futex_page)
                        nanosleep(&ts, NULL);
        }
}
