/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-host.c — the host snapshot (lib/host, lib/backend) on every fixture host, with exact
 * values: ids, drivers, groups, links, SR-IOV, BARs, types and what is parsed out of their
 * descriptions, instances, NVML readings through the NVML double.
 */
#include "test-util.h"

#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/macro.h"
#include "host/host-internal.h"
#include "vgpu/host.h"
#include "vgpu/nvml-events.h"

static struct vgpu_host *scan(const char *fixture, unsigned flags) {
        use_fixture(fixture);
        struct vgpu_error err = {};
        struct vgpu_host *host = NULL;
        int r = vgpu_host_scan(flags, &host, &err);
        if (r < 0)
                fail_msg("scan of %s failed: %s", fixture, err.message);
        assert_non_null(host);
        return host;
}

static const struct vgpu_type *find_type(const struct vgpu_host *host, const char *parent, const char *id) {
        const struct vgpu_parent *p = vgpu_host_find_parent(host, parent);
        assert_non_null(p);
        for (size_t i = 0; i < p->n_types; i++)
                if (strcmp(p->types[i].id, id) == 0)
                        return &p->types[i];
        fail_msg("no type %s on %s", id, parent);
        return NULL;
}

static void test_nvidia_mdev(void **state) {
        (void) state;
        struct vgpu_host *host = scan("nvidia-mdev", VGPU_SCAN_ALL);

        assert_string_equal(host->kernel_release, "6.1.0-28-amd64");
        assert_int_equal(host->n_gpus, 4); /* the BMC's VGA counts: it is display class */
        assert_string_equal(host->gpus[0].bdf, "0000:03:00.0");
        assert_string_equal(host->gpus[0].driver, "ast");
        assert_false(host->gpus[0].mdev_parent);

        const struct vgpu_gpu *g = vgpu_host_find_gpu(host, "0000:3b:00.0");
        assert_non_null(g);
        assert_int_equal(g->vendor_id, 0x10de);
        assert_int_equal(g->device_id, 0x1eb8);
        assert_int_equal(g->subsystem_vendor_id, 0x10de);
        assert_int_equal(g->subsystem_device_id, 0x12a2);
        assert_int_equal(g->class_code, 0x030200);
        assert_string_equal(g->driver, "nvidia");
        assert_int_equal(g->iommu_group, 4);
        assert_int_equal(g->numa_node, 0);
        assert_true(g->link.speed_current == 8.0 && g->link.speed_max == 8.0);
        assert_int_equal(g->link.width_current, 16);
        assert_int_equal(g->link.width_max, 16);
        assert_false(g->sriov);
        assert_int_equal(g->n_vfs, 0);
        assert_string_equal(g->physfn, "");
        assert_true(g->mdev_parent);
        assert_false(g->nvidia_vfio);
        assert_string_equal(g->device_name, "TU104GL [Tesla T4]");
        assert_string_equal(g->vendor_name, "NVIDIA Corporation");

        /* BARs: 16M register BAR, 256M and 32M 64-bit prefetchable above 4G, the ROM */
        assert_int_equal(g->n_bars, 4);
        assert_int_equal(g->bars[1].index, 1);
        assert_int_equal(g->bars[1].start, 0x38b000000000ULL);
        assert_int_equal(g->bars[1].size, 256ULL << 20);
        assert_true(g->bars[1].is_64bit && g->bars[1].prefetchable);
        assert_int_equal(g->bars[0].size, 16ULL << 20);
        assert_false(g->bars[0].is_64bit);

        /* the group holds the GPU alone */
        const struct vgpu_iommu_group *grp = vgpu_host_find_group(host, 4);
        assert_non_null(grp);
        assert_int_equal(grp->n_members, 1);
        assert_string_equal(grp->members[0].bdf, "0000:3b:00.0");
        assert_string_equal(grp->members[0].driver, "nvidia");

        /* types: the full T4 list, parsed */
        const struct vgpu_parent *p = vgpu_host_find_parent(host, "0000:3b:00.0");
        assert_non_null(p);
        assert_int_equal(p->n_types, 17);
        assert_string_equal(p->driver, "nvidia");
        assert_ptr_equal(p->gpu, g);
        assert_string_equal(p->types[0].id, "nvidia-222"); /* natural order: 222 < 232 */
        const struct vgpu_type *t = find_type(host, "0000:3b:00.0", "nvidia-232");
        assert_string_equal(t->name, "GRID T4-4Q");
        assert_string_equal(t->device_api, "vfio-pci");
        assert_int_equal(t->available_instances, 2); /* 4 fit, 2 exist */
        assert_int_equal(t->framebuffer_bytes, 4LL << 30);
        assert_int_equal(t->max_instances, 4);
        assert_int_equal(t->kind, VGPU_TYPE_MDEV);
        assert_non_null(strstr(t->description, "framebuffer=4096M"));
        t = find_type(host, "0000:3b:00.0", "nvidia-222");
        assert_int_equal(t->available_instances, 0); /* one type per GPU at a time */
        assert_int_equal(t->framebuffer_bytes, 1LL << 30);
        assert_int_equal(t->max_instances, 16);

        /* the second T4 shares static attributes with the first (read once) but has its own counts */
        t = find_type(host, "0000:5e:00.0", "nvidia-233");
        assert_string_equal(t->name, "GRID T4-8Q");
        assert_int_equal(t->available_instances, 1);
        assert_int_equal(t->framebuffer_bytes, 8LL << 30);
        assert_int_equal(t->max_instances, 2);
        assert_int_equal(find_type(host, "0000:5e:00.0", "nvidia-232")->available_instances, 0);
        assert_int_equal(find_type(host, "0000:af:00.0", "nvidia-232")->available_instances, 4);

        /* instances, sorted by parent then uuid */
        assert_int_equal(host->n_instances, 3);
        assert_string_equal(host->instances[0].uuid, "b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01");
        assert_string_equal(host->instances[0].parent, "0000:3b:00.0");
        assert_string_equal(host->instances[0].type, "nvidia-232");
        assert_int_equal(host->instances[0].iommu_group, 9);
        assert_string_equal(host->instances[2].uuid, "c7a1d2e3-8b4f-4a5c-9d6e-7f8091a2b3c4");
        assert_string_equal(host->instances[2].parent, "0000:5e:00.0");
        assert_string_equal(host->instances[2].type, "nvidia-233");

        /* NVML, through the double serving nvml.conf */
        assert_string_equal(host->nvml_driver_version, "550.127.06");
        assert_non_null(g->nvml);
        assert_string_equal(g->nvml->name, "Tesla T4");
        assert_string_equal(g->nvml->uuid, "GPU-1d7ce7da-0f0c-40ae-adc9-d96116b6db34");
        assert_int_equal(g->nvml->memory_total, 16106127360ULL);
        assert_int_equal(g->nvml->memory_used, 8589934592ULL);
        assert_int_equal(g->nvml->temperature, 41);
        assert_int_equal(g->nvml->temp_slowdown, 93);
        assert_int_equal(g->nvml->temp_shutdown, 96);
        assert_int_equal(g->nvml->power_mw, 27842);
        assert_int_equal(g->nvml->power_limit_mw, 70000);
        assert_int_equal(g->nvml->persistence_mode, 1);
        assert_int_equal(g->nvml->virtualization_mode, 3);
        assert_int_equal(g->nvml->mig_mode, 0);
        assert_int_equal(vgpu_host_find_gpu(host, "0000:5e:00.0")->nvml->temperature, 47);
        assert_null(host->gpus[0].nvml); /* the ASPEED VGA is no NVIDIA GPU */

        vgpu_host_free(host);
}

