"""SPEC §1: jobctl's commands, output and exit statuses."""

import json
import re
import socket
import subprocess
import time

import pytest

from conftest import JOBCTL, Daemon, jobctl, one_queue, scaled, wait_for


def out_id(r):
    """The job id jobctl printed alone on its first line."""
    first = r.stdout.split("\n", 1)[0]
    assert re.fullmatch(r"\d+", first), f"first line {first!r}; stderr {r.stderr!r}"
    return int(first)


def test_submit_prints_id_alone(daemon):
    r = daemon.jobctl("submit", "--", "echo", "hi", "there")
    assert r.returncode == 0, r.stderr
    assert re.fullmatch(r"\d+\n", r.stdout), repr(r.stdout)
    job = daemon.c.wait(int(r.stdout))
    assert job["argv"] == ["echo", "hi", "there"] and job["stdout"] == "hi there\n"


def test_submit_options(tmp_path):
    with Daemon(tmp_path, queues='( { name = "default"; workers = 1; }, '
                                 '{ name = "q2"; workers = 1; } )') as d:
        r = d.jobctl("submit", "-q", "q2", "-p", "-7", "-t", "9.5", "-n", "nm",
                     "-e", "A=1", "-e", "B=x=y", "-C", str(tmp_path), "--",
                     "sh", "-c", 'echo "$A $B $(pwd)"')
        assert r.returncode == 0, r.stderr
        job = d.c.wait(out_id(r))
        assert job["queue"] == "q2" and job["priority"] == -7
        assert job["timeout"] == 9.5 and job["name"] == "nm"
        assert job["stdout"] == f"1 x=y {tmp_path}\n"


def test_submit_shell(daemon):
    r = daemon.jobctl("submit", "--shell", "--", "echo $((6*7)) | tr 4 5")
    assert r.returncode == 0, r.stderr
    job = daemon.c.wait(out_id(r))
    assert job["shell"] == "echo $((6*7)) | tr 4 5" and job["stdout"] == "52\n"


@pytest.mark.parametrize("args,code", [
    (["--", "true"], 0),
    (["--", "sh", "-c", "exit 7"], 7),
    (["--shell", "--", "kill -9 $$"], 128 + 9),
    (["--shell", "--", "kill -TERM $$"], 128 + 15),
    (["-t", "0.3", "--", "sleep", "30"], 124),
    (["--", "/nonexistent/prog"], 127),
])
def test_submit_wait_exit_codes(daemon, args, code):
    r = daemon.jobctl("submit", "--wait", *args)
    assert r.returncode == code, (r.stdout, r.stderr)
    jid = out_id(r)
    assert daemon.c.get(jid)["state"] in ("succeeded", "failed", "timed_out")


