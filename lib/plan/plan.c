/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * plan.c — from (host snapshot, definitions, configuration) to the minimal ordered action list.
 *
 * For each parent the file selects and each of its device entries: instances with the entry's
 * fixed UUIDs are kept, then other existing instances of the type (oldest UUID order), then
 * defined but stopped ones are started with their UUIDs (after a reboot or a module reload, a
 * count-only entry must bring back the UUIDs the VMs' XML names), until the count is met, and
 * only the rest are created with new UUIDs. Whatever else runs on a managed parent is
 * removed, unless a VM holds it and --force was not given. Definitions follow the instances
 * (persistent, start=auto unless the entry says otherwise). Order: removals, VF changes,
 * creations, definitions, policy — so capacity is freed before it is used.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "backend/backend.h"
#include "basic/error-util.h"
#include "basic/macro.h"
#include "basic/root.h"
#include "basic/sysfs.h"
#include "host/host-internal.h"
#include "plan-internal.h"

struct builder {
        struct vgpu_plan *plan;
        size_t allocated;
        struct vgpu_host *host;
        const struct vgpu_mdev_spec *defs;
        size_t n_defs;
        size_t *kept;         /* per host instance: 1 + the file entry that claims it, 0 none */
        size_t *def_claim;    /* per definition (defs): 1 + the file entry that starts it, 0 none */
        size_t *inst_by_uuid; /* instance indexes sorted by UUID */
        const struct vgpu_mdev_spec **def_by_uuid;
        const char *const *only; /* a restore limited to these parents; NULL: all */
        size_t n_only;
        bool force; /* VGPU_APPLY_FORCE */
        struct vgpu_error *err;
};

/*
 * Lookups are by binary search: instances and definitions come sorted by parent (then UUID),
 * and UUID indexes are built once. With hundreds of parents and instances, the nested scans
 * they replace were most of a no-op apply.
 */
static const struct builder *sort_ctx;

static int cmp_inst_uuid(const void *a, const void *b) {
        return strcmp(sort_ctx->host->instances[*(const size_t *) a].uuid,
                      sort_ctx->host->instances[*(const size_t *) b].uuid);
}

static int cmp_def_uuid(const void *a, const void *b) {
        return strcmp((*(const struct vgpu_mdev_spec *const *) a)->uuid,
                      (*(const struct vgpu_mdev_spec *const *) b)->uuid);
}

static int build_indexes(struct builder *b) {
        b->inst_by_uuid = calloc(b->host->n_instances + 1, sizeof(size_t));
        b->def_by_uuid = calloc(b->n_defs + 1, sizeof(*b->def_by_uuid));
        if (!b->inst_by_uuid || !b->def_by_uuid)
                return -ENOMEM;
        for (size_t i = 0; i < b->host->n_instances; i++)
                b->inst_by_uuid[i] = i;
        for (size_t i = 0; i < b->n_defs; i++)
                b->def_by_uuid[i] = &b->defs[i];
        sort_ctx = b; /* qsort has no context argument; planning is not reentrant */
        qsort_safe(b->inst_by_uuid, b->host->n_instances, sizeof(size_t), cmp_inst_uuid);
        qsort_safe(b->def_by_uuid, b->n_defs, sizeof(*b->def_by_uuid), cmp_def_uuid);
        return 0;
}

/* Index of the running instance with this UUID, or -1. */
static ssize_t instance_by_uuid(const struct builder *b, const char *uuid) {
        size_t lo = 0, hi = b->host->n_instances;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                int c = strcmp(b->host->instances[b->inst_by_uuid[mid]].uuid, uuid);
                if (c == 0)
                        return (ssize_t) b->inst_by_uuid[mid];
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return -1;
}

/* [*lo, *hi) of a parent's entries in an array sorted by parent name. */
#define PARENT_RANGE(array, n, field, parent, lo, hi)                        \
        do {                                                                 \
                size_t _l = 0, _h = (n);                                     \
                while (_l < _h) {                                            \
                        size_t _m = (_l + _h) / 2;                           \
                        if (strcmp((array)[_m].field, (parent)) < 0)         \
                                _l = _m + 1;                                 \
                        else                                                 \
                                _h = _m;                                     \
                }                                                            \
                *(lo) = _l;                                                  \
                while (_l < (n) && strcmp((array)[_l].field, (parent)) == 0) \
                        _l++;                                                \
                *(hi) = _l;                                                  \
        } while (0)

static struct vgpu_action *add(struct builder *b, enum vgpu_action_kind kind, const char *detail) {
        struct vgpu_plan *p = b->plan;
        if (!GREEDY_REALLOC(p->actions, b->allocated, p->n_actions + 1))
                return NULL;
        struct vgpu_action *a = &p->actions[p->n_actions++];
        *a = (struct vgpu_action){ .kind = kind, .detail = detail ? strdup(detail) : NULL };
        return detail && !a->detail ? NULL : a; /* counted already: vgpu_plan_free() frees it */
}

/* An action on an instance of parent p: carried out by p's backend. */
static struct vgpu_action *add_instance(struct builder *b, enum vgpu_action_kind kind, const char *detail,
                                        const struct vgpu_parent *p) {
        struct vgpu_action *a = add(b, kind, detail);
        if (a) {
                a->backend = backend_for_driver(p->driver)->name;
                a->vendor_vfio = backend_typed_vf(p->gpu);
        }
        return a;
}

static int set_spec(struct vgpu_mdev_spec *s, const char *uuid, const char *parent, const char *type,
                    const struct vgpu_mdev_attr *attrs, size_t n_attrs, bool auto_start) {
        snprintf(s->uuid, sizeof(s->uuid), "%s", uuid);
        s->auto_start = auto_start;
        if (!(s->parent = strdup(parent)) || !(s->type = strdup(type)))
                return -ENOMEM;
        if (n_attrs && !(s->attrs = calloc(n_attrs, sizeof(*s->attrs))))
                return -ENOMEM;
        for (size_t i = 0; i < n_attrs; i++) {
                s->n_attrs++; /* counted first: a key whose value failed is freed with the spec */
                if (!(s->attrs[i].key = strdup(attrs[i].key)) ||
                    !(s->attrs[i].value = strdup(attrs[i].value)))
                        return -ENOMEM;
        }
        return 0;
}

static const struct vgpu_mdev_spec *find_def(const struct builder *b, const char *uuid) {
        size_t lo = 0, hi = b->n_defs;
        while (lo < hi) {
                size_t mid = (lo + hi) / 2;
                int c = strcmp(b->def_by_uuid[mid]->uuid, uuid);
                if (c == 0)
                        return b->def_by_uuid[mid];
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return NULL;
}

static bool same_definition(const struct vgpu_mdev_spec *d, const char *parent, const char *type,
                            const struct vgpu_config_device *dev) {
        if (strcmp(d->parent, parent) != 0 || strcmp(d->type, type) != 0 ||
            d->auto_start != dev->auto_start || d->n_attrs != dev->n_attrs)
                return false;
        for (size_t i = 0; i < d->n_attrs; i++)
                if (strcmp(d->attrs[i].key, dev->attrs[i].key) != 0 ||
                    strcmp(d->attrs[i].value, dev->attrs[i].value) != 0)
                        return false;
        return true;
}

/* The definition an instance should have; define (or redefine) when the store differs. */
static int want_definition(struct builder *b, const char *uuid, const char *parent,
                           const struct vgpu_config_device *dev) {
        const struct vgpu_mdev_spec *d = find_def(b, uuid);
        /* "persistent: false": the instance runs and has no definition, as after 'create' without
         * --persist (so that an export of such a host asserts as matching) */
        if (!dev->persistent) {
                if (!d)
                        return 0;
                struct vgpu_action *u = add(b, VGPU_ACTION_UNDEFINE, "not persistent in the file");
                return !u || set_spec(&u->spec, uuid, d->parent, d->type, d->attrs, d->n_attrs,
                                      d->auto_start) < 0
                               ? -ENOMEM
                               : 0;
        }
        if (d && same_definition(d, parent, dev->type, dev))
                return 0;
        if (d && strcmp(d->parent, parent) != 0) {
                struct vgpu_action *u = add(b, VGPU_ACTION_UNDEFINE, "defined on another parent");
                if (!u ||
                    set_spec(&u->spec, uuid, d->parent, d->type, d->attrs, d->n_attrs, d->auto_start) < 0)
                        return -ENOMEM;
        }
        struct vgpu_action *a =
                add(b, VGPU_ACTION_DEFINE, d ? "definition differs from the file" : "not defined yet");
        if (!a)
                return -ENOMEM;
        return set_spec(&a->spec, uuid, parent, dev->type, dev->attrs, dev->n_attrs, dev->auto_start);
}

/* Is uuid a fixed UUID of any entry of g? Such an instance or definition is that entry's. */
static bool fixed_elsewhere(const struct vgpu_config_gpu *g, const char *uuid) {
        for (size_t e = 0; e < g->n_devices; e++)
                for (size_t u = 0; u < g->devices[e].n_uuids; u++)
                        if (strcmp(g->devices[e].uuids[u], uuid) == 0)
                                return true;
        return false;
}

static int plan_parent(struct builder *b, struct vgpu_parent *p, const struct vgpu_config_gpu *g, bool force,
                       size_t *n_removed) {
        const struct vgpu_host *h = b->host;
        size_t lo, hi;
        PARENT_RANGE(h->instances, h->n_instances, parent, p->name, &lo, &hi);
        /* 1. claim instances for each device entry: fixed UUIDs first, then any of the type */
        for (size_t e = 0; e < g->n_devices; e++) {
                const struct vgpu_config_device *dev = &g->devices[e];
                unsigned have = 0;
                if (!dev->running)
                        continue; /* definitions only: claims no instance, starts nothing */
                for (size_t u = 0; u < dev->n_uuids; u++) {
                        ssize_t i = instance_by_uuid(b, dev->uuids[u]);
                        if (i >= 0 && !b->kept[i] && strcmp(h->instances[i].parent, p->name) == 0 &&
                            streq(h->instances[i].type, dev->type))
                                b->kept[i] = e + 1, have++;
                }
                for (size_t i = lo; i < hi && have < dev->count; i++) {
                        const struct vgpu_instance *in = &h->instances[i];
                        if (b->kept[i] || strcmp(in->parent, p->name) != 0 || !streq(in->type, dev->type))
                                continue;
                        /* an instance named by UUID elsewhere in the file is not ours to take */
                        bool reserved = false;
                        for (size_t u = 0; u < dev->n_uuids; u++)
                                reserved |= strcmp(dev->uuids[u], in->uuid) == 0;
                        if (!reserved)
                                b->kept[i] = e + 1, have++;
                }
                /* then stopped definitions of the type on this parent, to start with their UUIDs */
                size_t dlo, dhi;
                PARENT_RANGE(b->defs, b->n_defs, parent, p->name, &dlo, &dhi);
                unsigned fixed_pending = 0; /* fixed UUIDs still to create come first */
                for (size_t u = 0; u < dev->n_uuids; u++) {
                        ssize_t i = instance_by_uuid(b, dev->uuids[u]);
                        fixed_pending += i < 0 || !b->kept[i];
                }
                for (size_t i = dlo; i < dhi && have + fixed_pending < dev->count; i++) {
                        const struct vgpu_mdev_spec *d = &b->defs[i];
                        if (b->def_claim[i] || !streq(d->type, dev->type) ||
                            instance_by_uuid(b, d->uuid) >= 0 || fixed_elsewhere(g, d->uuid))
                                continue;
                        b->def_claim[i] = e + 1;
                        have++;
                }
                /* The type must be one the parent offers, or one running here (a busy vendor-VFIO
                 * VF offers nothing more). Types are read only when something is to be created:
                 * a no-op apply on a large host reads none. */
                bool running = false;
                unsigned started = 0;
                for (size_t i = dlo; i < dhi; i++)
                        started += b->def_claim[i] == e + 1;
                for (size_t i = lo; i < hi; i++)
                        running |= streq(h->instances[i].type, dev->type);
                if (running && have >= dev->count && started == 0)
                        continue;
                int r = host_parent_read_types(h, p, b->err);
                if (r < 0)
                        return r;
                bool known = running;
                for (size_t t = 0; t < p->n_types; t++)
                        known |= strcmp(p->types[t].id, dev->type) == 0;
                if (!known) {
                        char where[32];
                        snprintf(where, sizeof(where), "line %d: ", dev->line);
                        return plan_refuse_type(b->err, where, p, dev->type);
                }
        }
        /* 2. remove what runs on this parent and was not claimed */
        for (size_t i = lo; i < hi; i++) {
                const struct vgpu_instance *in = &h->instances[i];
                if (b->kept[i])
                        continue;
                int group = force ? -1 : host_instance_iommu_group(in);
                if (group >= 0 && vfio_group_in_use(group))
                        return vgpu_error_set(
                                b->err, -EBUSY,
                                "%s (%s on %s) is in use by a running VM (/dev/vfio/%d is open); "
                                "stop the VM, or apply --force",
                                in->uuid[0] ? in->uuid : in->parent, strempty(in->type), in->parent, group);
                struct vgpu_action *a = add_instance(b, VGPU_ACTION_REMOVE, "not in the file", p);
                const struct vgpu_mdev_spec *d = in->uuid[0] ? find_def(b, in->uuid) : NULL;
                if (!a || set_spec(&a->spec, in->uuid, in->parent, strempty(in->type), d ? d->attrs : NULL,
                                   d ? d->n_attrs : 0, d ? d->auto_start : false) < 0)
                        return -ENOMEM;
                (*n_removed)++;
        }
        /* 3. definitions on this parent that nothing claims go too */
        size_t dlo, dhi;
        PARENT_RANGE(b->defs, b->n_defs, parent, p->name, &dlo, &dhi);
        for (size_t i = dlo; i < dhi; i++) {
                const struct vgpu_mdev_spec *d = &b->defs[i];
                ssize_t j = instance_by_uuid(b, d->uuid);
                bool claimed = (j >= 0 && b->kept[j]) || b->def_claim[i];
                for (size_t e = 0; e < g->n_devices && !claimed; e++)
                        for (size_t u = 0; u < g->devices[e].n_uuids; u++)
                                claimed |= strcmp(g->devices[e].uuids[u], d->uuid) == 0;
                if (claimed)
                        continue;
                struct vgpu_action *a = add(b, VGPU_ACTION_UNDEFINE, "not in the file");
                if (!a ||
                    set_spec(&a->spec, d->uuid, d->parent, d->type, d->attrs, d->n_attrs, d->auto_start) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/*
 * A vendor attribute (instance_attrs) is read when the vGPU starts, so one that differs on a
 * running vGPU (the backend reads it back, e.g. NVIDIA's frame-rate limiter through NVML)
 * reaches it only at its next start. With --force and no VM holding it, the vGPU is restarted
 * now (removed and created again with the attribute); otherwise the plan says it differs and
 * when it will not.
 */
static int plan_attr_drift(struct builder *b, const struct vgpu_parent *p, const struct vgpu_backend *be,
                           const struct vgpu_instance *in, const struct vgpu_config_device *dev,
                           const struct vgpu_mdev_attr *attr) {
        char detail[192], differs[128];
        if (!be->instance_attr_differs ||
            be->instance_attr_differs(p, in, attr, differs, sizeof(differs)) <= 0)
                return 0;
        int group = host_instance_iommu_group(in);
        bool held = group >= 0 && vfio_group_in_use(group);
        bool restart = b->force && !held;
        snprintf(detail, sizeof(detail), "%s%s", differs,
                 restart ? ""
                 : held  ? ": takes effect at its next start (a VM holds it)"
                         : ": takes effect at its next start (apply --force restarts it now)");
        struct vgpu_action *a =
                add_instance(b, restart ? VGPU_ACTION_RESTART : VGPU_ACTION_FRAME_RATE_PENDING, detail, p);
        if (!a ||
            set_spec(&a->spec, in->uuid, p->name, dev->type, dev->attrs, dev->n_attrs, dev->auto_start) < 0)
                return -ENOMEM;
        return 0;
}

/* Creations and definitions for one parent, after every removal is planned. */
static int plan_parent_creates(struct builder *b, const struct vgpu_parent *p,
                               const struct vgpu_config_gpu *g) {
        const struct vgpu_host *h = b->host;
        size_t lo, hi;
        PARENT_RANGE(h->instances, h->n_instances, parent, p->name, &lo, &hi);
        for (size_t e = 0; e < g->n_devices; e++) {
                /* the entry, with the vendor's attribute appended when there is one (NVIDIA: the
                 * policy's frame-rate limiter) */
                struct vgpu_config_device with_frl = g->devices[e];
                _cleanup_free_ struct vgpu_mdev_attr *attrs = NULL;
                struct vgpu_mdev_attr extra;
                const struct vgpu_backend *be = backend_for_driver(p->driver);
                bool frl = be->instance_attrs && be->instance_attrs(p, g, &g->devices[e], &extra) > 0;
                if (frl) {
                        if (!(attrs = calloc(with_frl.n_attrs + 1, sizeof(*attrs))))
                                return -ENOMEM;
                        if (with_frl.n_attrs)
                                memcpy(attrs, with_frl.attrs, with_frl.n_attrs * sizeof(*attrs));
                        attrs[with_frl.n_attrs++] = extra;
                        with_frl.attrs = attrs;
                }
                const struct vgpu_config_device *dev = &with_frl;
                /* a VF that takes one typed vGPU: no UUID, no definition, one instance */
                bool vfio = backend_typed_vf(p->gpu);
                unsigned have = 0;
                if (!dev->running) {
                        if (vfio)
                                return vgpu_error_set(
                                        b->err, -EINVAL,
                                        "line %d: a vendor-VFIO VF (%s) has no definitions: 'running: false' "
                                        "means nothing there",
                                        dev->line, p->name);
                        /* as 'vgpuctl define': the definitions, and an instance of such a UUID
                         * (started since) was removed as not claimed */
                        for (size_t u = 0; u < dev->n_uuids; u++)
                                if (want_definition(b, dev->uuids[u], p->name, dev) < 0)
                                        return -ENOMEM;
                        continue;
                }
                /* kept instances of this entry: definitions kept in line */
                for (size_t i = lo; i < hi && have < dev->count; i++) {
                        const struct vgpu_instance *in = &h->instances[i];
                        /* this entry's: two entries of a type may want different definitions */
                        if (b->kept[i] != e + 1)
                                continue;
                        have++;
                        if (!vfio && want_definition(b, in->uuid, p->name, dev) < 0)
                                return -ENOMEM;
                        if (frl && !vfio && plan_attr_drift(b, p, be, in, dev, &extra) < 0)
                                return -ENOMEM;
                }
                if (vfio && dev->count > 1)
                        return vgpu_error_set(b->err, -EINVAL,
                                              "line %d: a vendor-VFIO VF (%s) holds one vGPU, not %u",
                                              dev->line, p->name, dev->count);
                /* fixed UUIDs not running yet, then new ones */
                for (size_t u = 0; u < dev->n_uuids && have < dev->count; u++) {
                        ssize_t i = instance_by_uuid(b, dev->uuids[u]);
                        if (i >= 0 && b->kept[i])
                                continue;
                        if (i >= 0 && strcmp(h->instances[i].parent, p->name) != 0)
                                return vgpu_error_set(b->err, -EEXIST,
                                                      "line %d: UUID %s already runs on %s, which this file "
                                                      "does not manage",
                                                      dev->line, dev->uuids[u], h->instances[i].parent);
                        struct vgpu_action *a =
                                add_instance(b, VGPU_ACTION_CREATE, "fixed UUID in the file", p);
                        if (!a ||
                            set_spec(&a->spec, dev->uuids[u], p->name, dev->type, dev->attrs, dev->n_attrs,
                                     dev->auto_start) < 0 ||
                            want_definition(b, dev->uuids[u], p->name, dev) < 0)
                                return -ENOMEM;
                        have++;
                }
                /* stopped definitions this entry claimed (plan_parent): started as defined */
                size_t dlo, dhi;
                PARENT_RANGE(b->defs, b->n_defs, parent, p->name, &dlo, &dhi);
                for (size_t i = dlo; i < dhi && have < dev->count; i++) {
                        if (b->def_claim[i] != e + 1)
                                continue;
                        const struct vgpu_mdev_spec *d = &b->defs[i];
                        struct vgpu_action *a =
                                add_instance(b, VGPU_ACTION_CREATE, "defined, not running", p);
                        if (!a ||
                            set_spec(&a->spec, d->uuid, p->name, dev->type, dev->attrs, dev->n_attrs,
                                     dev->auto_start) < 0 ||
                            want_definition(b, d->uuid, p->name, dev) < 0)
                                return -ENOMEM;
                        have++;
                }
                for (; have < dev->count; have++) {
                        char uuid[VGPU_UUID_MAX] = "";
                        if (!vfio && vgpu_uuid_generate(uuid) < 0)
                                return vgpu_error_set(b->err, -EIO, "no randomness for a UUID");
                        struct vgpu_action *a = add_instance(b, VGPU_ACTION_CREATE, "count in the file", p);
                        if (!a || set_spec(&a->spec, uuid, p->name, dev->type, dev->attrs, dev->n_attrs,
                                           dev->auto_start) < 0)
                                return -ENOMEM;
                        if (!vfio && want_definition(b, uuid, p->name, dev) < 0)
                                return -ENOMEM;
                }
        }
        return 0;
}

int plan_refuse_type(struct vgpu_error *err, const char *where, const struct vgpu_parent *p,
                     const char *type) {
        char offers[512] = "";
        size_t n = 0;
        for (size_t i = 0; i < p->n_types && n < sizeof(offers); i++)
                n += (size_t) snprintf(offers + n, sizeof(offers) - n, "%s%s", i ? ", " : "", p->types[i].id);
        return vgpu_error_set(err, -EINVAL, "%s%s offers no type %s (it offers: %s; see 'vgpuctl types %s')",
                              where, p->name, type, offers[0] ? offers : "nothing right now", p->name);
}

static int cmp_parent_name(const void *a, const void *b) {
        return strcmp((*(const struct vgpu_parent *const *) a)->name,
                      (*(const struct vgpu_parent *const *) b)->name);
}

/* The parents sorted by name, so that an entry naming its parent (bdf, parent) finds it by binary
 * search: looking at every parent for every entry (528 x 528 on a host of 512 VFs) was half of the
 * planner's time in a no-op apply. */
static const struct vgpu_parent **parents_by_name(const struct vgpu_host *host) {
        const struct vgpu_parent **by_name = calloc(host->n_parents + 1, sizeof(*by_name));
        if (!by_name)
                return NULL;
        for (size_t i = 0; i < host->n_parents; i++)
                by_name[i] = &host->parents[i];
        qsort_safe(by_name, host->n_parents, sizeof(*by_name), cmp_parent_name);
        return by_name;
}

/* [*lo, *hi) of the parents named name in by_name. */
static void parents_named(const struct vgpu_parent *const *by_name, size_t n, const char *name, size_t *lo,
                          size_t *hi) {
        size_t l = 0, h = n;
        while (l < h) {
                size_t m = (l + h) / 2;
                if (strcmp(by_name[m]->name, name) < 0)
                        l = m + 1;
                else
                        h = m;
        }
        *lo = l;
        while (l < n && streq(by_name[l]->name, name))
                l++;
        *hi = l;
}

static bool selects(const struct vgpu_config_gpu *g, const struct vgpu_parent *p) {
        switch (g->select) {
        case VGPU_SELECT_ALL:
                return true;
        case VGPU_SELECT_BDF:
        case VGPU_SELECT_PARENT:
                return strcmp(g->value, p->name) == 0;
        case VGPU_SELECT_PCI_ID: {
                unsigned v, d;
                return p->gpu && sscanf(g->value, "%x:%x", &v, &d) == 2 && p->gpu->vendor_id == v &&
                       p->gpu->device_id == d;
        }
        }
        return false;
}

/*
 * Capacity, before anything changes: on a parent where nothing is removed, each type must have
 * as many instances available as are created, and the frame buffer they take must fit in what
 * is free (known where a type's size and count are known, e.g. mbochs' pool). Where something
 * is removed first, freed capacity is vendor-specific: creation itself is the check there, and
 * a failure is rolled back.
 */
static int check_capacity(struct builder *b, const struct vgpu_parent *p, size_t n_removed) {
        if (n_removed > 0)
                return 0;
        int64_t fb_new = 0, fb_free = -1;
        for (size_t t = 0; t < p->n_types; t++) {
                const struct vgpu_type *type = &p->types[t];
                unsigned want = 0;
                for (size_t i = 0; i < b->plan->n_actions; i++) {
                        const struct vgpu_action *a = &b->plan->actions[i];
                        want += a->kind == VGPU_ACTION_CREATE && strcmp(a->spec.parent, p->name) == 0 &&
                                strcmp(a->spec.type, type->id) == 0;
                }
                if (type->available_instances >= 0 && want > type->available_instances)
                        return vgpu_error_set(b->err, -ENOSPC,
                                              "%s: %u more %s wanted, %lld available: nothing was changed",
                                              p->name, want, type->id, (long long) type->available_instances);
                if (type->framebuffer_bytes > 0 && type->available_instances >= 0) {
                        fb_new += (int64_t) want * type->framebuffer_bytes;
                        /* what the roomiest type could still place is what is free: in a shared pool
                         * (mbochs) every type says the same, and a type blocked for another reason
                         * (NVIDIA's one-type-per-GPU) says 0 without meaning the memory is gone */
                        int64_t free_here = type->available_instances * type->framebuffer_bytes;
                        if (free_here > fb_free)
                                fb_free = free_here;
                }
        }
        if (fb_free >= 0 && fb_new > fb_free)
                return vgpu_error_set(b->err, -ENOSPC,
                                      "%s: the new instances need %lld MiB of frame buffer, %lld MiB are "
                                      "free: nothing was changed",
                                      p->name, (long long) (fb_new >> 20), (long long) (fb_free >> 20));
        return 0;
}

/* Is name one of the parents a restore is limited to? (only == NULL: every parent is.) */
static bool in_set(const char *const *only, size_t n_only, const char *name) {
        if (!only)
                return true;
        for (size_t i = 0; i < n_only; i++)
                if (streq(only[i], name))
                        return true;
        return false;
}

/* Whether a restore limited to `only` needs the VF count of PF bdf: the PF itself is listed,
 * or one of its VFs is (a VF's instances need the VFs there first). */
static bool needs_vfs(const struct vgpu_host *host, const char *const *only, size_t n_only, const char *bdf) {
        if (!only || in_set(only, n_only, bdf))
                return true;
        for (size_t i = 0; i < host->n_parents; i++) {
                const struct vgpu_parent *p = &host->parents[i];
                if (p->gpu && streq(p->gpu->physfn, bdf) && in_set(only, n_only, p->name))
                        return true;
        }
        return false;
}

static int plan_vfs(struct builder *b, const struct vgpu_config *cfg) {
        for (size_t i = 0; i < cfg->n_gpus; i++) {
                const struct vgpu_config_gpu *g = &cfg->gpus[i];
                if (g->vfs < 0 || !needs_vfs(b->host, b->only, b->n_only, g->value))
                        continue;
                const struct vgpu_gpu *gpu = vgpu_host_find_gpu(b->host, g->value);
                if (!gpu && b->only)
                        continue; /* not there (yet): its own appearance restores it */
                if (!gpu)
                        return vgpu_error_set(b->err, -ENODEV, "%s:%d: no GPU at %s", cfg->source, g->line,
                                              g->value);
                if (!gpu->sriov)
                        return vgpu_error_set(b->err, -EOPNOTSUPP,
                                              "%s:%d: %s has no SR-IOV (see 'vgpuctl doctor')", cfg->source,
                                              g->line, g->value);
                if ((unsigned) g->vfs > gpu->total_vfs)
                        return vgpu_error_set(b->err, -EINVAL, "%s:%d: %s supports at most %u VFs, not %d",
                                              cfg->source, g->line, g->value, gpu->total_vfs, g->vfs);
                if ((unsigned) g->vfs == gpu->num_vfs)
                        continue;
                struct vgpu_action *a = add(b, VGPU_ACTION_SET_VFS, NULL);
                if (!a || !(a->spec.parent = strdup(gpu->bdf)))
                        return -ENOMEM;
                a->vfs = (unsigned) g->vfs;
                a->old_vfs = gpu->num_vfs;
        }
        return 0;
}

/* The file's entry for parent p as the planner reads it: when a device entry gives 'framebuffer'
 * instead of 'type', a copy of the entry with that type picked for this parent (two parents one
 * pci-id selects may offer other types); NULL when no entry needs it. The type ids point into p. */
static int resolve_framebuffer(struct builder *b, const struct vgpu_config *cfg, struct vgpu_parent *p,
                               const struct vgpu_config_gpu *g, struct vgpu_config_gpu **ret) {
        *ret = NULL;
        bool any = false;
        for (size_t e = 0; e < g->n_devices; e++)
                any |= !g->devices[e].type && g->devices[e].framebuffer > 0;
        if (!any)
                return 0;
        struct vgpu_config_gpu *copy = malloc(sizeof(*copy));
        struct vgpu_config_device *devices = calloc(g->n_devices, sizeof(*devices));
        if (!copy || !devices) {
                free(copy);
                free(devices);
                return -ENOMEM;
        }
        *copy = *g;
        memcpy(devices, g->devices, g->n_devices * sizeof(*devices));
        copy->devices = devices;
        for (size_t e = 0; e < g->n_devices; e++) {
                struct vgpu_config_device *d = &devices[e];
                if (d->type)
                        continue;
                const struct vgpu_type *t;
                struct vgpu_error why = {};
                int r = type_pick_by_framebuffer(b->host, p, d->framebuffer, &t, &why);
                if (r < 0) {
                        r = vgpu_error_set(b->err, r, "%s:%d:%d: field 'framebuffer': %s", cfg->source,
                                           d->framebuffer_line, d->framebuffer_column, why.message);
                        free(devices);
                        free(copy);
                        return r;
                }
                d->type = t->id;
        }
        *ret = copy;
        return 0;
}

int plan_compute(struct vgpu_host *host, const struct vgpu_mdev_spec *defs, size_t n_defs,
                 const struct vgpu_config *cfg, unsigned flags, struct vgpu_plan **ret,
                 struct vgpu_error *err) {
        return plan_compute_only(host, defs, n_defs, cfg, NULL, 0, flags, ret, err);
}

int plan_compute_only(struct vgpu_host *host, const struct vgpu_mdev_spec *defs, size_t n_defs,
                      const struct vgpu_config *cfg, const char *const *only, size_t n_only, unsigned flags,
                      struct vgpu_plan **ret, struct vgpu_error *err) {
        struct builder b = { .host = host,
                             .defs = defs,
                             .n_defs = n_defs,
                             .only = only,
                             .n_only = n_only,
                             .force = flags & VGPU_APPLY_FORCE,
                             .err = err };
        b.plan = calloc(1, sizeof(*b.plan));
        b.kept = calloc(host->n_instances + 1, sizeof(*b.kept));
        b.def_claim = calloc(n_defs + 1, sizeof(size_t));
        _cleanup_free_ size_t *removed = calloc(host->n_parents + 1, sizeof(size_t));
        _cleanup_free_ const struct vgpu_config_gpu **owner = calloc(host->n_parents + 1, sizeof(*owner));
        _cleanup_free_ const struct vgpu_parent **by_name = parents_by_name(host);
        int r = b.plan && b.kept && b.def_claim && removed && owner && by_name ? build_indexes(&b) : -ENOMEM;

        /* which file entry manages each parent: the first that selects it */
        for (size_t g = 0; r >= 0 && g < cfg->n_gpus; g++) {
                const struct vgpu_config_gpu *cg = &cfg->gpus[g];
                bool any = false;
                if (cg->select == VGPU_SELECT_BDF || cg->select == VGPU_SELECT_PARENT) {
                        size_t lo, hi;
                        parents_named(by_name, host->n_parents, cg->value, &lo, &hi);
                        for (size_t k = lo; k < hi; k++) {
                                size_t i = (size_t) (by_name[k] - host->parents);
                                any = true;
                                if (!owner[i])
                                        owner[i] = cg;
                        }
                } else
                        for (size_t i = 0; i < host->n_parents; i++)
                                if (selects(cg, &host->parents[i])) {
                                        any = true;
                                        if (!owner[i])
                                                owner[i] = cg;
                                }
                /* a limited restore only looks at the parents it names: an entry whose parent is
                 * not there (yet) is for a later restore, not an error in this one */
                if (!any && !only && cfg->gpus[g].n_devices > 0 && cfg->gpus[g].vfs < 0)
                        r = vgpu_error_set(err, -ENODEV,
                                           "%s:%d: selects no vGPU parent on this host (see 'vgpuctl types')",
                                           cfg->source, cfg->gpus[g].line);
                for (size_t e = 0; r >= 0 && e < cfg->gpus[g].n_devices; e++)
                        if (cfg->gpus[g].devices[e].n_uuids > 0 && cfg->gpus[g].select != VGPU_SELECT_BDF &&
                            cfg->gpus[g].select != VGPU_SELECT_PARENT)
                                r = vgpu_error_set(err, -EINVAL,
                                                   "%s:%d: fixed UUIDs need a single parent (bdf or parent)",
                                                   cfg->source, cfg->gpus[g].devices[e].line);
        }
        /* the parents outside a limited restore are not managed by this plan at all */
        for (size_t i = 0; r >= 0 && i < host->n_parents; i++)
                if (!in_set(only, n_only, host->parents[i].name))
                        owner[i] = NULL;
        /* entries with 'framebuffer' get their types, parent by parent */
        _cleanup_free_ struct vgpu_config_gpu **resolved = calloc(host->n_parents + 1, sizeof(*resolved));
        if (!resolved && r >= 0)
                r = -ENOMEM;
        for (size_t i = 0; r >= 0 && i < host->n_parents; i++)
                if (owner[i] &&
                    (r = resolve_framebuffer(&b, cfg, &host->parents[i], owner[i], &resolved[i])) >= 0 &&
                    resolved[i])
                        owner[i] = resolved[i];
        for (size_t i = 0; r >= 0 && i < host->n_parents; i++)
                if (owner[i])
                        r = plan_parent(&b, &host->parents[i], owner[i], flags & VGPU_APPLY_FORCE,
                                        &removed[i]);
        if (r >= 0)
                r = plan_vfs(&b, cfg);
        for (size_t i = 0; r >= 0 && i < host->n_parents; i++)
                if (owner[i])
                        r = plan_parent_creates(&b, &host->parents[i], owner[i]);
        for (size_t i = 0; r >= 0 && i < host->n_parents; i++)
                if (owner[i])
                        r = check_capacity(&b, &host->parents[i], removed[i]);
        /* scheduler policy goes to host-wide module options (and xe's PF profiles): a full apply
         * or the start restore writes it; a restore of some parents leaves it alone */
        if (r >= 0 && !only)
                r = plan_policy(host, cfg, b.plan, &b.allocated, err);
        /* software slices (slices.c): host-wide too, so likewise only in a full apply */
        if (r >= 0 && !only)
                r = plan_slices(host, cfg, b.plan, &b.allocated, err);
        /* persistence mode (persistence.c): per GPU, so also in a restore of the parents that
         * came back — a driver reload turns it off where no nvidia-persistenced keeps it */
        if (r >= 0)
                r = plan_persistence(host, cfg, only, n_only, b.plan, &b.allocated, err);

        for (size_t i = 0; resolved && i < host->n_parents; i++)
                if (resolved[i]) {
                        free(resolved[i]->devices);
                        free(resolved[i]);
                }
        free(b.kept);
        free(b.def_claim);
        free(b.inst_by_uuid);
        free(b.def_by_uuid);
        if (r < 0) {
                vgpu_plan_free(b.plan);
                return r == -ENOMEM ? vgpu_error_set(err, r, "out of memory") : r;
        }
        /* stable order: removals, VFs, creations, definitions, policy, then slices (kinds are in that order) */
        for (size_t i = 1; i < b.plan->n_actions; i++)
                for (size_t j = i; j > 0 && b.plan->actions[j - 1].kind > b.plan->actions[j].kind; j--) {
                        struct vgpu_action t = b.plan->actions[j];
                        b.plan->actions[j] = b.plan->actions[j - 1];
                        b.plan->actions[j - 1] = t;
                }
        *ret = b.plan;
        return 0;
}

_public_ void vgpu_plan_free(struct vgpu_plan *plan) {
        if (!plan)
                return;
        for (size_t i = 0; i < plan->n_actions; i++) {
                vgpu_mdev_spec_free(&plan->actions[i].spec);
                free(plan->actions[i].detail);
        }
        free(plan->actions);
        free(plan->notes);
        free(plan);
}

_public_ const char *vgpu_action_kind_to_string(enum vgpu_action_kind kind) {
        static const char *const names[] = {
                [VGPU_ACTION_REMOVE] = "remove",
                [VGPU_ACTION_UNDEFINE] = "undefine",
                [VGPU_ACTION_SET_VFS] = "set-vfs",
                [VGPU_ACTION_CREATE] = "create",
                [VGPU_ACTION_DEFINE] = "define",
                [VGPU_ACTION_SET_POLICY] = "set-policy",
                [VGPU_ACTION_WRITE_ATTR] = "write",
                [VGPU_ACTION_SLICE_REMOVE] = "slice-remove",
                [VGPU_ACTION_SLICE_CREATE] = "slice-create",
                [VGPU_ACTION_ENABLE_SERVICE] = "enable",
                [VGPU_ACTION_SET_PERSISTENCE] = "persistence",
                [VGPU_ACTION_FRAME_RATE_PENDING] = "frame-rate-limit",
                [VGPU_ACTION_RESTART] = "restart",
        };
        return kind < ELEMENTSOF(names) ? names[kind] : "?";
}
