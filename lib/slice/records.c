/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * records.c — the persistent side of slices: /var/lib/vgpuctl/slices/NAME.json, one per slice,
 *     { "name": "alice", "gpu": "0000:3b:00.0", "memory_bytes": 67108864, "share_percent": 30,
 *       "policy": "fixed-share", "scrub": "on-free" }
 * with the names and nulls (no quota, no share) of the slice objects of `vgpuctl --json`;
 * records of versions before that, "memory" and "share" with 0 for none, are read as well,
 * so the slices they describe still come back after an upgrade. Written atomically (basic/fileio.c) under the host lock by whoever creates the slice, removed
 * by whoever removes it. JSON like mdevctl's definitions, which sit beside them in an admin's
 * backups; read with json-c. A record that does not parse is reported and skipped.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "basic/error-util.h"
#include "basic/fileio.h"
#include "basic/macro.h"
#include "basic/root.h"
#include "manage.h"
#include "slice.h"
#include "vgpu/host.h"

static int record_path(const char *name, char *buf, size_t size) {
        if (!slice_name_is_valid(name))
                return -EINVAL;
        snprintf(buf, size, VGPU_SLICE_RECORD_DIR "/%s.json", name);
        return 0;
}

int slice_record_write(const struct vgpu_slice_spec *spec) {
        char path[256];
        int r = record_path(spec->name, path, sizeof(path));
        if (r < 0)
                return r;
        json_object *o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        json_object_object_add(o, "name", json_object_new_string(spec->name));
        json_object_object_add(o, "gpu", json_object_new_string(spec->gpu));
        json_object_object_add(o, "memory_bytes", spec->memory ? json_object_new_uint64(spec->memory) : NULL);
        json_object_object_add(o, "share_percent",
                               spec->share ? json_object_new_int((int) spec->share) : NULL);
        json_object_object_add(o, "policy",
                               json_object_new_string(vgpu_slice_policy_to_string(spec->policy)));
        json_object_object_add(o, "scrub", json_object_new_string(vgpu_slice_scrub_to_string(spec->scrub)));
        const char *text =
                json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED);
        _cleanup_free_ char *with_nl = NULL;
        r = text && asprintf(&with_nl, "%s\n", text) >= 0
                    ? write_file_atomic(path, with_nl, strlen(with_nl), 0644)
                    : -ENOMEM;
        json_object_put(o);
        return r;
}

int slice_record_text(const char *name, char **ret) {
        char path[256], full[4096], text[4096];
        int r = record_path(name, path, sizeof(path));
        if (r < 0 || (r = root_path(full, sizeof(full), path)) < 0)
                return r;
        /* as it is, byte for byte (root_read() trims the newline) */
        FILE *f = fopen(full, "re");
        if (!f && errno == ENOENT) {
                *ret = NULL;
                return 0;
        }
        if (!f)
                return -errno;
        size_t n = fread(text, 1, sizeof(text) - 1, f);
        r = ferror(f) ? -EIO : !feof(f) ? -EFBIG : 0;
        fclose(f);
        if (r < 0)
                return r;
        text[n] = '\0';
        return (*ret = strdup(text)) ? 0 : -ENOMEM;
}

int slice_record_put(const char *name, const char *text) {
        char path[256];
        int r = record_path(name, path, sizeof(path));
        return r < 0 ? r : write_file_atomic(path, text, strlen(text), 0644);
}

bool slice_record_exists(const char *name) {
        char path[256];
        return record_path(name, path, sizeof(path)) >= 0 && root_access(path, F_OK) >= 0;
}

int slice_record_remove(const char *name) {
        char path[256], full[4096];
        int r = record_path(name, path, sizeof(path));
        if (r < 0 || (r = root_path(full, sizeof(full), path)) < 0)
                return r;
        return unlink(full) < 0 && errno != ENOENT ? -errno : 0;
}

