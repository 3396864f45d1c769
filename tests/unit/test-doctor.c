/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-doctor.c — lib/doctor: every check passing on a healthy fixture host and turning on a
 * broken one (tests/fixtures/hosts/broken-*, made by gen-broken-hosts.py), with the exact
 * status and the evidence and remedy an admin would act on; the healthy hosts' full status
 * vectors; the broken hosts turning only the checks they break; and the helpers behind the
 * remedies. Runs with LD_LIBRARY_PATH at the NVML double (tests/nvml-double).
 */
#include <sys/stat.h>
#include <unistd.h>

#include "test-doctor-util.h"

/* ---------------------------------------------------------------- the API */

static void test_ids(void **state) {
        (void) state;
        static const char *const want[] = {
                "privileges",         "kernel.version",      "kernel.headers",
                "tools.present",      "kvm.available",       "iommu.enabled",
                "iommu.cmdline",      "iommu.group_viable",  "sriov.capable",
                "bar.above4g",        "pcie.link",           "pcie.slot_power",
                "secureboot.modules", "driver.kernel_match", "driver.loaded",
                "mdev.types",         "gpu.models_mixed",    "nvidia.persistence",
                "nvidia.vgpu_mgr",    "nvidia.guest_driver", "amd.gim",
                "thermal.margin",     "network.vdi_link",    NULL,
        };
        const char *const *ids = vgpu_doctor_check_ids();
        for (size_t i = 0; want[i]; i++) {
                assert_non_null(ids[i]);
                assert_string_equal(ids[i], want[i]);
        }
        assert_null(ids[ELEMENTSOF(want) - 1]);

        assert_string_equal(vgpu_check_status_to_string(VGPU_CHECK_PASS), "pass");
        assert_string_equal(vgpu_check_status_to_string(VGPU_CHECK_WARN), "warn");
        assert_string_equal(vgpu_check_status_to_string(VGPU_CHECK_FAIL), "fail");
        assert_string_equal(vgpu_check_status_to_string(VGPU_CHECK_SKIP), "skip");

        struct vgpu_error err = {};
        struct vgpu_doctor_report *report = NULL;
        assert_int_equal(vgpu_doctor_run(NULL, &report, &err), -EINVAL);
        assert_null(report);
        assert_int_equal(err.code, -EINVAL);
        vgpu_doctor_report_free(NULL);
}

/* ---------------------------------------------------------------- healthy hosts, whole */

/* Runs the doctor on a fixture host and compares its status vector (with problems_only, just its
 * warnings and failures) with want, printing both whole when they differ. */
static void compare_vector(const char *fixture, bool problems_only, const char *want) {
        struct run run = {};
        run_doctor(&run, fixture);
        const char *got = status_vector(&run, problems_only);
        if (strcmp(got, want) != 0)
                print_error("%s: %s\n--- got\n%s--- expected\n%s", fixture,
                            problems_only ? "warnings and failures" : "status vector", got, want);
        assert_string_equal(got, want);
        run_done(&run);
}

static void expect_vector(const char *fixture, const char *want) {
        compare_vector(fixture, false, want);
}

