"""SPEC §2 subscribe: one event object per job state change, until the client
closes; anything the client sends afterwards is discarded."""

import json

from conftest import Daemon, assert_error, queues_conf


def events(c, n, timeout=10.0):
    out = []
    for _ in range(n):
        line = c.recv_line(timeout)
        assert line is not None, f"stream closed after {out!r}"
        out.append(json.loads(line))
    return out


def no_more(c, seconds=0.3):
    assert c.nothing_within(seconds), f"unexpected line: {c.recv_line(1)!r}"


def two_queue_daemon(tmp_path):
    return Daemon(tmp_path, queues=queues_conf(("default", 1, "fifo", {}),
                                               ("b", 1, "fifo", {})))


def test_subscribe_streams_state_changes(tmp_path):
    with two_queue_daemon(tmp_path) as d:
        s = d.client()
        assert s.call({"op": "subscribe", "tag": 9}) == {"ok": True, "tag": 9}
        jid = d.c.run(shell="exit 3")["id"]
        got = events(s, 3)
        assert [e["state"] for e in got] == ["queued", "running", "failed"]
        for e in got:
            assert set(e) >= {"id", "queue", "state", "exit_code"}, e
            assert e["id"] == jid and e["queue"] == "default"
        assert [e["exit_code"] for e in got] == [None, None, 3]
        no_more(s)


def test_subscribe_canceled_while_queued(tmp_path):
    with two_queue_daemon(tmp_path) as d:
        s = d.client()
        s.call({"op": "subscribe"})
        d.call({"op": "pause", "queue": "default"})
        jid = d.c.submit(sleep=0)
        d.call({"op": "cancel", "id": jid})
        got = events(s, 2)
        assert [(e["id"], e["state"]) for e in got] == [(jid, "queued"), (jid, "canceled")]
        no_more(s)


def test_subscribe_queue_filter(tmp_path):
    with two_queue_daemon(tmp_path) as d:
        s = d.client()
        assert s.call({"op": "subscribe", "queue": "b"})["ok"] is True
        d.c.run(sleep=0)
        jb = d.c.run(sleep=0, queue="b")["id"]
        got = events(s, 3)
        assert [(e["id"], e["queue"], e["state"]) for e in got] == [
            (jb, "b", "queued"), (jb, "b", "running"), (jb, "b", "succeeded")]
        no_more(s)


def test_subscribe_unknown_queue(tmp_path):
    with two_queue_daemon(tmp_path) as d:
        assert_error(d.call({"op": "subscribe", "queue": "zz"}), "unknown_queue")
        assert d.call({"op": "ping"})["ok"] is True


def test_input_after_subscribe_discarded(tmp_path):
    with two_queue_daemon(tmp_path) as d:
        s = d.client()
        s.call({"op": "subscribe"})
        s.send({"op": "ping", "tag": "ignored"})
        s.send_raw(b"not json\n")
        s.send({"op": "submit", "sleep": 0})
        no_more(s)
        assert d.call({"op": "list"})["jobs"] == []
        jid = d.c.run(sleep=0)["id"]
        assert [e["id"] for e in events(s, 3)] == [jid] * 3
        no_more(s)


def test_subscriber_going_away(tmp_path):
    with two_queue_daemon(tmp_path) as d:
        for _ in range(5):
            s = d.client()
            s.call({"op": "subscribe"})
            s.close()
        assert d.c.run(sleep=0)["state"] == "succeeded"
        s = d.client()
        s.call({"op": "subscribe"})
        jid = d.c.run(sleep=0)["id"]
        got = events(s, 3)
        assert [(e["id"], e["state"]) for e in got] == [
            (jid, "queued"), (jid, "running"), (jid, "succeeded")]