/* The newer NVML readings: utilization, reserved memory (nvmlMemory_v2), clocks-event reasons,
 * PCIe link; af:00.0's double answers none of them, so all are unknown there, never 0. */
static void test_nvml_readings(void **state) {
        (void) state;
        struct vgpu_host *host = scan("nvidia-mdev", VGPU_SCAN_NVML);
        const struct vgpu_nvml_gpu *n = vgpu_host_find_gpu(host, "0000:3b:00.0")->nvml;
        assert_non_null(n);
        assert_int_equal(n->utilization_gpu, 12);
        assert_int_equal(n->utilization_memory, 5);
        assert_int_equal(n->memory_reserved, 469762048);
        assert_int_equal(n->memory_used, 8589934592ULL);
        assert_true(n->clocks_event_reasons_known);
        assert_int_equal(n->clocks_event_reasons, VGPU_NVML_CLOCKS_EVENT_SW_POWER_CAP);
        assert_int_equal(n->pcie_gen_current, 3);
        assert_int_equal(n->pcie_gen_max, 3);
        assert_int_equal(n->pcie_width_current, 16);
        assert_int_equal(n->pcie_width_max, 16);

        n = vgpu_host_find_gpu(host, "0000:5e:00.0")->nvml;
        assert_int_equal(n->utilization_gpu, 31);
        assert_int_equal(n->utilization_memory, 18);
        assert_int_equal(n->clocks_event_reasons, VGPU_NVML_CLOCKS_EVENT_GPU_IDLE);
        assert_int_equal(n->pcie_gen_current, 1);

        n = vgpu_host_find_gpu(host, "0000:af:00.0")->nvml;
        assert_non_null(n);
        assert_int_equal(n->temperature, 33); /* the old readings are there */
        assert_int_equal(n->utilization_gpu, -1);
        assert_int_equal(n->utilization_memory, -1);
        assert_int_equal(n->memory_reserved, -1);
        assert_int_equal(n->memory_total, 16106127360ULL); /* from nvmlDeviceGetMemoryInfo (v1) */
        assert_false(n->clocks_event_reasons_known);
        assert_int_equal(n->pcie_gen_current, -1);
        assert_int_equal(n->pcie_width_max, -1);
        vgpu_host_free(host);

        assert_string_equal(vgpu_nvml_clocks_event_to_string(VGPU_NVML_CLOCKS_EVENT_SW_THERMAL_SLOWDOWN),
                            "sw_thermal_slowdown");
        assert_string_equal(vgpu_nvml_clocks_event_to_string(0x100), "display_clock_setting");
        assert_null(vgpu_nvml_clocks_event_to_string(0x200));
        assert_null(vgpu_nvml_clocks_event_to_string(0x3));
}

