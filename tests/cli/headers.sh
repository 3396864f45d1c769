#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# headers.sh — the installed headers (lib/include/vgpu) as a user of libvgpu.so sees them: each
# compiles alone in C and in C++, and a program using every TYPE_freep cleanup helper, built
# against libvgpu.so only, frees what it got (run under ASan's leak checker when the build has it).
source "$(dirname "$0")/testlib.sh"
inc=${MESON_SOURCE_ROOT:?}/lib/include lib=${LIBVGPU:?}
CC=${CC:-cc} CXX=${CXX:-c++}

for h in "$inc"/vgpu/*.h; do
        name=vgpu/$(basename "$h")
        printf '#include "%s"\n' "$name" >"$tmp/one.c"
        $CC -std=c17 -Wall -Wextra -Werror -I"$inc" -c "$tmp/one.c" -o "$tmp/one.o" 2>"$tmp/err" && ok ||
                bad "$name alone in C: $(head -c 1500 "$tmp/err")"
        # slice-shm.h is the slice region's layout in C11 atomics, for C only (the shim and libvgpu)
        if [[ $name != vgpu/slice-shm.h ]] && command -v "$CXX" >/dev/null; then
                cp "$tmp/one.c" "$tmp/one.cc"
                $CXX -std=c++17 -Wall -Werror -I"$inc" -c "$tmp/one.cc" -o "$tmp/one.o" 2>"$tmp/err" && ok ||
                        bad "$name alone in C++: $(head -c 1500 "$tmp/err")"
        fi
done

# Installed structs carry what callers read and nothing else (issue 11): libvgpu's own state
# (which parents' types were read, who owns a string) lives in private structs around them.
if grep -n -i -E 'private to libvgpu|libvgpu.s own|internal use only' "$inc"/vgpu/*.h >"$tmp/private"; then
        bad "installed headers with private fields: $(cat "$tmp/private")"
else
        ok
fi

cat >"$tmp/user.c" <<'C'
#include <errno.h>
#include <stdio.h>
#include "vgpu/apply.h"
#include "vgpu/assign.h"
#include "vgpu/config.h"
#include "vgpu/diagnose.h"
#include "vgpu/doctor.h"
#include "vgpu/etcd.h"
#include "vgpu/fleet.h"
#include "vgpu/host.h"
#include "vgpu/lifecycle.h"
#include "vgpu/nvml-events.h"
#include "vgpu/root.h"
#include "vgpu/sensors.h"
#include "vgpu/telemetry.h"
#define CLEANUP(f) __attribute__((cleanup(f)))
int main(void) {
        struct vgpu_error err = {0};
        CLEANUP(vgpu_host_freep) struct vgpu_host *host = NULL;
        CLEANUP(vgpu_config_freep) struct vgpu_config *cfg = NULL;
        CLEANUP(vgpu_plan_freep) struct vgpu_plan *plan = NULL;
        CLEANUP(vgpu_doctor_report_freep) struct vgpu_doctor_report *report = NULL;
        CLEANUP(vgpu_diagnosis_freep) struct vgpu_diagnosis *diagnosis = NULL;
        CLEANUP(vgpu_virt_freep) struct vgpu_virt *virt = NULL;
        CLEANUP(vgpu_nvml_events_freep) struct vgpu_nvml_events *events = NULL;
        CLEANUP(vgpu_ipmi_freep) struct vgpu_ipmi *ipmi = NULL;
        CLEANUP(vgpu_etcd_freep) struct vgpu_etcd *etcd = NULL;
        CLEANUP(vgpu_etcd_range_free) struct vgpu_etcd_range range = {0};
        CLEANUP(vgpu_fleet_claim_free) struct vgpu_fleet_claim claim = {0};
        CLEANUP(vgpu_mdev_spec_free) struct vgpu_mdev_spec spec = {0};
        CLEANUP(vgpu_telemetry_free) struct vgpu_telemetry telemetry = {0};
        CLEANUP(vgpu_restore_report_free) struct vgpu_restore_report restore = {0};
        static const char text[] = "version: 1\ngpus:\n  - parent: mtty\n    devices:\n      - type: mtty-1\n        count: 1\n";
        if (vgpu_host_scan(VGPU_SCAN_ALL, &host, &err) < 0 ||
            vgpu_config_parse_text(text, sizeof(text) - 1, "user.yaml", &cfg, &err) < 0 ||
            vgpu_plan_for(cfg, 0, &plan, &err) < 0 ||
            vgpu_restore(NULL, 0, VGPU_APPLY_DRY_RUN, NULL, &restore, &err) < 0) {
                fprintf(stderr, "%s\n", err.message);
                return 1;
        }
        spec.parent = strdup("mtty");
        spec.type = strdup("mtty-1");
        /* the fleet's objects: a client (not connected until used) and a decoded claim */
        static const char *const endpoints[] = { "http://127.0.0.1:9", NULL };
        const struct vgpu_etcd_config ec = { .endpoints = endpoints };
        static const char claim_text[] = "{\"claim\":\"c1\",\"session\":\"s1\",\"user\":\"u\",\"host\":\"h\","
                                         "\"gpu\":\"g\",\"kind\":\"vgpu\",\"type\":\"t\",\"vram_bytes\":1,"
                                         "\"tenant\":\"d\",\"state\":\"PENDING\",\"host_lease\":\"1\","
                                         "\"created_ms\":1,\"deadline_ms\":2}";
        if (vgpu_etcd_new(&ec, &etcd, &err) < 0 || vgpu_fleet_claim_from_json(claim_text, &claim, &err) < 0) {
                fprintf(stderr, "%s\n", err.message);
                return 1;
        }
        (void) range;
        (void) report, (void) diagnosis, (void) virt, (void) events, (void) ipmi, (void) telemetry;
        char sys[4096];
        if (vgpu_root_path(sys, sizeof(sys), "/sys") < 0 || vgpu_root_path(sys, sizeof(sys), "sys") != -EINVAL)
                return 1;
        printf("%zu gpus, %zu actions, nothing saved: %d, root %s, %s\n", host->n_gpus, plan->n_actions,
               restore.nothing_saved, vgpu_root_prefix(), sys);
        return 0;
}
C
sed -i '1i #include <string.h>' "$tmp/user.c"
fixture_copy kernel-samples
if $CC -std=gnu17 -Wall -Wextra -Werror ${SANITIZE:+-fsanitize=$SANITIZE} -I"$inc" "$tmp/user.c" "$lib" \
        -Wl,-rpath,"$(dirname "$lib")" -o "$tmp/user" 2>"$tmp/err"; then
        ok
        if VGPU_ROOT=$tmp/host "$tmp/user" >"$tmp/out" 2>"$tmp/err"; then ok; else bad "user program: $(cat "$tmp/err")"; fi
        grep -qF "actions, nothing saved: 1, root $tmp/host, $tmp/host/sys" "$tmp/out" && ok || bad "user program printed: $(cat "$tmp/out")"
else
        bad "user program does not build against libvgpu.so: $(head -c 2000 "$tmp/err")"
fi
summary
