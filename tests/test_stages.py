"""Exact per-stage statistics and bootstrap properties on hand-built records (mutation
testing of analysis/stages.py and analysis/bootstrap.py: TESTING.md)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from recommender import histograms, runs
from recommender.analysis import bootstrap
from recommender.analysis.capacity import Capacity
from recommender.analysis.stages import StageStats, score, stage_stats
from recommender.plan import RampPlan, Slo, SloTerm, Stage

# Stage 0: seconds 0-3 (measured 2, 3); stage 1: a rest (4, 5); stage 2: 6-9 (measured 8, 9).
PLAN = RampPlan((Stage(20, 4), Stage(0, 2), Stage(40, 4)), warmup_seconds=1.5)
SLO = Slo((SloTerm("p95", 100.0),), max_error_rate=0.05)


def hist(*values: tuple[float, int]) -> str:
    h = histograms.new()
    for ms, n in values:
        for _ in range(n):
            histograms.record_ms(h, ms)
    return histograms.encode(h) if h.get_total_count() else ""


def rec(second: int, requests: int, ok: int, raw_ms: float, co_ms: float,
        cpu: float | None = None, errors: dict[str, int] | None = None) -> dict[str, Any]:
    return {"second": second, "requests": requests, "ok": ok, "errors": errors or {},
            "latency_us": hist((raw_ms, ok)), "latency_co_us": hist((co_ms, ok)),
            "cpu_percent": cpu}  # fmt: skip


def records() -> list[dict[str, Any]]:
    warm = [rec(s, 100, 50, 900.0, 900.0, cpu=99.0, errors={"timeout": 50}) for s in (0, 1)]
    return [
        *warm,
        rec(2, 20, 19, 1.0, 3.0, cpu=30.0, errors={"HTTP 503": 1}),
        rec(3, 20, 20, 2.0, 4.0, cpu=50.0),
        rec(4, 0, 0, 0.0, 0.0), rec(5, 0, 0, 0.0, 0.0),
        rec(6, 100, 50, 900.0, 900.0, errors={"timeout": 50}),
        rec(7, 40, 40, 5.0, 5.0),
        rec(8, 40, 40, 8.0, 10.0, cpu=None),
        rec(9, 30, 27, 8.0, 20.0, errors={"HTTP 500": 2, "HTTP 503": 1}),
    ]  # fmt: skip


def pct(quantile: float, *values: tuple[float, int]) -> float | None:
    return histograms.percentile_ms(histograms.decode(hist(*values)), quantile)


def test_stage_stats_reads_the_measured_window_exactly() -> None:
    s0, s2 = stage_stats(records(), PLAN, SLO)
    assert (s0.index, s2.index) == (0, 2)  # the rest stage is skipped, not the ones after
    assert (s0.seconds, s0.requests, s0.successes, s0.achieved_rps) == (2, 40, 39, 20.0)
    assert s0.error_rate == 1 / 40 and s0.errors_by_kind == {"HTTP 503": 1}
    co0 = ((3.0, 19), (4.0, 20))
    for q, got in [(0.5, s0.p50_ms), (0.9, s0.p90_ms), (0.95, s0.p95_ms), (0.99, s0.p99_ms)]:
        assert got == pct(q, *co0)
    assert s0.p50_ms == pct(0.5, (4.0, 1)) and s0.p99_ms == pct(0.5, (4.0, 1))
    assert s0.mean_ms == histograms.mean_ms(histograms.decode(hist(*co0)))
    assert s0.p95_uncorrected_ms == pct(0.95, (1.0, 19), (2.0, 20))
    assert s0.slo_values_ms == {"p95": s0.p95_ms}
    assert s0.score == max(s0.p95_ms / 100.0, (1 / 40) / 0.05)  # type: ignore[operator]
    assert s0.score == 0.5 and s0.passed and s0.cpu_percent_max == 50.0
    assert not s0.generator_limited and s0.offered_rps == 20

    assert (s2.seconds, s2.requests, s2.successes, s2.achieved_rps) == (2, 70, 67, 35.0)
    assert s2.error_rate == 3 / 70
    assert s2.errors_by_kind == {"HTTP 500": 2, "HTTP 503": 1}
    assert list(s2.errors_by_kind) == ["HTTP 500", "HTTP 503"]  # most common first
    assert s2.p95_ms == pct(0.95, (10.0, 40), (20.0, 27))
    assert s2.p95_uncorrected_ms == pct(0.95, (8.0, 67))
    assert s2.cpu_percent_max is None
    assert s2.score == (3 / 70) / 0.05 and s2.passed
    assert s2.generator_limited  # 35 < 0.95 x 40, within the SLO


def test_uncorrected_reads_the_raw_histogram() -> None:
    s0, _ = stage_stats(records(), PLAN, SLO, corrected=False)
    assert s0.p95_ms == pct(0.95, (1.0, 19), (2.0, 20)) == s0.p95_uncorrected_ms
    assert s0.p50_ms == pct(0.5, (2.0, 1))
    # ... and judges the SLO on it.
    assert s0.slo_values_ms == {"p95": s0.p95_ms} and s0.score == 0.5  # the errors' 2.5%


def test_a_ttft_term_is_judged_on_the_ttft_histogram() -> None:
    from recommender.plan import parse_slo

    slo = parse_slo(["p95<=100ms", "ttft_p95<=50ms"])
    plan = RampPlan((Stage(20, 3),), warmup_seconds=0)
    recs = [{**rec(t, 20, 20, 10.0, 30.0), "ttft_co_us": hist((40.0, 20))} for t in (0, 1)]
    recs.append(rec(2, 0, 0, 0.0, 0.0))  # a second with nothing answered: no ttft field
    (s,) = stage_stats(recs, plan, slo)
    assert s.slo_values_ms == {"p95": pct(0.95, (30.0, 40)), "ttft_p95": pct(0.95, (40.0, 40))}
    assert s.score == pct(0.95, (40.0, 40)) / 50.0  # type: ignore[operator]


def test_partial_last_second_and_a_stage_cut_in_its_warm_up() -> None:
    assert [s.seconds for s in stage_stats(records(), PLAN, SLO)] == [2, 2]
    s0, s2 = stage_stats(records(), PLAN, SLO, partial_last=True)
    assert (s2.seconds, s2.requests, s2.achieved_rps) == (1, 40, 40.0)
    # Cut at second 7, before stage 2's warm-up ended: judged on its whole seconds 6, 7.
    cut = [r for r in records() if r["second"] <= 7]
    _, s2 = stage_stats(cut, PLAN, SLO)
    assert (s2.seconds, s2.requests, s2.successes) == (2, 140, 90)
    assert s2.score == pct(0.95, (900.0, 50), (5.0, 40)) / 100.0  # type: ignore[operator]
    assert not s2.passed and not s2.generator_limited
    # The same, torn at second 8 (left out): seconds 6 and 7 again.
    upto8 = [r for r in records() if r["second"] <= 8]
    assert stage_stats(upto8, PLAN, SLO, partial_last=True)[1].requests == 140
    assert [s.index for s in stage_stats(cut[:3], PLAN, SLO)] == [0]  # second 2 only
    assert stage_stats(cut[:2], PLAN, SLO, partial_last=True)[0].seconds == 1  # second 0
    assert stage_stats([], PLAN, SLO) == []


def test_a_stage_with_no_requests_fails_without_dividing_by_zero() -> None:
    plan = RampPlan((Stage(1, 3),), warmup_seconds=0)  # an offered 1 rps still counts
    (s,) = stage_stats([rec(t, 0, 0, 0, 0) for t in range(3)], plan, SLO)
    assert (s.requests, s.error_rate, s.score, s.passed, s.p95_ms) == (0, 0.0, math.inf,
                                                                        False, None)
    assert s.to_dict()["score"] is None and "extra" not in s.to_dict()
    assert StageStats.to_dict(s)["achieved_rps"] == 0.0


def test_stream_stats_of_a_window_and_in_the_stage_s_json() -> None:
    from dataclasses import asdict

    from recommender.analysis.stages import StreamStats, stream_stats

    # 100 observations each: p50, p95, p99 and the maximum all differ.
    first = {"streamed": 97, "ttft_co_us": hist((50.0, 97)), "itl_us": hist((10.0, 97)),
             "tokens_out": 970, "tokens_in": 1940, "good": 90}  # fmt: skip
    second = {"streamed": 3, "ttft_co_us": hist((100.0, 2), (200.0, 1)),
              "itl_us": hist((20.0, 2), (30.0, 1)), "tokens_out": 30, "tokens_in": 60,
              "good": 3}  # fmt: skip
    ttft, itl = ((50.0, 97), (100.0, 2), (200.0, 1)), ((10.0, 97), (20.0, 2), (30.0, 1))
    assert len({pct(q, *ttft) for q in (0.5, 0.95, 0.99, 1.0)}) == 3  # p50 = p95 = 50
    assert pct(0.99, *ttft) != pct(1.0, *ttft) and pct(0.95, *itl) != pct(1.0, *itl)
    assert stream_stats([first, second, {}], 4) == StreamStats(
        pct(0.5, *ttft), pct(0.95, *ttft), pct(0.99, *ttft),
        pct(0.5, *itl), pct(0.95, *itl), pct(0.99, *itl),
        output_tokens_per_s=250.0, input_tokens_per_s=500.0, output_tokens_per_request=10.0,
        input_tokens_per_request=20.0, goodput_rps=23.25, streamed=100)  # fmt: skip
    assert stream_stats([{}, {"streamed": 0}], 4) is None
    # In the stage: its window's, and in its JSON as a dict; absent from a stage without.
    plan = RampPlan((Stage(1, 2),), warmup_seconds=0)
    (s,) = stage_stats([{**rec(0, 97, 97, 5.0, 5.0), **first},
                        {**rec(1, 3, 3, 5.0, 5.0), **second}], plan, SLO)  # fmt: skip
    assert s.stream == stream_stats([first, second], 2)
    assert s.to_dict()["stream"] == asdict(s.stream) and s.to_dict()["stream"]["streamed"] == 100
    (plain,) = stage_stats([rec(0, 3, 3, 5.0, 5.0)], plan, SLO)
    assert plain.stream is None and "stream" not in plain.to_dict()


def test_a_stage_with_no_whole_second_is_skipped_not_the_ones_after() -> None:
    # An aborted stage cut to half a second holds no whole second to measure.
    plan = RampPlan((Stage(20, 4), Stage(30, 0.5), Stage(40, 4)), warmup_seconds=0)
    recs = [rec(t, 20, 20, 5.0, 5.0) for t in range(9)]
    assert [s.index for s in stage_stats(recs, plan, SLO)] == [0, 2]


def test_errors_by_sagemaker_type_are_summed_most_common_first() -> None:
    plan = RampPlan((Stage(10, 3),), warmup_seconds=0)
    recs = [{**rec(0, 10, 8, 5.0, 5.0), "error_types": {"ModelError": 2}},
            {**rec(1, 10, 6, 5.0, 5.0), "error_types": {"ModelError": 1, "Throttling": 3}},
            {**rec(2, 10, 9, 5.0, 5.0), "error_types": None}]  # fmt: skip
    (s,) = stage_stats(recs, plan, SLO)
    assert s.errors_by_type == {"Throttling": 3, "ModelError": 3}
    assert list(s.errors_by_type) == ["ModelError", "Throttling"]  # ties: first seen first
    recs[1]["error_types"] = {"Throttling": 4}
    (s,) = stage_stats(recs, plan, SLO)
    assert list(s.errors_by_type.items()) == [("Throttling", 4), ("ModelError", 2)]


def test_the_later_half_of_two_seconds_is_the_second_and_one_second_has_none() -> None:
    # 200 requests a second: 10 beyond the p95, enough to read the later half's (MIN_LATE_TAIL).
    slow = hist((5.0, 180), (300.0, 20))  # 10% slow: its p95 is 300 ms
    queued = {"second": 1, "requests": 200, "ok": 200, "errors": {}, "latency_us": slow,
              "latency_co_us": slow}  # fmt: skip
    two = RampPlan((Stage(200, 2),), warmup_seconds=0)
    (s,) = stage_stats([rec(0, 200, 200, 5.0, 5.0), queued], two, SLO)
    assert s.p95_ms == pct(0.95, (5.0, 380), (300.0, 20))  # 5% slow: the window passes ...
    late = pct(0.95, (5.0, 180), (300.0, 20))
    assert late is not None and not s.settled and s.score == late / 100  # ... its later half not
    one = RampPlan((Stage(200, 1),), warmup_seconds=0)
    (s,) = stage_stats([{**queued, "second": 0}], one, SLO)
    assert s.settled and not s.passed  # one second: no later half to tell apart


# --- the later half (settled): which terms, which histogram, how many observations ----------


def later_half(slo: Slo, late: dict[str, Any], corrected: bool = True) -> StageStats:
    """A two-second stage judged on `slo`: a quiet first second (200 at 5 ms), then `late`,
    its later half."""
    plan = RampPlan((Stage(200, 2),), warmup_seconds=0)
    recs = [rec(0, 200, 200, 5.0, 5.0), {**late, "second": 1}]
    (s,) = stage_stats(recs, plan, slo, corrected=corrected)
    return s


def slow_second(n: int, slow: int, slow_ms: float = 300.0, **fields: Any) -> dict[str, Any]:
    """A second of `n` successes, `slow` of them at `slow_ms` (the rest at 5 ms)."""
    h = hist((5.0, n - slow), (slow_ms, slow))
    return {"second": 1, "requests": n, "ok": n, "errors": {}, "latency_us": h,
            "latency_co_us": h, **fields}  # fmt: skip


def test_settled_holds_at_a_later_half_exactly_at_the_limit_and_not_just_above() -> None:
    # The later half's p95 is 300 ms (20 of 200 slow); the whole window's is 5 ms.
    late_p95 = pct(0.95, (5.0, 180), (300.0, 20))
    assert late_p95 is not None
    at = later_half(Slo((SloTerm("p95", late_p95),)), slow_second(200, 20))
    assert at.settled and at.passed and at.score == 1.0  # "within" includes the limit
    # 1.5 x the limit: not settled (a queue still growing), and the stage fails by it.
    above = later_half(Slo((SloTerm("p95", late_p95 / 1.5),)), slow_second(200, 20))
    assert not above.settled and not above.passed and above.score == pytest.approx(1.5)


def test_the_later_half_reads_percentile_terms_only_and_one_second_has_none() -> None:
    # A mean term is judged on the whole window only (its later half has no tail to
    # count): a slow later half's mean neither unsettles the stage nor raises an error.
    slo = Slo((SloTerm("p95", 1000.0), SloTerm("mean", 20.0)))
    s = later_half(slo, slow_second(200, 20))
    assert s.settled and s.score == pytest.approx(s.slo_values_ms["mean"] / 20.0)
    # One second has no later half: its score is the window's alone, however low.
    (one,) = stage_stats([rec(0, 20, 20, 5.0, 5.0)], RampPlan((Stage(20, 1),), 0), SLO)
    assert one.score == pct(0.95, (5.0, 20)) / 100.0  # type: ignore[operator]
    assert one.score < 0.1 and one.settled


def test_an_uncorrected_later_half_reads_the_raw_latencies() -> None:
    # The later half's requests were answered fast (raw 5 ms) but sent late (from their
    # intended time, 300 ms): corrected it is not settled; uncorrected it is.
    late = {**slow_second(200, 20), "latency_us": hist((5.0, 200))}
    assert not later_half(SLO, late).settled
    raw = later_half(SLO, late, corrected=False)
    assert raw.settled and raw.passed


def test_a_ttft_term_s_later_half_reads_the_ttft_histogram_and_its_own_count() -> None:
    slo = Slo((SloTerm("p95", 50.0, metric="ttft"),))
    fast = hist((5.0, 200))
    early = {**rec(0, 200, 200, 5.0, 5.0), "ttft_co_us": fast}
    # 200 first tokens, 20 of them slow (300 ms): the later half's TTFT p95 fails.
    late = {**rec(1, 200, 200, 5.0, 5.0), "ttft_co_us": hist((5.0, 180), (300.0, 20))}
    plan = RampPlan((Stage(200, 2),), warmup_seconds=0)
    (s,) = stage_stats([early, late], plan, slo)
    assert not s.settled and not s.passed
    # Only 100 of the 200 successes streamed: 5 beyond the p95, too few to read the later
    # half by (MIN_LATE_TAIL = 10), however many requests succeeded.
    thin = {**late, "ttft_co_us": hist((5.0, 90), (300.0, 10))}
    (s,) = stage_stats([early, thin], plan, slo)
    assert s.settled


def test_the_later_half_needs_min_late_tail_observations_beyond_each_percentile() -> None:
    # p50: 20 successes have exactly 10 beyond the median (enough); 18 have 9 (not).
    slo = Slo((SloTerm("p50", 100.0),))
    assert not later_half(slo, slow_second(20, 11)).settled
    assert later_half(slo, slow_second(18, 10)).settled
    # A term with too few (p99: 2 of 200) is passed over, not the terms after it.
    both = Slo((SloTerm("p99", 1000.0), SloTerm("p95", 100.0)))
    assert not later_half(both, slow_second(200, 20)).settled


def test_the_generator_s_lag_and_wait_for_a_user() -> None:
    plan = RampPlan((Stage(10, 2),), warmup_seconds=0)
    lag, wait = ((2.0, 19), (50.0, 1)), ((1.0, 15), (7.0, 4), (40.0, 1))
    recs = [{**rec(t, 10, 10, 5.0, 5.0), "lag_us": hist(*lag), "wait_us": hist(*wait)}
            for t in (0, 1)]  # fmt: skip
    (s,) = stage_stats(recs, plan, SLO)
    doubled = tuple((ms, 2 * n) for ms, n in lag)
    assert (s.lag_p95_ms, s.lag_max_ms) == (pct(0.95, *doubled), pct(1.0, *doubled))
    assert s.wait_p95_ms == pct(0.95, *((ms, 2 * n) for ms, n in wait))
    # The p95s are not the longest lag (50 ms) or wait (40 ms).
    assert s.lag_p95_ms != s.lag_max_ms and s.wait_p95_ms != pct(1.0, (40.0, 2))
    (plain,) = stage_stats([rec(0, 10, 10, 5.0, 5.0)], plan, SLO)
    assert (plain.lag_p95_ms, plain.lag_max_ms, plain.wait_p95_ms) == (None, None, None)


def test_a_closed_loop_stage_is_its_level_and_offers_what_it_sent() -> None:
    # --control concurrency: a stage's "rps" is the requests it holds in flight (4).
    closed = RampPlan((Stage(4, 2),), warmup_seconds=0, control="concurrency")
    recs = [rec(t, 30, 30, 5.0, 5.0) for t in (0, 1)]
    (s,) = stage_stats(recs, closed, SLO)
    assert (s.concurrency, s.offered_rps, s.achieved_rps, s.level) == (4, 30.0, 30.0, 4)
    assert not s.generator_limited  # 30 sent, not "4 offered"
    # What the endpoint held (Little's law on the raw latency): 30/s x 5 ms, well short of
    # the level 4 (a starved generator, as recommender.search reads it).
    mean = histograms.mean_ms(histograms.decode(hist((5.0, 60))))
    assert mean is not None and s.held_in_flight == pytest.approx(30 * mean / 1000)
    (r,) = stage_stats(recs, replace(closed, control="rate"), SLO)
    assert (r.concurrency, r.offered_rps, r.level, r.held_in_flight) == (None, 4, 4, None)


def test_generator_shortfall_and_pass_boundaries() -> None:
    plan = RampPlan((Stage(20, 1), Stage(20, 1), Stage(20, 1)), warmup_seconds=0)
    limit = pct(0.95, (4.0, 1))
    assert limit is not None
    slo = Slo((SloTerm("p95", limit),), max_error_rate=0.01)
    recs = [rec(0, 19, 19, 4.0, 4.0), rec(1, 18, 18, 4.0, 4.0), rec(2, 18, 18, 4.1, 4.1)]
    a, b, c = stage_stats(recs, plan, slo)
    assert (a.score, a.passed, a.generator_limited) == (1.0, True, False)  # 19 = 0.95 x 20
    assert (b.passed, b.generator_limited) == (True, True)
    assert (c.passed, c.generator_limited) == (False, False)
    assert a.to_dict()["score"] == 1.0


def test_score_arithmetic() -> None:
    strict = Slo((SloTerm("p95", 100.0),), max_error_rate=0.0)
    assert score({"p95": 50.0}, 0.0, strict, ok=10) == 0.5
    assert score({"p95": 50.0}, 0.01, strict, ok=10) == math.inf
    slo = Slo((SloTerm("p95", 100.0), SloTerm("mean", 40.0)), max_error_rate=0.25)
    assert score({"p95": 80.0, "mean": 10.0}, 0.125, slo, ok=1) == 0.8
    assert score({"p95": 20.0, "mean": 30.0}, 0.125, slo, ok=1) == 0.75
    assert score({"p95": 20.0, "mean": 10.0}, 0.5, slo, ok=1) == 2.0
    assert score({"p95": None, "mean": 10.0}, 0.0, slo, ok=1) == math.inf
    assert score({"p95": 1.0, "mean": 1.0}, 0.0, slo, ok=0) == math.inf
    assert score({"p95": 1.0, "mean": 1.0}, 0.0, slo, ok=1) == 1 / 40


# --- bootstrap -------------------------------------------------------------------------

ONE = RampPlan((Stage(40, 4),), warmup_seconds=0)


def one_stage(requests: list[int]) -> tuple[list[dict[str, Any]], list[StageStats]]:
    recs = [rec(t, n, n, 2.0, 2.0) for t, n in enumerate(requests)]
    return recs, stage_stats(recs, ONE, SLO)


def stub(monkeypatch: pytest.MonkeyPatch, interpolated: int = 10**9) -> list[StageStats]:
    """Replace capacity_at_slo: record each replicate's stage, estimate its achieved rate."""
    seen: list[StageStats] = []

    def fake(stages: list[StageStats], instances: int, checks: object = ()) -> Capacity:
        seen.append(stages[0])
        r = stages[0].achieved_rps
        method = "interpolated" if len(seen) <= interpolated else "lower_bound"
        return Capacity(method, instances, r, r / instances, None, None, None)

    monkeypatch.setattr(bootstrap, "capacity_at_slo", fake)
    return seen


