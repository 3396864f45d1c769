#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Time commands side by side: run each one N times, interleaved so that machine noise hits
all of them alike, and print the median wall time and the peak RSS of each.

    timecmd.py -n 15 NAME=CMD [NAME=CMD ...]      CMD is run by /bin/sh, output discarded
Prints one line per command: NAME median_ms min_ms max_rss_kib, then nothing else.
"""
import argparse
import os
import statistics
import subprocess
import time


def run_once(cmd):
    t0 = time.perf_counter()
    p = subprocess.Popen(["/bin/sh", "-c", cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    err = p.stderr.read().decode(errors="replace")
    p.stderr.close()
    if p.returncode != 0:
        raise SystemExit("timecmd: '%s' failed (%d): %s" % (cmd, p.returncode, err.strip()[:300]))
    return dt * 1000.0, usage.ru_maxrss


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=15)
    ap.add_argument("cmds", nargs="+")
    a = ap.parse_args()
    named = [c.split("=", 1) for c in a.cmds]
    times = {n: [] for n, _ in named}
    rss = {n: 0 for n, _ in named}
    for n, c in named:             # warm the page and dentry caches once
        run_once(c)
    for _ in range(a.n):
        for n, c in named:
            ms, kib = run_once(c)
            times[n].append(ms)
            rss[n] = max(rss[n], kib)
    for n, _ in named:
        print("%s %.2f %.2f %d" % (n, statistics.median(times[n]), min(times[n]), rss[n]))


if __name__ == "__main__":
    main()
