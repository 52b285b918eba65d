"""SPEC §2: framing, requests, errors, tags, limits, connection handling."""

import json
import socket
import threading
import time

import pytest

from conftest import (VARIANT, Client, Daemon, assert_error, error_code,
                      scaled, vm_rss_kb, wait_for)


def test_ping_has_version_and_pid(daemon):
    r = daemon.call({"op": "ping"})
    assert r["ok"] is True
    assert isinstance(r["version"], str) and r["version"]
    assert r["pid"] == daemon.pid


def test_unknown_op(daemon):
    assert_error(daemon.call({"op": "frobnicate"}), "unknown_op")


def test_missing_op_is_bad_request(daemon):
    assert_error(daemon.call({"tag": 1}), "bad_request", mentions="op")


def test_op_of_wrong_type_is_bad_request(daemon):
    assert_error(daemon.call({"op": 5}), "bad_request", mentions="op")


@pytest.mark.parametrize("line", [
    b'{"op": ping}',
    b'not json at all',
    b'{"op":"ping"',
    b'{"op":"ping"}}',
    b'\xff\xfe{"op":"ping"}',
])
def test_bad_json_keeps_connection(daemon, line):
    c = daemon.client()
    c.send_raw(line + b"\n")
    assert_error(c.recv(), "bad_json")
    r = c.call({"op": "ping", "tag": "after"})
    assert r["ok"] is True and r["tag"] == "after"


@pytest.mark.parametrize("value", ['[1,2]', '"ping"', '42', 'null', 'true', '[]'])
def test_non_object_is_bad_request(daemon, value):
    c = daemon.client()
    c.send_raw(value.encode() + b"\n")
    assert_error(c.recv(), "bad_request")
    assert c.call({"op": "ping"})["ok"] is True


# (field, bad value, extra fields that make the rest of the request valid)
BAD_SUBMIT_FIELDS = [
    ("argv", "ls", {}),
    ("argv", [1, 2], {}),
    ("argv", [], {}),
    ("argv", {"0": "ls"}, {}),
    ("shell", 5, {}),
    ("shell", ["echo"], {}),
    ("sleep", "1", {}),
    ("sleep", -1, {}),
    ("queue", 5, {"sleep": 0}),
    ("priority", "1", {"sleep": 0}),
    ("priority", 1.5, {"sleep": 0}),
    ("priority", 1000001, {"sleep": 0}),
    ("priority", -1000001, {"sleep": 0}),
    ("timeout", "1", {"sleep": 0}),
    ("timeout", -1, {"sleep": 0}),
    ("env", ["A=B"], {"sleep": 0}),
    ("env", {"A": 1}, {"sleep": 0}),
    ("env", "A=B", {"sleep": 0}),
    ("cwd", 5, {"sleep": 0}),
    ("cwd", "relative/dir", {"sleep": 0}),
    ("stdin", 5, {"sleep": 0}),
    ("name", 5, {"sleep": 0}),
    ("nowait", "yes", {"sleep": 0}),
    ("block_timeout", "1", {"sleep": 0}),
    ("block_timeout", -1, {"sleep": 0}),
]


@pytest.mark.parametrize("field,value,rest", BAD_SUBMIT_FIELDS,
                         ids=[f"{f}={json.dumps(v)}" for f, v, _ in BAD_SUBMIT_FIELDS])
def test_submit_wrong_type_names_field(daemon, field, value, rest):
    req = {"op": "submit", **rest, field: value}
    assert_error(daemon.call(req), "bad_request", mentions=field)
    # nothing was created
    assert daemon.call({"op": "list"})["jobs"] == []


