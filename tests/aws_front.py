"""A front for the AWS emulator that misbehaves on cue: it throttles chosen operations in
AWS's wire format, or goes away (its port refuses connections) and comes back.

Everything else is passed through to the emulator (moto's server) unchanged. Loopback only.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "server", "date"}


def operation(handler: BaseHTTPRequestHandler) -> str:
    """The API operation of a request, whichever protocol botocore used: JSON (X-Amz-Target),
    RPC v2 CBOR (the path's last part) or query (Action=)."""
    target = handler.headers.get("X-Amz-Target")
    if target:
        return target.rsplit(".", 1)[-1]
    if "/operation/" in handler.path:
        return handler.path.rsplit("/", 1)[-1]
    return "unknown"


def _cbor_text(s: str) -> bytes:
    data = s.encode()
    assert len(data) < 256
    return (bytes([0x60 + len(data)]) if len(data) < 24 else bytes([0x78, len(data)])) + data


def throttling(handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], bytes]:
    """AWS's ThrottlingException in the protocol the request came in."""
    if handler.headers.get("smithy-protocol") == "rpc-v2-cbor":
        body = (b"\xa2" + _cbor_text("__type") + _cbor_text("ThrottlingException")
                + _cbor_text("message") + _cbor_text("Rate exceeded"))  # fmt: skip
        return 400, {"Content-Type": "application/cbor", "smithy-protocol": "rpc-v2-cbor",
                     "x-amzn-query-error": "Throttling;Sender"}, body  # fmt: skip
    body = b'{"__type": "ThrottlingException", "message": "Rate exceeded"}'
    return 400, {"Content-Type": "application/x-amz-json-1.1",
                 "x-amzn-ErrorType": "ThrottlingException"}, body  # fmt: skip


class AwsFront:
    """`throttle`: operations answered ThrottlingException ("*": all); `gone_at`: an
    operation at which the front goes away (refusing connections) until `back()`."""

    def __init__(self, emulator: str) -> None:
        self.emulator = urlsplit(emulator)
        self.throttle: set[str] = set()
        self.gone_at: str | None = None
        self.calls: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: ThreadingHTTPServer | None = None
        self.back()

    def back(self) -> None:
        """Listen (again) on the same port."""
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                front.handle(self)

            do_GET = do_PUT = do_DELETE = do_POST

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        threading.Thread(target=server.serve_forever, daemon=True).start()

    def go(self) -> None:
        """Stop listening: new connections are refused, as when the emulator died."""
        server, self._server = self._server, None
        if server is not None:
            # From a handler's thread too: shutdown() waits for serve_forever to return.
            threading.Thread(target=_stop, args=(server,)).start()

    def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            _stop(server)

    def handle(self, h: BaseHTTPRequestHandler) -> None:
        body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        op = operation(h)
        self.calls[op] += 1
        if self.gone_at == op or self._server is None:
            self.go()
            h.close_connection = True
            with_reset(h.connection)
            return
        if op in self.throttle or "*" in self.throttle:
            self.throttled[op] += 1
            status, headers, out = throttling(h)
        else:
            status, headers, out = self._forward(h, body)
        h.send_response(status)
        for k, v in headers.items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(out)))
        h.end_headers()
        h.wfile.write(out)

    def _forward(self, h: BaseHTTPRequestHandler, body: bytes
                 ) -> tuple[int, dict[str, str], bytes]:  # fmt: skip
        conn = http.client.HTTPConnection(self.emulator.hostname or "127.0.0.1",
                                          self.emulator.port, timeout=30)  # fmt: skip
        try:
            headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP}
            conn.request(h.command, h.path, body=body, headers=headers)
            r = conn.getresponse()
            return r.status, {k: v for k, v in r.getheaders() if k.lower() not in HOP}, r.read()
        finally:
            conn.close()


def _stop(server: ThreadingHTTPServer) -> None:
    server.shutdown()
    server.server_close()


def with_reset(sock: socket.socket) -> None:
    """Close with a TCP reset (the process on the other end is gone)."""
    import struct

    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
