/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * doctor-util.c — what every check uses to speak: the text buffer evidence and remedies are
 * built in, adding a result, and the GPU classifications several checks agree on.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doctor-internal.h"

static void text_vappend(struct text *t, const char *fmt, va_list ap) {
        if (t->oom)
                return;
        va_list ap2;
        va_copy(ap2, ap);
        int n = vsnprintf(NULL, 0, fmt, ap2);
        va_end(ap2);
        if (n < 0 || !GREEDY_REALLOC(t->s, t->allocated, t->len + (size_t) n + 1)) {
                t->oom = true;
                return;
        }
        vsnprintf(t->s + t->len, (size_t) n + 1, fmt, ap);
        t->len += (size_t) n;
}

void text_append(struct text *t, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        text_vappend(t, fmt, ap);
        va_end(ap);
}

void text_line(struct text *t, const char *fmt, ...) {
        if (t->len > 0)
                text_append(t, "\n");
        va_list ap;
        va_start(ap, fmt);
        text_vappend(t, fmt, ap);
        va_end(ap);
}

const char *text_get(const struct text *t) {
        if (t->oom)
                return NULL;
        return t->s ? t->s : "";
}

void text_done(struct text *t) {
        free(t->s);
        *t = (struct text){};
}

int doctor_add(struct doctor *d, const char *subject, enum vgpu_check_status status,
               const struct text *evidence, const char *remedy, const char *summary_fmt, ...) {
        if (evidence && evidence->oom)
                return -ENOMEM;
        if (!GREEDY_REALLOC(d->results, d->allocated, d->n_results + 1))
                return -ENOMEM;
        struct vgpu_check_result *r = &d->results[d->n_results];
        *r = (struct vgpu_check_result){ .id = d->check_id, .status = status };

        va_list ap;
        va_start(ap, summary_fmt);
        int n = vasprintf(&r->summary, summary_fmt, ap);
        va_end(ap);
        if (n < 0) {
                r->summary = NULL;
                return -ENOMEM;
        }
        d->n_results++; /* from here on the runner frees it, whatever fails next */

        bool wants_remedy = status == VGPU_CHECK_WARN || status == VGPU_CHECK_FAIL;
        if ((subject && !(r->subject = strdup(subject))) ||
            !(r->evidence = strdup(evidence ? text_get(evidence) : "")) ||
            (wants_remedy && remedy && !(r->remedy = strdup(remedy))))
                return -ENOMEM;
        return 0;
}

bool doctor_is_gpu(const struct vgpu_gpu *g) {
        if (g->physfn[0])
                return false;
        return g->vendor_id == VGPU_PCI_VENDOR_NVIDIA || g->vendor_id == VGPU_PCI_VENDOR_AMD ||
               g->vendor_id == VGPU_PCI_VENDOR_INTEL;
}

bool doctor_gpu_driver_hosts_vgpus(const struct vgpu_gpu *g) {
        if (!g->driver)
                return false;
        if (streq(g->driver, "nvidia") || streq(g->driver, "i915") || streq(g->driver, "xe") ||
            streq(g->driver, "gim"))
                return true;
        /* amdgpu hosts MxGPU only on SR-IOV boards (Instinct, Radeon Pro V); on others it is the
         * desktop driver. */
        return streq(g->driver, "amdgpu") && g->sriov && g->total_vfs > 0;
}

const char *doctor_vendor_name(uint16_t vendor_id, char buf[static 8]) {
        switch (vendor_id) {
        case VGPU_PCI_VENDOR_NVIDIA:
                return "NVIDIA";
        case VGPU_PCI_VENDOR_AMD:
                return "AMD";
        case VGPU_PCI_VENDOR_INTEL:
                return "Intel";
        }
        snprintf(buf, 8, "0x%04x", vendor_id);
        return buf;
}
