/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * harden.c — `vgpuctl harden`'s library side: audit who may write the files that change the GPU
 * carve-up (mdev create/remove, sriov_numvfs, /dev/vfio/N, the daemon socket), generate the
 * nftables ruleset closing the VDI management ports on public interfaces, and fix what can be.
 * Results use doctor's model and helpers (doctor-internal.h); every path goes through root.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <grp.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basic/error-util.h"
#include "basic/fileio.h"
#include "basic/root.h"
#include "doctor/doctor-internal.h"
#include "harden-internal.h"
#include "vgpu/harden.h"

extern char **environ;

static const uint16_t default_ports[] = { 443, 4172, 8443 };

static const char *const harden_ids[] = {
        "harden.mdev_create",
        "harden.sriov_numvfs",
        "harden.vfio_devices",
        "harden.daemon_socket",
        "harden.firewall",
        "harden.gpu_devices",
        NULL,
};

_public_ const char *const *vgpu_harden_check_ids(void) {
        return harden_ids;
}

/* A list of host paths (without the root prefix). */
struct paths {
        char **v;
        size_t n, allocated;
};

static void paths_done(struct paths *p) {
        for (size_t i = 0; i < p->n; i++)
                free(p->v[i]);
        free(p->v);
        *p = (struct paths){};
}

static int paths_add(struct paths *p, const char *path) {
        if (!GREEDY_REALLOC(p->v, p->allocated, p->n + 1))
                return -ENOMEM;
        if (!(p->v[p->n] = strdup(path)))
                return -ENOMEM;
        p->n++;
        return 0;
}

/* Add the host paths matching pattern (absolute, under the root); keep(path) may filter. */
static int paths_glob(struct paths *p, const char *pattern, bool (*keep)(const char *path)) {
        char full[PATH_MAX];
        int r = root_path(full, sizeof(full), pattern);
        if (r < 0)
                return r;
        glob_t g = {};
        int gr = glob(full, 0, NULL, &g);
        if (gr == GLOB_NOSPACE) {
                globfree(&g);
                return -ENOMEM;
        }
        size_t skip = strlen(root_prefix());
        for (size_t i = 0; gr == 0 && r >= 0 && i < g.gl_pathc; i++) {
                const char *host = g.gl_pathv[i] + skip;
                if (!keep || keep(host))
                        r = paths_add(p, host);
        }
        globfree(&g);
        return r;
}

/* Only the physical functions of display controllers (PCI class 0x03xxxx). */
static bool is_gpu_numvfs(const char *path) {
        char cls[PATH_MAX], buf[32];
        const char *slash = strrchr(path, '/');
        snprintf(cls, sizeof(cls), "%.*s/class", (int) (slash - path), path);
        return root_read(cls, buf, sizeof(buf)) > 0 && strncmp(buf, "0x03", 4) == 0;
}

/* What a file must look like: owner uid 0; with gid >= 0 that group and exactly `mode`,
 * otherwise no group/other write bit. */
struct want {
        long gid;
        mode_t mode;
        bool no_other; /* instead: any group, but no access at all for others */
};

static bool want_met(const struct stat *st, const struct want *w) {
        if (st->st_uid != 0)
                return false;
        if (w->no_other)
                return (st->st_mode & 0007) == 0;
        if (w->gid < 0)
                return (st->st_mode & (S_IWGRP | S_IWOTH)) == 0;
        return (long) st->st_gid == w->gid && (st->st_mode & 07777) == w->mode;
}

static const char *file_kind(mode_t m) {
        return S_ISCHR(m) ? "char device" : S_ISSOCK(m) ? "socket" : S_ISREG(m) ? "file" : "other";
}

/* Resolve a group name or numeric gid; -ENOENT when no such group. */
static int resolve_group(const char *name, long *ret) {
        char *end;
        errno = 0;
        long v = strtol(name, &end, 10);
        if (*name && !*end && errno == 0 && v >= 0 && v < UINT32_MAX) {
                *ret = v;
                return 0;
        }
        struct group *gr = getgrnam(name);
        if (!gr)
                return -ENOENT;
        *ret = (long) gr->gr_gid;
        return 0;
}

static const char *vfio_group(const struct vgpu_harden_options *o) {
        return o->vfio_group && *o->vfio_group ? o->vfio_group : "kvm";
}

static const char *socket_group(const struct vgpu_harden_options *o) {
        return o->socket_group && *o->socket_group ? o->socket_group : "vgpu";
}

