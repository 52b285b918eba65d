"""SPEC §1 and §4: command line, config checking, socket, shutdown."""

import json
import os
import re
import signal
import socket
import stat
import subprocess
import time

import pytest

from conftest import (JOBCTL, JOBD, Client, Daemon, assert_error, assert_pid_gone,
                      one_queue, read_pid_file, sanitizer_report,
                      scaled, wait_for)


def run_jobd(*args, timeout=20):
    r = subprocess.run([JOBD, *[str(a) for a in args]], capture_output=True,
                       text=True, timeout=scaled(timeout), stdin=subprocess.DEVNULL)
    out = r.stdout + r.stderr
    assert not sanitizer_report(out), out
    return r.returncode, out


def check(tmp_path, text, name="jobd.conf"):
    p = tmp_path / name
    p.write_text(text)
    return run_jobd("--check-config", "-c", p)


BASE = 'status_listen = "";\n'


def test_check_config_ok(tmp_path):
    rc, out = check(tmp_path, BASE + 'queues = ( { name = "default"; workers = 2; } );\n')
    assert rc == 0 and out.strip() == "ok"


def test_check_config_empty_file_ok(tmp_path):
    rc, out = check(tmp_path, "")
    assert rc == 0 and out.strip() == "ok"


def test_check_config_full_example_ok(tmp_path):
    text = f'''socket = "{tmp_path}/s.sock";
socket_mode = "0660";
status_listen = "127.0.0.1:9750";
state_dir = "{tmp_path}/state";
log_level = "info";
max_connections = 1024;
max_request_bytes = 1048576;
keep_finished = 10000;
output_tail_bytes = 65536;
kill_grace = 5.0;
shutdown_timeout = 30;
queues = (
  {{ name = "default"; workers = 4; capacity = 10000; policy = "priority"; timeout = 0.0; on_crash = "requeue"; }},
  {{ name = "b.x-1_2"; workers = "auto"; policy = "lifo"; timeout = 5; on_crash = "fail"; }}
);
journal = {{ fsync = "batch"; batch_ms = 50; max_bytes = 67108864; }};
'''
    rc, out = check(tmp_path, text)
    assert rc == 0 and out.strip() == "ok", out


def test_check_config_range_error_names_file_and_line(tmp_path):
    text = (BASE +
            "queues = (\n"                                   # line 2
            '  { name = "default";\n'                        # line 3
            "    workers = 0; }\n"                           # line 4
            ");\n")
    rc, out = check(tmp_path, text)
    assert rc == 78, out
    assert re.search(r"jobd\.conf:4: ", out), out
    assert "queues[0].workers" in out, out


def test_check_config_syntax_error(tmp_path):
    rc, out = check(tmp_path, BASE + "kill_grace = 1.0;\nmax_connections = = 5;\n")
    assert rc == 78, out
    assert re.search(r"jobd\.conf:3:", out), out


@pytest.mark.parametrize("text,name", [
    ("kil_grace = 1.0;\n", "kil_grace"),
    ('queues = ( { name = "default"; wrokers = 1; } );\n', "wrokers"),
    ('journal = { fsinc = "off"; };\n', "fsinc"),
])
def test_check_config_unknown_key(tmp_path, text, name):
    rc, out = check(tmp_path, BASE + text)
    assert rc == 78, out
    assert name in out and re.search(r"jobd\.conf:2:", out), out


@pytest.mark.parametrize("text", [
    "max_request_bytes = 100;",
    "max_connections = 0;",
    "kill_grace = -1.0;",
    'log_level = "loud";',
    'socket_mode = "abc";',
    'queues = ( { name = "bad name"; } );',
    'queues = ( { name = "a"; policy = "random"; } );',
    'queues = ( { name = "a"; workers = 1025; } );',
    'queues = ( { name = "a"; }, { name = "a"; } );',
    'queues = ( { name = "a"; capacity = 0; } );',
    'journal = { fsync = "sometimes"; };',
])
def test_check_config_bad_values(tmp_path, text):
    rc, out = check(tmp_path, BASE + text + "\n")
    assert rc == 78, out
    assert re.search(r"jobd\.conf:\d+:", out), out


def test_missing_config_file(tmp_path):
    rc, out = run_jobd("--check-config", "-c", tmp_path / "absent.conf")
    assert rc == 78 and "absent.conf" in out, out
    rc, out = run_jobd("-c", tmp_path / "absent.conf")
    assert rc == 78 and "absent.conf" in out, out


