/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* yaml-dl.c — libyaml for host.yaml, loaded on the first parse (see yaml-dl.h). */
#include "yaml-dl.h"

struct libyaml_dl libyaml;
#define LIBYAML_SYMBOL(fn) DLOPEN_SYMBOL(libyaml, fn)
static const struct dlopen_symbol libyaml_symbols[] = { LIBYAML_FUNCS(LIBYAML_SYMBOL) };
struct dlopen_library config_libyaml_library =
        DLOPEN_LIBRARY("libyaml-0.so.2", "libyaml-0-2", libyaml_symbols);

int config_libyaml_load(struct vgpu_error *err) {
        return dlopen_library_load(&config_libyaml_library, err);
}
