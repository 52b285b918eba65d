"""
Black-box tests for jobd and jobctl (SPEC §1, §2, §4).

The suite runs the real binaries named by $JOBD and $JOBCTL (default:
build/release/ in this tree) against a private config in pytest's tmp_path.
Waits are scaled by $VARIANT (sanitizer builds are slower); tests assert only
generous upper bounds on time, and lower bounds only where the SPEC makes
them a semantic requirement (a timeout, a kill_grace).

Shared pieces:
  Daemon   writes a config, checks it with --check-config, starts jobd,
           waits for ping; on exit SIGTERMs it, asserts exit 0 and scans its
           log for sanitizer reports.
  Client   one newline-framed JSON connection to the control socket.
  jobctl() runs the client binary against a daemon.
"""

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
JOBD = os.environ.get("JOBD") or str(ROOT / "build/release/jobd")
JOBCTL = os.environ.get("JOBCTL") or str(ROOT / "build/release/jobctl")
VARIANT = os.environ.get("VARIANT", "release")
SCALE = float(os.environ.get("JOBD_TEST_SCALE",
                             {"release": 1, "asan": 3, "tsan": 3}.get(VARIANT, 3)))

SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "WARNING: ThreadSanitizer",
    "runtime error:",
    "LeakSanitizer",
)

RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
FINAL_STATES = ("succeeded", "failed", "timed_out", "canceled")
# Every job record carries these, plus exactly one of argv / shell / sleep.
RECORD_KEYS = {
    "id", "queue", "name", "state", "priority", "attempts",
    "submitted_at", "started_at", "finished_at", "exit_code", "signal",
    "timeout", "stdout", "stderr", "stdout_truncated", "stderr_truncated",
    "owner", "error",
}
KIND_KEYS = ("argv", "shell", "sleep")
# SPEC §5 mentions env among a record's (redactable) keys; tolerate it and cwd.
RECORD_OPTIONAL_KEYS = {"env", "cwd"}


def scaled(seconds):
    """A generous wait, stretched for sanitizer builds."""
    return seconds * SCALE


def wait_for(pred, timeout=5.0, interval=0.02, what="condition"):
    """Poll pred() until it returns a truthy value; fail the test otherwise."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {scaled(timeout):.1f}s waiting for {what}")
        time.sleep(interval)


def sanitizer_report(text):
    return any(m in text for m in SANITIZER_MARKERS)


def pid_alive(pid):
    """True while pid exists and is not a zombie (PID 1 here may not reap)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    # state is the field after the ")" closing comm
    st = data[data.rindex(")") + 2:].split()[0]
    return st not in ("Z", "X")


def read_pid_file(path, timeout=5.0):
    """Wait for a job to have written its pid into path; return it."""
    def get():
        try:
            s = Path(path).read_text().strip()
        except FileNotFoundError:
            return None
        return int(s) if s.isdigit() else None
    return wait_for(get, timeout, what=f"pid in {path}")


def assert_pid_gone(pid, timeout=5.0):
    wait_for(lambda: not pid_alive(pid), timeout,
             what=f"process {pid} to be gone")


def vm_rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# ---------------------------------------------------------------------------
# Client


