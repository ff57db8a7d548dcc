"""The machine-true truth's measurement: a real local server's own timing at a trickle."""

from __future__ import annotations

import numpy as np
import pytest

from recommender.errors import ConfigError, EndpointError
from recommender.local.server import ServerConfig
from recommender.local.service_time import ServiceTimeDist, instance_rng
from recommender.local.trickle import measure_trickle
from tests.conftest import running_demo_server


def test_the_server_reports_the_slot_time_the_next_request_waits_on() -> None:
    """One request at a time, each holds its slot exactly S as the queue sees it (a timer's
    overshoot is not passed on to the next request: it is the request's own time outside
    the slot, with HTTP), so the truth from them is the ideal server's plus that time. Only
    a loop stalled past S/2 (a busy machine's, now and then) holds a slot longer, never
    shorter."""
    config = ServerConfig(port=0, concurrency=2, service_time_ms=100.0, model="sleep")
    with running_demo_server(config) as url:
        trickle = measure_trickle(url, requests=30)
    slots = sorted(trickle.slot_ms)
    assert len(slots) == len(trickle.outside_ms) == 30
    assert slots[0] >= 100.0 - 0.01 and slots[15] == pytest.approx(100.0, abs=0.01), slots
    assert all(v >= 0.0 for v in trickle.outside_ms)
    assert "30 requests one at a time: slot p50 100.0 / p99" in trickle.describe()
    assert trickle.saturation(3, 2) <= 60.0 + 0.01
    assert 0 < trickle.poisson_capacity(1, 2, 0.95, 300.0) < 20.0


def test_a_server_without_its_timing_is_refused_in_one_line() -> None:
    with pytest.raises(EndpointError, match="did not answer at a trickle"):
        measure_trickle("http://127.0.0.1:9", requests=1)


def test_exponential_service_times_have_mean_s_and_an_exponential_spread() -> None:
    """`--service-time-dist exp`: each request holds its slot a drawn time (the Server-Timing
    slot duration says which), mean S and CV 1. Seeded, so the 200 draws are the same on
    every run (mean 0.988 S, CV 0.97 for seed 2); the bounds leave room for what the machine
    adds: a loop stalled past S/2 lengthens the slot a request reports."""
    config = ServerConfig(port=0, concurrency=2, service_time_ms=20.0, model="sleep",
                          service_time_dist="exp", seed=2)  # fmt: skip
    with running_demo_server(config) as url:
        trickle = measure_trickle(url, requests=200)
    slot = np.asarray(trickle.slot_ms)
    assert slot.mean() == pytest.approx(20.0, rel=0.15)
    assert 0.7 <= slot.std() / slot.mean() <= 1.3
    assert len(set(np.round(slot, 3))) > 150  # drawn, not one value


def test_the_service_time_laws_draw_their_mean_and_spread() -> None:
    rng = np.random.default_rng(1)
    for text, cv in (("det", 0.0), ("exp", 1.0), ("lognormal:0.5", 0.5), ("lognormal:2", 2.0)):
        law = ServiceTimeDist.parse(text)
        assert str(law) == text
        x = law.draw(rng, 20.0, 400_000)
        assert x.mean() == pytest.approx(20.0, rel=0.02)
        assert x.std() / x.mean() == pytest.approx(cv, abs=0.03 * max(cv, 1.0))
    a = instance_rng(5, 0).random(3)
    assert (a == instance_rng(5, 0).random(3)).all()  # replayed
    assert not (a == instance_rng(5, 1).random(3)).any()  # each instance its own stream


def test_a_bad_service_time_law_is_refused_in_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        ServiceTimeDist.parse("lognormal:-1")
    assert info.value.one_line() == (
        "--service-time-dist must be det, exp or lognormal:CV with CV > 0 (got 'lognormal:-1')"
        " (e.g. --service-time-dist lognormal:0.5)")
