"""SPEC §2 `reload`, §4 "Reload": SIGHUP and the reload op re-read the config
file and apply it live, except the keys that need a restart."""

import os
import re
import shutil
import signal
import socket
import tempfile
import time

from conftest import (Daemon, assert_error, one_queue, queues_conf, scaled,
                      wait_for)


def rewrite(d, queues=None, extra=None):
    """Write a new config for d (checked like the first one)."""
    if queues is not None:
        d.queues = queues
    if extra is not None:
        d.extra = extra
    d.write_config()
    d.check_config()


def reload_ok(d):
    r = d.call({"op": "reload"})
    assert r["ok"] is True, r
    assert isinstance(r["ignored"], list), r
    return r["ignored"]


def qstats(d, name="default"):
    return d.c.stats()["queues"].get(name)


def test_workers_grow_and_shrink_under_load(tmp_path):
    with Daemon(tmp_path, queues=one_queue(2)) as d:
        c = d.c
        ids = [c.submit(sleep=0.3) for _ in range(40)]
        assert qstats(d)["workers"] == 2

        rewrite(d, queues=one_queue(8))
        assert reload_ok(d) == []
        assert qstats(d)["workers"] == 8
        wait_for(lambda: qstats(d)["busy"] > 2, timeout=5,
                 what="more than 2 busy workers after growing to 8")

        # SIGHUP this time: answered by nobody, so watch stats.
        rewrite(d, queues=one_queue(1))
        d.signal(signal.SIGHUP)
        wait_for(lambda: qstats(d)["workers"] == 1, timeout=5,
                 what="workers 1 after SIGHUP")
        # The jobs that were running finish; then only one runs at a time.
        wait_for(lambda: qstats(d)["busy"] <= 1, timeout=5,
                 what="busy down to 1")
        for _ in range(5):
            s = qstats(d)
            assert s["busy"] <= 1 and s["running"] <= 1, s
            time.sleep(0.05)

        # Back up to 3 before the end, so the test does not take 10 s.
        rewrite(d, queues=one_queue(3))
        assert reload_ok(d) == []
        assert c.call({"op": "join", "timeout": scaled(30)},
                      timeout=scaled(30) + 5)["ok"] is True
        states = [c.get(i)["state"] for i in ids]
        assert states == ["succeeded"] * 40, states
        s = qstats(d)
        assert s["succeeded"] == 40 and s["workers"] == 3, s
        assert "reload" in d.log()


def order_of(d, out, n, queue="default"):
    assert d.call({"op": "resume", "queue": queue})["ok"] is True
    assert d.call({"op": "join", "queue": queue}, timeout=30)["ok"] is True
    return [int(x) for x in out.read_text().split()]


def test_capacity_and_policy(tmp_path):
    out = tmp_path / "order.txt"
    with Daemon(tmp_path, queues=one_queue(1, "fifo", capacity=2)) as d:
        c = d.c
        assert c.call({"op": "pause", "queue": "default"})["ok"] is True
        for i in range(2):
            c.submit(shell=f"echo {i} >> {out}", nowait=True)
        assert_error(c.call({"op": "submit", "shell": "true",
                             "nowait": True}), "queue_full")

        rewrite(d, queues=one_queue(1, "lifo", capacity=5))
        assert reload_ok(d) == []
        s = qstats(d)
        assert (s["capacity"], s["policy"], s["paused"]) == (5, "lifo", True)
        for i in range(2, 5):
            c.submit(shell=f"echo {i} >> {out}", nowait=True)
        assert_error(c.call({"op": "submit", "shell": "true",
                             "nowait": True}), "queue_full")
        # The 2 jobs queued before the reload are re-ordered too.
        assert order_of(d, out, 5) == [4, 3, 2, 1, 0]


def test_capacity_growth_admits_blocked_submit(tmp_path):
    with Daemon(tmp_path, queues=one_queue(1, "fifo", capacity=1)) as d:
        assert d.call({"op": "pause", "queue": "default"})["ok"] is True
        d.c.submit(sleep=0)
        blocked = d.client()
        blocked.send({"op": "submit", "sleep": 0})
        blocked.nothing_within(0.2)
        rewrite(d, queues=one_queue(1, "fifo", capacity=2))
        assert reload_ok(d) == []
        r = blocked.recv()
        assert r["ok"] is True and r["state"] == "queued", r


def test_queue_timeout_reaches_queued_jobs(tmp_path):
    with Daemon(tmp_path, queues=one_queue(1), extra="kill_grace = 0.5;") as d:
        c = d.c
        assert c.call({"op": "pause", "queue": "default"})["ok"] is True
        jid = c.submit(sleep=30)
        explicit = c.submit(sleep=0.1, timeout=20)
        rewrite(d, queues=one_queue(1, timeout=0.3))
        assert reload_ok(d) == []
        assert c.get(jid)["timeout"] == 0.3
        assert c.call({"op": "resume", "queue": "default"})["ok"] is True
        assert c.wait(jid)["state"] == "timed_out"
        j = c.wait(explicit)
        assert (j["state"], j["timeout"]) == ("succeeded", 20)


