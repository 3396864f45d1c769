#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# man.sh — the man pages and completions install with `meson install`; each page renders
# without a warning (groff -ww, man -l); and they cannot say less than the program: every verb
# and option of vgpuctl's verb table (read through `vgpuctl __complete`, which walks it), every
# option of vgpud's getopt table, every key and section src/vgpud/conf.c accepts, and every key
# lib/config's parser accepts are in the page for them.
source "$(dirname "$0")/testlib.sh"
build=${MESON_BUILD_ROOT:?} src=${MESON_SOURCE_ROOT:?}
vgpuctl=$build/src/vgpuctl/vgpuctl

DESTDIR=$tmp/dest meson install -C "$build" --no-rebuild --quiet >/dev/null 2>&1
found() { find "$tmp/dest" -path "*$1" | head -1; }
for f in man8/vgpuctl.8 man5/vgpud.conf.5 man5/host.yaml.5 bash-completion/completions/vgpuctl zsh/site-functions/_vgpuctl \
         doc/vgpuctl/host.yaml; do
        [[ -n $(found "/$f") ]] && ok || bad "meson install does not install $f"
done
pages=(man8/vgpuctl.8 man5/vgpud.conf.5 man5/host.yaml.5)
[[ -x $build/src/vgpud/vgpud ]] && pages+=(man8/vgpud.8)
[[ -x $build/src/vgpud/vgpud && -z $(found /man8/vgpud.8) ]] && bad "vgpud.8 not installed"
[[ -x $build/src/vgpu-broker/vgpu-broker ]] && pages+=(man8/vgpu-broker.8)
[[ -x $build/src/vgpu-broker/vgpu-broker && -z $(found /man8/vgpu-broker.8) ]] && bad "vgpu-broker.8 not installed"

for p in "${pages[@]}"; do
        f=$(found "/$p")
        [[ -n $f ]] || continue
        w=$(groff -ww -man -z "$f" 2>&1) && [[ -z $w ]] && ok || bad "groff -ww $p: $w"
        if command -v man >/dev/null; then
                w=$(MANWIDTH=100 man -l "$f" 2>&1 >"$tmp/rendered") && [[ -z $w && -s $tmp/rendered ]] && ok || bad "man -l $p: $w"
        fi
done

# roff spells '-' as '\-' and sets names in bold: look for what a reader sees there
page_has() { grep -qF -- "$2" "$1"; }
roffed() { printf '%s' "$1" | sed 's/-/\\-/g'; }

# vgpuctl(8): the verb table, verb by verb
page=$(found /man8/vgpuctl.8)
verbs=$("$vgpuctl" __complete 1 vgpuctl "")
[[ $(wc -l <<<"$verbs") -ge 15 ]] && ok || bad "__complete lists $(wc -l <<<"$verbs") verbs"
for v in $verbs; do
        page_has "$page" "\\fB$(roffed "$v")\\fR" || { bad "vgpuctl.8 lacks the verb $v"; continue; }
        for o in $("$vgpuctl" __complete 2 vgpuctl "$v" --); do
                page_has "$page" "\\fB$(roffed "$o")\\fR" || { bad "vgpuctl.8 lacks $v's option $o"; continue 2; }
        done
        # the summary --help prints for it
        s=$("$vgpuctl" "$v" --help | sed -n 3p | sed 's/\.$//')
        page_has "$page" "$(roffed "$s")" || { bad "vgpuctl.8: $v's summary differs from --help ('$s')"; continue; }
        ok
done

