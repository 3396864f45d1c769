/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * gpu.c — `vgpuctl list` (GPUs, VFs and vGPU instances) and `vgpuctl show BDF`.
 * Both print through output.h, so the table and --json carry the same fields.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vgpu/lifecycle.h"
#include "vgpuctl.h"

const struct cli_option list_options[] = {
        { "defined", 'd', NULL, "also list persistent definitions (mdevctl's store)" },
        {},
};

static void print_hex_id(struct out *o, enum out_mode m, const char *key, const char *fmt, unsigned v) {
        char buf[8];
        snprintf(buf, sizeof(buf), "0x%04x", v);
        out_string(o, m, key, fmt, buf);
}

static void print_link(struct out *o, const struct vgpu_link *l) {
        out_open_object(o, "link");
        out_double(o, OUT_JSON, "speed_current", NULL, l->speed_current, l->speed_current > 0);
        out_double(o, OUT_JSON, "speed_max", NULL, l->speed_max, l->speed_max > 0);
        out_i64(o, OUT_JSON, "width_current", NULL, l->width_current, l->width_current > 0);
        out_i64(o, OUT_JSON, "width_max", NULL, l->width_max, l->width_max > 0);
        out_close_object(o);
        if (!out_is_json(o)) {
                char buf[96];
                if (l->width_max > 0)
                        snprintf(buf, sizeof(buf), "%gGT/s x%d (max %gGT/s x%d)", l->speed_current, l->width_current,
                                 l->speed_max, l->width_max);
                else
                        snprintf(buf, sizeof(buf), "-");
                out_text(o, "%-30s ", buf);
        }
}

static void print_group_peers(struct out *o, const struct vgpu_host *host, const struct vgpu_gpu *g) {
        const struct vgpu_iommu_group *grp = vgpu_host_find_group(host, g->iommu_group);
        out_open_array(o, "iommu_group_peers");
        for (size_t i = 0; grp && i < grp->n_members; i++)
                if (strcmp(grp->members[i].bdf, g->bdf) != 0)
                        out_string(o, OUT_JSON, NULL, NULL, grp->members[i].bdf);
        out_close_array(o);
}

static void print_nvml(struct out *o, const struct vgpu_nvml_gpu *n) {
        if (!n) {
                out_null(o, "nvml");
                return;
        }
        out_open_object(o, "nvml");
        out_string(o, OUT_JSON, "name", NULL, n->name);
        out_string(o, OUT_JSON, "uuid", NULL, n->uuid);
        out_u64(o, OUT_JSON, "memory_total_bytes", NULL, n->memory_total);
        out_u64(o, OUT_JSON, "memory_used_bytes", NULL, n->memory_used);
        out_i64(o, OUT_JSON, "temperature_c", NULL, n->temperature, n->temperature >= 0);
        out_i64(o, OUT_JSON, "temperature_slowdown_c", NULL, n->temp_slowdown, n->temp_slowdown >= 0);
        out_i64(o, OUT_JSON, "temperature_shutdown_c", NULL, n->temp_shutdown, n->temp_shutdown >= 0);
        out_double(o, OUT_JSON, "power_watts", NULL, n->power_mw / 1000.0, n->power_mw >= 0);
        out_double(o, OUT_JSON, "power_limit_watts", NULL, n->power_limit_mw / 1000.0, n->power_limit_mw >= 0);
        out_i64(o, OUT_JSON, "persistence_mode", NULL, n->persistence_mode, n->persistence_mode >= 0);
        out_i64(o, OUT_JSON, "virtualization_mode", NULL, n->virtualization_mode, n->virtualization_mode >= 0);
        out_i64(o, OUT_JSON, "mig_mode", NULL, n->mig_mode, n->mig_mode >= 0);
        out_close_object(o);
}

