"""Backends started the way systemd starts them (socket activation): only the
crisp user may connect, the handshake comes first, and a peer that breaks the
protocol loses its channel."""
import os
import pwd
import socket
import subprocess
import tempfile

import pytest

from conftest import BIN, wait_for
from crisp_ipc import Channel, MSG_HEALTH_ANS, MSG_HEALTH_REQ, MSG_ERROR

import internal_pb2

BACKENDS = ["imaged", "sandboxd", "netd", "streamd"]


@pytest.fixture
def activated():
    """Starts one backend with a listening SEQPACKET socket as fd 3 (LISTEN_FDS=1)."""
    started = []

    def start(name):
        tmp = tempfile.mkdtemp(prefix="crisp-chan-")
        os.chmod(tmp, 0o755)  # the crisp user must reach the socket
        path = os.path.join(tmp, f"{name}.sock")
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        lsock.bind(path)
        os.chmod(path, 0o666)
        lsock.listen(8)
        log = open(os.path.join(tmp, "log"), "wb")
        conf = os.path.join(tmp, "crisp.conf")
        open(conf, "w").write("")
        # LISTEN_PID must name the daemon itself: set it in the shell that execs it.
        cmd = (f"exec 3<&{lsock.fileno()}; LISTEN_FDS=1 LISTEN_PID=$$ exec {BIN}/crisp-{name} "
               f"--config {conf} --root {tmp}/root --state {tmp}/state --log-level debug")
        proc = subprocess.Popen(["/bin/bash", "-c", cmd], pass_fds=[lsock.fileno()],
                                stdout=log, stderr=subprocess.STDOUT)
        lsock.close()
        started.append((proc, tmp))
        return proc, path, os.path.join(tmp, "log")

    yield start
    for proc, tmp in started:
        proc.terminate()
        assert proc.wait(20) == 0
        subprocess.run(["rm", "-rf", tmp])


# Runs in a child started with the target uid; hands the connected socket back.
CONNECT_CHILD = """
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
back = socket.socket(fileno=int(sys.argv[2]))
socket.send_fds(back, [b"x"], [s.fileno()])
"""


def connect_as(path, uid):
    """A channel opened by a process running as uid (SO_PEERCRED sees that uid).

    A new interpreter rather than os.fork(): forking a process that runs gRPC
    threads is not safe."""
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    proc = subprocess.run(["/usr/bin/python3", "-c", CONNECT_CHILD, path, str(child.fileno())],
                          pass_fds=[child.fileno()], user=uid, group=uid if uid else 0,
                          extra_groups=[], timeout=10, capture_output=True)
    child.close()
    assert proc.returncode == 0, proc.stderr
    parent.settimeout(10)
    _, fds, _, _ = socket.recv_fds(parent, 1, 1)
    parent.close()
    assert fds, f"connecting to {path} as uid {uid} failed"
    return Channel(socket.socket(fileno=fds[0]))


@pytest.mark.parametrize("name", BACKENDS)
def test_crisp_user_gets_health(activated, name):
    proc, path, log = activated(name)
    wait_for(lambda: os.path.exists(path) and "serving" in open(log).read(), 10, what="serving")
    ch = connect_as(path, pwd.getpwnam("crisp").pw_uid)
    ch.handshake(f"crisp-{name}")
    type_, _, payload = ch.call(MSG_HEALTH_REQ, internal_pb2.HealthRequest())
    assert type_ == MSG_HEALTH_ANS
    health = internal_pb2.HealthReply.FromString(payload)
    assert health.peer == f"crisp-{name}" and health.ready and health.pid == proc.pid


@pytest.mark.parametrize("name", ["imaged", "sandboxd"])
def test_other_uids_are_refused(activated, name):
    _, path, log = activated(name)
    wait_for(lambda: "serving" in open(log).read(), 10, what="serving")
    for uid in (0, 65534):
        ch = connect_as(path, uid)
        assert ch.recv() is None  # closed without a greeting
    assert "refusing an internal connection from uid 0" in open(log).read()
    assert "refusing an internal connection from uid 65534" in open(log).read()


def test_protocol_violations_close_the_channel(activated):
    _, path, log = activated("imaged")
    wait_for(lambda: "serving" in open(log).read(), 10, what="serving")
    crisp = pwd.getpwnam("crisp").pw_uid

    # A request before the client's hello.
    ch = connect_as(path, crisp)
    ch.recv()
    ch.send(MSG_HEALTH_REQ, b"", 1)
    assert ch.recv() is None

    # A wrong protocol version in the hello.
    ch = connect_as(path, crisp)
    ch.recv()
    ch.send(2, internal_pb2.Hello(protocol="crisp-internal", version=99).SerializeToString())
    ch.send(MSG_HEALTH_REQ, b"", 1)
    assert ch.recv() is None

    # An unknown message type after a good handshake.
    ch = connect_as(path, crisp)
    ch.handshake("crisp-imaged")
    ch.send(4242, b"", 7)
    assert ch.recv() is None

    # A payload that does not decode.
    ch = connect_as(path, crisp)
    ch.handshake("crisp-imaged")
    ch.send(MSG_HEALTH_REQ, b"\xff\xff\xff", 8)
    assert ch.recv() is None

    # An fd where the message type carries none.
    ch = connect_as(path, crisp)
    ch.handshake("crisp-imaged")
    r, w = os.pipe()
    ch.send(MSG_HEALTH_REQ, b"", 9, fds=[r])
    assert ch.recv() is None

    text = open(log).read()
    assert "peer speaks version 99" in text
    assert "message type 4242 is not permitted" in text
    assert "carries 1 fds, expected 0" in text

    # The daemon survived all of it.
    ch = connect_as(path, crisp)
    ch.handshake("crisp-imaged")
    assert ch.call(MSG_HEALTH_REQ, internal_pb2.HealthRequest())[0] == MSG_HEALTH_ANS
