#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# test-counts.py — what scripts/check.sh counts in one meson test run: reads
# BUILD/meson-logs/testlog.json and prints "PASSED FAILED SKIPPED" on the first line, then one
# "skipped: TEST: CASE: REASON" (or "skipped: TEST" for a test that skipped as a whole) per case
# that did not run.
# A meson test is passed or failed as meson says; skipped are the cmocka cases that skipped
# (tests/unit/cmocka-run.py's "cmocka: N passed, M failed, K skipped" line, whatever meson's
# verdict on the whole program) plus every other test meson reports as SKIP (exit 77).
# Usage: test-counts.py TESTLOG.JSON
import json
import re
import sys

CMOCKA = re.compile(r"^cmocka: \d+ passed, \d+ failed, (\d+) skipped$", re.M)
SKIPPED_CASE = re.compile(r"^cmocka skipped: (.*)$", re.M)


def main(path):
    passed = failed = skipped = 0
    lines = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            if not raw.strip():
                continue
            t = json.loads(raw)
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
    if len(sys.argv) != 2:
        sys.exit("usage: test-counts.py TESTLOG.JSON")
    main(sys.argv[1])