static void append(const char *path, const char *text) {
        FILE *f = fopen(path, "ae");
        assert_non_null(f);
        fputs(text, f);
        assert_int_equal(fclose(f), 0);
}

/* Xid and ECC events through the double: only what is appended after the watcher was made,
 * only for watched GPUs, in order, and nothing (without blocking) when none is pending. */
static void test_nvml_events(void **state) {
        (void) state;
        struct vgpu_host *host = scan("nvidia-mdev", 0);
        char root[] = "/tmp/test-host-XXXXXX", conf[4096], events[4096], src[4096];
        assert_non_null(mkdtemp(root));
        snprintf(src, sizeof(src), "%s/nvidia-mdev/nvml.conf", getenv("FIXTURES"));
        snprintf(conf, sizeof(conf), "%s/nvml.conf", root);
        snprintf(events, sizeof(events), "%s/nvml-events", root);
        FILE *in = fopen(src, "re"), *out = fopen(conf, "we");
        assert_non_null(in);
        assert_non_null(out);
        char line[512];
        while (fgets(line, sizeof(line), in))
                fputs(line, out);
        fclose(in);
        assert_int_equal(fclose(out), 0);
        append(events, "00000000:3B:00.0 xid 13\n"); /* before the watcher: not delivered */
        setenv("VGPU_ROOT", root, 1);

        struct vgpu_error err = {};
        struct vgpu_nvml_events *w = NULL;
        assert_int_equal(vgpu_nvml_events_open(host, &w, &err), 0);
        assert_non_null(w);
        assert_int_equal(vgpu_nvml_events_n_gpus(w), 3);
        struct vgpu_nvml_event *ev = NULL;
        size_t n = 99;
        assert_int_equal(vgpu_nvml_events_read(w, &ev, &n, &err), 0);
        assert_int_equal(n, 0);
        free(ev);

        append(events, "00000000:AF:00.0 xid 79\n0000:5e:00.0 dbe 1\n00000000:04:00.0 xid "
                       "31\n00000000:3B:00.0 sbe 2\n");
        assert_int_equal(vgpu_nvml_events_read(w, &ev, &n, &err), 0);
        assert_int_equal(n, 3); /* 04:00.0 is no GPU NVML knows */
        assert_string_equal(ev[0].bdf, "0000:af:00.0");
        assert_int_equal(ev[0].type, VGPU_NVML_EVENT_XID);
        assert_int_equal(ev[0].data, 79);
        assert_true(ev[0].time_usec > 0);
        assert_string_equal(ev[1].bdf, "0000:5e:00.0");
        assert_int_equal(ev[1].type, VGPU_NVML_EVENT_ECC_DOUBLE_BIT);
        assert_string_equal(ev[2].bdf, "0000:3b:00.0");
        assert_int_equal(ev[2].type, VGPU_NVML_EVENT_ECC_SINGLE_BIT);
        assert_int_equal(ev[2].data, 2);
        free(ev);
        assert_int_equal(vgpu_nvml_events_read(w, &ev, &n, &err), 0);
        assert_int_equal(n, 0); /* each once */
        free(ev);
        vgpu_nvml_events_free(w);
        vgpu_nvml_events_free(NULL);

        unlink(events);
        unlink(conf);
        rmdir(root);
        /* no NVML (no nvml.conf: the double says the driver is not loaded): nothing to watch */
        assert_int_equal(vgpu_nvml_events_open(host, &w, &err), 0);
        assert_null(w);
        vgpu_host_free(host);
}