static void test_healthy_vectors(void **state) {
        (void) state;
        /* Everything passes except what does not apply: the T4 has no SR-IOV. */
        expect_vector("nvidia-mdev", "privileges=pass\n"
                                     "kernel.version=pass\n"
                                     "kernel.headers=pass\n"
                                     "tools.present=pass\n"
                                     "kvm.available=pass\n"
                                     "iommu.enabled=pass\n"
                                     "iommu.cmdline=pass\n"
                                     "iommu.group_viable@0000:3b:00.0=pass\n"
                                     "iommu.group_viable@0000:5e:00.0=pass\n"
                                     "iommu.group_viable@0000:af:00.0=pass\n"
                                     "sriov.capable@0000:3b:00.0=skip\n"
                                     "sriov.capable@0000:5e:00.0=skip\n"
                                     "sriov.capable@0000:af:00.0=skip\n"
                                     "bar.above4g@0000:3b:00.0=pass\n"
                                     "bar.above4g@0000:5e:00.0=pass\n"
                                     "bar.above4g@0000:af:00.0=pass\n"
                                     "pcie.link@0000:3b:00.0=pass\n"
                                     "pcie.link@0000:5e:00.0=pass\n"
                                     "pcie.link@0000:af:00.0=pass\n"
                                     "pcie.slot_power@0000:3b:00.0=pass\n"
                                     "pcie.slot_power@0000:5e:00.0=pass\n"
                                     "pcie.slot_power@0000:af:00.0=pass\n"
                                     "secureboot.modules=pass\n"
                                     "driver.kernel_match=pass\n"
                                     "driver.loaded@0000:3b:00.0=pass\n"
                                     "driver.loaded@0000:5e:00.0=pass\n"
                                     "driver.loaded@0000:af:00.0=pass\n"
                                     "mdev.types@0000:3b:00.0=pass\n"
                                     "mdev.types@0000:5e:00.0=pass\n"
                                     "mdev.types@0000:af:00.0=pass\n"
                                     "gpu.models_mixed=pass\n"
                                     "nvidia.persistence@0000:3b:00.0=pass\n"
                                     "nvidia.persistence@0000:5e:00.0=pass\n"
                                     "nvidia.persistence@0000:af:00.0=pass\n"
                                     "nvidia.vgpu_mgr=pass\n"
                                     "nvidia.guest_driver=skip\n"
                                     "amd.gim=skip\n"
                                     "thermal.margin@0000:3b:00.0=pass\n"
                                     "thermal.margin@0000:5e:00.0=pass\n"
                                     "thermal.margin@0000:af:00.0=pass\n"
                                     "network.vdi_link=skip\n");
        /* No iommu=pt on the command line; the second L40S has its VFs (its vGPUs) disabled. */
        expect_vector("nvidia-sriov-vfio", "privileges=pass\n"
                                           "kernel.version=pass\n"
                                           "kernel.headers=pass\n"
                                           "tools.present=pass\n"
                                           "kvm.available=pass\n"
                                           "iommu.enabled=pass\n"
                                           "iommu.cmdline=warn\n"
                                           "iommu.group_viable@0000:41:00.0=pass\n"
                                           "iommu.group_viable@0000:61:00.0=pass\n"
                                           "sriov.capable@0000:41:00.0=pass\n"
                                           "sriov.capable@0000:61:00.0=pass\n"
                                           "bar.above4g@0000:41:00.0=pass\n"
                                           "bar.above4g@0000:61:00.0=pass\n"
                                           "pcie.link@0000:41:00.0=pass\n"
                                           "pcie.link@0000:61:00.0=pass\n"
                                           "pcie.slot_power@0000:41:00.0=pass\n"
                                           "pcie.slot_power@0000:61:00.0=pass\n"
                                           "secureboot.modules=pass\n"
                                           "driver.kernel_match=pass\n"
                                           "driver.loaded@0000:41:00.0=pass\n"
                                           "driver.loaded@0000:61:00.0=pass\n"
                                           "mdev.types@0000:41:00.0=pass\n"
                                           "mdev.types@0000:61:00.0=fail\n"
                                           "gpu.models_mixed=pass\n"
                                           "nvidia.persistence@0000:41:00.0=pass\n"
                                           "nvidia.persistence@0000:61:00.0=pass\n"
                                           "nvidia.vgpu_mgr=pass\n"
                                           "nvidia.guest_driver=skip\n"
                                           "amd.gim=skip\n"
                                           "thermal.margin@0000:41:00.0=pass\n"
                                           "thermal.margin@0000:61:00.0=pass\n"
                                           "network.vdi_link=skip\n");
        /* MxGPU has no mdev types; the temperature comes from hwmon. */
        expect_vector("amd-mxgpu", "privileges=pass\n"
                                   "kernel.version=pass\n"
                                   "kernel.headers=pass\n"
                                   "tools.present=pass\n"
                                   "kvm.available=pass\n"
                                   "iommu.enabled=pass\n"
                                   "iommu.cmdline=pass\n"
                                   "iommu.group_viable@0000:03:00.0=pass\n"
                                   "sriov.capable@0000:03:00.0=pass\n"
                                   "bar.above4g@0000:03:00.0=pass\n"
                                   "pcie.link@0000:03:00.0=pass\n"
                                   "pcie.slot_power@0000:03:00.0=skip\n"
                                   "secureboot.modules=pass\n"
                                   "driver.kernel_match=pass\n"
                                   "driver.loaded@0000:03:00.0=pass\n"
                                   "mdev.types@0000:03:00.0=skip\n"
                                   "gpu.models_mixed=pass\n"
                                   "nvidia.persistence@0000:03:00.0=skip\n"
                                   "nvidia.vgpu_mgr=skip\n"
                                   "nvidia.guest_driver=skip\n"
                                   "amd.gim=pass\n"
                                   "thermal.margin@0000:03:00.0=pass\n"
                                   "network.vdi_link=skip\n");
        /* An integrated GPU: no link, no temperature; iommu=pt missing. */
        expect_vector("intel-gvtg", "privileges=pass\n"
                                    "kernel.version=pass\n"
                                    "kernel.headers=pass\n"
                                    "tools.present=pass\n"
                                    "kvm.available=pass\n"
                                    "iommu.enabled=pass\n"
                                    "iommu.cmdline=warn\n"
                                    "iommu.group_viable@0000:00:02.0=pass\n"
                                    "sriov.capable@0000:00:02.0=skip\n"
                                    "bar.above4g@0000:00:02.0=pass\n"
                                    "pcie.link@0000:00:02.0=skip\n"
                                    "pcie.slot_power@0000:00:02.0=skip\n"
                                    "secureboot.modules=pass\n"
                                    "driver.kernel_match=skip\n"
                                    "driver.loaded@0000:00:02.0=pass\n"
                                    "mdev.types@0000:00:02.0=pass\n"
                                    "gpu.models_mixed=pass\n"
                                    "nvidia.persistence@0000:00:02.0=skip\n"
                                    "nvidia.vgpu_mgr=skip\n"
                                    "nvidia.guest_driver=skip\n"
                                    "amd.gim=skip\n"
                                    "thermal.margin@0000:00:02.0=skip\n"
                                    "network.vdi_link=skip\n");
        /* A VM without IOMMU whose only display is QEMU's VGA: no GPU, no EFI; its vCPU has vmx
         * but kvm_intel is not loaded. */
        expect_vector("kernel-samples", "privileges=pass\n"
                                        "kernel.version=pass\n"
                                        "kernel.headers=pass\n"
                                        "tools.present=pass\n"
                                        "kvm.available=fail\n"
                                        "iommu.enabled=fail\n"
                                        "iommu.cmdline=fail\n"
                                        "iommu.group_viable=skip\n"
                                        "sriov.capable=skip\n"
                                        "bar.above4g=skip\n"
                                        "pcie.link=skip\n"
                                        "pcie.slot_power=skip\n"
                                        "secureboot.modules=skip\n"
                                        "driver.kernel_match=skip\n"
                                        "driver.loaded=skip\n"
                                        "mdev.types=skip\n"
                                        "gpu.models_mixed=skip\n"
                                        "nvidia.persistence=skip\n"
                                        "nvidia.vgpu_mgr=skip\n"
                                        "nvidia.guest_driver=skip\n"
                                        "amd.gim=skip\n"
                                        "thermal.margin=skip\n"
                                        "network.vdi_link=skip\n");
        expect_vector("empty", "privileges=pass\n"
                               "kernel.version=pass\n"
                               "kernel.headers=pass\n"
                               "tools.present=pass\n"
                               "kvm.available=pass\n"
                               "iommu.enabled=fail\n"
                               "iommu.cmdline=fail\n"
                               "iommu.group_viable=skip\n"
                               "sriov.capable=skip\n"
                               "bar.above4g=skip\n"
                               "pcie.link=skip\n"
                               "pcie.slot_power=skip\n"
                               "secureboot.modules=pass\n"
                               "driver.kernel_match=skip\n"
                               "driver.loaded=skip\n"
                               "mdev.types=skip\n"
                               "gpu.models_mixed=skip\n"
                               "nvidia.persistence=skip\n"
                               "nvidia.vgpu_mgr=skip\n"
                               "nvidia.guest_driver=skip\n"
                               "amd.gim=skip\n"
                               "thermal.margin=skip\n"
                               "network.vdi_link=skip\n");
}

