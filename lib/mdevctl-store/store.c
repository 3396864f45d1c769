/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * store.c — mdevctl's definition store, /etc/mdevctl.d/PARENT/UUID, read and written in
 * mdevctl's own JSON format so that mdevctl, libvirt and vgpuctl share one set of devices:
 *     { "mdev_type": "nvidia-232", "start": "auto", "attrs": [ { "nvidia/vgpu_params": "..." } ] }
 * Files are parsed with json-c; a corrupt or foreign file is reported and skipped, never fatal
 * to the others. Writes are atomic (basic/fileio.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "basic/error-util.h"
#include "basic/fileio.h"
#include "basic/macro.h"
#include "basic/sysfs.h"
#include "basic/parallel.h"
#include "basic/root.h"
#include "store.h"

_public_ void vgpu_mdev_spec_free(struct vgpu_mdev_spec *spec) {
        if (!spec)
                return;
        free(spec->parent);
        free(spec->type);
        for (size_t i = 0; i < spec->n_attrs; i++) {
                free(spec->attrs[i].key);
                free(spec->attrs[i].value);
        }
        free(spec->attrs);
        *spec = (struct vgpu_mdev_spec){};
}

_public_ void vgpu_mdev_specs_free(struct vgpu_mdev_spec *specs, size_t n) {
        for (size_t i = 0; i < n; i++)
                vgpu_mdev_spec_free(&specs[i]);
        free(specs);
}

/* JSON's whitespace, as far as the usual form below uses it (the rest goes to json-c). */
static const char *skip_space(const char *p) {
        while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
                p++;
        return p;
}

/* A string of printable ASCII without escapes at *p: its text and length, *p past it. */
static bool plain_string(const char **p, const char **ret, size_t *ret_len) {
        const char *s = *p;
        if (*s++ != '"')
                return false;
        const char *start = s;
        for (; *s != '"'; s++)
                if ((unsigned char) *s < 0x20 || (unsigned char) *s >= 0x7f || *s == '\\')
                        return false; /* the end of the text, a control byte, UTF-8 or an escape */
        *ret = start;
        *ret_len = (size_t) (s - start);
        *p = skip_space(s + 1);
        return true;
}

static bool is_key(const char *key, size_t len, const char *name) {
        return len == strlen(name) && memcmp(key, name, len) == 0;
}

struct plain_attr {
        const char *key, *value;
        size_t key_len, value_len;
};

/*
 * The form vgpuctl and mdevctl write — one object of "mdev_type", "start" and "attrs" (one-key
 * objects), once each, with strings of plain ASCII — read by hand: json-c built and freed a
 * tokener and half a dozen objects per file, most of reading a store of hundreds. Every text of
 * this form is valid JSON that json-c reads as the same object, and only a definition that
 * store_parse() accepts is taken here: 1 with *ret set, -ENOMEM, or 0 for anything else, which
 * json-c reads then (and says what is wrong with).
 */
static int parse_plain(const char *text, const char *parent, const char *uuid, struct vgpu_mdev_spec *ret) {
        const char *p = skip_space(text), *type = NULL, *start = NULL;
        size_t type_len = 0, start_len = 0, n_attrs = 0, allocated = 0;
        _cleanup_free_ struct plain_attr *attrs = NULL;
        bool have_attrs = false;
        if (*p++ != '{')
                return 0;
        for (p = skip_space(p); *p != '}';) {
                const char *key, *v;
                size_t key_len, v_len;
                if (!plain_string(&p, &key, &key_len) || *p != ':')
                        return 0;
                p = skip_space(p + 1);
                if (is_key(key, key_len, "mdev_type") && !type) {
                        if (!plain_string(&p, &type, &type_len))
                                return 0;
                } else if (is_key(key, key_len, "start") && !start) {
                        if (!plain_string(&p, &start, &start_len))
                                return 0;
                } else if (is_key(key, key_len, "attrs") && !have_attrs) {
                        have_attrs = true;
                        if (*p != '[')
                                return 0;
                        for (p = skip_space(p + 1); *p != ']';) {
                                if (*p != '{')
                                        return 0;
                                p = skip_space(p + 1);
                                if (!plain_string(&p, &key, &key_len) || *p != ':')
                                        return 0;
                                p = skip_space(p + 1);
                                if (!plain_string(&p, &v, &v_len) || *p != '}')
                                        return 0;
                                if (!GREEDY_REALLOC(attrs, allocated, n_attrs + 1))
                                        return -ENOMEM;
                                attrs[n_attrs++] = (struct plain_attr){ key, v, key_len, v_len };
                                p = skip_space(p + 1);
                                /* then ", {" for the next, or the end */
                                if (*p == ',') {
                                        if (*(p = skip_space(p + 1)) != '{')
                                                return 0;
                                } else if (*p != ']')
                                        return 0;
                        }
                        p = skip_space(p + 1);
                } else
                        return 0; /* another key, or one again: json-c's to judge */
                /* then ", \"" for the next key, or the end */
                if (*p == ',') {
                        if (*(p = skip_space(p + 1)) != '"')
                                return 0;
                } else if (*p != '}')
                        return 0;
        }
        if (*skip_space(p + 1) != '\0' || !type)
                return 0;
        bool auto_start = false;
        if (start) {
                if (!is_key(start, start_len, "auto") && !is_key(start, start_len, "manual"))
                        return 0;
                auto_start = is_key(start, start_len, "auto");
        }

        struct vgpu_mdev_spec s = { .auto_start = auto_start };
        int r = -ENOMEM;
        if (!(s.type = strndup(type, type_len)) || !(s.parent = strdup(parent)))
                goto out;
        if (have_attrs && !(s.attrs = calloc(n_attrs + 1, sizeof(*s.attrs))))
                goto out;
        for (size_t i = 0; i < n_attrs; i++, s.n_attrs++)
                if (!(s.attrs[i].key = strndup(attrs[i].key, attrs[i].key_len)) ||
                    !(s.attrs[i].value = strndup(attrs[i].value, attrs[i].value_len))) {
                        s.n_attrs++;
                        goto out;
                }
        r = 0;
        /* what store_parse() checks past the JSON: refused here means json-c's path says why */
        if (!sysfs_name_ok(s.type))
                goto out;
        for (size_t i = 0; i < s.n_attrs; i++)
                if (!sysfs_rel_path_ok(s.attrs[i].key))
                        goto out;
        snprintf(s.uuid, sizeof(s.uuid), "%s", uuid);
        *ret = s;
        return 1;
out:
        vgpu_mdev_spec_free(&s);
        return r;
}

/* Parse one definition file's text; on failure *why says what is wrong. */
int store_parse(const char *text, const char *parent, const char *uuid, struct vgpu_mdev_spec *ret,
                const char **why) {
        int q = parse_plain(text, parent, uuid, ret);
        if (q != 0)
                return q < 0 ? q : 0;
        struct json_tokener *tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        json_object *root = json_tokener_parse_ex(tok, text, (int) strlen(text));
        enum json_tokener_error jerr = json_tokener_get_error(tok);
        /* the tokener stops after one value and calls that success: the rest must be blank */
        const char *rest = text + json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (jerr == json_tokener_success && rest[strspn(rest, " \t\r\n")])
                jerr = json_tokener_error_parse_unexpected;
        if (!root || jerr != json_tokener_success) {
                *why = root ? "trailing data after the JSON object" : "not valid JSON";
                json_object_put(root);
                return -EBADMSG;
        }

        struct vgpu_mdev_spec s = {};
        int r = -EBADMSG;
        json_object *type, *start, *attrs;
        if (!json_object_is_type(root, json_type_object)) {
                *why = "not a JSON object";
                goto out;
        }
        if (!json_object_object_get_ex(root, "mdev_type", &type) ||
            !json_object_is_type(type, json_type_string)) {
                *why = "field \"mdev_type\" missing or not a string";
                goto out;
        }
        if (!sysfs_name_ok(json_object_get_string(type))) {
                *why = "field \"mdev_type\" is not a type name";
                goto out;
        }
        if (json_object_object_get_ex(root, "start", &start)) {
                const char *v =
                        json_object_is_type(start, json_type_string) ? json_object_get_string(start) : NULL;
                if (!v || (strcmp(v, "auto") != 0 && strcmp(v, "manual") != 0)) {
                        *why = "field \"start\" is neither \"auto\" nor \"manual\"";
                        goto out;
                }
                s.auto_start = strcmp(v, "auto") == 0;
        }
        if (json_object_object_get_ex(root, "attrs", &attrs)) {
                if (!json_object_is_type(attrs, json_type_array)) {
                        *why = "field \"attrs\" is not an array";
                        goto out;
                }
                size_t n = json_object_array_length(attrs);
                s.attrs = calloc(n + 1, sizeof(*s.attrs));
                if (!s.attrs) {
                        r = -ENOMEM;
                        goto out;
                }
                for (size_t i = 0; i < n; i++) {
                        json_object *a = json_object_array_get_idx(attrs, i);
                        if (!json_object_is_type(a, json_type_object) || json_object_object_length(a) != 1) {
                                *why = "an \"attrs\" entry is not a one-key object";
                                goto out;
                        }
                        json_object_object_foreach (a, key, val) {
                                if (!json_object_is_type(val, json_type_string)) {
                                        *why = "an \"attrs\" value is not a string";
                                        goto out;
                                }
                                /* it is written below the device: "../.." would lead elsewhere */
                                if (!sysfs_rel_path_ok(key)) {
                                        *why = "an \"attrs\" key is not a path below the device";
                                        goto out;
                                }
                                s.attrs[s.n_attrs].key = strdup(key);
                                s.attrs[s.n_attrs].value = strdup(json_object_get_string(val));
                                if (!s.attrs[s.n_attrs].key || !s.attrs[s.n_attrs].value) {
                                        s.n_attrs++;
                                        r = -ENOMEM;
                                        goto out;
                                }
                                s.n_attrs++;
                        }
                }
        }
        snprintf(s.uuid, sizeof(s.uuid), "%s", uuid);
        if (!(s.parent = strdup(parent)) || !(s.type = strdup(json_object_get_string(type)))) {
                r = -ENOMEM;
                goto out;
        }
        *ret = s;
        s = (struct vgpu_mdev_spec){};
        r = 0;
out:
        vgpu_mdev_spec_free(&s);
        json_object_put(root);
        return r;
}

char *store_format(const struct vgpu_mdev_spec *spec) {
        json_object *root = json_object_new_object(), *attrs = json_object_new_array();
        if (!root || !attrs) {
                json_object_put(root);
                json_object_put(attrs);
                return NULL;
        }
        json_object_object_add(root, "mdev_type", json_object_new_string(spec->type));
        json_object_object_add(root, "start", json_object_new_string(spec->auto_start ? "auto" : "manual"));
        for (size_t i = 0; i < spec->n_attrs; i++) {
                json_object *a = json_object_new_object();
                json_object_object_add(a, spec->attrs[i].key, json_object_new_string(spec->attrs[i].value));
                json_object_array_add(attrs, a);
        }
        json_object_object_add(root, "attrs", attrs);
        const char *text = json_object_to_json_string_ext(
                root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED | JSON_C_TO_STRING_NOSLASHESCAPE);
        char *out = NULL;
        if (text && asprintf(&out, "%s\n", text) < 0)
                out = NULL;
        json_object_put(root);
        return out;
}

int store_write(const struct vgpu_mdev_spec *spec) {
        _cleanup_free_ char *text = store_format(spec);
        if (!text)
                return -ENOMEM;
        char path[512];
        snprintf(path, sizeof(path), MDEVCTL_STORE "/%s/%s", spec->parent, spec->uuid);
        return write_file_atomic(path, text, strlen(text), 0644);
}

int store_remove(const char *parent, const char *uuid) {
        char path[512], full[4096];
        snprintf(path, sizeof(path), MDEVCTL_STORE "/%s/%s", parent, uuid);
        int r = root_path(full, sizeof(full), path);
        if (r < 0)
                return r;
        if (unlink(full) < 0)
                return -errno;
        /* mdevctl leaves empty parent directories; so do we */
        return 0;
}

static bool is_parent_dir(const char *name);

int store_read_at(int dirfd, const char *path, char *buf, size_t size, const char **why) {
        return store_read_typed_at(dirfd, path, DT_UNKNOWN, buf, size, why);
}

int store_read_typed_at(int dirfd, const char *path, unsigned char d_type, char *buf, size_t size,
                        const char **why) {
        /* what the directory listing says is no regular file is not opened at all */
        if (d_type != DT_UNKNOWN && d_type != DT_REG && d_type != DT_LNK) {
                *why = "not a regular file";
                return -EBADMSG;
        }
        /* O_NONBLOCK: opening a FIFO for reading would wait for a writer, forever (and with it
         * `list --defined` and every vgpud request that reads the store) */
        int fd = openat(dirfd, path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
        if (fd < 0) {
                *why = "unreadable";
                return -errno;
        }
        struct stat st;
        int r = 0;
        /* a regular file in the listing needs no fstat (512 calls on the bench host): one that
         * grew past the limit is caught by the read below, and one replaced by something else
         * since then is opened without blocking and fails to parse */
        if (d_type != DT_REG) {
                if (fstat(fd, &st) < 0)
                        r = -errno, *why = "unreadable";
                else if (!S_ISREG(st.st_mode))
                        r = -EBADMSG, *why = "not a regular file";
                else if ((uint64_t) st.st_size >= size)
                        r = -EFBIG, *why = "larger than a definition can be (64 KiB)";
        }
        ssize_t len = r < 0 ? -1 : read(fd, buf, size - 1);
        if (r == 0 && len < 0)
                r = -errno, *why = "unreadable";
        else if (r == 0 && (size_t) len >= size - 1)
                r = -EFBIG, *why = "larger than a definition can be (64 KiB)"; /* or grew since fstat */
        close(fd);
        if (r < 0)
                return r;
        buf[len] = '\0';
        return (int) len;
}

/* What write_file_atomic() leaves when it is killed between mkostemp() and rename():
 * "UUID.XXXXXX". Neither a definition nor a foreign file: ours, to remove under the lock. */
static bool is_store_temp(const char *name) {
        size_t n = strlen(name);
        if (n != VGPU_UUID_MAX - 1 + 7 || name[VGPU_UUID_MAX - 1] != '.')
                return false;
        char uuid[VGPU_UUID_MAX];
        memcpy(uuid, name, VGPU_UUID_MAX - 1);
        uuid[VGPU_UUID_MAX - 1] = '\0';
        return vgpu_uuid_valid(uuid) && mkstemp_suffix_ok(name + VGPU_UUID_MAX);
}

int store_remove_temps(void) {
        DIR *top;
        int storefd = root_open_dir(MDEVCTL_STORE);
        if (storefd < 0)
                return storefd == -ENOENT ? 0 : storefd;
        if (!(top = fdopendir(storefd))) {
                close(storefd);
                return -ENOMEM;
        }
        int removed = 0;
        struct dirent *pe;
        while ((pe = readdir(top))) {
                if (!is_parent_dir(pe->d_name))
                        continue;
                int r = remove_temps_at(dirfd(top), pe->d_name, is_store_temp);
                if (r > 0)
                        removed += r;
        }
        closedir(top);
        return removed;
}

static bool is_parent_dir(const char *name) {
        /* the store's own subdirectory and dotfiles are not parents */
        return name[0] != '.' && strcmp(name, "scripts.d") != 0;
}

static int cmp_spec(const void *a, const void *b) {
        const struct vgpu_mdev_spec *x = a, *y = b;
        int c = strcmp(x->parent, y->parent);
        return c ? c : strcmp(x->uuid, y->uuid);
}

static void warn(FILE *w, const char *parent, const char *uuid, const char *why) {
        if (w)
                fprintf(w, "%s%s/%s/%s: %s, skipped\n", root_prefix(), MDEVCTL_STORE, parent, uuid, why);
}

/* One file of a parent's directory: a definition, or a name to warn about (why set). */
struct def_file {
        char uuid[VGPU_UUID_MAX];
        char *other_name; /* a name that is no UUID, to warn about (why says so) */
        unsigned char d_type;
        struct vgpu_mdev_spec spec;
        const char *why; /* set when the file is skipped */
        bool ok;
};

/* One parent directory of the store, listed and its definitions read by one job. */
struct def_parent {
        char name[256];
        bool remove_temps;
        struct def_file *files;
        size_t n_files;
};

/* The files of one parent's directory (pfd): definitions to read, names that are not UUIDs to
 * warn about, and — with remove_temps, where the parent is not a link (a parent reached through
 * one is someone else's to clean) — the temporary files of killed writes removed. getdents64
 * straight into a buffer: a DIR costs an fstat, two fcntl and 32 KiB per directory, and the
 * store has one directory per parent, 512 on the bench host. */
static int list_parent(int pfd, struct def_parent *dp) {
        char buf[8192];
        size_t allocated = 0;
        for (ssize_t n; (n = getdents64(pfd, buf, sizeof(buf))) > 0;)
                for (ssize_t off = 0; off < n;) {
                        const struct dirent64 *de = (const struct dirent64 *) (buf + off);
                        off += de->d_reclen;
                        if (de->d_name[0] == '.')
                                continue;
                        /* a write killed half-way: never a definition */
                        if (is_store_temp(de->d_name)) {
                                if (dp->remove_temps)
                                        (void) remove_temp_entry(pfd, de->d_name);
                                continue;
                        }
                        if (!GREEDY_REALLOC(dp->files, allocated, dp->n_files + 1))
                                return -ENOMEM;
                        struct def_file *f = &dp->files[dp->n_files++];
                        *f = (struct def_file){ .d_type = de->d_type };
                        if (vgpu_uuid_valid(de->d_name))
                                memcpy(f->uuid, de->d_name, VGPU_UUID_MAX);
                        else if ((f->other_name = strdup(de->d_name)))
                                f->why = "file name is not a UUID";
                        else
                                return -ENOMEM;
                }
        return 0;
}

struct def_round {
        int storefd;
        struct def_parent *parents;
};

/* One parent: its directory listed, then its definitions read and parsed relative to it (a
 * name, not PARENT/UUID from the store's top). Parents run in parallel. */
static int read_parent_job(size_t i, void *userdata) {
        struct def_round *round = userdata;
        struct def_parent *dp = &round->parents[i];
        _cleanup_close_ int pfd = openat(round->storefd, dp->name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (pfd < 0)
                return 0; /* a file at the top level: not ours to judge */
        int r = list_parent(pfd, dp);
        if (r < 0)
                return r;
        char text[STORE_FILE_MAX + 1];
        for (size_t k = 0; k < dp->n_files; k++) {
                struct def_file *f = &dp->files[k];
                if (f->why || store_read_typed_at(pfd, f->uuid, f->d_type, text, sizeof(text), &f->why) < 0)
                        continue;
                r = store_parse(text, dp->name, f->uuid, &f->spec, &f->why);
                if (r == -ENOMEM)
                        return r;
                f->ok = r >= 0;
        }
        return 0;
}

/* Is name, an entry of the store's top directory, a link? (d_type, or lstat where the file
 * system does not say.) */
static bool entry_is_link(int storefd, const struct dirent *de) {
        struct stat st;
        if (de->d_type != DT_UNKNOWN)
                return de->d_type == DT_LNK;
        return fstatat(storefd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
}

int store_definitions(struct vgpu_mdev_spec **ret, size_t *ret_n, char **ret_warnings, unsigned flags,
                      struct vgpu_error *err) {
        struct def_parent *parents = NULL;
        size_t n_parents = 0, allocated = 0, n_files = 0;
        char *warnings = NULL;
        size_t wsize = 0;
        FILE *w = ret_warnings ? open_memstream(&warnings, &wsize) : NULL;
        int r = 0;
        /* without the stream, skipped files would go unreported: the caller asked to know */
        if (ret_warnings && !w)
                return vgpu_error_set(err, -ENOMEM, "out of memory");

        int storefd = root_open_dir(MDEVCTL_STORE);
        if (storefd < 0 && storefd != -ENOENT)
                r = vgpu_error_set_errno(err, storefd, "%s%s", root_prefix(), MDEVCTL_STORE);
        DIR *top = storefd >= 0 ? fdopendir(storefd) : NULL;
        if (storefd >= 0 && !top) {
                close(storefd);
                r = vgpu_error_set(err, -ENOMEM, "out of memory");
        }
        struct dirent *pe;
        while (r >= 0 && top && (pe = readdir(top))) {
                if (!is_parent_dir(pe->d_name) || strlen(pe->d_name) >= sizeof(parents->name))
                        continue;
                if (!GREEDY_REALLOC(parents, allocated, n_parents + 1)) {
                        r = -ENOMEM;
                        break;
                }
                struct def_parent *dp = &parents[n_parents++];
                *dp = (struct def_parent){ .remove_temps = (flags & STORE_REMOVE_TEMPS) &&
                                                           !entry_is_link(dirfd(top), pe) };
                memcpy(dp->name, pe->d_name, strlen(pe->d_name) + 1); /* shorter: checked */
        }
        /* a parent holds a few definitions: 16 parents are worth a thread */
        struct def_round round = { top ? dirfd(top) : -1, parents };
        if (r >= 0)
                r = parallel_for(n_parents, 16, read_parent_job, &round);
        if (top)
                closedir(top);

        for (size_t i = 0; i < n_parents; i++)
                n_files += parents[i].n_files;
        struct vgpu_mdev_spec *specs = r >= 0 ? calloc(n_files + 1, sizeof(*specs)) : NULL;
        size_t n = 0;
        if (r >= 0 && !specs)
                r = -ENOMEM;
        for (size_t i = 0; i < n_parents; i++) {
                for (size_t k = 0; k < parents[i].n_files; k++) {
                        struct def_file *f = &parents[i].files[k];
                        if (f->ok && r >= 0)
                                specs[n++] = f->spec;
                        else {
                                if (!f->ok && f->why)
                                        warn(w, parents[i].name, f->other_name ? f->other_name : f->uuid,
                                             f->why);
                                vgpu_mdev_spec_free(&f->spec);
                                free(f->other_name);
                        }
                }
                free(parents[i].files);
        }
        free(parents);
        if (w)
                fclose(w);
        if (r < 0) {
                vgpu_mdev_specs_free(specs, n);
                free(warnings);
                return r == -ENOMEM ? vgpu_error_set(err, r, "out of memory") : r;
        }
        qsort_safe(specs, n, sizeof(*specs), cmp_spec);
        *ret = specs;
        *ret_n = n;
        if (ret_warnings)
                *ret_warnings = warnings;
        return 0;
}

_public_ int vgpu_mdev_definitions(struct vgpu_mdev_spec **ret, size_t *ret_n, char **ret_warnings,
                                   struct vgpu_error *err) {
        return store_definitions(ret, ret_n, ret_warnings, 0, err);
}