@pytest.mark.parametrize("req,field", [
    ({"op": "get", "id": "1"}, "id"),
    ({"op": "get", "id": 1.5}, "id"),
    ({"op": "get"}, "id"),
    ({"op": "cancel", "id": [1]}, "id"),
    ({"op": "wait", "id": 1, "timeout": "x"}, "timeout"),
    ({"op": "join", "timeout": "x"}, "timeout"),
    ({"op": "list", "limit": "5"}, "limit"),
    ({"op": "list", "state": "bogus"}, "state"),
    ({"op": "list", "queue": 7}, "queue"),
    ({"op": "pause", "queue": 7}, "queue"),
], ids=lambda v: json.dumps(v) if isinstance(v, dict) else v)
def test_other_ops_wrong_type_names_field(daemon, req, field):
    assert_error(daemon.call(req), "bad_request", mentions=field)


def test_submit_without_job_kind(daemon):
    assert error_code(daemon.call({"op": "submit", "name": "x"})) == "bad_request"


def test_submit_with_two_job_kinds(daemon):
    r = daemon.call({"op": "submit", "argv": ["true"], "shell": "true"})
    assert error_code(r) == "bad_request"
    r = daemon.call({"op": "submit", "sleep": 0, "shell": "true"})
    assert error_code(r) == "bad_request"
    assert daemon.call({"op": "list"})["jobs"] == []


def test_unknown_field_is_named(daemon):
    r = daemon.call({"op": "submit", "sleep": 0, "priorty": 1})
    assert_error(r, "bad_request", mentions="priorty")
    assert daemon.call({"op": "list"})["jobs"] == []
    assert_error(daemon.call({"op": "ping", "verbose": True}),
                 "bad_request", mentions="verbose")
    assert_error(daemon.call({"op": "get", "id": 1, "wait": 1}),
                 "bad_request", mentions="wait")


def test_null_field_counts_as_absent(daemon):
    r = daemon.call({"op": "submit", "sleep": 0, "argv": None, "shell": None,
                     "queue": None, "priority": None, "timeout": None,
                     "env": None, "cwd": None, "stdin": None, "name": None,
                     "nowait": None, "block_timeout": None})
    assert r["ok"] is True, r
    job = daemon.c.wait(r["id"])
    assert job["queue"] == "default"
    assert job["priority"] == 0
    assert job["state"] == "succeeded"
    assert "sleep" in job and "argv" not in job and "shell" not in job
    assert daemon.call({"op": "list", "queue": None, "state": None,
                        "limit": None})["ok"] is True


def test_null_for_required_field_is_missing(daemon):
    assert_error(daemon.call({"op": "get", "id": None}), "bad_request", mentions="id")


TAGS = [7, "abc", {"a": [1, 2, {"b": None}]}, None, [1, "x"], 1.5, True, ""]


@pytest.mark.parametrize("tag", TAGS, ids=[json.dumps(t) for t in TAGS])
def test_tag_echoed(daemon, tag):
    c = daemon.client()
    r = c.call({"op": "ping", "tag": tag})
    assert r["ok"] is True and "tag" in r and r["tag"] == tag
    r = c.call({"op": "nope", "tag": tag})
    assert error_code(r) == "unknown_op" and "tag" in r and r["tag"] == tag
    r = c.call({"op": "submit", "sleep": "x", "tag": tag})
    assert error_code(r) == "bad_request" and "tag" in r and r["tag"] == tag
    r = c.call({"op": "get", "id": 987654, "tag": tag})
    assert error_code(r) == "not_found" and "tag" in r and r["tag"] == tag
    r = c.call({"op": "submit", "sleep": 0, "tag": tag})
    assert r["ok"] is True and "tag" in r and r["tag"] == tag


def test_no_tag_when_absent(daemon):
    r = daemon.call({"op": "ping"})
    assert "tag" not in r
    assert "tag" not in daemon.call({"op": "nope"})


def test_empty_lines_ignored(daemon):
    c = daemon.client()
    c.send_raw(b'\n\n{"op":"ping","tag":1}\n\n\n{"op":"ping","tag":2}\n\n')
    assert c.recv()["tag"] == 1
    assert c.recv()["tag"] == 2
    assert c.call({"op": "ping", "tag": 3})["tag"] == 3


