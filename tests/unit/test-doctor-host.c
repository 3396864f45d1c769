/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-doctor-host.c — lib/doctor's checks of issue 13, beside test-doctor.c: KVM itself
 * (kvm.available), NVIDIA's vGPU manager service (nvidia.vgpu_mgr), AMD's GIM (amd.gim), the
 * vendor modules against the running kernel (driver.kernel_match), the slot's power
 * (pcie.slot_power) and the thermal margin by vgpud's thresholds (thermal.margin); on fixture
 * hosts and on scratch roots holding a real journal written by systemd-journal-remote, an
 * rsyslog kern.log or syslog, or .ko files made by as + objcopy. Runs with LD_LIBRARY_PATH at
 * the NVML double (tests/nvml-double), like test-doctor.
 */
#include <sys/stat.h>
#include <unistd.h>

#include "test-doctor-util.h"

#include "doctor/doctor-dl.h"

#define JOURNAL_REMOTE "/usr/lib/systemd/systemd-journal-remote"
#define MACHINE_ID     "5a1d0c8e4b7f4c2a9e3d6b1f0a2c4e6d"
#define BOOT_ID        "3f0e2a71-9c4b-4d8e-a6f5-0b1c2d3e4f50"
#define BOOT_ID_HEX    "3f0e2a719c4b4d8ea6f50b1c2d3e4f50"
#define OLD_BOOT_HEX   "00112233445566778899aabbccddeeff"

/*
 * Write the journal file `name` under the scratch root's /var/log/journal/MACHINE_ID with
 * systemd's own writer: systemd-journal-remote turns journal export format (one entry per
 * paragraph of FIELD=value lines) into a .journal file, as it does for entries it receives.
 */
static void scratch_journal(const char *name, const char *export) {
        char dir[256], in[256], cmd[1024];
        if (access(JOURNAL_REMOTE, X_OK) < 0)
                fail_msg("%s missing: scripts/install-deps.sh --test installs systemd-journal-remote",
                         JOURNAL_REMOTE);
        snprintf(dir, sizeof(dir), "%s/var/log/journal/" MACHINE_ID, scratch);
        snprintf(in, sizeof(in), "%s/export.tmp", scratch);
        FILE *f = fopen(in, "w");
        assert_non_null(f);
        fputs(export, f);
        fclose(f);
        snprintf(cmd, sizeof(cmd),
                 "mkdir -p '%s' && " JOURNAL_REMOTE " -o '%s/%s' - <'%s' 2>/dev/null && rm '%s'", dir, dir,
                 name, in, in);
        assert_int_equal(system(cmd), 0);
}

/* ---------------------------------------------------------------- kvm.available */

static void test_kvm_fixtures(void **state) {
        (void) state;
        struct run run = {};
        run_doctor(&run, "nvidia-mdev");
        expect(&run, "kvm.available", NULL, VGPU_CHECK_PASS, "KVM available (kvm_intel loaded, /dev/kvm)",
               "/proc/cpuinfo: vendor_id GenuineIntel, flag vmx present\n/sys/module/kvm_intel: "
               "loaded\n/dev/kvm: present",
               NULL);
        run_done(&run);
        run_doctor(&run, "amd-mxgpu");
        expect(&run, "kvm.available", NULL, VGPU_CHECK_PASS, "kvm_amd loaded", "flag svm present", NULL);
        run_done(&run);

        /* VT-x off in the firmware: the kernel's own words in kern.log, and the BIOS remedy */
        run_doctor(&run, "broken-kvm-bios");
        expect(&run, "kvm.available", NULL, VGPU_CHECK_FAIL, "the kernel says Intel VT-x",
               "flag vmx absent\n/sys/module/kvm_intel: absent\n/dev/kvm: absent\n"
               "/var/log/kern.log (since the last boot): Dec  1 08:14:00 gpu-host kernel: [    0.000000] "
               "x86/cpu: VMX (outside TXT) disabled by BIOS",
               "Enable Intel VT-x (\"Intel Virtualization Technology\") in the firmware setup");
        expect(&run, "kvm.available", NULL, VGPU_CHECK_FAIL, NULL, NULL,
               "grep -cw vmx /proc/cpuinfo; ls -l /dev/kvm");
        run_done(&run);

        /* the VM's vCPU has vmx, the module is just not loaded: no BIOS talk */
        run_doctor(&run, "kernel-samples");
        expect(&run, "kvm.available", NULL, VGPU_CHECK_FAIL, "the CPU has vmx but kvm_intel is not loaded",
               "kernel log: no journal, no /var/log/kern.log",
               "modprobe kvm_intel && echo kvm_intel > /etc/modules-load.d/kvm.conf");
        const struct vgpu_check_result *r = find(&run, "kvm.available", NULL);
        assert_null(strstr(r->remedy, "firmware"));
        run_done(&run);
}

