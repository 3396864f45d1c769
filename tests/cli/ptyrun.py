# SPDX-License-Identifier: LGPL-2.1-or-later
"""ptyrun.py — run a program with one of its outputs on a pseudo-terminal and collect what it
wrote there, for the tests of what vgpuctl does only on a terminal (progress, cut tables).
Imported by the python snippets of tests/cli/*.sh (PYTHONPATH=tests/cli)."""
import os
import pty
import subprocess


def run_on_pty(argv, stream, env=None, **popen):
    """Run argv with `stream` ("stdout" or "stderr") on a pty; the other streams as popen says.
    Returns (exit status, bytes written to the pty)."""
    master, slave = pty.openpty()
    p = subprocess.Popen(argv, env=env, **{stream: slave}, **popen)
    os.close(slave)
    data = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:         # EIO: the last writer closed the pty
            break
        if not chunk:
            break
        data += chunk
    os.close(master)
    return p.wait(), data
