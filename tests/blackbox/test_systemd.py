"""SPEC §6: jobd under systemd — socket activation and the notify protocol.

jobd is started by systemd-socket-activate (package "systemd"), which binds
the sockets, waits for the first connection on any of them, then execs jobd
in place (same pid) with LISTEN_FDS/LISTEN_PID/LISTEN_FDNAMES and the -E
variables.  A datagram socket bound in the test stands in for systemd's
NOTIFY_SOCKET and records what jobd sends.

Starts that must fail (bad config, an inherited fd that is no listening
socket) are checked for never sending READY=1.  For the second, a small
Python launcher puts the fd at 3, sets LISTEN_PID to its own pid and execs
jobd.
"""

import http.client
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from conftest import (JOBD, SCALE, Client, Daemon, one_queue, root_key,
                      scaled, wait_for)

SSA = shutil.which("systemd-socket-activate")
SSA_MISSING = ("systemd-socket-activate not found in PATH: it comes with the "
               "Debian package \"systemd\" (add it to scripts/deps.sh)")

WATCHDOG_USEC = 400000          # pings expected every 0.2 s
# Variables that belong to jobd's supervisor and must never reach a job.
PRIVATE = ("LISTEN_", "NOTIFY_SOCKET", "WATCHDOG_")
# Sanitizer settings: systemd-socket-activate passes on only PATH, TERM,
# USER, HOME and what -E names.
SAN_VARS = ("ASAN_OPTIONS", "UBSAN_OPTIONS", "LSAN_OPTIONS", "TSAN_OPTIONS")


def require_ssa():
    """A missing tool is a failure, not a skip: CI must install it."""
    if SSA is None:
        pytest.fail(SSA_MISSING)


@pytest.fixture
def sdir():
    """A directory whose paths fit in sun_path (tmp_path may be too long)."""
    d = tempfile.mkdtemp(prefix="jobd-sd")
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# ---------------------------------------------------------------------------
# the notify socket


class Notify:
    """systemd's side of NOTIFY_SOCKET: collects (time, message) pairs."""

    def __init__(self, path):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.sock.settimeout(0.05)
        self.msgs = []
        self.lock = threading.Lock()
        self.done = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.done:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.msgs.append((time.monotonic(), data.decode()))

    def all(self):
        with self.lock:
            return list(self.msgs)

    def lines(self, prefix):
        """(time, value) of every message line starting with prefix."""
        out = []
        for t, m in self.all():
            for line in m.split("\n"):
                if line.startswith(prefix):
                    out.append((t, line[len(prefix):]))
        return out

    def wait(self, prefix, pred=lambda v: True, timeout=10.0, after=0.0):
        """The first prefix line later than `after` whose value passes pred."""
        def find():
            for t, v in self.lines(prefix):
                if t > after and pred(v):
                    return (t, v)
            return None
        return wait_for(find, timeout, what=f"{prefix!r} on NOTIFY_SOCKET "
                        f"(got {self.all()[-8:]!r})")

    def close(self):
        self.done = True
        self.thread.join()
        self.sock.close()


@pytest.fixture
def notify(sdir):
    n = Notify(sdir / "notify.sock")
    yield n
    n.close()


# ---------------------------------------------------------------------------
# jobd started by systemd-socket-activate


class Activated(Daemon):
    """A Daemon whose sockets come from systemd-socket-activate.

    The config names a control socket and a status_listen of its own that
    must stay unused: the passed sockets replace them."""

    def __init__(self, tmp_path, sdir, status, notify=None, fdnames=None,
                 extra_listen=(), setenv=None, **kw):
        super().__init__(tmp_path, **kw)
        self.sdir = Path(sdir)
        self.sock = str(self.sdir / "ctl.sock")          # the passed one
        self.config_sock = self.sdir / "unused.sock"
        self.config_status = self.sdir / "unused-status.sock"
        self.status = status          # ("tcp", port) or ("unix", path)
        self.notify = notify
        self.fdnames = fdnames or ["control", "status"]
        self.extra_listen = list(extra_listen)
        self.setenv = dict(setenv or {})

    def config_text(self):
        text = (f'socket = "{self.config_sock}";\n'
                f'state_dir = "{self.state_dir}";\n'
                f'status_listen = "unix:{self.config_status}";\n')
        text += root_key()
        if self.queues:
            text += f"queues = {self.queues};\n"
        if self.extra:
            text += self.extra.rstrip() + "\n"
        return text

    def status_addr(self):
        kind, where = self.status
        return f"127.0.0.1:{where}" if kind == "tcp" else str(where)

    def argv(self):
        a = [SSA, "-l", self.sock, "-l", self.status_addr()]
        for extra in self.extra_listen:
            a += ["-l", str(extra)]
        a.append("--fdname=" + ":".join(self.fdnames))
        env = dict(self.setenv)
        if self.notify is not None:
            env["NOTIFY_SOCKET"] = self.notify.path
        for k in SAN_VARS:
            if k in os.environ:
                env[k] = os.environ[k]
        for k, v in env.items():
            a += ["-E", f"{k}={v}"]
        return a + [JOBD, "-c", str(self.conf)]

    def start(self, check=True):
        self.write_config()
        if check:
            self.check_config()
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.argv(), stdin=subprocess.PIPE,
                                     stdout=self.logf, stderr=subprocess.STDOUT,
                                     env=self.environ(), start_new_session=True)
        # systemd-socket-activate binds one socket after the other, then
        # waits for a first connection.  Wait for all of them; remember
        # fd -> the socket object it holds ("socket:[N]"), to look for them
        # among jobd's and jobs' fds later.
        fds = range(3, 3 + 2 + len(self.extra_listen))

        def bound():
            assert self.proc.poll() is None, \
                f"systemd-socket-activate exited {self.proc.returncode}:\n" \
                f"{self.log()}"
            try:
                links = {fd: os.readlink(f"/proc/{self.pid}/fd/{fd}")
                         for fd in fds}
            except FileNotFoundError:
                return None
            ok = all(v.startswith("socket:") for v in links.values())
            return links if ok and os.path.exists(self.sock) else None
        self.passed = wait_for(bound, 10, what="systemd-socket-activate to "
                               "bind its sockets")
        self.ino = os.stat(self.sock).st_ino
        return self

    def trigger(self):
        """The first connection: systemd-socket-activate execs jobd now.
        It waits in the backlog until jobd accepts it."""
        c = Client(self.sock)
        self._clients.append(c)
        return c


