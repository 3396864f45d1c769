/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * xid.c — what the well-known Xid numbers mean, after NVIDIA's "Xid Errors" catalogue.
 *
 * "Critical" marks the Xids after which NVIDIA's guidance is to reset the GPU (or drain it):
 * uncorrectable memory errors, a halted micro-controller or GSP, a lost NVLink, a GPU gone from
 * the bus. The others usually point at one application (its page fault, its bad push buffer)
 * and leave the GPU fine for everyone else, so they are worth a log line, not a degraded GPU.
 */
#include <stddef.h>

#include "basic/macro.h"
#include "vgpu/nvml-events.h"

static const struct {
        unsigned xid;
        bool critical;
        const char *meaning;
} xids[] = {
        { 13, false, "graphics engine exception" },
        { 31, false, "GPU memory page fault" },
        { 32, false, "invalid or corrupted push buffer stream" },
        { 43, false, "GPU stopped processing" },
        { 45, false, "preemptive cleanup, due to previous errors" },
        { 48, true, "double bit ECC error" },
        { 61, false, "internal micro-controller breakpoint/warning" },
        { 62, true, "internal micro-controller halt" },
        { 63, false, "ECC page retirement or row remapping recorded" },
        { 64, true, "ECC page retirement or row remapping failed" },
        { 68, false, "video processor exception" },
        { 69, false, "graphics engine class error" },
        { 74, true, "NVLink error" },
        { 79, true, "GPU has fallen off the bus" },
        { 92, true, "high single-bit ECC error rate" },
        { 94, true, "contained ECC error" },
        { 95, true, "uncontained ECC error" },
        { 109, false, "context switch timeout" },
        { 119, true, "GSP RPC timeout" },
        { 120, true, "GSP error" },
        { 140, true, "unrecovered ECC error" },
};

_public_ const char *vgpu_xid_describe(uint64_t xid, bool *ret_critical) {
        for (size_t i = 0; i < ELEMENTSOF(xids); i++)
                if (xids[i].xid == xid) {
                        if (ret_critical)
                                *ret_critical = xids[i].critical;
                        return xids[i].meaning;
                }
        if (ret_critical)
                *ret_critical = false;
        return NULL;
}
