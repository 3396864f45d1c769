/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fleet-claims.c — the claims a broker placed on this host (claims/<host>/), on the fleet
 * worker's thread: realize a PENDING one (a vGPU instance of its type, or a software slice,
 * through libvgpu's public calls as `vgpuctl create` and `vgpuctl slice create` make them),
 * report BOUND or FAILED by compare-and-swap, tear down on release, and reconcile after the
 * lease came back. A claim whose host_lease is not our current lease is fenced: not touched
 * (a broker placed it on a lease that died; the reconcile after our next grant decides it).
 *
 * The instance's name comes from the claim id (vgpu/fleet-host.h), so realizing twice (a report
 * that got lost, a restart in between) finds the instance made the first time. A vendor-VFIO
 * instance (a VF with a type) has no name of its own: its BDF is the claim's "instance".
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vgpu/error.h"
#include "fleet.h"
#include "log.h"
#include "vgpu/assign.h"
#include "vgpu/fleet-host.h"
#include "vgpu/host.h"
#include "vgpu/lifecycle.h"
#include "vgpu/slice.h"
#include "vgpud.h"

static bool claim_is_slice(const struct vgpu_fleet_claim *c) {
        return !c->type || !c->type[0];
}

static const char *bdf_of(const struct fleet_worker *w, const char *gpu) {
        for (size_t i = 0; i < w->n_gpus; i++)
                if (streq(w->gpus[i].id, gpu))
                        return w->gpus[i].bdf;
        return NULL;
}

/* The vendor-VFIO instance of a claim is a VF, named by its BDF in "instance" (BOUND claims). */
static bool instance_is_vf(const struct vgpu_fleet_claim *c) {
        return !claim_is_slice(c) && c->instance && c->instance[0] && !vgpu_uuid_valid(c->instance);
}

static bool claim_has_domain(const struct vgpu_fleet_claim *c) {
        return c->domain && c->domain[0];
}

/* Take the claim's instance out of its domain (configuration, and the running domain if it
 * runs). Removing the device alone would leave the domain naming one that is gone: it would not
 * start again. Not attached, or no such domain any more: nothing to do. */
static int detach_domain(const struct vgpu_fleet_claim *c, const char *name, struct vgpu_error *err) {
        struct vgpu_hostdev dev;
        int r = vgpu_hostdev_parse(name, &dev, err);
        if (r < 0)
                return r;
        struct vgpu_virt *v = NULL;
        if ((r = vgpu_virt_open(NULL, 0, &v, err)) < 0)
                return r;
        r = vgpu_detach(v, c->domain, &dev, 0, NULL, err);
        vgpu_virt_free(v);
        return r == -ENOENT ? 0 : r;
}

/* Whether the VF bdf runs a vGPU of type (NULL: any). */
static bool vf_runs(const char *bdf, const char *type) {
        struct vgpu_host *host = NULL;
        struct vgpu_error err = {};
        bool runs = false;
        if (vgpu_host_scan(VGPU_SCAN_INSTANCES, &host, &err) < 0)
                return true; /* cannot tell: as if it did (a teardown tries, a reuse fails later) */
        for (size_t i = 0; i < host->n_instances; i++)
                runs |= streq(host->instances[i].parent, bdf) &&
                        (!type || streq(strempty(host->instances[i].type), type));
        vgpu_host_free(host);
        return runs;
}

/* The VF a vendor-VFIO claim got: its "instance" once BOUND, else the one remembered from its
 * creation (a report not written: fleet-vfs.c); NULL for other claims. */
static const char *claim_vf(const struct fleet_worker *w, const struct vgpu_fleet_claim *c) {
        if (instance_is_vf(c))
                return c->instance;
        return claim_is_slice(c) ? NULL : fleet_vf_of(w, c->claim);
}

