#!/bin/sh
# Checks of `make install` and `make uninstall` (make check-install):
#  - `make install DESTDIR=<tmp>` installs exactly the files of EXPECTED,
#    with their modes, and nothing else;
#  - the installed units name the installed programs and config, for the
#    default PREFIX and for PREFIX=/usr, and pass `systemd-analyze verify`
#    (against the installed binaries and man pages);
#  - the installed man pages render with `groff -ww -z` without a word;
#    the installed completion is valid bash;
#  - a second install keeps a config the admin changed; uninstall keeps it
#    too, and otherwise leaves nothing but directories; uninstall twice is
#    fine.
# The last line is "N passed, M failed"; exit 1 if M > 0.
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
MAKE=${MAKE:-make}
VARIANT=${VARIANT:-release}	# which build/ to install from

# What `make install` puts under DESTDIR with the default variables.
EXPECTED='644 etc/jobd/jobd.conf
644 lib/systemd/system/jobd-status.socket
644 lib/systemd/system/jobd.service
644 lib/systemd/system/jobd.socket
644 usr/lib/systemd/user/jobd.service
644 usr/lib/systemd/user/jobd.socket
644 usr/lib/sysusers.d/jobd.conf
755 usr/local/bin/jobctl
755 usr/local/bin/jobd
644 usr/local/share/bash-completion/completions/jobctl
644 usr/local/share/doc/jobd/decisions.md
644 usr/local/share/doc/jobd/jobctl.md
644 usr/local/share/doc/jobd/spec.md
644 usr/local/share/jobd/jobd-strict.conf
644 usr/local/share/jobd/jobd-user.conf
644 usr/local/share/jobd/jobd.example.conf
644 usr/local/share/man/man1/jobctl.1
644 usr/local/share/man/man5/jobd.conf.5
644 usr/local/share/man/man8/jobd.8'

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

# mk TARGET DESTDIR [VAR=VALUE...]: run make in the source tree, quietly,
# without what a calling make passes down (its variables, its -j).
mk() {
	target=$1
	dest=$2
	shift 2
	env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL -u MAKEOVERRIDES \
	    $MAKE -s -C "$top" "$target" VARIANT="$VARIANT" DESTDIR="$dest" "$@" \
	    >"$tmp/make.out" 2>&1
}

# files DIR: "mode path" of every non-directory under DIR, sorted.
files() {
	(cd "$1" && find . ! -type d -printf '%m %P\n' | LC_ALL=C sort)
}

# --- install: exactly the expected files ------------------------------
d1=$tmp/default
if mk install "$d1"; then
	ok "make install DESTDIR=..."
else
	bad "make install DESTDIR=...:"
	sed 's/^/    /' "$tmp/make.out"
	echo "$pass passed, $fail failed"
	exit 1
fi
echo "$EXPECTED" | LC_ALL=C sort >"$tmp/expected"
files "$d1" >"$tmp/got"
if cmp -s "$tmp/expected" "$tmp/got"; then
	ok "installs exactly the $(wc -l <"$tmp/expected") expected files"
else
	bad "installed files differ from the list (- expected, + installed):"
	diff "$tmp/expected" "$tmp/got" | grep '^[<>]' |
	    sed 's/^</    -/; s/^>/    +/'
fi

# --- the installed units name what was installed ----------------------
# units_name DESTDIR BINDIR SYSCONFDIR DATADIR
units_name() {
	d=$1 bindir=$2 sysconfdir=$3 datadir=$4
	unit=$d/lib/systemd/system/jobd.service
	user=$d/usr/lib/systemd/user/jobd.service
	want="ExecStart=$bindir/jobd -c $sysconfdir/jobd/jobd.conf"
	if grep -qx "$want" "$unit"; then
		ok "jobd.service: $want"
	else
		bad "jobd.service: no '$want'"
	fi
	want="ExecReload=$bindir/jobctl -s /run/jobd/jobd.sock reload --wait"
	if grep -qx "$want" "$unit"; then
		ok "jobd.service: ExecReload=$bindir/jobctl ..."
	else
		bad "jobd.service: no '$want'"
	fi
	if grep -q "^ExecStart=.*$datadir/jobd/jobd-user.conf; exec $bindir/jobd " \
	    "$user"; then
		ok "user jobd.service: $bindir/jobd, $datadir/jobd/jobd-user.conf"
	else
		bad "user jobd.service: ExecStart does not name $bindir/jobd" \
		    "and $datadir/jobd/jobd-user.conf"
	fi
	for f in "$d$bindir/jobd" "$d$bindir/jobctl" \
	    "$d$sysconfdir/jobd/jobd.conf" "$d$datadir/jobd/jobd-user.conf"; do
		[ -f "$f" ] || bad "not installed: ${f#"$d"}"
	done
}
units_name "$d1" /usr/local/bin /etc /usr/local/share

