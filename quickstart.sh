#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# quickstart.sh — set up a Debian 12 machine and build sluice, then either
#   demo: run sluiced in the foreground on etc/sluice.conf in front of a demo
#         echo backend, push traffic through it and show sluicestat, or
#   test: run the whole test suite (make check).
# Installs missing Debian packages with apt-get (needs root for that step only).
set -eu
cd "$(dirname "$0")"

mode=${1:-demo}
case $mode in demo|test) ;; *) echo "usage: $0 [demo|test]" >&2; exit 2 ;; esac

pkgs="build-essential autoconf automake libtool pkg-config libev-dev libconfig-dev libncurses-dev tmux"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "== installing:$missing"
	if [ "$(id -u)" != 0 ]; then
		echo "quickstart: run as root, or install these yourself:$missing" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

echo "== building"
[ -x configure ] || ./autogen.sh >/dev/null
[ -f Makefile ] || ./configure -q
make -s -j"$(nproc)" >/dev/null
make -s -j"$(nproc)" tests/echod >/dev/null

if [ "$mode" = test ]; then
	echo "== make check"
	exec make -s -j"$(nproc)" check
fi

# demo: the example config listens on 127.0.0.1:8080 and relays to a server on
# 127.0.0.1:9000, where the test suite's echo backend plays the application.
conf=etc/sluice.conf
stats=$(sed -n 's/^[[:space:]]*stats_file[[:space:]]*=[[:space:]]*"\(.*\)".*/\1/p' "$conf")
pids=
demo_conf=
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -z "$demo_conf" ] || rm -f "$demo_conf"
}
# The example's workers run as the "sluice" system user, which the package
# (or etc/sluice.sysusers) creates; on a fresh clone run by root, the demo
# runs them as nobody instead.
if [ "$(id -u)" = 0 ] && ! getent passwd sluice >/dev/null; then
	demo_conf=$(mktemp)
	sed 's/^user = "sluice";/# &/' "$conf" >"$demo_conf"
	conf=$demo_conf
fi
trap cleanup EXIT INT TERM

./tests/echod -l 127.0.0.1:9000 >/dev/null &
pids="$pids $!"
echo "== sluiced -f -c $conf   (log below)"
./sluiced -f -c "$conf" &
sluiced=$!
pids="$sluiced $pids"

up=
for _ in $(seq 1 100); do
	if (exec 3<>/dev/tcp/127.0.0.1/8080) 2>/dev/null; then up=1; break; fi
	sleep 0.1
done
[ -n "$up" ] || { echo "quickstart: sluiced did not start listening" >&2; exit 1; }

echo "== 20 connections through sluice, each echoing one line"
okc=0
for i in $(seq 1 20); do
	exec 3<>/dev/tcp/127.0.0.1/8080
	printf 'hello from connection %d\n' "$i" >&3
	if IFS= read -r -t 5 line <&3 && [ "$line" = "hello from connection $i" ]; then okc=$((okc + 1)); fi
	exec 3>&-
done
echo "$okc of 20 echoed back intact"

echo "== a 16 MiB transfer through sluice"
exec 3<>/dev/tcp/127.0.0.1/8080
head -c 16777216 /dev/zero >&3 &
got=$(head -c 16777216 <&3 | wc -c)
wait $! || true
exec 3>&-
echo "$got bytes echoed back"

sleep 1.2 # let each worker publish its once-a-second pool figures
echo "== ./sluicestat -s $stats"
./sluicestat -s "$stats"
echo "== stopping sluiced (SIGTERM)"
kill -TERM "$sluiced"
wait "$sluiced" || true
pids=${pids#"$sluiced"}
