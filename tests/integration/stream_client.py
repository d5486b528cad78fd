"""The client side of the protocols kubectl and crictl speak to a CRI streaming
server, written from the specs: SPDY/3.1 (draft-mbelshe-spdy-00 plus 3.1's
session flow control) carrying Kubernetes' remotecommand (exec, attach) and
portforward subprotocols, and WebSocket (RFC 6455) with the channel.k8s.io
subprotocols.  Tests use it to drive streamd and to send it hostile traffic.

Standard library only.  Every connection has a reader thread and a writer
thread, so that reading never waits on a full socket; anything the server
does against the protocol is recorded in the connection's .errors list.
"""
import base64
import collections
import dataclasses
import hashlib
import http.client
import io
import json
import os
import re
import socket
import ssl
import struct
import threading
import time
import urllib.parse
import zlib

USER_AGENT = "crisp-stream-client/1"

# Kubernetes subprotocols (k8s.io/apimachinery/pkg/util/remotecommand).
V1 = "channel.k8s.io"
V2 = "v2.channel.k8s.io"
V3 = "v3.channel.k8s.io"
V4 = "v4.channel.k8s.io"
V5 = "v5.channel.k8s.io"
REMOTECOMMAND_PROTOCOLS = (V4, V3, V2, V1)
PORTFORWARD_PROTOCOL = "portforward.k8s.io"
WS_BASE64 = "base64.channel.k8s.io"
WS_V4_BASE64 = "v4.base64.channel.k8s.io"

# remotecommand channels (WebSocket) and the v5 CLOSE signal.
STDIN, STDOUT, STDERR, ERROR, RESIZE = 0, 1, 2, 3, 4
STREAM_CLOSE = 255


class UpgradeError(Exception):
    """The server answered the upgrade request with something else than 101."""

    def __init__(self, status, reason, headers, body):
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body
        text = body.decode("utf-8", "replace").strip()
        super().__init__(f"upgrade refused: {status} {reason}: {text[:1000]}")


class ProtocolError(Exception):
    """The server broke the protocol."""


class StreamResetError(ConnectionError):
    """The server reset (RST_STREAM) a SPDY stream."""

    def __init__(self, stream_id, status):
        self.stream_id = stream_id
        self.status = status
        super().__init__(f"stream {stream_id} reset by the server: "
                         f"{RST_NAMES.get(status, status)}")


# --------------------------------------------------------------------------
# HTTP/1.1 upgrade

def _pairs(headers):
    """[(name, value)] from a dict or an iterable of pairs."""
    if headers is None:
        return []
    if isinstance(headers, dict):
        return list(headers.items())
    return [tuple(h) for h in headers]


def _split_url(url):
    u = urllib.parse.urlsplit(url)
    if u.scheme not in ("http", "https", "ws", "wss"):
        raise ValueError(f"unsupported URL scheme: {url}")
    secure = u.scheme in ("https", "wss")
    path = (u.path or "/") + (f"?{u.query}" if u.query else "")
    host_header = u.netloc.rpartition("@")[2]
    return secure, u.hostname, u.port or (443 if secure else 80), path, host_header


def _connect(url, ssl_context, timeout):
    secure, host, port, path, host_header = _split_url(url)
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if secure:
        ctx = ssl_context or ssl.create_default_context()
        try:
            sock = ctx.wrap_socket(sock, server_hostname=host)
        except BaseException:
            sock.close()
            raise
    return sock, path, host_header


def _request(method, path, host_header, headers):
    pairs = _pairs(headers)
    lines = [f"{method} {path} HTTP/1.1"]
    if not any(n.lower() == "host" for n, _ in pairs):
        lines.append(f"Host: {host_header}")
    if not any(n.lower() == "user-agent" for n, _ in pairs):
        lines.append(f"User-Agent: {USER_AGENT}")
    lines += [f"{n}: {v}" for n, v in pairs]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class _Buffered:
    """A socket with a read buffer (bytes read past the HTTP head are kept)."""

    def __init__(self, sock, data=b""):
        self.sock = sock
        self.buf = bytearray(data)

    def _fill(self):
        chunk = self.sock.recv(256 * 1024)
        if not chunk:
            return False
        self.buf += chunk
        return True

    def read_exact(self, n):
        """n bytes; EOFError("clean") if the peer closed before any of them."""
        while len(self.buf) < n:
            had = len(self.buf)
            if not self._fill():
                raise EOFError("truncated" if had else "clean")
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def read_until(self, sep, limit=64 * 1024):
        start = 0
        while True:
            i = self.buf.find(sep, start)
            if i >= 0:
                out = bytes(self.buf[:i + len(sep)])
                del self.buf[:i + len(sep)]
                return out
            if len(self.buf) > limit:
                raise ProtocolError(f"no {sep!r} within {limit} bytes")
            start = max(0, len(self.buf) - len(sep) + 1)
            if not self._fill():
                raise EOFError("truncated" if self.buf else "clean")

    def read_to_eof(self):
        while self._fill():
            pass
        out = bytes(self.buf)
        self.buf.clear()
        return out


def _read_head(buf):
    """(status, reason, headers) of an HTTP/1.x response head."""
    head = buf.read_until(b"\r\n\r\n")
    line, _, rest = head.partition(b"\r\n")
    m = re.fullmatch(rb"HTTP/1\.[01] (\d{3})(?: (.*))?", line)
    if not m:
        raise ProtocolError(f"bad status line: {line[:200]!r}")
    headers = http.client.parse_headers(io.BytesIO(rest))
    return int(m.group(1)), (m.group(2) or b"").decode("latin-1"), headers


def _read_body(buf, headers, timeout):
    """The body of a non-101 answer: chunked, Content-Length or up to EOF; what
    came if the server stalls for TIMEOUT seconds."""
    out = bytearray()
    buf.sock.settimeout(timeout)
    try:
        if "chunked" in (headers.get("Transfer-Encoding") or "").lower():
            while True:
                size = int(buf.read_until(b"\r\n").split(b";")[0].strip(), 16)
                if size == 0:
                    while buf.read_until(b"\r\n") != b"\r\n":
                        pass
                    break
                out += buf.read_exact(size)
                buf.read_exact(2)
        elif headers.get("Content-Length") is not None:
            out += buf.read_exact(int(headers["Content-Length"]))
        else:
            out += buf.read_to_eof()
    except (EOFError, OSError, ValueError, ProtocolError):
        out += buf.buf
    return bytes(out)


def _upgrade(url, headers, ssl_context, timeout, request=None):
    """Sends the request; returns (status, reason, headers, buffered socket)."""
    sock, path, host_header = _connect(url, ssl_context, timeout)
    try:
        sock.sendall(request if request is not None
                     else _request("GET", path, host_header, headers))
        buf = _Buffered(sock)
        status, reason, rh = _read_head(buf)
    except BaseException:
        sock.close()
        raise
    return status, reason, rh, buf


def _refuse(status, reason, rh, buf, timeout):
    body = _read_body(buf, rh, timeout)
    buf.sock.close()
    raise UpgradeError(status, reason, rh, body)


def raw_upgrade(url, headers=(), ssl_context=None, timeout=10, method="GET", request=None):
    """Sends one request (REQUEST bytes verbatim if given, else METHOD on URL's
    path with Host, User-Agent and HEADERS) and reads the answer.

    Returns (status, headers, body, sock); sock is left open, for the caller
    to close.  For a 101 the body is whatever came after the head; status is
    None (body: the partial head) if the server closed without a full head.
    """
    sock, path, host_header = _connect(url, ssl_context, timeout)
    buf = _Buffered(sock)
    try:
        sock.sendall(request if request is not None
                     else _request(method, path, host_header, headers))
        status, _, rh = _read_head(buf)
    except (EOFError, ConnectionResetError, BrokenPipeError):
        return None, http.client.HTTPMessage(), bytes(buf.buf), sock
    except BaseException:
        sock.close()
        raise
    if status == 101:
        return status, rh, bytes(buf.buf), sock
    return status, rh, _read_body(buf, rh, timeout), sock