static int collect_mdev(struct paths *p) {
        int r = paths_glob(p, "/sys/class/mdev_bus/*/mdev_supported_types/*/create", NULL);
        return r < 0 ? r : paths_glob(p, "/sys/bus/mdev/devices/*/remove", NULL);
}

static int collect_sriov(struct paths *p) {
        return paths_glob(p, "/sys/bus/pci/devices/*/sriov_numvfs", is_gpu_numvfs);
}

static bool not_vfio_container(const char *path) {
        return strcmp(path, "/dev/vfio/vfio") != 0;
}

static int collect_vfio(struct paths *p) {
        return paths_glob(p, "/dev/vfio/*", not_vfio_container);
}

static bool is_char_device(const char *path) {
        char full[PATH_MAX];
        struct stat st;
        return root_path(full, sizeof(full), path) >= 0 && stat(full, &st) >= 0 && S_ISCHR(st.st_mode);
}

/* The GPUs' own device nodes: NVIDIA's (nvidiactl, nvidia0, nvidia-uvm, ...; not the nvidia-caps
 * directory) and DRM's (card*, renderD*). Anyone who can open them can use, or reset, the GPU. */
static int collect_gpu_devices(struct paths *p) {
        int r = paths_glob(p, "/dev/nvidia*", is_char_device);
        if (r >= 0)
                r = paths_glob(p, "/dev/dri/card*", is_char_device);
        return r < 0 ? r : paths_glob(p, "/dev/dri/renderD*", is_char_device);
}

static int collect_socket(struct paths *p) {
        return root_access(VGPU_DAEMON_SOCKET, F_OK) >= 0 ? paths_add(p, VGPU_DAEMON_SOCKET) : 0;
}

/* Audit the files of one check against w. what: "mdev create/remove files" for summaries. */
static int audit_files(struct doctor *d, const struct paths *p, const struct want *w, const char *what,
                       const char *remedy, const char *none) {
        _cleanup_text_ struct text ev = {};
        if (p->n == 0) {
                text_line(&ev, "%s", none);
                return doctor_add(d, NULL, VGPU_CHECK_SKIP, &ev, NULL, "no %s", what);
        }
        size_t bad = 0, odd = 0;
        for (size_t i = 0; i < p->n; i++) {
                char full[PATH_MAX];
                struct stat st;
                if (root_path(full, sizeof(full), p->v[i]) < 0 || stat(full, &st) < 0) {
                        text_line(&ev, "%s: cannot stat: %s", p->v[i], strerror(errno));
                        bad++;
                        continue;
                }
                bool ok = want_met(&st, w);
                /* /dev/vfio holds only character devices; anything else is reported, never fixed */
                bool strange = w->gid >= 0 && strcmp(what, "VFIO group devices") == 0 && !S_ISCHR(st.st_mode);
                if (!ok || strange)
                        text_line(&ev, "%s: %s mode %04o owner %u:%u%s%s", p->v[i], file_kind(st.st_mode),
                                  (unsigned) (st.st_mode & 07777), (unsigned) st.st_uid, (unsigned) st.st_gid,
                                  ok ? "" : " (not allowed)",
                                  strange ? " (not a character device: left alone)" : "");
                if (!ok)
                        bad++;
                else if (strange)
                        odd++;
        }
        if (w->no_other)
                text_line(&ev, "wanted: owner uid 0, no access for others (o-rwx)");
        else if (w->gid >= 0)
                text_line(&ev, "wanted: owner 0:%ld mode %04o", w->gid, (unsigned) w->mode);
        else
                text_line(&ev, "wanted: owner uid 0, no group/other write bit");
        text_line(&ev, "%zu of %zu %s as wanted", p->n - bad, p->n, what);
        if (bad > 0)
                return doctor_add(d, NULL, VGPU_CHECK_FAIL, &ev, remedy,
                                  "%zu of %zu %s writable by others than root", bad, p->n, what);
        if (odd > 0)
                return doctor_add(d, NULL, VGPU_CHECK_WARN, &ev,
                                  "Remove the entries of /dev/vfio that are not character devices.",
                                  "%zu of %zu %s are not character devices", odd, p->n, what);
        return doctor_add(d, NULL, VGPU_CHECK_PASS, &ev, NULL, "%zu %s, root-only", p->n, what);
}