# a verb of verbs (slice): each of its commands, with its options and its --help summary
n_sub=0
for v in $verbs; do
        "$vgpuctl" "$v" --help | grep -q '^Commands:$' || continue
        for s in $("$vgpuctl" __complete 2 vgpuctl "$v" ""); do
                n_sub=$((n_sub + 1))
                page_has "$page" "\\fB$(roffed "$v $s")\\fR" || { bad "vgpuctl.8 lacks the command $v $s"; continue; }
                for o in $("$vgpuctl" __complete 3 vgpuctl "$v" "$s" --); do
                        page_has "$page" "\\fB$(roffed "$o")\\fR" || { bad "vgpuctl.8 lacks $v $s's option $o"; continue 2; }
                done
                t=$("$vgpuctl" "$v" "$s" --help | sed -n 3p | sed 's/\.$//')
                page_has "$page" "$(roffed "$t")" || { bad "vgpuctl.8: $v $s's summary differs from --help ('$t')"; continue; }
                ok
        done
done
[[ $n_sub -ge 4 ]] && ok || bad "only $n_sub commands of verbs of verbs (slice create, list, show, remove)"

# vgpud(8): vgpud's getopt table
if [[ -x $build/src/vgpud/vgpud ]]; then
        page=$(found /man8/vgpud.8)
        opts=$(grep -oE '\{ "[a-z-]+", (required|no)_argument' "$src/src/vgpud/main.c" | cut -d'"' -f2)
        [[ -n $opts ]] && ok || bad "no options found in src/vgpud/main.c"
        for o in $opts; do page_has "$page" "$(roffed "--$o")" && ok || bad "vgpud.8 lacks --$o"; done
fi
# vgpu-broker(8): the broker's getopt table
if [[ -x $build/src/vgpu-broker/vgpu-broker ]]; then
        page=$(found /man8/vgpu-broker.8)
        opts=$(grep -oE '\{ "[a-z-]+", (required|no)_argument' "$src/src/vgpu-broker/main.c" | cut -d'"' -f2)
        [[ $(wc -w <<<"$opts") -ge 20 ]] && ok || bad "only [$opts] options found in src/vgpu-broker/main.c"
        for o in $opts; do page_has "$page" "$(roffed "--$o")" && ok || bad "vgpu-broker.8 lacks --$o"; done
fi

# vgpud.conf(5): what conf.c's parser accepts
page=$(found /man5/vgpud.conf.5)
keys=$(grep -oE 'streq\(name, "[a-z-]+"\)' "$src/src/vgpud/conf.c" | cut -d'"' -f2 | sort -u)
sections=$(grep -oE 'streq\(section, "[a-z]+"\)' "$src/src/vgpud/conf.c" | cut -d'"' -f2 | sort -u)
[[ $(wc -w <<<"$keys") -ge 15 && $(wc -w <<<"$sections") -ge 4 ]] && ok || bad "conf.c: found keys [$keys], sections [$sections]"
for k in $keys; do page_has "$page" "\\fB$(roffed "$k")\\fR = " && ok || bad "vgpud.conf.5 lacks the key $k"; done
for s in $sections; do page_has "$page" "[$s]" && ok || bad "vgpud.conf.5 lacks the section [$s]"; done

# host.yaml(5): what lib/config's parser accepts
page=$(found /man5/host.yaml.5)
keys=$(cat "$src"/lib/config/*.c | grep -oE 'streq\(key, "[a-z-]+"\)' | cut -d'"' -f2 | sort -u)
[[ $(wc -w <<<"$keys") -ge 20 ]] && ok || bad "lib/config: found keys [$keys]"
for k in $keys; do page_has "$page" "\\fB$(roffed "$k")\\fR" && ok || bad "host.yaml.5 lacks the key $k"; done
# and its example is a host.yaml the parser takes (the fixture has none of its GPUs: a
# semantic complaint, never a syntax or field error)
cp -a "$FIXTURES/empty" "$tmp/host"        # a copy: assert takes the host's lock, under run/
VGPU_ROOT=$tmp/host "$vgpuctl" assert -f "$src/data/host.yaml" >/dev/null 2>"$tmp/err"
grep -q "selects no vGPU parent" "$tmp/err" && ok || bad "data/host.yaml: $(cat "$tmp/err")"

summary
