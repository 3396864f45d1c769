/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * slice-region.c — a slice's own region, NAME.slice (slice/slice-shm.h): write it, read it
 * (vgpuctl, vgpud: pread, never a mapping a tenant could truncate under them), map it (the shim,
 * in the slice's own containers), check what it holds; and the names of policies.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/error-util.h"
#include "slice.h"

struct slice_region {
        struct slice_file *file;
        size_t size;
};

/* The mapping is whole pages; the layout is the fixed-size struct at its start. */
static size_t region_size(void) {
        size_t page = (size_t) sysconf(_SC_PAGESIZE);
        return (sizeof(struct slice_file) + page - 1) / page * page;
}

static void copy_string(char *dst, size_t size, const char *src) {
        snprintf(dst, size, "%s", strempty(src));
}

/* A slice's name is its CDI device name (vgpuctl.io/slice=NAME), its record's file name and a
 * metrics label: CDI's rule, first and last character a letter or digit, with '_', '.', '-'
 * between. One name CDI refuses makes podman refuse the whole spec, every slice on the host
 * with it; and a leading '.' made "." , ".." and hidden record files. */
bool slice_name_is_valid(const char *name) {
        size_t n = name ? strlen(name) : 0;
        if (n == 0 || n >= SLICE_NAME_MAX)
                return false;
        if (!isalnum((unsigned char) name[0]) || !isalnum((unsigned char) name[n - 1]))
                return false;
        for (const char *c = name; *c; c++)
                if (!isalnum((unsigned char) *c) && !strchr("_.-", *c))
                        return false;
        return true;
}

int slice_params_check(const struct slice_params *p, struct vgpu_error *err) {
        if (!slice_name_is_valid(p->name))
                return vgpu_error_set(err, -EINVAL,
                                      "slice name \"%s\": expected 1-%u characters of [A-Za-z0-9_.-], "
                                      "starting and ending with a letter or digit",
                                      strempty(p->name), SLICE_NAME_MAX - 1);
        if (p->policy > SLICE_POLICY_FIXED_SHARE || p->scrub > SLICE_SCRUB_OFF)
                return vgpu_error_set(err, -EINVAL, "slice %s: unknown policy or scrub mode", p->name);
        if (p->policy == SLICE_POLICY_FIXED_SHARE && (p->weight < 1 || p->weight > 100))
                return vgpu_error_set(err, -EINVAL, "slice %s: fixed share of %u%%, expected 1-100", p->name,
                                      p->weight);
        return 0;
}

const char *slice_problem(const struct slice *s) {
        if (atomic_load(&s->state) != SLICE_STATE_ACTIVE)
                return "no active slice";
        if (memchr(s->name, '\0', sizeof(s->name)) == NULL || !slice_name_is_valid(s->name))
                return "a slice name that is not one";
        if (s->policy > SLICE_POLICY_FIXED_SHARE)
                return "an unknown policy";
        if (s->scrub > SLICE_SCRUB_OFF)
                return "an unknown scrub mode";
        if (s->policy == SLICE_POLICY_FIXED_SHARE && (s->weight < 1 || s->weight > 100))
                return "a fixed share outside 1-100%";
        return NULL;
}

/* What is wrong with a file's header and slice, or NULL. */
static const char *file_problem(const struct slice_file *f) {
        if (atomic_load(&f->magic) != SLICE_FILE_MAGIC || f->version != SLICE_FILE_VERSION ||
            f->size != sizeof(*f))
                return "not a slice region of this version";
        if (f->sched_index >= SLICE_MAX || memchr(f->gpu_bdf, '\0', sizeof(f->gpu_bdf)) == NULL)
                return "corrupt slice region (its GPU)";
        return slice_problem(&f->slice);
}

int slice_region_create(const char *path, const char *gpu_bdf, unsigned sched_index,
                        const struct slice_params *p, mode_t mode, struct vgpu_error *err) {
        int r = slice_params_check(p, err);
        if (r < 0)
                return r;
        size_t size = region_size();
        _cleanup_free_ struct slice_file *f = calloc(1, size);
        if (!f)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        f->magic = SLICE_FILE_MAGIC;
        f->version = SLICE_FILE_VERSION;
        f->size = (uint32_t) sizeof(*f);
        f->sched_index = sched_index;
        copy_string(f->gpu_bdf, sizeof(f->gpu_bdf), gpu_bdf);
        struct slice *s = &f->slice;
        s->state = SLICE_STATE_ACTIVE;
        s->policy = p->policy;
        s->scrub = p->scrub;
        s->weight = p->policy == SLICE_POLICY_FIXED_SHARE ? p->weight : 100;
        s->flags = p->flags;
        copy_string(s->name, sizeof(s->name), p->name);
        s->quota = p->quota;
        s->granularity = p->granularity;
        s->proc_overhead = p->proc_overhead;

        /* Written whole before anyone can open it by name: a temporary file, linked to the
         * name (which fails when there is one) and unlinked. A reader never sees half a region. */
        char tmp[4096];
        if (snprintf(tmp, sizeof(tmp), "%s.new", path) >= (int) sizeof(tmp))
                return vgpu_error_set(err, -ENAMETOOLONG, "%s: path too long", path);
        (void) unlink(tmp); /* left by a creator that died half-way */
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd < 0)
                return vgpu_error_set_errno(err, -errno, "%s: cannot create slice region", tmp);
        /* open() applies the umask; fchmod gives the mode asked for */
        ssize_t n = fchmod(fd, mode) < 0 ? -1 : pwrite(fd, f, size, 0);
        if (n != (ssize_t) size)
                r = vgpu_error_set_errno(err, n < 0 ? -errno : -EIO, "%s: cannot write slice region", tmp);
        else if (link(tmp, path) < 0)
                r = vgpu_error_set_errno(err, -errno, "%s: cannot create slice region", path);
        unlink(tmp);
        return r;
}

