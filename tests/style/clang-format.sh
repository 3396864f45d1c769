#!/bin/bash
# clang-format.sh — every C file the project owns is in the house style (.clang-format).
#
# The style was applied once to the whole tree; this keeps it so. Fixture data and the NVML and CUDA ABI
# headers (transcriptions of NVIDIA's declarations, kept in their layout) are not ours to restyle.
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v clang-format >/dev/null || { echo "clang-format: not installed (scripts/install-deps.sh --test)" >&2; exit 1; }
mapfile -t files < <(git ls-files '*.c' '*.h' | grep -v -e '^tests/fixtures/' -e '-abi\.h$')
[[ ${#files[@]} -gt 100 ]] || { echo "clang-format: found only ${#files[@]} C files; wrong directory?" >&2; exit 1; }
present=()
for f in "${files[@]}"; do [[ -f $f ]] && present+=("$f"); done
bad=0
# One clang-format for all files (a process per file cost 13 s of CPU); only when that one finds
# something, a run per file names each file that is not formatted.
if ! clang-format --dry-run --Werror "${present[@]}" >/dev/null 2>&1; then
        for f in "${present[@]}"; do
                if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
                        echo "not formatted: $f (clang-format -i $f)" >&2
                        bad=$((bad + 1))
                fi
        done
        # the whole run failed, so something is wrong even when no file alone fails
        [[ $bad -gt 0 ]] || { echo "clang-format failed on the files together, on none alone" >&2; bad=1; }
fi
echo "clang-format: ${#files[@]} files, $bad not formatted"
[[ $bad -eq 0 ]]