def test_bootstrap_draws_blocks_of_the_given_size(monkeypatch: pytest.MonkeyPatch) -> None:
    recs, stages = one_stage([10, 20, 30, 40])
    seen = stub(monkeypatch)
    assert bootstrap.capacity_interval(recs, ONE, SLO, stages, 1, replicates=200,
                                       block=2) == (15.0, 35.0)  # fmt: skip
    # Blocks {0,1} (15/s) and {2,3} (35/s), two drawn per replicate.
    assert len(seen) == 200 and {s.achieved_rps for s in seen} == {15.0, 25.0, 35.0}
    assert all(s.score == stages[0].score and s.passed for s in seen)
    seen.clear()
    # One block holding the whole stage: every replicate is the point estimate.
    assert bootstrap.capacity_interval(recs, ONE, SLO, stages, 1, replicates=20,
                                       block=4) == (25.0, 25.0)  # fmt: skip
    assert all(s == stages[0] for s in seen)
    seen.clear()
    # Blocks of 3: {0,1,2} and {3}; rates are requests over the seconds drawn.
    bootstrap.capacity_interval(recs, ONE, SLO, stages, 2, replicates=100, block=3)
    assert {s.achieved_rps for s in seen} == {20.0, 40.0, 100 / 4}
    assert len(seen) == 100


