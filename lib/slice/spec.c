/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * spec.c — a slice's settings as the API has them (struct vgpu_slice_spec, vgpu/slice.h): the
 * names of the policies and scrub modes, a spec checked and its defaults resolved (the same
 * messages for `vgpuctl slice create`, apply's actions and a restore), and the translation to
 * and from the numbers of a slice's region (slice-shm.h).
 *
 * The region keeps its own numbers for policy and scrub (0 is best-effort / on-free there): they
 * are a file format that a shim of another release reads, whereas the API's 0 means "not said",
 * so that a zeroed spec asks for the defaults. This file is the one place that maps the two.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "manage.h"
#include "slice.h"
#include "vgpu/host.h"
#include "vgpu/slice.h"

_Static_assert(VGPU_SLICE_NAME_MAX == SLICE_NAME_MAX, "a spec's name is a region's name");
_Static_assert(VGPU_SLICE_GPU_MAX == VGPU_BDF_MAX, "a spec's GPU is a BDF");

static const char *const policy_names[] = {
        [VGPU_SLICE_POLICY_BEST_EFFORT] = "best-effort",
        [VGPU_SLICE_POLICY_EQUAL_SHARE] = "equal-share",
        [VGPU_SLICE_POLICY_FIXED_SHARE] = "fixed-share",
};

static const char *const scrub_names[] = {
        [VGPU_SLICE_SCRUB_ON_FREE] = "on-free",
        [VGPU_SLICE_SCRUB_ON_EXIT] = "on-exit",
        [VGPU_SLICE_SCRUB_OFF] = "off",
};

_public_ const char *vgpu_slice_policy_to_string(enum vgpu_slice_policy p) {
        return (unsigned) p < ELEMENTSOF(policy_names) ? policy_names[p] : NULL;
}

_public_ int vgpu_slice_policy_from_string(const char *s, enum vgpu_slice_policy *ret) {
        for (unsigned i = 0; s && i < ELEMENTSOF(policy_names); i++)
                if (policy_names[i] && streq(s, policy_names[i])) {
                        *ret = (enum vgpu_slice_policy) i;
                        return 0;
                }
        return -EINVAL;
}

_public_ const char *vgpu_slice_scrub_to_string(enum vgpu_slice_scrub s) {
        return (unsigned) s < ELEMENTSOF(scrub_names) ? scrub_names[s] : NULL;
}

_public_ int vgpu_slice_scrub_from_string(const char *s, enum vgpu_slice_scrub *ret) {
        for (unsigned i = 0; s && i < ELEMENTSOF(scrub_names); i++)
                if (scrub_names[i] && streq(s, scrub_names[i])) {
                        *ret = (enum vgpu_slice_scrub) i;
                        return 0;
                }
        return -EINVAL;
}

static int check_name(const char *name, struct vgpu_error *err) {
        if (!name || !slice_name_is_valid(name))
                return vgpu_error_set(err, -EINVAL,
                                      "'%s' is not a slice name (letters, digits, '_', '.', '-', starting "
                                      "and ending with a letter or digit; at most 63)",
                                      strempty(name));
        return 0;
}

static int normalize_gpu(const char *gpu, char ret[VGPU_BDF_MAX], struct vgpu_error *err) {
        if (!gpu || vgpu_bdf_normalize(gpu, ret) < 0)
                return vgpu_error_set(err, -EINVAL, "'%s' is not a PCI address", strempty(gpu));
        return 0;
}

_public_ int vgpu_slice_spec_init(struct vgpu_slice_spec *ret, const char *name, const char *gpu,
                                  struct vgpu_error *err) {
        char bdf[VGPU_BDF_MAX];
        int r = check_name(name, err);
        if (r < 0 || (r = normalize_gpu(gpu, bdf, err)) < 0)
                return r;
        struct vgpu_slice_spec s = {};
        snprintf(s.name, sizeof(s.name), "%s", name);
        snprintf(s.gpu, sizeof(s.gpu), "%s", bdf);
        *ret = s;
        return 0;
}

int slice_spec_resolve(const struct vgpu_slice_spec *in, struct vgpu_slice_spec *ret,
                       struct vgpu_error *err) {
        struct vgpu_slice_spec s = *in;
        /* the arrays may come unterminated from a caller that filled them itself */
        int r = check_name(memchr(in->name, 0, sizeof(in->name)) ? in->name : NULL, err);
        if (r < 0 ||
            (r = normalize_gpu(memchr(in->gpu, 0, sizeof(in->gpu)) ? in->gpu : NULL, s.gpu, err)) < 0)
                return r;
        if (s.policy == VGPU_SLICE_POLICY_DEFAULT)
                s.policy = s.share ? VGPU_SLICE_POLICY_FIXED_SHARE : VGPU_SLICE_POLICY_EQUAL_SHARE;
        if (!vgpu_slice_policy_to_string(s.policy))
                return vgpu_error_set(err, -EINVAL,
                                      "policy %d: expected best-effort, equal-share or fixed-share",
                                      (int) s.policy);
        if ((s.policy == VGPU_SLICE_POLICY_FIXED_SHARE) != (s.share > 0))
                return vgpu_error_set(err, -EINVAL,
                                      s.policy == VGPU_SLICE_POLICY_FIXED_SHARE
                                              ? "fixed-share needs --share PERCENT"
                                              : "--share goes with the fixed-share policy");
        if (s.share > 100)
                return vgpu_error_set(err, -EINVAL, "--share %u%%: at most 100%%", s.share);
        if (s.scrub == VGPU_SLICE_SCRUB_DEFAULT)
                s.scrub = VGPU_SLICE_SCRUB_ON_FREE;
        if (!vgpu_slice_scrub_to_string(s.scrub))
                return vgpu_error_set(err, -EINVAL, "scrub %d: expected on-free, on-exit or off",
                                      (int) s.scrub);
        *ret = s;
        return 0;
}

/* The region's numbers are the API's less one (DEFAULT is resolved before they are needed). */
void slice_spec_params(const struct vgpu_slice_spec *s, struct slice_params *ret) {
        *ret = (struct slice_params){
                .name = s->name,
                .quota = s->memory,
                .policy = (enum slice_policy)(s->policy - 1),
                .weight = s->share,
                .scrub = (enum slice_scrub)(s->scrub - 1),
        };
}

void slice_status_from_info(const struct slice_info *info, struct vgpu_slice_status *ret) {
        struct vgpu_slice_status s = {
                .spec = {
                        .memory = info->quota,
                        .share = info->policy == SLICE_POLICY_FIXED_SHARE ? info->weight : 0,
                        .policy = (enum vgpu_slice_policy) (info->policy + 1),
                        .scrub = (enum vgpu_slice_scrub) (info->scrub + 1),
                },
                .usage = {
                        .used = info->used,
                        .peak = info->peak,
                        .oom_count = info->oom_count,
                        .gpu_time_ns = info->gpu_ns,
                        .processes = info->processes,
                },
        };
        snprintf(s.spec.name, sizeof(s.spec.name), "%s", info->name);
        snprintf(s.spec.gpu, sizeof(s.spec.gpu), "%.*s", (int) sizeof(s.spec.gpu) - 1, info->gpu_bdf);
        *ret = s;
}
