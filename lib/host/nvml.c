/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * nvml.c — NVIDIA's management library, loaded with dlopen("libnvidia-ml.so.1") so that
 * libvgpu has no build-time NVIDIA dependency and runs unchanged on hosts without NVIDIA.
 * Absent library, failed nvmlInit or a GPU NVML does not know: not an error, no readings.
 *
 * The few NVML types used are declared in nvml-abi.h with NVML's documented ABI (nvml.h is not
 * in Debian main); each entry point is looked up by its versioned name, as nvml.h maps them.
 * Newer entry points fall back to the older ones they replaced, so drivers from before the
 * rename (R535 renamed "throttle" reasons to "clocks event" reasons) still answer.
 */
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "host-internal.h"
#include "nvml-abi.h"

/* nvmlDeviceGetEncoderSessions and nvmlDeviceGetFBCSessions: (device, count in/out, array) */
typedef nvml_return_t (*nvml_sessions_fn)(nvml_device_t, unsigned *, void *);

struct nvml {
        void *dl;
        nvml_return_t (*init)(void);
        nvml_return_t (*shutdown)(void);
        nvml_return_t (*driver_version)(char *, unsigned);
        nvml_return_t (*by_bus_id)(const char *, nvml_device_t *);
        nvml_return_t (*name)(nvml_device_t, char *, unsigned);
        nvml_return_t (*uuid)(nvml_device_t, char *, unsigned);
        nvml_return_t (*memory)(nvml_device_t, nvml_memory_t *);
        nvml_return_t (*memory_v2)(nvml_device_t, nvml_memory_v2_t *);
        nvml_return_t (*temperature)(nvml_device_t, int, unsigned *);
        nvml_return_t (*threshold)(nvml_device_t, int, unsigned *);
        nvml_return_t (*power)(nvml_device_t, unsigned *);
        nvml_return_t (*power_limit)(nvml_device_t, unsigned *);
        nvml_return_t (*persistence)(nvml_device_t, int *);
        nvml_return_t (*virt_mode)(nvml_device_t, int *);
        nvml_return_t (*mig_mode)(nvml_device_t, unsigned *, unsigned *);
        nvml_return_t (*utilization)(nvml_device_t, nvml_utilization_t *);
        nvml_return_t (*clocks_event_reasons)(nvml_device_t, unsigned long long *);
        nvml_return_t (*pcie_gen)(nvml_device_t, unsigned *);
        nvml_return_t (*pcie_gen_max)(nvml_device_t, unsigned *);
        nvml_return_t (*pcie_width)(nvml_device_t, unsigned *);
        nvml_return_t (*pcie_width_max)(nvml_device_t, unsigned *);
        nvml_return_t (*encoder_stats)(nvml_device_t, unsigned *, unsigned *, unsigned *);
        nvml_return_t (*fbc_stats)(nvml_device_t, nvml_fbc_stats_t *);
        nvml_sessions_fn encoder_sessions; /* element nvml_encoder_session_info_t */
        nvml_sessions_fn fbc_sessions;     /* element nvml_fbc_session_info_t */
        nvml_return_t (*active_vgpus)(nvml_device_t, unsigned *, nvml_vgpu_instance_t *);
        nvml_return_t (*vgpu_mdev_uuid)(nvml_vgpu_instance_t, char *, unsigned);
        nvml_return_t (*vgpu_encoder_stats)(nvml_vgpu_instance_t, unsigned *, unsigned *, unsigned *);
        nvml_return_t (*vgpu_fbc_stats)(nvml_vgpu_instance_t, nvml_fbc_stats_t *);
        nvml_return_t (*vgpu_frame_rate_limit)(nvml_vgpu_instance_t, unsigned *);
        nvml_return_t (*vgpu_metadata)(nvml_vgpu_instance_t, nvml_vgpu_metadata_t *, unsigned *);
        nvml_return_t (*pgpu_metadata)(nvml_device_t, nvml_vgpu_pgpu_metadata_t *, unsigned *);
        nvml_return_t (*vgpu_compatibility)(nvml_vgpu_metadata_t *, nvml_vgpu_pgpu_metadata_t *,
                                            nvml_vgpu_pgpu_compatibility_t *);
};

