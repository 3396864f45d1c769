/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* host-internal.h — the steps vgpu_host_scan() runs, one file each, and what they share. */
#pragma once

#include <dirent.h>
#include <pthread.h>

#include "basic/arena.h"
#include "vgpu/host.h"

/*
 * The snapshot as libvgpu holds it: what callers read (pub, the installed struct vgpu_host),
 * and beside it what only the scan and its lazy readers use. vgpu_host_scan() allocates this;
 * every struct vgpu_host a caller has is the pub member of one.
 */
struct host {
        struct vgpu_host pub;
        /* every type's id, name, description and device_api: types of parents of one device
         * model point at the same strings (mdev-types.c), freed once with the arena */
        struct arena type_strings;
        /* per parent (pub.parents[i]), whether its types were read: VGPU_SCAN_TYPES reads all,
         * VGPU_SCAN_PARENTS none, and host_parent_read_types() one on demand. NULL: none read. */
        bool *types_read;
        /* pci.c's listing of /sys/class/mdev_bus, kept when the scan goes on to the parents
         * (mdev.c takes it): the directory is listed once, not twice (512 entries are some
         * 0.4 ms on tmpfs). NULL: not kept. */
        struct mdev_bus_listing *mdev_bus;
};

/* The entries of /sys/class/mdev_bus as one listing gave them: names and inode numbers. */
struct mdev_bus_listing {
        char **names;
        uint64_t *inos;
        size_t n, allocated_names, allocated_inos;
};

void mdev_bus_listing_free(struct mdev_bus_listing *l);
static inline void mdev_bus_listing_freep(struct mdev_bus_listing **l) {
        mdev_bus_listing_free(*l);
}

/* host.c: an empty snapshot, as vgpu_host_scan() starts from and vgpu_host_free() frees (tests
 * make theirs with it); NULL without memory. */
struct vgpu_host *host_new(void);

static inline struct host *host_of(const struct vgpu_host *pub) {
        /* the snapshot's lazily read parts change behind the callers' const pointers */
        return (struct host *) ((char *) pub - offsetof(struct host, pub));
}

/* sysfs paths the scan reads, all under VGPU_ROOT. */
#define SYS_PCI_DEVICES  "/sys/bus/pci/devices"
#define SYS_MDEV_BUS     "/sys/class/mdev_bus"
#define SYS_MDEV_DEVICES "/sys/bus/mdev/devices"
#define SYS_IOMMU_GROUPS "/sys/kernel/iommu_groups"

/* PCI class codes (base class << 16 | subclass << 8 | prog-if). */
#define PCI_BASE_CLASS_DISPLAY 0x03
#define PCI_CLASS_BRIDGE_PCI   0x0604

/* One PCI function as the scan saw it; only display functions become struct vgpu_gpu. */
struct pci_function {
        char bdf[VGPU_BDF_MAX];
        uint16_t vendor_id, device_id, subsystem_vendor_id, subsystem_device_id;
        uint32_t class_code;
        char *driver;
        int iommu_group;
        int dirfd; /* the function's files are "BDF/..." relative to it (pci.c: its bus's directory) */
        bool read; /* false: vanished or unreadable, ignored */
};

/* pci.c: every display-class function into host->gpus, sorted by BDF (and groups, by flag). */
int pci_scan(struct vgpu_host *host, unsigned flags, struct vgpu_error *err);

/* Parse "16.0 GT/s PCIe" / "8 GT/s" / "Unknown" to GT/s (0 when unknown). */
double pci_parse_link_speed(const char *s);

/* mdev.c: parents and their types (mdev ABI and vendor-VFIO), and instances. */
int mdev_scan_parents(struct vgpu_host *host, bool with_types, struct vgpu_error *err);
/* Read p's types (a parent of host) unless the scan or an earlier call did. */
int host_parent_read_types(const struct vgpu_host *host, struct vgpu_parent *p, struct vgpu_error *err);
/* mdev-instances.c: the instances, their IOMMU groups only with_groups (VGPU_SCAN_GROUPS).
 * start lists the mdev bus and, for many instances, reads their links on a thread of its own
 * (else finish reads them); finish waits for it, adds the
 * vendor-VFIO instances of host's GPUs (read by then) and hands all to host, sorted. Every start
 * is followed by one finish; with keep false (the scan failed elsewhere) it only cleans up. */
struct mdev_instance_scan {
        pthread_t thread;
        bool running; /* the thread was started (else finish reads the links itself) */
        DIR *dir;     /* /sys/bus/mdev/devices, listed into instances, until the links are read */
        bool with_groups;
        struct vgpu_instance *instances;
        size_t n, allocated;
        int r; /* the thread's result, 0 or -errno with err */
        struct vgpu_error err;
};
void mdev_instances_start(struct mdev_instance_scan *s, bool with_groups);
int mdev_instances_finish(struct vgpu_host *host, struct mdev_instance_scan *s, bool keep,
                          struct vgpu_error *err);
/* in's IOMMU group: as the scan read it, else from its iommu_group link now; -1 when it has none
 * (IOMMU off) or is gone. For the few instances a plan removes or restarts. */
int host_instance_iommu_group(const struct vgpu_instance *in);

/* mdev-types.c: the types of each job's parent, sorted by id (mdev_type_cmp), static attributes
 * copied from the reference parent's types where it has one (a parent of the same device model,
 * read before); their strings go to *strings. */
struct mdev_type_job {
        struct vgpu_parent *parent;
        const struct vgpu_parent *ref;
};
int mdev_types_read(int busfd, const struct mdev_type_job *jobs, size_t n_jobs, struct arena *strings,
                    struct vgpu_error *err);
int mdev_type_cmp(const void *a, const void *b);

/* type-pick.c: vgpu_parent_pick_type() on a parent in hand (reads its types when not yet read). */
int type_pick_by_framebuffer(const struct vgpu_host *host, struct vgpu_parent *p, uint64_t bytes,
                             const struct vgpu_type **ret, struct vgpu_error *err);

/* iommu.c: the IOMMU groups holding a GPU, from every function's iommu_group link. */
int iommu_build_groups(struct vgpu_host *host, const struct pci_function *funcs, size_t n_funcs,
                       struct vgpu_error *err);

/* pci-names.c: vendor and device names from libpci's id database (pci.ids, then the hwdb). */
int pci_fill_names(struct vgpu_host *host, struct vgpu_error *err);
/* Its two halves, for the test that they agree: one pass over pci.ids for the host's distinct
 * vendor:device pairs (*ret_complete: every GPU got both names), and libpci for the names still NULL. */
int pci_fill_names_fast(struct vgpu_host *host, bool *ret_complete, struct vgpu_error *err);
int pci_fill_names_libpci(struct vgpu_host *host, struct vgpu_error *err);

/* nvml.c: NVML readings for NVIDIA GPUs; absent NVML is not an error. */
int nvml_scan(struct vgpu_host *host, struct vgpu_error *err);
/* Turn NVIDIA persistence mode on or off for the GPU at bdf (nvmlDeviceSetPersistenceMode). */
int nvml_set_persistence(const char *bdf, bool on, struct vgpu_error *err);

/* nvml-vgpu-types.c: fill the unknown frame buffer of vendor-VFIO types from NVML, if it answers. */
void nvml_vgpu_type_framebuffers(struct vgpu_parent *parents, size_t n_parents);
