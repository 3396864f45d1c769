/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * regions.c — the files of /run/vgpuctl/slices as the admin tools see them: NAME.slice per slice
 * and BDF.shm per GPU (slice/slice-shm.h). They are read with pread(), never mapped (a tenant
 * may truncate its own file at any moment, and vgpud must not die of it), checked against each
 * other, and what is wrong is named; a GPU whose files are wrong is rebuilt from the records,
 * which tenants cannot reach.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/error-util.h"
#include "basic/fileio.h"
#include "basic/macro.h"
#include "basic/root.h"
#include "manage.h"
#include "slice.h"
#include "vgpu/host.h"

void sched_path(const char *bdf, char *buf, size_t size) {
        snprintf(buf, size, VGPU_SLICE_DIR "/%s.shm", bdf);
}

void slice_path(const char *name, char *buf, size_t size) {
        snprintf(buf, size, VGPU_SLICE_DIR "/%s.slice", name);
}

/* Append "; what" to *problems. -ENOMEM or 0. */
static int add_problem(char **problems, const char *fmt, ...) _printf_(2, 3);
static int add_problem(char **problems, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        char *what = NULL;
        int n = vasprintf(&what, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -ENOMEM;
        char *joined = NULL;
        n = *problems ? asprintf(&joined, "%s; %s", *problems, what) : asprintf(&joined, "%s", what);
        free(what);
        if (n < 0)
                return -ENOMEM;
        free(*problems);
        *problems = joined;
        return 0;
}

static int add_bad_gpu(struct slice_view *v, const char *bdf) {
        for (size_t i = 0; i < v->n_bad; i++)
                if (streq(v->bad_gpus[i], bdf))
                        return 0;
        if (!GREEDY_REALLOC(v->bad_gpus, v->bad_allocated, v->n_bad + 1))
                return -ENOMEM;
        snprintf(v->bad_gpus[v->n_bad++], VGPU_BDF_MAX, "%s", bdf);
        return 0;
}

/* The names in the directory that end in suffix, without it. */
static int dir_names(const char *suffix, char (**ret)[SLICE_NAME_MAX], size_t *ret_n) {
        char full[4096];
        int r = root_path(full, sizeof(full), VGPU_SLICE_DIR);
        if (r < 0)
                return r;
        *ret = NULL;
        *ret_n = 0;
        DIR *d = opendir(full);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        size_t allocated = 0, k = strlen(suffix);
        struct dirent *de;
        while ((de = readdir(d))) {
                size_t n = strlen(de->d_name);
                if (n <= k || strcmp(de->d_name + n - k, suffix) != 0 || n - k >= SLICE_NAME_MAX)
                        continue;
                if (!GREEDY_REALLOC(*ret, allocated, *ret_n + 1)) {
                        closedir(d);
                        free(*ret);
                        *ret = NULL;
                        return -ENOMEM;
                }
                memcpy((*ret)[*ret_n], de->d_name, n - k);
                (*ret)[(*ret_n)++][n - k] = '\0';
        }
        closedir(d);
        return 0;
}

int slice_read_sched(const char *bdf, struct slice_shm *ret, struct vgpu_error *err) {
        char path[128], full[4096];
        sched_path(bdf, path, sizeof(path));
        int r = root_path(full, sizeof(full), path);
        if (r < 0)
                return vgpu_error_set(err, r, "%s: bad path", path);
        _cleanup_sched_file_ struct slice_sched_file *f = NULL;
        r = slice_sched_file_open(full, &f, err);
        return r < 0 ? r : slice_sched_file_read(f, ret, err);
}

int slice_read(const char *name, struct slice_file *ret, struct vgpu_error *err) {
        char path[128], full[4096];
        slice_path(name, path, sizeof(path));
        int r = root_path(full, sizeof(full), path);
        return r < 0 ? vgpu_error_set(err, r, "%s: bad path", path) : slice_region_read(full, ret, err);
}

void slice_view_free(struct slice_view *v) {
        free(v->slices);
        free(v->problems);
        free(v->bad_gpus);
        free(v->bad_names);
        *v = (struct slice_view){};
}

static int cmp_status(const void *a, const void *b) {
        const struct vgpu_slice_status *x = a, *y = b;
        int c = strcmp(x->spec.gpu, y->spec.gpu);
        return c ? c : strcmp(x->spec.name, y->spec.name);
}

struct gpu_sched {
        char bdf[VGPU_BDF_MAX];
        bool ok;
        bool claimed[SLICE_MAX]; /* slots a slice file points at */
        struct slice_shm state;
};

static int view_slice(struct slice_view *v, const char *name, struct gpu_sched *gpus, size_t n_gpus,
                      size_t *allocated) {
        struct slice_file f;
        struct vgpu_error why = {};
        char path[128];
        slice_path(name, path, sizeof(path));
        int r = slice_read(name, &f, &why);
        if (r == -ENOMEM)
                return r;
        if (r >= 0 && !streq(f.slice.name, name))
                r = vgpu_error_set(&why, -EPROTO, "%s%s: corrupt slice region: it holds slice %s",
                                   root_prefix(), path, f.slice.name);
        if (r < 0) {
                /* its GPU is unknown here: the repair takes it from the record */
                if (add_problem(&v->problems, "%s", why.message) < 0 ||
                    !GREEDY_REALLOC(v->bad_names, v->bad_names_allocated, v->n_bad_names + 1))
                        return -ENOMEM;
                snprintf(v->bad_names[v->n_bad_names++], SLICE_NAME_MAX, "%s", name);
                return 0;
        }
        struct gpu_sched *g = NULL;
        for (size_t i = 0; i < n_gpus && !g; i++)
                if (streq(gpus[i].bdf, f.gpu_bdf))
                        g = &gpus[i];
        if (g && g->ok) {
                const struct slice_sched_slot *slot = &g->state.slices[f.sched_index];
                if (atomic_load(&slot->state) != SLICE_STATE_ACTIVE ||
                    strncmp(slot->name, name, sizeof(slot->name)) != 0)
                        r = add_problem(&v->problems,
                                        "%s%s: slot %u of the scheduler of %s is not this slice's",
                                        root_prefix(), path, f.sched_index, f.gpu_bdf);
                else
                        g->claimed[f.sched_index] = true;
        } else if (!g)
                r = add_problem(&v->problems, "%s%s: its GPU %s has no slice scheduler", root_prefix(), path,
                                f.gpu_bdf);
        if (r < 0 || (!g || !g->ok ? add_bad_gpu(v, f.gpu_bdf) : 0) < 0)
                return -ENOMEM;
        if (!GREEDY_REALLOC(v->slices, *allocated, v->n + 1))
                return -ENOMEM;
        struct slice_info info;
        slice_file_info(&f, g && g->ok ? &g->state : NULL, &info);
        slice_status_from_info(&info, &v->slices[v->n++]);
        return 0;
}

int slice_view_read(struct slice_view *ret, struct vgpu_error *err) {
        struct slice_view v = {};
        _cleanup_free_ char(*bdfs)[SLICE_NAME_MAX] = NULL, (*names)[SLICE_NAME_MAX] = NULL;
        size_t n_bdfs = 0, n_names = 0, allocated = 0;
        int r = dir_names(".shm", &bdfs, &n_bdfs);
        if (r >= 0)
                r = dir_names(".slice", &names, &n_names);
        if (r < 0)
                return vgpu_error_set_errno(err, r, "listing %s%s", root_prefix(), VGPU_SLICE_DIR);
        _cleanup_free_ struct gpu_sched *gpus = calloc(n_bdfs ? n_bdfs : 1, sizeof(*gpus));
        if (!gpus)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        for (size_t i = 0; i < n_bdfs && r >= 0; i++) {
                struct vgpu_error why = {};
                snprintf(gpus[i].bdf, sizeof(gpus[i].bdf), "%s", bdfs[i]);
                int q = slice_read_sched(bdfs[i], &gpus[i].state, &why);
                gpus[i].ok = q >= 0;
                if (q == -ENOMEM)
                        r = q;
                else if (q < 0 &&
                         (add_problem(&v.problems, "%s", why.message) < 0 || add_bad_gpu(&v, bdfs[i]) < 0))
                        r = -ENOMEM;
        }
        for (size_t i = 0; i < n_names && r >= 0; i++)
                r = view_slice(&v, names[i], gpus, n_bdfs, &allocated);
        /* a slot no slice file claims: a slice half made or half removed, or written by hand */
        for (size_t i = 0; i < n_bdfs && r >= 0; i++)
                for (unsigned k = 0; gpus[i].ok && k < SLICE_MAX && r >= 0; k++) {
                        const struct slice_sched_slot *slot = &gpus[i].state.slices[k];
                        if (atomic_load(&slot->state) == SLICE_STATE_FREE || gpus[i].claimed[k])
                                continue;
                        r = add_problem(&v.problems,
                                        "%s" VGPU_SLICE_DIR "/%s.shm: slot %u holds a slice without a region",
                                        root_prefix(), bdfs[i], k);
                        if (r >= 0)
                                r = add_bad_gpu(&v, bdfs[i]);
                }
        if (r < 0) {
                slice_view_free(&v);
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        }
        qsort_safe(v.slices, v.n, sizeof(*v.slices), cmp_status);
        *ret = v;
        return 0;
}

/* The GPU's scheduler file, opened or created; restricted to root either way. */
static int open_sched(const char *bdf, struct slice_sched_file **ret, struct vgpu_error *err) {
        char path[128], full[4096];
        sched_path(bdf, path, sizeof(path));
        int r = mkdir_parents_root(VGPU_SLICE_DIR, 0755);
        if (r < 0 || (r = root_path(full, sizeof(full), path)) < 0)
                return vgpu_error_set_errno(err, r, "%s%s", root_prefix(), VGPU_SLICE_DIR);
        r = slice_sched_file_open(full, ret, err);
        if (r == -ENOENT)
                return slice_sched_file_create(full, &(struct slice_gpu_params){ .bdf = bdf },
                                               VGPU_SLICE_REGION_MODE, ret, err);
        /* a file of an older release was world-writable */
        if (r >= 0 && chmod(full, VGPU_SLICE_REGION_MODE) < 0)
                return vgpu_error_set_errno(err, -errno, "%s: cannot restrict the slice scheduler to root",
                                            full);
        return r;
}

static int sched_slot_remove(const char *bdf, unsigned index, const char *name) {
        _cleanup_sched_file_ struct slice_sched_file *f = NULL;
        struct vgpu_error ignore = {};
        if (slice_read_sched(bdf, &(struct slice_shm){}, &ignore) < 0 || open_sched(bdf, &f, &ignore) < 0)
                return -ENOENT;
        struct slice_shm *shm;
        int r = slice_sched_file_begin(f, &shm);
        if (r < 0)
                return r;
        r = slice_sched_remove(shm, index, name);
        int q = slice_sched_file_end(f, r >= 0);
        return r < 0 ? r : q;
}

int slice_region_add(const char *bdf, const struct slice_params *p, struct vgpu_error *err) {
        _cleanup_sched_file_ struct slice_sched_file *f = NULL;
        int r = open_sched(bdf, &f, err);
        if (r < 0)
                return r;
        struct slice_shm *shm;
        if ((r = slice_sched_file_begin(f, &shm)) < 0)
                return vgpu_error_set_errno(err, r, "%s: the slice scheduler of %s is busy or corrupt",
                                            p->name, bdf);
        unsigned index;
        r = slice_sched_add(shm, p, &index, err);
        int q = slice_sched_file_end(f, r >= 0);
        if (r < 0)
                return r;
        if (q < 0)
                return vgpu_error_set_errno(err, q, "%s: cannot write the slice scheduler of %s", p->name,
                                            bdf);
        char path[128], full[4096];
        slice_path(p->name, path, sizeof(path));
        if ((r = root_path(full, sizeof(full), path)) < 0)
                r = vgpu_error_set(err, r, "%s: bad path", path);
        else
                r = slice_region_create(full, bdf, index, p, VGPU_SLICE_REGION_MODE, err);
        if (r < 0)
                (void) sched_slot_remove(bdf, index, p->name);
        return r;
}

int slice_region_remove(const char *name, const struct slice_file *f) {
        char path[128], full[4096];
        slice_path(name, path, sizeof(path));
        int r = root_path(full, sizeof(full), path);
        if (r < 0)
                return r;
        if (f)
                (void) sched_slot_remove(f->gpu_bdf, f->sched_index, name);
        return unlink(full) < 0 && errno != ENOENT ? -errno : 0;
}

/* Remove every file of GPU bdf: its scheduler, and the slices the records or the files put on it. */
static int remove_gpu_files(const char *bdf, const struct vgpu_slice_spec *rec, size_t n_rec,
                            struct vgpu_error *err) {
        char path[128], full[4096];
        _cleanup_free_ char(*names)[SLICE_NAME_MAX] = NULL;
        size_t n_names = 0;
        int r = dir_names(".slice", &names, &n_names);
        if (r < 0)
                return vgpu_error_set_errno(err, r, "listing %s%s", root_prefix(), VGPU_SLICE_DIR);
        for (size_t i = 0; i < n_names; i++) {
                struct slice_file f;
                struct vgpu_error ignore = {};
                bool ours = slice_read(names[i], &f, &ignore) >= 0 && streq(f.gpu_bdf, bdf);
                for (size_t k = 0; k < n_rec && !ours; k++)
                        ours = streq(rec[k].name, names[i]) && streq(rec[k].gpu, bdf);
                if (!ours)
                        continue;
                slice_path(names[i], path, sizeof(path));
                if ((r = root_path(full, sizeof(full), path)) < 0 || (unlink(full) < 0 && errno != ENOENT))
                        return vgpu_error_set_errno(err, r < 0 ? r : -errno, "%s%s: cannot remove",
                                                    root_prefix(), path);
        }
        sched_path(bdf, path, sizeof(path));
        if ((r = root_path(full, sizeof(full), path)) < 0 || (unlink(full) < 0 && errno != ENOENT))
                return vgpu_error_set_errno(err, r < 0 ? r : -errno,
                                            "%s%s: cannot remove the corrupt slice scheduler", root_prefix(),
                                            path);
        return 0;
}

int slice_repair_locked(const char *only_bdf, struct vgpu_error *err) {
        struct slice_view v = {};
        int r = slice_view_read(&v, err);
        if (r < 0)
                return r;
        struct vgpu_slice_spec *rec = NULL;
        size_t n_rec = 0;
        int repaired = 0;
        if (v.problems && (r = slice_records_read(&rec, &n_rec, NULL, err)) < 0) {
                slice_view_free(&v);
                return r;
        }
        /* a slice file that cannot be read: its GPU is the record's; without one it is nobody's */
        for (size_t i = 0; i < v.n_bad_names && r >= 0; i++) {
                bool recorded = false;
                for (size_t k = 0; k < n_rec && r >= 0; k++)
                        if (streq(rec[k].name, v.bad_names[i])) {
                                recorded = true;
                                if (add_bad_gpu(&v, rec[k].gpu) < 0)
                                        r = vgpu_error_set(err, -ENOMEM, "out of memory");
                        }
                int q = !recorded && !only_bdf ? slice_region_remove(v.bad_names[i], NULL) : 0;
                if (q < 0)
                        r = vgpu_error_set_errno(err, q, "%s%s/%s.slice: cannot remove", root_prefix(),
                                                 VGPU_SLICE_DIR, v.bad_names[i]);
        }
        for (size_t g = 0; g < v.n_bad && r >= 0; g++) {
                const char *bdf = v.bad_gpus[g];
                if (only_bdf && !streq(bdf, only_bdf))
                        continue;
                if ((r = remove_gpu_files(bdf, rec, n_rec, err)) < 0)
                        break;
                for (size_t i = 0; i < n_rec && r >= 0; i++) {
                        if (!streq(rec[i].gpu, bdf))
                                continue;
                        struct vgpu_slice_spec spec;
                        struct slice_params p;
                        if ((r = slice_spec_resolve(&rec[i], &spec, err)) >= 0) {
                                slice_spec_params(&spec, &p);
                                r = slice_region_add(bdf, &p, err);
                        }
                }
                repaired++;
        }
        free(rec);
        slice_view_free(&v);
        return r < 0 ? r : repaired;
}
