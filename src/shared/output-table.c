/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * output-table.c — text tables whose columns fit their widest cell (see output-table.h).
 *
 * The printers keep their printf formats ("%-16s "): those say which text is a cell and how it
 * aligns, and stay the layout of anything not printed as a table. Here a format is read
 * instead of obeyed: each conversion (with the literal text glued to it) is one cell, '-' means
 * left-aligned, a space in the format separates cells, a newline ends the row. The field
 * widths written in the formats are ignored: they were guesses ("vfio_ap-passthrough" and
 * "GRID RTX6000-4Q" outgrew theirs and pushed the rest of the row out of line).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "output-table.h"

/* All text in one buffer and all cells in one array, each grown by doubling: `types` on a large
 * host is ten thousands of rows, and an allocation per cell was a fifth of its time. */
struct cell {
        size_t off; /* of its text (NUL-terminated) in out_table.text */
        bool right; /* "%5s": numbers line up on their last digit */
};

struct row {
        size_t first, n_cells; /* out_table.cells[first...] */
};

struct out_table {
        char *text;
        size_t text_len, text_alloc;
        struct cell *cells;
        size_t n_cells, cells_alloc;
        struct row *rows;
        size_t n_rows, rows_alloc;
        size_t row_first; /* the first cell of the row being built */
        bool open;        /* a cell is being built, from text[cells[n_cells].off] */
        bool open_right;
        bool open_indent; /* the open cell holds only the leading spaces of a row so far */
        bool failed;      /* out of memory: what was collected is printed, the rest lost */
};

struct out_table *out_table_new(void) {
        return calloc(1, sizeof(struct out_table));
}

void out_table_free(struct out_table *t) {
        if (!t)
                return;
        free(t->text);
        free(t->cells);
        free(t->rows);
        free(t);
}

/* Room for n more elements of size in *array (of *alloc), doubling. */
static bool grow(struct out_table *t, void **array, size_t *alloc, size_t used, size_t n, size_t size) {
        if (used + n <= *alloc)
                return true;
        size_t want = *alloc ? *alloc : 256;
        while (want < used + n)
                want *= 2;
        void *p = realloc(*array, want * size);
        if (!p) {
                t->failed = true;
                return false;
        }
        *array = p;
        *alloc = want;
        return true;
}

static void append(struct out_table *t, const char *s, size_t len) {
        if (!grow(t, (void **) &t->text, &t->text_alloc, t->text_len, len + 1, 1))
                return;
        memcpy(t->text + t->text_len, s, len);
        t->text_len += len;
}

static void open_cell(struct out_table *t) {
        if (t->open) {
                t->open_indent = false;
                return;
        }
        if (!grow(t, (void **) &t->cells, &t->cells_alloc, t->n_cells, 1, sizeof(*t->cells)))
                return;
        t->cells[t->n_cells] = (struct cell){ .off = t->text_len };
        t->open = true;
        t->open_right = t->open_indent = false;
}

static void close_cell(struct out_table *t) {
        if (!t->open)
                return;
        t->open = false;
        if (!grow(t, (void **) &t->text, &t->text_alloc, t->text_len, 1, 1))
                return;
        t->text[t->text_len++] = '\0';
        t->cells[t->n_cells].right = t->open_right;
        t->n_cells++;
}

static void end_row(struct out_table *t) {
        close_cell(t);
        if (!grow(t, (void **) &t->rows, &t->rows_alloc, t->n_rows, 1, sizeof(*t->rows)))
                return;
        /* no cells: a blank line, which also ends a table */
        t->rows[t->n_rows++] = (struct row){ t->row_first, t->n_cells - t->row_first };
        t->row_first = t->n_cells;
}

static size_t cells_in_row(const struct out_table *t) {
        return t->n_cells - t->row_first;
}

/* Text without conversions ("(no vGPU instance)\n") is a note: one cell, spaces and all. */
static void add_note(struct out_table *t, const char *s) {
        for (;;) {
                size_t len = strcspn(s, "\n");
                if (len) {
                        open_cell(t);
                        append(t, s, len);
                }
                if (!s[len])
                        return;
                end_row(t);
                s += len + 1;
        }
}

void out_table_vadd(struct out_table *t, const char *fmt, va_list ap) {
        /* Only %s (flags '-' and a width) and %% are cells: anything else is formatted as a note. */
        bool plain = true, any = false;
        for (const char *p = fmt; (p = strchr(p, '%'));) {
                p++;
                if (*p == '%') {
                        p++;
                        continue;
                }
                p += strspn(p, "-0123456789");
                plain = plain && *p == 's';
                any = true;
        }
        if (!any || !plain) {
                char *s = NULL;
                if (vasprintf(&s, fmt, ap) < 0) {
                        t->failed = true;
                        return;
                }
                add_note(t, s);
                free(s);
                return;
        }
        for (const char *p = fmt; *p; p++) {
                if (*p == ' ') {
                        /* leading spaces indent the first cell ("  %-12s": a VF under its PF) */
                        if (cells_in_row(t) == 0 && (!t->open || t->open_indent)) {
                                open_cell(t);
                                t->open_indent = true;
                                append(t, " ", 1);
                        } else
                                close_cell(t);
                } else if (*p == '\n')
                        end_row(t);
                else if (*p == '%' && p[1] == '%') {
                        open_cell(t);
                        append(t, "%", 1);
                        p++;
                } else if (*p == '%') {
                        bool left = p[1] == '-', width = false;
                        for (p++; *p == '-' || (*p >= '0' && *p <= '9'); p++)
                                width = width || (*p >= '1' && *p <= '9');
                        const char *v = va_arg(ap, const char *);
                        open_cell(t);
                        t->open_right = !left && width;
                        append(t, v ? v : "(null)", strlen(v ? v : "(null)"));
                } else {
                        open_cell(t);
                        append(t, p, 1);
                }
        }
}

