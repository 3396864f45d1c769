/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * gpu.c — `vgpuctl list` (GPUs, VFs and vGPU instances) and `vgpuctl show BDF`.
 * Both print through output.h, so the table and --json carry the same fields; show's object has
 * every member of list's GPU object, with the same value, and details list has no room for.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vgpu/assign.h"
#include "vgpu/lifecycle.h"
#include "vgpu/slice.h"
#include "vgpuctl.h"

const struct cli_option list_options[] = {
        { "defined", 'd', NULL, "also list persistent definitions (mdevctl's store)" },
        {},
};

/* The members of `list`'s top object; the caller opens and closes it. */
void print_list(struct out *o, const struct vgpu_host *host) {
        /* the VM holding each GPU and instance, when libvirt is there to ask */
        char **domains, **gpu_domains;
        cli_list_domains(host, &domains, &gpu_domains);
        print_gpus_held(o, host, gpu_domains, NULL, NULL);
        vgpu_instance_domains_free(gpu_domains, host->n_gpus);
        print_instances(o, host, domains);
        vgpu_instance_domains_free(domains, host->n_instances);
        /* software slices and their usage (an unreadable slice directory lists none) */
        struct vgpu_slice_status *slices = NULL;
        size_t n_slices = 0;
        struct vgpu_error err = {};
        if (vgpu_slice_list(&slices, &n_slices, &err) < 0)
                fprintf(stderr, "vgpuctl: warning: %s\n", err.message);
        if (out_is_json(o) || n_slices) {
                out_text(o, "\n");
                print_slices(o, "slices", slices, n_slices);
        }
        free(slices);
}

int verb_list(struct cli *cli) {
        struct vgpu_error err = {};
        struct vgpu_host *host;
        /* the scan of `show` less BARs and types; /v1/gpus scans alike (handlers-read.c) */
        if (vgpu_host_scan(PRINT_GPUS_SCAN, &host, &err) < 0)
                return cli_lib_error(&err);
        struct vgpu_mdev_spec *specs = NULL;
        size_t n_specs = 0;
        char *warnings = NULL;
        if (cli->opt[0] && vgpu_mdev_definitions(&specs, &n_specs, &warnings, &err) < 0) {
                vgpu_host_free(host);
                return cli_lib_error(&err);
        }
        /* a corrupt definition is reported, never fatal to the rest */
        for (char *line = warnings, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = '\0';
                fprintf(stderr, "vgpuctl: warning: %s\n", line);
        }
        struct out *o = cli_out_table(cli);
        out_open_object(o, NULL);
        print_list(o, host);
        if (cli->opt[0])
                print_definitions(o, host, specs, n_specs);
        out_close_object(o);
        out_free(o);
        vgpu_mdev_specs_free(specs, n_specs);
        free(warnings);
        vgpu_host_free(host);
        return EXIT_OK;
}

static void print_field(struct out *o, const char *label, const char *key, const char *v) {
        char fmt[64];
        snprintf(fmt, sizeof(fmt), "%-22s %%s\n", label);
        out_string(o, OUT_ANY, key, fmt, v);
}

/* NVML's entry for a running vGPU, found by its mdev UUID on any GPU; NULL when NVML lists none. */
static const struct vgpu_nvml_vgpu *find_nvml_vgpu(const struct vgpu_host *host, const char *uuid,
                                                   const struct vgpu_nvml_gpu **ret_gpu) {
        for (size_t i = 0; i < host->n_gpus; i++) {
                const struct vgpu_nvml_gpu *n = host->gpus[i].nvml;
                for (size_t j = 0; n && j < n->n_vgpus; j++)
                        if (strcasecmp(n->vgpus[j].mdev_uuid, uuid) == 0) {
                                *ret_gpu = n; /* the sessions are listed on the GPU */
                                return &n->vgpus[j];
                        }
        }
        return NULL;
}

