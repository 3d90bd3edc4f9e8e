#!/bin/sh
# SPDX-License-Identifier: BSD-2-Clause
# unit.sh — checks the systemd unit (etc/sluiced.service, as `make` wrote it)
# against what sluiced and the default sluice.conf need: Type=notify with -f,
# reload through sluicectl, /run/sluice as the runtime directory holding
# pid_file and stats_file under ProtectSystem=strict, the sysusers.d user
# the config names, the stop timeout above the drain timeout, the descriptor
# limit and the hardening; then `systemd-analyze verify` and its offline
# security score where systemd-analyze exists (skipped otherwise). The
# capability set is tried for real by tests/i_unitcaps. TAP output.
set -u

build=$(dirname "${SLUICED:?SLUICED is set by make check}")
src=${TOP_SRCDIR:?TOP_SRCDIR is set by make check}
unit=$build/etc/sluiced.service
conf=$src/etc/sluice.conf
sysusers=$src/etc/sluice.sysusers
n=0
failed=0
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT

ok() { # ok COND-STATUS DESCRIPTION
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		echo "not ok $n - $2"
		failed=$((failed + 1))
	fi
}
skip() {
	n=$((n + 1))
	echo "ok $n # SKIP $1"
}
# The value of the last KEY= line of the unit (systemd: the last one wins
# for single-valued settings).
val() { sed -n "s/^$1=//p" "$unit" | tail -n 1; }
# The value of a top-level `key = "value";` setting of the default config.
conf_val() { sed -n "s/^$1[[:space:]]*=[[:space:]]*\"\\(.*\\)\";.*/\\1/p" "$conf" | tail -n 1; }
# Seconds from a systemd or sluice duration such as 45s, 1min, 30s, 2m.
secs() {
	case $1 in
	*min) echo $((${1%min} * 60)) ;;
	*ms) echo 0 ;;
	*s) echo "${1%s}" ;;
	*m) echo $((${1%m} * 60)) ;;
	*h) echo $((${1%h} * 3600)) ;;
	*) echo "$1" ;;
	esac
}

echo "1..17"
if [ ! -f "$unit" ]; then
	echo "Bail out! no $unit (make writes it)"
	exit 1
fi

[ "$(val Type)" = notify ]
ok $? "Type=notify"
exec_start=$(val ExecStart)
case " $exec_start " in *" -f "*) r=0 ;; *) r=1 ;; esac
ok $r "ExecStart runs sluiced in the foreground, as the main process: $exec_start"
cfg=$(echo "$exec_start" | sed -n 's/.* -c \([^ ]*\).*/\1/p')
reload=$(val ExecReload)
[ -n "$cfg" ] && [ "$reload" = "$(dirname "$(echo "$exec_start" | cut -d' ' -f1)")/sluicectl -c $cfg reload" ]
ok $? "ExecReload is a synchronous sluicectl reload of the same file: $reload"

rt=$(val RuntimeDirectory)
pid_dir=$(dirname "$(conf_val pid_file)")
stats_dir=$(dirname "$(conf_val stats_file)")
[ -n "$rt" ] && [ "$pid_dir" = "/run/$rt" ] && [ "$stats_dir" = "/run/$rt" ]
ok $? "pid_file and stats_file of sluice.conf ($pid_dir, $stats_dir) are in RuntimeDirectory=/run/$rt"
[ "$(val ProtectSystem)" = strict ] && [ -z "$(val ReadWritePaths)" ]
ok $? "ProtectSystem=strict, and sluiced writes nowhere else (no ReadWritePaths)"

user=$(conf_val user)
sys_user=$(awk '$1 == "u" { print $2 }' "$sysusers")
[ -n "$user" ] && [ "$user" = "$sys_user" ]
ok $? "sluice.conf's user ($user) is the one etc/sluice.sysusers creates ($sys_user)"

drain=$(sed -n 's/^[[:space:]]*drain[[:space:]]*=[[:space:]]*"\(.*\)";.*/\1/p' "$conf" | head -n 1)
stop=$(val TimeoutStopSec)
[ "$(val KillSignal)" = SIGQUIT ] && [ "$(val KillMode)" = mixed ] &&
	[ "$(secs "$stop")" -gt $(($(secs "$drain") + 5)) ]
ok $? "stop is graceful (SIGQUIT to the master) and TimeoutStopSec=$stop outlasts drain $drain + 5s"

nofile=$(val LimitNOFILE)
[ "$nofile" -ge 400000 ] 2>/dev/null
ok $? "LimitNOFILE=$nofile holds 200,000 relayed connections in one worker"

caps=" $(val CapabilityBoundingSet) "
r=0
for c in CAP_NET_BIND_SERVICE CAP_SETUID CAP_SETGID CAP_KILL CAP_CHOWN; do
	case $caps in *" $c "*) ;; *) r=1; echo "# missing $c" ;; esac