/* One GPU as a table row / JSON object. */
static void print_gpu_row(struct out *o, const struct vgpu_host *host, const struct vgpu_gpu *g) {
        char ids[16], name[40];

        out_open_object(o, NULL);
        out_string(o, OUT_ANY, "bdf", g->physfn[0] ? "  %-12s " : "%-14s ", g->bdf);
        print_hex_id(o, OUT_JSON, "vendor_id", NULL, g->vendor_id);
        print_hex_id(o, OUT_JSON, "device_id", NULL, g->device_id);
        print_hex_id(o, OUT_JSON, "subsystem_vendor_id", NULL, g->subsystem_vendor_id);
        print_hex_id(o, OUT_JSON, "subsystem_device_id", NULL, g->subsystem_device_id);
        snprintf(ids, sizeof(ids), "%04x:%04x", g->vendor_id, g->device_id);
        out_text(o, "%-10s ", ids);
        out_string(o, OUT_JSON, "vendor_name", NULL, g->vendor_name);
        out_string(o, OUT_JSON, "device_name", NULL, g->device_name);
        snprintf(name, sizeof(name), "%.32s", g->nvml && g->nvml->name ? g->nvml->name : g->device_name ? g->device_name : "-");
        out_text(o, "%-32s ", name);
        out_string(o, OUT_ANY, "driver", "%-10s ", g->driver);
        out_i64(o, OUT_ANY, "iommu_group", "%-6s ", g->iommu_group, g->iommu_group >= 0);
        print_group_peers(o, host, g);
        out_i64(o, OUT_ANY, "numa_node", "%-5s ", g->numa_node, g->numa_node >= 0);
        print_link(o, &g->link);
        if (g->sriov) {
                out_open_object(o, "sriov");
                out_u64(o, OUT_JSON, "total_vfs", NULL, g->total_vfs);
                out_u64(o, OUT_JSON, "num_vfs", NULL, g->num_vfs);
                out_close_object(o);
                char buf[24];
                snprintf(buf, sizeof(buf), "%u/%u", g->num_vfs, g->total_vfs);
                out_text(o, "%-7s ", buf);
        } else {
                out_null(o, "sriov");
                out_text(o, "%-7s ", "-");
        }
        out_open_array(o, "vfs");
        for (size_t i = 0; i < g->n_vfs; i++)
                out_string(o, OUT_JSON, NULL, NULL, g->vfs[i]);
        out_close_array(o);
        out_string(o, OUT_JSON, "physfn", NULL, g->physfn[0] ? g->physfn : NULL);
        out_bool(o, OUT_ANY, "mdev_parent", "%s", g->mdev_parent || g->nvidia_vfio);
        print_nvml(o, g->nvml);
        out_text(o, "\n");
        out_close_object(o);
}

static void print_instance_row(struct out *o, const struct vgpu_instance *in) {
        out_open_object(o, NULL);
        out_string(o, OUT_ANY, "uuid", "%-37s ", in->uuid[0] ? in->uuid : NULL);
        out_string(o, OUT_ANY, "parent", "%-14s ", in->parent);
        out_string(o, OUT_ANY, "type", "%-16s ", in->type);
        out_i64(o, OUT_ANY, "iommu_group", "%s", in->iommu_group, in->iommu_group >= 0);
        out_text(o, "\n");
        out_close_object(o);
}

/* The members of `list`'s top object; the caller opens and closes it. */
void print_list(struct out *o, const struct vgpu_host *host) {
        out_text(o, "%-14s %-10s %-32s %-10s %-6s %-5s %-30s %-7s %s\n",
                 "BDF", "ID", "NAME", "DRIVER", "GROUP", "NUMA", "LINK", "SR-IOV", "VGPU-HOST");
        out_open_array(o, "gpus");
        /* PFs in BDF order, each followed by its VFs (indented in the table). */
        for (size_t i = 0; i < host->n_gpus; i++) {
                const struct vgpu_gpu *g = &host->gpus[i];
                if (g->physfn[0] && vgpu_host_find_gpu(host, g->physfn))
                        continue;
                print_gpu_row(o, host, g);
                for (size_t j = 0; j < g->n_vfs; j++) {
                        const struct vgpu_gpu *vf = vgpu_host_find_gpu(host, g->vfs[j]);
                        if (vf)
                                print_gpu_row(o, host, vf);
                }
        }
        out_close_array(o);
        if (host->n_gpus == 0)
                out_text(o, "(no GPU found)\n");

        out_text(o, "\n%-37s %-14s %-16s %s\n", "INSTANCE", "PARENT", "TYPE", "GROUP");
        out_open_array(o, "instances");
        for (size_t i = 0; i < host->n_instances; i++)
                print_instance_row(o, &host->instances[i]);
        out_close_array(o);
        if (host->n_instances == 0)
                out_text(o, "(no vGPU instance)\n");
}

static bool running(const struct vgpu_host *host, const char *uuid) {
        for (size_t i = 0; i < host->n_instances; i++)
                if (strcmp(host->instances[i].uuid, uuid) == 0)
                        return true;
        return false;
}

