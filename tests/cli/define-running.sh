#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# define-running.sh — mdevctl's `define -u UUID` idiom: `vgpuctl define --uuid U` of a running
# vGPU persists it with its own parent and type; a definition that differs from an existing one,
# or a --type/--parent that contradicts the device, is still an error.
source "$(dirname "$0")/testlib.sh"

fixture_copy nvidia-mdev
u=b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01 def=$tmp/host/etc/mdevctl.d/0000:3b:00.0/b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01
rm "$def"       # running, no longer defined
V define --uuid "$u"; expect 0 "define --uuid of a running vGPU"
grep -q "defined $u (nvidia-232 on 0000:3b:00.0)" "$tmp/out" && ok || bad "define output: $(cat "$tmp/out" "$tmp/err")"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['mdev_type']=='nvidia-232' and d['start']=='manual', d" "$def" && ok ||
        bad "definition: $(cat "$def")"
V define -u "$u"; expect 0 "define -u again"; grep -q "already defined" "$tmp/out" && ok || bad "again: $(cat "$tmp/out")"
# parent and type given as well: they must be the device's (a BDF in any spelling)
V define -u "$u" --parent 3b:00.0 -t nvidia-232; expect 0 "define -u with the device's own parent and type"
V define -u "$u" -t nvidia-233; expect 1 "define -u with another type"
grep -q "runs as type nvidia-232, not nvidia-233" "$tmp/err" && ok || bad "type mismatch message: $(cat "$tmp/err")"
V define -u "$u" --parent 5e:00.0; expect 1 "define -u with another parent"
grep -q "runs on parent 0000:3b:00.0, not 0000:5e:00.0" "$tmp/err" && ok || bad "parent mismatch message: $(cat "$tmp/err")"
# the existing definition says manual: asking for auto differs, which stays an error
V define -u "$u" --auto; expect 1 "define -u --auto over a manual definition"
grep -q "already defined differently" "$tmp/err" && ok || bad "differing message: $(cat "$tmp/err")"
grep -q '"manual"' "$def" && ok || bad "differing define changed the file: $(cat "$def")"
# a UUID nothing runs under: parent and type are needed, nothing written
V define -u b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e09; expect 2 "define -u of nothing running"
grep -q "no running vGPU has UUID" "$tmp/err" && ok || bad "not running message: $(cat "$tmp/err")"
[[ ! -e $tmp/host/etc/mdevctl.d/0000:3b:00.0/b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e09 ]] && ok || bad "wrote a definition"
# create keeps requiring both (it makes a new device; there is nothing to copy)
V create -u "$u"; expect 2 "create -u alone"

summary