static int check_group_exists(struct doctor *d, const char *group, long *gid) {
        if (resolve_group(group, gid) >= 0)
                return 1;
        _cleanup_text_ struct text ev = {}, rem = {};
        text_line(&ev, "getgrnam(\"%s\"): no such group", group);
        text_line(&rem, "groupadd --system %s", group);
        if (rem.oom)
                return -ENOMEM;
        int r = doctor_add(d, NULL, VGPU_CHECK_FAIL, &ev, text_get(&rem), "group '%s' does not exist", group);
        return r < 0 ? r : 0;
}

static bool valid_ifname(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n >= 16)
                return false;
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      strchr("-_.@:", *s)))
                        return false;
        return true;
}

_public_ int vgpu_harden_ruleset(const struct vgpu_harden_options *opts, char **ret, struct vgpu_error *err) {
        if (!opts || !ret || opts->n_public_ifaces == 0)
                return vgpu_error_set(err, -EINVAL, "harden: no public interface named");
        const uint16_t *ports = opts->ports && opts->n_ports ? opts->ports : default_ports;
        size_t n_ports = opts->ports && opts->n_ports ? opts->n_ports : ELEMENTSOF(default_ports);
        _cleanup_text_ struct text ifs = {}, ps = {}, t = {};
        for (size_t i = 0; i < opts->n_public_ifaces; i++) {
                if (!valid_ifname(opts->public_ifaces[i]))
                        return vgpu_error_set(err, -EINVAL, "harden: invalid interface name '%s'",
                                              opts->public_ifaces[i]);
                text_append(&ifs, "%s\"%s\"", i ? ", " : "", opts->public_ifaces[i]);
        }
        for (size_t i = 0; i < n_ports; i++) {
                if (ports[i] == 0)
                        return vgpu_error_set(err, -EINVAL, "harden: invalid port 0");
                text_append(&ps, "%s%u", i ? ", " : "", (unsigned) ports[i]);
        }
        if (ifs.oom || ps.oom)
                return vgpu_error_set(err, -ENOMEM, "harden: out of memory");
        text_append(&t,
                    "#!/usr/sbin/nft -f\n"
                    "# Generated by vgpuctl harden: closes the VDI management ports on public interfaces.\n"
                    "table inet vgpuctl\n"
                    "flush table inet vgpuctl\n"
                    "table inet vgpuctl {\n"
                    "\tchain input {\n"
                    "\t\ttype filter hook input priority filter - 10; policy accept;\n"
                    "\t\tiifname { %s } tcp dport { %s } drop\n"
                    "\t\tiifname { %s } udp dport { %s } drop\n"
                    "\t}\n"
                    "}\n",
                    text_get(&ifs), text_get(&ps), text_get(&ifs), text_get(&ps));
        if (t.oom || !t.s)
                return vgpu_error_set(err, -ENOMEM, "harden: out of memory");
        *ret = t.s;
        t = (struct text){};
        return 0;
}

/* Run `nft -c -f FILE` on the ruleset. 1: accepted, 0: rejected, -ENOENT: nft not installed. */
static int nft_check(const char *ruleset) {
        char tmp[] = "/tmp/vgpuctl-nft.XXXXXX";
        int fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        size_t len = strlen(ruleset);
        bool ok = write(fd, ruleset, len) == (ssize_t) len;
        close(fd);
        int r = -EIO;
        if (ok) {
                posix_spawn_file_actions_t fa;
                posix_spawn_file_actions_init(&fa);
                posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
                posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
                char *argv[] = { (char *) "nft", (char *) "-c", (char *) "-f", tmp, NULL };
                pid_t pid;
                int e = posix_spawnp(&pid, "nft", &fa, NULL, argv, environ);
                posix_spawn_file_actions_destroy(&fa);
                int status = 0;
                if (e != 0)
                        r = -e;
                else if (waitpid(pid, &status, 0) < 0)
                        r = -errno;
                else
                        r = WIFEXITED(status) && WEXITSTATUS(status) == 0     ? 1
                            : WIFEXITED(status) && WEXITSTATUS(status) == 127 ? -ENOENT
                                                                              : 0;
        }
        unlink(tmp);
        return r;
}

/* proposed: o's interfaces are harden_propose_ifaces()'s, not the user's: said in the evidence,
 * the remedy names them, and an open port is a warning, not a failure */
