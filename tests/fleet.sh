#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# fleet.sh — three sluice nodes behind BGP/ECMP, in network namespaces (issue
# #14). A client namespace reaches a router namespace; the router reaches
# three node namespaces, each with the service address (VIP) on its loopback,
# sluiced listening on it in front of tests/echod with PROXY v2 on, and BIRD
# announcing the VIP by BGP only while contrib/sluice-bird-health finds the
# node's /healthz answering 200. The router's BIRD installs the learned paths
# as one ECMP route hashed on L4 (fib_multipath_hash_policy = 1), and keeps
# each flow on the node it first went to (a conntrack mark: see doc/fleet.md).
# tests/fleetclient.py drives verified traffic from the client namespace;
# the test checks the spread, a drain, a killed node, an undrain, the PROXY
# client address and contrib/sluice-fleet's table. Needs root, iproute2,
# bird2, nftables, curl, python3 and setpriv; a TAP skip otherwise. Nothing
# leaves the namespaces it creates; every process it starts is killed by pid
# and every namespace removed on any exit. TAP output; H_KEEP=1 keeps logs.
set -u

: "${SLUICED:?SLUICED is set by make check}" "${SLUICECTL:?}" "${ECHOD:?}" "${TOP_SRCDIR:?}"
VIP=203.0.113.10
PORT=80
GRACE=10 # seconds of the drain's grace period
NODES="1 2 3"

skip_all() {
	echo "1..0 # SKIP $1"
	exit 0
}
[ "$(id -u)" = 0 ] || skip_all "needs root (network namespaces)"
for tool in ip bird birdc nft curl python3 setpriv pgrep timeout; do
	command -v "$tool" >/dev/null 2>&1 || skip_all "no $tool (Debian: iproute2 bird2 nftables curl python3 util-linux procps)"
done
# The configs below are BIRD 2's (BIRD 3 reads them too; 1.x does not).
bird --version 2>&1 | grep -Eq 'BIRD version [23]\.' || skip_all "needs BIRD 2 (Debian: bird2): $(bird --version 2>&1)"

# Namespaces of an earlier run that was killed (SIGKILL runs no trap; its
# processes died with it through pdeathsig, below): slf<pid of that run>.
for ns in $(ip netns list 2>/dev/null | sed -n 's/^\(slf[0-9]*[cr123]\)\( .*\)\{0,1\}$/\1/p'); do
	p=$(echo "$ns" | sed 's/^slf\([0-9]*\).$/\1/')
	kill -0 "$p" 2>/dev/null || ip netns del "$ns"
done
tmp=$(mktemp -d /tmp/sluice-fleet.XXXXXX) || exit 1
chmod 755 "$tmp"
pfx=slf$$
namespaces=
pids= # every process started, for the cleanup
n=0
failed=0
cleaned=

