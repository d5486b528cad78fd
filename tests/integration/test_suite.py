"""The foundation: the suite starts, holds the privileges docs/SECURITY.md
states, refuses syscalls outside each allowlist, survives killed daemons,
serves Version over gRPC and leaves nothing behind."""
import os
import re
import signal
import stat
import subprocess
import time

import grpc
import pytest

from conftest import BIN, DAEMONS, TOP, proc_status, wait_for

import api_pb2
import api_pb2_grpc

CAP_BITS = {
    "CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_DAC_READ_SEARCH": 2, "CAP_FOWNER": 3,
    "CAP_FSETID": 4, "CAP_KILL": 5, "CAP_SETGID": 6, "CAP_SETUID": 7, "CAP_SETPCAP": 8,
    "CAP_NET_BIND_SERVICE": 10, "CAP_NET_ADMIN": 12, "CAP_NET_RAW": 13, "CAP_SYS_PTRACE": 19,
    "CAP_SYS_ADMIN": 21, "CAP_MKNOD": 27, "CAP_SETFCAP": 31,
}


def security_matrix():
    """The privilege matrix from docs/SECURITY.md, the table between the markers."""
    with open(os.path.join(TOP, "docs", "SECURITY.md")) as f:
        text = f.read()
    block = text.split("<!-- privilege-matrix:begin -->")[1].split("<!-- privilege-matrix:end -->")[0]
    rows = {}
    for line in block.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) < 5 or not cells[0].startswith("crisp-"):
            continue
        caps = [] if cells[2] in ("none", "") else [c.strip() for c in cells[2].split(",")]
        rows[cells[0]] = {"user": cells[1], "caps": caps, "nnp": cells[3], "seccomp": cells[4]}
    return rows


def cap_mask(names):
    mask = 0
    for n in names:
        mask |= 1 << CAP_BITS[n]
    return mask


def version(suite, timeout=5):
    with suite.channel() as ch:
        return api_pb2_grpc.RuntimeServiceStub(ch).Version(api_pb2.VersionRequest(version="v1"),
                                                           timeout=timeout)


def test_version_over_grpc(suite):
    v = version(suite)
    assert v.runtime_name == "crisp"
    assert v.runtime_api_version == "v1"
    assert v.version == "0.1.0"
    assert re.fullmatch(r"\d+\.\d+\.\d+", v.runtime_version)


def test_socket_is_0660(suite):
    st = os.lstat(suite.socket)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660


def test_every_daemon_runs_with_its_documented_privileges(suite):
    matrix = security_matrix()
    assert set(matrix) == set(DAEMONS), "docs/SECURITY.md must list every daemon"
    import pwd
    pids = suite.daemon_pids()
    for name, row in matrix.items():
        st = proc_status(pids[name[:15]])
        uid = pwd.getpwnam(row["user"]).pw_uid
        assert st["Uid"].split() == [str(uid)] * 4, (name, st["Uid"])
        want = cap_mask(row["caps"])
        for field in ("CapEff", "CapPrm", "CapBnd"):
            assert int(st[field], 16) == want, (name, field, st[field], hex(want))
        assert int(st["CapAmb"], 16) == 0, name
        assert int(st["CapInh"], 16) == 0, name
        assert st["NoNewPrivs"] == row["nnp"], name
        assert st["Seccomp"] == "2" and row["seccomp"] == "filter", name


def test_spawn_helpers_stay_outside_the_filter(suite):
    """sandboxd and netd fork their spawn helper before the sandbox, so the
    programs it starts (runc, conmon, CNI plugins) never inherit the filter."""
    pids = suite.daemon_pids()
    for daemon, helper in (("crisp-sandboxd", "sandboxd-spawn"), ("crisp-netd", "netd-spawn")):
        from conftest import children_of, comm_of
        kids = [p for p in children_of(pids[daemon]) if comm_of(p) == helper]
        assert len(kids) == 1, (daemon, kids)
        st = proc_status(kids[0])
        assert st["Seccomp"] == "0"
        assert st["NoNewPrivs"] == "0"


