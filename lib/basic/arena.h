/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * arena.h — strings that live and die together, copied into a few large blocks.
 *
 * A large host's snapshot holds some 50,000 small strings (every type's id, name, description,
 * device_api) that are all freed at once with the snapshot. One malloc and one free each were
 * a measurable part of a `types` scan, and types of one device model share their static
 * strings, which per-string ownership could only express with a flag in the public struct.
 * An arena owns them all: no flag, one free per block.
 *
 * Not thread-safe: threads fill arenas of their own and hand them over with arena_take().
 */
#pragma once

#include <stddef.h>

struct arena_block;

struct arena {
        struct arena_block *blocks; /* the newest first; it is the one being filled */
};

/* A copy of s (of its first n bytes, NUL added) that lives until arena_done(); NULL without
 * memory. */
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_strdup(struct arena *a, const char *s);

/* Move every string of src into dst (src is left empty); O(blocks of src). */
void arena_take(struct arena *dst, struct arena *src);

/* Free every string; the arena is empty and usable again. */
void arena_done(struct arena *a);
