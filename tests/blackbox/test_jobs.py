"""SPEC §2: jobs, their records, running, output, environment, timeout, cancel."""

import os
import socket
import time

import pytest

from conftest import (FINAL_STATES, KIND_KEYS, RECORD_KEYS, RECORD_OPTIONAL_KEYS,
                      RFC3339_MS, Client, Daemon, assert_error, assert_pid_gone,
                      one_queue, pid_alive, queues_conf, read_pid_file, scaled)


def check_record(job, kind):
    """The record has exactly the SPEC §2 fields and exactly one job kind."""
    keys = set(job)
    assert kind in keys, job
    for other in KIND_KEYS:
        if other != kind:
            assert other not in keys, f"{other} in a {kind} record: {job}"
    missing = RECORD_KEYS - keys
    assert not missing, f"record lacks {sorted(missing)}: {job}"
    unexpected = keys - RECORD_KEYS - {kind} - RECORD_OPTIONAL_KEYS
    assert not unexpected, f"record has unexpected {sorted(unexpected)}: {job}"
    assert isinstance(job["id"], int) and job["id"] > 0
    assert job["state"] in ("queued", "running") + FINAL_STATES
    for t in ("submitted_at", "started_at", "finished_at"):
        assert job[t] is None or RFC3339_MS.match(job[t]), f"{t}={job[t]!r}"
    assert RFC3339_MS.match(job["submitted_at"])
    assert isinstance(job["attempts"], int) and job["attempts"] >= 0
    assert job["owner"] == {"uid": os.getuid(), "gid": os.getgid()} or (
        set(job["owner"]) >= {"uid", "gid"} and job["owner"]["uid"] == os.getuid())
    assert isinstance(job["stdout"], str) and isinstance(job["stderr"], str)
    assert isinstance(job["stdout_truncated"], bool)
    assert isinstance(job["stderr_truncated"], bool)


def elapsed(job):
    """finished_at - started_at in seconds (ms resolution)."""
    from datetime import datetime
    f = "%Y-%m-%dT%H:%M:%S.%fZ"
    return (datetime.strptime(job["finished_at"], f) -
            datetime.strptime(job["started_at"], f)).total_seconds()


# ---------------------------------------------------------------------------
# submit and the record


def test_submit_answer_shape(daemon):
    r = daemon.call({"op": "submit", "argv": ["true"]})
    assert set(r) == {"ok", "id", "state"}, r
    assert r["ok"] is True and r["state"] == "queued"
    assert isinstance(r["id"], int) and r["id"] > 0


def test_submit_argv(daemon):
    job = daemon.c.run(argv=["echo", "hello", "two words"])
    check_record(job, "argv")
    assert job["argv"] == ["echo", "hello", "two words"]
    assert job["state"] == "succeeded"
    assert job["exit_code"] == 0 and job["signal"] is None and job["error"] is None
    assert job["stdout"] == "hello two words\n" and job["stderr"] == ""
    assert job["attempts"] == 1


def test_submit_shell(daemon):
    job = daemon.c.run(shell="echo $((1+2)) | tr 3 4; echo e >&2")
    check_record(job, "shell")
    assert job["shell"] == "echo $((1+2)) | tr 3 4; echo e >&2"
    assert job["state"] == "succeeded"
    assert job["stdout"] == "4\n" and job["stderr"] == "e\n"


def test_submit_sleep(daemon):
    job = daemon.c.run(sleep=0.2)
    check_record(job, "sleep")
    assert job["sleep"] == 0.2
    assert job["state"] == "succeeded"
    assert job["exit_code"] == 0 and job["signal"] is None
    assert elapsed(job) >= 0.19
    job = daemon.c.run(sleep=0)
    assert job["state"] == "succeeded" and job["exit_code"] == 0


def test_record_fields_after_run(daemon):
    jid = daemon.c.submit(argv=["true"], name="nightly", priority=5, timeout=7.5)
    daemon.c.wait(jid)
    job = daemon.c.get(jid)
    check_record(job, "argv")
    assert job["id"] == jid and job["queue"] == "default" and job["name"] == "nightly"
    assert job["priority"] == 5 and job["timeout"] == 7.5
    assert job["attempts"] == 1 and job["state"] == "succeeded"
    assert job["submitted_at"] <= job["started_at"] <= job["finished_at"]
    assert job["stdout_truncated"] is False and job["stderr_truncated"] is False
    assert job["owner"]["uid"] == os.getuid() and job["owner"]["gid"] == os.getgid()


