/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-dlopen.c — basic/dlopen-util.c and the optional libraries libvgpu loads with it:
 * a missing library or symbol gives -EOPNOTSUPP and a message naming it (and no half-filled
 * table), a present one resolves its table once for all threads, and the real tables of
 * libsystemd, libkmod, libsensors, libvirt, libxml2 and libipmimonitoring resolve against the
 * libraries installed here (a symbol misspelt in a table would otherwise surface only on a host that runs that
 * check). The users' side (a check reporting the missing library) is in test-doctor-host.c,
 * cli/optional-libs.sh and cli/assign.sh.
 * libpci, libyaml and zlib are loaded the same way though the product needs them: their tables,
 * the id file pci-names.c reads without libpci being the one libpci reads, and what host.yaml's
 * parser, the report and the names do where one is missing anyway.
 */
#include <math.h>
#include <pthread.h>

#include "test-util.h"

#include <dirent.h>

#include "assign/assign-internal.h"
#include "basic/dlopen-util.h"
#include "basic/pci-access.h"
#include "config/yaml-dl.h"
#include "doctor/doctor-dl.h"
#include "host/host-internal.h"
#include "report/tar.h"
#include "telemetry/telemetry-dl.h"
#include "vgpu/config.h"
#include "vgpu/report.h"
#include "vgpu/sensors.h"

static struct {
        __typeof__(cos) *cos;
        __typeof__(sqrt) *sqrt;
        void (*no_such_function)(void);
} m;

/* Point an already defined library at another soname and forget the earlier load. */
static void retarget(struct dlopen_library *lib, const char *soname) {
        lib->soname = soname;
        lib->tried = false;
}

static void test_missing_library(void **state) {
        (void) state;
        static const struct dlopen_symbol syms[] = { { "cos", (void **) &m.cos } };
        struct dlopen_library lib = DLOPEN_LIBRARY("libvgpu-test-absent.so.7", "libvgpu-test-absent7", syms);
        struct vgpu_error err = {};
        assert_int_equal(dlopen_library_load(&lib, &err), -EOPNOTSUPP);
        assert_int_equal(err.code, -EOPNOTSUPP);
        assert_non_null(strstr(err.message, "libvgpu-test-absent.so.7 is not installed (Debian: apt install "
                                            "libvgpu-test-absent7; "));
        assert_null(m.cos);
        /* the answer is kept: a second call says the same, and a NULL err is fine */
        vgpu_error_clear(&err);
        assert_int_equal(dlopen_library_load(&lib, &err), -EOPNOTSUPP);
        assert_non_null(strstr(err.message, "libvgpu-test-absent.so.7 is not installed"));
        assert_int_equal(dlopen_library_load(&lib, NULL), -EOPNOTSUPP);
}

static void test_missing_symbol(void **state) {
        (void) state;
        static const struct dlopen_symbol syms[] = { DLOPEN_SYMBOL(m, cos)
                                                             DLOPEN_SYMBOL(m, no_such_function) };
        struct dlopen_library lib = DLOPEN_LIBRARY("libm.so.6", "libc6", syms);
        struct vgpu_error err = {};
        assert_int_equal(dlopen_library_load(&lib, &err), -EOPNOTSUPP);
        assert_string_equal(err.message, "libm.so.6 has no no_such_function (too old?)");
        assert_null(m.cos); /* all of the table or none of it */
}

static void *load_thread(void *userdata) {
        struct dlopen_library *lib = userdata;
        return (void *) (intptr_t) dlopen_library_load(lib, NULL);
}

static void test_loaded(void **state) {
        (void) state;
        static const struct dlopen_symbol syms[] = { DLOPEN_SYMBOL(m, cos) DLOPEN_SYMBOL(m, sqrt) };
        struct dlopen_library lib = DLOPEN_LIBRARY("libm.so.6", "libc6", syms);
        pthread_t t[8];
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                assert_int_equal(pthread_create(&t[i], NULL, load_thread, &lib), 0);
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                void *r;
                assert_int_equal(pthread_join(t[i], &r), 0);
                assert_int_equal((intptr_t) r, 0);
        }
        assert_true(lib.tried);
        assert_non_null(m.cos);
        assert_true(m.cos(0.0) == 1.0);
        assert_true(m.sqrt(16.0) == 4.0);
}

