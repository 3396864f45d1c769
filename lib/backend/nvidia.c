/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * nvidia.c — NVIDIA vGPU: the host driver's mdev type descriptions, and vendor-VFIO types
 * (vGPU 17+, Ada/Hopper/Blackwell SR-IOV: no mdev; each VF offers the types listed in
 * nvidia/creatable_vgpu_types and takes one by writing its id to nvidia/current_vgpu_type),
 * creating and removing on both, the scheduler policy (RmPVMRL) and the frame-rate limiter.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "basic/error-util.h"
#include "basic/fileio.h"
#include "basic/macro.h"
#include "basic/root.h"
#include "basic/sysfs.h"
#include "nvidia.h"

/* Value of "key=" in a comma-separated description, or NULL. */
static const char *find_key(const char *desc, const char *key) {
        size_t n = strlen(key);
        for (const char *p = desc; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL) {
                while (*p == ' ')
                        p++;
                if (strncmp(p, key, n) == 0 && p[n] == '=')
                        return p + n + 1;
        }
        return NULL;
}

/* "num_heads=4, frl_config=60, framebuffer=2048M, max_resolution=5120x2880, max_instance=8" */
static void nvidia_describe_type(struct vgpu_type *t) {
        if (!t->description)
                return;
        const char *v = find_key(t->description, "framebuffer");
        if (v)
                t->framebuffer_bytes = parse_size_with_unit(v);
        v = find_key(t->description, "max_instance");
        if (v && isdigit((unsigned char) *v))
                t->max_instances = strtoll(v, NULL, 10);
}

/*
 * creatable_vgpu_types, as the driver prints it:
 *     ID    : vGPU Name
 *     1155  : NVIDIA L40S-1Q
 * A VF that already has a type lists none.
 */
static int nvidia_list_vfio_types(int devfd, struct vgpu_parent *p) {
        _cleanup_free_ char *text = NULL;
        int r = sysfs_read_alloc_at(devfd, "nvidia/creatable_vgpu_types", &text);
        if (r < 0)
                return r == -ENOENT ? 0 : r;

        size_t allocated = p->n_types, added = 0;
        for (char *line = text, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                char *colon = strchr(line, ':');
                if (!colon || !isdigit((unsigned char) line[0]))
                        continue; /* the header line, or noise */
                *colon = '\0';
                char *name = colon + 1;
                while (*name == ' ')
                        name++;
                strip_trailing_space(line, strlen(line));
                strip_trailing_space(name, strlen(name));

                if (!GREEDY_REALLOC(p->types, allocated, p->n_types + 1))
                        return -ENOMEM;
                struct vgpu_type *t = &p->types[p->n_types];
                *t = (struct vgpu_type){
                        .parent = p->name,
                        .id = strdup(line),
                        .name = strdup(name),
                        .device_api = strdup("vfio-pci"),
                        /* a VF hosts exactly one vGPU: each listed type can be created once */
                        .available_instances = 1,
                        .framebuffer_bytes = -1,
                        .max_instances = -1,
                        .kind = VGPU_TYPE_NVIDIA_VFIO,
                };
                p->n_types++;
                if (!t->id || !t->name || !t->device_api)
                        return -ENOMEM;
                added++;
        }
        return (int) added;
}

/* The VF takes one vGPU type: vGPU 17+ (nvidia/creatable_vgpu_types, found by the PCI scan). */
static bool nvidia_typed_vf(const struct vgpu_gpu *gpu) {
        return gpu->nvidia_vfio;
}

/* A vendor-VFIO VF takes a type by id (and "0" clears it); it has no UUID. */
static int set_vfio_type(const char *bdf, const char *type, struct vgpu_error *err) {
        char path[256];
        snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/nvidia/current_vgpu_type", bdf);
        int r = sysfs_write(path, type);
        if (r < 0 && streq(type, "0"))
                return vgpu_error_set_errno(err, r, "clearing the vGPU type of %s (in use by a VM?)", bdf);
        if (r < 0)
                return vgpu_error_set_errno(err, r, "setting vGPU type %s on %s (%s%s)", type, bdf,
                                            root_prefix(), path);
        return 1;
}

static int nvidia_create(const struct vgpu_action *a, struct vgpu_error *err) {
        return a->vendor_vfio ? set_vfio_type(a->spec.parent, a->spec.type, err)
                              : backend_mdev_create_action(a, err);
}

static int nvidia_remove(const struct vgpu_action *a, struct vgpu_error *err) {
        return a->vendor_vfio ? set_vfio_type(a->spec.parent, "0", err) : backend_mdev_remove_action(a, err);
}

/*
 * NVIDIA's frame-rate limiter is a per-vGPU parameter (nvidia/vgpu_params) written before the
 * VM starts: a policy's frame-rate-limit becomes that attribute on every vGPU of the GPU,
 * unless the entry sets nvidia/vgpu_params itself.
 */
static int nvidia_instance_attrs(const struct vgpu_parent *p, const struct vgpu_config_gpu *g,
                                 const struct vgpu_config_device *dev, struct vgpu_mdev_attr *ret) {
        (void) p;
        if (!g->has_policy || g->policy.frame_rate_limit < 0)
                return 0;
        for (size_t i = 0; i < dev->n_attrs; i++)
                if (streq(dev->attrs[i].key, "nvidia/vgpu_params"))
                        return 0;
        *ret = (struct vgpu_mdev_attr){
                .key = (char *) "nvidia/vgpu_params",
                .value = (char *) (g->policy.frame_rate_limit ? "frame_rate_limiter=1"
                                                              : "frame_rate_limiter=0"),
        };
        return 1;
}