/* An older driver's NVML (the double built with FAKE_NVML_OLD): no nvmlDeviceGetMemoryInfo_v2,
 * so memory comes from v1 and reserved is unknown; the reasons under their pre-R535 name. */
static void test_nvml_old_driver(void **state) {
        (void) state;
        struct vgpu_host *host = scan("nvidia-mdev", VGPU_SCAN_NVML);
        const struct vgpu_nvml_gpu *n = vgpu_host_find_gpu(host, "0000:3b:00.0")->nvml;
        assert_non_null(n);
        assert_int_equal(n->memory_total, 16106127360ULL);
        assert_int_equal(n->memory_used, 8589934592ULL);
        assert_int_equal(n->memory_reserved, -1);
        assert_true(n->clocks_event_reasons_known);
        assert_int_equal(n->clocks_event_reasons, VGPU_NVML_CLOCKS_EVENT_SW_POWER_CAP);
        assert_int_equal(n->utilization_gpu, 12);
        vgpu_host_free(host);
}

static void test_xid_describe(void **state) {
        (void) state;
        bool critical = false;
        assert_string_equal(vgpu_xid_describe(79, &critical), "GPU has fallen off the bus");
        assert_true(critical);
        assert_string_equal(vgpu_xid_describe(13, &critical), "graphics engine exception");
        assert_false(critical);
        static const unsigned crit[] = { 48, 62, 64, 74, 79, 92, 94, 95, 119, 120, 140 };
        for (size_t i = 0; i < sizeof(crit) / sizeof(crit[0]); i++) {
                critical = false;
                assert_non_null(vgpu_xid_describe(crit[i], &critical));
                assert_true(critical);
        }
        critical = true;
        assert_null(vgpu_xid_describe(9999, &critical));
        assert_false(critical);
        assert_non_null(vgpu_xid_describe(31, NULL));
}

/* A host of only GPUs with these vendor:device ids, as the name lookups see one. */
static struct vgpu_host *host_of_ids(const unsigned (*ids)[2], size_t n) {
        /* a snapshot is more than struct vgpu_host (host-internal.h): vgpu_host_free() frees that */
        struct vgpu_host *h = host_new();
        assert_non_null(h);
        assert_non_null(h->gpus = calloc(n, sizeof(*h->gpus)));
        h->n_gpus = n;
        for (size_t i = 0; i < n; i++) {
                h->gpus[i].vendor_id = (uint16_t) ids[i][0];
                h->gpus[i].device_id = (uint16_t) ids[i][1];
        }
        return h;
}

/*
 * `list` and `show` have the names lspci prints: the one pass over pci.ids gives for every id it
 * finds exactly what libpci gives, on a sample of the installed pci.ids (vendors of all sizes,
 * devices anywhere in a vendor's list), and ids the file lacks go to libpci (its hwdb).
 */
static void test_names_as_libpci(void **state) {
        (void) state;
        FILE *f = fopen("/usr/share/misc/pci.ids", "re");
        if (!f)
                skip();
        static unsigned ids[4000][2];
        size_t n = 0, devices = 0;
        char line[512];
        int vendor = -1;
        while (fgets(line, sizeof(line), f) && n < ELEMENTSOF(ids) - 2) {
                unsigned v;
                /* a vendor: 4 hex digits at the start ("C 03  Display controller" starts the classes) */
                if (strspn(line, "0123456789abcdef") == 4 && sscanf(line, "%4x ", &v) == 1 && line[4] == ' ')
                        vendor = (int) v;
                else if (line[0] != '\t')
                        vendor = -1;
                else if (vendor >= 0 && line[1] != '\t' && sscanf(line + 1, "%4x ", &v) == 1 &&
                         devices++ % 4 == 0) {
                        ids[n][0] = (unsigned) vendor;
                        ids[n++][1] = v;
                }
        }
        fclose(f);
        assert_true(n > 1000);
        /* a device pci.ids does not know, of a vendor it knows */
        ids[n][0] = 0x10de;
        ids[n++][1] = 0xfffe;

        struct vgpu_error err = {};
        struct vgpu_host *fast = host_of_ids(ids, n), *slow = host_of_ids(ids, n);
        bool complete = true;
        assert_int_equal(pci_fill_names_fast(fast, &complete, &err), 0);
        assert_false(complete); /* 10de:fffe */
        size_t found = 0;
        for (size_t i = 0; i < n; i++)
                found += fast->gpus[i].device_name != NULL;
        assert_int_equal(found, n - 1); /* the pass found every other one itself */
        assert_int_equal(pci_fill_names(fast, &err), 0);
        assert_int_equal(pci_fill_names_libpci(slow, &err), 0);
        for (size_t i = 0; i < n; i++) {
                const struct vgpu_gpu *a = &fast->gpus[i], *b = &slow->gpus[i];
                if (!streq_ptr(a->vendor_name, b->vendor_name) || !streq_ptr(a->device_name, b->device_name))
                        fail_msg("%04x:%04x: '%s' '%s' here, libpci '%s' '%s'", ids[i][0], ids[i][1],
                                 strempty(a->vendor_name), strempty(a->device_name), strempty(b->vendor_name),
                                 strempty(b->device_name));
        }
        assert_string_equal(fast->gpus[n - 1].vendor_name, "NVIDIA Corporation");
        vgpu_host_free(fast);
        vgpu_host_free(slow);
}