static bool nvml_load(struct nvml *n) {
        n->dl = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
        if (!n->dl)
                return false;
#define SYM(field, name) (*(void **) &n->field = dlsym(n->dl, name))
        SYM(init, "nvmlInit_v2");
        SYM(shutdown, "nvmlShutdown");
        SYM(driver_version, "nvmlSystemGetDriverVersion");
        SYM(by_bus_id, "nvmlDeviceGetHandleByPciBusId_v2");
        SYM(name, "nvmlDeviceGetName");
        SYM(uuid, "nvmlDeviceGetUUID");
        SYM(memory, "nvmlDeviceGetMemoryInfo");
        SYM(memory_v2, "nvmlDeviceGetMemoryInfo_v2"); /* R510 and later: adds reserved */
        SYM(temperature, "nvmlDeviceGetTemperature");
        SYM(threshold, "nvmlDeviceGetTemperatureThreshold");
        SYM(power, "nvmlDeviceGetPowerUsage");
        SYM(power_limit, "nvmlDeviceGetEnforcedPowerLimit");
        SYM(persistence, "nvmlDeviceGetPersistenceMode");
        SYM(virt_mode, "nvmlDeviceGetVirtualizationMode");
        SYM(mig_mode, "nvmlDeviceGetMigMode");
        SYM(utilization, "nvmlDeviceGetUtilizationRates");
        SYM(clocks_event_reasons, "nvmlDeviceGetCurrentClocksEventReasons");
        if (!n->clocks_event_reasons) /* before R535: the same call under its old name */
                SYM(clocks_event_reasons, "nvmlDeviceGetCurrentClocksThrottleReasons");
        SYM(pcie_gen, "nvmlDeviceGetCurrPcieLinkGeneration");
        SYM(pcie_gen_max, "nvmlDeviceGetMaxPcieLinkGeneration");
        SYM(pcie_width, "nvmlDeviceGetCurrPcieLinkWidth");
        SYM(pcie_width_max, "nvmlDeviceGetMaxPcieLinkWidth");
        /* VDI: encoder and frame-capture load, and the vGPUs running (vGPU host drivers only) */
        SYM(encoder_stats, "nvmlDeviceGetEncoderStats");
        SYM(fbc_stats, "nvmlDeviceGetFBCStats");
        SYM(encoder_sessions, "nvmlDeviceGetEncoderSessions");
        SYM(fbc_sessions, "nvmlDeviceGetFBCSessions");
        SYM(active_vgpus, "nvmlDeviceGetActiveVgpus");
        SYM(vgpu_mdev_uuid, "nvmlVgpuInstanceGetMdevUUID");
        SYM(vgpu_encoder_stats, "nvmlVgpuInstanceGetEncoderStats");
        SYM(vgpu_fbc_stats, "nvmlVgpuInstanceGetFBCStats");
        SYM(vgpu_frame_rate_limit, "nvmlVgpuInstanceGetFrameRateLimit");
        /* host vs guest driver: the guest's version and NVML's verdict on the pair */
        SYM(vgpu_metadata, "nvmlVgpuInstanceGetMetadata");
        SYM(pgpu_metadata, "nvmlDeviceGetVgpuMetadata");
        SYM(vgpu_compatibility, "nvmlGetVgpuCompatibility");
#undef SYM
        /* Without these three nothing can be read at all. */
        return n->init && n->shutdown && n->by_bus_id;
}

#define UMIN(a, b)     ((a) < (b) ? (a) : (b))
#define STREAM_UNKNOWN ((struct vgpu_nvml_stream_stats){ .sessions = -1 })

static struct vgpu_nvml_stream_stats stream_stats(unsigned sessions, unsigned fps, unsigned latency_us) {
        return (struct vgpu_nvml_stream_stats){
                .sessions = (int) UMIN(sessions, (unsigned) INT_MAX),
                .average_fps = (int) UMIN(fps, (unsigned) INT_MAX),
                .average_latency_us = (int) UMIN(latency_us, (unsigned) INT_MAX),
        };
}

_public_ const char *vgpu_nvml_compat_to_string(enum vgpu_nvml_compat c) {
        return c == VGPU_NVML_COMPAT_COMPATIBLE     ? "compatible"
               : c == VGPU_NVML_COMPAT_INCOMPATIBLE ? "incompatible"
                                                    : "unknown";
}

_public_ const char *vgpu_nvml_compat_limit_to_string(unsigned bit) {
        switch (bit) {
        case VGPU_NVML_COMPAT_LIMIT_HOST_DRIVER:
                return "host_driver";
        case VGPU_NVML_COMPAT_LIMIT_GUEST_DRIVER:
                return "guest_driver";
        case VGPU_NVML_COMPAT_LIMIT_GPU:
                return "gpu";
        default:
                return "other";
        }
}

