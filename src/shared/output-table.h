/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * output-table.h — text collected as cells from the printers' formats, then printed with each
 * column as wide as its widest cell (output-table.c says how a format becomes cells). Blank
 * lines separate tables; each is sized on its own.
 */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>

struct out_table;

struct out_table *out_table_new(void);
void out_table_free(struct out_table *t);
/* Add text as printf would print it: "%-14s " (cells), "\n" (end of row), "(none)\n" (a note). */
void out_table_vadd(struct out_table *t, const char *fmt, va_list ap);
/* Print everything added. columns > 0: a terminal that wide, cells cut with "…" to fit it. */
void out_table_render(struct out_table *t, FILE *f, unsigned columns);