/* Columns on the screen: UTF-8 continuation bytes take none ("…" is three bytes, one column). */
static size_t text_width(const char *s) {
        size_t w = 0;
        for (; *s; s++)
                w += ((unsigned char) *s & 0xc0) != 0x80;
        return w;
}

/* The first `cols` columns of s, in bytes. */
static size_t prefix_bytes(const char *s, size_t cols) {
        size_t i = 0, w = 0;
        for (; s[i]; i++) {
                if (((unsigned char) s[i] & 0xc0) != 0x80 && w++ == cols)
                        break;
        }
        return i;
}

static void pad(FILE *f, size_t n) {
        while (n-- > 0)
                fputc_unlocked(' ', f);
}

static void put_cell(FILE *f, const char *text, bool right, size_t width, bool padded) {
        size_t w = text_width(text);
        if (w > width) {
                /* only where the terminal is too narrow: cut, and say so with an ellipsis */
                fwrite_unlocked(text, 1, prefix_bytes(text, width ? width - 1 : 0), f);
                if (width)
                        fputs_unlocked("…", f);
                return;
        }
        if (right)
                pad(f, width - w);
        fputs_unlocked(text, f);
        if (!right && padded)
                pad(f, width - w);
}

/* Rows [from, to) are one table: widths over its rows. The last cell of a row (a free-form
 * tail such as "attr KEY=VALUE", or a note) is not padded and sizes no column, unless it is
 * right-aligned, where the column's width is what lines it up. */
static void render_block(const struct out_table *t, size_t from, size_t to, FILE *f, unsigned columns) {
        size_t n_cols = 0;
        for (size_t i = from; i < to; i++)
                n_cols = t->rows[i].n_cells > n_cols ? t->rows[i].n_cells : n_cols;
        if (n_cols == 0)
                return;
        size_t *width = calloc(n_cols, sizeof(*width)), unlimited = (size_t) -1;
        bool *prose = calloc(n_cols, sizeof(*prose));
        if (!width || !prose) {
                free(width);
                free(prose);
                return;
        }
        size_t last_max = 0;
        for (size_t i = from; i < to; i++) {
                const struct row *r = &t->rows[i];
                const struct cell *cells = t->cells + r->first;
                for (size_t c = 0; c < r->n_cells; c++) {
                        const char *text = t->text + cells[c].off;
                        size_t w = text_width(text);
                        if (c + 1 < r->n_cells || cells[c].right)
                                width[c] = w > width[c] ? w : width[c];
                        else
                                last_max = w > last_max ? w : last_max;
                        /* words ("AD102GL [L40S]", a link): readable cut; a BDF or UUID is not */
                        prose[c] = prose[c] || (i > from && strchr(text + strspn(text, " "), ' '));
                }
        }
        if (columns > 0) {
                /* narrower terminal: shrink the widest column a step at a time, prose first, none
                 * below 8; when the free-form tail is the widest, it is what gets cut (below) */
                for (;;) {
                        size_t total = 0, widest = 0, widest_prose = n_cols;
                        for (size_t c = 0; c < n_cols; c++) {
                                total += width[c] + (c > 0);
                                if (width[c] > width[widest])
                                        widest = c;
                                if (prose[c] && width[c] > 8 && c + 1 < n_cols &&
                                    (widest_prose == n_cols || width[c] > width[widest_prose]))
                                        widest_prose = c;
                        }
                        size_t tail = last_max > width[n_cols - 1] ? last_max - width[n_cols - 1] : 0;
                        if (total + tail <= columns)
                                break;
                        if (widest_prose < n_cols) {
                                width[widest_prose]--;
                                continue;
                        }
                        if (width[widest] <= 8 || width[n_cols - 1] + tail >= width[widest])
                                break;
                        width[widest]--;
                }
        }
        for (size_t i = from; i < to; i++) {
                const struct row *r = &t->rows[i];
                const struct cell *cells = t->cells + r->first;
                size_t used = 0;
                for (size_t c = 0; c < r->n_cells; c++) {
                        bool last = c + 1 == r->n_cells;
                        if (c > 0)
                                fputc_unlocked(' ', f);
                        size_t w = width[c];
                        if (last && !cells[c].right)
                                w = columns > 0 ? (used < columns ? columns - used - (c > 0) : 8) : unlimited;
                        put_cell(f, t->text + cells[c].off, cells[c].right, w, !last);
                        used += width[c] + (c > 0);
                }
                fputc_unlocked('\n', f);
        }
        free(width);
        free(prose);
}

void out_table_render(struct out_table *t, FILE *f, unsigned columns) {
        if (t->open || cells_in_row(t))
                end_row(t);
        size_t from = 0;
        for (size_t i = 0; i <= t->n_rows; i++)
                if (i == t->n_rows || t->rows[i].n_cells == 0) {
                        render_block(t, from, i, f, columns);
                        if (i < t->n_rows)
                                fputc('\n', f);
                        from = i + 1;
                }
        if (t->failed)
                fputs("vgpuctl: out of memory: table incomplete\n", stderr);
}