def test_config_error_at_start(tmp_path):
    p = tmp_path / "jobd.conf"
    p.write_text(BASE + "kil_grace = 1.0;\n")
    rc, out = run_jobd("-c", p)
    assert rc == 78 and "kil_grace" in out, out


@pytest.mark.parametrize("args", [["--bogus"], ["-c"], ["-x"], ["extra-arg"]])
def test_usage_error(args):
    rc, out = run_jobd(*args)
    assert rc == 64, out
    assert out.strip(), "no message"


def test_version_and_help():
    rc, out = run_jobd("--version")
    assert rc == 0 and out.strip(), out
    rc, out = run_jobd("--help")
    assert rc == 0 and "-c" in out, out


# ---------------------------------------------------------------------------
# the socket


def test_second_daemon_on_live_socket_refused(daemon, tmp_path):
    other = tmp_path / "second"
    other.mkdir()
    conf = other / "jobd.conf"
    conf.write_text(f'socket = "{daemon.sock}";\nstate_dir = "{other}/state";\n'
                    f'status_listen = "";\n')
    rc, out = run_jobd("-c", conf, timeout=30)
    assert rc == 1, out                 # a runtime failure (SPEC §1)
    assert daemon.sock in out, f"message should name the socket: {out!r}"
    # the first one keeps serving, on a fresh connection to the same path
    assert os.path.exists(daemon.sock)
    with Client(daemon.sock) as c:
        assert c.call({"op": "ping"})["pid"] == daemon.pid


