/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* sysfs-batch.c — attribute reads in io_uring rounds, or one by one (see sysfs-batch.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "macro.h"
#include "sysfs-batch.h"
#include "sysfs.h"

#if HAVE_LIBURING
#include <liburing.h>
#endif

static _Thread_local bool used_io_uring;

bool sysfs_batch_used_io_uring(void) {
        return used_io_uring;
}

static void read_plain(struct sysfs_batch_entry *e) {
        e->full = false;
        e->result = e->path ? sysfs_read_at_full(e->dirfd, e->path, e->buf, e->size, &e->full) : -ENOENT;
}

#if HAVE_LIBURING
static bool io_uring_allowed(void) {
        const char *e = getenv("VGPU_IO_URING");
        return !e || !streq(e, "0");
}

/* Files per round: the descriptors a round holds open (two threads scanning stay far below the
 * usual limit of 1024) and the opens one io_uring_enter carries. */
#define ROUND 128
_Static_assert(SYSFS_BATCH_MAX_FDS == ROUND + 1, "SYSFS_BATCH_MAX_FDS counts a round and the ring");
/* user_data of a close: its completion is only counted */
#define CLOSE_TAG UINT64_MAX

/* Submit what is queued, take `expected` completions; an open's res goes to fds[user_data].
 * -errno when the ring itself fails. */
static int submit_and_collect(struct io_uring *ring, unsigned expected, int *fds) {
        int r = io_uring_submit_and_wait(ring, expected);
        if (r < 0)
                return r;
        for (unsigned seen = 0; seen < expected; seen++) {
                struct io_uring_cqe *cqe;
                if ((r = io_uring_wait_cqe(ring, &cqe)) < 0)
                        return r;
                if (cqe->user_data != CLOSE_TAG && cqe->user_data < ROUND)
                        fds[cqe->user_data] = cqe->res;
                io_uring_cqe_seen(ring, cqe);
        }
        return 0;
}

/* Queue the closes of the descriptors a round opened; returns how many. */
static unsigned queue_closes(struct io_uring *ring, const int *fds, size_t n) {
        unsigned queued = 0;
        for (size_t i = 0; i < n; i++) {
                if (fds[i] < 0)
                        continue;
                struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
                io_uring_prep_close(sqe, fds[i]);
                io_uring_sqe_set_data64(sqe, CLOSE_TAG);
                queued++;
        }
        return queued;
}

/*
 * The rounds. Opens (and the previous round's closes) go in one submission each; the reads in
 * between are plain read(2) calls: io_uring would run them on its worker threads (kernfs and
 * tmpfs files cannot be read without blocking as io_uring asks), which cost more than the
 * syscall they save, where opens and closes complete inline. An entry whose open failed with
 * anything but ENOENT gets -EAGAIN, for the plain path to decide.
 */
static int batch_rounds(struct io_uring *ring, struct sysfs_batch_entry *entries, size_t n) {
        int fds[ROUND], prev_fds[ROUND];
        size_t prev_n = 0;
        int r = 0;
        for (size_t done = 0; done < n; done += ROUND) {
                struct sysfs_batch_entry *e = entries + done;
                size_t m = n - done < ROUND ? n - done : ROUND;
                unsigned expected = queue_closes(ring, prev_fds, prev_n);
                for (size_t i = 0; i < m; i++) {
                        fds[i] = -ENOENT;
                        if (!e[i].path)
                                continue;
                        struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
                        io_uring_prep_openat(sqe, e[i].dirfd, e[i].path,
                                             O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0);
                        io_uring_sqe_set_data64(sqe, i);
                        expected++;
                }
                prev_n = 0;
                if ((r = submit_and_collect(ring, expected, fds)) < 0)
                        break;
                for (size_t i = 0; i < m; i++) {
                        if (fds[i] >= 0) {
                                ssize_t got = e[i].size > 0 ? read(fds[i], e[i].buf, e[i].size - 1) : -1;
                                e[i].full = got >= 0 && (size_t) got == e[i].size - 1;
                                e[i].result = got < 0 ? -EAGAIN
                                                      : (int) strip_trailing_space(e[i].buf, (size_t) got);
                        } else {
                                e[i].full = false;
                                e[i].result = fds[i] == -ENOENT ? -ENOENT : -EAGAIN;
                        }
                        prev_fds[i] = fds[i];
                }
                prev_n = m;
        }
        unsigned expected = queue_closes(ring, prev_fds, prev_n);
        if (expected > 0 && submit_and_collect(ring, expected, NULL) < 0)
                for (size_t i = 0; i < prev_n; i++)
                        if (prev_fds[i] >= 0)
                                close(prev_fds[i]);
        return r;
}
#endif

int sysfs_batch_read(struct sysfs_batch_entry *entries, size_t n) {
        used_io_uring = false;
#if HAVE_LIBURING
        struct io_uring ring;
        /* a handful of files is not worth a ring */
        if (n >= 8 && io_uring_allowed()) {
                /* the newer setup flags cut the cost of a round; older kernels refuse them */
                struct io_uring_params p = { .flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN |
                                                      IORING_SETUP_SINGLE_ISSUER };
                int r = io_uring_queue_init_params(ROUND * 2, &ring, &p);
                if (r < 0) {
                        p = (struct io_uring_params){};
                        r = io_uring_queue_init_params(ROUND * 2, &ring, &p);
                }
                if (r == 0) {
                        r = batch_rounds(&ring, entries, n);
                        io_uring_queue_exit(&ring);
                }
                if (r == 0) {
                        used_io_uring = true;
                        for (size_t i = 0; i < n; i++)
                                if (entries[i].result == -EAGAIN)
                                        read_plain(&entries[i]);
                        return 0;
                }
                /* no ring (ENOSYS, EPERM: seccomp or io_uring_disabled, ENOMEM: memlock), or it
                 * failed midway: the plain way, from the start */
        }
#endif
        for (size_t i = 0; i < n; i++)
                read_plain(&entries[i]);
        return 0;
}