static const char amd_cpuinfo[] = "processor\t: 0\nvendor_id\t: AuthenticAMD\n"
                                  "flags\t\t: fpu vme de pse tsc msr pae mce cx8 apic sep svm extapic\n";

/* The journal: only kernel messages of this boot count, whatever else the journal holds. */
static void test_kvm_journal(void **state) {
        (void) state;
        struct run run = {};
        scratch_file("proc/cpuinfo", amd_cpuinfo);
        scratch_file("proc/sys/kernel/random/boot_id", BOOT_ID "\n");
        /* the same words from an earlier boot, and from a program (not the kernel) in this one */
        scratch_journal("system.journal",
                        "__REALTIME_TIMESTAMP=1700000000000000\n__MONOTONIC_TIMESTAMP=5000000\n"
                        "_BOOT_ID=" OLD_BOOT_HEX "\n_TRANSPORT=kernel\nPRIORITY=3\nSYSLOG_IDENTIFIER=kernel\n"
                        "MESSAGE=kvm: support for 'kvm_amd' disabled by bios\n\n"
                        "__REALTIME_TIMESTAMP=1700100000000000\n__MONOTONIC_TIMESTAMP=9000000\n"
                        "_BOOT_ID=" BOOT_ID_HEX "\n_TRANSPORT=stdout\nPRIORITY=6\nSYSLOG_IDENTIFIER=echo\n"
                        "MESSAGE=grep says: disabled by bios\n\n");
        scratch_doctor(&run);
        expect(&run, "kvm.available", NULL, VGPU_CHECK_FAIL, "the CPU has svm but kvm_amd is not loaded",
               "kernel log: no \"disabled by bios\" message this boot", "modprobe kvm_amd");
        run_done(&run);

        /* this boot's kernel said it (Linux 6.4+ wording) */
        scratch_journal("system@0001.journal",
                        "__REALTIME_TIMESTAMP=1700100000000000\n__MONOTONIC_TIMESTAMP=4000000\n"
                        "_BOOT_ID=" BOOT_ID_HEX "\n_TRANSPORT=kernel\nPRIORITY=3\nSYSLOG_IDENTIFIER=kernel\n"
                        "MESSAGE=kvm_amd: SVM disabled (by BIOS) in MSR_VM_CR on CPU 0\n\n");
        scratch_doctor(&run);
        expect(&run, "kvm.available", NULL, VGPU_CHECK_FAIL,
               "the kernel says AMD-V (\"SVM Mode\") is disabled by the BIOS",
               "journal (kernel messages of this boot): kvm_amd: SVM disabled (by BIOS) in MSR_VM_CR on CPU "
               "0",
               "Enable AMD-V (\"SVM Mode\")");
        run_done(&run);

        /* /dev/kvm decides: with it, old messages are history */
        scratch_file("dev/kvm", "");
        scratch_file("sys/module/kvm_amd/initstate", "live\n");
        scratch_doctor(&run);
        expect(&run, "kvm.available", NULL, VGPU_CHECK_PASS, "KVM available (kvm_amd loaded, /dev/kvm)", NULL,
               NULL);
        run_done(&run);
}

/* rsyslog's kern.log holds many boots: only lines after the last "Linux version" banner count. */
static void test_kvm_kern_log(void **state) {
        (void) state;
        struct run run = {};
        scratch_file("proc/cpuinfo", amd_cpuinfo);
        scratch_file(
                "var/log/kern.log",
                "Nov 30 10:00:00 h kernel: [    0.000000] Linux version 6.1.0-27-amd64\n"
                "Nov 30 10:00:05 h kernel: [    5.100000] kvm: support for 'kvm_amd' disabled by bios\n"
                "Dec  1 08:00:00 h kernel: [    0.000000] Linux version 6.1.0-28-amd64\n"
                "Dec  1 08:00:05 h kernel: [    5.200000] nvme nvme0: 32/0/0 default/read/poll queues\n");
        scratch_doctor(&run);
        expect(&run, "kvm.available", NULL, VGPU_CHECK_FAIL, "kvm_amd is not loaded",
               "kernel log: no \"disabled by bios\" message this boot", "modprobe kvm_amd");
        run_done(&run);

        scratch_file(
                "var/log/kern.log",
                "Dec  1 08:00:00 h kernel: [    0.000000] Linux version 6.1.0-28-amd64\n"
                "Dec  1 08:00:05 h kernel: [    5.200000] kvm: support for 'kvm_amd' disabled by bios\n");
        scratch_doctor(&run);
        expect(&run, "kvm.available", NULL, VGPU_CHECK_FAIL, "disabled by the BIOS",
               "/var/log/kern.log (since the last boot): Dec  1 08:00:05 h kernel: [    5.200000] kvm: "
               "support for 'kvm_amd' "
               "disabled by bios",
               "SVM Mode");
        run_done(&run);

        /* no cpuinfo at all (not x86, or unreadable): nothing to judge without /dev/kvm */
        scratch_rm("proc/cpuinfo");
        scratch_doctor(&run);
        expect(&run, "kvm.available", NULL, VGPU_CHECK_SKIP, "no /dev/kvm and /proc/cpuinfo unreadable", NULL,
               NULL);
        run_done(&run);
}

