/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * events.c — the fleet's recent events for the dashboard (GET /v1/events): what the broker's
 * watch saw change, said in words. The watch has prev_kv on, so a change is told from the old
 * and new value of one key (a host that joins has no previous value; a claim whose state moved
 * has both), without asking the cache. Kept in memory only, a ring of the last EVENTS_MAX: a
 * restarted broker starts empty, as the "recent events" allows; etcd keeps the truth.
 */
#include <json-c/json.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api-util.h"
#include "dashboard.h"

struct event {
        int64_t time_ms, revision;
        char host[128];
        char kind[16];
        char text[320];
};

static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static struct event ring[EVENTS_MAX];
static size_t ring_next, ring_count;

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void add(const char *kind, const char *host, int64_t revision, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
static void add(const char *kind, const char *host, int64_t revision, const char *fmt, ...) {
        struct event e = { .time_ms = now_ms(), .revision = revision };
        snprintf(e.host, sizeof(e.host), "%s", host ? host : "");
        snprintf(e.kind, sizeof(e.kind), "%s", kind);
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e.text, sizeof(e.text), fmt, ap);
        va_end(ap);
        pthread_mutex_lock(&ring_lock);
        ring[ring_next] = e;
        ring_next = (ring_next + 1) % EVENTS_MAX;
        if (ring_count < EVENTS_MAX)
                ring_count++;
        pthread_mutex_unlock(&ring_lock);
}

/* "<dir>/<a>[/<b>]" past the prefix: the dir's length and a pointer to <a>, or NULL */
static const char *past(const struct broker *b, const char *key, const char *dir) {
        size_t pl = strlen(b->prefix), dl = strlen(dir);
        if (!key || strncmp(key, b->prefix, pl) != 0 || strncmp(key + pl, dir, dl) != 0)
                return NULL;
        return key + pl + dl;
}

static void host_event(const struct vgpu_etcd_event *ev, const char *name, int64_t rev) {
        struct vgpu_fleet_host now = {}, before = {};
        struct vgpu_error err = {};
        bool has_prev = ev->prev.key && vgpu_fleet_host_from_json(ev->prev.value, &before, &err) >= 0;
        if (ev->deleted)
                add("host", name, rev, "host %s left (its lease ended)", name);
        else if (vgpu_fleet_host_from_json(ev->kv.value, &now, &err) >= 0) {
                if (!has_prev)
                        add("host", name, rev, "host %s joined (address %s, version %s)", name,
                            now.address ?: "?", now.version ?: "?");
                else if (before.lease != now.lease)
                        add("host", name, rev, "host %s rejoined with a new lease", name);
        }
        vgpu_fleet_host_free(&now);
        vgpu_fleet_host_free(&before);
}

static void gpu_event(const struct vgpu_etcd_event *ev, int64_t rev) {
        struct vgpu_fleet_gpu now = {}, before = {};
        struct vgpu_error err = {};
        /* only health changes: temperature and VRAM move all the time, the tables show them */
        if (!ev->deleted && ev->prev.key && vgpu_fleet_gpu_from_json(ev->prev.value, &before, &err) >= 0 &&
            vgpu_fleet_gpu_from_json(ev->kv.value, &now, &err) >= 0 && before.degraded != now.degraded) {
                char why[200] = "";
                for (size_t i = 0; i < now.n_health_reasons; i++)
                        snprintf(why + strlen(why), sizeof(why) - strlen(why), "%s%s", i ? ", " : ": ",
                                 now.health_reasons[i]);
                if (now.degraded)
                        add("health", now.host, rev, "GPU %s on %s degraded%s", now.gpu, now.host, why);
                else
                        add("health", now.host, rev, "GPU %s on %s healthy again", now.gpu, now.host);
        }
        vgpu_fleet_gpu_free(&now);
        vgpu_fleet_gpu_free(&before);
}

static void claim_event(const struct vgpu_etcd_event *ev, int64_t rev) {
        struct vgpu_fleet_claim now = {}, before = {};
        struct vgpu_error err = {};
        bool has_prev = ev->prev.key && vgpu_fleet_claim_from_json(ev->prev.value, &before, &err) >= 0;
        if (ev->deleted) {
                if (has_prev)
                        add("claim", before.host, rev, "session %s released from GPU %s on %s",
                            before.session, before.gpu, before.host);
        } else if (vgpu_fleet_claim_from_json(ev->kv.value, &now, &err) >= 0) {
                if (!has_prev)
                        add("claim", now.host, rev, "session %s of %s placed on GPU %s on %s: %s",
                            now.session, now.user ?: "?", now.gpu, now.host,
                            vgpu_fleet_state_to_string(now.state));
                else if (before.state != now.state)
                        add("claim", now.host, rev, "session %s on GPU %s: %s -> %s%s%s", now.session,
                            now.gpu, vgpu_fleet_state_to_string(before.state),
                            vgpu_fleet_state_to_string(now.state), now.error ? ": " : "", now.error ?: "");
        }
        vgpu_fleet_claim_free(&now);
        vgpu_fleet_claim_free(&before);
}

static void cordon_event(const struct vgpu_etcd_event *ev, const char *name, int64_t rev) {
        struct vgpu_fleet_cordon now = {}, before = {};
        struct vgpu_error err = {};
        bool has_prev = ev->prev.key && vgpu_fleet_cordon_from_json(ev->prev.value, &before, &err) >= 0;
        if (ev->deleted)
                add("cordon", name, rev, "host %s uncordoned", name);
        else if (vgpu_fleet_cordon_from_json(ev->kv.value, &now, &err) >= 0 &&
                 (!has_prev || before.draining != now.draining))
                add("cordon", name, rev, "host %s %s", name, now.draining ? "draining" : "cordoned");
}

void events_note(struct broker *b, const struct vgpu_etcd_event *ev, size_t n) {
        for (size_t i = 0; i < n; i++) {
                const char *key = ev[i].kv.key, *name;
                int64_t rev = ev[i].kv.mod_revision;
                if ((name = past(b, key, "hosts/")) && !strchr(name, '/'))
                        host_event(&ev[i], name, rev);
                else if (past(b, key, "gpus/"))
                        gpu_event(&ev[i], rev);
                else if (past(b, key, "claims/"))
                        claim_event(&ev[i], rev);
                else if ((name = past(b, key, "cordon/")) && !strchr(name, '/'))
                        cordon_event(&ev[i], name, rev);
        }
}

void api_events(struct broker *b, struct api_reply *reply) {
        json_object *a = json_object_new_array();
        (void) b;
        pthread_mutex_lock(&ring_lock);
        /* oldest first */
        for (size_t i = 0; i < ring_count; i++) {
                const struct event *e = &ring[(ring_next + EVENTS_MAX - ring_count + i) % EVENTS_MAX];
                json_object *o = json_object_new_object();
                json_object_object_add(o, "time_ms", json_object_new_int64(e->time_ms));
                json_object_object_add(o, "revision", json_object_new_int64(e->revision));
                json_object_object_add(o, "kind", json_object_new_string(e->kind));
                json_object_object_add(o, "host", e->host[0] ? json_object_new_string(e->host) : NULL);
                json_object_object_add(o, "text", json_object_new_string(e->text));
                json_object_array_add(a, o);
        }
        pthread_mutex_unlock(&ring_lock);
        reply_json(reply, 200, a); /* a bare array, as /v1/hosts, /v1/gpus and /v1/sessions */
}