static int check_firewall_for(struct doctor *d, const struct vgpu_harden_options *o, bool proposed) {
        _cleanup_text_ struct text ev = {}, rem = {};
        if (proposed) {
                _cleanup_text_ struct text names = {}, args = {};
                for (size_t i = 0; i < o->n_public_ifaces; i++) {
                        text_append(&names, "%s%s", i ? ", " : "", o->public_ifaces[i]);
                        text_append(&args, " --public-if %s", o->public_ifaces[i]);
                }
                text_line(&ev,
                          "public interfaces proposed from the default route: %s (--public-if names them)",
                          text_get(&names));
                text_line(&rem, "If they face untrusted networks, name them: vgpuctl harden --apply%s",
                          text_get(&args));
        }
        char *rules = NULL;
        struct vgpu_error e = {};
        int r = vgpu_harden_ruleset(o, &rules, &e);
        if (r < 0)
                return r == -ENOMEM ? r
                                    : doctor_add(d, NULL, VGPU_CHECK_FAIL, NULL,
                                                 "Name valid interfaces and ports.", "%s", e.message);

        int c = nft_check(rules);
        text_line(&ev, "nft -c -f: %s",
                  c == 1   ? "ruleset accepted"
                  : c == 0 ? "ruleset REJECTED"
                           : "not run (nft not installed)");

        char installed[PATH_MAX];
        bool current = false;
        if (root_path(installed, sizeof(installed), VGPU_HARDEN_NFT_PATH) >= 0) {
                FILE *f = fopen(installed, "re");
                if (f) {
                        size_t len = strlen(rules);
                        char *buf = malloc(len + 2);
                        current = buf && fread(buf, 1, len + 1, f) == len && memcmp(buf, rules, len) == 0;
                        free(buf);
                        fclose(f);
                        if (!buf) {
                                free(rules); /* not "absent or different": that is not known */
                                return -ENOMEM;
                        }
                }
        }
        text_line(&ev, "%s: %s", VGPU_HARDEN_NFT_PATH,
                  current ? "holds this ruleset" : "absent or different");
        const uint16_t *ports = o->ports && o->n_ports ? o->ports : default_ports;
        size_t n_ports = o->ports && o->n_ports ? o->n_ports : ELEMENTSOF(default_ports);
        int live = c == 0 ? -ENODATA : harden_nft_live(o, ports, n_ports, &ev);
        if (live == -ENOMEM) {
                free(rules);
                return live;
        }
        if (live == 1 && !current)
                text_line(&rem,
                          "The ports are closed now, but not after a reboot: vgpuctl harden --apply writes "
                          "%s and includes it "
                          "from %s",
                          VGPU_HARDEN_NFT_PATH, VGPU_HARDEN_NFT_CONF);
        else if (live != 1 && current)
                text_line(&rem,
                          "Load it: vgpuctl harden --apply (nft -f %s; included from %s for the next boot)",
                          VGPU_HARDEN_NFT_PATH, VGPU_HARDEN_NFT_CONF);
        else if (live != 1)
                text_line(&rem,
                          "vgpuctl harden --apply writes this ruleset to %s, loads it and includes it from "
                          "%s:\n%.*s",
                          VGPU_HARDEN_NFT_PATH, VGPU_HARDEN_NFT_CONF, (int) strlen(rules) - 1, rules);
        free(rules);
        if (rem.oom)
                return -ENOMEM;
        if (c == 0)
                return doctor_add(d, NULL, VGPU_CHECK_FAIL, &ev, text_get(&rem),
                                  "nft rejects the generated ruleset");
        if (live == 1 && current)
                return doctor_add(d, NULL, VGPU_CHECK_PASS, &ev, NULL,
                                  "management ports closed on %zu public interface(s)", o->n_public_ifaces);
        if (live == 1)
                return doctor_add(d, NULL, VGPU_CHECK_WARN, &ev, text_get(&rem),
                                  "management ports closed, but not persistent");
        if (live == 0)
                return doctor_add(d, NULL, proposed ? VGPU_CHECK_WARN : VGPU_CHECK_FAIL, &ev, text_get(&rem),
                                  "management ports open on %s interfaces",
                                  proposed ? "the default route's" : "public");
        return doctor_add(d, NULL, VGPU_CHECK_WARN, &ev, text_get(&rem), "cannot read the live ruleset; %s",
                          current ? "ruleset written" : "ruleset not installed");
}

