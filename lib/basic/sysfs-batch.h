/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * sysfs-batch.h — many attribute reads at once.
 *
 * A large host's scan reads thousands of small attributes (12,288 types' available_instances,
 * every PCI function's uevent); one by one each costs openat, read and close. The batch opens
 * and closes them through io_uring, a round of 128 opens (with the previous round's closes) per
 * io_uring_enter, and reads each with one read(2): three syscalls per file become one. The
 * reads stay plain because io_uring cannot read kernfs or tmpfs files without blocking and
 * hands them to its worker threads, which costs more than the syscall saved (measured on 6.18:
 * 20x the context switches and more CPU time than the plain loop). An open whose dentries are
 * not cached yet (a first scan of real sysfs) goes to those workers too: more CPU, but the
 * opens then run in parallel, so less wall time (400 uevent files of this machine's /sys:
 * 5-6 ms best instead of 20-24 ms, CPU 7-8 ms instead of 5).
 *
 * The other shapes were measured too (6.18, the 12,288 available_instances files of the bench
 * host, CPU per file, best of 12 passes): one by one 3.9-4.2 us; this batch 3.1-3.2 us; with
 * rounds of 32 3.6 us, of 512 3.4 us; with IORING_SETUP_DEFER_TASKRUN or a registered ring fd
 * 3.4 us; linked openat (direct descriptor), read (fixed file) and close chains 5.2-5.8 us and
 * 7.8 us with IOSQE_ASYNC, as every read then goes to a worker. The reads' cost is the kernel's
 * own (path walk, file setup and teardown); what spreads it is threads, and the callers already
 * run a batch per thread on every core (basic/parallel.h).
 *
 * Where io_uring cannot be used (libvgpu built without liburing, a kernel without it, io_uring
 * denied by seccomp or kernel.io_uring_disabled, no locked memory for the ring), the same reads
 * run one by one with sysfs_read_at(). Both give the same results: an entry io_uring failed on
 * with anything but "no such file" is read again the plain way, so a kernel quirk can cost
 * time, never a different answer. VGPU_IO_URING=0 in the environment forces the plain path
 * (tests compare the two; an administrator can rule io_uring out).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* The descriptors one sysfs_batch_read() holds open at once: a round's files and the ring. (A
 * round's closes are submitted before the next round's opens and complete inline on kernfs
 * and tmpfs; an open that still finds no free descriptor is read again the plain way.) */
#define SYSFS_BATCH_MAX_FDS (128 + 1)

struct sysfs_batch_entry {
        int dirfd;        /* path is relative to it (or AT_FDCWD) */
        const char *path; /* NULL: skipped, result stays -ENOENT */
        char *buf;
        size_t size; /* of buf, at least 1: at most size - 1 bytes are read */
        int result;  /* sysfs_read_at()'s: the length with trailing blanks removed, or -errno */
        bool full;   /* the read filled buf (size - 1 bytes): the file may hold more */
};

/* Read every entry as sysfs_read_at(e->dirfd, e->path, e->buf, e->size) would. Returns 0, or
 * -ENOMEM when not even the plain path could run (entries keep their results so far). */
int sysfs_batch_read(struct sysfs_batch_entry *entries, size_t n);

/* For tests and the benchmark: whether the last sysfs_batch_read() in this thread used
 * io_uring for its reads (false: the plain path). */
bool sysfs_batch_used_io_uring(void);
