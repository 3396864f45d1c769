/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fake-nvml.c — a test double of NVIDIA's management library, built as libnvidia-ml.so.1 in its
 * own directory: tests that want NVML readings put that directory on LD_LIBRARY_PATH and
 * libvgpu's dlopen() finds this instead of a driver.
 *
 * It serves the values of $VGPU_ROOT/nvml.conf, "key=value" lines written by the fixture
 * generator (tests/fixtures/hostgen.py, Host.set_nvml):
 *     driver_version=550.127.06
 *     gpu.N.bdf=00000000:3B:00.0          (NVML's bus id; 4- or 8-digit domain, any case)
 *     gpu.N.name, gpu.N.uuid, gpu.N.serial
 *     gpu.N.memory_total, gpu.N.memory_used                     (bytes)
 *     gpu.N.temperature, gpu.N.temp_slowdown, gpu.N.temp_shutdown (C)
 *     gpu.N.power_mw, gpu.N.power_limit_mw
 *     gpu.N.persistence (nvmlDeviceSetPersistenceMode rewrites it in nvml.conf, so the mode
 *                        outlives the process as the driver's does; refused with
 *                        NVML_ERROR_NO_PERMISSION when gpu.N.persistence_locked=1)
 *     gpu.N.virtualization_mode, gpu.N.host_vgpu_mode, gpu.N.mig_mode
 *     gpu.N.utilization_gpu, gpu.N.utilization_memory            (percent; both, or neither)
 *     gpu.N.memory_reserved                (bytes; without it nvmlDeviceGetMemoryInfo_v2 fails)
 *     gpu.N.clocks_event_reasons           (nvmlClocksEventReason* bits, 0x60 or 96)
 *     gpu.N.pcie_gen, gpu.N.pcie_gen_max, gpu.N.pcie_width, gpu.N.pcie_width_max
 *     gpu.N.supported_events               (nvmlEventType* bits; default Xid and both ECC kinds)
 *     gpu.N.encoder_sessions, gpu.N.encoder_fps, gpu.N.encoder_latency  (nvmlDeviceGetEncoderStats;
 *                                          latency in us; without encoder_sessions: not supported)
 *     gpu.N.fbc_sessions, gpu.N.fbc_fps, gpu.N.fbc_latency              (nvmlDeviceGetFBCStats, alike)
 *     gpu.N.encoder_session.K=ID,PID,VGPU_INSTANCE,CODEC,HRES,VRES,FPS,LATENCY  (K 0-15: one session of
 *                                          nvmlDeviceGetEncoderSessions, which answers, with the Ks
 *                                          there are, when gpu.N.encoder_sessions is set)
 *     gpu.N.fbc_session.K=ID,PID,VGPU_INSTANCE,DISPLAY,TYPE,FLAGS,HMAX,VMAX,HRES,VRES,FPS,LATENCY
 *                                          (nvmlDeviceGetFBCSessions, alike with gpu.N.fbc_sessions)
 *     gpu.N.vgpu.M.mdev_uuid               (a running vGPU, M 0-63; nvmlDeviceGetActiveVgpus lists
 *                                          the Ms that have one, as instance (N+1)*1000+M)
 *     gpu.N.vgpu.M.encoder_sessions/encoder_fps/encoder_latency, gpu.N.vgpu.M.fbc_sessions/...
 *     gpu.N.vgpu.M.frame_rate_limit        (nvmlVgpuInstanceGetFrameRateLimit; 0: "not supported",
 *                                          as NVML answers for a vGPU whose limiter is off)
 *     gpu.N.vgpu.M.guest_driver            (the guest's driver version; without it the guest has none
 *                                          loaded: nvmlVgpuInstanceGetMetadata's guestInfoState 0)
 *     gpu.N.vgpu.M.guest_compat_limit      (nvmlGetVgpuCompatibility's limit code, e.g. 2 = guest driver;
 *                                          non-zero makes the vGPU not runnable; default 0: compatible)
 *     vgpu_type.ID.framebuffer             (bytes: nvmlVgpuTypeGetFramebufferSize of vGPU type ID)
 * A missing file makes nvmlInit_v2 fail with NVML_ERROR_DRIVER_NOT_LOADED, as on a host without
 * the driver; a missing key makes its getter return NVML_ERROR_NOT_SUPPORTED. The file is read
 * again on every nvmlInit_v2, even while another user holds NVML initialised (an event watcher),
 * so a test changes readings between a daemon's polls by rewriting it.
 *
 * Events: $VGPU_ROOT/nvml-events, appended to by a test while the program runs, one per line:
 *     00000000:3B:00.0 xid 79           (type xid, sbe or dbe; then the event data)
 * An event set delivers the lines appended after it was created, for the devices and types
 * registered with it, one per nvmlEventSetWait_v2; NVML_ERROR_TIMEOUT when none is pending.
 *
 * Entry points follow nvml.h's ABI (the versioned names nvml.h maps the plain ones to). Built
 * with -DFAKE_NVML_OLD it is a driver from before R510/R535: no nvmlDeviceGetMemoryInfo_v2, and
 * clocks-event reasons only under their old name, nvmlDeviceGetCurrentClocksThrottleReasons.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef int nvmlReturn_t;
enum {
        NVML_SUCCESS = 0,
        NVML_ERROR_UNINITIALIZED = 1,
        NVML_ERROR_INVALID_ARGUMENT = 2,
        NVML_ERROR_NOT_SUPPORTED = 3,
        NVML_ERROR_NO_PERMISSION = 4,
        NVML_ERROR_NOT_FOUND = 6,
        NVML_ERROR_INSUFFICIENT_SIZE = 7,
        NVML_ERROR_DRIVER_NOT_LOADED = 9,
        NVML_ERROR_TIMEOUT = 10,
        NVML_ERROR_ARGUMENT_VERSION_MISMATCH = 25,
};
enum {
        nvmlEventTypeSingleBitEccError = 0x1,
        nvmlEventTypeDoubleBitEccError = 0x2,
        nvmlEventTypeXidCriticalError = 0x8,
};
enum {
        NVML_TEMPERATURE_GPU = 0,
        NVML_TEMPERATURE_THRESHOLD_SHUTDOWN = 0,
        NVML_TEMPERATURE_THRESHOLD_SLOWDOWN = 1,
};

typedef struct {
        unsigned long long total, free, used;
} nvmlMemory_t;

typedef struct {
        unsigned int version;
        unsigned long long total, reserved, free, used;
} nvmlMemory_v2_t;
#define nvmlMemory_v2 ((unsigned int) (sizeof(nvmlMemory_v2_t) | (2u << 24)))

typedef struct {
        unsigned int gpu, memory;
} nvmlUtilization_t;

typedef unsigned int nvmlVgpuInstance_t;
typedef struct {
        unsigned int sessionsCount, averageFPS, averageLatency;
} nvmlFBCStats_t;

typedef struct {
        unsigned int sessionId, pid, vgpuInstance, codecType, hResolution, vResolution, averageFps,
                averageLatency;
} nvmlEncoderSessionInfo_t;

typedef struct {
        unsigned int sessionId, pid, vgpuInstance, displayOrdinal, sessionType, sessionFlags, hMaxResolution,
                vMaxResolution, hResolution, vResolution, averageFPS, averageLatency;
} nvmlFBCSessionInfo_t;

/* nvml.h's metadata layouts: the guest-dependent fields, then opaque data whose size
 * opaqueDataSize gives (declared [4], really longer: callers must pass a larger buffer). */
typedef struct {
        unsigned int version, revision;
        int guestInfoState;
        char guestDriverVersion[80], hostDriverVersion[80];
        unsigned int reserved[6], vgpuVirtualizationCaps, guestVgpuVersion, opaqueDataSize;
        char opaqueData[4];
} nvmlVgpuMetadata_t;
typedef struct {
        unsigned int version, revision;
        char hostDriverVersion[80];
        unsigned int pgpuVirtualizationCaps, reserved[5], minVersion, maxVersion, opaqueDataSize;
        char opaqueData[4];
} nvmlVgpuPgpuMetadata_t;
typedef struct {
        unsigned int vgpuVmCompatibility, compatibilityLimitCode;
} nvmlVgpuPgpuCompatibility_t;
#define FAKE_OPAQUE_SIZE 32 /* more than the declared 4, as on a real driver */

#define MAX_GPUS 64
#define MAX_KEYS 192

struct kv {
        char key[32];
        char value[128];
};

struct nvmlDevice_st {
        struct kv kv[MAX_KEYS];
        size_t n_kv;
};
typedef struct nvmlDevice_st *nvmlDevice_t;

typedef struct {
        nvmlDevice_t device;
        unsigned long long eventType, eventData;
        unsigned int gpuInstanceId, computeInstanceId;
} nvmlEventData_t;

/* An event set: which types each device registered, and how far into nvml-events it has read. */
struct nvmlEventSet_st {
        unsigned long long types[MAX_GPUS];
        long offset;
};
typedef struct nvmlEventSet_st *nvmlEventSet_t;

/* vGPU types (nvmlVgpuTypeId_t) and their frame buffer: the host's, not any one GPU's */
#define MAX_VGPU_TYPES 256
static struct {
        unsigned id;
        unsigned long long framebuffer;
} vgpu_types[MAX_VGPU_TYPES];
static unsigned n_vgpu_types;

static struct nvmlDevice_st gpus[MAX_GPUS];
static unsigned n_gpus;
static char driver_version[96];
static int init_count;

/* The interface every exported function is declared through (no header of our own). */
nvmlReturn_t nvmlInit_v2(void);
nvmlReturn_t nvmlInit(void);
nvmlReturn_t nvmlShutdown(void);
const char *nvmlErrorString(nvmlReturn_t r);
nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length);
nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count);
nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device);
nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *bus_id, nvmlDevice_t *device);
nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t dev, char *name, unsigned int length);
nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t dev, char *uuid, unsigned int length);
nvmlReturn_t nvmlDeviceGetSerial(nvmlDevice_t dev, char *serial, unsigned int length);
nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t dev, nvmlMemory_t *memory);
nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t dev, int sensor, unsigned int *temp);
nvmlReturn_t nvmlDeviceGetTemperatureThreshold(nvmlDevice_t dev, int threshold, unsigned int *temp);
nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t dev, unsigned int *power);
nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t dev, unsigned int *limit);
nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t dev, int *mode);
nvmlReturn_t nvmlDeviceSetPersistenceMode(nvmlDevice_t dev, int mode);
nvmlReturn_t nvmlDeviceGetVirtualizationMode(nvmlDevice_t dev, int *mode);
nvmlReturn_t nvmlDeviceGetHostVgpuMode(nvmlDevice_t dev, int *mode);
nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t dev, unsigned int *current, unsigned int *pending);
nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t dev, nvmlUtilization_t *util);
nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t dev, unsigned long long *reasons);
nvmlReturn_t nvmlDeviceGetCurrPcieLinkGeneration(nvmlDevice_t dev, unsigned int *gen);
nvmlReturn_t nvmlDeviceGetMaxPcieLinkGeneration(nvmlDevice_t dev, unsigned int *gen);
nvmlReturn_t nvmlDeviceGetCurrPcieLinkWidth(nvmlDevice_t dev, unsigned int *width);
nvmlReturn_t nvmlDeviceGetMaxPcieLinkWidth(nvmlDevice_t dev, unsigned int *width);
nvmlReturn_t nvmlDeviceGetEncoderStats(nvmlDevice_t dev, unsigned int *sessions, unsigned int *fps,
                                       unsigned int *latency);
