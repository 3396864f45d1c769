/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * alloc-track.c — this process's live device allocations: what each one was charged and how
 * much to scrub, found again by pointer, handle or array when it is freed. The free calls carry
 * only the pointer, so without this the charge could not be returned exactly.
 *
 * An open-addressing hash table (linear probing, backward-shift deletion, no tombstones), grown
 * at 1/2 load; one mutex, held for a few hundred nanoseconds per allocation or free.
 */
#include <stdlib.h>
#include <string.h>

#include "shim.h"

struct slot {
        bool used;
        struct shim_alloc a;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct slot *table;
static size_t capacity, count; /* capacity: a power of two, or 0 */

static size_t hash(enum shim_space space, uint64_t key) {
        uint64_t h = (key ^ ((uint64_t) space << 61)) * UINT64_C(0x9e3779b97f4a7c15);
        return (size_t) (h >> 17);
}

static size_t find(enum shim_space space, uint64_t key) {
        size_t mask = capacity - 1;
        for (size_t i = hash(space, key) & mask;; i = (i + 1) & mask)
                if (!table[i].used || (table[i].a.space == space && table[i].a.key == key))
                        return i;
}

static int grow(void) {
        size_t n = capacity ? capacity * 2 : 256;
        struct slot *t = calloc(n, sizeof(*t));
        if (!t)
                return -ENOMEM;
        struct slot *old = table;
        size_t old_n = capacity;
        table = t;
        capacity = n;
        for (size_t i = 0; i < old_n; i++)
                if (old[i].used)
                        table[find(old[i].a.space, old[i].a.key)] = old[i];
        free(old);
        return 0;
}

int shim_track_add(const struct shim_alloc *a) {
        int r = 0;
        pthread_mutex_lock(&lock);
        if ((count + 1) * 2 > capacity)
                r = grow();
        if (r == 0) {
                size_t i = find(a->space, a->key);
                if (!table[i].used)
                        count++;
                table[i] = (struct slot){ .used = true, .a = *a };
        }
        pthread_mutex_unlock(&lock);
        return r;
}

/* Remove slot i and shift the following cluster back so that lookups need no tombstones. */
static void remove_at(size_t i) {
        size_t mask = capacity - 1;
        table[i].used = false;
        count--;
        for (size_t j = (i + 1) & mask; table[j].used; j = (j + 1) & mask) {
                size_t home = hash(table[j].a.space, table[j].a.key) & mask;
                /* Move j into the hole at i unless its home lies cyclically in (i, j]. */
                bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
                if (stays)
                        continue;
                table[i] = table[j];
                table[j].used = false;
                i = j;
        }
}

bool shim_track_take(enum shim_space space, uint64_t key, struct shim_alloc *ret) {
        bool found = false;
        pthread_mutex_lock(&lock);
        if (capacity > 0) {
                size_t i = find(space, key);
                if (table[i].used) {
                        *ret = table[i].a;
                        remove_at(i);
                        found = true;
                }
        }
        pthread_mutex_unlock(&lock);
        return found;
}

void shim_track_drain(CUcontext ctx, void (*fn)(const struct shim_alloc *a, void *userdata), void *userdata) {
        /* Collect under the lock, call fn outside it: fn calls into the driver. */
        pthread_mutex_lock(&lock);
        struct shim_alloc *batch = count ? malloc(count * sizeof(*batch)) : NULL;
        size_t n = 0;
        for (size_t i = 0; batch && i < capacity;) {
                if (table[i].used && (!ctx || table[i].a.ctx == ctx)) {
                        batch[n++] = table[i].a;
                        remove_at(i); /* shifts a later entry into i: look at i again */
                } else
                        i++;
        }
        pthread_mutex_unlock(&lock);
        for (size_t i = 0; i < n; i++)
                fn(&batch[i], userdata);
        free(batch);
}

void shim_track_reset(void) {
        /* After fork: the parent's allocations are not the child's. */
        pthread_mutex_init(&lock, NULL);
        free(table);
        table = NULL;
        capacity = count = 0;
}
