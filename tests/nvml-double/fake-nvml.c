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
 *     gpu.N.persistence, gpu.N.virtualization_mode, gpu.N.host_vgpu_mode, gpu.N.mig_mode
 *     gpu.N.utilization_gpu                                     (percent)
 * A missing file makes nvmlInit_v2 fail with NVML_ERROR_DRIVER_NOT_LOADED, as on a host without
 * the driver; a missing key makes its getter return NVML_ERROR_NOT_SUPPORTED. Entry points
 * follow nvml.h's ABI (the versioned names nvml.h maps the plain ones to).
 */
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
        NVML_ERROR_NOT_FOUND = 6,
        NVML_ERROR_INSUFFICIENT_SIZE = 7,
        NVML_ERROR_DRIVER_NOT_LOADED = 9,
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
        unsigned int gpu, memory;
} nvmlUtilization_t;

#define MAX_GPUS 64
#define MAX_KEYS 32

struct kv {
        char key[32];
        char value[128];
};

struct nvmlDevice_st {
        struct kv kv[MAX_KEYS];
        size_t n_kv;
};
typedef struct nvmlDevice_st *nvmlDevice_t;

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
nvmlReturn_t nvmlDeviceGetVirtualizationMode(nvmlDevice_t dev, int *mode);
nvmlReturn_t nvmlDeviceGetHostVgpuMode(nvmlDevice_t dev, int *mode);
nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t dev, unsigned int *current, unsigned int *pending);
nvmlReturn_t nvmlDeviceGetUtilizationRates(nvmlDevice_t dev, nvmlUtilization_t *util);

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
        if (init_count == 0 && load_conf() < 0)
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
        case NVML_SUCCESS: return "Success";
        case NVML_ERROR_UNINITIALIZED: return "Uninitialized";
        case NVML_ERROR_INVALID_ARGUMENT: return "Invalid Argument";
        case NVML_ERROR_NOT_SUPPORTED: return "Not Supported";
        case NVML_ERROR_NOT_FOUND: return "Not Found";
        case NVML_ERROR_INSUFFICIENT_SIZE: return "Insufficient Size";
        case NVML_ERROR_DRIVER_NOT_LOADED: return "Driver Not Loaded";
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
                if (v && parse_bus_id(v, &d2, &b2, &s2, &f2) == 0 && d1 == d2 && b1 == b2 && s1 == s2 && f1 == f2) {
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
        case NVML_TEMPERATURE_THRESHOLD_SHUTDOWN: return get_uint(dev, "temp_shutdown", temp);
        case NVML_TEMPERATURE_THRESHOLD_SLOWDOWN: return get_uint(dev, "temp_slowdown", temp);
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
        util->gpu = gpu;
        util->memory = 0;
        return NVML_SUCCESS;
}
