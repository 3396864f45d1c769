/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * unit-state.c — a systemd unit as systemd sees it, for checks on services the vGPU stack
 * needs (NVIDIA's vGPU manager): its load/active/sub state and result over sd-bus, and its last
 * log lines of this boot from the journal (or rsyslog's /var/log/syslog).
 */
#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/root.h"
#include "doctor-dl.h"
#include "doctor-internal.h"

#define SYSLOG_TAIL  (4 << 20)
#define LOG_LINE_MAX 512
#define MIN(a, b)    ((a) < (b) ? (a) : (b))

static int unit_state_bus(const char *unit, struct unit_state *ret, char *source, size_t size) {
        struct vgpu_error err = {};
        const struct libsystemd_dl *sd = doctor_libsystemd(&err);
        if (!sd) {
                snprintf(source, size, "no sd-bus to ask systemd: %s", err.message);
                return 0;
        }
        sd_bus *bus = NULL;
        int r = sd->sd_bus_open_system(&bus);
        if (r < 0) {
                snprintf(source, size, "system bus: %s (is systemd running?)", strerror(-r));
                return r == -ENOMEM ? r : 0;
        }
        _cleanup_free_ char *path = NULL;
        r = sd->sd_bus_path_encode("/org/freedesktop/systemd1/unit", unit, &path);
        static const struct {
                const char *iface, *name;
                size_t offset;
        } props[] = {
                { "org.freedesktop.systemd1.Unit", "LoadState", offsetof(struct unit_state, load) },
                { "org.freedesktop.systemd1.Unit", "ActiveState", offsetof(struct unit_state, active) },
                { "org.freedesktop.systemd1.Unit", "SubState", offsetof(struct unit_state, sub) },
                { "org.freedesktop.systemd1.Service", "Result", offsetof(struct unit_state, result) },
        };
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(props); i++) {
                sd_bus_error error = SD_BUS_ERROR_NULL;
                char *v = NULL;
                /* the unit's object path loads the unit on demand, as `systemctl show` does */
                r = sd->sd_bus_get_property_string(bus, "org.freedesktop.systemd1", path, props[i].iface,
                                                   props[i].name, &error, &v);
                if (r < 0) {
                        snprintf(source, size, "org.freedesktop.systemd1 %s.%s: %s", unit, props[i].name,
                                 error.message ? error.message : strerror(-r));
                        sd->sd_bus_error_free(&error);
                        break;
                }
                snprintf((char *) ret + props[i].offset, sizeof(ret->load), "%s", v);
                free(v);
        }
        if (r >= 0) {
                int32_t status = -1;
                if (sd->sd_bus_get_property_trivial(bus, "org.freedesktop.systemd1", path,
                                                    "org.freedesktop.systemd1.Service", "ExecMainStatus",
                                                    NULL, 'i', &status) >= 0)
                        ret->exec_main_status = status;
                snprintf(source, size, "systemd (org.freedesktop.systemd1)");
        }
        sd->sd_bus_flush_close_unref(bus);
        if (r == -ENOMEM)
                return r;
        return r >= 0;
}

/* `systemctl show UNIT` output: Key=Value lines. */
static int unit_state_captured(const char *unit, struct unit_state *ret, char *source, size_t size) {
        char path[256];
        snprintf(path, sizeof(path), "/run/vgpuctl/systemctl-show/%s", unit);
        _cleanup_free_ char *text = NULL;
        int r = doctor_read_file(path, &text);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                snprintf(source, size, "%s: absent (VGPU_ROOT=%s has no systemd to ask)", path,
                         root_prefix());
                return 0;
        }
        static const struct {
                const char *key;
                size_t offset;
        } keys[] = {
                { "LoadState=", offsetof(struct unit_state, load) },
                { "ActiveState=", offsetof(struct unit_state, active) },
                { "SubState=", offsetof(struct unit_state, sub) },
                { "Result=", offsetof(struct unit_state, result) },
        };
        for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                size_t len = strcspn(line, "\n");
                for (size_t i = 0; i < ELEMENTSOF(keys); i++) {
                        size_t k = strlen(keys[i].key);
                        if (len > k && strncmp(line, keys[i].key, k) == 0)
                                snprintf((char *) ret + keys[i].offset, sizeof(ret->load), "%.*s",
                                         (int) (len - k), line + k);
                }
                if (strncmp(line, "ExecMainStatus=", 15) == 0)
                        ret->exec_main_status = atoi(line + 15);
        }
        snprintf(source, size, "%s, captured systemctl show", path);
        return ret->load[0] && ret->active[0];
}

int doctor_unit_state(const char *unit, struct unit_state *ret, char *source, size_t size) {
        *ret = (struct unit_state){ .exec_main_status = -1 };
        if (root_prefix()[0] == '\0')
                return unit_state_bus(unit, ret, source, size);
        return unit_state_captured(unit, ret, source, size);
}

