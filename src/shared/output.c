/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* output.c — the text/JSON field printer (see output.h) and a minimal JSON string escaper. */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "output.h"
#include "output-table.h"

#define MAX_DEPTH  32
/* JSON is put together here and handed to stdio in pieces this large: `types --json` on a large
 * host is 3.5 MB in some 300,000 pieces (quotes, keys, values), and stdio's per-call cost
 * (_IO_file_xsputn) was a third of the time it took to write them. */
#define STAGE_SIZE 8192

struct out {
        FILE *f;
        bool json, pretty;
        int depth;
        unsigned count[MAX_DEPTH]; /* members written at each depth, for commas */
        struct out_table *table;   /* text collected for out_free() to align, or NULL */
        unsigned columns;          /* the terminal's width for the table, 0: no limit */
        size_t staged;             /* bytes in stage not yet given to f */
        char stage[STAGE_SIZE];
};

static void stage_flush(struct out *o) {
        if (o->staged > 0)
                fwrite_unlocked(o->stage, 1, o->staged, o->f);
        o->staged = 0;
}

static void put(struct out *o, const char *s, size_t n) {
        if (n > STAGE_SIZE - o->staged) {
                stage_flush(o);
                if (n > STAGE_SIZE) {
                        fwrite_unlocked(s, 1, n, o->f);
                        return;
                }
        }
        memcpy(o->stage + o->staged, s, n);
        o->staged += n;
}

static void put_char(struct out *o, char c) {
        if (o->staged == STAGE_SIZE)
                stage_flush(o);
        o->stage[o->staged++] = c;
}

static void put_str(struct out *o, const char *s) {
        put(o, s, strlen(s));
}

struct out *out_new(FILE *f, bool json, bool pretty) {
        struct out *o = calloc(1, sizeof(*o));
        if (!o)
                return NULL;
        /* One large buffer instead of stdio's 4 KiB: fewer write(2) calls for big listings.
         * (glibc ignores the size when no buffer is given, hence the static one.) */
        static char stdout_buffer[1 << 16];
        if (f == stdout)
                setvbuf(f, stdout_buffer, _IOFBF, sizeof(stdout_buffer));
        o->f = f;
        o->json = json;
        o->pretty = pretty;
        return o;
}

void out_set_table(struct out *o, unsigned columns) {
        if (o->json || o->table)
                return;
        /* without memory for it, the printers' own formats are still a readable layout */
        o->table = out_table_new();
        o->columns = columns;
}

/* Text goes to the table when there is one, else straight out as the format says. */
static void vtext(struct out *o, const char *fmt, va_list ap) {
        if (o->table)
                out_table_vadd(o->table, fmt, ap);
        else
                vfprintf(o->f, fmt, ap);
}

_printf_(2, 3) static void text(struct out *o, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vtext(o, fmt, ap);
        va_end(ap);
}

void out_free(struct out *o) {
        if (!o)
                return;
        if (o->table) {
                out_table_render(o->table, o->f, o->columns);
                out_table_free(o->table);
        }
        if (o->json)
                put_char(o, '\n');
        stage_flush(o);
        fflush(o->f);
        free(o);
}

bool out_is_json(const struct out *o) {
        return o->json;
}

size_t utf8_sequence_length(const char *str) {
        const unsigned char *s = (const unsigned char *) str;
        if (s[0] < 0x80)
                return 1;
        size_t n;
        uint32_t cp;
        if (s[0] >= 0xc2 && s[0] <= 0xdf)
                n = 2, cp = s[0] & 0x1f;
        else if (s[0] >= 0xe0 && s[0] <= 0xef)
                n = 3, cp = s[0] & 0x0f;
        else if (s[0] >= 0xf0 && s[0] <= 0xf4)
                n = 4, cp = s[0] & 0x07;
        else
                return 0; /* a continuation byte, an overlong lead (c0, c1) or past U+10FFFF */
        for (size_t i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return 0; /* the NUL ending the string included */
                cp = cp << 6 | (s[i] & 0x3f);
        }
        /* overlong forms, UTF-16 surrogates, past U+10FFFF */
        if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
                return 0;
        return n;
}