static void print_definitions(struct out *o, const struct vgpu_host *host, const struct vgpu_mdev_spec *specs, size_t n) {
        out_text(o, "\n%-37s %-14s %-16s %-7s %s\n", "DEFINED", "PARENT", "TYPE", "START", "RUNNING");
        out_open_array(o, "definitions");
        for (size_t i = 0; i < n; i++) {
                const struct vgpu_mdev_spec *s = &specs[i];
                out_open_object(o, NULL);
                out_string(o, OUT_ANY, "uuid", "%-37s ", s->uuid);
                out_string(o, OUT_ANY, "parent", "%-14s ", s->parent);
                out_string(o, OUT_ANY, "type", "%-16s ", s->type);
                out_string(o, OUT_ANY, "start", "%-7s ", s->auto_start ? "auto" : "manual");
                out_bool(o, OUT_ANY, "running", "%s\n", running(host, s->uuid));
                out_open_array(o, "attrs");
                for (size_t j = 0; j < s->n_attrs; j++) {
                        out_open_object(o, NULL);
                        out_string(o, OUT_JSON, s->attrs[j].key, NULL, s->attrs[j].value);
                        out_close_object(o);
                        out_text(o, "%-37s   attr %s=%s\n", "", s->attrs[j].key, s->attrs[j].value);
                }
                out_close_array(o);
                out_close_object(o);
        }
        out_close_array(o);
        if (n == 0)
                out_text(o, "(no definitions)\n");
}

int verb_list(struct cli *cli) {
        struct vgpu_error err = {};
        struct vgpu_host *host;
        /* Names cost more than the whole scan (pci.ids): only the table shows them. */
        if (vgpu_host_scan(VGPU_SCAN_DETAILS | VGPU_SCAN_GROUPS | VGPU_SCAN_INSTANCES | VGPU_SCAN_NVML | (cli->json ? 0 : VGPU_SCAN_NAMES), &host, &err) < 0)
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
        struct out *o = cli_out(cli);
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

int verb_show(struct cli *cli) {
        char bdf[VGPU_BDF_MAX];
        if (vgpu_bdf_normalize(cli->argv[0], bdf) < 0)
                return cli_error(EXIT_USAGE, "'%s' is not a PCI address (expected DDDD:BB:DD.F or BB:DD.F)", cli->argv[0]);

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
        snprintf(buf, sizeof(buf), "%s [%04x:%04x] (subsystem %04x:%04x, class %06x)", g->device_name ? g->device_name : "-",
                 g->vendor_id, g->device_id, g->subsystem_vendor_id, g->subsystem_device_id, g->class_code);
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
        if (g->link.width_max > 0 && (g->link.width_current < g->link.width_max || g->link.speed_current < g->link.speed_max))
                out_text(o, "%-22s %s\n", "", "(running below its maximum: see 'vgpuctl doctor')");

        out_i64(o, OUT_ANY, "iommu_group", "IOMMU group:           %s\n", g->iommu_group, g->iommu_group >= 0);
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
                out_text(o, "%s%s\n", b->is_64bit ? " 64-bit" : " 32-bit", b->prefetchable ? " prefetchable" : "");
                out_close_object(o);
        }
        out_close_array(o);

        const struct vgpu_parent *p = vgpu_host_find_parent(host, g->bdf);
        out_u64(o, OUT_ANY, "vgpu_types", "vGPU types:            %s\n", p ? p->n_types : 0);
        out_open_array(o, "instances");
        for (size_t i = 0; i < host->n_instances; i++)
                if (strcmp(host->instances[i].parent, g->bdf) == 0) {
                        out_open_object(o, NULL);
                        out_string(o, OUT_ANY, "uuid", "  instance %s", host->instances[i].uuid[0] ? host->instances[i].uuid : NULL);
                        out_string(o, OUT_ANY, "type", " type %s\n", host->instances[i].type);
                        out_close_object(o);
                }
        out_close_array(o);

        if (g->hwmon_temp_mc != INT32_MIN)
                out_double(o, OUT_ANY, "hwmon_temperature_c", "Temperature (hwmon):   %s C\n", g->hwmon_temp_mc / 1000.0, true);
        print_nvml(o, g->nvml);
        if (g->nvml) {
                const struct vgpu_nvml_gpu *n = g->nvml;
                char a[16], b[16];
                out_text(o, "%-22s %s, %s\n", "NVML:", strempty(n->name), strempty(n->uuid));
                out_text(o, "%-22s %s used of %s\n", "  memory:", format_bytes(a, sizeof(a), (int64_t) n->memory_used),
                         format_bytes(b, sizeof(b), (int64_t) n->memory_total));
                out_text(o, "%-22s %d C (slowdown %d C, shutdown %d C)\n", "  temperature:", n->temperature, n->temp_slowdown, n->temp_shutdown);
                out_text(o, "%-22s %.1f W of %.1f W\n", "  power:", n->power_mw / 1000.0, n->power_limit_mw / 1000.0);
                out_text(o, "%-22s persistence %s, virtualization mode %d, MIG %s\n", "  modes:",
                         n->persistence_mode == 1 ? "on" : "off", n->virtualization_mode, n->mig_mode == 1 ? "on" : "off");
        }
        out_close_object(o);
        out_free(o);
        vgpu_host_free(host);
        return EXIT_OK;
}
