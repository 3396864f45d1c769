#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# cmocka-run.py — runs one cmocka test program for meson and makes its skipped cases visible.
#
# cmocka returns the number of failed cases, so a program whose every case called skip() exits 0
# and meson showed it as OK: a test that checked nothing looked like one that passed. This runs
# the program (its output passed through unchanged), reads cmocka's per-case result lines and
# ends the log with
#     cmocka: N passed, M failed, K skipped
#     cmocka skipped: CASE: REASON   (one line per skipped case; the reason is the last line the
#                                     case printed before skip(), "no reason printed" otherwise)
# and exits 77, which meson reports as SKIP, when cases ran and every one of them skipped.
# scripts/check.sh adds up the "K skipped" of every test for its summary line.
# Usage: cmocka-run.py PROGRAM [ARGS...]
import os
import re
import signal
import subprocess
import sys

RESULT = re.compile(r"^\[ *(OK|SKIPPED|FAILED|ERROR) *\] (\S+)$")
RUN = re.compile(r"^\[ RUN +\] (\S+)$")
SKIP_EXIT = 77


def main(argv):
    if len(argv) < 2:
        print("usage: cmocka-run.py PROGRAM [ARGS...]", file=sys.stderr)
        return 2
    # cmocka writes results to stdout and assertion messages to stderr: one pipe keeps their order
    proc = subprocess.run(argv[1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    text = proc.stdout.decode("utf-8", "replace")
    sys.stdout.write(text)

    counts = {"OK": 0, "FAILED": 0, "SKIPPED": 0}
    skipped = []
    current, printed = None, []
    for line in text.splitlines():
        m = RUN.match(line)
        if m:
            current, printed = m.group(1), []
            continue
        m = RESULT.match(line)
        # a case's own result follows its RUN line; cmocka's closing lists repeat names without one
        if m and current is not None and m.group(2) == current:
            kind = "FAILED" if m.group(1) == "ERROR" else m.group(1)
            counts[kind] += 1
            if kind == "SKIPPED":
                reasons = [p.strip() for p in printed if p.strip() and not p.startswith("[")]
                skipped.append((current, reasons[-1] if reasons else "no reason printed"))
            current = None
        elif current is not None:
            printed.append(line)

    print(f"cmocka: {counts['OK']} passed, {counts['FAILED']} failed, {counts['SKIPPED']} skipped")
    for name, reason in skipped:
        print(f"cmocka skipped: {name}: {reason}")
    sys.stdout.flush()

    if proc.returncode < 0:
        # killed by a signal (a crash, meson's timeout): die the same way so meson says so
        signal.signal(-proc.returncode, signal.SIG_DFL)
        os.kill(os.getpid(), -proc.returncode)
        return 128 - proc.returncode
    if proc.returncode != 0:
        return proc.returncode
    if counts["SKIPPED"] > 0 and counts["OK"] == 0 and counts["FAILED"] == 0:
        return SKIP_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
