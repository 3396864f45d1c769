/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * fuzz-yaml.c — libFuzzer harness for host.yaml's parser (lib/config: libyaml's document, the
 * 'gpus' and 'slices' lists, the typed fields, the checks across items). The same text is what
 * `vgpuctl apply -f`, POST /v1/apply and `apply --restore` (/var/lib/vgpuctl/host.yaml) read.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vgpu/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What the planner relies on in a configuration that parsed. */
static bool config_sane(const struct vgpu_config *c) {
        if (!c->source || (c->n_gpus > 0 && !c->gpus) || (c->n_slices > 0 && (!c->slices || !c->has_slices)))
                return false;
        for (size_t i = 0; i < c->n_gpus; i++) {
                const struct vgpu_config_gpu *g = &c->gpus[i];
                if ((g->select == VGPU_SELECT_ALL) != !g->value)
                        return false;
                for (size_t j = 0; j < g->n_devices; j++) {
                        const struct vgpu_config_device *d = &g->devices[j];
                        if (!d->type || d->n_uuids > d->count)
                                return false;
                        for (size_t k = 0; k < d->n_attrs; k++)
                                if (!d->attrs[k].key || !d->attrs[k].value)
                                        return false;
                }
        }
        for (size_t i = 0; i < c->n_slices; i++) {
                const struct vgpu_slice_spec *s = &c->slices[i].spec;
                if (!s->name[0] || !s->gpu[0] || !vgpu_slice_policy_to_string(s->policy) ||
                    !vgpu_slice_scrub_to_string(s->scrub) || s->share > 100)
                        return false;
        }
        return true;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        /* the callers hand over a buffer and its size, which need not end in a NUL */
        char *text = malloc(size ? size : 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        struct vgpu_config *c = NULL;
        struct vgpu_error err = {};
        int r = vgpu_config_parse_text(text, size, "fuzz.yaml", &c, &err);
        /* either a configuration that makes sense, or a message that names the file */
        if (r == 0 && (!c || !config_sane(c)))
                abort();
        if (r < 0 && (c || strncmp(err.message, "fuzz.yaml", 9) != 0))
                abort();
        vgpu_config_free(c);
        free(text);
        return 0;
}