static int check_firewall(struct doctor *d, const struct vgpu_harden_options *o) {
        if (o->n_public_ifaces > 0)
                return check_firewall_for(d, o, false);
        char **ifaces = NULL;
        size_t n = 0;
        int r = harden_propose_ifaces(&ifaces, &n);
        if (r < 0)
                return r;
        if (n == 0) {
                harden_ifaces_free(ifaces);
                _cleanup_text_ struct text ev = {};
                text_line(&ev,
                          "no interface marked public (--public-if IFACE), and none has a default route");
                return doctor_add(d, NULL, VGPU_CHECK_SKIP, &ev, NULL, "no public interface named");
        }
        struct vgpu_harden_options p = *o;
        p.public_ifaces = (const char *const *) ifaces;
        p.n_public_ifaces = n;
        r = check_firewall_for(d, &p, true);
        harden_ifaces_free(ifaces);
        return r;
}

typedef int (*collect_fn)(struct paths *p);

static int audit_one(struct doctor *d, const struct vgpu_harden_options *o, size_t i) {
        _cleanup_(paths_done) struct paths p = {};
        struct want w = { .gid = -1 };
        long gid;
        int r;
        d->check_id = harden_ids[i];
        switch (i) {
        case 0:
                if ((r = collect_mdev(&p)) < 0)
                        return r;
                return audit_files(d, &p, &w, "mdev create/remove files",
                                   "vgpuctl harden --apply (chmod go-w; chown root)",
                                   "/sys/class/mdev_bus, /sys/bus/mdev/devices: no create or remove file");
        case 1:
                if ((r = collect_sriov(&p)) < 0)
                        return r;
                return audit_files(d, &p, &w, "GPU sriov_numvfs files",
                                   "vgpuctl harden --apply (chmod go-w; chown root)",
                                   "/sys/bus/pci/devices/*/sriov_numvfs: none of a display controller");
        case 2:
        case 3: {
                const char *group = i == 2 ? vfio_group(o) : socket_group(o);
                if ((r = i == 2 ? collect_vfio(&p) : collect_socket(&p)) < 0)
                        return r;
                if (p.n == 0)
                        return audit_files(d, &p, &w, i == 2 ? "VFIO group devices" : "daemon socket", NULL,
                                           i == 2 ? "/dev/vfio: no group device"
                                                  : VGPU_DAEMON_SOCKET ": absent");
                if ((r = check_group_exists(d, group, &gid)) <= 0)
                        return r;
                w = (struct want){ .gid = gid, .mode = 0660 };
                _cleanup_text_ struct text rem = {};
                text_line(&rem, "vgpuctl harden --apply (chown root:%s; chmod 0660)", group);
                if (rem.oom)
                        return -ENOMEM;
                return audit_files(d, &p, &w, i == 2 ? "VFIO group devices" : "daemon socket", text_get(&rem),
                                   "");
        }
        case 4:
                return check_firewall(d, o);
        default:
                if ((r = collect_gpu_devices(&p)) < 0)
                        return r;
                w = (struct want){ .gid = -1, .no_other = true };
                r = audit_files(d, &p, &w, "GPU device nodes",
                                "vgpuctl harden --apply (chmod o-rwx; chown root; "
                                "kept by " VGPU_HARDEN_UDEV_RULES " and " VGPU_HARDEN_MODPROBE_CONF ")",
                                "/dev/nvidia*, /dev/dri/card*, /dev/dri/renderD*: none");
                return r;
        }
}

_public_ int vgpu_harden_audit(const struct vgpu_harden_options *opts, struct vgpu_doctor_report **ret,
                               struct vgpu_error *err) {
        if (!opts || !ret)
                return vgpu_error_set(err, -EINVAL, "harden: no options");
        /* allocated first so that vgpu_doctor_report_free() also cleans up after a failure */
        struct vgpu_doctor_report *report = calloc(1, sizeof(*report));
        if (!report)
                return vgpu_error_set(err, -ENOMEM, "harden: out of memory");
        struct doctor d = {};
        int r = 0;
        for (size_t i = 0; r >= 0 && harden_ids[i]; i++)
                r = audit_one(&d, opts, i);
        report->results = d.results;
        report->n_results = d.n_results;
        if (r < 0) {
                vgpu_doctor_report_free(report);
                return vgpu_error_set_errno(err, r, "harden");
        }
        *ret = report;
        return 0;
}

