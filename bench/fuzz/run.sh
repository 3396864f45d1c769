#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# run.sh — fuzz vgpud's request handling (fuzz-api.c), its configuration parser (fuzz-conf.c),
# host.yaml's parser (fuzz-yaml.c), mdevctl's definition files (fuzz-mdev.c) and the slice
# records (fuzz-slices.c) with libFuzzer under ASan+UBSan, SECONDS_EACH seconds each (default
# 60), from the seed corpora here; HARNESSES picks some (default: all). The library and daemon
# are built with clang into build-fuzz with coverage instrumentation (without -Werror: clang
# warns where gcc does not, in code the harnesses do not reach); found inputs stay in the work
# directory it prints. Exit 1 when a harness crashed.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_EACH=${SECONDS_EACH:-60}
HARNESSES=${HARNESSES:-api conf yaml mdev slices}
B=${FUZZ_BUILD:-build-fuzz}
command -v clang >/dev/null || { echo "run.sh: clang missing (apt-get install clang)" >&2; exit 1; }
if [[ ! -f $B/build.ninja ]]; then
        CC=clang meson setup "$B" -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false -Dtests=disabled -Dwerror=false \
                -Dc_args=-fsanitize=fuzzer-no-link >/dev/null
fi
ninja -C "$B" src/vgpud/libvgpud-core.a lib/libvgpu-internal.a lib/libvgpu-backends.a src/libvgpu-shared.a >/dev/null
deps="$(pkg-config --libs libsystemd libmicrohttpd inih json-c yaml-0.1 libpci zlib) -lsensors -lm"   # libsensors: no .pc
inc="-Isrc/vgpud -Isrc/shared -Ilib -Ilib/include $(pkg-config --cflags json-c libsystemd)"
work=$(mktemp -d /tmp/vgpud-fuzz-run.XXXXXX)
status=0
for h in $HARNESSES; do
        clang -g -O1 -D_GNU_SOURCE -std=c17 -fsanitize=fuzzer,address,undefined $inc bench/fuzz/fuzz-$h.c \
                "$B/src/vgpud/libvgpud-core.a" "$B/src/libvgpu-shared.a" \
                -Wl,--whole-archive "$B/lib/libvgpu-backends.a" -Wl,--no-whole-archive "$B/lib/libvgpu-internal.a" $deps -ldl -lpthread \
                -o "$work/fuzz-$h"
        mkdir -p "$work/corpus-$h"
        cp bench/fuzz/corpus-$h/* "$work/corpus-$h/"
        echo "== fuzz-$h: $SECONDS_EACH s"
        if ! (cd "$work" && UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ./fuzz-$h -max_total_time="$SECONDS_EACH" \
                -max_len=8192 -print_final_stats=1 "corpus-$h" >"fuzz-$h.log" 2>&1); then
                status=1
                echo "fuzz-$h: CRASH, see $work/fuzz-$h.log and $work/crash-*"
        fi
        grep -E "^stat::number_of_executed_units|^stat::peak_rss_mb|^#[0-9]+ +DONE" "$work/fuzz-$h.log" | tr '\n' ' '; echo
        echo "corpus: $(ls "$work/corpus-$h" | wc -l) inputs"
done
echo "fuzz: work in $work"
exit $status
