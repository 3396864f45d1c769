/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * harden-nft.c — the firewall half of `vgpuctl harden` that talks to the kernel through nft:
 * read the live ruleset (`nft -j list ruleset`) to see whether the VDI management ports are
 * dropped on each public interface, load our ruleset (`nft -f`), and include it from
 * /etc/nftables.conf so that nftables.service loads it at boot.
 *
 * The live check looks at what the kernel does, not at our file: a ruleset someone loaded by
 * hand, or a table that was flushed since, counts for what it is. It accepts drops in any base
 * chain on the input hook of any table, one (interface, protocol, port) at a time, so rules
 * written differently from ours (one per port, a set per interface) count too.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <json-c/json.h>

#include "basic/fileio.h"
#include "basic/root.h"
#include "harden-internal.h"

extern char **environ;

/* Run nft with args; its stdout into *ret_out (may be NULL). The exit status, or -errno;
 * -ENOENT when nft is not installed. */
static int run_nft(char *const argv[], char **ret_out) {
        int pipefd[2];
        if (pipe2(pipefd, O_CLOEXEC) < 0)
                return -errno;
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
        posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
        pid_t pid;
        int e = posix_spawnp(&pid, "nft", &fa, NULL, argv, environ);
        posix_spawn_file_actions_destroy(&fa);
        close(pipefd[1]);
        if (e != 0) {
                close(pipefd[0]);
                return -e;
        }
        char *buf = NULL;
        size_t len = 0, allocated = 0;
        int r = 0;
        for (;;) {
                if (len + 4096 + 1 > allocated) {
                        char *b = realloc(buf, allocated = (len + 4096 + 1) * 2);
                        if (!b) {
                                r = -ENOMEM;
                                break;
                        }
                        buf = b;
                }
                ssize_t n = read(pipefd[0], buf + len, allocated - len - 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len += (size_t) n;
        }
        close(pipefd[0]);
        int status = 0;
        if (waitpid(pid, &status, 0) < 0 && r == 0)
                r = -errno;
        if (r < 0) {
                free(buf);
                return r;
        }
        if (buf)
                buf[len] = 0;
        if (ret_out)
                *ret_out = buf;
        else
                free(buf);
        if (!WIFEXITED(status))
                return -EIO;
        return WEXITSTATUS(status) == 127 ? -ENOENT : WEXITSTATUS(status);
}

/* The strings (or numbers) a match's right-hand side names: one value or {"set": [...]}. */
static bool right_has(json_object *right, const char *s, long n) {
        json_object *set;
        if (json_object_is_type(right, json_type_object) && json_object_object_get_ex(right, "set", &set) &&
            json_object_is_type(set, json_type_array)) {
                for (size_t i = 0; i < json_object_array_length(set); i++)
                        if (right_has(json_object_array_get_idx(set, i), s, n))
                                return true;
                return false;
        }
        if (s)
                return json_object_is_type(right, json_type_string) &&
                       strcmp(json_object_get_string(right), s) == 0;
        return json_object_is_type(right, json_type_int) && json_object_get_int64(right) == n;
}

static json_object *get_path(json_object *o, const char *a, const char *b) {
        json_object *x = NULL, *y = NULL;
        if (!json_object_object_get_ex(o, a, &x))
                return NULL;
        if (!b)
                return x;
        return json_object_object_get_ex(x, b, &y) ? y : NULL;
}

static const char *get_string(json_object *o, const char *key) {
        json_object *v = get_path(o, key, NULL);
        return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* Does this rule drop (iface, proto, port)? Only "iifname == ...", "PROTO dport == ..." and
 * drop: a rule with anything else (a counter aside) may not match every such packet. */
static bool rule_drops(json_object *expr, const char *iface, const char *proto, long port) {
        bool have_if = false, have_port = false, drop = false;
        for (size_t i = 0; i < json_object_array_length(expr); i++) {
                json_object *e = json_object_array_get_idx(expr, i), *m;
                if (json_object_object_get_ex(e, "drop", NULL)) {
                        drop = true;
                        continue;
                }
                if (json_object_object_get_ex(e, "counter", NULL))
                        continue;
                if (!json_object_object_get_ex(e, "match", &m))
                        return false;
                const char *op = get_string(m, "op");
                json_object *right = get_path(m, "right", NULL);
                const char *key = get_string(get_path(m, "left", "meta"), "key");
                json_object *payload = get_path(m, "left", "payload");
                if (!right || (op && strcmp(op, "==") != 0 && strcmp(op, "in") != 0))
                        return false;
                if (key && strcmp(key, "iifname") == 0) {
                        if (!right_has(right, iface, 0))
                                return false;
                        have_if = true;
                } else if (payload && get_string(payload, "protocol") && get_string(payload, "field") &&
                           strcmp(get_string(payload, "protocol"), proto) == 0 &&
                           strcmp(get_string(payload, "field"), "dport") == 0) {
                        if (!right_has(right, NULL, port))
                                return false;
                        have_port = true;
                } else
                        return false;
        }
        return have_if && have_port && drop;
}

/* Is chain (family, table, name) a base chain on the input hook? */
static bool input_chain(json_object *items, const char *family, const char *table, const char *name) {
        for (size_t i = 0; i < json_object_array_length(items); i++) {
                json_object *c = get_path(json_object_array_get_idx(items, i), "chain", NULL);
                const char *f = c ? get_string(c, "family") : NULL, *t = c ? get_string(c, "table") : NULL;
                const char *n = c ? get_string(c, "name") : NULL, *h = c ? get_string(c, "hook") : NULL;
                if (f && t && n && h && strcmp(f, family) == 0 && strcmp(t, table) == 0 &&
                    strcmp(n, name) == 0)
                        return strcmp(h, "input") == 0 &&
                               (strcmp(f, "inet") == 0 || strcmp(f, "ip") == 0 || strcmp(f, "ip6") == 0);
        }
        return false;
}

static bool dropped(json_object *items, const char *iface, const char *proto, long port) {
        for (size_t i = 0; i < json_object_array_length(items); i++) {
                json_object *rule = get_path(json_object_array_get_idx(items, i), "rule", NULL), *expr;
                if (!rule || !json_object_object_get_ex(rule, "expr", &expr) ||
                    !json_object_is_type(expr, json_type_array))
                        continue;
                const char *f = get_string(rule, "family"), *t = get_string(rule, "table"),
                           *c = get_string(rule, "chain");
                if (f && t && c && input_chain(items, f, t, c) && rule_drops(expr, iface, proto, port))
                        return true;
        }
        return false;
}

int harden_nft_live(const struct vgpu_harden_options *o, const uint16_t *ports, size_t n_ports,
                    struct text *ev) {
        char *out = NULL;
        char *argv[] = { (char *) "nft", (char *) "-j", (char *) "list", (char *) "ruleset", NULL };
        int r = run_nft(argv, &out);
        if (r != 0) {
                free(out);
                if (r == -ENOMEM)
                        return r;
                text_line(ev, "nft -j list ruleset: %s",
                          r == -ENOENT ? "nft not installed"
                          : r > 0      ? "failed (not root?)"
                                       : strerror(-r));
                return -ENODATA;
        }
        json_object *root = json_tokener_parse(out ? out : "");
        free(out);
        json_object *items = root ? get_path(root, "nftables", NULL) : NULL;
        if (!items || !json_object_is_type(items, json_type_array)) {
                json_object_put(root);
                text_line(ev, "nft -j list ruleset: not the JSON expected");
                return -ENODATA;
        }
        size_t missing = 0, total = 0;
        for (size_t i = 0; i < o->n_public_ifaces; i++)
                for (size_t j = 0; j < n_ports; j++)
                        for (int p = 0; p < 2; p++) {
                                const char *proto = p ? "udp" : "tcp";
                                total++;
                                if (!dropped(items, o->public_ifaces[i], proto, ports[j])) {
                                        if (missing++ < 8)
                                                text_line(ev, "live ruleset: %s %s port %u is open",
                                                          o->public_ifaces[i], proto, (unsigned) ports[j]);
                                }
                        }
        json_object_put(root);
        text_line(
                ev,
                "live ruleset (nft -j list ruleset): %zu of %zu interface/protocol/port combinations dropped",
                total - missing, total);
        return missing == 0 ? 1 : 0;
}

int harden_nft_load(const char *host_path, struct text *log) {
        char full[PATH_MAX];
        int r = root_path(full, sizeof(full), host_path);
        if (r < 0)
                return r;
        char *argv[] = { (char *) "nft", (char *) "-f", full, NULL };
        r = run_nft(argv, NULL);
        if (r == 0)
                text_line(log, "%s: loaded (nft -f)", host_path);
        else
                text_line(log, "%s: nft -f failed: %s", host_path,
                          r == -ENOENT ? "nft not installed"
                          : r > 0      ? "nft rejected it, or not root"
                                       : strerror(-r));
        return r == 0 ? 0 : -EIO;
}

/* A host file's text: 0, -ENOENT, or another -errno. */
static int read_text(const char *host_path, char **ret) {
        char full[PATH_MAX];
        int r = root_path(full, sizeof(full), host_path);
        if (r < 0)
                return r;
        FILE *f = fopen(full, "re");
        if (!f)
                return -errno;
        char *buf = NULL;
        size_t n = 0;
        ssize_t got = getdelim(&buf, &n, 0, f); /* the whole file: it holds no NUL */
        bool failed = ferror(f);
        fclose(f);
        if (failed) {
                free(buf);
                return -EIO;
        }
        if (got < 0) {
                free(buf);
                buf = strdup("");
        }
        if (!buf)
                return -ENOMEM;
        *ret = buf;
        return 0;
}

int harden_nft_persist(const char *include_path, struct text *log) {
        char line[PATH_MAX + 16];
        snprintf(line, sizeof(line), "include \"%s\"", include_path);
        char *old = NULL;
        int r = read_text(VGPU_HARDEN_NFT_CONF, &old);
        if (r < 0 && r != -ENOENT) {
                text_line(log, "%s: cannot read: %s", VGPU_HARDEN_NFT_CONF, strerror(-r));
                return r;
        }
        /* already there, or a glob include of the whole directory such as Debian examples use (nftables.d, star .nft) */
        if (old && (strstr(old, line) || strstr(old, "include \"/etc/nftables.d/*"))) {
                free(old);
                return 0;
        }
        const char *head = old ? old : "#!/usr/sbin/nft -f\n";
        size_t hl = strlen(head);
        char *text = NULL;
        if (asprintf(&text,
                     "%s%s# added by vgpuctl harden --apply: the VDI management ports stay closed after a "
                     "reboot\n%s\n",
                     head, hl && head[hl - 1] != '\n' ? "\n" : "", line) < 0) {
                free(old);
                return -ENOMEM;
        }
        r = write_file_atomic(VGPU_HARDEN_NFT_CONF, text, strlen(text), 0755);
        free(text);
        free(old);
        if (r < 0)
                text_line(log, "%s: write failed: %s", VGPU_HARDEN_NFT_CONF, strerror(-r));
        else
                text_line(log, "%s: includes %s (loaded at boot by nftables.service)", VGPU_HARDEN_NFT_CONF,
                          include_path);
        return r;
}
