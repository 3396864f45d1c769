/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * protobuf.h — the protobuf wire format (proto3), as far as etcd's gRPC API needs it: varints,
 * int64/bool/enum fields, bytes and nested messages; written into a growing buffer and read
 * field by field.
 *
 * Why not protobuf-c: its generated code calls the library directly, so libvgpu.so would link
 * libprotobuf-c for every program, vgpuctl's `list` included, though only vgpud in a fleet and
 * vgpu-broker talk to etcd (libcurl is loaded on first use for the same reason, basic/curl-dl.h).
 * The wire format is small and fixed (https://protobuf.dev/programming-guides/encoding/); the
 * few messages are written out by hand in etcd-grpc.c and checked against a real etcd.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pb_wire { PB_VARINT = 0, PB_I64 = 1, PB_LEN = 2, PB_I32 = 5 };

struct pb_writer {
        uint8_t *data;
        size_t len, allocated;
        bool oom; /* a write failed for memory: the message is incomplete */
};

void pb_writer_free(struct pb_writer *w);
/* field = v as a varint (int64, uint64, bool, enum); proto3 leaves out zero: so does the caller */
void pb_put_varint(struct pb_writer *w, unsigned field, uint64_t v);
void pb_put_bytes(struct pb_writer *w, unsigned field, const void *p, size_t n);
void pb_put_string(struct pb_writer *w, unsigned field, const char *s);
/* field = the message written in sub (which is left as it was) */
void pb_put_message(struct pb_writer *w, unsigned field, const struct pb_writer *sub);

struct pb_reader {
        const uint8_t *p, *end;
};

struct pb_field {
        unsigned number;
        enum pb_wire wire;
        uint64_t varint;     /* PB_VARINT, PB_I64, PB_I32 */
        const uint8_t *data; /* PB_LEN */
        size_t len;
};

static inline struct pb_reader pb_reader_new(const void *p, size_t n) {
        return (struct pb_reader){ (const uint8_t *) p, (const uint8_t *) p + n };
}
/* The next field: 1, 0 at the end, -EBADMSG when the bytes are not a message. */
int pb_next(struct pb_reader *r, struct pb_field *f);
/* A PB_LEN field's bytes as a NUL-terminated copy (*ret_len without the NUL); NULL for memory. */
char *pb_strndup(const struct pb_field *f, size_t *ret_len);
