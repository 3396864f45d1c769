/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * test-backend.c — the vendor backends (lib/backend) one by one, on the text each vendor's driver
 * writes: which backend owns which driver, sizes with units, each describe_type on its vendor's
 * type descriptions (values read, and -1 where the text does not say: never a guess), and
 * NVIDIA's creatable_vgpu_types list on a scratch sysfs directory. The same parsing through a
 * whole host scan, on fixture hosts, is in test-host.c.
 */
#include "test-util.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/backend.h"

static void test_backend_for_driver(void **state) {
        (void) state;
        assert_ptr_equal(backend_for_driver("nvidia"), &backend_nvidia);
        assert_ptr_equal(backend_for_driver("gim"), &backend_amd);
        assert_ptr_equal(backend_for_driver("amdgpu"), &backend_amd);
        assert_ptr_equal(backend_for_driver("i915"), &backend_intel);
        assert_ptr_equal(backend_for_driver("xe"), &backend_intel);
        /* everything else, and a virtual parent, falls back to the kernel's mdev ABI */
        assert_ptr_equal(backend_for_driver("mbochs"), &backend_mdev);
        assert_ptr_equal(backend_for_driver("nvidia_vgpu_vfio"), &backend_mdev);
        assert_ptr_equal(backend_for_driver("Nvidia"), &backend_mdev);
        assert_ptr_equal(backend_for_driver(""), &backend_mdev);
        assert_ptr_equal(backend_for_driver(NULL), &backend_mdev);
        assert_string_equal(backend_nvidia.name, "nvidia");
        assert_string_equal(backend_mdev.name, "mdev");
        /* only NVIDIA offers types outside the mdev ABI */
        assert_non_null(backend_nvidia.list_vfio_types);
        assert_null(backend_amd.list_vfio_types);
        assert_null(backend_intel.list_vfio_types);
        assert_null(backend_mdev.list_vfio_types);
}

static void test_parse_size_with_unit(void **state) {
        (void) state;
        assert_int_equal(parse_size_with_unit("2048M"), 2048LL << 20);
        assert_int_equal(parse_size_with_unit("4G"), 4LL << 30);
        assert_int_equal(parse_size_with_unit("512K"), 512LL << 10);
        assert_int_equal(parse_size_with_unit("128MB"), 128LL << 20);
        assert_int_equal(parse_size_with_unit("16 MB video memory"), 16LL << 20);
        assert_int_equal(parse_size_with_unit("1g"), 1LL << 30);
        assert_int_equal(parse_size_with_unit("0M"), 0);
        /* a bare number has no unit to trust, and nothing else is a size */
        assert_int_equal(parse_size_with_unit("2048"), -1);
        assert_int_equal(parse_size_with_unit("2048T"), -1);
        assert_int_equal(parse_size_with_unit("M"), -1);
        assert_int_equal(parse_size_with_unit(" 4G"), -1);
        assert_int_equal(parse_size_with_unit("-4G"), -1);
        assert_int_equal(parse_size_with_unit(""), -1);
        assert_int_equal(parse_size_with_unit(NULL), -1);
        /* no overflow into a negative or wrapped size */
        assert_int_equal(parse_size_with_unit("9000000000000G"), -1);
        assert_int_equal(parse_size_with_unit("8589934591G"), 8589934591LL << 30);
}

/* describe_type of backend be on description desc (name unused by the parsers): the result */
static struct vgpu_type describe(const struct vgpu_backend *be, const char *desc) {
        struct vgpu_type t = {
                .name = (char *) "x",
                .description = (char *) desc,
                .framebuffer_bytes = -1,
                .max_instances = -1,
        };
        be->describe_type(&t);
        return t;
}

static void test_nvidia_describe(void **state) {
        (void) state;
        /* as the vGPU host driver writes it */
        struct vgpu_type t = describe(&backend_nvidia, "num_heads=4, frl_config=60, framebuffer=2048M, "
                                                       "max_resolution=5120x2880, max_instance=8");
        assert_int_equal(t.framebuffer_bytes, 2048LL << 20);
        assert_int_equal(t.max_instances, 8);
        /* the keys in any order, without the spaces */
        t = describe(&backend_nvidia, "max_instance=1,framebuffer=16384M,num_heads=1");
        assert_int_equal(t.framebuffer_bytes, 16LL << 30);
        assert_int_equal(t.max_instances, 1);
        /* a key only counts whole: "xframebuffer" and "max_instances" are other keys */
        t = describe(&backend_nvidia, "xframebuffer=1024M, max_instances=4");
        assert_int_equal(t.framebuffer_bytes, -1);
        assert_int_equal(t.max_instances, -1);
        /* and a longer key that starts like one does not hide the real one after it */
        t = describe(&backend_nvidia, "framebuffer_reservation=128M, framebuffer=2048M, max_instance_x=2, "
                                      "max_instance=8");
        assert_int_equal(t.framebuffer_bytes, 2048LL << 20);
        assert_int_equal(t.max_instances, 8);
        /* values it cannot read stay unknown */
        t = describe(&backend_nvidia, "framebuffer=lots, max_instance=many");
        assert_int_equal(t.framebuffer_bytes, -1);
        assert_int_equal(t.max_instances, -1);
        t = describe(&backend_nvidia, "framebuffer=1024, max_instance=");
        assert_int_equal(t.framebuffer_bytes, -1); /* no unit */
        assert_int_equal(t.max_instances, -1);
        t = describe(&backend_nvidia, "");
        assert_int_equal(t.framebuffer_bytes, -1);
        t = describe(&backend_nvidia, NULL);
        assert_int_equal(t.framebuffer_bytes, -1);
        assert_int_equal(t.max_instances, -1);
}

