/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config-load.c — host.yaml's text into a YAML document, in one pass of libyaml's parser.
 *
 * Each event is first counted (struct expansion: how far the file nests and what it expands to,
 * aliases counted as the nodes they name) and then composed into the document as libyaml's
 * loader would compose it. The count used to be a pass of its own before yaml_parser_load(), and
 * the parser is most of the cost of reading host.yaml: one pass halves it. The order of errors is
 * kept: a count error anywhere before a syntax error wins, then the loader's own (syntax,
 * undefined alias, duplicate anchor). Where the loader would fail, the two passes run again
 * (load_two_passes), so its errors keep libyaml's words and positions without a copy of them here.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "config-internal.h"

/* What a file may expand to, in YAML nodes with every alias counted as the node it names: a
 * real host.yaml is a few thousand (64 GPUs x 64 device entries with attributes is ~50000). */
#define CONFIG_NODES_MAX 200000

/* How deep collections may nest: libyaml's parser slows down sharply with depth (a MiB of '['
 * takes minutes), so the count stops a file there before more of it is parsed. */
#define CONFIG_DEPTH_MAX 64

struct anchor_size {
        char *name;
        uint64_t nodes;
};

/*
 * The loader shares an anchored node with its aliases and we walk every reference, so nested
 * lists of aliases multiply: 3 KiB of text made 27 million attributes (2 GiB, seconds of CPU in
 * vgpuctl or in vgpud on POST /v1/apply). The events are counted as they come, each alias as the
 * size of its anchor's node, and a file over CONFIG_NODES_MAX is refused before the rest of it is
 * built. Anchors and aliases within that stay as YAML has them. A second document is refused too.
 */
struct expansion {
        struct {
                char *anchor;
                uint64_t nodes;
        } stack[CONFIG_DEPTH_MAX];
        size_t depth, n_anchors, documents;
        struct anchor_size *anchors;
        uint64_t total;
};

static void expansion_done(struct expansion *x) {
        while (x->depth > 0)
                free(x->stack[--x->depth].anchor);
        for (size_t i = 0; i < x->n_anchors; i++)
                free(x->anchors[i].name);
        free(x->anchors);
}

/* Count one event: 0, or the error that refuses the file at it. */
static int expansion_event(struct expansion *x, const yaml_event_t *e, const char *source,
                           struct vgpu_error *err) {
        const char *anchor = NULL;
        char *popped = NULL; /* the anchor of a collection this event ends */
        uint64_t add = 0;    /* nodes completed by this event */
        int r = 0;
        switch (e->type) {
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
                anchor = (const char *) (e->type == YAML_SEQUENCE_START_EVENT ? e->data.sequence_start.anchor
                                                                              : e->data.mapping_start.anchor);
                if (x->depth == ELEMENTSOF(x->stack))
                        return vgpu_error_set(err, -EINVAL, "%s:%zu:%zu: nested more than %zu levels deep",
                                              source, e->start_mark.line + 1, e->start_mark.column + 1,
                                              ELEMENTSOF(x->stack));
                x->stack[x->depth].anchor = anchor ? strdup(anchor) : NULL;
                x->stack[x->depth].nodes = 1;
                if (anchor && !x->stack[x->depth].anchor)
                        r = vgpu_error_set(err, -ENOMEM, "out of memory");
                x->depth++;
                break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
                if (x->depth == 0)
                        break;
                x->depth--;
                add = x->stack[x->depth].nodes;
                anchor = popped = x->stack[x->depth].anchor;
                break;
        case YAML_SCALAR_EVENT:
                add = 1;
                anchor = (const char *) e->data.scalar.anchor;
                break;
        case YAML_ALIAS_EVENT:
                add = 1;                                /* an unknown anchor: the loader reports it */
                for (size_t i = x->n_anchors; i-- > 0;) /* a name may be anchored again: the last */
                        if (streq(x->anchors[i].name, (const char *) e->data.alias.anchor)) {
                                add = x->anchors[i].nodes;
                                break;
                        }
                break;
        case YAML_DOCUMENT_START_EVENT:
                /* the loader would read the first and drop the rest without a word */
                if (x->documents++ > 0)
                        return vgpu_error_set(err, -EINVAL,
                                              "%s:%zu:%zu: a second YAML document ('---'): "
                                              "host.yaml is one document",
                                              source, e->start_mark.line + 1, e->start_mark.column + 1);
                break;
        default:
                break;
        }
        if (r >= 0 && add > 0 && anchor && e->type != YAML_ALIAS_EVENT) {
                struct anchor_size *a = reallocarray(x->anchors, x->n_anchors + 1, sizeof(*x->anchors));
                char *name = strdup(anchor);
                if (a)
                        x->anchors = a;
                if (!a || !name) {
                        free(name);
                        r = vgpu_error_set(err, -ENOMEM, "out of memory");
                } else
                        x->anchors[x->n_anchors++] = (struct anchor_size){ name, add };
        }
        free(popped);
        /* counts saturate just above the limit: repeated aliases cannot overflow them */
        uint64_t *into = x->depth > 0 ? &x->stack[x->depth - 1].nodes : &x->total;
        *into = *into + add > CONFIG_NODES_MAX ? CONFIG_NODES_MAX + 1 : *into + add;
        if (r >= 0 && *into > CONFIG_NODES_MAX)
                r = vgpu_error_set(err, -EINVAL,
                                   "%s:%zu:%zu: the file expands to more than %d YAML nodes "
                                   "(counting each alias as the node it names)",
                                   source, e->start_mark.line + 1, e->start_mark.column + 1,
                                   CONFIG_NODES_MAX);
        return r;
}