/* Strings are written in runs between characters that need escaping: `types --json` on a
 * large host writes megabytes of strings, and a call per character was a quarter of its time.
 * Bytes of 0x80 and above are checked as UTF-8: what is not (a request path's %ff, a driver's
 * Latin-1 name) becomes U+FFFD, so the document stays valid JSON whatever a string held. */
#define X16(x) x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x
/* 1 for the bytes a run stops at: controls, '"' and '\\' (escaped) and 0x80 and up (checked as
 * UTF-8). A table: one load per byte where four comparisons were a tenth of `types --json`. */
/* clang-format off */
static const unsigned char json_special[256] = {
        X16(1), X16(1),                                 /* 0x00-0x1f */
        0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x20-0x2f: '"' */
        X16(0), X16(0),                                 /* 0x30-0x4f */
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, /* 0x50-0x5f: '\\' */
        X16(0), X16(0),                                 /* 0x60-0x7f */
        X16(1), X16(1), X16(1), X16(1), X16(1), X16(1), X16(1), X16(1), /* 0x80-0xff */
};
/* clang-format on */

static void json_string(struct out *o, const char *s) {
        put_char(o, '"');
        for (;;) {
                const char *run = s;
                while (!json_special[(unsigned char) *s])
                        s++;
                put(o, run, (size_t) (s - run));
                unsigned char c = (unsigned char) *s;
                if (c == '\0')
                        break;
                if (c >= 0x80) {
                        size_t n = utf8_sequence_length(s);
                        if (n)
                                put(o, s, n);
                        else
                                put_str(o, "\\ufffd");
                        s += n ? n : 1;
                        continue;
                }
                char buf[8];
                switch (c) {
                case '"':
                        put_str(o, "\\\"");
                        break;
                case '\\':
                        put_str(o, "\\\\");
                        break;
                case '\n':
                        put_str(o, "\\n");
                        break;
                case '\t':
                        put_str(o, "\\t");
                        break;
                case '\r':
                        put_str(o, "\\r");
                        break;
                default:
                        snprintf(buf, sizeof(buf), "\\u%04x", c);
                        put_str(o, buf);
                }
                s++;
        }
        put_char(o, '"');
}

/* Decimal without printf's format parsing: numbers are most of a JSON listing's fields. */
static void put_i64(struct out *o, int64_t v) {
        char buf[24], *p = buf + sizeof(buf);
        uint64_t u = v < 0 ? -(uint64_t) v : (uint64_t) v;
        do
                *--p = (char) ('0' + u % 10);
        while ((u /= 10) > 0);
        if (v < 0)
                *--p = '-';
        put(o, p, (size_t) (buf + sizeof(buf) - p));
}

/* Comma, indentation and key before a member. */
static void json_member(struct out *o, const char *key) {
        if (o->count[o->depth]++ > 0)
                put_char(o, ',');
        if (o->pretty && o->depth > 0) {
                put_char(o, '\n');
                for (int i = 0; i < o->depth; i++)
                        put(o, "  ", 2);
        }
        if (key) {
                /* keys are our own snake_case literals: nothing in them needs escaping */
                put_char(o, '"');
                put_str(o, key);
                put_str(o, o->pretty ? "\": " : "\":");
        }
}

static void json_open(struct out *o, const char *key, char c) {
        if (!o->json)
                return;
        json_member(o, key);
        put_char(o, c);
        if (o->depth < MAX_DEPTH - 1)
                o->count[++o->depth] = 0;
}

static void json_close(struct out *o, char c) {
        if (!o->json)
                return;
        bool had_members = o->count[o->depth] > 0;
        if (o->depth > 0)
                o->depth--;
        if (o->pretty && had_members) {
                put_char(o, '\n');
                for (int i = 0; i < o->depth; i++)
                        put(o, "  ", 2);
        }
        put_char(o, c);
        /* whole top-level members go out at once: a caller writing to f between two of them
         * (nothing should inside one) keeps its place */
        if (o->depth <= 1)
                stage_flush(o);
}