def test_record_while_queued(d1):
    assert d1.call({"op": "pause", "queue": "default"})["ok"] is True
    jid = d1.c.submit(argv=["true"])
    job = d1.c.get(jid)
    check_record(job, "argv")
    assert job["state"] == "queued" and job["attempts"] == 0
    assert job["started_at"] is None and job["finished_at"] is None
    assert job["exit_code"] is None and job["signal"] is None and job["error"] is None
    assert job["stdout"] == "" and job["stderr"] == ""
    assert job["name"] is None
    assert job["timeout"] is None
    d1.call({"op": "resume", "queue": "default"})
    assert d1.c.wait(jid)["state"] == "succeeded"


def test_record_while_running(d1):
    jid = d1.c.submit(shell="echo early; sleep 30")
    job = d1.c.wait_state(jid, "running")
    check_record(job, "shell")
    assert job["attempts"] == 1 and job["started_at"] is not None
    assert job["finished_at"] is None and job["exit_code"] is None
    assert job["stdout"] == ""            # "" until the job is finished
    d1.call({"op": "cancel", "id": jid})


def test_timeout_in_force(tmp_path):
    qs = queues_conf(("default", 2, "fifo", {"timeout": 3}),
                     ("none", 1, "fifo", {}))
    with Daemon(tmp_path, queues=qs) as d:
        def timeout_of(**kw):
            return d.c.get(d.c.submit(sleep=0, **kw))["timeout"]
        assert timeout_of() == 3.0
        assert timeout_of(timeout=1.5) == 1.5
        assert timeout_of(timeout=0) is None
        assert timeout_of(queue="none") is None
        assert timeout_of(queue="none", timeout=2) == 2.0
        d.call({"op": "join"})


def test_wait_returns_final_record(daemon):
    c = daemon.client()
    jid = c.submit(shell="sleep 0.3; echo done")
    r = c.call({"op": "wait", "id": jid}, timeout=15)
    assert r["ok"] is True and set(r) >= {"ok", "job"}
    job = r["job"]
    check_record(job, "shell")
    assert job["id"] == jid and job["state"] == "succeeded" and job["stdout"] == "done\n"
    # wait on a finished job answers at once with the same record
    assert c.call({"op": "wait", "id": jid})["job"] == job
    assert daemon.c.get(jid) == job


def test_wait_timeout(daemon):
    jid = daemon.c.submit(sleep=30)
    t0 = time.monotonic()
    assert_error(daemon.call({"op": "wait", "id": jid, "timeout": 0.3}), "timeout")
    assert time.monotonic() - t0 >= 0.29
    assert daemon.c.get(jid)["state"] in ("queued", "running")
    daemon.call({"op": "cancel", "id": jid})


# ---------------------------------------------------------------------------
# outcomes


def test_exit_code(daemon):
    job = daemon.c.run(shell="exit 3")
    assert job["state"] == "failed"
    assert job["exit_code"] == 3 and job["signal"] is None and job["error"] is None


def test_killed_by_signal(daemon):
    job = daemon.c.run(shell="kill -9 $$")
    assert job["state"] == "failed"
    assert job["exit_code"] is None and job["signal"] == 9 and job["error"] is None


@pytest.mark.parametrize("prog", ["/nonexistent/prog", "no-such-program-jobd-test"])
def test_missing_program(daemon, prog):
    job = daemon.c.run(argv=[prog, "x"])
    assert job["state"] == "failed"
    assert job["error"] == "spawn: No such file or directory"
    assert job["exit_code"] is None and job["signal"] is None


