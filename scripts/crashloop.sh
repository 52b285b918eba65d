#!/usr/bin/env bash
# crashloop: a stress test of jobd's journal.  jobd (journal.fsync =
# "always") runs on a temp dir while a few client loops submit jobs; the
# script SIGKILLs the daemon at random moments and restarts it, CYCLES times,
# then checks what the journal promised:
#
#   - every acknowledged submit is there (get) with its argv, and no id was
#     acknowledged twice (ids are never reused);
#   - every job ends succeeded (each one is `echo TOKEN >> ran.txt; sleep D`);
#   - a job seen finished before a kill never runs again afterwards (a final
#     state is visible only once durable, so replay must not rerun it);
#   - every succeeded job ran at least once; jobd restarts every time, exits 0
#     on SIGTERM at the end, and its log has no sanitizer report.
#
# What cannot be checked from outside: exactly which jobs were running at
# each crash.  A job may legitimately run twice (or more) when it was running
# at a crash (on_crash = "requeue"); such jobs are counted as ran-twice and
# accepted unless they had been seen finished before the kill.  Jobs whose
# run count exceeds their attempts are reported (the start record is not
# waited for before the spawn, so a crash right after a spawn reruns a job
# with attempts 1) but not failed.
#
#   scripts/crashloop.sh                 20 cycles
#   CYCLES=3 scripts/crashloop.sh        a short run (CI)
#
# Environment:
#   CYCLES=20        kill/restart cycles
#   CLIENTS=3        concurrent submitters (one connection each, pipelining
#                    WINDOW submits at a time)
#   WINDOW=3         submits in flight per client
#   UP_MIN=0.3 UP_MAX=1.5   seconds the daemon runs before each kill
#   WORKERS=4        workers of the one queue
#   SEED=            random seed (default: random; printed)
#   JOBD= JOBCTL=    the binaries (default build/release/ in this tree)
#   VARIANT=release  asan/tsan: waits stretched 3x
#   KEEP=1           keep the temp dir (logs, acked-*.txt, ran.txt)
#
# Exit status: 0 when every check passed, 1 when one failed (an acknowledged
# job missing included), 2 when the run could not be set up.  The last line
# is "N passed, M failed".
set -u -o pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
JOBD=${JOBD:-$top/build/release/jobd}
JOBCTL=${JOBCTL:-$top/build/release/jobctl}
CYCLES=${CYCLES:-20}
CLIENTS=${CLIENTS:-3}
WINDOW=${WINDOW:-3}
UP_MIN=${UP_MIN:-0.3}
UP_MAX=${UP_MAX:-1.5}
WORKERS=${WORKERS:-4}
SEED=${SEED:-$(( (RANDOM << 15) | RANDOM ))}
VARIANT=${VARIANT:-release}
KEEP=${KEEP:-0}
case $VARIANT in release) SCALE=1 ;; *) SCALE=3 ;; esac
PY=${PYTHON:-python3}

for b in "$JOBD" "$JOBCTL"; do
	[ -x "$b" ] || { echo "crashloop: $b is not built" >&2; exit 2; }
done
command -v "$PY" >/dev/null || { echo "crashloop: needs $PY" >&2; exit 2; }

tmp=$(mktemp -d /tmp/jobd-crashloop.XXXXXX) || exit 2
sock=$tmp/jobd.sock
conf=$tmp/jobd.conf
log=$tmp/jobd.log
ran=$tmp/ran.txt
stop=$tmp/stop
: >"$ran"
jobd_pid=
sub_pids=()