class _Writer:
    """Sends queued bytes from its own thread; at most LIMIT bytes wait."""

    def __init__(self, sock, limit=1 << 20):
        self.sock = sock
        self.limit = limit
        self.error = None
        self._cond = threading.Condition()
        self._queue = collections.deque()
        self._queued = 0
        self._closing = False
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name="stream-client-writer")
        self._thread.start()

    def put(self, data, block=True, timeout=None):
        """Queues DATA; with BLOCK, waits while more than LIMIT bytes wait."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while block and self._queued > self.limit and self.error is None \
                    and not self._closing:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"socket send blocked for {timeout}s")
                self._cond.wait(remaining)
            if self.error is not None:
                raise ConnectionError(f"send failed: {self.error}")
            if self._closing:
                raise ConnectionError("connection closed")
            self._queue.append(bytes(data))
            self._queued += len(data)
            self._cond.notify_all()

    def flush(self, timeout):
        """True once everything queued was sent (or sending failed)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queued and self.error is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def close(self):
        with self._cond:
            self._closing = True
            self._cond.notify_all()

    def _run(self):
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                parts = []
                while self._queue and sum(map(len, parts)) < 256 * 1024:
                    parts.append(self._queue.popleft())
            data = b"".join(parts)
            try:
                self.sock.sendall(data)
            except OSError as e:
                with self._cond:
                    self.error = e
                    self._queue.clear()
                    self._queued = 0
                    self._cond.notify_all()
                return
            with self._cond:
                self._queued -= len(data)
                self._cond.notify_all()


class _Session:
    """What SPDY and WebSocket connections share: the socket, reader and
    writer threads, one condition for all state, error log, teardown."""

    def _start(self, buf, timeout, name):
        self.sock = buf.sock
        self.timeout = timeout
        self.errors = []
        self.closed = False        # the reader saw EOF or an error
        self.close_error = None    # why, if not a clean EOF
        self._cond = threading.Condition()
        self._in = buf
        self._torn_down = False
        self.sock.settimeout(None)
        self._writer = _Writer(self.sock)
        self._reader = threading.Thread(target=self._read_main, daemon=True, name=name)
        self._reader.start()

    def _read_main(self):
        try:
            self._read_loop()
        except EOFError as e:
            if str(e) != "clean":
                self.close_error = "connection closed in the middle of a frame"
        except (OSError, ProtocolError, zlib.error) as e:
            self.close_error = f"{type(e).__name__}: {e}"
        finally:
            with self._cond:
                self.closed = True
                self._on_closed()
                self._cond.notify_all()

    def _on_closed(self):
        pass

    def _error(self, text):
        """Records something the server did against the protocol."""
        with self._cond:
            self.errors.append(text)

    def _wait(self, predicate, timeout, what):
        """Waits (holding the condition) until predicate(); TimeoutError after
        TIMEOUT seconds (None: the connection's timeout, 0: no waiting)."""
        if timeout is None:
            timeout = self.timeout
        deadline = time.monotonic() + timeout
        with self._cond:
            while not predicate():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
                self._cond.wait(remaining)

    def _send(self, data, timeout=None):
        self._writer.put(data, timeout=self.timeout if timeout is None else timeout)

    def _send_quiet(self, data):
        """Sends from the reader thread: never blocks, ignores a dead socket."""
        try:
            self._writer.put(data, block=False)
        except ConnectionError:
            pass

    def send_raw(self, data):
        """Sends DATA as is (for hostile tests)."""
        self._send(data)

    def wait_closed(self, timeout=None):
        """True once the server closed the connection (within TIMEOUT seconds)."""
        try:
            self._wait(lambda: self.closed, timeout, "the connection to close")
            return True
        except TimeoutError:
            return False

    def _teardown(self, flush_timeout=2):
        with self._cond:
            if self._torn_down:
                return
            self._torn_down = True
        self._writer.flush(flush_timeout)
        self._writer.close()
        try:
            # The plain socket's shutdown, also for TLS: wakes the reader up.
            socket.socket.shutdown(self.sock, socket.SHUT_RDWR)
        except OSError:
            pass
        self._reader.join(5)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


# --------------------------------------------------------------------------
# SPDY/3.1 framing

SPDY_VERSION = 3
SYN_STREAM, SYN_REPLY, RST_STREAM, SETTINGS = 1, 2, 3, 4
PING, GOAWAY, HEADERS, WINDOW_UPDATE, CREDENTIAL = 6, 7, 8, 9, 10
FRAME_NAMES = {SYN_STREAM: "SYN_STREAM", SYN_REPLY: "SYN_REPLY", RST_STREAM: "RST_STREAM",
               SETTINGS: "SETTINGS", PING: "PING", GOAWAY: "GOAWAY", HEADERS: "HEADERS",
               WINDOW_UPDATE: "WINDOW_UPDATE", CREDENTIAL: "CREDENTIAL"}
FLAG_FIN = 0x01
FLAG_UNIDIRECTIONAL = 0x02
FLAG_SETTINGS_CLEAR = 0x01

# RST_STREAM status codes
PROTOCOL_ERROR, INVALID_STREAM, REFUSED_STREAM, UNSUPPORTED_VERSION = 1, 2, 3, 4
CANCEL, INTERNAL_ERROR, FLOW_CONTROL_ERROR, STREAM_IN_USE = 5, 6, 7, 8
STREAM_ALREADY_CLOSED, INVALID_CREDENTIALS, FRAME_TOO_LARGE = 9, 10, 11
RST_NAMES = {1: "PROTOCOL_ERROR", 2: "INVALID_STREAM", 3: "REFUSED_STREAM",
             4: "UNSUPPORTED_VERSION", 5: "CANCEL", 6: "INTERNAL_ERROR",
             7: "FLOW_CONTROL_ERROR", 8: "STREAM_IN_USE", 9: "STREAM_ALREADY_CLOSED",
             10: "INVALID_CREDENTIALS", 11: "FRAME_TOO_LARGE"}
GOAWAY_OK, GOAWAY_PROTOCOL_ERROR, GOAWAY_INTERNAL_ERROR = 0, 1, 2

SETTINGS_MAX_CONCURRENT_STREAMS = 4
SETTINGS_INITIAL_WINDOW_SIZE = 7
DEFAULT_WINDOW = 64 * 1024
MAX_WINDOW = 0x7FFFFFFF
MAX_DATA_CHUNK = 32 * 1024

# The header compression dictionary (SPDY/3 section 2.6.10.1): each word with
# a 32-bit big-endian length before it, then a plain tail.  1423 bytes.
_DICT_WORDS = (
    "options head post put delete trace accept accept-charset accept-encoding "
    "accept-language accept-ranges age allow authorization cache-control connection "
    "content-base content-encoding content-language content-length content-location "
    "content-md5 content-range content-type date etag expect expires from host if-match "
    "if-modified-since if-none-match if-range if-unmodified-since last-modified location "
    "max-forwards pragma proxy-authenticate proxy-authorization range referer retry-after "
    "server te trailer transfer-encoding upgrade user-agent vary via warning "
    "www-authenticate method get status").split() + ["200 OK"] + \
    "version HTTP/1.1 url public set-cookie keep-alive origin".split()
_DICT_TAIL = (
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417"
    "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently"
    "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error"
    "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct "
    "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,"
    "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,"
    "publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
SPDY_DICTIONARY = b"".join(struct.pack(">I", len(w)) + w.encode() for w in _DICT_WORDS) \
    + _DICT_TAIL.encode()


def _b(s):
    return s if isinstance(s, bytes) else str(s).encode("utf-8")


def encode_header_block(headers):
    """The uncompressed name/value block: 32-bit count, then 32-bit length
    prefixed names and values (several values of one name: NUL-separated)."""
    pairs = _pairs(headers)
    out = [struct.pack(">I", len(pairs))]
    for name, value in pairs:
        if isinstance(value, (list, tuple)):
            value = b"\0".join(_b(v) for v in value)
        name, value = _b(name), _b(value)
        out += [struct.pack(">I", len(name)), name, struct.pack(">I", len(value)), value]
    return b"".join(out)


def decode_header_block(data):
    """[(name, value)] of an uncompressed name/value block (latin-1 strings)."""
    def take(off, n):
        if off + n > len(data):
            raise ProtocolError("truncated header block")
        return data[off:off + n], off + n

    raw, off = take(0, 4)
    count = struct.unpack(">I", raw)[0]
    pairs = []
    for _ in range(count):
        raw, off = take(off, 4)
        name, off = take(off, struct.unpack(">I", raw)[0])
        raw, off = take(off, 4)
        value, off = take(off, struct.unpack(">I", raw)[0])
        pairs.append((name.decode("latin-1"), value.decode("latin-1")))
    if off != len(data):
        raise ProtocolError(f"{len(data) - off} stray bytes after the header block")
    return pairs


class HeaderCompressor:
    """One direction's header compression: a single zlib stream with the SPDY
    dictionary for the whole session, SYNC_FLUSHed after each block."""

    def __init__(self):
        self._z = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, 15, 8,
                                   zlib.Z_DEFAULT_STRATEGY, zdict=SPDY_DICTIONARY)

    def compress(self, headers):
        block = encode_header_block(headers)
        return self._z.compress(block) + self._z.flush(zlib.Z_SYNC_FLUSH)


