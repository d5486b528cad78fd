"""Self-test of stream_client.py that needs no crisp server: the SPDY header
dictionary and compression, frame encodings checked against the specs' byte
layouts, WebSocket framing, and whole sessions against minimal fake servers
running in threads on 127.0.0.1 (written here from the specs, sharing only
the header compressor and frame builders with the client)."""
import base64
import hashlib
import json
import os
import socket
import struct
import threading
import traceback
import zlib

import pytest

import stream_client as sc


# --------------------------------------------------------------------------
# independent decoders

def tiny_headers(plain):
    """{name: value} of an uncompressed SPDY/3 name/value block."""
    count = struct.unpack_from(">I", plain)[0]
    off, out = 4, {}
    for _ in range(count):
        n = struct.unpack_from(">I", plain, off)[0]
        name = plain[off + 4:off + 4 + n].decode()
        off += 4 + n
        n = struct.unpack_from(">I", plain, off)[0]
        out[name] = plain[off + 4:off + 4 + n].decode()
        off += 4 + n
    assert off == len(plain)
    return out


def tiny_parse(frame):
    """The fields of one whole SPDY/3 frame, from the draft's layouts."""
    first, second = struct.unpack(">II", frame[:8])
    payload = frame[8:]
    assert len(payload) == second & 0xFFFFFF
    f = {"flags": second >> 24, "payload": payload}
    if not first >> 31:
        f.update(type="DATA", stream_id=first)
        return f
    f.update(version=(first >> 16) & 0x7FFF, type=first & 0xFFFF)
    if f["type"] in (1, 2, 3, 8, 9):    # SYN_STREAM SYN_REPLY RST HEADERS WINDOW_UPDATE
        f["stream_id"] = struct.unpack_from(">I", payload)[0] & 0x7FFFFFFF
    if f["type"] == 1:
        assoc, pri_slot = struct.unpack_from(">IH", payload, 4)
        f.update(assoc=assoc, priority=pri_slot >> 13, slot=pri_slot & 0xFF, block=payload[10:])
    elif f["type"] in (2, 8):
        f["block"] = payload[4:]
    elif f["type"] == 3:
        f["status"] = struct.unpack_from(">I", payload, 4)[0]
    elif f["type"] == 6:
        f["ping_id"] = struct.unpack(">I", payload)[0]
    elif f["type"] == 7:
        f["last_good"], f["status"] = struct.unpack(">II", payload)
    elif f["type"] == 9:
        f["delta"] = struct.unpack_from(">I", payload, 4)[0]
    return f


# --------------------------------------------------------------------------
# SPDY pieces

def test_spdy_dictionary():
    d = sc.SPDY_DICTIONARY
    assert len(d) == 1423
    # zlib's id of the dictionary (its Adler-32): what the first header block
    # of every SPDY/3 session announces.
    assert zlib.adler32(d) == 0xE3C6A7C2
    assert d.startswith(b"\0\0\0\x07options\0\0\0\x04head\0\0\0\x04post")
    assert b"\0\0\0\x06200 OK\0\0\0\x07version" in d
    assert d.endswith(b"charset=iso-8859-1,utf-,*,enq=0.")


