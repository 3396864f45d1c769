/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * checks-kvm.c — KVM itself: every vGPU is handed to a KVM guest, so a host whose CPU
 * virtualization is off in the firmware can carve GPUs all day and start no VM. Judged from
 * what the kernel shows: the CPU flag (vmx/svm in /proc/cpuinfo; since Linux 5.6 vmx is
 * cleared when the firmware locked VT-x off), the vendor module (kvm_intel/kvm_amd), /dev/kvm,
 * and the kernel's own "disabled by bios" message (kernel-log.c says where it is read).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doctor-internal.h"

/* Is `word` in the first "flags" line of /proc/cpuinfo? -1 when there is no flags line (no
 * cpuinfo, or not x86). */
static int cpu_flag(const char *cpuinfo, const char *word) {
        const char *line = cpuinfo;
        for (; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
                if (strncmp(line, "flags", 5) == 0 && (line[5] == '\t' || line[5] == ' '))
                        break;
        if (!line || !*line)
                return -1;
        const char *end = strchrnul(line, '\n'), *v = strchr(line, ':');
        if (!v || v > end)
                return -1;
        size_t n = strlen(word);
        for (const char *p = v + 1; p < end;) {
                while (p < end && *p == ' ')
                        p++;
                const char *w = p;
                while (p < end && *p != ' ')
                        p++;
                if ((size_t) (p - w) == n && strncmp(w, word, n) == 0)
                        return 1;
        }
        return 0;
}

static const char *const bios_messages[] = {
        "disabled by bios",      /* Linux <= 6.3: "kvm: support for 'kvm_intel' disabled by bios" */
        "not enabled (by bios)", /* 6.4+: "VMX not enabled (by BIOS) in MSR_IA32_FEAT_CTL" */
        "disabled (by bios)",    /* 6.4+: "SVM disabled (by BIOS) in MSR_VM_CR" */
        NULL,
};

int check_kvm_available(struct doctor *d) {
        _cleanup_text_ struct text ev = {}, rem = {};
        _cleanup_free_ char *cpuinfo = NULL, *logline = NULL;
        char vendor[32] = "", source[512];

        int r = doctor_read_file("/proc/cpuinfo", &cpuinfo);
        if (r == -ENOMEM)
                return r;
        r = doctor_cpu_vendor(vendor, sizeof(vendor));
        if (r < 0)
                return r;
        bool amd = streq(vendor, "AuthenticAMD") || streq(vendor, "HygonGenuine");
        const char *flag = amd ? "svm" : "vmx", *module = amd ? "kvm_amd" : "kvm_intel";
        const char *tech = amd ? "AMD-V (\"SVM Mode\")" : "Intel VT-x (\"Intel Virtualization Technology\")";
        int has_flag = cpuinfo ? cpu_flag(cpuinfo, flag) : -1;
        bool x86 = has_flag >= 0;
        bool loaded = x86 && doctor_module_loaded(module);
        bool dev = doctor_path_exists("/dev/kvm", NULL, 0);

        if (x86) {
                text_line(&ev, "/proc/cpuinfo: vendor_id %s, flag %s %s", vendor[0] ? vendor : "(absent)",
                          flag, has_flag ? "present" : "absent");
                text_line(&ev, "/sys/module/%s: %s", module, loaded ? "loaded" : "absent");
        } else
                text_line(&ev, "/proc/cpuinfo: %s", cpuinfo ? "no x86 flags line" : "unreadable");
        text_line(&ev, "/dev/kvm: %s", dev ? "present" : "absent");
        if (dev)
                return doctor_add(d, NULL, VGPU_CHECK_PASS, &ev, NULL,
                                  x86 ? "KVM available (%s loaded, /dev/kvm)" : "KVM available (/dev/kvm)",
                                  module);
        if (!x86 && !cpuinfo)
                return doctor_add(d, NULL, VGPU_CHECK_SKIP, &ev, NULL,
                                  "no /dev/kvm and /proc/cpuinfo unreadable");

        r = doctor_kernel_log_find(bios_messages, &logline, source, sizeof(source));
        if (r == -ENOENT) {
                text_line(&ev, "kernel log: %s", source);
                r = 0;
        } else if (r < 0)
                return r;
        else if (r > 0)
                text_line(&ev, "%s: %s", source, logline);
        else
                text_line(&ev, "kernel log: no \"disabled by bios\" message this boot");

        if (r > 0 || (x86 && !has_flag)) {
                text_line(&rem,
                          "Enable %s in the firmware setup (often under Advanced > CPU Configuration; "
                          "on servers also in the BMC's BIOS settings), save and power-cycle.",
                          tech);
                text_line(&rem, "If this host is itself a VM, enable nested virtualization on its hypervisor "
                                "instead.");
                text_line(&rem, "Check after the reboot: grep -cw %s /proc/cpuinfo; ls -l /dev/kvm", flag);
                if (!text_get(&rem))
                        return -ENOMEM;
                if (r > 0)
                        return doctor_add(d, NULL, VGPU_CHECK_FAIL, &ev, text_get(&rem),
                                          "KVM unavailable: the kernel says %s is disabled by the BIOS",
                                          tech);
                return doctor_add(d, NULL, VGPU_CHECK_FAIL, &ev, text_get(&rem),
                                  "KVM unavailable: the CPU shows no %s flag: %s is off in the firmware "
                                  "(or this VM has no nested virtualization)",
                                  flag, tech);
        }
        if (x86 && !loaded) {
                text_line(&rem, "Load the KVM module and have it loaded at boot:");
                text_line(&rem, "  modprobe %s && echo %s > /etc/modules-load.d/kvm.conf", module, module);
                text_line(&rem, "If modprobe fails, its reason is in: dmesg | grep -i kvm");
                if (!text_get(&rem))
                        return -ENOMEM;
                return doctor_add(d, NULL, VGPU_CHECK_FAIL, &ev, text_get(&rem),
                                  "KVM unavailable: the CPU has %s but %s is not loaded", flag, module);
        }
        return doctor_add(d, NULL, VGPU_CHECK_FAIL, &ev,
                          "Create the device node: udevadm trigger --subsystem-match=misc --action=add; "
                          "check with ls -l /dev/kvm (crw-rw---- root kvm, 10, 232)",
                          x86 ? "KVM unavailable: %s is loaded but there is no /dev/kvm"
                              : "KVM unavailable: no /dev/kvm",
                          module);
}