/* ---------------------------------------------------------------- nvidia.vgpu_mgr */

static void test_vgpu_mgr_fixtures(void **state) {
        (void) state;
        struct run run = {};
        run_doctor(&run, "nvidia-mdev");
        expect(&run, "nvidia.vgpu_mgr", NULL, VGPU_CHECK_PASS, "vGPU manager service active",
               "nvidia-vgpu-mgr.service: LoadState=loaded ActiveState=active SubState=running Result=success "
               "ExecMainStatus=0 [/run/vgpuctl/systemctl-show/nvidia-vgpu-mgr.service, captured systemctl "
               "show]",
               NULL);
        run_done(&run);
        run_doctor(&run, "amd-mxgpu");
        expect(&run, "nvidia.vgpu_mgr", NULL, VGPU_CHECK_SKIP, "no NVIDIA vGPU host driver",
               "/sys/module/nvidia_vgpu_vfio: absent", NULL);
        run_done(&run);

        /* failed at start: the state, rsyslog's lines of it (not the cron line between), the remedy */
        run_doctor(&run, "broken-vgpu-mgr-failed");
        expect(&run, "nvidia.vgpu_mgr", NULL, VGPU_CHECK_FAIL,
               "nvidia-vgpu-mgr.service failed (exit-code): the hypervisor cannot create vGPUs",
               "ActiveState=failed SubState=failed Result=exit-code ExecMainStatus=1",
               "journalctl -b -u nvidia-vgpu-mgr.service");
        expect(&run, "nvidia.vgpu_mgr", NULL, VGPU_CHECK_FAIL, NULL,
               "/var/log/syslog, lines of nvidia-vgpu-mgr.service:\n"
               "  Dec  1 08:14:07 gpu-host nvidia-vgpu-mgr[1402]: notice: vmiop_env_log: nvidia-vgpu-mgr "
               "daemon started\n"
               "  Dec  1 08:14:08 gpu-host nvidia-vgpu-mgr[1402]: error: vmiop_env_log: NVIDIA driver "
               "version mismatch",
               "systemctl restart nvidia-vgpu-mgr.service");
        const struct vgpu_check_result *r = find(&run, "nvidia.vgpu_mgr", NULL);
        assert_null(strstr(r->evidence, "cron"));
        assert_null(strstr(r->evidence, "ssh.service"));
        run_done(&run);
}

static const char show_failed[] =
        "Type=forking\nResult=exit-code\nExecMainStatus=1\nId=nvidia-vgpu-mgr.service\n"
        "LoadState=loaded\nActiveState=failed\nSubState=failed\n";

/* One journal entry of this boot (or another) for export format. */
#define ENTRY(usec, boot, fields)                                                                          \
        "__REALTIME_TIMESTAMP=17001" #usec "000000\n__MONOTONIC_TIMESTAMP=" #usec "000000\n_BOOT_ID=" boot \
        "\n" fields "\n"