/* The limiter a running vGPU has (NVML reads it back) against attr's. */
static int nvidia_instance_attr_differs(const struct vgpu_parent *p, const struct vgpu_instance *in,
                                        const struct vgpu_mdev_attr *attr, char *detail, size_t size) {
        bool want_on = streq(attr->value, "frame_rate_limiter=1");
        const struct vgpu_nvml_gpu *n = p->gpu ? p->gpu->nvml : NULL;
        const struct vgpu_nvml_vgpu *v = NULL;
        for (size_t i = 0; n && i < n->n_vgpus; i++)
                if (streq(n->vgpus[i].mdev_uuid, in->uuid))
                        v = &n->vgpus[i];
        if (!v || v->frame_rate_limit < 0 || (v->frame_rate_limit > 0) == want_on)
                return 0; /* unknown (no NVML, not running as a vGPU NVML lists), or as the file says */
        char now[32];
        if (v->frame_rate_limit > 0)
                snprintf(now, sizeof(now), "on (%d fps)", v->frame_rate_limit);
        else
                snprintf(now, sizeof(now), "off");
        snprintf(detail, size, "frame-rate limiter %s, the file says %s", now, want_on ? "on" : "off");
        return 1;
}

/*
 * NVIDIA's vGPU scheduler is the RmPVMRL registry key of the nvidia module, per GPU through
 * NVreg_RegistryDwordsPerDevice: 0x00 best effort, 0x01 equal share, 0x11 fixed share, with a
 * custom time slice (ms, 1-30) in bits 16-23 (e.g. 0x00030001: equal share, 3 ms). It takes
 * effect when the module loads, so apply writes /etc/modprobe.d and says a reload is needed.
 */
#define NVIDIA_POLICY_FILE "/etc/modprobe.d/nvidia-vgpu-vgpuctl.conf"

unsigned nvidia_rmpvmrl(const struct vgpu_config_policy *p);
unsigned nvidia_rmpvmrl(const struct vgpu_config_policy *p) {
        unsigned v = p->scheduler == VGPU_SCHED_EQUAL_SHARE   ? 0x01
                     : p->scheduler == VGPU_SCHED_FIXED_SHARE ? 0x11
                                                              : 0x00;
        if (v && p->timeslice_ms > 0)
                v |= (unsigned) p->timeslice_ms << 16;
        return v;
}

struct nvidia_policy {
        FILE *f; /* "pci=BDF;RmPVMRL=0x..;..." for every GPU, in the file's order */
        char *text;
        size_t size;
        int n;
};

static int nvidia_plan_policy(struct backend_plan *ctx, const struct vgpu_config_gpu *cg,
                              const struct vgpu_gpu *gpu, void **state, struct vgpu_error *err) {
        (void) ctx;
        (void) err;
        struct nvidia_policy *np = *state;
        if (!np) {
                if (!(np = calloc(1, sizeof(*np))))
                        return -ENOMEM;
                *state = np;
                if (!(np->f = open_memstream(&np->text, &np->size)))
                        return -ENOMEM;
        }
        fprintf(np->f, "%spci=%s;RmPVMRL=0x%02x", np->n++ ? ";" : "", gpu->bdf, nvidia_rmpvmrl(&cg->policy));
        return 0;
}

static int nvidia_plan_policy_done(struct backend_plan *ctx, void *state, bool commit,
                                   struct vgpu_error *err) {
        (void) err;
        struct nvidia_policy *np = state;
        if (np->f)
                fclose(np->f);
        int r = 0;
        if (commit && np->f) {
                char *content = NULL;
                r = asprintf(&content,
                             "# Written by vgpuctl apply: NVIDIA vGPU scheduler per GPU (RmPVMRL).\n"
                             "options nvidia NVreg_RegistryDwordsPerDevice=\"%s\"\n",
                             np->text);
                r = r < 0 ? -ENOMEM
                          : backend_policy_file(ctx, NVIDIA_POLICY_FILE, content,
                                                "the NVIDIA scheduler policy takes effect when the nvidia "
                                                "module is reloaded (or at the next boot)");
        }
        free(np->text);
        free(np);
        return r;
}

static const char *const nvidia_drivers[] = { "nvidia", NULL };

const struct vgpu_backend backend_nvidia = {
        .name = "nvidia",
        .vendor = "NVIDIA",
        .drivers = nvidia_drivers,
        .describe_type = nvidia_describe_type,
        .list_vfio_types = nvidia_list_vfio_types,
        .typed_vf = nvidia_typed_vf,
        .create = nvidia_create,
        .remove = nvidia_remove,
        .instance_attrs = nvidia_instance_attrs,
        .instance_attr_differs = nvidia_instance_attr_differs,
        .plan_policy = nvidia_plan_policy,
        .plan_policy_done = nvidia_plan_policy_done,
        .pci_vendor = VGPU_PCI_VENDOR_NVIDIA,
        .plan_persistence = nvidia_plan_persistence,
        .plan_persistence_done = nvidia_plan_persistence_done,
        .run_action = nvidia_run_action,
        .undo_action = nvidia_undo_action,
};
BACKEND_REGISTER(backend_nvidia);
