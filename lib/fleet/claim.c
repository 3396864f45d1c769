/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * claim.c — the two transactions that move capacity (doc/fleet.md, "Claim" and "Release").
 *
 * A claim is one etcd txn: the GPU's alloc/ key still at the mod_revision the broker placed
 * against (or absent), the GPU's lease-bound inventory key still there (its host is alive), the
 * session key absent (a retried request cannot claim twice); then alloc, claim, session (and the
 * tenant's usage) are written together. The failure branch reads the same keys, so the loser
 * learns what changed without another round trip. No lock anywhere: the compare is the lock.
 *
 * A release compares the claim's and the alloc's mod_revision, deletes claim and session and
 * writes the alloc without the claim, retrying (bounded) when another claim moved the alloc.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "fleet/fleet-internal.h"
#include "vgpu/etcd.h"

#define RELEASE_TRIES 16

_public_ void vgpu_fleet_claim_result_free(struct vgpu_fleet_claim_result *r) {
        if (!r)
                return;
        vgpu_fleet_alloc_free(&r->alloc);
        vgpu_fleet_session_free(&r->session);
        free(r->gpu_value);
        *r = (struct vgpu_fleet_claim_result){};
}

static const struct vgpu_etcd_kv *only(const struct vgpu_etcd_range *r) {
        return r && r->n > 0 ? &r->kvs[0] : NULL;
}

_public_ int vgpu_fleet_claim_txn(struct vgpu_etcd *e, const struct vgpu_fleet_claim_txn *t,
                                  struct vgpu_fleet_claim_result *ret, struct vgpu_error *err) {
        const struct vgpu_fleet_claim *c = t->claim;
        char alloc_key[VGPU_FLEET_KEY_MAX], gpu_key[VGPU_FLEET_KEY_MAX], claim_key[VGPU_FLEET_KEY_MAX],
                session_key[VGPU_FLEET_KEY_MAX], quota_key[VGPU_FLEET_KEY_MAX] = "";
        _cleanup_free_ char *alloc_json = NULL, *claim_json = NULL, *session_json = NULL, *quota_json = NULL;
        int r;

        if (vgpu_fleet_key(alloc_key, sizeof(alloc_key), t->prefix, "alloc", c->gpu, NULL) < 0 ||
            vgpu_fleet_key(gpu_key, sizeof(gpu_key), t->prefix, "gpus", c->host, c->gpu, NULL) < 0 ||
            vgpu_fleet_key(claim_key, sizeof(claim_key), t->prefix, "claims", c->host, c->claim, NULL) < 0 ||
            vgpu_fleet_key(session_key, sizeof(session_key), t->prefix, "sessions", c->session, NULL) < 0 ||
            (t->quota &&
             vgpu_fleet_key(quota_key, sizeof(quota_key), t->prefix, "quota", c->tenant, NULL) < 0))
                return vgpu_error_set(err, -ENAMETOOLONG, "claim %s: key too long", c->claim);
        if ((r = vgpu_fleet_alloc_to_json(t->alloc, &alloc_json, err)) < 0 ||
            (r = vgpu_fleet_claim_to_json(c, &claim_json, err)) < 0 ||
            (r = vgpu_fleet_session_to_json(t->session, &session_json, err)) < 0 ||
            (t->quota && (r = vgpu_fleet_quota_to_json(t->quota, &quota_json, err)) < 0))
                return r;

        struct vgpu_etcd_compare cmp[4] = {
                t->alloc_mod_revision > 0
                        ? (struct vgpu_etcd_compare){ alloc_key, VGPU_ETCD_MOD, VGPU_ETCD_EQUAL,
                                                      t->alloc_mod_revision }
                        : (struct vgpu_etcd_compare){ alloc_key, VGPU_ETCD_CREATE, VGPU_ETCD_EQUAL, 0 },
                t->gpu_create_revision > 0
                        ? (struct vgpu_etcd_compare){ gpu_key, VGPU_ETCD_CREATE, VGPU_ETCD_EQUAL,
                                                      t->gpu_create_revision }
                        : (struct vgpu_etcd_compare){ gpu_key, VGPU_ETCD_VERSION, VGPU_ETCD_GREATER, 0 },
                { session_key, VGPU_ETCD_CREATE, VGPU_ETCD_EQUAL, 0 },
                { quota_key, VGPU_ETCD_MOD, VGPU_ETCD_EQUAL, t->quota_mod_revision },
        };
        struct vgpu_etcd_op success[4] = {
                { VGPU_ETCD_OP_PUT, alloc_key, alloc_json },
                { VGPU_ETCD_OP_PUT, claim_key, claim_json },
                { VGPU_ETCD_OP_PUT, session_key, session_json },
                { VGPU_ETCD_OP_PUT, quota_key, quota_json },
        };
        struct vgpu_etcd_op failure[4] = {
                { VGPU_ETCD_OP_RANGE, alloc_key },
                { VGPU_ETCD_OP_RANGE, gpu_key },
                { VGPU_ETCD_OP_RANGE, session_key },
                { VGPU_ETCD_OP_RANGE, quota_key },
        };
        size_t n = t->quota ? 4 : 3;
        struct vgpu_etcd_txn_result tr = {};
        r = vgpu_etcd_txn(e, cmp, n, success, n, failure, n, &tr, err);
        if (r < 0)
                return r;

        struct vgpu_fleet_claim_result res = { .revision = tr.revision };
        if (tr.succeeded) {
                res.outcome = VGPU_FLEET_CLAIMED;
                res.alloc_mod_revision = tr.revision;
                res.quota_mod_revision = t->quota ? tr.revision : 0;
                vgpu_etcd_txn_result_free(&tr);
                *ret = res;
                return 0;
        }
        if (tr.n_ranges < n) {
                vgpu_etcd_txn_result_free(&tr);
                return vgpu_error_set(err, -EPROTO, "claim %s: the failed txn returned %zu of %zu ranges",
                                      c->claim, tr.n_ranges, n);
        }
        const struct vgpu_etcd_kv *a = only(&tr.ranges[0]), *g = only(&tr.ranges[1]),
                                  *s = only(&tr.ranges[2]), *q = t->quota ? only(&tr.ranges[3]) : NULL;
        if (s) {
                res.outcome = VGPU_FLEET_SESSION_EXISTS;
                r = vgpu_fleet_session_from_json(s->value, &res.session, err);
        } else if (!g)
                res.outcome = VGPU_FLEET_HOST_GONE;
        else if (t->gpu_create_revision > 0 && g->create_revision != t->gpu_create_revision) {
                res.outcome = VGPU_FLEET_HOST_CHANGED;
                res.gpu_mod_revision = g->mod_revision;
                res.gpu_create_revision = g->create_revision;
                res.gpu_lease = g->lease;
                if (!(res.gpu_value = strdup(g->value ? g->value : "")))
                        r = vgpu_error_set(err, -ENOMEM, "out of memory");
        } else if ((a ? a->mod_revision : 0) != t->alloc_mod_revision || !t->quota ||
                   (q ? q->mod_revision : 0) == t->quota_mod_revision) {
                res.outcome = VGPU_FLEET_ALLOC_CHANGED;
                res.alloc_mod_revision = a ? a->mod_revision : 0;
                if (a)
                        r = vgpu_fleet_alloc_from_json(a->value, &res.alloc, err);
        } else {
                res.outcome = VGPU_FLEET_QUOTA_CHANGED;
                res.quota_mod_revision = q ? q->mod_revision : 0;
                if (q)
                        r = vgpu_fleet_quota_from_json(q->value, &res.quota, err);
        }
        vgpu_etcd_txn_result_free(&tr);
        if (r < 0) {
                vgpu_fleet_claim_result_free(&res);
                return r;
        }
        *ret = res;
        return 0;
}

/* ---- release ---- */

/* The key's value decoded with from_json into out, its mod_revision; 0 when absent, 1 when read. */
static int read_key(struct vgpu_etcd *e, const char *key, char **ret_value, int64_t *ret_mod,
                    struct vgpu_error *err) {
        struct vgpu_etcd_range rg = {};
        int r = vgpu_etcd_get(e, key, &rg, err);
        if (r < 0)
                return r;
        const struct vgpu_etcd_kv *kv = only(&rg);
        if (!kv) {
                vgpu_etcd_range_free(&rg);
                *ret_value = NULL;
                *ret_mod = 0;
                return 0;
        }
        *ret_mod = kv->mod_revision;
        *ret_value = TAKE_PTR(rg.kvs[0].value);
        vgpu_etcd_range_free(&rg);
        return *ret_value ? 1 : vgpu_error_set(err, -ENOMEM, "out of memory");
}

/* One try: 1 done, 0 lost a race (try again), -errno. */
static int release_try(struct vgpu_etcd *e, const char *prefix, const char *claim_key, bool finish,
                       int expect_state, enum vgpu_fleet_release_outcome *ret, struct vgpu_error *err) {
        _cleanup_free_ char *claim_json = NULL, *alloc_json = NULL, *quota_json = NULL, *new_alloc = NULL,
                            *new_claim = NULL, *new_quota = NULL;
        int64_t claim_mod, alloc_mod = 0, quota_mod = 0;
        struct vgpu_fleet_claim c = {};
        struct vgpu_fleet_alloc a = {}, after = {};
        char alloc_key[VGPU_FLEET_KEY_MAX], session_key[VGPU_FLEET_KEY_MAX], quota_key[VGPU_FLEET_KEY_MAX];
        int r = read_key(e, claim_key, &claim_json, &claim_mod, err);
        if (r <= 0) {
                if (r == 0)
                        *ret = VGPU_FLEET_RELEASE_ABSENT;
                return r < 0 ? r : 1;
        }
        if ((r = vgpu_fleet_claim_from_json(claim_json, &c, err)) < 0)
                return r;
        if (expect_state >= 0 && (int) c.state != expect_state) {
                r = vgpu_error_set(err, -ESTALE, "%s: %s now, not %s", claim_key,
                                   vgpu_fleet_state_to_string(c.state),
                                   vgpu_fleet_state_to_string(expect_state));
                goto out;
        }
        struct vgpu_etcd_txn_result tr = {};
        if (!finish &&
            (c.state == VGPU_FLEET_BOUND || c.state == VGPU_FLEET_LOST || c.state == VGPU_FLEET_RELEASING)) {
                /* realized on the host: it tears the instance down, then finishes the release */
                *ret = VGPU_FLEET_RELEASE_MARKED;
                if (c.state == VGPU_FLEET_RELEASING) {
                        r = 1;
                        goto out;
                }
                c.state = VGPU_FLEET_RELEASING;
                if ((r = vgpu_fleet_claim_to_json(&c, &new_claim, err)) < 0)
                        goto out;
                struct vgpu_etcd_compare cmp = { claim_key, VGPU_ETCD_MOD, VGPU_ETCD_EQUAL, claim_mod };
                struct vgpu_etcd_op put = { VGPU_ETCD_OP_PUT, claim_key, new_claim };
                if ((r = vgpu_etcd_txn(e, &cmp, 1, &put, 1, NULL, 0, &tr, err)) >= 0)
                        r = tr.succeeded ? 1 : 0;
                vgpu_etcd_txn_result_free(&tr);
                goto out;
        }

        if (vgpu_fleet_key(alloc_key, sizeof(alloc_key), prefix, "alloc", c.gpu, NULL) < 0 ||
            vgpu_fleet_key(session_key, sizeof(session_key), prefix, "sessions", strempty(c.session), NULL) <
                    0 ||
            vgpu_fleet_key(quota_key, sizeof(quota_key), prefix, "quota", strempty(c.tenant), NULL) < 0) {
                r = vgpu_error_set(err, -ENAMETOOLONG, "%s: key too long", claim_key);
                goto out;
        }
        if ((r = read_key(e, alloc_key, &alloc_json, &alloc_mod, err)) < 0 ||
            (alloc_json && (r = vgpu_fleet_alloc_from_json(alloc_json, &a, err)) < 0) ||
            (r = vgpu_fleet_alloc_apply(alloc_json ? &a : NULL, &c, -1, &after, err)) < 0 ||
            (r = vgpu_fleet_alloc_to_json(&after, &new_alloc, err)) < 0)
                goto out;
        if (c.tenant && (r = read_key(e, quota_key, &quota_json, &quota_mod, err)) < 0)
                goto out;
        if (quota_json) {
                struct vgpu_fleet_quota q;
                if ((r = vgpu_fleet_quota_from_json(quota_json, &q, err)) < 0)
                        goto out;
                q.vram_bytes = q.vram_bytes > c.vram_bytes ? q.vram_bytes - c.vram_bytes : 0;
                q.sessions = q.sessions > 0 ? q.sessions - 1 : 0;
                if ((r = vgpu_fleet_quota_to_json(&q, &new_quota, err)) < 0)
                        goto out;
        }
        struct vgpu_etcd_compare cmp[3] = {
                { claim_key, VGPU_ETCD_MOD, VGPU_ETCD_EQUAL, claim_mod },
                { alloc_key, VGPU_ETCD_MOD, VGPU_ETCD_EQUAL, alloc_mod },
                { quota_key, VGPU_ETCD_MOD, VGPU_ETCD_EQUAL, quota_mod },
        };
        struct vgpu_etcd_op ops[4] = {
                { VGPU_ETCD_OP_DELETE, claim_key },
                { VGPU_ETCD_OP_DELETE, session_key },
                /* the last claim gone: the key goes too (the next claim creates it) */
                after.n_claims == 0 ? (struct vgpu_etcd_op){ VGPU_ETCD_OP_DELETE, alloc_key }
                                    : (struct vgpu_etcd_op){ VGPU_ETCD_OP_PUT, alloc_key, new_alloc },
                { VGPU_ETCD_OP_PUT, quota_key, new_quota },
        };
        size_t n_ops = c.session ? 4 : 3, n_cmp = quota_json ? 3 : 2;
        if (!c.session) /* no session to delete: shift the rest down */
                ops[1] = ops[2], ops[2] = ops[3];
        if (!quota_json)
                n_ops--;
        if ((r = vgpu_etcd_txn(e, cmp, n_cmp, ops, n_ops, NULL, 0, &tr, err)) >= 0)
                r = tr.succeeded ? 1 : 0;
        vgpu_etcd_txn_result_free(&tr);
        if (r > 0)
                *ret = VGPU_FLEET_RELEASE_DONE;
out:
        vgpu_fleet_claim_free(&c);
        vgpu_fleet_alloc_free(&a);
        vgpu_fleet_alloc_free(&after);
        return r;
}

_public_ int vgpu_fleet_release_claim(struct vgpu_etcd *e, const char *prefix, const char *claim_key,
                                      bool finish, int expect_state, enum vgpu_fleet_release_outcome *ret,
                                      struct vgpu_error *err) {
        /* "claims/<host>/<id>" relative to the prefix is taken too (sessions/ written by hand) */
        char full[VGPU_FLEET_KEY_MAX];
        if (claim_key && claim_key[0] != '/') {
                if (vgpu_fleet_key(full, sizeof(full), prefix, claim_key, NULL) < 0)
                        return vgpu_error_set(err, -ENAMETOOLONG, "%s: key too long", claim_key);
                claim_key = full;
        }
        for (int i = 0; i < RELEASE_TRIES; i++) {
                int r = release_try(e, prefix, claim_key, finish, expect_state, ret, err);
                if (r != 0)
                        return r < 0 ? r : 0;
        }
        return vgpu_error_set(err, -EBUSY, "%s: still changing after %d tries", claim_key, RELEASE_TRIES);
}

_public_ int vgpu_fleet_release(struct vgpu_etcd *e, const char *prefix, const char *session, bool finish,
                                enum vgpu_fleet_release_outcome *ret, struct vgpu_error *err) {
        char key[VGPU_FLEET_KEY_MAX];
        _cleanup_free_ char *json = NULL;
        int64_t mod;
        if (!vgpu_fleet_name_is_valid(session))
                return vgpu_error_set(err, -EINVAL, "session \"%s\": not a session id", strempty(session));
        if (vgpu_fleet_key(key, sizeof(key), prefix, "sessions", session, NULL) < 0)
                return vgpu_error_set(err, -ENAMETOOLONG, "session %s: key too long", session);
        int r = read_key(e, key, &json, &mod, err);
        if (r < 0)
                return r;
        if (r == 0) {
                *ret = VGPU_FLEET_RELEASE_ABSENT;
                return 0;
        }
        struct vgpu_fleet_session s;
        if ((r = vgpu_fleet_session_from_json(json, &s, err)) < 0)
                return r;
        enum vgpu_fleet_release_outcome o;
        r = vgpu_fleet_release_claim(e, prefix, s.claim_key, finish, -1, &o, err);
        if (r >= 0 && o == VGPU_FLEET_RELEASE_ABSENT) {
                /* a session whose claim is gone (finished by a host in between): drop it */
                struct vgpu_etcd_compare cmp = { key, VGPU_ETCD_MOD, VGPU_ETCD_EQUAL, mod };
                struct vgpu_etcd_op del = { VGPU_ETCD_OP_DELETE, key };
                struct vgpu_etcd_txn_result tr = {};
                r = vgpu_etcd_txn(e, &cmp, 1, &del, 1, NULL, 0, &tr, err);
                vgpu_etcd_txn_result_free(&tr);
        }
        vgpu_fleet_session_free(&s);
        if (r < 0)
                return r;
        *ret = o;
        return 0;
}