d2=$tmp/usr
if mk install "$d2" PREFIX=/usr; then
	ok "make install PREFIX=/usr"
	units_name "$d2" /usr/bin /etc /usr/share
	if grep -n '/usr/local' "$d2"/lib/systemd/system/* \
	    "$d2"/usr/lib/systemd/user/* | grep -v ':#' >"$tmp/local"; then
		bad "PREFIX=/usr: units still name /usr/local:"
		sed 's/^/    /' "$tmp/local"
	else
		ok "PREFIX=/usr: no /usr/local in the units"
	fi
	# verify the installed units on the installed binaries and pages.
	v=$tmp/verify
	mkdir -p "$v" "$tmp/xdg-runtime"
	for f in "$d2"/lib/systemd/system/*; do
		sed "s|/usr/bin/|$d2/usr/bin/|g" "$f" >"$v/${f##*/}"
	done
	if command -v systemd-analyze >/dev/null 2>&1; then
		(cd "$v" && MANPATH=$d2/usr/share/man SYSTEMD_UNIT_PATH=$v: \
		    systemd-analyze verify jobd.service jobd.socket \
		    jobd-status.socket) >"$tmp/verify.out" 2>&1
		rc=$?
		if [ "$rc" -eq 0 ] && [ ! -s "$tmp/verify.out" ]; then
			ok "installed units pass systemd-analyze verify"
		else
			bad "installed units: systemd-analyze verify (exit $rc):"
			sed 's/^/    /' "$tmp/verify.out"
		fi
	else
		bad "systemd-analyze not found (make deps installs systemd)"
	fi
else
	bad "make install PREFIX=/usr:"
	sed 's/^/    /' "$tmp/make.out"
fi

# --- man pages and completion ------------------------------------------
for page in "$d1"/usr/local/share/man/man*/*; do
	out=$(groff -ww -z -man "$page" 2>&1)
	if [ $? -eq 0 ] && [ -z "$out" ]; then
		ok "groff -ww -z: ${page##*/}"
	else
		bad "groff -ww -z: ${page##*/}:"
		echo "$out" | sed 's/^/    /'
	fi
done
comp=$d1/usr/local/share/bash-completion/completions/jobctl
if out=$(bash -n "$comp" 2>&1); then
	ok "completion: bash -n"
else
	bad "completion: $out"
fi

# --- the admin's config survives install and uninstall -----------------
conf=$d1/etc/jobd/jobd.conf
if cmp -s "$conf" "$top/conf/jobd.example.conf"; then
	ok "jobd.conf: the example, on a first install"
else
	bad "jobd.conf: not the example after a first install"
fi
echo 'log_level = "debug";  # changed by the admin' >>"$conf"
cp "$conf" "$tmp/changed.conf"
if mk install "$d1" && cmp -s "$conf" "$tmp/changed.conf"; then
	ok "a second install keeps a changed jobd.conf"
else
	bad "a second install replaced the admin's jobd.conf"
fi
if mk uninstall "$d1" && cmp -s "$conf" "$tmp/changed.conf"; then
	ok "uninstall keeps a changed jobd.conf"
else
	bad "uninstall removed the admin's jobd.conf"
fi
rm -f "$conf"
files "$d1" >"$tmp/left"
if [ ! -s "$tmp/left" ]; then
	ok "uninstall leaves the changed jobd.conf only"
else
	bad "uninstall left files behind:"
	sed 's/^/    /' "$tmp/left"
fi

# --- install + uninstall leaves nothing but directories ----------------
d3=$tmp/clean
if mk install "$d3" && mk uninstall "$d3"; then
	files "$d3" >"$tmp/left"
	if [ ! -s "$tmp/left" ]; then
		ok "install + uninstall leaves nothing but directories"
	else
		bad "uninstall left files behind:"
		sed 's/^/    /' "$tmp/left"
	fi
else
	bad "install + uninstall:"
	sed 's/^/    /' "$tmp/make.out"
fi
if mk uninstall "$d3"; then
	ok "uninstall twice"
else
	bad "uninstall twice:"
	sed 's/^/    /' "$tmp/make.out"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
