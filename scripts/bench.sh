#!/usr/bin/env bash
# jobd's benchmark (issues 3, 4, 5): throughput, memory and latency of jobd,
# the status endpoint's cost, the journal's acknowledged submits and its
# recovery time, each next to a baseline measured in the same run on the
# same machine, with the project's targets and a met / NOT MET verdict.  It is a benchmark, not a
# test: it exits 0 whatever the verdicts (non-zero only when it could not
# measure).  docs/benchmarks.md says what each line means.
#
#   scripts/bench.sh                  full run (about 2 minutes per round)
#   QUICK=1 scripts/bench.sh          small counts, well under a minute
#
# Environment:
#   N=2               workers / threads / slots / consumers (default: nproc)
#   M_EXEC=20000      /bin/true jobs for the raw loop, beanstalkd -x and jobd
#   M_SLEEP=200000    no-op jobs for beanstalkd and jobd's sleep-0 run
#   M_TSP=2000        task-spooler jobs (it forks a client per submit)
#   M_FILL=1000000    queued jobs for the memory figure
#   M_LAT=2000        rounds of the latency run
#   M_STATUS=50000    sleep-0 jobs per run of the status-polling pair (issue 4)
#   POLLERS=50        HTTP clients polling GET /status in that pair
#   M_ACK=50000       acknowledged submits per fsync mode (issue 5)
#   CONNS=64          client connections submitting them, each waiting for
#                     each answer (the judged line), then 4 in flight each
#   M_SYNC=2000       records of the write+fdatasync loop (issue 5 baseline)
#   M_RECOVER=1000000 queued jobs in the journal of the recovery run
#   REPEAT=1          rounds; every figure is the median over the rounds
#   ONLY="g1 g2"      run only these groups: exec tsp beanstalk sleep fill
#                     latency scale status acks compact recover (the rest
#                     show n/a)
#   BEANSTALK=unix    beanstalkd's transport: unix (socket in the temp dir,
#                     like jobd's) or tcp (loopback, first free port 11400+)
#   JOBD=path         the jobd to measure (default: `make -s`, then
#                     build/release/jobd)
#   FSYNC=off         the journal's fsync mode of the issue-3 and issue-4
#                     lines (the issue-5 lines set their own)
#   KEEP=1            keep the temp dir (configs, logs, and rounds.txt with
#                     every round's figures)
#   TSP=, BEANSTALKD= the baselines' programs (default: from PATH; set one
#                     empty to skip that baseline)
#
# Needs: bash, cc, make, and the Debian packages task-spooler and
# beanstalkd; as root, whatever is missing is installed with apt-get (the
# build packages through scripts/deps.sh).  A missing baseline is reported
# as n/a.  Every process the script starts is stopped on exit.
set -eu -o pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

QUICK=${QUICK:-0}
N=${N:-$(nproc)}
if [ "$QUICK" = 1 ]; then
	M_EXEC=${M_EXEC:-2000}
	M_SLEEP=${M_SLEEP:-20000}
	M_TSP=${M_TSP:-300}
	M_FILL=${M_FILL:-100000}
	M_LAT=${M_LAT:-500}
	M_STATUS=${M_STATUS:-20000}
	M_ACK=${M_ACK:-10000}
	M_SYNC=${M_SYNC:-500}
	M_RECOVER=${M_RECOVER:-100000}
else
	M_EXEC=${M_EXEC:-20000}
	M_SLEEP=${M_SLEEP:-200000}
	M_TSP=${M_TSP:-2000}
	M_FILL=${M_FILL:-1000000}
	M_LAT=${M_LAT:-2000}
	M_STATUS=${M_STATUS:-50000}
	M_ACK=${M_ACK:-50000}
	M_SYNC=${M_SYNC:-2000}
	M_RECOVER=${M_RECOVER:-1000000}
fi
POLLERS=${POLLERS:-50}
CONNS=${CONNS:-64}
REPEAT=${REPEAT:-1}
ONLY=${ONLY:-}	# e.g. "status acks": only those groups (see want below)
BEANSTALK=${BEANSTALK:-unix}
KEEP=${KEEP:-0}

