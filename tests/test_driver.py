"""The arrival process: exact counts for uniform arrivals, the right mean for Poisson."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender import histograms
from recommender.loadgen.driver import Driver
from recommender.plan import RampPlan, Stage, parse_slo
from recommender.search import FixedRamp

SLO = parse_slo(["p95<=100ms"])


def plan_of(*rates: float, seconds: float = 10) -> RampPlan:
    return RampPlan(tuple(Stage(r, seconds) for r in rates), 1.0)


def drain(driver: Driver, until: float) -> list[tuple[float, int]]:
    out = []
    t = driver.t0
    while t <= until and not driver.done:
        t += 0.25
        out += driver.due(t)
    return out


def test_uniform_arrivals_offer_exactly_the_planned_requests() -> None:
    driver = Driver(FixedRamp(plan_of(10, 25, 40), SLO), t0=1000.0)
    tickets = drain(driver, 1031.0)
    assert [sum(1 for _, s in tickets if s == i) for i in range(3)] == [100, 250, 400]
    times = [t for t, _ in tickets]
    assert times == sorted(times) and times[0] == 1000.0 and times[-1] < 1030.0
    assert driver.done


def test_share_splits_the_rate_between_workers() -> None:
    driver = Driver(FixedRamp(plan_of(40), SLO), t0=0.0, share=0.25)
    assert len(drain(driver, 11.0)) == 100


def test_the_stage_label_of_a_second() -> None:
    driver = Driver(FixedRamp(plan_of(1, 2, seconds=1.5), SLO), t0=0.0)
    drain(driver, 4.0)
    assert [driver.stage_at(s) for s in (0, 1, 2, 3)] == [0, 1, 1, None]


@settings(max_examples=15, deadline=None)
@given(st.floats(20, 500), st.integers(0, 2**32 - 1))
def test_poisson_arrivals_have_the_rate_on_average(rate: float, seed: int) -> None:
    driver = Driver(FixedRamp(plan_of(rate, seconds=60), SLO), 0.0, "poisson", seed=seed)
    expected = rate * 60
    # A Poisson count has sd sqrt(expected): 5 sd is a bound that does not flake.
    assert abs(len(drain(driver, 61.0)) - expected) < 5 * expected**0.5


def test_the_generators_lateness_reaches_the_stage_summary_and_the_decision() -> None:
    """Each flushed second's lateness (recorder `lag_us`) adds up in the running stage's
    summary; a stage late past a tenth of the SLO's limit is decided as such."""
    driver = Driver(FixedRamp(plan_of(10, 10, 10, seconds=3), SLO), t0=0.0)
    for second, lag_ms in enumerate((2.0, 4.0, 3.0, 1.0, 30.0, 30.0, 1.0, 1.0, 1.0)):
        ok = histograms.new()
        lag = histograms.new()
        for _ in range(10):
            # Stage 2 misses p95 <= 100 ms while late: its miss may be the generator's.
            histograms.record_ms(ok, 150.0 if 3 <= second < 6 else 20.0)
            histograms.record_ms(lag, lag_ms)
        record = {"second": second, "requests": 10, "ok": 10, "errors": {},
                  "latency_us": histograms.encode(ok), "latency_co_us": histograms.encode(ok),
                  "lag_us": histograms.encode(lag), "wait_us": histograms.encode(lag)}
        driver.on_second(record)
        driver.due(second + 1.0)
    # Stage 1's measured seconds are 1 and 2 (the first is warm-up): p95 of 4 and 3 ms.
    assert driver.summary(0).lag_p95_ms == pytest.approx(4.0, rel=0.01)
    assert driver.summary(1).lag_p95_ms == pytest.approx(30.0, rel=0.01)
    codes = [d.code.value for d in driver.controller.decisions]
    assert codes == ["next_stage", "next_stage", "plan_complete"]
    late = driver.controller.decisions[1]  # a miss of the limit, but no fail
    assert late.outcome == "generator_late" and "p95 30 ms late" in late.reason
    assert driver.controller._late_before is False  # stage 3 was on time again