/* The count alone, over the whole text: on the way to reporting one of the loader's own errors,
 * which comes second to any the count finds, even further on (a syntax error ends the count). */
static int check_expansion(const char *text, size_t size, const char *source, struct vgpu_error *err) {
        yaml_parser_t parser;
        if (!libyaml.yaml_parser_initialize(&parser))
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        libyaml.yaml_parser_set_input_string(&parser, (const unsigned char *) text, size);
        struct expansion x = {};
        int r = 0;
        for (bool done = false; !done && r >= 0;) {
                yaml_event_t e;
                if (!libyaml.yaml_parser_parse(&parser, &e))
                        break;
                r = expansion_event(&x, &e, source, err);
                done = e.type == YAML_STREAM_END_EVENT;
                libyaml.yaml_event_delete(&e);
        }
        expansion_done(&x);
        libyaml.yaml_parser_delete(&parser);
        return r;
}

/* What yaml_parser_load() keeps while it composes the first document. */
struct composer {
        yaml_document_t *doc;
        struct {
                int id;  /* the node of an open collection */
                int key; /* a mapping's key waiting for its value; 0 none */
        } open[CONFIG_DEPTH_MAX];
        size_t depth;
        struct {
                char *name;
                int id;
        } * anchors;
        size_t n_anchors, allocated;
        bool started, complete;
};

/* What compose_event() says besides 0: the loader would refuse the file here, or the document
 * could not be built as it builds it (memory). Either way the two passes decide, as before. */
#define COMPOSE_ASK_LOADER 1

static yaml_node_t *node_of(struct composer *c, int id) {
        return c->doc->nodes.start + id - 1;
}

/* The node id goes into the open collection (or is the root). */
static int attach(struct composer *c, int id) {
        if (c->depth == 0)
                return 0;
        int parent = c->open[c->depth - 1].id, *key = &c->open[c->depth - 1].key;
        if (node_of(c, parent)->type == YAML_SEQUENCE_NODE)
                return libyaml.yaml_document_append_sequence_item(c->doc, parent, id) ? 0
                                                                                      : COMPOSE_ASK_LOADER;
        if (*key == 0) {
                *key = id;
                return 0;
        }
        int k = *key;
        *key = 0;
        return libyaml.yaml_document_append_mapping_pair(c->doc, parent, k, id) ? 0 : COMPOSE_ASK_LOADER;
}

/* As the loader: an anchor names its node from its start (an alias inside it names the
 * collection itself); a name anchored twice is the loader's error. */
static int register_anchor(struct composer *c, const yaml_char_t *anchor, int id) {
        if (!anchor)
                return 0;
        for (size_t i = 0; i < c->n_anchors; i++)
                if (streq(c->anchors[i].name, (const char *) anchor))
                        return COMPOSE_ASK_LOADER;
        if (!GREEDY_REALLOC(c->anchors, c->allocated, c->n_anchors + 1))
                return COMPOSE_ASK_LOADER;
        if (!(c->anchors[c->n_anchors].name = strdup((const char *) anchor)))
                return COMPOSE_ASK_LOADER;
        c->anchors[c->n_anchors++].id = id;
        return 0;
}

/* The tag the loader gives a node: the event's, or the default for its kind (NULL here). */
static yaml_char_t *node_tag(yaml_char_t *tag) {
        return tag && !streq((const char *) tag, "!") ? tag : NULL;
}