nvmlReturn_t nvmlDeviceGetFBCStats(nvmlDevice_t dev, nvmlFBCStats_t *stats);
nvmlReturn_t nvmlDeviceGetEncoderSessions(nvmlDevice_t dev, unsigned int *count,
                                          nvmlEncoderSessionInfo_t *infos);
nvmlReturn_t nvmlDeviceGetFBCSessions(nvmlDevice_t dev, unsigned int *count, nvmlFBCSessionInfo_t *infos);
nvmlReturn_t nvmlDeviceGetActiveVgpus(nvmlDevice_t dev, unsigned int *count, nvmlVgpuInstance_t *instances);
nvmlReturn_t nvmlVgpuInstanceGetMdevUUID(nvmlVgpuInstance_t vgpu, char *uuid, unsigned int size);
nvmlReturn_t nvmlVgpuInstanceGetEncoderStats(nvmlVgpuInstance_t vgpu, unsigned int *sessions,
                                             unsigned int *fps, unsigned int *latency);
nvmlReturn_t nvmlVgpuInstanceGetFBCStats(nvmlVgpuInstance_t vgpu, nvmlFBCStats_t *stats);
nvmlReturn_t nvmlVgpuInstanceGetFrameRateLimit(nvmlVgpuInstance_t vgpu, unsigned int *limit);
nvmlReturn_t nvmlVgpuTypeGetFramebufferSize(unsigned int type_id, unsigned long long *size);
nvmlReturn_t nvmlVgpuInstanceGetMetadata(nvmlVgpuInstance_t vgpu, nvmlVgpuMetadata_t *meta,
                                         unsigned int *size);
