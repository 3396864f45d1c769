/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config-slices.c — the 'slices' list of host.yaml (format in vgpu/config.h): software slices
 * declared like instances. Each item is checked on its own (name, GPU address, size, share,
 * policy, scrub) and the list as a whole (a name once per host, fixed shares of one GPU adding
 * up to at most 100 %). What needs the host — the GPU existing, its memory covering the quotas —
 * is checked by the planner (lib/plan/slices.c), which knows the host.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/error-util.h"
#include "config-internal.h"
#include "vgpu/slice.h"
#include "slice/slice.h"
#include "vgpu/host.h"

/* "30%" or "30": a whole percentage. */
static int parse_share(struct parse *p, const yaml_node_t *n, unsigned *ret) {
        const char *s = scalar(n);
        char *end;
        if (!s || !isdigit((unsigned char) *s))
                return fail_at(p, n,
                               "field 'share': expected a percentage from 1 to 100 (e.g. 30%%), got '%s'",
                               s ? s : "(not a scalar)");
        unsigned long v = strtoul(s, &end, 10);
        if ((*end && strcmp(end, "%") != 0) || v < 1 || v > 100)
                return fail_at(p, n,
                               "field 'share': expected a percentage from 1 to 100 (e.g. 30%%), got '%s'", s);
        *ret = (unsigned) v;
        return 0;
}

static int parse_slice(struct parse *p, yaml_node_t *n, struct vgpu_config_slice *c) {
        *c = (struct vgpu_config_slice){ .line = (int) n->start_mark.line + 1,
                                         .column = (int) n->start_mark.column + 1 };
        struct vgpu_slice_spec *s = &c->spec;
        int r = want_mapping(p, n, "a 'slices' item");
        if (r < 0)
                return r;
        const yaml_node_t *policy_node = NULL, *share_node = NULL;
        bool have_name = false, have_gpu = false;
        yaml_node_t *k, *v;
        FOR_EACH_PAIR(p, n, k, v) {
                const char *key = scalar(k), *val = scalar(v);
                if (streq(key, "name")) {
                        _cleanup_free_ char *name = NULL;
                        if ((r = want_string(p, v, "name", &name)) < 0)
                                return r;
                        if (!slice_name_is_valid(name))
                                return fail_at(
                                        p, v,
                                        "field 'name': '%s' is not a slice name (letters, digits, '_', '.', "
                                        "'-', starting and ending with a letter or digit; at most 63)",
                                        name);
                        snprintf(s->name, sizeof(s->name), "%s", name);
                        have_name = true;
                } else if (streq(key, "gpu")) {
                        if (!val || vgpu_bdf_normalize(val, s->gpu) < 0)
                                return fail_at(p, v, "field 'gpu': '%s' is not a PCI address (DDDD:BB:DD.F)",
                                               val ? val : "(not a scalar)");
                        have_gpu = true;
                } else if (streq(key, "memory")) {
                        r = vgpu_slice_parse_memory(val, &s->memory);
                        if (r < 0 || s->memory == 0)
                                return fail_at(
                                        p, v, "field 'memory': expected a size like 4G or 512M, got '%s'%s",
                                        val ? val : "(not a scalar)", r == -ERANGE ? " (too large)" : "");
                } else if (streq(key, "share")) {
                        share_node = v;
                        if ((r = parse_share(p, v, &s->share)) < 0)
                                return r;
                } else if (streq(key, "policy")) {
                        policy_node = v;
                        if (vgpu_slice_policy_from_string(val, &s->policy) < 0)
                                return fail_at(p, v,
                                               "field 'policy': expected best-effort, equal-share or "
                                               "fixed-share, got '%s'",
                                               val ? val : "(not a scalar)");
                } else if (streq(key, "scrub")) {
                        if (vgpu_slice_scrub_from_string(val, &s->scrub) < 0)
                                return fail_at(p, v,
                                               "field 'scrub': expected on-free, on-exit or off, got '%s'",
                                               val ? val : "(not a scalar)");
                } else
                        return fail_at(p, k,
                                       "unknown field '%s' in a 'slices' item (expected name, gpu, memory, "
                                       "share, policy, scrub)",
                                       key ? key : "?");
        }
        if (!have_name)
                return fail_at(p, n, "field 'name' missing in a 'slices' item");
        if (!have_gpu)
                return fail_at(p, n, "field 'gpu' missing in slice %s (the BDF of an NVIDIA GPU)", s->name);
        /* the defaults `vgpuctl slice create` has: a share means fixed-share, else equal-share */
        if (s->policy == VGPU_SLICE_POLICY_DEFAULT)
                s->policy = s->share ? VGPU_SLICE_POLICY_FIXED_SHARE : VGPU_SLICE_POLICY_EQUAL_SHARE;
        if (s->scrub == VGPU_SLICE_SCRUB_DEFAULT)
                s->scrub = VGPU_SLICE_SCRUB_ON_FREE;
        bool fixed = s->policy == VGPU_SLICE_POLICY_FIXED_SHARE;
        if (fixed && !s->share)
                return fail_at(
                        p, policy_node,
                        "field 'share': slice %s has policy fixed-share and needs a share (e.g. share: 30%%)",
                        s->name);
        if (!fixed && s->share)
                return fail_at(p, share_node,
                               "field 'share': a share goes with policy fixed-share, slice %s has %s",
                               s->name, vgpu_slice_policy_to_string(s->policy));
        return 0;
}

