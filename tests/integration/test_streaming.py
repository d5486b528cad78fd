"""Exec, attach and port-forward through streamd, spoken to with the project's
own client (stream_client.py): SPDY/3.1 and WebSocket framing from their specs,
against real containers under runc and conmon and a server in a pod."""
import hashlib
import os
import signal
import socket
import struct
import time

import pytest

from conftest import answer_or_none, proc_status, wait_for
from conftest_registry import fixture_images, registry, registry_mod  # noqa: F401
from test_containers import containers  # noqa: F401  (the fixture)
from test_pods import pods  # noqa: F401
import stream_client as sc

import api_pb2 as api


class Streaming:
    def __init__(self, c):
        self.c = c
        self.image = c.pull("busybox")
        self.pod, self.pod_cfg = c.pod()
        self.cid = self.run(["sleep", "3600"])

    def run(self, command, **kw):
        cid = self.c.create(self.pod, self.pod_cfg, self.image, name=f"c{time.monotonic_ns()}",
                            command=command, **kw)
        self.c.start(cid)
        return cid

    def exec_url(self, cmd, cid=None, stdin=False, stdout=True, stderr=True, tty=False):
        return self.c.rt.Exec(api.ExecRequest(container_id=cid or self.cid, cmd=cmd, stdin=stdin,
                                              stdout=stdout, stderr=stderr and not tty, tty=tty),
                              timeout=10).url

    def attach_url(self, cid, stdin=False, tty=False):
        return self.c.rt.Attach(api.AttachRequest(container_id=cid, stdin=stdin, stdout=True,
                                                  stderr=not tty, tty=tty), timeout=10).url

    def forward_url(self, ports=()):
        return self.c.rt.PortForward(api.PortForwardRequest(pod_sandbox_id=self.pod,
                                                            port=list(ports)), timeout=10).url

    def processes(self, needle):
        """Pids in the container whose command line holds needle."""
        out = []
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if needle.encode() in f.read().replace(b"\0", b" "):
                        out.append(int(pid))
            except OSError:
                pass
        return out

    def running_sleep(self, seconds):
        """An exec of `sleep SECONDS` over SPDY with stdin open, once it runs."""
        rc = sc.RemoteCommandSpdy(self.exec_url(["sleep", str(seconds)], stdin=True), stdin=True)
        wait_for(lambda: self.processes(f"sleep {seconds}"), 10, what="the exec to start")
        return rc

    def kill_and_await_restart(self, daemon):
        suite = self.c.p.suite
        old = suite.pid_of(daemon)
        os.kill(old, signal.SIGKILL)
        wait_for(lambda: suite.daemon_pids().get(daemon) not in (None, old), 20,
                 what=f"{daemon} to be restarted")

    def exec_files(self):
        """What execs left in the container's bundle: specs, pid files, logs."""
        bundle = os.path.join(self.c.p.suite.state, "sandbox", "bundles", self.cid)
        return [n for n in os.listdir(bundle) if n.startswith("exec-")]

    def streamd_fds(self):
        pid = self.c.p.suite.pid_of("crisp-streamd")
        return len(os.listdir(f"/proc/{pid}/fd"))

    def streamd_threads(self):
        pid = self.c.p.suite.pid_of("crisp-streamd")
        return len(os.listdir(f"/proc/{pid}/task"))


@pytest.fixture
def streaming(containers):  # noqa: F811
    return Streaming(containers)


def test_url_points_at_the_streaming_server(streaming):
    url = streaming.exec_url(["true"])
    assert url.startswith("http://127.0.0.1:")
    token = url.rsplit("/", 1)[1]
    assert len(token) == 32 and all(ch in "0123456789abcdef" for ch in token)
    assert "/exec/" in url
    assert "/attach/" in streaming.attach_url(streaming.cid)
    assert "/portforward/" in streaming.forward_url()


@pytest.mark.parametrize("protocol", ["v4.channel.k8s.io", "v3.channel.k8s.io",
                                      "v2.channel.k8s.io", "channel.k8s.io"])
