/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * device.c — which GPU of the process is the slice's. A slice is one GPU's share (its region
 * lives in that GPU's file, slice/slice-shm.h), and the CDI spec (lib/slice/manage.c) gives a
 * container the device node of that GPU only, so inside a container the slice's GPU is usually
 * the only one CUDA sees. Outside one, or when a container holds other GPUs too, a process can
 * open contexts on several: there its allocations on the slice's GPU are charged to the slice,
 * and allocations on any other GPU are refused with CUDA_ERROR_OUT_OF_MEMORY (and one log line
 * per device), because no quota covers them and they would otherwise be free for the taking.
 *
 * The slice's GPU is recognized by the PCI bus id the region records (cuDeviceGetPCIBusId),
 * never by ordinal: ordinals depend on CUDA_VISIBLE_DEVICES and on which nodes a container has.
 * A region without a bus id pins the slice to the first device the process allocates on.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "shim.h"

#define DEVICES_MAX 64

enum { DEV_UNKNOWN = 0, DEV_SLICE = 1, DEV_OTHER = 2 };
static _Atomic uint8_t verdict[DEVICES_MAX];
static _Atomic int pinned = -1; /* the device taken as the slice's without a bus id */

CUdevice shim_current_device(void) {
        shim_pfn_cuCtxGetDevice get = REAL(cuCtxGetDevice);
        CUdevice dev;
        return get && get(&dev) == CUDA_SUCCESS ? dev : -1;
}

/* Parse "dddd:bb:dd.f" (any domain width, any case) into one number; false if it is not one. */
static bool parse_bdf(const char *s, uint64_t *ret) {
        unsigned domain, bus, dev, fn;
        int n = 0;
        if (sscanf(s, "%x:%x:%x.%x%n", &domain, &bus, &dev, &fn, &n) != 4 || s[n] != '\0')
                return false;
        *ret = (uint64_t) domain << 24 | (uint64_t) (bus & 0xff) << 16 | (dev & 0x1f) << 8 | (fn & 7);
        return true;
}

static uint8_t judge(CUdevice dev, char *bus_id, size_t size) {
        snprintf(bus_id, size, "?");
        uint64_t want, have;
        shim_pfn_cuDeviceGetPCIBusId get = REAL(cuDeviceGetPCIBusId);
        if (!parse_bdf(shim.gpu_bdf, &want) || !get || get(bus_id, (int) size, dev) != CUDA_SUCCESS ||
            !parse_bdf(bus_id, &have)) {
                /* Nothing to compare: the first device used is the slice's, no other. */
                int expected = -1;
                if (atomic_compare_exchange_strong(&pinned, &expected, dev) || expected == dev)
                        return DEV_SLICE;
                return DEV_OTHER;
        }
        return want == have ? DEV_SLICE : DEV_OTHER;
}

CUresult shim_device_check(CUdevice dev) {
        if (shim.mode != SHIM_ON)
                return CUDA_SUCCESS;
        if (dev == SHIM_DEV_CURRENT)
                dev = shim_current_device();
        if (dev < 0)
                return CUDA_SUCCESS; /* no context: the driver will refuse the call itself */
        if (dev >= DEVICES_MAX)
                return CUDA_ERROR_OUT_OF_MEMORY;
        uint8_t v = atomic_load_explicit(&verdict[dev], memory_order_relaxed);
        if (v == DEV_UNKNOWN) {
                char bus_id[32];
                v = judge(dev, bus_id, sizeof(bus_id));
                uint8_t expected = DEV_UNKNOWN;
                if (atomic_compare_exchange_strong(&verdict[dev], &expected, v) && v == DEV_OTHER)
                        shim_log(SHIM_LOG_WARNING,
                                 "slice %s belongs to GPU %s; CUDA device %d (%s) is another GPU: its device "
                                 "memory allocations are refused",
                                 shim.slice->name, shim.gpu_bdf[0] ? shim.gpu_bdf : "(first used)", dev,
                                 bus_id);
                v = atomic_load(&verdict[dev]);
        }
        if (v == DEV_SLICE)
                return CUDA_SUCCESS;
        atomic_fetch_add(&shim.slice->oom_count, 1);
        return CUDA_ERROR_OUT_OF_MEMORY;
}
