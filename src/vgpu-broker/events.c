/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * events.c — the fleet's recent events for the dashboard (GET /v1/events): what changed in the
 * broker's cache, said in words. A change is told from the cached value and the new one, both
 * decoded already (a host that joins had none; a claim whose state moved has both): the watch
 * needs no prev_kv and nothing is parsed twice. The cache calls in once per change, whether the
 * watch or the broker's own claim brought it first (the later copy is not newer: ignored). Kept
 * in memory only, a ring of the last EVENTS_MAX: a restarted broker starts empty, as the issue's
 * "recent events" allows; etcd keeps the truth.
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

/* A host's events: keys hosts/<host> only */
static bool host_key(const struct entry *e) {
        return e->kind == KIND_HOST && !strchr(e->name, '/');
}

void events_put(struct broker *b, const struct entry *e, const union entry_value *nv, int64_t rev) {
        (void) b;
        if (!nv)
                return;
        switch (e->kind) {
        case KIND_HOST:
                if (!host_key(e))
                        break;
                if (!e->valid)
                        add("host", e->name, rev, "host %s joined (address %s, version %s)", e->name,
                            nv->host.address ?: "?", nv->host.version ?: "?");
                else if (e->u.host.lease != nv->host.lease)
                        add("host", e->name, rev, "host %s rejoined with a new lease", e->name);
                break;
        case KIND_GPU: {
                /* only health changes: temperature and VRAM move all the time, the tables show them */
                const struct vgpu_fleet_gpu *now = &nv->gpu;
                if (!e->valid || e->u.gpu.degraded == now->degraded)
                        break;
                char why[200] = "";
                for (size_t i = 0; i < now->n_health_reasons; i++)
                        snprintf(why + strlen(why), sizeof(why) - strlen(why), "%s%s", i ? ", " : ": ",
                                 now->health_reasons[i]);
                if (now->degraded)
                        add("health", now->host, rev, "GPU %s on %s degraded%s", now->gpu, now->host, why);
                else
                        add("health", now->host, rev, "GPU %s on %s healthy again", now->gpu, now->host);
                break;
        }
        case KIND_CLAIM: {
                const struct vgpu_fleet_claim *now = &nv->claim, *before = &e->u.claim;
                if (!e->valid)
                        add("claim", now->host, rev, "session %s of %s placed on GPU %s on %s: %s",
                            now->session, now->user ?: "?", now->gpu, now->host,
                            vgpu_fleet_state_to_string(now->state));
                else if (before->state != now->state)
                        add("claim", now->host, rev, "session %s on GPU %s: %s -> %s%s%s", now->session,
                            now->gpu, vgpu_fleet_state_to_string(before->state),
                            vgpu_fleet_state_to_string(now->state), now->error ? ": " : "", now->error ?: "");
                break;
        }
        case KIND_CORDON:
                if (strchr(e->name, '/'))
                        break;
                if (!e->valid || e->u.cordon.draining != nv->cordon.draining)
                        add("cordon", e->name, rev, "host %s %s", e->name,
                            nv->cordon.draining ? "draining" : "cordoned");
                break;
        default:
                break;
        }
}

void events_delete(struct broker *b, const struct entry *e, int64_t rev) {
        (void) b;
        if (!e->valid)
                return;
        if (host_key(e))
                add("host", e->name, rev, "host %s left (its lease ended)", e->name);
        else if (e->kind == KIND_CLAIM)
                add("claim", e->u.claim.host, rev, "session %s released from GPU %s on %s",
                    e->u.claim.session, e->u.claim.gpu, e->u.claim.host);
        else if (e->kind == KIND_CORDON && !strchr(e->name, '/'))
                add("cordon", e->name, rev, "host %s uncordoned", e->name);
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
