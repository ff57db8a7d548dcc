"""The local server's habits of third-party model servers (recommender.local.server):
idle keep-alive connections closed after `keepalive_s`, and a slot time that grows with
overlap by a rule the queue simulation (recommender.queueing) applies too. 127.0.0.1 only,
a handful of requests."""

from __future__ import annotations

import re
import socket
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from recommender.queueing import mgc_latency_ms
from tests.test_server import running_server

POST = (b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 2\r\n\r\n{}")


def test_idle_keepalive_connections_are_closed_after_keepalive_s() -> None:
    with running_server(model="sleep", service_time_ms=5, keepalive_s=0.5) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(POST)
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
            idle = time.monotonic()
            assert sock.recv(65536) == b""  # the server closed it, idle
            assert 0.3 < time.monotonic() - idle < 3.0


def slot_ms(url: str) -> float:
    req = urllib.request.Request(f"{url}/invocations", data=b"{}", method="POST",
                                 headers={"Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(req, timeout=10) as r:
        return float(re.search(r"slot;dur=([0-9.]+)", r.headers["Server-Timing"])[1])  # type: ignore[index]


def test_overlap_stretches_a_slot_by_the_slots_busy_at_its_start() -> None:
    # C = 2, S = 200 ms, a = 1: alone S; with the other slot held, S x (1 + 1 x 1/2).
    with running_server(model="sleep", concurrency=2, service_time_ms=200, overlap=1.0) as url:
        assert abs(slot_ms(url) - 200) < 20
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(slot_ms, url)
            time.sleep(0.05)
            second = pool.submit(slot_ms, url)
            times = sorted([first.result(), second.result()])
    assert abs(times[0] - 200) < 20 and abs(times[1] - 300) < 30, times


def test_the_queue_simulation_applies_the_same_overlap_rule() -> None:
    flat = mgc_latency_ms(5.0, 2, np.array([100.0]), samples=3000)
    same = mgc_latency_ms(5.0, 2, np.array([100.0]), samples=3000, overlap=0.0)
    grown = mgc_latency_ms(5.0, 2, np.array([100.0]), samples=3000, overlap=1.0)
    assert np.array_equal(flat, same)
    assert np.isclose(grown.min(), 100.0)  # a request alone holds its slot S
    assert np.isclose(grown, 150.0).any()  # one that starts beside another: S x (1 + 1 x 1/2)
    assert grown.mean() > flat.mean()
