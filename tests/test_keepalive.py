"""A kept-alive connection the server closes as idle just as a request goes out on it.

A real model server closes keep-alive connections idle for a few seconds; a request sent
as the close happens meets a close before any response byte. A SageMaker client (botocore)
retries that; the load generator does too, once, on a fresh connection, and counts it as a
reconnect, not an endpoint error (recommender.loadgen.users). The fake server here makes
the race certain: on a kept-alive connection, a request that arrives after the connection
sat idle `idle_s` is met by a close, unanswered. Bounded: a few requests at 2 per second,
127.0.0.1 only.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from recommender import runs
from recommender.cli import main

ANSWER = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n"
          b'{"ok":true}')  # fmt: skip


class IdleClosingServer:
    """Answers every request, except one that comes on a kept-alive connection idle for
    `idle_s` or more: that connection is closed instead (counted in `closed`)."""

    def __init__(self, idle_s: float) -> None:
        self.idle_s = idle_s
        self.closed = self.answered = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.stop = threading.Event()
        self.lock = threading.Lock()

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self.handle, args=(conn,), daemon=True).start()

    def handle(self, conn: socket.socket) -> None:
        conn.settimeout(30)
        answered_at: float | None = None
        buf = b""
        with conn:
            while not self.stop.is_set():
                try:
                    data = conn.recv(65536)
                except OSError:
                    return
                if not data:
                    return
                idle = answered_at is not None and time.monotonic() - answered_at >= self.idle_s
                if idle and not buf:
                    with self.lock:
                        self.closed += 1
                    return  # closed with the request unanswered
                buf += data
                while b"\r\n\r\n" in buf:
                    head, rest = buf.split(b"\r\n\r\n", 1)
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        name, _, value = line.partition(b":")
                        if name.strip().lower() == b"content-length":
                            length = int(value)
                    if len(rest) < length:
                        break
                    buf = rest[length:]
                    conn.sendall(ANSWER)
                    answered_at = time.monotonic()
                    with self.lock:
                        self.answered += 1


@pytest.fixture
def idle_closing() -> Iterator[IdleClosingServer]:
    server = IdleClosingServer(idle_s=0.2)
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    yield server
    server.stop.set()
    thread.join(5)
    server.sock.close()


def test_idle_closes_are_sent_again_not_counted_as_errors(
    idle_closing: IdleClosingServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # 2 requests/s from 2 users: each user's connection sits idle about 1 s between its
    # requests, past the server's 0.2 s, so each request on a kept-alive one meets a close.
    code = main([
        "loadtest", "--url", f"{idle_closing.url}/invocations", "--search", "fixed",
        "--start-rps", "2", "--max-rps", "2", "--stages", "1", "--stage-seconds", "3",
        "--warmup-seconds", "0.5", "--arrivals", "uniform", "--users", "2", "--max-duration", "90",
        "--out", str(tmp_path), "--yes", "--quiet",
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    (run_dir,) = list(tmp_path.iterdir())
    t = json.loads((run_dir / runs.RUN_FILE).read_text())["totals"]
    closed = idle_closing.closed
    assert closed >= 3, (t, idle_closing.answered)  # the race did happen
    # Each close was met by one send again, which the server answered: no error at all.
    assert t["errors"] == 0 and t["errors_by_kind"] == {}, t
    assert t["requests"] == 6 and t.get("reconnects") == closed, (t, closed)
    assert f"6 requests, 0 errors ({closed} sent again after a kept-alive connection closed)" in out
    # The per-second lines carry the count too (what the report and the analysis read).
    records = runs.read_seconds(run_dir / runs.LATENCY_FILE)
    assert sum(r.get("reconnects", 0) for r in records) == closed