class HeaderDecompressor:
    """The other end of a HeaderCompressor."""

    def __init__(self, limit=1 << 20):
        self._z = zlib.decompressobj(zdict=SPDY_DICTIONARY)
        self.limit = limit

    def decompress(self, data):
        """[(name, value)]; zlib.error if the stream is broken."""
        out = self._z.decompress(data, self.limit)
        if self._z.unconsumed_tail:
            raise zlib.error(f"header block larger than {self.limit} bytes")
        return decode_header_block(out)


def control_frame(ftype, payload, flags=0, version=SPDY_VERSION):
    return struct.pack(">HHI", 0x8000 | version, ftype, (flags << 24) | len(payload)) \
        + bytes(payload)


def data_frame(stream_id, data, flags=0):
    if len(data) > 0xFFFFFF:
        raise ValueError("DATA frame larger than 16 MiB")
    return struct.pack(">II", stream_id & MAX_WINDOW, (flags << 24) | len(data)) + bytes(data)


def syn_stream_frame(stream_id, header_block, flags=0, assoc_id=0, priority=0, slot=0):
    return control_frame(SYN_STREAM, struct.pack(">IIBB", stream_id, assoc_id,
                                                 (priority & 7) << 5, slot) + header_block,
                         flags)


def syn_reply_frame(stream_id, header_block, flags=0):
    return control_frame(SYN_REPLY, struct.pack(">I", stream_id) + header_block, flags)


def headers_frame(stream_id, header_block, flags=0):
    return control_frame(HEADERS, struct.pack(">I", stream_id) + header_block, flags)


def rst_stream_frame(stream_id, status):
    return control_frame(RST_STREAM, struct.pack(">II", stream_id, status))


def settings_frame(entries, flags=0):
    """ENTRIES: {id: value} or [(id, value) or (id, value, entry_flags)]."""
    items = list(entries.items()) if isinstance(entries, dict) else list(entries)
    body = [struct.pack(">I", len(items))]
    for item in items:
        sid, value, eflags = (tuple(item) + (0,))[:3]
        body.append(struct.pack(">II", (eflags << 24) | sid, value))
    return control_frame(SETTINGS, b"".join(body), flags)


def ping_frame(ping_id):
    return control_frame(PING, struct.pack(">I", ping_id))


def goaway_frame(last_good, status=GOAWAY_OK):
    return control_frame(GOAWAY, struct.pack(">II", last_good, status))


def window_update_frame(stream_id, delta):
    return control_frame(WINDOW_UPDATE, struct.pack(">II", stream_id, delta))


class SpdyFrame:
    """A frame as read.  Data frames: control False, stream_id, flags, data.
    Control frames: type, version, flags and per type stream_id, header_block
    (compressed), assoc_id, priority, status, ping_id, last_good, delta,
    settings [(id, value, flags)]."""

    def __init__(self, **kw):
        self.control = False
        self.version = None
        self.type = None
        self.flags = 0
        self.stream_id = 0
        self.data = b""
        self.header_block = b""
        self.__dict__.update(kw)

    @property
    def name(self):
        if not self.control:
            return "DATA"
        return FRAME_NAMES.get(self.type, f"type-{self.type}")

    def __repr__(self):
        return f"<SpdyFrame {self.name} stream={self.stream_id} flags={self.flags:#x}>"


_MIN_LENGTH = {SYN_STREAM: 10, SYN_REPLY: 4, RST_STREAM: 8, SETTINGS: 4, PING: 4, GOAWAY: 8,
               HEADERS: 4, WINDOW_UPDATE: 8}


def _decode_frame(word, flags, payload):
    if not word & 0x80000000:
        return SpdyFrame(stream_id=word & MAX_WINDOW, flags=flags, data=payload)
    f = SpdyFrame(control=True, version=(word >> 16) & 0x7FFF, type=word & 0xFFFF,
                  flags=flags, data=payload)
    if len(payload) < _MIN_LENGTH.get(f.type, 0):
        raise ProtocolError(f"{f.name} frame too short ({len(payload)} bytes)")
    if f.type == SYN_STREAM:
        sid, assoc, pri, slot = struct.unpack_from(">IIBB", payload)
        f.stream_id, f.assoc_id = sid & MAX_WINDOW, assoc & MAX_WINDOW
        f.priority, f.slot, f.header_block = pri >> 5, slot, payload[10:]
    elif f.type in (SYN_REPLY, HEADERS):
        f.stream_id = struct.unpack_from(">I", payload)[0] & MAX_WINDOW
        f.header_block = payload[4:]
    elif f.type == RST_STREAM:
        sid, f.status = struct.unpack_from(">II", payload)
        f.stream_id = sid & MAX_WINDOW
    elif f.type == SETTINGS:
        count = struct.unpack_from(">I", payload)[0]
        if len(payload) != 4 + 8 * count:
            raise ProtocolError(f"SETTINGS with {count} entries is {len(payload)} bytes long")
        f.settings = []
        for i in range(count):
            head, value = struct.unpack_from(">II", payload, 4 + 8 * i)
            f.settings.append((head & 0xFFFFFF, value, head >> 24))
    elif f.type == PING:
        f.ping_id = struct.unpack_from(">I", payload)[0]
    elif f.type == GOAWAY:
        last, f.status = struct.unpack_from(">II", payload)
        f.last_good = last & MAX_WINDOW
    elif f.type == WINDOW_UPDATE:
        sid, delta = struct.unpack_from(">II", payload)
        f.stream_id, f.delta = sid & MAX_WINDOW, delta & MAX_WINDOW
    return f


def parse_frame(data):
    """(SpdyFrame, bytes used) from the start of DATA, or (None, 0) if DATA
    holds less than a whole frame.  Header blocks are left compressed."""
    if len(data) < 8:
        return None, 0
    word, second = struct.unpack_from(">II", data)
    length = second & 0xFFFFFF
    if len(data) < 8 + length:
        return None, 0
    return _decode_frame(word, second >> 24, bytes(data[8:8 + length])), 8 + length


# --------------------------------------------------------------------------
# SPDY/3.1 session

