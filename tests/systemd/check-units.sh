#!/bin/sh
# Checks of the systemd units in systemd/ (make check-units):
#  - `systemd-analyze verify` on the system units, alone and with the
#    jobd-strict.conf drop-in, and `verify --user` on the user units; any
#    output at all is a failure (verify exits 0 on unknown keys);
#  - `systemd-analyze security --offline=true` exposure of jobd.service at
#    most $MAX_EXPOSURE;
#  - jobd.sysusers is valid for systemd-sysusers; jobd-user.conf for jobd;
#  - the contract of docs/spec.md §6 and the unit conventions: socket names,
#    the reload socket path, no RuntimeDirectory=, a comment per directive.
#
# verify needs the ExecStart binaries and the Documentation= man pages to
# exist: the units are copied to a temporary directory with /usr/local/bin/
# pointing at the built binaries ($JOBD, $JOBCTL), and MANPATH points at a
# man tree made from man/.  Works as root in a container without systemd
# as PID 1.  The last line is "N passed, M failed"; exit 1 if M > 0.
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
JOBD=${JOBD:-$top/build/release/jobd}
JOBCTL=${JOBCTL:-$top/build/release/jobctl}
MAX_EXPOSURE=${MAX_EXPOSURE:-3.5}
sd=$top/systemd

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

for tool in systemd-analyze systemd-sysusers man; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "check-units: $tool not found (make deps installs it)" >&2
		exit 1
	fi
done
if [ ! -x "$JOBD" ] || [ ! -x "$JOBCTL" ]; then
	echo "check-units: build jobd and jobctl first ($JOBD)" >&2
	exit 1
fi
bindir=$(cd "$(dirname "$JOBD")" && pwd)

# The man tree for Documentation=man:... (verify runs man(1) on each).
for page in "$top"/man/*.[0-9]; do
	sec=${page##*.}
	mkdir -p "$tmp/man/man$sec"
	cp "$page" "$tmp/man/man$sec/"
done
MANPATH=$tmp/man
export MANPATH

# copy_units DIR FILE...: the units with the built binaries in ExecStart.
copy_units() {
	dir=$1
	shift
	mkdir -p "$dir"
	for f in "$@"; do
		sed -e "s|/usr/local/bin/|$bindir/|g" "$f" >"$dir/${f##*/}"
	done
}

# verify NAME [--user] DIR UNIT...: run verify; pass only if it is silent.
verify() {
	name=$1
	shift
	mode=
	if [ "$1" = --user ]; then
		mode=--user
		shift
	fi
	dir=$1
	shift
	out=$tmp/verify.out
	(
		cd "$dir" || exit 1
		# Prepend DIR, so that drop-ins beside the units are read and
		# the units find each other; the standard units stay found.
		SYSTEMD_UNIT_PATH=$dir: XDG_RUNTIME_DIR=$tmp/xdg-runtime \
		    systemd-analyze verify $mode "$@"
	) >"$out" 2>&1
	rc=$?
	if [ "$rc" -eq 0 ] && [ ! -s "$out" ]; then
		ok "verify $name"
	else
		bad "verify $name (exit $rc):"
		sed 's/^/    /' "$out"
	fi
}

mkdir -p "$tmp/xdg-runtime"
chmod 0700 "$tmp/xdg-runtime"

system_units="$sd/jobd.service $sd/jobd.socket $sd/jobd-status.socket"
# shellcheck disable=SC2086
copy_units "$tmp/system" $system_units
verify "system units" "$tmp/system" jobd.service jobd.socket \
    jobd-status.socket

# shellcheck disable=SC2086
copy_units "$tmp/strict" $system_units
mkdir -p "$tmp/strict/jobd.service.d"
cp "$sd/jobd-strict.conf" "$tmp/strict/jobd.service.d/strict.conf"
verify "system units + jobd-strict.conf" "$tmp/strict" jobd.service \
    jobd.socket jobd-status.socket

copy_units "$tmp/user" "$sd/user/jobd.service" "$sd/user/jobd.socket"
verify "user units" --user "$tmp/user" jobd.service jobd.socket

# exposure FILE DIR: the score of `systemd-analyze security` for the unit
# (only DIR on the unit path: no drop-ins installed on this machine).
exposure() {
	SYSTEMD_UNIT_PATH=$2 systemd-analyze security --offline=true \
	    --no-pager "$1" 2>"$tmp/security.err" |
	    sed -n 's/.*Overall exposure level for [^:]*: *\([0-9.]*\).*/\1/p'
}
score=$(exposure "$sd/jobd.service" "$sd")
echo "     systemd-analyze security: exposure level for jobd.service: ${score:-?}"
if [ -z "$score" ]; then
	bad "security: no score"
	sed 's/^/    /' "$tmp/security.err"
