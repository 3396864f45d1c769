/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * config.c — parsing and validating host.yaml (format in vgpu/config.h) with libyaml.
 *
 * The whole file is validated before anything acts on it; the first problem is reported as
 * FILE:LINE:COLUMN: field 'NAME': what was expected and what was found. Unknown keys are
 * errors (a typo like "cuont" must not silently mean "no devices"). Anchors and aliases work
 * as in YAML, but a file may not expand to more than CONFIG_NODES_MAX nodes (config-load.c, which
 * also makes the text a YAML document). The typed field readers are in config-util.c, the 'slices'
 * list in config-slices.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "basic/root.h"
#include "basic/sysfs.h"
#include "vgpu/config.h"
#include "config-internal.h"
#include "vgpu/slice.h"

static int parse_attrs(struct parse *p, yaml_node_t *n, struct vgpu_config_device *d) {
        int r = want_sequence(p, n, "field 'attrs'");
        if (r < 0)
                return r;
        size_t count = (size_t) (n->data.sequence.items.top - n->data.sequence.items.start);
        if (!(d->attrs = calloc(count + 1, sizeof(*d->attrs))))
                return vgpu_error_set(p->err, -ENOMEM, "out of memory");
        yaml_node_t *item, *k, *v;
        FOR_EACH_ITEM(p, n, item) {
                if (item->type != YAML_MAPPING_NODE ||
                    item->data.mapping.pairs.top - item->data.mapping.pairs.start != 1)
                        return fail_at(p, item,
                                       "field 'attrs': each item is one 'attribute: value' pair, in the "
                                       "order to write them");
                FOR_EACH_PAIR(p, item, k, v) {
                        struct vgpu_mdev_attr *a = &d->attrs[d->n_attrs++];
                        if ((r = want_string(p, k, "attrs", &a->key)) < 0 ||
                            (r = want_string(p, v, a->key, &a->value)) < 0)
                                return r;
                        if (!sysfs_rel_path_ok(a->key))
                                return fail_at(p, k, "field 'attrs': '%s' must be a path below the device",
                                               a->key);
                }
        }
        return 0;
}

/* The most instances one 'devices' item may ask for. */
#define CONFIG_COUNT_MAX 4096u

/* One UUID of the file and where it is, for finding repeats by sorting. */
struct uuid_at {
        const char *uuid;
        size_t order; /* position in the file: GPU, device, list index */
        const struct vgpu_config_device *device;
};

static int cmp_uuid_at(const void *a, const void *b) {
        const struct uuid_at *x = a, *y = b;
        int c = strcmp(x->uuid, y->uuid);
        return c ? c : (x->order > y->order) - (x->order < y->order);
}

/* Sorted by UUID, then place: the repeat that comes first in the file (the entry, of those that
 * repeat an earlier one, with the lowest place), or NULL; *ret_first is the earlier one. */
static const struct uuid_at *first_repeat(const struct uuid_at *all, size_t n,
                                          const struct uuid_at **ret_first) {
        const struct uuid_at *again = NULL;
        for (size_t i = 1, g = 0; i < n; i++) {
                if (strcmp(all[i].uuid, all[g].uuid) != 0)
                        g = i;
                else if (i == g + 1 && (!again || all[i].order < again->order))
                        again = &all[i], *ret_first = &all[g];
        }
        return again;
}

/* A UUID once in one 'uuids' list (seq, parsed into d). O(n log n): a list is not limited by
 * anything but the count, and the daemon parses bodies on its event loop. */
static int check_unique_in_list(struct parse *p, const yaml_node_t *seq, const struct vgpu_config_device *d) {
        if (d->n_uuids < 2)
                return 0;
        struct uuid_at *all = calloc(d->n_uuids, sizeof(*all));
        if (!all)
                return vgpu_error_set(p->err, -ENOMEM, "out of memory");
        for (size_t i = 0; i < d->n_uuids; i++)
                all[i] = (struct uuid_at){ d->uuids[i], i, d };
        qsort_safe(all, d->n_uuids, sizeof(*all), cmp_uuid_at);
        const struct uuid_at *first = NULL, *again = first_repeat(all, d->n_uuids, &first);
        int r = 0;
        if (again) {
                const yaml_node_t *item =
                        libyaml.yaml_document_get_node(&p->doc, seq->data.sequence.items.start[again->order]);
                r = fail_at(p, item, "field 'uuids': %s appears twice", scalar(item));
        }
        free(all);
        return r;
}