static void test_scan_flags(void **state) {
        (void) state;
        /* without flags: no types, groups, names, details, instances or NVML */
        struct vgpu_host *host = scan("nvidia-mdev", 0);
        assert_int_equal(host->n_gpus, 4);
        assert_int_equal(host->n_parents, 0);
        assert_int_equal(host->n_groups, 0);
        assert_int_equal(host->n_instances, 0);
        const struct vgpu_gpu *g = vgpu_host_find_gpu(host, "0000:3b:00.0");
        assert_null(g->device_name);
        assert_null(g->nvml);
        assert_int_equal(g->link.width_max, 0);
        assert_int_equal(g->n_bars, 0);
        assert_int_equal(g->iommu_group, -1); /* not asked */
        assert_true(g->mdev_parent);          /* always known */
        assert_null(host->nvml_driver_version);
        vgpu_host_free(host);
}

/*
 * A parents-only scan reads no types; vgpu_parent_pick_type() reads the one parent it is asked
 * about, once (a second read would list its types twice), for mdev and vendor-VFIO parents. What
 * the scan read is kept inside the snapshot, not in the installed structs.
 */
static void test_types_on_demand(void **state) {
        (void) state;
        static const struct {
                const char *fixture, *parent;
        } cases[] = { { "nvidia-mdev", "0000:3b:00.0" }, { "nvidia-sriov-vfio", "0000:41:00.5" } };
        for (size_t c = 0; c < ELEMENTSOF(cases); c++) {
                struct vgpu_host *host = scan(cases[c].fixture, VGPU_SCAN_PARENTS);
                assert_true(host->n_parents > 1);
                for (size_t i = 0; i < host->n_parents; i++)
                        assert_int_equal(host->parents[i].n_types, 0);
                const struct vgpu_parent *p = vgpu_host_find_parent(host, cases[c].parent);
                assert_non_null(p);
                struct vgpu_error err = {};
                const struct vgpu_type *t = NULL;
                int r = vgpu_parent_pick_type(host, p->name, 1, &t, &err);
                assert_true(r == 0 || r == -ENOENT); /* vendor-VFIO: frame buffers known only to NVML */
                size_t n = p->n_types;
                assert_true(n > 0);
                assert_non_null(p->types[0].id);
                assert_non_null(p->types[0].name);
                r = vgpu_parent_pick_type(host, p->name, 1, &t, &err);
                assert_true(r == 0 || r == -ENOENT);
                assert_int_equal(p->n_types, n); /* read once */
                for (size_t i = 0; i < host->n_parents; i++)
                        if (&host->parents[i] != p)
                                assert_int_equal(host->parents[i].n_types, 0);
                vgpu_host_free(host);
        }
}

/* Parents of one device model share their types' static strings (one copy for the host) while
 * each keeps its own count of available instances; each lists them sorted, the others in their
 * reference's order without a sort of their own. */
