/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * cmdline.c — the kernel command line (/proc/cmdline) and the GRUB setting that makes it
 * (GRUB_CMDLINE_LINUX_DEFAULT in /etc/default/grub). Remedies that need a boot parameter
 * (intel_iommu=on, iommu=pt, i915.enable_gvt=1) show the admin's own GRUB line with the
 * missing words added, so it can be pasted as is instead of merged by hand.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "basic/root.h"
#include "doctor-internal.h"

#define GRUB_DEFAULT "/etc/default/grub"
#define GRUB_KEY     "GRUB_CMDLINE_LINUX_DEFAULT"

void cmdline_read(char *buf, size_t size) {
        if (root_read("/proc/cmdline", buf, size) < 0)
                buf[0] = '\0';
}

/* Walk the whitespace-separated words of s: *word and *len for each, false at the end. */
static bool next_word(const char **s, const char **word, size_t *len) {
        const char *p = *s;
        while (*p == ' ' || *p == '\t' || *p == '\n')
                p++;
        if (!*p)
                return false;
        *word = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n')
                p++;
        *len = (size_t) (p - *word);
        *s = p;
        return true;
}

bool cmdline_has(const char *cmdline, const char *word) {
        size_t n = strlen(word), len;
        const char *w;
        for (const char *s = cmdline; next_word(&s, &w, &len);)
                if (len == n && strncmp(w, word, n) == 0)
                        return true;
        return false;
}

bool cmdline_value(const char *cmdline, const char *key, char *ret_value, size_t size) {
        size_t n = strlen(key), len;
        const char *w;
        bool found = false;
        /* The kernel lets the last occurrence win: so do we. */
        for (const char *s = cmdline; next_word(&s, &w, &len);)
                if (len > n && strncmp(w, key, n) == 0 && w[n] == '=') {
                        found = true;
                        if (ret_value && size > 0)
                                snprintf(ret_value, size, "%.*s", (int) (len - n - 1), w + n + 1);
                }
        return found;
}

/* The value of `key=` in /etc/default/grub (quotes removed) into buf. False when absent. */
static bool grub_value(const char *grub, const char *key, char *buf, size_t size) {
        size_t n = strlen(key);
        bool found = false;
        for (const char *line = grub; line && *line;
             line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
                while (*line == ' ' || *line == '\t')
                        line++;
                if (strncmp(line, key, n) != 0 || line[n] != '=')
                        continue;
                const char *v = line + n + 1;
                size_t len = strcspn(v, "\n");
                if (len > 0 && (v[0] == '"' || v[0] == '\'')) {
                        const char *end = memchr(v + 1, v[0], len - 1);
                        len = end ? (size_t) (end - v - 1) : len - 1;
                        v++;
                }
                snprintf(buf, size, "%.*s", (int) len, v);
                found = true; /* a later assignment overrides an earlier one, as in sh */
        }
        return found;
}

/* Append `word` to the line in dst, dropping earlier values of the same key. */
static void add_word(char *dst, size_t size, const char *word) {
        char out[4096] = "";
        const char *eq = strchr(word, '=');
        size_t keylen = eq ? (size_t) (eq - word) + 1 : strlen(word);
        size_t len;
        const char *w;
        for (const char *s = dst; next_word(&s, &w, &len);) {
                bool same_key = eq ? len >= keylen && strncmp(w, word, keylen) == 0
                                   : len == keylen && strncmp(w, word, len) == 0;
                if (same_key)
                        continue;
                size_t used = strlen(out);
                snprintf(out + used, sizeof(out) - used, "%s%.*s", used ? " " : "", (int) len, w);
        }
        size_t used = strlen(out);
        snprintf(out + used, sizeof(out) - used, "%s%s", used ? " " : "", word);
        snprintf(dst, size, "%s", out);
}

void cmdline_grub_remedy(struct text *t, struct text *evidence, const char *const *words) {
        _cleanup_free_ char *grub = NULL;
        char current[4096] = "", other[4096] = "";
        int r = doctor_read_file(GRUB_DEFAULT, &grub);
        if (r == -ENOMEM) {
                t->oom = true; /* the caller's test of t reports it, rather than a remedy for no GRUB */
                return;
        }
        bool have_grub = r >= 0;
        bool have_key = have_grub && grub_value(grub, GRUB_KEY, current, sizeof(current));
        if (have_grub)
                (void) grub_value(grub, "GRUB_CMDLINE_LINUX", other, sizeof(other));

        if (evidence) {
                if (!have_grub)
                        text_line(evidence, GRUB_DEFAULT ": absent");
                else if (!have_key)
                        text_line(evidence, GRUB_DEFAULT ": no " GRUB_KEY);
                else
                        text_line(evidence, GRUB_DEFAULT ": " GRUB_KEY "=\"%s\"", current);
        }

        char line[4096];
        snprintf(line, sizeof(line), "%s", current);
        bool missing = false;
        for (const char *const *w = words; *w; w++)
                if (!cmdline_has(current, *w) && !cmdline_has(other, *w)) {
                        add_word(line, sizeof(line), *w);
                        missing = true;
                }

        if (!have_grub) {
                text_line(t, "Add these words to the kernel command line of your boot loader:");
                for (const char *const *w = words; *w; w++)
                        text_append(t, " %s", *w);
                text_line(t, "(with GRUB: " GRUB_KEY "=\"...\" in " GRUB_DEFAULT
                             ", then update-grub), then reboot");
                return;
        }
        if (!missing) {
                /* The setting is there but the running kernel did not get it. */
                text_line(t, GRUB_DEFAULT " already has it; regenerate the boot configuration and boot it:");
                text_line(t, "  update-grub && reboot");
                return;
        }
        text_line(t, "Set in " GRUB_DEFAULT ":");
        text_line(t, "  " GRUB_KEY "=\"%s\"", line);
        text_line(t, "then run:");
        text_line(t, "  update-grub && reboot");
}
