#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""design-doc.py — doc/design.md's pictures name only what the tree has.

doc/design.md redraws ../shared/DESIGN.md's picture from the tree. In its pictures (the ``` blocks)
a token ending in "/" opens a folder ("lib/host/", "shim/"), and each bare file name after it on
that line and on the following indented lines ("pci.c", "place-index.c") is a file of that folder;
a token with a "/" in the middle is a path from the source root. In the prose, each `path` with a
"/" in backquotes is one too, and one written "No `path`" (the sketch's, not built) must not
exist. Every other one must exist, so a renamed or moved file fails this test
until the picture says where it went. Exits 1 naming each missing path.
"""
import os
import re
import sys

root = os.environ.get("MESON_SOURCE_ROOT") or os.path.join(os.path.dirname(__file__), "..", "..")
doc = os.path.join(root, "doc", "design.md")
FILE = re.compile(r"^[\w.-]+\.(c|h|md|sh|py|sym)$")
PATH = re.compile(r"^(lib|src|tests|shim|data|doc|bench|ansible|debian|scripts)/[\w./<>*-]*$")

missing, checked = [], 0


def check(path, line_no, absent=False):
    global checked
    if "<" in path or "*" in path:  # a pattern (claims/<host>/), not a file
        return
    checked += 1
    if os.path.exists(os.path.join(root, path)) == absent:
        missing.append("doc/design.md:%d: %s %s" % (line_no, path, "exists" if absent else "does not exist"))


in_block, folder = False, None
for n, line in enumerate(open(doc, encoding="utf-8"), 1):
    if line.startswith("```"):
        in_block, folder = not in_block, None
        continue
    if in_block:
        # a line that does not start a new folder continues the last one's list
        for raw in re.split(r"[\s·,():]+", line):
            tok = raw.strip("`'\"")
            if not tok:
                continue
            if PATH.match(tok):
                if tok.endswith("/"):
                    folder = tok
                check(tok, n)
            elif FILE.match(tok) and folder:
                check(folder + tok, n)
    else:
        # "No `lib/exec/`": where the tree differs from the sketch, the sketch's path is gone
        for no, tok in re.findall(r"(No )?`([^`\s]+)`", line):
            if PATH.match(tok):
                check(tok, n, absent=bool(no))

for m in missing:
    print(m)
print("design-doc: %d paths checked, %d missing" % (checked, len(missing)))
if checked < 50:
    print("design-doc: fewer than 50 paths found: the parser no longer reads doc/design.md")
    sys.exit(1)
sys.exit(1 if missing else 0)