static int parse_device(struct parse *p, yaml_node_t *n, struct vgpu_config_device *d) {
        *d = (struct vgpu_config_device){ .count = 1,
                                          .auto_start = true,
                                          .persistent = true,
                                          .running = true,
                                          .line = (int) n->start_mark.line + 1 };
        int r = want_mapping(p, n, "a 'devices' item");
        if (r < 0)
                return r;
        bool have_count = false;
        yaml_node_t *k, *v, *item;
        FOR_EACH_PAIR(p, n, k, v) {
                const char *key = scalar(k);
                if (streq(key, "type"))
                        r = want_string(p, v, "type", &d->type);
                else if (streq(key, "framebuffer")) {
                        const char *val = scalar(v);
                        if (vgpu_slice_parse_memory(val, &d->framebuffer) < 0 || d->framebuffer == 0)
                                return fail_at(
                                        p, v,
                                        "field 'framebuffer': expected a size like 4G or 512M, got '%s'",
                                        val ? val : "(not a scalar)");
                        d->framebuffer_line = (int) v->start_mark.line + 1;
                        d->framebuffer_column = (int) v->start_mark.column + 1;
                } else if (streq(key, "count"))
                        r = want_uint(p, v, "count", CONFIG_COUNT_MAX, &d->count), have_count = true;
                else if (streq(key, "auto-start"))
                        r = want_bool(p, v, "auto-start", &d->auto_start);
                else if (streq(key, "persistent"))
                        r = want_bool(p, v, "persistent", &d->persistent);
                else if (streq(key, "running"))
                        r = want_bool(p, v, "running", &d->running);
                else if (streq(key, "attrs"))
                        r = parse_attrs(p, v, d);
                else if (streq(key, "uuids")) {
                        if ((r = want_sequence(p, v, "field 'uuids'")) < 0)
                                return r;
                        size_t count = (size_t) (v->data.sequence.items.top - v->data.sequence.items.start);
                        /* more than any count can be: refused before anything is built for them */
                        if (count > CONFIG_COUNT_MAX)
                                return fail_at(p, v, "field 'uuids': %zu UUIDs, at most %u", count,
                                               CONFIG_COUNT_MAX);
                        if (!(d->uuids = calloc(count + 1, sizeof(*d->uuids))))
                                return vgpu_error_set(p->err, -ENOMEM, "out of memory");
                        FOR_EACH_ITEM(p, v, item) {
                                const char *u = scalar(item);
                                if (!vgpu_uuid_valid(u))
                                        return fail_at(p, item, "field 'uuids': '%s' is not a UUID",
                                                       u ? u : "(not a scalar)");
                                memcpy(d->uuids[d->n_uuids], u, VGPU_UUID_MAX); /* valid: 36 + NUL */
                                for (char *c = d->uuids[d->n_uuids]; *c; c++)
                                        if (*c >= 'A' && *c <= 'F')
                                                *c = (char) (*c - 'A' + 'a');
                                d->n_uuids++;
                        }
                        /* repeats within the list: by sorting, not each against every other */
                        if ((r = check_unique_in_list(p, v, d)) < 0)
                                return r;
                } else
                        return fail_at(p, k,
                                       "unknown field '%s' in a 'devices' item (expected type or "
                                       "framebuffer, count, uuids, attrs, auto-start, persistent, running)",
                                       key ? key : "?");
                if (r < 0)
                        return r;
        }
        if (d->type && d->framebuffer)
                return fail_at(p, n,
                               "'type' and 'framebuffer' both pick the type of a 'devices' item: give one");
        if (!d->type && !d->framebuffer)
                return fail_at(p, n, "field 'type' (or 'framebuffer') missing in a 'devices' item");
        if (!have_count && d->n_uuids > 0)
                d->count = (unsigned) d->n_uuids;
        if (d->n_uuids > d->count)
                return fail_at(p, n, "field 'uuids': %zu UUIDs for count %u", d->n_uuids, d->count);
        /* defined and not running: as 'vgpuctl define', each needs its UUID (a count alone would
         * define new UUIDs at every apply) and a definition */
        if (!d->running && !d->persistent)
                return fail_at(p, n, "'running: false' with 'persistent: false' leaves nothing to apply");
        if (!d->running && d->n_uuids != d->count)
                return fail_at(p, n, "'running: false' needs every UUID listed (%zu for count %u)",
                               d->n_uuids, d->count);
        return 0;
}

