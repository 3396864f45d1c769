/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * host.c — the transactions vgpud makes on its claims (vgpu/fleet-host.h): report, finish a
 * release, reconcile after a new lease. Each compares the mod_revision of every key it rewrites,
 * so a broker's concurrent claim or release makes it fail and be decided again, never lost.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "fleet-internal.h"
#include "vgpu/etcd.h"
#include "vgpu/fleet-host.h"

static void digest(const char *claim, uint8_t out[32]) {
        char buf[300];
        int n = snprintf(buf, sizeof(buf), "vgpuctl-claim:%s", claim);
        fleet_sha256(buf, n > 0 && (size_t) n < sizeof(buf) ? (size_t) n : strlen(buf), out);
}

/* The mark that makes a name the fleet's: a check of its claim-derived part, so vgpud can tell
 * the instances it made for claims from an admin's own (uuidgen's, or a slice an admin named),
 * which it never touches. A random name carries a valid mark with odds of 2^-48 (UUID), 2^-32
 * (slice). */
static void mark(const uint8_t *part, size_t n, uint8_t out[32]) {
        char buf[64] = "vgpuctl-fleet-instance:";
        size_t k = strlen(buf);
        memcpy(buf + k, part, n);
        fleet_sha256(buf, k + n, out);
}

_public_ void vgpu_fleet_claim_instance_uuid(const char *claim, char buf[static 37]) {
        uint8_t h[32], m[32];
        digest(claim, h);
        h[6] = (h[6] & 0x0f) | 0x40; /* version 4 layout, as uuidgen's: mdevctl and libvirt check it */
        h[8] = (h[8] & 0x3f) | 0x80;
        mark(h, 10, m);
        memcpy(h + 10, m, 6); /* the node field: the mark */
        snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", h[0], h[1],
                 h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]);
}

_public_ void vgpu_fleet_claim_slice_name(const char *claim, char buf[static 31]) {
        uint8_t h[32], m[32];
        digest(claim, h);
        mark(h, 8, m);
        memcpy(h + 8, m, 4);
        int n = snprintf(buf, 31, "fleet-");
        for (int i = 0; i < 12; i++)
                n += snprintf(buf + n, 31 - n, "%02x", h[i]);
}

static int unhex(const char *s, uint8_t *out, size_t n) {
        for (size_t i = 0; i < n; i++) {
                unsigned v;
                if (!s[2 * i] || !s[2 * i + 1] || sscanf(s + 2 * i, "%2x", &v) != 1 ||
                    !strchr("0123456789abcdef", s[2 * i]) || !strchr("0123456789abcdef", s[2 * i + 1]))
                        return -EINVAL;
                out[i] = (uint8_t) v;
        }
        return 0;
}

_public_ bool vgpu_fleet_name_is_claim_instance(const char *name) {
        uint8_t h[16], m[32];
        if (!name)
                return false;
        if (strlen(name) == 30 && strncmp(name, "fleet-", 6) == 0) {
                if (unhex(name + 6, h, 12) < 0)
                        return false;
                mark(h, 8, m);
                return memcmp(h + 8, m, 4) == 0;
        }
        if (strlen(name) != 36 || name[8] != '-' || name[13] != '-' || name[18] != '-' || name[23] != '-')
                return false;
        char hex[33];
        snprintf(hex, sizeof(hex), "%.8s%.4s%.4s%.4s%.12s", name, name + 9, name + 14, name + 19, name + 24);
        if (unhex(hex, h, 16) < 0)
                return false;
        mark(h, 10, m);
        return memcmp(h + 10, m, 6) == 0;
}

_public_ int vgpu_fleet_claim_report(struct vgpu_etcd *e, const char *prefix, const char *key,
                                     int64_t mod_revision, int64_t lease, const struct vgpu_fleet_claim *c,
                                     int64_t *ret_revision, struct vgpu_error *err) {
        _cleanup_free_ char *text = NULL;
        char host_key[VGPU_FLEET_KEY_MAX];
        int r = vgpu_fleet_claim_to_json(c, &text, err);
        if (r < 0)
                return r;
        if (vgpu_fleet_key(host_key, sizeof(host_key), prefix, "hosts", c->host, NULL) < 0)
                return vgpu_error_set(err, -ENAMETOOLONG, "hosts/%s: key too long", c->host);
        /* fenced twice: the claim is as we saw it, and hosts/<host> is still bound to our lease
         * (a vgpud whose lease died, paused past its TTL, must not report BOUND on a claim the
         * janitor is about to mark LOST, nor on one a new incarnation of the host owns) */
        struct vgpu_etcd_compare cmp[] = {
                { key, VGPU_ETCD_MOD, VGPU_ETCD_EQUAL, mod_revision, NULL },
                { host_key, VGPU_ETCD_LEASE, VGPU_ETCD_EQUAL, lease, NULL },
        };
        struct vgpu_etcd_op put = { .kind = VGPU_ETCD_OP_PUT, .key = key, .value = text };
        struct vgpu_etcd_txn_result res = {};
        r = vgpu_etcd_txn(e, cmp, ELEMENTSOF(cmp), &put, 1, NULL, 0, &res, err);
        if (r < 0)
                return r;
        bool ok = res.succeeded;
        if (ok && ret_revision)
                *ret_revision = res.revision;
        vgpu_etcd_txn_result_free(&res);
        return ok ? 1 : 0;
}

