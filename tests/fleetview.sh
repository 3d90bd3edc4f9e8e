#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# fleetview.sh — contrib/sluice-fleet against two real sluiced on loopback
# and three nodes that are not: a closed port, a server that never answers
# and one that answers something else. The table's rows must equal each
# node's /metrics and the total row their sums; the bad nodes are "down"
# within the timeout, and the exit status says so. Runs where tests/fleet.sh
# cannot (no namespaces, no BIRD): needs python3 and curl. TAP output.
set -u

: "${SLUICED:?SLUICED is set by make check}" "${ECHOD:?}" "${TOP_SRCDIR:?}"
FLEET=$TOP_SRCDIR/contrib/sluice-fleet
for tool in python3 curl; do
	command -v "$tool" >/dev/null 2>&1 || { echo "1..0 # SKIP no $tool"; exit 0; }
done

tmp=$(mktemp -d) || exit 1
pids=
n=0
failed=0
ok() {
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then echo "ok $n - $2"; else echo "not ok $n - $2"; failed=$((failed + 1)); fi
}
cleanup() {
	for p in $pids; do kill -TERM "$p" 2>/dev/null; done
	for p in $pids; do
		i=0
		while kill -0 "$p" 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	if [ "$failed" -gt 0 ]; then
		for f in "$tmp"/*.log; do [ -s "$f" ] && { echo "# --- $f"; tail -n 10 "$f" | sed 's/^/# /'; }; done
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
until_ok() {
	end=$(($(date +%s) + $1))
	shift
	while ! "$@"; do
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 0.1
	done
}

# Free loopback ports (bound and released; a clash only fails a start).
set -- $(python3 -c '
import socket
ss = [socket.socket() for _ in range(9)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')
echo_port=$1 l1=$2 a1=$3 l2=$4 a2=$5 closed=$6 mute=$7 other=$8 ctl=$9

"$ECHOD" -l "127.0.0.1:$echo_port" >"$tmp/echod.log" 2>&1 &
pids="$pids $!"
for i in 1 2; do
	eval "l=\$l$i a=\$a$i"
	cat >"$tmp/s$i.conf" <<EOF
workers = $i;
pid_file = "$tmp/pid$i";
stats_file = "$tmp/stats$i";
user = "nobody";
log = { target = "stderr"; level = "notice"; };
upstreams = ( { name = "app"; servers = ( "127.0.0.1:$echo_port" ); } );
listeners = ( { listen = "127.0.0.1:$l"; upstream = "app"; proxy_protocol = "v2"; } );
admin = { listen = "127.0.0.1:$a"; };
EOF
	"$SLUICED" -f -c "$tmp/s$i.conf" >"$tmp/sluiced$i.log" 2>&1 &
	pids="$pids $!"
done
# A node that accepts and never answers, and one that answers 200 with
# something that is not sluice's metrics.
python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(8)
held = []
end = time.monotonic() + 120
while time.monotonic() < end:
    s.settimeout(1)
    try: held.append(s.accept()[0])
    except OSError: pass' "$mute" >"$tmp/mute.log" 2>&1 &
pids="$pids $!"
python3 -c '
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"# not sluice\nsomething_else 1\n"
        self.send_response(200); self.send_header("Content-Length", str(len(body)))
        self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()' "$other" >"$tmp/other.log" 2>&1 &
pids="$pids $!"

healthy() { [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:$1/healthz")" = 200 ]; }
other_up() { curl -s --max-time 2 "http://127.0.0.1:$other/metrics" | grep -q something_else; }
echo "1..9"
until_ok 30 healthy "$a1" && until_ok 30 healthy "$a2" && until_ok 30 other_up
ok $? "two sluiced serve /healthz 200, and the impostor answers"

# Traffic: 7 connections through node 1, 4 through node 2, 2 held open on 2.
printf 'burst 7\nquit\n' | python3 "$TOP_SRCDIR/tests/fleetclient.py" 127.0.0.1 "$l1" >"$tmp/c1.out" 2>&1
mkfifo "$tmp/c2.in"
exec 3<>"$tmp/c2.in"
python3 "$TOP_SRCDIR/tests/fleetclient.py" 127.0.0.1 "$l2" <"$tmp/c2.in" >"$tmp/c2.out" 2>"$tmp/c2.log" 3>&- &
pids="$pids $!"
printf 'burst 4\nopen H 2\n' >&3
two_lines() { [ "$(wc -l <"$tmp/c2.out")" -ge 2 ]; }
until_ok 60 two_lines
grep -q '^burst - ok=7 fail=0' "$tmp/c1.out" && grep -q '^burst - ok=4 fail=0' "$tmp/c2.out" &&
	grep -q '^open H ok=2 fail=0' "$tmp/c2.out"
ok $? "verified traffic through both nodes"

row() { # row PORT: state active accepted refused connfail bytes_in bytes_out workers, from /metrics
	curl -s --max-time 5 "http://127.0.0.1:$1/metrics" | awk '
	/^sluice_node_state\{/ && $2 == 1 { split($1, a, "\""); st = a[2] }
	$1 == "sluice_active" { act = $2 }
	$1 == "sluice_accepted_total" { acc = $2 }
	/^sluice_refused_total\{/ { ref += $2 }
	$1 == "sluice_connect_failures_total" { cf = $2 }
	$1 == "sluice_bytes_in_total" { bi = $2 }
	$1 == "sluice_bytes_out_total" { bo = $2 }
	$1 == "sluice_workers{state=\"running\"}" { w = $2 }
	END { print st, act, acc, ref + 0, cf, bi, bo, w }'
}
rows() { row "$a1"; row "$a2"; }
quiet() { [ "$(rows)" = "$(rows)" ]; }
until_ok 10 quiet
before=$(rows)
start=$(date +%s)
python3 "$FLEET" -t 2 "one=127.0.0.1:$a1" "http://127.0.0.1:$a2/metrics" "127.0.0.1:$closed" \
	"mute=127.0.0.1:$mute" "other=127.0.0.1:$other" >"$tmp/fleet.out" 2>&1
rc=$?
took=$(($(date +%s) - start))
after=$(rows)
sed 's/^/# /' "$tmp/fleet.out"
table=$(awk 'NR > 1 && NR <= 3 { print $2, $3, $4, $5, $6, $7, $8, $9 }' "$tmp/fleet.out")
[ "$before" = "$after" ] && [ "$table" = "$after" ]
ok $? "the rows of both nodes equal their /metrics (state, active, accepted, refused, connect failures, bytes, workers)"
echo "$after" | awk '{ print $3 }' | tr '\n' ' ' | grep -qx '7 6 '
ok $? "accepted: 7 on one node, 6 on the other"
sums=$(echo "$after" | awk '{ for (k = 2; k <= 8; k++) s[k] += $k }
	END { print s[2], s[3], s[4], s[5], s[6], s[7], s[8] }')
[ "$(awk '$1 == "total" { print $2, $3, $4, $5, $6, $7, $8, $9 }' "$tmp/fleet.out")" = "2/5 $sums" ]
ok $? "the total row counts 2 of 5 nodes up and sums the two: $sums"
awk -v c="127.0.0.1:$closed" '$1 == c && $2 == "down"' "$tmp/fleet.out" | grep -q . &&
	grep -q "^# 127.0.0.1:$closed: .*refused" "$tmp/fleet.out"
ok $? "a closed port is down: connection refused"
grep -q '^mute  *down ' "$tmp/fleet.out" && grep -q '^# mute: .*\(timed out\|within 2s\)' "$tmp/fleet.out" &&
	[ "$took" -le 20 ]
ok $? "a node that never answers is down within the timeout (the run took ~${took}s)"
grep -q '^other  *down ' "$tmp/fleet.out" && grep -q '^# other: .*no sluice metrics' "$tmp/fleet.out" && [ "$rc" = 1 ]
ok $? "a server that is not sluice is down too, and the exit status is 1 ($rc)"

python3 "$FLEET" -i 1 "127.0.0.1:$a1" >"$tmp/rates.out" 2>&1
rc=$?
python3 "$FLEET" >/dev/null 2>&1
urc=$?
[ $rc -eq 0 ] && head -n 1 "$tmp/rates.out" | grep -q 'CONN/S' && [ "$urc" = 2 ]
ok $? "-i adds rates and exits 0 when all answer; no node at all is a usage error (exit $urc)"
echo 'quit' >&3
exec 3>&-
[ "$failed" -eq 0 ]