class SpdyStream:
    """A client-initiated stream.  Data arrives in a buffer that read() takes
    from; EOF (b"") comes with the server's FIN, its RST_STREAM or the end of
    the connection, after whatever data came before."""

    def __init__(self, conn, stream_id, headers):
        self.conn = conn
        self.id = stream_id
        self.headers = headers           # [(name, value)] as sent
        self.replied = False
        self.reply_headers = None        # {name: value} of the SYN_REPLY
        self.extra_headers = []          # of HEADERS frames
        self.reset_status = None         # RST_STREAM status from the server
        self.reset_sent = None           # RST_STREAM status we sent
        self.fin_received = False
        self.remote_closed = False       # no more data will come
        self.local_closed = False        # we sent FIN (or RST)
        self.received = 0                # bytes of DATA received
        self.sent = 0                    # bytes of DATA sent
        self.send_window = conn._initial_send_window
        self.recv_window = DEFAULT_WINDOW
        self._buf = bytearray()
        self._unacked = 0

    @property
    def was_reset(self):
        return self.reset_status is not None

    @property
    def status(self):
        """The RST_STREAM status the server sent, or None."""
        return self.reset_status

    def __repr__(self):
        return (f"<SpdyStream {self.id} {dict(self.headers)} replied={self.replied} "
                f"fin={self.fin_received} reset={self.reset_status}>")

    def wait_reply(self, timeout=None):
        """The SYN_REPLY's headers; StreamResetError if the server reset the
        stream instead, ConnectionError if the connection ended first."""
        c = self.conn
        c._wait(lambda: self.replied or self.reset_status is not None or c.closed,
                timeout, f"SYN_REPLY of stream {self.id}")
        if self.replied:
            return self.reply_headers
        if self.reset_status is not None:
            raise StreamResetError(self.id, self.reset_status)
        raise ConnectionError(f"connection closed before SYN_REPLY of stream {self.id}")

    def write(self, data, timeout=None):
        """Sends DATA frames within the server's stream and session windows,
        waiting for its WINDOW_UPDATEs (TimeoutError after TIMEOUT seconds)."""
        self.conn._send_data(self, data, False, timeout)

    def close_write(self, timeout=None):
        """Half-closes the stream: an empty DATA frame with FIN."""
        self.conn._send_data(self, b"", True, timeout)

    def read(self, n=None, timeout=None):
        """Up to N bytes (all buffered ones if None), waiting for at least one;
        b"" at EOF; TimeoutError if nothing came within TIMEOUT seconds."""
        c = self.conn
        c._wait(lambda: self._buf or self.remote_closed, timeout,
                f"data on stream {self.id}")
        with c._cond:
            take = len(self._buf) if n is None else min(n, len(self._buf))
            out = bytes(self._buf[:take])
            del self._buf[:take]
            if take and c.window_update == "read":
                c._consumed(self, take)
            return out

    def read_all(self, timeout=None):
        """Everything up to EOF, within TIMEOUT seconds in all."""
        timeout = self.conn.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        out = bytearray()
        while True:
            try:
                chunk = self.read(timeout=max(0, deadline - time.monotonic()))
            except TimeoutError:
                raise TimeoutError(f"stream {self.id}: no EOF within {timeout}s "
                                   f"({len(out)} bytes read)") from None
            if not chunk:
                return bytes(out)
            out += chunk

    def reset(self, status=CANCEL):
        """Sends RST_STREAM; buffered data is dropped."""
        c = self.conn
        with c._cond:
            self.reset_sent = status
            self.local_closed = self.remote_closed = True
            dropped = len(self._buf)
            self._buf.clear()
            if dropped:
                c._consumed(None, dropped)
            c._cond.notify_all()
        c._send(rst_stream_frame(self.id, status))


