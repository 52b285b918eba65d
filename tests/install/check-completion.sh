#!/bin/bash
# Checks of completion/jobctl.bash (make check-install runs it):
#  - it is valid bash;
#  - it offers every command of `jobctl --help`, the global options, every
#    option of each `jobctl COMMAND -h`, the -S states, and completes the
#    command line of `submit` as a command;
#  - against a jobd on a private socket: queue names and job ids; and
#    nothing, quickly, when no jobd answers.
# With bash-completion installed, its real helpers are used; without it,
# small stand-ins for the four helpers the script calls.
# The last line is "N passed, M failed"; exit 1 if M > 0.
set -u

top=$(cd "$(dirname "$0")/../.." && pwd)
JOBD=${JOBD:-$top/build/release/jobd}
JOBCTL=${JOBCTL:-$top/build/release/jobctl}
script=$top/completion/jobctl.bash
BASH_COMPLETION=${BASH_COMPLETION:-/usr/share/bash-completion/bash_completion}

pass=0
fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

tmp=$(mktemp -d)
jobd_pid=
cleanup() {
	[ -n "$jobd_pid" ] && kill "$jobd_pid" 2>/dev/null && wait "$jobd_pid"
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if out=$(bash -n "$script" 2>&1); then
	ok "bash -n"
else
	bad "bash -n: $out"
fi
if [ ! -x "$JOBD" ] || [ ! -x "$JOBCTL" ]; then
	bad "build jobd and jobctl first ($JOBCTL)"
	echo "$pass passed, $fail failed"
	exit 1
fi
bindir=$(cd "$(dirname "$JOBCTL")" && pwd)

# The harness: complete LINE (cursor at its end) in a fresh bash and print
# the candidates, one per line.
cat >"$tmp/complete.bash" <<'EOF'
if [ -r "$BASH_COMPLETION" ]; then
	. "$BASH_COMPLETION"
else
	# Stand-ins for bash-completion's helpers, enough for these tests.
	_init_completion() {
		words=("${COMP_WORDS[@]}")
		cword=$COMP_CWORD
		cur=${words[cword]}
		prev=${words[cword - 1]}
	}
	_filedir() { COMPREPLY=($(compgen -f -- "$cur")); }
	_command_offset() {
		local i=$1
		if ((cword == i)); then
			COMPREPLY=($(compgen -c -- "$cur"))
		else
			COMPREPLY=($(compgen -f -- "$cur"))
		fi
	}
fi
# Not inside a real completion: compopt has nothing to act on.
compopt() { :; }
. "$SCRIPT"
line=$1
read -ra COMP_WORDS <<<"$line"
[[ $line == *' ' ]] && COMP_WORDS+=("")
COMP_LINE=$line
COMP_POINT=${#line}
COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
COMPREPLY=()
_jobctl jobctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
printf '%s\n' "${COMPREPLY[@]}" | LC_ALL=C sort -u | sed '/^$/d'
EOF

complete_line() {
	PATH=$bindir:$PATH SCRIPT=$script BASH_COMPLETION=$BASH_COMPLETION \
	    bash "$tmp/complete.bash" "$1" 2>"$tmp/err"
}

# offers LINE WORD...: completing LINE offers every WORD.
offers() {
	line=$1
	shift
	got=$(complete_line "$line")
	missing=
	for w in "$@"; do
		printf '%s\n' "$got" | grep -qxF -- "$w" || missing="$missing $w"
	done
	if [ -z "$missing" ] && [ ! -s "$tmp/err" ]; then
		ok "'$line' offers $*"
	else
		bad "'$line': missing:${missing:- none}; got: $(echo $got)"
		sed 's/^/    /' "$tmp/err"
	fi
}

# exactly LINE WORD...: completing LINE offers exactly the WORDs.
exactly() {
	line=$1
	shift
	got=$(complete_line "$line" | tr '\n' ' ')
	want=$(printf '%s\n' "$@" | LC_ALL=C sort -u | sed '/^$/d' | tr '\n' ' ')
	if [ "$got" = "$want" ]; then
		ok "'$line' offers exactly: ${want:-nothing}"
	else
		bad "'$line' offers '$got', want '$want'"
		sed 's/^/    /' "$tmp/err"
	fi
}

if [ -r "$BASH_COMPLETION" ]; then
	echo "     (with $BASH_COMPLETION)"
else
	echo "     (bash-completion is not installed: stand-in helpers)"
fi

# --- static completions --------------------------------------------------
cmds=$("$JOBCTL" --help | sed -n '/^commands:/,/^$/p' |
    sed -n 's/^  \([a-z][a-z]*\).*/\1/p')
# shellcheck disable=SC2086
exactly "jobctl " $cmds
offers "jobctl -" -s --socket --json -h --help --version
offers "jobctl --json " $cmds
for cmd in $cmds; do
	opts=$("$JOBCTL" "$cmd" -h | grep -oE -- '(^| |\[)-{1,2}[A-Za-z][a-z-]*' |
	    tr -d ' [' | sort -u)
	# shellcheck disable=SC2086
	offers "jobctl $cmd -" -h $opts
done
exactly "jobctl list -S " queued running succeeded failed timed_out canceled
exactly "jobctl list -S t" timed_out
offers "jobctl submit -q x -- ech" echo
offers "jobctl submit -p 3 ech" echo
exactly "jobctl submit -p " ""

# --- against a jobd --------------------------------------------------------
sock=$tmp/jobd.sock
cat >"$tmp/jobd.conf" <<EOF
socket = "$sock";
status_listen = "";
state_dir = "$tmp/state";
allow_root_jobs = true;
shutdown_timeout = 0.0;
kill_grace = 0.5;
queues = (
  { name = "default"; workers = 2; },
  { name = "batch"; workers = 1; }
);
EOF
"$JOBD" -c "$tmp/jobd.conf" 2>"$tmp/jobd.log" &
jobd_pid=$!
for _ in $(seq 50); do
	"$JOBCTL" -s "$sock" ping >/dev/null 2>&1 && break
	sleep 0.1
done
if ! "$JOBCTL" -s "$sock" ping >/dev/null 2>&1; then
	bad "jobd did not start:"
	sed 's/^/    /' "$tmp/jobd.log"
else
	# One running, one queued (batch is paused), one finished.
	run=$("$JOBCTL" -s "$sock" submit -- sleep 30)
	"$JOBCTL" -s "$sock" pause batch
	queued=$("$JOBCTL" -s "$sock" submit -q batch -- true)
	done_id=$("$JOBCTL" -s "$sock" submit --wait -- true)
	exactly "jobctl -s $sock submit -q " batch default
	exactly "jobctl -s $sock pause " batch default
	exactly "jobctl -s $sock resume b" batch
	exactly "jobctl -s $sock join -q d" default
	exactly "jobctl -s $sock cancel " "$run" "$queued"
	exactly "jobctl -s $sock wait $run " "$run" "$queued"
	exactly "jobctl -s $sock get " "$run" "$queued" "$done_id"
	exactly "jobctl -s $sock get $run " ""
	JOBD_SOCKET=$sock exactly "jobctl pause " batch default
fi

start=$(date +%s)
JOBD_SOCKET=$tmp/nobody.sock exactly "jobctl pause " ""
if [ $(($(date +%s) - start)) -le 2 ]; then
	ok "no jobd: nothing, at once"
else
	bad "no jobd: completion took more than 2 s"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