def test_header_blocks_share_one_zlib_stream_per_direction():
    sets = [{"streamtype": "error"}, {"streamtype": "stdin"}, {"streamtype": "stdout"},
            {"streamtype": "data", "port": "8080", "requestid": "0"}, {},
            {"streamtype": "stdout"}]
    comp = sc.HeaderCompressor()
    blocks = [comp.compress(h) for h in sets]
    # Only the first block carries the zlib header: FDICT and the dictionary id.
    assert blocks[0][0] == 0x78 and blocks[0][1] & 0x20
    assert blocks[0][2:6] == bytes.fromhex("e3c6a7c2")
    assert all(b.endswith(b"\0\0\xff\xff") for b in blocks)     # SYNC_FLUSH
    # The repeat compresses to less: the context persists.
    assert len(blocks[5]) < len(blocks[2])
    plain = zlib.decompressobj(zdict=sc.SPDY_DICTIONARY)
    ours = sc.HeaderDecompressor()
    for headers, block in zip(sets, blocks):
        assert tiny_headers(plain.decompress(block)) == headers
        assert dict(ours.decompress(block)) == headers
    # A later block cannot be read without the ones before it.
    with pytest.raises(zlib.error):
        zlib.decompressobj(zdict=sc.SPDY_DICTIONARY).decompress(blocks[2])
    # Several values of one name are NUL-separated.
    assert sc.encode_header_block({"a": ["1", "2"]}) == \
        b"\0\0\0\x01" + b"\0\0\0\x01a" + b"\0\0\0\x031\x002"
    with pytest.raises(sc.ProtocolError):
        sc.decode_header_block(b"\0\0\0\x02\0\0\0\x01a")


def test_spdy_frame_layouts():
    hx = bytes.fromhex
    cases = [
        (sc.syn_stream_frame(1, b"HB"), hx("80030001 0000000c 00000001 00000000 0000 4842")),
        (sc.syn_stream_frame(3, b"", sc.FLAG_FIN, priority=3),
         hx("80030001 0100000a 00000003 00000000 6000")),
        (sc.syn_reply_frame(1, b"HB"), hx("80030002 00000006 00000001 4842")),
        (sc.rst_stream_frame(3, sc.CANCEL), hx("80030003 00000008 00000003 00000005")),
        (sc.settings_frame({sc.SETTINGS_INITIAL_WINDOW_SIZE: 65536}),
         hx("80030004 0000000c 00000001 00000007 00010000")),
        (sc.ping_frame(1), hx("80030006 00000004 00000001")),
        (sc.goaway_frame(5, sc.GOAWAY_OK), hx("80030007 00000008 00000005 00000000")),
        (sc.headers_frame(1, b"H", sc.FLAG_FIN), hx("80030008 01000005 00000001 48")),
        (sc.window_update_frame(0, 65536), hx("80030009 00000008 00000000 00010000")),
        (sc.data_frame(1, b"hi", sc.FLAG_FIN), hx("00000001 01000002 6869")),
        (sc.data_frame(7, b""), hx("00000007 00000000")),
    ]
    for built, expected in cases:
        assert built == expected, (built.hex(), expected.hex())
    f = tiny_parse(cases[1][0])
    assert (f["version"], f["type"], f["flags"], f["stream_id"], f["priority"]) == (3, 1, 1, 3, 3)
    # The client's own parser reads them back.
    frames = [sc.parse_frame(b)[0] for b, _ in cases]
    assert [f.name for f in frames] == ["SYN_STREAM", "SYN_STREAM", "SYN_REPLY", "RST_STREAM",
                                        "SETTINGS", "PING", "GOAWAY", "HEADERS",
                                        "WINDOW_UPDATE", "DATA", "DATA"]
    assert frames[1].priority == 3 and frames[1].flags == sc.FLAG_FIN
    assert frames[3].status == sc.CANCEL and frames[3].stream_id == 3
    assert frames[4].settings == [(sc.SETTINGS_INITIAL_WINDOW_SIZE, 65536, 0)]
    assert frames[6].last_good == 5 and frames[8].delta == 65536
    assert frames[9].data == b"hi" and frames[9].stream_id == 1
    assert sc.parse_frame(cases[0][0][:-1]) == (None, 0)
    both = cases[5][0] + cases[9][0]
    frame, used = sc.parse_frame(both)
    assert frame.ping_id == 1 and used == 12


# --------------------------------------------------------------------------
# WebSocket pieces

