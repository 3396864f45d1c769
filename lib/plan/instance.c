/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * instance.c — create, define, start, stop and remove one vGPU (see vgpu/lifecycle.h): each is a
 * plan of one or two actions, planned here from one snapshot of the host and the store, and
 * run by the executor that runs `apply` (exec.c), with its undo log and the backends.
 *
 * mdevctl fails when asked to define or start what already exists; here the same request
 * succeeds with an empty plan, and only a conflicting one fails, saying what differs. A create
 * --persist is CREATE then DEFINE: when the definition cannot be written, the executor removes
 * the device again. Conflicts are found while planning, before anything changes.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "basic/lock.h"
#include "basic/error-util.h"
#include "basic/fileio.h"
#include "basic/macro.h"
#include "basic/root.h"
#include "basic/sysfs.h"
#include "mdevctl-store/store.h"
#include "plan-internal.h"

static void lowercase(char *s) {
        for (; *s; s++)
                if (*s >= 'A' && *s <= 'F')
                        *s = (char) (*s - 'A' + 'a');
}

/* The names of a spec become paths (sysfs, mdevctl's store), also for callers of vgpud who are
 * not root: none may lead out of its directory. Parent names as sysfs spells them. */
static int check_spec(struct vgpu_mdev_spec *spec, struct vgpu_error *err) {
        if (!spec->parent || !spec->type)
                return vgpu_error_set(err, -EINVAL, "a parent and a type are needed");
        int r = backend_mdev_check_names(spec, err);
        if (r < 0)
                return r;
        if (spec->uuid[0] && !vgpu_uuid_valid(spec->uuid))
                return vgpu_error_set(err, -EINVAL, "'%s' is not a UUID (expected 8-4-4-4-12 hex digits)",
                                      spec->uuid);
        lowercase(spec->uuid);
        char bdf[VGPU_BDF_MAX];
        if (vgpu_bdf_normalize(spec->parent, bdf) == 0) {
                char *s = strdup(bdf);
                if (!s)
                        return vgpu_error_set(err, -ENOMEM, "out of memory");
                free(spec->parent);
                spec->parent = s;
        }
        return 0;
}

static const struct vgpu_instance *find_instance(const struct vgpu_host *host, const char *uuid) {
        for (size_t i = 0; i < host->n_instances; i++)
                if (strcmp(host->instances[i].uuid, uuid) == 0)
                        return &host->instances[i];
        return NULL;
}

static const struct vgpu_type *find_type(const struct vgpu_parent *p, const char *id) {
        for (size_t i = 0; p && i < p->n_types; i++)
                if (strcmp(p->types[i].id, id) == 0)
                        return &p->types[i];
        return NULL;
}

static const struct vgpu_mdev_spec *find_definition(const struct vgpu_mdev_spec *defs, size_t n_defs,
                                                    const char *uuid) {
        for (size_t i = 0; i < n_defs; i++)
                if (strcasecmp(defs[i].uuid, uuid) == 0)
                        return &defs[i];
        return NULL;
}

static int no_room(const struct vgpu_host *host, const struct vgpu_parent *p, const struct vgpu_type *t,
                   struct vgpu_error *err) {
        char present[512] = "", max[32] = "";
        size_t n = 0, count = 0;
        for (size_t i = 0; i < host->n_instances; i++) {
                const struct vgpu_instance *in = &host->instances[i];
                if (strcmp(in->parent, p->name) != 0)
                        continue;
                count++;
                if (n < sizeof(present))
                        n += (size_t) snprintf(present + n, sizeof(present) - n, "%s%s (%s)",
                                               count > 1 ? ", " : "", in->uuid[0] ? in->uuid : in->parent,
                                               strempty(in->type));
        }
        if (t->max_instances >= 0)
                snprintf(max, sizeof(max), " of %lld", (long long) t->max_instances);
        return vgpu_error_set(
                err, -ENOSPC, "no available instances of %s on %s: 0 left%s; instances present: %s", t->id,
                p->name, max, count ? present : "none (another type or the driver holds the capacity)");
}

