#!/usr/bin/env bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# build-deb.sh OUTDIR — the Debian packages (debian/) of this tree: dpkg-buildpackage -us -uc -b
# in a copy of the tree as git sees it (tracked and new files, no build directories), so that the
# checkout gets no obj-*/ or debian/tmp; the .debs, .buildinfo and .changes land in OUTDIR.
# `make deb` runs it (OUTDIR build/deb); tests/packaging/deb.sh too. The test suites do not run
# (nocheck): `make check` runs them.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:?usage: build-deb.sh OUTDIR}
mkdir -p "$OUT"; OUT=$(cd "$OUT" && pwd)
VERSION=$(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Version)
TREE=$OUT/vgpuctl-$VERSION
rm -rf "$TREE"; mkdir -p "$TREE"
(cd "$SRC" && git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [[ -e $f && ! -d $f ]] && printf '%s\0' "$f"; done |
        tar --null -T - -cf -) | tar -xf - -C "$TREE"
(cd "$TREE" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc) ${DEB_BUILD_OPTIONS:-}" dpkg-buildpackage -us -uc -b)
rm -rf "$TREE"
ls "$OUT"/*_"$VERSION"_*.deb