/* alloc/<gpu> now: *ret_alloc (zeroed when absent) and its mod_revision (0 when absent). */
static int read_alloc(struct vgpu_etcd *e, const char *key, struct vgpu_fleet_alloc *ret_alloc,
                      bool *ret_present, int64_t *ret_mod, struct vgpu_error *err) {
        struct vgpu_etcd_range rg = {};
        int r = vgpu_etcd_get(e, key, &rg, err);
        if (r < 0)
                return r;
        *ret_alloc = (struct vgpu_fleet_alloc){};
        *ret_present = rg.n > 0;
        *ret_mod = rg.n > 0 ? rg.kvs[0].mod_revision : 0;
        if (rg.n > 0)
                r = vgpu_fleet_alloc_from_json(rg.kvs[0].value, ret_alloc, err);
        vgpu_etcd_range_free(&rg);
        return r;
}

static struct vgpu_etcd_compare alloc_compare(const char *key, bool present, int64_t mod) {
        /* absent: it must still be absent (CREATE == 0), or a broker's first claim is lost */
        return present ? (struct vgpu_etcd_compare){ key, VGPU_ETCD_MOD, VGPU_ETCD_EQUAL, mod, NULL }
                       : (struct vgpu_etcd_compare){ key, VGPU_ETCD_CREATE, VGPU_ETCD_EQUAL, 0, NULL };
}

