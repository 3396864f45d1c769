# SPDX-License-Identifier: LGPL-2.1-or-later
"""checks.py — the tally the broker tests keep: check() per assertion, a FAIL line with its detail
(cut to a length, since a detail may be a whole etcd range), and one summary line and the exit
status at the end."""
import sys


class Tally:
    def __init__(self, limit=1500):
        self.passed = self.failed = 0
        self.limit = limit

    def __call__(self, cond, what, detail=""):
        if cond:
            self.passed += 1
        else:
            self.failed += 1
            print("FAIL: %s%s" % (what, (": " + str(detail)[:self.limit]) if detail != "" else ""), flush=True)
        return cond

    def exit(self, name):
        print("%s: %d passed, %d failed" % (name, self.passed, self.failed))
        sys.exit(1 if self.failed else 0)