static void test_empty_host(void **state) {
        (void) state;
        struct run run = {};
        run_doctor(&run, "empty");
        /* every per-GPU check: one skip, for the host, saying why */
        for (size_t i = 0; i < doctor_n_checks; i++) {
                if (!doctor_checks[i].gpu)
                        continue;
                size_t n = 0;
                for (size_t j = 0; j < run.report->n_results; j++)
                        if (strcmp(run.report->results[j].id, doctor_checks[i].id) == 0)
                                n++;
                assert_int_equal(n, 1);
                expect(&run, doctor_checks[i].id, NULL, VGPU_CHECK_SKIP, "no GPU",
                       "no NVIDIA, AMD or Intel display function", NULL);
        }
        expect(&run, "gpu.models_mixed", NULL, VGPU_CHECK_SKIP, "no GPU", NULL, NULL);
        run_done(&run);
}

/* ---------------------------------------------------------------- broken hosts turn one thing */

static void test_broken_isolation(void **state) {
        (void) state;
        static const struct {
                const char *host, *problems;
        } cases[] = {
                { "broken-kvm-bios", "kvm.available=fail\n" },
                { "broken-vgpu-mgr-failed", "nvidia.vgpu_mgr=fail\n" },
                { "broken-gim-errors", "amd.gim=warn\n" },
                { "broken-kernel-upgraded",
                  "driver.kernel_match=fail\ndriver.loaded@0000:3b:00.0=fail\nnvidia.vgpu_mgr=fail\n" },
                { "broken-old-kernel", "kernel.version=fail\n" },
                { "broken-no-headers", "kernel.headers=warn\n" },
                { "broken-no-tools", "tools.present=warn\n" },
                { "broken-no-root", "privileges=warn\n" },
                { "broken-iommu-off", "iommu.enabled=fail\n" },
                { "broken-cmdline", "iommu.enabled=fail\niommu.cmdline=fail\n" },
                { "broken-cmdline-default", "iommu.cmdline=warn\n" },
                { "broken-group-shared", "" }, /* a note, no failure: see test_iommu_group_viable */
                { "broken-group-shared-whole",
                  "iommu.group_viable@0000:60:00.0=fail\nmdev.types@0000:60:00.0=fail\n" },
                { "broken-vf-group-shared", "iommu.group_viable@0000:03:00.0=fail\n" },
                { "broken-sriov-hidden", "sriov.capable@0000:03:00.0=fail\n" },
                { "broken-bar-unassigned", "bar.above4g@0000:3b:00.0=fail\n" },
                { "broken-bar-below4g", "bar.above4g@0000:3b:00.0=warn\n" },
                { "broken-link-degraded", "pcie.link@0000:3b:00.0=warn\n" },
                { "broken-link-busy", "pcie.link@0000:3b:00.0=warn\n" },
                { "broken-slot-gen3", "pcie.link@0000:3b:00.0=warn\n" },
                { "broken-slot-power", "pcie.slot_power@0000:3b:00.0=warn\n" },
                { "broken-secureboot-unsigned", "secureboot.modules=fail\n" },
                { "broken-secureboot-blocked", "secureboot.modules=fail\ndriver.loaded@0000:3b:00.0=fail\n" },
                { "broken-nouveau", "driver.loaded@0000:3b:00.0=fail\n" },
                { "broken-vfio-bound", "driver.loaded@0000:3b:00.0=fail\n" },
                { "broken-no-vgpu-manager", "mdev.types@0000:3b:00.0=fail\n" },
                { "broken-gvt-off", "mdev.types@0000:00:02.0=fail\n" },
                { "broken-no-kvmgt", "mdev.types@0000:00:02.0=fail\n" },
                { "broken-mixed-models", "gpu.models_mixed=warn\n" },
                { "broken-persistence-off", "nvidia.persistence@0000:3b:00.0=warn\n" },
                { "broken-hot", "thermal.margin@0000:3b:00.0=fail\n" },
                { "broken-warm", "thermal.margin@0000:3b:00.0=warn\n" },
                { "broken-hot-hwmon", "thermal.margin@0000:03:00.0=fail\n" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                compare_vector(cases[i].host, true, cases[i].problems);
}

/* ---------------------------------------------------------------- each check, both ways */

static const struct want privileges[] = {
        { "nvidia-mdev", NULL, VGPU_CHECK_PASS, "root",
          "/proc/self/status: Uid: 0 0 0 0, CapEff: 000001ffffffffff", NULL },
        { "broken-no-root", NULL, VGPU_CHECK_WARN, "read-only commands work",
          "/proc/self/status: Uid: 1000 1000 1000 1000, CapEff: 0000000000000000", "sudo vgpuctl" },
        {},
};

static const struct want kernel_version[] = {
        { "nvidia-mdev", NULL, VGPU_CHECK_PASS, "6.1", "/proc/sys/kernel/osrelease: 6.1.0-28-amd64", NULL },
        { "broken-old-kernel", NULL, VGPU_CHECK_FAIL, "kernel 5.10 is older than 5.15",
          "/proc/sys/kernel/osrelease: 5.10.0-28-amd64", "linux-image-amd64" },
        {},
};

static const struct want kernel_headers[] = {
        { "nvidia-mdev", NULL, VGPU_CHECK_PASS, "6.1.0-28-amd64", "/lib/modules/6.1.0-28-amd64/build: -> ",
          NULL },
        { "broken-no-headers", NULL, VGPU_CHECK_WARN, "no headers for kernel 6.1.0-28-amd64",
          "/lib/modules/6.1.0-28-amd64/build: absent", "apt-get install linux-headers-6.1.0-28-amd64" },
        {},
};

static const struct want tools_present[] = {
        { "nvidia-mdev", NULL, VGPU_CHECK_PASS, NULL, "/usr/bin/lspci: present", NULL },
        { "broken-no-tools", NULL, VGPU_CHECK_WARN, "missing lspci, gcc, make",
          "gcc: not in /usr/bin, /usr/sbin, /bin, /sbin", "apt-get install pciutils gcc make" },
        {},
};

static const struct want iommu_enabled[] = {
        { "nvidia-mdev", NULL, VGPU_CHECK_PASS, "IOMMU on (DMAR table",
          "/sys/firmware/acpi/tables/DMAR: present", NULL },
        { "amd-mxgpu", NULL, VGPU_CHECK_PASS, "IVRS", "/sys/kernel/iommu_groups: ", NULL },
        /* the firmware part missing */
        { "broken-iommu-off", NULL, VGPU_CHECK_FAIL, "no DMAR/IVRS table",
          "/sys/firmware/acpi/tables/DMAR, IVRS: absent", "\"Intel VT-d\"" },
        { "broken-iommu-off", NULL, VGPU_CHECK_FAIL, NULL, "/sys/kernel/iommu_groups: empty or absent",
          NULL },
        /* the kernel part missing */
        { "empty", NULL, VGPU_CHECK_FAIL,
          "the firmware has it (DMAR table) but the kernel made no IOMMU groups",
          "/sys/kernel/iommu_groups: empty or absent",
          "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on iommu=pt\"" },
        {},
};

static const struct want iommu_cmdline[] = {
        { "nvidia-mdev", NULL, VGPU_CHECK_PASS, "intel_iommu=on and iommu=pt",
          "/proc/cpuinfo: vendor_id GenuineIntel", NULL },
        { "amd-mxgpu", NULL, VGPU_CHECK_PASS, "AMD IOMMU is on by default", "vendor_id AuthenticAMD", NULL },
        { "broken-cmdline", NULL, VGPU_CHECK_FAIL, "intel_iommu=on missing and the IOMMU is off",
          "/etc/default/grub: GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"",
          "  GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on iommu=pt\"\nthen run:\n  update-grub "
          "&& reboot" },
        { "broken-cmdline", NULL, VGPU_CHECK_FAIL, NULL, " ro quiet", NULL },
        { "broken-cmdline-default", NULL, VGPU_CHECK_WARN, "on by the kernel's default",
          "/sys/kernel/iommu_groups: ", "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet iommu=pt intel_iommu=on\"" },
        { "nvidia-sriov-vfio", NULL, VGPU_CHECK_WARN, "iommu=pt missing",
          "/proc/cmdline: ", "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet amd_iommu=on iommu=pt\"" },
        {},
};

static const struct want iommu_group_viable[] = {
        /* an mdev parent: its vGPUs get groups of their own, so a shared card group is a note */
        { "broken-group-shared", "0000:3b:00.0", VGPU_CHECK_PASS, "holds only this card's functions", NULL,
          NULL },
        { "broken-group-shared", "0000:60:00.0", VGPU_CHECK_PASS,
          "IOMMU group 5 is shared with 0000:61:00.0 (e1000e): no matter for its mdev vGPUs",
          "/sys/kernel/iommu_groups/5/devices/0000:61:00.0: class 0x020000, driver e1000e", NULL },
        /* the same card without vGPU types can only go whole: then the group fails */
        { "broken-group-shared-whole", "0000:60:00.0", VGPU_CHECK_FAIL, "0000:61:00.0 (e1000e) shares it",
          "/sys/kernel/iommu_groups/5/devices/0000:61:00.0: class 0x020000, driver e1000e",
          "echo vfio-pci > /sys/bus/pci/devices/0000:61:00.0/driver_override" },
        /* the switch's ports in the same group are harmless */
        { "broken-group-shared-whole", "0000:60:00.0", VGPU_CHECK_FAIL, NULL,
          "/sys/kernel/iommu_groups/5/devices/0000:5f:08.0: class 0x060400", NULL },
        /* SR-IOV: each VF's group is what VFIO takes; here they sit in the PF's, with the PF on gim */
        { "amd-mxgpu", "0000:03:00.0", VGPU_CHECK_PASS, "the IOMMU groups of its 4 VFs are viable",
          "/devices/0000:03:02.3: class 0x038000, driver vfio-pci", NULL },
        { "broken-vf-group-shared", "0000:03:00.0", VGPU_CHECK_FAIL,
          "4 of 4 VFs are in IOMMU groups VFIO cannot take: group 5 (4 VFs), shared with "
          "0000:03:00.0 (gim)",
          "/sys/kernel/iommu_groups/5/devices/0000:03:00.0: class 0x038000, driver gim\n"
          "/sys/kernel/iommu_groups/5/devices/0000:03:02.0: class 0x038000, driver vfio-pci",
          "the PF has no ACS isolation between its functions",
          .not_in_remedy = "0000:03:00.0/driver/unbind" }, /* never "unbind the PF" */
        { "broken-iommu-off", "0000:3b:00.0", VGPU_CHECK_SKIP, "no IOMMU group",
          "/sys/bus/pci/devices/0000:3b:00.0/iommu_group: absent", NULL },
        {},
};

static const struct want sriov_capable[] = {
        { "amd-mxgpu", "0000:03:00.0", VGPU_CHECK_PASS, "4 VFs possible, 4 enabled",
          "/sys/bus/pci/devices/0000:03:00.0/sriov_totalvfs: 4", NULL },
        { "nvidia-mdev", "0000:3b:00.0", VGPU_CHECK_SKIP,
          "no SR-IOV capability: not needed for mdev-based vGPU",
          "/sys/bus/pci/devices/0000:3b:00.0/config: SR-IOV capability (0x0010) absent", NULL },
        { "broken-sriov-hidden", "0000:03:00.0", VGPU_CHECK_FAIL, "SR-IOV or ARI is disabled in the firmware",
          "/sys/bus/pci/devices/0000:03:00.0/config: SR-IOV capability (0x0010) present",
          "\"SR-IOV Support\"" },
        { "broken-sriov-hidden", "0000:03:00.0", VGPU_CHECK_FAIL, NULL,
          "/sys/bus/pci/devices/0000:03:00.0/sriov_totalvfs: absent", NULL },
        {},
};

static const struct want bar_above4g[] = {
        { "nvidia-mdev", "0000:3b:00.0", VGPU_CHECK_PASS, "large BARs above 4 GiB",
          "BAR1 0x38b000000000 256 MiB 64-bit prefetchable", NULL },
        { "broken-bar-unassigned", "0000:3b:00.0", VGPU_CHECK_FAIL, "BAR1 (256 MiB) not assigned",
          "BAR1 0x0 256 MiB 64-bit prefetchable", "\"Above 4G Decoding\"" },
        { "broken-bar-below4g", "0000:3b:00.0", VGPU_CHECK_WARN, "below 4 GiB",
          "BAR1 0xd0000000 256 MiB 64-bit prefetchable", "pci=realloc" },
        {},
};

static const struct want pcie_link[] = {
        { "nvidia-mdev", "0000:3b:00.0", VGPU_CHECK_PASS, "x16 at 8 GT/s",
          "/sys/bus/pci/devices/0000:3b:00.0/current_link_width: 16, max_link_width: 16", NULL },
        { "broken-link-degraded", "0000:3b:00.0", VGPU_CHECK_WARN, "x8 of x16, 2.5 of 16 GT/s",
          "current_link_speed: 2.5 GT/s, max_link_speed: 16 GT/s", "lspci -vv -s 0000:3b:00.0" },
        { "intel-gvtg", "0000:00:02.0", VGPU_CHECK_SKIP, "unknown", NULL, NULL },
        /* idle at full width, only slower: what every idle NVIDIA GPU does, no warning */
        { "nvidia-sriov-vfio", "0000:61:00.0", VGPU_CHECK_PASS, "x16 at 2.5 GT/s while idle",
          "/sys/bus/pci/devices/0000:60:01.1/max_link_speed (the port above): 16 GT/s\nnvml: "
          "utilization 0%",
          NULL },
        { "nvidia-sriov-vfio", "0000:61:00.0", VGPU_CHECK_PASS, "while its load is unknown", NULL, NULL,
          .scan = VGPU_SCAN_ALL & ~VGPU_SCAN_NVML },
        /* the same link under load, and a slot slower than the card, idle or not */
        { "broken-link-busy", "0000:3b:00.0", VGPU_CHECK_WARN,
          "slow under load: 2.5 of 8 GT/s at 97% utilization", "nvml: utilization 97%",
          "Set the slot's PCIe speed to Auto" },
        { "broken-slot-gen3", "0000:3b:00.0", VGPU_CHECK_WARN, "PCIe slot slower than the card: 8 of 16 GT/s",
          "0000:3a:00.0/max_link_speed (the port above): 8 GT/s",
          "move the card to a slot of its generation" },
        {},
};

static const struct want secureboot_modules[] = {
        { "nvidia-mdev", NULL, VGPU_CHECK_PASS, "Secure Boot off", "00 (off)", NULL },
        { "intel-gvtg", NULL, VGPU_CHECK_PASS, "Secure Boot on", "/sys/module/i915/taint: (empty)", NULL },
        { "kernel-samples", NULL, VGPU_CHECK_SKIP, "not booted through EFI", "/sys/firmware/efi: absent",
          NULL },
        { "broken-secureboot-unsigned", NULL, VGPU_CHECK_FAIL,
          "module nvidia is unsigned; module nvidia_vgpu_vfio is unsigned",
          "SecureBoot-8be4df61-93ca-11d2-aa0d-00e098032b8c: 06 00 00 00 01 (on)", "mokutil --import" },
        { "broken-secureboot-unsigned", NULL, VGPU_CHECK_FAIL, NULL, "/sys/module/nvidia/taint: POE", NULL },
        { "broken-secureboot-blocked", NULL, VGPU_CHECK_FAIL,
          "0000:3b:00.0 has no driver and nvidia is not loaded", "/sys/module/nvidia: absent",
          "disable Secure Boot" },
        {},
};

static const struct want driver_loaded[] = {
        { "nvidia-mdev", "0000:3b:00.0", VGPU_CHECK_PASS, "bound to nvidia", "10de:1eb8, driver nvidia",
          NULL },
        { "amd-mxgpu", "0000:03:00.0", VGPU_CHECK_PASS, "bound to gim", NULL, NULL },
        { "broken-nouveau", "0000:3b:00.0", VGPU_CHECK_FAIL, "bound to nouveau", "driver nouveau",
          "blacklist nouveau" },
        { "broken-vfio-bound", "0000:3b:00.0", VGPU_CHECK_FAIL, "reserved for passthrough", "driver vfio-pci",
          "echo 0000:3b:00.0 > /sys/bus/pci/drivers/vfio-pci/unbind" },
        { "broken-secureboot-blocked", "0000:3b:00.0", VGPU_CHECK_FAIL, "no driver bound", "driver (none)",
          "vgpu-kvm.run" },
        {},
};

static const struct want mdev_types[] = {
        { "nvidia-mdev", "0000:3b:00.0", VGPU_CHECK_PASS, "17 vGPU types offered",
          "/sys/bus/mdev/devices: 2 vGPUs on this GPU", NULL },
        { "nvidia-sriov-vfio", "0000:41:00.0", VGPU_CHECK_PASS, "on its VFs", "VFs of 0000:41:00.0: 4",
          NULL },
        { "nvidia-sriov-vfio", "0000:61:00.0", VGPU_CHECK_FAIL, "VFs, and they are disabled",
          "sriov_numvfs: 0 of 32", "/usr/lib/nvidia/sriov-manage -e 0000:61:00.0" },
        { "intel-gvtg", "0000:00:02.0", VGPU_CHECK_PASS, "4 vGPU types offered", NULL, NULL },
        { "amd-mxgpu", "0000:03:00.0", VGPU_CHECK_SKIP, "AMD MxGPU", NULL, NULL },
        { "broken-nouveau", "0000:3b:00.0", VGPU_CHECK_SKIP, "no vGPU-capable driver", NULL, NULL },
        { "broken-no-vgpu-manager", "0000:3b:00.0", VGPU_CHECK_FAIL, "not the vGPU manager",
          "/sys/module/nvidia_vgpu_vfio: absent", "lsmod | grep nvidia_vgpu_vfio" },
        { "broken-gvt-off", "0000:00:02.0", VGPU_CHECK_FAIL, "GVT-g is off",
          "/sys/module/i915/parameters/enable_gvt: N",
          "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=on iommu=pt i915.enable_gvt=1\"" },
        { "broken-no-kvmgt", "0000:00:02.0", VGPU_CHECK_FAIL, "kvmgt module is not loaded",
          "/sys/module/kvmgt: absent", "modprobe kvmgt" },
        {},
};

static const struct want gpu_models_mixed[] = {
        { "nvidia-mdev", NULL, VGPU_CHECK_PASS, "one GPU model per vendor",
          "/sys/bus/pci/devices/0000:af:00.0: 10de:1eb8, driver nvidia", NULL },
        { "broken-mixed-models", NULL, VGPU_CHECK_WARN,
          "NVIDIA GPUs of 2 models host vGPUs: 10de:1eb8, 10de:1db6",
          "/sys/bus/pci/devices/0000:5e:00.0: 10de:1db6, driver nvidia", "one board model per host" },
        { "kernel-samples", NULL, VGPU_CHECK_SKIP, "no GPU", NULL, NULL },
        {},
};

static const struct want nvidia_persistence[] = {
        { "nvidia-mdev", "0000:5e:00.0", VGPU_CHECK_PASS, "persistence mode on",
          "nvmlDeviceGetPersistenceMode: 1 (on)", NULL },
        /* without NVML readings */
        { "nvidia-mdev", "0000:5e:00.0", VGPU_CHECK_SKIP, "no NVML readings", "nvml: no readings", NULL,
          .scan = VGPU_SCAN_ALL & ~VGPU_SCAN_NVML },
        { "amd-mxgpu", "0000:03:00.0", VGPU_CHECK_SKIP, "not an NVIDIA GPU", NULL, NULL },
        { "broken-persistence-off", "0000:3b:00.0", VGPU_CHECK_WARN, "persistence mode off",
          "nvmlDeviceGetPersistenceMode: 0 (off)", "nvidia-smi -i 0000:3b:00.0 -pm 1" },
        {},
};

/* ---------------------------------------------------------------- helpers, on a scratch root */

static void test_cmdline_words(void **state) {
        (void) state;
        const char *cl = "BOOT_IMAGE=/boot/vmlinuz ro quiet intel_iommu=off iommu=pt intel_iommu=on,sm_on";
        char v[32];
        assert_true(cmdline_has(cl, "quiet"));
        assert_false(cmdline_has(cl, "quie"));
        assert_false(cmdline_has(cl, "intel_iommu=on"));
        assert_true(cmdline_value(cl, "intel_iommu", v, sizeof(v)));
        assert_string_equal(v, "on,sm_on"); /* the last one wins, as in the kernel */
        assert_true(cmdline_value(cl, "iommu", v, sizeof(v)));
        assert_string_equal(v, "pt");
        assert_false(cmdline_value(cl, "amd_iommu", v, sizeof(v)));
}

static void test_grub_remedy(void **state) {
        (void) state;
        static const char *const words[] = { "intel_iommu=on", "iommu=pt", NULL };
        struct text rem = {}, ev = {};

        /* a conflicting value is replaced, not kept beside the new one */
        scratch_file("etc/default/grub",
                     "GRUB_DEFAULT=0\nGRUB_CMDLINE_LINUX_DEFAULT='quiet intel_iommu=off splash'\n"
                     "GRUB_CMDLINE_LINUX=\"\"\n");
        cmdline_grub_remedy(&rem, &ev, words);
        assert_non_null(text_get(&rem));
        assert_non_null(strstr(rem.s, "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash intel_iommu=on iommu=pt\""));
        assert_non_null(strstr(rem.s, "update-grub && reboot"));
        assert_string_equal(text_get(&ev),
                            "/etc/default/grub: GRUB_CMDLINE_LINUX_DEFAULT=\"quiet intel_iommu=off splash\"");
        text_done(&rem);
        text_done(&ev);

        /* already in the file (here in GRUB_CMDLINE_LINUX), just not booted */
        scratch_file(
                "etc/default/grub",
                "GRUB_CMDLINE_LINUX_DEFAULT=\"quiet\"\nGRUB_CMDLINE_LINUX=\"intel_iommu=on iommu=pt\"\n");
        cmdline_grub_remedy(&rem, NULL, words);
        assert_non_null(strstr(text_get(&rem), "already has it"));
        assert_null(strstr(rem.s, "Set in"));
        text_done(&rem);

        /* no GRUB at all */
        char grub[128];
        snprintf(grub, sizeof(grub), "%s/etc/default/grub", scratch);
        assert_int_equal(unlink(grub), 0);
        cmdline_grub_remedy(&rem, &ev, words);
        assert_non_null(strstr(
                text_get(&rem),
                "Add these words to the kernel command line of your boot loader: intel_iommu=on iommu=pt"));
        assert_string_equal(text_get(&ev), "/etc/default/grub: absent");
        text_done(&rem);
        text_done(&ev);
}

static void test_path_exists(void **state) {
        (void) state;
        char p[256], target[256];
        scratch_file("usr/src/headers/Makefile", "");
        scratch_file("lib/modules/X/.keep", "");
        /* an absolute target is the host's root: it must resolve inside ours */
        snprintf(p, sizeof(p), "%s/lib/modules/X/build", scratch);
        assert_int_equal(symlink("/usr/src/headers", p), 0);
        assert_true(doctor_path_exists("/lib/modules/X/build", target, sizeof(target)));
        assert_string_equal(target, "/usr/src/headers");
        /* the same target dangling inside the root, though it may exist on the real host */
        snprintf(p, sizeof(p), "%s/lib/modules/X/source", scratch);
        assert_int_equal(symlink("/usr/src/other", p), 0);
        assert_false(doctor_path_exists("/lib/modules/X/source", NULL, 0));
        snprintf(p, sizeof(p), "%s/lib/modules/X/rel", scratch);
        assert_int_equal(symlink("../../../usr/src/headers", p), 0);
        assert_true(doctor_path_exists("/lib/modules/X/rel", NULL, 0));
        assert_true(doctor_path_exists("/usr/src/headers/Makefile", target, sizeof(target)));
        assert_string_equal(target, "");
        assert_false(doctor_path_exists("/nonexistent", NULL, 0));
}

static void test_capability_and_boundaries(void **state) {
        (void) state;
        struct run run = {};
        /* not root, but CAP_SYS_ADMIN (bit 21) in the effective set; 5.15 exactly */
        scratch_file("proc/self/status",
                     "Name:\tvgpuctl\nUid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000200000\n");
        scratch_file("proc/sys/kernel/osrelease", "5.15.0-91-generic\n");
        scratch_doctor(&run);
        expect(&run, "privileges", NULL, VGPU_CHECK_PASS, "CAP_SYS_ADMIN", "CapEff: 0000000000200000", NULL);
        expect(&run, "kernel.version", NULL, VGPU_CHECK_PASS, "5.15 >= 5.15", NULL, NULL);
        /* no kernel headers, no tools, no cpuinfo: warnings and a skip, never a crash */
        expect(&run, "kernel.headers", NULL, VGPU_CHECK_WARN, NULL,
               "/lib/modules/5.15.0-91-generic/build: absent", NULL);
        expect(&run, "iommu.cmdline", NULL, VGPU_CHECK_SKIP, "not an Intel or AMD x86 CPU", NULL, NULL);
        run_done(&run);

        /* the effective uid decides, and CAP_SYS_ADMIN only in the permitted set is not enough */
        scratch_file("proc/self/status",
                     "Uid:\t0\t1000\t0\t1000\nCapPrm:\t000001ffffffffff\nCapEff:\t00000000001fffff\n");
        scratch_file("proc/sys/kernel/osrelease", "5.14.21\n");
        scratch_doctor(&run);
        expect(&run, "privileges", NULL, VGPU_CHECK_WARN, "no CAP_SYS_ADMIN", "Uid: 0 1000 0 1000", NULL);
        expect(&run, "kernel.version", NULL, VGPU_CHECK_FAIL, "5.14 is older than 5.15", NULL, NULL);
        run_done(&run);

        /* nothing readable at all */
        char p[128];
        snprintf(p, sizeof(p), "%s/proc", scratch);
        char cmd[160];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", p);
        assert_int_equal(system(cmd), 0);
        scratch_doctor(&run);
        expect(&run, "privileges", NULL, VGPU_CHECK_SKIP, "unreadable", NULL, NULL);
        expect(&run, "kernel.version", NULL, VGPU_CHECK_SKIP, "unknown", NULL, NULL);
        expect(&run, "kernel.headers", NULL, VGPU_CHECK_SKIP, "unknown", NULL, NULL);
        run_done(&run);
}

/* iommu.cmdline goes by the firmware's IOMMU table first: a DMAR table means VT-d, driven by
 * intel_iommu=, whatever /proc/cpuinfo's vendor (Zhaoxin's "CentaurHauls" here, or none at all);
 * IVRS means AMD-Vi. Only with neither table and an unknown vendor is there nothing to check. */
static void test_iommu_cmdline_by_table(void **state) {
        (void) state;
        struct run run = {};
        char p[160];
        scratch_file("proc/cpuinfo", "processor\t: 0\nvendor_id\t: CentaurHauls\n");
        scratch_file("proc/cmdline", "BOOT_IMAGE=/boot/vmlinuz ro quiet intel_iommu=on iommu=pt\n");
        scratch_doctor(&run);
        expect(&run, "iommu.cmdline", NULL, VGPU_CHECK_SKIP,
               "no DMAR/IVRS table and not an Intel or AMD x86 CPU",
               "/sys/firmware/acpi/tables/DMAR, IVRS: absent", NULL);
        run_done(&run);

        scratch_file("sys/firmware/acpi/tables/DMAR", "DMAR");
        scratch_doctor(&run);
        expect(&run, "iommu.cmdline", NULL, VGPU_CHECK_PASS, "intel_iommu=on and iommu=pt set",
               "/sys/firmware/acpi/tables/DMAR: present", NULL);
        expect(&run, "iommu.cmdline", NULL, VGPU_CHECK_PASS, NULL, "/proc/cpuinfo: vendor_id CentaurHauls",
               NULL);
        run_done(&run);

        /* VT-d without intel_iommu=on and no groups: off; no cpuinfo at all changes nothing */
        snprintf(p, sizeof(p), "%s/proc/cpuinfo", scratch);
        assert_int_equal(unlink(p), 0);
        scratch_file("proc/cmdline", "BOOT_IMAGE=/boot/vmlinuz ro quiet iommu=pt\n");
        scratch_doctor(&run);
        expect(&run, "iommu.cmdline", NULL, VGPU_CHECK_FAIL, "intel_iommu=on missing and the IOMMU is off",
               "/proc/cpuinfo: vendor_id (absent)", NULL);
        run_done(&run);

        /* IVRS: AMD-Vi's parameters */
        snprintf(p, sizeof(p), "%s/sys/firmware/acpi/tables/DMAR", scratch);
        assert_int_equal(unlink(p), 0);
        scratch_file("sys/firmware/acpi/tables/IVRS", "IVRS");
        scratch_file("proc/cmdline", "BOOT_IMAGE=/boot/vmlinuz ro quiet amd_iommu=off iommu=pt\n");
        scratch_doctor(&run);
        expect(&run, "iommu.cmdline", NULL, VGPU_CHECK_FAIL, "amd_iommu=off turns the IOMMU off",
               "/sys/firmware/acpi/tables/IVRS: present", NULL);
        run_done(&run);
        scratch_file("proc/cmdline", "BOOT_IMAGE=/boot/vmlinuz ro quiet iommu=pt\n");
        scratch_doctor(&run);
        expect(&run, "iommu.cmdline", NULL, VGPU_CHECK_PASS, "the AMD IOMMU is on by default", NULL, NULL);
        run_done(&run);
}

static void test_text(void **state) {
        (void) state;
        _cleanup_text_ struct text t = {};
        assert_string_equal(text_get(&t), "");
        text_line(&t, "a %d", 1);
        text_line(&t, "b");
        text_append(&t, "%s", "c");
        assert_string_equal(text_get(&t), "a 1\nbc");
        for (int i = 0; i < 1000; i++)
                text_append(&t, "0123456789");
        assert_int_equal(strlen(text_get(&t)), 6 + 10000);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ids),
                cmocka_unit_test(test_healthy_vectors),
                cmocka_unit_test(test_empty_host),
                cmocka_unit_test(test_broken_isolation),
                want_test(privileges, "privileges"),
                want_test(kernel_version, "kernel.version"),
                want_test(kernel_headers, "kernel.headers"),
                want_test(tools_present, "tools.present"),
                want_test(iommu_enabled, "iommu.enabled"),
                want_test(iommu_cmdline, "iommu.cmdline"),
                want_test(iommu_group_viable, "iommu.group_viable"),
                want_test(sriov_capable, "sriov.capable"),
                want_test(bar_above4g, "bar.above4g"),
                want_test(pcie_link, "pcie.link"),
                want_test(secureboot_modules, "secureboot.modules"),
                want_test(driver_loaded, "driver.loaded"),
                want_test(mdev_types, "mdev.types"),
                want_test(gpu_models_mixed, "gpu.models_mixed"),
                want_test(nvidia_persistence, "nvidia.persistence"),
                cmocka_unit_test(test_text),
                cmocka_unit_test(test_cmdline_words),
                cmocka_unit_test_setup_teardown(test_grub_remedy, scratch_setup, scratch_teardown),
                cmocka_unit_test_setup_teardown(test_path_exists, scratch_setup, scratch_teardown),
                cmocka_unit_test_setup_teardown(test_capability_and_boundaries, scratch_setup,
                                                scratch_teardown),
                cmocka_unit_test_setup_teardown(test_iommu_cmdline_by_table, scratch_setup, scratch_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