def test_stale_socket_replaced(tmp_path):
    d = Daemon(tmp_path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(d.sock)              # bound, never listening, then closed: stale
    s.close()
    assert stat.S_ISSOCK(os.stat(d.sock).st_mode)
    with d:
        assert d.call({"op": "ping"})["pid"] == d.pid


@pytest.mark.parametrize("mode", ["0600", "0660", "0666"])
def test_socket_mode(tmp_path, mode):
    with Daemon(tmp_path, extra=f'socket_mode = "{mode}";') as d:
        assert stat.S_IMODE(os.stat(d.sock).st_mode) == int(mode, 8)


def test_default_socket_mode(daemon):
    assert stat.S_IMODE(os.stat(daemon.sock).st_mode) == 0o660


def test_state_dir_created(tmp_path):
    with Daemon(tmp_path, state_dir=tmp_path / "a" / "b" / "state") as d:
        st = os.stat(d.state_dir)
        assert stat.S_ISDIR(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o700


# ---------------------------------------------------------------------------
# shutdown


def test_sigterm_idle_exits_0(daemon):
    daemon.signal(signal.SIGTERM)
    assert daemon.wait_exit(10) == 0


def test_sigint_exits_0(daemon):
    daemon.signal(signal.SIGINT)
    assert daemon.wait_exit(10) == 0


def test_sigterm_drains_running_job(tmp_path):
    with Daemon(tmp_path, queues=one_queue(1, "fifo"),
                extra="shutdown_timeout = 60;") as d:
        c = d.client()
        marker = tmp_path / "done"
        jid = c.submit(shell=f"sleep {scaled(1.5)}; touch {marker}; echo fin")
        c.wait_state(jid, "running")
        d.signal(signal.SIGTERM)
        time.sleep(scaled(0.2))          # let the signal be taken
        assert_error(c.call({"op": "submit", "sleep": 0}), "shutting_down")
        job = c.get(jid)
        assert job["state"] == "running"
        assert c.call({"op": "ping"})["ok"] is True
        c.send({"op": "wait", "id": jid})
        line = c.recv_line(timeout=30)   # None: the exit raced the answer
        if line is not None:
            r = json.loads(line)
            assert r["ok"] is True, r
            assert r["job"]["state"] == "succeeded" and r["job"]["stdout"] == "fin\n"
        assert d.wait_exit(30) == 0
        assert marker.exists(), "the running job was not allowed to finish"


def test_shutdown_timeout_kills_job(tmp_path):
    with Daemon(tmp_path, queues=one_queue(1, "fifo"),
                extra="shutdown_timeout = 1; kill_grace = 1.0;") as d:
        mainf, bgf = tmp_path / "main.pid", tmp_path / "bg.pid"
        d.c.submit(shell=f"echo $$ > {mainf}; sleep 60 & echo $! > {bgf}; wait")
        main, bg = read_pid_file(mainf), read_pid_file(bgf)
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        assert d.wait_exit(20) == 0
        assert time.monotonic() - t0 < scaled(8)
        assert time.monotonic() - t0 >= 0.99, "did not give the job shutdown_timeout"
        assert_pid_gone(main)
        assert_pid_gone(bg)


def test_queued_jobs_not_started_while_draining(tmp_path):
    with Daemon(tmp_path, queues=one_queue(1, "fifo"),
                extra="shutdown_timeout = 60;") as d:
        c = d.client()
        marker = tmp_path / "started"
        first = c.submit(argv=["sleep", str(scaled(1.0))])
        c.wait_state(first, "running")
        c.submit(argv=["touch", str(marker)])
        d.signal(signal.SIGTERM)
        assert d.wait_exit(30) == 0
        assert not marker.exists(), "a queued job was started during shutdown"


def test_second_sigterm_exits_at_once(tmp_path):
    with Daemon(tmp_path, queues=one_queue(1, "fifo"),
                extra="shutdown_timeout = 60;") as d:
        pidf = tmp_path / "main.pid"
        d.c.submit(shell=f"echo $$ > {pidf}; exec sleep 60")
        pid = read_pid_file(pidf)
        d.signal(signal.SIGTERM)
        time.sleep(0.3)
        assert d.proc.poll() is None, "exited without draining"
        t0 = time.monotonic()
        d.signal(signal.SIGTERM)
        assert d.wait_exit(10) == 0
        assert time.monotonic() - t0 < scaled(5)
        assert_pid_gone(pid)


def test_new_connections_while_draining_get_no_job(tmp_path):
    with Daemon(tmp_path, queues=one_queue(1, "fifo"),
                extra="shutdown_timeout = 60;") as d:
        jid = d.c.submit(argv=["sleep", str(scaled(1.0))])
        d.c.wait_state(jid, "running")
        d.signal(signal.SIGTERM)
        time.sleep(scaled(0.2))
        try:
            with Client(d.sock) as c:
                c.send({"op": "submit", "sleep": 0})
                line = c.recv_line(timeout=30)
        except (ConnectionRefusedError, FileNotFoundError, BrokenPipeError,
                ConnectionResetError):
            line = None                 # no longer accepting at all: also fine
        if line is not None:
            assert_error(json.loads(line), "shutting_down")
        assert d.wait_exit(30) == 0


def test_builtin_default_paths(tmp_path):
    """No -c and no /etc/jobd/jobd.conf: socket under $XDG_RUNTIME_DIR/jobd,
    state under ~/.local/state/jobd (SPEC §1)."""
    if os.path.exists("/etc/jobd/jobd.conf"):
        pytest.skip("/etc/jobd/jobd.conf exists on this machine")
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        probe.bind(("127.0.0.1", 9750))     # the default status_listen
    except OSError:
        pytest.skip("127.0.0.1:9750 is in use (another jobd?)")
    finally:
        probe.close()
    rt, home = tmp_path / "rt", tmp_path / "home"
    rt.mkdir(mode=0o700)
    env = dict(os.environ, XDG_RUNTIME_DIR=str(rt), HOME=str(home))
    env.pop("XDG_STATE_HOME", None)
    env.pop("JOBD_SOCKET", None)
    r = subprocess.run([JOBD, "--check-config"], capture_output=True, text=True,
                       env=env, timeout=scaled(20), stdin=subprocess.DEVNULL)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stdout + r.stderr
    log = open(tmp_path / "jobd.log", "wb")
    p = subprocess.Popen([JOBD], stdout=log, stderr=subprocess.STDOUT, env=env,
                         stdin=subprocess.DEVNULL)
    try:
        sock = rt / "jobd" / "jobd.sock"
        wait_for(lambda: sock.exists(), 10, what=f"{sock}")
        if not os.path.exists("/run/jobd/jobd.sock"):   # jobctl would try that first
            r = subprocess.run([JOBCTL, "ping"], capture_output=True, text=True,
                               env=env, timeout=scaled(20))
            assert r.returncode == 0, r.stderr
        assert (home / ".local" / "state" / "jobd").is_dir()
    finally:
        p.send_signal(signal.SIGTERM)
        rc = p.wait(scaled(30))
        log.close()
    text = (tmp_path / "jobd.log").read_text()
    assert not sanitizer_report(text), text
    assert rc == 0, text
