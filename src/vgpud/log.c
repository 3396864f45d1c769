/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* log.c — journald with structured fields, or stderr (see log.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-journal.h>

#include "log.h"
#include "output.h"

static int journal = 0;
static int max_prio = LOG_INFO;

int log_to_journal(void) {
        return journal;
}

void log_setup(int max_priority) {
        max_prio = max_priority;
        /* systemd sets JOURNAL_STREAM=DEV:INODE for the stream it connects stdout/stderr to;
         * when stderr is still that stream, the journal is listening and takes fields. */
        const char *e = getenv("JOURNAL_STREAM");
        struct stat st;
        unsigned long long dev, ino;
        journal = e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
                  (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

static const char *prio_name(int p) {
        static const char *const names[] = { "emerg",   "alert",  "crit", "error",
                                             "warning", "notice", "info", "debug" };
        return p >= 0 && p <= LOG_DEBUG ? names[p] : "info";
}

void log_escape(const char *in, char *out, size_t size) {
        size_t o = 0;
        if (size == 0)
                return;
        for (const char *s = in; *s;) {
                unsigned char c = (unsigned char) *s;
                size_t n = c < 0x20 || c == 0x7f ? 0 : utf8_sequence_length(s);
                if (n == 0) {
                        if (o + 4 >= size)
                                break;
                        o += (size_t) snprintf(out + o, size - o, "\\x%02x", c);
                        s++;
                        continue;
                }
                if (o + n >= size)
                        break;
                memcpy(out + o, s, n);
                o += n;
                s += n;
        }
        out[o] = '\0';
}

void log_full(int priority, const struct log_fields *f, const char *fmt, ...) {
        if (priority > max_prio)
                return;
        char raw[2048], msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(raw, sizeof(raw), fmt, ap);
        va_end(ap);
        /* one line of UTF-8 whatever a caller put in the request: "%0a" must not start a
         * line that reads like ours */
        log_escape(raw, msg, sizeof(msg));

        if (journal) {
                char m[2100], p[16], b[64], u[64], c[96], e[96];
                struct iovec iov[7];
                int n = 0;
#define ADD(buf, ...)                                                                                        \
        do {                                                                                                 \
                int _l = snprintf(buf, sizeof(buf), __VA_ARGS__);                                            \
                iov[n++] = (struct iovec){ buf,                                                              \
                                           (size_t) (_l < (int) sizeof(buf) ? _l : (int) sizeof(buf) - 1) }; \
        } while (0)
                ADD(m, "MESSAGE=%s", msg);
                ADD(p, "PRIORITY=%d", priority);
                if (f && f->bdf)
                        ADD(b, "VGPU_BDF=%s", f->bdf);
                if (f && f->uuid)
                        ADD(u, "VGPU_INSTANCE=%s", f->uuid);
                if (f && f->check)
                        ADD(c, "VGPU_CHECK=%s", f->check);
                if (f && f->event)
                        ADD(e, "VGPU_EVENT=%s", f->event);
#undef ADD
                iov[n++] = (struct iovec){ (char *) "SYSLOG_IDENTIFIER=vgpud",
                                           strlen("SYSLOG_IDENTIFIER=vgpud") };
                if (sd_journal_sendv(iov, n) >= 0)
                        return;
        }
        /* one line, the fields as key=value after the message, so greps still find them */
        fprintf(stderr, "vgpud: %s: %s", prio_name(priority), msg);
        if (f && f->event)
                fprintf(stderr, " event=%s", f->event);
        if (f && f->bdf)
                fprintf(stderr, " bdf=%s", f->bdf);
        if (f && f->uuid)
                fprintf(stderr, " instance=%s", f->uuid);
        if (f && f->check)
                fprintf(stderr, " check=%s", f->check);
        fputc('\n', stderr);
}