/* The list as a whole: names unique on the host, fixed shares of a GPU at most 100 % together. */
static int check_slices(struct parse *p, const struct vgpu_config *cfg) {
        for (size_t i = 0; i < cfg->n_slices; i++) {
                const struct vgpu_slice_spec *s = &cfg->slices[i].spec;
                int line = cfg->slices[i].line, column = cfg->slices[i].column;
                unsigned total = s->share;
                for (size_t j = 0; j < i; j++) {
                        const struct vgpu_slice_spec *o = &cfg->slices[j].spec;
                        if (streq(o->name, s->name))
                                return vgpu_error_set(
                                        p->err, -EINVAL,
                                        "%s:%d:%d: slice %s is declared twice (first at line %d)", p->source,
                                        line, column, s->name, cfg->slices[j].line);
                        if (streq(o->gpu, s->gpu))
                                total += o->share;
                }
                if (s->share && total > 100)
                        return vgpu_error_set(p->err, -EINVAL,
                                              "%s:%d:%d: field 'share': the fixed shares of %s add up to "
                                              "%u%% with slice %s; at most 100%%",
                                              p->source, line, column, s->gpu, total, s->name);
        }
        return 0;
}

int config_parse_slices(struct parse *p, yaml_node_t *n, struct vgpu_config *cfg) {
        cfg->has_slices = true;
        /* 'slices:' with nothing after it is YAML's null: an empty list, i.e. "no slices" */
        if (n && n->type == YAML_SCALAR_NODE &&
            (streq(scalar(n), "") || streq(scalar(n), "~") || streq(scalar(n), "null")))
                return 0;
        int r = want_sequence(p, n, "field 'slices'");
        if (r < 0)
                return r;
        size_t count = (size_t) (n->data.sequence.items.top - n->data.sequence.items.start);
        if (!(cfg->slices = calloc(count + 1, sizeof(*cfg->slices))))
                return vgpu_error_set(p->err, -ENOMEM, "out of memory");
        yaml_node_t *item;
        FOR_EACH_ITEM(p, n, item) {
                r = parse_slice(p, item, &cfg->slices[cfg->n_slices]);
                cfg->n_slices++;
                if (r < 0)
                        return r;
        }
        return check_slices(p, cfg);
}

void config_slices_free(struct vgpu_config *cfg) {
        free(cfg->slices);
}