def test_path_lookup_uses_job_env(daemon, tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    script = bindir / "jobd-test-hello"
    script.write_text("#!/bin/sh\necho hello-from-path \"$1\"\n")
    script.chmod(0o755)
    job = daemon.c.run(argv=["jobd-test-hello", "x"],
                       env={"PATH": f"{bindir}:/usr/bin:/bin"})
    assert job["state"] == "succeeded", job
    assert job["stdout"] == "hello-from-path x\n"
    # not found through the daemon's own PATH
    job = daemon.c.run(argv=["jobd-test-hello"])
    assert job["state"] == "failed"
    assert job["error"] == "spawn: No such file or directory"


# ---------------------------------------------------------------------------
# output


@pytest.fixture
def small_tail(tmp_path):
    with Daemon(tmp_path, extra="output_tail_bytes = 1024;") as d:
        yield d


def test_output_tail_truncated(small_tail):
    job = small_tail.c.run(
        shell="head -c 5000 /dev/zero | tr '\\0' a; printf END; echo oops >&2")
    assert job["state"] == "succeeded"
    assert job["stdout"] == "a" * 1021 + "END"
    assert job["stdout_truncated"] is True
    assert job["stderr"] == "oops\n" and job["stderr_truncated"] is False


def test_output_tail_exact_fit_not_truncated(small_tail):
    job = small_tail.c.run(shell="head -c 1024 /dev/zero | tr '\\0' b; "
                                 "head -c 1025 /dev/zero | tr '\\0' c >&2")
    assert job["stdout"] == "b" * 1024 and job["stdout_truncated"] is False
    assert job["stderr"] == "c" * 1024 and job["stderr_truncated"] is True


def test_non_utf8_output_replaced(daemon):
    job = daemon.c.run(shell="printf 'a\\377b\\n'; printf '\\300\\200x' >&2")
    assert job["state"] == "succeeded"
    assert job["stdout"] == "a\ufffdb\n"
    assert job["stderr"].endswith("x") and "\ufffd" in job["stderr"]
    assert job["stderr"].replace("\ufffd", "") == "x"


def test_character_cut_by_tail_replaced(small_tail):
    # "é" is 2 bytes; 1023 more bytes follow, so the tail starts mid-character
    job = small_tail.c.run(shell="printf '\\303\\251'; head -c 1023 /dev/zero | tr '\\0' x")
    assert job["stdout"] == "\ufffd" + "x" * 1023
    assert job["stdout_truncated"] is True


def test_valid_utf8_kept(daemon):
    job = daemon.c.run(argv=["printf", "h\u00e9llo \u20ac \U0001f600\n"])
    assert job["stdout"] == "h\u00e9llo \u20ac \U0001f600\n"


def test_stdin_string(daemon):
    job = daemon.c.run(argv=["cat"], stdin="hello\nworld \u00e9")
    assert job["state"] == "succeeded"
    assert job["stdout"] == "hello\nworld \u00e9"


def test_large_stdin_and_output(daemon):
    data = "".join(f"{i:07d}\n" for i in range(40000))     # 320,000 bytes
    job = daemon.c.run(argv=["cat"], stdin=data, timeout=60)
    assert job["state"] == "succeeded"
    assert job["stdout_truncated"] is True
    assert job["stdout"] == data[-65536:]


def test_no_stdin_is_empty(daemon):
    job = daemon.c.run(argv=["cat"], timeout=10)
    assert job["state"] == "succeeded", job
    assert job["stdout"] == ""
    job = daemon.c.run(shell="wc -c", timeout=10)
    assert job["stdout"].strip() == "0"


def test_cwd(daemon, tmp_path):
    job = daemon.c.run(argv=["pwd"], cwd=str(tmp_path))
    assert job["stdout"] == f"{tmp_path}\n"
    job = daemon.c.run(argv=["pwd"])
    assert job["stdout"] == "/\n"


def test_cwd_missing(daemon, tmp_path):
    r = daemon.call({"op": "submit", "argv": ["pwd"], "cwd": str(tmp_path / "nope")})
    if r["ok"]:
        job = daemon.c.wait(r["id"])
        assert job["state"] == "failed" and job["exit_code"] is None
        assert isinstance(job["error"], str) and job["error"]
    else:
        assert_error(r, "bad_request", mentions="cwd")


def test_env_added(daemon):
    job = daemon.c.run(
        shell='printf "%s|%s|%s" "$FOO" "${EMPTY-unset}" "$HOME"',
        env={"FOO": "bar baz", "EMPTY": "", "HOME": "/elsewhere"})
    assert job["stdout"] == "bar baz||/elsewhere"


def test_daemon_environment_filtered(tmp_path):
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    npath = str(tmp_path / "notify.sock")
    notify.bind(npath)
    (tmp_path / "sd-state").mkdir()
    env = {
        "NOTIFY_SOCKET": npath,
        "LISTEN_FDS": "1", "LISTEN_PID": "1", "LISTEN_FDNAMES": "control",
        "WATCHDOG_USEC": "600000000",
        "JOURNAL_STREAM": "0:0",
        "INVOCATION_ID": "0123456789abcdef0123456789abcdef",
        "STATE_DIRECTORY": str(tmp_path / "sd-state"),
        "RUNTIME_DIRECTORY": str(tmp_path / "sd-run"),
        "LD_FOO": "bar",
        "LANG": "C.UTF-8",
        "JOBD_TEST_ORDINARY": "keep-me",
    }
    try:
        with Daemon(tmp_path, env=env) as d:
            job = d.c.run(argv=["env"])
            assert job["state"] == "succeeded"
            seen = dict(l.split("=", 1) for l in job["stdout"].splitlines() if "=" in l)
            for k in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES",
                      "WATCHDOG_USEC", "JOURNAL_STREAM", "INVOCATION_ID",
                      "STATE_DIRECTORY", "RUNTIME_DIRECTORY", "LD_FOO"):
                assert k not in seen, f"{k} leaked into the job's environment"
            assert seen.get("LANG") == "C.UTF-8"
            if os.geteuid() != 0:
                # as root the base comes from the passwd entry (SPEC §5)
                assert seen.get("JOBD_TEST_ORDINARY") == "keep-me"
            # the job's env still adds what it is given
            job = d.c.run(argv=["env"], env={"LD_BAR": "x"})
            assert "LD_BAR=x" in job["stdout"].splitlines()
    finally:
        notify.close()