class SpdyConnection(_Session):
    """A SPDY/3.1 session over an upgraded HTTP/1.1 (or TLS) connection.

    protocols are offered in X-Stream-Protocol-Version headers, in order;
    .protocol is the server's choice.  window_update says when the server gets
    its window back: "read" as data is read from a stream, "receive" as soon
    as it arrives (reads then never hold the server back), None never.
    "ignored" behaves as the SPDY library of Kubernetes' clients does: no
    flow control at all (no WINDOW_UPDATE sent, the server's windows not
    waited for, and data past ours taken without complaint).
    """

    def __init__(self, url, protocols=(), ssl_context=None, timeout=10, headers=(),
                 window_update="read"):
        if window_update not in ("read", "receive", None, "ignored"):
            raise ValueError(f"bad window_update: {window_update!r}")
        protocols = [protocols] if isinstance(protocols, str) else list(protocols)
        req = [("Connection", "Upgrade"), ("Upgrade", "SPDY/3.1")]
        req += [("X-Stream-Protocol-Version", p) for p in protocols] + _pairs(headers)
        status, reason, rh, buf = _upgrade(url, req, ssl_context, timeout)
        if status != 101:
            _refuse(status, reason, rh, buf, timeout)
        chosen = rh.get_all("X-Stream-Protocol-Version") or []
        problem = None
        if "upgrade" not in (rh.get("Connection") or "").lower():
            problem = f"101 without Connection: Upgrade ({rh.get('Connection')!r})"
        elif "spdy/3.1" not in (rh.get("Upgrade") or "").lower():
            problem = f"101 without Upgrade: SPDY/3.1 ({rh.get('Upgrade')!r})"
        elif len(chosen) > 1:
            problem = f"several X-Stream-Protocol-Version headers: {chosen}"
        elif protocols and chosen and chosen[0] not in protocols:
            problem = f"server chose {chosen[0]!r}, not one of {protocols}"
        if problem:
            buf.sock.close()
            raise ProtocolError(problem)
        self.url = url
        self.response_headers = rh
        self.protocol = chosen[0] if chosen else ""
        self.window_update = window_update
        self.streams = {}
        self.server_streams = []        # (id, headers) of SYN_STREAMs from the server
        self.server_settings = {}
        self.goaway_received = None     # (last_good, status)
        self.goaway_sent = False
        self.server_pings = 0           # PINGs from the server we answered
        self.frames_received = 0
        self._next_stream_id = 1
        self._next_ping_id = 1
        self._pings = {}
        self._last_server_stream = 0
        self._initial_send_window = DEFAULT_WINDOW
        self._send_window = DEFAULT_WINDOW
        self._recv_window = DEFAULT_WINDOW
        self._session_unacked = 0
        self._wlock = threading.Lock()   # header compression order == wire order
        self._compressor = HeaderCompressor()
        self._decompressor = HeaderDecompressor()
        self._start(buf, timeout, "spdy-reader")

    # -- sending

    @property
    def send_window(self):
        """What the server's session window lets us send now."""
        return self._send_window

    def open_stream(self, headers, wait_reply=True, fin=False, timeout=None, priority=0):
        """Opens the next odd stream with HEADERS (names lowercased) and, with
        WAIT_REPLY, waits for the SYN_REPLY as kubectl does."""
        st = self.send_syn_stream(None, headers, FLAG_FIN if fin else 0, priority=priority)
        if wait_reply:
            st.wait_reply(timeout)
        return st

    def send_syn_stream(self, stream_id, headers, flags=0, priority=0, assoc_id=0,
                        lowercase=True):
        """Sends a SYN_STREAM (the next id if STREAM_ID is None) without waiting."""
        pairs = [(n.lower() if lowercase else n, v) for n, v in _pairs(headers)]
        with self._wlock:
            with self._cond:
                if stream_id is None:
                    stream_id = self._next_stream_id
                self._next_stream_id = max(self._next_stream_id, stream_id + 2)
                st = SpdyStream(self, stream_id, pairs)
                st.local_closed = bool(flags & (FLAG_FIN | FLAG_UNIDIRECTIONAL))
                self.streams[stream_id] = st
            block = self._compressor.compress(pairs)
            self._send(syn_stream_frame(stream_id, block, flags, assoc_id, priority))
        return st

    def send_headers(self, stream, headers, fin=False):
        """Sends a HEADERS frame on STREAM."""
        with self._wlock:
            block = self._compressor.compress([(n.lower(), v) for n, v in _pairs(headers)])
            self._send(headers_frame(stream.id, block, FLAG_FIN if fin else 0))
        if fin:
            stream.local_closed = True

    def _send_data(self, st, data, fin, timeout):
        if timeout is None:
            timeout = self.timeout
        deadline = time.monotonic() + timeout
        view = memoryview(bytes(data))
        if not view and not fin:
            return
        off = 0
        while True:
            with self._cond:
                if st.local_closed:
                    raise ValueError(f"stream {st.id} is closed for writing")
                while True:
                    if st.reset_status is not None:
                        raise StreamResetError(st.id, st.reset_status)
                    if self.closed:
                        raise ConnectionError(f"connection closed ({self.close_error})")
                    avail = min(st.send_window, self._send_window)
                    if self.window_update == "ignored":
                        avail = MAX_DATA_CHUNK
                    if avail > 0 or off == len(view):
                        break
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise TimeoutError(
                            f"stream {st.id}: no send window for {timeout}s "
                            f"(stream {st.send_window}, session {self._send_window}, "
                            f"{off} of {len(view)} bytes sent)")
                    self._cond.wait(remaining)
                n = max(0, min(avail, len(view) - off, MAX_DATA_CHUNK))
                st.send_window -= n
                self._send_window -= n
                last = off + n == len(view)
                if fin and last:
                    st.local_closed = True
            self._send(data_frame(st.id, view[off:off + n], FLAG_FIN if fin and last else 0),
                       max(0.001, deadline - time.monotonic()))
            off += n
            st.sent += n
            if last:
                return

    def ping(self, timeout=None):
        """Round trip of one PING, in seconds."""
        with self._cond:
            pid = self._next_ping_id
            self._next_ping_id += 2
            self._pings[pid] = None
        start = time.monotonic()
        self._send(ping_frame(pid))
        self._wait(lambda: self._pings[pid] is not None or self.closed, timeout,
                   f"the answer to PING {pid}")
        with self._cond:
            answered = self._pings.pop(pid)
        if answered is None:
            raise ConnectionError(f"connection closed before the answer to PING {pid}")
        return answered - start

    def goaway(self, status=GOAWAY_OK):
        """Sends GOAWAY (last good stream: the last one the server opened)."""
        self.goaway_sent = True
        self._send(goaway_frame(self._last_server_stream, status))

    def close(self, goaway=True):
        """Sends GOAWAY (unless already sent) and closes the connection."""
        if goaway and not self.goaway_sent and not self.closed:
            try:
                self.goaway()
            except (ConnectionError, TimeoutError):
                pass
        self._teardown()

    # -- receiving (reader thread)

    def _consumed(self, st, n):
        """N bytes of ST (None: of no stream) are gone: give the window back
        once half of it is used up, or the stream's buffer is empty."""
        if self.window_update in (None, "ignored"):
            return
        half = DEFAULT_WINDOW // 2
        drained = st is not None and not st._buf
        if st is not None:
            st._unacked += n
            if not st.remote_closed and (st._unacked >= half or (drained and st._unacked)):
                self._send_quiet(window_update_frame(st.id, st._unacked))
                st.recv_window += st._unacked
                st._unacked = 0
        self._session_unacked += n
        if self._session_unacked >= half or (drained and self._session_unacked) or st is None:
            self._send_quiet(window_update_frame(0, self._session_unacked))
            self._recv_window += self._session_unacked
            self._session_unacked = 0

    def _read_loop(self):
        while True:
            word, second = struct.unpack(">II", self._in.read_exact(8))
            length = second & 0xFFFFFF
            payload = self._in.read_exact(length) if length else b""
            self.frames_received += 1
            try:
                f = _decode_frame(word, second >> 24, payload)
            except ProtocolError as e:
                self._error(str(e))
                continue
            if not f.control:
                self._on_data(f)
                continue
            if f.version != SPDY_VERSION:
                self._error(f"{f.name} frame with version {f.version}")
                continue
            handler = {SYN_STREAM: self._on_syn_stream, SYN_REPLY: self._on_syn_reply,
                       HEADERS: self._on_headers, RST_STREAM: self._on_rst,
                       SETTINGS: self._on_settings, PING: self._on_ping,
                       GOAWAY: self._on_goaway, WINDOW_UPDATE: self._on_window_update
                       }.get(f.type)
            if handler:
                handler(f)

    def _headers_of(self, f):
        """The decompressed headers of F as a dict (zlib.error ends the session:
        the compression context is lost)."""
        try:
            pairs = self._decompressor.decompress(f.header_block)
        except ProtocolError as e:
            self._error(f"{f.name} of stream {f.stream_id}: {e}")
            return {}
        headers = {}
        for name, value in pairs:
            if name != name.lower():
                self._error(f"{f.name} of stream {f.stream_id}: header {name!r} not lowercase")
            if name in headers:
                self._error(f"{f.name} of stream {f.stream_id}: header {name!r} twice")
            headers[name] = value
        return headers

    def _stream_of(self, f):
        st = self.streams.get(f.stream_id)
        if st is None and (f.stream_id % 2 == 0 or f.stream_id >= self._next_stream_id):
            self.errors.append(f"{f.name} for stream {f.stream_id}, never opened")
        return st

    def _on_syn_stream(self, f):
        headers = self._headers_of(f)
        with self._cond:
            self.server_streams.append((f.stream_id, headers))
            if f.stream_id % 2 or f.stream_id <= self._last_server_stream:
                self.errors.append(f"server opened stream {f.stream_id}")
            self._last_server_stream = max(self._last_server_stream, f.stream_id)
        # kubectl's protocols have no server-initiated streams.
        self._send_quiet(rst_stream_frame(f.stream_id, REFUSED_STREAM))

    def _on_syn_reply(self, f):
        headers = self._headers_of(f)
        with self._cond:
            st = self._stream_of(f)
            if st is None:
                return
            if st.replied:
                self.errors.append(f"second SYN_REPLY for stream {f.stream_id}")
                return
            st.replied, st.reply_headers = True, headers
            if f.flags & FLAG_FIN:
                st.fin_received = st.remote_closed = True
            self._cond.notify_all()

    def _on_headers(self, f):
        headers = self._headers_of(f)
        with self._cond:
            st = self._stream_of(f)
            if st is None:
                return
            st.extra_headers.append(headers)
            if f.flags & FLAG_FIN:
                st.fin_received = st.remote_closed = True
            self._cond.notify_all()

    def _on_rst(self, f):
        with self._cond:
            st = self._stream_of(f)
            if st is None:
                return
            st.reset_status = f.status
            st.remote_closed = True
            self._cond.notify_all()

    def _on_settings(self, f):
        with self._cond:
            for sid, value, _ in f.settings:
                self.server_settings[sid] = value
                if sid != SETTINGS_INITIAL_WINDOW_SIZE:
                    continue
                if value > MAX_WINDOW:
                    self.errors.append(f"SETTINGS INITIAL_WINDOW_SIZE {value}")
                    continue
                delta = value - self._initial_send_window
                self._initial_send_window = value
                for st in self.streams.values():
                    st.send_window += delta
            self._cond.notify_all()

    def _on_ping(self, f):
        if f.ping_id % 2 == 0:
            with self._cond:
                self.server_pings += 1
            self._send_quiet(ping_frame(f.ping_id))
            return
        with self._cond:
            if self._pings.get(f.ping_id, 0) is not None:
                self.errors.append(f"answer to PING {f.ping_id}, never sent")
                return
            self._pings[f.ping_id] = time.monotonic()
            self._cond.notify_all()

    def _on_goaway(self, f):
        with self._cond:
            self.goaway_received = (f.last_good, f.status)
            self._cond.notify_all()

    def _on_window_update(self, f):
        with self._cond:
            if f.delta == 0:
                self.errors.append(f"WINDOW_UPDATE of 0 for stream {f.stream_id}")
            if f.stream_id == 0:
                self._send_window += f.delta
                if self._send_window > MAX_WINDOW:
                    self.errors.append(f"session send window overflow: {self._send_window}")
            else:
                st = self.streams.get(f.stream_id)
                if st is None:
                    return
                st.send_window += f.delta
                if st.send_window > MAX_WINDOW:
                    self.errors.append(f"stream {st.id} send window overflow")
            self._cond.notify_all()

    def _on_data(self, f):
        n = len(f.data)
        with self._cond:
            self._recv_window -= n
            if self._recv_window < 0 and self.window_update != "ignored":
                self.errors.append(f"server overran the session window by {-self._recv_window}")
            st = self._stream_of(f)
            if st is None or st.reset_sent is not None:
                self._consumed(None, n)    # never read: give the session window back
                return
            if st.fin_received:
                self.errors.append(f"DATA on stream {st.id} after FIN")
            elif st.reset_status is not None:
                self.errors.append(f"DATA on stream {st.id} after RST_STREAM")
            if not st.replied:
                self.errors.append(f"DATA on stream {st.id} before SYN_REPLY")
            st.recv_window -= n
            if st.recv_window < 0 and self.window_update != "ignored":
                self.errors.append(f"server overran stream {st.id}'s window by "
                                   f"{-st.recv_window}")
            st._buf += f.data
            st.received += n
            if f.flags & FLAG_FIN:
                st.fin_received = st.remote_closed = True
            if n and self.window_update == "receive":
                self._consumed(st, n)
            self._cond.notify_all()

    def _on_closed(self):
        for st in self.streams.values():
            st.remote_closed = True