nvmlReturn_t nvmlDeviceGetVgpuMetadata(nvmlDevice_t dev, nvmlVgpuPgpuMetadata_t *meta, unsigned int *size);
nvmlReturn_t nvmlGetVgpuCompatibility(nvmlVgpuMetadata_t *vgpu, nvmlVgpuPgpuMetadata_t *pgpu,
                                      nvmlVgpuPgpuCompatibility_t *compat);
nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set);
nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set);
nvmlReturn_t nvmlDeviceGetSupportedEventTypes(nvmlDevice_t dev, unsigned long long *types);
nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t dev, unsigned long long types, nvmlEventSet_t set);
nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeoutms);
#ifndef FAKE_NVML_OLD
nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t dev, nvmlMemory_v2_t *memory);
nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t dev, unsigned long long *reasons);
#endif

static void set_gpu_key(unsigned index, const char *key, const char *value) {
        if (index >= MAX_GPUS)
                return;
        struct nvmlDevice_st *g = &gpus[index];
        if (index >= n_gpus)
                n_gpus = index + 1;
        if (g->n_kv >= MAX_KEYS)
                return;
        snprintf(g->kv[g->n_kv].key, sizeof(g->kv[0].key), "%s", key);
        snprintf(g->kv[g->n_kv].value, sizeof(g->kv[0].value), "%s", value);
        g->n_kv++;
}

static int load_conf(void) {
        const char *root = getenv("VGPU_ROOT");
        char path[4096], line[512];
        snprintf(path, sizeof(path), "%s/nvml.conf", root ? root : "");
        FILE *f = fopen(path, "re");
        if (!f)
                return -1;
        memset(gpus, 0, sizeof(gpus));
        n_gpus = 0;
        n_vgpu_types = 0;
        driver_version[0] = '\0';
        while (fgets(line, sizeof(line), f)) {
                line[strcspn(line, "\r\n")] = '\0';
                char *eq = strchr(line, '=');
                if (!eq || line[0] == '#')
                        continue;
                *eq = '\0';
                const char *key = line, *value = eq + 1;
                unsigned index;
                int n = 0;
                if (strcmp(key, "driver_version") == 0)
                        snprintf(driver_version, sizeof(driver_version), "%s", value);
                else if (sscanf(key, "gpu.%u.%n", &index, &n) == 1 && n > 0)
                        set_gpu_key(index, key + n, value);
                else if (sscanf(key, "vgpu_type.%u.framebuffer%n", &index, &n) == 1 && key[n] == '\0' &&
                         n_vgpu_types < MAX_VGPU_TYPES) {
                        vgpu_types[n_vgpu_types].id = index;
                        vgpu_types[n_vgpu_types++].framebuffer = strtoull(value, NULL, 0);
                }
        }
        fclose(f);
        return 0;
}

static const char *get(nvmlDevice_t dev, const char *key) {
        for (size_t i = 0; dev && i < dev->n_kv; i++)
                if (strcmp(dev->kv[i].key, key) == 0)
                        return dev->kv[i].value;
        return NULL;
}

static nvmlReturn_t get_string(nvmlDevice_t dev, const char *key, char *buf, unsigned int length) {
        if (init_count == 0)
                return NVML_ERROR_UNINITIALIZED;
        if (!dev || !buf)
                return NVML_ERROR_INVALID_ARGUMENT;
        const char *v = get(dev, key);
        if (!v)
                return NVML_ERROR_NOT_SUPPORTED;
        if (strlen(v) + 1 > length)
                return NVML_ERROR_INSUFFICIENT_SIZE;
        memcpy(buf, v, strlen(v) + 1);
        return NVML_SUCCESS;
}