ok() { # ok STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=$((failed + 1))
	fi
}
diag() { echo "# $*"; }
bail() {
	echo "Bail out! $*"
	show_logs
	exit 1
}
show_logs() {
	for f in "$tmp"/*.log; do
		[ -s "$f" ] || continue
		echo "# --- $f (last lines)"
		tail -n 15 "$f" | sed 's/^/# /'
	done
}

alive() { kill -0 "$1" 2>/dev/null; }
# stop PID...: TERM, then KILL after 5 s; waits until they are gone.
stop() {
	for p in "$@"; do kill -TERM "$p" 2>/dev/null; done
	i=0
	for p in "$@"; do
		while alive "$p" && [ $i -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		alive "$p" && kill -KILL "$p" 2>/dev/null
	done
	for p in "$@"; do wait "$p" 2>/dev/null; done
	return 0
}

cleanup() {
	[ -n "$cleaned" ] && return 0
	cleaned=1
	exec 3>&-
	# A sluiced master's children (workers, admin) first, so that none
	# drains on for timeouts.drain after its master is gone.
	kids=
	for i in $NODES; do
		eval "m=\${sluiced_$i:-}"
		[ -n "$m" ] && alive "$m" && kids="$kids $(pgrep -P "$m" | tr '\n' ' ')"
	done
	# shellcheck disable=SC2086
	stop $pids
	# shellcheck disable=SC2086
	[ -z "$kids" ] || stop $kids
	for ns in $namespaces; do ip netns del "$ns" 2>/dev/null; done
	if [ "${H_KEEP:-0}" = 1 ] || [ "$failed" -gt 0 ]; then
		[ "$failed" -gt 0 ] && show_logs
		echo "# logs kept in $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# bg NS LOG CMD...: runs CMD in namespace NS, in the background, killed by
# the kernel if this shell dies (pdeathsig: no trap runs on SIGKILL); its
# pid (that of CMD: ip netns exec and setpriv exec it) in $! and in $pids.
bg() {
	ns=$1 log=$2
	shift 2
	ip netns exec "$ns" setpriv --pdeathsig KILL -- "$@" </dev/null >"$tmp/$log" 2>&1 3>&- &
	pids="$pids $!"
}
# until_ok SECONDS CMD...: polls CMD every 0.2 s until it succeeds (0) or
# SECONDS pass (1).
until_ok() {
	end=$(($(date +%s) + $1))
	shift
	while :; do
		"$@" && return 0
		[ "$(date +%s)" -lt "$end" ] || return 1
		sleep 0.2
	done
}

# ---- the network --------------------------------------------------------
# client 192.0.2.2 -- 192.0.2.1 router 10.0.N.1 -- 10.0.N.2 node N (VIP on lo)
mkns() {
	ip netns add "$1" || return 1
	namespaces="$namespaces $1"
	ip -n "$1" link set lo up
}
C=${pfx}c R=${pfx}r
{ mkns "$C" && mkns "$R"; } 2>"$tmp/netns.err" ||
	skip_all "cannot create a network namespace: $(cat "$tmp/netns.err")"
ip -n "$C" link add eth0 type veth peer name c0 netns "$R" 2>"$tmp/netns.err" ||
	skip_all "cannot create a veth pair: $(cat "$tmp/netns.err")"
ip -n "$C" addr add 192.0.2.2/24 dev eth0 && ip -n "$C" link set eth0 up &&
	ip -n "$C" route add default via 192.0.2.1 &&
	ip -n "$R" addr add 192.0.2.1/24 dev c0 && ip -n "$R" link set c0 up ||
	bail "setting up the client link"
for i in $NODES; do
	N=$pfx$i
	mkns "$N" && ip -n "$R" link add "n$i" type veth peer name eth0 netns "$N" &&
		ip -n "$R" addr add "10.0.$i.1/24" dev "n$i" && ip -n "$R" link set "n$i" up &&
		ip -n "$N" addr add "10.0.$i.2/24" dev eth0 && ip -n "$N" link set eth0 up &&
		ip -n "$N" route add default via "10.0.$i.1" &&
		ip -n "$N" addr add "$VIP/32" dev lo || bail "setting up node $i's link"
done
ip netns exec "$R" sh -c 'echo 1 >/proc/sys/net/ipv4/ip_forward &&
	echo 1 >/proc/sys/net/ipv4/fib_multipath_hash_policy' || bail "router sysctls"
# Flow affinity: the first packet of a flow takes the ECMP route; the
# router remembers the node in the flow's conntrack mark and routes the rest
# of the flow there (fwmark N -> table 100+N), so that withdrawing a node's
# route moves only new flows. Without it a withdrawn node's open connections
# would be hashed to another node and reset there: see doc/fleet.md.
ip netns exec "$R" nft -f - <<EOF 2>"$tmp/nft.err" || skip_all "nftables does not work here: $(head -n 1 "$tmp/nft.err")"
table ip fleet {
	chain pre {
		type filter hook prerouting priority mangle; policy accept;
		ip daddr $VIP meta mark set ct mark
	}
	chain post {
		type filter hook postrouting priority mangle; policy accept;
		ip daddr $VIP ct mark 0 ct mark set oifname map { "n1" : 1, "n2" : 2, "n3" : 3 }
	}
}
EOF
for i in $NODES; do
	ip -n "$R" rule add fwmark "$i" lookup "10$i" &&
		ip -n "$R" route add "$VIP/32" via "10.0.$i.2" dev "n$i" table "10$i" ||
		bail "router's affinity table for node $i"
done

# ---- BIRD on the router and the nodes -------------------------------------
cat >"$tmp/router.conf" <<EOF
router id 192.0.2.1;
log stderr all;
protocol device { }
# Every path to the VIP into the kernel as one multipath route.
protocol kernel {
	ipv4 { import none; export where net = $VIP/32; };
	merge paths on;
}
template bgp node {
	local as 65000;
	passive on;
	hold time 30; keepalive time 10;
	ipv4 { import where net = $VIP/32; export none; };
}
EOF
for i in $NODES; do
	echo "protocol bgp node$i from node { neighbor 10.0.$i.2 as 6500$i; }" >>"$tmp/router.conf"
	mkdir -p "$tmp/n$i"
	cat >"$tmp/n$i/bird.conf" <<EOF
router id 10.0.$i.2;
log stderr all;
protocol device { }
# The VIP, announced only while sluice-bird-health enables this protocol.
protocol static vip {
	disabled;
	ipv4;
	route $VIP/32 blackhole;
}
protocol bgp uplink {
	local 10.0.$i.2 as 6500$i;
	neighbor 10.0.$i.1 as 65000;
	hold time 30; keepalive time 10;
	connect delay time 1; connect retry time 1; error wait time 1, 5;
	ipv4 { import none; export where proto = "vip"; next hop self; };
}
EOF
	cat >"$tmp/n$i/sluice.conf" <<EOF
workers = 2;
pid_file = "$tmp/n$i/pid";
stats_file = "$tmp/n$i/stats";
user = "nobody";
log = { target = "stderr"; level = "notice"; };
timeouts = { drain = "120s"; };
upstreams = ( { name = "app"; servers = ( "127.0.0.1:9000" ); } );
listeners = ( { listen = "$VIP:$PORT"; upstream = "app"; proxy_protocol = "v2"; } );
admin = { listen = "10.0.$i.2:9145"; };
control = { socket = "$tmp/n$i/ctl"; };
EOF
done

start_sluiced() { # start_sluiced N
	bg "$pfx$1" "sluiced$1.log" "$SLUICED" -f -c "$tmp/n$1/sluice.conf"
	eval "sluiced_$1=\$!"
}
for i in $NODES; do
	bg "$pfx$i" "echod$i.log" "$ECHOD" -l 127.0.0.1:9000
	start_sluiced "$i"
	bg "$pfx$i" "bird$i.log" bird -f -c "$tmp/n$i/bird.conf" -s "$tmp/n$i/bird.ctl"
	bg "$pfx$i" "health$i.log" "$TOP_SRCDIR/contrib/sluice-bird-health" -u "http://10.0.$i.2:9145/healthz" \
		-p vip -s "$tmp/n$i/bird.ctl" -i 0.2 -t 2 -r 1 -f 1 -d 600
done
bg "$R" router.log bird -f -c "$tmp/router.conf" -s "$tmp/router.ctl"
mkfifo "$tmp/client.in" || bail "mkfifo"
exec 3<>"$tmp/client.in"
ip netns exec "$C" setpriv --pdeathsig KILL -- python3 "$TOP_SRCDIR/tests/fleetclient.py" "$VIP" "$PORT" \
	<"$tmp/client.in" >"$tmp/client.out" 2>"$tmp/client.log" 3>&- &
pids="$pids $!"

# ---- helpers that read the fleet ------------------------------------------
# The nodes the router's route to the VIP leads to, e.g. "123".
vip_nodes() {
	ip -n "$R" -4 route show "$VIP/32" | sed -n 's/.*via 10\.0\.\([0-9]\)\.2 .*/\1/p' | sort | tr -d '\n'
}
vip_is() { [ "$(vip_nodes)" = "$1" ]; }
seq=0
# client COMMAND: sends it to fleetclient.py and sets $reply to its answer.
client() {
	seq=$((seq + 1))
	echo "$*" >&3
	if ! until_ok 180 sh -c "[ \$(wc -l <'$tmp/client.out') -ge $seq ]"; then
		reply=
		diag "no answer from the client to: $*"
		return 1
	fi
	reply=$(sed -n "${seq}p" "$tmp/client.out")
}
field() { echo "$reply" | sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
# metrics N [NAME]: node N's /metrics (or one unlabelled sample's value).
metrics() {
	ip netns exec "$pfx$1" curl -s --max-time 5 "http://10.0.$1.2:9145/metrics" >"$tmp/m$1" || return 1
	[ $# -lt 2 ] || awk -v n="$2" '$1 == n { print $2 }' "$tmp/m$1"
}
accepted() { metrics "$1" sluice_accepted_total; }
healthz() { ip netns exec "$pfx$1" curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://10.0.$1.2:9145/healthz"; }
ctl() { # ctl N ARGS...: sluicectl on node N's control socket
	i=$1
	shift
	timeout 90 "$SLUICECTL" -S "$tmp/n$i/ctl" "$@"
}
# on_node N PORTS: how many of the client ports (a,b,c or -) node N relays.
on_node() {
	ctl "$1" --json show sessions | tr '{' '\n' | sed -n 's/.*"client":"192\.0\.2\.2:\([0-9]*\)".*/\1/p' |
		sort >"$tmp/sess$1"
	echo "$2" | tr ',' '\n' | grep -v '^-$' | sort | comm -12 - "$tmp/sess$1" | wc -l
}
count() { echo "$1" | tr ',' '\n' | grep -cv '^-$'; }

# ---- the checks ---------------------------------------------------------
until_ok 60 vip_is 123
ok $? "the router learns the VIP by BGP from all three nodes: an ECMP route (nodes: $(vip_nodes))"
[ "$(vip_nodes)" = 123 ] || bail "no ECMP route to the VIP; nothing else can be checked"

client open A 60
ok $? "the client answers"
[ "$(field ok)" = 60 ] && [ "$(field fail)" = 0 ]
ok $? "60 connections through the VIP, every byte echoed and every PROXY v2 header naming the client's own address and port ($(field fail) failed: $(field bad))"
portsA=$(field ports)

a1=$(on_node 1 "$portsA") a2=$(on_node 2 "$portsA") a3=$(on_node 3 "$portsA")
[ $((a1 + a2 + a3)) -eq 60 ] && [ "$a1" -gt 0 ] && [ "$a2" -gt 0 ] && [ "$a3" -gt 0 ]
ok $? "they spread over the three nodes, each on exactly one: $a1 + $a2 + $a3 (sluicectl show sessions)"

b1=$(accepted 1) b2=$(accepted 2) b3=$(accepted 3)
client burst 90
e1=$(accepted 1) e2=$(accepted 2) e3=$(accepted 3)
d1=$((e1 - b1)) d2=$((e2 - b2)) d3=$((e3 - b3))
[ "$(field ok)" = 90 ] && [ $((d1 + d2 + d3)) -eq 90 ] && [ "$d1" -gt 0 ] && [ "$d2" -gt 0 ] && [ "$d3" -gt 0 ]
ok $? "90 short verified connections ($(field fail) failed: $(field bad)); each node's sluice_accepted_total grew: $d1 + $d2 + $d3"

# fleet_check LABEL: contrib/sluice-fleet, run on the router (the management
# side), shows each node's figures exactly as its /metrics says, and their
# sums; a node that does not answer is "down". Traffic is quiet meanwhile:
# the /metrics scrape is repeated until two agree, then the table is taken,
# then /metrics again, which must still agree.
metric_row() { # metric_row N: state and the compared columns from /metrics
	metrics "$1" || {
		echo "down - - - - - -"
		return
	}
	awk '
	/^sluice_node_state\{/ && $2 == 1 { split($1, a, "\""); st = a[2] }
	$1 == "sluice_active" { act = $2 }
	$1 == "sluice_accepted_total" { acc = $2 }
	/^sluice_refused_total\{/ { ref += $2 }
	$1 == "sluice_connect_failures_total" { cf = $2 }
	$1 == "sluice_bytes_in_total" { bi = $2 }
	$1 == "sluice_bytes_out_total" { bo = $2 }
	END { print st, act, acc, ref + 0, cf, bi, bo }' "$tmp/m$1"
}
metric_rows() { for i in $NODES; do metric_row "$i"; done; }
quiet() { [ "$(metric_rows)" = "$(metric_rows)" ]; }
fleet_check() {
	until_ok 10 quiet
	before=$(metric_rows)
	ip netns exec "$R" timeout 30 python3 "$TOP_SRCDIR/contrib/sluice-fleet" \
		node1=10.0.1.2:9145 node2=10.0.2.2:9145 http://10.0.3.2:9145/metrics >"$tmp/fleet.out" 2>&1
	frc=$?
	after=$(metric_rows)
	# The table's node rows, with the same columns (RSS and WORKERS left out:
	# they move on their own), then the total row.
	table=$(awk '$1 ~ /^node|^http/ { print $2, $3, $4, $5, $6, $7, $8 }' "$tmp/fleet.out")
	total=$(awk '$1 == "total" { print $3, $4, $5, $6, $7, $8 }' "$tmp/fleet.out")
	sums=$(echo "$after" | awk '$1 != "down" { for (k = 2; k <= 7; k++) s[k] += $k }
		END { print s[2] + 0, s[3] + 0, s[4] + 0, s[5] + 0, s[6] + 0, s[7] + 0 }')
	r=0
	[ "$before" = "$after" ] && [ "$table" = "$after" ] && [ "$total" = "$sums" ] || r=1
	[ "$frc" = "$2" ] || r=1
	ok $r "sluice-fleet ($1): node rows equal each node's /metrics, the total row their sums, exit $frc"
	if [ $r -ne 0 ]; then
		sed 's/^/# /' "$tmp/fleet.out"
		diag "/metrics: $(echo "$after" | tr '\n' '|') sums: $sums"
	fi
}
fleet_check "three serving nodes" 0

# ---- drain node 2 -----------------------------------------------------------
t0=$(date +%s) t0ms=$(date +%s%3N)
out=$(ctl 2 drain --grace "${GRACE}s" 2>&1)
[ "$out" = draining ] && [ "$(healthz 2)" = 503 ]
ok $? "sluicectl drain --grace ${GRACE}s on node 2 answers \"$out\"; its /healthz says 503"
until_ok "$GRACE" vip_is 13
r=$?
now=$(date +%s) took=$(($(date +%s%3N) - t0ms))
[ $r -eq 0 ] && [ "$now" -lt $((t0 + GRACE)) ] && alive "$sluiced_2" &&
	[ "$(ctl 2 show info | sed -n 's/^node: //p')" = draining ]
ok $? "its route is withdrawn within the grace period, while its listeners still accept (nodes: $(vip_nodes), seen after ${took} ms)"

b2=$(accepted 2)
client open B 45
portsB=$(field ports)
[ "$(field ok)" = 45 ] && [ "$(on_node 2 "$portsB")" = 0 ] && [ "$(accepted 2)" = "$b2" ] &&
	[ $(($(on_node 1 "$portsB") + $(on_node 3 "$portsB"))) -eq 45 ]
ok $? "45 new connections while it drains all go to nodes 1 and 3 ($(field fail) failed: $(field bad))"

client exchange A
[ "$(field ok)" = 60 ] && [ "$(on_node 2 "$(field ports)")" = "$a2" ]
ok $? "the 60 older connections, node 2's $a2 among them, still echo every byte ($(field fail) failed: $(field bad))"

until_ok $((GRACE + 30)) sh -c '[ "$("$1" -S "$2" show info | sed -n "s/^node: //p")" = drained ]' _ "$SLUICECTL" "$tmp/n2/ctl"
ok $? "node 2 is drained once the grace is over: its listeners closed, its workers finishing"

client exchange A
r1=$(field ok)
client finish A
[ "$r1" = 60 ] && [ "$(field ok)" = 60 ]
ok $? "after the listeners closed, every older connection (node 2's too) echoes and finishes intact: half-close, all bytes, EOF ($(field fail) failed: $(field bad))"

b2=$(accepted 2)
client burst 30
[ "$(field ok)" = 30 ] && [ "$(accepted 2)" = "$b2" ]
ok $? "30 more short connections go to nodes 1 and 3 ($(field fail) failed: $(field bad))"

client finish B
[ "$(field ok)" = 45 ] && [ "$(field fail)" = 0 ]
ok $? "those opened during the drain finish intact too ($(field fail) failed: $(field bad))"

fleet_check "node 2 drained" 0
grep -q '^node2 *drained ' "$tmp/fleet.out"
ok $? "sluice-fleet says node 2 is drained"

# ---- undrain ----------------------------------------------------------------
healthz_is() { [ "$(healthz "$1")" = "$2" ]; }
out=$(ctl 2 undrain 2>&1) && until_ok 30 healthz_is 2 200 && until_ok 30 vip_is 123
ok $? "sluicectl undrain on node 2 (\"$out\"): /healthz 200 and the route is back (nodes: $(vip_nodes))"

b2=$(accepted 2)
client burst 90
[ "$(field ok)" = 90 ] && [ "$(accepted 2)" -gt "$b2" ]
ok $? "new connections reach node 2 again: $(($(accepted 2) - b2)) of 90 ($(field fail) failed: $(field bad))"

# ---- a node's sluiced dies --------------------------------------------------
client open D 60
portsD=$(field ports)
dn3=$(on_node 3 "$portsD")
[ "$(field ok)" = 60 ] && [ "$dn3" -gt 0 ]
ok $? "60 connections held again, $dn3 of them on node 3 ($(field fail) failed: $(field bad))"
sort "$tmp/sess3" >"$tmp/d3"

kids=$(pgrep -P "$sluiced_3" | tr '\n' ' ')
# shellcheck disable=SC2086
kill -KILL "$sluiced_3" $kids
pids=$(echo "$pids" | tr ' ' '\n' | grep -vx "$sluiced_3" | tr '\n' ' ')
until_ok 30 vip_is 12
ok $? "killing node 3's sluiced (master and children) withdraws its route (nodes: $(vip_nodes))"

client exchange D
lost=$(echo "$reply" | sed -n 's/.* bad=\([^ ]*\).*/\1/p' | tr ',' '\n' | sed -n 's/^\([0-9]*\):.*/\1/p' | sort)
want=$(echo "$portsD" | tr ',' '\n' | sort | comm -12 - "$tmp/d3")
[ "$(field fail)" = "$dn3" ] && [ "$lost" = "$want" ] && [ "$(field ok)" = $((60 - dn3)) ]
ok $? "exactly node 3's $dn3 connections are lost; the other $(field ok) echo every byte"

b1=$(accepted 1) b2=$(accepted 2)
client burst 60
[ "$(field ok)" = 60 ] && [ $(($(accepted 1) - b1 + $(accepted 2) - b2)) -eq 60 ]
ok $? "60 new connections all verified, all on nodes 1 and 2 ($(field fail) failed: $(field bad))"

fleet_check "node 3 down" 1
grep -q '^http://10.0.3.2:9145/metrics *down ' "$tmp/fleet.out"
ok $? "sluice-fleet says node 3 is down and exits 1"

start_sluiced 3
until_ok 30 vip_is 123
r=$?
client burst 60
[ $r -eq 0 ] && [ "$(field ok)" = 60 ] && [ "$(accepted 3)" -gt 0 ]
ok $? "a restarted sluiced on node 3 is announced again and serves ($(field ok) of 60 verified, $(accepted 3) on node 3)"

client finish D
[ "$(field ok)" = $((60 - dn3)) ] && [ "$(field fail)" = 0 ]
ok $? "the surviving connections finish intact ($(field fail) failed: $(field bad))"

# ---- nothing left behind ----------------------------------------------------
echo quit >&3
all=$pids
for i in $NODES; do
	eval "m=\${sluiced_$i}"
	alive "$m" && all="$all $(pgrep -P "$m" | tr '\n' ' ')"
done
cleanup
left=
for p in $all; do alive "$p" && left="$left $p"; done
[ -z "$left" ]
ok $? "every process the test started is gone${left:+ (left:$left)}"
gone=0
for ns in $namespaces; do [ -e "/run/netns/$ns" ] && gone=1; done
ok $gone "every namespace it made is removed"
echo "1..$n"
[ "$failed" -eq 0 ]
