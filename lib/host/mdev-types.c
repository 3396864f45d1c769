/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * mdev-types.c — the types of mdev parents, from
 *     /sys/class/mdev_bus/PARENT/mdev_supported_types/TYPE/{name,description,device_api,
 *                                                            available_instances}
 *
 * Speed matters here: an SR-IOV card exposes each of its 32 VFs as a parent of the same ~24
 * types, so a 16-GPU host has 12,288 type directories. A type's name, description and
 * device_api are fixed by the driver for a device model; only available_instances changes. So
 * static attributes are read once per (driver, PCI ids, type id) and reused for every other
 * parent of that model (mdev.c picks that reference parent), and available_instances is read
 * for every type.
 *
 * Parents go in groups: the type directories of a group are listed, then every attribute the
 * group needs is read in one batch (basic/sysfs-batch.h: io_uring rounds, or one by one), then
 * the types are filled in. Groups run in parallel, each with its own batch.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/backend.h"
#include "basic/error-util.h"
#include "basic/macro.h"
#include "basic/parallel.h"
#include "basic/root.h"
#include "basic/sysfs-batch.h"
#include "basic/sysfs.h"
#include "host-internal.h"

/* Parents per group: bounds the open type directories and the buffers of one batch. */
#define GROUP          32
/* What sysfs_read_u64_at() and sysfs_read_alloc_at() read into. */
#define NUMBER_MAX     64
#define TEXT_MAX       4097
#define MIN_SIZE(a, b) ((a) < (b) ? (a) : (b))

int mdev_type_cmp(const void *a, const void *b) {
        return strverscmp(((const struct vgpu_type *) a)->id, ((const struct vgpu_type *) b)->id);
}

/* The type id of ref (whose types are sorted: group_fill) with id, or NULL. */
static const struct vgpu_type *memo_find_type(const struct vgpu_parent *ref, const char *id, size_t hint) {
        /* Directories list in the same order for parents of one model: try the same slot first
         * (it is the one where the listing is sorted already, as on tmpfs) */
        if (hint < ref->n_types && streq(ref->types[hint].id, id))
                return &ref->types[hint];
        /* kernfs lists in hash order: a binary search, as the reference is sorted */
        return bsearch_safe(&(struct vgpu_type){ .id = (char *) id }, ref->types, ref->n_types,
                            sizeof(*ref->types), mdev_type_cmp);
}

/* Share the reference type's strings: the host's arena holds both for as long as the host
 * lives, and 12,000 copies of them were a tenth of a large `types`. */
static void copy_static(struct vgpu_type *t, const struct vgpu_type *from) {
        t->id = from->id;
        t->name = from->name;
        t->description = from->description;
        t->device_api = from->device_api;
        t->framebuffer_bytes = from->framebuffer_bytes;
        t->max_instances = from->max_instances;
}

/* One group of parents, listed, read and filled in. */
struct group {
        const struct mdev_type_job *jobs;
        size_t n;
        int tfd[GROUP];
        /* per parent with a reference, its types' matches there (NULL: a type it lacks) */
        const struct vgpu_type **known[GROUP];
        struct sysfs_batch_entry *entries;
        char *paths, *text;
        struct arena *strings; /* the group's own: threads never share one */
        struct vgpu_error *err;
};

/* The reference type whose static attributes type j of parent i copies; NULL: read them. */
static const struct vgpu_type *reference_type(const struct group *g, size_t i, size_t j) {
        return g->known[i] ? g->known[i][j] : NULL;
}

/* Where to look first in the reference for the entry at position j of parent i's listing: where
 * the one at j matched for the group's previous parent of that reference. Parents of one model
 * list their types in one order (creation order on tmpfs, hash order on kernfs), whatever it is. */
