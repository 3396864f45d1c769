#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# table.sh — `list --defined` and `types` size each column to its widest cell: a long type id
# (s390's vfio_ap-passthrough) or name (NVIDIA's "GRID RTX6000-4Q") keeps the next columns in
# line; on a terminal narrower than the table (a pty, COLUMNS=60) cells are cut with "…" and
# no line is wider; when stdout is not a terminal nothing is cut, whatever COLUMNS says.
source "$(dirname "$0")/testlib.sh"
export PYTHONPATH=$(dirname "$0")${PYTHONPATH:+:$PYTHONPATH}

fixture_copy kernel-samples
types=$tmp/host/sys/devices/virtual/mbochs/mbochs/mdev_supported_types
mkdir "$types/vfio_ap-passthrough"
cp "$types"/mbochs-large/{available_instances,create,description,device_api} "$types/vfio_ap-passthrough/"
echo "GRID RTX6000-4Q (long name)" >"$types/vfio_ap-passthrough/name"
mkdir -p "$tmp/host/etc/mdevctl.d/mbochs"
printf '{"mdev_type": "vfio_ap-passthrough", "start": "manual", "attrs": []}\n' \
        >"$tmp/host/etc/mdevctl.d/mbochs/5e2b8c1a-3f4d-4e5a-8b6c-7d8e9f0a1b2c"
printf '{"mdev_type": "mbochs-small", "start": "auto", "attrs": [{"x": "1"}]}\n' \
        >"$tmp/host/etc/mdevctl.d/mbochs/6e2b8c1a-3f4d-4e5a-8b6c-7d8e9f0a1b2c"

# Every row of the block headed by HEADER has its cell of column COL (a header word) starting
# where the header's word does, and its cell of column AFTER right after a space.
aligned() {
        python3 - "$tmp/out" "$@" <<'PY'
import sys
text, header, col, values = open(sys.argv[1]).read(), sys.argv[2], sys.argv[3], sys.argv[4].split(',')
block = text.split('\n\n')
rows = next(b for b in block if b.startswith(header)).splitlines()
at = rows[0].index(' ' + col + ' ') + 1 if ' ' + col + ' ' in rows[0] else rows[0].index(' ' + col) + 1
bad = [r for r in rows[1:] if not r.startswith(' ') and not any(r[at:].startswith(v + ' ') or r[at:] == v for v in values)]
if bad:
    sys.exit(f"column {col} (at {at}) out of line in: {bad!r}\n{text}")
PY
}

V types mbochs
[[ $rc == 0 ]] && ok || bad "types: exit $rc"
aligned PARENT API vfio-pci && ok || bad "types: API column out of line"
aligned PARENT NAME "GRID RTX6000-4Q (long name),mbochs-large,mbochs-medium,mbochs-small" && ok || bad "types: NAME column"
V list --defined
aligned DEFINED START auto,manual && ok || bad "list --defined: START column out of line"
aligned DEFINED TYPE vfio_ap-passthrough,mbochs-small && ok || bad "list --defined: TYPE column"
grep -Eq "^ +attr +x=1$" "$tmp/out" && ok || bad "attr line lost: $(cat "$tmp/out")"
# JSON is not a table
V types mbochs --json
python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$tmp/out" && ok || bad "types --json is not JSON"

# not a terminal: never cut, even with COLUMNS set
VGPU_ROOT="$tmp/host" COLUMNS=60 "$VGPUCTL" types >"$tmp/out"
! grep -q "…" "$tmp/out" && grep -q "GRID RTX6000-4Q (long name)" "$tmp/out" && ok || bad "cut although stdout is a file: $(cat "$tmp/out")"
# a 60-column terminal: every line fits, cuts are marked, the columns stay in line
python3 - "$VGPUCTL" "$tmp/host" "$tmp/out" <<'PY' && ok || bad "pty: $(cat "$tmp/out")"
import os, sys, subprocess
from ptyrun import run_on_pty
vgpuctl, root, out = sys.argv[1:]
env = dict(os.environ, VGPU_ROOT=root, COLUMNS="60")
rc, data = run_on_pty([vgpuctl, "types"], "stdout", env=env, stderr=subprocess.DEVNULL)
text = data.decode().replace("\r\n", "\n")
open(out, "w").write(text)
lines = text.splitlines()
assert rc == 0, rc
assert all(len(l) <= 60 for l in lines), [l for l in lines if len(l) > 60]
assert "…" in text, "nothing cut"
# the AVAIL column (right-aligned numbers) ends at the same place on every row
ends = {l.index("vfio-pci") for l in lines[1:]}
assert len(ends) == 1, ends
PY
# an 80-column terminal and the GPU table: the words (names, links) give way, the addresses do not
cp -a "$FIXTURES/nvidia-sriov-vfio" "$tmp/vfio"
python3 - "$VGPUCTL" "$tmp/vfio" "$tmp/out" <<'PY' && ok || bad "pty list: $(cat "$tmp/out")"
import os, sys, subprocess
from ptyrun import run_on_pty
vgpuctl, root, out = sys.argv[1:]
rc, data = run_on_pty([vgpuctl, "list"], "stdout", env=dict(os.environ, VGPU_ROOT=root, COLUMNS="80"),
                      stderr=subprocess.DEVNULL)
text = data.decode().replace("\r\n", "\n")
open(out, "w").write(text)
lines = text.splitlines()
assert all(len(l) <= 80 for l in lines), [l for l in lines if len(l) > 80]
assert "AD102GL …" in text, "the name column was not the one cut"
for bdf in ("0000:41:00.0", "  0000:41:00.7", "0000:61:00.0"):
    assert any(l.startswith(bdf + " ") for l in lines), bdf
PY

summary