def test_websocket_accept_key():
    # RFC 6455 section 1.3 (the value sometimes quoted, s3pPLMBiTxaQ9kYGzV0pzWlrbWk=,
    # is a misquote).
    assert sc.ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_websocket_masking():
    # RFC 6455 section 5.7
    key = bytes.fromhex("37fa213d")
    masked = sc.ws_frame(sc.OP_TEXT, b"Hello", mask_key=key)
    assert masked == bytes.fromhex("818537fa213d7f9f4d5158")
    assert sc.ws_frame(sc.OP_TEXT, b"Hello", mask=False) == bytes.fromhex("810548656c6c6f")
    assert sc.ws_frame(sc.OP_PONG, b"Hello", mask_key=key) == \
        bytes.fromhex("8a8537fa213d7f9f4d5158")
    assert sc.ws_frame(sc.OP_BINARY, bytes(256), mask=False)[:4] == bytes.fromhex("827e0100")
    assert sc.ws_frame(sc.OP_BINARY, bytes(65536), mask=False)[:10] == \
        bytes.fromhex("827f0000000000010000")
    assert sc.parse_ws_frame(masked) == (True, 0, sc.OP_TEXT, key, b"Hello", 11)
    assert sc.parse_ws_frame(masked[:-1]) is None
    data = os.urandom(1000)
    assert sc.ws_mask(sc.ws_mask(data, key), key) == data
    assert sc.ws_mask(data, key) == bytes(b ^ key[i % 4] for i, b in enumerate(data))
    frame = sc.ws_frame(sc.OP_BINARY, data)
    assert frame[1] & 0x80 and sc.parse_ws_frame(frame)[4] == data


def test_channel_encodings():
    assert sc.encode_channel_message(0, b"foo\n") == (sc.OP_BINARY, b"\0foo\n")
    assert sc.encode_channel_message(1, b"\n", base64_codec=True) == (sc.OP_TEXT, b"1Cg==")
    assert sc.encode_channel_message(0, b"foo\n", base64_codec=True) == \
        (sc.OP_TEXT, b"0" + base64.b64encode(b"foo\n"))
    assert sc.decode_channel_message(b"\x03{}") == (3, b"{}")
    assert sc.decode_channel_message(b"2" + base64.b64encode(b"err"), True) == (2, b"err")
    assert sc.decode_channel_message(b"1", True) == (1, b"")      # the ready signal
    for bad in (b"x" + base64.b64encode(b"a"), b"1!!!", b""):
        with pytest.raises(ValueError):
            sc.decode_channel_message(bad, True)


