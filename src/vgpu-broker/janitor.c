/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * janitor.c — the chores one broker does for all: expire PENDING claims past their deadline
 * (their host never realized them: the capacity comes back) and mark claims on dead hosts LOST
 * (capacity kept: the instance may still run there; the host's vgpud reconciles when it comes
 * back, or an admin releases them), and compact etcd's history.
 *
 * Who does the chores is elected with a lease-bound key created only if absent (a txn on
 * CREATE == 0). The election is for economy, never for correctness: every chore is a
 * compare-and-swap on the claim's mod_revision, so two brokers that both think they lead (a
 * lease that expired under a paused process) change each claim at most once.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "basic/macro.h"
#include "broker.h"

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct election {
        char key[VGPU_FLEET_KEY_MAX];
        char member[VGPU_FLEET_KEY_MAX]; /* brokers/members/<id>, bound to the same lease */
        bool member_put;
        int64_t lease;
        int64_t keepalive_due_ms;
};

/* Hold or try to take the janitor's key; true while this broker holds it. */
static bool elect(struct broker *b, struct vgpu_etcd *e, struct election *el) {
        struct vgpu_error err = {};
        int64_t now = now_ms();
        if (el->lease && now >= el->keepalive_due_ms) {
                int64_t ttl = 0;
                if (vgpu_etcd_lease_keepalive(e, el->lease, &ttl, &err) < 0 || ttl <= 0) {
                        if (atomic_load(&b->leader))
                                broker_log(LOG_INFO, "janitor: lost the lease (%s)",
                                           ttl <= 0 ? "expired" : err.message);
                        el->lease = 0;
                        el->member_put = false;
                        atomic_store(&b->leader, false);
                } else
                        el->keepalive_due_ms = now + b->cfg.election_ttl_s * 1000 / 3;
        }
        if (!el->lease) {
                if (vgpu_etcd_lease_grant(e, b->cfg.election_ttl_s, &el->lease, &err) < 0) {
                        el->lease = 0;
                        return false;
                }
                el->keepalive_due_ms = now + b->cfg.election_ttl_s * 1000 / 3;
        }
        /* every live broker says so: placement splits near-equal GPUs among them (api.c) */
        if (!el->member_put)
                el->member_put = vgpu_etcd_put(e, el->member, b->id, el->lease, NULL, &err) >= 0;
        if (atomic_load(&b->leader))
                return true;
        struct vgpu_etcd_compare cmp = { el->key, VGPU_ETCD_CREATE, VGPU_ETCD_EQUAL, 0 };
        struct vgpu_etcd_op put = { VGPU_ETCD_OP_PUT, el->key, b->id, el->lease };
        struct vgpu_etcd_txn_result tr = {};
        if (vgpu_etcd_txn(e, &cmp, 1, &put, 1, NULL, 0, &tr, &err) < 0)
                return false;
        bool won = tr.succeeded;
        vgpu_etcd_txn_result_free(&tr);
        if (won) {
                broker_log(LOG_INFO, "janitor: elected (%s)", b->id);
                atomic_store(&b->leader, true);
        }
        return won;
}

struct chore {
        char key[VGPU_FLEET_KEY_MAX];
        bool expire; /* else mark LOST */
};

/* Mark a claim LOST if it is still what was seen. */
static void mark_lost(struct broker *b, struct vgpu_etcd *e, const char *key) {
        struct vgpu_error err = {};
        struct vgpu_etcd_range rg = {};
        struct vgpu_fleet_claim c = {};
        if (vgpu_etcd_get(e, key, &rg, &err) < 0 || rg.n == 0 ||
            vgpu_fleet_claim_from_json(rg.kvs[0].value, &c, &err) < 0) {
                vgpu_etcd_range_free(&rg);
                return;
        }
        if (c.state == VGPU_FLEET_PENDING || c.state == VGPU_FLEET_BOUND) {
                _cleanup_free_ char *json = NULL;
                c.state = VGPU_FLEET_LOST;
                /* the host's key absent in etcd, not only in this broker's cache: a cache behind
                 * a host that just came back must not mark its claims LOST */
                char host_key[VGPU_FLEET_KEY_MAX];
                (void) vgpu_fleet_key(host_key, sizeof(host_key), b->prefix, "hosts", c.host, NULL);
                struct vgpu_etcd_compare cmp[2] = {
                        { key, VGPU_ETCD_MOD, VGPU_ETCD_EQUAL, rg.kvs[0].mod_revision },
                        { host_key, VGPU_ETCD_VERSION, VGPU_ETCD_EQUAL, 0 },
                };
                struct vgpu_etcd_txn_result tr = {};
                if (vgpu_fleet_claim_to_json(&c, &json, &err) >= 0) {
                        struct vgpu_etcd_op put = { VGPU_ETCD_OP_PUT, key, json };
                        if (vgpu_etcd_txn(e, cmp, 2, &put, 1, NULL, 0, &tr, &err) >= 0 && tr.succeeded) {
                                atomic_fetch_add(&b->lost, 1);
                                broker_log(LOG_INFO, "janitor: %s LOST (host %s is gone)", key, c.host);
                        }
                        vgpu_etcd_txn_result_free(&tr);
                }
        }
        vgpu_fleet_claim_free(&c);
        vgpu_etcd_range_free(&rg);
}