/* Remove what the claim made, if it is there: 1 removed, 0 there was nothing, -errno. */
static int teardown(struct fleet_worker *w, const struct vgpu_fleet_claim *c, struct vgpu_error *err) {
        char name[40];
        if (claim_is_slice(c)) {
                vgpu_fleet_claim_slice_name(c->claim, name);
                int r = vgpu_slice_destroy(name, err);
                return r == -ENOENT ? 0 : r < 0 ? r : 1;
        }
        const char *vf = claim_vf(w, c);
        if (vf && !instance_is_vf(c) && !vf_runs(vf, c->type)) {
                /* a remembered VF another claim or an admin configured since is not ours */
                fleet_vf_forget(w, c->claim);
                return 0;
        }
        if (vf)
                snprintf(name, sizeof(name), "%s", vf);
        else
                vgpu_fleet_claim_instance_uuid(c->claim, name);
        int r;
        if (claim_has_domain(c) && (r = detach_domain(c, name, err)) < 0)
                return r; /* kept: the domain still holds it */
        r = vgpu_mdev_remove(name, err);
        if (vf && (r >= 0 || r == -ENOENT))
                fleet_vf_forget(w, c->claim);
        return r == -ENOENT ? 0 : r < 0 ? r : 1;
}

/* ---- teardowns that failed: tried again with backoff ---- */

#define RETRY_FIRST_MS 500
#define RETRY_MAX_MS   30000
#define SWEEP_RETRY_MS 5000

int64_t fleet_now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct fleet_retry *retry_find(struct fleet_worker *w, const char *claim) {
        for (size_t i = 0; i < w->n_retries; i++)
                if (streq(w->retries[i].claim, claim))
                        return &w->retries[i];
        return NULL;
}

/* Whether the claim's teardown failed and its next try is not due yet: then nothing is tried
 * now (our own report of the failure comes back as a watch event, and must not try again). */
static bool retry_waiting(struct fleet_worker *w, const char *claim) {
        const struct fleet_retry *t = retry_find(w, claim);
        return t && fleet_now_ms() < t->next_ms;
}

static void retry_forget(struct fleet_worker *w, const char *claim) {
        struct fleet_retry *t = retry_find(w, claim);
        if (t)
                *t = w->retries[--w->n_retries];
}

/* The keeper ends the watch at the earliest due try; the worker then lists and reconciles. */
static void retry_schedule(struct fleet_worker *w, int64_t at_ms) {
        struct fleet *f = w->f;
        pthread_mutex_lock(&f->lock);
        if (!f->retry_at_ms || at_ms < f->retry_at_ms)
                f->retry_at_ms = at_ms;
        pthread_cond_broadcast(&f->cond);
        pthread_mutex_unlock(&f->lock);
}

/* The claim's teardown failed: count the try, schedule the next (500 ms, doubling, at most
 * 30 s), and say why on the claim (kv: as we saw it) so `vgpuctl fleet` shows what holds the
 * release up. The claim stays RELEASING and counted in alloc/<gpu>: its
 * capacity is not free while the device exists. */
static void teardown_failed(struct fleet_worker *w, const struct vgpu_etcd_kv *kv,
                            const struct vgpu_fleet_claim *c, const char *why) {
        struct fleet_retry *t = retry_find(w, c->claim);
        if (!t) {
                struct fleet_retry *n = realloc(w->retries, (w->n_retries + 1) * sizeof(*n));
                if (!n) {
                        retry_schedule(w, fleet_now_ms() + RETRY_MAX_MS);
                        return;
                }
                w->retries = n;
                t = &w->retries[w->n_retries++];
                *t = (struct fleet_retry){};
                snprintf(t->claim, sizeof(t->claim), "%s", c->claim);
        }
        t->tries++;
        int64_t delay = RETRY_FIRST_MS;
        for (unsigned i = 1; i < t->tries && delay < RETRY_MAX_MS; i++)
                delay *= 2;
        if (delay > RETRY_MAX_MS)
                delay = RETRY_MAX_MS;
        t->next_ms = fleet_now_ms() + delay;
        retry_schedule(w, t->next_ms);
        log_warning("fleet: claim %s: tearing down failed (try %u), kept %s, next try in %.1f s: %s",
                    c->claim, t->tries, vgpu_fleet_state_to_string(c->state), (double) delay / 1000, why);
        char msg[512];
        snprintf(msg, sizeof(msg), "tearing down failed (try %u, next in %.1f s): %s", t->tries,
                 (double) delay / 1000, why);
        struct vgpu_fleet_claim out = *c;
        out.error = msg;
        struct vgpu_error err = {};
        if (vgpu_fleet_claim_report(w->etcd, w->f->prefix, kv->key, kv->mod_revision, w->lease, &out, NULL,
                                    &err) < 0)
                log_debug("fleet: claim %s: reporting the teardown's failure: %s", c->claim, err.message);
}