/* The guest driver of one running vGPU and whether NVML finds it compatible with this host's
 * driver and GPU. pgpu is the parent's metadata, NULL when NVML gave none. Without a guest
 * driver (guestInfoState uninitialized) there is nothing to judge: the verdict stays unknown. */
static void read_guest_driver(const struct nvml *n, nvml_vgpu_instance_t id, nvml_vgpu_pgpu_metadata_t *pgpu,
                              struct vgpu_nvml_vgpu *v) {
        /* unsigned storage: aligned for the structure, room for its opaque tail */
        unsigned meta_buf[NVML_VGPU_METADATA_BUFFER / sizeof(unsigned)] = {};
        nvml_vgpu_metadata_t *meta = (nvml_vgpu_metadata_t *) meta_buf;
        unsigned size = sizeof(meta_buf);

        if (!n->vgpu_metadata || n->vgpu_metadata(id, meta, &size) != 0 ||
            meta->guest_info_state != NVML_VGPU_INSTANCE_GUEST_INFO_STATE_INITIALIZED)
                return;
        meta->guest_driver_version[sizeof(meta->guest_driver_version) - 1] = '\0';
        snprintf(v->guest_driver_version, sizeof(v->guest_driver_version), "%s", meta->guest_driver_version);

        nvml_vgpu_pgpu_compatibility_t compat = {};
        if (!pgpu || !n->vgpu_compatibility || n->vgpu_compatibility(meta, pgpu, &compat) != 0)
                return;
        v->guest_compat = compat.vgpu_vm_compatibility == NVML_VGPU_VM_COMPATIBILITY_NONE
                                  ? VGPU_NVML_COMPAT_INCOMPATIBLE
                                  : VGPU_NVML_COMPAT_COMPATIBLE;
        v->guest_compat_limits = compat.compatibility_limit_code;
}

/* One of NVML's session lists (nvmlDeviceGetEncoderSessions / nvmlDeviceGetFBCSessions, whose
 * element types differ: info_size and convert say how to read one). The count first (count 0, no
 * buffer), then a buffer with some room; a list that outgrew it is asked again once, then left
 * unknown. */
static int read_session_list(nvml_sessions_fn fn, size_t info_size,
                             struct vgpu_nvml_session (*convert)(const void *), nvml_device_t dev,
                             struct vgpu_nvml_session **ret, size_t *ret_n, bool *ret_known) {
        unsigned count = 0;
        if (!fn || fn(dev, &count, NULL) != 0)
                return 0;
        for (int try = 0; try < 2; try++) {
                if (count == 0) {
                        *ret_known = true;
                        return 0;
                }
                unsigned want = count + 4; /* sessions started since the count */
                _cleanup_free_ uint8_t *infos = calloc(want, info_size);
                if (!infos)
                        return -ENOMEM;
                count = want;
                nvml_return_t r = fn(dev, &count, infos);
                if (r == NVML_ERROR_INSUFFICIENT_SIZE)
                        continue;
                if (r != 0)
                        return 0;
                count = UMIN(count, want);
                if (count > 0 && !(*ret = calloc(count, sizeof(**ret))))
                        return -ENOMEM;
                for (unsigned i = 0; i < count; i++)
                        (*ret)[i] = convert(infos + i * info_size);
                *ret_n = count;
                *ret_known = true;
                return 0;
        }
        return 0;
}

static struct vgpu_nvml_session encoder_session(const void *p) {
        const nvml_encoder_session_info_t *s = p;
        return (struct vgpu_nvml_session){
                .id = s->session_id,
                .pid = s->pid,
                .vgpu_instance = s->vgpu_instance,
                .kind = s->codec_type,
                .h_resolution = s->h_resolution,
                .v_resolution = s->v_resolution,
                .average_fps = s->average_fps,
                .average_latency_us = s->average_latency,
        };
}

static struct vgpu_nvml_session fbc_session(const void *p) {
        const nvml_fbc_session_info_t *s = p;
        return (struct vgpu_nvml_session){
                .id = s->session_id,
                .pid = s->pid,
                .vgpu_instance = s->vgpu_instance,
                .kind = s->session_type,
                .display = s->display_ordinal,
                .h_resolution = s->h_resolution,
                .v_resolution = s->v_resolution,
                .average_fps = s->average_fps,
                .average_latency_us = s->average_latency,
        };
}

