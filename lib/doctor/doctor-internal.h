/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * doctor-internal.h — what the doctor's runner (doctor.c) and its checks (checks-*.c) share:
 * the check table's shape, how a check adds a result, a growable text buffer for evidence and
 * remedies, and the few host reads that several checks make.
 *
 * A check is one function. Host-wide checks add one result; per-GPU checks are called once per
 * physical GPU by the runner, which also adds the single "no GPU" skip on a host without one.
 * Checks return 0, or -ENOMEM: a finding is a result, never an error.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "basic/macro.h"
#include "vgpu/doctor.h"
#include "vgpu/host.h"

#define PCI_CLASS_BRIDGE_PCI 0x0604 /* class code >> 8 */

/* A growable string. Appends after a failed allocation are dropped and `oom` is set, so a
 * check can build its text in straight-line code and test once. */
struct text {
        char *s;
        size_t len, allocated;
        bool oom;
};

void text_append(struct text *t, const char *fmt, ...) _printf_(2, 3);
/* Append a line: a "\n" first when the text is not empty. */
void text_line(struct text *t, const char *fmt, ...) _printf_(2, 3);
/* The string so far ("" when empty); NULL after a failed allocation. */
const char *text_get(const struct text *t);
void text_done(struct text *t);
#define _cleanup_text_ _cleanup_(text_done)

/* The running doctor: the snapshot, the results so far, lazily opened libpci. */
struct doctor {
        const struct vgpu_host *host;
        const char *check_id; /* the id of the check that is running */
        struct vgpu_check_result *results;
        size_t n_results, allocated;
        const struct libpci_dl *pci; /* see pci-config.c */
        struct pci_access *pacc;
        bool pacc_failed;
        char pci_why[320]; /* ": libpci.so.3 is not installed (...)" when that is why it failed */
};

/*
 * Add a result for the running check. subject is a BDF or NULL; evidence may be NULL (no
 * lines); remedy is dropped unless status is warn or fail. Returns 0 or -ENOMEM (also when
 * evidence ran out of memory while being built).
 */
int doctor_add(struct doctor *d, const char *subject, enum vgpu_check_status status,
               const struct text *evidence, const char *remedy, const char *summary_fmt, ...) _printf_(6, 7);

struct doctor_check {
        const char *id;
        /* exactly one of these */
        int (*host)(struct doctor *d);
        int (*gpu)(struct doctor *d, const struct vgpu_gpu *g);
};

/* The table, in the order the checks run (doctor.c). */
extern const struct doctor_check doctor_checks[];
extern const size_t doctor_n_checks;

/* checks-system.c */
int check_privileges(struct doctor *d);
int check_kernel_version(struct doctor *d);
int check_kernel_headers(struct doctor *d);
int check_tools_present(struct doctor *d);
/* checks-kvm.c */
int check_kvm_available(struct doctor *d);
/* checks-iommu.c */
int check_iommu_enabled(struct doctor *d);
int check_iommu_cmdline(struct doctor *d);
int check_iommu_group_viable(struct doctor *d, const struct vgpu_gpu *g);
/* checks-pci.c */
int check_sriov_capable(struct doctor *d, const struct vgpu_gpu *g);
int check_bar_above4g(struct doctor *d, const struct vgpu_gpu *g);
int check_pcie_link(struct doctor *d, const struct vgpu_gpu *g);
int check_pcie_slot_power(struct doctor *d, const struct vgpu_gpu *g);
/* checks-secureboot.c */
int check_secureboot_modules(struct doctor *d);
/* checks-driver.c */
int check_driver_loaded(struct doctor *d, const struct vgpu_gpu *g);
int check_mdev_types(struct doctor *d, const struct vgpu_gpu *g);
int check_gpu_models_mixed(struct doctor *d);
int check_nvidia_persistence(struct doctor *d, const struct vgpu_gpu *g);
/* checks-service.c */
int check_nvidia_vgpu_mgr(struct doctor *d);
int check_amd_gim(struct doctor *d);
/* checks-guest.c: one result per running NVIDIA vGPU, or one skip */
int check_nvidia_guest_driver(struct doctor *d);
/* checks-module.c */
int check_driver_kernel_match(struct doctor *d);
/* The vendor's out-of-tree modules (vendor 0: all) against the running kernel: evidence lines
 * in ev, "what is wrong" in what, the remedy in rem. 1 one does not fit, 0 all fit or none is
 * installed, -ENOMEM. driver.loaded names this cause for a GPU without a driver. */