static void test_types_share_strings(void **state) {
        (void) state;
        struct vgpu_host *host = scan("nvidia-mdev", VGPU_SCAN_TYPES);
        const struct vgpu_parent *a = NULL, *b = NULL;
        for (size_t i = 0; i < host->n_parents && !b; i++)
                for (size_t j = 0; j < i && !b; j++)
                        if (host->parents[i].gpu && host->parents[j].gpu && host->parents[i].n_types > 0 &&
                            host->parents[i].gpu->device_id == host->parents[j].gpu->device_id &&
                            host->parents[i].gpu->subsystem_device_id ==
                                    host->parents[j].gpu->subsystem_device_id)
                                a = &host->parents[j], b = &host->parents[i];
        assert_non_null(b);
        assert_int_equal(a->n_types, b->n_types);
        for (size_t i = 0; i < a->n_types; i++) {
                assert_string_equal(a->types[i].id, b->types[i].id);
                assert_ptr_equal(a->types[i].name, b->types[i].name);
                assert_ptr_equal(a->types[i].description, b->types[i].description);
                assert_string_equal(a->types[i].parent, a->name);
                assert_string_equal(b->types[i].parent, b->name);
                /* sorted by id, whatever order the directory listed them in (hash order here) */
                if (i > 0)
                        assert_true(strverscmp(b->types[i - 1].id, b->types[i].id) < 0);
        }
        vgpu_host_free(host);
}

/* Which registration a parent is (vgpud restores a parent that came back): the inode of its
 * link in /sys/class/mdev_bus, for GPU parents as for virtual ones, whatever the scan reads;
 * vendor-VFIO parents use their nvidia/ directory. (GPU parents on the mdev bus once had 0.) */
static void assert_generation(const struct vgpu_host *host, const char *parent, const char *path_in_root) {
        const struct vgpu_parent *p = vgpu_host_find_parent(host, parent);
        assert_non_null(p);
        assert_non_null(p->gpu);
        char path[PATH_MAX];
        struct stat st;
        snprintf(path, sizeof(path), "%s%s", getenv("VGPU_ROOT"), path_in_root);
        assert_int_equal(lstat(path, &st), 0);
        assert_int_not_equal(p->generation, 0);
        assert_int_equal(p->generation, (uint64_t) st.st_ino);
}

static void test_parent_generation_gpu(void **state) {
        (void) state;
        /* the same with or without the types: the class directory's listing gives it */
        for (int i = 0; i < 2; i++) {
                struct vgpu_host *host = scan("nvidia-mdev", i ? VGPU_SCAN_TYPES : VGPU_SCAN_PARENTS);
                assert_generation(host, "0000:3b:00.0", "/sys/class/mdev_bus/0000:3b:00.0");
                vgpu_host_free(host);
        }
        struct vgpu_host *host;
        host = scan("nvidia-sriov-vfio", VGPU_SCAN_TYPES);
        assert_generation(host, "0000:41:00.4", "/sys/bus/pci/devices/0000:41:00.4/nvidia");
        vgpu_host_free(host);
}

static void test_nvidia_sriov_vfio(void **state) {
        (void) state;
        struct vgpu_host *host = scan("nvidia-sriov-vfio", VGPU_SCAN_ALL);

        const struct vgpu_gpu *pf = vgpu_host_find_gpu(host, "0000:41:00.0");
        assert_non_null(pf);
        assert_true(pf->sriov);
        assert_int_equal(pf->total_vfs, 32);
        assert_int_equal(pf->num_vfs, 4);
        assert_int_equal(pf->n_vfs, 4);
        assert_string_equal(pf->vfs[0], "0000:41:00.4");
        assert_string_equal(pf->vfs[3], "0000:41:00.7");
        assert_true(pf->link.speed_current == 16.0);
        assert_false(pf->nvidia_vfio);

        const struct vgpu_gpu *vf = vgpu_host_find_gpu(host, "0000:41:00.5");
        assert_non_null(vf);
        assert_string_equal(vf->physfn, "0000:41:00.0");
        assert_string_equal(vf->driver, "nvidia");
        assert_int_equal(vf->iommu_group, 10);
        assert_int_equal(vf->numa_node, pf->numa_node); /* a VF sits on its PF */
        assert_true(vf->nvidia_vfio);
        assert_false(vf->mdev_parent);
        assert_int_equal(vf->link.width_max, 0); /* shares the PF's link */

        const struct vgpu_gpu *pf2 = vgpu_host_find_gpu(host, "0000:61:00.0");
        assert_true(pf2->sriov);
        assert_int_equal(pf2->num_vfs, 0);
        /* NVML, persistence and slices are about the PFs */
        assert_int_equal(pf->vendor_id, VGPU_PCI_VENDOR_NVIDIA);
        assert_true(vgpu_gpu_is_nvidia_pf(pf));
        assert_true(vgpu_gpu_is_nvidia_pf(pf2));
        assert_false(vgpu_gpu_is_nvidia_pf(vf));

        /* four vendor-VFIO parents; the busy VF lists no creatable type */
        assert_int_equal(host->n_parents, 4);
        assert_int_equal(vgpu_host_find_parent(host, "0000:41:00.4")->n_types, 0);
        const struct vgpu_type *t = find_type(host, "0000:41:00.5", "1152");
        assert_string_equal(t->name, "NVIDIA L40S-8Q");
        assert_int_equal(t->kind, VGPU_TYPE_NVIDIA_VFIO);
        assert_int_equal(t->available_instances, 1);
        /* not in the driver's text: NVML's nvmlVgpuTypeGetFramebufferSize (the double's nvml.conf) */
        assert_int_equal(t->framebuffer_bytes, 8LL << 30);
        assert_int_equal(t->max_instances, -1);
        assert_string_equal(find_type(host, "0000:41:00.7", "1162")->name, "NVIDIA L40S-8A");

        /* the VF with a type set is an instance without UUID */
        assert_int_equal(host->n_instances, 1);
        assert_string_equal(host->instances[0].uuid, "");
        assert_string_equal(host->instances[0].parent, "0000:41:00.4");
        assert_string_equal(host->instances[0].type, "1152");
        assert_int_equal(host->instances[0].kind, VGPU_TYPE_NVIDIA_VFIO);
        assert_int_equal(host->instances[0].iommu_group, 9);
        vgpu_host_free(host);
}