def test_no_syscall_was_refused_in_normal_operation(suite):
    version(suite)
    time.sleep(0.2)
    assert "seccomp: refused" not in suite.read_log()


# Which probes each daemon runs: see each daemon's profile.c.
PROBES = {
    "crisp-criapi": ["ptrace", "socket(AF_INET)", "mount", "openat(O_WRONLY)"],
    "crisp-imaged": ["ptrace", "mount", "setns"],
    "crisp-sandboxd": ["ptrace", "setns", "socket(AF_INET)"],
    "crisp-netd": ["ptrace"],
    "crisp-streamd": ["ptrace", "mount", "setns", "openat(O_WRONLY)"],
}


@pytest.mark.parametrize("daemon", DAEMONS)
def test_syscall_outside_allowlist_is_refused(suite, daemon):
    suite.expect_seccomp_refusals = True
    pid = suite.pid_of(daemon)
    os.kill(pid, signal.SIGUSR2)
    for probe in PROBES[daemon]:
        line = f"{daemon}[{pid}]: seccomp probe {probe}: refused (EPERM)"
        wait_for(lambda: line in suite.read_log(), 5, what=line)
    assert f"{daemon}[{pid}]: seccomp probe" in suite.read_log()
    assert "NOT refused" not in suite.read_log()
    # The filter's trap names the refused syscall (ptrace is 101 on x86_64).
    assert re.search(rf"{daemon}\[{pid}\]: seccomp: refused syscall \d+", suite.read_log())
    # The daemon is still alive and serving.
    assert suite.pid_of(daemon) == pid
    version(suite)


@pytest.mark.parametrize("daemon", DAEMONS[1:])
def test_killed_backend_is_restarted_and_reconnected(suite, daemon):
    old = suite.pid_of(daemon)
    before = suite.read_log().count(f"connected to {daemon}")
    t0 = time.monotonic()
    os.kill(old, signal.SIGKILL)
    wait_for(lambda: suite.read_log().count(f"connected to {daemon}") > before, 2,
             what=f"criapi to reconnect to {daemon}")
    elapsed = time.monotonic() - t0
    new = suite.pid_of(daemon)
    assert new != old
    log = suite.read_log()
    assert f"{daemon} (pid {old}) was killed by signal 9 (Killed); restarting it in" in log
    assert elapsed < 2
    version(suite)


def test_killed_front_is_restarted(suite):
    old = suite.pid_of("crisp-criapi")
    os.kill(old, signal.SIGKILL)

    def answers():
        try:
            return version(suite, timeout=0.5)
        except grpc.RpcError:
            return None
    wait_for(answers, 2, what="Version to answer after criapi restarted")
    assert suite.pid_of("crisp-criapi") != old
    # The new criapi got fresh channels to every backend.
    for d in DAEMONS[1:]:
        wait_for(lambda: suite.read_log().count(f"connected to {d}") >= 2, 2, what=d)


def test_an_idle_suite_sleeps(suite):
    # Long polls (criapi's on streamd's work and sandboxd's events) must
    # block, not spin: a poll that returns at once burns a CPU forever.  The
    # bound is far above an idle daemon's few ticks and far below a spin.
    def cpu_ticks():
        ticks = {}
        for name, pid in suite.daemon_pids().items():
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            ticks[name] = int(fields[11]) + int(fields[12])  # utime + stime
        return ticks
    time.sleep(1)  # past the start-up work
    before, t0 = cpu_ticks(), time.monotonic()
    time.sleep(3)
    after, seconds = cpu_ticks(), time.monotonic() - t0
    hz = os.sysconf("SC_CLK_TCK")
    busy = {name: (after[name] - before[name]) / hz / seconds for name in after}
    assert all(share < 0.1 for share in busy.values()), busy


