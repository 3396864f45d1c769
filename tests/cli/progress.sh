#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# progress.sh — `apply` of several devices and `report` show "step N of M" with the action on
# stderr when stderr is a terminal (a pty from python's pty module), and print nothing extra
# when it is not (a file) or with --json; stdout is the same in every case.
source "$(dirname "$0")/testlib.sh"

# run TTY|FILE NAME ARGS...: vgpuctl ARGS with stdout in $tmp/NAME.out and stderr in $tmp/NAME.err,
# stderr a pty (TTY) or a plain file (FILE); exit status in $tmp/NAME.rc
run() {
        python3 - "$@" <<'PY'
import os, subprocess, sys
mode, name, args = sys.argv[1], sys.argv[2], sys.argv[3:]
tmp, vgpuctl = os.environ["TMPDIR_T"], os.environ["VGPUCTL"]
out = open(f"{tmp}/{name}.out", "wb")
if mode == "TTY":
    from ptyrun import run_on_pty
    rc, data = run_on_pty([vgpuctl] + args, "stderr", stdout=out, stdin=subprocess.DEVNULL)
    open(f"{tmp}/{name}.err", "wb").write(data)
else:
    with open(f"{tmp}/{name}.err", "wb") as err:
        rc = subprocess.run([vgpuctl] + args, stdout=out, stderr=err, stdin=subprocess.DEVNULL).returncode
open(f"{tmp}/{name}.rc", "w").write(str(rc))
PY
}
export TMPDIR_T=$tmp PYTHONPATH=$(dirname "$0")${PYTHONPATH:+:$PYTHONPATH}
fresh() { rm -rf "$tmp/host"; cp -a "$FIXTURES/nvidia-sriov-vfio" "$tmp/host"; }
export VGPU_ROOT=$tmp/host
printf 'version: 1\ngpus:\n  - bdf: 41:00.5\n    devices: [{type: "1152"}]\n  - bdf: 41:00.6\n    devices: [{type: "1162"}]\n  - bdf: 41:00.7\n    devices: [{type: "1152"}]\n' >"$tmp/v.yaml"

# apply, stderr a terminal: every step with its action, then the line cleared
fresh; run TTY tty apply --direct -f "$tmp/v.yaml"
[[ $(cat "$tmp/tty.rc") == 0 ]] && ok || bad "apply on a pty: exit $(cat "$tmp/tty.rc")"
for s in "step 1 of 3: create vendor-VFIO vGPU (1152 on 0000:41:00.5)" "step 2 of 3: create vendor-VFIO vGPU (1162 on 0000:41:00.6)" \
         "step 3 of 3: create vendor-VFIO vGPU (1152 on 0000:41:00.7)"; do
        grep -qF "apply: $s" "$tmp/tty.err" && ok || bad "no '$s' on the terminal: $(cat -v "$tmp/tty.err")"
done
[[ $(tail -c 4 "$tmp/tty.err" | od -An -c | tr -d ' ') == '\r033[K' ]] && ok || bad "progress line not cleared: $(tail -c 20 "$tmp/tty.err" | cat -v)"
# stderr a file: nothing but what there was before (nothing), the same stdout
fresh; run FILE file apply --direct -f "$tmp/v.yaml"
[[ $(cat "$tmp/file.rc") == 0 && ! -s $tmp/file.err ]] && ok || bad "apply, stderr not a tty: exit $(cat "$tmp/file.rc"), stderr [$(cat -v "$tmp/file.err")]"
cmp -s "$tmp/tty.out" "$tmp/file.out" && ok || bad "stdout differs with and without a terminal"
grep -q $'\033' "$tmp/tty.out" && bad "escape sequences on stdout" || ok
# --json: no progress even on a terminal
fresh; run TTY json apply --direct --json -f "$tmp/v.yaml"
[[ $(cat "$tmp/json.rc") == 0 && ! -s $tmp/json.err ]] && ok || bad "apply --json on a pty: stderr [$(cat -v "$tmp/json.err")]"
python3 -c "import json,sys; json.load(open(sys.argv[1]))" "$tmp/json.out" && ok || bad "apply --json: not JSON"
# a dry run carries nothing out: no steps
fresh; run TTY dry apply --direct --dry-run -f "$tmp/v.yaml"
grep -q "step" "$tmp/dry.err" && bad "dry run shows steps: $(cat -v "$tmp/dry.err")" || ok

# report: its five steps on a terminal, nothing otherwise
fresh; run TTY rtty report -o "$tmp/r1.tar.gz"
for s in "step 1 of 5: scanning the host" "step 4 of 5: vgpuctl doctor" "step 5 of 5: writing $tmp/r1.tar.gz"; do
        grep -qF "report: $s" "$tmp/rtty.err" && ok || bad "report: no '$s': $(cat -v "$tmp/rtty.err")"
done
run FILE rfile report -o "$tmp/r2.tar.gz"
[[ $(cat "$tmp/rfile.rc") == 0 && ! -s $tmp/rfile.err ]] && ok || bad "report, stderr not a tty: [$(cat -v "$tmp/rfile.err")]"
grep -q "entries" "$tmp/rfile.out" && ok || bad "report's result line: $(cat "$tmp/rfile.out")"
run TTY rjson report --json -o "$tmp/r3.tar.gz"
[[ ! -s $tmp/rjson.err ]] && ok || bad "report --json on a pty: [$(cat -v "$tmp/rjson.err")]"

summary