/* The journal: the last lines of this boot of the unit and of systemd about it, oldest first. */
static void test_vgpu_mgr_journal(void **state) {
        (void) state;
        struct run run = {};
        scratch_file("proc/sys/kernel/random/boot_id", BOOT_ID "\n");
        scratch_file("sys/module/nvidia_vgpu_vfio/initstate", "live\n");
        scratch_file("run/vgpuctl/systemctl-show/nvidia-vgpu-mgr.service", show_failed);
#define MGR "_TRANSPORT=stdout\n_SYSTEMD_UNIT=nvidia-vgpu-mgr.service\nSYSLOG_IDENTIFIER=nvidia-vgpu-mgr\n"
#define PID1                                                                                             \
        "_TRANSPORT=journal\n_SYSTEMD_UNIT=init.scope\nUNIT=nvidia-vgpu-mgr.service\nSYSLOG_IDENTIFIER=" \
        "systemd\n"
        scratch_journal(
                "system.journal",
                ENTRY(11, BOOT_ID_HEX, MGR "MESSAGE=line 1\n") ENTRY(12, BOOT_ID_HEX, MGR "MESSAGE=line 2\n")
                        ENTRY(13, BOOT_ID_HEX,
                              "_TRANSPORT=syslog\nSYSLOG_IDENTIFIER=cron\nMESSAGE=not ours\n")
                                ENTRY(14, BOOT_ID_HEX, MGR "MESSAGE=line 3\n") ENTRY(
                                        15, BOOT_ID_HEX,
                                        MGR
                                        "MESSAGE=error: vmiop_env_log: failed to open /dev/nvidia-vgpuctl\n")
                                        ENTRY(16, BOOT_ID_HEX,
                                              PID1 "MESSAGE=nvidia-vgpu-mgr.service: Control process exited, "
                                                   "code=exited, status=1/FAILURE\n")
                                                ENTRY(17, BOOT_ID_HEX,
                                                      PID1 "MESSAGE=nvidia-vgpu-mgr.service: Failed with "
                                                           "result 'exit-code'.\n")
                /* the newest entry, but of another boot (a journal from a rescue system's
                         * view, or a clock set back): not this boot's story */
                ENTRY(18, OLD_BOOT_HEX, MGR "MESSAGE=error: another boot's failure\n"));
        scratch_doctor(&run);
        expect(&run, "nvidia.vgpu_mgr", NULL, VGPU_CHECK_FAIL, "nvidia-vgpu-mgr.service failed (exit-code)",
               "journal, this boot, -u nvidia-vgpu-mgr.service:\n"
               "  nvidia-vgpu-mgr: line 2\n"
               "  nvidia-vgpu-mgr: line 3\n"
               "  nvidia-vgpu-mgr: error: vmiop_env_log: failed to open /dev/nvidia-vgpuctl\n"
               "  systemd: nvidia-vgpu-mgr.service: Control process exited, code=exited, status=1/FAILURE\n"
               "  systemd: nvidia-vgpu-mgr.service: Failed with result 'exit-code'.",
               "systemctl restart nvidia-vgpu-mgr.service");
        const struct vgpu_check_result *r = find(&run, "nvidia.vgpu_mgr", NULL);
        assert_null(strstr(r->evidence, "line 1"));
        assert_null(strstr(r->evidence, "another boot"));
        run_done(&run);

        /* the older branches' nvidia-vgpud.service, installed and stopped, beside an active manager */
        scratch_file(
                "run/vgpuctl/systemctl-show/nvidia-vgpu-mgr.service",
                "LoadState=loaded\nActiveState=active\nSubState=running\nResult=success\nExecMainStatus=0\n");
        scratch_file("usr/lib/systemd/system/nvidia-vgpud.service",
                     "[Service]\nExecStart=/usr/bin/nvidia-vgpud\n");
        scratch_file(
                "run/vgpuctl/systemctl-show/nvidia-vgpud.service",
                "LoadState=loaded\nActiveState=inactive\nSubState=dead\nResult=success\nExecMainStatus=0\n");
        scratch_doctor(&run);
        expect(&run, "nvidia.vgpu_mgr", NULL, VGPU_CHECK_FAIL, "nvidia-vgpud.service is not running",
               "nvidia-vgpud.service: LoadState=loaded ActiveState=inactive",
               "systemctl enable --now nvidia-vgpud.service");
        r = find(&run, "nvidia.vgpu_mgr", NULL);
        assert_null(strstr(r->remedy, "nvidia-vgpu-mgr.service"));
        run_done(&run);

        /* a tree without a capture: nothing to judge, and it says so */
        scratch_rm("run/vgpuctl");
        scratch_doctor(&run);
        expect(&run, "nvidia.vgpu_mgr", NULL, VGPU_CHECK_SKIP, "vGPU manager service state unknown",
               "/run/vgpuctl/systemctl-show/nvidia-vgpu-mgr.service: absent (VGPU_ROOT=", NULL);
        run_done(&run);
}

/* ---------------------------------------------------------------- amd.gim */

static void test_gim(void **state) {
        (void) state;
        struct run run = {};
        run_doctor(&run, "amd-mxgpu");
        expect(&run, "amd.gim", NULL, VGPU_CHECK_PASS, "GIM 8.1.0.K drives 0000:03:00.0",
               "/sys/module/gim: loaded, version 8.1.0.K\nAMD GPUs bound to gim: 0000:03:00.0", NULL);
        run_done(&run);
        run_doctor(&run, "nvidia-mdev");
        expect(&run, "amd.gim", NULL, VGPU_CHECK_SKIP, "not in use", "/sys/module/gim: absent", NULL);
        run_done(&run);

        /* this boot's errors counted, the last five GIM lines shown */
        run_doctor(&run, "broken-gim-errors");
        expect(&run, "amd.gim", NULL, VGPU_CHECK_WARN, "GIM logged 2 errors this boot",
               "/var/log/kern.log (since the last boot): 7 matching lines, the last ones:\n"
               "  Dec  1 08:00:06 gpu-host kernel: [    6.318802] gim info:(gim_probe:121) GIM probe - "
               "0000:03:00.0\n",
               "modprobe -r gim && modprobe gim");
        expect(&run, "amd.gim", NULL, VGPU_CHECK_WARN, NULL,
               "gim error:(amdgv_reset_gpu:402) whole GPU reset, 4 VFs lost their state\n"
               "  Dec  1 09:00:13 gpu-host kernel: [ 3613.550931] gim info:(amdgv_reset_gpu:455) GPU reset "
               "done",
               NULL);
        const struct vgpu_check_result *r = find(&run, "amd.gim", NULL);
        assert_null(strstr(r->evidence, "Start AMD open source GIM")); /* the 6th line from the end */
        run_done(&run);
}