static int spec_diff(const struct vgpu_mdev_spec *a, const struct vgpu_mdev_spec *b, char *buf, size_t size) {
        size_t n = 0;
        buf[0] = '\0';
        if (strcmp(a->parent, b->parent) != 0)
                n += (size_t) snprintf(buf + n, size - n, "%sparent %s, not %s", n ? "; " : "", a->parent,
                                       b->parent);
        if (n < size && strcmp(a->type, b->type) != 0)
                n += (size_t) snprintf(buf + n, size - n, "%stype %s, not %s", n ? "; " : "", a->type,
                                       b->type);
        if (n < size && a->auto_start != b->auto_start)
                n += (size_t) snprintf(buf + n, size - n, "%sstart %s, not %s", n ? "; " : "",
                                       a->auto_start ? "auto" : "manual", b->auto_start ? "auto" : "manual");
        bool same_attrs = a->n_attrs == b->n_attrs;
        for (size_t i = 0; same_attrs && i < a->n_attrs; i++)
                same_attrs = strcmp(a->attrs[i].key, b->attrs[i].key) == 0 &&
                             strcmp(a->attrs[i].value, b->attrs[i].value) == 0;
        if (n < size && !same_attrs)
                n += (size_t) snprintf(buf + n, size - n, "%sattributes differ", n ? "; " : "");
        return n > 0;
}

static int copy_spec(struct vgpu_mdev_spec *to, const struct vgpu_mdev_spec *from) {
        *to = (struct vgpu_mdev_spec){ .auto_start = from->auto_start };
        snprintf(to->uuid, sizeof(to->uuid), "%s", from->uuid);
        if (!(to->parent = strdup(from->parent)) || !(to->type = strdup(from->type)))
                return -ENOMEM;
        if (from->n_attrs && !(to->attrs = calloc(from->n_attrs, sizeof(*to->attrs))))
                return -ENOMEM;
        for (size_t i = 0; i < from->n_attrs; i++) {
                to->n_attrs++; /* counted first: a key whose value failed is freed with the spec */
                if (!(to->attrs[i].key = strdup(from->attrs[i].key)) ||
                    !(to->attrs[i].value = strdup(from->attrs[i].value)))
                        return -ENOMEM;
        }
        return 0;
}

/* Append an action on spec's instance; p (NULL: not here) says which backend carries it out. */
static int add_action(struct vgpu_plan *plan, enum vgpu_action_kind kind, const struct vgpu_mdev_spec *spec,
                      const struct vgpu_parent *p, const char *detail) {
        struct vgpu_action *a = realloc(plan->actions, (plan->n_actions + 1) * sizeof(*a));
        if (!a)
                return -ENOMEM;
        plan->actions = a;
        a = &plan->actions[plan->n_actions++];
        *a = (struct vgpu_action){
                .kind = kind,
                .backend = backend_for_driver(p ? p->driver : NULL)->name,
                .vendor_vfio = p && backend_typed_vf(p->gpu),
        };
        if (copy_spec(&a->spec, spec) < 0 || !(a->detail = strdup(detail)))
                return -ENOMEM;
        return 0;
}

static struct vgpu_plan *new_plan(struct vgpu_error *err) {
        struct vgpu_plan *plan = calloc(1, sizeof(*plan));
        if (!plan)
                vgpu_error_set(err, -ENOMEM, "out of memory");
        return plan;
}

static int finish(struct vgpu_plan *plan, int r, struct vgpu_plan **ret, struct vgpu_error *err) {
        if (r < 0) {
                vgpu_plan_free(plan);
                return r == -ENOMEM ? vgpu_error_set(err, r, "out of memory") : r;
        }
        *ret = plan;
        return 0;
}

