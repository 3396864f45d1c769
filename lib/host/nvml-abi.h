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

typedef struct {                                /* nvmlEncoderSessionInfo_t: one NVENC session */
        unsigned int session_id;
        unsigned int pid;
        nvml_vgpu_instance_t vgpu_instance;     /* 0 when not a vGPU's */
        unsigned int codec_type;                /* nvmlEncoderType_t: 0 H.264, 1 HEVC, 2 AV1 */
        unsigned int h_resolution;
        unsigned int v_resolution;
        unsigned int average_fps;
        unsigned int average_latency;           /* microseconds */
} nvml_encoder_session_info_t;

typedef struct {                                /* nvmlFBCSessionInfo_t: one frame capture session */
        unsigned int session_id;
        unsigned int pid;
        nvml_vgpu_instance_t vgpu_instance;
        unsigned int display_ordinal;
        unsigned int session_type;              /* nvmlFBCSessionType_t */
        unsigned int session_flags;
        unsigned int h_max_resolution;
        unsigned int v_max_resolution;
        unsigned int h_resolution;
        unsigned int v_resolution;
        unsigned int average_fps;
        unsigned int average_latency;           /* microseconds */
} nvml_fbc_session_info_t;

/* Host/guest driver compatibility of a running vGPU (nvmlVgpuInstanceGetMetadata,
 * nvmlDeviceGetVgpuMetadata, nvmlGetVgpuCompatibility). Both metadata structures end in opaque
 * data of opaqueDataSize bytes that the caller's buffer must hold (NVML_ERROR_INSUFFICIENT_SIZE
 * otherwise), so they are read into a larger buffer: NVML_VGPU_METADATA_BUFFER. */
#define NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE 80
#define NVML_VGPU_METADATA_BUFFER 4096

enum {                                          /* nvmlVgpuGuestInfoState_t */
        NVML_VGPU_INSTANCE_GUEST_INFO_STATE_UNINITIALIZED = 0,  /* no guest driver loaded */
        NVML_VGPU_INSTANCE_GUEST_INFO_STATE_INITIALIZED = 1,
};

typedef struct {                                /* nvmlVgpuMetadata_t */
        unsigned int version;
        unsigned int revision;
        int guest_info_state;                   /* nvmlVgpuGuestInfoState_t */
        char guest_driver_version[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
        char host_driver_version[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
        unsigned int reserved[6];
        unsigned int vgpu_virtualization_caps;
        unsigned int guest_vgpu_version;
        unsigned int opaque_data_size;
        char opaque_data[4];
} nvml_vgpu_metadata_t;

typedef struct {                                /* nvmlVgpuPgpuMetadata_t */
        unsigned int version;
        unsigned int revision;
        char host_driver_version[NVML_SYSTEM_DRIVER_VERSION_BUFFER_SIZE];
        unsigned int pgpu_virtualization_caps;
        unsigned int reserved[5];
        unsigned int host_supported_vgpu_min, host_supported_vgpu_max;  /* nvmlVgpuVersion_t */
        unsigned int opaque_data_size;
        char opaque_data[4];
} nvml_vgpu_pgpu_metadata_t;

enum {                                          /* nvmlVgpuVmCompatibility_t: bits */
        NVML_VGPU_VM_COMPATIBILITY_NONE = 0x0,  /* the vGPU cannot run on this pGPU/host driver */
};

typedef struct {                                /* nvmlVgpuPgpuCompatibility_t */
        unsigned int vgpu_vm_compatibility;     /* nvmlVgpuVmCompatibility_t */
        unsigned int compatibility_limit_code;  /* nvmlVgpuPgpuCompatibilityLimitCode_t: VGPU_NVML_COMPAT_LIMIT_* */
} nvml_vgpu_pgpu_compatibility_t;