def test_status_parsing():
    failure = {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
               "message": "command terminated with non-zero exit code: exit status 3",
               "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}
    assert sc.parse_error_stream(json.dumps(failure).encode(), sc.V4) == (failure, 3)
    success = {"metadata": {}, "status": "Success"}
    assert sc.parse_error_stream(json.dumps(success).encode(), sc.V4) == (success, 0)
    other = {"metadata": {}, "status": "Failure", "reason": "InternalError", "message": "x"}
    assert sc.parse_error_stream(json.dumps(other).encode(), sc.WS_V4_BASE64)[1] is None
    assert sc.parse_error_stream(b"", sc.V4) == ("", None)
    assert sc.parse_error_stream(b"", sc.V3) == ("", 0)
    assert sc.parse_error_stream(b"exec failed: no such file", sc.V2) == \
        ("exec failed: no such file", None)
    assert [sc.protocol_version(p) for p in (sc.V1, sc.V2, sc.V4, sc.WS_V4_BASE64, "")] == \
        [1, 2, 4, 4, 1]


# --------------------------------------------------------------------------
# fake servers

class FakeServer:
    """Accepts one connection on 127.0.0.1 and runs
    handler(server, sock, request_line, headers, rest) in a thread; headers are
    [(lowercase name, value)], rest the bytes after the request head."""

    def __init__(self, handler, **state):
        self.handler = handler
        self.state = state
        self.error = None
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(5)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def _run(self):
        try:
            sock, _ = self.listener.accept()
            with sock:
                sock.settimeout(5)
                data = b""
                while b"\r\n\r\n" not in data:
                    chunk = sock.recv(4096)
                    assert chunk, "client closed before its request"
                    data += chunk
                head, _, rest = data.partition(b"\r\n\r\n")
                line, *lines = head.decode("latin-1").split("\r\n")
                headers = [(n.strip().lower(), v.strip())
                           for n, _, v in (h.partition(":") for h in lines)]
                self.handler(self, sock, line, headers, rest)
        except Exception:
            self.error = traceback.format_exc()
        finally:
            self.listener.close()

    def join(self):
        self.thread.join(5)
        assert not self.thread.is_alive(), "the fake server is still running"
        assert self.error is None, self.error


def values(headers, name):
    return [v for n, v in headers if n == name]


class FakeSpdyPeer:
    """The server end of a SPDY/3.1 session, frame by frame."""

    def __init__(self, sock, rest):
        self.sock = sock
        self.buf = bytearray(rest)
        self.inflate = zlib.decompressobj(zdict=sc.SPDY_DICTIONARY)
        self.deflate = sc.HeaderCompressor()

    def read_frame(self):
        """The next frame's fields (headers decompressed), None at EOF."""
        while len(self.buf) < 8 or len(self.buf) < 8 + int.from_bytes(self.buf[5:8], "big"):
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        n = 8 + int.from_bytes(self.buf[5:8], "big")
        f = tiny_parse(bytes(self.buf[:n]))
        del self.buf[:n]
        if f["type"] != "DATA":
            assert f["version"] == 3
        if "block" in f:
            f["headers"] = tiny_headers(self.inflate.decompress(f["block"]))
        return f

    def send(self, *frames):
        self.sock.sendall(b"".join(frames))

    def reply(self, stream_id):
        self.send(sc.syn_reply_frame(stream_id, self.deflate.compress({})))


SPDY_101 = (b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\n"
            b"X-Stream-Protocol-Version: %s\r\n\r\n")


def spdy_echo(server, sock, line, headers, rest):
    """Echoes every stream's data within the client's windows and gives the
    client window back only for what it echoed; FIN answers FIN."""
    st = server.state
    st.update(line=line, headers=headers, syn=[], violations=[], stream_credit=0,
              ping_echoed=False, goaway=False)
    sock.sendall(SPDY_101 % values(headers, "x-stream-protocol-version")[0].encode())
    peer = FakeSpdyPeer(sock, rest)
    peer.send(sc.ping_frame(2))
    out_window, in_window = {0: 65536}, {0: 65536}
    pending, fin_in, fin_out = {}, set(), set()
    while True:
        f = peer.read_frame()
        if f is None or f["type"] == 7:
            st["goaway"] = f is not None
            return
        sid = f.get("stream_id")
        if f["type"] == 1:
            st["syn"].append((sid, f["headers"]))
            out_window[sid], in_window[sid], pending[sid] = 65536, 65536, bytearray()
            peer.reply(sid)
        elif f["type"] == "DATA":
            n = len(f["payload"])
            in_window[sid] -= n
            in_window[0] -= n
            if min(in_window[sid], in_window[0]) < 0:
                st["violations"].append(f"stream {sid} window overrun")
            pending[sid] += f["payload"]
            if f["flags"] & 1:
                fin_in.add(sid)
        elif f["type"] == 9:
            out_window[sid] += f["delta"]
            if sid:
                st["stream_credit"] += f["delta"]
        elif f["type"] == 6:
            if f["ping_id"] % 2:
                peer.send(sc.ping_frame(f["ping_id"]))
            else:
                st["ping_echoed"] = True
        for sid, data in pending.items():
            while data and min(out_window[sid], out_window[0]) > 0:
                n = min(len(data), out_window[sid], out_window[0], 16384)
                peer.send(sc.data_frame(sid, data[:n]),
                          sc.window_update_frame(sid, n), sc.window_update_frame(0, n))
                del data[:n]
                out_window[sid] -= n
                out_window[0] -= n
                in_window[sid] += n
                in_window[0] += n
            if sid in fin_in and not data and sid not in fin_out:
                peer.send(sc.data_frame(sid, b"", sc.FLAG_FIN))
                fin_out.add(sid)


def test_spdy_session_streams_flow_control_and_fin():
    srv = FakeServer(spdy_echo)
    conn = sc.SpdyConnection(srv.url("/exec/tok"), [sc.V4, sc.V3], timeout=5)
    failures = []
    try:
        assert conn.protocol == sc.V4
        assert conn.ping(timeout=2) < 2
        st = conn.open_stream({"streamType": "stdin"}, timeout=2)
        assert st.id == 1 and st.reply_headers == {}
        payload = os.urandom(1 << 20)

        def write():
            try:
                st.write(payload, timeout=5)
                st.close_write()
            except Exception:
                failures.append(traceback.format_exc())

        writer = threading.Thread(target=write)
        writer.start()
        echoed = st.read_all(timeout=5)
        writer.join(5)
        assert not failures, failures[0]
        assert len(echoed) == len(payload) and echoed == payload
        assert st.fin_received and not st.was_reset and st.sent == len(payload)
        assert conn.server_pings == 1
        assert conn.errors == []
    finally:
        conn.close()
    srv.join()
    state = srv.state
    assert state["line"] == "GET /exec/tok HTTP/1.1"
    assert values(state["headers"], "x-stream-protocol-version") == [sc.V4, sc.V3]
    assert values(state["headers"], "upgrade") == ["SPDY/3.1"]
    assert values(state["headers"], "connection") == ["Upgrade"]
    assert state["syn"] == [(1, {"streamtype": "stdin"})]
    assert state["violations"] == []
    # The fake could only echo 1 MiB because the client gave its window back.
    assert state["stream_credit"] >= (1 << 20) - 65536
    assert state["ping_echoed"] and state["goaway"]


def spdy_stingy(server, sock, line, headers, rest):
    """Shrinks the stream window to 16 KiB and never gives any back."""
    sock.sendall(SPDY_101 % b"v4.channel.k8s.io")
    peer = FakeSpdyPeer(sock, rest)
    peer.send(sc.settings_frame({sc.SETTINGS_INITIAL_WINDOW_SIZE: 16384}))
    server.state["received"] = 0
    while True:
        f = peer.read_frame()
        if f is None or f["type"] == 7:
            return
        if f["type"] == 1:
            peer.reply(f["stream_id"])
        elif f["type"] == "DATA":
            server.state["received"] += len(f["payload"])


def test_spdy_writes_stop_at_the_servers_window():
    srv = FakeServer(spdy_stingy)
    with sc.SpdyConnection(srv.url("/exec/tok"), [sc.V4], timeout=5) as conn:
        st = conn.open_stream({"streamtype": "stdin"})
        with pytest.raises(TimeoutError):
            st.write(bytes(100000), timeout=0.3)
        assert st.sent == 16384 and st.send_window == 0
        assert conn.server_settings == {sc.SETTINGS_INITIAL_WINDOW_SIZE: 16384}
    srv.join()
    assert srv.state["received"] == 16384


def refuse(server, sock, line, headers, rest):
    sock.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n"
                 b"a\r\nunable to \r\n14\r\nupgrade: bad token\r\n\r\n0\r\n\r\n")