# --------------------------------------------------------------------------
# remotecommand (exec, attach)

def protocol_version(protocol):
    """4 for v4.channel.k8s.io or v4.base64.channel.k8s.io, 1 for channel.k8s.io
    (and for no protocol at all)."""
    m = re.match(r"v(\d+)\.", protocol or "")
    return int(m.group(1)) if m else 1


@dataclasses.dataclass
class ExecResult:
    stdout: bytes
    stderr: bytes
    error: object        # v4+: the Status (dict); before: the error text
    exit_code: object    # 0 on success, the ExitCode cause, None if unknown
    protocol: str
    errors: list = dataclasses.field(default_factory=list)  # the server's protocol faults

    @property
    def ok(self):
        return self.exit_code == 0


def exit_code_of(status):
    """The exit code a v4 metav1 Status reports: 0 for Success, the ExitCode
    cause of a NonZeroExitCode Failure, else None."""
    if not isinstance(status, dict):
        return None
    if status.get("status") == "Success":
        return 0
    if status.get("reason") != "NonZeroExitCode":
        return None
    for cause in (status.get("details") or {}).get("causes") or []:
        if isinstance(cause, dict) and cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message"))
            except (TypeError, ValueError):
                return None
    return None


def parse_error_stream(data, protocol):
    """(error, exit_code) of what the error stream carried: for v4 and later a
    JSON Status, before it plain text (empty: success)."""
    text = data.decode("utf-8", "replace")
    if protocol_version(protocol) >= 4:
        if not text.strip():
            return "", None
        try:
            status = json.loads(text)
        except ValueError:
            return text, None
        return status, exit_code_of(status)
    if not text:
        return "", 0
    m = re.search(r"exit code:? *(\d+)", text)
    return text, int(m.group(1)) if m else None


def _resize_message(width, height):
    # What kubectl's json.Encoder writes: one object and a newline.
    return json.dumps({"Width": width, "Height": height}, separators=(",", ":")).encode() + b"\n"


def _matches(expected, data):
    if callable(expected):
        return expected(data)
    return _b(expected) in data


class _RemoteCommand:
    """read_until() and the output buffers both transports share."""

    def _init_output(self):
        self.output = {STDOUT: bytearray(), STDERR: bytearray(), ERROR: bytearray()}
        self._marks = {STDOUT: 0, STDERR: 0}
        self.result = None

    def read_until(self, expected, timeout=None, channel=STDOUT):
        """Reads CHANNEL's output until EXPECTED (bytes or str, contained, or a
        predicate on the bytes) matches what came since the last read_until;
        returns those bytes.  EOFError if the output ended first."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            pending = bytes(self.output[channel][self._marks[channel]:])
            if _matches(expected, pending):
                self._marks[channel] = len(self.output[channel])
                return pending
            if self._ended(channel):
                raise EOFError(f"output ended without {expected!r}; got {pending[-2000:]!r}")
            try:
                self._pump(channel, max(0, deadline - time.monotonic()))
            except TimeoutError:
                raise TimeoutError(f"no {expected!r} within {timeout}s; "
                                   f"got {pending[-2000:]!r}") from None

    def _finish(self):
        """The session is over: its ExecResult, once the connection is closed."""
        error, code = parse_error_stream(bytes(self.output[ERROR]), self.protocol)
        self.result = ExecResult(bytes(self.output[STDOUT]), bytes(self.output[STDERR]),
                                 error, code, self.protocol, list(self.conn.errors))
        self.close()
        return self.result

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RemoteCommandSpdy(_RemoteCommand):
    """An exec or attach session over SPDY.  Creates the streams as kubectl
    does, each after the server replied to the one before: error, then stdin,
    stdout, stderr (not with a tty) and resize (tty, protocol v3 and later).
    PROTOCOL: one protocol or a list to offer."""

    def __init__(self, url, stdin=True, stdout=True, stderr=True, tty=False, protocol=V4,
                 ssl_context=None, timeout=10, window_update="receive"):
        protocols = [protocol] if isinstance(protocol, str) else list(protocol)
        self.timeout = timeout
        self.conn = SpdyConnection(url, protocols, ssl_context, timeout,
                                   window_update=window_update)
        self.protocol = self.conn.protocol
        self.version = protocol_version(self.protocol)
        self.tty = tty
        self._init_output()
        self.stdin_stream = self.stdout_stream = self.stderr_stream = None
        self.resize_stream = None
        try:
            self.error_stream = self.conn.open_stream({"streamtype": "error"})
            if stdin:
                self.stdin_stream = self.conn.open_stream({"streamtype": "stdin"})
            if stdout:
                self.stdout_stream = self.conn.open_stream({"streamtype": "stdout"})
            if stderr and not tty:
                self.stderr_stream = self.conn.open_stream({"streamtype": "stderr"})
            if tty and self.version >= 3:
                self.resize_stream = self.conn.open_stream({"streamtype": "resize"})
        except BaseException:
            self.conn.close()
            raise
        self._streams = {STDOUT: self.stdout_stream, STDERR: self.stderr_stream,
                         ERROR: self.error_stream}

    def send(self, data, timeout=None):
        """Writes DATA to stdin."""
        self.stdin_stream.write(_b(data), timeout)

    def close_stdin(self):
        """Half-closes stdin (FIN)."""
        self.stdin_stream.close_write()

    def resize(self, width, height):
        if self.resize_stream is None:
            raise ValueError(f"no resize stream (tty={self.tty}, protocol {self.protocol!r})")
        self.resize_stream.write(_resize_message(width, height))

    def _ended(self, channel):
        st = self._streams[channel]
        return st is None or (st.remote_closed and not st._buf)

    def _pump(self, channel, timeout):
        st = self._streams[channel]
        if st is not None:
            self.output[channel] += st.read(timeout=timeout)

    def wait(self, timeout=None):
        """Reads stdout, stderr and the error stream to EOF, closes the
        connection and returns the ExecResult."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        live = [ch for ch, st in self._streams.items() if st is not None]

        def ready():
            return any(self._streams[ch]._buf or self._streams[ch].remote_closed
                       for ch in live)

        while live:
            try:
                self.conn._wait(ready, max(0, deadline - time.monotonic()),
                                "the command's end")
            except TimeoutError:
                ends = {ch: self._streams[ch] for ch in live}
                raise TimeoutError(f"session not over after {timeout}s; waiting for {ends}; "
                                   f"stdout so far {bytes(self.output[STDOUT][-500:])!r}"
                                   ) from None
            for ch in list(live):
                st = self._streams[ch]
                if st._buf or st.remote_closed:
                    chunk = st.read(timeout=0)
                    self.output[ch] += chunk
                    if not chunk:
                        live.remove(ch)
        return self._finish()


def exec_spdy(url, stdin=None, tty=False, stdout=True, stderr=True, protocol=V4, resize=None,
              timeout=30, ssl_context=None, window_update="receive"):
    """Runs one exec (or attach) session over SPDY: sends the STDIN bytes (if
    not None) then closes stdin, and returns the ExecResult.  RESIZE: (w, h)."""
    with RemoteCommandSpdy(url, stdin=stdin is not None, stdout=stdout, stderr=stderr,
                           tty=tty, protocol=protocol, ssl_context=ssl_context,
                           timeout=min(timeout, 10), window_update=window_update) as rc:
        if resize:
            rc.resize(*resize)
        if stdin is not None:
            if stdin:
                rc.send(stdin, timeout)
            rc.close_stdin()
        return rc.wait(timeout)


attach_spdy = exec_spdy


# --------------------------------------------------------------------------
# WebSocket (RFC 6455)

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
MAX_WS_MESSAGE = 64 << 20