# ---------------------------------------------------------------------------
# timeout, kill_grace, end of a job


def test_timeout_kills_process_group(daemon, tmp_path):
    pidf = tmp_path / "grandchild.pid"
    job = daemon.c.run(shell=f"sleep 60 & echo $! > {pidf}; wait", timeout=0.5)
    assert job["state"] == "timed_out", job
    assert elapsed(job) >= 0.49
    assert elapsed(job) < scaled(10)
    assert job["exit_code"] is None
    assert_pid_gone(read_pid_file(pidf))


def test_queue_timeout_applies(tmp_path):
    with Daemon(tmp_path, queues=one_queue(1, "fifo", timeout=0.3)) as d:
        job = d.c.run(argv=["sleep", "30"])
        assert job["state"] == "timed_out" and job["timeout"] == 0.3
        assert job["exit_code"] is None and job["signal"] is not None


def test_kill_grace(tmp_path):
    with Daemon(tmp_path, extra="kill_grace = 1.0;") as d:
        job = d.c.run(
            shell="trap 'echo term' TERM; while :; do sleep 0.05; done", timeout=0.3)
        assert job["state"] == "timed_out"
        assert job["signal"] == 9 and job["exit_code"] is None
        assert "term\n" in job["stdout"]
        assert elapsed(job) >= 0.3 + 1.0 - 0.01
        assert elapsed(job) < scaled(10)


def test_timed_out_even_if_exit_0(tmp_path):
    with Daemon(tmp_path, extra="kill_grace = 5.0;") as d:
        job = d.c.run(shell="trap 'exit 0' TERM; sleep 30 & wait", timeout=0.3)
        assert job["state"] == "timed_out"


def test_background_child_does_not_hold_job(daemon, tmp_path):
    pidf = tmp_path / "bg.pid"
    t0 = time.monotonic()
    job = daemon.c.run(shell=f"sleep 30 & echo $! > {pidf}; echo hi", timeout=20)
    assert time.monotonic() - t0 < scaled(10)
    assert job["state"] == "succeeded" and job["exit_code"] == 0
    assert job["stdout"] == "hi\n"
    assert_pid_gone(read_pid_file(pidf))


def test_output_drained_at_end(daemon):
    job = daemon.c.run(shell="sleep 30 & head -c 50000 /dev/zero | tr '\\0' x",
                       timeout=20)
    assert job["state"] == "succeeded"
    assert job["stdout"] == "x" * 50000 and job["stdout_truncated"] is False