/* The definition spec wants, against the store: nothing (identical), DEFINE, or a conflict. */
static int plan_definition(struct vgpu_plan *plan, const struct vgpu_mdev_spec *defs, size_t n_defs,
                           const struct vgpu_mdev_spec *spec, const struct vgpu_parent *p,
                           struct vgpu_error *err) {
        const struct vgpu_mdev_spec *old = find_definition(defs, n_defs, spec->uuid);
        if (old) {
                char diff[512];
                if (!spec_diff(spec, old, diff, sizeof(diff)))
                        return 0;
                return vgpu_error_set(err, -EEXIST,
                                      "%s is already defined differently (%s): undefine it first", spec->uuid,
                                      diff);
        }
        return add_action(plan, VGPU_ACTION_DEFINE, spec, p, "not defined yet");
}

int plan_instance_create(const struct vgpu_host *host, const struct vgpu_mdev_spec *defs, size_t n_defs,
                         struct vgpu_mdev_spec *spec, unsigned flags, struct vgpu_plan **ret,
                         struct vgpu_error *err) {
        struct vgpu_plan *plan = new_plan(err);
        if (!plan)
                return -ENOMEM;
        const struct vgpu_parent *p = vgpu_host_find_parent(host, spec->parent);
        const struct vgpu_type *t = find_type(p, spec->type);
        int r = 0;
        if (!p)
                r = vgpu_error_set(err, -ENODEV,
                                   "%s: not a vGPU parent here (no mdev_supported_types, no creatable vGPU "
                                   "types; see 'vgpuctl doctor')",
                                   spec->parent);
        else if (!t)
                r = plan_refuse_type(err, "", p, spec->type);
        else if (backend_typed_vf(p->gpu)) {
                /* a VF that takes one typed vGPU: no UUID, nothing the store could hold */
                for (size_t i = 0; i < host->n_instances; i++)
                        if (strcmp(host->instances[i].parent, p->name) == 0)
                                return finish(
                                        plan,
                                        streq(host->instances[i].type, t->id)
                                                ? 0
                                                : vgpu_error_set(
                                                          err, -EBUSY,
                                                          "%s already runs vGPU type %s; remove it first",
                                                          p->name, host->instances[i].type),
                                        ret, err);
                if (flags & VGPU_CREATE_PERSIST)
                        r = vgpu_error_set(err, -EOPNOTSUPP,
                                           "%s: vendor-VFIO vGPUs are not mdev devices; mdevctl's store "
                                           "cannot hold them",
                                           p->name);
                else
                        r = add_action(plan, VGPU_ACTION_CREATE, spec, p, "asked for");
        } else {
                if (!spec->uuid[0] && (r = vgpu_uuid_generate(spec->uuid)) < 0)
                        return finish(plan, vgpu_error_set_errno(err, r, "generating a UUID"), ret, err);
                const struct vgpu_instance *in = find_instance(host, spec->uuid);
                if (in && (strcmp(in->parent, p->name) != 0 || strcmp(strempty(in->type), t->id) != 0))
                        r = vgpu_error_set(err, -EEXIST, "%s already exists as %s on %s", spec->uuid,
                                           strempty(in->type), in->parent);
                else if (!in)
                        r = t->available_instances == 0
                                    ? no_room(host, p, t, err)
                                    : add_action(plan, VGPU_ACTION_CREATE, spec, p, "asked for");
                if (r >= 0 && (flags & VGPU_CREATE_PERSIST))
                        r = plan_definition(plan, defs, n_defs, spec, p, err);
        }
        return finish(plan, r, ret, err);
}

