/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * kernel-log.c — the kernel's messages of the running boot, for checks whose cause only the
 * kernel logged (KVM refused by the firmware, a vendor module's complaints). /dev/kmsg is the
 * live ring buffer, but it has wrapped on a host up for weeks and a fixture cannot hold it, so
 * the doctor reads what the system kept: the journal (sd-journal, _TRANSPORT=kernel of this
 * boot), else rsyslog's /var/log/kern.log (Ubuntu's default) from the last boot banner on.
 * _find gives the first message matching, _grep the last few with their count.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/root.h"
#include "doctor-dl.h"
#include "doctor-internal.h"

#define MIN_LEN(a, b)       ((a) < (b) ? (a) : (b))
#define MAX_LEN(a, b)       ((a) > (b) ? (a) : (b))
#define KERN_LOG_TAIL       (4 << 20) /* a boot's kernel lines; older boots lie before */
#define JOURNAL_MAX_ENTRIES 200000    /* a kernel spamming one message must not hang us */

bool doctor_text_matches(const char *msg, size_t len, const char *const *needles) {
        for (size_t i = 0; needles[i]; i++) {
                size_t n = strlen(needles[i]);
                for (size_t o = 0; o + n <= len; o++)
                        if (strncasecmp(msg + o, needles[i], n) == 0)
                                return true;
        }
        return false;
}

bool doctor_boot_id_match(char buf[static 64]) {
        char id[64];
        if (root_read("/proc/sys/kernel/random/boot_id", id, sizeof(id)) < 0)
                return false;
        size_t o = snprintf(buf, 64, "_BOOT_ID=");
        for (const char *c = id; *c && o + 1 < 64; c++)
                if (*c != '-')
                        buf[o++] = *c;
        buf[o] = '\0';
        return o == 9 + 32;
}

int doctor_journal_open(const struct libsystemd_dl **ret_sd, sd_journal **ret, struct vgpu_error *err) {
        if (!doctor_path_exists("/var/log/journal", NULL, 0) &&
            !doctor_path_exists("/run/log/journal", NULL, 0))
                return -ENOENT;
        const struct libsystemd_dl *sd = doctor_libsystemd(err);
        if (!sd)
                return -EOPNOTSUPP;
        int r;
        if (root_prefix()[0] == '\0')
                r = sd->sd_journal_open(ret, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM);
        else {
                char root[4096];
                if (root_path(root, sizeof(root), "/") < 0)
                        return -ENOENT;
                /* OS_ROOT: the directory is a whole tree; its var/log/journal and run/log/journal
                 * are read, as journalctl --root does */
                r = sd->sd_journal_open_directory(ret, root, SD_JOURNAL_OS_ROOT);
        }
        if (r < 0)
                return r == -ENOMEM ? r : -ENOENT;
        *ret_sd = sd;
        return 0;
}

/* Called for each kernel message of this boot that holds a needle (len bytes, not NUL-terminated);
 * a non-zero return ends the walk and is what the walk returns. */
typedef int (*kernel_line_fn)(const char *line, size_t len, void *userdata);

/* The journal's kernel messages of this boot: the callback's first non-zero return, 0 when it
 * never stopped, -ENOENT without a journal, -EOPNOTSUPP without libsystemd (err says so), -ENOMEM. */
static int journal_walk(const char *const *needles, kernel_line_fn fn, void *userdata,
                        struct vgpu_error *err) {
        const struct libsystemd_dl *sd;
        sd_journal *j = NULL;
        int r = doctor_journal_open(&sd, &j, err);
        if (r < 0)
                return r;
        char boot[64];
        r = sd->sd_journal_add_match(j, "_TRANSPORT=kernel", 0);
        if (r >= 0 && doctor_boot_id_match(boot))
                r = sd->sd_journal_add_match(j, boot, 0);
        if (r < 0) {
                /* a journal we cannot filter tells us nothing; only out of memory is an error */
                sd->sd_journal_close(j);
                return r == -ENOMEM ? r : 0;
        }
        size_t n = 0;
        /* SD_JOURNAL_FOREACH, through the loaded table */
        if (sd->sd_journal_seek_head(j) >= 0)
                while (sd->sd_journal_next(j) > 0) {
                        const void *data;
                        size_t len;
                        if (++n > JOURNAL_MAX_ENTRIES)
                                break;
                        if (sd->sd_journal_get_data(j, "MESSAGE", &data, &len) < 0 || len < 8)
                                continue;
                        const char *msg = (const char *) data + 8; /* "MESSAGE=" */
                        if (doctor_text_matches(msg, len - 8, needles) &&
                            (r = fn(msg, len - 8, userdata)) != 0)
                                break;
                }
        sd->sd_journal_close(j);
        return r;
}