/* gim loaded, the card not taken (amdgpu holds it), GIM's complaint in the journal */
static void test_gim_unbound(void **state) {
        (void) state;
        struct run run = {};
        scratch_file("proc/sys/kernel/random/boot_id", BOOT_ID "\n");
        scratch_file("sys/module/gim/version", "8.1.0.K\n");
        scratch_journal("system.journal",
                        ENTRY(11, BOOT_ID_HEX,
                              "_TRANSPORT=kernel\nSYSLOG_IDENTIFIER=kernel\n"
                              "MESSAGE=gim info:(gim_probe:121) GIM probe - 0000:03:00.0\n"));
        scratch_doctor(&run);
        expect(&run, "amd.gim", NULL, VGPU_CHECK_WARN, "gim is loaded but no AMD GPU is bound to it",
               "AMD GPUs bound to gim: none\njournal (kernel messages of this boot): 1 matching lines:\n"
               "  gim info:(gim_probe:121) GIM probe - 0000:03:00.0",
               "lspci -k -d 1002:");
        run_done(&run);
}

/* ---------------------------------------------------------------- driver.kernel_match */

static void test_kernel_match_fixtures(void **state) {
        (void) state;
        struct run run = {};
        /* vermagic read by libkmod from the fixture's .ko (an ELF with a .modinfo section) */
        run_doctor(&run, "nvidia-mdev");
        expect(&run, "driver.kernel_match", NULL, VGPU_CHECK_PASS,
               "vendor modules built for the running kernel 6.1.0-28-amd64",
               "/lib/modules/6.1.0-28-amd64/updates/dkms/nvidia.ko: version 550.127.06, vermagic "
               "6.1.0-28-amd64\n"
               "/var/lib/dkms/nvidia: version 550.127.06, built for 6.1.0-28-amd64: yes, installed for "
               "6.1.0-28-amd64: yes",
               NULL);
        run_done(&run);
        run_doctor(&run, "intel-gvtg");
        expect(&run, "driver.kernel_match", NULL, VGPU_CHECK_SKIP,
               "no out-of-tree vGPU host module installed", NULL, NULL);
        run_done(&run);

        /* rebooted into a new kernel without a DKMS rebuild: named as such, here and in driver.loaded */
        run_doctor(&run, "broken-kernel-upgraded");
        expect(&run, "driver.kernel_match", NULL, VGPU_CHECK_FAIL,
               "kernel upgraded, module not rebuilt: nvidia 550.127.06 is built for 6.1.0-28-amd64, not for "
               "the running "
               "6.1.0-31-amd64",
               "/lib/modules/6.1.0-31-amd64: no nvidia.ko; another kernel's: "
               "/lib/modules/6.1.0-28-amd64/updates/dkms/nvidia.ko (version 550.127.06, vermagic "
               "6.1.0-28-amd64)",
               "apt-get install linux-headers-6.1.0-31-amd64 && dkms autoinstall -k 6.1.0-31-amd64 && "
               "modprobe nvidia");
        const struct vgpu_check_result *r = find(&run, "driver.kernel_match", NULL);
        assert_null(strstr(r->summary, "nvidia-vgpu-vfio")); /* one package, one summary */
        expect(&run, "driver.loaded", "0000:3b:00.0", VGPU_CHECK_FAIL,
               "no driver bound: kernel upgraded, module not rebuilt", NULL,
               "dkms autoinstall -k 6.1.0-31-amd64");
        r = find(&run, "driver.loaded", "0000:3b:00.0");
        assert_null(strstr(r->remedy, "Licensing Portal"));
        /* the manager service fails for the same reason: its remedy starts there */
        expect(&run, "nvidia.vgpu_mgr", NULL, VGPU_CHECK_FAIL,
               "nvidia-vgpu-mgr.service failed (exit-code): the hypervisor cannot create vGPUs (kernel "
               "upgraded, module not rebuilt",
               NULL, "First the driver (see driver.kernel_match): Build it for the running kernel with DKMS");
        run_done(&run);
}

/* A .ko made the way the fixtures' are: as + objcopy --add-section .modinfo; with xz, left
 * compressed as REL.xz. */
static void scratch_ko(const char *rel, const char *version, const char *vermagic, bool xz) {
        char dir[256], cmd[2048];
        snprintf(dir, sizeof(dir), "%s/%s", scratch, rel);
        *strrchr(dir, '/') = '\0';
        int n = snprintf(
                cmd, sizeof(cmd),
                "set -e; mkdir -p '%s'; t=$(mktemp -d); printf 'version=%s\\0name=nvidia\\0vermagic=%s SMP "
                "preempt mod_unload modversions \\0' >$t/info; as /dev/null -o $t/e.o; objcopy --add-section "
                ".modinfo=$t/info --set-section-flags .modinfo=alloc,readonly $t/e.o '%s/%s'; rm -r $t",
                dir, version, vermagic, scratch, rel);
        if (xz)
                snprintf(cmd + n, sizeof(cmd) - n, "; xz '%s/%s'", scratch, rel);
        assert_int_equal(system(cmd), 0);
}

