/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fleet-vfs.c — the vendor-VFIO VFs vgpud configured for claims that do not name them yet.
 *
 * An mdev or a slice made for a claim carries a name derived from the claim id, so realizing
 * the claim again, tearing it down after the claim was deleted, or sweeping finds it from the
 * id alone. A VF has no name of its own: the claim learns which VF it got only from the BOUND
 * report ("instance"). When that report is lost (etcd reset the txn, the lease blinked, the
 * claim was deleted meanwhile), nothing in etcd says which VF is the claim's: a second try would
 * configure another VF and the first would stay taken, and a deleted claim would leave its VF
 * configured. So the VF is remembered here from before its creation until a claim names it
 * (BOUND written) or it is torn down, in a file under /run/vgpuctl (lost with a reboot, as the
 * VF's configuration is), so a restart in between remembers too.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fleet.h"
#include "log.h"
#include "vgpu/root.h"
#include "vgpud.h"

#define VFS_DIR  "/run/vgpuctl"
#define VFS_FILE VFS_DIR "/fleet-vfs"

static int save(const struct fleet_worker *w) {
        char path[4096], tmp[4200];
        if (vgpu_root_path(path, sizeof(path), VFS_FILE) < 0)
                return -ENAMETOOLONG;
        if (w->n_vfs == 0) {
                if (unlink(path) < 0 && errno != ENOENT)
                        return -errno;
                return 0;
        }
        (void) vgpu_root_mkdir_parents(VFS_DIR, 0755);
        snprintf(tmp, sizeof(tmp), "%s.new", path);
        FILE *f = fopen(tmp, "we");
        if (!f)
                return -errno;
        for (size_t i = 0; i < w->n_vfs; i++)
                fprintf(f, "%s %s\n", w->vfs[i].claim, w->vfs[i].bdf);
        int r = fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : -errno;
        if (fclose(f) != 0 && r == 0)
                r = -errno;
        if (r == 0 && rename(tmp, path) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlink(tmp);
                log_warning("fleet: writing %s: %s", path, strerror(-r));
        }
        return r;
}

int fleet_vfs_load(struct fleet_worker *w) {
        char path[4096], claim[129], bdf[VGPU_BDF_MAX];
        if (vgpu_root_path(path, sizeof(path), VFS_FILE) < 0)
                return -ENAMETOOLONG;
        FILE *f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? 0 : -errno;
        int r = 0;
        while (r >= 0 && fscanf(f, "%128s %15s", claim, bdf) == 2)
                if (!fleet_vf_of(w, claim))
                        r = fleet_vf_remember(w, claim, bdf);
        fclose(f);
        if (w->n_vfs > 0)
                log_info("fleet: %zu VF(s) configured for claims whose report was not written yet", w->n_vfs);
        return r;
}

const char *fleet_vf_of(const struct fleet_worker *w, const char *claim) {
        for (size_t i = 0; claim && i < w->n_vfs; i++)
                if (streq(w->vfs[i].claim, claim))
                        return w->vfs[i].bdf;
        return NULL;
}

int fleet_vf_remember(struct fleet_worker *w, const char *claim, const char *bdf) {
        for (size_t i = 0; i < w->n_vfs; i++)
                if (streq(w->vfs[i].claim, claim)) {
                        if (streq(w->vfs[i].bdf, bdf))
                                return 0;
                        snprintf(w->vfs[i].bdf, sizeof(w->vfs[i].bdf), "%s", bdf);
                        (void) save(w); /* logged; remembered in memory all the same */
                        return 0;
                }
        struct fleet_vf *n = realloc(w->vfs, (w->n_vfs + 1) * sizeof(*n));
        if (!n)
                return -ENOMEM;
        w->vfs = n;
        struct fleet_vf *v = &w->vfs[w->n_vfs++];
        snprintf(v->claim, sizeof(v->claim), "%s", claim);
        snprintf(v->bdf, sizeof(v->bdf), "%s", bdf);
        (void) save(w);
        return 0;
}

void fleet_vf_forget(struct fleet_worker *w, const char *claim) {
        for (size_t i = 0; i < w->n_vfs; i++)
                if (streq(w->vfs[i].claim, claim)) {
                        w->vfs[i] = w->vfs[--w->n_vfs];
                        (void) save(w);
                        return;
                }
}
