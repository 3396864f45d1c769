/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-assign.c — lib/assign: which device "UUID|BDF" names on fixture hosts, its <hostdev>
 * element and QEMU argument (exact), hostdev matching in domain XML, and attach/detach/holders
 * on one connection to libvirt's test driver, whose state lives as long as the connection.
 * (The test driver has no device attach, so configuration changes go through redefinition;
 * it cannot attach to a running domain at all, which is checked to fail with libvirt's reason.)
 */
#include "test-util.h"

#include <unistd.h>

#include "assign/assign-internal.h"
#include "vgpu/assign.h"

#define U1 "b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01"
#define U2 "b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e02"
#define U3 "c7a1d2e3-8b4f-4a5c-9d6e-7f8091a2b3c4"

static struct vgpu_host *scan(const char *fixture) {
        use_fixture(fixture);
        struct vgpu_host *host = NULL;
        struct vgpu_error err = {};
        if (vgpu_host_scan(VGPU_SCAN_INSTANCES, &host, &err) < 0)
                fail_msg("scan of %s: %s", fixture, err.message);
        return host;
}

/* The device arg names on host; the test fails with the library's message where there is none. */
static struct vgpu_hostdev hostdev_of(const struct vgpu_host *host, const char *arg) {
        struct vgpu_hostdev d;
        struct vgpu_error err = {};
        if (vgpu_hostdev_from_host(host, arg, &d, &err) < 0)
                fail_msg("%s: %s", arg, err.message);
        return d;
}

static void xml_is(const struct vgpu_host *host, const char *arg, unsigned flags, const char *want_xml,
                   const char *want_qemu) {
        struct vgpu_hostdev d = hostdev_of(host, arg);
        struct vgpu_error err = {};
        char *xml = NULL, *qemu = NULL;
        assert_int_equal(vgpu_hostdev_xml(&d, flags, &xml, &err), 0);
        assert_int_equal(vgpu_hostdev_qemu_device(&d, &qemu, &err), 0);
        if (strcmp(xml, want_xml) != 0)
                fail_msg("xml of %s:\n  got:  %s\n  want: %s", arg, xml, want_xml);
        assert_string_equal(qemu, want_qemu);
        free(xml);
        free(qemu);
}

static void from_host_fails(const struct vgpu_host *host, const char *arg, int code, const char *message) {
        struct vgpu_hostdev d;
        struct vgpu_error err = {};
        assert_int_equal(vgpu_hostdev_from_host(host, arg, &d, &err), code);
        if (strcmp(err.message, message) != 0)
                fail_msg("message for %s:\n  got:  %s\n  want: %s", arg, err.message, message);
}

static void test_hostdev_xml(void **state) {
        (void) state;
        struct vgpu_host *host = scan("nvidia-mdev");
        xml_is(host, U1, 0,
               "<hostdev mode='subsystem' type='mdev' model='vfio-pci' managed='no'><source><address "
               "uuid='" U1 "'/></source></hostdev>",
               "vfio-pci,sysfsdev=/sys/bus/mdev/devices/" U1);
        /* upper case in, lower case out; display only when asked */
        xml_is(host, "C7A1D2E3-8B4F-4A5C-9D6E-7F8091A2B3C4", VGPU_ASSIGN_DISPLAY_OFF,
               "<hostdev mode='subsystem' type='mdev' model='vfio-pci' managed='no' "
               "display='off'><source><address uuid='" U3 "'/></source></hostdev>",
               "vfio-pci,sysfsdev=/sys/bus/mdev/devices/" U3);
        from_host_fails(host, "00000000-0000-4000-8000-000000000000", -ENOENT,
                        "no vGPU 00000000-0000-4000-8000-000000000000 on this host (no such device in "
                        "/sys/bus/mdev/devices; see 'vgpuctl list')");
        from_host_fails(host, "3b:00.0", -EBUSY,
                        "0000:3b:00.0 hosts vGPUs (it has mdev instances): assign one of them, not the GPU "
                        "itself (see 'vgpuctl list')");
        from_host_fails(host, "0000:3b:00.1", -ENOENT,
                        "0000:3b:00.1: no display-class PCI function at this address (see 'vgpuctl list')");
        from_host_fails(host, "vm1", -EINVAL,
                        "'vm1' is neither a vGPU UUID nor a PCI address (expected 8-4-4-4-12 hex digits or "
                        "DDDD:BB:DD.F)");
        vgpu_host_free(host);

        /* NVIDIA vendor-VFIO: managed='no', libvirt must not rebind it (the type would be lost) */
        host = scan("nvidia-sriov-vfio");
        xml_is(host, "41:00.4", 0,
               "<hostdev mode='subsystem' type='pci' managed='no'><source><address domain='0x0000' "
               "bus='0x41' slot='0x00' function='0x4'/></source></hostdev>",
               "vfio-pci,host=0000:41:00.4");
        from_host_fails(
                host, "0000:41:00.5", -ENODEV,
                "0000:41:00.5 has no vGPU type set, so a VM could not use it: create one first "
                "('vgpuctl create --parent 0000:41:00.5 --type TYPE', see 'vgpuctl types 0000:41:00.5')");
        from_host_fails(host, "41:00.0", -EBUSY,
                        "0000:41:00.0 hosts vGPUs (it has VFs enabled): assign one of them, not the GPU "
                        "itself (see 'vgpuctl list')");
        vgpu_host_free(host);

        /* a plain SR-IOV VF on vfio-pci: libvirt manages the binding */
        host = scan("amd-mxgpu");
        xml_is(host, "0000:03:02.3", 0,
               "<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0x0000' "
               "bus='0x03' slot='0x02' function='0x3'/></source></hostdev>",
               "vfio-pci,host=0000:03:02.3");
        vgpu_host_free(host);
}

static void test_hostdev_parse(void **state) {
        (void) state;
        struct vgpu_hostdev d;
        struct vgpu_error err = {};
        assert_int_equal(vgpu_hostdev_parse("B1E5C3F2-6A7D-4E21-9C43-1A2B3C4D5E01", &d, &err), 0);
        assert_int_equal(d.kind, VGPU_HOSTDEV_MDEV);
        assert_string_equal(d.uuid, U1);
        assert_int_equal(vgpu_hostdev_parse("41:00.4", &d, &err), 0);
        assert_int_equal(d.kind, VGPU_HOSTDEV_PCI);
        assert_string_equal(d.bdf, "0000:41:00.4");
        assert_int_equal(vgpu_hostdev_parse("b1e5c3f2-6a7d-4e21-9c43", &d, &err), -EINVAL);
        assert_int_equal(vgpu_hostdev_parse(NULL, &d, &err), -EINVAL);
}

static const struct virt_dl *load_or_skip(void) {
        struct vgpu_error err = {};
        const struct virt_dl *dl = virt_dl_load(&err);
        if (!dl) {
                print_message("skipped: %s\n", err.message);
                skip();
        }
        return dl;
}

/* Matching by what a source is, however it is spelled, and only in <devices>. */
static void test_domain_xml(void **state) {
        (void) state;
        const struct virt_dl *dl = load_or_skip();
        const char *xml =
                "<domain type='kvm'><name>a</name><devices>"
                "<hostdev mode='subsystem' type='mdev' model='vfio-pci'><source><address "
                "uuid='B1E5C3F2-6A7D-4E21-9C43-1A2B3C4D5E01'/></source></hostdev>"
                "<hostdev mode='subsystem' type='pci' managed='yes'><source><address domain='0' bus='65' "
                "slot='0' function='4'/></source></hostdev>"
                "<hostdev mode='subsystem' type='usb'><source><vendor id='0x1234'/><product "
                "id='0xbeef'/></source></hostdev>"
                "</devices><metadata><hostdev mode='subsystem' type='mdev'><source><address uuid='" U2
                "'/></source></hostdev></metadata>"
                "</domain>";
        struct vgpu_hostdev mdev = { .kind = VGPU_HOSTDEV_MDEV, .uuid = U1 },
                            other = { .kind = VGPU_HOSTDEV_MDEV, .uuid = U2 };
        struct vgpu_hostdev vf = { .kind = VGPU_HOSTDEV_PCI, .bdf = "0000:41:00.4" },
                            vf2 = { .kind = VGPU_HOSTDEV_PCI, .bdf = "0000:41:00.5" };
        assert_int_equal(domain_xml_holds(dl, xml, &mdev), 1);
        assert_int_equal(domain_xml_holds(dl, xml, &vf), 1);
        assert_int_equal(domain_xml_holds(dl, xml, &other), 0);
        assert_int_equal(domain_xml_holds(dl, xml, &vf2), 0);
        assert_int_equal(domain_xml_holds(dl, "<domain><devices>", &vf), -EBADMSG);

        char *edited = NULL;
        assert_int_equal(domain_xml_remove(dl, xml, &vf, &edited), 0);
        assert_int_equal(domain_xml_holds(dl, edited, &vf), 0);
        assert_int_equal(domain_xml_holds(dl, edited, &mdev), 1);
        assert_int_equal(domain_xml_remove(dl, edited, &vf, &(char *){ NULL }), -ENOENT);
        free(edited);

        /* a domain without <devices> gets one */
        assert_int_equal(
                domain_xml_add(dl, "<domain type='kvm'><name>b</name></domain>",
                               "<hostdev mode='subsystem' type='pci' managed='yes'><source><address "
                               "domain='0x0000' bus='0x41' slot='0x00' function='0x5'/></source></hostdev>",
                               &edited),
                0);
        assert_int_equal(domain_xml_holds(dl, edited, &vf2), 1);
        free(edited);
}

static char tmpdir[] = "/tmp/test-assign-XXXXXX";
static char uri[sizeof(tmpdir) + 32];

/* A test-driver host: vm-off (defined, shut off) and vm-run (running, holding U3 live). */
static void write_node(void) {
        assert_non_null(mkdtemp(tmpdir));
        char path[sizeof(tmpdir) + 16];
        snprintf(path, sizeof(path), "%s/node.xml", tmpdir);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs("<node>\n"
              "  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>\n"
              "    <name>vm-off</name><memory>1048576</memory><os><type arch='x86_64'>hvm</type></os>\n"
              "    <test:runstate>5</test:runstate>\n"
              "  </domain>\n"
              "  <domain type='test'>\n"
              "    <name>vm-run</name><memory>1048576</memory><os><type arch='x86_64'>hvm</type></os>\n"
              "    <devices><hostdev mode='subsystem' type='mdev' model='vfio-pci'><source><address uuid='" U3
              "'/></source></hostdev></devices>\n"
              "  </domain>\n"
              "</node>\n",
              f);
        assert_int_equal(fclose(f), 0);
        snprintf(uri, sizeof(uri), "test://%s", path);
}

static void remove_node(void) {
        char path[sizeof(tmpdir) + 16];
        snprintf(path, sizeof(path), "%s/node.xml", tmpdir);
        unlink(path);
        rmdir(tmpdir);
}

static struct vgpu_virt *connect_or_skip(void) {
        load_or_skip();
        struct vgpu_virt *v = NULL;
        struct vgpu_error err = {};
        if (vgpu_virt_open(uri, 0, &v, &err) < 0)
                fail_msg("%s", err.message);
        return v;
}

static const char *holder(struct vgpu_virt *v, const struct vgpu_host *host, const char *key, char *buf,
                          size_t size) {
        char **domains;
        struct vgpu_error err = {};
        if (vgpu_instance_domains(v, host, &domains, &err) < 0)
                fail_msg("%s", err.message);
        const char *r = NULL;
        for (size_t i = 0; i < host->n_instances; i++)
                if (strcmp(host->instances[i].uuid[0] ? host->instances[i].uuid : host->instances[i].parent,
                           key) == 0 &&
                    domains[i])
                        r = strncpy(buf, domains[i], size);
        vgpu_instance_domains_free(domains, host->n_instances);
        return r;
}

static void test_assign_detach_mdev(void **state) {
        (void) state;
        struct vgpu_virt *v = connect_or_skip();
        struct vgpu_host *host = scan("nvidia-mdev");
        struct vgpu_error err = {};
        struct vgpu_hostdev d = hostdev_of(host, U1);
        unsigned changed = 99;
        char buf[64];

        assert_null(holder(v, host, U1, buf, sizeof(buf)));
        assert_string_equal(holder(v, host, U3, buf, sizeof(buf)), "vm-run");
        /* shut off: the default is its configuration */
        assert_int_equal(vgpu_assign(v, "vm-off", &d, 0, &changed, &err), 1);
        assert_int_equal(changed, VGPU_ASSIGN_CONFIG);
        assert_string_equal(holder(v, host, U1, buf, sizeof(buf)), "vm-off");
        assert_int_equal(vgpu_assign(v, "vm-off", &d, VGPU_ASSIGN_CONFIG, &changed, &err), 0);
        assert_int_equal(changed, 0);
        assert_int_equal(vgpu_assign(v, "vm-off", &d, VGPU_ASSIGN_LIVE, &changed, &err), -EINVAL);
        assert_string_equal(err.message,
                            "domain 'vm-off' is not running: --live needs a running domain (use --config)");

        assert_int_equal(vgpu_detach(v, "vm-off", &d, 0, &changed, &err), 1);
        assert_int_equal(changed, VGPU_ASSIGN_CONFIG);
        assert_null(holder(v, host, U1, buf, sizeof(buf)));
        assert_int_equal(vgpu_detach(v, "vm-off", &d, 0, &changed, &err), -ENOENT);
        assert_string_equal(err.message, U1 " is not attached to domain 'vm-off' (not in its configuration)");

        assert_int_equal(vgpu_assign(v, "vm-nope", &d, 0, NULL, &err), -ENOENT);
        assert_string_equal(err.message, "no domain named 'vm-nope' in libvirt (see 'virsh list --all')");

        /* running: configuration and live; the test driver has no live attach, and says so */
        assert_int_equal(vgpu_assign(v, "vm-run", &d, 0, NULL, &err), -EIO);
        assert_non_null(strstr(err.message,
                               "attaching " U1
                               " to domain 'vm-run' (its configuration and the running domain): "));
        assert_non_null(strstr(err.message, "not supported"));
        /* what it holds live already is a no-op */
        struct vgpu_hostdev d3;
        assert_int_equal(vgpu_hostdev_parse(U3, &d3, &err), 0);
        assert_int_equal(vgpu_assign(v, "vm-run", &d3, VGPU_ASSIGN_LIVE, &changed, &err), 0);
        /* the configuration of a running domain is its own */
        assert_int_equal(vgpu_assign(v, "vm-run", &d, VGPU_ASSIGN_CONFIG, &changed, &err), 1);
        assert_string_equal(holder(v, host, U1, buf, sizeof(buf)), "vm-run");

        vgpu_host_free(host);
        vgpu_virt_free(v);
}

/* A vendor-VFIO VF is an instance without UUID: held by its address. */
static void test_assign_vfio_vf(void **state) {
        (void) state;
        struct vgpu_virt *v = connect_or_skip();
        struct vgpu_host *host = scan("nvidia-sriov-vfio");
        struct vgpu_error err = {};
        struct vgpu_hostdev d = hostdev_of(host, "41:00.4");
        char buf[64];
        assert_int_equal(vgpu_assign(v, "vm-off", &d, VGPU_ASSIGN_CONFIG, NULL, &err), 1);
        assert_string_equal(holder(v, host, "0000:41:00.4", buf, sizeof(buf)), "vm-off");
        assert_int_equal(vgpu_assign(v, "vm-off", &d, VGPU_ASSIGN_CONFIG, NULL, &err), 0);
        assert_int_equal(vgpu_detach(v, "vm-off", &d, VGPU_ASSIGN_CONFIG, NULL, &err), 1);
        assert_null(holder(v, host, "0000:41:00.4", buf, sizeof(buf)));
        vgpu_host_free(host);
        vgpu_virt_free(v);
}

static char *holders(struct vgpu_virt *v, const char *uuid_or_bdf, char *buf, size_t size) {
        struct vgpu_hostdev d;
        struct vgpu_error err = {};
        char **domains = NULL;
        size_t n = 99;
        assert_int_equal(vgpu_hostdev_parse(uuid_or_bdf, &d, &err), 0);
        if (vgpu_hostdev_domains(v, &d, &domains, &n, &err) < 0)
                fail_msg("%s", err.message);
        buf[0] = 0;
        for (size_t i = 0; i < n; i++)
                snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", i ? "," : "", domains[i]);
        assert_null(domains[n]);
        vgpu_instance_domains_free(domains, n);
        return buf;
}

/* Every holder of one device, where vgpu_instance_domains() names one: a running domain by what
 * it runs with or by its configuration, a shut-off one by its configuration. */
static void test_hostdev_domains(void **state) {
        (void) state;
        struct vgpu_virt *v = connect_or_skip();
        struct vgpu_host *host = scan("nvidia-mdev");
        struct vgpu_error err = {};
        struct vgpu_hostdev d;
        char buf[256];
        assert_string_equal(holders(v, U1, buf, sizeof(buf)), "");
        assert_string_equal(holders(v, U3, buf, sizeof(buf)), "vm-run");
        d = hostdev_of(host, U1);
        assert_int_equal(vgpu_assign(v, "vm-run", &d, VGPU_ASSIGN_CONFIG, NULL, &err), 1);
        assert_string_equal(holders(v, U1, buf, sizeof(buf)), "vm-run");
        assert_int_equal(vgpu_assign(v, "vm-off", &d, 0, NULL, &err), 1);
        assert_string_equal(holders(v, U1, buf, sizeof(buf)), "vm-off,vm-run");
        assert_string_equal(holders(v, "C7A1D2E3-8B4F-4A5C-9D6E-7F8091A2B3C4", buf, sizeof(buf)), "vm-run");
        assert_int_equal(vgpu_detach(v, "vm-off", &d, 0, NULL, &err), 1);
        assert_int_equal(vgpu_detach(v, "vm-run", &d, VGPU_ASSIGN_CONFIG, NULL, &err), 1);
        assert_string_equal(holders(v, U1, buf, sizeof(buf)), "");
        vgpu_host_free(host);

        /* a vendor-VFIO VF, by its address */
        host = scan("nvidia-sriov-vfio");
        assert_string_equal(holders(v, "0000:41:00.4", buf, sizeof(buf)), "");
        d = hostdev_of(host, "41:00.4");
        assert_int_equal(vgpu_assign(v, "vm-off", &d, 0, NULL, &err), 1);
        assert_string_equal(holders(v, "0000:41:00.4", buf, sizeof(buf)), "vm-off");
        assert_string_equal(holders(v, "0000:41:00.5", buf, sizeof(buf)), "");
        assert_int_equal(vgpu_detach(v, "vm-off", &d, 0, NULL, &err), 1);
        assert_string_equal(holders(v, "0000:41:00.4", buf, sizeof(buf)), "");
        vgpu_host_free(host);
        vgpu_virt_free(v);
}

/* Probing connects only where libvirt is: here, nowhere but LIBVIRT_DEFAULT_URI. */
static void test_probe(void **state) {
        (void) state;
        load_or_skip();
        struct vgpu_virt *v = (struct vgpu_virt *) 1;
        struct vgpu_error err = {};
        use_fixture("nvidia-mdev"); /* no /run/libvirt there */
        unsetenv("LIBVIRT_DEFAULT_URI");
        assert_int_equal(vgpu_virt_open(NULL, VGPU_VIRT_PROBE | VGPU_VIRT_READ_ONLY, &v, &err), 0);
        assert_null(v);
        setenv("LIBVIRT_DEFAULT_URI", uri, 1);
        assert_int_equal(vgpu_virt_open(NULL, VGPU_VIRT_PROBE | VGPU_VIRT_READ_ONLY, &v, &err), 0);
        assert_non_null(v);
        vgpu_virt_free(v);
        unsetenv("LIBVIRT_DEFAULT_URI");
        assert_int_equal(vgpu_virt_open("test:///nonexistent/node.xml", 0, &v, &err), -ECONNREFUSED);
        assert_non_null(strstr(err.message, "connecting to libvirt (test:///nonexistent/node.xml) failed: "));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_hostdev_xml),    cmocka_unit_test(test_hostdev_parse),
                cmocka_unit_test(test_domain_xml),     cmocka_unit_test(test_assign_detach_mdev),
                cmocka_unit_test(test_assign_vfio_vf), cmocka_unit_test(test_hostdev_domains),
                cmocka_unit_test(test_probe),
        };
        write_node();
        int r = cmocka_run_group_tests(tests, NULL, NULL);
        remove_node();
        return r;
}