def test_refused_upgrade():
    srv = FakeServer(refuse)
    with pytest.raises(sc.UpgradeError) as e:
        sc.SpdyConnection(srv.url("/exec/nope"), [sc.V4], timeout=2)
    srv.join()
    assert e.value.status == 403
    assert e.value.body == b"unable to upgrade: bad token\r\n"
    assert "403" in str(e.value) and "bad token" in str(e.value)
    srv = FakeServer(refuse)
    status, headers, body, sock = sc.raw_upgrade(srv.url("/x"), {"Upgrade": "nonsense"})
    sock.close()
    srv.join()
    assert (status, headers["Content-Type"]) == (403, "text/plain")
    assert body == b"unable to upgrade: bad token\r\n"


def fake_exec_spdy(server, sock, line, headers, rest):
    """A kubelet-like exec: replies to each stream as it comes, reads stdin to
    FIN, answers, writes the status, then resets every stream, sends GOAWAY
    and closes, as the kubelet does."""
    st = server.state
    protocol = values(headers, "x-stream-protocol-version")[0]
    sock.sendall(SPDY_101 % protocol.encode())
    peer = FakeSpdyPeer(sock, rest)
    streams, order, stdin, resize = {}, [], bytearray(), bytearray()
    while True:
        f = peer.read_frame()
        assert f is not None, "client went away"
        if f["type"] == 1:
            kind = f["headers"]["streamtype"]
            order.append(kind)
            streams[kind] = f["stream_id"]
            assert f["stream_id"] == 2 * len(order) - 1
            peer.reply(f["stream_id"])
        elif f["type"] == "DATA" and f["payload"]:
            n = len(f["payload"])
            peer.send(sc.window_update_frame(f["stream_id"], n), sc.window_update_frame(0, n))
            (stdin if f["stream_id"] == streams["stdin"] else resize).extend(f["payload"])
        if f["type"] == "DATA" and f["flags"] & 1 and f["stream_id"] == streams["stdin"]:
            break
    st.update(order=order, stdin=bytes(stdin), resize=bytes(resize))
    peer.send(sc.data_frame(streams["stdout"], b"%d bytes\n" % len(stdin)))
    if "stderr" in streams:
        peer.send(sc.data_frame(streams["stderr"], b"warning\n"))
    if st["status"] is not None:
        status = json.dumps(st["status"]).encode()
        peer.send(sc.data_frame(streams["error"], status[:10]),
                  sc.data_frame(streams["error"], status[10:]))
    peer.send(*[sc.rst_stream_frame(sid, sc.CANCEL) for sid in streams.values()])
    peer.send(sc.goaway_frame(max(streams.values())))