static int read_sessions(const struct nvml *n, nvml_device_t dev, struct vgpu_nvml_gpu *out) {
        int r = read_session_list(n->encoder_sessions, sizeof(nvml_encoder_session_info_t), encoder_session,
                                  dev, &out->encoder_sessions, &out->n_encoder_sessions,
                                  &out->encoder_sessions_known);
        if (r < 0)
                return r;
        return read_session_list(n->fbc_sessions, sizeof(nvml_fbc_session_info_t), fbc_session, dev,
                                 &out->frame_capture_sessions, &out->n_frame_capture_sessions,
                                 &out->frame_capture_sessions_known);
}

/* The vGPUs running on one parent, with what NVML says of each; none when NVML cannot list them
 * (not a vGPU host driver, or an older one). */
static int read_vgpus(const struct nvml *n, nvml_device_t dev, struct vgpu_nvml_gpu *out) {
        nvml_vgpu_instance_t ids[64]; /* more than any GPU can run (an A16's four GPUs: 16 each) */
        unsigned count = ELEMENTSOF(ids), u, u2, u3;
        nvml_fbc_stats_t fbc;
        char buf[96];

        if (!n->active_vgpus || n->active_vgpus(dev, &count, ids) != 0 || count == 0)
                return 0;
        count = UMIN(count, (unsigned) ELEMENTSOF(ids));
        unsigned pgpu_buf[NVML_VGPU_METADATA_BUFFER / sizeof(unsigned)] = {};
        nvml_vgpu_pgpu_metadata_t *pgpu = (nvml_vgpu_pgpu_metadata_t *) pgpu_buf;
        unsigned pgpu_size = sizeof(pgpu_buf);
        if (!n->pgpu_metadata || n->pgpu_metadata(dev, pgpu, &pgpu_size) != 0)
                pgpu = NULL;
        if (!(out->vgpus = calloc(count, sizeof(*out->vgpus))))
                return -ENOMEM;
        for (unsigned i = 0; i < count; i++) {
                struct vgpu_nvml_vgpu *v = &out->vgpus[out->n_vgpus++];
                *v = (struct vgpu_nvml_vgpu){
                        .instance = ids[i],
                        .encoder = STREAM_UNKNOWN,
                        .frame_capture = STREAM_UNKNOWN,
                        .frame_rate_limit = -1,
                };
                if (n->vgpu_mdev_uuid && n->vgpu_mdev_uuid(ids[i], buf, sizeof(buf)) == 0 &&
                    strlen(buf) < sizeof(v->mdev_uuid))
                        for (size_t k = 0; buf[k]; k++)
                                v->mdev_uuid[k] = (char) tolower((unsigned char) buf[k]);
                if (n->vgpu_encoder_stats && n->vgpu_encoder_stats(ids[i], &u, &u2, &u3) == 0)
                        v->encoder = stream_stats(u, u2, u3);
                if (n->vgpu_fbc_stats && n->vgpu_fbc_stats(ids[i], &fbc) == 0)
                        v->frame_capture =
                                stream_stats(fbc.sessions_count, fbc.average_fps, fbc.average_latency);
                /* NVML answers "not supported" for a vGPU whose limiter is off */
                if (n->vgpu_frame_rate_limit) {
                        nvml_return_t r = n->vgpu_frame_rate_limit(ids[i], &u);
                        v->frame_rate_limit = r == 0 ? (int) UMIN(u, (unsigned) INT_MAX)
                                              : r == NVML_ERROR_NOT_SUPPORTED ? 0
                                                                              : -1;
                }
                read_guest_driver(n, ids[i], pgpu, v);
        }
        return 0;
}