_public_ int vgpu_fleet_host_reconcile(struct vgpu_etcd *e, const char *prefix, const char *gpu,
                                       const struct vgpu_fleet_reconcile_item *items, size_t n, int64_t lease,
                                       struct vgpu_error *err) {
        char alloc_key[VGPU_FLEET_KEY_MAX];
        if (vgpu_fleet_key(alloc_key, sizeof(alloc_key), prefix, "alloc", gpu, NULL) < 0)
                return vgpu_error_set(err, -ENAMETOOLONG, "alloc/%s: key too long", gpu);
        struct vgpu_fleet_alloc before = {};
        bool present;
        int64_t amod;
        int r = read_alloc(e, alloc_key, &before, &present, &amod, err);
        if (r < 0)
                return r;
        /* alloc from the claims that stay, in their order: what the broker's claims would have built */
        struct vgpu_fleet_alloc sum = {};
        bool any = false;
        for (size_t i = 0; r >= 0 && i < n; i++) {
                if (items[i].action == VGPU_FLEET_RECONCILE_RELEASE)
                        continue;
                struct vgpu_fleet_alloc next = {};
                r = vgpu_fleet_alloc_apply(any ? &sum : NULL, items[i].claim, +1, &next, err);
                vgpu_fleet_alloc_free(&sum);
                sum = next;
                any = true;
        }
        if (r >= 0 && !any) {
                /* nothing stays: an empty alloc (host, gpu from the one there or the first claim) */
                const char *host = before.host ? before.host : n > 0 ? items[0].claim->host : "";
                sum.host = strdup(host);
                sum.gpu = strdup(gpu);
                if (!sum.host || !sum.gpu)
                        r = vgpu_error_set(err, -ENOMEM, "out of memory");
        }
        vgpu_fleet_alloc_free(&before);
        _cleanup_free_ char *alloc_text = NULL;
        if (r >= 0)
                r = vgpu_fleet_alloc_to_json(&sum, &alloc_text, err);
        vgpu_fleet_alloc_free(&sum);
        if (r < 0)
                return r;

        /* each tenant's usage (quota/<tenant>, kept by the brokers) without the released claims */
        struct tenant_usage {
                const char *tenant;
                char key[VGPU_FLEET_KEY_MAX];
                int64_t mod;
                struct vgpu_fleet_quota q;
                char *text;
        } *quotas = calloc(n + 1, sizeof(*quotas));
        size_t n_quotas = 0;
        if (!quotas)
                r = vgpu_error_set(err, -ENOMEM, "out of memory");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const struct vgpu_fleet_claim *c = items[i].claim;
                if (items[i].action != VGPU_FLEET_RECONCILE_RELEASE || !c->tenant)
                        continue;
                struct tenant_usage *u = NULL;
                for (size_t j = 0; j < n_quotas; j++)
                        if (streq(quotas[j].tenant, c->tenant))
                                u = &quotas[j];
                if (!u) {
                        u = &quotas[n_quotas];
                        u->tenant = c->tenant;
                        if (vgpu_fleet_key(u->key, sizeof(u->key), prefix, "quota", c->tenant, NULL) < 0) {
                                r = vgpu_error_set(err, -ENAMETOOLONG, "quota/%s: key too long", c->tenant);
                                break;
                        }
                        struct vgpu_etcd_range rg = {};
                        if ((r = vgpu_etcd_get(e, u->key, &rg, err)) < 0)
                                break;
                        bool have = rg.n > 0;
                        u->mod = have ? rg.kvs[0].mod_revision : 0;
                        if (have)
                                r = vgpu_fleet_quota_from_json(rg.kvs[0].value, &u->q, err);
                        vgpu_etcd_range_free(&rg);
                        if (r < 0)
                                break;
                        if (!have)
                                continue; /* the brokers keep no usage for it: nothing to take back */
                        n_quotas++;
                }
                u->q.vram_bytes = u->q.vram_bytes > c->vram_bytes ? u->q.vram_bytes - c->vram_bytes : 0;
                u->q.sessions = u->q.sessions > 0 ? u->q.sessions - 1 : 0;
        }
        for (size_t j = 0; r >= 0 && j < n_quotas; j++)
                r = vgpu_fleet_quota_to_json(&quotas[j].q, &quotas[j].text, err);

        size_t max_ops = 2 * n + 1 + n_quotas;
        struct vgpu_etcd_compare *cmp = calloc(n + 1 + n_quotas, sizeof(*cmp));
        struct vgpu_etcd_op *ops = calloc(max_ops, sizeof(*ops));
        char **texts = calloc(n + 1, sizeof(char *)), **session_keys = calloc(n + 1, sizeof(char *));
        size_t n_cmp = 0, n_ops = 0;
        if (r >= 0 && (!cmp || !ops || !texts || !session_keys))
                r = vgpu_error_set(err, -ENOMEM, "out of memory");
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const struct vgpu_fleet_reconcile_item *it = &items[i];
                cmp[n_cmp++] = (struct vgpu_etcd_compare){ it->key, VGPU_ETCD_MOD, VGPU_ETCD_EQUAL,
                                                           it->mod_revision, NULL };
                if (it->action == VGPU_FLEET_RECONCILE_REBIND) {
                        struct vgpu_fleet_claim c = *it->claim;
                        c.state = VGPU_FLEET_BOUND;
                        c.host_lease = lease;
                        c.error = NULL;
                        r = vgpu_fleet_claim_to_json(&c, &texts[i], err);
                        ops[n_ops++] = (struct vgpu_etcd_op){ .kind = VGPU_ETCD_OP_PUT,
                                                              .key = it->key,
                                                              .value = texts[i] };
                } else if (it->action == VGPU_FLEET_RECONCILE_RELEASE) {
                        ops[n_ops++] = (struct vgpu_etcd_op){ .kind = VGPU_ETCD_OP_DELETE, .key = it->key };
                        if (it->claim->session) {
                                char k[VGPU_FLEET_KEY_MAX];
                                if (vgpu_fleet_key(k, sizeof(k), prefix, "sessions", it->claim->session,
                                                   NULL) < 0 ||
                                    !(session_keys[i] = strdup(k)))
                                        r = vgpu_error_set(err, -ENOMEM, "session key of claim %s",
                                                           it->claim->claim);
                                else
                                        ops[n_ops++] = (struct vgpu_etcd_op){ .kind = VGPU_ETCD_OP_DELETE,
                                                                              .key = session_keys[i] };
                        }
                }
        }
        if (r >= 0) {
                cmp[n_cmp++] = alloc_compare(alloc_key, present, amod);
                /* as the brokers' release does: the last claim gone, the key goes (the next claim makes it) */
                if (!any) {
                        if (present)
                                ops[n_ops++] = (struct vgpu_etcd_op){ .kind = VGPU_ETCD_OP_DELETE,
                                                                      .key = alloc_key };
                } else
                        ops[n_ops++] = (struct vgpu_etcd_op){ .kind = VGPU_ETCD_OP_PUT,
                                                              .key = alloc_key,
                                                              .value = alloc_text };
                for (size_t j = 0; j < n_quotas; j++) {
                        cmp[n_cmp++] = (struct vgpu_etcd_compare){ quotas[j].key, VGPU_ETCD_MOD,
                                                                   VGPU_ETCD_EQUAL, quotas[j].mod, NULL };
                        ops[n_ops++] = (struct vgpu_etcd_op){ .kind = VGPU_ETCD_OP_PUT,
                                                              .key = quotas[j].key,
                                                              .value = quotas[j].text };
                }
        }
        struct vgpu_etcd_txn_result res = {};
        if (r >= 0)
                r = vgpu_etcd_txn(e, cmp, n_cmp, ops, n_ops, NULL, 0, &res, err);
        bool ok = r >= 0 && res.succeeded;
        vgpu_etcd_txn_result_free(&res);
        for (size_t i = 0; texts && session_keys && i <= n; i++) {
                free(texts[i]);
                free(session_keys[i]);
        }
        free(texts);
        free(session_keys);
        for (size_t j = 0; quotas && j < n_quotas; j++)
                free(quotas[j].text);
        free(quotas);
        free(cmp);
        free(ops);
        if (r < 0)
                return r;
        return ok ? 1 : 0;
}
