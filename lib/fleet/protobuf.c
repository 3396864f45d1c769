/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* protobuf.c — the protobuf wire format, written and read (see protobuf.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "basic/macro.h"
#include "protobuf.h"

void pb_writer_free(struct pb_writer *w) {
        free(w->data);
        *w = (struct pb_writer){};
}

static void put_raw(struct pb_writer *w, const void *p, size_t n) {
        if (w->oom)
                return;
        if (!GREEDY_REALLOC(w->data, w->allocated, w->len + n + 1)) {
                w->oom = true;
                return;
        }
        if (n > 0)
                memcpy(w->data + w->len, p, n);
        w->len += n;
}

static void put_uvarint(struct pb_writer *w, uint64_t v) {
        uint8_t b[10];
        size_t n = 0;
        do {
                b[n] = v & 0x7f;
                v >>= 7;
                if (v)
                        b[n] |= 0x80;
                n++;
        } while (v);
        put_raw(w, b, n);
}

static void put_tag(struct pb_writer *w, unsigned field, enum pb_wire wire) {
        put_uvarint(w, (uint64_t) field << 3 | wire);
}

void pb_put_varint(struct pb_writer *w, unsigned field, uint64_t v) {
        put_tag(w, field, PB_VARINT);
        put_uvarint(w, v);
}

void pb_put_bytes(struct pb_writer *w, unsigned field, const void *p, size_t n) {
        put_tag(w, field, PB_LEN);
        put_uvarint(w, n);
        put_raw(w, p, n);
}

void pb_put_string(struct pb_writer *w, unsigned field, const char *s) {
        pb_put_bytes(w, field, s ? s : "", s ? strlen(s) : 0);
}

void pb_put_message(struct pb_writer *w, unsigned field, const struct pb_writer *sub) {
        if (sub->oom)
                w->oom = true;
        pb_put_bytes(w, field, sub->data, sub->len);
}

static int get_uvarint(struct pb_reader *r, uint64_t *ret) {
        uint64_t v = 0;
        for (unsigned shift = 0; shift < 64; shift += 7) {
                if (r->p >= r->end)
                        return -EBADMSG;
                uint8_t b = *r->p++;
                v |= (uint64_t) (b & 0x7f) << shift;
                if (!(b & 0x80)) {
                        *ret = v;
                        return 0;
                }
        }
        return -EBADMSG; /* more than ten bytes */
}

int pb_next(struct pb_reader *r, struct pb_field *f) {
        if (r->p >= r->end)
                return 0;
        uint64_t tag;
        if (get_uvarint(r, &tag) < 0 || (tag >> 3) == 0 || (tag >> 3) > UINT32_MAX)
                return -EBADMSG;
        *f = (struct pb_field){ .number = (unsigned) (tag >> 3), .wire = (enum pb_wire)(tag & 7) };
        switch (f->wire) {
        case PB_VARINT:
                return get_uvarint(r, &f->varint) < 0 ? -EBADMSG : 1;
        case PB_I64:
        case PB_I32: {
                size_t n = f->wire == PB_I64 ? 8 : 4;
                if ((size_t) (r->end - r->p) < n)
                        return -EBADMSG;
                for (size_t i = 0; i < n; i++)
                        f->varint |= (uint64_t) r->p[i] << (8 * i); /* little-endian */
                r->p += n;
                return 1;
        }
        case PB_LEN: {
                uint64_t n;
                if (get_uvarint(r, &n) < 0 || n > (uint64_t) (r->end - r->p))
                        return -EBADMSG;
                f->data = r->p;
                f->len = (size_t) n;
                r->p += n;
                return 1;
        }
        default: /* groups (3, 4) are not proto3 */
                return -EBADMSG;
        }
}

char *pb_strndup(const struct pb_field *f, size_t *ret_len) {
        char *s = malloc(f->len + 1);
        if (!s)
                return NULL;
        if (f->len > 0)
                memcpy(s, f->data, f->len);
        s[f->len] = '\0';
        if (ret_len)
                *ret_len = f->len;
        return s;
}