static int read_gpu(const struct nvml *n, nvml_device_t dev, struct vgpu_nvml_gpu *out) {
        char buf[256];
        unsigned u, u2;
        int e;

        *out = (struct vgpu_nvml_gpu){
                .temperature = -1,
                .temp_slowdown = -1,
                .temp_shutdown = -1,
                .power_mw = -1,
                .power_limit_mw = -1,
                .persistence_mode = -1,
                .virtualization_mode = -1,
                .mig_mode = -1,
                .utilization_gpu = -1,
                .utilization_memory = -1,
                .memory_reserved = -1,
                .pcie_gen_current = -1,
                .pcie_gen_max = -1,
                .pcie_width_current = -1,
                .pcie_width_max = -1,
                .encoder = STREAM_UNKNOWN,
                .frame_capture = STREAM_UNKNOWN,
        };
        if (n->name && n->name(dev, buf, sizeof(buf)) == 0 && !(out->name = strdup(buf)))
                return -ENOMEM;
        if (n->uuid && n->uuid(dev, buf, sizeof(buf)) == 0 && !(out->uuid = strdup(buf)))
                return -ENOMEM;
        /* v2 first: it alone tells what the driver reserves (and v1's "used" includes that) */
        nvml_memory_v2_t mem2 = { .version = NVML_MEMORY_V2_VERSION };
        nvml_memory_t mem;
        if (n->memory_v2 && n->memory_v2(dev, &mem2) == 0) {
                out->memory_total = mem2.total;
                out->memory_used = mem2.used;
                out->memory_reserved = (int64_t) mem2.reserved;
        } else if (n->memory && n->memory(dev, &mem) == 0) {
                out->memory_total = mem.total;
                out->memory_used = mem.used;
        }
        nvml_utilization_t util;
        if (n->utilization && n->utilization(dev, &util) == 0 && util.gpu <= 100 && util.memory <= 100) {
                out->utilization_gpu = (int) util.gpu;
                out->utilization_memory = (int) util.memory;
        }
        unsigned long long reasons;
        if (n->clocks_event_reasons && n->clocks_event_reasons(dev, &reasons) == 0) {
                out->clocks_event_reasons_known = true;
                out->clocks_event_reasons = reasons;
        }
        /* PCIe: NVML reports generation (not GT/s) and width; 0 is not a link */
        if (n->pcie_gen && n->pcie_gen(dev, &u) == 0 && u > 0)
                out->pcie_gen_current = (int) u;
        if (n->pcie_gen_max && n->pcie_gen_max(dev, &u) == 0 && u > 0)
                out->pcie_gen_max = (int) u;
        if (n->pcie_width && n->pcie_width(dev, &u) == 0 && u > 0)
                out->pcie_width_current = (int) u;
        if (n->pcie_width_max && n->pcie_width_max(dev, &u) == 0 && u > 0)
                out->pcie_width_max = (int) u;
        if (n->temperature && n->temperature(dev, NVML_TEMPERATURE_GPU, &u) == 0)
                out->temperature = (int) u;
        if (n->threshold && n->threshold(dev, NVML_TEMPERATURE_THRESHOLD_SLOWDOWN, &u) == 0)
                out->temp_slowdown = (int) u;
        if (n->threshold && n->threshold(dev, NVML_TEMPERATURE_THRESHOLD_SHUTDOWN, &u) == 0)
                out->temp_shutdown = (int) u;
        if (n->power && n->power(dev, &u) == 0)
                out->power_mw = (int) u;
        if (n->power_limit && n->power_limit(dev, &u) == 0)
                out->power_limit_mw = (int) u;
        if (n->persistence && n->persistence(dev, &e) == 0)
                out->persistence_mode = e;
        if (n->virt_mode && n->virt_mode(dev, &e) == 0)
                out->virtualization_mode = e;
        if (n->mig_mode && n->mig_mode(dev, &u, &u2) == 0)
                out->mig_mode = (int) u;
        unsigned u3;
        if (n->encoder_stats && n->encoder_stats(dev, &u, &u2, &u3) == 0)
                out->encoder = stream_stats(u, u2, u3);
        nvml_fbc_stats_t fbc;
        if (n->fbc_stats && n->fbc_stats(dev, &fbc) == 0)
                out->frame_capture = stream_stats(fbc.sessions_count, fbc.average_fps, fbc.average_latency);
        int r = read_sessions(n, dev, out);
        if (r < 0)
                return r;
        return read_vgpus(n, dev, out);
}