int slice_region_read(const char *path, struct slice_file *ret, struct vgpu_error *err) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
        if (fd < 0)
                return vgpu_error_set_errno(err, -errno, "%s: cannot open slice region", path);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return vgpu_error_set_errno(err, -errno, "%s: cannot stat slice region", path);
        if (!S_ISREG(st.st_mode) || (size_t) st.st_size < sizeof(*ret))
                return vgpu_error_set(err, -EPROTO, "%s: %lld bytes, expected a slice region of %zu", path,
                                      (long long) st.st_size, sizeof(*ret));
        ssize_t n = pread(fd, ret, sizeof(*ret), 0);
        if (n != (ssize_t) sizeof(*ret))
                return vgpu_error_set(err, -EPROTO, "%s: %zd bytes read, expected a slice region of %zu",
                                      path, n, sizeof(*ret));
        const char *problem = file_problem(ret);
        if (problem)
                return vgpu_error_set(
                        err, -EPROTO, "%s: %s%s", path,
                        problem == slice_problem(&ret->slice) ? "corrupt slice region: it holds " : "",
                        problem);
        return 0;
}

struct slice_region *slice_region_close(struct slice_region *r) {
        if (!r)
                return NULL;
        if (r->file)
                munmap(r->file, r->size);
        free(r);
        return NULL;
}

struct slice_file *slice_region_file(const struct slice_region *r) {
        return r->file;
}

int slice_region_open(const char *path, struct slice_region **ret, struct vgpu_error *err) {
        _cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return vgpu_error_set_errno(err, -errno, "%s: cannot open slice region", path);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return vgpu_error_set_errno(err, -errno, "%s: cannot stat slice region", path);
        size_t size = region_size();
        if (!S_ISREG(st.st_mode) || (size_t) st.st_size < size)
                return vgpu_error_set(err, -EPROTO, "%s: %lld bytes, expected a slice region of %zu", path,
                                      (long long) st.st_size, size);
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return vgpu_error_set_errno(err, -errno, "%s: cannot map slice region", path);
        struct slice_region *r = calloc(1, sizeof(*r));
        if (!r) {
                munmap(p, size);
                return vgpu_error_set(err, -ENOMEM, "%s: out of memory", path);
        }
        *r = (struct slice_region){ .file = p, .size = size };
        const char *problem = file_problem(r->file);
        if (problem) {
                int q = vgpu_error_set(err, -EPROTO, "%s: %s", path, problem);
                slice_region_close(r);
                return q;
        }
        *ret = r;
        return 0;
}

void slice_file_info(struct slice_file *f, const struct slice_shm *sched, struct slice_info *ret) {
        struct slice *s = &f->slice;
        slice_reclaim_dead(s); /* in the copy: what the slice holds without the dead */
        struct slice_info info = {
                .index = f->sched_index,
                .policy = s->policy,
                .scrub = s->scrub,
                .weight = s->weight,
                .quota = s->quota,
                .used = atomic_load(&s->used),
                .peak = atomic_load(&s->peak),
                .oom_count = atomic_load(&s->oom_count),
                .processes = slice_count_procs(s),
        };
        copy_string(info.name, sizeof(info.name), s->name);
        copy_string(info.gpu_bdf, sizeof(info.gpu_bdf), f->gpu_bdf);
        /* GPU time is the scheduler's, which every tenant of the GPU can write: clamp nothing,
         * but take it only from the slot that carries this slice's name */
        if (sched && f->sched_index < SLICE_MAX) {
                const struct slice_sched_slot *slot = &sched->slices[f->sched_index];
                if (atomic_load(&slot->state) == SLICE_STATE_ACTIVE &&
                    strncmp(slot->name, s->name, sizeof(slot->name)) == 0) {
                        info.gpu_ns = atomic_load(&slot->gpu_ns);
                        info.turns = atomic_load(&slot->turns);
                }
        }
        *ret = info;
}

static const char *const policy_names[] = {
        [SLICE_POLICY_BEST_EFFORT] = "best-effort",
        [SLICE_POLICY_EQUAL_SHARE] = "equal-share",
        [SLICE_POLICY_FIXED_SHARE] = "fixed-share",
};

static const char *const scrub_names[] = {
        [SLICE_SCRUB_ON_FREE] = "on-free",
        [SLICE_SCRUB_ON_EXIT] = "on-exit",
        [SLICE_SCRUB_OFF] = "off",
};

const char *slice_policy_to_string(enum slice_policy p) {
        return (unsigned) p < ELEMENTSOF(policy_names) ? policy_names[p] : NULL;
}

int slice_policy_from_string(const char *s) {
        for (unsigned i = 0; i < ELEMENTSOF(policy_names); i++)
                if (streq(s, policy_names[i]))
                        return (int) i;
        return -EINVAL;
}

const char *slice_scrub_to_string(enum slice_scrub s) {
        return (unsigned) s < ELEMENTSOF(scrub_names) ? scrub_names[s] : NULL;
}

int slice_scrub_from_string(const char *s) {
        for (unsigned i = 0; i < ELEMENTSOF(scrub_names); i++)
                if (streq(s, scrub_names[i]))
                        return (int) i;
        return -EINVAL;
}
