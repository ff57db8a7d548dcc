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
import pytest

from recommender.local.server import ServerConfig
from recommender.local.trickle import measure_trickle
from recommender.queueing import (
    empirical_poisson_capacity,
    mgc_latency_ms,
    split_poisson_capacity,
)
from tests.conftest import running_demo_server
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


def test_the_truths_take_the_overlap_and_give_it_to_the_simulation() -> None:
    """Issue 27: the truth of a server with --overlap is its queue with the same rule."""
    service, outside = np.array([10.0, 20.0, 30.0]), np.array([1.0])
    args = (0.95, 150.0, outside, 3_000)
    flat = empirical_poisson_capacity(2, 4, service, *args)
    assert empirical_poisson_capacity(2, 4, service, *args, overlap=0.0) == flat
    grown = empirical_poisson_capacity(2, 4, service, *args, overlap=0.5)
    assert grown < 0.9 * flat  # every slot busy near the knee: up to 1.375 x each time
    # One slot is never beside another: the rule changes nothing (exactly, same draws).
    one = empirical_poisson_capacity(1, 1, service, *args)
    assert empirical_poisson_capacity(1, 1, service, *args, overlap=0.5) == one
    shares = [0.6, 0.4]
    split_flat = split_poisson_capacity(shares, 4, service, *args)
    split_grown = split_poisson_capacity(shares, 4, service, *args, overlap=0.5)
    assert split_grown < 0.9 * split_flat
    # Equal shares: the 1/N truth, with the overlap as without.
    assert split_poisson_capacity([0.5, 0.5], 4, service, *args, overlap=0.5) == \
        pytest.approx(grown, rel=2e-3)


def test_the_trickle_measures_unstretched_slot_times_on_an_overlapping_server() -> None:
    """One request at a time holds its slot alone (busy = 1), so the trickle reports the
    draws themselves, S here, not S x (1 + a x ...): the times the truth's simulation must
    be given, as it stretches them itself."""
    config = ServerConfig(port=0, concurrency=2, service_time_ms=50.0, model="sleep",
                          overlap=1.0)  # fmt: skip
    with running_demo_server(config) as url:
        trickle = measure_trickle(url, requests=8)
    assert float(np.median(trickle.slot_ms)) == pytest.approx(50.0, abs=0.5), trickle.slot_ms
    assert min(trickle.slot_ms) < 60.0  # stretched, every one would be 75
    # Its saturation is every slot busy, so stretched: 1 + 1 x (2 - 1) / 2 = 1.5 x each.
    assert trickle.saturation(3, 2, overlap=1.0) == pytest.approx(trickle.saturation(3, 2) / 1.5)


def test_the_saturation_with_overlap_is_every_slot_stretched() -> None:
    """With all C slots busy each is held S x (1 + a (C - 1) / C): 2 x 4 / (20 ms x 1.375)."""
    config = ServerConfig(instances=2, concurrency=4, service_time_ms=20.0, overlap=0.5)
    assert config.stretch == 1.375
    assert config.capacity_rps == pytest.approx(400.0 / 1.375)
    assert ServerConfig(instances=2, concurrency=4, service_time_ms=20.0).capacity_rps == 400.0
    assert ServerConfig(concurrency=1, service_time_ms=20.0, overlap=0.5).capacity_rps == 50.0
    # The queue with the same rule agrees: a loose SLO's truth reaches near that saturation,
    # never past it (the flat queue's would pass it by a third).
    loose = empirical_poisson_capacity(2, 4, np.array([20.0]), 0.5, 400.0, samples=5_000,
                                       overlap=0.5)  # fmt: skip
    assert 0.95 * config.capacity_rps < loose <= config.capacity_rps


def test_serve_prints_the_saturation_with_overlap(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from recommender.cli import main
    from recommender.local import server

    monkeypatch.setattr(server, "serve", lambda config, ready: ready("http://127.0.0.1:1"))
    args = ["serve", "--model", "sleep", "--instances", "2", "--concurrency", "4",
            "--service-time-ms", "20"]  # fmt: skip
    assert main([*args, "--overlap", "0.5"]) == 0
    assert capsys.readouterr().out == (
        "Listening on http://127.0.0.1:1 (capacity 290.909 requests/s, slots held up to "
        "1.375 x as long with every one busy (--overlap 0.5))\n")
    assert main(args) == 0
    assert capsys.readouterr().out == "Listening on http://127.0.0.1:1 (capacity 400 requests/s)\n"


def test_overlap_where_no_slot_stretches_is_refused_in_one_line() -> None:
    """The LLM-like server and the serverless emulation take no overlap rule: --overlap
    there is refused, not ignored."""
    from recommender.errors import ConfigError
    from recommender.local.server import ServerConfig, validate
    from recommender.local.serverless import ServerlessEmulation

    validate(ServerConfig(model="sleep", overlap=0.5))  # where it applies: accepted
    for config in (ServerConfig(model="llm", overlap=0.5),
                   ServerConfig(model="sleep", overlap=0.5, serverless=ServerlessEmulation())):
        with pytest.raises(ConfigError) as e:
            validate(config)
        assert e.value.message.startswith("--overlap must be 0 with --model llm or --serverless")
