/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config-internal.h — what the parts of the host.yaml parser share (config.c: the file and its
 * 'gpus'; config-slices.c: its 'slices'): the parse state and the typed field readers, which
 * all report FILE:LINE:COLUMN: field 'NAME': what was expected.
 */
#pragma once

#include <stdbool.h>

#include "basic/macro.h"
#include "vgpu/config.h"
#include "yaml-dl.h"

struct parse {
        yaml_document_t doc;
        const char *source;
        struct vgpu_error *err;
};

int fail_at(struct parse *p, const yaml_node_t *n, const char *fmt, ...) _printf_(3, 4);
const char *scalar(const yaml_node_t *n);
int want_string(struct parse *p, const yaml_node_t *n, const char *field, char **ret);
int want_uint(struct parse *p, const yaml_node_t *n, const char *field, unsigned max, unsigned *ret);
int want_bool(struct parse *p, const yaml_node_t *n, const char *field, bool *ret);
/* A mapping, each key once. */
int want_mapping(struct parse *p, const yaml_node_t *n, const char *what);
int want_sequence(struct parse *p, const yaml_node_t *n, const char *what);

/* Loop over a mapping's key/value nodes or a sequence's items, into variables the caller
 * declared; one plain for-loop, so break and continue mean what they say. */
#define FOR_EACH_PAIR(p, map, K, V)                                                \
        for (yaml_node_pair_t *_pair = (map)->data.mapping.pairs.start;            \
             _pair < (map)->data.mapping.pairs.top &&                              \
             ((K) = libyaml.yaml_document_get_node(&(p)->doc, _pair->key),         \
             (V) = libyaml.yaml_document_get_node(&(p)->doc, _pair->value), true); \
             _pair++)

#define FOR_EACH_ITEM(p, seq, ITEM)                                            \
        for (yaml_node_item_t *_it = (seq)->data.sequence.items.start;         \
             _it < (seq)->data.sequence.items.top &&                           \
             ((ITEM) = libyaml.yaml_document_get_node(&(p)->doc, *_it), true); \
             _it++)

/* config-load.c: text into *ret, checked for depth, expansion (aliases) and a second document,
 * with libyaml's errors as its loader reports them. On failure *ret needs no yaml_document_delete().
 * The first call loads libyaml (yaml-dl.h): -EOPNOTSUPP, naming it, where it is not installed. */
int config_load_document(const char *text, size_t size, const char *source, yaml_document_t *ret,
                         struct vgpu_error *err);

/* config-slices.c: the 'slices' list into cfg (sets has_slices), validated as a whole. */
int config_parse_slices(struct parse *p, yaml_node_t *n, struct vgpu_config *cfg);
void config_slices_free(struct vgpu_config *cfg);