static const char *get_string(json_object *root, const char *key) {
        json_object *v;
        return json_object_object_get_ex(root, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}

/* One record's text into s; on failure *why says what is wrong. */
static int record_parse(const char *text, const char *file_name, struct vgpu_slice_spec *s,
                        const char **why) {
        json_object *root = json_tokener_parse(text), *v;
        int r = -EBADMSG;
        const char *name = get_string(root, "name"), *gpu = get_string(root, "gpu");
        const char *policy = get_string(root, "policy"), *scrub = get_string(root, "scrub");
        char bdf[VGPU_BDF_MAX];
        *s = (struct vgpu_slice_spec){};
        if (!root || !json_object_is_type(root, json_type_object))
                *why = "not a JSON object";
        else if (!name || !slice_name_is_valid(name) || strlen(file_name) != strlen(name) + 5 ||
                 strncmp(file_name, name, strlen(name)) != 0)
                *why = "field \"name\" missing, not a slice name, or not the file's name";
        else if (!gpu || vgpu_bdf_normalize(gpu, bdf) < 0)
                *why = "field \"gpu\" is not a PCI address";
        else if (vgpu_slice_policy_from_string(policy, &s->policy) < 0 ||
                 vgpu_slice_scrub_from_string(scrub, &s->scrub) < 0)
                *why = "field \"policy\" or \"scrub\" missing or unknown";
        else {
                snprintf(s->name, sizeof(s->name), "%s", name);
                snprintf(s->gpu, sizeof(s->gpu), "%s", bdf);
                /* this version's names, else the older records' ("memory", "share": 0 for none) */
                if (json_object_object_get_ex(root, "memory_bytes", &v) ||
                    json_object_object_get_ex(root, "memory", &v))
                        s->memory = json_object_get_uint64(v);
                if (json_object_object_get_ex(root, "share_percent", &v) ||
                    json_object_object_get_ex(root, "share", &v))
                        s->share = (unsigned) json_object_get_int(v);
                r = s->share <= 100 ? 0 : (*why = "field \"share_percent\" above 100", -EBADMSG);
        }
        json_object_put(root);
        return r;
}

static int cmp_name(const void *a, const void *b) {
        return strcmp(((const struct vgpu_slice_spec *) a)->name, ((const struct vgpu_slice_spec *) b)->name);
}

int slice_records_read(struct vgpu_slice_spec **ret, size_t *ret_n, char **ret_bad, struct vgpu_error *err) {
        char dir[4096];
        int r = root_path(dir, sizeof(dir), VGPU_SLICE_RECORD_DIR);
        if (r < 0)
                return vgpu_error_set(err, r, "%s: bad path", VGPU_SLICE_RECORD_DIR);
        struct vgpu_slice_spec *out = NULL;
        size_t n = 0, allocated = 0;
        char *bad = NULL;
        size_t bad_size = 0;
        FILE *w = ret_bad ? open_memstream(&bad, &bad_size) : NULL;
        /* without the stream, bad records would go unreported (and a restore call it a success) */
        if (ret_bad && !w)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        DIR *d = opendir(dir);
        if (!d && errno != ENOENT) {
                r = vgpu_error_set_errno(err, -errno, "%s", dir);
                goto out;
        }
        struct dirent *de;
        while (d && (de = readdir(d))) {
                size_t len = strlen(de->d_name);
                /* write_file_atomic()'s temporary files end in .XXXXXX; a record named .hidden.json or
                 * ...json (older versions took such names) is reported below, not silently skipped */
                if (len < 6 || strcmp(de->d_name + len - 5, ".json") != 0)
                        continue;
                char path[4096 + 300], text[4096];
                snprintf(path, sizeof(path), VGPU_SLICE_RECORD_DIR "/%s", de->d_name);
                const char *why = NULL;
                struct vgpu_slice_spec s;
                if (root_read(path, text, sizeof(text)) < 0)
                        why = "cannot be read";
                else if (record_parse(text, de->d_name, &s, &why) == 0) {
                        if (!GREEDY_REALLOC(out, allocated, n + 1)) {
                                r = vgpu_error_set(err, -ENOMEM, "out of memory");
                                goto out;
                        }
                        out[n++] = s;
                        continue;
                }
                if (w)
                        fprintf(w, "%s%s: %s; skipped\n", root_prefix(), path, why);
        }
        qsort_safe(out, n, sizeof(*out), cmp_name);
        r = 0;
out:
        if (d)
                closedir(d);
        if (w)
                fclose(w);
        if (r < 0) {
                free(out);
                free(bad);
                return r;
        }
        *ret = out;
        *ret_n = n;
        if (ret_bad)
                *ret_bad = bad_size ? bad : (free(bad), NULL);
        return 0;
}
