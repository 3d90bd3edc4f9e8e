#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# valgrind.sh — run integration tests with every sluiced process (master and
# workers) under valgrind's memcheck, via a wrapper that $SLUICED points at; fail
# unless each process that exited reports 0 errors (definite leaks included).
# From a build directory: `make check-valgrind`, or `sh SRCDIR/tests/valgrind.sh
# [TEST...]`. Exits 77 (skip) without valgrind.
set -u

tests=${*:-"tests/i_relay tests/i_halfclose tests/i_stop tests/i_reload tests/i_signals"}
top=$(pwd)

if ! command -v valgrind >/dev/null 2>&1; then
	echo "valgrind.sh: valgrind is not installed (Debian: apt-get install valgrind)" >&2
	exit 77
fi
for t in $tests; do
	[ -x "$top/$t" ] || { echo "valgrind.sh: $t is not built (make check builds it)" >&2; exit 2; }
done
[ -x "$top/sluiced" ] && [ -x "$top/tests/echod" ] ||
	{ echo "valgrind.sh: run from a build directory after make" >&2; exit 2; }

out=$(mktemp -d "${TMPDIR:-/tmp}/sluice-valgrind.XXXXXX") || exit 2
cat >"$out/sluiced" <<EOF
#!/bin/sh
exec valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite \\
	--show-leak-kinds=definite --num-callers=30 \\
	--log-file="$out/vg.%p.log" "$top/sluiced" "\$@"
EOF
chmod +x "$out/sluiced"

rc=0
for t in $tests; do
	echo "== $t (sluiced under memcheck)"
	# Valgrind is ~20x slower: give each test more time before its watchdog.
	if ! SLUICED="$out/sluiced" SLUICESTAT="$top/sluicestat" ECHOD="$top/tests/echod" \
	    H_WATCHDOG=600 "$top/$t" >"$out/$(basename "$t").tap" 2>&1; then
		echo "valgrind.sh: $t failed under valgrind:"
		grep -v '^ok' "$out/$(basename "$t").tap" | head -n 40
		rc=1
	fi
	grep -c '^ok' "$out/$(basename "$t").tap" | sed 's/^/   assertions passed: /'
done

procs=0 clean=0 unfinished=0
for f in "$out"/vg.*.log; do
	[ -f "$f" ] || continue
	procs=$((procs + 1))
	if ! grep -q 'ERROR SUMMARY:' "$f"; then
		# Killed (SIGKILL) before it could report: nothing to judge.
		unfinished=$((unfinished + 1))
	elif grep -q 'ERROR SUMMARY: 0 errors' "$f"; then
		clean=$((clean + 1))
	else
		echo "valgrind.sh: memcheck errors in $f:"
		sed -n '/^==[0-9]*== [A-Z]/,$p' "$f" | head -n 60
		rc=1
	fi
done
echo "memcheck: $procs sluiced processes, $clean clean, $unfinished killed before reporting," \
	"$((procs - clean - unfinished)) with errors"
[ "$procs" -gt 0 ] || { echo "valgrind.sh: no process ran under valgrind" >&2; rc=1; }
if [ "$rc" -eq 0 ]; then
	rm -rf "$out"
else
	echo "valgrind.sh: logs kept in $out"
fi
exit $rc