static nvmlReturn_t get_u64(nvmlDevice_t dev, const char *key, unsigned long long *ret) {
        if (init_count == 0)
                return NVML_ERROR_UNINITIALIZED;
        if (!dev || !ret)
                return NVML_ERROR_INVALID_ARGUMENT;
        const char *v = get(dev, key);
        if (!v)
                return NVML_ERROR_NOT_SUPPORTED;
        *ret = strtoull(v, NULL, 0);
        return NVML_SUCCESS;
}

static nvmlReturn_t get_uint(nvmlDevice_t dev, const char *key, unsigned int *ret) {
        unsigned long long v = 0;
        nvmlReturn_t r = get_u64(dev, key, ret ? &v : NULL);
        if (r == NVML_SUCCESS)
                *ret = (unsigned int) v;
        return r;
}

static nvmlReturn_t get_int(nvmlDevice_t dev, const char *key, int *ret) {
        unsigned long long v = 0;
        nvmlReturn_t r = get_u64(dev, key, ret ? &v : NULL);
        if (r == NVML_SUCCESS)
                *ret = (int) v;
        return r;
}

nvmlReturn_t nvmlInit_v2(void) {
        /* re-read while initialised too: an event watcher keeps NVML up across a daemon's polls */
        if (load_conf() < 0 && init_count == 0)
                return NVML_ERROR_DRIVER_NOT_LOADED;
        init_count++;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlInit(void) {
        return nvmlInit_v2();
}

nvmlReturn_t nvmlShutdown(void) {
        if (init_count == 0)
                return NVML_ERROR_UNINITIALIZED;
        init_count--;
        return NVML_SUCCESS;
}

const char *nvmlErrorString(nvmlReturn_t r) {
        switch (r) {
        case NVML_SUCCESS:
                return "Success";
        case NVML_ERROR_UNINITIALIZED:
                return "Uninitialized";
        case NVML_ERROR_INVALID_ARGUMENT:
                return "Invalid Argument";
        case NVML_ERROR_NOT_SUPPORTED:
                return "Not Supported";
        case NVML_ERROR_NOT_FOUND:
                return "Not Found";
        case NVML_ERROR_INSUFFICIENT_SIZE:
                return "Insufficient Size";
        case NVML_ERROR_DRIVER_NOT_LOADED:
                return "Driver Not Loaded";
        }
        return "Unknown Error";
}

nvmlReturn_t nvmlSystemGetDriverVersion(char *version, unsigned int length) {
        if (init_count == 0)
                return NVML_ERROR_UNINITIALIZED;
        if (!version)
                return NVML_ERROR_INVALID_ARGUMENT;
        if (!driver_version[0])
                return NVML_ERROR_NOT_SUPPORTED;
        if (strlen(driver_version) + 1 > length)
                return NVML_ERROR_INSUFFICIENT_SIZE;
        memcpy(version, driver_version, strlen(driver_version) + 1);
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCount_v2(unsigned int *count) {
        if (init_count == 0)
                return NVML_ERROR_UNINITIALIZED;
        if (!count)
                return NVML_ERROR_INVALID_ARGUMENT;
        *count = n_gpus;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned int index, nvmlDevice_t *device) {
        if (init_count == 0)
                return NVML_ERROR_UNINITIALIZED;
        if (!device || index >= n_gpus)
                return NVML_ERROR_INVALID_ARGUMENT;
        *device = &gpus[index];
        return NVML_SUCCESS;
}

/* "00000000:3B:00.0" or "0000:3b:00.0" (or "3b:00.0") to numbers. */
static int parse_bus_id(const char *s, unsigned *dom, unsigned *bus, unsigned *dev, unsigned *fn) {
        int n = 0;
        if (sscanf(s, "%x:%x:%x.%x%n", dom, bus, dev, fn, &n) == 4 && s[n] == '\0')
                return 0;
        *dom = 0;
        if (sscanf(s, "%x:%x.%x%n", bus, dev, fn, &n) == 3 && s[n] == '\0')
                return 0;
        return -1;
}

nvmlReturn_t nvmlDeviceGetHandleByPciBusId_v2(const char *bus_id, nvmlDevice_t *device) {
        if (init_count == 0)
                return NVML_ERROR_UNINITIALIZED;
        unsigned d1, b1, s1, f1;
        if (!bus_id || !device || parse_bus_id(bus_id, &d1, &b1, &s1, &f1) < 0)
                return NVML_ERROR_INVALID_ARGUMENT;
        for (unsigned i = 0; i < n_gpus; i++) {
                const char *v = get(&gpus[i], "bdf");
                unsigned d2, b2, s2, f2;
                if (v && parse_bus_id(v, &d2, &b2, &s2, &f2) == 0 && d1 == d2 && b1 == b2 && s1 == s2 &&
                    f1 == f2) {
                        *device = &gpus[i];
                        return NVML_SUCCESS;
                }
        }
        return NVML_ERROR_NOT_FOUND;
}

nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t dev, char *name, unsigned int length) {
        return get_string(dev, "name", name, length);
}

nvmlReturn_t nvmlDeviceGetUUID(nvmlDevice_t dev, char *uuid, unsigned int length) {
        return get_string(dev, "uuid", uuid, length);
}

nvmlReturn_t nvmlDeviceGetSerial(nvmlDevice_t dev, char *serial, unsigned int length) {
        return get_string(dev, "serial", serial, length);
}

nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t dev, nvmlMemory_t *memory) {
        unsigned long long total, used;
        nvmlReturn_t r = get_u64(dev, "memory_total", memory ? &total : NULL);
        if (r == NVML_SUCCESS)
                r = get_u64(dev, "memory_used", &used);
        if (r != NVML_SUCCESS)
                return r;
        memory->total = total;
        memory->used = used;
        memory->free = total > used ? total - used : 0;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetTemperature(nvmlDevice_t dev, int sensor, unsigned int *temp) {
        if (sensor != NVML_TEMPERATURE_GPU)
                return NVML_ERROR_INVALID_ARGUMENT;
        return get_uint(dev, "temperature", temp);
}

nvmlReturn_t nvmlDeviceGetTemperatureThreshold(nvmlDevice_t dev, int threshold, unsigned int *temp) {
        switch (threshold) {
        case NVML_TEMPERATURE_THRESHOLD_SHUTDOWN:
                return get_uint(dev, "temp_shutdown", temp);
        case NVML_TEMPERATURE_THRESHOLD_SLOWDOWN:
                return get_uint(dev, "temp_slowdown", temp);
        }
        return NVML_ERROR_NOT_SUPPORTED;
}

nvmlReturn_t nvmlDeviceGetPowerUsage(nvmlDevice_t dev, unsigned int *power) {
        return get_uint(dev, "power_mw", power);
}

nvmlReturn_t nvmlDeviceGetEnforcedPowerLimit(nvmlDevice_t dev, unsigned int *limit) {
        return get_uint(dev, "power_limit_mw", limit);
}

nvmlReturn_t nvmlDeviceGetPersistenceMode(nvmlDevice_t dev, int *mode) {
        return get_int(dev, "persistence", mode);
}

/* Rewrite "gpu.N.persistence=" in nvml.conf (atomically), keeping every other line. */
nvmlReturn_t nvmlDeviceSetPersistenceMode(nvmlDevice_t dev, int mode) {
        if (init_count == 0)
                return NVML_ERROR_UNINITIALIZED;
        if (!dev || dev < gpus || dev >= gpus + MAX_GPUS || (mode != 0 && mode != 1))
                return NVML_ERROR_INVALID_ARGUMENT;
        const char *locked = get(dev, "persistence_locked");
        if (locked && strcmp(locked, "1") == 0)
                return NVML_ERROR_NO_PERMISSION;
        const char *root = getenv("VGPU_ROOT");
        char path[4096], tmp[4200], prefix[48], line[512];
        snprintf(path, sizeof(path), "%s/nvml.conf", root ? root : "");
        snprintf(tmp, sizeof(tmp), "%s.persistence-tmp", path);
        snprintf(prefix, sizeof(prefix), "gpu.%u.persistence=", (unsigned) (dev - gpus));
        FILE *in = fopen(path, "re"), *out = in ? fopen(tmp, "we") : NULL;
        if (!out) {
                if (in)
                        fclose(in);
                return NVML_ERROR_NOT_SUPPORTED;
        }
        while (fgets(line, sizeof(line), in))
                if (strncmp(line, prefix, strlen(prefix)) != 0)
                        fputs(line, out);
        fprintf(out, "%s%d\n", prefix, mode);
        fclose(in);
        if (fclose(out) != 0 || rename(tmp, path) != 0)
                return NVML_ERROR_NOT_SUPPORTED;
        load_conf();
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetVirtualizationMode(nvmlDevice_t dev, int *mode) {
        return get_int(dev, "virtualization_mode", mode);
}

nvmlReturn_t nvmlDeviceGetHostVgpuMode(nvmlDevice_t dev, int *mode) {
        return get_int(dev, "host_vgpu_mode", mode);
}

nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t dev, unsigned int *current, unsigned int *pending) {
        nvmlReturn_t r = get_uint(dev, "mig_mode", current);
        if (r == NVML_SUCCESS && pending)
                *pending = *current;
        return r;
}

nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t dev, nvmlUtilization_t *util) {
        unsigned int gpu;
        nvmlReturn_t r = get_uint(dev, "utilization_gpu", util ? &gpu : NULL);
        if (r != NVML_SUCCESS)
                return r;
        unsigned int memory;
        if ((r = get_uint(dev, "utilization_memory", &memory)) != NVML_SUCCESS)
                return r;
        util->gpu = gpu;
        util->memory = memory;
        return NVML_SUCCESS;
}