static void test_amd_mxgpu(void **state) {
        (void) state;
        struct vgpu_host *host = scan("amd-mxgpu", VGPU_SCAN_ALL);
        assert_int_equal(host->n_gpus, 5);
        const struct vgpu_gpu *pf = vgpu_host_find_gpu(host, "0000:03:00.0");
        assert_string_equal(pf->driver, "gim");
        assert_int_equal(pf->vendor_id, VGPU_PCI_VENDOR_AMD);
        assert_false(vgpu_gpu_is_nvidia_pf(pf));
        assert_int_equal(pf->device_id, 0x73a1);
        assert_int_equal(pf->total_vfs, 4);
        assert_int_equal(pf->num_vfs, 4);
        assert_int_equal(pf->hwmon_temp_mc, 38000);
        assert_true(pf->hwmon_crit_mc > pf->hwmon_temp_mc);
        const struct vgpu_gpu *vf = vgpu_host_find_gpu(host, "0000:03:02.3");
        assert_string_equal(vf->driver, "vfio-pci");
        assert_int_equal(vf->device_id, 0x73ae);
        assert_string_equal(vf->physfn, "0000:03:00.0");
        assert_int_equal(host->n_parents, 0);
        assert_int_equal(host->n_instances, 0);
        assert_null(pf->nvml);
        vgpu_host_free(host);
}

static void test_intel_gvtg(void **state) {
        (void) state;
        struct vgpu_host *host = scan("intel-gvtg", VGPU_SCAN_ALL);
        assert_int_equal(host->n_gpus, 1);
        const struct vgpu_parent *p = vgpu_host_find_parent(host, "0000:00:02.0");
        assert_non_null(p);
        assert_string_equal(p->driver, "i915");
        assert_int_equal(p->n_types, 4);
        const struct vgpu_type *t = find_type(host, "0000:00:02.0", "i915-GVTg_V5_4");
        assert_string_equal(t->name, "GVTg_V5_4");
        assert_int_equal(t->framebuffer_bytes, (128LL + 512) << 20); /* low_gm + high_gm */
        assert_int_equal(t->max_instances, -1);
        assert_int_equal(t->available_instances, 4);
        assert_int_equal(find_type(host, "0000:00:02.0", "i915-GVTg_V5_8")->framebuffer_bytes, (64LL + 384)
                                                                                                       << 20);
        assert_int_equal(host->n_instances, 1);
        assert_string_equal(host->instances[0].type, "i915-GVTg_V5_4");
        vgpu_host_free(host);
}