static void test_kernel_match_scratch(void **state) {
        (void) state;
        struct run run = {};
        scratch_file("proc/sys/kernel/osrelease", "6.12.9-amd64\n");
        /* the .run installer without DKMS put a module built for the old kernel into the new
         * kernel's tree (xz-compressed, as Debian's kernels ship theirs) */
        scratch_ko("lib/modules/6.12.9-amd64/kernel/drivers/video/nvidia.ko", "550.90.05", "6.1.0-28-amd64",
                   true);
        scratch_doctor(&run);
        expect(&run, "driver.kernel_match", NULL, VGPU_CHECK_FAIL,
               "nvidia is built for kernel 6.1.0-28-amd64, the running kernel is 6.12.9-amd64",
               "/lib/modules/6.12.9-amd64/kernel/drivers/video/nvidia.ko.xz: version 550.90.05, vermagic "
               "6.1.0-28-amd64",
               "Reinstall the vendor driver for the running kernel");
        run_done(&run);

        /* built for it, and found before the stale copy: updates/ ranks first, as depmod has it */
        scratch_ko("lib/modules/6.12.9-amd64/updates/dkms/nvidia.ko", "550.127.06", "6.12.9-amd64", false);
        scratch_doctor(&run);
        expect(&run, "driver.kernel_match", NULL, VGPU_CHECK_PASS, NULL,
               "/lib/modules/6.12.9-amd64/updates/dkms/nvidia.ko: version 550.127.06, vermagic 6.12.9-amd64",
               NULL);
        run_done(&run);

        /* DKMS built it for this kernel but never installed it */
        scratch_rm("lib/modules/6.12.9-amd64");
        scratch_ko("var/lib/dkms/nvidia/550.127.06/6.12.9-amd64/x86_64/module/nvidia.ko", "550.127.06",
                   "6.12.9-amd64", false);
        scratch_doctor(&run);
        expect(&run, "driver.kernel_match", NULL, VGPU_CHECK_FAIL,
               "nvidia 550.127.06 is built by DKMS for 6.12.9-amd64 but not installed",
               "/var/lib/dkms/nvidia: version 550.127.06, built for 6.12.9-amd64: yes, installed for "
               "6.12.9-amd64: no record",
               "dkms install nvidia/550.127.06 -k 6.12.9-amd64 && modprobe nvidia");
        run_done(&run);
}

/* ---------------------------------------------------------------- pcie.slot_power, thermal.margin */

static void test_pcie_slot_power(void **state) {
        (void) state;
        struct run run = {};
        /* the port's Slot Capabilities, nothing captured: the card may take the 75 W it needs */
        run_doctor(&run, "nvidia-mdev");
        expect(&run, "pcie.slot_power", "0000:3b:00.0", VGPU_CHECK_PASS,
               "slot power limit 75.0 W, the card needs 70.0 W",
               "Device Capabilities, captured slot power limit 0.0 W\n"
               "/sys/bus/pci/devices/0000:3a:00.0/config: Slot Capabilities, slot power limit 75.0 W\nnvml: "
               "power limit 70.0 W",
               NULL);
        run_done(&run);
        /* behind a switch port without a slot: nothing reported */
        run_doctor(&run, "amd-mxgpu");
        expect(&run, "pcie.slot_power", "0000:03:00.0", VGPU_CHECK_SKIP, "not reported",
               "0000:02:00.0/config: Slot Capabilities, slot power limit none", NULL);
        run_done(&run);
        run_doctor(&run, "broken-slot-power");
        expect(&run, "pcie.slot_power", "0000:3b:00.0", VGPU_CHECK_WARN,
               "slot power limit 25.0 W, below the 70.0 W the card draws from the slot",
               "captured slot power limit 25.0 W", "\"Slot Power Limit\"");
        expect(&run, "pcie.slot_power", "0000:3b:00.0", VGPU_CHECK_WARN, NULL, NULL,
               "the slot at 0000:3a:00.0");
        run_done(&run);
}

