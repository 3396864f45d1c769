/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * macro.h — small language helpers shared by every file of libvgpu and the tools:
 * ownership (`_cleanup_*`, TAKE_PTR), array sizes and growable arrays.
 *
 * Modelled on systemd's src/basic/macro.h: resources are released by the compiler when a
 * variable goes out of scope, so error paths cannot leak, and ownership moves are explicit.
 */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f)   __attribute__((cleanup(f)))
#define _unused_       __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _public_       __attribute__((visibility("default")))
#define _pure_         __attribute__((pure))

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* Return the value of a pointer variable and set the variable to NULL: hands ownership on. */
#define TAKE_PTR(p)                        \
        ({                                 \
                __typeof__(p) _ptr_ = (p); \
                (p) = NULL;                \
                _ptr_;                     \
        })

#define TAKE_FD(fd)              \
        ({                       \
                int _fd_ = (fd); \
                (fd) = -EBADF;   \
                _fd_;            \
        })

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd) {
        if (*fd >= 0)
                close(*fd);
}
#define _cleanup_close_ _cleanup_(closep)

/* Define `name##p(type **)` calling `func(*p)` when *p is not NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func) \
        static inline void func##p(type *p) {   \
                if (*p)                         \
                        func(*p);               \
        }

/*
 * Grow the array *p (holding *allocated elements) so that at least need elements fit.
 * Doubles the allocation, so appending n items costs O(n) copies in total.
 * Returns false on allocation failure and leaves the array untouched.
 */
static inline bool greedy_realloc(void **p, size_t *allocated, size_t need, size_t size) {
        /* inline: the programs use this header too, and link libvgpu.so, which exports nothing of it */
        if (*allocated >= need)
                return true;
        size_t n = *allocated ? *allocated : 8;
        while (n < need) {
                if (n > SIZE_MAX / 2 / size)
                        return false;
                n *= 2;
        }
        void *q = realloc(*p, n * size);
        if (!q)
                return false;
        *p = q;
        *allocated = n;
        return true;
}
#define GREEDY_REALLOC(array, allocated, need) \
        greedy_realloc((void **) &(array), &(allocated), (need), sizeof((array)[0]))

static inline bool streq(const char *a, const char *b) {
        return a && b && __builtin_strcmp(a, b) == 0;
}

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return __builtin_strcmp(a, b) == 0;
}

static inline const char *strempty(const char *s) {
        return s ? s : "";
}

/* qsort()/bsearch() with an empty array: passing NULL with 0 elements is undefined behaviour
 * (glibc declares the base nonnull), and an empty snapshot has NULL arrays. */
void qsort_safe(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *));
void *bsearch_safe(const void *key, const void *base, size_t n, size_t size,
                   int (*cmp)(const void *, const void *));