int plan_instance_define(const struct vgpu_host *host, const struct vgpu_mdev_spec *defs, size_t n_defs,
                         const struct vgpu_mdev_spec *spec, struct vgpu_plan **ret, struct vgpu_error *err) {
        struct vgpu_plan *plan = new_plan(err);
        if (!plan)
                return -ENOMEM;
        /* a parent that is here must offer the type; an absent one may come later (hotplug, VFs) */
        const struct vgpu_parent *p = vgpu_host_find_parent(host, spec->parent);
        int r = p && !find_type(p, spec->type) ? plan_refuse_type(err, "", p, spec->type)
                                               : plan_definition(plan, defs, n_defs, spec, p, err);
        return finish(plan, r, ret, err);
}

int plan_instance_remove(const struct vgpu_host *host, const char *what, bool idempotent,
                         struct vgpu_plan **ret, struct vgpu_error *err) {
        struct vgpu_plan *plan = new_plan(err);
        if (!plan)
                return -ENOMEM;
        const struct vgpu_instance *in = NULL;
        int r = 0;
        if (vgpu_uuid_valid(what)) {
                char uuid[VGPU_UUID_MAX];
                snprintf(uuid, sizeof(uuid), "%s", what);
                lowercase(uuid);
                in = find_instance(host, uuid);
                if (!in && !idempotent)
                        r = vgpu_error_set(err, -ENOENT,
                                           "%s: no such vGPU instance (not in %s/sys/bus/mdev/devices/%s)",
                                           uuid, root_prefix(), uuid);
        } else {
                char bdf[VGPU_BDF_MAX];
                if (vgpu_bdf_normalize(what, bdf) < 0)
                        return finish(plan,
                                      vgpu_error_set(err, -EINVAL, "'%s' is neither a UUID nor a PCI address",
                                                     what),
                                      ret, err);
                if (!backend_typed_vf(vgpu_host_find_gpu(host, bdf)))
                        return finish(
                                plan,
                                vgpu_error_set(err, -ENOENT,
                                               "%s: not a vendor-VFIO VF (it takes no vGPU type to clear)",
                                               bdf),
                                ret, err);
                for (size_t i = 0; !in && i < host->n_instances; i++)
                        if (streq(host->instances[i].parent, bdf))
                                in = &host->instances[i];
                if (!in && !idempotent)
                        r = vgpu_error_set(err, -ENOENT, "%s runs no vGPU type", bdf);
        }
        if (in) {
                struct vgpu_mdev_spec spec = { .parent = in->parent, .type = (char *) strempty(in->type) };
                snprintf(spec.uuid, sizeof(spec.uuid), "%s", in->uuid);
                r = add_action(plan, VGPU_ACTION_REMOVE, &spec, vgpu_host_find_parent(host, in->parent),
                               "asked for");
        }
        return finish(plan, r, ret, err);
}

/* ---- the requests: lock, one snapshot, plan, execute ---- */

/* The snapshot a request plans on: instances and (for creating) the parents' types, and the
 * store's definitions when the plan may define. */
struct snapshot {
        struct vgpu_host *host;
        struct vgpu_mdev_spec *defs;
        size_t n_defs;
};

static int snapshot_take(struct snapshot *s, unsigned scan, bool with_defs, struct vgpu_error *err) {
        *s = (struct snapshot){};
        int r = vgpu_host_scan(scan, &s->host, err);
        if (r >= 0 && with_defs)
                r = vgpu_mdev_definitions(&s->defs, &s->n_defs, NULL, err);
        return r;
}

static void snapshot_done(struct snapshot *s) {
        vgpu_mdev_specs_free(s->defs, s->n_defs);
        vgpu_host_free(s->host);
}

/* Run a request's plan: 1 when it changed something, 0 when the host already was as asked. */
static int run(struct vgpu_plan *plan, struct vgpu_error *err) {
        int r = plan->n_actions ? plan_execute_request(plan, err) : 0;
        vgpu_plan_free(plan);
        return r < 0 ? r : r > 0;
}