static void test_thermal_margin(void **state) {
        (void) state;
        struct run run = {};
        run_doctor(&run, "nvidia-mdev");
        expect(&run, "thermal.margin", "0000:3b:00.0", VGPU_CHECK_PASS,
               "41 C, 52 C below its slowdown temperature of 93 C",
               "nvml: temperature 41 C, slowdown threshold 93 C, shutdown threshold 96 C", NULL);
        run_done(&run);
        run_doctor(&run, "amd-mxgpu");
        expect(&run, "thermal.margin", "0000:03:00.0", VGPU_CHECK_PASS,
               "38 C, 62 C below its critical temperature of 100 C", "temp1_input: 38000", NULL);
        run_done(&run);
        run_flags(&run, "nvidia-mdev", VGPU_SCAN_ALL & ~VGPU_SCAN_NVML);
        expect(&run, "thermal.margin", "0000:3b:00.0", VGPU_CHECK_SKIP, "no temperature reading",
               "no NVML readings", NULL);
        run_done(&run);
        run_doctor(&run, "broken-hot");
        expect(&run, "thermal.margin", "0000:3b:00.0", VGPU_CHECK_FAIL,
               "95 C: at or above its slowdown temperature of 93 C",
               "nvml: temperature 95 C, slowdown threshold 93 C", "airflow");
        run_done(&run);
        /* vgpud's thresholds rule first: 92 C is critical there, whatever the card's 100 C */
        run_doctor(&run, "broken-hot-hwmon");
        expect(&run, "thermal.margin", "0000:03:00.0", VGPU_CHECK_FAIL,
               "92 C: at or above the critical 85 C (its critical temperature is 100 C)",
               "temp1_crit (or temp1_max): 100000", "slows itself down at 100 C");
        run_done(&run);
        /* 80 C is 13 C from the T4's slowdown, yet vgpud warns at 75 C: so does the doctor */
        run_doctor(&run, "broken-warm");
        expect(&run, "thermal.margin", "0000:3b:00.0", VGPU_CHECK_WARN,
               "80 C: at or above the warning 75 C (its slowdown temperature is 93 C)",
               "thermal policy (vgpud's defaults): warn 75 C, critical 85 C", "airflow");
        run_done(&run);
}

/* nvidia.guest_driver judges what the scan put in each running vGPU: vGPUs set in the snapshot
 * (the NVML double's side is covered by tests/cli/doctor.sh). */
static void test_guest_driver(void **state) {
        (void) state;
        struct run run = {};
        run_doctor(&run, "nvidia-mdev");
        expect(&run, "nvidia.guest_driver", NULL, VGPU_CHECK_SKIP, "no running NVIDIA vGPU",
               "nvmlDeviceGetActiveVgpus", NULL);
        vgpu_doctor_report_free(run.report);
        run.report = NULL;

        const struct vgpu_gpu *g = vgpu_host_find_gpu(run.host, "0000:3b:00.0");
        assert_non_null(g);
        struct vgpu_nvml_gpu *n = g->nvml;
        assert_non_null(n);
        static const struct vgpu_nvml_vgpu set[] = {
                { .instance = 1000,
                  .mdev_uuid = "00000000-0000-4000-8000-000000000001",
                  .guest_driver_version = "550.127.05",
                  .guest_compat = VGPU_NVML_COMPAT_COMPATIBLE },
                { .instance = 1001,
                  .mdev_uuid = "00000000-0000-4000-8000-000000000002",
                  .guest_driver_version = "470.256.02",
                  .guest_compat = VGPU_NVML_COMPAT_INCOMPATIBLE,
                  .guest_compat_limits =
                          VGPU_NVML_COMPAT_LIMIT_HOST_DRIVER | VGPU_NVML_COMPAT_LIMIT_GUEST_DRIVER },
                { .instance = 1002, .mdev_uuid = "00000000-0000-4000-8000-000000000003" },
                { .instance = 1003,
                  .mdev_uuid = "00000000-0000-4000-8000-000000000004",
                  .guest_driver_version = "535.1",
                  .guest_compat = VGPU_NVML_COMPAT_UNKNOWN },
        };
        assert_null(n->vgpus);
        assert_non_null(n->vgpus = calloc(ELEMENTSOF(set), sizeof(set[0])));
        memcpy(n->vgpus, set, sizeof(set));
        n->n_vgpus = ELEMENTSOF(set);
        struct vgpu_error err = {};
        assert_int_equal(vgpu_doctor_run(run.host, &run.report, &err), 0);
        expect(&run, "nvidia.guest_driver", "00000000-0000-4000-8000-000000000001", VGPU_CHECK_PASS,
               "guest driver 550.127.05 runs with host driver 550.127.06",
               "vGPU instance 1000 on 0000:3b:00.0", NULL);
        expect(&run, "nvidia.guest_driver", "00000000-0000-4000-8000-000000000002", VGPU_CHECK_FAIL,
               "guest driver 470.256.02 does not run with host driver 550.127.06 (limited by: host_driver, "
               "guest_driver)",
               "nvmlGetVgpuCompatibility: incompatible", "upgrade the host's vGPU manager");
        expect(&run, "nvidia.guest_driver", "00000000-0000-4000-8000-000000000003", VGPU_CHECK_SKIP,
               "no guest driver loaded", "guest info uninitialized", NULL);
        expect(&run, "nvidia.guest_driver", "00000000-0000-4000-8000-000000000004", VGPU_CHECK_SKIP,
               "NVML gave no verdict on guest driver 535.1", NULL, NULL);
        size_t count = 0;
        for (size_t i = 0; i < run.report->n_results; i++)
                count += strcmp(run.report->results[i].id, "nvidia.guest_driver") == 0;
        assert_int_equal(count, ELEMENTSOF(set)); /* one per vGPU, no host-wide skip besides */
        run_done(&run);
}