/* Every function the doctor and telemetry call is in the libraries as installed. */
static void test_real_tables(void **state) {
        (void) state;
        struct vgpu_error err = {};
        const struct libsystemd_dl *sd = doctor_libsystemd(&err);
        if (!sd)
                fail_msg("%s", err.message);
        assert_non_null(sd->sd_journal_open);
        assert_non_null(sd->sd_bus_flush_close_unref);
        const struct libkmod_dl *km = doctor_libkmod(&err);
        if (!km)
                fail_msg("%s", err.message);
        assert_non_null(km->kmod_module_info_free_list);
        if (dlopen_library_load(&telemetry_libsensors_library, &err) < 0)
                fail_msg("%s", err.message);
        const struct virt_dl *virt = virt_dl_load(&err);
        if (!virt)
                fail_msg("%s", err.message);
        assert_non_null(virt->virConnectOpen);
        assert_non_null(virt->xmlSetGenericErrorFunc);
        assert_ptr_equal(virt_dl_load(NULL), virt);
        if (dlopen_library_load(&telemetry_libipmimonitoring_library, &err) < 0)
                fail_msg("%s", err.message);
        const struct libpci_dl *pci = libpci(&err);
        if (!pci)
                fail_msg("%s", err.message);
        assert_non_null(pci->pci_read_long);
        if (config_libyaml_load(&err) < 0)
                fail_msg("%s", err.message);
        assert_non_null(libyaml.yaml_document_get_root_node);
        if (dlopen_library_load(&tar_zlib_library, &err) < 0)
                fail_msg("%s", err.message);
}

/* host/pci-names.c reads pci.ids at PCI_IDS_FILE without loading libpci: the file libpci reads
 * by default (or the same without ".gz", which both then read when there is no .gz) */
static void test_pci_ids_file(void **state) {
        (void) state;
        const struct libpci_dl *pci = libpci(NULL);
        assert_non_null(pci);
        struct pci_access *pacc = pci_access_new_quiet(pci);
        assert_non_null(pacc);
        const char *libpci_file = pacc->id_file_name;
        size_t len = strlen(PCI_IDS_FILE) - strlen(".gz");
        if (!streq(libpci_file, PCI_IDS_FILE) &&
            !(strlen(libpci_file) == len && strncmp(libpci_file, PCI_IDS_FILE, len) == 0))
                fail_msg("libpci reads %s, pci-names.c %s", libpci_file, PCI_IDS_FILE);
        pci->pci_cleanup(pacc);
}

static struct vgpu_host *host_of_one(unsigned vendor, unsigned device) {
        struct vgpu_host *h = host_new(); /* more than struct vgpu_host: vgpu_host_free() frees that */
        assert_non_null(h);
        assert_non_null(h->gpus = calloc(1, sizeof(*h->gpus)));
        h->n_gpus = 1;
        h->gpus[0].vendor_id = (uint16_t) vendor;
        h->gpus[0].device_id = (uint16_t) device;
        return h;
}

/* libpci, libyaml and zlib missing anyway (the packages depend on them): names from pci.ids still,
 * host.yaml and the report refused naming the package, nothing written */
static void test_required_missing(void **state) {
        (void) state;
        struct vgpu_error err = {};
        retarget(&libpci_library, "libpci-absent.so.3");
        assert_null(libpci(&err));
        assert_non_null(
                strstr(err.message, "libpci-absent.so.3 is not installed (Debian: apt install libpci3; "));
        /* a known vendor's unknown device: the vendor from the file, the device unknown, no error */
        struct vgpu_host *h = host_of_one(0x10de, 0xfffe);
        vgpu_error_clear(&err);
        assert_int_equal(pci_fill_names(h, &err), 0);
        if (access(PCI_IDS_FILE, F_OK) != 0) /* pci.ids, not pci.ids.gz, which is libpci's to read */
                assert_string_equal(h->gpus[0].vendor_name, "NVIDIA Corporation");
        assert_null(h->gpus[0].device_name);
        retarget(&libpci_library, "libpci.so.3");
        assert_non_null(libpci(&err));

        retarget(&config_libyaml_library, "libyaml-absent.so.2");
        static const char yaml[] = "version: 1\ngpus: []\n";
        struct vgpu_config *cfg = NULL;
        assert_int_equal(vgpu_config_parse_text(yaml, sizeof(yaml) - 1, "host.yaml", &cfg, &err),
                         -EOPNOTSUPP);
        assert_null(cfg);
        assert_non_null(strstr(err.message,
                               "libyaml-absent.so.2 is not installed (Debian: apt install libyaml-0-2; "));
        retarget(&config_libyaml_library, "libyaml-0.so.2");
        assert_int_equal(vgpu_config_parse_text(yaml, sizeof(yaml) - 1, "host.yaml", &cfg, &err), 0);
        vgpu_config_free(cfg);

        retarget(&tar_zlib_library, "libz-absent.so.1");
        char dir[] = "/tmp/test-dlopen.XXXXXX", path[64];
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/report.tar.gz", dir);
        assert_int_equal(vgpu_report_write(h, path, NULL, 0, &err), -EOPNOTSUPP);
        assert_non_null(strstr(err.message, "report.tar.gz: libz-absent.so.1 is not installed (Debian: apt "
                                            "install zlib1g; "));
        DIR *d = opendir(dir); /* neither the report nor its temporary file */
        assert_non_null(d);
        for (struct dirent *de; (de = readdir(d));)
                if (!streq(de->d_name, ".") && !streq(de->d_name, ".."))
                        fail_msg("%s left in %s", de->d_name, dir);
        closedir(d);
        retarget(&tar_zlib_library, "libz.so.1");
        assert_int_equal(dlopen_library_load(&tar_zlib_library, &err), 0);
        assert_int_equal(rmdir(dir), 0);
        vgpu_host_free(h);
}