def ws_accept_key(key):
    """The Sec-WebSocket-Accept answering Sec-WebSocket-Key KEY."""
    digest = hashlib.sha1((key + WS_GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def ws_mask(data, key):
    """DATA XORed with the 4-byte masking KEY (masking and unmasking alike)."""
    n = len(data)
    if not n:
        return b""
    keys = (bytes(key) * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(keys, "big")).to_bytes(n, "big")


def ws_frame(opcode, payload=b"", fin=True, mask=True, rsv=0, mask_key=None):
    """One frame; client frames are masked (with MASK_KEY, else a random key)."""
    payload = bytes(payload)
    n = len(payload)
    head = bytearray([(0x80 if fin else 0) | (rsv & 7) << 4 | opcode & 0xF])
    bit = 0x80 if mask else 0
    if n < 126:
        head.append(bit | n)
    elif n < 1 << 16:
        head += bytes([bit | 126]) + struct.pack(">H", n)
    else:
        head += bytes([bit | 127]) + struct.pack(">Q", n)
    if not mask:
        return bytes(head) + payload
    key = mask_key or os.urandom(4)
    return bytes(head) + key + ws_mask(payload, key)


def parse_ws_frame(data):
    """(fin, rsv, opcode, mask_key, payload unmasked, bytes used) of the frame
    at the start of DATA, or None if DATA holds less than a frame."""
    if len(data) < 2:
        return None
    b0, b1 = data[0], data[1]
    n, off = b1 & 0x7F, 2
    if n == 126:
        if len(data) < 4:
            return None
        n, off = struct.unpack_from(">H", data, 2)[0], 4
    elif n == 127:
        if len(data) < 10:
            return None
        n, off = struct.unpack_from(">Q", data, 2)[0], 10
    key = None
    if b1 & 0x80:
        if len(data) < off + 4:
            return None
        key, off = bytes(data[off:off + 4]), off + 4
    if len(data) < off + n:
        return None
    payload = bytes(data[off:off + n])
    return (bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, key,
            ws_mask(payload, key) if key else payload, off + n)


def encode_channel_message(channel, data, base64_codec=False):
    """(opcode, payload) of DATA on CHANNEL: binary with the channel byte first,
    or text with the channel digit then base64."""
    if base64_codec:
        return OP_TEXT, str(channel).encode() + base64.b64encode(_b(data))
    return OP_BINARY, bytes([channel]) + _b(data)


def decode_channel_message(payload, base64_codec=False):
    """(channel, data) of a message payload; ValueError if it is malformed."""
    if not payload:
        raise ValueError("empty message")
    if base64_codec:
        channel = payload[0] - ord("0")
        if not 0 <= channel <= 9:
            raise ValueError(f"bad channel character {payload[:1]!r}")
        return channel, base64.b64decode(payload[1:], validate=True)
    return payload[0], bytes(payload[1:])


class WebSocketConnection(_Session):
    """A client WebSocket with the channel.k8s.io framing.  Pings get pongs,
    a close frame gets a close frame back; .close_code and .close_reason are
    the server's."""

    def __init__(self, url, protocols=(), ssl_context=None, timeout=10, headers=()):
        protocols = [protocols] if isinstance(protocols, str) else list(protocols)
        key = base64.b64encode(os.urandom(16)).decode("ascii")
        req = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
               ("Sec-WebSocket-Key", key), ("Sec-WebSocket-Version", "13")]
        if protocols:
            req.append(("Sec-WebSocket-Protocol", ", ".join(protocols)))
        status, reason, rh, buf = _upgrade(url, req + _pairs(headers), ssl_context, timeout)
        if status != 101:
            _refuse(status, reason, rh, buf, timeout)
        chosen = rh.get("Sec-WebSocket-Protocol")
        problem = None
        if (rh.get("Upgrade") or "").lower() != "websocket":
            problem = f"101 without Upgrade: websocket ({rh.get('Upgrade')!r})"
        elif "upgrade" not in [t.strip() for t in (rh.get("Connection") or "").lower().split(",")]:
            problem = f"101 without Connection: Upgrade ({rh.get('Connection')!r})"
        elif rh.get("Sec-WebSocket-Accept") != ws_accept_key(key):
            problem = f"bad Sec-WebSocket-Accept {rh.get('Sec-WebSocket-Accept')!r}"
        elif protocols and chosen not in protocols:
            problem = f"server chose subprotocol {chosen!r}, not one of {protocols}"
        elif not protocols and chosen:
            problem = f"server chose subprotocol {chosen!r}, none was offered"
        if problem:
            buf.sock.close()
            raise ProtocolError(problem)
        self.url = url
        self.response_headers = rh
        self.protocol = chosen or ""
        self.base64 = "base64" in self.protocol
        self.close_received = False
        self.close_sent = False
        self.close_code = None
        self.close_reason = ""
        self.pings_received = 0
        self._pongs = []
        self._messages = collections.deque()
        self._start(buf, timeout, "ws-reader")

    def send_frame(self, opcode, payload=b"", fin=True, mask=True, rsv=0):
        """Sends one raw frame."""
        self._send(ws_frame(opcode, payload, fin, mask, rsv))

    def send(self, channel, data):
        """Sends DATA on CHANNEL in the negotiated encoding."""
        self.send_frame(*encode_channel_message(channel, data, self.base64))

    def recv_message(self, timeout=None):
        """(opcode, payload) of the next text or binary message; None once the
        connection is closed."""
        self._wait(lambda: self._messages or self.closed or self.close_received, timeout,
                   "a websocket message")
        with self._cond:
            return self._messages.popleft() if self._messages else None

    def recv(self, timeout=None, skip_empty=True):
        """(channel, data) of the next message, skipping empty ones (the ready
        signal) if SKIP_EMPTY; None once the connection is closed."""
        if timeout is None:
            timeout = self.timeout
        deadline = time.monotonic() + timeout
        while True:
            m = self.recv_message(max(0, deadline - time.monotonic()))
            if m is None:
                return None
            try:
                channel, data = decode_channel_message(m[1], self.base64)
            except ValueError as e:
                self._error(f"bad channel message {m[1][:50]!r}: {e}")
                continue
            if data or not skip_empty:
                return channel, data

    def ping(self, payload=b"", timeout=None):
        """Round trip of a ping, in seconds."""
        payload = payload or os.urandom(8)
        start = time.monotonic()
        self.send_frame(OP_PING, payload)
        self._wait(lambda: payload in self._pongs or self.closed, timeout, "a pong")
        with self._cond:
            if payload not in self._pongs:
                raise ConnectionError("connection closed before the pong")
            self._pongs.remove(payload)
        return time.monotonic() - start

    def close(self, code=1000, reason="", timeout=2):
        """Sends a close frame (unless one was sent), waits up to TIMEOUT
        seconds for the server to close the connection, then closes it."""
        with self._cond:
            send, self.close_sent = not self.close_sent, True
        if send and not self.closed:
            try:
                self._send(ws_frame(OP_CLOSE, struct.pack(">H", code) + _b(reason)))
            except (ConnectionError, TimeoutError):
                pass
        self.wait_closed(timeout)
        self._teardown()

    def _read_loop(self):
        frag_op, frag = None, bytearray()
        while True:
            b0, b1 = self._in.read_exact(2)
            fin, rsv, op = bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack(">H", self._in.read_exact(2))[0]
            elif n == 127:
                n = struct.unpack(">Q", self._in.read_exact(8))[0]
            if n > MAX_WS_MESSAGE:
                raise ProtocolError(f"frame of {n} bytes")
            key = self._in.read_exact(4) if b1 & 0x80 else None
            payload = self._in.read_exact(n) if n else b""
            if key is not None:
                self._error("server sent a masked frame")
                payload = ws_mask(payload, key)
            if rsv:
                self._error(f"frame with RSV bits {rsv:#x}")
            if op >= 8:
                if not fin or n > 125:
                    self._error(f"bad control frame (opcode {op}, fin {fin}, {n} bytes)")
                self._on_control(op, payload)
            elif op == OP_CONTINUATION:
                if frag_op is None:
                    self._error("continuation frame outside a message")
                    continue
                frag += payload
                if len(frag) > MAX_WS_MESSAGE:
                    raise ProtocolError(f"message over {MAX_WS_MESSAGE} bytes")
                if fin:
                    self._deliver(frag_op, bytes(frag))
                    frag_op, frag = None, bytearray()
            elif op in (OP_TEXT, OP_BINARY):
                if frag_op is not None:
                    self._error("new message inside a fragmented one")
                if fin:
                    self._deliver(op, payload)
                else:
                    frag_op, frag = op, bytearray(payload)
            else:
                self._error(f"reserved opcode {op}")

    def _deliver(self, op, payload):
        if op == OP_TEXT:
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError:
                self._error("text message not UTF-8")
        with self._cond:
            if self.close_received:
                self.errors.append("message after the close frame")
            self._messages.append((op, payload))
            self._cond.notify_all()

    def _on_control(self, op, payload):
        if op == OP_PING:
            with self._cond:
                self.pings_received += 1
            self._send_quiet(ws_frame(OP_PONG, payload))
        elif op == OP_PONG:
            with self._cond:
                self._pongs.append(payload)
                self._cond.notify_all()
        elif op == OP_CLOSE:
            if len(payload) == 1:
                self._error("close frame with a 1-byte payload")
            with self._cond:
                self.close_received = True
                if len(payload) >= 2:
                    self.close_code = struct.unpack(">H", payload[:2])[0]
                    self.close_reason = payload[2:].decode("utf-8", "replace")
                answer, self.close_sent = not self.close_sent, True
                self._cond.notify_all()
            if answer:
                self._send_quiet(ws_frame(OP_CLOSE, payload[:2]))
        else:
            self._error(f"reserved control opcode {op}")


class RemoteCommandWs(_RemoteCommand):
    """An exec or attach session over WebSocket: channels 0 stdin, 1 stdout,
    2 stderr, 3 error, 4 resize.  .ready_channels lists the channels the
    server's empty ready messages came on."""

    def __init__(self, url, stdin=True, stdout=True, stderr=True, tty=False, protocol=V4,
                 ssl_context=None, timeout=10):
        protocols = [protocol] if isinstance(protocol, str) else list(protocol)
        self.timeout = timeout
        self.tty = tty
        self.conn = WebSocketConnection(url, protocols, ssl_context, timeout)
        self.protocol = self.conn.protocol
        self.version = protocol_version(self.protocol)
        self.ready_channels = []
        self.other = []          # (channel, data) on channels 0 and 4 or above
        self._init_output()

    def send(self, data):
        """Writes DATA to stdin."""
        self.conn.send(STDIN, data)

    def close_stdin(self):
        """Closes stdin with the v5 CLOSE signal; False (nothing sent) for
        protocols before v5, which cannot."""
        if self.version < 5:
            return False
        self.conn.send(STREAM_CLOSE, bytes([STDIN]))
        return True

    def resize(self, width, height):
        self.conn.send(RESIZE, _resize_message(width, height))

    def wait_ready(self, timeout=None):
        """Waits for the server's first (empty) message."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while not self.ready_channels and not self.conn.closed:
            self._pump(None, max(0, deadline - time.monotonic()))
        return bool(self.ready_channels)

    def _ended(self, channel):
        c = self.conn
        return (c.closed or c.close_received) and not c._messages

    def _pump(self, channel, timeout):
        m = self.conn.recv(timeout, skip_empty=False)
        if m is None:
            return
        ch, data = m
        if not data:
            self.ready_channels.append(ch)
        elif ch in self.output:
            self.output[ch] += data
        else:
            self.other.append((ch, data))

    def wait(self, timeout=None):
        """Reads until the server closes the connection, closes it and returns
        the ExecResult."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while not self._ended(STDOUT):
            try:
                self._pump(None, max(0, deadline - time.monotonic()))
            except TimeoutError:
                raise TimeoutError(f"session not over after {timeout}s; stdout so far "
                                   f"{bytes(self.output[STDOUT][-500:])!r}") from None
        return self._finish()


def exec_ws(url, stdin=None, tty=False, protocol=V4, resize=None, timeout=30, stdout=True,
            stderr=True, ssl_context=None):
    """Runs one exec (or attach) session over WebSocket and returns the
    ExecResult.  The STDIN bytes are sent first; stdin can only be closed with
    v5.channel.k8s.io, so with older protocols the command must end by itself."""
    with RemoteCommandWs(url, stdin=stdin is not None, stdout=stdout, stderr=stderr, tty=tty,
                         protocol=protocol, ssl_context=ssl_context,
                         timeout=min(timeout, 10)) as rc:
        if resize:
            rc.resize(*resize)
        if stdin:
            rc.send(stdin)
        if stdin is not None:
            rc.close_stdin()
        return rc.wait(timeout)


attach_ws = exec_ws


# --------------------------------------------------------------------------
# port-forward

class PortForwardSpdy:
    """Port forwarding over SPDY (portforward.k8s.io): one error stream and
    one data stream per forwarded connection, tied by their requestid."""

    def __init__(self, url, ssl_context=None, timeout=10, protocols=(PORTFORWARD_PROTOCOL,),
                 window_update="receive"):
        self.conn = SpdyConnection(url, protocols, ssl_context, timeout,
                                   window_update=window_update)
        self.protocol = self.conn.protocol
        self._next_request = 0

    def connect(self, port, request_id=None, close_error=True):
        """Opens the error then the data stream for one connection to PORT;
        returns (data_stream, error_stream).  Like kubectl, half-closes the
        error stream at once (unless CLOSE_ERROR is false).  Failures come as
        text on the error stream (newer kubelets: JSON with a "message")."""
        if request_id is None:
            request_id = self._next_request
            self._next_request += 1
        common = [("port", str(port)), ("requestid", str(request_id))]
        error = self.conn.open_stream([("streamtype", "error")] + common)
        if close_error:
            error.close_write()
        data = self.conn.open_stream([("streamtype", "data")] + common)
        return data, error

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class PortForwardWs:
    """Port forwarding over WebSocket: the ports are the URL's port query
    parameters (or PORTS, added to it); port i has data channel 2i and error
    channel 2i+1, each starting with the port as 2 little-endian bytes
    (checked and stripped; mismatches go to .errors)."""

    def __init__(self, url, ports=None, ssl_context=None, timeout=10, protocol=V4):
        if ports:
            url += ("&" if "?" in url else "?") + "&".join(f"port={p}" for p in ports)
        self.ports = []
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
        for value in query.get("port", []):
            for p in value.split(","):
                self.ports.append(int(p) if p.strip().isdigit() else p)
        self.timeout = timeout
        self.conn = WebSocketConnection(url, [protocol] if isinstance(protocol, str)
                                        else list(protocol), ssl_context, timeout)
        self.protocol = self.conn.protocol
        self.errors = []
        self._heads = {}           # channel -> bytes of the port prefix so far
        self._data = collections.defaultdict(bytearray)
        self._err = collections.defaultdict(bytearray)

    def _pump(self, timeout):
        m = self.conn.recv(timeout, skip_empty=False)
        if m is None:
            return False
        ch, data = m
        head = self._heads.get(ch, b"")
        if len(head) < 2:
            need = 2 - len(head)
            head, data = head + data[:need], data[need:]
            self._heads[ch] = head
            if len(head) == 2:
                port = struct.unpack("<H", head)[0]
                want = self.ports[ch // 2] if ch // 2 < len(self.ports) else None
                if port != want:
                    self.errors.append(f"channel {ch} starts with port {port}, not {want}")
        if data:
            (self._err if ch % 2 else self._data)[ch // 2] += data
        return True

    def _closed(self):
        c = self.conn
        return (c.closed or c.close_received) and not c._messages

    def send(self, port_index, data):
        self.conn.send(2 * port_index, data)

    def recv_data(self, port_index, timeout=None, n=None):
        """Up to N bytes of port PORT_INDEX's data (waiting for at least one);
        b"" once the connection is closed."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        buf = self._data[port_index]
        while not buf and not self._closed():
            self._pump(max(0, deadline - time.monotonic()))
        take = len(buf) if n is None else min(n, len(buf))
        out = bytes(buf[:take])
        del buf[:take]
        return out

    def recv_all(self, port_index, timeout=None):
        """Port PORT_INDEX's data until the connection closes."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while not self._closed():
            self._pump(max(0, deadline - time.monotonic()))
        return self.recv_data(port_index, 0)

    def error(self, port_index, timeout=0):
        """The error text of port PORT_INDEX so far, after reading for up to
        TIMEOUT seconds or until the connection closes."""
        deadline = time.monotonic() + timeout
        while not self._closed():
            try:
                self._pump(max(0, deadline - time.monotonic()))
            except TimeoutError:
                break
        return self._err[port_index].decode("utf-8", "replace")

    def close(self, code=1000):
        self.conn.close(code)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