static int parse_policy(struct parse *p, yaml_node_t *n, struct vgpu_config_policy *pol) {
        *pol = (struct vgpu_config_policy){ .timeslice_ms = -1, .frame_rate_limit = -1 };
        int r = want_mapping(p, n, "field 'policy'");
        if (r < 0)
                return r;
        yaml_node_t *k, *v;
        FOR_EACH_PAIR(p, n, k, v) {
                const char *key = scalar(k), *s = scalar(v);
                if (streq(key, "scheduler")) {
                        if (streq(s, "best-effort"))
                                pol->scheduler = VGPU_SCHED_BEST_EFFORT;
                        else if (streq(s, "equal-share"))
                                pol->scheduler = VGPU_SCHED_EQUAL_SHARE;
                        else if (streq(s, "fixed-share"))
                                pol->scheduler = VGPU_SCHED_FIXED_SHARE;
                        else
                                return fail_at(p, v,
                                               "field 'scheduler': expected best-effort, equal-share or "
                                               "fixed-share, got '%s'",
                                               s ? s : "(not a scalar)");
                } else if (streq(key, "timeslice-ms")) {
                        unsigned ms;
                        if ((r = want_uint(p, v, "timeslice-ms", 30, &ms)) < 0)
                                return r;
                        if (ms < 1)
                                return fail_at(p, v, "field 'timeslice-ms': expected 1 to 30, got 0");
                        pol->timeslice_ms = (int) ms;
                } else if (streq(key, "frame-rate-limit")) {
                        bool on;
                        if ((r = want_bool(p, v, "frame-rate-limit", &on)) < 0)
                                return r;
                        pol->frame_rate_limit = on;
                } else
                        return fail_at(p, k,
                                       "unknown field '%s' in 'policy' (expected scheduler, timeslice-ms, "
                                       "frame-rate-limit)",
                                       key ? key : "?");
        }
        if (pol->timeslice_ms > 0 && pol->scheduler == VGPU_SCHED_BEST_EFFORT)
                return fail_at(
                        p, n,
                        "field 'timeslice-ms': a time slice needs scheduler equal-share or fixed-share");
        return 0;
}

static int parse_gpu(struct parse *p, yaml_node_t *n, struct vgpu_config_gpu *g) {
        *g = (struct vgpu_config_gpu){ .vfs = -1, .persistence = -1, .line = (int) n->start_mark.line + 1 };
        int r = want_mapping(p, n, "a 'gpus' item");
        if (r < 0)
                return r;
        int selectors = 0;
        yaml_node_t *k, *v, *item;
        FOR_EACH_PAIR(p, n, k, v) {
                const char *key = scalar(k);
                if (streq(key, "bdf") || streq(key, "parent") || streq(key, "pci-id")) {
                        selectors++;
                        g->select = streq(key, "bdf")      ? VGPU_SELECT_BDF
                                    : streq(key, "parent") ? VGPU_SELECT_PARENT
                                                           : VGPU_SELECT_PCI_ID;
                        free(g->value); /* a second selector is reported below */
                        g->value = NULL;
                        if ((r = want_string(p, v, key, &g->value)) < 0)
                                return r;
                        char bdf[VGPU_BDF_MAX];
                        unsigned vid, did;
                        int len = 0;
                        /* a parent may be a BDF too, written as the user likes it */
                        bool is_bdf =
                                g->select != VGPU_SELECT_PCI_ID && vgpu_bdf_normalize(g->value, bdf) == 0;
                        if (g->select == VGPU_SELECT_BDF && !is_bdf)
                                return fail_at(p, v, "field 'bdf': '%s' is not a PCI address (DDDD:BB:DD.F)",
                                               g->value);
                        if (g->select == VGPU_SELECT_PCI_ID &&
                            (sscanf(g->value, "%4x:%4x%n", &vid, &did, &len) != 2 || g->value[len] != '\0'))
                                return fail_at(p, v,
                                               "field 'pci-id': '%s' is not VENDOR:DEVICE in hex (10de:1eb8)",
                                               g->value);
                        if (is_bdf && !streq(bdf, g->value)) {
                                free(g->value);
                                if (!(g->value = strdup(bdf)))
                                        return vgpu_error_set(p->err, -ENOMEM, "out of memory");
                        }
                } else if (streq(key, "all")) {
                        bool all;
                        selectors++;
                        if ((r = want_bool(p, v, "all", &all)) < 0)
                                return r;
                        if (!all)
                                return fail_at(
                                        p, v,
                                        "field 'all': only 'all: true' selects; leave it out otherwise");
                        g->select = VGPU_SELECT_ALL;
                } else if (streq(key, "vfs")) {
                        unsigned vfs;
                        if ((r = want_uint(p, v, "vfs", 4096, &vfs)) < 0)
                                return r;
                        g->vfs = (int) vfs;
                } else if (streq(key, "persistence")) {
                        bool on;
                        if ((r = want_bool(p, v, "persistence", &on)) < 0)
                                return r;
                        g->persistence = on;
                } else if (streq(key, "policy")) {
                        g->has_policy = true;
                        if ((r = parse_policy(p, v, &g->policy)) < 0)
                                return r;
                } else if (streq(key, "devices")) {
                        if ((r = want_sequence(p, v, "field 'devices'")) < 0)
                                return r;
                        size_t count = (size_t) (v->data.sequence.items.top - v->data.sequence.items.start);
                        if (!(g->devices = calloc(count + 1, sizeof(*g->devices))))
                                return vgpu_error_set(p->err, -ENOMEM, "out of memory");
                        FOR_EACH_ITEM(p, v, item) {
                                r = parse_device(p, item, &g->devices[g->n_devices]);
                                g->n_devices++;
                                if (r < 0)
                                        return r;
                        }
                } else
                        return fail_at(p, k,
                                       "unknown field '%s' in a 'gpus' item (expected bdf, parent, pci-id, "
                                       "all, vfs, persistence, policy, devices)",
                                       key ? key : "?");
        }
        if (selectors != 1)
                return fail_at(p, n, "a 'gpus' item needs exactly one of bdf, parent, pci-id, all (found %d)",
                               selectors);
        if (g->vfs >= 0 && g->select != VGPU_SELECT_BDF)
                return fail_at(p, n, "field 'vfs': only with 'bdf' (one physical function)");
        return 0;
}