#ifndef FAKE_NVML_OLD
nvmlReturn_t nvmlDeviceGetMemoryInfo_v2(nvmlDevice_t dev, nvmlMemory_v2_t *memory) {
        unsigned long long total, used, reserved;
        if (memory && memory->version != nvmlMemory_v2)
                return NVML_ERROR_ARGUMENT_VERSION_MISMATCH;
        nvmlReturn_t r = get_u64(dev, "memory_total", memory ? &total : NULL);
        if (r == NVML_SUCCESS)
                r = get_u64(dev, "memory_used", &used);
        if (r == NVML_SUCCESS)
                r = get_u64(dev, "memory_reserved", &reserved);
        if (r != NVML_SUCCESS)
                return r;
        memory->total = total;
        memory->reserved = reserved;
        memory->used = used;
        memory->free = total > used ? total - used : 0;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetCurrentClocksEventReasons(nvmlDevice_t dev, unsigned long long *reasons) {
        return get_u64(dev, "clocks_event_reasons", reasons);
}
#endif

nvmlReturn_t nvmlDeviceGetCurrentClocksThrottleReasons(nvmlDevice_t dev, unsigned long long *reasons) {
        return get_u64(dev, "clocks_event_reasons", reasons);
}

nvmlReturn_t nvmlDeviceGetCurrPcieLinkGeneration(nvmlDevice_t dev, unsigned int *gen) {
        return get_uint(dev, "pcie_gen", gen);
}

nvmlReturn_t nvmlDeviceGetMaxPcieLinkGeneration(nvmlDevice_t dev, unsigned int *gen) {
        return get_uint(dev, "pcie_gen_max", gen);
}

nvmlReturn_t nvmlDeviceGetCurrPcieLinkWidth(nvmlDevice_t dev, unsigned int *width) {
        return get_uint(dev, "pcie_width", width);
}

nvmlReturn_t nvmlDeviceGetMaxPcieLinkWidth(nvmlDevice_t dev, unsigned int *width) {
        return get_uint(dev, "pcie_width_max", width);
}

/* "<prefix>_sessions", "_fps", "_latency" of a device: sessions decide whether it is known. */
static nvmlReturn_t get_stream(nvmlDevice_t dev, const char *prefix, unsigned int *sessions,
                               unsigned int *fps, unsigned int *latency) {
        char key[48];
        snprintf(key, sizeof(key), "%s_sessions", prefix);
        nvmlReturn_t r = get_uint(dev, key, sessions);
        if (r != NVML_SUCCESS)
                return r;
        if (!fps || !latency)
                return NVML_ERROR_INVALID_ARGUMENT;
        snprintf(key, sizeof(key), "%s_fps", prefix);
        if (get_uint(dev, key, fps) != NVML_SUCCESS)
                *fps = 0;
        snprintf(key, sizeof(key), "%s_latency", prefix);
        if (get_uint(dev, key, latency) != NVML_SUCCESS)
                *latency = 0;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetEncoderStats(nvmlDevice_t dev, unsigned int *sessions, unsigned int *fps,
                                       unsigned int *latency) {
        return get_stream(dev, "encoder", sessions, fps, latency);
}

nvmlReturn_t nvmlDeviceGetFBCStats(nvmlDevice_t dev, nvmlFBCStats_t *stats) {
        if (!stats)
                return NVML_ERROR_INVALID_ARGUMENT;
        return get_stream(dev, "fbc", &stats->sessionsCount, &stats->averageFPS, &stats->averageLatency);
}

/* nvmlDevice{Encoder,FBC}Sessions' contract: *count 0 asks for the count; a buffer too small gets
 * NVML_ERROR_INSUFFICIENT_SIZE with *count set to what it needs. Each session is a "<kind>_session.K"
 * key of `fields` comma-separated unsigned numbers, in the struct's order. */
static nvmlReturn_t get_sessions(nvmlDevice_t dev, const char *kind, unsigned int *count, unsigned int *infos,
                                 unsigned fields) {
        char key[48];
        unsigned dummy;
        snprintf(key, sizeof(key), "%s_sessions", kind);
        nvmlReturn_t r = get_uint(dev, key, &dummy);
        if (r != NVML_SUCCESS)
                return r;
        if (!count)
                return NVML_ERROR_INVALID_ARGUMENT;
        const char *lines[16];
        unsigned n = 0;
        for (unsigned k = 0; k < 16; k++) {
                snprintf(key, sizeof(key), "%s_session.%u", kind, k);
                if ((lines[n] = get(dev, key)))
                        n++;
        }
        if (*count == 0) {
                *count = n;
                return NVML_SUCCESS;
        }
        if (*count < n) {
                *count = n;
                return NVML_ERROR_INSUFFICIENT_SIZE;
        }
        if (!infos)
                return NVML_ERROR_INVALID_ARGUMENT;
        for (unsigned i = 0; i < n; i++) {
                const char *p = lines[i];
                for (unsigned f = 0; f < fields; f++) {
                        char *end;
                        infos[i * fields + f] = (unsigned) strtoul(p, &end, 0);
                        p = *end == ',' ? end + 1 : end;
                }
        }
        *count = n;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetEncoderSessions(nvmlDevice_t dev, unsigned int *count,
                                          nvmlEncoderSessionInfo_t *infos) {
        return get_sessions(dev, "encoder", count, (unsigned int *) infos,
                            sizeof(*infos) / sizeof(unsigned int));
}

nvmlReturn_t nvmlDeviceGetFBCSessions(nvmlDevice_t dev, unsigned int *count, nvmlFBCSessionInfo_t *infos) {
        return get_sessions(dev, "fbc", count, (unsigned int *) infos, sizeof(*infos) / sizeof(unsigned int));
}

nvmlReturn_t nvmlDeviceGetActiveVgpus(nvmlDevice_t dev, unsigned int *count, nvmlVgpuInstance_t *instances) {
        if (init_count == 0)
                return NVML_ERROR_UNINITIALIZED;
        if (!dev || !count || dev < gpus || dev >= gpus + MAX_GPUS)
                return NVML_ERROR_INVALID_ARGUMENT;
        nvmlVgpuInstance_t found[64];
        unsigned n = 0;
        for (unsigned m = 0; m < 64; m++) {
                char key[32];
                snprintf(key, sizeof(key), "vgpu.%u.mdev_uuid", m);
                if (get(dev, key))
                        found[n++] = (unsigned) (dev - gpus + 1) * 1000 + m;
        }
        if (*count < n || (n > 0 && !instances)) {
                *count = n;
                return NVML_ERROR_INSUFFICIENT_SIZE;
        }
        *count = n;
        if (n > 0)
                memcpy(instances, found, n * sizeof(found[0]));
        return NVML_SUCCESS;
}

/* A vGPU instance to its parent and "vgpu.M." key prefix; NULL when it is not running. */
static nvmlDevice_t vgpu_parent(nvmlVgpuInstance_t vgpu, char *prefix, size_t size) {
        unsigned g = vgpu / 1000, m = vgpu % 1000;
        if (g == 0 || g > n_gpus || m >= 64)
                return NULL;
        snprintf(prefix, size, "vgpu.%u.mdev_uuid", m);
        if (!get(&gpus[g - 1], prefix))
                return NULL;
        snprintf(prefix, size, "vgpu.%u.", m);
        return &gpus[g - 1];
}

nvmlReturn_t nvmlVgpuInstanceGetMdevUUID(nvmlVgpuInstance_t vgpu, char *uuid, unsigned int size) {
        char key[32];
        nvmlDevice_t dev = vgpu_parent(vgpu, key, sizeof(key));
        if (!dev)
                return init_count == 0 ? NVML_ERROR_UNINITIALIZED : NVML_ERROR_NOT_FOUND;
        strncat(key, "mdev_uuid", sizeof(key) - strlen(key) - 1);
        return get_string(dev, key, uuid, size);
}

nvmlReturn_t nvmlVgpuInstanceGetEncoderStats(nvmlVgpuInstance_t vgpu, unsigned int *sessions,
                                             unsigned int *fps, unsigned int *latency) {
        char key[32];
        nvmlDevice_t dev = vgpu_parent(vgpu, key, sizeof(key));
        if (!dev)
                return init_count == 0 ? NVML_ERROR_UNINITIALIZED : NVML_ERROR_NOT_FOUND;
        strncat(key, "encoder", sizeof(key) - strlen(key) - 1);
        return get_stream(dev, key, sessions, fps, latency);
}

nvmlReturn_t nvmlVgpuInstanceGetFBCStats(nvmlVgpuInstance_t vgpu, nvmlFBCStats_t *stats) {
        char key[32];
        nvmlDevice_t dev = vgpu_parent(vgpu, key, sizeof(key));
        if (!dev)
                return init_count == 0 ? NVML_ERROR_UNINITIALIZED : NVML_ERROR_NOT_FOUND;
        if (!stats)
                return NVML_ERROR_INVALID_ARGUMENT;
        strncat(key, "fbc", sizeof(key) - strlen(key) - 1);
        return get_stream(dev, key, &stats->sessionsCount, &stats->averageFPS, &stats->averageLatency);
}

nvmlReturn_t nvmlVgpuInstanceGetFrameRateLimit(nvmlVgpuInstance_t vgpu, unsigned int *limit) {
        char key[32];
        nvmlDevice_t dev = vgpu_parent(vgpu, key, sizeof(key));
        if (!dev)
                return init_count == 0 ? NVML_ERROR_UNINITIALIZED : NVML_ERROR_NOT_FOUND;
        strncat(key, "frame_rate_limit", sizeof(key) - strlen(key) - 1);
        nvmlReturn_t r = get_uint(dev, key, limit);
        return r == NVML_SUCCESS && *limit == 0 ? NVML_ERROR_NOT_SUPPORTED : r;
}

/* The opaque data carries the instance ("vgpu 1000"), so nvmlGetVgpuCompatibility finds the
 * vGPU it is asked about the way the real one decodes its blob: from the metadata alone. */
nvmlReturn_t nvmlVgpuInstanceGetMetadata(nvmlVgpuInstance_t vgpu, nvmlVgpuMetadata_t *meta,
                                         unsigned int *size) {
        char key[32];
        nvmlDevice_t dev = vgpu_parent(vgpu, key, sizeof(key));
        if (!dev)
                return init_count == 0 ? NVML_ERROR_UNINITIALIZED : NVML_ERROR_NOT_FOUND;
        unsigned need = (unsigned) offsetof(nvmlVgpuMetadata_t, opaqueData) + FAKE_OPAQUE_SIZE;
        if (!size || *size < need || !meta) {
                if (size)
                        *size = need;
                return NVML_ERROR_INSUFFICIENT_SIZE;
        }
        memset(meta, 0, need);
        meta->version = meta->revision = 1;
        strncat(key, "guest_driver", sizeof(key) - strlen(key) - 1);
        meta->guestInfoState = get_string(dev, key, meta->guestDriverVersion,
                                          sizeof(meta->guestDriverVersion)) == NVML_SUCCESS;
        meta->opaqueDataSize = FAKE_OPAQUE_SIZE;
        snprintf((char *) meta + offsetof(nvmlVgpuMetadata_t, opaqueData), FAKE_OPAQUE_SIZE, "vgpu %u", vgpu);
        *size = need;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetVgpuMetadata(nvmlDevice_t dev, nvmlVgpuPgpuMetadata_t *meta, unsigned int *size) {
        if (init_count == 0)
                return NVML_ERROR_UNINITIALIZED;
        if (!dev || dev < gpus || dev >= gpus + MAX_GPUS)
                return NVML_ERROR_INVALID_ARGUMENT;
        unsigned need = (unsigned) offsetof(nvmlVgpuPgpuMetadata_t, opaqueData) + FAKE_OPAQUE_SIZE;
        if (!size || *size < need || !meta) {
                if (size)
                        *size = need;
                return NVML_ERROR_INSUFFICIENT_SIZE;
        }
        memset(meta, 0, need);
        meta->version = meta->revision = 1;
        meta->opaqueDataSize = FAKE_OPAQUE_SIZE;
        snprintf((char *) meta + offsetof(nvmlVgpuPgpuMetadata_t, opaqueData), FAKE_OPAQUE_SIZE, "pgpu %u",
                 (unsigned) (dev - gpus));
        *size = need;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlGetVgpuCompatibility(nvmlVgpuMetadata_t *vgpu, nvmlVgpuPgpuMetadata_t *pgpu,
                                      nvmlVgpuPgpuCompatibility_t *compat) {
        unsigned instance, g;
        if (init_count == 0)
                return NVML_ERROR_UNINITIALIZED;
        if (!vgpu || !pgpu || !compat || sscanf(vgpu->opaqueData, "vgpu %u", &instance) != 1 ||
            sscanf(pgpu->opaqueData, "pgpu %u", &g) != 1)
                return NVML_ERROR_INVALID_ARGUMENT;
        char key[40];
        nvmlDevice_t dev = vgpu_parent(instance, key, sizeof(key));
        if (!dev || dev != &gpus[g])
                return NVML_ERROR_INVALID_ARGUMENT; /* metadata of a vGPU another GPU runs */
        unsigned limit = 0;
        strncat(key, "guest_compat_limit", sizeof(key) - strlen(key) - 1);
        (void) get_uint(dev, key, &limit);
        /* NVML_VGPU_VM_COMPATIBILITY_COLD|HIBERNATE|SLEEP|LIVE when nothing limits it */
        *compat = (nvmlVgpuPgpuCompatibility_t){ .vgpuVmCompatibility = limit ? 0 : 0xf,
                                                 .compatibilityLimitCode = limit };
        return NVML_SUCCESS;
}

static FILE *open_events(void) {
        const char *root = getenv("VGPU_ROOT");
        char path[4096];
        snprintf(path, sizeof(path), "%s/nvml-events", root ? root : "");
        return fopen(path, "re");
}

nvmlReturn_t nvmlEventSetCreate(nvmlEventSet_t *set) {
        if (init_count == 0)
                return NVML_ERROR_UNINITIALIZED;
        if (!set)
                return NVML_ERROR_INVALID_ARGUMENT;
        nvmlEventSet_t s = calloc(1, sizeof(*s));
        if (!s)
                return NVML_ERROR_INSUFFICIENT_SIZE;
        /* only what is appended from now on, as a real set sees only what happens after */
        FILE *f = open_events();
        if (f) {
                if (fseek(f, 0, SEEK_END) == 0)
                        s->offset = ftell(f);
                fclose(f);
        }
        *set = s;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlEventSetFree(nvmlEventSet_t set) {
        if (!set)
                return NVML_ERROR_INVALID_ARGUMENT;
        free(set);
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceGetSupportedEventTypes(nvmlDevice_t dev, unsigned long long *types) {
        if (init_count == 0)
                return NVML_ERROR_UNINITIALIZED;
        if (!dev || !types)
                return NVML_ERROR_INVALID_ARGUMENT;
        const char *v = get(dev, "supported_events");
        *types = v ? strtoull(v, NULL, 0)
                   : nvmlEventTypeXidCriticalError | nvmlEventTypeSingleBitEccError |
                                 nvmlEventTypeDoubleBitEccError;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlDeviceRegisterEvents(nvmlDevice_t dev, unsigned long long types, nvmlEventSet_t set) {
        if (init_count == 0)
                return NVML_ERROR_UNINITIALIZED;
        if (!dev || !set || dev < gpus || dev >= gpus + MAX_GPUS)
                return NVML_ERROR_INVALID_ARGUMENT;
        unsigned long long supported;
        nvmlDeviceGetSupportedEventTypes(dev, &supported);
        if (types & ~supported)
                return NVML_ERROR_NOT_SUPPORTED; /* as NVML: one unsupported type fails the call */
        set->types[dev - gpus] |= types;
        return NVML_SUCCESS;
}

nvmlReturn_t nvmlEventSetWait_v2(nvmlEventSet_t set, nvmlEventData_t *data, unsigned int timeoutms) {
        (void) timeoutms; /* events are in the file already, or not: nothing to wait for */
        if (init_count == 0)
                return NVML_ERROR_UNINITIALIZED;
        if (!set || !data)
                return NVML_ERROR_INVALID_ARGUMENT;
        FILE *f = open_events();
        if (!f)
                return NVML_ERROR_TIMEOUT;
        nvmlReturn_t r = NVML_ERROR_TIMEOUT;
        char line[256], bus_id[64], type[16];
        unsigned long long value;
        if (fseek(f, set->offset, SEEK_SET) == 0)
                while (r == NVML_ERROR_TIMEOUT && fgets(line, sizeof(line), f)) {
                        if (!strchr(line, '\n'))
                                break; /* half-written: read it next time */
                        set->offset = ftell(f);
                        if (sscanf(line, "%63s %15s %lli", bus_id, type, &value) != 3)
                                continue;
                        unsigned long long t = strcmp(type, "xid") == 0   ? nvmlEventTypeXidCriticalError
                                               : strcmp(type, "dbe") == 0 ? nvmlEventTypeDoubleBitEccError
                                               : strcmp(type, "sbe") == 0 ? nvmlEventTypeSingleBitEccError
                                                                          : 0;
                        nvmlDevice_t dev;
                        if (nvmlDeviceGetHandleByPciBusId_v2(bus_id, &dev) != NVML_SUCCESS ||
                            !(set->types[dev - gpus] & t))
                                continue;
                        *data = (nvmlEventData_t){
                                .device = dev,
                                .eventType = t,
                                .eventData = value,
                                .gpuInstanceId = 0xFFFFFFFFu,
                                .computeInstanceId = 0xFFFFFFFFu,
                        };
                        r = NVML_SUCCESS;
                }
        fclose(f);
        return r;
}

/* nvml.h: nvmlVgpuTypeGetFramebufferSize(nvmlVgpuTypeId_t, unsigned long long *): a type id the
 * driver does not know is an invalid argument. */
nvmlReturn_t nvmlVgpuTypeGetFramebufferSize(unsigned int type_id, unsigned long long *size) {
        if (init_count == 0)
                return NVML_ERROR_UNINITIALIZED;
        if (!size)
                return NVML_ERROR_INVALID_ARGUMENT;
        for (unsigned i = 0; i < n_vgpu_types; i++)
                if (vgpu_types[i].id == type_id) {
                        *size = vgpu_types[i].framebuffer;
                        return NVML_SUCCESS;
                }
        return NVML_ERROR_INVALID_ARGUMENT;
}
