/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * output.h — one printing call per field, giving either the human text or JSON.
 *
 * As in iproute2's json_print: a command prints each field once, with the JSON key and the
 * text format side by side, so the table and `--json` cannot drift apart. OUT_ANY prints in
 * both modes, OUT_JSON only in JSON (details a table has no room for), OUT_TEXT only as text.
 * A NULL string or an "unknown" number is JSON null and "-" in text.
 */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "basic/macro.h"

enum out_mode { OUT_ANY, OUT_JSON, OUT_TEXT };

struct out;

struct out *out_new(FILE *f, bool json, bool pretty);
void out_free(struct out *o); /* ends the JSON document with a newline and flushes */
bool out_is_json(const struct out *o);
/* Text mode: collect the text and print it at out_free() as tables whose columns fit their
 * widest cell (output-table.h); columns > 0 cuts cells with "…" to fit a terminal that wide. */
void out_set_table(struct out *o, unsigned columns);

/* Containers (JSON only; key is NULL inside arrays and at the top). */
void out_open_object(struct out *o, const char *key);
void out_close_object(struct out *o);
void out_open_array(struct out *o, const char *key);
void out_close_array(struct out *o);

void out_string(struct out *o, enum out_mode m, const char *key, const char *fmt, const char *v);
void out_u64(struct out *o, enum out_mode m, const char *key, const char *fmt, uint64_t v);
/* Signed; `known` false prints null / "-". */
void out_i64(struct out *o, enum out_mode m, const char *key, const char *fmt, int64_t v, bool known);
void out_double(struct out *o, enum out_mode m, const char *key, const char *fmt, double v, bool known);
void out_bool(struct out *o, enum out_mode m, const char *key, const char *fmt, bool v);
void out_null(struct out *o, const char *key);

/* Free text: printed in text mode only. */
void out_text(struct out *o, const char *fmt, ...) _printf_(2, 3);

/* Human sizes: 17179869184 -> "16G" (binary units, like lsblk). */
const char *format_bytes(char *buf, size_t size, int64_t bytes);
/* The length of the valid UTF-8 sequence at s (1 for ASCII), 0 when s starts no valid one. */
size_t utf8_sequence_length(const char *s);