static void test_intel_describe(void **state) {
        (void) state;
        /* GVT-g: graphics memory is the low (aperture) plus the high (hidden) part */
        struct vgpu_type t = describe(&backend_intel, "low_gm_size: 128MB\nhigh_gm_size: 512MB\nfence: 4\n"
                                                      "resolution: 1920x1200\nweight: 4\n");
        assert_int_equal(t.framebuffer_bytes, (128LL + 512) << 20);
        assert_int_equal(t.max_instances, -1); /* GVT-g says no per-type limit in the text */
        t = describe(&backend_intel, "low_gm_size: 64MB\nhigh_gm_size: 384MB\n");
        assert_int_equal(t.framebuffer_bytes, (64LL + 384) << 20);
        /* one half alone is no size */
        t = describe(&backend_intel, "low_gm_size: 128MB\nfence: 4\n");
        assert_int_equal(t.framebuffer_bytes, -1);
        t = describe(&backend_intel, "low_gm_size: 128MB\nhigh_gm_size: big\n");
        assert_int_equal(t.framebuffer_bytes, -1);
        t = describe(&backend_intel, NULL);
        assert_int_equal(t.framebuffer_bytes, -1);
}

static void test_amd_and_mdev_describe(void **state) {
        (void) state;
        /* MxGPU has no mdev types: whatever a description says, nothing is read */
        struct vgpu_type t = describe(&backend_amd, "framebuffer=2048M, max_instance=8");
        assert_int_equal(t.framebuffer_bytes, -1);
        assert_int_equal(t.max_instances, -1);
        /* the kernel's samples: mbochs says its size in prose; mdpy and mtty do not */
        t = describe(&backend_mdev, "virtual display, 16 MB video memory");
        assert_int_equal(t.framebuffer_bytes, 16LL << 20);
        t = describe(&backend_mdev, "virtual display, 64 MB video memory");
        assert_int_equal(t.framebuffer_bytes, 64LL << 20);
        t = describe(&backend_mdev, "virtual display, 1024x768");
        assert_int_equal(t.framebuffer_bytes, -1);
        t = describe(&backend_mdev, " MB video memory");
        assert_int_equal(t.framebuffer_bytes, -1);
        t = describe(&backend_mdev, NULL);
        assert_int_equal(t.framebuffer_bytes, -1);
        assert_int_equal(t.max_instances, -1);
}

/* nvidia/creatable_vgpu_types of a vendor-VFIO VF: the header and noise skipped, each line a type */
static void test_nvidia_vfio_types(void **state) {
        (void) state;
        char dir[64] = "/tmp/test-backend-XXXXXX";
        assert_non_null(mkdtemp(dir));
        int devfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(devfd >= 0);

        /* no nvidia/ directory at all: not a vendor-VFIO VF, no types, no error */
        struct vgpu_parent p = { .name = (char *) "0000:41:00.4" };
        assert_int_equal(backend_nvidia.list_vfio_types(devfd, &p), 0);
        assert_int_equal(p.n_types, 0);

        assert_int_equal(mkdirat(devfd, "nvidia", 0755), 0);
        int fd = openat(devfd, "nvidia/creatable_vgpu_types", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        const char *text = "ID    : vGPU Name\n"
                           "1155  : NVIDIA L40S-1Q\n"
                           "garbage line\n"
                           "1162  : NVIDIA L40S-8Q   \n"
                           "\n"
                           "1171:NVIDIA L40S-48C\n";
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        close(fd);
        assert_int_equal(backend_nvidia.list_vfio_types(devfd, &p), 3);
        assert_int_equal(p.n_types, 3);
        const char *ids[] = { "1155", "1162", "1171" };
        const char *names[] = { "NVIDIA L40S-1Q", "NVIDIA L40S-8Q", "NVIDIA L40S-48C" };
        for (size_t i = 0; i < 3; i++) {
                const struct vgpu_type *t = &p.types[i];
                assert_string_equal(t->id, ids[i]);
                assert_string_equal(t->name, names[i]);
                assert_ptr_equal(t->parent, p.name);
                assert_string_equal(t->device_api, "vfio-pci");
                assert_int_equal(t->kind, VGPU_TYPE_NVIDIA_VFIO);
                assert_int_equal(t->available_instances, 1); /* a VF hosts one vGPU */
                assert_int_equal(t->framebuffer_bytes, -1);  /* NVML says, not this list */
                assert_int_equal(t->max_instances, -1);
                free(t->id);
                free(t->name);
                free(t->device_api);
        }
        free(p.types);

        /* a VF that already has a type lists only the header: none */
        struct vgpu_parent busy = { .name = (char *) "0000:41:00.5" };
        fd = openat(devfd, "nvidia/creatable_vgpu_types", O_WRONLY | O_TRUNC | O_CLOEXEC);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, "ID    : vGPU Name\n", 18), 18);
        close(fd);
        assert_int_equal(backend_nvidia.list_vfio_types(devfd, &busy), 0);
        assert_int_equal(busy.n_types, 0);
        free(busy.types);
        close(devfd);
        rm_rf(dir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_backend_for_driver),    cmocka_unit_test(test_parse_size_with_unit),
                cmocka_unit_test(test_nvidia_describe),       cmocka_unit_test(test_intel_describe),
                cmocka_unit_test(test_amd_and_mdev_describe), cmocka_unit_test(test_nvidia_vfio_types),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