passed=0
failed=0
pass() { passed=$((passed + 1)); echo "ok:   $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }

cleanup() {
	touch "$stop"
	[ -n "$jobd_pid" ] && kill -KILL "$jobd_pid" 2>/dev/null
	for p in "${sub_pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	if [ "$KEEP" = 1 ]; then
		echo "crashloop: kept $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 2' INT TERM

{
	echo "socket = \"$sock\";"
	echo "state_dir = \"$tmp/state\";"
	echo 'status_listen = "";'
	echo 'keep_finished = 10000000;'
	echo 'kill_grace = 0.5;'
	echo "queues = ( { name = \"default\"; workers = $WORKERS; policy = \"fifo\"; on_crash = \"requeue\"; } );"
	echo 'journal = { fsync = "always"; };'
} >"$conf"
if [ "$(id -u)" = 0 ]; then
	# jobd refuses uid-0 submits unless told otherwise (SPEC §5)
	echo 'allow_root_jobs = true;' >>"$conf"
	"$JOBD" --check-config -c "$conf" >/dev/null 2>&1 ||
	    sed -i '/allow_root_jobs/d' "$conf"
fi
if ! out=$("$JOBD" --check-config -c "$conf" 2>&1); then
	echo "crashloop: config refused: $out" >&2
	exit 2
fi

# --- the client loop: submits, records what was acknowledged ------------
cat >"$tmp/submit.py" <<'PY'
import json, os, random, socket, sys, time

sock_path, idx, outdir, ran, stop = sys.argv[1:6]
window = int(os.environ.get("WINDOW", "3"))
rng = random.Random(f"{os.environ.get('SEED', '0')}-{idx}")
# each job says it ran, then occupies a worker for a while
script = 'echo "$1" >> "$2"; sleep "$3"'
durs = ["0"] * 8 + ["0.05", "0.3"]
acked = open(f"{outdir}/acked-{idx}.txt", "a", buffering=1)
unknown = open(f"{outdir}/unknown-{idx}.txt", "a", buffering=1)
refused = open(f"{outdir}/refused-{idx}.txt", "a", buffering=1)
n = 0


def connect():
    while not os.path.exists(stop):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(60)
        try:
            s.connect(sock_path)
            return s
        except OSError:
            s.close()
            time.sleep(0.03)
    return None


while not os.path.exists(stop):
    s = connect()
    if s is None:
        break
    f = s.makefile("rb")
    batch, answered = [], 0
    try:
        while not os.path.exists(stop):
            batch, answered = [], 0
            for _ in range(window):
                n += 1
                token = f"c{idx}-{n}"
                argv = ["sh", "-c", script, "crashloop", token, ran,
                        rng.choice(durs)]
                batch.append((token, argv))
            s.sendall(b"".join(json.dumps({"op": "submit", "argv": a}).encode()
                               + b"\n" for _, a in batch))
            for token, argv in batch:
                line = f.readline()
                if not line:
                    raise ConnectionError("EOF")
                r = json.loads(line)
                if r.get("ok") is True:
                    acked.write(f"{r['id']}\t{token}\t{json.dumps(argv)}\n")
                else:
                    refused.write(f"{token}\t{json.dumps(r)}\n")
                answered += 1
            time.sleep(rng.random() * 0.1)
    except (OSError, ConnectionError, ValueError):
        pass
    finally:
        # sent but never answered: the job may or may not exist
        for token, _ in batch[answered:]:
            unknown.write(token + "\n")
        try:
            s.close()
        except OSError:
            pass
PY

# --- observe / check against the daemon ---------------------------------
cat >"$tmp/check.py" <<'PY'
import collections, glob, json, os, socket, sys

mode, sock_path, outdir, ran = sys.argv[1:5]


class Conn:
    def __init__(self):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(120)
        self.s.connect(sock_path)
        self.f = self.s.makefile("rb")

    def call(self, obj):
        self.s.sendall(json.dumps(obj).encode() + b"\n")
        return json.loads(self.f.readline())

    def many(self, objs, chunk=500):
        out = []
        for i in range(0, len(objs), chunk):
            part = objs[i:i + chunk]
            self.s.sendall(b"".join(json.dumps(o).encode() + b"\n" for o in part))
            out += [json.loads(self.f.readline()) for _ in part]
        return out


def counts():
    with open(ran) as f:
        return collections.Counter(l.strip() for l in f if l.strip())


def token_of(job):
    a = job.get("argv") or []
    return a[4] if len(a) > 4 and a[3] == "crashloop" else None


def all_jobs(c):
    jobs = c.call({"op": "list", "limit": 10000})["jobs"]
    if len(jobs) == 10000:
        print("note: list capped at 10000 jobs; fewer unacknowledged jobs seen")
    return jobs


if mode == "observe":
    # Jobs seen finished now, and how often each had run by then: after a
    # kill they must not run again.
    cycle = sys.argv[5]
    try:
        c = Conn()
        jobs = c.call({"op": "list", "state": "succeeded", "limit": 10000})["jobs"]
    except (OSError, ValueError):
        sys.exit(0)
    cnt = counts()                  # read after the list: includes every run
    seen = {}
    for j in jobs:
        t = token_of(j)
        if t is not None:
            seen[t] = cnt.get(t, 0)
    with open(f"{outdir}/observe-{cycle}.json", "w") as f:
        json.dump(seen, f)
    sys.exit(0)

# mode == "check" (label in argv[5]): one line per check, "PASS|FAIL text"
label = sys.argv[5]
acked, by_id_tokens = {}, collections.defaultdict(set)
for p in sorted(glob.glob(f"{outdir}/acked-*.txt")):
    with open(p) as f:
        for line in f:
            jid, token, argv = line.rstrip("\n").split("\t")
            acked[token] = (int(jid), json.loads(argv))
            by_id_tokens[int(jid)].add(token)
unknown = set()
for p in glob.glob(f"{outdir}/unknown-*.txt"):
    with open(p) as f:
        unknown |= {l.strip() for l in f if l.strip()}
refused = set()
for p in glob.glob(f"{outdir}/refused-*.txt"):
    with open(p) as f:
        refused |= {l.split("\t")[0] for l in f if l.strip()}

c = Conn()
ids = sorted({jid for jid, _ in acked.values()})
recs = {}
for jid, r in zip(ids, c.many([{"op": "get", "id": j} for j in ids])):
    if r.get("ok"):
        recs[jid] = r["job"]
present = [t for t, (jid, _) in acked.items() if jid in recs]
missing = [t for t, (jid, _) in acked.items() if jid not in recs]
wrong = [t for t, (jid, argv) in acked.items()
         if jid in recs and (recs[jid].get("argv") != argv
                             or token_of(recs[jid]) != t)]
reused = {j: sorted(ts) for j, ts in by_id_tokens.items() if len(ts) > 1}
cnt = counts()
states = collections.Counter(recs[j]["state"] for j in recs)
not_ok = [t for t in present if recs[acked[t][0]]["state"] != "succeeded"]
never_ran = [t for t in present
             if recs[acked[t][0]]["state"] == "succeeded" and cnt.get(t, 0) == 0]
twice = sorted(t for t in present if cnt.get(t, 0) >= 2)
over_attempts = [t for t in twice if cnt[t] > recs[acked[t][0]]["attempts"]]
rerun_after_final = []
for p in sorted(glob.glob(f"{outdir}/observe-*.json")):
    with open(p) as f:
        seen = json.load(f)
    for t, c_then in seen.items():
        if cnt.get(t, 0) > c_then:
            rerun_after_final.append(f"{t} (ran {c_then}x when seen finished in "
                                     f"{os.path.basename(p)}, {cnt[t]}x now)")
observed = len(glob.glob(f"{outdir}/observe-*.json"))
jobs = all_jobs(c)
tokens_present = {token_of(j) for j in jobs}
unacked_present = sorted(t for t in unknown if t in tokens_present)
sent = set(acked) | unknown
# a job nobody submitted, or one whose submit was refused
phantom = sorted(t for t in tokens_present if t is not None and t not in sent)
refused_ran = sorted(t for t in refused if t in cnt)

print(f"INFO [{label}] acknowledged {len(acked)}, present {len(present)}, "
      f"missing {len(missing)}, ran-twice {len(twice)} "
      f"(of which ran more often than attempts says: {len(over_attempts)}), "
      f"unacknowledged submits {len(unknown)} (of which accepted anyway: "
      f"{len(unacked_present)}), refused {len(refused)}, "
      f"states {dict(states)}, observations {observed}")


def check(ok, text, examples=()):
    ex = f": {list(examples)[:5]}" if not ok and examples else ""
    print(f"{'PASS' if ok else 'FAIL'} [{label}] {text}{ex}")


check(not missing, f"every acknowledged job is present ({len(missing)} missing)",
      missing)
check(not wrong, f"every acknowledged job has its argv ({len(wrong)} differ)",
      wrong)
check(not reused, f"no id acknowledged for two submits ({len(reused)})",
      reused.items())
check(not not_ok, f"every job succeeded ({len(not_ok)} did not)",
      [(t, recs[acked[t][0]]["state"], recs[acked[t][0]].get("error"))
       for t in not_ok])
check(not never_ran, f"every succeeded job ran ({len(never_ran)} never did)",
      never_ran)
check(not rerun_after_final, "no job ran again after it was seen finished "
      f"({len(rerun_after_final)})", rerun_after_final)
check(not phantom, "no job exists that was refused or never submitted "
      f"({len(phantom)})", phantom)
check(not refused_ran, f"no refused submit ran ({len(refused_ran)})",
      refused_ran)
PY

start_jobd() {
	"$JOBD" -c "$conf" >>"$log" 2>&1 &
	jobd_pid=$!
	local i
	for ((i = 0; i < 200 * SCALE; i++)); do
		if ! kill -0 "$jobd_pid" 2>/dev/null; then
			wait "$jobd_pid"
			echo "crashloop: jobd exited with $? at start:" >&2
			tail -n 20 "$log" >&2
			jobd_pid=
			return 1
		fi
		"$JOBCTL" -s "$sock" ping >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	echo "crashloop: jobd did not answer ping" >&2
	tail -n 20 "$log" >&2
	return 1
}

rand_up() {	# a random float in [UP_MIN, UP_MAX]
	"$PY" -c "import random,sys; r=random.Random(int(sys.argv[1])); \
print(round(r.uniform(float(sys.argv[2]), float(sys.argv[3])) * $SCALE, 3))" \
	    "$1" "$UP_MIN" "$UP_MAX"
}

echo "crashloop: $CYCLES cycles, $CLIENTS clients, seed $SEED, dir $tmp"
export SEED WINDOW
start_jobd || { fail "jobd starts"; echo "$passed passed, $failed failed"; exit 1; }
for ((k = 0; k < CLIENTS; k++)); do
	"$PY" "$tmp/submit.py" "$sock" "$k" "$tmp" "$ran" "$stop" &
	sub_pids+=($!)
done

restarts_ok=1
for ((cycle = 1; cycle <= CYCLES; cycle++)); do
	up=$(rand_up "$((SEED + cycle))")
	sleep "$up"
	"$PY" "$tmp/check.py" observe "$sock" "$tmp" "$ran" "$cycle"
	# a little more after the observation, so the kill lands anywhere
	sleep "0.0$((RANDOM % 10))"
	kill -KILL "$jobd_pid"
	wait "$jobd_pid" 2>/dev/null
	jobd_pid=
	# orphaned jobs (the daemon's SIGKILL does not reach them) write their
	# line within milliseconds; let them, so later counts are stable
	sleep 0.2
	if ! start_jobd; then
		restarts_ok=0
		fail "jobd restarts after kill -9 (cycle $cycle)"
		break
	fi
	printf 'cycle %d/%d: up %ss, %s acknowledged so far\n' "$cycle" "$CYCLES" \
	    "$up" "$(cat "$tmp"/acked-*.txt 2>/dev/null | wc -l)"
done
[ "$restarts_ok" = 1 ] && pass "jobd restarted after each of $CYCLES kills"

touch "$stop"
for p in "${sub_pids[@]}"; do wait "$p"; done
sub_pids=()

if [ -n "$jobd_pid" ]; then
	if "$JOBCTL" -s "$sock" join -t $((120 * SCALE)) >/dev/null 2>&1; then
		pass "all jobs finished (join)"
	else
		fail "all jobs finished (join timed out or failed)"
	fi
	results() {
		local line
		while IFS= read -r line; do
			case $line in
			PASS*) pass "${line#PASS }" ;;
			FAIL*) fail "${line#FAIL }" ;;
			*) echo "$line" ;;
			esac
		done
	}
	results < <("$PY" "$tmp/check.py" check "$sock" "$tmp" "$ran" final ||
	    echo "FAIL [final] the checker could not run")
	# and once more after a clean stop: the final states were journaled
	kill -TERM "$jobd_pid"
	wait "$jobd_pid"
	rc=$?
	jobd_pid=
	if [ "$rc" = 0 ]; then pass "SIGTERM: exit 0"; else fail "SIGTERM: exit $rc"; fi
	if start_jobd; then
		results < <("$PY" "$tmp/check.py" check "$sock" "$tmp" "$ran" \
		    after-restart || echo "FAIL [after-restart] the checker could not run")
		kill -TERM "$jobd_pid"
		wait "$jobd_pid"
		jobd_pid=
	else
		fail "jobd starts after the clean stop"
	fi
fi

if grep -qE 'ERROR: AddressSanitizer|WARNING: ThreadSanitizer|runtime error:|LeakSanitizer' "$log"; then
	fail "sanitizer report in $log"
	grep -m5 -E 'ERROR: AddressSanitizer|WARNING: ThreadSanitizer|runtime error:|LeakSanitizer' "$log"
	KEEP=1
else
	pass "no sanitizer report in the daemon's log"
fi
[ "$failed" -gt 0 ] && KEEP=1
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
