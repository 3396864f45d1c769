/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* alloc-util.c — NULL-safe qsort/bsearch (growable arrays: GREEDY_REALLOC in macro.h). */
#include <stdlib.h>

#include "macro.h"

void qsort_safe(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *)) {
        if (n > 1)
                qsort(base, n, size, cmp);
}

void *bsearch_safe(const void *key, const void *base, size_t n, size_t size,
                   int (*cmp)(const void *, const void *)) {
        return n > 0 ? bsearch(key, base, n, size, cmp) : NULL;
}
