#!/bin/sh
# Checks of the man pages in man/ (make check-man):
#  - `groff -ww -z -man` (and with -Tutf8) prints nothing for each page, and
#    `man -l` renders it without a message;
#  - they keep up with the programs and the contract: every jobd option,
#    every jobctl command and option (from their --help / -h), every config
#    key of conf/jobd.example.conf, every protocol op and error code of
#    docs/spec.md §2 and every exit status is described.
# The last line is "N passed, M failed"; exit 1 if M > 0.
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
JOBD=${JOBD:-$top/build/release/jobd}
JOBCTL=${JOBCTL:-$top/build/release/jobctl}
man=$top/man

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

for tool in groff man; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		echo "check-man: $tool not found (make deps installs it)" >&2
		exit 1
	fi
done

# --- rendering ------------------------------------------------------------
for page in "$man"/*.[0-9]; do
	name=${page##*/}
	for dev in "" -Tutf8; do
		what="groff -ww -z${dev:+ $dev} -man $name"
		out=$(groff -ww -z $dev -man "$page" 2>&1)
		if [ $? -eq 0 ] && [ -z "$out" ]; then
			ok "$what"
		else
			bad "$what:"
			echo "$out" | sed 's/^/    /'
		fi
	done
	MANWIDTH=80 man -l "$page" >"$tmp/$name.txt" 2>"$tmp/err"
	rc=$?
	if [ "$rc" -eq 0 ] && [ ! -s "$tmp/err" ] && [ -s "$tmp/$name.txt" ]; then
		ok "man -l: $name"
	else
		bad "man -l: $name (exit $rc):"
		sed 's/^/    /' "$tmp/err"
	fi
	# Wide plain text for the checks below (man-db strips the overstrike
	# when its output is not a terminal).
	MANWIDTH=200 man -l "$page" >"$tmp/$name.txt" 2>/dev/null
done

# has PAGE WORD WHAT: WORD appears as a word in the rendered PAGE.
has() {
	if grep -qE -- "(^|[^A-Za-z0-9_-])$2([^A-Za-z0-9_-]|\$)" \
	    "$tmp/$1.txt"; then
		ok "$1: $3 $2"
	else
		bad "$1: $3 $2 is not described"
	fi
}

# --- jobd(8) --------------------------------------------------------------
if [ -x "$JOBD" ]; then
	for opt in $("$JOBD" --help | grep -oE -- '-{1,2}[a-z][a-z-]*'); do
		has jobd.8 "$opt" option
	done
else
	bad "jobd not built ($JOBD)"
fi
for st in 0 1 64 78; do
	grep -q "^       $st  " "$tmp/jobd.8.txt" &&
	    ok "jobd.8: exit status $st" ||
	    bad "jobd.8: exit status $st is not described"
done
for sig in SIGTERM SIGINT SIGHUP; do
	has jobd.8 "$sig" signal
done
for var in JOBD_SOCKET XDG_RUNTIME_DIR XDG_STATE_HOME NOTIFY_SOCKET \
    LISTEN_FDNAMES WATCHDOG_USEC JOURNAL_STREAM; do
	case $var in
	JOBD_SOCKET) has jobctl.1 "$var" variable ;;
	*) has jobd.8 "$var" variable ;;
	esac
done

# Ops: the first column of the table in spec §2 ("### Ops").
spec=$top/docs/spec.md
ops=$(sed -n '/^### Ops/,/^Semantics/p' "$spec" |
    sed -n 's/^| `\([a-z]*\)` | .*/\1/p; s/^| `\([a-z]*\)` \/ `\([a-z]*\)` .*/\1 \2/p')
[ -n "$ops" ] || bad "spec.md: no ops found"
for op in $ops; do
	has jobd.8 "$op" "protocol op"
done
# Error codes: the backquoted words of the "Error codes:" paragraph that
# are not config keys.
codes=$(sed -n '/^Error codes:/,/^$/p' "$spec" | grep -o '`[a-z_]*`' |
    tr -d '`' | grep -vx 'max_request_bytes')
[ -n "$codes" ] || bad "spec.md: no error codes found"
for code in $codes; do
	has jobd.8 "$code" "error code"
done

# --- jobctl(1) ------------------------------------------------------------
if [ -x "$JOBCTL" ]; then
	cmds=$("$JOBCTL" --help | sed -n '/^commands:/,/^$/p' |
	    sed -n 's/^  \([a-z][a-z]*\).*/\1/p')
	[ -n "$cmds" ] || bad "jobctl --help lists no commands"
	for cmd in $cmds; do
		has jobctl.1 "$cmd" command
		for opt in $("$JOBCTL" "$cmd" -h |
		    grep -oE -- '(^| |\[)-{1,2}[A-Za-z][a-z-]*' |
		    tr -d ' ['); do
			has jobctl.1 "$opt" "$cmd option"
		done
	done
	for opt in $("$JOBCTL" --help | sed -n '/^options:/,/^$/p' |
	    grep -oE -- '^  -{1,2}[a-z-]+'); do
		has jobctl.1 "$opt" "global option"
	done
else
	bad "jobctl not built ($JOBCTL)"
fi
for st in 0 1 64 69 75 124 125 127; do
	grep -q "^       $st  " "$tmp/jobctl.1.txt" &&
	    ok "jobctl.1: exit status $st" ||
	    bad "jobctl.1: exit status $st is not described"
done

# --- jobd.conf(5) ---------------------------------------------------------
# Every "key =" of the example config, nested ones included.
keys=$(sed 's/#.*//' "$top/conf/jobd.example.conf" |
    grep -oE '[a-z_]+[[:space:]]*=' | tr -d ' =' | LC_ALL=C sort -u)
[ -n "$keys" ] || bad "no keys found in conf/jobd.example.conf"
for k in $keys; do
	has jobd.conf.5 "$k" key
done
# And the keys of the tables of spec §4 and §5 (the example may lag).
for k in $(sed -n '/^## 4\./,/^## 6\./p' "$spec" |
    sed -n 's/^| `\([a-z_.]*\)`.*/\1/p' | sed 's/^journal\.//' |
    LC_ALL=C sort -u); do
	has jobd.conf.5 "$k" key
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