static size_t reference_hint(const struct group *g, size_t i, size_t j) {
        for (size_t prev = i; prev-- > 0;)
                if (g->jobs[prev].ref == g->jobs[i].ref && g->known[prev]) {
                        if (j < g->jobs[prev].parent->n_types && g->known[prev][j])
                                return (size_t) (g->known[prev][j] - g->jobs[i].ref->types);
                        break;
                }
        return j;
}

/* The static attributes, in the order of a type's entries in the batch. */
static const char *const static_attrs[] = { "name", "description", "device_api" };

/* One parent's type directory listed into p->types (ids only); *ret_tfd keeps it open for the
 * batch (-1: the parent has no mdev_supported_types). getdents64 straight into buf: a DIR
 * costs two fcntl calls and its own buffer per directory, 514 of them on a large host. An id
 * the reference parent has is its string; only new ones are copied. */
static int list_types(int busfd, struct group *g, size_t i, char *buf, size_t buf_size) {
        const struct mdev_type_job *job = &g->jobs[i];
        struct vgpu_parent *p = job->parent;
        int *ret_tfd = &g->tfd[i];
        struct vgpu_error *err = g->err;
        char path[300];
        *ret_tfd = -1;
        snprintf(path, sizeof(path), "%s/mdev_supported_types", p->name);
        int tfd = openat(busfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (tfd < 0)
                return errno == ENOENT ? 0
                                       : vgpu_error_set_errno(err, -errno, "%s%s/%s", root_prefix(),
                                                              SYS_MDEV_BUS, path);
        /* a parent of a known model lists as many types as its reference: no growing */
        size_t allocated = 0, known_allocated = 0;
        int r = 0;
        if (job->ref && (!GREEDY_REALLOC(p->types, allocated, job->ref->n_types + 1) ||
                         !GREEDY_REALLOC(g->known[i], known_allocated, job->ref->n_types + 1)))
                r = vgpu_error_set(err, -ENOMEM, "out of memory");
        while (r >= 0) {
                ssize_t n = getdents64(tfd, buf, buf_size);
                if (n <= 0)
                        break; /* as readdir() ends the listing, an error too */
                for (ssize_t off = 0; r >= 0 && off < n;) {
                        const struct dirent64 *de = (const struct dirent64 *) (buf + off);
                        off += de->d_reclen;
                        if (de->d_name[0] == '.')
                                continue;
                        if (!GREEDY_REALLOC(p->types, allocated, p->n_types + 1) ||
                            (job->ref && !GREEDY_REALLOC(g->known[i], known_allocated, p->n_types + 1))) {
                                r = vgpu_error_set(err, -ENOMEM, "out of memory");
                                break;
                        }
                        struct vgpu_type *t = &p->types[p->n_types];
                        const struct vgpu_type *known =
                                job->ref ? memo_find_type(job->ref, de->d_name,
                                                          reference_hint(g, i, p->n_types))
                                         : NULL;
                        if (job->ref)
                                g->known[i][p->n_types] = known;
                        *t = (struct vgpu_type){
                                .parent = p->name,
                                .available_instances = -1,
                                .framebuffer_bytes = -1,
                                .max_instances = -1,
                                .kind = VGPU_TYPE_MDEV,
                                .id = known ? known->id : arena_strdup(g->strings, de->d_name),
                        };
                        if (!t->id) {
                                r = vgpu_error_set(err, -ENOMEM, "out of memory");
                                break;
                        }
                        p->n_types++;
                }
                if (r < 0)
                        break;
        }
        if (r < 0) {
                close(tfd);
                return r;
        }
        *ret_tfd = tfd;
        return 0;
}

/* "ID/ATTR" into dst (room counted by group_plan); its length. memcpy, not sprintf: 12,288
 * times on a large host, and printf's engine was a few percent of `types`. */
static size_t join(char *dst, const char *id, const char *attr) {
        size_t a = strlen(id), b = strlen(attr);
        memcpy(dst, id, a);
        dst[a] = '/';
        memcpy(dst + a + 1, attr, b + 1);
        return a + 1 + b;
}

static int group_plan(struct group *g) {
        /* sizes first: one allocation each for entries, paths and buffers */
        size_t n_entries = 0, n_static = 0, path_bytes = 0;
        for (size_t i = 0; i < g->n; i++) {
                const struct vgpu_parent *p = g->jobs[i].parent;
                for (size_t j = 0; j < p->n_types; j++) {
                        size_t len = strlen(p->types[j].id);
                        n_entries++;
                        path_bytes += len + sizeof("/available_instances");
                        if (!reference_type(g, i, j)) {
                                n_static++;
                                path_bytes += 3 * (len + sizeof("/description"));
                        }
                }
        }
        n_entries += 3 * n_static;
        if (n_entries == 0)
                return 0;
        g->entries = calloc(n_entries, sizeof(*g->entries));
        g->paths = malloc(path_bytes);
        g->text = malloc((n_entries - 3 * n_static) * NUMBER_MAX + 3 * n_static * TEXT_MAX);
        if (!g->entries || !g->paths || !g->text)
                return -ENOMEM;

        /* per type: available_instances, then (when not copied) name, description, device_api */
        char *path = g->paths, *text = g->text;
        size_t k = 0;
        for (size_t i = 0; i < g->n; i++) {
                const struct vgpu_parent *p = g->jobs[i].parent;
                for (size_t j = 0; j < p->n_types; j++) {
                        const char *id = p->types[j].id;
                        size_t len = join(path, id, "available_instances");
                        g->entries[k++] = (struct sysfs_batch_entry){ g->tfd[i], path, text, NUMBER_MAX };
                        path += len + 1;
                        text += NUMBER_MAX;
                        if (reference_type(g, i, j))
                                continue;
                        for (size_t a = 0; a < ELEMENTSOF(static_attrs); a++) {
                                len = join(path, id, static_attrs[a]);
                                g->entries[k++] =
                                        (struct sysfs_batch_entry){ g->tfd[i], path, text, TEXT_MAX };
                                path += len + 1;
                                text += TEXT_MAX;
                        }
                }
        }
        return sysfs_batch_read(g->entries, k);
}

static int take_text(const struct sysfs_batch_entry *e, struct arena *strings, char **ret) {
        if (e->result < 0)
                return e->result == -ENOENT ? 0 : e->result;
        return (*ret = arena_strndup(strings, e->buf, (size_t) e->result)) ? 0 : -ENOMEM;
}

/* Parent i's types in its reference's order, which is sorted, by where each one matched: no
 * ids compared. False when the two do not list the same types (qsort's turn then). */
static bool order_as_reference(const struct group *g, size_t i, struct vgpu_type *scratch) {
        struct vgpu_parent *p = g->jobs[i].parent;
        const struct vgpu_parent *ref = g->jobs[i].ref;
        if (p->n_types != ref->n_types)
                return false;
        for (size_t j = 0; j < p->n_types; j++)
                scratch[j].id = NULL;
        for (size_t j = 0; j < p->n_types; j++) {
                const struct vgpu_type *known = g->known[i][j];
                if (!known || scratch[known - ref->types].id)
                        return false;
                scratch[known - ref->types] = p->types[j];
        }
        memcpy(p->types, scratch, p->n_types * sizeof(*scratch));
        return true;
}

/* Each parent's types sorted by id, here in the group's thread rather than after the scan:
 * 12,288 types were milliseconds of the main thread's serial tail. */
static int sort_types(const struct group *g, size_t i) {
        struct vgpu_parent *p = g->jobs[i].parent;
        if (g->known[i] && p->n_types > 0) {
                _cleanup_free_ struct vgpu_type *scratch = malloc(p->n_types * sizeof(*scratch));
                if (!scratch)
                        return -ENOMEM;
                if (order_as_reference(g, i, scratch))
                        return 0;
        }
        qsort_safe(p->types, p->n_types, sizeof(*p->types), mdev_type_cmp);
        return 0;
}

static int group_fill(struct group *g) {
        size_t k = 0;
        for (size_t i = 0; i < g->n; i++) {
                struct vgpu_parent *p = g->jobs[i].parent;
                const struct vgpu_backend *be = backend_for_driver(p->driver);
                for (size_t j = 0; j < p->n_types; j++) {
                        struct vgpu_type *t = &p->types[j];
                        const struct sysfs_batch_entry *avail = &g->entries[k++];
                        uint64_t v;
                        if (avail->result >= 0 && sysfs_parse_u64(avail->buf, avail->result, 10, &v) == 0)
                                t->available_instances = (int64_t) v;
                        const struct vgpu_type *known = reference_type(g, i, j);
                        if (known) {
                                copy_static(t, known);
                                continue;
                        }
                        int r;
                        if ((r = take_text(&g->entries[k++], g->strings, &t->name)) < 0 ||
                            (r = take_text(&g->entries[k++], g->strings, &t->description)) < 0 ||
                            (r = take_text(&g->entries[k++], g->strings, &t->device_api)) < 0)
                                return vgpu_error_set_errno(g->err, r, "%s%s/%s/mdev_supported_types/%s",
                                                            root_prefix(), SYS_MDEV_BUS, p->name, t->id);
                        be->describe_type(t);
                }
                if (sort_types(g, i) < 0)
                        return vgpu_error_set(g->err, -ENOMEM, "out of memory");
        }
        return 0;
}

struct types_round {
        int busfd;
        const struct mdev_type_job *jobs;
        size_t n_jobs;
        struct vgpu_error *errors; /* one per group: threads never share one */
        struct arena *strings;     /* one per group, too */
};

static int group_run(size_t index, void *userdata) {
        struct types_round *round = userdata;
        struct group g = {
                .jobs = round->jobs + index * GROUP,
                .n = MIN_SIZE(GROUP, round->n_jobs - index * GROUP),
                .strings = &round->strings[index],
                .err = &round->errors[index],
        };
        int r = 0;
        for (size_t i = 0; i < g.n; i++)
                g.tfd[i] = -1;
        /* directory entries are 8-byte aligned records */
        _Alignas(8) char dents[32768];
        for (size_t i = 0; r >= 0 && i < g.n; i++)
                r = list_types(round->busfd, &g, i, dents, sizeof(dents));
        if (r >= 0 && (r = group_plan(&g)) < 0)
                vgpu_error_set(g.err, r, "out of memory");
        if (r >= 0)
                r = group_fill(&g);
        for (size_t i = 0; i < g.n; i++)
                if (g.tfd[i] >= 0)
                        close(g.tfd[i]);
        for (size_t i = 0; i < g.n; i++)
                free(g.known[i]);
        free(g.entries);
        free(g.paths);
        free(g.text);
        return r;
}

int mdev_types_read(int busfd, const struct mdev_type_job *jobs, size_t n_jobs, struct arena *strings,
                    struct vgpu_error *err) {
        if (n_jobs == 0)
                return 0;
        size_t n_groups = (n_jobs + GROUP - 1) / GROUP;
        _cleanup_free_ struct vgpu_error *errors = calloc(n_groups, sizeof(*errors));
        _cleanup_free_ struct arena *group_strings = calloc(n_groups, sizeof(*group_strings));
        if (!errors || !group_strings)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        struct types_round round = { busfd, jobs, n_jobs, errors, group_strings };
        /* a group holds its parents' type directories and its batch's files open */
        int r = parallel_for_fds(n_groups, 1, GROUP + SYSFS_BATCH_MAX_FDS, group_run, &round);
        /* the types point into them, failed or not: the host frees them */
        for (size_t i = 0; i < n_groups; i++)
                arena_take(strings, &group_strings[i]);
        if (r < 0)
                for (size_t i = 0; i < n_groups; i++)
                        if (errors[i].code < 0) {
                                if (err)
                                        *err = errors[i];
                                break;
                        }
        return r;
}
