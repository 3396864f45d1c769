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
#include <systemd/sd-journal.h>

#include "basic/root.h"
#include "doctor-internal.h"

#define MIN_LEN(a, b) ((a) < (b) ? (a) : (b))
#define MAX_LEN(a, b) ((a) > (b) ? (a) : (b))
#define KERN_LOG_TAIL (4 << 20)         /* a boot's kernel lines; older boots lie before */
#define JOURNAL_MAX_ENTRIES 200000      /* a kernel spamming one message must not hang us */

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

/* The first entry (after the matches) whose MESSAGE holds a needle: 1, 0 or -ENOMEM. */
static int journal_scan(sd_journal *j, const char *const *needles, char **ret_line) {
        size_t n = 0;
        SD_JOURNAL_FOREACH(j) {
                const void *data;
                size_t len;
                if (++n > JOURNAL_MAX_ENTRIES)
                        break;
                if (sd_journal_get_data(j, "MESSAGE", &data, &len) < 0 || len < 8)
                        continue;
                const char *msg = (const char *) data + 8;      /* "MESSAGE=" */
                len -= 8;
                if (!doctor_text_matches(msg, len, needles))
                        continue;
                *ret_line = strndup(msg, len);
                return *ret_line ? 1 : -ENOMEM;
        }
        return 0;
}

int doctor_journal_open(sd_journal **ret) {
        if (!doctor_path_exists("/var/log/journal", NULL, 0) && !doctor_path_exists("/run/log/journal", NULL, 0))
                return -ENOENT;
        int r;
        if (root_prefix()[0] == '\0')
                r = sd_journal_open(ret, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM);
        else {
                char root[4096];
                if (root_path(root, sizeof(root), "/") < 0)
                        return -ENOENT;
                /* OS_ROOT: the directory is a whole tree; its var/log/journal and run/log/journal
                 * are read, as journalctl --root does */
                r = sd_journal_open_directory(ret, root, SD_JOURNAL_OS_ROOT);
        }
        if (r < 0)
                return r == -ENOMEM ? r : -ENOENT;
        return 0;
}

/* 1 found (*ret_line set), 0 not found, -ENOENT no journal, -ENOMEM. */
static int journal_find(const char *const *needles, char **ret_line) {
        sd_journal *j = NULL;
        int r = doctor_journal_open(&j);
        if (r < 0)
                return r;

        char boot[64];
        r = sd_journal_add_match(j, "_TRANSPORT=kernel", 0);
        if (r >= 0 && doctor_boot_id_match(boot))
                r = sd_journal_add_match(j, boot, 0);
        int found = r >= 0 ? journal_scan(j, needles, ret_line) : 0;
        sd_journal_close(j);
        return found;
}

/* 1 found, 0 not found, -ENOENT no kern.log, -ENOMEM. */
static int kern_log_find(const char *const *needles, char **ret_line) {
        _cleanup_close_ int fd = root_open("/var/log/kern.log", O_RDONLY | O_NOCTTY);
        if (fd < 0)
                return fd == -ENOMEM ? fd : -ENOENT;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -ENOENT;
        off_t start = st.st_size > KERN_LOG_TAIL ? st.st_size - KERN_LOG_TAIL : 0;
        size_t size = (size_t) (st.st_size - start);
        _cleanup_free_ char *buf = malloc(size + 1);
        if (!buf)
                return -ENOMEM;
        ssize_t got = pread(fd, buf, size, start);
        if (got < 0)
                return -ENOENT;
        buf[got] = '\0';

        /* The running boot starts at the last "Linux version" banner the kernel printed. */
        const char *from = buf;
        for (const char *p = buf; (p = strstr(p, "Linux version ")); p++)
                from = p;
        for (const char *line = from; *line;) {
                const char *end = strchrnul(line, '\n');
                if (doctor_text_matches(line, (size_t) (end - line), needles)) {
                        *ret_line = strndup(line, (size_t) (end - line));
                        return *ret_line ? 1 : -ENOMEM;
                }
                line = *end ? end + 1 : end;
        }
        return 0;
}