def test_submit_wait_canceled_125(daemon):
    p = subprocess.Popen([JOBCTL, "-s", daemon.sock, "submit", "--wait", "--",
                          "sleep", "30"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        line = p.stdout.readline()
        assert re.fullmatch(r"\d+\n", line), line
        jid = int(line)
        daemon.c.wait_state(jid, "running")
        assert daemon.call({"op": "cancel", "id": jid})["ok"] is True
        rc = p.wait(scaled(20))
        assert rc == 125, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_wait_several_ids_first_non_success(daemon):
    ok1 = daemon.c.submit(argv=["true"])
    f3 = daemon.c.submit(shell="exit 3")
    f5 = daemon.c.submit(shell="exit 5")
    ok2 = daemon.c.submit(sleep=0.2)
    r = daemon.jobctl("wait", ok1, f3, f5, ok2)
    assert r.returncode == 3, r.stderr
    assert daemon.jobctl("wait", ok2, f5, f3).returncode == 5
    assert daemon.jobctl("wait", ok1, ok2).returncode == 0
    bad = daemon.c.submit(argv=["/nonexistent/prog"])
    assert daemon.jobctl("wait", ok1, bad, f3).returncode == 127


def test_wait_timeout_75(daemon):
    jid = daemon.c.submit(sleep=60)
    t0 = time.monotonic()
    r = daemon.jobctl("wait", "-t", "0.3", jid)
    assert r.returncode == 75, (r.stdout, r.stderr)
    assert time.monotonic() - t0 < scaled(10)
    daemon.call({"op": "cancel", "id": jid})


def test_wait_timed_out_job_124(daemon):
    jid = daemon.c.submit(sleep=30, timeout=0.2)
    assert daemon.jobctl("wait", jid).returncode == 124


def test_join(daemon):
    for _ in range(3):
        daemon.c.submit(sleep=0.2)
    r = daemon.jobctl("join")
    assert r.returncode == 0, r.stderr
    assert daemon.call({"op": "list", "state": "succeeded"})["jobs"].__len__() == 3


def test_join_timeout_75(daemon):
    jid = daemon.c.submit(sleep=60)
    r = daemon.jobctl("join", "-t", "0.3")
    assert r.returncode == 75, (r.stdout, r.stderr)
    daemon.call({"op": "cancel", "id": jid})


def test_join_queue(tmp_path):
    with Daemon(tmp_path, queues='( { name = "a"; workers = 1; }, '
                                 '{ name = "b"; workers = 1; } )') as d:
        jid = d.c.submit(sleep=60, queue="a")
        d.c.submit(sleep=0.1, queue="b")
        assert d.jobctl("join", "-q", "b").returncode == 0
        assert d.jobctl("join", "-q", "a", "-t", "0.3").returncode == 75
        d.call({"op": "cancel", "id": jid})


def test_cancel(daemon):
    a = daemon.c.submit(sleep=60)
    b = daemon.c.submit(sleep=60)
    r = daemon.jobctl("cancel", a, b)
    assert r.returncode == 0, r.stderr
    assert daemon.c.get(a)["state"] == "canceled"
    assert daemon.c.get(b)["state"] == "canceled"
    r = daemon.jobctl("cancel", a)
    assert r.returncode == 1 and r.stderr.strip()


def test_get(daemon):
    jid = daemon.c.submit(argv=["true"])
    daemon.c.wait(jid)
    r = daemon.jobctl("get", jid)
    assert r.returncode == 0 and str(jid) in r.stdout and "succeeded" in r.stdout


def test_list_table(daemon):
    ids = [daemon.c.submit(argv=["true"]), daemon.c.submit(argv=["false"])]
    for jid in ids:
        daemon.c.wait(jid)
    r = daemon.jobctl("list")
    assert r.returncode == 0, r.stderr
    rows = table_rows(r.stdout)
    assert [int(row[0]) for row in rows] == ids[::-1], r.stdout   # newest first
    assert "succeeded" in rows[1] and "failed" in rows[0], r.stdout
    r = daemon.jobctl("list", "-S", "failed", "-n", "5")
    assert r.returncode == 0
    assert [int(row[0]) for row in table_rows(r.stdout)] == [ids[1]], r.stdout
    r = daemon.jobctl("list", "-n", "1")
    assert [int(row[0]) for row in table_rows(r.stdout)] == [ids[1]], r.stdout


def table_rows(text):
    """The rows of a table whose first column is a job id (header skipped)."""
    return [l.split() for l in text.splitlines() if l.split() and l.split()[0].isdigit()]


def test_logs(daemon):
    jid = daemon.c.submit(shell="echo out; echo err >&2; printf 'no newline'")
    daemon.c.wait(jid)
    r = daemon.jobctl("logs", jid)
    assert r.returncode == 0
    assert r.stdout == "out\nno newline" and r.stderr == "err\n"


def test_stats_table(daemon):
    r = daemon.jobctl("stats")
    assert r.returncode == 0, r.stderr
    assert "default" in r.stdout


def test_pause_resume(d1):
    assert d1.jobctl("pause", "default").returncode == 0
    jid = d1.c.submit(argv=["true"])
    time.sleep(0.3)
    assert d1.c.get(jid)["state"] == "queued"
    assert d1.c.stats()["queues"]["default"]["paused"] is True
    assert d1.jobctl("resume", "default").returncode == 0
    assert d1.c.wait(jid)["state"] == "succeeded"
    r = d1.jobctl("pause", "nope")
    assert r.returncode == 1 and r.stderr.strip()


def test_ping(daemon):
    r = daemon.jobctl("ping")
    assert r.returncode == 0, r.stderr


def test_unreachable_socket_69(tmp_path):
    path = str(tmp_path / "nobody-here.sock")
    r = jobctl("-s", path, "ping")
    assert r.returncode == 69 and path in r.stderr, r.stderr
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()                           # stale socket file: connection refused
    r = jobctl("-s", path, "submit", "--", "true")
    assert r.returncode == 69 and path in r.stderr, r.stderr


@pytest.mark.parametrize("args", [
    [],
    ["frobnicate"],
    ["submit"],
    ["submit", "--"],
    ["submit", "-p", "high", "--", "true"],
    ["wait"],
    ["get"],
    ["get", "abc"],
    ["cancel"],
    ["pause"],
    ["logs"],
    ["--bogus", "ping"],
])
def test_usage_errors_64(daemon, args):
    r = daemon.jobctl(*args)
    assert r.returncode == 64, (args, r.stdout, r.stderr)
    assert r.stderr.strip()
    assert daemon.call({"op": "list"})["jobs"] == []


def test_daemon_error_exit_1(daemon):
    r = daemon.jobctl("get", 987654)
    assert r.returncode == 1 and r.stderr.strip()
    r = daemon.jobctl("submit", "-q", "nope", "--", "true")
    assert r.returncode == 1 and r.stderr.strip()


def test_jobd_socket_env(daemon):
    r = jobctl("ping", env={"JOBD_SOCKET": daemon.sock})
    assert r.returncode == 0, r.stderr
    # -s wins over the environment
    r = jobctl("-s", daemon.sock, "ping", env={"JOBD_SOCKET": "/nonexistent/x.sock"})
    assert r.returncode == 0, r.stderr
    r = jobctl("ping", env={"JOBD_SOCKET": "/nonexistent/x.sock"})
    assert r.returncode == 69 and "/nonexistent/x.sock" in r.stderr


def json_lines(r):
    lines = [l for l in r.stdout.splitlines() if l.strip()]
    assert lines, (r.stdout, r.stderr)
    objs = [json.loads(l) for l in lines]
    for o in objs:
        assert isinstance(o, dict) and "ok" in o, o
    return objs


def test_json_output(daemon):
    r = daemon.jobctl("--json", "ping")
    assert r.returncode == 0
    (o,) = json_lines(r)
    assert o["ok"] is True and o["pid"] == daemon.pid
    r = daemon.jobctl("--json", "submit", "--", "echo", "j")
    (o,) = json_lines(r)
    assert o["ok"] is True and o["state"] == "queued"
    daemon.c.wait(o["id"])
    (o,) = json_lines(daemon.jobctl("--json", "get", o["id"]))
    assert o["ok"] is True and o["job"]["stdout"] == "j\n"
    (o,) = json_lines(daemon.jobctl("--json", "stats"))
    assert "default" in o["stats"]["queues"]
    r = daemon.jobctl("--json", "get", 987654)
    assert r.returncode == 1
    (o,) = json_lines(r)
    assert o["ok"] is False and o["error"]["code"] == "not_found"


def test_json_submit_wait(daemon):
    r = daemon.jobctl("--json", "submit", "--wait", "--", "sh", "-c", "exit 4")
    assert r.returncode == 4
    objs = json_lines(r)
    assert objs[-1]["ok"] is True and objs[-1]["job"]["exit_code"] == 4
    assert objs[-1]["job"]["state"] == "failed"


def test_submit_nowait_full_queue(tmp_path):
    with Daemon(tmp_path, queues=one_queue(1, "fifo", capacity=1)) as d:
        busy = d.c.submit(sleep=60)
        d.c.wait_state(busy, "running")
        queued = d.c.submit(sleep=60)
        r = d.jobctl("submit", "--nowait", "--", "true")
        assert r.returncode == 1 and r.stderr.strip() and r.stdout == ""
        assert len(d.call({"op": "list"})["jobs"]) == 2
        for jid in (queued, busy):
            d.call({"op": "cancel", "id": jid})


def test_wait_unknown_id_1(daemon):
    r = daemon.jobctl("wait", 987654)
    assert r.returncode == 1 and r.stderr.strip()


def test_submit_wait_prints_id_first(daemon):
    r = daemon.jobctl("submit", "--wait", "--", "echo", "x")
    assert r.returncode == 0
    jid = out_id(r)
    assert daemon.c.get(jid)["stdout"] == "x\n"


def test_watch_prints_events(daemon):
    import threading
    p = subprocess.Popen([JOBCTL, "-s", daemon.sock, "watch"], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    seen = []
    reader = threading.Thread(target=lambda: seen.extend(iter(p.stdout.readline, "")),
                              daemon=True)
    reader.start()
    try:
        # the subscription is in place once the daemon counts the connection
        wait_for(lambda: daemon.c.stats()["connections"] >= 2, 10,
                 what="jobctl watch to connect")
        time.sleep(0.2)
        jid = daemon.c.run(shell="exit 2")["id"]
        wait_for(lambda: any("failed" in l and re.search(rf"(^|\D){jid}(\D|$)", l)
                             for l in list(seen)), 10,
                 what=f"a 'failed' event line for job {jid}")
    finally:
        p.terminate()
        p.wait(scaled(10))
