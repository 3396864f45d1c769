/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * slice-region.c — the region file of one GPU's slices: create, map and check it, add, find and
 * remove slices, and the names of policies. The file lives on tmpfs (/dev/shm or /run) and is
 * bind-mounted into containers; each process maps it MAP_SHARED.
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

struct vgpu_slice_region {
        struct vgpu_slice_shm *shm;
        size_t size;
        char *path;
};

/* The mapping is whole pages; the layout is the fixed-size struct at its start. */
static size_t region_size(void) {
        size_t page = (size_t) sysconf(_SC_PAGESIZE);
        return (sizeof(struct vgpu_slice_shm) + page - 1) / page * page;
}

static void copy_string(char *dst, size_t size, const char *src) {
        snprintf(dst, size, "%s", strempty(src));
}

struct vgpu_slice_region *vgpu_slice_region_close(struct vgpu_slice_region *r) {
        if (!r)
                return NULL;
        if (r->shm)
                munmap(r->shm, r->size);
        free(r->path);
        free(r);
        return NULL;
}

struct vgpu_slice_shm *vgpu_slice_region_shm(const struct vgpu_slice_region *r) {
        return r->shm;
}

static int region_map(int fd, const char *path, struct vgpu_slice_region **ret, struct vgpu_error *err) {
        size_t size = region_size();
        void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED)
                return vgpu_error_set_errno(err, -errno, "%s: cannot map slice region", path);
        struct vgpu_slice_region *r = calloc(1, sizeof(*r));
        char *copy = strdup(path);
        if (!r || !copy) {
                munmap(p, size);
                free(r);
                free(copy);
                return vgpu_error_set(err, -ENOMEM, "%s: out of memory", path);
        }
        *r = (struct vgpu_slice_region) { .shm = p, .size = size, .path = copy };
        *ret = r;
        return 0;
}

int vgpu_slice_region_create(const char *path, const struct vgpu_slice_gpu_params *gpu, mode_t mode,
                             struct vgpu_slice_region **ret, struct vgpu_error *err) {
        uint64_t quantum = gpu && gpu->quantum_ns ? gpu->quantum_ns : VGPU_SLICE_QUANTUM_DEFAULT_NS;
        if (quantum < VGPU_SLICE_QUANTUM_MIN_NS || quantum > VGPU_SLICE_QUANTUM_MAX_NS)
                return vgpu_error_set(err, -EINVAL, "time slice %llu ns: expected 1 to 30 ms",
                                      (unsigned long long) quantum);

        _cleanup_close_ int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd < 0)
                return vgpu_error_set_errno(err, -errno, "%s: cannot create slice region", path);
        /* open() applies the umask; the region must be writable by the containers given mode. */
        if (fchmod(fd, mode) < 0 || ftruncate(fd, (off_t) region_size()) < 0) {
                int r = vgpu_error_set_errno(err, -errno, "%s: cannot size slice region", path);
                unlink(path);
                return r;
        }

        struct vgpu_slice_region *region = NULL;
        int r = region_map(fd, path, &region, err);
        if (r < 0) {
                unlink(path);
                return r;
        }
        struct vgpu_slice_shm *shm = region->shm;
        shm->version = VGPU_SLICE_SHM_VERSION;
        shm->size = (uint32_t) sizeof(*shm);
        if (gpu) {
                copy_string(shm->gpu_bdf, sizeof(shm->gpu_bdf), gpu->bdf);
                copy_string(shm->gpu_uuid, sizeof(shm->gpu_uuid), gpu->uuid);
                shm->gpu_memory = gpu->memory;
        }
        r = vgpu_sched_init(&shm->sched, quantum);
        if (r < 0) {
                vgpu_slice_region_close(region);
                unlink(path);
                return vgpu_error_set_errno(err, r, "%s: cannot initialize the scheduler lock", path);
        }
        /* Last: a concurrent opener sees the magic only once everything else is in place. */
        atomic_store_explicit(&shm->magic, VGPU_SLICE_SHM_MAGIC, memory_order_release);
        *ret = region;
        return 0;
}

