/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * keys.c — the fleet's key layout (doc/fleet.md): the cluster prefix, key components that cannot
 * reach into another's range, the names of kinds, states and modes, session ids.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "basic/error-util.h"
#include "basic/macro.h"
#include "fleet/fleet-internal.h"

static bool name_chars_ok(const char *s, const char *extra, size_t max) {
        size_t n = s ? strlen(s) : 0;
        if (n == 0 || n > max || streq(s, ".") || streq(s, ".."))
                return false;
        for (const char *p = s; *p; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                      strchr(extra, *p)))
                        return false;
        return true;
}

_public_ bool vgpu_fleet_name_is_valid(const char *name) {
        return name_chars_ok(name, "._:-", 128);
}

_public_ int vgpu_fleet_prefix(const char *cluster, char *buf, size_t size) {
        if (!name_chars_ok(cluster, "._-", 64))
                return -EINVAL;
        int n = snprintf(buf, size, "/vgpuctl/v1/%s/", cluster);
        return n < 0 || (size_t) n >= size ? -ENAMETOOLONG : 0;
}

_public_ int vgpu_fleet_key(char *buf, size_t size, const char *prefix, ...) {
        va_list ap;
        size_t len = 0;
        int n = snprintf(buf, size, "%s", prefix);
        if (n < 0 || (size_t) n >= size)
                return -ENAMETOOLONG;
        len = (size_t) n;
        va_start(ap, prefix);
        bool first = true;
        for (const char *c; (c = va_arg(ap, const char *));) {
                n = snprintf(buf + len, size - len, "%s%s", first ? "" : "/", c);
                if (n < 0 || (size_t) n >= size - len) {
                        va_end(ap);
                        return -ENAMETOOLONG;
                }
                len += (size_t) n;
                first = false;
        }
        va_end(ap);
        return 0;
}

static const char *const kinds[_VGPU_FLEET_KIND_MAX] = {
        [VGPU_FLEET_KIND_VGPU] = "vgpu",
        [VGPU_FLEET_KIND_SLICE] = "slice",
        [VGPU_FLEET_KIND_VRAM] = "vram",
};
static const char *const states[_VGPU_FLEET_STATE_MAX] = {
        [VGPU_FLEET_PENDING] = "PENDING",     [VGPU_FLEET_BOUND] = "BOUND", [VGPU_FLEET_FAILED] = "FAILED",
        [VGPU_FLEET_RELEASING] = "RELEASING", [VGPU_FLEET_LOST] = "LOST",
};
static const char *const filters[_VGPU_FLEET_FILTER_MAX] = {
        [VGPU_FLEET_FILTER_HOST_ALIVE] = "host_alive",
        [VGPU_FLEET_FILTER_CORDONED] = "cordoned",
        [VGPU_FLEET_FILTER_HEALTH] = "health",
        [VGPU_FLEET_FILTER_MODEL] = "model",
        [VGPU_FLEET_FILTER_TYPE] = "type",
        [VGPU_FLEET_FILTER_VRAM] = "vram",
        [VGPU_FLEET_FILTER_HELD] = "held",
        [VGPU_FLEET_FILTER_QUOTA] = "quota",
};

_public_ const char *vgpu_fleet_kind_to_string(enum vgpu_fleet_kind k) {
        return (unsigned) k < _VGPU_FLEET_KIND_MAX ? kinds[k] : NULL;
}

_public_ int vgpu_fleet_kind_from_string(const char *s) {
        for (int i = 0; i < _VGPU_FLEET_KIND_MAX; i++)
                if (streq(s, kinds[i]))
                        return i;
        return -EINVAL;
}

_public_ const char *vgpu_fleet_state_to_string(enum vgpu_fleet_state s) {
        return (unsigned) s < _VGPU_FLEET_STATE_MAX ? states[s] : NULL;
}

_public_ int vgpu_fleet_state_from_string(const char *s) {
        for (int i = 0; i < _VGPU_FLEET_STATE_MAX; i++)
                if (streq(s, states[i]))
                        return i;
        return -EINVAL;
}

_public_ const char *vgpu_fleet_mode_to_string(enum vgpu_fleet_mode m) {
        return m == VGPU_FLEET_MODE_VGPU ? "vgpu" : m == VGPU_FLEET_MODE_SLICE ? "slice" : "none";
}

_public_ const char *vgpu_fleet_filter_to_string(enum vgpu_fleet_filter f) {
        return (unsigned) f < _VGPU_FLEET_FILTER_MAX ? filters[f] : NULL;
}

_public_ void vgpu_fleet_session_id(const char *idempotency_key, char buf[static 33]) {
        uint8_t d[32];
        fleet_sha256(idempotency_key, strlen(idempotency_key), d);
        for (unsigned i = 0; i < 16; i++)
                snprintf(buf + 2 * i, 3, "%02x", d[i]);
}

int64_t fleet_now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int fleet_json_finish(json_object *root, char **ret, struct vgpu_error *err) {
        if (!root)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        const char *s =
                json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        char *copy = s ? strdup(s) : NULL;
        json_object_put(root);
        if (!copy)
                return vgpu_error_set(err, -ENOMEM, "out of memory");
        *ret = copy;
        return 0;
}
