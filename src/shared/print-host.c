/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * print-host.c — the host snapshot as `vgpuctl list/show/types` print it, table or JSON; the
 * daemon prints the same objects into its API bodies, so both carry the same keys.
 */
#include <stdio.h>
#include <string.h>

#include "print.h"

void print_hex_id(struct out *o, enum out_mode m, const char *key, const char *fmt, unsigned v) {
        /* "0x%04x" by hand: four per GPU, and snprintf was a fifth of a large `list --json` */
        static const char hex[] = "0123456789abcdef";
        char buf[16] = "0x", *p = buf + 2;
        int digits = 4;
        while (digits < 8 && v >> (4 * digits))
                digits++;
        for (int i = digits - 1; i >= 0; i--)
                *p++ = hex[(v >> (4 * i)) & 0xf];
        *p = '\0';
        out_string(o, m, key, fmt, buf);
}

void print_link(struct out *o, const struct vgpu_link *l) {
        out_open_object(o, "link");
        out_double(o, OUT_JSON, "speed_current", NULL, l->speed_current, l->speed_current > 0);
        out_double(o, OUT_JSON, "speed_max", NULL, l->speed_max, l->speed_max > 0);
        out_i64(o, OUT_JSON, "width_current", NULL, l->width_current, l->width_current > 0);
        out_i64(o, OUT_JSON, "width_max", NULL, l->width_max, l->width_max > 0);
        out_close_object(o);
        if (!out_is_json(o)) {
                char buf[96];
                if (l->width_max > 0)
                        snprintf(buf, sizeof(buf), "%gGT/s x%d (max %gGT/s x%d)", l->speed_current,
                                 l->width_current, l->speed_max, l->width_max);
                else
                        snprintf(buf, sizeof(buf), "-");
                out_text(o, "%-30s ", buf);
        }
}

void print_iommu_group_peers(struct out *o, const struct vgpu_host *host, const struct vgpu_gpu *g) {
        const struct vgpu_iommu_group *grp = vgpu_host_find_group(host, g->iommu_group);
        out_open_array(o, "iommu_group_peers");
        for (size_t i = 0; grp && i < grp->n_members; i++)
                if (strcmp(grp->members[i].bdf, g->bdf) != 0)
                        out_string(o, OUT_JSON, NULL, NULL, grp->members[i].bdf);
        out_close_array(o);
}

void print_clocks_event_reasons(struct out *o, const char *key, bool known, uint64_t reasons) {
        if (!known) {
                out_null(o, key);
                return;
        }
        out_open_array(o, key);
        for (unsigned b = 0; b < 64; b++) {
                const char *name = reasons & (1ULL << b) ? vgpu_nvml_clocks_event_to_string(1ULL << b) : NULL;
                if (name)
                        out_string(o, OUT_JSON, NULL, NULL, name);
        }
        out_close_array(o);
}

/* An encoder's or frame capture's load: null when NVML does not report it. */
static void print_stream_stats(struct out *o, const char *key, const struct vgpu_nvml_stream_stats *s) {
        if (s->sessions < 0) {
                out_null(o, key);
                return;
        }
        out_open_object(o, key);
        out_i64(o, OUT_JSON, "sessions", NULL, s->sessions, true);
        out_i64(o, OUT_JSON, "average_fps", NULL, s->average_fps, true);
        out_i64(o, OUT_JSON, "average_latency_us", NULL, s->average_latency_us, true);
        out_close_object(o);
}

/* A GPU's encoder or frame capture sessions, those of one vGPU instance only when vgpu_instance
 * is not 0: null when NVML cannot list them. */
static void print_sessions(struct out *o, const char *key, bool frame_capture, bool known,
                           const struct vgpu_nvml_session *s, size_t n, unsigned vgpu_instance) {
        if (!known) {
                out_null(o, key);
                return;
        }
        out_open_array(o, key);
        for (size_t i = 0; i < n; i++) {
                if (vgpu_instance != 0 && s[i].vgpu_instance != vgpu_instance)
                        continue;
                out_open_object(o, NULL);
                out_u64(o, OUT_JSON, "session_id", NULL, s[i].id);
                out_u64(o, OUT_JSON, "pid", NULL, s[i].pid);
                out_u64(o, OUT_JSON, "vgpu_instance", NULL, s[i].vgpu_instance); /* 0: not a vGPU's */
                if (frame_capture) {
                        out_string(o, OUT_JSON, "session_type", NULL,
                                   vgpu_nvml_fbc_type_to_string(s[i].kind));
                        out_u64(o, OUT_JSON, "display_ordinal", NULL, s[i].display);
                } else
                        out_string(o, OUT_JSON, "codec", NULL, vgpu_nvml_encoder_codec_to_string(s[i].kind));
                out_u64(o, OUT_JSON, "horizontal_resolution", NULL, s[i].h_resolution);
                out_u64(o, OUT_JSON, "vertical_resolution", NULL, s[i].v_resolution);
                out_u64(o, OUT_JSON, "average_fps", NULL, s[i].average_fps);
                out_u64(o, OUT_JSON, "average_latency_us", NULL, s[i].average_latency_us);
                out_close_object(o);
        }
        out_close_array(o);
}

