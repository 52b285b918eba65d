"""SPEC §2: policies, pause, capacity and backpressure, join, stats."""

import signal
import time

import pytest

from conftest import (RFC3339_MS, Daemon, assert_error, one_queue, queues_conf,
                      scaled)


def start_order(d, queue, specs, tmp_path):
    """Pause queue, submit one job per (priority) in specs, resume, join, and
    return the submission indexes in the order the jobs ran."""
    c = d.c
    out = tmp_path / "order.txt"
    assert c.call({"op": "pause", "queue": queue})["ok"] is True
    for i, prio in enumerate(specs):
        req = {"shell": f"echo {i} >> {out}", "queue": queue}
        if prio is not None:
            req["priority"] = prio
        c.submit(**req)
    assert c.call({"op": "resume", "queue": queue})["ok"] is True
    assert c.call({"op": "join", "queue": queue}, timeout=30)["ok"] is True
    return [int(x) for x in out.read_text().split()]


PRIOS = [5, -3, 0, -3, 10, None, 1000000, -1000000, 0, 5]


def test_policy_priority(tmp_path):
    with Daemon(tmp_path, queues=one_queue(1, "priority")) as d:
        order = start_order(d, "default", PRIOS, tmp_path)
        key = [(p if p is not None else 0, i) for i, p in enumerate(PRIOS)]
        assert order == [i for _, i in sorted(key)]


def test_policy_fifo(tmp_path):
    with Daemon(tmp_path, queues=one_queue(1, "fifo")) as d:
        order = start_order(d, "default", PRIOS, tmp_path)
        assert order == list(range(len(PRIOS)))


def test_policy_lifo(tmp_path):
    with Daemon(tmp_path, queues=one_queue(1, "lifo")) as d:
        order = start_order(d, "default", PRIOS, tmp_path)
        assert order == list(range(len(PRIOS)))[::-1]


def test_default_policy_is_priority(tmp_path):
    with Daemon(tmp_path, queues='( { name = "default"; workers = 1; } )') as d:
        order = start_order(d, "default", [3, 1, 2], tmp_path)
        assert order == [1, 2, 0]
        assert d.c.stats()["queues"]["default"]["policy"] == "priority"


def test_priority_with_running_job(tmp_path):
    # a job arriving while the worker is busy still goes by priority
    with Daemon(tmp_path, queues=one_queue(1, "priority")) as d:
        out = tmp_path / "order.txt"
        first = d.c.submit(shell=f"sleep 0.5; echo first >> {out}")
        d.c.wait_state(first, "running")
        for name, prio in (("low", 9), ("high", -9), ("mid", 0)):
            d.c.submit(shell=f"echo {name} >> {out}", priority=prio)
        d.call({"op": "join"}, timeout=30)
        assert out.read_text().split() == ["first", "high", "mid", "low"]


def test_pause_holds_jobs(d1):
    c = d1.c
    assert c.call({"op": "pause", "queue": "default"}) == {"ok": True}
    jid = c.submit(argv=["true"])
    time.sleep(0.5)
    job = c.get(jid)
    assert job["state"] == "queued" and job["attempts"] == 0
    assert c.stats()["queues"]["default"]["paused"] is True
    # pausing twice is harmless
    assert c.call({"op": "pause", "queue": "default"})["ok"] is True
    assert c.call({"op": "resume", "queue": "default"}) == {"ok": True}
    assert c.wait(jid)["state"] == "succeeded"
    assert c.stats()["queues"]["default"]["paused"] is False


def test_pause_does_not_stop_running_job(d1):
    c = d1.c
    jid = c.submit(shell="sleep 0.3; echo ok")
    c.wait_state(jid, "running")
    c.call({"op": "pause", "queue": "default"})
    job = c.wait(jid)
    assert job["state"] == "succeeded" and job["stdout"] == "ok\n"
    c.call({"op": "resume", "queue": "default"})


def test_pause_requires_queue(d1):
    assert_error(d1.call({"op": "pause"}), "bad_request", mentions="queue")
    assert_error(d1.call({"op": "resume"}), "bad_request", mentions="queue")


# ---------------------------------------------------------------------------
# capacity and backpressure