static void config_device_done(struct vgpu_config_device *d) {
        free(d->type);
        free(d->uuids);
        for (size_t i = 0; i < d->n_attrs; i++) {
                free(d->attrs[i].key);
                free(d->attrs[i].value);
        }
        free(d->attrs);
}

_public_ void vgpu_config_free(struct vgpu_config *cfg) {
        if (!cfg)
                return;
        for (size_t i = 0; i < cfg->n_gpus; i++) {
                for (size_t j = 0; j < cfg->gpus[i].n_devices; j++)
                        config_device_done(&cfg->gpus[i].devices[j]);
                free(cfg->gpus[i].devices);
                free(cfg->gpus[i].value);
        }
        free(cfg->gpus);
        config_slices_free(cfg);
        free(cfg->source);
        free(cfg);
}

/* A UUID may appear once in a file: all of them sorted, O(n log n). Comparing each with every
 * other took 44 s of CPU for 190000 UUIDs, and vgpud parses POST /v1/apply on its loop. */
static int check_unique_uuids(struct parse *p, const struct vgpu_config *cfg) {
        size_t n = 0;
        for (size_t a = 0; a < cfg->n_gpus; a++)
                for (size_t b = 0; b < cfg->gpus[a].n_devices; b++)
                        n += cfg->gpus[a].devices[b].n_uuids;
        if (n < 2)
                return 0;
        struct uuid_at *all = calloc(n, sizeof(*all));
        if (!all)
                return vgpu_error_set(p->err, -ENOMEM, "out of memory");
        size_t i = 0;
        for (size_t a = 0; a < cfg->n_gpus; a++)
                for (size_t b = 0; b < cfg->gpus[a].n_devices; b++) {
                        const struct vgpu_config_device *d = &cfg->gpus[a].devices[b];
                        for (size_t u = 0; u < d->n_uuids; u++, i++)
                                all[i] = (struct uuid_at){ d->uuids[u], i, d };
                }
        qsort_safe(all, n, sizeof(*all), cmp_uuid_at);
        /* each list has its UUIDs once (check_unique_in_list): a repeat is in a later entry */
        const struct uuid_at *first = NULL, *again = first_repeat(all, n, &first);
        int r = again ? vgpu_error_set(p->err, -EINVAL, "%s:%d: UUID %s is also used at line %d", p->source,
                                       again->device->line, again->uuid, first->device->line)
                      : 0;
        free(all);
        return r;
}