int nvml_scan(struct vgpu_host *host, struct vgpu_error *err) {
        bool any = false;
        for (size_t i = 0; i < host->n_gpus; i++)
                any |= vgpu_gpu_is_nvidia_pf(&host->gpus[i]);
        if (!any)
                return 0; /* don't load a driver library for nothing */

        struct nvml n = {};
        if (!nvml_load(&n)) {
                if (n.dl)
                        dlclose(n.dl);
                return 0;
        }
        if (n.init() != 0) {
                dlclose(n.dl);
                return 0; /* driver not loaded, or a vGPU host driver without NVML access */
        }

        int r = 0;
        char buf[96];
        if (n.driver_version && n.driver_version(buf, sizeof(buf)) == 0 &&
            !(host->nvml_driver_version = strdup(buf)))
                r = -ENOMEM;
        for (size_t i = 0; r == 0 && i < host->n_gpus; i++) {
                struct vgpu_gpu *g = &host->gpus[i];
                nvml_device_t dev;
                if (!vgpu_gpu_is_nvidia_pf(g) || n.by_bus_id(g->bdf, &dev) != 0)
                        continue;
                if (!(g->nvml = calloc(1, sizeof(*g->nvml)))) {
                        r = -ENOMEM;
                        break;
                }
                r = read_gpu(&n, dev, g->nvml);
                /* the driver is the host's, but each GPU object carries it: `show` and the API
                 * answer "which driver runs this GPU" without the host around it */
                if (r == 0 && host->nvml_driver_version &&
                    !(g->nvml->driver_version = strdup(host->nvml_driver_version)))
                        r = -ENOMEM;
        }
        n.shutdown();
        dlclose(n.dl);
        return r < 0 ? vgpu_error_set(err, r, "out of memory") : 0;
}

/* nvmlDeviceSetPersistenceMode on one GPU: what apply falls back to where no
 * nvidia-persistenced keeps the driver loaded (root only on a real driver; lost on reload). */
int nvml_set_persistence(const char *bdf, bool on, struct vgpu_error *err) {
        struct nvml n = {};
        nvml_return_t (*set)(nvml_device_t, int) = NULL;
        if (!nvml_load(&n)) {
                if (n.dl)
                        dlclose(n.dl);
                return vgpu_error_set(err, -EOPNOTSUPP,
                                      "%s: NVML (libnvidia-ml.so.1) is not available to set persistence mode",
                                      bdf);
        }
        *(void **) &set = dlsym(n.dl, "nvmlDeviceSetPersistenceMode");
        int r = 0;
        nvml_device_t dev;
        if (!set)
                r = vgpu_error_set(err, -EOPNOTSUPP, "%s: this NVML has no nvmlDeviceSetPersistenceMode",
                                   bdf);
        else if (n.init() != 0)
                r = vgpu_error_set(err, -ENODEV, "%s: NVML does not start (is the nvidia driver loaded?)",
                                   bdf);
        else {
                nvml_return_t e = n.by_bus_id(bdf, &dev);
                if (e == 0)
                        e = set(dev, on ? 1 : 0); /* NVML_FEATURE_ENABLED / _DISABLED */
                if (e != 0)
                        r = vgpu_error_set(err, e == NVML_ERROR_NO_PERMISSION ? -EPERM : -EIO,
                                           "%s: NVML could not turn persistence mode %s (NVML error %d)", bdf,
                                           on ? "on" : "off", e);
                n.shutdown();
        }
        dlclose(n.dl);
        return r;
}

_public_ const char *vgpu_nvml_encoder_codec_to_string(unsigned codec) {
        switch (codec) {
        case 0:
                return "h264";
        case 1:
                return "hevc";
        case 2:
                return "av1";
        }
        return "unknown";
}

_public_ const char *vgpu_nvml_fbc_type_to_string(unsigned type) {
        switch (type) {
        case 1:
                return "tosys";
        case 2:
                return "cuda";
        case 3:
                return "vid";
        case 4:
                return "hwenc";
        }
        return "unknown";
}

_public_ const char *vgpu_nvml_clocks_event_to_string(uint64_t bit) {
        switch (bit) {
        case VGPU_NVML_CLOCKS_EVENT_GPU_IDLE:
                return "gpu_idle";
        case VGPU_NVML_CLOCKS_EVENT_APPLICATIONS_CLOCKS:
                return "applications_clocks_setting";
        case VGPU_NVML_CLOCKS_EVENT_SW_POWER_CAP:
                return "sw_power_cap";
        case VGPU_NVML_CLOCKS_EVENT_HW_SLOWDOWN:
                return "hw_slowdown";
        case VGPU_NVML_CLOCKS_EVENT_SYNC_BOOST:
                return "sync_boost";
        case VGPU_NVML_CLOCKS_EVENT_SW_THERMAL_SLOWDOWN:
                return "sw_thermal_slowdown";
        case VGPU_NVML_CLOCKS_EVENT_HW_THERMAL_SLOWDOWN:
                return "hw_thermal_slowdown";
        case VGPU_NVML_CLOCKS_EVENT_HW_POWER_BRAKE_SLOWDOWN:
                return "hw_power_brake_slowdown";
        case VGPU_NVML_CLOCKS_EVENT_DISPLAY_CLOCK_SETTING:
                return "display_clock_setting";
        }
        return NULL;
}