FAILURE_3 = {"metadata": {}, "status": "Failure", "reason": "NonZeroExitCode",
             "message": "command terminated with non-zero exit code: exit status 3",
             "details": {"causes": [{"reason": "ExitCode", "message": "3"}]}}


@pytest.mark.parametrize("protocol,tty,status,order", [
    (sc.V4, False, FAILURE_3, ["error", "stdin", "stdout", "stderr"]),
    (sc.V4, True, {"metadata": {}, "status": "Success"}, ["error", "stdin", "stdout", "resize"]),
    (sc.V2, True, None, ["error", "stdin", "stdout"]),
])
def test_exec_spdy_against_a_fake_kubelet(protocol, tty, status, order):
    srv = FakeServer(fake_exec_spdy, status=status)
    stdin = b"0123456789abcde\n" * 10000      # more than one 64 KiB window
    with sc.RemoteCommandSpdy(srv.url("/exec/tok"), tty=tty, protocol=protocol,
                              timeout=5) as rc:
        if tty and protocol == sc.V4:
            rc.resize(100, 30)
        rc.send(stdin)
        rc.close_stdin()
        assert rc.read_until(b"bytes\n", timeout=5) == b"160000 bytes\n"
        result = rc.wait(5)
        assert rc.conn.errors == []
        assert rc.conn.goaway_received == (2 * len(order) - 1, 0)
        assert rc.stdout_stream.was_reset and rc.stdout_stream.status == sc.CANCEL
    srv.join()
    assert srv.state["order"] == order
    assert srv.state["stdin"] == stdin
    assert srv.state["resize"] == (b'{"Width":100,"Height":30}\n' if "resize" in order else b"")
    assert result.stdout == b"160000 bytes\n"
    assert result.stderr == (b"" if tty else b"warning\n")
    assert result.protocol == protocol
    assert result.exit_code == (3 if status is FAILURE_3 else 0)
    assert result.error == (status if status is not None else "")


def test_exec_spdy_one_shot():
    srv = FakeServer(fake_exec_spdy, status=FAILURE_3)
    result = sc.exec_spdy(srv.url("/exec/tok"), stdin=b"abc", timeout=5)
    srv.join()
    assert srv.state["stdin"] == b"abc"
    assert (result.stdout, result.stderr, result.exit_code) == (b"3 bytes\n", b"warning\n", 3)
    assert not result.ok


