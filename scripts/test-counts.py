#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-counts.py — what scripts/check.sh counts in one meson test run: reads
# BUILD/meson-logs/testlog.json and prints "PASSED FAILED SKIPPED" on the first line, then one
# "skipped: TEST: CASE: REASON" (or "skipped: TEST" for a test that skipped as a whole) per case
# that did not run.
# A meson test is passed or failed as meson says; skipped are the cmocka cases that skipped
# (tests/unit/cmocka-run.py's "cmocka: N passed, M failed, K skipped" line, whatever meson's
# verdict on the whole program) plus every other test meson reports as SKIP (exit 77).
# With --slowest N it prints instead the N tests that took longest, one "  SECONDS s  NAME (RESULT)"
# line each, slowest first: where the suite's time goes (check.sh shows it after each build's run).
# Usage: test-counts.py TESTLOG.JSON
#        test-counts.py --slowest N TESTLOG.JSON
import json
import re
import sys

CMOCKA = re.compile(r"^cmocka: \d+ passed, \d+ failed, (\d+) skipped$", re.M)
SKIPPED_CASE = re.compile(r"^cmocka skipped: (.*)$", re.M)


def read_log(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return [json.loads(raw) for raw in f if raw.strip()]


def slowest(path, n):
    tests = sorted(read_log(path), key=lambda t: -(t.get("duration") or 0.0))
    for t in tests[:n]:
        print(f"{t.get('duration') or 0.0:7.1f} s  {t.get('name', '?')} ({t.get('result', '?')})")


def main(path):
    passed = failed = skipped = 0
    lines = []
    for t in read_log(path):
        result, name, out = t.get("result"), t.get("name", "?"), t.get("stdout") or ""
        if result == "OK":
            passed += 1
        elif result in ("FAIL", "TIMEOUT", "ERROR", "UNEXPECTEDPASS"):
            failed += 1
        counted = CMOCKA.findall(out)
        if counted:
            skipped += sum(int(k) for k in counted)
            lines += [f"skipped: {name}: {c}" for c in SKIPPED_CASE.findall(out)]
        elif result == "SKIP":
            skipped += 1
            lines.append(f"skipped: {name}")
    print(passed, failed, skipped)
    for line in lines:
        print(line)


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--slowest" and sys.argv[2].isdigit():
        slowest(sys.argv[3], int(sys.argv[2]))
    elif len(sys.argv) == 2:
        main(sys.argv[1])
    else:
        sys.exit("usage: test-counts.py [--slowest N] TESTLOG.JSON")
