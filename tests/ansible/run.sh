#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# run.sh — the Ansible collection (ansible/ansible_collections/vgpuctl/vgpu) with Debian's
# ansible-core against a copy of the nvidia-baremetal fixture host (VGPU_ROOT, NVML from the double):
# a first run changes the host, a second changes nothing, --check --diff shows the plan of a new
# configuration and changes nothing; vgpu_slice is idempotent both ways and refuses a conflicting
# slice; ansible-doc parses every module, and the options it shows (with the doc fragments of
# plugins/doc_fragments) are those each module takes (doc-args.py); ansible-lint is clean at the
# production profile.
# vgpu_session places and releases through a real vgpu-broker on a real etcd (BROKER_BIN; etcd).
# Needs VGPUCTL, FIXTURES, NVML_DOUBLE (tests/meson.build); ansible-core, ansible-lint.
set -uo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }
for p in ansible-playbook ansible-doc ansible-lint; do
        command -v $p >/dev/null || { echo "SKIP: $p is not installed (scripts/install-deps.sh --test)"; exit 77; }
done

export ANSIBLE_COLLECTIONS_PATH=$SRC/ansible ANSIBLE_LOCAL_TEMP=$tmp/ansible-tmp ANSIBLE_HOME=$tmp/ansible-home
export ANSIBLE_NOCOLOR=1 ANSIBLE_RETRY_FILES_ENABLED=0 ANSIBLE_PYTHON_INTERPRETER=/usr/bin/python3
export ANSIBLE_INVENTORY_UNPARSED_WARNING=0 ANSIBLE_LOCALHOST_WARNING=0
# the modules inherit it: vgpuctl reads the GPUs' memory from the NVML double
export LD_LIBRARY_PATH=$NVML_DOUBLE
cp -a "$FIXTURES/nvidia-baremetal" "$tmp/host"
VARS=(-e "vgpu_root=$tmp/host" -e "vgpuctl_bin=$VGPUCTL")
records=$tmp/host/var/lib/vgpuctl/slices
# the recap's changed= of localhost, after running a playbook (output in $tmp/out)
play() { ansible-playbook -c local -i localhost, "${VARS[@]}" "$@" >"$tmp/out" 2>&1; rc=$?; }
changed() { sed -n 's/^localhost *: .*changed=\([0-9]*\).*/\1/p' "$tmp/out"; }
state() { (cd "$tmp/host" && find etc/vgpuctl var/lib/vgpuctl etc/cdi -type f -exec sha256sum {} + 2>/dev/null | sort); }

# 1. the role: the first run creates alice, writes the files; the second changes nothing
play "$SRC/tests/ansible/site.yml"
[[ $rc == 0 ]] && ok || bad "first run: exit $rc: $(tail -30 "$tmp/out")"
[[ $(changed) -ge 3 ]] && ok || bad "first run changed $(changed) tasks, expected host.yaml, vgpud.conf, apply"
[[ -f $records/alice.json && -f $tmp/host/etc/vgpuctl/host.yaml && -f $tmp/host/etc/vgpuctl/vgpud.conf ]] && ok ||
        bad "after the first run: $(ls "$records" "$tmp/host/etc/vgpuctl" 2>&1)"
VGPU_ROOT=$tmp/host "$VGPUCTL" assert -f "$tmp/host/etc/vgpuctl/host.yaml" >/dev/null 2>&1 && ok ||
        bad "the host does not match the host.yaml the role wrote"
play "$SRC/tests/ansible/site.yml"
[[ $rc == 0 && $(changed) == 0 ]] && ok || bad "second run: exit $rc, changed=$(changed): $(grep -B2 -A8 'changed:' "$tmp/out" | head -40)"