/* The same over rsyslog's /var/log/kern.log, from the last boot banner on; -ENOENT without it. */
static int kern_log_walk(const char *const *needles, kernel_line_fn fn, void *userdata) {
        _cleanup_free_ char *buf = NULL;
        size_t size;
        int r = root_read_tail("/var/log/kern.log", KERN_LOG_TAIL, &buf, &size, NULL);
        if (r < 0)
                return r;
        /* The running boot starts at the last "Linux version" banner the kernel printed. */
        const char *from = buf;
        for (const char *p = buf; (p = strstr(p, "Linux version ")); p++)
                from = p;
        for (const char *line = from; *line;) {
                const char *end = strchrnul(line, '\n');
                if (doctor_text_matches(line, (size_t) (end - line), needles) &&
                    (r = fn(line, (size_t) (end - line), userdata)) != 0)
                        return r;
                line = *end ? end + 1 : end;
        }
        return 0;
}

/* The journal if the host keeps one (and libsystemd is there to read it), else kern.log; source
 * names the one read, or on -ENOENT why there was none. */
static int kernel_log_walk(const char *const *needles, kernel_line_fn fn, void *userdata, char *source,
                           size_t size) {
        struct vgpu_error err = {};
        snprintf(source, size, "journal (kernel messages of this boot)");
        int r = journal_walk(needles, fn, userdata, &err);
        if (r == -ENOENT || r == -EOPNOTSUPP) {
                bool no_lib = r == -EOPNOTSUPP;
                r = kern_log_walk(needles, fn, userdata);
                if (r == -ENOENT)
                        snprintf(source, size, "%s, no /var/log/kern.log",
                                 no_lib ? err.message : "no journal");
                else if (no_lib)
                        snprintf(source, size, "/var/log/kern.log (since the last boot; journal unread: %s)",
                                 err.message);
                else
                        snprintf(source, size, "/var/log/kern.log (since the last boot)");
        }
        return r;
}

static int take_first(const char *line, size_t len, void *userdata) {
        char **ret_line = userdata;
        *ret_line = strndup(line, len);
        return *ret_line ? 1 : -ENOMEM;
}

int doctor_kernel_log_find(const char *const *needles, char **ret_line, char *source, size_t size) {
        *ret_line = NULL;
        return kernel_log_walk(needles, take_first, ret_line, source, size);
}

/* The last n lines matching, kept in a ring. */
struct ring {
        char *lines[64];
        size_t n, next, count;
};

static int ring_push(const char *line, size_t len, void *userdata) {
        struct ring *ring = userdata;
        char *copy = strndup(line, MIN_LEN(len, 512));
        if (!copy)
                return -ENOMEM;
        free(ring->lines[ring->next]);
        ring->lines[ring->next] = copy;
        ring->next = (ring->next + 1) % ring->n;
        ring->count++;
        return 0;
}

static void ring_flush(struct ring *ring, struct text *ev) {
        size_t have = MIN_LEN(ring->count, ring->n);
        for (size_t i = 0; i < have; i++) {
                size_t k = (ring->next + ring->n - have + i) % ring->n;
                text_line(ev, "  %s", ring->lines[k]);
        }
        for (size_t i = 0; i < ring->n; i++)
                free(ring->lines[i]);
}

int doctor_kernel_log_grep(const char *const *needles, size_t n, struct text *ev) {
        struct ring ring = { .n = MIN_LEN(MAX_LEN(n, 1), ELEMENTSOF(ring.lines)) };
        char source[VGPU_ERROR_MESSAGE_MAX + 64];
        int r = kernel_log_walk(needles, ring_push, &ring, source, sizeof(source));
        if (r == -ENOENT) {
                text_line(ev, "kernel log: %s", source);
                return ev->oom ? -ENOMEM : 0;
        }
        if (r >= 0)
                text_line(ev, "%s: %zu matching lines%s", source, ring.count,
                          ring.count > ring.n ? ", the last ones:"
                          : ring.count        ? ":"
                                              : "");
        ring_flush(&ring, ev);
        if (r < 0)
                return r;
        return ev->oom ? -ENOMEM : (int) MIN_LEN(ring.count, (size_t) INT_MAX);
}