/* A vGPU NVML lists as running on the GPU n: its load, its own sessions, limiter and guest driver
 * (show UUID prints it too). */
void print_nvml_vgpu(struct out *o, const char *key, const struct vgpu_nvml_gpu *n,
                     const struct vgpu_nvml_vgpu *v) {
        out_open_object(o, key);
        out_u64(o, OUT_JSON, "vgpu_instance", NULL, v->instance);
        out_string(o, OUT_JSON, "mdev_uuid", NULL, v->mdev_uuid[0] ? v->mdev_uuid : NULL);
        print_stream_stats(o, "encoder", &v->encoder);
        print_stream_stats(o, "frame_capture", &v->frame_capture);
        print_sessions(o, "encoder_sessions", false, n->encoder_sessions_known, n->encoder_sessions,
                       n->n_encoder_sessions, v->instance);
        print_sessions(o, "frame_capture_sessions", true, n->frame_capture_sessions_known,
                       n->frame_capture_sessions, n->n_frame_capture_sessions, v->instance);
        out_i64(o, OUT_JSON, "frame_rate_limit", NULL, v->frame_rate_limit, v->frame_rate_limit >= 0);
        out_string(o, OUT_JSON, "guest_driver_version", NULL,
                   v->guest_driver_version[0] ? v->guest_driver_version : NULL);
        out_string(o, OUT_JSON, "guest_driver_compatibility", NULL,
                   vgpu_nvml_compat_to_string(v->guest_compat));
        out_open_array(o, "guest_driver_compatibility_limits");
        for (unsigned bit = 1; bit; bit <<= 1)
                if (v->guest_compat_limits & bit)
                        out_string(o, OUT_JSON, NULL, NULL, vgpu_nvml_compat_limit_to_string(bit));
        out_close_array(o);
        out_close_object(o);
}

void print_nvml(struct out *o, const struct vgpu_nvml_gpu *n) {
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
        out_double(o, OUT_JSON, "power_limit_watts", NULL, n->power_limit_mw / 1000.0,
                   n->power_limit_mw >= 0);
        out_i64(o, OUT_JSON, "persistence_mode", NULL, n->persistence_mode, n->persistence_mode >= 0);
        out_i64(o, OUT_JSON, "virtualization_mode", NULL, n->virtualization_mode,
                n->virtualization_mode >= 0);
        out_i64(o, OUT_JSON, "mig_mode", NULL, n->mig_mode, n->mig_mode >= 0);
        out_i64(o, OUT_JSON, "memory_reserved_bytes", NULL, n->memory_reserved, n->memory_reserved >= 0);
        out_i64(o, OUT_JSON, "utilization_gpu_percent", NULL, n->utilization_gpu, n->utilization_gpu >= 0);
        out_i64(o, OUT_JSON, "utilization_memory_percent", NULL, n->utilization_memory,
                n->utilization_memory >= 0);
        print_clocks_event_reasons(o, "clocks_event_reasons", n->clocks_event_reasons_known,
                                   n->clocks_event_reasons);
        out_i64(o, OUT_JSON, "pcie_generation", NULL, n->pcie_gen_current, n->pcie_gen_current > 0);
        out_i64(o, OUT_JSON, "pcie_generation_max", NULL, n->pcie_gen_max, n->pcie_gen_max > 0);
        out_i64(o, OUT_JSON, "pcie_width", NULL, n->pcie_width_current, n->pcie_width_current > 0);
        out_i64(o, OUT_JSON, "pcie_width_max", NULL, n->pcie_width_max, n->pcie_width_max > 0);
        print_stream_stats(o, "encoder", &n->encoder);
        print_stream_stats(o, "frame_capture", &n->frame_capture);
        print_sessions(o, "encoder_sessions", false, n->encoder_sessions_known, n->encoder_sessions,
                       n->n_encoder_sessions, 0);
        print_sessions(o, "frame_capture_sessions", true, n->frame_capture_sessions_known,
                       n->frame_capture_sessions, n->n_frame_capture_sessions, 0);
        out_open_array(o, "vgpus");
        for (size_t i = 0; i < n->n_vgpus; i++)
                print_nvml_vgpu(o, NULL, n, &n->vgpus[i]);
        out_close_array(o);
        out_string(o, OUT_JSON, "driver_version", NULL, n->driver_version);
        out_close_object(o);
}

