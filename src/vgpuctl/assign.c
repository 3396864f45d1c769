/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * assign.c — handing vGPUs to VMs: `vgpuctl assign` and `detach` (through libvirt), `vgpuctl
 * xml` (the <hostdev> element, or QEMU's -device), and the domain column of `vgpuctl list`.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vgpu/assign.h"
#include "vgpuctl.h"

enum { OPT_DOMAIN, OPT_LIVE, OPT_CONFIG, OPT_CONNECT, OPT_DISPLAY_OFF };

const struct cli_option assign_options[] = {
        [OPT_DOMAIN] = { "domain", 'd', "NAME", "the libvirt domain (VM)" },
        [OPT_LIVE] = { "live", 0, NULL, "change the running domain" },
        [OPT_CONFIG] = { "config", 0, NULL,
                         "change its persistent configuration (default: both, live if it runs)" },
        [OPT_CONNECT] = { "connect", 'c', "URI", "libvirt URI (default: libvirt's, or LIBVIRT_DEFAULT_URI)" },
        [OPT_DISPLAY_OFF] = { "display-off", 0, NULL, "mdev: add display='off'" },
        {},
};

const struct cli_option detach_options[] = {
        [OPT_DOMAIN] = { "domain", 'd', "NAME", "the libvirt domain (VM)" },
        [OPT_LIVE] = { "live", 0, NULL, "change the running domain" },
        [OPT_CONFIG] = { "config", 0, NULL,
                         "change its persistent configuration (default: both, live if it runs)" },
        [OPT_CONNECT] = { "connect", 'c', "URI", "libvirt URI (default: libvirt's, or LIBVIRT_DEFAULT_URI)" },
        {},
};

enum { OPT_XML_QEMU, OPT_XML_DISPLAY_OFF };

const struct cli_option xml_options[] = {
        [OPT_XML_QEMU] = { "qemu", 0, NULL, "print QEMU's -device argument instead" },
        [OPT_XML_DISPLAY_OFF] = { "display-off", 0, NULL, "mdev: add display='off'" },
        {},
};

/* The device as this host has it (assign, xml): it must exist here. */
static int device_from_host(const char *arg, struct vgpu_hostdev *ret) {
        struct vgpu_error err = {};
        struct vgpu_host *host;
        if (vgpu_host_scan(VGPU_SCAN_INSTANCES, &host, &err) < 0)
                return cli_lib_error(&err);
        int r = vgpu_hostdev_from_host(host, arg, ret, &err);
        vgpu_host_free(host);
        if (r == -EINVAL)
                return cli_error(EXIT_USAGE, "%s", err.message);
        return r < 0 ? cli_lib_error(&err) : EXIT_OK;
}

static const char *where(unsigned changed) {
        switch (changed) {
        case VGPU_ASSIGN_LIVE:
                return "running domain";
        case VGPU_ASSIGN_CONFIG:
                return "configuration";
        default:
                return "configuration and running domain";
        }
}

static int change(struct cli *cli, bool attach) {
        const char *domain = cli->opt[OPT_DOMAIN];
        if (!domain)
                return cli_error(EXIT_USAGE,
                                 "--domain is required (the libvirt domain, see 'virsh list --all')");
        struct vgpu_hostdev dev;
        struct vgpu_error err = {};
        /* Detaching needs no device on the host: it may be gone already, and the VM still names it. */
        int r = EXIT_OK;
        if (attach)
                r = device_from_host(cli->argv[0], &dev);
        else if (vgpu_hostdev_parse(cli->argv[0], &dev, &err) < 0)
                r = cli_error(EXIT_USAGE, "%s", err.message);
        if (r != EXIT_OK)
                return r;
        unsigned flags = (cli->opt[OPT_LIVE] ? VGPU_ASSIGN_LIVE : 0) |
                         (cli->opt[OPT_CONFIG] ? VGPU_ASSIGN_CONFIG : 0) |
                         (attach && cli->opt[OPT_DISPLAY_OFF] ? VGPU_ASSIGN_DISPLAY_OFF : 0);

        struct vgpu_virt *v;
        if (vgpu_virt_open(cli->opt[OPT_CONNECT], 0, &v, &err) < 0)
                return cli_lib_error(&err);
        unsigned changed = 0;
        r = attach ? vgpu_assign(v, domain, &dev, flags, &changed, &err)
                   : vgpu_detach(v, domain, &dev, flags, &changed, &err);
        vgpu_virt_free(v);
        if (r < 0)
                return cli_lib_error(&err);

        const char *name = dev.kind == VGPU_HOSTDEV_MDEV ? dev.uuid : dev.bdf;
        struct out *o = cli_out(cli);
        out_open_object(o, NULL);
        out_string(o, OUT_JSON, "device", NULL, name);
        out_string(o, OUT_JSON, "domain", NULL, domain);
        out_bool(o, OUT_JSON, "changed", NULL, r > 0);
        out_bool(o, OUT_JSON, "live", NULL, changed & VGPU_ASSIGN_LIVE);
        out_bool(o, OUT_JSON, "config", NULL, changed & VGPU_ASSIGN_CONFIG);
        out_close_object(o);
        if (r > 0)
                out_text(o, "%s %s %s domain %s (%s)\n", attach ? "attached" : "detached", name,
                         attach ? "to" : "from", domain, where(changed));
        else
                out_text(o, "%s is already attached to domain %s: nothing to do\n", name, domain);
        out_free(o);
        return EXIT_OK;
}

int verb_assign(struct cli *cli) {
        return change(cli, true);
}

int verb_detach(struct cli *cli) {
        return change(cli, false);
}

int verb_xml(struct cli *cli) {
        struct vgpu_hostdev dev;
        int r = device_from_host(cli->argv[0], &dev);
        if (r != EXIT_OK)
                return r;
        struct vgpu_error err = {};
        char *xml = NULL, *qemu = NULL;
        if (vgpu_hostdev_xml(&dev, cli->opt[OPT_XML_DISPLAY_OFF] ? VGPU_ASSIGN_DISPLAY_OFF : 0, &xml, &err) <
                    0 ||
            vgpu_hostdev_qemu_device(&dev, &qemu, &err) < 0) {
                free(xml);
                return cli_lib_error(&err);
        }
        struct out *o = cli_out(cli);
        out_open_object(o, NULL);
        out_string(o, OUT_JSON, "kind", NULL, dev.kind == VGPU_HOSTDEV_MDEV ? "mdev" : "pci");
        out_string(o, OUT_JSON, "device", NULL, dev.kind == VGPU_HOSTDEV_MDEV ? dev.uuid : dev.bdf);
        out_bool(o, OUT_JSON, "managed", NULL, dev.kind == VGPU_HOSTDEV_PCI && dev.managed);
        out_string(o, cli->opt[OPT_XML_QEMU] ? OUT_JSON : OUT_ANY, "xml", "%s\n", xml);
        out_open_array(o, "qemu");
        out_string(o, OUT_JSON, NULL, NULL, "-device");
        out_string(o, OUT_JSON, NULL, NULL, qemu);
        out_close_array(o);
        if (cli->opt[OPT_XML_QEMU])
                out_text(o, "-device %s\n", qemu);
        out_close_object(o);
        out_free(o);
        free(xml);
        free(qemu);
        return EXIT_OK;
}

/* For `list`: the domain holding each instance and each GPU (a VF or PF assigned whole), or
 * NULL when libvirt is not there to ask. Asking must not slow `list` or make it fail: no daemon,
 * no connection, no message. */
void cli_list_domains(const struct vgpu_host *host, char ***ret_instances, char ***ret_gpus) {
        struct vgpu_error err = {};
        struct vgpu_virt *v;
        *ret_instances = *ret_gpus = NULL;
        if (host->n_instances == 0 && host->n_gpus == 0)
                return;
        if (vgpu_virt_open(NULL, VGPU_VIRT_PROBE | VGPU_VIRT_READ_ONLY, &v, &err) < 0) {
                fprintf(stderr, "vgpuctl: warning: cannot tell which VMs hold the vGPUs: %s\n", err.message);
                return;
        }
        if (!v)
                return;
        if (host->n_instances && vgpu_instance_domains(v, host, ret_instances, &err) < 0)
                fprintf(stderr, "vgpuctl: warning: cannot tell which VMs hold the vGPUs: %s\n", err.message);
        else if (host->n_gpus && vgpu_gpu_domains(v, host, ret_gpus, &err) < 0)
                fprintf(stderr, "vgpuctl: warning: cannot tell which VMs hold the GPUs: %s\n", err.message);
        vgpu_virt_free(v);
}
