/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * log.h — vgpud's log: journald with structured fields (VGPU_BDF, VGPU_INSTANCE, VGPU_CHECK,
 * VGPU_EVENT) when stderr is connected to the journal, plain lines on stderr otherwise, so that
 * `journalctl VGPU_BDF=0000:3b:00.0` finds everything about one GPU.
 */
#pragma once

#include <stddef.h>
#include <syslog.h>

#include "basic/macro.h"

struct log_fields {
        const char *bdf;   /* VGPU_BDF */
        const char *uuid;  /* VGPU_INSTANCE */
        const char *check; /* VGPU_CHECK: a doctor check id */
        const char *event; /* VGPU_EVENT: an event kind */
};

/* Decide where logs go: the journal when $JOURNAL_STREAM names our stderr (what systemd sets
 * for a service whose output goes to the journal), stderr otherwise. max_priority: LOG_INFO,
 * or LOG_DEBUG for -v. */
void log_setup(int max_priority);
/* Whether log_setup chose the journal. */
int log_to_journal(void);

/* in as one line of valid UTF-8 into out: control characters and bytes that are no UTF-8
 * become \xNN (so "%0a" in a request path cannot split a log line, nor %ff the JSON of
 * /v1/events). Cut at a character boundary when out is too small. */
void log_escape(const char *in, char *out, size_t size);

void log_full(int priority, const struct log_fields *fields, const char *fmt, ...) _printf_(3, 4);

#define log_debug(...)   log_full(LOG_DEBUG, NULL, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, NULL, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, NULL, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, NULL, __VA_ARGS__)
#define log_error(...)   log_full(LOG_ERR, NULL, __VA_ARGS__)