@pytest.fixture
def full(tmp_path):
    """One worker busy with a long sleep, capacity 2, two jobs queued."""
    with Daemon(tmp_path, queues=one_queue(1, "fifo", capacity=2)) as d:
        c = d.c
        busy = c.submit(sleep=60)
        c.wait_state(busy, "running")
        d.queued = [c.submit(sleep=60), c.submit(sleep=60)]
        d.busy = busy
        yield d
        # leave nothing to drain
        if d.proc.poll() is None:
            for jid in [busy] + d.queued:
                c.call({"op": "cancel", "id": jid})


def job_ids(d):
    return sorted(j["id"] for j in d.call({"op": "list", "limit": 10000})["jobs"])


def test_capacity_nowait_queue_full(full):
    r = full.call({"op": "submit", "sleep": 0, "nowait": True})
    assert_error(r, "queue_full")
    assert job_ids(full) == sorted([full.busy] + full.queued)


def test_capacity_block_timeout(full):
    t0 = time.monotonic()
    r = full.call({"op": "submit", "sleep": 0, "block_timeout": 0.3})
    assert_error(r, "timeout")
    assert 0.29 <= time.monotonic() - t0 < scaled(10)
    assert job_ids(full) == sorted([full.busy] + full.queued)


def test_capacity_bounds_queued_not_running(tmp_path):
    # capacity 1 with two workers: two running plus one queued fit
    with Daemon(tmp_path, queues=one_queue(2, "fifo", capacity=1)) as d:
        c = d.c
        a, b = c.submit(sleep=60), c.submit(sleep=60)
        c.wait_state(a, "running"), c.wait_state(b, "running")
        q = c.submit(sleep=60, nowait=True)
        assert_error(c.call({"op": "submit", "sleep": 0, "nowait": True}), "queue_full")
        for jid in (q, a, b):
            c.call({"op": "cancel", "id": jid})


def test_blocked_submit_holds_only_its_connection(full):
    d = full
    blocked = d.client()
    blocked.send({"op": "submit", "sleep": 0, "tag": "blocked"})
    blocked.send({"op": "ping", "tag": "behind"})
    other = d.client()
    t0 = time.monotonic()
    r = other.call({"op": "ping"})
    assert r["ok"] is True and time.monotonic() - t0 < scaled(2)
    assert blocked.nothing_within(0.4), "a submit into a full queue answered early"
    # room appears: cancel a queued job
    assert other.call({"op": "cancel", "id": d.queued[0]})["ok"] is True
    r = blocked.recv()
    assert r["ok"] is True and r["tag"] == "blocked" and r["state"] == "queued"
    assert blocked.recv()["tag"] == "behind"
    assert other.get(r["id"])["state"] == "queued"
    d.queued.append(r["id"])


def test_blocked_submits_admitted_in_arrival_order(full):
    d = full
    waiters = []
    for i in range(3):
        w = d.client()
        w.send({"op": "submit", "sleep": 60, "tag": i})
        waiters.append(w)
        time.sleep(0.15)               # let the daemon see them in this order
    for w in waiters:
        assert w.nothing_within(0.05)
    admitted = []
    to_cancel = list(d.queued)
    for i in range(3):
        d.call({"op": "cancel", "id": to_cancel.pop(0)})
        r = waiters[i].recv()
        assert r["ok"] is True and r["tag"] == i, r
        admitted.append(r["id"])
        to_cancel.append(r["id"])
        for w in waiters[i + 1:]:
            assert w.nothing_within(0.2), "a later submit was admitted first"
    assert admitted == sorted(admitted)
    d.queued = to_cancel


@pytest.mark.parametrize("how", ["close", "shutdown_wr"])
def test_blocked_submit_withdrawn_on_eof(full, how):
    d = full
    before = job_ids(d)
    submitted = d.c.stats()["queues"]["default"]["submitted"]
    w = d.client()
    w.send({"op": "submit", "argv": ["touch", "/nonexistent-never"], "tag": "w"})
    assert w.nothing_within(0.3)
    if how == "close":
        w.close()
    else:
        w.shutdown_wr()
        lines = w.expect_eof()
        for line in lines:
            assert b'"ok":true' not in line.replace(b" ", b""), lines
    time.sleep(0.3)
    d.call({"op": "cancel", "id": d.queued.pop(0)})      # room appears
    time.sleep(0.3)
    assert job_ids(d) == before
    st = d.c.stats()["queues"]["default"]
    assert st["submitted"] == submitted
    # and the room is really there
    d.queued.append(d.c.submit(sleep=60, nowait=True))