def test_bootstrap_draws_from_seed_0_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    # The same run analysed twice gives the same interval: the draws are seeded, with 0.
    recs, stages = one_stage([10, 20, 30, 40])
    seen = stub(monkeypatch)

    def drawn(**seed: int) -> list[float]:
        seen.clear()
        bootstrap.capacity_interval(recs, ONE, SLO, stages, 1, replicates=30, block=1, **seed)
        return [s.achieved_rps for s in seen]

    assert drawn() == drawn() == drawn(seed=0) != drawn(seed=1)


def test_bootstrap_falls_back_to_the_records_stage_field(monkeypatch: pytest.MonkeyPatch) -> None:
    # Seconds the plan's measured window does not hold: the stage's seconds are the records
    # marked with its index (here 0; stage 1's records, at 99/s, are not drawn).
    recs, stages = one_stage([10, 20, 30, 40])
    moved = [{**r, "second": r["second"] + 100, "stage": 0} for r in recs]
    other = [{**rec(200 + t, 99, 99, 2.0, 2.0), "stage": 1} for t in range(4)]
    seen = stub(monkeypatch)
    assert bootstrap.capacity_interval(moved + other, ONE, SLO, stages, 1, replicates=200,
                                       block=2) == (15.0, 35.0)  # fmt: skip
    assert {s.achieved_rps for s in seen} == {15.0, 25.0, 35.0}