def test_sleep_job_timeout(daemon):
    job = daemon.c.run(sleep=30, timeout=0.3)
    assert job["state"] == "timed_out"
    assert job["exit_code"] is None and job["signal"] is None
    assert 0.29 <= elapsed(job) < scaled(10)


# ---------------------------------------------------------------------------
# cancel


def test_cancel_queued(d1):
    d1.call({"op": "pause", "queue": "default"})
    jid = d1.c.submit(argv=["true"])
    r = d1.call({"op": "cancel", "id": jid})
    assert r["ok"] is True
    job = r["job"]
    check_record(job, "argv")
    assert job["state"] == "canceled"
    assert job["finished_at"] is not None and job["started_at"] is None
    assert job["attempts"] == 0 and job["exit_code"] is None and job["signal"] is None
    d1.call({"op": "resume", "queue": "default"})
    d1.call({"op": "join"})
    assert d1.c.get(jid)["state"] == "canceled"
    assert d1.c.get(jid)["started_at"] is None


def test_cancel_running(daemon, tmp_path):
    mainf, bgf = tmp_path / "main.pid", tmp_path / "bg.pid"
    jid = daemon.c.submit(shell=f"echo $$ > {mainf}; sleep 60 & echo $! > {bgf}; wait")
    main, bg = read_pid_file(mainf), read_pid_file(bgf)
    r = daemon.call({"op": "cancel", "id": jid})
    assert r["ok"] is True
    job = r["job"]
    assert job["state"] == "canceled" and job["finished_at"] is not None
    assert job["started_at"] is not None and job["attempts"] == 1
    assert not pid_alive(main), "cancel answered before the job died"
    assert_pid_gone(bg)
    assert daemon.c.get(jid)["state"] == "canceled"


def test_cancel_running_waits_for_kill_grace(tmp_path):
    with Daemon(tmp_path, extra="kill_grace = 1.0;") as d:
        pidf = tmp_path / "main.pid"
        jid = d.c.submit(shell=f"trap '' TERM; echo $$ > {pidf}; "
                               "while :; do sleep 0.05; done")
        pid = read_pid_file(pidf)
        t0 = time.monotonic()
        r = d.call({"op": "cancel", "id": jid})
        assert r["ok"] is True and r["job"]["state"] == "canceled"
        assert time.monotonic() - t0 >= 0.99
        assert not pid_alive(pid)


def test_cancel_sleep_job(daemon):
    jid = daemon.c.submit(sleep=30)
    daemon.c.wait_state(jid, "running")
    r = daemon.call({"op": "cancel", "id": jid})
    assert r["ok"] is True and r["job"]["state"] == "canceled"
    assert r["job"]["exit_code"] is None


def test_cancel_finished_conflict(daemon):
    jid = daemon.c.submit(argv=["true"])
    daemon.c.wait(jid)
    assert_error(daemon.call({"op": "cancel", "id": jid}), "conflict")
    jid2 = daemon.c.submit(sleep=30)
    assert daemon.call({"op": "cancel", "id": jid2})["ok"] is True
    assert_error(daemon.call({"op": "cancel", "id": jid2}), "conflict")


def test_unknown_id_not_found(daemon):
    for op in ("get", "cancel", "wait"):
        assert_error(daemon.call({"op": op, "id": 987654321}), "not_found")


# ---------------------------------------------------------------------------
# ids, list, keep_finished


def test_ids_increasing(daemon):
    ids = [daemon.c.submit(sleep=0) for _ in range(5)]
    ids += [daemon.c.submit(argv=["true"]) for _ in range(3)]
    assert all(isinstance(i, int) and i > 0 for i in ids)
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
    daemon.call({"op": "join"})


@pytest.fixture
def two_queues(tmp_path):
    qs = queues_conf(("default", 2, "fifo", {}), ("other", 1, "fifo", {}))
    with Daemon(tmp_path, queues=qs) as d:
        yield d


