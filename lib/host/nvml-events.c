/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * nvml-events.c — Xid and ECC events from NVML (see vgpu/nvml-events.h).
 *
 * NVML delivers events through an event set that lives as long as the library stays
 * initialised, so unlike the snapshot (which loads NVML, reads and unloads) a watcher holds its
 * own dlopen() reference and nvmlInit for its lifetime. Waiting uses nvmlEventSetWait_v2 with a
 * timeout of 0: it returns NVML_ERROR_TIMEOUT at once when nothing is pending, so the caller's
 * event loop never blocks on the driver.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "nvml-abi.h"
#include "vgpu/nvml-events.h"

/* More than this per read means a library that never says "no more": stop, read the rest next time. */
#define EVENTS_PER_READ_MAX 1024

struct watched_gpu {
        nvml_device_t device;
        char bdf[VGPU_BDF_MAX];
};

struct vgpu_nvml_events {
        void *dl;
        nvml_return_t (*shutdown)(void);
        nvml_return_t (*wait)(nvml_event_set_t, nvml_event_data_t *, unsigned);
        nvml_return_t (*set_free)(nvml_event_set_t);
        nvml_event_set_t set;
        struct watched_gpu *gpus;
        size_t n_gpus;
};

_public_ void vgpu_nvml_events_free(struct vgpu_nvml_events *w) {
        if (!w)
                return;
        if (w->set)
                w->set_free(w->set);
        if (w->shutdown)
                w->shutdown();
        if (w->dl)
                dlclose(w->dl);
        free(w->gpus);
        free(w);
}

_public_ size_t vgpu_nvml_events_n_gpus(const struct vgpu_nvml_events *w) {
        return w ? w->n_gpus : 0;
}

/* Register one GPU for the event types it supports among those we want; false when it takes none. */
static bool register_gpu(nvml_device_t dev, nvml_event_set_t set,
                         nvml_return_t (*supported)(nvml_device_t, unsigned long long *),
                         nvml_return_t (*reg)(nvml_device_t, unsigned long long, nvml_event_set_t)) {
        unsigned long long want = NVML_EVENT_TYPE_XID_CRITICAL_ERROR | NVML_EVENT_TYPE_SINGLE_BIT_ECC_ERROR |
                                  NVML_EVENT_TYPE_DOUBLE_BIT_ECC_ERROR,
                           have;
        /* Registering a type the GPU lacks (ECC on a GeForce) fails the whole call: ask first;
         * a library without the question gets Xid alone, which every GPU reports. */
        if (supported && supported(dev, &have) == NVML_SUCCESS)
                want &= have;
        else
                want = NVML_EVENT_TYPE_XID_CRITICAL_ERROR;
        return want != 0 && reg(dev, want, set) == NVML_SUCCESS;
}