def test_unknown_queue(d1):
    assert_error(d1.call({"op": "submit", "sleep": 0, "queue": "nope"}), "unknown_queue")
    for op in ("pause", "resume", "join", "list"):
        assert_error(d1.call({"op": op, "queue": "nope"}), "unknown_queue")
    assert d1.call({"op": "list"})["jobs"] == []


def test_second_queue_independent(tmp_path):
    qs = queues_conf(("default", 1, "fifo", {}), ("batch", 1, "lifo", {}))
    with Daemon(tmp_path, queues=qs) as d:
        c = d.c
        long = c.submit(sleep=60)
        c.wait_state(long, "running")
        job = c.run(argv=["echo", "b"], queue="batch")
        assert job["queue"] == "batch" and job["stdout"] == "b\n"
        c.call({"op": "pause", "queue": "batch"})
        held = c.submit(sleep=0, queue="batch")
        assert c.call({"op": "cancel", "id": long})["ok"] is True
        quick = c.run(sleep=0)
        assert quick["state"] == "succeeded"
        assert c.get(held)["state"] == "queued"
        st = c.stats()["queues"]
        assert st["batch"]["paused"] is True and st["default"]["paused"] is False
        assert st["batch"]["policy"] == "lifo" and st["default"]["policy"] == "fifo"
        c.call({"op": "resume", "queue": "batch"})
        assert c.wait(held)["state"] == "succeeded"


# ---------------------------------------------------------------------------
# join


def test_join_idle(daemon):
    assert daemon.call({"op": "join"}) == {"ok": True}
    assert daemon.call({"op": "join", "timeout": 0})["ok"] is True


def test_join_waits_for_all(tmp_path):
    with Daemon(tmp_path, queues=one_queue(2, "fifo")) as d:
        ids = [d.c.submit(sleep=0.3) for _ in range(3)] + [d.c.submit(argv=["true"])]
        assert d.call({"op": "join"}, timeout=30)["ok"] is True
        for jid in ids:
            assert d.c.get(jid)["state"] == "succeeded"


def test_join_counts_jobs_submitted_while_waiting(tmp_path):
    with Daemon(tmp_path, queues=one_queue(2, "fifo")) as d:
        a = d.c.submit(sleep=60)
        j = d.client()
        j.send({"op": "join", "tag": "j"})
        assert j.nothing_within(0.2)
        b = d.c.submit(sleep=0.5)
        d.call({"op": "cancel", "id": a})
        r = j.recv(timeout=20)
        assert r["ok"] is True and r["tag"] == "j"
        assert d.c.get(b)["state"] == "succeeded", "join returned before b finished"


def test_join_counts_failures_as_done(tmp_path):
    with Daemon(tmp_path, queues=one_queue(1, "fifo")) as d:
        c = d.c
        c.call({"op": "pause", "queue": "default"})
        ids = [c.submit(argv=["false"]), c.submit(argv=["/nonexistent/x"]),
               c.submit(sleep=30, timeout=0.2), c.submit(shell="kill -9 $$")]
        canceled = c.submit(sleep=0)
        c.call({"op": "cancel", "id": canceled})
        c.call({"op": "resume", "queue": "default"})
        assert c.call({"op": "join", "timeout": scaled(20)}, timeout=30)["ok"] is True
        states = [c.get(i)["state"] for i in ids]
        assert states == ["failed", "failed", "timed_out", "failed"]


def test_join_timeout(daemon):
    jid = daemon.c.submit(sleep=60)
    t0 = time.monotonic()
    assert_error(daemon.call({"op": "join", "timeout": 0.3}), "timeout")
    assert 0.29 <= time.monotonic() - t0 < scaled(10)
    daemon.call({"op": "cancel", "id": jid})


def test_join_queue_filter(tmp_path):
    qs = queues_conf(("a", 1, "fifo", {}), ("b", 1, "fifo", {}))
    with Daemon(tmp_path, queues=qs) as d:
        c = d.c
        long = c.submit(sleep=60, queue="a")
        short = c.submit(sleep=0.2, queue="b")
        assert c.call({"op": "join", "queue": "b"}, timeout=20)["ok"] is True
        assert c.get(short)["state"] == "succeeded"
        assert_error(c.call({"op": "join", "queue": "a", "timeout": 0.3}), "timeout")
        assert_error(c.call({"op": "join", "timeout": 0.3}), "timeout")
        c.call({"op": "cancel", "id": long})
        assert c.call({"op": "join", "queue": "a"})["ok"] is True