def http_get(d, path):
    kind, where = d.status
    if kind == "tcp":
        conn = http.client.HTTPConnection("127.0.0.1", where,
                                          timeout=scaled(10))
    else:
        conn = http.client.HTTPConnection("localhost", timeout=scaled(10))
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(scaled(10))
        s.connect(str(where))
        conn.sock = s
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, r.read()
    finally:
        conn.close()


def job_fds(d):
    """The fds a job sees, as readlink shows them."""
    j = d.c.run(argv=["sh", "-c",
                      'for f in /proc/$$/fd/*; do readlink "$f"; done; true'])
    assert j["state"] == "succeeded" and j["stdout"], j
    return set(j["stdout"].split())


# ---------------------------------------------------------------------------
# tests


def test_socket_activation_and_notify(tmp_path, sdir, notify):
    require_ssa()
    port = free_port()
    d = Activated(tmp_path, sdir, ("tcp", port), notify=notify,
                  queues=one_queue(1, "fifo"),
                  extra="shutdown_timeout = 2.0;\nkill_grace = 1.0;\n",
                  setenv={"WATCHDOG_USEC": WATCHDOG_USEC})
    with d:
        c0 = d.trigger()
        t_ready, _ = notify.wait("READY=1", lambda v: v == "", timeout=10)

        # Served through the passed fds: the connection that triggered the
        # exec (queued before jobd ran) is answered by jobd itself.
        r = c0.ok({"op": "ping"})
        assert r["pid"] == d.pid, r
        assert http_get(d, "/healthz") == (200, b'{"ok":true}\n')
        # Neither the configured socket nor status_listen was bound, and
        # the passed socket file is the very one systemd created.
        assert not d.config_sock.exists()
        assert not d.config_status.exists()
        assert os.stat(d.sock).st_ino == d.ino
        assert [v for _, v in notify.lines("READY=1")] == [""], notify.all()

        # STATUS= one line, kept current: it follows the jobs.
        notify.wait("STATUS=", lambda v: v == "0 queued, 0 running, "
                    "0/1 workers busy")
        a = d.c.submit(sleep=30)
        b = d.c.submit(sleep=30)
        d.c.wait_state(a, "running")
        notify.wait("STATUS=", lambda v: v == "1 queued, 1 running, "
                    "1/1 workers busy", timeout=5)
        d.c.ok({"op": "cancel", "id": b})
        d.c.ok({"op": "cancel", "id": a}, timeout=15)
        notify.wait("STATUS=", lambda v: v == "0 queued, 0 running, "
                    "0/1 workers busy", timeout=5, after=t_ready)
        statuses = [v for _, v in notify.lines("STATUS=")]
        assert all(x != y for x, y in zip(statuses, statuses[1:])), \
            f"STATUS= sent without a change: {statuses!r}"

        # WATCHDOG=1 every WATCHDOG_USEC/2 from the loop.
        def pings():
            p = [t for t, _ in notify.lines("WATCHDOG=1") if t > t_ready]
            return p if len(p) >= 8 else None
        p = wait_for(pings, 5, what="8 WATCHDOG=1 pings")
        gap = statistics.median(y - x for x, y in zip(p, p[1:]))
        assert 0.15 <= gap <= 0.2 + 0.1 * SCALE, \
            f"median WATCHDOG=1 interval {gap:.3f}s (want ~0.2s)"

        # Jobs get none of the supervisor's variables, nor the sockets.
        j = d.c.run(argv=["env"])
        assert j["state"] == "succeeded", j
        leaked = [l for l in j["stdout"].splitlines() if l.startswith(PRIVATE)]
        assert leaked == [], f"job environment has {leaked!r}"
        assert not (job_fds(d) & set(d.passed.values())), \
            "a job inherited a passed socket"

        # A passed TCP socket is TCP for SPEC §5: job records are redacted.
        code, body = http_get(d, f"/jobs/{j['id']}")
        assert code == 200 and b'"argv"' not in body, body

        t_term = time.monotonic()
        d.signal(signal.SIGTERM)
        notify.wait("STOPPING=1", timeout=5, after=t_term)
        notify.wait("STATUS=", lambda v: v.startswith("stopping: "),
                    timeout=5, after=t_term)
        assert d.wait_exit(20) == 0, d.log()[-3000:]
        assert [v for _, v in notify.lines("READY=1")] == [""]
        # Never unlinked: still there, still the same file.
        assert os.stat(d.sock).st_ino == d.ino
    assert "passed" in d.log()


