"""SPEC §5: who may do what, decided by the peer's credentials.

CI runs as root, so jobd runs as root here and clients switch to other
uids in a forked child: `nobody` (65534, a real passwd entry) and 4242 (a
uid with no passwd entry, which may still connect).
"""
import json
import os
import pwd
import shutil
import socket
import tempfile

import pytest

from conftest import Daemon, scaled

NOBODY = pwd.getpwnam("nobody")
OTHER_UID = 4242


@pytest.fixture(autouse=True)
def need_root():
    # Not a skip: CI is root, and these rules cannot be checked otherwise.
    assert os.geteuid() == 0, "test_auth needs root (CI runs as root)"


@pytest.fixture
def open_dir():
    """A directory other uids can reach (pytest's tmp dirs are 0700)."""
    d = tempfile.mkdtemp(prefix="jobd-auth-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def as_user(uid, gid, sock, requests, groups=None):
    """Send requests (a list of objects) as uid/gid on one connection and
    return the list of responses (None where the daemon closed)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                        # child: drop to uid, talk, report
        try:
            os.close(r)
            os.setgroups(groups or [])
            os.setgid(gid)
            os.setuid(uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(scaled(20))
            s.connect(sock)
            f = s.makefile("rwb")
            out = []
            for req in requests:
                # A refused client gets its error line at connect and is
                # closed: the write may fail, the line is still there.
                try:
                    f.write((json.dumps(req) + "\n").encode())
                    f.flush()
                except OSError:
                    pass
                try:
                    line = f.readline()
                except OSError:
                    line = b""
                out.append(json.loads(line) if line else None)
            os.write(w, json.dumps(out).encode())
            os._exit(0)
        except BaseException as e:     # report instead of hanging the test
            os.write(w, json.dumps({"exception": repr(e)}).encode())
            os._exit(1)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    result = json.loads(data)
    assert not isinstance(result, dict), result
    return result


def nobody(sock, *requests):
    return as_user(NOBODY.pw_uid, NOBODY.pw_gid, sock, list(requests))


def other(sock, *requests):
    return as_user(OTHER_UID, OTHER_UID, sock, list(requests))


def auth_daemon(tmp_path, open_dir, extra="", env=None):
    os.makedirs(tmp_path, exist_ok=True)
    return Daemon(tmp_path, sock=os.path.join(open_dir, "jobd.sock"),
                  extra='socket_mode = "0666";\n' + extra, env=env)


def run_as_nobody(d, **job):
    sub = nobody(d.sock, dict(op="submit", **job))[0]
    assert sub["ok"], sub
    fin = nobody(d.sock, {"op": "wait", "id": sub["id"]})[0]
    assert fin["ok"], fin
    return fin["job"]


def test_job_runs_as_its_submitter(tmp_path, open_dir):
    with auth_daemon(tmp_path, open_dir) as d:
        job = run_as_nobody(d, shell="id -u; id -g; id -G")
        assert job["state"] == "succeeded", job
        groups = " ".join(str(g) for g in os.getgrouplist(
            "nobody", NOBODY.pw_gid))
        assert job["stdout"] == f"{NOBODY.pw_uid}\n{NOBODY.pw_gid}\n" \
                                f"{groups}\n"
        assert job["owner"] == {"uid": NOBODY.pw_uid, "gid": NOBODY.pw_gid}


def test_job_environment_is_built_from_passwd(tmp_path, open_dir):
    env = {"NOTIFY_SOCKET": "/run/x", "LD_PRELOAD": "/x.so", "FOO": "bar",
           "LANG": "C.UTF-8"}
    with auth_daemon(tmp_path, open_dir, env=env) as d:
        job = run_as_nobody(d, argv=["env"], env={"MINE": "1"})
        seen = dict(l.split("=", 1) for l in job["stdout"].splitlines())
        assert seen.get("HOME") == NOBODY.pw_dir
        assert seen.get("USER") == "nobody"
        assert seen.get("LOGNAME") == "nobody"
        assert seen.get("PATH") == "/usr/local/bin:/usr/bin:/bin"
        assert seen.get("MINE") == "1"
        for k in seen:
            assert k in ("HOME", "USER", "LOGNAME", "SHELL", "PATH",
                         "LANG", "MINE"), f"unexpected variable {k}"


def test_job_process_is_clean(tmp_path, open_dir):
    with auth_daemon(tmp_path, open_dir) as d:
        job = run_as_nobody(d, shell=(
            "grep -E '^(CapEff|CapPrm|SigBlk|SigIgn)' /proc/self/status; "
            "ls /proc/self/fd | wc -l; ulimit -n; umask; "
            "yes | head -1 >/dev/null && echo pipe-ok; "
            "ps -o pid=,pgid=,sid= -p $$"))
        out = job["stdout"].splitlines()
        caps = dict(l.split(":\t") for l in out[:4])
        assert caps["CapEff"] == "0" * 16 and caps["CapPrm"] == "0" * 16
        assert caps["SigBlk"] == "0" * 16 and caps["SigIgn"] == "0" * 16
        # ls's own directory fd makes 4: 0, 1, 2 and the one ls reads
        assert out[4].strip() == "4", out
        assert out[5].strip() == "1024"
        assert out[6].strip() == "0022"
        assert out[7] == "pipe-ok"
        pid, pgid, sid = out[8].split()
        assert pid == pgid == sid


def test_other_users_jobs_look_nonexistent(tmp_path, open_dir):
    with auth_daemon(tmp_path, open_dir) as d:
        sub = nobody(d.sock, {"op": "submit", "sleep": 30})[0]
        jid = sub["id"]
        missing = {"op": "get", "id": 999999}
        got = other(d.sock, {"op": "get", "id": jid},
                    {"op": "cancel", "id": jid},
                    {"op": "wait", "id": jid, "timeout": 0},
                    missing, {"op": "list"})
        for resp in got[:4]:
            assert resp["ok"] is False
            assert resp["error"]["code"] == "not_found"
        # exactly like a job that does not exist
        assert got[0]["error"]["message"].replace(str(jid), "N") == \
            got[3]["error"]["message"].replace("999999", "N")
        assert got[4]["jobs"] == []
        mine = nobody(d.sock, {"op": "get", "id": jid}, {"op": "list"})
        assert mine[0]["ok"] and mine[1]["jobs"][0]["id"] == jid
        # root is an admin: sees and cancels it
        c = d.client()
        assert c.call({"op": "cancel", "id": jid})["job"]["state"] == \
            "canceled"


def test_join_and_events_count_only_own_jobs(tmp_path, open_dir):
    with auth_daemon(tmp_path, open_dir) as d:
        c = d.client()
        long = c.call({"op": "submit", "sleep": 30})
        assert long["ok"]
        got = nobody(d.sock, {"op": "join", "timeout": 5})
        assert got[0] == {"ok": True}
        c.call({"op": "cancel", "id": long["id"]})


def test_admin_ops_are_forbidden_to_users(tmp_path, open_dir):
    with auth_daemon(tmp_path, open_dir) as d:
        for resp in nobody(d.sock, {"op": "pause", "queue": "default"},
                           {"op": "resume", "queue": "default"}):
            assert resp["ok"] is False
            assert resp["error"]["code"] == "forbidden"
        assert d.client().call({"op": "pause", "queue": "default"})["ok"]


def test_admin_group_members_are_admins(tmp_path, open_dir):
    import grp
    group = grp.getgrgid(NOBODY.pw_gid).gr_name
    with auth_daemon(tmp_path, open_dir,
                     extra=f'admin_group = "{group}";') as d:
        sub = d.client().call({"op": "submit", "sleep": 30})
        got = nobody(d.sock, {"op": "pause", "queue": "default"},
                     {"op": "get", "id": sub["id"]},
                     {"op": "cancel", "id": sub["id"]})
        assert got[0] == {"ok": True}
        assert got[1]["ok"] and got[2]["job"]["state"] == "canceled"


def test_root_jobs_refused_unless_allowed(tmp_path, open_dir):
    # The conftest allows root's jobs (the suite runs as root): this test
    # writes a config of its own, with the default allow_root_jobs = false.
    conf = tmp_path / "root.conf"
    sock = os.path.join(open_dir, "r.sock")
    conf.write_text(f'socket = "{sock}"; state_dir = "{tmp_path}/st2";\n'
                    f'status_listen = "";\n')
    import subprocess
    import time
    p = subprocess.Popen([os.environ["JOBD"], "-c", str(conf)],
                         stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        s.sendall(b'{"op":"submit","argv":["true"]}\n{"op":"ping"}\n')
        f = s.makefile("rb")
        resp = json.loads(f.readline())
        assert resp["ok"] is False and resp["error"]["code"] == "forbidden"
        assert "allow_root_jobs" in resp["error"]["message"]
        assert json.loads(f.readline())["ok"]        # still connected
        s.close()
    finally:
        p.terminate()
        assert p.wait(timeout=scaled(10)) == 0


def test_min_uid_and_allow_users(tmp_path, open_dir):
    with auth_daemon(tmp_path, open_dir, extra="min_uid = 5000;") as d:
        got = other(d.sock, {"op": "submit", "argv": ["true"]})[0]
        assert got["error"]["code"] == "forbidden"
        assert "min_uid" in got["error"]["message"]
    with auth_daemon(tmp_path / "b", open_dir,
                     extra='allow_users = ["nobody"];') as d:
        assert other(d.sock, {"op": "submit", "argv": ["true"]})[0][
            "error"]["code"] == "forbidden"
        assert nobody(d.sock, {"op": "submit", "argv": ["true"]})[0]["ok"]


def test_max_jobs_per_user(tmp_path, open_dir):
    with auth_daemon(tmp_path, open_dir,
                     extra="max_jobs_per_user = 1;") as d:
        got = nobody(d.sock, {"op": "submit", "sleep": 30},
                     {"op": "submit", "sleep": 30, "nowait": True},
                     {"op": "submit", "sleep": 30, "block_timeout": 0.2})
        assert got[0]["ok"]
        assert got[1]["error"]["code"] == "queue_full"
        assert "max_jobs_per_user" in got[1]["error"]["message"]
        assert got[2]["error"]["code"] == "timeout"
        # another user (root is exempt) is not held back
        assert d.client().call({"op": "submit", "sleep": 0, "nowait": True})[
            "ok"]
        d.client().call({"op": "cancel", "id": got[0]["id"]})


def test_max_connections_per_user(tmp_path, open_dir):
    with auth_daemon(tmp_path, open_dir,
                     extra="max_connections_per_user = 1;") as d:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.setgid(NOBODY.pw_gid)
            os.setuid(NOBODY.pw_uid)
            a = socket.socket(socket.AF_UNIX)
            a.connect(d.sock)
            a.sendall(b'{"op":"ping"}\n')
            a.recv(1000)
            b = socket.socket(socket.AF_UNIX)
            b.connect(d.sock)
            b.settimeout(10)
            os.write(w, b.recv(1000))
            os._exit(0)
        os.close(w)
        line = os.read(r, 1000)
        os.waitpid(pid, 0)
        resp = json.loads(line)
        assert resp["error"]["code"] == "unavailable"


def test_non_root_daemon_admits_only_its_user(tmp_path, open_dir):
    """jobd run by nobody: root and nobody may connect, uid 4242 may not."""
    import subprocess
    import time
    d = os.path.join(open_dir, "u")
    os.mkdir(d)
    os.chown(d, NOBODY.pw_uid, NOBODY.pw_gid)
    sock = os.path.join(d, "jobd.sock")
    conf = os.path.join(d, "jobd.conf")
    with open(conf, "w") as f:
        f.write(f'socket = "{sock}"; socket_mode = "0666";\n'
                f'state_dir = "{d}/state"; status_listen = "";\n')

    def drop():
        os.setgroups([])
        os.setgid(NOBODY.pw_gid)
        os.setuid(NOBODY.pw_uid)
    p = subprocess.Popen([os.environ["JOBD"], "-c", conf], preexec_fn=drop,
                         stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        got = other(sock, {"op": "ping"})[0]
        assert got is not None and got["error"]["code"] == "forbidden"
        assert nobody(sock, {"op": "ping"})[0]["ok"]
        s = socket.socket(socket.AF_UNIX)
        s.connect(sock)
        s.sendall(b'{"op":"ping"}\n')
        assert json.loads(s.makefile("rb").readline())["ok"]
        s.close()
    finally:
        p.terminate()
        assert p.wait(timeout=scaled(10)) == 0


def http_as(uid, gid, path, url):
    """GET url over the Unix socket at path as uid; (status, body)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(scaled(10))
            s.connect(path)
            s.sendall(f"GET {url} HTTP/1.1\r\nHost: x\r\n"
                      "Connection: close\r\n\r\n".encode())
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            os.write(w, data)
            os._exit(0)
        except BaseException as e:
            os.write(w, repr(e).encode())
            os._exit(1)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_unix_status_endpoint_shows_only_own_jobs(tmp_path, open_dir):
    status = os.path.join(open_dir, "status.sock")
    with Daemon(tmp_path, sock=os.path.join(open_dir, "jobd.sock"),
                extra='socket_mode = "0666";',
                status_listen=f"unix:{status}") as d:
        jid = nobody(d.sock, {"op": "submit", "argv": ["true"]})[0]["id"]
        nobody(d.sock, {"op": "wait", "id": jid})
        code, body = http_as(NOBODY.pw_uid, NOBODY.pw_gid, status, "/jobs")
        assert code == 200 and [j["id"] for j in body["jobs"]] == [jid]
        assert body["jobs"][0]["argv"] == ["true"]  # details over Unix
        code, body = http_as(OTHER_UID, OTHER_UID, status, "/jobs")
        assert code == 200 and body["jobs"] == []
        code, body = http_as(OTHER_UID, OTHER_UID, status, f"/jobs/{jid}")
        assert code == 404 and body["error"]["code"] == "not_found"
        code, body = http_as(0, 0, status, f"/jobs/{jid}")   # admin
        assert code == 200 and body["id"] == jid
