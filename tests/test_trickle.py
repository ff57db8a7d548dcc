"""The machine-true truth's measurement: a real local server's own timing at a trickle."""

from __future__ import annotations

import pytest

from recommender.errors import EndpointError
from recommender.local.server import ServerConfig
from recommender.local.trickle import measure_trickle
from tests.conftest import running_demo_server


def test_the_server_reports_the_slot_time_the_next_request_waits_on() -> None:
    """One request at a time, each holds its slot exactly S as the queue sees it (a timer's
    overshoot is not passed on to the next request: it is the request's own time outside
    the slot, with HTTP), so the truth from them is the ideal server's plus that time."""
    config = ServerConfig(port=0, concurrency=2, service_time_ms=20.0, model="sleep")
    with running_demo_server(config) as url:
        trickle = measure_trickle(url, requests=30)
    assert len(trickle.slot_ms) == len(trickle.outside_ms) == 30
    assert all(v == pytest.approx(20.0, abs=0.01) for v in trickle.slot_ms)
    assert all(v >= 0.0 for v in trickle.outside_ms)
    assert trickle.saturation(3, 2) == pytest.approx(300.0, rel=1e-3)
    assert "30 requests one at a time: slot p50 20.0 / p99 20.0 ms" in trickle.describe()
    assert 0 < trickle.poisson_capacity(1, 2, 0.95, 60.0) < 100.0


def test_a_server_without_its_timing_is_refused_in_one_line() -> None:
    with pytest.raises(EndpointError, match="did not answer at a trickle"):
        measure_trickle("http://127.0.0.1:9", requests=1)
