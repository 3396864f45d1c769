/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config-util.c — the typed field readers of the host.yaml parser: each takes a YAML node and
 * either gives its value or fails with FILE:LINE:COLUMN and what the field expects.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/error-util.h"
#include "config-internal.h"

int fail_at(struct parse *p, const yaml_node_t *n, const char *fmt, ...) {
        char msg[768];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        return vgpu_error_set(p->err, -EINVAL, "%s:%zu:%zu: %s", p->source, n ? n->start_mark.line + 1 : 0,
                              n ? n->start_mark.column + 1 : 0, msg);
}

const char *scalar(const yaml_node_t *n) {
        return n && n->type == YAML_SCALAR_NODE ? (const char *) n->data.scalar.value : NULL;
}

int want_string(struct parse *p, const yaml_node_t *n, const char *field, char **ret) {
        const char *s = scalar(n);
        if (!s || !*s)
                return fail_at(p, n, "field '%s': expected a non-empty string", field);
        if (!(*ret = strdup(s)))
                return vgpu_error_set(p->err, -ENOMEM, "out of memory");
        return 0;
}

int want_uint(struct parse *p, const yaml_node_t *n, const char *field, unsigned max, unsigned *ret) {
        const char *s = scalar(n);
        char *end;
        if (!s || !*s || *s == '-')
                return fail_at(p, n, "field '%s': expected a whole number from 0 to %u, got '%s'", field, max, s ? s : "(not a scalar)");
        unsigned long v = strtoul(s, &end, 10);
        if (*end || v > max)
                return fail_at(p, n, "field '%s': expected a whole number from 0 to %u, got '%s'", field, max, s);
        *ret = (unsigned) v;
        return 0;
}

int want_bool(struct parse *p, const yaml_node_t *n, const char *field, bool *ret) {
        const char *s = scalar(n);
        static const char *const yes[] = { "true", "yes", "on" }, *const no[] = { "false", "no", "off" };
        for (size_t i = 0; s && i < 3; i++) {
                if (strcmp(s, yes[i]) == 0)
                        return *ret = true, 0;
                if (strcmp(s, no[i]) == 0)
                        return *ret = false, 0;
        }
        return fail_at(p, n, "field '%s': expected true or false, got '%s'", field, s ? s : "(not a scalar)");
}

/* A mapping, each key once: a repeated key would silently replace (or, for lists, double) a
 * field, so it is an error, like any other ambiguity in the file. */
int want_mapping(struct parse *p, const yaml_node_t *n, const char *what) {
        if (!n || n->type != YAML_MAPPING_NODE)
                return fail_at(p, n, "%s: expected a mapping (key: value lines)", what);
        for (yaml_node_pair_t *a = n->data.mapping.pairs.start; a < n->data.mapping.pairs.top; a++)
                for (yaml_node_pair_t *b = n->data.mapping.pairs.start; b < a; b++) {
                        const yaml_node_t *ka = yaml_document_get_node(&p->doc, a->key);
                        const yaml_node_t *kb = yaml_document_get_node(&p->doc, b->key);
                        if (scalar(ka) && scalar(kb) && strcmp(scalar(ka), scalar(kb)) == 0)
                                return fail_at(p, ka, "field '%s' given twice (first at line %zu)", scalar(ka),
                                               kb->start_mark.line + 1);
                }
        return 0;
}

int want_sequence(struct parse *p, const yaml_node_t *n, const char *what) {
        return n && n->type == YAML_SEQUENCE_NODE ? 0 : fail_at(p, n, "%s: expected a list ('- ' items)", what);
}