# 2. --check --diff with one more slice: the plan as the diff, nothing changed
before=$(state)
echo '{"extra_slices": [{"name": "bob", "gpu": "0000:3b:00.0", "memory": "32M"}]}' >"$tmp/extra.json"
play "$SRC/tests/ansible/site.yml" --check --diff -e "@$tmp/extra.json"
[[ $rc == 0 ]] && ok || bad "check run: exit $rc: $(tail -30 "$tmp/out")"
grep -q '^+ slice-create slice bob (32M on 0000:3b:00.0' "$tmp/out" && ok || bad "no plan in the diff: $(cat "$tmp/out")"
[[ $(changed) -ge 1 ]] && ok || bad "check run reports changed=$(changed)"
[[ $(state) == "$before" && ! -f $records/bob.json ]] && ok || bad "the check run changed files"
# ...and for real: bob made, then the old configuration removes him again
play "$SRC/tests/ansible/site.yml" -e "@$tmp/extra.json"
[[ $rc == 0 && -f $records/bob.json ]] && ok || bad "bob not created: exit $rc: $(tail -20 "$tmp/out")"
play "$SRC/tests/ansible/site.yml"
[[ $rc == 0 && ! -f $records/bob.json && -f $records/alice.json ]] && ok || bad "bob not removed: exit $rc"

# 3. vgpu_slice: idempotent both ways, check mode changes nothing, a conflict is refused
play "$SRC/tests/ansible/slice.yml" -e slice_state=present --check --diff
[[ $rc == 0 && $(changed) == 1 && ! -f $records/carol.json ]] && ok || bad "slice check mode: exit $rc changed=$(changed)"
play "$SRC/tests/ansible/slice.yml" -e slice_state=present
[[ $rc == 0 && $(changed) == 1 && -f $records/carol.json ]] && ok || bad "slice create: exit $rc changed=$(changed): $(tail -20 "$tmp/out")"
VGPU_ROOT=$tmp/host "$VGPUCTL" slice show carol --json | python3 -c '
import json, sys; s = json.load(sys.stdin)
assert (s["gpu"], s["memory_bytes"], s["scrub"]) == ("0000:3b:00.0", 128 << 20, "on-exit"), s' && ok || bad "carol as created"
play "$SRC/tests/ansible/slice.yml" -e slice_state=present
[[ $rc == 0 && $(changed) == 0 ]] && ok || bad "slice create again: exit $rc changed=$(changed): $(tail -20 "$tmp/out")"
play "$SRC/tests/ansible/slice.yml" -e slice_state=present -e carol_memory=256M
[[ $rc != 0 ]] && grep -q 'memory_bytes is 134217728, not 268435456' "$tmp/out" && ok ||
        bad "a conflicting slice is not refused: exit $rc: $(tail -20 "$tmp/out")"
play "$SRC/tests/ansible/slice.yml" -e slice_state=absent --check
[[ $rc == 0 && $(changed) == 1 && -f $records/carol.json ]] && ok || bad "slice remove check mode: exit $rc changed=$(changed)"
play "$SRC/tests/ansible/slice.yml" -e slice_state=absent
[[ $rc == 0 && $(changed) == 1 && ! -f $records/carol.json ]] && ok || bad "slice remove: exit $rc changed=$(changed)"
play "$SRC/tests/ansible/slice.yml" -e slice_state=absent
[[ $rc == 0 && $(changed) == 0 ]] && ok || bad "slice remove again: exit $rc changed=$(changed)"

