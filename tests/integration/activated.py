"""One backend daemon started alone, as systemd starts it (socket
activation), with the test holding its only channel: how tests speak to a
backend directly, as criapi (or a compromised criapi) would."""
import os
import pwd
import socket
import subprocess

from conftest import BIN, PROXY_ENV, wait_for
from crisp_ipc import MSG_ERROR
from test_channels import connect_as

import internal_pb2

ERR = {v.number: v.name for v in internal_pb2.ErrorCode.DESCRIPTOR.values}


class ActivatedDaemon:
    def __init__(self, name, tmp, config_text=""):
        self.name = name
        self.tmp = tmp
        self.root = os.path.join(tmp, "root")
        self.state = os.path.join(tmp, "state")
        self.sock_path = os.path.join(tmp, f"{name}.sock")
        self.log_path = os.path.join(tmp, "log")
        self.conf = os.path.join(tmp, "crisp.conf")
        with open(self.conf, "w") as f:
            f.write(config_text)
        self.proc = None
        self.ch = None

    def start(self):
        lsock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if os.path.exists(self.sock_path):
            os.unlink(self.sock_path)
        lsock.bind(self.sock_path)
        os.chmod(self.sock_path, 0o666)
        lsock.listen(64)
        log = open(self.log_path, "ab")
        # LISTEN_PID must name the daemon itself: set it in the shell that execs it.
        cmd = (f"exec 3<&{lsock.fileno()}; LISTEN_FDS=1 LISTEN_PID=$$ exec "
               f"{BIN}/crisp-{self.name} --config {self.conf} --root {self.root} "
               f"--state {self.state} --log-level debug")
        self.proc = subprocess.Popen(["/bin/bash", "-c", cmd], pass_fds=[lsock.fileno()],
                                     stdout=log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **PROXY_ENV))
        lsock.close()
        log.close()
        wait_for(lambda: "serving" in self.log() or self.proc.poll() is not None, 10,
                 what=f"{self.name} serving")
        assert self.proc.poll() is None, self.log()
        self.ch = self.connect()
        return self

    def connect(self):
        """Another channel, as criapi opens one per connection."""
        ch = connect_as(self.sock_path, pwd.getpwnam("crisp").pw_uid)
        ch.handshake(f"crisp-{self.name}")
        return ch

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            assert self.proc.wait(20) == 0, self.log()[-3000:]
        self.proc = None

    def log(self):
        return open(self.log_path, errors="replace").read()

    def call(self, type_, msg, reply_cls, ch=None, timeout=60, received_fds=None):
        """The reply, or ("error", code name, message)."""
        answer = (ch or self.ch).call(type_, msg, timeout=timeout, received_fds=received_fds)
        assert answer is not None, f"{self.name} closed the channel:\n" + self.log()[-3000:]
        t, _, payload = answer[:3]
        if t == MSG_ERROR:
            e = internal_pb2.ErrorReply.FromString(payload)
            return ("error", ERR[e.code], e.message)
        assert t == type_ + 1
        return reply_cls.FromString(payload)
