/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fleet.c — vgpud's membership in the fleet: the lease keeper thread, the worker thread's loop
 * (publish, list, watch), and the inventory the event loop hands over after each poll.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "vgpu/root.h"
#include "vgpu/error.h"
#include "fleet.h"
#include "log.h"
#include "vgpud.h"

static int64_t wall_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void gpus_free(struct fleet_gpu *g, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(g[i].id);
                free(g[i].bdf);
                free(g[i].json);
                free(g[i].signature);
        }
        free(g);
}

static int gpus_copy(const struct fleet_gpu *g, size_t n, struct fleet_gpu **ret) {
        struct fleet_gpu *c = calloc(n ? n : 1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (!(c[i].id = strdup(g[i].id)) || !(c[i].bdf = strdup(g[i].bdf)) ||
                    !(c[i].json = strdup(g[i].json)) || !(c[i].signature = strdup(g[i].signature))) {
                        gpus_free(c, n);
                        return -ENOMEM;
                }
        *ret = c;
        return 0;
}

/* Sleep up to ms, or until stopping (cond signalled). Called with lock held. */
static void wait_locked(struct fleet *f, long ms) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += ms / 1000;
        ts.tv_nsec += (ms % 1000) * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&f->cond, &f->lock, &ts);
}

static struct vgpu_etcd *client(struct fleet *f) {
        struct vgpu_etcd_config c = {
                .endpoints = (const char *const *) f->endpoints,
                .ca_file = f->ca,
                .cert_file = f->cert,
                .key_file = f->key,
                .user = f->user,
                .password = f->password,
                /* a request must end well within the TTL, or a slow member costs the lease */
                .timeout_ms = f->ttl_s * 1000 / 3 < 2000 ? f->ttl_s * 1000 / 3 : 2000,
        };
        struct vgpu_etcd *e = NULL;
        struct vgpu_error err = {};
        if (vgpu_etcd_new(&c, &e, &err) < 0)
                log_error("fleet: %s", err.message);
        return e;
}

/* ---- the lease keeper ---- */

#define WATCH_MAX_S 10

static int64_t watch_max_ms(const struct fleet *f) {
        return (int64_t) (3 * f->ttl_s > WATCH_MAX_S ? 3 * f->ttl_s : WATCH_MAX_S) * 1000;
}

static void *keeper_main(void *p) {
        struct fleet *f = p;
        struct vgpu_etcd *e = client(f);
        int64_t lease = 0;
        bool warned = false;
        pthread_mutex_lock(&f->lock);
        while (e && !f->stopping) {
                pthread_mutex_unlock(&f->lock);
                struct vgpu_error err = {};
                int r;
                if (lease == 0) {
                        int64_t id = 0;
                        r = vgpu_etcd_lease_grant(e, f->ttl_s, &id, &err);
                        if (r >= 0) {
                                log_info("fleet: joined as %s with lease %" PRId64 " (TTL %d s)", f->host, id,
                                         f->ttl_s);
                                lease = id;
                                pthread_mutex_lock(&f->lock);
                                f->lease = id;
                                f->lease_gen++;
                                f->interrupt_watch = 1;
                                pthread_cond_broadcast(&f->cond);
                                pthread_mutex_unlock(&f->lock);
                        }
                } else {
                        int64_t ttl = -1;
                        r = vgpu_etcd_lease_keepalive(e, lease, &ttl, &err);
                        if (r >= 0 && ttl == 0) {
                                /* gone (we were stopped or cut off longer than the TTL): our keys with it */
                                log_warning("fleet: lease %" PRId64 " expired; joining again", lease);
                                lease = 0;
                                pthread_mutex_lock(&f->lock);
                                f->lease = 0;
                                f->interrupt_watch = 1;
                                pthread_mutex_unlock(&f->lock);
                                pthread_mutex_lock(&f->lock);
                                continue; /* grant at once */
                        }
                }
                if (r < 0 && !warned)
                        log_warning("fleet: %s", err.message);
                warned = r < 0;
                pthread_mutex_lock(&f->lock);
                /* a member that hangs (stopped, cut off without a reset) sends nothing and no error:
                 * no watch lives longer than WATCH_MAX_S on one member */
                if (f->watch_since_ms && wall_ms() - f->watch_since_ms > watch_max_ms(f)) {
                        f->watch_recycle = true;
                        f->interrupt_watch = 1;
                }
                long ms = r < 0 ? 500 : f->ttl_s * 1000 / 3;
                /* a failed teardown's next try: the worker is in its watch, which ends on this */
                int64_t now = fleet_now_ms();
                if (f->retry_at_ms && now >= f->retry_at_ms) {
                        f->retry_at_ms = 0;
                        f->retry_due = true;
                        f->interrupt_watch = 1;
                } else if (f->retry_at_ms && f->retry_at_ms - now < ms)
                        ms = (long) (f->retry_at_ms - now);
                if (!f->stopping)
                        wait_locked(f, ms);
        }
        pthread_mutex_unlock(&f->lock);
        /* leaving on purpose: our keys go now, not a TTL later */
        if (e && lease) {
                struct vgpu_error err = {};
                if (vgpu_etcd_lease_revoke(e, lease, &err) < 0)
                        log_debug("fleet: revoking the lease: %s", err.message);
        }
        vgpu_etcd_free(e);
        return NULL;
}