int vgpu_slice_region_open(const char *path, struct vgpu_slice_region **ret, struct vgpu_error *err) {
        _cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return vgpu_error_set_errno(err, -errno, "%s: cannot open slice region", path);
        struct stat st;
        if (fstat(fd, &st) < 0)
                return vgpu_error_set_errno(err, -errno, "%s: cannot stat slice region", path);
        if ((size_t) st.st_size < sizeof(struct vgpu_slice_shm))
                return vgpu_error_set(err, -EPROTO, "%s: %lld bytes, expected a slice region of %zu", path,
                                      (long long) st.st_size, sizeof(struct vgpu_slice_shm));

        struct vgpu_slice_region *region = NULL;
        int r = region_map(fd, path, &region, err);
        if (r < 0)
                return r;
        const struct vgpu_slice_shm *shm = region->shm;
        uint64_t magic = atomic_load_explicit(&shm->magic, memory_order_acquire);
        if (magic != VGPU_SLICE_SHM_MAGIC || shm->version != VGPU_SLICE_SHM_VERSION ||
            shm->size != sizeof(struct vgpu_slice_shm)) {
                r = vgpu_error_set(err, -EPROTO,
                                   "%s: not a slice region of version %u (magic %016llx, version %u, size %u; expected size %zu)",
                                   path, VGPU_SLICE_SHM_VERSION, (unsigned long long) magic, shm->version,
                                   shm->size, sizeof(struct vgpu_slice_shm));
                vgpu_slice_region_close(region);
                return r;
        }
        *ret = region;
        return 0;
}

/* A slice's name is its CDI device name (vgpuctl.io/slice=NAME), its record's file name and a
 * metrics label: CDI's rule, first and last character a letter or digit, with '_', '.', '-'
 * between. One name CDI refuses makes podman refuse the whole spec, every slice on the host
 * with it; and a leading '.' made "." , ".." and hidden record files. */
bool vgpu_slice_name_is_valid(const char *name) {
        size_t n = name ? strlen(name) : 0;
        if (n == 0 || n >= VGPU_SLICE_NAME_MAX)
                return false;
        if (!isalnum((unsigned char) name[0]) || !isalnum((unsigned char) name[n - 1]))
                return false;
        for (const char *c = name; *c; c++)
                if (!isalnum((unsigned char) *c) && !strchr("_.-", *c))
                        return false;
        return true;
}

int vgpu_slice_find(const struct vgpu_slice_shm *shm, const char *name) {
        for (unsigned i = 0; i < VGPU_SLICE_MAX; i++) {
                const struct vgpu_slice *s = &shm->slices[i];
                if (atomic_load_explicit(&s->state, memory_order_acquire) == VGPU_SLICE_STATE_ACTIVE &&
                    strncmp(s->name, name, sizeof(s->name)) == 0)
                        return (int) i;
        }
        return -ENOENT;
}

int vgpu_slice_add(struct vgpu_slice_region *r, const struct vgpu_slice_params *p, unsigned *ret_index,
                   struct vgpu_error *err) {
        struct vgpu_slice_shm *shm = r->shm;
        if (!vgpu_slice_name_is_valid(p->name))
                return vgpu_error_set(err, -EINVAL, "slice name \"%s\": expected 1-%u characters of [A-Za-z0-9_.-], "
                                      "starting and ending with a letter or digit",
                                      strempty(p->name), VGPU_SLICE_NAME_MAX - 1);
        if (p->policy > VGPU_SLICE_POLICY_FIXED_SHARE || p->scrub > VGPU_SLICE_SCRUB_OFF)
                return vgpu_error_set(err, -EINVAL, "slice %s: unknown policy or scrub mode", p->name);
        if (p->policy == VGPU_SLICE_POLICY_FIXED_SHARE && (p->weight < 1 || p->weight > 100))
                return vgpu_error_set(err, -EINVAL, "slice %s: fixed share of %u%%, expected 1-100", p->name,
                                      p->weight);
        if (vgpu_slice_find(shm, p->name) >= 0)
                return vgpu_error_set(err, -EEXIST, "slice %s exists already", p->name);

        unsigned fixed_total = p->policy == VGPU_SLICE_POLICY_FIXED_SHARE ? p->weight : 0;
        for (unsigned i = 0; i < VGPU_SLICE_MAX; i++) {
                const struct vgpu_slice *s = &shm->slices[i];
                if (atomic_load(&s->state) == VGPU_SLICE_STATE_ACTIVE && s->policy == VGPU_SLICE_POLICY_FIXED_SHARE)
                        fixed_total += s->weight;
        }
        if (fixed_total > 100)
                return vgpu_error_set(err, -EINVAL, "slice %s: fixed shares on this GPU would add up to %u%%",
                                      p->name, fixed_total);

        for (unsigned i = 0; i < VGPU_SLICE_MAX; i++) {
                struct vgpu_slice *s = &shm->slices[i];
                uint32_t expected = VGPU_SLICE_STATE_FREE;
                if (!atomic_compare_exchange_strong(&s->state, &expected, VGPU_SLICE_STATE_SETUP))
                        continue;
                /* Slot ours: clear what a removed slice left, keeping the state word. */
                memset((char *) s + sizeof(s->state), 0, sizeof(*s) - sizeof(s->state));
                s->policy = p->policy;
                s->scrub = p->scrub;
                s->weight = p->policy == VGPU_SLICE_POLICY_FIXED_SHARE ? p->weight : 100;
                s->flags = p->flags;
                copy_string(s->name, sizeof(s->name), p->name);
                s->quota = p->quota;
                s->granularity = p->granularity;
                s->proc_overhead = p->proc_overhead;
                s->deficit_ns = (int64_t) shm->sched.quantum_ns;
                s->budget_stamp_ns = vgpu_now_ns();
                atomic_store_explicit(&s->state, VGPU_SLICE_STATE_ACTIVE, memory_order_release);
                atomic_fetch_add(&shm->generation, 1);
                if (ret_index)
                        *ret_index = i;
                return 0;
        }
        return vgpu_error_set(err, -ENOSPC, "slice %s: all %u slices of this GPU are in use", p->name,
                              VGPU_SLICE_MAX);
}