/* One GPU as a table row / JSON object. */
static void print_gpu_row(struct out *o, const struct vgpu_host *host, const struct vgpu_gpu *g,
                          char *const *domains, print_gpu_extra_fn extra, void *userdata) {
        char ids[16], name[40];

        out_open_object(o, NULL);
        out_string(o, OUT_ANY, "bdf", g->physfn[0] ? "  %-12s " : "%-14s ", g->bdf);
        print_hex_id(o, OUT_JSON, "vendor_id", NULL, g->vendor_id);
        print_hex_id(o, OUT_JSON, "device_id", NULL, g->device_id);
        print_hex_id(o, OUT_JSON, "subsystem_vendor_id", NULL, g->subsystem_vendor_id);
        print_hex_id(o, OUT_JSON, "subsystem_device_id", NULL, g->subsystem_device_id);
        bool text = !out_is_json(o); /* what only the table shows is formatted only for it */
        if (text) {
                snprintf(ids, sizeof(ids), "%04x:%04x", g->vendor_id, g->device_id);
                out_text(o, "%-10s ", ids);
        }
        out_string(o, OUT_JSON, "vendor_name", NULL, g->vendor_name);
        out_string(o, OUT_JSON, "device_name", NULL, g->device_name);
        if (text) {
                snprintf(name, sizeof(name), "%.32s",
                         g->nvml && g->nvml->name ? g->nvml->name
                         : g->device_name         ? g->device_name
                                                  : "-");
                out_text(o, "%-32s ", name);
        }
        out_string(o, OUT_ANY, "driver", "%-10s ", g->driver);
        out_i64(o, OUT_ANY, "iommu_group", "%-6s ", g->iommu_group, g->iommu_group >= 0);
        print_iommu_group_peers(o, host, g);
        out_i64(o, OUT_ANY, "numa_node", "%-5s ", g->numa_node, g->numa_node >= 0);
        print_link(o, &g->link);
        if (g->sriov) {
                out_open_object(o, "sriov");
                out_u64(o, OUT_JSON, "total_vfs", NULL, g->total_vfs);
                out_u64(o, OUT_JSON, "num_vfs", NULL, g->num_vfs);
                out_close_object(o);
                if (text) {
                        char buf[24];
                        snprintf(buf, sizeof(buf), "%u/%u", g->num_vfs, g->total_vfs);
                        out_text(o, "%-7s ", buf);
                }
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
        /* the VM it is assigned to whole (a plain VF in <hostdev type='pci'>), as for instances */
        const char *domain = domains ? domains[g - host->gpus] : NULL;
        out_string(o, OUT_JSON, "domain", NULL, domain);
        if (domain)
                out_text(o, "  domain %s", domain);
        out_string(o, OUT_JSON, "problem", NULL, g->problem);
        if (extra)
                extra(o, g, userdata);
        out_text(o, "\n");
        if (g->problem)
                out_text(o, "  warning: %s\n", g->problem);
        out_close_object(o);
}

static void print_instance_row(struct out *o, const struct vgpu_instance *in, const char *domain) {
        out_open_object(o, NULL);
        out_string(o, OUT_ANY, "uuid", "%-37s ", in->uuid[0] ? in->uuid : NULL);
        out_string(o, OUT_ANY, "parent", "%-14s ", in->parent);
        out_string(o, OUT_ANY, "type", "%-16s ", in->type);
        out_i64(o, OUT_ANY, "iommu_group", "%-6s ", in->iommu_group, in->iommu_group >= 0);
        out_string(o, OUT_ANY, "domain", "%s", domain);
        out_text(o, "\n");
        out_close_object(o);
}

void print_gpus(struct out *o, const struct vgpu_host *host, print_gpu_extra_fn extra, void *userdata) {
        print_gpus_held(o, host, NULL, extra, userdata);
}

void print_gpus_held(struct out *o, const struct vgpu_host *host, char *const *domains,
                     print_gpu_extra_fn extra, void *userdata) {
        out_text(o, "%-14s %-10s %-32s %-10s %-6s %-5s %-30s %-7s %s\n", "BDF", "ID", "NAME", "DRIVER",
                 "GROUP", "NUMA", "LINK", "SR-IOV", "VGPU-HOST");
        out_open_array(o, "gpus");
        /* PFs in BDF order, each followed by its VFs (indented in the table). */
        for (size_t i = 0; i < host->n_gpus; i++) {
                const struct vgpu_gpu *g = &host->gpus[i];
                if (g->physfn[0] && vgpu_host_find_gpu(host, g->physfn))
                        continue;
                print_gpu_row(o, host, g, domains, extra, userdata);
                for (size_t j = 0; j < g->n_vfs; j++) {
                        const struct vgpu_gpu *vf = vgpu_host_find_gpu(host, g->vfs[j]);
                        if (vf)
                                print_gpu_row(o, host, vf, domains, extra, userdata);
                }
        }
        out_close_array(o);
        if (host->n_gpus == 0)
                out_text(o, "(no GPU found)\n");
}

void print_instances(struct out *o, const struct vgpu_host *host, char *const *domains) {
        out_text(o, "\n%-37s %-14s %-16s %-6s %s\n", "INSTANCE", "PARENT", "TYPE", "GROUP", "DOMAIN");
        out_open_array(o, "instances");
        for (size_t i = 0; i < host->n_instances; i++)
                print_instance_row(o, &host->instances[i], domains ? domains[i] : NULL);
        out_close_array(o);
        if (host->n_instances == 0)
                out_text(o, "(no vGPU instance)\n");
}

/* Does this definition run: its UUID on its parent (mdevctl allows one UUID under two parents,
 * and the instance runs on at most one of them). */
static bool running(const struct vgpu_host *host, const struct vgpu_mdev_spec *s) {
        for (size_t i = 0; i < host->n_instances; i++)
                if (strcmp(host->instances[i].uuid, s->uuid) == 0 &&
                    strcmp(host->instances[i].parent, s->parent) == 0)
                        return true;
        return false;
}

void print_definitions(struct out *o, const struct vgpu_host *host, const struct vgpu_mdev_spec *specs,
                       size_t n) {
        out_text(o, "\n%-37s %-14s %-16s %-7s %s\n", "DEFINED", "PARENT", "TYPE", "START", "RUNNING");
        out_open_array(o, "definitions");
        for (size_t i = 0; i < n; i++) {
                const struct vgpu_mdev_spec *s = &specs[i];
                out_open_object(o, NULL);
                out_string(o, OUT_ANY, "uuid", "%-37s ", s->uuid);
                out_string(o, OUT_ANY, "parent", "%-14s ", s->parent);
                out_string(o, OUT_ANY, "type", "%-16s ", s->type);
                /* the create request's name (POST /v1/instances, host.yaml's auto-start), not mdevctl's "start" */
                out_bool(o, OUT_JSON, "auto_start", NULL, s->auto_start);
                out_text(o, "%-7s ", s->auto_start ? "auto" : "manual");
                out_bool(o, OUT_ANY, "running", "%s\n", running(host, s));
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

static void print_type(struct out *o, const struct vgpu_type *t) {
        char fb[16];
        out_open_object(o, NULL);
        out_string(o, OUT_ANY, "parent", "%-14s ", t->parent);
        out_string(o, OUT_ANY, "type", "%-16s ", t->id);
        out_string(o, OUT_ANY, "name", "%-20s ", t->name);
        out_string(o, OUT_ANY, "device_api", "%-10s ", t->device_api);
        out_i64(o, OUT_ANY, "available_instances", "%5s ", t->available_instances,
                t->available_instances >= 0);
        out_i64(o, OUT_ANY, "max_instances", "%5s ", t->max_instances, t->max_instances >= 0);
        out_i64(o, OUT_JSON, "framebuffer_bytes", NULL, t->framebuffer_bytes, t->framebuffer_bytes >= 0);
        if (!out_is_json(o)) /* out_text() would drop it, but only after the snprintf */
                out_text(o, "%6s", format_bytes(fb, sizeof(fb), t->framebuffer_bytes));
        out_string(o, OUT_JSON, "kind", NULL, t->kind == VGPU_TYPE_MDEV ? "mdev" : "nvidia-vfio");
        out_string(o, OUT_JSON, "description", NULL, t->description);
        out_text(o, "\n");
        out_close_object(o);
}

void print_types(struct out *o, const char *key, const struct vgpu_host *host, const char *want,
                 bool available_only) {
        out_text(o, "%-14s %-16s %-20s %-10s %5s %5s %6s\n", "PARENT", "TYPE", "NAME", "API", "AVAIL", "MAX",
                 "FB");
        out_open_array(o, key);
        size_t shown = 0;
        for (size_t i = 0; i < host->n_parents; i++) {
                const struct vgpu_parent *p = &host->parents[i];
                if (want && strcmp(p->name, want) != 0)
                        continue;
                for (size_t j = 0; j < p->n_types; j++) {
                        if (available_only && p->types[j].available_instances == 0)
                                continue;
                        print_type(o, &p->types[j]);
                        shown++;
                }
        }
        out_close_array(o);
        if (shown == 0)
                out_text(o, "(no vGPU types: see 'vgpuctl doctor' for what is missing)\n");
}