/* Where a vGPU of type goes on the GPU bdf: the GPU itself when it is an mdev parent, else
 * (NVIDIA vendor-VFIO, SR-IOV) one of its VFs that can still take the type. */
static int pick_parent(const char *bdf, const char *type, char ret[VGPU_BDF_MAX], bool *ret_vf,
                       struct vgpu_error *err) {
        struct vgpu_host *host = NULL;
        int r = vgpu_host_scan(VGPU_SCAN_TYPES | VGPU_SCAN_INSTANCES, &host, err);
        if (r < 0)
                return r;
        const struct vgpu_gpu *g = NULL;
        for (size_t i = 0; i < host->n_gpus; i++)
                if (streq(host->gpus[i].bdf, bdf))
                        g = &host->gpus[i];
        bool has_vf_parents = false;
        r = -ENOENT;
        for (size_t i = 0; g && i < host->n_parents && r == -ENOENT; i++) {
                const struct vgpu_parent *p = &host->parents[i];
                if (streq(p->name, bdf)) {
                        snprintf(ret, VGPU_BDF_MAX, "%s", bdf);
                        *ret_vf = false;
                        r = 0;
                        break;
                }
                bool vf = false;
                for (size_t k = 0; k < g->n_vfs; k++)
                        vf |= streq(g->vfs[k], p->name);
                if (!vf)
                        continue;
                has_vf_parents = true;
                bool taken = false;
                for (size_t k = 0; k < host->n_instances; k++)
                        taken |= streq(host->instances[k].parent, p->name);
                for (size_t j = 0; !taken && j < p->n_types; j++)
                        if (streq(p->types[j].id, type) && p->types[j].available_instances > 0) {
                                snprintf(ret, VGPU_BDF_MAX, "%s", p->name);
                                *ret_vf = true;
                                r = 0;
                        }
        }
        vgpu_host_free(host);
        if (r == -ENOENT && has_vf_parents)
                return vgpu_error_set(err, -ENOSPC, "%s: no free VF offers type %s", bdf, type);
        if (r == -ENOENT) {
                /* not a parent now (driver reloading?): let the create say why */
                snprintf(ret, VGPU_BDF_MAX, "%s", bdf);
                *ret_vf = false;
                r = 0;
        }
        return r;
}

static int assign_domain(const char *uuid, const char *domain, struct vgpu_error *err) {
        struct vgpu_host *host = NULL;
        struct vgpu_virt *v = NULL;
        struct vgpu_hostdev dev = {};
        int r = vgpu_host_scan(VGPU_SCAN_INSTANCES, &host, err);
        if (r >= 0)
                r = vgpu_hostdev_from_host(host, uuid, &dev, err);
        if (r >= 0)
                r = vgpu_virt_open(NULL, 0, &v, err);
        if (r >= 0)
                r = vgpu_assign(v, domain, &dev, 0, NULL, err);
        vgpu_virt_free(v);
        vgpu_host_free(host);
        return r;
}