/* show UUID: one vGPU instance, as list prints it, and what NVML knows of it running (guest
 * driver and its compatibility with the host's, load, frame-rate limiter). */
static int show_instance(struct cli *cli, const char *uuid) {
        struct vgpu_error err = {};
        struct vgpu_host *host;
        if (vgpu_host_scan(PRINT_GPUS_SCAN, &host, &err) < 0)
                return cli_lib_error(&err);
        size_t i;
        for (i = 0; i < host->n_instances; i++)
                if (strcasecmp(host->instances[i].uuid, uuid) == 0)
                        break;
        if (i == host->n_instances) {
                vgpu_host_free(host);
                return cli_error(EXIT_FAILED, "%s: no vGPU instance with this UUID here (see 'vgpuctl list')",
                                 uuid);
        }
        const struct vgpu_instance *in = &host->instances[i];
        char **domains, **gpu_domains;
        cli_list_domains(host, &domains, &gpu_domains);

        struct out *o = cli_out(cli);
        out_open_object(o, NULL);
        print_field(o, "vGPU instance:", "uuid", in->uuid);
        print_field(o, "Parent:", "parent", in->parent);
        print_field(o, "Type:", "type", in->type);
        out_i64(o, OUT_ANY, "iommu_group", "IOMMU group:           %s\n", in->iommu_group,
                in->iommu_group >= 0);
        print_field(o, "Assigned to:", "domain", domains ? domains[i] : NULL);
        const struct vgpu_nvml_gpu *n = NULL;
        const struct vgpu_nvml_vgpu *v = find_nvml_vgpu(host, in->uuid, &n);
        if (v) {
                out_text(o, "%-22s %s (%s)\n", "Guest driver:",
                         v->guest_driver_version[0] ? v->guest_driver_version : "none loaded",
                         vgpu_nvml_compat_to_string(v->guest_compat));
                print_nvml_vgpu(o, "vgpu", n, v);
        } else {
                out_text(o, "%-22s %s\n", "NVML:", "not running as a vGPU NVML knows");
                out_null(o, "vgpu");
        }
        out_close_object(o);
        out_free(o);
        vgpu_instance_domains_free(gpu_domains, host->n_gpus);
        vgpu_instance_domains_free(domains, host->n_instances);
        vgpu_host_free(host);
        return EXIT_OK;
}