int doctor_kernel_log_find(const char *const *needles, char **ret_line, char *source, size_t size) {
        *ret_line = NULL;
        int r = journal_find(needles, ret_line);
        if (r != -ENOENT) {
                snprintf(source, size, "journal (kernel messages of this boot)");
                return r;
        }
        r = kern_log_find(needles, ret_line);
        if (r != -ENOENT) {
                snprintf(source, size, "/var/log/kern.log (since the last boot)");
                return r;
        }
        snprintf(source, size, "%s", "");
        return 0;
}

/* The last n lines matching, kept in a ring. */
struct ring {
        char *lines[64];
        size_t n, next, count;
};

static int ring_push(struct ring *ring, const char *line, size_t len) {
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

static int journal_grep(const char *const *needles, struct ring *ring) {
        sd_journal *j = NULL;
        int r = doctor_journal_open(&j);
        if (r < 0)
                return r;
        char boot[64];
        r = sd_journal_add_match(j, "_TRANSPORT=kernel", 0);
        if (r >= 0 && doctor_boot_id_match(boot))
                r = sd_journal_add_match(j, boot, 0);
        size_t n = 0;
        if (r >= 0) {
                SD_JOURNAL_FOREACH(j) {
                        const void *data;
                        size_t len;
                        if (++n > JOURNAL_MAX_ENTRIES)
                                break;
                        if (sd_journal_get_data(j, "MESSAGE", &data, &len) < 0 || len < 8)
                                continue;
                        if (doctor_text_matches((const char *) data + 8, len - 8, needles) &&
                            (r = ring_push(ring, (const char *) data + 8, len - 8)) < 0)
                                break;
                }
        }
        sd_journal_close(j);
        return r < 0 ? r : 0;
}

static int kern_log_grep(const char *const *needles, struct ring *ring) {
        _cleanup_close_ int fd = root_open("/var/log/kern.log", O_RDONLY | O_NOCTTY);
        if (fd < 0)
                return fd == -ENOMEM ? fd : -ENOENT;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -ENOENT;
        off_t start = st.st_size > KERN_LOG_TAIL ? st.st_size - KERN_LOG_TAIL : 0;
        size_t size = (size_t) (st.st_size - start);
        _cleanup_free_ char *buf = malloc(size + 1);
        if (!buf)
                return -ENOMEM;
        ssize_t got = pread(fd, buf, size, start);
        if (got < 0)
                return -ENOENT;
        buf[got] = '\0';
        const char *from = buf;
        for (const char *p = buf; (p = strstr(p, "Linux version ")); p++)
                from = p;
        for (const char *line = from; *line;) {
                const char *end = strchrnul(line, '\n');
                if (doctor_text_matches(line, (size_t) (end - line), needles)) {
                        int r = ring_push(ring, line, (size_t) (end - line));
                        if (r < 0)
                                return r;
                }
                line = *end ? end + 1 : end;
        }
        return 0;
}

int doctor_kernel_log_grep(const char *const *needles, size_t n, struct text *ev) {
        struct ring ring = { .n = MIN_LEN(MAX_LEN(n, 1), ELEMENTSOF(ring.lines)) };
        const char *source = "journal (kernel messages of this boot)";
        int r = journal_grep(needles, &ring);
        if (r == -ENOENT) {
                source = "/var/log/kern.log (since the last boot)";
                r = kern_log_grep(needles, &ring);
        }
        if (r == -ENOENT) {
                text_line(ev, "kernel log: no journal, no /var/log/kern.log");
                return ev->oom ? -ENOMEM : 0;
        }
        if (r >= 0)
                text_line(ev, "%s: %zu matching lines%s", source, ring.count, ring.count > ring.n ? ", the last ones:" :
                          ring.count ? ":" : "");
        ring_flush(&ring, ev);
        if (r < 0)
                return r;
        return ev->oom ? -ENOMEM : (int) MIN_LEN(ring.count, (size_t) INT_MAX);
}
