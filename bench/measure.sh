# SPDX-License-Identifier: LGPL-2.1-or-later
# measure.sh — sourced by bench/apply.sh and bench/inventory.sh: one way to measure commands side
# by side. bench_measure WORK RUNS [task-clock] runs the commands in the caller's arrays names[]
# and cmds[] under hyperfine (WORK/hf.json), then each once for its peak RSS in KiB (WORK/rss) and
# its syscalls, all threads (WORK/syscalls), and with "task-clock" perf stat's CPU of all threads,
# mean of RUNS (WORK/taskclock, empty without perf): steadier than wall time on a loaded machine.
# A command may start with VAR=value words: they are the environment it runs in.
bench_measure() {
        local work=$1 runs=$2 taskclock=${3:-} c i tc vars
        : >"$work/taskclock"
        for i in "${!names[@]}"; do
                # a command's leading VAR=value words are set on the tools around it, not through
                # env(1) inside what is timed: its exec cost 0.75 ms a run, 7 % of a `list`
                read -ra c <<<"${cmds[$i]}"
                vars=()
                while [[ ${c[0]} == [A-Za-z_]*=* ]]; do vars+=("${c[0]}"); c=("${c[@]:1}"); done
                # -N: no shell in between
                env "${vars[@]}" hyperfine -N -w 3 -r "$runs" --export-json "$work/hf.$i.json" \
                        -n "${names[$i]}" "${c[*]}" >/dev/null
                echo "${names[$i]} $( { env "${vars[@]}" /usr/bin/time -f %M "${c[@]}" >/dev/null; } 2>&1 | tail -1)" >>"$work/rss"
                env "${vars[@]}" strace -f -c -o "$work/strace.$i" "${c[@]}" >/dev/null 2>&1
                echo "${names[$i]} $(awk '$NF == "total" { print $4 }' "$work/strace.$i")" >>"$work/syscalls"
                if [[ $taskclock ]] && command -v perf >/dev/null &&
                   tc=$(env "${vars[@]}" perf stat -r "$runs" -x, -e task-clock "${c[@]}" 2>&1 >/dev/null |
                        awk -F, '$3 == "task-clock" { print $1 }') &&
                   [[ $tc ]]; then
                        echo "${names[$i]} $tc" >>"$work/taskclock"
                fi
        done
        # one hf.json with every command's result, in the callers' order
        python3 - "$work" "${#names[@]}" <<'PY'
import json, sys
work, n = sys.argv[1], int(sys.argv[2])
results = [json.load(open("%s/hf.%d.json" % (work, i)))["results"][0] for i in range(n)]
json.dump({"results": results}, open(work + "/hf.json", "w"))
PY
}