void out_open_object(struct out *o, const char *key) {
        json_open(o, key, '{');
}
void out_close_object(struct out *o) {
        json_close(o, '}');
}
void out_open_array(struct out *o, const char *key) {
        json_open(o, key, '[');
}
void out_close_array(struct out *o) {
        json_close(o, ']');
}

static bool wants(const struct out *o, enum out_mode m) {
        return m == OUT_ANY || (m == OUT_JSON) == o->json;
}

void out_string(struct out *o, enum out_mode m, const char *key, const char *fmt, const char *v) {
        if (!wants(o, m))
                return;
        if (o->json) {
                json_member(o, key);
                if (v)
                        json_string(o, v);
                else
                        put_str(o, "null");
        } else
                text(o, fmt, v ? v : "-");
}

void out_u64(struct out *o, enum out_mode m, const char *key, const char *fmt, uint64_t v) {
        if (!wants(o, m))
                return;
        if (o->json) {
                json_member(o, key);
                if (v <= INT64_MAX)
                        put_i64(o, (int64_t) v);
                else {
                        char buf[32];
                        snprintf(buf, sizeof(buf), "%" PRIu64, v);
                        put_str(o, buf);
                }
        } else {
                char buf[32];
                snprintf(buf, sizeof(buf), "%" PRIu64, v);
                text(o, fmt, buf);
        }
}

void out_i64(struct out *o, enum out_mode m, const char *key, const char *fmt, int64_t v, bool known) {
        if (!wants(o, m))
                return;
        if (o->json) {
                json_member(o, key);
                if (known)
                        put_i64(o, v);
                else
                        put_str(o, "null");
                return;
        }
        char buf[32];
        snprintf(buf, sizeof(buf), "%" PRId64, v);
        text(o, fmt, known ? buf : "-");
}

void out_double(struct out *o, enum out_mode m, const char *key, const char *fmt, double v, bool known) {
        if (!wants(o, m))
                return;
        char buf[32];
        if (!o->json) {
                snprintf(buf, sizeof(buf), "%g", v);
                text(o, fmt, known ? buf : "-");
                return;
        }
        json_member(o, key);
        if (!known)
                put_str(o, "null");
        else if (v >= 0 && v < 1e6 && !signbit(v) && v == (double) (int64_t) v)
                /* what %g prints for a whole number of at most six digits (a link's 16 GT/s),
                 * without printf: two per GPU in `list --json` (NaN and -0 go to printf) */
                put_i64(o, (int64_t) v);
        else {
                snprintf(buf, sizeof(buf), "%g", v);
                put_str(o, buf);
        }
}

void out_bool(struct out *o, enum out_mode m, const char *key, const char *fmt, bool v) {
        if (!wants(o, m))
                return;
        if (o->json) {
                json_member(o, key);
                put_str(o, v ? "true" : "false");
        } else
                text(o, fmt, v ? "yes" : "no");
}

void out_null(struct out *o, const char *key) {
        if (!o->json)
                return;
        json_member(o, key);
        put_str(o, "null");
}

void out_text(struct out *o, const char *fmt, ...) {
        if (o->json)
                return;
        va_list ap;
        va_start(ap, fmt);
        vtext(o, fmt, ap);
        va_end(ap);
}

const char *format_bytes(char *buf, size_t size, int64_t bytes) {
        static const char units[] = "BKMGTP";
        if (bytes < 0) {
                snprintf(buf, size, "-");
                return buf;
        }
        double v = (double) bytes;
        size_t u = 0;
        while (v >= 1024 && u < sizeof(units) - 2) {
                v /= 1024;
                u++;
        }
        if (v == (double) (int64_t) v)
                snprintf(buf, size, "%" PRId64 "%c", (int64_t) v, units[u]);
        else
                snprintf(buf, size, "%.1f%c", v, units[u]);
        return buf;
}
