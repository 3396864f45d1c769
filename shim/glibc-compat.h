/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * glibc-compat.h — makes libvgpu-cuda.so load into containers whose glibc is as old as 2.28
 * (UBI 8, Debian 10/11, Ubuntu 20.04), although it is built against a newer one. Force-included
 * (-include) into every file of the shim, and only there.
 *
 * A shared object asks for each libc symbol at the version it was linked against, and the
 * dynamic loader refuses the whole object when one is missing ("version `GLIBC_2.34' not
 * found"): glibc 2.34 moved dlopen and the pthread calls into libc.so.6 under new versions,
 * 2.33 made stat/fstat real symbols, 2.30 added gettid. So:
 *   - dlopen, dlvsym and the pthread calls are bound to the versions they have had since the
 *     architecture's first glibc (.symver); the library also needs libdl.so.2 and
 *     libpthread.so.0 (meson.build), which define them on glibc < 2.34 and are empty stubs after;
 *   - stat/fstat go through statx (2.28) and gettid through the system call, so their new
 *     symbols are not used at all.
 * tests/shim/glibc-versions.sh fails the build's tests when a symbol newer than 2.28 appears.
 */
#pragma once

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#if defined(__x86_64__)
#define VGPU_GLIBC_BASE   "GLIBC_2.2.5"
#define VGPU_GLIBC_ROBUST "GLIBC_2.12"
#elif defined(__aarch64__)
#define VGPU_GLIBC_BASE   "GLIBC_2.17"
#define VGPU_GLIBC_ROBUST "GLIBC_2.17"
#endif

#ifdef VGPU_GLIBC_BASE
__asm__(".symver dlopen,dlopen@" VGPU_GLIBC_BASE);
__asm__(".symver dlvsym,dlvsym@" VGPU_GLIBC_BASE);
__asm__(".symver pthread_once,pthread_once@" VGPU_GLIBC_BASE);
__asm__(".symver pthread_mutex_trylock,pthread_mutex_trylock@" VGPU_GLIBC_BASE);
__asm__(".symver pthread_mutexattr_init,pthread_mutexattr_init@" VGPU_GLIBC_BASE);
__asm__(".symver pthread_mutexattr_destroy,pthread_mutexattr_destroy@" VGPU_GLIBC_BASE);
__asm__(".symver pthread_mutexattr_setpshared,pthread_mutexattr_setpshared@" VGPU_GLIBC_BASE);
__asm__(".symver pthread_mutexattr_setrobust,pthread_mutexattr_setrobust@" VGPU_GLIBC_ROBUST);
__asm__(".symver pthread_mutex_consistent,pthread_mutex_consistent@" VGPU_GLIBC_ROBUST);
#endif

static inline int compat_statx(int dirfd, const char *path, int flags, struct stat *ret) {
        struct statx x;
        if (statx(dirfd, path, flags, STATX_BASIC_STATS, &x) < 0)
                return -1;
        memset(ret, 0, sizeof(*ret));
        ret->st_dev = makedev(x.stx_dev_major, x.stx_dev_minor);
        ret->st_rdev = makedev(x.stx_rdev_major, x.stx_rdev_minor);
        ret->st_ino = x.stx_ino;
        ret->st_mode = x.stx_mode;
        ret->st_nlink = x.stx_nlink;
        ret->st_uid = x.stx_uid;
        ret->st_gid = x.stx_gid;
        ret->st_size = (off_t) x.stx_size;
        ret->st_blksize = (blksize_t) x.stx_blksize;
        ret->st_blocks = (blkcnt_t) x.stx_blocks;
        ret->st_atim = (struct timespec){ x.stx_atime.tv_sec, x.stx_atime.tv_nsec };
        ret->st_mtim = (struct timespec){ x.stx_mtime.tv_sec, x.stx_mtime.tv_nsec };
        ret->st_ctim = (struct timespec){ x.stx_ctime.tv_sec, x.stx_ctime.tv_nsec };
        return 0;
}

#define stat(path, st)  compat_statx(AT_FDCWD, (path), 0, (st))
#define lstat(path, st) compat_statx(AT_FDCWD, (path), AT_SYMLINK_NOFOLLOW, (st))
#define fstat(fd, st)   compat_statx((fd), "", AT_EMPTY_PATH, (st))
#define gettid()        ((pid_t) syscall(SYS_gettid))