/* lib/assign's loader with one of its libraries missing: -ENOPKG and message, for virt_dl_load()
 * and vgpu_virt_open(); then lib as installed again. */
static void assert_virt_missing(struct dlopen_library *lib, const char *absent, const char *message) {
        const char *soname = lib->soname;
        struct vgpu_error err = {};
        retarget(lib, absent);
        assert_null(virt_dl_load(&err));
        assert_int_equal(err.code, -ENOPKG);
        assert_non_null(strstr(err.message, message));
        struct vgpu_virt *v = NULL;
        assert_int_equal(vgpu_virt_open("test:///default", 0, &v, &err), -ENOPKG);
        assert_null(v);
        retarget(lib, soname);
        assert_non_null(virt_dl_load(&err));
}

static void test_real_tables_missing(void **state) {
        (void) state;
        struct vgpu_error err = {};
        retarget(&doctor_libkmod_library, "libkmod-absent.so.2");
        assert_null(doctor_libkmod(&err));
        assert_int_equal(err.code, -EOPNOTSUPP);
        assert_non_null(
                strstr(err.message, "libkmod-absent.so.2 is not installed (Debian: apt install libkmod2"));
        retarget(&doctor_libkmod_library, "libkmod.so.2");
        assert_non_null(doctor_libkmod(&err));

        retarget(&doctor_libsystemd_library, "libsystemd-absent.so.0");
        assert_null(doctor_libsystemd(&err));
        assert_non_null(strstr(err.message, "libsystemd-absent.so.0 is not installed (Debian: apt install "
                                            "libsystemd0"));
        retarget(&doctor_libsystemd_library, "libsystemd.so.0");

        /* the daemon's collector takes -EOPNOTSUPP as "collector off" and logs the message */
        unsetenv("VGPU_ROOT"); /* libsensors is asked only on the live root */
        retarget(&telemetry_libsensors_library, "libsensors-absent.so.5");
        struct vgpu_sensor *s = NULL;
        size_t n = 0;
        assert_int_equal(vgpu_sensors_read(&s, &n, &err), -EOPNOTSUPP);
        assert_non_null(strstr(err.message, "libsensors-absent.so.5 is not installed (Debian: apt install "
                                            "libsensors5"));
        assert_null(s);
        retarget(&telemetry_libsensors_library, "libsensors.so.5");

        /* libvirt's users tell "not installed" (-ENOPKG) from what the loader says of others */
        assert_virt_missing(&assign_libvirt_library, "libvirt-absent.so.0",
                            "libvirt-absent.so.0 is not installed (Debian: apt install libvirt0; ");
        assert_virt_missing(&assign_libxml2_library, "libxml2-absent.so.2",
                            "libxml2-absent.so.2 is not installed (Debian: apt install libxml2; ");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_missing_library),
                cmocka_unit_test(test_missing_symbol),
                cmocka_unit_test(test_loaded),
                cmocka_unit_test(test_real_tables),
                cmocka_unit_test(test_real_tables_missing),
                cmocka_unit_test(test_pci_ids_file),
                cmocka_unit_test(test_required_missing),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
