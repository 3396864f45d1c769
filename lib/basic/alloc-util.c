/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* alloc-util.c — growable arrays (see GREEDY_REALLOC in macro.h) and NULL-safe qsort/bsearch. */
#include <stdint.h>
#include <stdlib.h>

#include "macro.h"

bool greedy_realloc(void **p, size_t *allocated, size_t need, size_t size) {
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

void qsort_safe(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *)) {
        if (n > 1)
                qsort(base, n, size, cmp);
}

void *bsearch_safe(const void *key, const void *base, size_t n, size_t size,
                   int (*cmp)(const void *, const void *)) {
        return n > 0 ? bsearch(key, base, n, size, cmp) : NULL;
}