/* Fix one file to w; log what was done or what failed. */
static void fix_file(struct text *log, const char *path, const struct want *w) {
        char full[PATH_MAX];
        struct stat st;
        if (root_path(full, sizeof(full), path) < 0 || stat(full, &st) < 0 || want_met(&st, w))
                return;
        if (w->gid >= 0 && !S_ISCHR(st.st_mode) && strncmp(path, "/dev/vfio/", 10) == 0) {
                text_line(log, "%s: not a character device, left alone", path);
                return;
        }
        uid_t uid = 0;
        gid_t gid = w->gid >= 0 ? (gid_t) w->gid : (gid_t) -1;
        mode_t mode = w->no_other   ? (st.st_mode & 07770)
                      : w->gid >= 0 ? w->mode
                                    : (st.st_mode & 07777 & ~(mode_t) (S_IWGRP | S_IWOTH));
        if ((st.st_uid != uid || (w->gid >= 0 && st.st_gid != gid)) && chown(full, uid, gid) < 0)
                text_line(log, "%s: chown %u:%ld failed: %s", path, (unsigned) uid, w->gid, strerror(errno));
        else if (chmod(full, mode) < 0)
                text_line(log, "%s: chmod %04o failed: %s", path, (unsigned) mode, strerror(errno));
        else
                text_line(log, "%s: mode %04o owner %u:%u -> mode %04o owner 0:%u", path,
                          (unsigned) (st.st_mode & 07777), (unsigned) st.st_uid, (unsigned) st.st_gid,
                          (unsigned) mode, w->gid >= 0 ? (unsigned) w->gid : (unsigned) st.st_gid);
}

_public_ int vgpu_harden_apply(const struct vgpu_harden_options *opts, char **ret_changes,
                               struct vgpu_error *err) {
        if (!opts)
                return vgpu_error_set(err, -EINVAL, "harden: no options");
        _cleanup_text_ struct text log = {};
        int r;
        bool vfio = false, gpu = false;
        for (size_t i = 0; i < 5; i++) {
                _cleanup_(paths_done) struct paths p = {};
                struct want w = { .gid = -1, .no_other = i == 4 };
                r = i == 0   ? collect_mdev(&p)
                    : i == 1 ? collect_sriov(&p)
                    : i == 2 ? collect_vfio(&p)
                    : i == 3 ? collect_socket(&p)
                             : collect_gpu_devices(&p);
                if (r < 0)
                        return vgpu_error_set_errno(err, r, "harden: listing files");
                vfio |= i == 2 && p.n > 0;
                gpu |= i == 4 && p.n > 0;
                if ((i == 2 || i == 3) && p.n > 0) {
                        const char *group = i == 2 ? vfio_group(opts) : socket_group(opts);
                        if (resolve_group(group, &w.gid) < 0) {
                                text_line(&log, "group '%s' does not exist: %s left alone", group,
                                          i == 2 ? "/dev/vfio" : VGPU_DAEMON_SOCKET);
                                continue;
                        }
                        w.mode = 0660;
                }
                for (size_t j = 0; j < p.n; j++)
                        fix_file(&log, p.v[j], &w);
        }
        /* the modes set above, again at every boot and hotplug: udev makes the nodes anew */
        if ((vfio || gpu) && harden_persist_devices(vfio ? vfio_group(opts) : NULL, gpu, &log) == -ENOMEM)
                return vgpu_error_set(err, -ENOMEM, "harden: out of memory");
        if (opts->n_public_ifaces > 0) {
                char *rules = NULL;
                if ((r = vgpu_harden_ruleset(opts, &rules, err)) < 0)
                        return r;
                r = write_file_atomic(VGPU_HARDEN_NFT_PATH, rules, strlen(rules), 0644);
                free(rules);
                if (r < 0)
                        text_line(&log, "%s: write failed: %s", VGPU_HARDEN_NFT_PATH, strerror(-r));
                else {
                        text_line(&log, "%s: ruleset written", VGPU_HARDEN_NFT_PATH);
                        /* failures are in the log, and the re-audit says what is open */
                        (void) harden_nft_load(VGPU_HARDEN_NFT_PATH, &log);
                        if (harden_nft_persist(VGPU_HARDEN_NFT_PATH, &log) == -ENOMEM)
                                return vgpu_error_set(err, -ENOMEM, "harden: out of memory");
                }
        }
        if (log.oom)
                return vgpu_error_set(err, -ENOMEM, "harden: out of memory");
        if (ret_changes) {
                if (!(*ret_changes = strdup(text_get(&log))))
                        return vgpu_error_set(err, -ENOMEM, "harden: out of memory");
        }
        return 0;
}