/* Make the claim's instance: its name in ret (uuid or slice name), or -errno with err. */
static int realize(struct fleet_worker *w, const struct vgpu_fleet_claim *c, char ret[40],
                   struct vgpu_error *err) {
        const char *bdf = bdf_of(w, c->gpu);
        if (!bdf)
                return vgpu_error_set(err, -ENODEV, "this host has no GPU %s", c->gpu);
        int r;
        if (claim_is_slice(c) && claim_has_domain(c))
                /* the broker places a claim with a domain on vGPUs only; one written otherwise
                 * must not go BOUND without what it asked for */
                return vgpu_error_set(err, -EINVAL,
                                      "a software slice cannot be attached to libvirt domain '%s' (a "
                                      "domain takes a vGPU: ask for a type or vram_bytes)",
                                      c->domain);
        if (claim_is_slice(c)) {
                vgpu_fleet_claim_slice_name(c->claim, ret);
                struct vgpu_slice_spec req;
                if ((r = vgpu_slice_spec_init(&req, ret, bdf, err)) < 0)
                        return r;
                req.memory = c->has_slice ? c->slice_memory_bytes : c->vram_bytes;
                req.share = c->has_slice ? c->slice_share_percent : 0;
                r = vgpu_slice_create(&req, err);
        } else {
                char parent[VGPU_BDF_MAX];
                bool vf = false;
                const char *known = fleet_vf_of(w, c->claim);
                if (known && vf_runs(known, c->type)) {
                        /* made before, its report lost: the same VF, not a second one */
                        snprintf(ret, 40, "%s", known);
                        return 0;
                }
                if (known)
                        fleet_vf_forget(w, c->claim);
                if ((r = pick_parent(bdf, c->type, parent, &vf, err)) < 0)
                        return r;
                /* remembered before it is configured: a report lost, or a crash, after the
                 * creation must not leave a VF nobody knows is the claim's */
                if (vf && (r = fleet_vf_remember(w, c->claim, parent)) < 0)
                        return vgpu_error_set_errno(err, r, "remembering VF %s for claim %s", parent,
                                                    c->claim);
                struct vgpu_mdev_spec spec = {};
                /* an mdev gets the claim's own UUID; a vendor-VFIO VF has none (its BDF names it) */
                if (!vf)
                        vgpu_fleet_claim_instance_uuid(c->claim, spec.uuid);
                if (!(spec.parent = strdup(parent)) || !(spec.type = strdup(c->type))) {
                        free(spec.parent);
                        return vgpu_error_set(err, -ENOMEM, "out of memory");
                }
                r = vgpu_mdev_create(&spec, 0, err);
                snprintf(ret, 40, "%s", vf ? parent : spec.uuid);
                vgpu_mdev_spec_free(&spec);
                if (r >= 0 && claim_has_domain(c)) {
                        struct vgpu_error e2 = {};
                        r = assign_domain(ret, c->domain, err);
                        if (r < 0)
                                (void) vgpu_mdev_remove(ret, &e2); /* a failed claim leaves nothing */
                }
                if (r < 0 && vf)
                        fleet_vf_forget(w, c->claim);
        }
        return r < 0 ? r : 0;
}

static void realize_and_report(struct fleet_worker *w, const struct vgpu_etcd_kv *kv,
                               struct vgpu_fleet_claim *c) {
        char instance[40] = "";
        struct vgpu_error err = {}, rerr = {};
        int r = realize(w, c, instance, &err);
        w->changed_host = true;
        struct vgpu_fleet_claim out = *c;
        if (r >= 0) {
                out.state = VGPU_FLEET_BOUND;
                out.instance = instance;
                out.error = NULL;
                log_info("fleet: claim %s: %s %s on %s", c->claim, claim_is_slice(c) ? "slice" : "vGPU",
                         instance, c->gpu);
        } else {
                out.state = VGPU_FLEET_FAILED;
                out.instance = NULL;
                out.error = err.message;
                log_warning("fleet: claim %s failed: %s", c->claim, err.message);
        }
        int k = vgpu_fleet_claim_report(w->etcd, w->f->prefix, kv->key, kv->mod_revision, w->lease, &out,
                                        NULL, &rerr);
        if (k < 0) {
                /* unknown outcome (a timeout, a leader lost mid-txn): the watch will not bring this
                 * claim again, so list and decide it again */
                log_warning("fleet: reporting claim %s: %s", c->claim, rerr.message);
                w->relist = true;
        }
        if (k > 0 && r >= 0)
                fleet_vf_forget(w, c->claim); /* the claim names its VF now */
        if (k == 0 && r >= 0) {
                /* it changed meanwhile: if it is gone (released while we made it), so is the
                 * instance (out names a VF: the claim never did) */
                struct vgpu_etcd_range rg = {};
                if (vgpu_etcd_get(w->etcd, kv->key, &rg, &rerr) >= 0 && rg.n == 0 &&
                    teardown(w, &out, &rerr) < 0) {
                        log_warning("fleet: claim %s deleted, tearing down: %s", c->claim, rerr.message);
                        retry_schedule(w, fleet_now_ms() + RETRY_FIRST_MS);
                }
                vgpu_etcd_range_free(&rg);
        }
}

