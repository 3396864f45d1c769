/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * nvml-abi.h — the part of NVIDIA's management library ABI that libvgpu calls through dlopen():
 * types, structure layouts and constants as nvml.h of the R550 driver (NVML API version 12)
 * declares them. nvml.h is not in Debian main and libvgpu must build without NVIDIA's SDK, so
 * what is used is declared here under our own names; the values are NVML's and must not change.
 */
#pragma once

typedef int nvml_return_t;                      /* nvmlReturn_t */
typedef struct nvml_device *nvml_device_t;      /* nvmlDevice_t: opaque handle */
typedef struct nvml_event_set *nvml_event_set_t; /* nvmlEventSet_t: opaque handle */
typedef unsigned int nvml_vgpu_instance_t;      /* nvmlVgpuInstance_t */

enum {
        NVML_SUCCESS = 0,
        NVML_ERROR_NOT_SUPPORTED = 3,
        NVML_ERROR_NO_PERMISSION = 4,
        NVML_ERROR_INSUFFICIENT_SIZE = 7,       /* nvmlDeviceGetActiveVgpus: count set to what is needed */
        NVML_ERROR_TIMEOUT = 10,                /* nvmlEventSetWait_v2: nothing arrived in time */
};

enum {
        NVML_TEMPERATURE_GPU = 0,
        NVML_TEMPERATURE_THRESHOLD_SHUTDOWN = 0,
        NVML_TEMPERATURE_THRESHOLD_SLOWDOWN = 1,
};

typedef struct {                                /* nvmlMemory_t */
        unsigned long long total, free, used;
} nvml_memory_t;

typedef struct {                                /* nvmlMemory_v2_t: "used" includes "reserved" */
        unsigned int version;
        unsigned long long total;
        unsigned long long reserved;
        unsigned long long free;
        unsigned long long used;
} nvml_memory_v2_t;

/* NVML_STRUCT_VERSION(Memory, 2): the structure's size with the version in the top byte. */
#define NVML_MEMORY_V2_VERSION ((unsigned int) (sizeof(nvml_memory_v2_t) | (2u << 24)))

typedef struct {                                /* nvmlUtilization_t, percent */
        unsigned int gpu, memory;
} nvml_utilization_t;

/* nvmlEventType*: the bits nvmlDeviceRegisterEvents takes and nvmlEventData_t.eventType carries. */
enum {
        NVML_EVENT_TYPE_SINGLE_BIT_ECC_ERROR = 0x0001,
        NVML_EVENT_TYPE_DOUBLE_BIT_ECC_ERROR = 0x0002,
        NVML_EVENT_TYPE_XID_CRITICAL_ERROR   = 0x0008,
};

typedef struct {                                /* nvmlEventData_t */
        nvml_device_t device;
        unsigned long long event_type;
        unsigned long long event_data;          /* the Xid number for Xid events */
        unsigned int gpu_instance_id;           /* MIG; 0xFFFFFFFF when not applicable */
        unsigned int compute_instance_id;
} nvml_event_data_t;

typedef struct {                                /* nvmlFBCStats_t: frame capture (NVFBC) */
        unsigned int sessions_count;
        unsigned int average_fps;
        unsigned int average_latency;           /* microseconds */
} nvml_fbc_stats_t;