def test_exec_spdy_output_and_exit_codes(streaming, protocol):
    url = streaming.exec_url(["sh", "-c", "echo out; echo err >&2; exit 3"])
    r = sc.exec_spdy(url, protocol=protocol)
    assert r.protocol == protocol
    assert r.stdout == b"out\n" and r.stderr == b"err\n"
    if protocol.startswith("v4."):
        assert r.error["status"] == "Failure" and r.error["reason"] == "NonZeroExitCode"
        assert r.error["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
        assert r.exit_code == 3
    else:
        assert "exit code 3" in r.error
    ok = sc.exec_spdy(streaming.exec_url(["echo", "fine"]), protocol=protocol)
    assert ok.stdout == b"fine\n"
    if protocol.startswith("v4."):
        assert ok.error == {"metadata": {}, "status": "Success"} and ok.exit_code == 0
    else:
        assert not ok.error


@pytest.mark.parametrize("protocol", ["v4.channel.k8s.io", "v4.base64.channel.k8s.io",
                                      "base64.channel.k8s.io"])
def test_exec_websocket(streaming, protocol):
    r = sc.exec_ws(streaming.exec_url(["sh", "-c", "echo out; echo err >&2; exit 7"]),
                   protocol=protocol)
    assert r.stdout == b"out\n" and r.stderr == b"err\n"
    if protocol.startswith("v4."):
        assert r.exit_code == 7
    # v4 has no way to close stdin over a WebSocket: the command reads a known length.
    r = sc.exec_ws(streaming.exec_url(["/bin/busybox", "head", "-c", "100000"], stdin=True,
                                      stderr=False),
                   stdin=b"x" * 100000,
                   protocol=protocol)
    assert r.stdout == b"x" * 100000


def test_exec_websocket_v5_closes_stdin(streaming):
    # v5 is v4 plus the CLOSE signal, [255, channel]: stdin can end, so a
    # command that reads to the end of its input finishes.
    url = streaming.exec_url(["/bin/busybox", "wc", "-c"], stdin=True, stderr=False)
    r = sc.exec_ws(url, stdin=b"x" * 300000, protocol=sc.V5, stderr=False)
    assert r.protocol == sc.V5 and r.exit_code == 0
    assert r.stdout.split() == [b"300000"]
    # A close signal that names no channel is a protocol error.
    ws = sc.WebSocketConnection(streaming.exec_url(["sleep", "30"], stdin=True), [sc.V5])
    ws.send_frame(2, b"\xff")
    assert ws.wait_closed(10)


def test_exec_stdin_echo_spdy_interactive(streaming):
    url = streaming.exec_url(["cat"], stdin=True, stderr=False)
    with sc.RemoteCommandSpdy(url, stdin=True, stderr=False) as rc:
        rc.send(b"hello\n")
        rc.read_until(b"hello\n", timeout=10)
        rc.send(b"again\n")
        rc.read_until(b"again\n", timeout=10)
        rc.close_stdin()
        r = rc.wait(timeout=10)
    assert r.exit_code == 0


def test_exec_large_output_respects_flow_control(streaming):
    # 8 MiB through 64 KiB windows: streamd must wait for WINDOW_UPDATEs
    # (the client records any DATA past its windows as an error).
    url = streaming.exec_url(["/bin/busybox", "head", "-c", "8388608", "/dev/zero"], stderr=False)
    r = sc.exec_spdy(url, stderr=False, timeout=60)
    assert len(r.stdout) == 8 << 20 and r.exit_code == 0
    assert not r.errors


def test_exec_with_a_client_that_keeps_no_windows(streaming):
    # kubectl's SPDY library sends no WINDOW_UPDATE and ignores ours: output
    # must not stall after the first 64 KiB, and stdin sent past our window
    # must arrive whole, held back by TCP rather than refused.
    url = streaming.exec_url(["/bin/busybox", "head", "-c", "8388608", "/dev/zero"], stderr=False)
    r = sc.exec_spdy(url, stderr=False, timeout=60, window_update="ignored")
    assert len(r.stdout) == 8 << 20 and r.exit_code == 0
    blob = os.urandom(6 << 20)
    # The command reads nothing for a second: streamd must stop reading too.
    url = streaming.exec_url(["sh", "-c", "sleep 1; /bin/busybox md5sum"], stdin=True,
                             stderr=False)
    r = sc.exec_spdy(url, stdin=blob, stderr=False, timeout=60, window_update="ignored")
    assert r.exit_code == 0, r.error
    assert r.stdout.split()[0].decode() == hashlib.md5(blob).hexdigest()


def test_exec_tty_and_resize(streaming):
    url = streaming.exec_url(["sh", "-c", "sleep 1; stty size"], stdin=True, tty=True)
    r = sc.exec_spdy(url, stdin=b"", tty=True, resize=(123, 45), timeout=30)
    assert r.stdout.strip().endswith(b"45 123"), r.stdout
    assert r.exit_code == 0
    # Over WebSocket too, and a tty's exit code comes back as well.
    url = streaming.exec_url(["sh", "-c", "sleep 1; stty size; exit 4"], stdin=True, tty=True)
    r = sc.exec_ws(url, stdin=b"", tty=True, resize=(100, 30), timeout=30)
    assert b"30 100" in r.stdout and r.exit_code == 4


def test_exec_of_a_command_that_cannot_start(streaming):
    # Not "exit code 255": the runtime's own reason, as an internal error.
    r = sc.exec_spdy(streaming.exec_url(["/no/such/binary", "x"]))
    assert r.error["status"] == "Failure" and r.error["reason"] == "InternalError", r.error
    msg = r.error["message"]
    assert "[/no/such/binary x]" in msg and "could not start it" in msg, msg
    assert "no such file" in msg.lower(), msg
    assert r.exit_code is None
    r = sc.exec_spdy(streaming.exec_url(["/no/such/binary"]), protocol="channel.k8s.io")
    assert "could not start it" in r.error
    wait_for(lambda: not streaming.exec_files(), 10,
             what="the exec's spec, pid file and log to be removed")


def test_exec_in_a_missing_or_stopped_container_fails_at_once(streaming):
    import grpc
    with pytest.raises(grpc.RpcError) as e:
        streaming.exec_url(["true"], cid="f" * 64)
    assert e.value.code() == grpc.StatusCode.NOT_FOUND
    done = streaming.run(["true"])
    streaming.c.wait_exited(done)
    with pytest.raises(grpc.RpcError) as e:
        streaming.exec_url(["true"], cid=done)
    assert e.value.code() == grpc.StatusCode.FAILED_PRECONDITION


def test_attach_output_and_stdin(streaming):
    ticker = streaming.run(["sh", "-c", "while true; do echo tick; sleep 0.2; done"])
    with sc.RemoteCommandSpdy(streaming.attach_url(ticker), stdin=False, stderr=True) as rc:
        rc.read_until(b"tick\n", timeout=10)
    echo = streaming.run(["cat"], stdin=True)
    url = streaming.attach_url(echo, stdin=True)
    with sc.RemoteCommandWs(url, stdin=True, stderr=True) as rc:
        rc.send(b"through conmon\n")
        rc.read_until(b"through conmon\n", timeout=10)


def test_attach_tty_resize(streaming):
    cid = streaming.run(["sh", "-c", "while true; do stty size; sleep 0.3; done"], tty=True,
                        stdin=True)
    with sc.RemoteCommandSpdy(streaming.attach_url(cid, tty=True), stdin=False, stderr=False,
                              tty=True) as rc:
        rc.resize(91, 33)
        rc.read_until(b"33 91", timeout=10)


def test_attach_stdin_to_a_container_without_stdin_is_refused(streaming):
    url = streaming.attach_url(streaming.cid, stdin=True)
    with sc.RemoteCommandSpdy(url, stdin=True) as rc:
        r = rc.wait(timeout=20)
    assert r.error["status"] == "Failure"
    assert "not created with stdin" in r.error["message"]


@pytest.fixture
def echo_server(streaming):
    # The fixture image links few applets: busybox itself runs nc.
    streaming.run(["/bin/busybox", "nc", "-ll", "-p", "8080", "-e", "/bin/cat"])
    time.sleep(0.5)
    return streaming


def test_port_forward_spdy(echo_server):
    s = echo_server
    pf = sc.PortForwardSpdy(s.forward_url())
    try:
        data, error = pf.connect(8080)
        data.write(b"ping through the pod\n")
        assert data.read(21, timeout=10) == b"ping through the pod\n"
        # A refused port is reported on its error stream; the session goes on.
        d2, e2 = pf.connect(8081)
        msg = e2.read_all(timeout=10)
        assert b"8081" in msg and b"refused" in msg.lower(), msg
        d3, _ = pf.connect(8080)
        d3.write(b"still usable\n")
        assert d3.read(13, timeout=10) == b"still usable\n"
        # Half-close: our FIN reaches the server, whose close reaches us.
        data.close_write()
        assert data.read_all(timeout=10) == b""
    finally:
        pf.close()


@pytest.mark.parametrize("window_update", ["receive", "ignored"])
def test_port_forward_spdy_bulk(echo_server, window_update):
    # "ignored": a client that keeps no windows, as kubectl's, sends faster
    # than the pod's server echoes; nothing may be dropped.
    pf = sc.PortForwardSpdy(echo_server.forward_url(), window_update=window_update)
    try:
        data, _ = pf.connect(8080)
        blob = os.urandom(4 << 20)
        import threading
        got = bytearray()

        def reader():
            while len(got) < len(blob):
                chunk = data.read(timeout=30)
                if not chunk:
                    break
                got.extend(chunk)
        t = threading.Thread(target=reader)
        t.start()
        data.write(blob, timeout=60)
        t.join(60)
        assert bytes(got) == blob
    finally:
        pf.close()


def test_port_forward_download_keeps_streamd_small(echo_server):
    # 128 MiB to a client slower than the pod: what streamd holds for it is
    # its 1 MiB output buffer, not everything sent so far.
    s = echo_server
    size = 128 << 20
    s.run(["/bin/busybox", "nc", "-ll", "-p", "8083", "-e", "/bin/busybox", "head", "-c",
           str(size), "/dev/zero"])
    time.sleep(0.5)
    pf = sc.PortForwardSpdy(s.forward_url(), window_update="ignored")
    try:
        data, _ = pf.connect(8083)
        got = 0
        while True:
            chunk = data.read(timeout=30)
            if not chunk:
                break
            got += len(chunk)
        assert got == size
    finally:
        pf.close()
    peak_kib = int(proc_status(s.c.p.suite.pid_of("crisp-streamd"))["VmHWM"].split()[0])
    assert peak_kib < 48 << 10, f"streamd peaked at {peak_kib} KiB"


def test_port_forward_websocket(echo_server):
    url = echo_server.forward_url()
    pf = sc.PortForwardWs(url, ports=[8080])
    try:
        pf.send(0, b"over websocket\n")
        assert pf.recv_data(0, timeout=10).startswith(b"over websocket")
    finally:
        pf.close()


def test_port_forward_restricted_to_the_requested_ports(echo_server):
    pf = sc.PortForwardSpdy(echo_server.forward_url(ports=[9999]))
    try:
        _, error = pf.connect(8080)
        assert b"not in the PortForward request" in error.read_all(timeout=10)
    finally:
        pf.close()


def test_bad_and_reused_tokens(streaming):
    url = streaming.exec_url(["true"])
    base = url.rsplit("/", 1)[0]
    status, _, body, sock = sc.raw_upgrade(base + "/" + "0" * 32, [
        ("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"),
        ("X-Stream-Protocol-Version", "v4.channel.k8s.io")])
    assert status == 404 and b"unknown streaming token" in body
    sock.close()
    sc.exec_spdy(url)  # the token's one use
    with pytest.raises(sc.UpgradeError) as e:
        sc.exec_spdy(url)
    assert e.value.status == 404
    # A token is for its own call only.
    token = streaming.exec_url(["true"]).rsplit("/", 1)[1]
    attach = url.split("/exec/")[0] + "/attach/" + token
    with pytest.raises(sc.UpgradeError) as e:
        sc.exec_spdy(attach)
    assert e.value.status == 404


def test_upgrade_is_required_and_protocols_must_match(streaming):
    url = streaming.exec_url(["true"])
    status, _, body, sock = sc.raw_upgrade(url, [])
    assert status == 400 and b"upgrade" in body
    sock.close()
    url = streaming.exec_url(["true"])
    status, _, _, sock = sc.raw_upgrade(url, [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1"),
                                              ("X-Stream-Protocol-Version", "v9.nothing")])
    assert status == 403
    sock.close()


def test_expired_token(streaming):
    url = streaming.exec_url(["true"])
    time.sleep(61)
    with pytest.raises(sc.UpgradeError) as e:
        sc.exec_spdy(url)
    assert e.value.status == 404


def test_malformed_and_oversized_frames_close_the_connection(streaming):
    s = streaming
    # A control frame of version 2.
    conn = sc.SpdyConnection(s.exec_url(["sleep", "30"]), ["v4.channel.k8s.io"])
    conn.send_raw(struct.pack(">HHI", 0x8000 | 2, 6, 4) + b"\0\0\0\1")
    assert conn.wait_closed(10)
    # A data frame declaring 16 MiB.
    conn = sc.SpdyConnection(s.exec_url(["sleep", "30"]), ["v4.channel.k8s.io"])
    conn.send_raw(struct.pack(">II", 1, 0xffffff) + b"x" * 100)
    assert conn.wait_closed(10)
    # A header block that is not zlib.
    conn = sc.SpdyConnection(s.exec_url(["sleep", "30"]), ["v4.channel.k8s.io"])
    conn.send_raw(sc.syn_stream_frame(1, b"\xff" * 40))
    assert conn.wait_closed(10)
    # WebSocket: an unmasked frame, and a frame over 1 MiB.
    ws = sc.WebSocketConnection(s.exec_url(["sleep", "30"]), ["v4.channel.k8s.io"])
    ws.send_frame(2, b"\x00abc", mask=False)
    assert ws.wait_closed(10)
    ws = sc.WebSocketConnection(s.exec_url(["sleep", "30"]), ["v4.channel.k8s.io"])
    ws.send_raw(bytes([0x82, 0xff]) + struct.pack(">Q", 1 << 30) + b"\0\0\0\0")
    assert ws.wait_closed(10)
    # The server is still fine.
    assert sc.exec_ws(s.exec_url(["echo", "ok"]), protocol="v4.channel.k8s.io").stdout == b"ok\n"
    wait_for(lambda: not s.processes("sleep 30"), 20, what="the aborted execs to end")


def test_abrupt_disconnect_frees_everything(streaming):
    s = streaming
    sc.exec_ws(s.exec_url(["true"]), protocol="v4.channel.k8s.io")  # warm: threads, pools
    fds, threads = s.streamd_fds(), s.streamd_threads()
    for transport in ("spdy", "ws"):
        for i in range(5):
            url = s.exec_url(["sleep", f"{1000 + i}"], stdin=True)
            if transport == "spdy":
                rc = sc.RemoteCommandSpdy(url, stdin=True)
            else:
                rc = sc.RemoteCommandWs(url, stdin=True)
            wait_for(lambda: s.processes(f"sleep {1000 + i}"), 10, what="the exec to start")
            rc.conn.sock.shutdown(socket.SHUT_RDWR)
            rc.conn.sock.close()
            wait_for(lambda: not s.processes(f"sleep {1000 + i}"), 20,
                     what="the exec to be killed after its client left")
    wait_for(lambda: s.streamd_fds() <= fds and s.streamd_threads() <= threads, 20,
             what=f"streamd back to {fds} fds and {threads} threads")
    # Nothing left of the execs in the bundle either.
    wait_for(lambda: not s.exec_files(), 10, what="exec specs and pid files to be removed")


def test_streamd_killed_mid_session(streaming):
    s = streaming
    rc = s.running_sleep(2000)
    s.kill_and_await_restart("crisp-streamd")
    assert rc.conn.wait_closed(10)
    wait_for(lambda: not s.processes("sleep 2000"), 20, what="the orphaned exec to be killed")

    def works():
        try:
            return sc.exec_ws(s.exec_url(["echo", "back"]), protocol="v4.channel.k8s.io").stdout
        except Exception:
            return None
    assert wait_for(works, 20, interval=0.2, what="a new session after the restart") == b"back\n"


def test_sandboxd_restart_mid_exec(streaming):
    # The exec's exit code dies with sandboxd; the command must not outlive
    # it: the new sandboxd kills what the old one started, and the client
    # hears that the code is lost.
    s = streaming
    rc = s.running_sleep(2100)
    s.kill_and_await_restart("crisp-sandboxd")
    wait_for(lambda: not s.processes("sleep 2100"), 20, what="the orphaned exec to be killed")
    r = rc.wait(timeout=20)
    assert r.error["status"] == "Failure" and "exit code" in r.error["message"], r.error
    assert not s.exec_files()
    # criapi answers UNAVAILABLE until its channel to the new sandboxd is up.
    url = wait_for(lambda: answer_or_none(lambda: s.exec_url(["echo", "after"])), 20,
                   interval=0.1, what="criapi to reach the new sandboxd")
    assert sc.exec_spdy(url).stdout == b"after\n"
