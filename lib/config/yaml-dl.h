/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * yaml-dl.h — libyaml for the host.yaml parser, loaded with dlopen() on the first parse.
 *
 * Only the commands that read host.yaml (apply, assert, export, slice...) and vgpud's POST
 * /v1/apply parse YAML, yet as a NEEDed library libyaml was mapped and relocated by every
 * command at start (basic/dlopen-util.h). It is a dependency of the package all the same
 * (debian/control): where it is missing, parsing fails with -EOPNOTSUPP and a message naming
 * libyaml-0-2, and nothing is changed.
 */
#pragma once

#include <yaml.h>

#include "basic/dlopen-util.h"

#define LIBYAML_FUNCS(X)                      \
        X(yaml_parser_initialize)             \
        X(yaml_parser_set_input_string)       \
        X(yaml_parser_parse)                  \
        X(yaml_parser_load)                   \
        X(yaml_parser_delete)                 \
        X(yaml_event_delete)                  \
        X(yaml_document_initialize)           \
        X(yaml_document_delete)               \
        X(yaml_document_add_scalar)           \
        X(yaml_document_add_sequence)         \
        X(yaml_document_add_mapping)          \
        X(yaml_document_append_sequence_item) \
        X(yaml_document_append_mapping_pair)  \
        X(yaml_document_get_node)             \
        X(yaml_document_get_root_node)

struct libyaml_dl {
        LIBYAML_FUNCS(DLOPEN_FIELD)
};

/* The function table: filled by config_libyaml_load(), which every path into libyaml calls first
 * (config_load_document), and read-only after that. */
extern struct libyaml_dl libyaml;
/* The library as loaded (tests point .soname at a missing one before the first use). */
extern struct dlopen_library config_libyaml_library;

/* Load libyaml once: 0, or -EOPNOTSUPP with err naming the library and its package. */
int config_libyaml_load(struct vgpu_error *err);
