"""streamd under its [streaming] settings: TLS with a certificate only root
may read, the cap on concurrent sessions, and the idle timeout."""
import os
import ssl
import subprocess
import time

import pytest

from conftest import wait_for
from conftest_registry import fixture_images, registry, registry_mod  # noqa: F401
from test_containers import Containers
from test_pods import pods  # noqa: F401
from test_streaming import Streaming
import stream_client as sc


@pytest.fixture
def configured(pods, registry):  # noqa: F811
    """Streaming over a suite whose crisp.conf ends with the given text."""
    def make(config):
        return Streaming(Containers(pods(extra_config=config), registry))
    return make


def self_signed(folder):
    cert, key = os.path.join(folder, "stream.crt"), os.path.join(folder, "stream.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "2", "-subj", "/CN=crisp streaming test",
                    "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o600)  # root's alone: streamd reads it before it becomes user crisp
    return cert, key


def test_tls(configured, tmp_path):
    cert, key = self_signed(str(tmp_path))
    s = configured(f'[streaming]\ntls_cert = "{cert}"\ntls_key = "{key}"\n')
    url = s.exec_url(["sh", "-c", "echo over tls; exit 2"])
    assert url.startswith("https://127.0.0.1:")
    trusted = ssl.create_default_context(cafile=cert)
    r = sc.exec_spdy(url, ssl_context=trusted)
    assert r.stdout == b"over tls\n" and r.exit_code == 2
    r = sc.exec_ws(s.exec_url(["echo", "ws too"]), protocol="v4.channel.k8s.io",
                   ssl_context=trusted)
    assert r.stdout == b"ws too\n" and r.exit_code == 0
    # A client that does not trust the certificate stops at the handshake.
    with pytest.raises(ssl.SSLCertVerificationError):
        sc.exec_spdy(s.exec_url(["true"]), ssl_context=ssl.create_default_context())
    # Plain HTTP on the TLS port gets no HTTP answer.
    plain = s.exec_url(["true"]).replace("https://", "http://", 1)
    try:
        status, _, _, sock = sc.raw_upgrade(plain, [("Connection", "Upgrade"),
                                                    ("Upgrade", "SPDY/3.1")])
        sock.close()
    except OSError:
        status = None
    assert status is None


def test_a_key_that_cannot_be_read_stops_streamd_with_its_name(suite_factory, tmp_path):
    cert, _ = self_signed(str(tmp_path))
    missing = os.path.join(str(tmp_path), "absent.key")
    s = suite_factory(config_text=f'[streaming]\ntls_cert = "{cert}"\ntls_key = "{missing}"\n')
    s.start(wait_ready=False)
    wait_for(lambda: "[streaming] tls_key: reading " + missing in s.read_log(), 20,
             what="streamd to name the unreadable key")


def test_max_sessions(configured):
    s = configured("[streaming]\nmax_sessions = 2\n")
    open_sessions = [sc.RemoteCommandSpdy(s.exec_url(["cat"], stdin=True, stderr=False),
                                          stdin=True, stderr=False) for _ in range(2)]
    for rc in open_sessions:
        rc.send(b"up\n")
        rc.read_until(b"up\n", timeout=10)
    third = s.exec_url(["echo", "third"])
    with pytest.raises(sc.UpgradeError) as e:
        sc.exec_spdy(third)
    assert e.value.status == 503 and b"max_sessions" in e.value.body
    # The refusal did not use up the token: it works once a session ends.
    open_sessions[0].close_stdin()
    assert open_sessions[0].wait(timeout=10).exit_code == 0

    def third_runs():
        try:
            return sc.exec_spdy(third).stdout
        except sc.UpgradeError as refused:
            assert refused.status == 503
            return None
    assert wait_for(third_runs, 10, interval=0.1, what="a free session") == b"third\n"
    open_sessions[1].close()


def test_idle_timeout(configured):
    s = configured("[streaming]\nidle_timeout = 2\n")
    cmd = ["/bin/busybox", "cat", "-"]
    rc = sc.RemoteCommandSpdy(s.exec_url(cmd, stdin=True, stderr=False), stdin=True,
                              stderr=False)
    # Traffic keeps a session open past the timeout...
    for i in range(8):
        rc.send(b"%d\n" % i)
        rc.read_until(b"%d\n" % i, timeout=10)
        time.sleep(0.5)
    assert not rc.conn.closed
    # ...silence ends it, and the command with it.
    assert rc.conn.wait_closed(15)
    wait_for(lambda: not s.processes(" ".join(cmd)), 20, what="the idle exec to be killed")