def test_whitespace_only_lines_ignored(daemon):
    c = daemon.client()
    c.send_raw(b'  \n\t\n{"op":"ping","tag":1}\n \t \n')
    assert c.recv()["tag"] == 1
    assert c.call({"op": "ping", "tag": 2})["tag"] == 2


def _padded_ping(total_len):
    """A ping line of exactly total_len bytes (without the newline)."""
    base = json.dumps({"op": "ping", "tag": ""}, separators=(",", ":"))
    line = json.dumps({"op": "ping", "tag": "x" * (total_len - len(base))},
                      separators=(",", ":"))
    assert len(line) == total_len
    return line.encode()


@pytest.fixture
def small_req(tmp_path):
    with Daemon(tmp_path, extra="max_request_bytes = 1024;") as d:
        yield d


def test_request_of_exactly_max_bytes_is_accepted(small_req):
    c = small_req.client()
    c.send_raw(_padded_ping(1024) + b"\n")
    r = c.recv()
    assert r["ok"] is True and len(r["tag"]) == 1024 - len('{"op":"ping","tag":""}')


def test_too_large_line_answered_then_closed(small_req):
    c = small_req.client()
    assert c.call({"op": "ping"})["ok"] is True
    c.send_raw(_padded_ping(1025) + b"\n")
    lines = c.expect_eof()
    assert len(lines) == 1, lines
    assert error_code(json.loads(lines[0])) == "too_large"
    # the daemon is fine
    assert small_req.client().call({"op": "ping"})["ok"] is True