static void release(struct fleet_worker *w, const struct vgpu_etcd_kv *kv, const struct vgpu_fleet_claim *c) {
        struct vgpu_error err = {};
        if (retry_waiting(w, c->claim))
                return; /* failed before: the retry comes when due */
        int r = teardown(w, c, &err);
        w->changed_host = true;
        if (r < 0) {
                teardown_failed(w, kv, c, err.message);
                return;
        }
        retry_forget(w, c->claim);
        /* claim + session deleted, alloc/<gpu> and the tenant's usage decremented, in one txn */
        enum vgpu_fleet_release_outcome o;
        r = vgpu_fleet_release_claim(w->etcd, w->f->prefix, kv->key, true, VGPU_FLEET_RELEASING, &o, &err);
        if (r == -ESTALE)
                log_debug("fleet: claim %s changed before its release finished: %s", c->claim, err.message);
        else if (r < 0) {
                /* a txn that timed out or was reset (an etcd leader killed): the claim would stay
                 * RELEASING for ever, as no watch event comes again; list and finish it then */
                log_warning("fleet: claim %s: finishing the release: %s", c->claim, err.message);
                w->relist = true;
        } else
                log_info("fleet: claim %s released", c->claim);
}

void fleet_claim_event(struct fleet_worker *w, const struct vgpu_etcd_kv *kv, bool deleted,
                       const struct vgpu_etcd_kv *prev) {
        struct vgpu_error err = {};
        struct vgpu_fleet_claim c = {};
        if (deleted) {
                /* released (by us, or by a broker): nothing may stay, whatever its state was. A
                 * PENDING one too: we may have made its instance and lost the BOUND report, and
                 * the broker then deleted it as PENDING (its client released or gave up). */
                if (!prev || vgpu_fleet_claim_from_json(prev->value, &c, &err) < 0)
                        return;
                int r = teardown(w, &c, &err);
                w->changed_host |= r > 0;
                retry_forget(w, c.claim);
                if (r < 0) {
                        /* the claim is gone: the sweep after the retry's listing removes it */
                        log_warning("fleet: claim %s deleted, tearing down: %s", c.claim, err.message);
                        retry_schedule(w, fleet_now_ms() + RETRY_FIRST_MS);
                }
                if (r > 0)
                        log_info("fleet: claim %s deleted (%s): torn down", c.claim,
                                 vgpu_fleet_state_to_string(c.state));
                vgpu_fleet_claim_free(&c);
                return;
        }
        if (vgpu_fleet_claim_from_json(kv->value, &c, &err) < 0) {
                log_warning("fleet: %s: %s", kv->key, err.message);
                return;
        }
        if (c.instance && c.instance[0])
                fleet_vf_forget(w, c.claim); /* it names its instance: nothing to remember */
        if (c.host_lease != w->lease) {
                log_debug("fleet: claim %s is fenced (lease %" PRId64 ", ours %" PRId64 "): ignored", c.claim,
                          c.host_lease, w->lease);
                vgpu_fleet_claim_free(&c);
                return;
        }
        if (c.state == VGPU_FLEET_PENDING)
                realize_and_report(w, kv, &c);
        else if (c.state == VGPU_FLEET_RELEASING)
                release(w, kv, &c);
        vgpu_fleet_claim_free(&c);
}

/* ---- the sweep ---- */

static bool named_by_a_claim(const char *name, char (*names)[40], size_t n) {
        for (size_t i = 0; i < n; i++)
                if (streq(names[i], name))
                        return true;
        return false;
}

