/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* arena.c — a bump allocator for strings freed together (see arena.h). */
#include <stdlib.h>
#include <string.h>

#include "arena.h"

/* 16 KiB blocks: a large host's type ids fill about ten; a string longer than a block gets
 * a block of its own. */
#define ARENA_BLOCK_SIZE (16384 - sizeof(struct arena_block))

struct arena_block {
        struct arena_block *next;
        size_t used, size;
        char data[];
};

char *arena_strndup(struct arena *a, const char *s, size_t n) {
        struct arena_block *b = a->blocks;
        if (!b || b->size - b->used < n + 1) {
                size_t size = n + 1 > ARENA_BLOCK_SIZE ? n + 1 : ARENA_BLOCK_SIZE;
                struct arena_block *nb = malloc(sizeof(*nb) + size);
                if (!nb)
                        return NULL;
                *nb = (struct arena_block){ .size = size };
                /* an oversized string's block goes behind the current one, which keeps filling */
                if (b && size > ARENA_BLOCK_SIZE) {
                        nb->next = b->next;
                        b->next = nb;
                } else {
                        nb->next = b;
                        a->blocks = nb;
                }
                b = nb;
        }
        char *p = b->data + b->used;
        memcpy(p, s, n);
        p[n] = '\0';
        b->used += n + 1;
        return p;
}

char *arena_strdup(struct arena *a, const char *s) {
        return arena_strndup(a, s, strlen(s));
}

void arena_take(struct arena *dst, struct arena *src) {
        if (!src->blocks)
                return;
        /* src's blocks go behind dst's current one, so dst keeps filling where it was */
        struct arena_block *last = src->blocks;
        while (last->next)
                last = last->next;
        if (dst->blocks) {
                last->next = dst->blocks->next;
                dst->blocks->next = src->blocks;
        } else
                dst->blocks = src->blocks;
        src->blocks = NULL;
}

void arena_done(struct arena *a) {
        for (struct arena_block *b = a->blocks, *next; b; b = next) {
                next = b->next;
                free(b);
        }
        a->blocks = NULL;
}