def test_unknown_method_is_unimplemented_at_once(suite):
    with suite.channel() as ch:
        call = ch.unary_unary("/runtime.v1.RuntimeService/NoSuchMethod",
                              request_serializer=lambda x: x, response_deserializer=lambda x: x)
        t0 = time.monotonic()
        with pytest.raises(grpc.RpcError) as e:
            call(b"", timeout=10)
        assert e.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert time.monotonic() - t0 < 1


def test_second_instance_on_the_same_state_is_refused(suite, suite_factory):
    other = suite_factory()
    other.args = [a if a != other.state else suite.state for a in other.args]
    other.args = [a if a != other.root else suite.root for a in other.args]
    out = subprocess.run(other.args, capture_output=True, text=True, timeout=20)
    assert out.returncode == 1
    assert "another crisp" in out.stderr and "already running" in out.stderr
    version(suite)


def test_sigterm_stops_everything(suite_factory):
    s = suite_factory().start()
    pids = set(s.daemon_pids().values())
    from conftest import descendants_of
    tree = set(descendants_of(s.proc.pid))
    assert pids <= tree and len(tree) >= 7  # five daemons and two spawn helpers
    assert s.stop() == 0
    for pid in tree:
        assert not os.path.exists(f"/proc/{pid}") or proc_status(pid)["State"].startswith("Z")
    assert "stopped" in s.read_log()


def test_bad_config_names_file_line_and_key(suite_factory):
    s = suite_factory(config_text="[crisp]\nlog_level = \"info\"\nno_such_key = 1\n")
    out = subprocess.run(s.args, capture_output=True, text=True, timeout=20)
    assert out.returncode == 2
    assert f"{s.config}:3" in out.stderr and "no_such_key" in out.stderr


def test_version_and_help():
    out = subprocess.run([os.path.join(BIN, "crisp"), "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("crisp ")
    out = subprocess.run([os.path.join(BIN, "crisp"), "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "crisp run" in out.stdout
    out = subprocess.run([os.path.join(BIN, "crisp"), "--bogus"], capture_output=True, text=True)
    assert out.returncode == 2 and "--bogus" in out.stderr


def test_security_doc_matches_the_built_profiles():
    """docs/SECURITY.md states each profile as built: capabilities and the syscall count."""
    import json
    matrix = security_matrix()
    with open(os.path.join(TOP, "docs", "SECURITY.md")) as f:
        rows = {}
        for line in f:
            cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
            if len(cells) == 6 and cells[0].startswith("crisp-"):
                rows[cells[0]] = int(cells[5])
    for name in DAEMONS:
        out = subprocess.run([os.path.join(BIN, name), "--print-profile"], capture_output=True,
                             text=True, check=True)
        prof = json.loads(out.stdout)
        assert sorted(prof["capabilities"]) == sorted(matrix[name]["caps"]), name
        assert prof["unprivileged"] == (matrix[name]["user"] == "crisp"), name
        assert prof["syscalls"] == rows[name], (name, prof["syscalls"], rows[name])


def test_ready_is_notified_to_systemd_after_every_handshake(suite_factory):
    """Under systemd, READY=1 goes out once criapi serves and reached every backend."""
    import socket as so
    s = suite_factory()
    path = os.path.join(s.tmp, "notify")
    sock = so.socket(so.AF_UNIX, so.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(20)
    env = dict(os.environ, NOTIFY_SOCKET=path)
    s.log = open(s.log_path, "ab")
    s.proc = subprocess.Popen(s.args, stdout=s.log, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL, env=env)
    messages = []
    while not any(m.startswith("READY=1") for m in messages):
        messages.append(sock.recv(4096).decode())
    log = s.read_log()
    for d in DAEMONS[1:]:
        assert f"connected to {d}" in log
    assert "serving CRI on" in log
    # Only the supervisor speaks to systemd: the daemons do not inherit NOTIFY_SOCKET.
    for pid in s.daemon_pids().values():
        with open(f"/proc/{pid}/environ", "rb") as f:
            assert b"NOTIFY_SOCKET=" not in f.read()
    sock.close()