/* Compose one event of the first document into c->doc: 0 or COMPOSE_ASK_LOADER. */
static int compose_event(struct composer *c, const yaml_event_t *e) {
        int id, r;
        switch (e->type) {
        case YAML_DOCUMENT_START_EVENT:
                c->started = true;
                return 0;
        case YAML_DOCUMENT_END_EVENT:
                c->complete = true;
                return 0;
        case YAML_SCALAR_EVENT:
                id = libyaml.yaml_document_add_scalar(c->doc, node_tag(e->data.scalar.tag),
                                                      e->data.scalar.value, (int) e->data.scalar.length,
                                                      e->data.scalar.style);
                if (!id)
                        return COMPOSE_ASK_LOADER;
                node_of(c, id)->start_mark = e->start_mark;
                node_of(c, id)->end_mark = e->end_mark;
                return register_anchor(c, e->data.scalar.anchor, id) ?: attach(c, id);
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT: {
                bool seq = e->type == YAML_SEQUENCE_START_EVENT;
                /* deeper than this, the count refused the file before */
                if (c->depth == ELEMENTSOF(c->open))
                        return COMPOSE_ASK_LOADER;
                id = seq ? libyaml.yaml_document_add_sequence(c->doc, node_tag(e->data.sequence_start.tag),
                                                              e->data.sequence_start.style)
                         : libyaml.yaml_document_add_mapping(c->doc, node_tag(e->data.mapping_start.tag),
                                                             e->data.mapping_start.style);
                if (!id)
                        return COMPOSE_ASK_LOADER;
                node_of(c, id)->start_mark = e->start_mark;
                r = register_anchor(c, seq ? e->data.sequence_start.anchor : e->data.mapping_start.anchor, id)
                            ?: attach(c, id);
                if (r != 0)
                        return r;
                c->open[c->depth].id = id;
                c->open[c->depth++].key = 0;
                return 0;
        }
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
                if (c->depth == 0)
                        return COMPOSE_ASK_LOADER;
                node_of(c, c->open[--c->depth].id)->end_mark = e->end_mark;
                return 0;
        case YAML_ALIAS_EVENT:
                for (size_t i = 0; i < c->n_anchors; i++)
                        if (streq(c->anchors[i].name, (const char *) e->data.alias.anchor))
                                return attach(c, c->anchors[i].id);
                return COMPOSE_ASK_LOADER; /* undefined: the loader's error */
        default:
                return 0;
        }
}

/* The two passes this file replaces: the count over the whole text, then yaml_parser_load(). Only
 * where the one pass met an error of the loader's (or could not build the document), for the
 * same errors in the same order. */
static int load_two_passes(const char *text, size_t size, const char *source, yaml_document_t *ret,
                           struct vgpu_error *err) {
        int r = check_expansion(text, size, source, err);
        if (r < 0)
                return r;
        yaml_parser_t parser;
        if (!libyaml.yaml_parser_initialize(&parser))
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        libyaml.yaml_parser_set_input_string(&parser, (const unsigned char *) text, size);
        if (!libyaml.yaml_parser_load(&parser, ret))
                r = vgpu_error_set(err, -EINVAL, "%s:%zu:%zu: not valid YAML: %s%s%s", source,
                                   parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                                   parser.problem ? parser.problem : "parse error", parser.context ? " " : "",
                                   parser.context ? parser.context : "");
        libyaml.yaml_parser_delete(&parser);
        return r;
}

int config_load_document(const char *text, size_t size, const char *source, yaml_document_t *ret,
                         struct vgpu_error *err) {
        int r = config_libyaml_load(err);
        if (r < 0)
                return r;
        yaml_parser_t parser;
        if (!libyaml.yaml_parser_initialize(&parser))
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        if (!libyaml.yaml_document_initialize(ret, NULL, NULL, NULL, 1, 1)) {
                libyaml.yaml_parser_delete(&parser);
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        }
        libyaml.yaml_parser_set_input_string(&parser, (const unsigned char *) text, size);
        struct expansion x = {};
        struct composer c = { .doc = ret };
        for (bool done = false; !done && r == 0;) {
                yaml_event_t e;
                if (!libyaml.yaml_parser_parse(&parser, &e)) {
                        /* the loader never reads past the first document: an error there is not its */
                        r = c.complete ? 0 : COMPOSE_ASK_LOADER;
                        break;
                }
                r = expansion_event(&x, &e, source, err);
                if (r == 0 && !c.complete && (c.started || e.type == YAML_DOCUMENT_START_EVENT))
                        r = compose_event(&c, &e);
                done = e.type == YAML_STREAM_END_EVENT;
                libyaml.yaml_event_delete(&e);
        }
        expansion_done(&x);
        for (size_t i = 0; i < c.n_anchors; i++)
                free(c.anchors[i].name);
        free(c.anchors);
        libyaml.yaml_parser_delete(&parser);
        if (r != 0)
                libyaml.yaml_document_delete(ret);
        if (r == COMPOSE_ASK_LOADER)
                r = load_two_passes(text, size, source, ret, err);
        return r;
}
