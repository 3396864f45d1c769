/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cdi.c — the CDI spec (/etc/cdi/vgpuctl.yaml) that hands software slices to containers:
 * `podman run --device vgpuctl.io/slice=NAME` gets the slice's environment, device nodes, its
 * own region and its GPU's scheduler (nothing of another slice), and the driver's libraries. Written from what the regions hold, never from what was
 * asked, so it lists exactly the slices that exist; at the lowest CDI version its contents need,
 * so that engines with older CDI libraries read it.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "basic/error-util.h"
#include "basic/fileio.h"
#include "basic/macro.h"
#include "basic/root.h"
#include "manage.h"
#include "slice.h"
#include "vgpu/slice.h"

#define CDI_DRIVER_LIBDIR "/usr/local/nvidia/lib64"

/* The NVIDIA device node minor of a GPU, from the driver's /proc file; -1 unknown. */
static int nvidia_minor(const char *bdf) {
        char path[256], buf[4096];
        snprintf(path, sizeof(path), "/proc/driver/nvidia/gpus/%s/information", bdf);
        if (root_read(path, buf, sizeof(buf)) < 0)
                return -1;
        const char *p = strstr(buf, "Device Minor:");
        return p ? atoi(p + strlen("Device Minor:")) : -1;
}

/* CDI's versions by what they added: 0.3.0 has everything this spec writes but device names
 * that start with a digit (0.5.0). Nothing here needs 0.6.0 (annotations, dots in the class). */
static const char *cdi_version(bool digit_first) {
        return digit_first ? "0.5.0" : "0.3.0";
}

/* What every slice's container gets once, whichever slices it asks for: the driver's
 * user-space libraries, read-only, in /usr/local/nvidia/lib64, the directory NVIDIA's CUDA
 * images search (their LD_LIBRARY_PATH and /etc/ld.so.conf.d/nvidia.conf) whatever their
 * distribution's library directory; then --device vgpuctl.io/slice=NAME alone runs CUDA. */
static int driver_edits(FILE *f) {
        _cleanup_free_ struct cdi_library *libs = NULL;
        size_t n = 0;
        int r = cdi_driver_libraries(&libs, &n);
        if (r == -ENOMEM)
                return r;
        if (r < 0 || n == 0)
                return 0; /* an unreadable cache hides no slice: they get no libraries */
        /* the host path under VGPU_ROOT: that is where the library was found (a test's tree) */
        fputs("containerEdits:\n  mounts:\n", f);
        for (size_t i = 0; i < n; i++)
                fprintf(f,
                        "    - hostPath: \"%s%s\"\n      containerPath: \"" CDI_DRIVER_LIBDIR "/%s\"\n"
                        "      options: [\"ro\", \"nosuid\", \"nodev\", \"bind\"]\n",
                        root_prefix(), libs[i].host_path, libs[i].soname);
        return 0;
}

/* The CDI spec for the usable slices, leaving out the slice named `without` (may be NULL): a
 * destroy builds the spec before it removes anything, so running out of memory for it changes
 * nothing. Each device mounts its slice's own region and its GPU's scheduler, nothing of the
 * other slices (slice/slice-shm.h). */
int cdi_text(const char *without, char **ret, size_t *ret_size, struct vgpu_error *err) {
        struct slice_view v = {};
        int r = slice_view_read(&v, err);
        if (r < 0)
                return r;
        /* the devices first: the version the spec declares depends on their names */
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        if (!f) {
                slice_view_free(&v);
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        }
        size_t count = 0;
        bool digit_first = false;
        bool uvm_tools = root_access("/dev/nvidia-uvm-tools", F_OK) == 0;
        /* by name, not by slot: the same slices give the same spec, whatever order they were
         * made in (a restore after a reboot rewrites it identically) */
        for (size_t i = 0; i < v.n; i++) {
                const struct vgpu_slice_spec *s = &v.slices[i].spec;
                /* a name CDI refuses (made by an older vgpuctl) would make the whole spec
                 * unloadable, every other slice with it: that one slice is left out */
                if (streq(s->name, without) || !slice_name_is_valid(s->name))
                        continue;
                count++;
                digit_first = digit_first || isdigit((unsigned char) s->name[0]);
                char own[128], sched[128];
                slice_path(s->name, own, sizeof(own));
                sched_path(s->gpu, sched, sizeof(sched));
                int minor = nvidia_minor(s->gpu);
                fprintf(f,
                        "  - name: \"%s\"\n    containerEdits:\n      env:\n"
                        "        - \"VGPU_SLICE=%s\"\n        - \"VGPU_SLICE_SHM=%s\"\n        - "
                        "\"VGPU_SLICE_SCHED=%s\"\n"
                        "        - \"LD_PRELOAD=%s\"\n      deviceNodes:\n",
                        s->name, s->name, own, sched, VGPU_SHIM_PATH);
                if (minor >= 0)
                        fprintf(f, "        - path: \"/dev/nvidia%d\"\n", minor);
                fputs("        - path: \"/dev/nvidiactl\"\n        - path: \"/dev/nvidia-uvm\"\n", f);
                /* profilers need it; the driver makes it with nvidia-uvm, when it does */
                if (uvm_tools)
                        fputs("        - path: \"/dev/nvidia-uvm-tools\"\n", f);
                fprintf(f,
                        "      mounts:\n"
                        "        - hostPath: \"%s\"\n          containerPath: \"%s\"\n          options: "
                        "[\"bind\", \"rw\"]\n"
                        "        - hostPath: \"%s\"\n          containerPath: \"%s\"\n          options: "
                        "[\"bind\", \"rw\"]\n"
                        "        - hostPath: \"%s\"\n          containerPath: \"%s\"\n          options: "
                        "[\"bind\", \"ro\"]\n",
                        own, own, sched, sched, VGPU_SHIM_PATH, VGPU_SHIM_PATH);
        }
        slice_view_free(&v);
        if (count == 0)
                fputs("  []\n", f);
        else if ((r = driver_edits(f)) < 0) {
                fclose(f);
                free(text);
                return vgpu_error_set(err, r, "out of memory");
        }
        if (fclose(f) != 0) {
                free(text);
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        }
        /* the lowest version that has what the spec uses: container engines refuse a spec newer
         * than their CDI library (Debian 12's podman 4.3.1 reads 0.1.0 to 0.5.0 only) */
        char *spec = NULL;
        int n = asprintf(&spec,
                         "# Written by vgpuctl: one CDI device per software vGPU slice.\n"
                         "# podman run --device vgpuctl.io/slice=NAME ...\n"
                         "cdiVersion: \"%s\"\nkind: vgpuctl.io/slice\ndevices:\n%s",
                         cdi_version(digit_first), text);
        free(text);
        if (n < 0)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        *ret = spec;
        *ret_size = (size_t) n;
        return 0;
}

int cdi_write(const char *text, size_t size, struct vgpu_error *err) {
        int r = write_file_atomic(VGPU_CDI_SPEC, text, size, 0644);
        return r < 0 ? vgpu_error_set_errno(err, r, "writing %s%s", root_prefix(), VGPU_CDI_SPEC) : 0;
}

/* Rewrite the CDI spec from what the regions hold (atomic; removed when there is no slice). */
int write_cdi(struct vgpu_error *err) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        int r = cdi_text(NULL, &text, &size, err);
        return r < 0 ? r : cdi_write(text, size, err);
}
