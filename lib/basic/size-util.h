/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * size-util.h — the binary size units (K, M, G, T) as both a user's "4G" and a driver's "1024M"
 * mean them. The two parsers differ on purpose (a user may write "1.5G" or bytes; a driver's type
 * text must carry a unit or it is not trusted), but they read one table.
 */
#pragma once

#include <ctype.h>
#include <stdint.h>

/* The factor of unit letter c (any case), or 0 when c is not a size unit. */
static inline uint64_t size_unit_factor(char c) {
        switch (toupper((unsigned char) c)) {
        case 'K':
                return 1ULL << 10;
        case 'M':
                return 1ULL << 20;
        case 'G':
                return 1ULL << 30;
        case 'T':
                return 1ULL << 40;
        default:
                return 0;
        }
}
