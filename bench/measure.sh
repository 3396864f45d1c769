# SPDX-License-Identifier: LGPL-2.1-or-later
# measure.sh — sourced by bench/apply.sh and bench/inventory.sh: one way to measure commands side
# by side. bench_measure WORK RUNS [task-clock] runs the commands in the caller's arrays names[]
# and cmds[] under hyperfine (WORK/hf.json), then each once for its peak RSS in KiB (WORK/rss) and
# its syscalls, all threads (WORK/syscalls), and with "task-clock" perf stat's CPU of all threads,
# mean of RUNS (WORK/taskclock, empty without perf): steadier than wall time on a loaded machine.
bench_measure() {
        local work=$1 runs=$2 taskclock=${3:-} args=() c i tc
        for i in "${!names[@]}"; do args+=(-n "${names[$i]}" "${cmds[$i]}"); done
        # -N: no shell in between
        hyperfine -N -w 3 -r "$runs" --export-json "$work/hf.json" "${args[@]}" >/dev/null
        : >"$work/taskclock"
        for i in "${!names[@]}"; do
                read -ra c <<<"${cmds[$i]}"
                echo "${names[$i]} $( { /usr/bin/time -f %M "${c[@]}" >/dev/null; } 2>&1 | tail -1)" >>"$work/rss"
                strace -f -c -o "$work/strace.$i" "${c[@]}" >/dev/null 2>&1
                echo "${names[$i]} $(awk '$NF == "total" { print $4 }' "$work/strace.$i")" >>"$work/syscalls"
                if [[ $taskclock ]] && command -v perf >/dev/null &&
                   tc=$(perf stat -r "$runs" -x, -e task-clock "${c[@]}" 2>&1 >/dev/null |
                        awk -F, '$3 == "task-clock" { print $1 }') &&
                   [[ $tc ]]; then
                        echo "${names[$i]} $tc" >>"$work/taskclock"
                fi
        done
}