/* ---- the worker ---- */

static int publish_host(struct fleet_worker *w) {
        struct fleet *f = w->f;
        struct vgpu_fleet_host h = {
                .host = f->host,
                .address = f->address ? f->address : (char *) "",
                .boot_id = f->boot_id,
                .version = (char *) vgpu_version(),
                .lease = w->lease,
                .started_ms = f->started_ms,
        };
        _cleanup_free_ char *text = NULL;
        char key[VGPU_FLEET_KEY_MAX];
        struct vgpu_error err = {};
        int r = vgpu_fleet_host_to_json(&h, &text, &err);
        if (r >= 0 && vgpu_fleet_key(key, sizeof(key), f->prefix, "hosts", f->host, NULL) < 0)
                r = vgpu_error_set(&err, -ENAMETOOLONG, "key too long");
        if (r >= 0)
                r = vgpu_etcd_put(w->etcd, key, text, w->lease, NULL, &err);
        if (r < 0)
                log_warning("fleet: publishing hosts/%s: %s", f->host, err.message);
        return r;
}

static const struct fleet_gpu *find_gpu(const struct fleet_gpu *g, size_t n, const char *id) {
        for (size_t i = 0; i < n; i++)
                if (streq(g[i].id, id))
                        return &g[i];
        return NULL;
}

/* Put each GPU whose value changed since old (all when old is NULL); delete those gone. */
static int publish_gpus(struct fleet_worker *w, const struct fleet_gpu *old, size_t n_old) {
        struct fleet *f = w->f;
        struct vgpu_error err = {};
        char key[VGPU_FLEET_KEY_MAX];
        for (size_t i = 0; i < w->n_gpus; i++) {
                const struct fleet_gpu *o = old ? find_gpu(old, n_old, w->gpus[i].id) : NULL;
                if (o && streq(o->signature, w->gpus[i].signature))
                        continue;
                if (vgpu_fleet_key(key, sizeof(key), f->prefix, "gpus", f->host, w->gpus[i].id, NULL) < 0)
                        continue;
                if (vgpu_etcd_put(w->etcd, key, w->gpus[i].json, w->lease, NULL, &err) < 0) {
                        log_warning("fleet: publishing gpus/%s/%s: %s", f->host, w->gpus[i].id, err.message);
                        return err.code;
                }
        }
        for (size_t i = 0; old && i < n_old; i++) {
                if (find_gpu(w->gpus, w->n_gpus, old[i].id))
                        continue;
                if (vgpu_fleet_key(key, sizeof(key), f->prefix, "gpus", f->host, old[i].id, NULL) >= 0 &&
                    vgpu_etcd_delete(w->etcd, key, false, NULL, &err) < 0) {
                        log_warning("fleet: removing gpus/%s/%s: %s", f->host, old[i].id, err.message);
                        return err.code;
                }
        }
        return 0;
}

struct watch_ctx {
        struct fleet_worker *w;
        int64_t *last;
};

/* The event loop polls again at once: the inventory shows the new carve-up now, not at the
 * next poll-interval. */
static void wake_event_loop(struct fleet_worker *w) {
        if (!w->changed_host)
                return;
        w->changed_host = false;
        uint64_t one = 1;
        if (write(w->f->wake_fd, &one, sizeof(one)) < 0)
                log_debug("fleet: waking the event loop: %m");
}

static int on_wake(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        struct vgpud *d = userdata;
        uint64_t n;
        (void) s;
        (void) revents;
        if (read(fd, &n, sizeof(n)) == sizeof(n))
                collect_soon(d, 0);
        return 0;
}

static int on_claims(const struct vgpu_etcd_event *ev, size_t n, int64_t revision, void *userdata) {
        struct watch_ctx *c = userdata;
        for (size_t i = 0; i < n; i++)
                fleet_claim_event(c->w, &ev[i].kv, ev[i].deleted, ev[i].prev.key ? &ev[i].prev : NULL);
        *c->last = revision;
        wake_event_loop(c->w);
        return c->w->relist ? 1 : 0; /* a write failed: end the watch, list again */
}

