/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * restore.c — bringing the host back to what was last applied (vgpu_restore()): at boot from
 * `vgpuctl apply --restore`, and from vgpud on start and when parents appear. Written once here
 * so the two programs cannot drift apart again: the saved file must not remove slices made
 * after it was applied, which one of the two copies forgot once.
 */
#include <errno.h>
#include <string.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "vgpu/apply.h"
#include "vgpu/config.h"
#include "vgpu/slice.h"

_public_ int vgpu_restore(const char *const *parents, size_t n_parents, unsigned flags,
                          const struct vgpu_progress *progress, struct vgpu_restore_report *report,
                          struct vgpu_error *err) {
        *report = (struct vgpu_restore_report){};

        /* slices first: their regions live in /run, so after a reboot every recorded one is
         * missing; one that cannot come back (its GPU gone) stops neither the rest nor the file */
        if (!parents && !(flags & VGPU_APPLY_DRY_RUN) &&
            vgpu_slice_restore(&report->n_slices, &report->slices_error) >= 0)
                /* a step that failed and was recovered from (a region rebuilt) may have left a
                 * message: only a failure is reported */
                vgpu_error_clear(&report->slices_error);

        _cleanup_free_ char *text = NULL;
        struct vgpu_config *cfg = NULL;
        int r = vgpu_config_load(VGPU_STATE_CONFIG, VGPU_CONFIG_HOST_PATH, &cfg, &text, err);
        if (r == -ENOENT) {
                /* a host never configured: nothing to do, not a failure */
                report->nothing_saved = true;
                if (err)
                        vgpu_error_clear(err);
                return 0;
        }
        if (r < 0)
                return r;
        /* the records, just brought back, are the slices as they were before the reboot (every
         * apply and every slice command keeps them); the saved file may predate a `slice
         * create`, and must not remove what was made since */
        cfg->has_slices = false;
        r = parents ? vgpu_apply_parents(cfg, parents, n_parents, flags, &report->plan, err)
                    : vgpu_apply_progress(cfg, text, flags, progress, &report->plan, err);
        vgpu_config_free(cfg);
        return r;
}