def test_too_large_without_newline_not_buffered(small_req):
    d = small_req
    base_kb = vm_rss_kb(d.pid)
    c = d.client()
    chunk = b"x" * 65536
    sent = 0
    c.sock.settimeout(scaled(10))
    try:
        while sent < 10 * 1024 * 1024:
            c.sock.sendall(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    except socket.timeout:
        pytest.fail(f"daemon stopped reading after {sent} bytes without answering")
    lines = c.expect_eof()
    assert len(lines) == 1, lines
    assert error_code(json.loads(lines[0])) == "too_large"
    rss_kb = vm_rss_kb(d.pid)
    # sanitizer runtimes have a large baseline of their own
    limit_kb = 100 * 1024 if VARIANT == "release" else base_kb + 100 * 1024
    assert rss_kb < limit_kb, f"VmRSS {rss_kb} kB (before {base_kb} kB)"
    assert d.client().call({"op": "ping"})["ok"] is True


def test_1000_pipelined_requests_in_order(daemon):
    c = daemon.client()
    reqs = []
    for i in range(1000):
        if i % 10 == 3:
            reqs.append({"op": "get", "id": 10_000_000 + i, "tag": i})
        elif i % 10 == 7:
            reqs.append({"op": "bogus", "tag": i})
        else:
            reqs.append({"op": "ping", "tag": i})
    data = b"".join(json.dumps(r).encode() + b"\n" for r in reqs)
    t = threading.Thread(target=c.sock.sendall, args=(data,))
    t.start()
    for i in range(1000):
        r = c.recv()
        assert r.get("tag") == i, f"response {i} carries tag {r.get('tag')!r}: {r}"
        if i % 10 == 3:
            assert error_code(r) == "not_found"
        elif i % 10 == 7:
            assert error_code(r) == "unknown_op"
        else:
            assert r["ok"] is True
    t.join()


def test_client_vanishes_mid_request(daemon):
    c = Client(daemon.sock)
    c.send_raw(b'{"op":"submit","sl')
    c.close()
    c = Client(daemon.sock)
    c.send_raw(b'{"op":"ping"}\n{"op":"pi')
    c.close()
    assert daemon.client().call({"op": "ping"})["ok"] is True
    assert daemon.call({"op": "list"})["jobs"] == []


def test_client_vanishes_mid_wait(daemon):
    jid = daemon.c.submit(sleep=0.5)
    for op in ({"op": "wait", "id": jid}, {"op": "join"}):
        c = Client(daemon.sock)
        c.send(op)
        time.sleep(0.05)
        c.close()
    job = daemon.client().wait(jid)
    assert job["state"] == "succeeded"
    time.sleep(0.1)
    assert daemon.client().call({"op": "ping"})["ok"] is True


def test_200_concurrent_clients(daemon):
    n = 200
    results = [None] * n
    barrier = threading.Barrier(n)

    def one(i):
        try:
            with Client(daemon.sock) as c:
                barrier.wait(timeout=scaled(30))
                r = c.call({"op": "submit", "argv": ["echo", f"job{i}"], "tag": i},
                           timeout=60)
                assert r["ok"] is True and r["tag"] == i, r
                r = c.call({"op": "wait", "id": r["id"]}, timeout=90)
                assert r["ok"] is True, r
                results[i] = r["job"]
        except BaseException as e:          # pytest.fail raises BaseException
            results[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(scaled(120))
    errors = [(i, r) for i, r in enumerate(results) if not isinstance(r, dict)]
    assert not errors, errors[:5]
    for i, job in enumerate(results):
        assert job["state"] == "succeeded" and job["stdout"] == f"job{i}\n", job
    assert len({j["id"] for j in results}) == n


def test_max_connections(tmp_path):
    with Daemon(tmp_path, extra="max_connections = 5;") as d:
        held = []
        for _ in range(5):
            # the readiness probe's connection may still be counted for a moment
            def connect():
                c = Client(d.sock)
                r = c.call({"op": "ping"})
                if r["ok"]:
                    return c
                c.close()
                time.sleep(0.05)
                return None
            held.append(wait_for(connect, 5, what="a connection slot"))
        extra = Client(d.sock)
        lines = extra.expect_eof()
        assert len(lines) == 1, lines
        assert error_code(json.loads(lines[0])) == "unavailable"
        extra.close()
        # the five are still served
        for c in held:
            assert c.call({"op": "ping"})["ok"] is True
        # freeing one slot lets a new client in
        held.pop().close()

        def new_client_ok():
            c = Client(d.sock)
            try:
                c.send({"op": "ping"})
                line = c.recv_line()
                return line is not None and json.loads(line)["ok"] is True
            finally:
                c.close()
        wait_for(new_client_ok, 5, interval=0.05, what="a freed connection slot")
        for c in held:
            c.close()


def test_wait_holds_back_only_its_connection(daemon):
    jid = daemon.c.submit(sleep=0.6)
    a = daemon.client()
    a.send({"op": "wait", "id": jid, "tag": "w"})
    a.send({"op": "ping", "tag": "p"})
    b = daemon.client()
    assert b.call({"op": "ping"})["ok"] is True
    assert a.nothing_within(0.2), "a request behind a wait was answered early"
    r = a.recv()
    assert r["tag"] == "w" and r["ok"] is True and r["job"]["state"] == "succeeded"
    assert a.recv()["tag"] == "p"


def test_responses_before_too_large_are_delivered(small_req):
    c = small_req.client()
    c.send_raw(b'{"op":"ping","tag":1}\n{"op":"ping","tag":2}\n' +
               _padded_ping(2000) + b"\n" + b'{"op":"ping","tag":3}\n')
    lines = [json.loads(l) for l in c.expect_eof()]
    assert [l.get("tag") for l in lines[:2]] == [1, 2], lines
    assert len(lines) == 3 and error_code(lines[2]) == "too_large", lines


def test_line_split_across_writes(small_req):
    c = small_req.client()
    line = _padded_ping(1024)
    c.send_raw(line[:500])
    time.sleep(0.1)
    c.send_raw(line[500:] + b"\n")
    assert c.recv()["ok"] is True
    line = _padded_ping(1100)
    c.send_raw(line[:600])
    time.sleep(0.1)
    c.send_raw(line[600:] + b"\n")
    lines = c.expect_eof()
    assert len(lines) == 1 and error_code(json.loads(lines[0])) == "too_large"


def test_request_then_half_close_is_answered(daemon):
    c = daemon.client()
    c.send_raw(b'{"op":"ping","tag":"hc"}\n')
    c.shutdown_wr()
    lines = c.expect_eof()
    assert len(lines) == 1 and json.loads(lines[0])["tag"] == "hc"


def test_deeply_nested_json_is_an_error(daemon):
    c = daemon.client()
    c.send_raw(b'{"op":"ping","tag":' + b"[" * 100000 + b"]" * 100000 + b"}\n")
    r = c.recv()
    assert r["ok"] is False and error_code(r) in ("bad_json", "bad_request")
    assert c.call({"op": "ping"})["ok"] is True


def test_large_request_under_default_limit(daemon):
    data = "".join(f"{i:09d}\n" for i in range(90000))     # 900,000 bytes
    job = daemon.c.run(argv=["wc", "-c"], stdin=data)
    assert job["stdout"].strip() == "900000"


def test_client_not_reading_does_not_grow_daemon(daemon):
    jid = daemon.c.run(shell="head -c 65536 /dev/zero | tr '\\0' q")["id"]
    base_kb = vm_rss_kb(daemon.pid)
    c = daemon.client()
    req = json.dumps({"op": "get", "id": jid}).encode() + b"\n"
    # 20,000 answers of 64 KiB each would be 1.3 GB if all were buffered
    c.sock.settimeout(scaled(5))
    try:
        for _ in range(20000):
            c.sock.sendall(req)
    except socket.timeout:
        pass                        # the daemon stopped reading: fine
    time.sleep(0.5)
    rss_kb = vm_rss_kb(daemon.pid)
    assert rss_kb < base_kb + 100 * 1024, f"VmRSS {rss_kb} kB (before {base_kb} kB)"
    assert daemon.client().call({"op": "ping"})["ok"] is True
    r = c.recv()
    assert r["ok"] is True and r["job"]["id"] == jid
    c.close()


def test_wait_then_half_close_is_answered(daemon):
    jid = daemon.c.submit(sleep=0.3)
    c = daemon.client()
    c.send({"op": "wait", "id": jid, "tag": "w"})
    c.shutdown_wr()
    lines = c.expect_eof()
    assert len(lines) == 1
    r = json.loads(lines[0])
    assert r["ok"] is True and r["tag"] == "w" and r["job"]["state"] == "succeeded"


def test_connections_counted_exactly(daemon):
    c = daemon.client()
    wait_for(lambda: c.stats()["connections"] == 1, 5, what="connections == 1")
    extra = [daemon.client() for _ in range(3)]
    for e in extra:
        assert e.call({"op": "ping"})["ok"] is True
    assert c.stats()["connections"] == 4
    for e in extra:
        e.close()
    wait_for(lambda: c.stats()["connections"] == 1, 5, what="connections back to 1")


def test_connection_churn_frees_slots(tmp_path):
    with Daemon(tmp_path, extra="max_connections = 5;") as d:
        for i in range(200):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(d.sock)
                if i % 3 == 1:
                    s.send(b'{"op":"ping"}\n')
                elif i % 3 == 2:
                    s.send(b'{"op":"pi')
            except OSError:
                pass                # over the limit: answered and closed already
            s.close()

        def five_fit():
            held = []
            try:
                for _ in range(5):
                    c = Client(d.sock)
                    held.append(c)
                    if not c.call({"op": "ping"})["ok"]:
                        return False
                return True
            finally:
                for c in held:
                    c.close()
        wait_for(five_fit, 5, interval=0.1, what="five connection slots after churn")
