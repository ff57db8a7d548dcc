"""--control concurrency: the closed-loop truth of the sleep server, the adaptive search over
requests in flight (against that truth), the concurrency at the SLO and its target, and the
flags that make no sense with it. Pure and fast; the end-to-end run is in
test_inference_component.py."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from recommender.analysis import analyze_run
from recommender.analysis.capacity import capacity_at_slo, concurrency_at_slo
from recommender.analysis.recommend import recommend
from recommender.analysis.stages import stage_stats
from recommender.cli import main
from recommender.local import closed_loop
from recommender.options import RunOptions
from recommender.plan import RampPlan, SearchSettings, Slo, SloTerm, Stage, parse_slo
from recommender.runs import load_run
from recommender.search import PASS, AdaptiveSearch, StageSummary
from tests.conftest import synthetic_records, write_run

# --- the truth -------------------------------------------------------------------------------


def test_truth_latency_rounds() -> None:
    # 4 slots of 50 ms: up to 4 in flight nothing waits; 5 in flight: one in four waits a
    # round (p95 = 100 ms, p50 = 50 ms); 8: every request takes two rounds.
    q = closed_loop.latency_quantile_ms
    assert [q(k, 4, 50.0, 0.95) for k in (1, 4, 5, 8, 9)] == [50, 50, 100, 100, 150]
    assert q(5, 4, 50.0, 0.50) == 50
    assert closed_loop.throughput_rps(2, 4, 50.0) == 40
    assert closed_loop.throughput_rps(9, 4, 50.0) == 80


def test_truth_concurrency_at_slo() -> None:
    at = closed_loop.concurrency_at_slo
    assert at(4, 50.0, 0.95, 75.0) == 4  # one round allowed, and no request may wait one
    assert at(4, 50.0, 0.95, 49.0) == 0
    assert at(8, 20.0, 0.95, 45.0) == 16  # two rounds of 8 slots
    assert at(40, 20.0, 0.95, 25.0) == 42  # 5% of 40 slots may wait: 2 more
    # Its definition: the highest k whose quantile is within the limit.
    for slots, s, q, limit in ((4, 50, 0.95, 75), (8, 20, 0.95, 45), (40, 20, 0.9, 25),
                               (3, 10, 0.5, 35)):  # fmt: skip
        k = at(slots, s, q, limit)
        assert closed_loop.latency_quantile_ms(k, slots, s, q) <= limit
        assert closed_loop.latency_quantile_ms(k + 1, slots, s, q) > limit


def test_the_truth_is_robust_only_where_the_level_above_misses_whatever_the_phases() -> None:
    """Rounds are the worst phases; spread evenly, 5 in flight on 4 slots of 50 ms each wait
    12.5 ms. The mean is fixed (Little's law), so the p95 is at least (62.5 - 0.05 x 100) /
    0.95 = 60.5 ms: a limit of 75 ms can pass 5 in flight, one of 68 ms on 2 slots cannot
    pass 3 (at least 73.7 ms)."""
    floor = closed_loop.quantile_floor_ms
    assert floor(5, 4, 50.0, 0.95) == pytest.approx(57.5 / 0.95)
    assert floor(3, 2, 50.0, 0.95) == pytest.approx(70.0 / 0.95)
    assert floor(4, 4, 50.0, 0.95) == floor(1, 4, 50.0, 0.95) == 50.0  # nothing waits
    assert floor(9, 4, 50.0, 0.5) == pytest.approx((112.5 - 0.5 * 150) / 0.5)
    assert not closed_loop.robust_at_slo(4, 50.0, 0.95, 75.0)
    assert closed_loop.robust_at_slo(2, 50.0, 0.95, 68.0)
    assert closed_loop.robust_at_slo(1, 10.0, 0.95, 15.0)
    # Never above the rounds' quantile: the floor is over every arrangement of phases.
    for k in range(1, 40):
        for slots in (1, 2, 4, 8):
            for q in (0.5, 0.9, 0.95, 0.99):
                assert floor(k, slots, 20.0, q) <= closed_loop.latency_quantile_ms(
                    k, slots, 20.0, q) + 1e-9  # fmt: skip


# --- the search over requests in flight, against the truth ----------------------------------


def _truth_summary(level: float, slots: int, service_ms: float, slo: Slo,
                   seconds: int = 20) -> StageSummary:  # fmt: skip
    """What a closed-loop stage of `level` in flight measures on the sleep server, exactly:
    its throughput and, per SLO term, the requests within the limit."""
    k = int(level)
    rps = closed_loop.throughput_rps(k, slots, service_ms)
    n = int(rps * seconds)
    m, j = divmod(k, slots)
    rounds_short = max(1, m)
    longer_share = 0.0 if k <= slots else j / slots
    within: dict[str, int] = {}
    stat_ms: dict[str, float | None] = {}
    for t in slo.terms:
        q = t.quantile or 0.5
        ok_share = (1 - longer_share) if service_ms * rounds_short <= t.limit_ms else 0.0
        if service_ms * (rounds_short + 1) <= t.limit_ms:
            ok_share = 1.0
        within[t.stat] = round(n * ok_share)
        stat_ms[t.stat] = closed_loop.latency_quantile_ms(k, slots, service_ms, q)
    return StageSummary(rps=level, seconds=seconds, requests=n, successes=n, within=within,
                        stat_ms=stat_ms)  # fmt: skip


def _search(slots: int, service_ms: float, slo: Slo, start: int = 1,
            most: int = 256) -> AdaptiveSearch:  # fmt: skip
    settings = SearchSettings(start_rps=start, max_rps=most, stage_seconds=20, warmup_seconds=2,
                              max_duration=3600, control="concurrency")  # fmt: skip
    search = AdaptiveSearch(settings, slo)
    t = 0.0
    while (cur := search.current()) is not None:
        _, level, _, end = cur
        t = end
        rest = StageSummary(0, 0, 0, 0, {}, {})  # a rest after a failure: no load
        search.advance(t, _truth_summary(level, slots, service_ms, slo) if level else rest)
    return search


@pytest.mark.parametrize(("slots", "service_ms", "limit_ms"),
                         [(4, 50.0, 75.0), (8, 20.0, 45.0), (40, 20.0, 25.0), (12, 30.0, 100.0),
                          (1, 10.0, 15.0)])  # fmt: skip
def test_search_brackets_the_true_concurrency(slots: int, service_ms: float,
                                              limit_ms: float) -> None:  # fmt: skip
    slo = Slo((SloTerm("p95", limit_ms),))
    truth = closed_loop.concurrency_at_slo(slots, service_ms, 0.95, limit_ms)
    search = _search(slots, service_ms, slo)
    levels = [r for r, _, _ in search.stages if r > 0]
    assert all(float(r).is_integer() for r in levels)  # requests in flight are whole
    lo, hi = search.lo or 0, search.hi or 0
    # Whole numbers bracket the truth: one apart, or within --precision (5%).
    assert lo <= truth < hi, search.decisions
    assert hi - lo <= 1 or (hi - lo) / lo <= 0.05
    assert search.decisions[-1].code.value == "precision_reached"


def test_search_concurrency_stops_at_its_ceiling_and_at_one() -> None:
    slo = Slo((SloTerm("p95", 75.0),))
    ceiling = _search(64, 50.0, slo, start=1, most=16)  # never fails below 64
    assert ceiling.decisions[-1].code.value == "max_rps"
    assert max(r for r, _, _ in ceiling.stages) == 16
    hopeless = _search(4, 50.0, Slo((SloTerm("p95", 40.0),)), start=8)
    assert hopeless.decisions[-1].code.value == "fails_at_start"
    assert [r for r, _, _ in hopeless.stages if r > 0] == [8, 4, 2, 1]


def test_closed_loop_is_never_generator_limited() -> None:
    """Throughput far below the level is the endpoint's answer, not the generator's."""
    slo = Slo((SloTerm("p95", 500.0),))
    settings = SearchSettings(start_rps=8, max_rps=8, stage_seconds=10, warmup_seconds=1,
                              control="concurrency")  # fmt: skip
    search = AdaptiveSearch(settings, slo)
    search.advance(100, StageSummary(8, 100, 200, 200, {"p95": 200}, {"p95": 400.0}))
    assert search.decisions[0].outcome == PASS
    assert search.decisions[0].code.value == "max_rps"


# --- the analysis: concurrency at the SLO and its target ------------------------------------


def _closed_loop_run(tmp_path: Path, levels: list[int], slots: int,
                     service_ms: float) -> Path:  # fmt: skip
    plan = RampPlan(tuple(Stage(k, 6) for k in levels), warmup_seconds=1, control="concurrency")
    # Synthetic latencies spread around the truth's mean (Little's law: k / throughput), so
    # each stage holds its level: within p95 <= 75 ms up to 4 in flight, past it above.
    rates = [closed_loop.throughput_rps(k, slots, service_ms) for k in levels]
    latency = [1000.0 * k / r for k, r in zip(levels, rates, strict=True)]
    # synthetic_records offers each stage's `rps`: give it the throughput, then record the
    # levels in the plan the analysis reads.
    rate_plan = RampPlan(tuple(Stage(r, 6) for r in rates), warmup_seconds=1)
    path = write_run(tmp_path, rate_plan, synthetic_records(rate_plan, latency, seed=3))
    import json

    meta = json.loads((path / "run.json").read_text())
    meta["plan"] = plan.to_dict()
    (path / "run.json").write_text(json.dumps(meta))
    return path


def test_analysis_interpolates_concurrency_between_closed_loop_stages(tmp_path: Path) -> None:
    # 4 slots of 50 ms, p95 <= 75 ms: truth 4 in flight, at 80 requests/s.
    path = _closed_loop_run(tmp_path, [1, 2, 4, 8, 6, 5], 4, 50.0)
    a = analyze_run(load_run(path), parse_slo(["p95<=75ms"]), 0.5)
    c = a.concurrency
    assert c is not None and c.basis == "measured" and c.method == "interpolated"
    assert c.interval_per_instance == (4.0, 5.0)
    assert 4.0 <= (c.per_instance or 0) <= 5.0
    assert c.throughput_rps_per_instance == pytest.approx(80, rel=0.05)
    rec = a.recommendation
    assert rec is not None
    assert rec.concurrency_metric == "SageMakerVariantConcurrentRequestsPerModelHighResolution"
    assert rec.concurrency_target_value == pytest.approx((c.per_instance or 0) * 0.5)
    assert "measured with closed-loop stages" in (rec.concurrency_formula or "")
    # The stage table says what each stage held.
    assert [s.concurrency for s in a.stages] == [1, 2, 4, 8, 6, 5]
    assert not any(s.generator_limited for s in a.stages)


def test_rate_controlled_run_gives_concurrency_by_littles_law(tmp_path: Path) -> None:
    plan = RampPlan(tuple(Stage(r, 5) for r in (20, 40, 60, 80, 100)), warmup_seconds=1)
    latency = [30.0, 30.0, 30.0, 200.0, 400.0]
    path = write_run(tmp_path, plan, synthetic_records(plan, latency, seed=2))
    a = analyze_run(load_run(path), parse_slo(["p95<=100ms"]), 0.5)
    c = a.concurrency
    assert c is not None and c.basis == "littles_law"
    ok = next(s for s in a.stages if s.index == a.capacity.passing_stage)
    bad = next(s for s in a.stages if s.index == a.capacity.failing_stage)
    # L = throughput x mean latency, per stage: the interval is the bracketing stages'.
    assert c.interval_per_instance == pytest.approx(
        (ok.achieved_rps * (ok.mean_ms or 0) / 1000, bad.achieved_rps * (bad.mean_ms or 0) / 1000))
    assert a.recommendation is not None
    assert "Little's law" in (a.recommendation.concurrency_formula or "")


def test_per_copy_names_the_inference_component_metrics() -> None:
    rec = recommend(50.0, 0.5, concurrency_per_instance=6.0, per_copy=True)
    assert rec.metric == "SageMakerInferenceComponentInvocationsPerCopy"
    assert rec.concurrency_metric == (
        "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution")
    assert rec.concurrency_target_value == 3.0
    assert "per copy" in rec.formula and "per copy" in (rec.concurrency_formula or "")
    assert recommend(50.0, 0.5).concurrency_target_value is None


def test_concurrency_none_without_a_passing_stage(tmp_path: Path) -> None:
    plan = RampPlan(tuple(Stage(r, 5) for r in (20, 40)), warmup_seconds=1)
    path = write_run(tmp_path, plan, synthetic_records(plan, [300.0, 400.0], seed=2))
    run = load_run(path)
    stages = stage_stats(run.seconds, run.plan, parse_slo(["p95<=100ms"]))
    c = concurrency_at_slo(stages, capacity_at_slo(stages, 1))
    assert (c.method, c.per_instance) == ("none", None)


# --- bad input: one line, exit 2 ----------------------------------------------------------------


@pytest.mark.parametrize(("extra", "message"), [
    (["--search", "fixed", "--max-concurrency", "8"], "--search fixed makes no sense"),
    (["--max-rps", "100", "--max-concurrency", "8"], "--start-rps/--max-rps makes no sense"),
    (["--arrivals", "poisson", "--max-concurrency", "8"], "--arrivals makes no sense"),
    (["--users", "20", "--max-concurrency", "8"], "--users makes no sense"),
    (["--workers", "2", "--max-concurrency", "8"], "--workers/--master makes no sense"),
    ([], "--control concurrency needs --max-concurrency"),
    (["--max-concurrency", "2", "--start-concurrency", "4"], "is below --start-concurrency"),
    (["--max-concurrency", "8", "--start-concurrency", "0"], "--start-concurrency must be >= 1"),
])  # fmt: skip
def test_control_concurrency_bad_flags(extra: list[str], message: str,
                                       capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    code = main(["loadtest", "--url", "http://127.0.0.1:9/invocations", "--control",
                 "concurrency", *extra, "--yes"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("Error: ") and message in err and err.count("\n") == 1, err


def test_other_control_flag_errors(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, message in (
        (["--control", "queue", "--max-rps", "10"], "unknown --control 'queue'"),
        (["--max-rps", "10", "--max-concurrency", "8"], "are for --control concurrency"),
        (["--max-rps", "10", "--inference-component", "ic"],
         "--inference-component needs --endpoint"),
    ):  # fmt: skip
        assert main(["loadtest", "--url", "http://127.0.0.1:9/invocations", *argv]) == 2
        err = capsys.readouterr().err
        assert err.startswith("Error: ") and message in err, err


def test_options_make_a_closed_loop_search() -> None:
    opts = RunOptions(url="http://127.0.0.1:9/invocations", control="concurrency",
                      start_concurrency=2, max_concurrency=32, stage_seconds=10)  # fmt: skip
    plan = opts.load_plan(opts.parse_slo())
    assert isinstance(plan, SearchSettings)
    assert (plan.control, plan.start_rps, plan.max_rps) == ("concurrency", 2, 32)
    assert math.isclose(plan.stage_seconds, 10)


# --- the simulator: 10-second concurrency data, per-copy scaling ----------------------------


def test_concurrency_policy_scales_out_within_the_minute() -> None:
    """A step from 1000 to 3000 requests/min at minute 10 on 2 instances: in flight per
    instance = rps x 0.1 s (Little's law, 100 ms), target 1.0 (10 rps). The 10-second policy
    acts after 3 datapoints (30 s, still minute 10); the 1-minute invocations policy only
    at the end of minute 12; both ask for ceil(50 rps / 10) = 5."""
    from recommender.simulate import ConcurrencyCurve, Policy, simulate, simulate_concurrency
    from recommender.traffic import from_counts

    class Model:
        capacity_rps, max_rps, stat = 20.0, 30.0, "p95"

        def latency_ms(self, x: object) -> object:
            return np.full_like(np.asarray(x, dtype=float), 50.0)

    curve = ConcurrencyCurve(np.array([0.0, 100.0]), np.array([0.0, 10.0]))
    traffic = from_counts([1000.0] * 10 + [3000.0] * 40)
    base = Policy(target_value=1.0, min_capacity=2, max_capacity=10)
    sim = simulate_concurrency(traffic, Model(), curve, base)  # type: ignore[arg-type]
    assert (sim.metric, sim.step_seconds) == ("concurrency", 10)
    first = sim.events[0]
    assert (first.minute, first.kind, first.from_desired, first.to_desired) == (10, "out", 2, 5)
    assert first.invocations_per_instance == pytest.approx(2.5)  # the metric: 2.5 in flight
    minute = simulate(traffic, Model(), Policy(target_value=600.0, min_capacity=2,  # type: ignore[arg-type]
                                               max_capacity=10))  # fmt: skip
    assert minute.events[0].minute == 12
    # 6 minutes of provisioning counted in steps: the 10-second policy serves 2 min sooner.
    ready = int(np.argmax(sim.in_service == 5))
    assert ready == 10 + 6 + 1 and int(np.argmax(minute.in_service == 5)) == 12 + 6 + 1
    assert sim.totals.violating_minutes < minute.totals.violating_minutes


def test_simulate_command_with_the_concurrency_metric(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _closed_loop_run(tmp_path / "run", [1, 2, 4, 8, 6, 5], 4, 50.0)
    import json

    meta = json.loads((path / "run.json").read_text())
    meta["target"]["inference_component"] = "ic"  # a run on a component: per copy
    (path / "run.json").write_text(json.dumps(meta))
    code = main(["simulate", str(path), "--metric", "concurrency", "--pattern", "step",
                 "--peak-rps", "400", "--min-rps", "40", "--slo", "p95<=75ms"])  # fmt: skip
    out = capsys.readouterr().out
    assert code in (0, 1), out
    assert "requests in flight per instance or copy (10-second data; safety factor 0.5" in out
    assert "scale out after 3 x 10 s above target" in out
    data = json.loads((path / "simulation.json").read_text())
    assert (data["metric"], data["step_seconds"]) == ("concurrency", 10)
    a = analyze_run(load_run(path), parse_slo(["p95<=75ms"]), 0.5)
    assert a.concurrency is not None
    assert data["policy"]["target_value"] == pytest.approx(a.concurrency.per_instance * 0.5)
    assert data["endpoint"]["concurrency"]["points"]
    assert main(["simulate", str(path), "--metric", "concurrency", "--pattern", "step",
                 "--peak-rps", "400", "--safety-factor", "auto"]) == 2  # fmt: skip
    assert "sweeps invocation targets" in capsys.readouterr().err


def test_live_line_says_in_flight() -> None:
    from recommender.loadgen.progress import Snapshot, describe

    snap = Snapshot(elapsed=1, stage=0, stages_planned=None, stage_elapsed=1, stage_seconds=4,
                    left_seconds=10, offered_rps=8, achieved_rps=80.0, requests=80, p50_ms=50.0,
                    p95_ms=52.0, errors={}, cpu_percent=None, within_slo=True, in_flight=8)
    line = describe(snap)
    assert "8 in flight" in line and "offered" not in line