int fleet_sweep(struct fleet_worker *w, const struct vgpu_etcd_range *claims) {
        struct vgpu_error err = {};
        struct vgpu_host *host = NULL;
        struct vgpu_slice_status *slices = NULL;
        size_t n_slices = 0, n = 0;
        /* each claim's two possible names (mdev UUID, slice name) */
        _cleanup_free_ char(*names)[40] = calloc(2 * claims->n + 1, sizeof(*names));
        _cleanup_free_ char(*ids)[129] = calloc(claims->n + 1, sizeof(*ids));
        _cleanup_free_ char(*insts)[40] = calloc(claims->n + 1, sizeof(*insts));
        if (!names || !ids || !insts)
                return -ENOMEM;
        for (size_t i = 0; i < claims->n; i++) {
                struct vgpu_fleet_claim c = {};
                if (vgpu_fleet_claim_from_json(claims->kvs[i].value, &c, &err) < 0) {
                        /* a claim we cannot read may name anything: sweep nothing this time */
                        log_warning("fleet: sweep: %s: %s", claims->kvs[i].key, err.message);
                        return -EBADMSG;
                }
                snprintf(ids[i], sizeof(ids[i]), "%s", c.claim);
                snprintf(insts[i], sizeof(insts[i]), "%s", strempty(c.instance));
                vgpu_fleet_claim_instance_uuid(c.claim, names[n++]);
                vgpu_fleet_claim_slice_name(c.claim, names[n++]);
                vgpu_fleet_claim_free(&c);
        }
        if (vgpu_host_scan(VGPU_SCAN_INSTANCES, &host, &err) < 0 ||
            vgpu_slice_list(&slices, &n_slices, &err) < 0) {
                log_warning("fleet: sweep: %s", err.message);
                vgpu_host_free(host);
                return -EAGAIN;
        }
        /* Only names the fleet makes (vgpu_fleet_name_is_claim_instance): the admin's own
         * instances are not ours. Every instance we made is for a claim we saw before this
         * listing, so one that no listed claim names belongs to a claim deleted meanwhile (a
         * PENDING one whose BOUND report was lost, a delete we missed while the watch was down). */
        unsigned swept = 0, failed = 0;
        for (size_t i = 0; host && i < host->n_instances; i++) {
                const char *u = host->instances[i].uuid;
                if (!vgpu_fleet_name_is_claim_instance(u) || named_by_a_claim(u, names, n))
                        continue;
                if (fleet_orphan_detach(u, &err) < 0) {
                        /* a domain may still name it: kept, the next sweep tries again */
                        log_warning("fleet: sweep: vGPU %s belongs to no claim, kept: %s", u, err.message);
                        failed++;
                        continue;
                }
                int r = vgpu_mdev_remove(u, &err);
                if (r < 0 && r != -ENOENT) {
                        log_warning("fleet: sweep: removing vGPU %s: %s", u, err.message);
                        failed++;
                } else {
                        log_info("fleet: sweep: vGPU %s belongs to no claim: removed", u);
                        swept++;
                }
        }
        for (size_t i = 0; i < n_slices; i++) {
                const char *name = slices[i].spec.name;
                if (!vgpu_fleet_name_is_claim_instance(name) || named_by_a_claim(name, names, n))
                        continue;
                int r = vgpu_slice_destroy(name, &err);
                if (r < 0 && r != -ENOENT) {
                        log_warning("fleet: sweep: removing slice %s: %s", name, err.message);
                        failed++;
                } else {
                        log_info("fleet: sweep: slice %s belongs to no claim: removed", name);
                        swept++;
                }
        }
        /* a VF remembered for a claim no longer listed: deleted before its report was written */
        for (size_t i = w->n_vfs; i-- > 0;) {
                struct fleet_vf v = w->vfs[i];
                bool listed = false;
                for (size_t j = 0; j < claims->n && !listed; j++)
                        listed = streq(ids[j], v.claim);
                if (listed)
                        continue;
                /* not if a listed claim names that VF (ours was cleared, the VF given again) */
                bool other = named_by_a_claim(v.bdf, insts, claims->n);
                bool runs = !other && vf_runs(v.bdf, NULL);
                if (runs && fleet_orphan_detach(v.bdf, &err) < 0) {
                        /* realized with a domain before the report was lost: the domain names it */
                        log_warning("fleet: sweep: VF %s belongs to no claim (claim %s), kept: %s", v.bdf,
                                    v.claim, err.message);
                        failed++;
                        continue;
                }
                int r = runs ? vgpu_mdev_remove(v.bdf, &err) : -ENOENT;
                if (r < 0 && r != -ENOENT) {
                        log_warning("fleet: sweep: clearing VF %s of claim %s: %s", v.bdf, v.claim,
                                    err.message);
                        failed++;
                        continue;
                }
                if (r >= 0) {
                        log_info("fleet: sweep: VF %s belongs to no claim (claim %s): cleared", v.bdf,
                                 v.claim);
                        swept++;
                }
                fleet_vf_forget(w, v.claim);
        }
        w->changed_host |= swept > 0;
        if (failed > 0)
                retry_schedule(w, fleet_now_ms() + SWEEP_RETRY_MS); /* listed and swept again then */
        free(slices);
        vgpu_host_free(host);
        return (int) swept;
}

