#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# completion.sh — the installed bash completion (data/completion/vgpuctl.bash) driven as bash
# drives it: COMP_WORDS split at spaces and colons, COMP_CWORD, then _vgpuctl, then COMPREPLY
# checked. Verbs and options must be the verb table's (read back from --help), values this
# fixture host's (VGPU_ROOT): parents, types of the parent given, UUIDs by state, slices, and
# libvirt domains from the real virsh (its built-in test:///default driver has one, "test").
# The zsh function gets the same words through a compadd that prints what it is given.
source "$(dirname "$0")/testlib.sh"
src=$(cd "$(dirname "$0")/../.." && pwd)
# the scripts call the vgpuctl the line names: the built one, first on PATH
mkdir "$tmp/bin" && ln -s "$VGPUCTL" "$tmp/bin/vgpuctl"
export PATH="$tmp/bin:$PATH"
fixture_copy nvidia-mdev
export VGPU_ROOT=$tmp/host
# one definition that is not running, for `start`
mkdir -p "$tmp/host/etc/mdevctl.d/0000:af:00.0"
printf '{"mdev_type": "nvidia-222", "start": "manual", "attrs": []}\n' >"$tmp/host/etc/mdevctl.d/0000:af:00.0/d0000000-0000-4000-8000-000000000001"

source "$src/data/completion/vgpuctl.bash"
complete -p vgpuctl >/dev/null && ok || bad "the script does not register _vgpuctl for vgpuctl"

# comp LINE: complete at the end of LINE the way bash would, into $reply (sorted, one a line)
comp() {
        local line=$1
        # bash's COMP_WORDS: words at blanks, and each colon a word of its own
        read -ra COMP_WORDS <<<"${line//:/ : }"
        [[ $line == *" " ]] && COMP_WORDS+=("")
        COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
        COMP_LINE=$line COMP_POINT=${#line}
        COMPREPLY=()
        _vgpuctl vgpuctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
        reply=$(printf '%s\n' "${COMPREPLY[@]}" | sort)
}
# comp_is LINE WORD...: exactly these candidates
comp_is() {
        local line=$1; shift
        comp "$line"
        local want; want=$(printf '%s\n' "$@" | sort)
        [[ $reply == "$want" ]] && ok || bad "'$line': got [$(echo $reply)], expected [$(echo $want)]"
}
comp_has() {
        local line=$1; shift
        comp "$line"
        for w in "$@"; do grep -qxF -- "$w" <<<"$reply" && ok || bad "'$line': no '$w' in [$(echo $reply)]"; done
}

# every verb of --help, and nothing else
verbs=$("$VGPUCTL" --help | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF {print $1}')
comp_is "vgpuctl " $verbs
comp_is "vgpuctl --json " $verbs
comp_is "vgpuctl sl" slice
comp_is "vgpuctl --d" --daemon --direct
# each verb's options as its --help lists them, global ones included
for v in $verbs; do
        opts=$("$VGPUCTL" "$v" --help | grep -oE -- '--[a-z][a-z-]*' | sort -u | grep -v -- "^--$v\$" || true)
        comp "vgpuctl $v --"
        for o in $opts; do grep -qxF -- "$o" <<<"$reply" || { bad "'vgpuctl $v --': no $o"; continue 2; }; done
        ok
done
# live values, from the fixture host
comp_is "vgpuctl types " 0000:3b:00.0 0000:5e:00.0 0000:af:00.0
comp_is "vgpuctl create --parent 0000:5e" 5e:00.0             # bash replaces only what follows the colon
comp_is "vgpuctl create --parent 0000:5e:00.0 --type nvidia-23" nvidia-230 nvidia-231 nvidia-232 nvidia-233 nvidia-234
comp_has "vgpuctl create --type " nvidia-222 nvidia-234
comp_is "vgpuctl stop " b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e01 b1e5c3f2-6a7d-4e21-9c43-1a2b3c4d5e02 c7a1d2e3-8b4f-4a5c-9d6e-7f8091a2b3c4
comp_is "vgpuctl start " d0000000-0000-4000-8000-000000000001
comp_is "vgpuctl define --uuid c7" c7a1d2e3-8b4f-4a5c-9d6e-7f8091a2b3c4
comp_is "vgpuctl slice " create list show remove
comp_is "vgpuctl slice create a --policy " best-effort equal-share fixed-share
comp_is "vgpuctl fleet " hosts gpus sessions place release cordon uncordon drain explain
# slice's commands have their own options: create's are not list's
comp_has "vgpuctl slice create a --" --gpu --memory --share --policy --scrub --json
comp "vgpuctl slice list --"
grep -qxF -- --gpu <<<"$reply" && bad "'vgpuctl slice list --' offers create's --gpu" || ok
comp_has "vgpuctl slice list --" --json
comp_is "vgpuctl slice frob "
comp_is "vgpuctl assign c7a1d2e3-8b4f-4a5c-9d6e-7f8091a2b3c4 --connect test:///default --domain " test
comp_is "vgpuctl nosuchverb "
# a file option leaves it to bash's file names
touch "$tmp/host.yaml"
comp_is "vgpuctl apply -f $tmp/host.y" "$tmp/host.yaml"
# the types follow the fixture: a type added to the host is offered
types=$tmp/host/sys/bus/pci/devices/0000:5e:00.0/mdev_supported_types
cp -a "$types/nvidia-233" "$types/nvidia-239"
comp_has "vgpuctl create --parent 5e:00.0 --type nvidia-23" nvidia-239

# zsh: the function file with words/CURRENT as zsh sets them, compadd and _files stubbed
if command -v zsh >/dev/null; then
        out=$(zsh -f -c 'compadd() { shift $(($# - 1)); print -l -- ${(P)1}; }; _files() { print FILES; }
                words=(vgpuctl create --parent 0000:5e:00.0 --type nvidia-23); CURRENT=6
                source "$1"' zsh "$src/data/completion/_vgpuctl" | sort | tr '\n' ' ')
        [[ $out == "nvidia-230 nvidia-231 nvidia-232 nvidia-233 nvidia-234 nvidia-239 " ]] && ok || bad "zsh: [$out]"
        out=$(zsh -f -c 'compadd() { :; }; _files() { print FILES; }; words=(vgpuctl apply -f ""); CURRENT=4; source "$1"' zsh \
              "$src/data/completion/_vgpuctl")
        [[ $out == FILES ]] && ok || bad "zsh --file: [$out]"
else
        echo "completion: zsh not installed (scripts/install-deps.sh --test): its function not checked"
fi

summary