/* ---------------------------------------------------------------- optional libraries */

/* Without libsystemd or libkmod (dlopen'ed, doctor/doctor-dl.h) the checks that need them say
 * which library is missing and fall back or report unknown; nothing fails for it. */
static void test_libraries_missing(void **state) {
        (void) state;
        struct run run = {};
        scratch_file("proc/cpuinfo", amd_cpuinfo);
        scratch_file("proc/sys/kernel/random/boot_id", BOOT_ID "\n");
        scratch_file("proc/sys/kernel/osrelease", "6.12.9-amd64\n");
        scratch_file("sys/module/nvidia_vgpu_vfio/initstate", "live\n");
        scratch_file("run/vgpuctl/systemctl-show/nvidia-vgpu-mgr.service", show_failed);
        scratch_journal("system.journal",
                        ENTRY(11, BOOT_ID_HEX,
                              "_TRANSPORT=kernel\nSYSLOG_IDENTIFIER=kernel\n"
                              "MESSAGE=kvm_amd: SVM disabled (by BIOS) in MSR_VM_CR on CPU 0\n"));
        /* another kernel's build in the running kernel's tree: only vermagic tells */
        scratch_ko("lib/modules/6.12.9-amd64/updates/dkms/nvidia.ko", "550.90.05", "6.1.0-28-amd64", false);
        doctor_libsystemd_library.soname = "libsystemd-absent.so.0";
        doctor_libsystemd_library.tried = false;
        doctor_libkmod_library.soname = "libkmod-absent.so.2";
        doctor_libkmod_library.tried = false;
        scratch_doctor(&run);
        doctor_libsystemd_library.soname = "libsystemd.so.0";
        doctor_libsystemd_library.tried = false;
        doctor_libkmod_library.soname = "libkmod.so.2";
        doctor_libkmod_library.tried = false;

        /* the journal's BIOS message is not read; the check judges by the rest */
        expect(&run, "kvm.available", NULL, VGPU_CHECK_FAIL, "the CPU has svm but kvm_amd is not loaded",
               "kernel log: libsystemd-absent.so.0 is not installed (Debian: apt install libsystemd0; ",
               NULL);
        expect(&run, "kvm.available", NULL, VGPU_CHECK_FAIL, NULL, "), no /var/log/kern.log", NULL);
        expect(&run, "nvidia.vgpu_mgr", NULL, VGPU_CHECK_FAIL, "nvidia-vgpu-mgr.service failed (exit-code)",
               "journal unread: libsystemd-absent.so.0 is not installed", NULL);
        expect(&run, "driver.kernel_match", NULL, VGPU_CHECK_SKIP,
               "modules' vermagic unknown: libkmod-absent.so.2 is not installed (Debian: apt install "
               "libkmod2",
               "/lib/modules/6.12.9-amd64/updates/dkms/nvidia.ko: no version, vermagic unreadable: "
               "libkmod-absent.so.2 is not installed",
               NULL);
        run_done(&run);

        /* the same tree with the libraries: the BIOS message and the stale build are seen */
        scratch_doctor(&run);
        expect(&run, "kvm.available", NULL, VGPU_CHECK_FAIL,
               "the kernel says AMD-V (\"SVM Mode\") is disabled by the BIOS", NULL, NULL);
        expect(&run, "driver.kernel_match", NULL, VGPU_CHECK_FAIL,
               "nvidia is built for kernel 6.1.0-28-amd64, the running kernel is 6.12.9-amd64", NULL, NULL);
        run_done(&run);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pcie_slot_power),
                cmocka_unit_test(test_thermal_margin),
                cmocka_unit_test(test_guest_driver),
                cmocka_unit_test(test_kvm_fixtures),
                cmocka_unit_test_setup_teardown(test_kvm_journal, scratch_setup, scratch_teardown),
                cmocka_unit_test_setup_teardown(test_kvm_kern_log, scratch_setup, scratch_teardown),
                cmocka_unit_test(test_vgpu_mgr_fixtures),
                cmocka_unit_test_setup_teardown(test_vgpu_mgr_journal, scratch_setup, scratch_teardown),
                cmocka_unit_test(test_gim),
                cmocka_unit_test_setup_teardown(test_gim_unbound, scratch_setup, scratch_teardown),
                cmocka_unit_test(test_kernel_match_fixtures),
                cmocka_unit_test_setup_teardown(test_kernel_match_scratch, scratch_setup, scratch_teardown),
                cmocka_unit_test_setup_teardown(test_libraries_missing, scratch_setup, scratch_teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