def test_new_and_removed_queue(tmp_path):
    q0 = queues_conf(("default", 1, "fifo", {}), ("old", 1, "fifo", {}))
    q1 = queues_conf(("default", 1, "fifo", {}), ("new", 2, "fifo", {}))
    with Daemon(tmp_path, queues=q0) as d:
        c = d.c
        assert_error(c.call({"op": "submit", "sleep": 0, "queue": "new"}),
                     "unknown_queue")
        old = [c.submit(sleep=0.4, queue="old") for _ in range(2)]
        c.wait_state(old[0], "running")

        rewrite(d, queues=q1)
        assert reload_ok(d) == []
        job = c.run(sleep=0, queue="new")
        assert job["state"] == "succeeded" and job["queue"] == "new"
        assert qstats(d, "new")["workers"] == 2
        assert_error(c.call({"op": "submit", "sleep": 0, "queue": "old"}),
                     "unknown_queue")
        assert_error(c.call({"op": "pause", "queue": "old"}), "unknown_queue")
        # Still listed while its jobs run (the queued one too), then gone.
        assert qstats(d, "old") is not None
        wait_for(lambda: qstats(d, "old") is None, timeout=5,
                 what="queue old to leave the stats")
        for jid in old:
            j = c.get(jid)
            assert (j["state"], j["queue"]) == ("succeeded", "old"), j
        assert set(c.stats()["queues"]) == {"default", "new"}

        # Back in the config: the same queue serves again.
        rewrite(d, queues=q0)
        assert reload_ok(d) == []
        assert c.run(sleep=0, queue="old")["state"] == "succeeded"
        assert qstats(d, "old")["succeeded"] == 3


def test_invalid_file_keeps_old_config(tmp_path):
    with Daemon(tmp_path, queues=one_queue(2)) as d:
        good = d.conf.read_text()
        d.queues = one_queue(0)
        d.write_config()
        r = d.call({"op": "reload"})
        assert_error(r, "bad_request")
        msg = r["error"]["message"]
        assert re.search(re.escape(str(d.conf)) + r":\d+: ", msg), msg
        assert "workers" in msg, msg
        assert msg in d.log()
        assert qstats(d)["workers"] == 2
        assert d.c.run(sleep=0)["state"] == "succeeded"

        d.conf.write_text("this is not libconfig\n")
        d.signal(signal.SIGHUP)
        wait_for(lambda: d.log().count("old config stays") >= 2, timeout=5,
                 what="the SIGHUP error in the log")
        assert d.c.run(sleep=0)["state"] == "succeeded"

        d.conf.write_text(good)
        assert reload_ok(d) == []


def test_restart_keys_are_ignored(tmp_path):
    with Daemon(tmp_path, queues=one_queue(1)) as d:
        c = d.c         # connected to the socket in force
        first = d.sock
        d.sock = str(tmp_path / "other.sock")
        d.state_dir = tmp_path / "other-state"
        d.write_config()
        assert sorted(c.ok({"op": "reload"})["ignored"]) == \
            ["socket", "state_dir"]
        d.sock = first      # still served where it was; nothing new bound
        assert not (tmp_path / "other.sock").exists()
        assert d.client().ok({"op": "ping"})
        # Reloading the same file again reports them again.
        assert sorted(reload_ok(d)) == ["socket", "state_dir"]


def test_top_level_keys_apply(tmp_path):
    with Daemon(tmp_path, queues=one_queue(1)) as d:
        c = d.c
        rewrite(d, extra="keep_finished = 2;\nlog_level = \"debug\";")
        assert reload_ok(d) == []
        ids = [c.run(sleep=0)["id"] for _ in range(4)]
        time.sleep(0.1)
        assert_error(c.call({"op": "get", "id": ids[0]}), "not_found")
        assert c.get(ids[3])["state"] == "succeeded"
        assert "started on queue default" in d.log()   # a debug line



def test_notify_reloading_then_ready(tmp_path):
    # SPEC §6: RELOADING=1 with MONOTONIC_USEC= in one datagram, then
    # READY=1, for a failed reload as for a good one.
    short = tempfile.mkdtemp(prefix="jobd-n")
    path = os.path.join(short, "notify.sock")
    ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    ns.bind(path)
    ns.settimeout(scaled(5))

    def until(pred):
        while True:
            m = ns.recv(65536).decode()
            if pred(m):
                return m

    try:
        with Daemon(tmp_path, queues=one_queue(1),
                    env={"NOTIFY_SOCKET": path}) as d:
            until(lambda m: "READY=1" in m.split("\n"))
            for good in (True, False):
                if not good:
                    d.queues = one_queue(0)
                    d.write_config()
                r = d.call({"op": "reload"})
                assert r["ok"] is good, r
                m = until(lambda m: "RELOADING=1" in m or "READY=1" in m)
                lines = m.split("\n")
                assert "RELOADING=1" in lines, m
                assert any(re.fullmatch(r"MONOTONIC_USEC=\d+", x)
                           for x in lines), m
                until(lambda m: "READY=1" in m.split("\n"))
    finally:
        ns.close()
        shutil.rmtree(short, ignore_errors=True)
