"""Fixtures that run the real crisp suite (`crisp run`) in temporary folders.

Every test talks to real daemons built by scripts/test.sh into build-test/
(or $CRISP_BUILD_DIR).  A suite is stopped with SIGTERM at the end of its test
and the fixture checks that no process of it is left behind.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time

import pytest

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("CRISP_BUILD_DIR", os.path.join(TOP, "build-test"))
BIN = os.path.join(BUILD, "bin")
sys.path.insert(0, os.path.join(BUILD, "python"))

DAEMONS = ["crisp-criapi", "crisp-imaged", "crisp-sandboxd", "crisp-netd", "crisp-streamd"]


def comm_of(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return None


def children_of(pid):
    """Direct children of pid, from /proc (no ps needed)."""
    kids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(entry))
    return kids


def descendants_of(pid):
    out = []
    todo = [pid]
    while todo:
        p = todo.pop()
        for k in children_of(p):
            out.append(k)
            todo.append(k)
    return out


def proc_status(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def wait_for(predicate, timeout, interval=0.02, what="condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def answer_or_none(call):
    """call()'s answer, or None while the backend it needs is restarting (the
    front answers UNAVAILABLE until the new daemon's channel is up); for
    wait_for."""
    import grpc
    try:
        return call()
    except grpc.RpcError as err:
        if err.code() != grpc.StatusCode.UNAVAILABLE:
            raise
        return None


# Proxies at a closed port, loopback exempt: a pull that would leave the
# machine fails at once instead.
PROXY_ENV = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
             "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
             "NO_PROXY": "127.0.0.1,localhost,::1", "no_proxy": "127.0.0.1,localhost,::1"}


class Suite:
    """One `crisp run` with its own root, state and socket."""

    def __init__(self, tmp, extra_args=(), config_text=None):
        self.tmp = tmp
        self.root = os.path.join(tmp, "root")
        self.state = os.path.join(tmp, "state")
        self.socket = os.path.join(self.state, "crisp.sock")
        self.log_path = os.path.join(tmp, "crisp.log")
        self.config = os.path.join(tmp, "crisp.conf")
        self.cni_dir = os.path.join(tmp, "cni")
        os.makedirs(self.cni_dir)
        with open(self.config, "w") as f:
            f.write(config_text or ("[crisp]\nlog_level = \"debug\"\n"
                                    f"[cni]\nconf_dir = \"{self.cni_dir}\"\n"))
        self.args = [os.path.join(BIN, "crisp"), "run", "--config", self.config,
                     "--root", self.root, "--state", self.state, *extra_args]
        self.proc = None
        self.all_pids = set()
        # Tests that make daemons try forbidden syscalls set this.
        self.expect_seccomp_refusals = False

    def start(self, wait_ready=True):
        env = dict(os.environ)
        env.pop("NOTIFY_SOCKET", None)
        env.pop("LISTEN_FDS", None)
        # Registry traffic must never leave the machine: any proxy use fails.
        env.update(PROXY_ENV)
        seen = self.read_log().count("ready: serving CRI") if os.path.exists(self.log_path) \
            else 0
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, env=env)
        if wait_ready:
            # The log may hold an earlier run's lines: wait for one more "ready".
            wait_for(lambda: self.read_log().count("ready: serving CRI") > seen
                     or self.proc.poll() is not None, 20, what="the suite to be ready")
            assert self.proc.poll() is None, self.read_log()
        return self

    def read_log(self):
        with open(self.log_path, "r", errors="replace") as f:
            return f.read()

    def daemon_pids(self):
        """{name: pid} of the supervisor's direct children."""
        pids = {}
        for pid in children_of(self.proc.pid):
            name = comm_of(pid)
            if name:
                pids[name] = pid
        self.all_pids.update(pids.values())
        return pids

    def pid_of(self, name):
        # comm is cut to 15 characters by the kernel.
        return self.daemon_pids()[name[:15]]

    def channel(self):
        import grpc
        # The kubelet's limits: 16 MiB each way.
        return grpc.insecure_channel(f"unix://{self.socket}", options=[
            ("grpc.max_receive_message_length", 16 << 20),
            ("grpc.max_send_message_length", 16 << 20)])

    def remove_pods(self):
        """Removes every pod still there: pods outlive the suite by design, so a
        test run must not leave any behind."""
        if not self.proc or self.proc.poll() is not None:
            return
        import grpc
        import api_pb2 as api
        import api_pb2_grpc
        with self.channel() as ch:
            rt = api_pb2_grpc.RuntimeServiceStub(ch)
            try:
                for pod in rt.ListPodSandbox(api.ListPodSandboxRequest(), timeout=30).items:
                    rt.RemovePodSandbox(api.RemovePodSandboxRequest(pod_sandbox_id=pod.id),
                                        timeout=60)
            except grpc.RpcError:
                pass  # a suite a test broke on purpose

    def stop(self, timeout=30):
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        tree = [self.proc.pid] + descendants_of(self.proc.pid)
        self.all_pids.update(tree)
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            for pid in tree:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait()
            raise AssertionError("crisp did not stop on SIGTERM:\n" + self.read_log())
        self.log.close()
        return self.proc.returncode

    def leftovers(self):
        """Processes of this suite still alive (zombies of other parents excepted)."""
        alive = []
        for pid in self.all_pids:
            try:
                st = proc_status(pid)
            except OSError:
                continue
            if st.get("State", "").startswith("Z"):
                continue
            alive.append((pid, st.get("Name")))
        return alive


@pytest.fixture
def suite_factory():
    suites = []

    def make(**kwargs):
        tmp = tempfile.mkdtemp(prefix="crisp-test-")
        s = Suite(tmp, **kwargs)
        suites.append(s)
        return s

    yield make
    for s in suites:
        s.remove_pods()
        s.stop()
        assert not s.leftovers(), f"processes left behind: {s.leftovers()}"
        log = s.read_log() if os.path.exists(s.log_path) else ""
        # Every syscall a daemon makes in normal operation is in its allowlist.
        refused = [line for line in log.splitlines() if "seccomp: refused" in line]
        assert s.expect_seccomp_refusals or not refused, refused[:5]
        # Sanitizer builds (-DENABLE_ASAN/UBSAN) report into the same log.
        for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            assert marker not in log, log[log.index(marker) - 200:][:3000]
        subprocess.run(["rm", "-rf", s.tmp], check=False)


@pytest.fixture
def suite(suite_factory):
    return suite_factory().start()
