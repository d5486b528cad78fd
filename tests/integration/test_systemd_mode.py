"""The suite wired as packaging/systemd wires it: every daemon socket-activated
(LISTEN_FDS), no supervisor, criapi dialing the backends' sockets under
<state>/internal/ as the unprivileged user."""
import grp
import os
import signal
import socket
import subprocess
import tempfile

import grpc
import pytest

from conftest import BIN, wait_for

import api_pb2 as api
import api_pb2_grpc

BACKENDS = ["imaged", "sandboxd", "netd", "streamd"]


def listening(path, kind, group):
    s = socket.socket(socket.AF_UNIX, kind)
    s.bind(path)
    os.chown(path, 0, group)
    os.chmod(path, 0o660)
    s.listen(16)
    return s


def activate(binary, sock, args, log):
    """Starts binary with sock as fd 3 and LISTEN_FDS=1, as systemd would."""
    cmd = (f"exec 3<&{sock.fileno()}; LISTEN_FDS=1 LISTEN_PID=$$ exec {binary} "
           + " ".join(args))
    return subprocess.Popen(["/bin/bash", "-c", cmd], pass_fds=[sock.fileno()], stdout=log,
                            stderr=subprocess.STDOUT)


@pytest.fixture
def systemd_suite():
    tmp = tempfile.mkdtemp(prefix="crisp-sd-")
    os.chmod(tmp, 0o755)
    crisp_gid = grp.getgrnam("crisp").gr_gid
    state = os.path.join(tmp, "state")
    internal = os.path.join(state, "internal")
    os.makedirs(internal)
    os.chmod(state, 0o755)
    os.chown(internal, 0, crisp_gid)  # as packaging/tmpfiles.d: 0750 root:crisp
    os.chmod(internal, 0o750)
    conf = os.path.join(tmp, "crisp.conf")
    with open(conf, "w") as f:
        f.write(f'[cni]\nconf_dir = "{tmp}/cni"\n')
    os.makedirs(os.path.join(tmp, "cni"))
    args = ["--config", conf, "--root", f"{tmp}/root", "--state", state, "--log-level", "debug"]
    log = open(os.path.join(tmp, "log"), "wb")
    procs, socks = [], []
    for name in BACKENDS:
        s = listening(os.path.join(internal, f"{name}.sock"), socket.SOCK_SEQPACKET, crisp_gid)
        socks.append(s)
        procs.append(activate(f"{BIN}/crisp-{name}", s, args, log))
    cri = listening(os.path.join(state, "crisp.sock"), socket.SOCK_STREAM, 0)
    socks.append(cri)
    procs.append(activate(f"{BIN}/crisp-criapi", cri, args, log))
    for s in socks:
        s.close()
    logpath = os.path.join(tmp, "log")
    yield state, logpath, procs
    live = [p for p in procs if p is not None]
    for p in reversed(live):
        p.send_signal(signal.SIGTERM)
    for p in live:
        assert p.wait(20) == 0, open(logpath).read()[-2000:]
    assert "seccomp: refused" not in open(logpath).read()
    subprocess.run(["rm", "-rf", tmp])


def test_socket_activated_suite_serves_cri(systemd_suite):
    state, logpath, procs = systemd_suite
    for name in BACKENDS:
        wait_for(lambda: f"connected to crisp-{name}" in open(logpath).read(), 10,
                 what=f"criapi to dial crisp-{name}")
    with grpc.insecure_channel(f"unix://{state}/crisp.sock") as ch:
        rs = api_pb2_grpc.RuntimeServiceStub(ch)
        assert rs.Version(api.VersionRequest(), timeout=5).runtime_name == "crisp"
        st = rs.Status(api.StatusRequest(), timeout=10)
        assert {c.type: c.status for c in st.status.conditions}["RuntimeReady"] is True
        info = api_pb2_grpc.ImageServiceStub(ch).ImageFsInfo(api.ImageFsInfoRequest(), timeout=5)
        assert info.image_filesystems[0].fs_id.mountpoint.endswith("/root/image/store")
    # criapi runs as the crisp user even though systemd started it as root.
    with open(f"/proc/{procs[-1].pid}/status") as f:
        uid_line = next(line for line in f if line.startswith("Uid:"))
    import pwd
    assert uid_line.split()[1] == str(pwd.getpwnam("crisp").pw_uid)


def test_backend_restart_is_redialed(systemd_suite):
    state, logpath, procs = systemd_suite
    wait_for(lambda: "connected to crisp-imaged" in open(logpath).read(), 10, what="imaged")
    # systemd would restart the service on the same socket; here: kill and
    # check criapi reports the backend unavailable instead of hanging.
    procs[0].send_signal(signal.SIGKILL)
    procs[0].wait()
    with grpc.insecure_channel(f"unix://{state}/crisp.sock") as ch:
        with pytest.raises(grpc.RpcError) as e:
            api_pb2_grpc.ImageServiceStub(ch).ImageFsInfo(api.ImageFsInfoRequest(), timeout=5)
        assert e.value.code() == grpc.StatusCode.UNAVAILABLE
    procs[0] = None  # already gone