class FakeWsPeer:
    """The server end of a WebSocket: unmasked frames out, masked ones in."""

    def __init__(self, sock, rest, b64):
        self.sock = sock
        self.buf = bytearray(rest)
        self.b64 = b64
        self.unmasked = 0

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            assert chunk, "client closed the connection"
            self.buf += chunk
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_frame(self):
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack(">H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack(">Q", self._read(8))[0]
        key = self._read(4) if b1 & 0x80 else b"\0\0\0\0"
        self.unmasked += not b1 & 0x80
        payload = bytes(b ^ key[i % 4] for i, b in enumerate(self._read(n)))
        return b0 & 0x0F, payload

    def send_frame(self, opcode, payload):
        n = len(payload)
        size = bytes([n]) if n < 126 else bytes([126]) + struct.pack(">H", n)
        self.sock.sendall(bytes([0x80 | opcode]) + size + payload)

    def send(self, channel, data):
        if self.b64:
            self.send_frame(1, str(channel).encode() + base64.b64encode(data))
        else:
            self.send_frame(2, bytes([channel]) + data)

    def decode(self, payload):
        if self.b64:
            return payload[0] - ord("0"), base64.b64decode(payload[1:])
        return payload[0], payload[1:]


def ws_accept(server, sock, headers, rest):
    """Answers the handshake with the first protocol offered."""
    key = values(headers, "sec-websocket-key")[0]
    protocol = values(headers, "sec-websocket-protocol")[0].split(",")[0].strip()
    server.state.update(headers=headers, protocol=protocol)
    accept = base64.b64encode(hashlib.sha1((key + sc.WS_GUID).encode()).digest()).decode()
    sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
                  f"Sec-WebSocket-Protocol: {protocol}\r\n\r\n").encode())
    return FakeWsPeer(sock, rest, "base64" in protocol)


def ws_close(server, peer):
    """Sends close 1000 and waits for the client's close frame."""
    peer.send_frame(8, struct.pack(">H", 1000))
    while True:
        op, payload = peer.read_frame()
        if op == 8:
            server.state["client_close"] = struct.unpack(">H", payload[:2])[0]
            server.state["unmasked"] = peer.unmasked
            return


def fake_exec_ws(server, sock, line, headers, rest):
    peer = ws_accept(server, sock, headers, rest)
    peer.send(1, b"")                          # ready
    peer.send_frame(9, b"are you there")
    stdin, pong = b"", None
    while not stdin.endswith(b"\n") or pong is None:
        op, payload = peer.read_frame()
        if op == 10:
            pong = payload
        elif op in (1, 2):
            channel, data = peer.decode(payload)
            assert channel == 0
            stdin += data
    server.state["pong"] = pong
    peer.send(1, stdin.upper())
    peer.send(2, b"warning\n")
    peer.send(3, json.dumps(FAILURE_3).encode())
    ws_close(server, peer)


@pytest.mark.parametrize("protocol", [sc.V4, sc.WS_V4_BASE64])
def test_exec_ws_against_a_fake_kubelet(protocol):
    srv = FakeServer(fake_exec_ws)
    with sc.RemoteCommandWs(srv.url("/exec/tok"), protocol=[protocol, sc.V1],
                            timeout=5) as rc:
        assert rc.protocol == protocol
        rc.send(b"hi there\n")
        assert rc.read_until("HI THERE\n", timeout=2) == b"HI THERE\n"
        assert rc.close_stdin() is False       # v4 cannot
        result = rc.wait(5)
        assert rc.ready_channels == [1]
        assert rc.conn.pings_received == 1
        assert rc.conn.close_code == 1000
        assert rc.conn.errors == []
    srv.join()
    assert values(srv.state["headers"], "sec-websocket-protocol") == [f"{protocol}, {sc.V1}"]
    assert values(srv.state["headers"], "sec-websocket-version") == ["13"]
    assert srv.state["pong"] == b"are you there"
    assert srv.state["client_close"] == 1000 and srv.state["unmasked"] == 0
    assert (result.stdout, result.stderr) == (b"HI THERE\n", b"warning\n")
    assert (result.exit_code, result.error) == (3, FAILURE_3)