# 3b. vgpu_session against a real broker on a real etcd (tests/ansible/fleet.py): placed once,
# then changed=0; --check --diff shows where it would go and claims nothing; released once
if [[ -n ${BROKER_BIN:-} ]] && command -v etcd >/dev/null; then
        coproc FLEET { exec python3 "$SRC/tests/ansible/fleet.py" "$BROKER_BIN" "$tmp/fleet" 2>"$tmp/fleet.err"; }
        read -r -t 60 -u "${FLEET[0]}" broker_sock etcd_ep || bad "the fleet did not start: $(cat "$tmp/fleet.err")"
        SVARS=(-e "broker=$broker_sock")
        claims() { etcdctl --endpoints "$etcd_ep" get --prefix --keys-only /vgpuctl/v1/default/claims/ | grep -c . ; }
        sessions_json() { VGPU_BROKER=$broker_sock "$VGPUCTL" fleet sessions --json; }
        play "$SRC/tests/ansible/session.yml" "${SVARS[@]}" -e session_state=present --check --diff
        [[ $rc == 0 && $(changed) == 1 && $(claims) == 0 ]] && grep -q '^+ *"host": "ans-' "$tmp/out" && ok ||
                bad "session check mode: exit $rc changed=$(changed) claims=$(claims): $(tail -30 "$tmp/out")"
        play "$SRC/tests/ansible/session.yml" "${SVARS[@]}" -e session_state=present --diff
        [[ $rc == 0 && $(changed) == 1 && $(claims) == 1 ]] && ok ||
                bad "session place: exit $rc changed=$(changed) claims=$(claims): $(tail -30 "$tmp/out")"
        sessions_json | python3 -c '
import json, sys; s = json.load(sys.stdin)
assert len(s) == 1 and (s[0]["idempotency_key"], s[0]["user"], s[0]["tenant"], s[0]["vram_bytes"]) == \
    ("ansible-alice", "alice", "lab", 4 << 30), s' && ok || bad "the session as placed: $(sessions_json)"
        play "$SRC/tests/ansible/session.yml" "${SVARS[@]}" -e session_state=present
        [[ $rc == 0 && $(changed) == 0 && $(claims) == 1 ]] && ok ||
                bad "session place again: exit $rc changed=$(changed) claims=$(claims): $(tail -30 "$tmp/out")"
        play "$SRC/tests/ansible/session.yml" "${SVARS[@]}" -e session_state=absent --check --diff
        [[ $rc == 0 && $(changed) == 1 && $(claims) == 1 ]] && ok ||
                bad "session release check mode: exit $rc changed=$(changed) claims=$(claims)"
        play "$SRC/tests/ansible/session.yml" "${SVARS[@]}" -e session_state=absent
        [[ $rc == 0 && $(changed) == 1 ]] && ok || bad "session release: exit $rc changed=$(changed): $(tail -30 "$tmp/out")"
        play "$SRC/tests/ansible/session.yml" "${SVARS[@]}" -e session_state=absent
        [[ $rc == 0 && $(changed) == 0 ]] && ok || bad "session release again: exit $rc changed=$(changed)"
        # a request no GPU fits: check mode says so and fails, as the real run would
        play "$SRC/tests/ansible/session.yml" "${SVARS[@]}" -e session_state=present -e alice_vram=64G --check
        [[ $rc != 0 ]] && grep -q 'no GPU of 2 fits session ansible-alice' "$tmp/out" && ok ||
                bad "an unplaceable session in check mode: exit $rc: $(tail -20 "$tmp/out")"
        exec {FLEET[1]}>&-
        wait "$FLEET_PID" 2>/dev/null
else
        echo "note: vgpu_session not run against a broker (BROKER_BIN unset or no etcd)"
fi

# 3c. the vgpu_broker role on a fixture root: --check writes nothing; its files (options, the
# secrets as systemd credentials, the token root's alone); a second run changes nothing
broot=$tmp/broker-root
mkdir -p "$broot"
play "$SRC/tests/ansible/broker.yml" -e "broker_root=$broot" --check --diff
[[ $rc == 0 && $(changed) -ge 3 && -z $(find "$broot" -type f) ]] && ok ||
        bad "broker role check mode: exit $rc changed=$(changed) $(find "$broot" -type f): $(tail -20 "$tmp/out")"