def test_list_newest_first_and_filters(two_queues):
    d = two_queues
    c = d.c
    a = c.submit(argv=["true"])
    b = c.submit(argv=["false"], queue="other")
    c.wait(a), c.wait(b)
    d.call({"op": "pause", "queue": "other"})
    q1 = c.submit(sleep=0, queue="other")
    q2 = c.submit(sleep=0, queue="other")

    jobs = c.ok({"op": "list"})["jobs"]
    assert [j["id"] for j in jobs] == [q2, q1, b, a]
    for j in jobs:
        check_record(j, "sleep" if j["id"] in (q1, q2) else "argv")
    assert [j["id"] for j in c.ok({"op": "list", "queue": "other"})["jobs"]] == [q2, q1, b]
    assert [j["id"] for j in c.ok({"op": "list", "queue": "default"})["jobs"]] == [a]
    assert [j["id"] for j in c.ok({"op": "list", "state": "queued"})["jobs"]] == [q2, q1]
    assert [j["id"] for j in c.ok({"op": "list", "state": "failed"})["jobs"]] == [b]
    assert c.ok({"op": "list", "state": "running"})["jobs"] == []
    assert [j["id"] for j in c.ok({"op": "list", "queue": "other",
                                   "state": "succeeded"})["jobs"]] == []
    assert [j["id"] for j in c.ok({"op": "list", "limit": 2})["jobs"]] == [q2, q1]
    assert [j["id"] for j in c.ok({"op": "list", "limit": 1})["jobs"]] == [q2]
    d.call({"op": "resume", "queue": "other"})
    d.call({"op": "join"})


def test_list_limit_bounds(daemon):
    assert_error(daemon.call({"op": "list", "limit": 0}), "bad_request", mentions="limit")
    assert_error(daemon.call({"op": "list", "limit": -1}), "bad_request", mentions="limit")
    assert_error(daemon.call({"op": "list", "limit": 10001}), "bad_request",
                 mentions="limit")
    assert daemon.call({"op": "list", "limit": 10000})["ok"] is True
    assert daemon.call({"op": "list", "limit": 1})["ok"] is True


def test_list_default_limit_100(daemon):
    c = daemon.client()
    c.send_raw(b"".join(b'{"op":"submit","sleep":0}\n' for _ in range(105)))
    ids = [c.recv()["id"] for _ in range(105)]
    jobs = daemon.call({"op": "list"})["jobs"]
    assert [j["id"] for j in jobs] == ids[::-1][:100]
    assert len(daemon.call({"op": "list", "limit": 10000})["jobs"]) == 105
    daemon.call({"op": "join"})


def test_keep_finished(tmp_path):
    with Daemon(tmp_path, extra="keep_finished = 3;") as d:
        ids = []
        for i in range(5):
            ids.append(d.c.submit(argv=["echo", str(i)]))
            d.c.wait(ids[-1])
        for jid in ids[:2]:
            assert_error(d.call({"op": "get", "id": jid}), "not_found")
        for jid in ids[2:]:
            assert d.c.get(jid)["state"] == "succeeded"
        assert [j["id"] for j in d.call({"op": "list"})["jobs"]] == ids[:1:-1]


def test_keep_finished_spares_unfinished(tmp_path):
    qs = queues_conf(("default", 1, "fifo", {}), ("other", 1, "fifo", {}))
    with Daemon(tmp_path, queues=qs, extra="keep_finished = 1;") as d:
        d.call({"op": "pause", "queue": "default"})
        waiting = [d.c.submit(sleep=0) for _ in range(3)]
        done = [d.c.run(sleep=0, queue="other")["id"] for _ in range(3)]
        for jid in done[:2]:
            assert_error(d.call({"op": "get", "id": jid}), "not_found")
        assert d.c.get(done[2])["state"] == "succeeded"
        for jid in waiting:
            assert d.c.get(jid)["state"] == "queued"
        d.call({"op": "resume", "queue": "default"})
        d.call({"op": "join"})
        assert [j["id"] for j in d.call({"op": "list"})["jobs"]] == [waiting[-1]]


