/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * hash-util.h — the two hashes the fleet's placement draws with: FNV-1a of a string and the
 * splitmix64 step. Placement (lib/fleet/placement.c) and the broker's index of it
 * (src/vgpu-broker/place-index.c) must draw the same GPU from the same request, in every broker,
 * so both take them from here; the broker's cache hashes its keys with FNV-1a too.
 */
#pragma once

#include <stdint.h>

/* FNV-1a, 64 bits, of s (NULL: the empty string) */
static inline uint64_t fnv1a(const char *s) {
        uint64_t h = UINT64_C(0xcbf29ce484222325);
        for (; s && *s; s++)
                h = (h ^ (unsigned char) *s) * UINT64_C(0x100000001b3);
        return h;
}

/* the next value of the splitmix64 sequence whose state is *x */
static inline uint64_t splitmix64(uint64_t *x) {
        uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
        z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
        return z ^ (z >> 31);
}
