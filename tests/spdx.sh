#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# spdx.sh — every source file tracked by git carries the licence line
# (.ci/spdx check; `.ci/spdx add` fixes what it lists). Skipped outside a git
# checkout of the source tree (a release tarball has no git). TAP output.
set -u
src=${TOP_SRCDIR:?TOP_SRCDIR is set by make check}
top=$(git -C "$src" rev-parse --show-toplevel 2>/dev/null) || top=
if [ -z "$top" ] || [ "$(cd "$top" && pwd -P)" != "$(cd "$src" && pwd -P)" ] ||
    [ ! -x "$src/.ci/spdx" ]; then
	echo "1..0 # SKIP not a git checkout of the source tree"
	exit 0
fi
echo "1..1"
if out=$("$src/.ci/spdx" check 2>&1); then
	echo "ok 1 - every tracked source file has SPDX-License-Identifier: BSD-2-Clause"
else
	echo "$out" | sed 's/^/# /'
	echo "not ok 1 - source files without the SPDX line (run .ci/spdx add)"
	exit 1
fi