_public_ int vgpu_config_parse_text(const char *text, size_t size, const char *source,
                                    struct vgpu_config **ret, struct vgpu_error *err) {
        struct parse p = { .source = source, .err = err };
        if (size > VGPU_CONFIG_SIZE_MAX)
                return vgpu_error_set(err, -EFBIG, "%s: larger than %s, the limit for host.yaml", source,
                                      VGPU_CONFIG_SIZE_MAX_TEXT);
        int r = config_load_document(text, size, source, &p.doc, err);
        if (r < 0)
                return r;

        struct vgpu_config *cfg = calloc(1, sizeof(*cfg));
        r = cfg && (cfg->source = strdup(source)) ? 0 : vgpu_error_set(err, -ENOMEM, "out of memory");
        yaml_node_t *root = libyaml.yaml_document_get_root_node(&p.doc);
        bool have_version = false;
        if (r >= 0 && !root)
                r = vgpu_error_set(err, -EINVAL, "%s: empty file (expected 'version: 1' and 'gpus:')",
                                   source);
        /* "\0" (or \x00, \u0000) in a quoted string: every reader takes the text as a C string,
         * so "0000:3b:00.0\0/../x" would quietly be read as its head. Refused like a NUL byte. */
        for (yaml_node_t *n = p.doc.nodes.start; r >= 0 && n < p.doc.nodes.top; n++)
                if (n->type == YAML_SCALAR_NODE &&
                    strlen((const char *) n->data.scalar.value) != n->data.scalar.length)
                        r = fail_at(&p, n, "a string contains a NUL character");
        if (r >= 0)
                r = want_mapping(&p, root, "the file");
        yaml_node_t *k, *v, *item;
        if (r >= 0)
                FOR_EACH_PAIR(&p, root, k, v) {
                        const char *key = scalar(k);
                        if (streq(key, "version")) {
                                have_version = true;
                                if (!streq(scalar(v), "1"))
                                        r = fail_at(&p, v,
                                                    "field 'version': this vgpuctl reads version 1, got '%s'",
                                                    scalar(v) ? scalar(v) : "?");
                        } else if (streq(key, "gpus")) {
                                if ((r = want_sequence(&p, v, "field 'gpus'")) < 0)
                                        break;
                                size_t count =
                                        (size_t) (v->data.sequence.items.top - v->data.sequence.items.start);
                                if (!(cfg->gpus = calloc(count + 1, sizeof(*cfg->gpus)))) {
                                        r = vgpu_error_set(err, -ENOMEM, "out of memory");
                                        break;
                                }
                                FOR_EACH_ITEM(&p, v, item) {
                                        r = parse_gpu(&p, item, &cfg->gpus[cfg->n_gpus]);
                                        cfg->n_gpus++;
                                        if (r < 0)
                                                break;
                                }
                        } else if (streq(key, "slices"))
                                r = config_parse_slices(&p, v, cfg);
                        else
                                r = fail_at(&p, k,
                                            "unknown top-level field '%s' (expected version, gpus, slices)",
                                            key ? key : "?");
                        if (r < 0)
                                break;
                }
        if (r >= 0 && !have_version)
                r = vgpu_error_set(err, -EINVAL, "%s:1:1: field 'version' missing (write 'version: 1')",
                                   source);
        if (r >= 0)
                r = check_unique_uuids(&p, cfg);
        libyaml.yaml_document_delete(&p.doc);
        if (r < 0) {
                vgpu_config_free(cfg);
                return r;
        }
        *ret = cfg;
        return 0;
}

_public_ int vgpu_config_load(const char *path, unsigned flags, struct vgpu_config **ret, char **ret_text,
                              struct vgpu_error *err) {
        char full[4096];
        int r = 0;
        if (flags & VGPU_CONFIG_HOST_PATH)
                r = root_path(full, sizeof(full), path);
        else
                snprintf(full, sizeof(full), "%s", path);
        if (r < 0)
                return vgpu_error_set(err, r, "%s: bad path", path);
        FILE *f = fopen(full, "re");
        if (!f)
                return vgpu_error_set_errno(err, -errno, "%s", full);
        char *text = NULL;
        size_t size = 0;
        FILE *m = open_memstream(&text, &size);
        if (!m) {
                fclose(f);
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        }
        /* reading stops once past the limit: /dev/zero, a FIFO or a runaway file end here */
        char buf[8192];
        size_t n, total = 0;
        bool short_write = false;
        while (total <= VGPU_CONFIG_SIZE_MAX && (n = fread(buf, 1, sizeof(buf), f)) > 0) {
                total += n;
                if (fwrite(buf, 1, n, m) != n) {
                        short_write = true; /* the memory stream cannot grow */
                        break;
                }
        }
        bool bad = ferror(f);
        fclose(f);
        bool no_memory = fclose(m) != 0 || short_write;
        if (no_memory || bad || total > VGPU_CONFIG_SIZE_MAX) {
                free(text);
                return no_memory ? vgpu_error_set(err, -ENOMEM, "out of memory")
                       : bad     ? vgpu_error_set(err, -EIO, "%s: cannot read", full)
                                 : vgpu_error_set(err, -EFBIG, "%s: larger than %s, the limit for host.yaml",
                                                  path, VGPU_CONFIG_SIZE_MAX_TEXT);
        }
        r = vgpu_config_parse_text(text, size, path, ret, err);
        if (r >= 0 && ret_text)
                *ret_text = text;
        else
                free(text);
        return r;
}
