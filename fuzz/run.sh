#!/usr/bin/env bash
# SPDX-License-Identifier: BSD-2-Clause
# fuzz/run.sh — build the libFuzzer targets for the PROXY protocol parser
# (fuzz/fuzz_proxy.c + common/proxy.c), the TLS ClientHello reader
# (fuzz/fuzz_tls.c + common/tls_hello.c) and the DNS answer reader
# (fuzz/fuzz_dns.c + checker/resolve.c) with Debian's clang and run one.
# Needs: clang and libclang-rt-14-dev (Debian 12), which ship libFuzzer.
#
#   fuzz/run.sh [SECONDS] [OUTDIR] [TARGET]   default: 600 s, ./fuzz-out, proxy
#
# TARGET is proxy, tls or dns. OUTDIR keeps the binary, the corpus (grown across runs) and any crash
# reproducer (crash-*). Exits non-zero when the fuzzer finds a crash.
set -eu
src=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-600}
out=${2:-$PWD/fuzz-out}
target=${3:-proxy}
cc=${CLANG:-clang}

command -v "$cc" >/dev/null || { echo "fuzz: $cc not found (apt-get install clang libclang-rt-14-dev)" >&2; exit 1; }
if [ "$target" = dns ]; then
	out=$out/dns
	mkdir -p "$out/corpus" "$out/seeds"
	"$cc" -g -O1 -Wall -Wextra -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-I"$src/checker" "$src/fuzz/fuzz_dns.c" "$src/checker/resolve.c" -o "$out/fuzz_dns"
	# Seeds: byte 0 picks the question (0x78: app.example A, 16 addresses;
	# 0x79: www.example A; 0x7c: app.example AAAA), bytes 1-2 the id, then
	# the answer: two compressed A records; a CNAME to an A record; AAAA.
	q='\003app\007example\000'
	printf "\170\000\011\000\011\201\200\000\001\000\002\000\000\000\000${q}\000\001\000\001\300\014\000\001\000\001\000\000\000\074\000\004\012\000\000\001\300\014\000\001\000\001\000\000\000\036\000\004\012\000\000\002" >"$out/seeds/a2"
	printf "\171\000\011\000\011\201\200\000\001\000\002\000\000\000\000\003www\007example\000\000\001\000\001\300\014\000\005\000\001\000\000\000\005\000\007\004edge\300\020\004edge\300\020\000\001\000\001\000\000\000\005\000\004\012\000\000\003" >"$out/seeds/cname"
	printf "\174\000\011\000\011\201\200\000\001\000\001\000\000\000\000${q}\000\034\000\001\300\014\000\034\000\001\000\000\000\074\000\020\040\001\015\270\000\000\000\000\000\000\000\000\000\000\000\001" >"$out/seeds/aaaa"
	printf "\170\000\011\000\011\201\203\000\001\000\000\000\000\000\000${q}\000\001\000\001" >"$out/seeds/nxdomain"
	echo "fuzz: running $out/fuzz_dns for $secs s"
	exec "$out/fuzz_dns" -max_total_time="$secs" -max_len=2048 -print_final_stats=1 \
		-artifact_prefix="$out/" "$out/corpus" "$out/seeds"
fi
if [ "$target" = tls ]; then
	out=$out/tls
	mkdir -p "$out/corpus" "$out/seeds"
	"$cc" -g -O1 -Wall -Wextra -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-I"$src/common" "$src/fuzz/fuzz_tls.c" "$src/common/tls_hello.c" -o "$out/fuzz_tls"
	# Seeds: the real hellos of tests/tls_hellos.h, behind three bytes
	# (bound 0x2000 + 64, re-cut size seed).
	sed -n '/^static const unsigned char hello_/,/^};/p' "$src/tests/tls_hellos.h" |
		awk -v dir="$out/seeds" '
		/^static/ { name = $5; sub(/\[\]/, "", name); f = dir "/" name; printf "\\x20\\x00\\x07" > f; next }
		/^};/ { close(f); next }
		{ gsub(/[ ,]/, ""); gsub(/0x/, "\\x"); printf "%s", $0 >> f }' &&
		for f in "$out"/seeds/hello_*; do printf "$(cat "$f")" >"$f.bin" && rm "$f"; done
	echo "fuzz: running $out/fuzz_tls for $secs s"
	exec "$out/fuzz_tls" -max_total_time="$secs" -max_len=20000 -print_final_stats=1 \
		-artifact_prefix="$out/" "$out/corpus" "$out/seeds"
fi
mkdir -p "$out/corpus" "$out/seeds"
"$cc" -g -O1 -Wall -Wextra -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
	-I"$src/common" "$src/fuzz/fuzz_proxy.c" "$src/common/proxy.c" -o "$out/fuzz_proxy"

# Seeds: the spec's examples. The first byte picks the versions accepted
# (1 + byte % 3: v1, v2, any); the header follows.
seed() { printf "$2" >"$out/seeds/$1"; }
seed v1-tcp4 '\002PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n\r\n'
seed v1-tcp6 '\002PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ::1 65535 0\r\n'
seed v1-unknown '\000PROXY UNKNOWN\r\n'
seed v2-tcp4 '\001\r\n\r\n\000\r\nQUIT\n\041\021\000\014\300\000\002\001\306\063\144\013\334\004\001\273data'
seed v2-tcp6 '\002\r\n\r\n\000\r\nQUIT\n\041\041\000\044\040\001\015\270\000\000\000\000\000\000\000\000\000\000\000\001\040\001\015\270\000\000\000\000\000\000\000\000\000\000\000\002\060\071\000\120'
seed v2-local '\001\r\n\r\n\000\r\nQUIT\n\040\000\000\000'
seed v2-tlv '\001\r\n\r\n\000\r\nQUIT\n\041\021\000\024\300\000\002\001\306\063\144\013\334\004\001\273\001\000\002h2\004\000\000'
# TLVs the parser checks: SSL with sub-TLVs and a UNIQUE_ID; LOCAL with
# UTF-8 AUTHORITY, NETNS and a valid CRC32c; UNSPEC with ALPN and NOOP.
seed v2-ssl '\001\015\012\015\012\000\015\012QUIT\012\041\021\000N\300\000\002\001\306\063d\013\334\004\001\273\040\000\065\007\000\000\000\000\041\000\007TLSv\061.\063\042\000\005caf\303\251\043\000\033ECDHE-RSA-AES\061\062\070-GCM-SHA\062\065\066\005\000\007id-\060\060\060\061data'
seed v2-local-crc '\001\015\012\015\012\000\015\012QUIT\012\040\000\000\034\002\000\013b\303\274cher.\344\276\213\060\000\004blue\003\000\004\357\002dl'
seed v2-unspec-tlv '\002\015\012\015\012\000\015\012QUIT\012\041\000\000\010\001\000\002h\062\004\000\000'

echo "fuzz: running $out/fuzz_proxy for $secs s"
exec "$out/fuzz_proxy" -max_total_time="$secs" -max_len=4096 -print_final_stats=1 \
	-dict="$src/fuzz/proxy.dict" -artifact_prefix="$out/" "$out/corpus" "$out/seeds"