static int create_locked(struct vgpu_mdev_spec *spec, unsigned flags, struct vgpu_error *err) {
        struct snapshot s;
        struct vgpu_plan *plan = NULL;
        int r = snapshot_take(&s, VGPU_SCAN_TYPES | VGPU_SCAN_INSTANCES, flags & VGPU_CREATE_PERSIST, err);
        if (r >= 0)
                r = plan_instance_create(s.host, s.defs, s.n_defs, spec, flags, &plan, err);
        snapshot_done(&s);
        return r < 0 ? r : run(plan, err);
}

_public_ int vgpu_mdev_create(struct vgpu_mdev_spec *spec, unsigned flags, struct vgpu_error *err) {
        int r = check_spec(spec, err);
        if (r < 0)
                return r;
        int lock = lifecycle_lock(err);
        if (lock < 0)
                return lock;
        r = create_locked(spec, flags, err);
        host_lock_release(lock);
        return r;
}

_public_ int vgpu_mdev_define(struct vgpu_mdev_spec *spec, struct vgpu_error *err) {
        int r = check_spec(spec, err);
        if (r < 0)
                return r;
        if (!spec->uuid[0] && (r = vgpu_uuid_generate(spec->uuid)) < 0)
                return vgpu_error_set_errno(err, r, "generating a UUID");
        int lock = lifecycle_lock(err);
        if (lock < 0)
                return lock;
        struct snapshot s;
        struct vgpu_plan *plan = NULL;
        r = snapshot_take(&s, VGPU_SCAN_TYPES, true, err);
        if (r >= 0)
                r = plan_instance_define(s.host, s.defs, s.n_defs, spec, &plan, err);
        snapshot_done(&s);
        if (r >= 0)
                r = run(plan, err);
        host_lock_release(lock);
        return r;
}

_public_ int vgpu_mdev_start(const char *uuid, struct vgpu_error *err) {
        if (!vgpu_uuid_valid(uuid))
                return vgpu_error_set(err, -EINVAL, "'%s' is not a UUID", uuid);
        int lock = lifecycle_lock(err);
        if (lock < 0)
                return lock;
        struct vgpu_mdev_spec *defs = NULL;
        size_t n_defs = 0;
        int r = vgpu_mdev_definitions(&defs, &n_defs, NULL, err);
        const struct vgpu_mdev_spec *d = r < 0 ? NULL : find_definition(defs, n_defs, uuid);
        if (r >= 0 && !d)
                r = vgpu_error_set(err, -ENOENT,
                                   "%s is not defined: 'vgpuctl define' it first, or use 'vgpuctl create'",
                                   uuid);
        else if (r >= 0) {
                /* as defined: a create of the definition (the plan's spec is a copy) */
                struct vgpu_mdev_spec spec = *d;
                r = create_locked(&spec, 0, err);
        }
        vgpu_mdev_specs_free(defs, n_defs);
        host_lock_release(lock);
        return r;
}

static int remove_request(const char *what, bool idempotent, struct vgpu_error *err) {
        int lock = lifecycle_lock(err);
        if (lock < 0)
                return lock;
        struct snapshot s;
        struct vgpu_plan *plan = NULL;
        /* the parents too: their drivers say which backend removes */
        int r = snapshot_take(&s, VGPU_SCAN_PARENTS | VGPU_SCAN_INSTANCES, false, err);
        if (r >= 0)
                r = plan_instance_remove(s.host, what, idempotent, &plan, err);
        snapshot_done(&s);
        if (r >= 0)
                r = run(plan, err);
        host_lock_release(lock);
        return r;
}

_public_ int vgpu_mdev_remove(const char *uuid_or_bdf, struct vgpu_error *err) {
        return remove_request(uuid_or_bdf, false, err);
}

_public_ int vgpu_mdev_stop(const char *uuid, struct vgpu_error *err) {
        if (!vgpu_uuid_valid(uuid))
                return vgpu_error_set(err, -EINVAL, "'%s' is not a UUID", uuid);
        return remove_request(uuid, true, err);
}