# Targets (issue 3).
T_RAW=0.95	# jobd /bin/true jobs/s ≥ this × the raw spawn loop
T_TSP=3		# jobd /bin/true jobs/s ≥ this × task-spooler
T_BS=5		# jobd sleep-0 jobs/s ≥ this × beanstalkd put/reserve/delete
T_RSS=200	# bytes of RSS per queued job beyond its argv ≤ this
T_LAT=100	# p50 µs of submit → wait answer ≤ this
# Targets (issues 4 and 5).
T_STATUS=0.9	# sleep-0 jobs/s with POLLERS polling /status ≥ this × idle
T_GROUP=10	# acked submits/s, fsync always, CONNS clients ≥ this × 1 sync/record
T_RECOVER=3	# seconds from exec to a ping answer with M_RECOVER queued ≤ this

# The journal's fsync mode of the issue-3 lines (throughput, memory,
# latency): "off", as task-spooler and beanstalkd (no binlog) do not sync
# either.  The issue-5 lines set theirs explicitly.
FSYNC=${FSYNC:-off}

say() { printf 'bench: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }

for v in N M_EXEC M_SLEEP M_TSP M_FILL M_LAT M_STATUS POLLERS M_ACK CONNS \
    M_SYNC M_RECOVER REPEAT; do
	case ${!v} in
	''|*[!0-9]*|0) fail "$v must be a positive integer (got '${!v}')" ;;
	esac
done
case $BEANSTALK in unix|tcp) ;; *) fail "BEANSTALK is unix or tcp" ;; esac
case $FSYNC in always|batch|off) ;; *) fail "FSYNC is always, batch or off" ;; esac
[ "$M_ACK" -ge "$CONNS" ] || fail "M_ACK must be at least CONNS"

# --- packages ---------------------------------------------------------------

installed() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null |
	    grep -q "install ok installed"
}

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
	# Build packages: the project's own list (a no-op when all are there).
	sh scripts/deps.sh >&2 || fail "scripts/deps.sh failed"
	missing=""
	for p in task-spooler beanstalkd; do
		installed "$p" || missing="$missing $p"
	done
	if [ -n "$missing" ]; then
		say "installing:$missing"
		export DEBIAN_FRONTEND=noninteractive
		# shellcheck disable=SC2086
		apt-get install -y -qq --no-install-recommends $missing >&2 ||
		    { apt-get update -qq >&2 &&
		    apt-get install -y -qq --no-install-recommends $missing >&2; } ||
		    say "could not install$missing; those baselines are n/a"
	fi
fi
command -v cc >/dev/null || fail "no C compiler (cc); run as root or install gcc"
TSP=${TSP-$(command -v tsp || command -v ts || true)}
# Debian's `ts` may be moreutils' timestamper: only take one that knows -S.
if [ -n "$TSP" ] && ! "$TSP" -h 2>&1 | grep -q -- '-S \[num\]'; then
	TSP=""
fi
BEANSTALKD=${BEANSTALKD-$(command -v beanstalkd || true)}

# --- build ------------------------------------------------------------------

if [ -z "${JOBD:-}" ]; then
	say "building jobd (make -s)"
	make -s >&2 || fail "make failed (fix the build, or point JOBD= at a built jobd)"
	JOBD=$top/build/release/jobd
	JOBD_FROM="built from this tree"
	if head=$(git rev-parse --short HEAD 2>/dev/null); then
		JOBD_FROM="$JOBD_FROM at $head"
		git diff --quiet HEAD -- daemon ||
		    JOBD_FROM="$JOBD_FROM + uncommitted daemon/ changes"
	fi
else
	JOBD_FROM=$JOBD
fi
[ -x "$JOBD" ] || fail "$JOBD: not an executable"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/jobd-bench.XXXXXX")
PIDS=""		# every daemon we started, stopped by cleanup
TSP_SOCKETS=""	# every task-spooler server we started

# stop_pid PID [TENTHS]: SIGTERM, then SIGKILL after TENTHS/10 s (5 s).
stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null || return 0
	for i in $(seq "${2:-50}"); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317  # called through the trap