int verb_show(struct cli *cli) {
        if (vgpu_uuid_valid(cli->argv[0]))
                return show_instance(cli, cli->argv[0]);
        char bdf[VGPU_BDF_MAX];
        if (vgpu_bdf_normalize(cli->argv[0], bdf) < 0)
                return cli_error(EXIT_USAGE,
                                 "'%s' is neither a PCI address (DDDD:BB:DD.F or BB:DD.F) nor a vGPU's UUID",
                                 cli->argv[0]);

        struct vgpu_error err = {};
        struct vgpu_host *host;
        if (vgpu_host_scan(VGPU_SCAN_ALL, &host, &err) < 0)
                return cli_lib_error(&err);
        const struct vgpu_gpu *g = vgpu_host_find_gpu(host, bdf);
        if (!g) {
                vgpu_host_free(host);
                return cli_error(EXIT_FAILED, "%s: no display-class PCI function at this address", bdf);
        }

        struct out *o = cli_out(cli);
        char buf[256];
        out_open_object(o, NULL);
        print_field(o, "PCI address:", "bdf", g->bdf);
        snprintf(buf, sizeof(buf), "%s [%04x:%04x] (subsystem %04x:%04x, class %06x)",
                 g->device_name ? g->device_name : "-", g->vendor_id, g->device_id, g->subsystem_vendor_id,
                 g->subsystem_device_id, g->class_code);
        out_text(o, "%-22s %s\n", "Device:", buf);
        print_hex_id(o, OUT_JSON, "vendor_id", NULL, g->vendor_id);
        print_hex_id(o, OUT_JSON, "device_id", NULL, g->device_id);
        print_hex_id(o, OUT_JSON, "subsystem_vendor_id", NULL, g->subsystem_vendor_id);
        print_hex_id(o, OUT_JSON, "subsystem_device_id", NULL, g->subsystem_device_id);
        snprintf(buf, sizeof(buf), "0x%06x", g->class_code);
        out_string(o, OUT_JSON, "class", NULL, buf);
        out_string(o, OUT_ANY, "vendor_name", "Vendor:                %s\n", g->vendor_name);
        out_string(o, OUT_JSON, "device_name", NULL, g->device_name);
        print_field(o, "Driver:", "driver", g->driver);
        out_i64(o, OUT_ANY, "numa_node", "NUMA node:             %s\n", g->numa_node, g->numa_node >= 0);
        out_text(o, "%-22s ", "PCIe link:");
        print_link(o, &g->link);
        out_text(o, "\n");
        if (g->link.width_max > 0 &&
            (g->link.width_current < g->link.width_max || g->link.speed_current < g->link.speed_max))
                out_text(o, "%-22s %s\n", "", "(running below its maximum: see 'vgpuctl doctor')");

        out_i64(o, OUT_ANY, "iommu_group", "IOMMU group:           %s\n", g->iommu_group,
                g->iommu_group >= 0);
        print_iommu_group_peers(o, host, g);
        /* the peers' details: every function of the group, this one too, with class and driver */
        const struct vgpu_iommu_group *grp = vgpu_host_find_group(host, g->iommu_group);
        out_open_array(o, "iommu_group_members");
        for (size_t i = 0; grp && i < grp->n_members; i++) {
                const struct vgpu_group_member *m = &grp->members[i];
                out_open_object(o, NULL);
                out_string(o, OUT_ANY, "bdf", "  member %s", m->bdf);
                snprintf(buf, sizeof(buf), "0x%06x", m->class_code);
                out_string(o, OUT_ANY, "class", " class %s", buf);
                out_string(o, OUT_ANY, "driver", " driver %s\n", m->driver);
                out_close_object(o);
        }
        out_close_array(o);

        if (g->sriov) {
                out_open_object(o, "sriov");
                out_u64(o, OUT_ANY, "total_vfs", "SR-IOV:                %s VFs possible, ", g->total_vfs);
                out_u64(o, OUT_ANY, "num_vfs", "%s enabled\n", g->num_vfs);
                out_close_object(o);
        } else {
                out_null(o, "sriov");
                out_text(o, "%-22s %s\n", "SR-IOV:", "-");
        }
        out_open_array(o, "vfs");
        for (size_t i = 0; i < g->n_vfs; i++)
                out_string(o, OUT_ANY, NULL, "  VF %s\n", g->vfs[i]);
        out_close_array(o);
        out_string(o, OUT_ANY, "physfn", "Physical function:     %s\n", g->physfn[0] ? g->physfn : NULL);
        out_bool(o, OUT_ANY, "mdev_parent", "vGPU host:             %s\n", g->mdev_parent || g->nvidia_vfio);
        /* the VM this function is assigned to whole, as list says it */
        char **domains, **gpu_domains;
        cli_list_domains(host, &domains, &gpu_domains);
        out_string(o, OUT_ANY, "domain", "Assigned to:           %s\n",
                   gpu_domains ? gpu_domains[g - host->gpus] : NULL);
        vgpu_instance_domains_free(gpu_domains, host->n_gpus);
        vgpu_instance_domains_free(domains, host->n_instances);

        out_open_array(o, "bars");
        for (size_t i = 0; i < g->n_bars; i++) {
                const struct vgpu_bar *b = &g->bars[i];
                char size[16];
                out_open_object(o, NULL);
                out_i64(o, OUT_ANY, "index", "  BAR %s", b->index, true);
                snprintf(buf, sizeof(buf), "0x%" PRIx64, b->start);
                out_string(o, OUT_ANY, "start", " at %s", buf);
                out_u64(o, OUT_JSON, "size_bytes", NULL, b->size);
                out_text(o, " size %s", format_bytes(size, sizeof(size), (int64_t) b->size));
                out_bool(o, OUT_JSON, "64bit", NULL, b->is_64bit);
                out_bool(o, OUT_JSON, "prefetchable", NULL, b->prefetchable);
                out_text(o, "%s%s\n", b->is_64bit ? " 64-bit" : " 32-bit",
                         b->prefetchable ? " prefetchable" : "");
                out_close_object(o);
        }
        out_close_array(o);

        const struct vgpu_parent *p = vgpu_host_find_parent(host, g->bdf);
        out_u64(o, OUT_ANY, "vgpu_types", "vGPU types:            %s\n", p ? p->n_types : 0);
        out_open_array(o, "instances");
        for (size_t i = 0; i < host->n_instances; i++)
                if (strcmp(host->instances[i].parent, g->bdf) == 0) {
                        out_open_object(o, NULL);
                        out_string(o, OUT_ANY, "uuid", "  instance %s",
                                   host->instances[i].uuid[0] ? host->instances[i].uuid : NULL);
                        out_string(o, OUT_ANY, "type", " type %s\n", host->instances[i].type);
                        out_close_object(o);
                }
        out_close_array(o);

        /* always a member (null when unknown), as every other one: a schema can require it */
        out_double(o, g->hwmon_temp_mc != INT32_MIN ? OUT_ANY : OUT_JSON, "hwmon_temperature_c",
                   "Temperature (hwmon):   %s C\n", g->hwmon_temp_mc / 1000.0, g->hwmon_temp_mc != INT32_MIN);
        print_nvml(o, g->nvml);
        out_string(o, g->problem ? OUT_ANY : OUT_JSON, "problem", "Problem:               %s\n", g->problem);
        if (g->nvml) {
                const struct vgpu_nvml_gpu *n = g->nvml;
                char a[16], b[16];
                out_text(o, "%-22s %s, %s\n", "NVML:", strempty(n->name), strempty(n->uuid));
                out_text(o, "%-22s %s\n", "  host driver:", n->driver_version ? n->driver_version : "-");
                out_text(o, "%-22s %s used of %s\n",
                         "  memory:", format_bytes(a, sizeof(a), (int64_t) n->memory_used),
                         format_bytes(b, sizeof(b), (int64_t) n->memory_total));
                out_text(o, "%-22s %d C (slowdown %d C, shutdown %d C)\n", "  temperature:", n->temperature,
                         n->temp_slowdown, n->temp_shutdown);
                out_text(o, "%-22s %.1f W of %.1f W\n", "  power:", n->power_mw / 1000.0,
                         n->power_limit_mw / 1000.0);
                out_text(o, "%-22s persistence %s, virtualization mode %d, MIG %s\n",
                         "  modes:", n->persistence_mode == 1 ? "on" : "off", n->virtualization_mode,
                         n->mig_mode == 1 ? "on" : "off");
                /* the guest side of "Driver Version Mismatch", next to the host driver above */
                for (size_t i = 0; i < n->n_vgpus; i++) {
                        const struct vgpu_nvml_vgpu *v = &n->vgpus[i];
                        if (v->guest_driver_version[0])
                                out_text(o, "  vGPU %s: guest driver %s (%s)\n",
                                         v->mdev_uuid[0] ? v->mdev_uuid : "-", v->guest_driver_version,
                                         vgpu_nvml_compat_to_string(v->guest_compat));
                        else
                                out_text(o, "  vGPU %s: no guest driver loaded\n",
                                         v->mdev_uuid[0] ? v->mdev_uuid : "-");
                }
        }
        out_close_object(o);
        out_free(o);
        vgpu_host_free(host);
        return EXIT_OK;
}
