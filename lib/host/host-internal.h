/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* host-internal.h — the steps vgpu_host_scan() runs, one file each, and what they share. */
#pragma once

#include "vgpu/host.h"

/* sysfs paths the scan reads, all under VGPU_ROOT. */
#define SYS_PCI_DEVICES   "/sys/bus/pci/devices"
#define SYS_MDEV_BUS      "/sys/class/mdev_bus"
#define SYS_MDEV_DEVICES  "/sys/bus/mdev/devices"
#define SYS_IOMMU_GROUPS  "/sys/kernel/iommu_groups"

/* PCI class codes (base class << 16 | subclass << 8 | prog-if). */
#define PCI_BASE_CLASS_DISPLAY 0x03
#define PCI_CLASS_BRIDGE_PCI   0x0604

/* pci.c: every display-class function into host->gpus, sorted by BDF. */
int pci_scan_gpus(struct vgpu_host *host, struct vgpu_error *err);

/* Parse "16.0 GT/s PCIe" / "8 GT/s" / "Unknown" to GT/s (0 when unknown). */
double pci_parse_link_speed(const char *s);

/* mdev.c: parents and their types (mdev ABI and vendor-VFIO), and instances. */
int mdev_scan_parents(struct vgpu_host *host, struct vgpu_error *err);
int mdev_scan_instances(struct vgpu_host *host, struct vgpu_error *err);

/* iommu.c: members of each GPU's IOMMU group. */
int iommu_scan_groups(struct vgpu_host *host, struct vgpu_error *err);

/* pci-names.c: vendor and device names from pci.ids through libpci. */
int pci_fill_names(struct vgpu_host *host, struct vgpu_error *err);

/* nvml.c: NVML readings for NVIDIA GPUs; absent NVML is not an error. */
int nvml_scan(struct vgpu_host *host, struct vgpu_error *err);

void vgpu_type_done(struct vgpu_type *t);