class Client:
    """One connection to the control socket; newline-framed JSON both ways."""

    def __init__(self, path, connect_timeout=None):
        self.path = str(path)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(scaled(connect_timeout or 5.0))
        self.sock.connect(self.path)
        self.buf = b""
        self.eof = False

    # -- sending
    def send(self, obj):
        self.send_raw((json.dumps(obj) + "\n").encode())

    def send_raw(self, data):
        self.sock.settimeout(scaled(10))
        self.sock.sendall(data)

    # -- receiving
    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout()
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
        self.buf += chunk

    def recv_line(self, timeout=10.0):
        """The next line (without \\n) as bytes; None at EOF; raises
        socket.timeout when nothing complete arrives in time."""
        deadline = time.monotonic() + scaled(timeout)
        while b"\n" not in self.buf:
            if self.eof:
                return None
            self._fill(deadline)
        line, _, self.buf = self.buf.partition(b"\n")
        return line

    def recv(self, timeout=10.0):
        """One response parsed as JSON; fails the test on timeout or EOF."""
        try:
            line = self.recv_line(timeout)
        except socket.timeout:
            pytest.fail(f"no response from jobd within {scaled(timeout):.1f}s")
        if line is None:
            pytest.fail("jobd closed the connection instead of answering")
        try:
            obj = json.loads(line.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            pytest.fail(f"response is not UTF-8 JSON ({e}): {line[:300]!r}")
        assert isinstance(obj, dict), f"response is not an object: {obj!r}"
        assert isinstance(obj.get("ok"), bool), f"response without ok: {obj!r}"
        return obj

    def call(self, obj, timeout=10.0):
        self.send(obj)
        return self.recv(timeout)

    def nothing_within(self, seconds):
        """True when no complete line arrives within seconds (not scaled)."""
        try:
            line = self.recv_line(seconds / SCALE)
        except socket.timeout:
            return True
        if line is not None:
            # put it back so the caller can still read it
            self.buf = line + b"\n" + self.buf
        return False

    def expect_eof(self, timeout=10.0):
        """Wait for the daemon to close; returns the lines received before."""
        lines = []
        try:
            while True:
                line = self.recv_line(timeout)
                if line is None:
                    return lines
                lines.append(line)
        except socket.timeout:
            pytest.fail(f"connection not closed within {scaled(timeout):.1f}s "
                        f"(got {lines!r})")

    # -- convenience wrappers (assert ok)
    def ok(self, obj, timeout=10.0):
        r = self.call(obj, timeout)
        assert r["ok"] is True, f"{obj!r} -> {r!r}"
        return r

    def submit(self, **fields):
        r = self.ok(dict(op="submit", **fields))
        return r["id"]

    def get(self, jid):
        return self.ok({"op": "get", "id": jid})["job"]

    def wait(self, jid, timeout=15.0):
        r = self.call({"op": "wait", "id": jid, "timeout": scaled(timeout)},
                      timeout=timeout + 5)
        assert r["ok"] is True, f"wait {jid}: {r!r}"
        return r["job"]

    def run(self, wait_timeout=15.0, **fields):
        """Submit a job and wait for its final record."""
        return self.wait(self.submit(**fields), wait_timeout)

    def wait_state(self, jid, state, timeout=10.0):
        return wait_for(lambda: (lambda j: j if j["state"] == state else None)(
            self.get(jid)), timeout, what=f"job {jid} to be {state}")

    def stats(self):
        return self.ok({"op": "stats"})["stats"]

    def shutdown_wr(self):
        self.sock.shutdown(socket.SHUT_WR)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def error_code(resp):
    assert resp["ok"] is False, f"expected an error, got {resp!r}"
    err = resp.get("error")
    assert isinstance(err, dict), f"error without object: {resp!r}"
    assert isinstance(err.get("code"), str) and isinstance(err.get("message"), str), resp
    return err["code"]


def assert_error(resp, code, mentions=None):
    assert error_code(resp) == code, f"expected {code}, got {resp!r}"
    if mentions is not None:
        assert mentions in resp["error"]["message"], \
            f"message should name {mentions!r}: {resp!r}"


# ---------------------------------------------------------------------------
# Daemon


def _probe_root_key():
    """Running as root, jobd would refuse our uid-0 submits (SPEC §5) unless
    allow_root_jobs = true.  Use the key when this jobd knows it."""
    if os.geteuid() != 0 or not os.path.exists(JOBD):
        return ""
    with tempfile.TemporaryDirectory() as d:
        p = os.path.join(d, "probe.conf")
        with open(p, "w") as f:
            f.write("allow_root_jobs = true;\n")
        try:
            r = subprocess.run([JOBD, "--check-config", "-c", p],
                               capture_output=True, timeout=scaled(20))
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return "allow_root_jobs = true;\n" if r.returncode == 0 else ""


_ROOT_KEY = None


def root_key():
    global _ROOT_KEY
    if _ROOT_KEY is None:
        _ROOT_KEY = _probe_root_key()
    return _ROOT_KEY


_short_dirs = []


class Daemon:
    """A jobd run in tmp_path.

        with Daemon(tmp_path, queues='( { name = "default"; workers = 1; } )',
                    extra='kill_grace = 1.0;') as d:
            c = d.client()
    """

    def __init__(self, tmp_path, queues=None, extra="", env=None, name="jobd",
                 sock=None, state_dir=None, start=True, status_listen=""):
        self.dir = Path(tmp_path)
        # SPEC §3 status_listen; "" (off) unless a test serves HTTP.
        self.status_listen = status_listen
        self.name = name
        self.queues = queues
        self.extra = extra
        self.env_extra = dict(env or {})
        self.conf = self.dir / f"{name}.conf"
        self.log_path = self.dir / f"{name}.log"
        self.state_dir = Path(state_dir) if state_dir else self.dir / "state"
        if sock is None:
            sock = self.dir / "jobd.sock"
            if len(str(sock)) > 100:      # sun_path is 108 bytes
                short = tempfile.mkdtemp(prefix="jobd-t")
                _short_dirs.append(short)
                sock = Path(short) / "jobd.sock"
        self.sock = str(sock)
        self.proc = None
        self.returncode = None
        self._client = None
        self._clients = []
        self.autostart = start

    # -- config
    def config_text(self):
        text = (f'socket = "{self.sock}";\n'
                f'state_dir = "{self.state_dir}";\n'
                f'status_listen = "{self.status_listen}";\n')
        text += root_key()
        if self.queues:
            text += f"queues = {self.queues};\n"
        if self.extra:
            text += self.extra.rstrip() + "\n"
        return text

    def write_config(self):
        self.conf.write_text(self.config_text())

    def check_config(self):
        r = subprocess.run([JOBD, "--check-config", "-c", str(self.conf)],
                           capture_output=True, text=True, timeout=scaled(20),
                           stdin=subprocess.DEVNULL)
        out = r.stdout + r.stderr
        assert not sanitizer_report(out), out
        assert r.returncode == 0, \
            f"--check-config exit {r.returncode}: {out}\n{self.config_text()}"
        assert r.stdout.strip() == "ok", f"--check-config said {out!r}"

    # -- process
    def environ(self):
        env = dict(os.environ)
        for k in ("JOBD_SOCKET", "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID",
                  "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID",
                  "JOURNAL_STREAM", "INVOCATION_ID"):
            env.pop(k, None)
        env.update(self.env_extra)
        return env

    def start(self, check=True):
        self.write_config()
        if check:
            self.check_config()
        self.logf = open(self.log_path, "ab")
        # stdin is a pipe we never write to nor close: a job that inherited
        # the daemon's stdin would block on it (SPEC: never the daemon's own).
        self.proc = subprocess.Popen([JOBD, "-c", str(self.conf)],
                                     stdin=subprocess.PIPE, stdout=self.logf,
                                     stderr=subprocess.STDOUT, env=self.environ(),
                                     start_new_session=True)
        self.wait_ready()
        return self

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + scaled(timeout)
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"jobd exited with {self.proc.returncode} at start:\n"
                            f"{self.log()}")
            try:
                with Client(self.sock, connect_timeout=1) as c:
                    r = c.call({"op": "ping"}, timeout=2)
                    if r.get("ok"):
                        return
                    last = r
            except (OSError, socket.timeout) as e:
                last = e
            time.sleep(0.02)
        pytest.fail(f"jobd did not answer ping in {scaled(timeout):.0f}s "
                    f"({last!r}):\n{self.log()}")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def wait_exit(self, timeout):
        try:
            self.returncode = self.proc.wait(scaled(timeout))
        except subprocess.TimeoutExpired:
            self.kill_hard()
            pytest.fail(f"jobd did not exit within {scaled(timeout):.0f}s:\n"
                        f"{self.log()[-4000:]}")
        return self.returncode

    def kill_hard(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def stop(self, timeout=45.0):
        """SIGTERM and wait; returns the exit status."""
        for c in self._clients:
            c.close()
        self._clients = []
        self._client = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def finish(self, expect_rc=0):
        """Stop if still running; check exit status and the log."""
        try:
            if self.proc is None:
                return
            rc = self.proc.poll()
            if rc is None:
                rc = self.stop()
            log = self.log()
            if sanitizer_report(log):
                pytest.fail(f"sanitizer report in jobd log:\n{log}")
            if expect_rc is not None:
                assert rc == expect_rc, f"jobd exit status {rc}:\n{log[-4000:]}"
        finally:
            if self.proc and self.proc.stdin:
                try:
                    self.proc.stdin.close()
                except OSError:
                    pass
            if getattr(self, "logf", None):
                self.logf.close()

    # -- clients
    def client(self):
        c = Client(self.sock)
        self._clients.append(c)
        return c

    @property
    def c(self):
        """A shared connection for simple request/response calls."""
        if self._client is None:
            self._client = self.client()
        return self._client

    def call(self, obj, timeout=10.0):
        return self.c.call(obj, timeout)

    def jobctl(self, *args, **kw):
        return jobctl("-s", self.sock, *args, **kw)

    # -- context manager
    def __enter__(self):
        if self.autostart and self.proc is None:
            self.start()
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            self.finish()
        else:
            # The test already failed: still stop jobd, but let the original
            # failure be the one reported; the log goes to captured stdout.
            try:
                self.finish(expect_rc=None)
            except BaseException:
                pass
            print(f"--- {self.log_path} (exit {self.returncode}):\n"
                  f"{self.log()[-6000:]}")
        return False


def jobctl(*args, env=None, input=None, timeout=30.0, check_sanitizer=True):
    """Run jobctl; returns CompletedProcess with text stdout/stderr."""
    e = dict(os.environ)
    e.pop("JOBD_SOCKET", None)
    if env:
        e.update(env)
    try:
        r = subprocess.run([JOBCTL, *[str(a) for a in args]], capture_output=True,
                           text=True, env=e, input=input,
                           stdin=None if input is not None else subprocess.DEVNULL,
                           timeout=scaled(timeout))
    except subprocess.TimeoutExpired as ex:
        pytest.fail(f"jobctl {args!r} did not finish within {scaled(timeout):.0f}s: {ex}")
    if check_sanitizer:
        assert not sanitizer_report(r.stderr), f"jobctl {args!r}:\n{r.stderr}"
    return r


def one_queue(workers=1, policy="fifo", **more):
    """A queues = (...) value with the single queue "default"."""
    return queues_conf(("default", workers, policy, more))


def queues_conf(*qs):
    parts = []
    for name, workers, policy, more in qs:
        s = f'{{ name = "{name}"; workers = {workers}; policy = "{policy}";'
        for k, v in more.items():
            s += f" {k} = {v};"
        parts.append(s + " }")
    return "( " + ", ".join(parts) + " )"


# ---------------------------------------------------------------------------
# fixtures


@pytest.fixture(scope="session", autouse=True)
def _binaries():
    for b in (JOBD, JOBCTL):
        if not os.access(b, os.X_OK):
            pytest.exit(f"{b} is not built (set JOBD/JOBCTL or run make)", 2)
    yield
    for d in _short_dirs:
        subprocess.run(["rm", "-rf", d])


@pytest.fixture
def daemon(tmp_path):
    """jobd on the default config (base keys only)."""
    with Daemon(tmp_path) as d:
        yield d


@pytest.fixture
def d1(tmp_path):
    """jobd with one fifo queue "default" of one worker."""
    with Daemon(tmp_path, queues=one_queue(1, "fifo")) as d:
        yield d