static void test_kernel_samples(void **state) {
        (void) state;
        struct vgpu_host *host = scan("kernel-samples", VGPU_SCAN_ALL);
        assert_int_equal(host->n_gpus, 1);
        assert_string_equal(host->gpus[0].driver, "bochs-drm");
        assert_int_equal(host->gpus[0].iommu_group, -1); /* no IOMMU in this guest */

        assert_int_equal(host->n_parents, 3);
        assert_string_equal(host->parents[0].name, "mbochs");
        assert_string_equal(host->parents[1].name, "mdpy");
        assert_string_equal(host->parents[2].name, "mtty");
        assert_null(host->parents[2].gpu);

        const struct vgpu_type *t = find_type(host, "mtty", "mtty-1");
        assert_string_equal(t->name, "Single port serial");
        assert_null(t->description); /* mtty has no description file */
        assert_int_equal(t->available_instances, 24);
        assert_int_equal(t->framebuffer_bytes, -1);
        assert_int_equal(find_type(host, "mtty", "mtty-2")->available_instances, 12);

        t = find_type(host, "mbochs", "mbochs-small");
        assert_string_equal(t->description, "virtual display, 4 MB video memory");
        assert_int_equal(t->framebuffer_bytes, 4LL << 20);
        assert_int_equal(t->available_instances, 64);
        assert_int_equal(find_type(host, "mbochs", "mbochs-large")->framebuffer_bytes, 64LL << 20);
        assert_int_equal(find_type(host, "mbochs", "mbochs-medium")->available_instances, 16);

        t = find_type(host, "mdpy", "mdpy-hd");
        assert_string_equal(t->description, "virtual display, 1920x1080 framebuffer");
        assert_int_equal(t->framebuffer_bytes, -1); /* resolution, not a size: null */
        assert_int_equal(host->n_instances, 0);
        vgpu_host_free(host);
}

static void test_empty(void **state) {
        (void) state;
        struct vgpu_host *host = scan("empty", VGPU_SCAN_ALL);
        assert_int_equal(host->n_gpus, 0);
        assert_int_equal(host->n_parents, 0);
        assert_int_equal(host->n_instances, 0);
        assert_int_equal(host->n_groups, 0);
        assert_null(vgpu_host_find_gpu(host, "0000:00:02.0"));
        assert_null(vgpu_host_find_group(host, 0));
        vgpu_host_free(host);
}

static void test_missing_root(void **state) {
        (void) state;
        /* a root without /sys at all (a container): an empty host, not an error */
        setenv("VGPU_ROOT", "/nonexistent-vgpu-root", 1);
        struct vgpu_error err = {};
        struct vgpu_host *host = NULL;
        assert_int_equal(vgpu_host_scan(VGPU_SCAN_ALL, &host, &err), 0);
        assert_int_equal(host->n_gpus, 0);
        assert_null(host->kernel_release);
        vgpu_host_free(host);
}

static void test_bdf_normalize(void **state) {
        (void) state;
        char b[VGPU_BDF_MAX];
        assert_int_equal(vgpu_bdf_normalize("3b:00.0", b), 0);
        assert_string_equal(b, "0000:3b:00.0");
        assert_int_equal(vgpu_bdf_normalize("0000:3B:00.1", b), 0);
        assert_string_equal(b, "0000:3b:00.1");
        assert_int_equal(vgpu_bdf_normalize("10000:00:00.0", b), -EINVAL);
        assert_int_equal(vgpu_bdf_normalize("3b:20.0", b), -EINVAL);
        assert_int_equal(vgpu_bdf_normalize("3b:00.8", b), -EINVAL);
        assert_int_equal(vgpu_bdf_normalize("mdpy", b), -EINVAL);
        assert_int_equal(vgpu_bdf_normalize("3b:00", b), -EINVAL);
        assert_int_equal(vgpu_bdf_normalize("3b.00.0", b), -EINVAL);
        assert_int_equal(vgpu_bdf_normalize("0:0:3b:00.0", b), -EINVAL);
        assert_int_equal(vgpu_bdf_normalize("", b), -EINVAL);
        assert_int_equal(vgpu_bdf_normalize("3b:00.0x", b), -EINVAL);
}

int main(int argc, char *argv[]) {
        if (argc > 1 && strcmp(argv[1], "--nvml-old") == 0) {
                const struct CMUnitTest old[] = { cmocka_unit_test(test_nvml_old_driver) };
                return cmocka_run_group_tests(old, NULL, NULL);
        }
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_nvidia_mdev),
                cmocka_unit_test(test_scan_flags),
                cmocka_unit_test(test_types_on_demand),
                cmocka_unit_test(test_types_share_strings),
                cmocka_unit_test(test_parent_generation_gpu),
                cmocka_unit_test(test_names_as_libpci),
                cmocka_unit_test(test_nvml_readings),
                cmocka_unit_test(test_nvml_events),
                cmocka_unit_test(test_xid_describe),
                cmocka_unit_test(test_nvidia_sriov_vfio),
                cmocka_unit_test(test_amd_mxgpu),
                cmocka_unit_test(test_intel_gvtg),
                cmocka_unit_test(test_kernel_samples),
                cmocka_unit_test(test_empty),
                cmocka_unit_test(test_missing_root),
                cmocka_unit_test(test_bdf_normalize),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