def test_unix_status_socket_unknown_fd_and_foreign_watchdog_pid(
        tmp_path, sdir, notify):
    require_ssa()
    status = sdir / "status.sock"
    extra = sdir / "extra.sock"
    d = Activated(tmp_path, sdir, ("unix", status), notify=notify,
                  fdnames=["control", "status", "bogus"], extra_listen=[extra],
                  queues=one_queue(1, "fifo"),
                  # WATCHDOG_PID is not jobd's: the watchdog is someone else's.
                  setenv={"WATCHDOG_USEC": WATCHDOG_USEC,
                          "WATCHDOG_PID": os.getpid()})
    with d:
        d.trigger().ok({"op": "ping"})
        notify.wait("READY=1")
        # The unknown one is closed with a warning naming it.
        wait_for(lambda: "bogus" in d.log(), 5, what="a warning about fd "
                 "\"bogus\"")
        held = set()
        for fd in os.listdir(f"/proc/{d.pid}/fd"):
            try:
                held.add(os.readlink(f"/proc/{d.pid}/fd/{fd}"))
            except FileNotFoundError:
                pass
        assert d.passed[3] in held and d.passed[4] in held, (d.passed, held)
        assert d.passed[5] not in held, "the unknown passed fd is still open"

        # A passed Unix status socket is local for SPEC §5: full records.
        j = d.c.run(argv=["true"])
        code, body = http_get(d, f"/jobs/{j['id']}")
        assert code == 200 and b'"argv":["true"]' in body, body

        time.sleep(1.0)
        assert notify.lines("WATCHDOG=1") == [], \
            "WATCHDOG=1 sent although WATCHDOG_PID is another process"
        assert d.stop() == 0
    assert os.path.exists(status), "a passed socket was unlinked"
    assert os.path.exists(d.sock), "a passed socket was unlinked"


def test_failed_start_bad_config_never_ready(tmp_path, sdir, notify):
    require_ssa()
    d = Activated(tmp_path, sdir, ("tcp", free_port()), notify=notify,
                  queues='( { name = "default"; workers = 0; } )')
    d.start(check=False)
    try:
        d.trigger()
        assert d.wait_exit(20) == 78, d.log()
        time.sleep(0.3)
        assert notify.lines("READY=1") == [], notify.all()
    finally:
        d.finish(expect_rc=78)


LAUNCH = r'''
import os, socket, sys
kind, jobd, conf = sys.argv[1:4]
if kind == "file":
    fd = os.open("/dev/null", os.O_RDONLY)
else:   # a Unix stream socket that does not listen
    fd = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).detach()
if fd != 3:
    os.dup2(fd, 3)
    os.close(fd)
os.set_inheritable(3, True)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS="1",
                  LISTEN_FDNAMES="control")
os.execv(jobd, [jobd, "-c", conf])
'''


@pytest.mark.parametrize("kind", ["file", "socket"])
def test_failed_start_passed_fd_not_listening_never_ready(tmp_path, sdir,
                                                          notify, kind):
    d = Daemon(tmp_path, queues=one_queue(1, "fifo"), sock=sdir / "ctl.sock",
               env={"NOTIFY_SOCKET": notify.path}, start=False)
    d.write_config()
    d.check_config()
    d.logf = open(d.log_path, "ab")
    d.proc = subprocess.Popen([sys.executable, "-c", LAUNCH, kind, JOBD,
                               str(d.conf)], stdin=subprocess.PIPE,
                              stdout=d.logf, stderr=subprocess.STDOUT,
                              env=d.environ(), start_new_session=True)
    try:
        assert d.wait_exit(20) == 1, d.log()
        assert "fd 3" in d.log() and "control" in d.log(), d.log()
        assert not os.path.exists(d.sock), "bound its own socket instead"
        time.sleep(0.3)
        assert notify.lines("READY=1") == [], notify.all()
    finally:
        d.finish(expect_rc=1)