cleanup() {
	local pid s
	trap - EXIT INT TERM
	for pid in $PIDS; do
		stop_pid "$pid"
	done
	for s in $TSP_SOCKETS; do
		if [ -S "$s" ]; then
			TS_SOCKET=$s "$TSP" -K >/dev/null 2>&1 || true
		fi
	done
	if [ "$KEEP" = 1 ]; then
		say "kept $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$tmp/bin"
for c in rawspawn beanstalk jobd_submit statuspoll fsyncloop; do
	cc -O2 -std=c11 -Wall -Wextra -pthread -o "$tmp/bin/$c" \
	    "scripts/bench/$c.c" || fail "cannot compile scripts/bench/$c.c"
done
bin=$tmp/bin

# --- helpers ----------------------------------------------------------------

# val LINE KEY: the value of KEY=... in a helper's result line.
val() { sed -n "s/.*\\b$2=\\([^ ]*\\).*/\\1/p" <<<"$1"; }

now() { date +%s.%N; }

# Results: R_<name> holds one value per round.
add() { local n=R_$1; printf -v "$n" '%s %s' "${!n:-}" "$2"; }

median() {
	local n=R_$1
	[ -n "${!n:-}" ] || { echo n/a; return; }
	tr ' ' '\n' <<<"${!n}" | { grep -E '^[-+0-9.eE]+$' || true; } | sort -g |
	    awk '{v[NR] = $1} END {
		if (NR == 0) print "n/a"
		else print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
	    }'
}

# last NAME: this round's value of R_NAME.
last() { local n=R_$1; awk '{print $NF}' <<<"${!n:-n/a}"; }

# ratio A B: A/B, or n/a.
ratio() {
	awk -v a="$1" -v b="$2" 'BEGIN {
		if (a == "n/a" || b == "n/a" || a == "" || b == "" || b + 0 == 0)
			print "n/a";
		else printf "%.3f", a / b }'
}

# nth NAME I: round I's value of R_NAME.
nth() { local n=R_$1; awk -v i="$2" '{print $i}' <<<"${!n:-}"; }

# start_jobd NAME [FSYNC [STATUS_PORT [LOG_LEVEL]]]: a jobd with one queue
# "default" of N workers, its journal's fsync mode FSYNC (default $FSYNC),
# its status endpoint on 127.0.0.1:STATUS_PORT (default: none).  Fresh
# unless NAME was used before (then it replays that one's journal).
# Sets SOCK, JPID, and JSTART (just before the exec).
start_jobd() {
	local d=$tmp/$1 fsync=${2:-$FSYNC} port=${3:-} level=${4:-warning}
	local cap root_jobs="" listen=""
	cap=$(printf '%s\n' "$M_FILL" "$M_SLEEP" "$M_STATUS" "$M_ACK" \
	    "$M_RECOVER" | sort -n | tail -1)
	# As root, jobs run as their submitter, root included only if allowed.
	[ "$(id -u)" != 0 ] || root_jobs="allow_root_jobs = true;"
	[ -z "$port" ] || listen=127.0.0.1:$port
	mkdir -p "$d"
	cat >"$d/jobd.conf" <<-EOF
	socket = "$d/jobd.sock";
	socket_mode = "0600";
	status_listen = "$listen";
	state_dir = "$d/state";
	log_level = "$level";
	$root_jobs
	journal = { fsync = "$fsync"; };
	queues = ( { name = "default"; workers = $N; capacity = $((cap + 1000)); } );
	EOF
	"$JOBD" -c "$d/jobd.conf" --check-config >/dev/null ||
	    fail "jobd rejects $d/jobd.conf"
	JSTART=$(now)
	"$JOBD" -c "$d/jobd.conf" 2>>"$d/jobd.log" &
	JPID=$!
	PIDS="$PIDS $JPID"
	SOCK=$d/jobd.sock
}

# stop_jobd [TENTHS]: as stop_pid.
stop_jobd() {
	stop_pid "$JPID" "${1:-50}"
	PIDS=$(tr ' ' '\n' <<<"$PIDS" | grep -vx "$JPID" | tr '\n' ' ' || true)
}

# start_beanstalkd NAME: sets BADDR and BPID.
start_beanstalkd() {
	local d=$tmp/$1 port i
	mkdir -p "$d"
	if [ "$BEANSTALK" = unix ]; then
		"$BEANSTALKD" -l "unix:$d/bs.sock" 2>"$d/bs.log" &
		BPID=$!
		BADDR=unix:$d/bs.sock
		for i in $(seq 100); do
			[ -S "$d/bs.sock" ] && break
			sleep 0.05
		done
	else
		for port in $(seq 11400 11499); do
			"$BEANSTALKD" -l 127.0.0.1 -p "$port" 2>"$d/bs.log" &
			BPID=$!
			sleep 0.2
			kill -0 "$BPID" 2>/dev/null && break
			wait "$BPID" 2>/dev/null || true
		done
		BADDR=127.0.0.1:$port
	fi
	kill -0 "$BPID" 2>/dev/null || fail "beanstalkd did not start (see $d/bs.log)"
	PIDS="$PIDS $BPID"
}