int vgpu_slice_remove(struct vgpu_slice_region *r, const char *name, struct vgpu_error *err) {
        int i = vgpu_slice_find(r->shm, name);
        if (i < 0)
                return vgpu_error_set(err, -ENOENT, "no slice %s", name);
        struct vgpu_slice *s = &r->shm->slices[i];
        vgpu_slice_reclaim_dead(s);
        unsigned n = vgpu_slice_count_procs(s);
        if (n > 0)
                return vgpu_error_set(err, -EBUSY, "slice %s: %u process(es) still use it", name, n);
        uint32_t expected = VGPU_SLICE_STATE_ACTIVE;
        if (!atomic_compare_exchange_strong(&s->state, &expected, VGPU_SLICE_STATE_SETUP))
                return vgpu_error_set(err, -EBUSY, "slice %s is being changed by someone else", name);
        memset(s->name, 0, sizeof(s->name));
        atomic_store_explicit(&s->state, VGPU_SLICE_STATE_FREE, memory_order_release);
        atomic_fetch_add(&r->shm->generation, 1);
        return 0;
}

int vgpu_slice_get_info(struct vgpu_slice_region *r, unsigned index, struct vgpu_slice_info *ret) {
        if (index >= VGPU_SLICE_MAX)
                return -EINVAL;
        struct vgpu_slice *s = &r->shm->slices[index];
        if (atomic_load_explicit(&s->state, memory_order_acquire) != VGPU_SLICE_STATE_ACTIVE)
                return -ENOENT;
        vgpu_slice_reclaim_dead(s);
        struct vgpu_slice_info info = {
                .index = index,
                .policy = s->policy,
                .scrub = s->scrub,
                .weight = s->weight,
                .quota = s->quota,
                .used = atomic_load(&s->used),
                .peak = atomic_load(&s->peak),
                .oom_count = atomic_load(&s->oom_count),
                .gpu_ns = atomic_load(&s->gpu_ns),
                .turns = atomic_load(&s->turns),
                .processes = vgpu_slice_count_procs(s),
        };
        copy_string(info.name, sizeof(info.name), s->name);
        *ret = info;
        return 0;
}

static const char *const policy_names[] = {
        [VGPU_SLICE_POLICY_BEST_EFFORT] = "best-effort",
        [VGPU_SLICE_POLICY_EQUAL_SHARE] = "equal-share",
        [VGPU_SLICE_POLICY_FIXED_SHARE] = "fixed-share",
};

static const char *const scrub_names[] = {
        [VGPU_SLICE_SCRUB_ON_FREE] = "on-free",
        [VGPU_SLICE_SCRUB_ON_EXIT] = "on-exit",
        [VGPU_SLICE_SCRUB_OFF] = "off",
};

const char *vgpu_slice_policy_to_string(enum vgpu_slice_policy p) {
        return (unsigned) p < ELEMENTSOF(policy_names) ? policy_names[p] : NULL;
}

int vgpu_slice_policy_from_string(const char *s) {
        for (unsigned i = 0; i < ELEMENTSOF(policy_names); i++)
                if (streq(s, policy_names[i]))
                        return (int) i;
        return -EINVAL;
}

const char *vgpu_slice_scrub_to_string(enum vgpu_slice_scrub s) {
        return (unsigned) s < ELEMENTSOF(scrub_names) ? scrub_names[s] : NULL;
}

int vgpu_slice_scrub_from_string(const char *s) {
        for (unsigned i = 0; i < ELEMENTSOF(scrub_names); i++)
                if (streq(s, scrub_names[i]))
                        return (int) i;
        return -EINVAL;
}