int doctor_vendor_modules_stale(uint16_t vendor, const char *running, struct text *ev, struct text *what,
                                struct text *rem);
/* checks-thermal.c */
int check_thermal_margin(struct doctor *d, const struct vgpu_gpu *g);
/* checks-network.c */
int check_vdi_network(struct doctor *d);

/*
 * The GPUs the doctor looks at: physical functions (not VFs) of the vendors whose drivers
 * host vGPUs. Other display functions — a server's BMC console (ASPEED, Matrox), an emulated
 * VGA — can never host one, and failing on them would make every healthy server "broken".
 */
bool doctor_is_gpu(const struct vgpu_gpu *g);

/* Is g bound to a driver that can carve it into vGPUs (nvidia, i915/xe, gim/amdgpu with
 * SR-IOV)? */
bool doctor_gpu_driver_hosts_vgpus(const struct vgpu_gpu *g);

/* "NVIDIA", "AMD", "Intel" or "0x1234". buf is used for the last. */
const char *doctor_vendor_name(uint16_t vendor_id, char buf[static 8]);

/* doctor-read.c: host files beyond the snapshot, all under VGPU_ROOT. */

/* A whole file (looping read: /proc/cpuinfo and /etc/default/grub exceed a page). Returns its
 * length, -ENOENT when absent, or -errno. */
int doctor_read_file(const char *path, char **ret);
/* Does path exist under the root? A final symlink is followed inside the root (an absolute
 * target like /usr/src/linux-headers-X is prefixed too), so a fixture never reaches the real
 * host and a dangling link reads as absent. On true, *ret_target (if given) is the link's
 * target, or "" when path is no link. */
bool doctor_path_exists(const char *path, char *ret_target, size_t size);
/* Is the kernel module loaded (/sys/module/NAME exists)? */
bool doctor_module_loaded(const char *name);
/* The module of a PCI driver (/sys/bus/pci/drivers/DRIVER/module), else the driver's name
 * with '-' turned into '_', as the kernel names modules. */
void doctor_driver_module(const char *driver, char *buf, size_t size);
/* CPU vendor from /proc/cpuinfo ("GenuineIntel", "AuthenticAMD"), "" when unknown. Returns 0,
 * or -ENOMEM (buf "") when the file could not be read for want of memory. */
int doctor_cpu_vendor(char *buf, size_t size);
/* Number of entries of /sys/kernel/iommu_groups; 0 when absent. */
int doctor_count_iommu_groups(void);

/* kernel-log.c: the kernel's messages of the running boot. */

/*
 * Find the first kernel message of this boot containing one of `needles` (NULL-terminated,
 * case-insensitive): from the journal (_TRANSPORT=kernel, _BOOT_ID of
 * /proc/sys/kernel/random/boot_id) when the root has one, else from /var/log/kern.log after
 * the last "Linux version" banner. Returns 1 (*ret_line: the message, to free), 0 not found,
 * -ENOENT when there is no kernel log to read, or -ENOMEM. `source` names what was read, or
 * why nothing was ("no journal, no /var/log/kern.log").
 */
int doctor_kernel_log_find(const char *const *needles, char **ret_line, char *source, size_t size);
/* Append to ev the source line "SOURCE: N matching lines:" and the last n (at most 16) kernel
 * messages of this boot holding a needle, each as "  message". Returns the count, -ENOMEM. */
int doctor_kernel_log_grep(const char *const *needles, size_t n, struct text *ev);
/* The root's journal (sd-journal: the system journal on "/", else var/log/journal and
 * run/log/journal of the tree) and the libsystemd that reads it. 0, -ENOENT when the root keeps
 * none, -EOPNOTSUPP when libsystemd is not installed (err names it), -ENOMEM. */
typedef struct sd_journal sd_journal;
struct libsystemd_dl;
int doctor_journal_open(const struct libsystemd_dl **ret_sd, sd_journal **ret, struct vgpu_error *err);
/* "_BOOT_ID=<32 hex>" of the running boot (/proc/sys/kernel/random/boot_id); false when unknown. */
bool doctor_boot_id_match(char buf[static 64]);
/* Does text[0..len) hold one of needles (case-insensitive)? */
bool doctor_text_matches(const char *text, size_t len, const char *const *needles);