stop_beanstalkd() {
	stop_pid "$BPID"
	PIDS=$(tr ' ' '\n' <<<"$PIDS" | grep -vx "$BPID" | tr '\n' ' ' || true)
}

# --- the measurements ---------------------------------------------------------

# Each run_* appends one value per round to its R_* list.

run_raw() {
	local r
	r=$("$bin/rawspawn" "$N" "$M_EXEC") ||
	    fail "rawspawn failed (rerun with KEEP=1 to keep its logs)"
	add raw "$(val "$r" rate)"
}

run_raw_recipe() {
	local r
	r=$("$bin/rawspawn" -r "$N" "$M_EXEC") ||
	    fail "rawspawn failed (rerun with KEEP=1 to keep its logs)"
	add raw_recipe "$(val "$r" rate)"
}

# task-spooler: its own server (TS_SOCKET, TMPDIR) with N slots; M_TSP
# submits of `tsp -n /bin/true` from a shell loop (one tsp client forked per
# job, as its users submit); the clock runs from the first submit until the
# list shows no job that is not finished.
run_tsp() {
	local d=$tmp/tsp.$1 r
	[ -n "$TSP" ] || return 0
	mkdir -p "$d"
	TSP_SOCKETS="$TSP_SOCKETS $d/sock"
	r=$(
		export TS_SOCKET=$d/sock TMPDIR=$d TS_MAXFINISHED=$((M_TSP + 10))
		pending() {
			"$TSP" -l | awk 'NR > 1 && $2 != "finished" &&
			    $2 != "skipped" {n++} END {exit n == 0}'
		}
		"$TSP" -S "$N" >/dev/null
		t0=$(now)
		for ((i = 0; i < M_TSP; i++)); do
			"$TSP" -n /bin/true >/dev/null
		done
		while pending; do
			sleep 0.005
		done
		t1=$(now)
		n=$("$TSP" -l | awk 'NR > 1 && $2 == "finished" {n++}
		    END {print n + 0}')
		"$TSP" -K >/dev/null 2>&1 || true
		awk -v n="$n" -v a="$t0" -v b="$t1" \
		    'BEGIN {printf "finished=%d rate=%.1f\n", n, n / (b - a)}'
	)
	[ "$(val "$r" finished)" -ge "$M_TSP" ] ||
	    say "task-spooler: only $(val "$r" finished) of $M_TSP jobs finished"
	add tsp "$(val "$r" rate)"
}

run_beanstalk() {
	local r
	[ -n "$BEANSTALKD" ] || return 0
	start_beanstalkd "bs.$1"
	r=$("$bin/beanstalk" "$BADDR" "$N" "$M_SLEEP") ||
	    fail "beanstalk failed (rerun with KEEP=1 to keep its logs)"
	add bs "$(val "$r" rate)"
	stop_beanstalkd
}

run_beanstalk_spawn() {
	local r
	[ -n "$BEANSTALKD" ] || return 0
	start_beanstalkd "bsx.$1"
	r=$("$bin/beanstalk" -x "$BADDR" "$N" "$M_EXEC") ||
	    fail "beanstalk failed (rerun with KEEP=1 to keep its logs)"
	add bsx "$(val "$r" rate)"
	stop_beanstalkd
}

run_jobd_true() {
	local r
	start_jobd "true.$1"
	r=$("$bin/jobd_submit" "$SOCK" throughput true "$M_EXEC") ||
	    fail "jobd_submit failed (rerun with KEEP=1 to keep its logs)"
	add true "$(val "$r" rate)"
	stop_jobd
}

run_jobd_sleep() {
	local r
	start_jobd "sleep.$1"
	r=$("$bin/jobd_submit" "$SOCK" throughput sleep "$M_SLEEP") ||
	    fail "jobd_submit failed (rerun with KEEP=1 to keep its logs)"
	add sleep "$(val "$r" rate)"
	add sleep_ack "$(awk -v n="$M_SLEEP" -v s="$(val "$r" acked_secs)" \
	    'BEGIN {printf "%.1f", n / s}')"
	stop_jobd
}

run_fill() {
	local r
	start_jobd "fill.$1"
	r=$("$bin/jobd_submit" "$SOCK" fill true "$M_FILL") ||
	    fail "jobd_submit failed (rerun with KEEP=1 to keep its logs)"
	add rss "$(val "$r" bytes_per_job)"
	ARGV_BYTES=$(val "$r" argv_bytes)
	stop_jobd
	start_jobd "fillsleep.$1"
	r=$("$bin/jobd_submit" "$SOCK" fill sleep "$M_FILL") ||
	    fail "jobd_submit failed (rerun with KEEP=1 to keep its logs)"
	add rss_sleep "$(val "$r" bytes_per_job)"
	stop_jobd
}

run_latency() {
	local r k
	start_jobd "lat.$1"
	r=$("$bin/jobd_submit" "$SOCK" latency "$M_LAT") ||
	    fail "jobd_submit failed (rerun with KEEP=1 to keep its logs)"
	for k in ping_p50 ping_p99 wait_p50 wait_p99 join_p50 join_p99; do
		add "$k" "$(val "$r" "${k}_us")"
	done
	stop_jobd
}

# A loopback TCP port nobody answers on (for a status endpoint).
free_port() {
	local p
	for _ in $(seq 100); do
		p=$((20000 + RANDOM % 20000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
	fail "no free loopback port"
}

# Issue 4: sleep-0 throughput with the status endpoint listening but idle,
# then (a fresh jobd) with POLLERS clients polling GET /status without
# pause from before the first submit to after the join.  The poller is
# bounded in time whatever happens (statuspoll's SECONDS).
run_status() {
	local r p port d
	port=$(free_port)
	start_jobd "status0.$1" "$FSYNC" "$port"
	r=$("$bin/jobd_submit" "$SOCK" throughput sleep "$M_STATUS") ||
	    fail "jobd_submit failed (rerun with KEEP=1 to keep its logs)"
	add status_idle "$(val "$r" rate)"
	stop_jobd
	port=$(free_port)
	d=$tmp/status50.$1
	start_jobd "status50.$1" "$FSYNC" "$port"
	"$bin/jobd_submit" "$SOCK" up >/dev/null ||
	    fail "jobd did not answer (see $d/jobd.log)"
	"$bin/statuspoll" 127.0.0.1 "$port" "$POLLERS" 600 >"$d/poll.out" \
	    2>"$d/poll.err" &
	p=$!
	PIDS="$PIDS $p"
	for _ in $(seq 1000); do
		grep -q ready "$d/poll.out" 2>/dev/null && break
		kill -0 "$p" 2>/dev/null || fail "statuspoll: $(cat "$d/poll.err")"
		sleep 0.01
	done
	r=$("$bin/jobd_submit" "$SOCK" throughput sleep "$M_STATUS") ||
	    fail "jobd_submit failed (rerun with KEEP=1 to keep its logs)"
	kill -TERM "$p"
	wait "$p" || true
	PIDS=$(tr ' ' '\n' <<<"$PIDS" | grep -vx "$p" | tr '\n' ' ' || true)
	add status_polled "$(val "$r" rate)"
	r=$(tail -1 "$d/poll.out")
	add status_gets "$(val "$r" rate)"
	add status_cpu "$(awk -v c="$(val "$r" cpu_s)" -v s="$(val "$r" secs)" \
	    'BEGIN {if (s > 0) printf "%.2f", c / s}')"
	stop_jobd
}

# Issue 5: the one-write+fdatasync-per-record loop in a jobd's state_dir
# (same disk, same file system), then that jobd's acknowledged submits
# with fsync = always and CONNS clients, then a fresh jobd's with fsync =
# off.
run_acks() {
	local r d=$tmp/acks.$1
	start_jobd "acks.$1" always
	"$bin/jobd_submit" "$SOCK" up >/dev/null ||
	    fail "jobd did not answer (see $d/jobd.log)"
	r=$("$bin/fsyncloop" "$d/state" "$M_SYNC") || fail "fsyncloop failed"
	add syncloop "$(val "$r" rate)"
	FS_TYPE=$(df --output=fstype "$d/state" 2>/dev/null | tail -1 || echo '?')
	r=$("$bin/jobd_submit" "$SOCK" acks "$CONNS" 1 "$M_ACK") ||
	    fail "jobd_submit failed (rerun with KEEP=1 to keep its logs)"
	add ack_always "$(val "$r" rate)"
	add ack_per_sync "$(val "$r" per_sync)"
	r=$("$bin/jobd_submit" "$SOCK" acks "$CONNS" 4 "$M_ACK") ||
	    fail "jobd_submit failed (rerun with KEEP=1 to keep its logs)"
	add ack_always4 "$(val "$r" rate)"
	add ack_per_sync4 "$(val "$r" per_sync)"
	stop_jobd
	start_jobd "acksoff.$1" off
	r=$("$bin/jobd_submit" "$SOCK" acks "$CONNS" 1 "$M_ACK") ||
	    fail "jobd_submit failed (rerun with KEEP=1 to keep its logs)"
	add ack_off "$(val "$r" rate)"
	stop_jobd
}

# Issue 5: M_RECOVER /bin/true jobs into a paused queue (fsync = off for
# the fill), SIGTERM (queued jobs stay in the journal), then the same
# state_dir again: seconds from exec until a ping is answered, and the
# replay alone as jobd logs it.
run_recover() {
	local r t1 d=$tmp/recover.$1
	start_jobd "recover.$1" off
	"$bin/jobd_submit" "$SOCK" fill true "$M_RECOVER" >/dev/null ||
	    fail "jobd_submit failed (rerun with KEEP=1 to keep its logs)"
	stop_jobd 1200
	JOURNAL_MB=$(du -sm "$d/state/journal" | awk '{print $1}')
	start_jobd "recover.$1" off "" info
	r=$("$bin/jobd_submit" "$SOCK" up) ||
	    fail "jobd did not answer (see $d/jobd.log)"
	t1=$(now)
	[ "$(val "$r" queued)" = "$M_RECOVER" ] ||
	    fail "recovered $(val "$r" queued) queued jobs, not $M_RECOVER (see $d/jobd.log)"
	add recover "$(awk -v a="$JSTART" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')"
	add replay "$(sed -n 's/.*journal: replayed [0-9]* records in \([0-9.]*\) s.*/\1/p' \
	    "$d/jobd.log" | tail -1)"
	stop_jobd 1200
}

ARGV_BYTES=26	# set again from the fill run
FS_TYPE="?"
JOURNAL_MB="?"
say "N=$N M_EXEC=$M_EXEC M_SLEEP=$M_SLEEP M_TSP=$M_TSP M_FILL=$M_FILL M_LAT=$M_LAT M_STATUS=$M_STATUS POLLERS=$POLLERS M_ACK=$M_ACK CONNS=$CONNS M_SYNC=$M_SYNC M_RECOVER=$M_RECOVER REPEAT=$REPEAT (temp dir $tmp)"
# A round runs each job runner right after its baseline, and the ratios
# that the targets judge are taken within the round (paired), so a drift
# in the machine's speed between rounds does not skew them.
# want GROUP: whether ONLY selects this group (everything when unset).
want() { [ -z "$ONLY" ] || [[ " $ONLY " == *" $1 "* ]]; }

for ((round = 1; round <= REPEAT; round++)); do
	if want exec; then
		say "round $round/$REPEAT: raw spawn loop";	run_raw
		say "round $round/$REPEAT: jobd /bin/true";	run_jobd_true "$round"
		add ratio_raw "$(ratio "$(last true)" "$(last raw)")"
		say "round $round/$REPEAT: raw spawn, jobd's recipe"; run_raw_recipe
	fi
	if want tsp; then
		want exec || { say "round $round/$REPEAT: jobd /bin/true"; run_jobd_true "$round"; }
		say "round $round/$REPEAT: task-spooler";	run_tsp "$round"
		add ratio_tsp "$(ratio "$(last true)" "$(last tsp)")"
	fi
	if want sleep; then
		say "round $round/$REPEAT: beanstalkd";		run_beanstalk "$round"
		say "round $round/$REPEAT: jobd sleep 0";	run_jobd_sleep "$round"
		add ratio_bs "$(ratio "$(last sleep)" "$(last bs)")"
	fi
	if want beanstalk; then
		say "round $round/$REPEAT: beanstalkd, spawning"; run_beanstalk_spawn "$round"
	fi
	if want fill; then
		say "round $round/$REPEAT: jobd memory";	run_fill "$round"
	fi
	if want latency; then
		say "round $round/$REPEAT: jobd latency";	run_latency "$round"
	fi
	if want status; then
		say "round $round/$REPEAT: jobd sleep 0, /status idle and polled"
		run_status "$round"
		add ratio_status "$(ratio "$(last status_polled)" "$(last status_idle)")"
	fi
	if want acks; then
		say "round $round/$REPEAT: fdatasync loop, jobd acked submits"
		run_acks "$round"
		add ratio_group "$(ratio "$(last ack_always)" "$(last syncloop)")"
		add ratio_always_off "$(ratio "$(last ack_always)" "$(last ack_off)")"
		add ratio_group4 "$(ratio "$(last ack_always4)" "$(last syncloop)")"
	fi
	if want recover; then
		say "round $round/$REPEAT: jobd journal recovery"; run_recover "$round"
	fi
done

# Every round's figures, for KEEP=1.
for v in ${!R_@}; do
	printf '%s=%s\n' "${v#R_}" "${!v}"
done >"$tmp/rounds.txt"

# --- the table ----------------------------------------------------------------

# verdict VALUE OP LIMIT: met / NOT MET / n/a (OP is ge or le).
verdict() {
	awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
		if (v == "n/a") { print "n/a"; exit }
		ok = (op == "ge") ? (v + 0 >= t + 0) : (v + 0 <= t + 0)
		print ok ? "met" : "NOT MET" }'
}

# fmt VALUE DECIMALS
fmt() {
	awk -v v="$1" -v d="$2" 'BEGIN {
		if (v == "n/a" || v == "") print "n/a"; else printf "%.*f", d, v }'
}

# spr NAME DECIMALS: "[min-max]" over the rounds, empty for one round.
spr() {
	local n=R_$1
	[ "$REPEAT" -gt 1 ] && [ -n "${!n:-}" ] || return 0
	tr ' ' '\n' <<<"${!n}" | { grep -E '^[-+0-9.eE]+$' || true; } |
	    sort -g | awk -v d="$2" '
	    NR == 1 {lo = $1} {hi = $1}
	    END {if (NR > 0) printf "[%.*f-%.*f]", d, lo, d, hi}'
}

# row LABEL NAME DECIMALS UNIT [OP LIMIT]: one figure (the median of R_NAME)
# and, with OP (ge or le) and LIMIT, its target and verdict.
row() {
	local v t=""
	v=$(median "$2")
	if [ $# -ge 6 ]; then
		t="$([ "$5" = ge ] && echo '>=' || echo '<=') $6  $(verdict "$v" "$5" "$6")"
	fi
	printf '%-48s %10s %-19s %-13s %s\n' "$1" "$(fmt "$v" "$3")" \
	    "$(spr "$2" "$3")" "$4" "$t" | sed 's/ *$//'
}

# Derived per-round figures.
for ((i = 1; i <= REPEAT; i++)); do
	add recipe_ratio "$(ratio "$(nth raw_recipe "$i")" "$(nth raw "$i")")"
	[ -z "${R_bsx:-}" ] ||
	    add bsx_ratio "$(ratio "$(nth bsx "$i")" "$(nth raw "$i")")"
	add rss_beyond "$(awk -v r="$(nth rss "$i")" -v a="$ARGV_BYTES" \
	    'BEGIN {if (r == "" || r == "n/a") print "n/a"
		else printf "%.1f", r - a}')"
done

line='------------------------------------------------'
cat <<EOF

jobd benchmark, $(date -u +%Y-%m-%dT%H:%MZ), Linux $(uname -r), $(nproc) CPUs
$("$JOBD" --version 2>&1 | head -1) ($JOBD_FROM)
N=$N workers; M_EXEC=$M_EXEC M_SLEEP=$M_SLEEP M_TSP=$M_TSP M_FILL=$M_FILL M_LAT=$M_LAT
M_STATUS=$M_STATUS POLLERS=$POLLERS M_ACK=$M_ACK CONNS=$CONNS M_SYNC=$M_SYNC M_RECOVER=$M_RECOVER
median of $REPEAT round(s) [min-max]; beanstalkd over $BEANSTALK
journal fsync = "$FSYNC" for the issue-3 and issue-4 lines; state_dir on $FS_TYPE; load average $(cut -d' ' -f1-3 /proc/loadavg)

EOF
printf '%-48s %10s %-19s %-13s %s\n' "measure" "median" "[min-max]" "unit" \
    "target  verdict" "$line" "${line:0:10}" "${line:0:19}" "${line:0:13}" \
    "${line:0:16}"
row "raw posix_spawn+waitpid loop, /bin/true" raw 0 "jobs/s"
row "  with jobd's spawn recipe (diagnostic), / raw" recipe_ratio 2 "x"
row "task-spooler -S $N, /bin/true" tsp 0 "jobs/s"
row "beanstalkd put -> reserve+delete (no-op)" bs 0 "jobs/s"
row "beanstalkd, consumers spawn /bin/true, / raw" bsx_ratio 2 "x"
row "jobd /bin/true jobs" true 0 "jobs/s"
row "  / raw spawn loop (same round)" ratio_raw 2 "x" ge "$T_RAW"
row "  / task-spooler (same round)" ratio_tsp 2 "x" ge "$T_TSP"
row "jobd sleep-0 jobs" sleep 0 "jobs/s"
row "  / beanstalkd no-op pipeline (same round)" ratio_bs 2 "x" ge "$T_BS"
row "  (its submit answers alone came at)" sleep_ack 0 "submits/s"
row "jobd RSS per queued /bin/true job" rss 1 "bytes/job"
row "  beyond its argv ($ARGV_BYTES bytes)" rss_beyond 1 "bytes/job" le "$T_RSS"
row "  cross-check: per queued sleep-0 job (no argv)" rss_sleep 1 "bytes/job"
row "jobd sleep-0 submit -> wait answer, p50" wait_p50 1 "us (upper bd)" le "$T_LAT"
row "  same, p99" wait_p99 1 "us (upper bd)"
row "  submit+join in one write, p50" join_p50 1 "us (upper bd)"
row "  submit+join in one write, p99" join_p99 1 "us (upper bd)"
row "  ping round trip, p50 (the floor)" ping_p50 1 "us"
row "  ping round trip, p99" ping_p99 1 "us"
row "jobd sleep-0 jobs, /status listening, idle" status_idle 0 "jobs/s"
row "  with $POLLERS clients polling GET /status" status_polled 0 "jobs/s"
row "  / idle (same round)" ratio_status 2 "x" ge "$T_STATUS"
row "  (GET /status answers meanwhile)" status_gets 0 "answers/s"
row "  (CPUs the pollers themselves used)" status_cpu 2 "CPUs"
row "write+fdatasync per 100-byte record, 1 writer" syncloop 0 "records/s"
row "jobd acked submits, fsync always, $CONNS conns" ack_always 0 "submits/s"
row "  / one-sync-per-record loop (same round)" ratio_group 2 "x" ge "$T_GROUP"
row "  (submits per fdatasync)" ack_per_sync 1 "records"
row "jobd acked submits, fsync off, $CONNS conns" ack_off 0 "submits/s"
row "  always / off (same round)" ratio_always_off 2 "x"
row "jobd acked, fsync always, 4 in flight per conn" ack_always4 0 "submits/s"
row "  / one-sync-per-record loop (diagnostic)" ratio_group4 2 "x"
row "  (submits per fdatasync)" ack_per_sync4 1 "records"
row "jobd restart, $M_RECOVER queued: exec -> ping" recover 2 "s" le "$T_RECOVER"
row "  journal replay alone (jobd's log line)" replay 2 "s"
cat <<EOF

Ratios are taken within each round (the job runner right after its
baseline), then the median over the rounds.  Latency rows are client-side
round trips (jobd stamps started_at in ms only): an UPPER BOUND on
submit -> start.  RSS: VmRSS growth over $M_FILL jobs held in a paused
queue, divided by the count; its argv = "/bin/true\\0" and its 2-pointer
vector (the bytes it needs, not what the allocator rounds them up to).
Acked submits: each of $CONNS connections has one submit in flight into a
paused queue (the judged line; then 4 each, a diagnostic); the loop is one
writer doing write+fdatasync per record in the always-jobd's state_dir.
Recovery: a journal of $JOURNAL_MB MB (filled with fsync off, stopped with
SIGTERM), timed from exec to a ping answer.
EOF
exit 0