def test_huge_output_does_not_grow_daemon(daemon):
    from conftest import VARIANT, vm_rss_kb
    base_kb = vm_rss_kb(daemon.pid)
    jid = daemon.c.submit(shell="head -c 1073741824 /dev/zero | tr '\\0' y; echo END")
    peak_kb = base_kb
    deadline = time.monotonic() + scaled(60)
    while daemon.c.get(jid)["state"] in ("queued", "running"):
        peak_kb = max(peak_kb, vm_rss_kb(daemon.pid))
        assert time.monotonic() < deadline, "1 GiB of output took too long"
        time.sleep(0.05)
    job = daemon.c.wait(jid)
    assert job["state"] == "succeeded"
    assert job["stdout"] == "y" * (65536 - 4) + "END\n"
    assert job["stdout_truncated"] is True
    limit_kb = 100 * 1024 if VARIANT == "release" else base_kb + 100 * 1024
    assert peak_kb < limit_kb, f"VmRSS peaked at {peak_kb} kB (before {base_kb} kB)"


def test_stdin_with_nul(daemon):
    job = daemon.c.run(argv=["wc", "-c"], stdin="a\u0000b")
    assert job["stdout"].strip() == "3"


def test_output_with_nul(daemon):
    job = daemon.c.run(shell="printf 'a\\000b'")
    assert job["stdout"] == "a\x00b"


def test_output_tail_zero(tmp_path):
    with Daemon(tmp_path, extra="output_tail_bytes = 0;") as d:
        job = d.c.run(argv=["echo", "hi"])
        assert job["stdout"] == "" and job["stdout_truncated"] is True
        assert job["stderr"] == "" and job["stderr_truncated"] is False


def test_wait_answered_by_cancel(daemon):
    jid = daemon.c.submit(sleep=60)
    w = daemon.client()
    w.send({"op": "wait", "id": jid})
    w2 = daemon.client()
    w2.send({"op": "wait", "id": jid, "timeout": 60})
    assert w.nothing_within(0.1)
    assert daemon.call({"op": "cancel", "id": jid})["ok"] is True
    for c in (w, w2):
        r = c.recv()
        assert r["ok"] is True and r["job"]["state"] == "canceled" and r["job"]["id"] == jid


def test_wait_with_keep_finished_zero(tmp_path):
    with Daemon(tmp_path, extra="keep_finished = 0;") as d:
        jid = d.c.submit(shell="sleep 0.2; echo x")
        job = d.c.wait(jid)
        assert job["state"] == "succeeded" and job["stdout"] == "x\n"
        assert_error(d.call({"op": "get", "id": jid}), "not_found")


def test_killed_from_outside(daemon, tmp_path):
    pidf = tmp_path / "pid"
    jid = daemon.c.submit(shell=f"echo $$ > {pidf}; exec sleep 60")
    os.kill(read_pid_file(pidf), 15)
    job = daemon.c.wait(jid)
    assert job["state"] == "failed" and job["signal"] == 15 and job["exit_code"] is None


def test_cancel_races_with_completion(tmp_path):
    import random
    import threading
    with Daemon(tmp_path, queues=one_queue(4, "fifo")) as d:
        rnd = random.Random(1234)
        ids = []
        for i in range(120):
            if i % 3 == 0:
                ids.append(d.c.submit(argv=["true"]))
            elif i % 3 == 1:
                ids.append(d.c.submit(sleep=rnd.choice([0, 0.01, 0.03])))
            else:
                ids.append(d.c.submit(shell="sleep 0.0$((RANDOM%5))", timeout=0.03))
        answers = {}

        def canceler(part):
            with Client(d.sock) as c:
                for jid in part:
                    time.sleep(rnd.random() * 0.01)
                    answers[jid] = c.call({"op": "cancel", "id": jid}, timeout=30)

        threads = [threading.Thread(target=canceler, args=(ids[k::4],)) for k in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(scaled(60))
        assert len(answers) == len(ids)
        assert d.call({"op": "join", "timeout": scaled(30)}, timeout=40)["ok"] is True
        for jid in ids:
            job = d.c.get(jid)
            r = answers[jid]
            if r["ok"]:
                assert r["job"]["state"] == "canceled" and job["state"] == "canceled", (r, job)
            else:
                assert_error(r, "conflict")
                assert job["state"] in ("succeeded", "failed", "timed_out"), job
        q = d.c.stats()["queues"]["default"]
        assert q["submitted"] == len(ids)
        assert q["unfinished"] == 0 and q["running"] == 0 and q["queued"] == 0
        assert (q["succeeded"] + q["failed"] + q["timed_out"] + q["canceled"]) == len(ids)
        assert q["canceled"] == sum(1 for r in answers.values() if r["ok"])
