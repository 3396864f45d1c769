/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-slices.c — libFuzzer harness for the slice records, /var/lib/vgpuctl/slices/NAME.json
 * (lib/slice/records.c), which `apply --restore` and vgpud read back at boot to recreate the
 * slices. Input: "NAME\n" (the record's file name without .json) then the file's text. The
 * record is written under a temporary VGPU_ROOT and read with slice_records_read(), as
 * vgpu_slice_restore() does: directory walk, read, parse, checks.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "slice/manage.h"
#include "slice/slice.h"
#include "vgpu/host.h"

static char dir[4096];

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void) argc, (void) argv;
        static char root[] = "/tmp/vgpu-fuzz-slices.XXXXXX";
        if (!mkdtemp(root))
                abort();
        setenv("VGPU_ROOT", root, 1);
        snprintf(dir, sizeof(dir), "%s/var/lib/vgpuctl/slices", root);
        char cmd[4200];
        snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", dir);
        if (system(cmd) != 0)
                abort();
        return 0;
}

/* A name readdir() can return, as the record directory's entries have. */
static bool file_name_ok(const uint8_t *s, size_t n) {
        if (n == 0 || n > 200)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-", s[i]) ||
                    s[i] == '\0')
                        return false;
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *nl = memchr(data, '\n', size);
        if (!nl || !file_name_ok(data, (size_t) (nl - data)))
                return 0;
        char path[4400];
        snprintf(path, sizeof(path), "%s/%.*s.json", dir, (int) (nl - data), (const char *) data);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                abort();
        size_t len = size - (size_t) (nl + 1 - data);
        if (write(fd, nl + 1, len) != (ssize_t) len)
                abort();
        close(fd);

        struct vgpu_slice_spec *rec = NULL;
        size_t n = 0;
        char *bad = NULL;
        struct vgpu_error err = {};
        if (slice_records_read(&rec, &n, &bad, &err) < 0)
                abort();
        /* the record is either taken, as something restore can recreate, or named as skipped */
        if (n + !!bad != 1 && !(n == 0 && !bad && data[0] == '.'))
                abort();
        for (size_t i = 0; i < n; i++) {
                char bdf[VGPU_BDF_MAX];
                if (!slice_name_is_valid(rec[i].name) || vgpu_bdf_normalize(rec[i].gpu, bdf) < 0 ||
                    strcmp(bdf, rec[i].gpu) != 0 || !vgpu_slice_policy_to_string(rec[i].policy) ||
                    !vgpu_slice_scrub_to_string(rec[i].scrub) || rec[i].share > 100)
                        abort();
        }
        free(rec);
        free(bad);
        unlink(path);
        return 0;
}
