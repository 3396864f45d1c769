# SPDX-License-Identifier: LGPL-2.1-or-later
# bash completion for vgpuctl. The candidates come from the program itself
# (`vgpuctl __complete CWORD WORD...`, src/vgpuctl/complete.c): verbs and options from its verb
# table, values (parents, types, UUIDs, GPUs, slices, libvirt domains) from this host.
_vgpuctl() {
        local -a words=() out=()
        local i cword=0 w
        # bash splits "0000:3b:00.0" at its colons (COMP_WORDBREAKS): join the pieces again
        for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
                w=${COMP_WORDS[i]}
                if ((${#words[@]} > 0)) && [[ $w == :* || ${words[-1]} == *: ]]; then
                        words[-1]+=$w
                else
                        words+=("$w")
                fi
                ((i == COMP_CWORD)) && cword=$((${#words[@]} - 1))
        done
        local cur=${words[cword]-}
        mapfile -t out < <("${words[0]}" __complete "$cword" "${words[@]}" 2>/dev/null)
        if [[ ${out[0]-} == @file ]]; then
                compopt -o filenames 2>/dev/null
                mapfile -t COMPREPLY < <(compgen -f -- "$cur")
                return 0
        fi
        # bash replaces only the text after the last colon: hand it the rest of each candidate
        if [[ $cur == *:* && $COMP_WORDBREAKS == *:* ]]; then
                local pre=${cur%"${cur##*:}"}
                out=("${out[@]#"$pre"}")
        fi
        COMPREPLY=("${out[@]}")
        return 0
}
complete -F _vgpuctl vgpuctl
