/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * print.h — the printers of vgpuctl's objects (GPUs, instances, definitions, types, doctor
 * results, outcomes and plans), shared by vgpuctl and vgpud so that the CLI's --json and the
 * daemon's API bodies are one model and cannot drift apart.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "output.h"
#include "vgpu/apply.h"
#include "vgpu/doctor.h"
#include "vgpu/host.h"
#include "vgpu/lifecycle.h"

/* Called inside each GPU's object, after its last member: the daemon adds its health there. */
typedef void (*print_gpu_extra_fn)(struct out *o, const struct vgpu_gpu *g, void *userdata);

void print_hex_id(struct out *o, enum out_mode m, const char *key, const char *fmt, unsigned v);
void print_link(struct out *o, const struct vgpu_link *l);
/* "iommu_group_peers": the BDFs of the other functions in g's IOMMU group (JSON only). */
void print_iommu_group_peers(struct out *o, const struct vgpu_host *host, const struct vgpu_gpu *g);
/* NVML's clocks-event reason bits as a JSON array of names ("sw_thermal_slowdown"), null when unknown. */
void print_clocks_event_reasons(struct out *o, const char *key, bool known, uint64_t reasons);
void print_nvml(struct out *o, const struct vgpu_nvml_gpu *n);
void print_nvml_vgpu(struct out *o, const char *key, const struct vgpu_nvml_gpu *n,
                     const struct vgpu_nvml_vgpu *v);

/* What a scan must read for print_gpus()'s objects: `list --json` and /v1/gpus scan with it, so
 * both fill every member alike (names too: they are a cheap pass over pci.ids, pci-names.c). */
#define PRINT_GPUS_SCAN \
        (VGPU_SCAN_DETAILS | VGPU_SCAN_GROUPS | VGPU_SCAN_INSTANCES | VGPU_SCAN_NVML | VGPU_SCAN_NAMES)

/* The "gpus" array of `list` (PFs in BDF order, each followed by its VFs), with its table header. */
void print_gpus(struct out *o, const struct vgpu_host *host, print_gpu_extra_fn extra, void *userdata);
/* the same with the domain holding each GPU (domains[i] for host->gpus[i], NULL: none known) */
void print_gpus_held(struct out *o, const struct vgpu_host *host, char *const *domains,
                     print_gpu_extra_fn extra, void *userdata);
/* The "instances" array of `list`; domains (may be NULL) names the VM holding each instance. */
void print_instances(struct out *o, const struct vgpu_host *host, char *const *domains);
/* The "definitions" array of `list --defined`: mdevctl's store, with running state. */
void print_definitions(struct out *o, const struct vgpu_host *host, const struct vgpu_mdev_spec *specs,
                       size_t n);
/* `types`: an array of every type (of parent, when not NULL), under key (NULL: at the top, as
 * `vgpuctl types --json` prints it; "types" in /v1/types's object). */
void print_types(struct out *o, const char *key, const struct vgpu_host *host, const char *parent,
                 bool available_only);

/* Doctor results whose id is in sel (all when n_sel is 0), as an array (member key of the
 * enclosing object, or NULL); returns the number failed. */
size_t print_doctor_report(struct out *o, const char *key, const struct vgpu_doctor_report *report,
                           const char *const *sel, size_t n_sel);
/* Run the doctor on host (scanned with VGPU_SCAN_ALL) and print every result. */
void print_doctor(struct out *o, const struct vgpu_host *host);

/* Slices (vgpu/slice.h), as an array under key (NULL at the top). */
struct vgpu_slice_status;
void print_slices(struct out *o, const char *key, const struct vgpu_slice_status *s, size_t n);
/* One slice as an object (`slice show`). */
void print_slice(struct out *o, const struct vgpu_slice_status *s);
/* What `slice create|remove --json` print: {name, gpu, changed}; the text is the caller's. */
void print_slice_outcome(struct out *o, const char *name, const char *gpu, bool changed);

/* The outcome of create/remove/define/...: r > 0 changed, 0 nothing to do. */
void print_outcome(struct out *o, const char *verb_done, const char *verb_noop, int r, const char *uuid,
                   const char *parent, const char *type);
/* An action in words: "UUID (TYPE on PARENT)", "slice NAME (...)", "PF: 0 -> 4 VFs" (the plan's
 * lines, vgpuctl's progress). */
void describe_action(char *buf, size_t size, const struct vgpu_action *a);
/* An apply plan: {changes, actions[], note}; diff prints -/+ lines in text mode. */
void print_plan(struct out *o, const struct vgpu_plan *plan, bool diff, const char *heading);
/* What `apply` prints after vgpu_apply(): the plan under "done:" (or "would do (dry run):"), or
 * in text mode for an empty plan "nothing to do: the host matches SOURCE" (the file's name). */
void print_apply(struct out *o, const struct vgpu_plan *plan, bool diff, bool dry_run, const char *source);