_public_ int vgpu_nvml_events_open(const struct vgpu_host *host, struct vgpu_nvml_events **ret,
                                   struct vgpu_error *err) {
        nvml_return_t (*init)(void);
        nvml_return_t (*set_create)(nvml_event_set_t *);
        nvml_return_t (*by_bus_id)(const char *, nvml_device_t *);
        nvml_return_t (*reg)(nvml_device_t, unsigned long long, nvml_event_set_t);
        nvml_return_t (*supported)(nvml_device_t, unsigned long long *);

        *ret = NULL;
        size_t n_nvidia = 0;
        for (size_t i = 0; i < host->n_gpus; i++)
                n_nvidia += vgpu_gpu_is_nvidia_pf(&host->gpus[i]);
        if (n_nvidia == 0)
                return 0;

        struct vgpu_nvml_events *w = calloc(1, sizeof(*w));
        if (!w || !(w->gpus = calloc(n_nvidia, sizeof(*w->gpus)))) {
                free(w);
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        }
        w->dl = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
        if (!w->dl) {
                vgpu_nvml_events_free(w);
                return 0;
        }
#define SYM(var, name) (*(void **) &(var) = dlsym(w->dl, name))
        SYM(init, "nvmlInit_v2");
        SYM(w->shutdown, "nvmlShutdown");
        SYM(w->wait, "nvmlEventSetWait_v2");
        SYM(w->set_free, "nvmlEventSetFree");
        SYM(set_create, "nvmlEventSetCreate");
        SYM(by_bus_id, "nvmlDeviceGetHandleByPciBusId_v2");
        SYM(reg, "nvmlDeviceRegisterEvents");
        SYM(supported, "nvmlDeviceGetSupportedEventTypes");
#undef SYM
        nvml_return_t (*shutdown)(void) = w->shutdown;
        w->shutdown =
                NULL; /* set again once nvmlInit succeeded: close must not shut down what it did not init */
        if (!init || !shutdown || !w->wait || !w->set_free || !set_create || !by_bus_id || !reg ||
            init() != NVML_SUCCESS) {
                vgpu_nvml_events_free(w);
                return 0;
        }
        w->shutdown = shutdown;
        if (set_create(&w->set) != NVML_SUCCESS) {
                w->set = NULL;
                vgpu_nvml_events_free(w);
                return 0;
        }
        for (size_t i = 0; i < host->n_gpus; i++) {
                const struct vgpu_gpu *g = &host->gpus[i];
                nvml_device_t dev;
                if (!vgpu_gpu_is_nvidia_pf(g) || by_bus_id(g->bdf, &dev) != NVML_SUCCESS ||
                    !register_gpu(dev, w->set, supported, reg))
                        continue;
                w->gpus[w->n_gpus].device = dev;
                memcpy(w->gpus[w->n_gpus].bdf, g->bdf, sizeof(g->bdf));
                w->n_gpus++;
        }
        if (w->n_gpus == 0) {
                vgpu_nvml_events_free(w);
                return 0;
        }
        *ret = w;
        return 0;
}

static const char *bdf_of(const struct vgpu_nvml_events *w, nvml_device_t dev) {
        for (size_t i = 0; i < w->n_gpus; i++)
                if (w->gpus[i].device == dev)
                        return w->gpus[i].bdf;
        return NULL;
}

_public_ int vgpu_nvml_events_read(struct vgpu_nvml_events *w, struct vgpu_nvml_event **ret, size_t *ret_n,
                                   struct vgpu_error *err) {
        struct vgpu_nvml_event *events = NULL;
        size_t n = 0, allocated = 0;
        nvml_event_data_t data;
        struct timespec ts;

        for (unsigned i = 0; w && i < EVENTS_PER_READ_MAX; i++) {
                /* room first: an event taken from NVML is gone from there, and must not be dropped;
                 * without room for more, those read so far are returned and the rest wait */
                if (!GREEDY_REALLOC(events, allocated, n + 1)) {
                        if (n > 0)
                                break;
                        free(events);
                        return vgpu_error_set(err, -ENOMEM, "out of memory");
                }
                memset(&data, 0, sizeof(data));
                if (w->wait(w->set, &data, 0) != NVML_SUCCESS)
                        break; /* NVML_ERROR_TIMEOUT: nothing (more) pending */
                const char *bdf = bdf_of(w, data.device);
                enum vgpu_nvml_event_type type;
                if (data.event_type & NVML_EVENT_TYPE_XID_CRITICAL_ERROR)
                        type = VGPU_NVML_EVENT_XID;
                else if (data.event_type & NVML_EVENT_TYPE_DOUBLE_BIT_ECC_ERROR)
                        type = VGPU_NVML_EVENT_ECC_DOUBLE_BIT;
                else if (data.event_type & NVML_EVENT_TYPE_SINGLE_BIT_ECC_ERROR)
                        type = VGPU_NVML_EVENT_ECC_SINGLE_BIT;
                else
                        continue;
                if (!bdf)
                        continue; /* a handle we did not register: cannot say which GPU */
                clock_gettime(CLOCK_REALTIME, &ts);
                struct vgpu_nvml_event *e = &events[n++];
                *e = (struct vgpu_nvml_event){
                        .type = type,
                        .data = data.event_data,
                        .time_usec = (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u,
                };
                memcpy(e->bdf, bdf, sizeof(e->bdf));
        }
        if (n == 0) {
                free(events); /* the room made for one that did not come: none is NULL */
                events = NULL;
        }
        *ret = events;
        *ret_n = n;
        return 0;
}