def test_exec_ws_one_shot():
    srv = FakeServer(fake_exec_ws)
    result = sc.exec_ws(srv.url("/exec/tok"), stdin=b"abc\n", timeout=5)
    srv.join()
    assert (result.stdout, result.exit_code, result.protocol) == (b"ABC\n", 3, sc.V4)


def fake_portforward_ws(server, sock, line, headers, rest):
    server.state["line"] = line
    peer = ws_accept(server, sock, headers, rest)
    for i, port in enumerate((80, 8080)):
        peer.send(2 * i, struct.pack("<H", port))
        peer.send(2 * i + 1, struct.pack("<H", port))
    seen = set()
    while seen != {0, 2}:
        op, payload = peer.read_frame()
        channel, data = peer.decode(payload)
        seen.add(channel)
        if channel == 0:
            peer.send(0, b"echo:" + data)
        else:
            peer.send(3, b"dial tcp 127.0.0.1:8080: connection refused")
    ws_close(server, peer)


def test_portforward_ws_against_a_fake_kubelet():
    srv = FakeServer(fake_portforward_ws)
    with sc.PortForwardWs(srv.url("/portforward/tok"), ports=[80, 8080], timeout=5) as pf:
        assert pf.ports == [80, 8080]
        pf.send(0, b"ping")
        assert pf.recv_data(0, timeout=2) == b"echo:ping"
        pf.send(1, b"x")
        assert pf.error(1, timeout=2).endswith("connection refused")
        assert pf.error(0) == ""
        assert pf.errors == [] and pf.conn.errors == []
    srv.join()
    assert srv.state["line"] == "GET /portforward/tok?port=80&port=8080 HTTP/1.1"


def fake_portforward_spdy(server, sock, line, headers, rest):
    st = server.state
    st.update(protocols=values(headers, "x-stream-protocol-version"), syn=[], error_fin=False)
    sock.sendall(SPDY_101 % b"portforward.k8s.io")
    peer = FakeSpdyPeer(sock, rest)
    streams = {}
    while True:
        f = peer.read_frame()
        assert f is not None
        if f["type"] == 1:
            st["syn"].append((f["stream_id"], f["headers"]))
            streams[f["headers"]["streamtype"]] = f["stream_id"]
            peer.reply(f["stream_id"])
        elif f["type"] == "DATA" and f["stream_id"] == streams.get("error"):
            st["error_fin"] = bool(f["flags"] & 1) and not f["payload"]
        elif f["type"] == "DATA":
            peer.send(sc.data_frame(f["stream_id"], f["payload"], f["flags"] & 1))
            if f["flags"] & 1:
                break
    peer.send(sc.data_frame(streams["error"], b"boom", sc.FLAG_FIN))
    while f is not None and f["type"] != 7:
        f = peer.read_frame()


def test_portforward_spdy_against_a_fake_kubelet():
    srv = FakeServer(fake_portforward_spdy)
    with sc.PortForwardSpdy(srv.url("/portforward/tok"), timeout=5) as pf:
        data, error = pf.connect(8080)
        data.write(b"abc")
        data.close_write()
        assert data.read_all(timeout=2) == b"abc"
        assert error.read_all(timeout=2) == b"boom"
        assert pf.conn.errors == []
    srv.join()
    assert srv.state["protocols"] == ["portforward.k8s.io"]
    assert srv.state["syn"] == [
        (1, {"streamtype": "error", "port": "8080", "requestid": "0"}),
        (3, {"streamtype": "data", "port": "8080", "requestid": "0"})]
    assert srv.state["error_fin"]
