"""A client of crisp's internal channels, written from the framing in
common/ipc.h: tests use it to speak to a backend directly, as criapi (or a
compromised criapi) would."""
import socket
import struct

import internal_pb2

HEADER = struct.Struct("=HHIQ")  # type, flags, total_len, request_id
PACKET = 64 * 1024
FLAG_MORE = 1

MSG_HELLO_SERVER = 1
MSG_HELLO_CLIENT = 2
MSG_ERROR = 3
MSG_HEALTH_REQ = 16
MSG_HEALTH_ANS = 17


class Channel:
    def __init__(self, sock):
        self.sock = sock
        self.next_id = 1

    def send(self, type_, payload=b"", request_id=0, fds=()):
        chunk = PACKET - HEADER.size
        off = 0
        while True:
            part = payload[off:off + chunk]
            more = off + len(part) < len(payload)
            head = HEADER.pack(type_, FLAG_MORE if more else 0, len(payload), request_id)
            anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack(f"{len(fds)}i", *fds))] \
                if fds and off == 0 else []
            try:
                self.sock.sendmsg([head + part], anc)
            except (BrokenPipeError, ConnectionResetError):
                # The daemon already closed the channel: what the tests expect
                # after a violation; recv() then reports the end of stream.
                return False
            off += len(part)
            if not more:
                return True

    def recv(self, timeout=5, fds=None):
        """(type, request_id, payload), or None at end of stream.  fds, a list,
        receives the fds that came with the message."""
        self.sock.settimeout(timeout)
        data = b""
        while True:
            try:
                if fds is None:
                    pkt = self.sock.recv(PACKET)
                else:
                    pkt, got, _, _ = socket.recv_fds(self.sock, PACKET, 8)
                    fds.extend(got)
            except ConnectionResetError:
                # The daemon closed the channel with our message unread.
                return None
            if not pkt:
                return None
            type_, flags, total, rid = HEADER.unpack_from(pkt)
            data += pkt[HEADER.size:]
            if not flags & FLAG_MORE:
                assert len(data) == total
                return type_, rid, data

    def handshake(self, expect_peer):
        type_, _, payload = self.recv()
        assert type_ == MSG_HELLO_SERVER
        hello = internal_pb2.Hello.FromString(payload)
        assert (hello.protocol, hello.version, hello.peer) == ("crisp-internal", 1, expect_peer)
        ours = internal_pb2.Hello(protocol="crisp-internal", version=1, peer="test")
        self.send(MSG_HELLO_CLIENT, ours.SerializeToString())

    def call(self, type_, msg, fds=(), timeout=5, received_fds=None):
        rid = self.next_id
        self.next_id += 1
        self.send(type_, msg.SerializeToString(), rid, fds)
        answer = self.recv(timeout, received_fds)
        assert answer is None or answer[1] == rid
        return answer