static void *worker_main(void *p) {
        struct fleet *f = p;
        struct fleet_worker w = { .f = f, .etcd = client(f) };
        uint64_t published_gen = 0, published_inventory = 0;
        bool need_list = true, need_reconcile = false, host_published = false;
        int64_t last = 0;
        if (vgpu_fleet_key(w.claims_prefix, sizeof(w.claims_prefix), f->prefix, "claims", f->host, "", NULL) <
            0)
                w.etcd = (vgpu_etcd_free(w.etcd), NULL);
        if (w.etcd && fleet_vfs_load(&w) < 0)
                log_warning("fleet: the VFs of unreported claims (/run/vgpuctl/fleet-vfs) could not be read");

        pthread_mutex_lock(&f->lock);
        while (w.etcd && !f->stopping) {
                if (f->lease == 0) {
                        wait_locked(f, 200);
                        continue;
                }
                f->interrupt_watch = 0;
                if (f->retry_due) {
                        /* a failed teardown is due (the keeper ended the watch): the reconcile
                         * tries it again, a claim of an older lease too, which the watch's path
                         * leaves alone */
                        f->retry_due = false;
                        need_list = need_reconcile = true;
                }
                int64_t lease = f->lease;
                uint64_t gen = f->lease_gen, inv = f->inventory_gen;
                struct fleet_gpu *old = w.gpus;
                size_t n_old = w.n_gpus;
                bool new_inventory = inv != published_inventory;
                if (new_inventory) {
                        struct fleet_gpu *copy = NULL;
                        if (gpus_copy(f->gpus, f->n_gpus, &copy) < 0) {
                                wait_locked(f, 500);
                                continue;
                        }
                        w.gpus = copy;
                        w.n_gpus = f->n_gpus;
                }
                pthread_mutex_unlock(&f->lock);

                int r = 0;
                if (gen != published_gen) {
                        /* a new lease: everything again, bound to it, then the claims decided again */
                        w.lease = lease;
                        host_published = false;
                        r = publish_host(&w);
                        if (r >= 0)
                                r = publish_gpus(&w, NULL, 0);
                        if (r >= 0) {
                                host_published = true;
                                published_gen = gen;
                                published_inventory = inv;
                                need_reconcile = need_list = true;
                        }
                } else if (new_inventory) {
                        r = publish_gpus(&w, old, n_old);
                        if (r >= 0)
                                published_inventory = inv;
                }
                if (new_inventory)
                        gpus_free(old, n_old);
                if (r < 0 && new_inventory) {
                        /* publish all of it next time */
                        published_inventory = 0;
                }

                if (r >= 0 && host_published && need_list) {
                        struct vgpu_etcd_range claims = {};
                        struct vgpu_error err = {};
                        r = vgpu_etcd_range_prefix(w.etcd, w.claims_prefix, 0, 0, &claims, &err);
                        if (r < 0)
                                log_warning("fleet: listing claims: %s", err.message);
                        else if (need_reconcile) {
                                r = fleet_reconcile(&w, &claims);
                                if (r >= 0)
                                        need_reconcile = false;
                        } else
                                for (size_t i = 0; i < claims.n; i++)
                                        fleet_claim_event(&w, &claims.kvs[i], false, NULL);
                        if (r >= 0)
                                (void) fleet_sweep(&w, &claims);
                        wake_event_loop(&w);
                        if (r >= 0 && w.relist)
                                r = -EAGAIN; /* a write failed: list again after the pause */
                        else if (r >= 0) {
                                last = claims.revision;
                                need_list = false;
                        }
                        w.relist = false;
                        vgpu_etcd_range_free(&claims);
                }
                if (r >= 0 && !need_list) {
                        struct watch_ctx ctx = { &w, &last };
                        int64_t compact = 0;
                        struct vgpu_error err = {};
                        pthread_mutex_lock(&f->lock);
                        f->watch_since_ms = wall_ms();
                        pthread_mutex_unlock(&f->lock);
                        r = vgpu_etcd_watch(w.etcd, w.claims_prefix, last + 1, on_claims, &ctx,
                                            &f->interrupt_watch, &compact, &err);
                        pthread_mutex_lock(&f->lock);
                        f->watch_since_ms = 0;
                        bool recycle = f->watch_recycle;
                        f->watch_recycle = false;
                        pthread_mutex_unlock(&f->lock);
                        if (recycle)
                                vgpu_etcd_next_endpoint(w.etcd);
                        if (w.relist) {
                                /* a report or a release failed (unknown outcome): the watch will not
                                 * bring that claim again, so list and decide every claim again */
                                w.relist = false;
                                need_list = true;
                                r = -EAGAIN;
                        } else if (r == -ESTALE)
                                need_list = true; /* the history we missed is gone: the state instead */
                        else if (r < 0)
                                log_debug("fleet: watch of claims: %s", err.message);
                }
                pthread_mutex_lock(&f->lock);
                if (r < 0 && r != -ESTALE && !f->stopping)
                        wait_locked(f, 300);
        }
        pthread_mutex_unlock(&f->lock);
        gpus_free(w.gpus, w.n_gpus);
        free(w.retries);
        free(w.vfs);
        vgpu_etcd_free(w.etcd);
        return NULL;
}

