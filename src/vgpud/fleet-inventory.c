/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fleet-inventory.c — gpus/<host>/<gpu> from the poll vgpud already made: model, VRAM, offered
 * vGPU types with free instances, slice capacity, health and temperature. Built on the event
 * loop's thread after each poll and handed to the fleet worker only when a value changed
 * (updated_ms aside), so an idle host writes nothing to etcd.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fleet.h"
#include "vgpu/fleet-host.h"
#include "log.h"
#include "vgpud.h"

static bool is_vf_of(const struct vgpu_gpu *g, const char *name) {
        for (size_t i = 0; i < g->n_vfs; i++)
                if (streq(g->vfs[i], name))
                        return true;
        return false;
}

/* The types this GPU offers: its own mdev parent's, or (NVIDIA vendor-VFIO, SR-IOV) those of
 * its VFs, one entry per type with the VFs that can still take it counted as free instances. */
static int collect_types(const struct vgpud *d, const struct vgpu_gpu *g, struct vgpu_fleet_type **ret,
                         size_t *ret_n) {
        const struct vgpu_host *types = d->types_host;
        struct vgpu_fleet_type *v = NULL;
        size_t n = 0, allocated = 0;
        for (size_t i = 0; types && i < types->n_parents; i++) {
                const struct vgpu_parent *p = &types->parents[i];
                bool own = streq(p->name, g->bdf), vf = !own && is_vf_of(g, p->name);
                if (!own && !vf)
                        continue;
                /* a VF with a type set is taken, whatever its creatable list still says */
                bool taken = false;
                for (size_t k = 0; vf && d->host && k < d->host->n_instances; k++)
                        taken |= streq(d->host->instances[k].parent, p->name);
                for (size_t j = 0; j < p->n_types; j++) {
                        const struct vgpu_type *t = &p->types[j];
                        size_t k = 0;
                        while (k < n && !streq(v[k].name, t->id))
                                k++;
                        if (k == n) {
                                if (!GREEDY_REALLOC(v, allocated, n + 1)) {
                                        free(v);
                                        return -ENOMEM;
                                }
                                v[n++] = (struct vgpu_fleet_type){
                                        .name = t->id,
                                        .framebuffer_bytes = t->framebuffer_bytes > 0
                                                                     ? (uint64_t) t->framebuffer_bytes
                                                                     : 0,
                                };
                        }
                        unsigned avail =
                                !taken && t->available_instances > 0 ? (unsigned) t->available_instances : 0;
                        /* a VF is one instance; an mdev parent says how many of each it can make */
                        v[k].free_instances += avail;
                        v[k].max_instances += vf ? 1 : t->max_instances > 0 ? (unsigned) t->max_instances : 0;
                }
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

static int gpu_value(const struct vgpud *d, const struct vgpu_gpu *g, const char *host, const char *id,
                     int64_t updated_ms, char **ret) {
        const struct vgpu_gpu_telemetry *t = vgpud_gpu_health(d, g);
        _cleanup_free_ struct vgpu_fleet_type *types = NULL;
        size_t n_types = 0;
        if (collect_types(d, g, &types, &n_types) < 0)
                return -ENOMEM;
        char ids[16];
        snprintf(ids, sizeof(ids), "%04x:%04x", g->vendor_id, g->device_id);
        struct vgpu_fleet_gpu v = {
                .host = (char *) host,
                .gpu = (char *) id,
                .pci_address = (char *) g->bdf,
                .model = g->nvml && g->nvml->name ? g->nvml->name
                         : t && t->model          ? t->model
                                                  : ids,
                .vram_total_bytes = g->nvml ? g->nvml->memory_total : 0,
                .vram_used_bytes = g->nvml ? g->nvml->memory_used : 0,
                .mode = n_types > 0 ? VGPU_FLEET_MODE_VGPU
                        : g->nvml   ? VGPU_FLEET_MODE_SLICE
                                    : VGPU_FLEET_MODE_NONE,
                .updated_ms = updated_ms,
        };
        v.types = types;
        v.n_types = n_types;
        if (v.mode == VGPU_FLEET_MODE_SLICE) {
                /* The capacity is what the slices made outside the fleet (an admin's) leave; the
                 * fleet's own slices (their names carry the claim mark) are published apart. They
                 * are in alloc/<gpu> already, as claims: subtracted here too, each would count
                 * twice and the GPU would refuse sessions at half its capacity. */
                uint64_t mem = 0, fleet_mem = 0;
                unsigned share = 0, fleet_share = 0;
                for (size_t i = 0; i < d->n_slices; i++) {
                        const struct vgpu_slice_spec *s = &d->slices[i].spec;
                        if (!streq(s->gpu, g->bdf))
                                continue;
                        bool fleet = vgpu_fleet_name_is_claim_instance(s->name);
                        *(fleet ? &fleet_mem : &mem) += s->memory;
                        *(fleet ? &fleet_share : &share) += s->share;
                }
                v.slice_memory_bytes = v.vram_total_bytes > mem ? v.vram_total_bytes - mem : 0;
                v.slice_share_percent = share < 100 ? 100 - share : 0;
                v.slice_fleet_memory_bytes = fleet_mem;
                v.slice_fleet_share_percent = fleet_share < 100 ? fleet_share : 100;
        }
        const char *state = vgpud_gpu_state(t);
        char *reasons[4];
        size_t n_reasons = 0;
        if (streq(state, "degraded")) {
                v.degraded = true;
                if (t->thermal == VGPU_THERMAL_WARN || t->thermal == VGPU_THERMAL_CRITICAL ||
                    vgpu_telemetry_thermal_slowdown(t))
                        reasons[n_reasons++] = (char *) "thermal";
                if (t->link_degraded)
                        reasons[n_reasons++] = (char *) "link";
                if (t->xid)
                        reasons[n_reasons++] = (char *) "xid";
        }
        v.health_reasons = reasons;
        v.n_health_reasons = n_reasons;
        if (t && t->temperature_c != VGPU_TEMP_UNKNOWN) {
                v.has_temperature = true;
                v.temperature_celsius = t->temperature_c;
        }
        struct vgpu_error err = {};
        int r = vgpu_fleet_gpu_to_json(&v, ret, &err);
        if (r < 0)
                log_warning("fleet: gpus/%s/%s: %s", host, id, err.message);
        return r;
}

void fleet_update_inventory(struct vgpud *d) {
        struct fleet *f = d->fleet;
        if (!f || !d->host)
                return;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        int64_t now_ms = (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        struct fleet_gpu *gpus = calloc(d->host->n_gpus ? d->host->n_gpus : 1, sizeof(*gpus));
        size_t n = 0;
        if (!gpus)
                return;
        bool ok = true;
        for (size_t i = 0; ok && i < d->host->n_gpus; i++) {
                const struct vgpu_gpu *g = &d->host->gpus[i];
                if (g->physfn[0])
                        continue; /* a VF is part of its GPU */
                char id[160];
                /* NVML's UUID is unique in the fleet; without one, the host makes the BDF unique */
                if (g->nvml && g->nvml->uuid && vgpu_fleet_name_is_valid(g->nvml->uuid))
                        snprintf(id, sizeof(id), "%s", g->nvml->uuid);
                else
                        snprintf(id, sizeof(id), "%s:%s", f->host, g->bdf);
                struct fleet_gpu *x = &gpus[n++];
                ok = (x->id = strdup(id)) && (x->bdf = strdup(g->bdf)) &&
                     gpu_value(d, g, f->host, id, 0, &x->signature) >= 0;
                /* the published value says when it last changed, not when it was last polled */
                pthread_mutex_lock(&f->lock);
                const struct fleet_gpu *prev = NULL;
                for (size_t j = 0; j < f->n_gpus; j++)
                        if (streq(f->gpus[j].id, id))
                                prev = &f->gpus[j];
                if (ok && prev && streq(prev->signature, x->signature))
                        ok = (x->json = strdup(prev->json)) != NULL;
                pthread_mutex_unlock(&f->lock);
                if (ok && !x->json)
                        ok = gpu_value(d, g, f->host, id, now_ms, &x->json) >= 0;
        }
        pthread_mutex_lock(&f->lock);
        bool changed = ok && n != f->n_gpus;
        for (size_t i = 0; ok && !changed && i < n; i++)
                changed =
                        !streq(gpus[i].id, f->gpus[i].id) || !streq(gpus[i].signature, f->gpus[i].signature);
        if (changed) {
                struct fleet_gpu *old = f->gpus;
                size_t n_old = f->n_gpus;
                f->gpus = gpus;
                f->n_gpus = n;
                f->inventory_gen++;
                f->interrupt_watch = 1; /* the worker publishes it */
                gpus = old;
                n = n_old;
        }
        pthread_mutex_unlock(&f->lock);
        for (size_t i = 0; i < n; i++) {
                free(gpus[i].id);
                free(gpus[i].bdf);
                free(gpus[i].json);
                free(gpus[i].signature);
        }
        free(gpus);
}