def test_bootstrap_blocks_without_successes_or_requests(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A stalled endpoint: seconds 0-1 answered nothing but errors (no latency histogram).
    recs = [rec(t, 10, 0, 0.0, 0.0, errors={"timeout": 10}) for t in (0, 1)]
    recs += [rec(t, 10, 10, 2.0, 2.0) for t in (2, 3)]
    (st,) = stage_stats(recs, ONE, SLO)
    seen = stub(monkeypatch)
    assert bootstrap.capacity_interval(recs, ONE, SLO, [st], 1, replicates=100,
                                       block=2) == (10.0, 10.0)  # fmt: skip
    good = pct(0.95, (2.0, 20)) / 100.0  # type: ignore[operator]
    # Both blocks good; one of each (half the requests failed: 10 x the 5% allowed); both
    # stalled (no successes: infinite).
    assert st.settled and {s.score for s in seen} == {good, 10.0, math.inf}
    # Seconds with no requests at all: a replicate of only those has none (no error rate).
    idle = [rec(t, 0, 0, 0.0, 0.0) for t in (0, 1)] + recs[2:]
    (st,) = stage_stats(idle, ONE, SLO)
    seen.clear()
    bootstrap.capacity_interval(idle, ONE, SLO, [st], 1, replicates=100, block=2)
    assert {(s.achieved_rps, s.score) for s in seen} == {(10.0, good), (5.0, good),
                                                         (0.0, math.inf)}  # fmt: skip


def test_near_knee_is_an_interpolated_bracket_at_most_20_percent_wide() -> None:
    cap = Capacity("interpolated", 1, 110.0, 110.0, (100.0, 120.0), 1, 2)
    assert bootstrap.near_knee(cap) == (100.0, 120.0)  # 20% of its passing end: near
    assert bootstrap.chance_low(cap) == 100.0 / 1.07
    assert bootstrap.near_knee(replace(cap, interval_rps_per_instance=(100.0, 124.0))) is None
    # The model's extrapolation has a bracket too (measured, crossing): not a knee's.
    assert bootstrap.near_knee(replace(cap, method="model_extrapolation")) is None
    assert bootstrap.near_knee(replace(cap, rps_per_instance=None)) is None


def test_unretested_is_an_adaptive_search_with_no_retest_decision() -> None:
    from types import SimpleNamespace

    from recommender.search import DecisionCode

    def run(search: dict[str, Any] | None) -> Any:
        return SimpleNamespace(meta={"search": search} if search is not None else {})

    stop = {"code": DecisionCode.PRECISION_REACHED.value}
    retest = {"code": DecisionCode.RETEST.value}
    assert bootstrap.unretested(run({"mode": "adaptive", "decisions": [stop]}))
    assert bootstrap.unretested(run({"mode": "adaptive"}))  # no decisions recorded
    assert not bootstrap.unretested(run({"mode": "adaptive", "decisions": [retest, stop]}))
    assert not bootstrap.unretested(run({"mode": "fixed", "decisions": [stop]}))
    assert not bootstrap.unretested(run(None))


def test_bootstrap_interval_percentiles_and_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    recs, stages = one_stage([10, 20, 30, 40])
    stub(monkeypatch, interpolated=2)
    assert bootstrap.capacity_interval(recs, ONE, SLO, stages, 1, replicates=4, block=4) == (
        25.0, 25.0)  # fmt: skip
    stub(monkeypatch, interpolated=1)
    assert bootstrap.capacity_interval(recs, ONE, SLO, stages, 1, replicates=4, block=4) is None


def test_bootstrap_rescores_each_replicate(monkeypatch: pytest.MonkeyPatch) -> None:
    # Second 1 fails the p95 (200 ms), second 0 passes: replicates of single seconds.
    recs = [rec(0, 10, 10, 2.0, 2.0), rec(1, 10, 8, 200.0, 200.0, errors={"x": 2})]
    plan = RampPlan((Stage(10, 2),), warmup_seconds=0)
    (st,) = stage_stats(recs, plan, SLO)
    seen = stub(monkeypatch)
    a = bootstrap.capacity_interval(recs, plan, SLO, [st], 1, replicates=50, block=1, seed=3)
    b = bootstrap.capacity_interval(recs, plan, SLO, [st], 1, replicates=50, block=1, seed=3)
    assert a == b
    scores = {(s.achieved_rps, s.score, s.passed) for s in seen[:50]}
    good = pct(0.95, (2.0, 1)) / 100.0  # type: ignore[operator]
    bad = pct(0.95, (200.0, 1)) / 100.0  # type: ignore[operator]
    mixed = max(pct(0.95, (2.0, 10), (200.0, 8)) / 100.0,  # type: ignore[operator]
                (2 / 20) / 0.05)  # fmt: skip
    assert scores == {(10.0, good, True), (10.0, max(bad, (2 / 10) / 0.05), False),
                      (10.0, mixed, False)}  # fmt: skip


def test_each_percentile_reads_its_own_quantile() -> None:
    plan = RampPlan((Stage(200, 1),), warmup_seconds=0)
    spread = [(float(i), 1) for i in range(1, 201)]
    r = {"second": 0, "requests": 200, "ok": 200, "errors": {}, "latency_us": hist(*spread),
         "latency_co_us": hist(*spread)}  # fmt: skip
    (s,) = stage_stats([r], plan, SLO)
    assert (s.p50_ms, s.p90_ms, s.p95_ms, s.p99_ms, s.p95_uncorrected_ms) == (
        pct(0.5, *spread), pct(0.9, *spread), pct(0.95, *spread), pct(0.99, *spread),
        pct(0.95, *spread))  # fmt: skip
    assert s.p99_ms < pct(1.0, *spread)  # type: ignore[operator]


def test_bootstrap_percentiles_and_half_threshold_exactly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recs, stages = one_stage([10, 20, 30, 40])
    calls: list[int] = []

    def numbered(limit: int) -> None:
        calls.clear()

        def fake(stages: list[StageStats], instances: int, checks: object = ()) -> Capacity:
            calls.append(1)
            x = float(len(calls))  # replicate k estimates k
            method = "interpolated" if len(calls) <= limit else "lower_bound"
            return Capacity(method, instances, x, x, None, None, None)

        monkeypatch.setattr(bootstrap, "capacity_at_slo", fake)

    numbered(10**9)
    # Estimates 1..201: numpy's linear percentiles 2.5 and 97.5 are 6 and 196.
    assert bootstrap.capacity_interval(recs, ONE, SLO, stages, 1, replicates=201) == (6.0, 196.0)
    numbered(2)  # 2 of 6 replicates interpolated: fewer than half
    assert bootstrap.capacity_interval(recs, ONE, SLO, stages, 1, replicates=6) is None
    numbered(3)
    assert bootstrap.capacity_interval(recs, ONE, SLO, stages, 1, replicates=6) == (
        1.05, 2.95)  # fmt: skip


def test_bootstrap_passes_a_replicate_at_a_score_of_exactly_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    limit = pct(0.95, (4.0, 1))
    assert limit is not None
    slo = Slo((SloTerm("p95", limit),), max_error_rate=0.05)
    recs = [rec(0, 10, 10, 4.0, 4.0), rec(1, 10, 10, 6.0, 6.0)]
    plan = RampPlan((Stage(10, 2),), warmup_seconds=0)
    (st,) = stage_stats(recs, plan, slo)
    seen = stub(monkeypatch)
    bootstrap.capacity_interval(recs, plan, slo, [st], 1, replicates=40, block=1)
    high = pct(0.95, (6.0, 1)) / limit  # type: ignore[operator]
    assert {(s.score, s.passed) for s in seen} == {(1.0, True), (high, False)}
    assert 1.4 < high < 1.6


def test_with_confidence_widens_the_bootstrap_to_the_bracket(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ramp: RampPlan
) -> None:
    from tests.conftest import synthetic_records, write_run

    run = runs.load_run(write_run(tmp_path / "r", ramp, synthetic_records(ramp, [10] * 5)))
    st = stage_stats(run.seconds, run.plan, SLO)
    cap = Capacity("interpolated", 1, 35.0, 35.0, (30.0, 40.0), 1, 2)
    bare = replace(cap, interval_rps_per_instance=None)
    boots: list[tuple[float, float] | None] = [(33.0, 45.0)]
    monkeypatch.setattr(bootstrap, "capacity_interval", lambda *a, **k: boots[0])
    both = bootstrap.with_confidence(cap, run, SLO, st)
    assert both.ci_rps_per_instance == (30.0, 45.0)
    assert both.ci_method == ("block bootstrap over seconds (200 replicates, 3 s blocks), "
                              "widened to the bracketing stages")  # fmt: skip
    assert bootstrap.with_confidence(bare, run, SLO, st).ci_rps_per_instance == (33.0, 45.0)
    off = bootstrap.with_confidence(cap, run, SLO, st, bootstrap=False)
    assert (off.ci_rps_per_instance, off.ci_method) == ((30.0, 40.0), "bracketing stages")
    assert bootstrap.with_confidence(bare, run, SLO, st, bootstrap=False) == bare
    boots[0] = None
    assert bootstrap.with_confidence(bare, run, SLO, st) == bare
    assert bootstrap.with_confidence(cap, run, SLO, st).ci_method == "bracketing stages"