/* ---- start, stop ---- */

static int dup_path(const char *path, char **ret) {
        *ret = NULL;
        if (!path)
                return 0;
        char full[4096];
        if (vgpu_root_path(full, sizeof(full), path) < 0)
                return -ENAMETOOLONG;
        return (*ret = strdup(full)) ? 0 : -ENOMEM;
}

static void fleet_free(struct fleet *f) {
        if (!f)
                return;
        for (char **p = f->endpoints; p && *p; p++)
                free(*p);
        free(f->endpoints);
        free(f->ca);
        free(f->cert);
        free(f->key);
        free(f->user);
        if (f->password)
                explicit_bzero(f->password, strlen(f->password));
        free(f->password);
        free(f->address);
        gpus_free(f->gpus, f->n_gpus);
        sd_event_source_unref(f->wake_source);
        if (f->wake_fd >= 0)
                close(f->wake_fd);
        pthread_mutex_destroy(&f->lock);
        pthread_cond_destroy(&f->cond);
        free(f);
}

int fleet_start(struct vgpud *d) {
        const struct vgpud_fleet_config *c = &d->config->fleet;
        if (!c->endpoints)
                return 0;
        struct fleet *f = calloc(1, sizeof(*f));
        if (!f)
                return -ENOMEM;
        pthread_mutex_init(&f->lock, NULL);
        pthread_cond_init(&f->cond, NULL);
        f->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        size_t n = 0;
        while (c->endpoints[n])
                n++;
        int r = (f->endpoints = calloc(n + 1, sizeof(char *))) ? 0 : -ENOMEM;
        for (size_t i = 0; r >= 0 && i < n; i++)
                if (!(f->endpoints[i] = strdup(c->endpoints[i])))
                        r = -ENOMEM;
        if (r >= 0)
                r = dup_path(c->ca, &f->ca);
        if (r >= 0)
                r = dup_path(c->cert, &f->cert);
        if (r >= 0)
                r = dup_path(c->key, &f->key);
        if (r >= 0 && ((c->user && !(f->user = strdup(c->user))) ||
                       (c->password && !(f->password = strdup(c->password))) ||
                       (c->address && !(f->address = strdup(c->address)))))
                r = -ENOMEM;
        if (r >= 0 && c->host)
                snprintf(f->host, sizeof(f->host), "%s", c->host);
        else if (r >= 0 && gethostname(f->host, sizeof(f->host) - 1) < 0)
                r = -errno;
        if (r >= 0 && f->wake_fd < 0)
                r = -errno;
        if (r >= 0)
                r = sd_event_add_io(d->event, &f->wake_source, f->wake_fd, EPOLLIN, on_wake, d);
        if (r >= 0 &&
            vgpu_fleet_prefix(c->cluster ? c->cluster : "default", f->prefix, sizeof(f->prefix)) < 0)
                r = -EINVAL;
        if (r >= 0 && !vgpu_fleet_name_is_valid(f->host)) {
                log_error("fleet: the hostname '%s' is no fleet name: set [fleet] host", f->host);
                r = -EINVAL;
        }
        if (r < 0) {
                fleet_free(f);
                return r;
        }
        f->ttl_s = c->lease_ttl_s;
        f->started_ms = wall_ms();
        FILE *b = fopen("/proc/sys/kernel/random/boot_id", "re");
        if (!b || !fgets(f->boot_id, sizeof(f->boot_id), b))
                snprintf(f->boot_id, sizeof(f->boot_id), "unknown");
        if (b)
                fclose(b);
        f->boot_id[strcspn(f->boot_id, "\n")] = '\0';
        d->fleet = f;
        fleet_update_inventory(d);
        if ((r = -pthread_create(&f->keeper, NULL, keeper_main, f)) < 0)
                return r;
        f->keeper_started = true;
        if ((r = -pthread_create(&f->worker, NULL, worker_main, f)) < 0)
                return r;
        f->worker_started = true;
        log_info("fleet: host %s in %s via %s%s", f->host, f->prefix, f->endpoints[0], n > 1 ? ", ..." : "");
        return 0;
}

void fleet_stop(struct vgpud *d) {
        struct fleet *f = d->fleet;
        if (!f)
                return;
        pthread_mutex_lock(&f->lock);
        f->stopping = 1;
        f->interrupt_watch = 1;
        pthread_cond_broadcast(&f->cond);
        pthread_mutex_unlock(&f->lock);
        if (f->worker_started)
                pthread_join(f->worker, NULL);
        if (f->keeper_started)
                pthread_join(f->keeper, NULL);
        fleet_free(f);
        d->fleet = NULL;
}