play "$SRC/tests/ansible/broker.yml" -e "broker_root=$broot"
[[ $rc == 0 && $(changed) -ge 3 ]] && ok || bad "broker role: exit $rc changed=$(changed): $(tail -30 "$tmp/out")"
creds=/run/credentials/vgpu-broker.service
opts=$(set -a; . "$broot/etc/vgpuctl/vgpu-broker.env"; echo "$VGPU_BROKER_ETCD|$VGPU_BROKER_OPTS")
[[ $opts == "http://127.0.0.1:23790,http://127.0.0.1:23791|--cluster lab --policy spread --listen 127.0.0.1:28442 --tls-cert $creds/tls-cert --tls-key $creds/tls-key --token-file $creds/token --quota-vram 64G" ]] &&
        ok || bad "vgpu-broker.env: $opts"
dropin=$broot/etc/systemd/system/vgpu-broker.service.d/credentials.conf
grep -qx 'LoadCredential=tls-key:/etc/ssl/private/broker.key' "$dropin" &&
        grep -qx 'LoadCredential=token:/etc/vgpuctl/vgpu-broker.token' "$dropin" && ok || bad "the drop-in: $(cat "$dropin")"
[[ $(stat -c %a "$broot/etc/vgpuctl/vgpu-broker.token") == 600 && $(cat "$broot/etc/vgpuctl/vgpu-broker.token") == t0ken ]] &&
        ok || bad "the token file: $(stat -c %a "$broot/etc/vgpuctl/vgpu-broker.token")"
# the options are the broker's: it runs with them (less the credentials systemd would hand it)
if [[ -n ${BROKER_BIN:-} ]]; then
        read -ra o <<<"$(sed -E 's/ --(tls-cert|tls-key|token-file) [^ ]*//g' <<<"${opts#*|}")"
        timeout 1 "$BROKER_BIN" --etcd http://127.0.0.1:1 --socket "$tmp/b.sock" "${o[@]}" 2>"$tmp/b.err"
        [[ $? == 124 && ${#o[@]} == 8 ]] && ok || bad "vgpu-broker ${o[*]}: $(cat "$tmp/b.err")"
fi
play "$SRC/tests/ansible/broker.yml" -e "broker_root=$broot"
[[ $rc == 0 && $(changed) == 0 ]] && ok || bad "broker role again: exit $rc changed=$(changed): $(grep -A5 'changed:' "$tmp/out")"

# 4. every module's documentation parses; its examples and options are there
for m in vgpu_host vgpu_info vgpu_slice vgpu_session; do
        out=$(ansible-doc -t module "vgpuctl.vgpu.$m" 2>&1)
        [[ $? == 0 && $out == *EXAMPLES* && $out != *"ERROR"* ]] && ok || bad "ansible-doc $m: $out"
done
[[ $(ansible-doc -l vgpuctl.vgpu 2>/dev/null | wc -l) == 4 ]] && ok || bad "ansible-doc -l: $(ansible-doc -l vgpuctl.vgpu 2>&1)"
# ...with the options each takes: a doc fragment that lost or changed an option fails here
"$ANSIBLE_PYTHON_INTERPRETER" "$SRC/tests/ansible/doc-args.py" "$SRC/ansible" vgpu_host vgpu_info vgpu_slice vgpu_session \
        >"$tmp/doc-args" 2>&1 && ok || bad "documented options differ from the modules': $(cat "$tmp/doc-args")"

# 5. ansible-lint, offline, at the strictest profile, on the collection and these playbooks
cp -a "$SRC/ansible" "$tmp/lint" && cp "$SRC"/tests/ansible/*.yml "$tmp/lint/"
if (cd "$tmp/lint" && ansible-lint --offline --profile production --nocolor \
        ansible_collections/vgpuctl/vgpu site.yml slice.yml session.yml broker.yml >"$tmp/lint.out" 2>&1); then ok; else
        bad "ansible-lint: $(cat "$tmp/lint.out")"
fi

echo "ansible: $pass passed, $fail failed"
[[ $fail -eq 0 ]]
