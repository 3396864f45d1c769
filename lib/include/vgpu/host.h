/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * host.h — the host snapshot: every GPU, virtual function, IOMMU group, mediated-device parent,
 * type and instance on this host, read once from sysfs (and NVML when present).
 *
 * The snapshot is plain, read-only data owned by struct vgpu_host: read it freely, free it with
 * vgpu_host_free(). Nothing in it changes after vgpu_host_scan() returns, so a command sees one
 * consistent picture even if the kernel changes things meanwhile. Unknown numbers are -1 (or 0
 * where noted), unknown strings NULL: callers print them as null, never as a guess.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vgpu/error.h"
#include "vgpu/cleanup.h"

#ifdef __cplusplus
extern "C" {
#endif

#define VGPU_BDF_MAX  16 /* "0000:3b:00.0" + NUL, with room */
#define VGPU_UUID_MAX 37

/* PCIe link as the kernel reports it; speeds in GT/s, 0 when unknown (non-PCIe, VF). */
struct vgpu_link {
        double speed_current;
        double speed_max;
        int width_current;
        int width_max;
};

/* One memory BAR from the `resource` file (I/O BARs and empty slots are left out). */
struct vgpu_bar {
        int index;      /* 0-5, 6 = expansion ROM */
        uint64_t start; /* 0: the firmware did not place it */
        uint64_t size;
        bool is_64bit;
        bool prefetchable;
};

/* A video stream engine's load as NVML averages it: the hardware encoder (NVENC) or frame
 * capture (NVFBC), which a VDI session's remote display protocol runs through. */
struct vgpu_nvml_stream_stats {
        int sessions;           /* -1 unknown (NVML lacks the call or the GPU does not say) */
        int average_fps;        /* over the sessions; 0 without sessions */
        int average_latency_us; /* microseconds per frame; 0 without sessions */
};

/* One encoder (NVENC) or frame capture (NVFBC) session (nvmlDeviceGetEncoderSessions,
 * nvmlDeviceGetFBCSessions): which process, which vGPU, at what size and rate. */
struct vgpu_nvml_session {
        unsigned id;
        unsigned pid;           /* the owning process (on a vGPU host: its QEMU's vGPU plugin) */
        unsigned vgpu_instance; /* nvmlVgpuInstance_t it belongs to, 0 none */
        unsigned kind;          /* encoder: nvmlEncoderType_t; frame capture: nvmlFBCSessionType_t */
        unsigned display;       /* frame capture: the display ordinal; encoder: 0 */
        unsigned h_resolution, v_resolution;
        unsigned average_fps;
        unsigned average_latency_us;
};

/* "h264", "hevc", "av1" or "unknown" (nvmlEncoderType_t) */
const char *vgpu_nvml_encoder_codec_to_string(unsigned codec);
/* "tosys", "cuda", "vid", "hwenc" or "unknown" (nvmlFBCSessionType_t) */
const char *vgpu_nvml_fbc_type_to_string(unsigned type);

/* One running vGPU as NVML knows it (nvmlDeviceGetActiveVgpus on its parent). */
/* nvmlGetVgpuCompatibility's verdict on a running vGPU's guest driver and this host. */
enum vgpu_nvml_compat {
        VGPU_NVML_COMPAT_UNKNOWN = 0, /* no guest driver loaded, or NVML could not tell */
        VGPU_NVML_COMPAT_COMPATIBLE,
        VGPU_NVML_COMPAT_INCOMPATIBLE,
};

/* nvmlVgpuPgpuCompatibilityLimitCode_t: NVML's values, what limits the compatibility. */
#define VGPU_NVML_COMPAT_LIMIT_HOST_DRIVER  0x1u
#define VGPU_NVML_COMPAT_LIMIT_GUEST_DRIVER 0x2u
#define VGPU_NVML_COMPAT_LIMIT_GPU          0x4u
#define VGPU_NVML_COMPAT_LIMIT_OTHER        0x80000000u

/* "compatible", "incompatible", "unknown" */
const char *vgpu_nvml_compat_to_string(enum vgpu_nvml_compat c);
/* One VGPU_NVML_COMPAT_LIMIT_* bit: "host_driver", "guest_driver", "gpu", "other" (any other bit). */
const char *vgpu_nvml_compat_limit_to_string(unsigned bit);

struct vgpu_nvml_vgpu {
        unsigned instance;             /* nvmlVgpuInstance_t */
        char mdev_uuid[VGPU_UUID_MAX]; /* the mdev it runs as, lower case; "" when NVML does not say */
        struct vgpu_nvml_stream_stats encoder;
        struct vgpu_nvml_stream_stats frame_capture;
        int frame_rate_limit;               /* fps the vGPU is held to now, 0 none, -1 unknown */
        char guest_driver_version[80];      /* the guest's NVIDIA driver; "" when none is loaded or unknown */
        enum vgpu_nvml_compat guest_compat; /* NVML's verdict on host and guest driver */
        unsigned guest_compat_limits;       /* VGPU_NVML_COMPAT_LIMIT_* bits: what limits it */
};

/* Readings from NVIDIA's management library, present only when NVML answered for this GPU. */
struct vgpu_nvml_gpu {
        char *name;
        char *uuid;
        uint64_t memory_total; /* bytes */
        uint64_t memory_used;
        int temperature;   /* C, -1 unknown */
        int temp_slowdown; /* C, -1 unknown */
        int temp_shutdown; /* C, -1 unknown */
        int power_mw;      /* -1 unknown */
        int power_limit_mw;
        int persistence_mode;    /* 0/1, -1 unknown */
        int virtualization_mode; /* nvmlGpuVirtualizationMode_t, -1 unknown */
        int mig_mode;            /* 0/1, -1 unknown or unsupported */
        int utilization_gpu;     /* percent of the last sample period a kernel ran, -1 unknown */
        int utilization_memory;  /* percent of it device memory was read or written, -1 unknown */
        int64_t memory_reserved; /* bytes the driver keeps for itself (nvmlMemory_v2), -1 unknown */
        bool clocks_event_reasons_known;
        uint64_t clocks_event_reasons; /* VGPU_NVML_CLOCKS_EVENT_* bits: why clocks are held down now */
        int pcie_gen_current;          /* PCIe generation 1-6 the link runs at, -1 unknown */
        int pcie_gen_max;              /* the most the GPU and its slot can do, -1 unknown */
        int pcie_width_current;        /* lanes, -1 unknown */
        int pcie_width_max;
        struct vgpu_nvml_stream_stats encoder; /* the whole GPU's, all vGPUs included */
        struct vgpu_nvml_stream_stats frame_capture;
        /* each session, the vGPUs' included (vgpu_instance); NULL + !known: NVML cannot list them */
        struct vgpu_nvml_session *encoder_sessions;
        size_t n_encoder_sessions;
        bool encoder_sessions_known;
        struct vgpu_nvml_session *frame_capture_sessions;
        size_t n_frame_capture_sessions;
        bool frame_capture_sessions_known;
        struct vgpu_nvml_vgpu *vgpus; /* running vGPUs (vGPU host driver only) */
        size_t n_vgpus;
        char *driver_version; /* the host driver (nvmlSystemGetDriverVersion), NULL unknown */
};

/* NVML's clocks-event (formerly "throttle") reasons: the values of nvml.h's
 * nvmlClocksEventReason* / nvmlClocksThrottleReason* macros, which NVML documents as stable. */
enum {
        VGPU_NVML_CLOCKS_EVENT_GPU_IDLE = 0x001,
        VGPU_NVML_CLOCKS_EVENT_APPLICATIONS_CLOCKS = 0x002,
        VGPU_NVML_CLOCKS_EVENT_SW_POWER_CAP = 0x004,
        VGPU_NVML_CLOCKS_EVENT_HW_SLOWDOWN = 0x008,
        VGPU_NVML_CLOCKS_EVENT_SYNC_BOOST = 0x010,
        VGPU_NVML_CLOCKS_EVENT_SW_THERMAL_SLOWDOWN = 0x020,
        VGPU_NVML_CLOCKS_EVENT_HW_THERMAL_SLOWDOWN = 0x040,
        VGPU_NVML_CLOCKS_EVENT_HW_POWER_BRAKE_SLOWDOWN = 0x080,
        VGPU_NVML_CLOCKS_EVENT_DISPLAY_CLOCK_SETTING = 0x100,
};
#define VGPU_NVML_CLOCKS_EVENT_THERMAL \
        (VGPU_NVML_CLOCKS_EVENT_SW_THERMAL_SLOWDOWN | VGPU_NVML_CLOCKS_EVENT_HW_THERMAL_SLOWDOWN)

/* The name of one reason bit ("gpu_idle", "sw_thermal_slowdown", ...; the metric label and JSON
 * value), NULL for a bit NVML has not defined. Iterate with bit = 1 << i for i < 32. */
const char *vgpu_nvml_clocks_event_to_string(uint64_t bit);

/* PCI vendor IDs of the GPU makers libvgpu has backends for (struct vgpu_gpu's vendor_id). */
#define VGPU_PCI_VENDOR_NVIDIA 0x10de
#define VGPU_PCI_VENDOR_AMD    0x1002
#define VGPU_PCI_VENDOR_INTEL  0x8086

/* A display/3D-class PCI function (class 0x03xxxx): a physical GPU or one of its VFs. */
struct vgpu_gpu {
        char bdf[VGPU_BDF_MAX];
        uint16_t vendor_id, device_id;
        uint16_t subsystem_vendor_id, subsystem_device_id;
        uint32_t class_code;
        char *vendor_name; /* pci.ids, with VGPU_SCAN_NAMES; else NULL */
        char *device_name;
        char *driver;          /* bound driver, NULL when none */
        int iommu_group;       /* -1 when the IOMMU is off (or not asked: GROUPS) */
        int numa_node;         /* -1 when unknown; a VF has its PF's */
        struct vgpu_link link; /* a VF shares its PF's link: zeros for VFs */

        bool sriov; /* has the SR-IOV capability (sriov_totalvfs exists) */
        unsigned total_vfs, num_vfs;
        char (*vfs)[VGPU_BDF_MAX]; /* BDFs of enabled VFs, n_vfs of them */
        size_t n_vfs;
        char physfn[VGPU_BDF_MAX]; /* the PF's BDF when this is a VF, "" otherwise */

        bool mdev_parent; /* has mdev_supported_types */
        bool nvidia_vfio; /* NVIDIA vendor-VFIO VF (has nvidia/creatable_vgpu_types) */

        struct vgpu_bar *bars;
        size_t n_bars;

        int hwmon_temp_mc; /* hwmon temp1_input in millidegrees, INT32_MIN unknown */
        int hwmon_crit_mc; /* temp1_crit (or temp1_max), INT32_MIN unknown */

        struct vgpu_nvml_gpu *nvml; /* NULL without NVML (normal on non-NVIDIA hosts) */

        /* What of this GPU could not be read, with the path ("/sys/bus/pci/devices/0000:3b:00.0/
         * resource: line 2 is not ..."); NULL when everything was. A bad attribute of one GPU
         * leaves what it describes unknown (here: no BARs), never the scan of the host failed. */
        char *problem;
};

/* An NVIDIA physical function, not one of its VFs: what NVML, persistence and slices are about. */
static inline bool vgpu_gpu_is_nvidia_pf(const struct vgpu_gpu *g) {
        return g->vendor_id == VGPU_PCI_VENDOR_NVIDIA && !g->physfn[0];
}

enum vgpu_type_kind {
        VGPU_TYPE_MDEV,        /* mdev_supported_types/<id> */
        VGPU_TYPE_NVIDIA_VFIO, /* NVIDIA vendor-VFIO: nvidia/creatable_vgpu_types on a VF */
};

/* A vGPU type a parent can create. */
struct vgpu_type {
        const char *parent;          /* the parent's name (points into struct vgpu_parent) */
        char *id;                    /* "nvidia-63", "mbochs-small", or "1155" for vendor-VFIO */
        char *name;                  /* NULL when the driver provides none */
        char *description;           /* NULL when the driver provides none */
        char *device_api;            /* "vfio-pci"; NULL when unknown */
        int64_t available_instances; /* -1 unknown */
        int64_t framebuffer_bytes;   /* parsed from the vendor's description; -1 unknown */
        int64_t max_instances;       /* parsed from the vendor's description; -1 unknown */
        enum vgpu_type_kind kind;
};

/* A device that can host vGPUs: an mdev parent, or a vendor-VFIO VF. */
struct vgpu_parent {
        char *name;                 /* BDF for PCI parents, device name ("mtty") otherwise */
        char *driver;               /* driver of the parent device, NULL when none */
        const struct vgpu_gpu *gpu; /* the GPU entry when the parent is a display function */
        struct vgpu_type *types;    /* with VGPU_SCAN_TYPES (or once vgpu_parent_pick_type() read them) */
        size_t n_types;
        uint64_t generation; /* changes when the kernel registers the parent again; 0 unknown */
};

/* A created vGPU: an mdev device, or a vendor-VFIO VF with a type set. */
struct vgpu_instance {
        char uuid[VGPU_UUID_MAX]; /* "" for vendor-VFIO VFs, which have no UUID */
        char *parent;
        char *type;      /* type id */
        int iommu_group; /* -1 when unknown (or not asked: GROUPS) */
        enum vgpu_type_kind kind;
};

/* A PCI function in an IOMMU group that holds a GPU. */
struct vgpu_group_member {
        char bdf[VGPU_BDF_MAX];
        uint32_t class_code;
        char *driver;
};

struct vgpu_iommu_group {
        int id;
        struct vgpu_group_member *members;
        size_t n_members;
};

struct vgpu_host {
        char *kernel_release;      /* /proc/sys/kernel/osrelease */
        char *nvml_driver_version; /* NULL without NVML */

        struct vgpu_gpu *gpus; /* sorted by BDF */
        size_t n_gpus;
        struct vgpu_parent *parents; /* sorted by name; with VGPU_SCAN_TYPES */
        size_t n_parents;
        struct vgpu_instance *instances; /* sorted by parent, then uuid */
        size_t n_instances;
        struct vgpu_iommu_group *groups; /* groups holding a GPU, sorted by id; VGPU_SCAN_GROUPS */
        size_t n_groups;
};

/*
 * What to read beyond the GPUs' ids, driver, SR-IOV state and VF/PF relation, which are always
 * read. Each costs time on big hosts (thousands of sysfs reads), so commands ask for what they
 * show; fields not asked for keep their "unknown" value.
 */
enum {
        VGPU_SCAN_TYPES = 1 << 0,     /* mdev parents and their types */
        VGPU_SCAN_GROUPS = 1 << 1,    /* IOMMU group of each GPU and instance, each group's members */
        VGPU_SCAN_NAMES = 1 << 2,     /* vendor/device names from pci.ids (libpci) */
        VGPU_SCAN_NVML = 1 << 3,      /* NVML readings, if libnvidia-ml.so.1 loads */
        VGPU_SCAN_DETAILS = 1 << 4,   /* link, NUMA, BARs, hwmon of physical functions */
        VGPU_SCAN_INSTANCES = 1 << 5, /* vGPU instances */
        VGPU_SCAN_PARENTS = 1 << 6,   /* the parents alone, without their types */
        VGPU_SCAN_ALL = 0xff,
};

/* Read the host. Returns 0 or -errno with *err filled; *ret is set only on success. */
int vgpu_host_scan(unsigned flags, struct vgpu_host **ret, struct vgpu_error *err);
/* Free a snapshot vgpu_host_scan() returned (and nothing else: it owns more than it shows). */
void vgpu_host_free(struct vgpu_host *host);
VGPU_DEFINE_FREEP(struct vgpu_host, vgpu_host_free)

/* Lookups on a snapshot; NULL when absent. */
const struct vgpu_gpu *vgpu_host_find_gpu(const struct vgpu_host *host, const char *bdf);
const struct vgpu_parent *vgpu_host_find_parent(const struct vgpu_host *host, const char *name);
const struct vgpu_iommu_group *vgpu_host_find_group(const struct vgpu_host *host, int id);

/* The type of parent (a name as vgpu_host_find_parent() takes) for a vGPU of at least bytes of
 * frame buffer: the smallest that gives as much; of several that size, one running on the parent,
 * else the first listed. Types of unknown frame buffer are never picked. Reads the parent's types
 * when the scan did not. -ENOSPC when none is that large (the message names the largest),
 * -ENOENT when no type's frame buffer is known, -ENODEV without such a parent. *ret points into
 * host. */
int vgpu_parent_pick_type(const struct vgpu_host *host, const char *parent, uint64_t bytes,
                          const struct vgpu_type **ret, struct vgpu_error *err);

/* Normalise "3b:00.0" or "0000:3B:00.0" to "0000:3b:00.0". Returns 0 or -EINVAL. */
int vgpu_bdf_normalize(const char *in, char ret[VGPU_BDF_MAX]);

/* The library version ("0.1.0"). */
const char *vgpu_version(void);

#ifdef __cplusplus
}
#endif