static void round_once(struct broker *b, struct vgpu_etcd *e) {
        struct chore *chores = NULL;
        size_t n = 0, cap = 0;
        char key[VGPU_FLEET_KEY_MAX];
        int64_t now = now_ms();
        pthread_rwlock_rdlock(&b->cache.lock);
        for (struct entry *x = NULL; (x = cache_next(&b->cache, KIND_CLAIM, x));) {
                const struct vgpu_fleet_claim *c = &x->u.claim;
                if (c->state != VGPU_FLEET_PENDING && c->state != VGPU_FLEET_BOUND)
                        continue;
                (void) vgpu_fleet_key(key, sizeof(key), b->prefix, "hosts", c->host, NULL);
                struct entry *h = cache_get(&b->cache, key);
                bool dead = !h || !h->valid; /* gone, or its tombstone */
                bool expire =
                        !dead && c->state == VGPU_FLEET_PENDING && c->deadline_ms && now > c->deadline_ms;
                if (!dead && !expire)
                        continue;
                if (n == cap) {
                        cap = cap ? 2 * cap : 16;
                        struct chore *nc = realloc(chores, cap * sizeof(*nc));
                        if (!nc)
                                break;
                        chores = nc;
                }
                snprintf(chores[n].key, sizeof(chores[n].key), "%s", x->key);
                chores[n++].expire = expire;
        }
        pthread_rwlock_unlock(&b->cache.lock);
        for (size_t i = 0; i < n && !b->stop; i++) {
                if (!chores[i].expire) {
                        mark_lost(b, e, chores[i].key);
                        continue;
                }
                enum vgpu_fleet_release_outcome o;
                struct vgpu_error err = {};
                /* only if still PENDING: a claim BOUND in between stays */
                if (vgpu_fleet_release_claim(e, b->prefix, chores[i].key, true, VGPU_FLEET_PENDING, &o,
                                             &err) >= 0 &&
                    o == VGPU_FLEET_RELEASE_DONE) {
                        atomic_fetch_add(&b->expired, 1);
                        broker_log(LOG_INFO, "janitor: %s expired (PENDING past its deadline)",
                                   chores[i].key);
                }
        }
        free(chores);
}

/*
 * etcd keeps every revision of every key until it is compacted, and the fleet writes a few keys
 * per placement: left alone, the store grows until etcd's space quota (2 GiB by default) raises
 * its NOSPACE alarm and every write is refused, placements and releases alike. So the janitor
 * compacts, as kube-apiserver does: every interval, to the revision its cache had reached one
 * interval before. A watcher that lags less than that resumes where it was; one that lags more
 * lists again (brokers and vgpud both do). A revision is the whole store's, not the fleet's
 * prefix's: for an etcd shared with others, or one that compacts itself
 * (--auto-compaction-retention), --compact-interval 0.
 */
struct compaction {
        int64_t due_ms;
        int64_t revision; /* the cache's, one interval ago: the next compaction's */
};

static void compact_once(struct broker *b, struct vgpu_etcd *e, struct compaction *c) {
        int64_t now = now_ms();
        if (b->cfg.compact_interval_s <= 0 || now < c->due_ms)
                return;
        c->due_ms = now + (int64_t) b->cfg.compact_interval_s * 1000;
        if (c->revision > 0) {
                struct vgpu_error err = {};
                int r = vgpu_etcd_compact(e, c->revision, &err);
                if (r >= 0) {
                        atomic_fetch_add(&b->compactions, 1);
                        broker_log(LOG_INFO, "janitor: compacted etcd's history up to revision %lld",
                                   (long long) c->revision);
                } else if (r != -ESTALE) /* -ESTALE: compacted that far already (etcd's own, another's) */
                        broker_log(LOG_WARN, "janitor: compacting etcd up to %lld: %s",
                                   (long long) c->revision, err.message);
        }
        pthread_rwlock_rdlock(&b->cache.lock);
        c->revision = b->cache.revision;
        pthread_rwlock_unlock(&b->cache.lock);
}

void *janitor_thread(void *userdata) {
        struct broker *b = userdata;
        struct vgpu_etcd *e = NULL;
        struct vgpu_error err = {};
        struct election el = {};
        struct compaction compaction = {};
        (void) vgpu_fleet_key(el.key, sizeof(el.key), b->prefix, "brokers", "janitor", NULL);
        (void) vgpu_fleet_key(el.member, sizeof(el.member), b->prefix, "brokers", "members", b->id, NULL);
        while (!b->stop) {
                /* at once when the cache is ready (the others count this broker from then on),
                 * then every interval */
                if (!atomic_load(&b->cache.ready)) {
                        usleep(20000);
                        continue;
                }
                if (e || vgpu_etcd_new(&b->etcd_cfg, &e, &err) >= 0)
                        if (elect(b, e, &el)) {
                                round_once(b, e);
                                compact_once(b, e, &compaction);
                        }
                for (int i = 0; i < b->cfg.janitor_interval_ms / 50 && !b->stop; i++)
                        usleep(50000);
        }
        /* the next broker takes over at once, and the others share the GPUs without this one */
        if (el.lease)
                (void) vgpu_etcd_lease_revoke(e, el.lease, &err);
        vgpu_etcd_free(e);
        return NULL;
}