/* unit-state.c: a systemd unit's state and its last log lines. */

struct unit_state {
        char load[32], active[32], sub[32], result[32];
        int exec_main_status; /* -1 unknown */
};
/*
 * The unit's state from systemd itself: over sd-bus (org.freedesktop.systemd1) where the root
 * is "/"; on another root (a fixture, an unpacked report) there is no manager to ask, so from
 * the `systemctl show UNIT` output captured at /run/vgpuctl/systemctl-show/UNIT in the tree.
 * Returns 1 known, 0 unknown (source says why), -ENOMEM. source names where it came from.
 */
int doctor_unit_state(const char *unit, struct unit_state *ret, char *source, size_t size);
/*
 * Append to ev the last `n` log lines of this boot of the unit (its processes' own lines and
 * systemd's lines about it), each as "  IDENT: message": from the journal, else the lines of
 * /var/log/syslog tagged `ident` or naming the unit. Returns how many, or -ENOMEM.
 */
int doctor_unit_log_tail(const char *unit, const char *ident, size_t n, struct text *ev);

/* module-build.c: which kernel an out-of-tree module is built for. */

struct module_build {
        char path[512];              /* its file under /lib/modules/RUNNING, "" none */
        char other_path[512];        /* else another kernel's copy, "" none */
        char built_for[128];         /* the kernel release of the file's vermagic */
        char version[64];            /* the file's modinfo version */
        bool readable;               /* path's .modinfo read (libkmod) */
        char unreadable[256];        /* why not, when libkmod is not installed; "" otherwise */
        char dkms_package[64];       /* "" when DKMS does not manage it */
        char dkms_version[64];       /* the newest version DKMS has */
        char dkms_other_kernel[128]; /* a kernel DKMS installed it for, not the running one */
        bool dkms_built_running, dkms_installed_running;
};
/* Look for module `name` (file NAME.ko*, '-' = '_') for kernel `running` and, failing that,
 * for any other kernel in /lib/modules, reading vermagic with libkmod, and DKMS's records of
 * `dkms_package` (may be NULL). 1 something installed, 0 nothing, -ENOMEM. */
int doctor_module_build(const char *name, const char *dkms_package, const char *running,
                        struct module_build *ret);

/* cmdline.c: the kernel command line and the GRUB setting that makes it. */

/* /proc/cmdline into buf ("" when unreadable). */
void cmdline_read(char *buf, size_t size);
/* Is `word` on the command line? A word "key=value" matches exactly; a bare "key=" matches any
 * value of key and returns its value in ret_value (if given). */
bool cmdline_has(const char *cmdline, const char *word);
bool cmdline_value(const char *cmdline, const char *key, char *ret_value, size_t size);
/*
 * Append to t the remedy that puts `words` on the kernel command line for good: the
 * GRUB_CMDLINE_LINUX_DEFAULT line of /etc/default/grub as it is now with the words added (a
 * word "key=value" replaces another value of the same key), then update-grub and a reboot.
 * words is NULL-terminated. The GRUB line as found is added to evidence (may be NULL).
 */
void cmdline_grub_remedy(struct text *t, struct text *evidence, const char *const *words);

/* pci-config.c: config-space capabilities through libpci. */

/* Does the function have extended capability `id` (PCI_EXT_CAP_ID_*)? 1 yes, 0 no, -errno
 * when its config space cannot be read (-EOPNOTSUPP: libpci is not installed). */
int doctor_pci_has_ext_cap(struct doctor *d, const char *bdf, unsigned id);
void doctor_pci_done(struct doctor *d);
/* Why config space was unreadable, for after "unreadable" in evidence: ": <the message naming
 * libpci>" where libpci is not installed, else "". */
const char *doctor_pci_why(const struct doctor *d);
/* A Slot Power Limit in mW: the one the function captured (Device Capabilities) when port is
 * false; the one its slot offers (the port's Slot Capabilities, where a slot is implemented)
 * when true. 1 known, 0 not reported (0 W, or no slot), -errno unreadable. */
int doctor_pci_slot_power(struct doctor *d, const char *bdf, bool port, unsigned *ret_mw);
/* The bridge above bdf in /sys/devices (its root or switch port) into buf; false at a root bus. */
bool doctor_pci_upstream(const char *bdf, char *buf, size_t size);
