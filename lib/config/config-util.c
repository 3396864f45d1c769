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
                return fail_at(p, n, "field '%s': expected a whole number from 0 to %u, got '%s'", field, max,
                               s ? s : "(not a scalar)");
        unsigned long v = strtoul(s, &end, 10);
        if (*end || v > max)
                return fail_at(p, n, "field '%s': expected a whole number from 0 to %u, got '%s'", field, max,
                               s);
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

struct key_at {
        const char *key;
        const yaml_node_t *node;
        size_t index;
};

static int cmp_key_at(const void *a, const void *b) {
        const struct key_at *x = a, *y = b;
        int c = strcmp(x->key, y->key);
        return c ? c : (x->index > y->index) - (x->index < y->index);
}

/* A mapping, each key once: a repeated key would silently replace (or, for lists, double) a
 * field, so it is an error, like any other ambiguity in the file. The keys are sorted to find
 * repeats: comparing each with every other took a minute for the 100000 keys of a 1 MiB
 * POST /v1/apply body, the daemon stalled meanwhile. */
int want_mapping(struct parse *p, const yaml_node_t *n, const char *what) {
        if (!n || n->type != YAML_MAPPING_NODE)
                return fail_at(p, n, "%s: expected a mapping (key: value lines)", what);
        size_t count = (size_t) (n->data.mapping.pairs.top - n->data.mapping.pairs.start), n_keys = 0;
        if (count < 2)
                return 0;
        /* a few keys (every mapping of a real host.yaml): each against those before it, without
         * the sort's allocation; the first key that repeats one, and that one's first place */
        if (count <= 8) {
                for (size_t i = 1; i < count; i++) {
                        const char *key = scalar(
                                libyaml.yaml_document_get_node(&p->doc, n->data.mapping.pairs.start[i].key));
                        for (size_t j = 0; key && j < i; j++) {
                                const yaml_node_t *k = libyaml.yaml_document_get_node(
                                        &p->doc, n->data.mapping.pairs.start[j].key);
                                if (scalar(k) && streq(scalar(k), key))
                                        return fail_at(p,
                                                       libyaml.yaml_document_get_node(
                                                               &p->doc, n->data.mapping.pairs.start[i].key),
                                                       "field '%s' given twice (first at line %zu)", key,
                                                       k->start_mark.line + 1);
                        }
                }
                return 0;
        }
        struct key_at *keys = calloc(count, sizeof(*keys));
        if (!keys)
                return vgpu_error_set(p->err, -ENOMEM, "out of memory");
        for (size_t i = 0; i < count; i++) {
                const yaml_node_t *k =
                        libyaml.yaml_document_get_node(&p->doc, n->data.mapping.pairs.start[i].key);
                if (scalar(k))
                        keys[n_keys++] = (struct key_at){ scalar(k), k, i };
        }
        qsort_safe(keys, n_keys, sizeof(*keys), cmp_key_at);
        /* the repeat reported is the one that comes first in the file, with the key's first place */
        const struct key_at *again = NULL, *first = NULL;
        for (size_t i = 1, g = 0; i < n_keys; i++) {
                if (strcmp(keys[i].key, keys[g].key) != 0)
                        g = i;
                else if (i == g + 1 && (!again || keys[i].index < again->index))
                        again = &keys[i], first = &keys[g];
        }
        int r = again ? fail_at(p, again->node, "field '%s' given twice (first at line %zu)", again->key,
                                first->node->start_mark.line + 1)
                      : 0;
        free(keys);
        return r;
}

int want_sequence(struct parse *p, const yaml_node_t *n, const char *what) {
        return n && n->type == YAML_SEQUENCE_NODE ? 0
                                                  : fail_at(p, n, "%s: expected a list ('- ' items)", what);
}
