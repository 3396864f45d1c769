/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* fuzz-conf.c — libFuzzer harness for vgpud.conf's parser (inih, our line reader, the values). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        struct vgpud_config *c = NULL;
        struct vgpu_error err = {};
        int r = vgpud_config_parse(text, "fuzz.conf", &c, &err);
        /* either a configuration that makes sense, or a message that names the file */
        if (r == 0 && (!c || !vgpu_thermal_limits_valid(&c->thermal)))
                abort();
        if (r < 0 && (c || strncmp(err.message, "fuzz.conf", 9) != 0))
                abort();
        vgpud_config_free(c);
        free(text);
        return 0;
}
