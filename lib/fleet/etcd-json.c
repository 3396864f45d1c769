/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * etcd-json.c — the JSON gateway's encoding: base64 keys and values, int64 fields as strings,
 * proto3's omitted zero fields, and the KeyValue and RangeResponse messages.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd-internal.h"

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *etcd_base64_encode(const void *data, size_t len) {
        const unsigned char *p = data;
        char *out = malloc((len + 2) / 3 * 4 + 1), *o = out;
        if (!out)
                return NULL;
        for (size_t i = 0; i < len; i += 3) {
                uint32_t v = (uint32_t) p[i] << 16;
                if (i + 1 < len)
                        v |= (uint32_t) p[i + 1] << 8;
                if (i + 2 < len)
                        v |= p[i + 2];
                *o++ = b64[(v >> 18) & 63];
                *o++ = b64[(v >> 12) & 63];
                *o++ = i + 1 < len ? b64[(v >> 6) & 63] : '=';
                *o++ = i + 2 < len ? b64[v & 63] : '=';
        }
        *o = '\0';
        return out;
}

/* Each byte's 6 bits plus one, 0 for a byte outside the alphabet: a table, not strchr() over
 * the alphabet per byte, which was the largest libc cost of a broker following a busy fleet's
 * watch (and of its first list of 8,000 GPUs). */
static const unsigned char b64_values[256] = {
        ['A'] = 1,  ['B'] = 2,  ['C'] = 3,  ['D'] = 4,  ['E'] = 5,  ['F'] = 6,  ['G'] = 7,  ['H'] = 8,
        ['I'] = 9,  ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13, ['N'] = 14, ['O'] = 15, ['P'] = 16,
        ['Q'] = 17, ['R'] = 18, ['S'] = 19, ['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24,
        ['Y'] = 25, ['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31, ['f'] = 32,
        ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37, ['l'] = 38, ['m'] = 39, ['n'] = 40,
        ['o'] = 41, ['p'] = 42, ['q'] = 43, ['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48,
        ['w'] = 49, ['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55, ['3'] = 56,
        ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61, ['9'] = 62, ['+'] = 63, ['/'] = 64,
};

static int b64_value(char c) {
        return (int) b64_values[(unsigned char) c] - 1;
}

char *etcd_base64_decode(const char *s, size_t *ret_len) {
        size_t len = strlen(s);
        char *out = malloc(len / 4 * 3 + 4), *o = out;
        if (!out)
                return NULL;
        uint32_t v = 0;
        int bits = 0;
        for (const char *p = s; *p && *p != '='; p++) {
                int d = b64_value(*p);
                if (d < 0) {
                        free(out);
                        return NULL;
                }
                v = (v << 6) | (uint32_t) d;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        *o++ = (char) ((v >> bits) & 0xff);
                }
        }
        *o = '\0';
        if (ret_len)
                *ret_len = (size_t) (o - out);
        return out;
}

char *etcd_prefix_end(const char *prefix) {
        size_t len = strlen(prefix);
        char *end = strdup(prefix);
        if (!end)
                return NULL;
        /* the last byte that is not 0xff, plus one, with what follows cut off */
        while (len > 0) {
                unsigned char c = (unsigned char) end[len - 1];
                if (c < 0xff) {
                        end[len - 1] = (char) (c + 1);
                        end[len] = '\0';
                        return end;
                }
                len--;
        }
        /* empty prefix (or all 0xff): "\0" as range_end means every key from key on */
        end[0] = '\0';
        return end;
}

/* int64 fields are JSON strings ("lease IDs exceed 2^53"); accept numbers too. Absent = 0 (proto3). */
int64_t etcd_json_int64(json_object *o, const char *field) {
        json_object *v;
        if (!o || !json_object_object_get_ex(o, field, &v) || !v)
                return 0;
        if (json_object_is_type(v, json_type_string))
                return strtoll(json_object_get_string(v), NULL, 10);
        return json_object_get_int64(v);
}

bool etcd_json_bool(json_object *o, const char *field) {
        json_object *v;
        return o && json_object_object_get_ex(o, field, &v) && v && json_object_get_boolean(v);
}

json_object *etcd_json_new_int64(int64_t v) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%" PRId64, v);
        return json_object_new_string(buf);
}

static int add_b64(json_object *o, const char *field, const void *data, size_t len) {
        _cleanup_free_ char *s = etcd_base64_encode(data, len);
        json_object *v = s ? json_object_new_string(s) : NULL;
        if (!v || json_object_object_add(o, field, v) < 0) {
                json_object_put(v);
                return -ENOMEM;
        }
        return 0;
}

int etcd_json_add_key(json_object *o, const char *key, bool prefix) {
        int r = add_b64(o, "key", key, strlen(key));
        if (r < 0 || !prefix)
                return r;
        _cleanup_free_ char *end = etcd_prefix_end(key);
        if (!end)
                return -ENOMEM;
        /* "\0" (every key) is one zero byte on the wire */
        return add_b64(o, "range_end", end, *end ? strlen(end) : 1);
}

static int decode_field(json_object *o, const char *field, char **ret, size_t *ret_len) {
        json_object *v;
        const char *s = o && json_object_object_get_ex(o, field, &v) && v ? json_object_get_string(v) : "";
        char *d = etcd_base64_decode(s ? s : "", ret_len);
        if (!d)
                return -EBADMSG;
        *ret = d;
        return 0;
}

void etcd_kv_clear(struct vgpu_etcd_kv *kv) {
        if (!kv)
                return;
        free(kv->key);
        free(kv->value);
        *kv = (struct vgpu_etcd_kv){};
}

int etcd_kv_parse(json_object *o, struct vgpu_etcd_kv *ret) {
        struct vgpu_etcd_kv kv = {
                .create_revision = etcd_json_int64(o, "create_revision"),
                .mod_revision = etcd_json_int64(o, "mod_revision"),
                .version = etcd_json_int64(o, "version"),
                .lease = etcd_json_int64(o, "lease"),
        };
        int r = decode_field(o, "key", &kv.key, NULL);
        if (r >= 0)
                r = decode_field(o, "value", &kv.value, &kv.value_len);
        if (r < 0) {
                etcd_kv_clear(&kv);
                return r;
        }
        *ret = kv;
        return 0;
}

_public_ void vgpu_etcd_range_free(struct vgpu_etcd_range *r) {
        if (!r)
                return;
        for (size_t i = 0; i < r->n; i++)
                etcd_kv_clear(&r->kvs[i]);
        free(r->kvs);
        *r = (struct vgpu_etcd_range){};
}

int64_t etcd_header_revision(json_object *o) {
        json_object *h;
        return o && json_object_object_get_ex(o, "header", &h) ? etcd_json_int64(h, "revision") : 0;
}

int etcd_range_parse(json_object *o, struct vgpu_etcd_range *ret) {
        struct vgpu_etcd_range r = { .revision = etcd_header_revision(o), .more = etcd_json_bool(o, "more") };
        json_object *kvs;
        if (json_object_object_get_ex(o, "kvs", &kvs) && json_object_is_type(kvs, json_type_array)) {
                size_t n = json_object_array_length(kvs);
                r.kvs = calloc(n ? n : 1, sizeof(*r.kvs));
                if (!r.kvs)
                        return -ENOMEM;
                for (size_t i = 0; i < n; i++) {
                        int k = etcd_kv_parse(json_object_array_get_idx(kvs, i), &r.kvs[i]);
                        if (k < 0) {
                                vgpu_etcd_range_free(&r);
                                return k;
                        }
                        r.n++;
                }
        }
        *ret = r;
        return 0;
}