/* The last n entries of the journal's current matches, oldest first. */
static int journal_tail(const struct libsystemd_dl *sd, sd_journal *j, size_t n, struct text *ev) {
        _cleanup_free_ char **lines = calloc(n, sizeof(char *));
        if (!lines)
                return -ENOMEM;
        size_t got = 0;
        int r = 0;
        if (sd->sd_journal_seek_tail(j) >= 0)
                while (got < n && sd->sd_journal_previous(j) > 0) {
                        const void *msg, *id;
                        size_t mlen, ilen;
                        if (sd->sd_journal_get_data(j, "MESSAGE", &msg, &mlen) < 0)
                                continue;
                        if (sd->sd_journal_get_data(j, "SYSLOG_IDENTIFIER", &id, &ilen) < 0) {
                                id = "SYSLOG_IDENTIFIER=?";
                                ilen = 19;
                        }
                        if (asprintf(&lines[got], "%.*s: %.*s", (int) (ilen - 18), (const char *) id + 18,
                                     (int) MIN(mlen - 8, (size_t) LOG_LINE_MAX),
                                     (const char *) msg + 8) < 0) {
                                lines[got] = NULL;
                                r = -ENOMEM;
                                break;
                        }
                        got++;
                }
        for (size_t i = got; i > 0; i--) {
                text_line(ev, "  %s", lines[i - 1]);
                free(lines[i - 1]);
        }
        return r < 0 ? r : (int) got;
}

/* -ENOENT without a journal, -EOPNOTSUPP without libsystemd (err says so). */
static int journal_unit_tail(const char *unit, size_t n, struct text *ev, struct vgpu_error *err) {
        const struct libsystemd_dl *sd;
        sd_journal *j = NULL;
        int r = doctor_journal_open(&sd, &j, err);
        if (r < 0)
                return r;
        char boot[64], m1[256], m2[256];
        bool have_boot = doctor_boot_id_match(boot);
        snprintf(m1, sizeof(m1), "_SYSTEMD_UNIT=%s", unit);
        snprintf(m2, sizeof(m2), "UNIT=%s", unit);
        /* (this boot AND the unit's own lines) OR (this boot AND systemd's lines about it) */
        r = have_boot ? sd->sd_journal_add_match(j, boot, 0) : 0;
        if (r >= 0)
                r = sd->sd_journal_add_match(j, m1, 0);
        if (r >= 0)
                r = sd->sd_journal_add_disjunction(j);
        if (r >= 0 && have_boot)
                r = sd->sd_journal_add_match(j, boot, 0);
        if (r >= 0)
                r = sd->sd_journal_add_match(j, m2, 0);
        if (r >= 0) {
                text_line(ev, "journal, this boot, -u %s:", unit);
                r = journal_tail(sd, j, n, ev);
        }
        sd->sd_journal_close(j);
        return r;
}

static int syslog_unit_tail(const char *unit, const char *ident, size_t n, struct text *ev) {
        _cleanup_free_ char *buf = NULL;
        size_t len;
        int r = root_read_tail("/var/log/syslog", SYSLOG_TAIL, &buf, &len, NULL);
        if (r < 0)
                return r;

        char tag1[128], tag2[128];
        snprintf(tag1, sizeof(tag1), " %s[", ident);
        snprintf(tag2, sizeof(tag2), " %s:", ident);
        const char *const needles[] = { tag1, tag2, unit, NULL };
        /* walk back from the end: the last n lines that match */
        const char *hits[64];
        size_t got = 0;
        n = MIN(n, ELEMENTSOF(hits));
        for (const char *end = buf + len; end > buf && got < n;) {
                const char *line = end;
                while (line > buf && line[-1] != '\n')
                        line--;
                if (doctor_text_matches(line, (size_t) (end - line), needles))
                        hits[got++] = line;
                end = line > buf ? line - 1 : buf;
        }
        text_line(ev, "/var/log/syslog, lines of %s:", unit);
        for (size_t i = got; i > 0; i--)
                text_line(ev, "  %.*s", (int) MIN(strcspn(hits[i - 1], "\n"), (size_t) LOG_LINE_MAX),
                          hits[i - 1]);
        return (int) got;
}

int doctor_unit_log_tail(const char *unit, const char *ident, size_t n, struct text *ev) {
        struct vgpu_error err = {};
        int r = journal_unit_tail(unit, n, ev, &err);
        if (r == -EOPNOTSUPP)
                text_line(ev, "journal unread: %s", err.message);
        if (r == -ENOENT || r == -EOPNOTSUPP)
                r = syslog_unit_tail(unit, ident, n, ev);
        if (r == -ENOENT) {
                text_line(ev, "no journal and no /var/log/syslog for the lines of %s", unit);
                r = 0;
        }
        return r < 0 ? r : (ev->oom ? -ENOMEM : r);
}
