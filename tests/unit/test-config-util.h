/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* test-config-util.h — what the host.yaml tests share: parse a text that must load, or must be
 * refused with exactly one message (the file is named "t.yaml" in messages). */
#pragma once

#include "test-util.h"
#include "vgpu/config.h"

static inline struct vgpu_config *parse_ok(const char *text) {
        struct vgpu_config *cfg = NULL;
        struct vgpu_error err = {};
        if (vgpu_config_parse_text(text, strlen(text), "t.yaml", &cfg, &err) < 0)
                fail_msg("parse failed: %s", err.message);
        return cfg;
}

static inline void parse_fails(const char *text, const char *message) {
        struct vgpu_config *cfg = NULL;
        struct vgpu_error err = {};
        assert_int_equal(vgpu_config_parse_text(text, strlen(text), "t.yaml", &cfg, &err), -EINVAL);
        assert_null(cfg);
        if (strcmp(err.message, message) != 0)
                fail_msg("message:\n  got:  %s\n  want: %s", err.message, message);
}