# ---------------------------------------------------------------------------
# stats


QUEUE_STAT_KEYS = {"policy", "workers", "busy", "capacity", "queued", "running",
                   "unfinished", "paused", "submitted", "succeeded", "failed",
                   "timed_out", "canceled"}
TOTAL_KEYS = {"queued", "running", "unfinished", "submitted", "succeeded", "failed",
              "timed_out", "canceled"}


def test_stats_shape(daemon):
    st = daemon.c.stats()
    assert set(st) >= {"version", "pid", "started_at", "uptime_s", "connections",
                       "queues", "totals"}, st
    assert isinstance(st["version"], str) and st["pid"] == daemon.pid
    assert RFC3339_MS.match(st["started_at"]) or st["started_at"].endswith("Z")
    assert isinstance(st["uptime_s"], (int, float)) and st["uptime_s"] >= 0
    assert isinstance(st["connections"], int) and st["connections"] >= 1
    assert set(st["queues"]) == {"default"}
    q = st["queues"]["default"]
    assert set(q) >= QUEUE_STAT_KEYS, q
    assert q["policy"] == "priority" and q["capacity"] == 10000 and q["paused"] is False
    assert isinstance(q["workers"], int) and q["workers"] >= 1
    assert set(st["totals"]) >= TOTAL_KEYS
    for k in QUEUE_STAT_KEYS - {"policy", "paused", "workers", "capacity"}:
        assert q[k] == 0, (k, q)


def test_stats_counters_consistent(tmp_path):
    qs = queues_conf(("default", 1, "fifo", {}), ("idle", 3, "lifo", {"capacity": 7}))
    with Daemon(tmp_path, queues=qs) as d:
        c = d.c
        for req in ({"argv": ["true"]}, {"argv": ["false"]},
                    {"argv": ["/nonexistent/x"]}, {"sleep": 30, "timeout": 0.2}):
            c.run(**req)
        running = c.submit(sleep=60)
        c.wait_state(running, "running")
        q1 = c.submit(sleep=0)
        c.submit(sleep=0)
        c.call({"op": "cancel", "id": q1})
        st = c.stats()
        q = st["queues"]["default"]
        expect = {"policy": "fifo", "workers": 1, "busy": 1, "capacity": 10000,
                  "queued": 1, "running": 1, "unfinished": 2, "paused": False,
                  "submitted": 7, "succeeded": 1, "failed": 2, "timed_out": 1,
                  "canceled": 1}
        assert {k: q[k] for k in expect} == expect
        assert q["submitted"] == (q["succeeded"] + q["failed"] + q["timed_out"] +
                                  q["canceled"] + q["unfinished"])
        idle = st["queues"]["idle"]
        assert idle["workers"] == 3 and idle["capacity"] == 7 and idle["policy"] == "lifo"
        assert idle["submitted"] == 0 and idle["busy"] == 0
        for k in TOTAL_KEYS:
            assert st["totals"][k] == q[k] + idle[k], k
        c.call({"op": "cancel", "id": running})
        c.call({"op": "join"})
        q = c.stats()["queues"]["default"]
        assert (q["succeeded"], q["failed"], q["timed_out"], q["canceled"]) == (2, 2, 1, 2)
        assert q["unfinished"] == 0 and q["queued"] == 0 and q["running"] == 0
        assert q["busy"] == 0


def test_block_timeout_admitted_when_room_appears(full):
    d = full
    w = d.client()
    w.send({"op": "submit", "sleep": 60, "block_timeout": scaled(10)})
    assert w.nothing_within(0.2)
    d.call({"op": "cancel", "id": d.queued.pop(0)})
    r = w.recv()
    assert r["ok"] is True and r["state"] == "queued"
    d.queued.append(r["id"])


def test_blocked_submit_answered_at_shutdown(full):
    d = full
    w = d.client()
    w.send({"op": "submit", "sleep": 0, "tag": "blocked"})
    assert w.nothing_within(0.2)
    d.signal(signal.SIGTERM)
    r = w.recv()
    assert_error(r, "shutting_down")
    assert r["tag"] == "blocked"
    d.signal(signal.SIGTERM)        # the busy sleep job: stop at once
    assert d.wait_exit(10) == 0