/* ---- reconcile ---- */

struct running {
        struct vgpu_host *host;
        struct vgpu_slice_status *slices;
        size_t n_slices;
};

static bool instance_runs(const struct fleet_worker *w, const struct running *run,
                          const struct vgpu_fleet_claim *c) {
        char name[40];
        if (claim_is_slice(c)) {
                vgpu_fleet_claim_slice_name(c->claim, name);
                for (size_t i = 0; i < run->n_slices; i++)
                        if (streq(run->slices[i].spec.name, name))
                                return true;
                return false;
        }
        const char *vf = claim_vf(w, c);
        if (vf) {
                for (size_t i = 0; run->host && i < run->host->n_instances; i++)
                        if (streq(run->host->instances[i].parent, vf) &&
                            streq(strempty(run->host->instances[i].type), c->type))
                                return true;
                return false;
        }
        vgpu_fleet_claim_instance_uuid(c->claim, name);
        for (size_t i = 0; run->host && i < run->host->n_instances; i++)
                if (streq(run->host->instances[i].uuid, name))
                        return true;
        return false;
}

int fleet_reconcile(struct fleet_worker *w, const struct vgpu_etcd_range *claims) {
        struct vgpu_error err = {};
        struct running run = {};
        if (vgpu_host_scan(VGPU_SCAN_INSTANCES, &run.host, &err) < 0 ||
            vgpu_slice_list(&run.slices, &run.n_slices, &err) < 0) {
                log_warning("fleet: reconcile: %s", err.message);
                vgpu_host_free(run.host);
                return -EAGAIN;
        }
        size_t n = claims->n;
        struct vgpu_fleet_claim *cs = calloc(n ? n : 1, sizeof(*cs));
        struct vgpu_fleet_reconcile_item *items = calloc(n ? n : 1, sizeof(*items));
        bool *valid = calloc(n ? n : 1, sizeof(bool)), *done = calloc(n ? n : 1, sizeof(bool));
        bool *failed = calloc(n ? n : 1, sizeof(bool));
        char(*why)[256] = calloc(n ? n : 1, sizeof(*why));
        int r = cs && items && valid && done && failed && why ? 0 : -ENOMEM;
        for (size_t i = 0; r >= 0 && i < n; i++)
                valid[i] = vgpu_fleet_claim_from_json(claims->kvs[i].value, &cs[i], &err) >= 0;
        unsigned rebound = 0, released = 0;
        /* per GPU: every claim on it, one txn */
        for (size_t i = 0; r >= 0 && i < n; i++) {
                if (!valid[i] || done[i])
                        continue;
                size_t m = 0;
                bool change = false;
                for (size_t j = i; j < n; j++) {
                        if (!valid[j] || done[j] || !streq(cs[j].gpu, cs[i].gpu))
                                continue;
                        done[j] = true;
                        const struct vgpu_fleet_claim *c = &cs[j];
                        enum vgpu_fleet_reconcile_action a = VGPU_FLEET_RECONCILE_KEEP;
                        if (c->state == VGPU_FLEET_RELEASING)
                                a = VGPU_FLEET_RECONCILE_RELEASE;
                        else if (c->host_lease != w->lease && c->state != VGPU_FLEET_FAILED)
                                a = instance_runs(w, &run, c) ? VGPU_FLEET_RECONCILE_REBIND
                                                              : VGPU_FLEET_RECONCILE_RELEASE;
                        /* a VF whose BOUND report was lost: rebound, the claim names it now */
                        const char *vf = a == VGPU_FLEET_RECONCILE_REBIND && !instance_is_vf(c)
                                                 ? claim_vf(w, c)
                                                 : NULL;
                        if (vf) {
                                char *copy = strdup(vf);
                                if (copy) {
                                        free(cs[j].instance);
                                        cs[j].instance = copy;
                                } else
                                        a = VGPU_FLEET_RECONCILE_KEEP;
                        }
                        change |= a != VGPU_FLEET_RECONCILE_KEEP;
                        items[m++] = (struct vgpu_fleet_reconcile_item){
                                .key = claims->kvs[j].key,
                                .mod_revision = claims->kvs[j].mod_revision,
                                .claim = c,
                                .action = a,
                        };
                }
                if (!change)
                        continue;
                /* first what must go (a RELEASING instance that still runs); one that cannot be
                 * torn down stays, counted in alloc, and is tried again after a backoff */
                for (size_t k = 0; k < m; k++) {
                        failed[k] = false;
                        if (items[k].action != VGPU_FLEET_RECONCILE_RELEASE)
                                continue;
                        if (retry_waiting(w, items[k].claim->claim))
                                items[k].action = VGPU_FLEET_RECONCILE_KEEP;
                        else if (teardown(w, items[k].claim, &err) < 0) {
                                items[k].action = VGPU_FLEET_RECONCILE_KEEP;
                                failed[k] = true;
                                snprintf(why[k], sizeof(why[k]), "%s", err.message);
                        } else
                                retry_forget(w, items[k].claim->claim);
                }
                w->changed_host = true;
                int k = vgpu_fleet_host_reconcile(w->etcd, w->f->prefix, cs[i].gpu, items, m, w->lease, &err);
                /* after the txn, which compares the claims' mod_revision: the report changes it */
                for (size_t x = 0; x < m; x++)
                        if (failed[x]) {
                                struct vgpu_etcd_kv kv = { .key = (char *) items[x].key,
                                                           .mod_revision = items[x].mod_revision };
                                teardown_failed(w, &kv, items[x].claim, why[x]);
                        }
                if (k < 0) {
                        log_warning("fleet: reconcile of %s: %s", cs[i].gpu, err.message);
                        r = k;
                } else if (k == 0)
                        r = -EAGAIN; /* a broker wrote meanwhile: list again, decide again */
                else
                        for (size_t x = 0; x < m; x++) {
                                rebound += items[x].action == VGPU_FLEET_RECONCILE_REBIND;
                                if (items[x].action == VGPU_FLEET_RECONCILE_REBIND)
                                        fleet_vf_forget(w, items[x].claim->claim);
                                released += items[x].action == VGPU_FLEET_RECONCILE_RELEASE;
                        }
        }
        if (r >= 0)
                log_info("fleet: reconciled with lease %" PRId64 ": %u claims bound again, %u released",
                         w->lease, rebound, released);
        /* PENDING claims placed on the new lease before we listed: realize them now */
        for (size_t i = 0; r >= 0 && i < n; i++)
                if (valid[i] && cs[i].host_lease == w->lease && cs[i].state == VGPU_FLEET_PENDING)
                        realize_and_report(w, &claims->kvs[i], &cs[i]);
        for (size_t i = 0; cs && i < n; i++)
                if (valid && valid[i])
                        vgpu_fleet_claim_free(&cs[i]);
        free(cs);
        free(items);
        free(valid);
        free(done);
        free(failed);
        free(why);
        free(run.slices);
        vgpu_host_free(run.host);
        return r;
}