elif awk -v s="$score" -v m="$MAX_EXPOSURE" 'BEGIN { exit !(s <= m) }'; then
	ok "security: exposure $score <= $MAX_EXPOSURE"
else
	bad "security: exposure $score > $MAX_EXPOSURE"
fi
strict=$(exposure "$tmp/strict/jobd.service" "$tmp/strict")
echo "     with jobd-strict.conf: ${strict:-?}"
if [ -n "$strict" ] && [ -n "$score" ] &&
    awk -v s="$strict" -v b="$score" 'BEGIN { exit !(s < b) }'; then
	ok "security: jobd-strict.conf lowers the exposure ($strict)"
else
	bad "security: jobd-strict.conf does not lower the exposure"
fi

# sysusers.d: valid, and it declares the group jobd.socket names.
mkdir -p "$tmp/root/etc"
if systemd-sysusers --root="$tmp/root" - <"$sd/jobd.sysusers" \
    >"$tmp/sysusers.out" 2>&1 && grep -q '^jobd:' "$tmp/root/etc/group"; then
	ok "sysusers: creates group jobd"
else
	bad "sysusers:"
	sed 's/^/    /' "$tmp/sysusers.out"
fi
group=$(sed -n 's/^SocketGroup=//p' "$sd/jobd.socket")
if [ "$group" = jobd ]; then
	ok "jobd.socket: SocketGroup=jobd, the group of jobd.sysusers"
else
	bad "jobd.socket: SocketGroup=$group, jobd.sysusers creates jobd"
fi

# The per-user default config is one jobd accepts.
if out=$("$JOBD" --check-config -c "$sd/jobd-user.conf" 2>&1) &&
    [ "$out" = ok ]; then
	ok "jobd-user.conf: jobd --check-config"
else
	bad "jobd-user.conf: $out"
fi

# key FILE KEY: the values of KEY= in FILE, one line each.
key() { sed -n "s/^$2=//p" "$1"; }

# SPEC §6: jobd takes its sockets by these names.
for pair in jobd.socket:control jobd-status.socket:status \
    user/jobd.socket:control; do
	f=${pair%%:*}
	want=${pair#*:}
	got=$(key "$sd/$f" FileDescriptorName)
	if [ "$got" = "$want" ]; then
		ok "$f: FileDescriptorName=$want"
	else
		bad "$f: FileDescriptorName=$got, want $want"
	fi
	if [ "$(key "$sd/$f" Service)" = jobd.service ]; then
		ok "$f: Service=jobd.service"
	else
		bad "$f: Service= is not jobd.service"
	fi
done

# ExecReload reaches jobd on the socket the socket unit listens on.
for pair in jobd.service:jobd.socket user/jobd.service:user/jobd.socket; do
	svc=${pair%%:*}
	sock=$(key "$sd/${pair#*:}" ListenStream)
	if key "$sd/$svc" ExecReload | grep -q -- "-s $sock reload --wait\$"; then
		ok "$svc: ExecReload uses $sock"
	else
		bad "$svc: ExecReload does not use $sock"
	fi
done

# Never RuntimeDirectory=: it would delete the socket's directory at every
# stop of the service while the socket unit keeps listening.
if grep -n '^RuntimeDirectory' "$sd"/*.service "$sd"/*.socket \
    "$sd"/user/* "$sd"/*.conf >"$tmp/rd.out"; then
	bad "RuntimeDirectory= is used:"
	sed 's/^/    /' "$tmp/rd.out"
else
	ok "no RuntimeDirectory="
fi

# Paths that make install rewrites name binaries that exist.
for f in "$sd"/*.service "$sd"/user/*.service; do
	for p in $(grep -v '^#' "$f" |
	    grep -o '/usr/local/bin/[A-Za-z0-9_.-][A-Za-z0-9_.-]*' | sort -u); do
		name=${p##*/}
		if [ -x "$bindir/$name" ]; then
			ok "${f#"$sd"/}: $p is built"
		else
			bad "${f#"$sd"/}: $p is not a built program"
		fi
	done
done

# Every directive in [Service] and [Socket] (and the drop-in) has its own
# comment line right above it.
for f in "$sd"/*.service "$sd"/*.socket "$sd"/user/* "$sd"/jobd-strict.conf; do
	missing=$(awk '
		/^\[/ { sec = $0; prev = ""; next }
		/^[A-Za-z]+=/ && (sec == "[Service]" || sec == "[Socket]") &&
		    prev !~ /^#/ { printf "%s:%d %s\n", FILENAME, FNR, $0 }
		{ prev = $0 }' "$f")
	if [ -z "$missing" ]; then
		ok "${f#"$sd"/}: a comment per directive"
	else
		bad "${f#"$sd"/}: directives without a comment:"
		echo "$missing" | sed 's/^/    /'
	fi
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