done
for c in CAP_SYS_ADMIN CAP_DAC_OVERRIDE CAP_SYS_PTRACE CAP_NET_ADMIN CAP_NET_RAW; do
	case $caps in *" $c "*) r=1; echo "# needless $c" ;; esac
done
ok $r "CapabilityBoundingSet keeps what the master needs and nothing broad:$caps"
r=0
for kv in NoNewPrivileges=yes PrivateTmp=yes ProtectHome=yes PrivateDevices=yes \
    ProtectKernelTunables=yes ProtectKernelModules=yes ProtectControlGroups=yes \
    RestrictSUIDSGID=yes MemoryDenyWriteExecute=yes LockPersonality=yes; do
	[ "$(val "${kv%%=*}")" = "${kv#*=}" ] || { r=1; echo "# not $kv"; }
done
ok $r "hardening: NoNewPrivileges, PrivateTmp, ProtectHome, PrivateDevices, Protect*, ..."
af=" $(val RestrictAddressFamilies) "
case $af in *" AF_UNIX "*) r=0 ;; *) r=1 ;; esac
ok $r "AF_UNIX stays allowed: the notify socket and the control socket need it"
[ "$(val NotifyAccess)" = main ] || [ -z "$(val NotifyAccess)" ]
ok $? "only the main process (the master) may notify"

# systemd-analyze verify wants every command to exist and every manual page
# to open: point the unit at this build's programs and at doc/.
if ! command -v systemd-analyze >/dev/null 2>&1; then
	skip "no systemd-analyze: verify"
	skip "no systemd-analyze: security"
	skip "no systemd-analyze: verify refuses a broken unit"
	skip "no systemd-sysusers: user"
	skip "no systemd-sysusers: no login"
	echo "# $failed failed"
	[ "$failed" -eq 0 ]
	exit
fi
mkdir -p "$tmp/sbin" "$tmp/man/man1" "$tmp/man/man5" "$tmp/man/man8" "$tmp/etc" "$tmp/units"
ln -s "$build/sluiced" "$tmp/sbin/sluiced"
if [ -x "$build/sluicectl" ]; then
	ln -s "$build/sluicectl" "$tmp/sbin/sluicectl"
else
	# Not in this tree yet: a placeholder only so that verify can look.
	echo "# no sluicectl built yet: verify sees a placeholder"
	printf '#!/bin/sh\nexit 1\n' >"$tmp/sbin/sluicectl"
	chmod 755 "$tmp/sbin/sluicectl"
fi
for m in sluiced.8 sluice.conf.5 sluicestat.1; do
	ln -s "$src/doc/$m" "$tmp/man/man${m##*.}/$m"
done
sbindir=$(dirname "$(echo "$exec_start" | cut -d' ' -f1)")
sed "s|$sbindir/|$tmp/sbin/|g" "$unit" >"$tmp/units/sluiced.service"
out=$(MANPATH=$tmp/man SYSTEMD_LOG_LEVEL=warning systemd-analyze verify "$tmp/units/sluiced.service" 2>&1)
r=$?
[ -z "$out" ] || echo "$out" | sed 's/^/# /'
[ $r -eq 0 ] && [ -z "$out" ]
ok $? "systemd-analyze verify: no complaint"
score=$(systemd-analyze security --offline=yes "$tmp/units/sluiced.service" 2>/dev/null |
	sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
echo "# exposure $score"
[ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 3.0) }'
ok $? "systemd-analyze security (offline): exposure $score, at most 3.0"
# The checks above must be able to fail: a misspelt directive is reported.
sed 's/^Type=notify/Type=notifyy/' "$tmp/units/sluiced.service" >"$tmp/units/broken.service"
out=$(MANPATH=$tmp/man systemd-analyze verify "$tmp/units/broken.service" 2>&1)
case $out in *notifyy*) r=0 ;; *) r=1 ;; esac
ok $r "verify does report a broken unit"
# sluiced -t runs in ExecStartPre: the default config must pass it once its
# user exists, which systemd-sysusers creates from our file (into a scratch
# root, never this machine's).
mkdir -p "$tmp/root/etc"
systemd-sysusers --root="$tmp/root" "$sysusers" >/dev/null 2>&1
grep -q "^$user:" "$tmp/root/etc/passwd" 2>/dev/null
ok $? "systemd-sysusers creates user $user from etc/sluice.sysusers"
grep "^$user:" "$tmp/root/etc/passwd" | awk -F: '{ exit !($7 ~ /nologin|false/ || $6 == "/nonexistent") }'
ok $? "a system user with no home and no login: $(grep "^$user:" "$tmp/root/etc/passwd" 2>/dev/null)"
echo "# $failed failed"
[ "$failed" -eq 0 ]
