from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest

from recommender import histograms, runs
from recommender.analysis import analyze_run
from recommender.analysis.capacity import capacity_at_slo, interpolate_crossing
from recommender.analysis.recommend import parse_safety_factor, recommend, target_value
from recommender.analysis.stages import StageStats, measured_window, stage_stats
from recommender.errors import ConfigError, ExitCode, RunDirError
from recommender.plan import RampPlan, Stage, parse_slo
from recommender.report.render import format_summary
from recommender.report.result import result_document
from recommender.report.result import schema as result_schema
from tests.conftest import synthetic_records, update_run_meta, write_run

SLO = parse_slo(["p95<=100ms"])


def test_target_is_aws_formula() -> None:
    assert target_value(200.0, 0.5) == 6000.0
    rec = recommend(187.4, 0.5)
    assert rec.metric == "SageMakerVariantInvocationsPerInstance"
    assert rec.target_value == pytest.approx(187.4 * 0.5 * 60)
    assert "187.40 x 0.5 x 60 = 5622.0" in rec.formula



def test_recommendation_record_field_by_field() -> None:
    rec = recommend(10.0, 0.5)
    assert rec.to_dict() == {
        "metric": "SageMakerVariantInvocationsPerInstance", "target_value": 300.0,
        "safety_factor": 0.5, "rps_per_instance": 10.0,
        "formula": "target = rps_per_instance x safety_factor x 60 = 10.00 x 0.5 x 60 = "
                   "300.0 invocations per instance per minute",
        "concurrency_metric": None, "concurrency_target_value": None,
        "concurrency_formula": None,
    }  # fmt: skip
    # Concurrency measured by closed-loop stages (the default basis).
    rec = recommend(10.0, 0.5, concurrency_per_instance=4.0)
    assert rec.concurrency_metric == "SageMakerVariantConcurrentRequestsPerModelHighResolution"
    assert rec.concurrency_target_value == 2.0
    assert rec.concurrency_formula == (
        "target = concurrency per instance at the SLO x safety_factor = 4.00 x 0.5 = 2.00 "
        "concurrent requests per instance (concurrency at the SLO measured with closed-loop "
        "stages)")  # fmt: skip
    # An inference component: per copy, its own metrics; Little's law as the basis.
    rec = recommend(10.0, 0.25, concurrency_per_instance=4.0, per_copy=True,
                    concurrency_basis="littles_law")  # fmt: skip
    assert rec.metric == "SageMakerInferenceComponentInvocationsPerCopy"
    assert rec.target_value == 150.0 and rec.rps_per_instance == 10.0
    assert rec.formula == ("target = rps_per_copy x safety_factor x 60 = 10.00 x 0.25 x 60 = "
                           "150.0 invocations per copy per minute")  # fmt: skip
    assert rec.concurrency_metric == (
        "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution")  # fmt: skip
    assert rec.concurrency_formula == (
        "target = concurrency per copy at the SLO x safety_factor = 4.00 x 0.25 = 1.00 "
        "concurrent requests per copy (concurrency at the SLO by Little's law: throughput x "
        "mean latency of the bracketing stages)")  # fmt: skip
    assert parse_safety_factor("0.75") == 0.75 and parse_safety_factor("1") == 1.0
    with pytest.raises(ConfigError):
        parse_safety_factor("0")

@pytest.mark.parametrize("factor", [0, -0.5, 1.5])
def test_safety_factor_is_checked(factor: float) -> None:
    with pytest.raises(ConfigError, match="--safety-factor"):
        recommend(100, factor)


def test_interpolation_crosses_at_score_one() -> None:
    assert interpolate_crossing(100, 0.5, 200, 1.5) == 150
    assert interpolate_crossing(100, 0.9, 110, math.inf) == 100
    assert interpolate_crossing(100, 0.5, 90, 3.0) == 100  # failing stage did less work
    assert interpolate_crossing(100, 1.0, 200, 5.0) == 100


def test_measured_window_drops_warmup(ramp: RampPlan) -> None:
    assert list(measured_window(ramp, 0)) == [1, 2, 3, 4]
    assert list(measured_window(ramp, 2)) == [11, 12, 13, 14]


def test_stage_table_and_interpolated_capacity(ramp: RampPlan) -> None:
    records = synthetic_records(ramp, [20, 30, 60, 200, 400])
    stages = stage_stats(records, ramp, SLO)
    assert [s.passed for s in stages] == [True, True, True, False, False]
    assert [s.achieved_rps for s in stages] == [20, 40, 60, 80, 100]
    assert stages[0].requests == 80 and stages[0].seconds == 4
    assert stages[1].p50_ms == pytest.approx(30, rel=0.1)
    cap = capacity_at_slo(stages, instances=2)
    assert cap.method == "interpolated"
    assert cap.passing_stage == 2 and cap.failing_stage == 3
    assert 60 < cap.rps < 80  # type: ignore[operator]
    assert cap.rps_per_instance == pytest.approx(cap.rps / 2)  # type: ignore[operator]
    assert cap.interval_rps_per_instance == (30, 40)


def test_errors_fail_a_stage(ramp: RampPlan) -> None:
    records = synthetic_records(ramp, [20] * 5, error_rate=[0, 0, 0.005, 0.05, 0.2])
    stages = stage_stats(records, ramp, SLO)
    assert [s.passed for s in stages] == [True, True, True, False, False]
    assert stages[3].errors_by_kind == {"HTTP 503": 16}
    assert stages[3].error_rate == pytest.approx(0.05)


def test_no_failing_stage_is_a_lower_bound_with_a_warning(tmp_path: Path, ramp: RampPlan) -> None:
    run = runs.load_run(write_run(tmp_path / "r", ramp, synthetic_records(ramp, [10] * 5)))
    a = analyze_run(run)
    assert a.capacity.method == "lower_bound"
    assert a.capacity.rps_per_instance == 100
    assert "no_failing_stage" in [w.code for w in a.warnings]
    assert "Raise --max-rps" in a.warnings[0].message


def test_first_stage_failing_gives_no_recommendation(tmp_path: Path, ramp: RampPlan) -> None:
    run = runs.load_run(write_run(tmp_path / "r", ramp, synthetic_records(ramp, [500] * 5)))
    a = analyze_run(run)
    assert a.capacity.method == "none" and a.recommendation is None
    assert any("Lower --start-rps" in w.message for w in a.warnings)
    assert a.to_dict()["recommendation"] is None


def test_generator_shortfall_is_flagged(tmp_path: Path, ramp: RampPlan) -> None:
    records = synthetic_records(ramp, [10, 10, 10, 10, 200], achieved=[20, 40, 45, 80, 90])
    a = analyze_run(runs.load_run(write_run(tmp_path / "r", ramp, records)))
    limited = [s.index for s in a.stages if s.generator_limited]
    assert limited == [2]
    assert any(w.code == "generator_limited" and "Stage 3" in w.message for w in a.warnings)


def test_analysis_json_has_the_contract(tmp_path: Path, ramp: RampPlan) -> None:
    run = runs.load_run(
        write_run(tmp_path / "r", ramp, synthetic_records(ramp, [20, 30, 60, 200, 400]))
    )
    d = analyze_run(run, safety_factor=0.4).to_dict()
    stage_keys = {"offered_rps", "achieved_rps", "requests", "successes", "p50_ms", "p90_ms",
                  "p95_ms", "p99_ms", "error_rate", "passed"}  # fmt: skip
    assert stage_keys <= set(d["stages"][0])
    assert {"rps", "instances", "rps_per_instance", "method"} <= set(d["capacity"])
    rec = d["recommendation"]
    assert rec["target_value"] == pytest.approx(d["capacity"]["rps_per_instance"] * 0.4 * 60)
    assert rec["safety_factor"] == 0.4 and "x 60" in rec["formula"]
    assert isinstance(d["warnings"], list)


def test_another_slo_reanalyses_for_free(tmp_path: Path, ramp: RampPlan) -> None:
    run = runs.load_run(
        write_run(tmp_path / "r", ramp, synthetic_records(ramp, [20, 30, 60, 200, 400]))
    )
    strict = analyze_run(run, parse_slo(["p95<=40ms"]))
    loose = analyze_run(run)
    assert strict.capacity.rps < loose.capacity.rps  # type: ignore[operator]


def test_interrupted_run_uses_measured_stages(tmp_path: Path, ramp: RampPlan) -> None:
    records = [r for r in synthetic_records(ramp, [20, 30, 60, 200, 400]) if r["second"] < 13]
    run = runs.load_run(write_run(tmp_path / "r", ramp, records, status="interrupted"))
    a = analyze_run(run)
    # Second 12 is the torn last one: stage 3 keeps second 11 only.
    assert len(a.stages) == 3 and a.stages[-1].seconds == 1
    assert a.warnings[0].code == "incomplete_run"


def test_run_dir_errors(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match="not a run directory"):
        runs.load_run(tmp_path)
    (tmp_path / "run.json").write_text('{"schema_version": 99}')
    with pytest.raises(RunDirError, match="schema_version 99"):
        runs.load_run(tmp_path)


def test_torn_last_line_is_skipped(tmp_path: Path) -> None:
    f = tmp_path / "latency.jsonl"
    f.write_text('{"second": 0}\n{"second": 1}\n{"seco')
    assert runs.read_seconds(f) == [{"second": 0}, {"second": 1}]


@pytest.mark.parametrize(
    "last, warned",
    [
        ({"code": "budget_duration", "why": "--max-duration spent (35s of 35s)"}, True),
        ({"code": "budget_requests", "why": "--max-requests would be exceeded (1000)"}, True),
        ({"code": "precision_reached", "why": "bracket 40-42 rps is 5.0% wide (<= 5%)"}, False),
        # A code decides even when the prose happens to name the option.
        ({"code": "max_rps", "why": "--max-rps 100 passed (--max-duration untouched)"}, False),
        # Run directories from before decisions had codes: the prose decides.
        ({"why": "--max-duration spent (35s of 35s)"}, True),
        ({"why": "bracket 40-42 rps is 5.0% wide (<= 5%)"}, False),
    ],
)
def test_search_stopped_on_its_budget_is_flagged(
    tmp_path: Path, ramp: RampPlan, last: dict[str, str], warned: bool
) -> None:
    path = write_run(tmp_path / "r", ramp, synthetic_records(ramp, [10] * 5))
    decision = {"at": 35.0, "stage": 2, "rps": 60, "outcome": "pass", "reason": "p95 10ms",
                "action": "stop", "next_rps": None, **last}  # fmt: skip
    update_run_meta(path, search={"mode": "adaptive", "decisions": [decision]})
    found = [w for w in analyze_run(runs.load_run(path)).warnings if w.code == "search_budget"]
    assert bool(found) == warned
    if warned:
        assert found[0].message == (
            f"The search stopped before reaching its precision: {last['why']}. "
            "Raise --max-duration (or --max-requests)."
        )


def test_capacity_records_of_each_method_exactly(ramp: RampPlan) -> None:
    """Every field of the Capacity each method returns, with 2 instances (found by mutation
    testing: TESTING.md)."""
    from dataclasses import replace

    from recommender.analysis.capacity import Capacity

    stages = stage_stats(synthetic_records(ramp, [20] * 5), ramp, parse_slo(["p95<=100ms"]))
    assert capacity_at_slo([], instances=2) == Capacity("none", 2, None, None, None, None, None)
    first_fails = [replace(stages[0], passed=False)] + stages[1:]
    assert capacity_at_slo(first_fails, instances=2) == Capacity(
        "none", 2, None, None, None, None, stages[0].index)
    # Played out of order (as the adaptive search does): the best rate is the bound.
    shuffled = [replace(s, index=i) for i, s in enumerate(reversed(stages))]
    top = max(s.achieved_rps for s in stages)
    assert capacity_at_slo(shuffled, instances=2) == Capacity(
        "lower_bound", 2, top, top / 2, None, 0, None)  # fmt: skip
    # Two stages at the same achieved rate: no slope, the crossing is the passing one.
    assert interpolate_crossing(80.0, 0.5, 80.0, 2.0) == 80.0


def test_capacity_json_keeps_its_intervals_as_lists() -> None:
    from recommender.analysis.capacity import Capacity, ConcurrencyAtSlo

    cap = Capacity("interpolated", 2, 70.0, 35.0, (30.0, 40.0), 2, 3, (29.0, 41.0), "m")
    d = cap.to_dict()
    assert (d["interval_rps_per_instance"], d["ci_rps_per_instance"]) == ([30.0, 40.0],
                                                                          [29.0, 41.0])
    none = Capacity("none", 2, None, None, None, None, 0).to_dict()
    assert (none["interval_rps_per_instance"], none["ci_rps_per_instance"]) == (None, None)
    conc = ConcurrencyAtSlo("littles_law", "interpolated", 2.0, (1.5, 2.5), 35.0)
    assert conc.to_dict()["interval_per_instance"] == [1.5, 2.5]
    bound = ConcurrencyAtSlo("measured", "lower_bound", 2.0, None, 35.0)
    assert bound.to_dict()["interval_per_instance"] is None


def stat_stage(index: int, rps: float, score: float, mean_ms: float | None = None,
               concurrency: float | None = None) -> StageStats:
    """A 10 s stage at `rps` (achieved as offered, all successes) with this SLO score."""
    return StageStats(index=index, offered_rps=rps, achieved_rps=rps, seconds=10,
                      requests=int(rps * 10), successes=int(rps * 10), error_rate=0.0,
                      errors_by_kind={}, p50_ms=None, p90_ms=None, p95_ms=None, p99_ms=None,
                      mean_ms=mean_ms, p95_uncorrected_ms=None, slo_values_ms={}, score=score,
                      passed=score <= 1.0, cpu_percent_max=None, generator_limited=False,
                      concurrency=concurrency)  # fmt: skip


def test_concurrency_at_slo_by_littles_law_or_as_measured() -> None:
    from recommender.analysis.capacity import ConcurrencyAtSlo, concurrency_at_slo

    # Rate control: in flight = throughput x mean latency, 40 x 0.05 = 2 and 60 x 0.1 = 6;
    # the score crosses 1.0 half way (0.5 to 1.5): 4 in flight, 2 per instance of 2.
    rate = [stat_stage(0, 40, 0.5, mean_ms=50), stat_stage(1, 60, 1.5, mean_ms=100)]
    cap = capacity_at_slo(rate, instances=2)
    assert (cap.rps, cap.rps_per_instance) == (50, 25)
    assert concurrency_at_slo(rate, cap) == ConcurrencyAtSlo(
        "littles_law", "interpolated", 2.0, (1.0, 3.0), 25.0)
    # Closed loop: the levels the run set, whatever Little's law would say.
    closed = [replace(s, concurrency=c) for s, c in zip(rate, (4.0, 8.0), strict=True)]
    cap = capacity_at_slo(closed, instances=2)
    assert concurrency_at_slo(closed, cap) == ConcurrencyAtSlo(
        "measured", "interpolated", 3.0, (2.0, 4.0), 25.0)
    # No failing stage: the best passing stage's level, a lower bound.
    passing = [replace(closed[0], index=1), replace(closed[0], index=0, concurrency=2.0,
                                                    achieved_rps=30.0)]  # fmt: skip
    cap = capacity_at_slo(passing, instances=2)
    assert concurrency_at_slo(passing, cap) == ConcurrencyAtSlo(
        "measured", "lower_bound", 2.0, None, 20.0)
    # The first stage failed: nothing.
    failed = [stat_stage(0, 40, 1.5, mean_ms=50)]
    assert concurrency_at_slo(failed, capacity_at_slo(failed, instances=2)) == ConcurrencyAtSlo(
        "littles_law", "none", None, None, None)


def test_a_pass_at_the_same_level_to_a_millionth_refutes_a_failure() -> None:
    from recommender.analysis.capacity import refuted

    fail = stat_stage(0, 416.667, 1.2)
    assert refuted([fail, stat_stage(1, 416.6671, 0.8)]) == {0}  # 2.4e-7 apart: the same level
    assert refuted([fail, stat_stage(1, 416.7, 0.8)]) == set()  # 8e-5 above: another level
    assert refuted([fail, stat_stage(1, 416.7, 0.8)], checks={1}) == {0}  # ... played to check


def test_extrapolate_needs_a_good_fit_whose_knee_shows_and_goes_at_most_half_again() -> None:
    from recommender.analysis.capacity import KNEE_SHOWN, MIN_R2, extrapolate
    from recommender.analysis.fit import LatencyFit

    stages = [stat_stage(0, 50, 0.2), stat_stage(1, 100, 0.25)]  # measured: 100 rps
    cap = capacity_at_slo(stages, instances=2)
    assert (cap.method, cap.rps) == ("lower_bound", 100)
    # 20 + 500 / (200 - 100) = 25 ms at the top stage: exactly KNEE_SHOWN x the flat part.
    knee = LatencyFit("p95", 20.0, 500.0, 200.0, MIN_R2, 6, 120.0)
    assert float(knee.latency_ms(np.array([100.0]))[0]) == KNEE_SHOWN * knee.a_ms
    assert extrapolate(cap, [knee], stages) == replace(
        cap, method="model_extrapolation", rps=120.0, rps_per_instance=60.0,
        interval_rps_per_instance=(50.0, 60.0))  # fmt: skip
    # Half again the measured rate at most, itself included; at the measured rate, no.
    assert extrapolate(cap, [replace(knee, x_at_limit=150.0)], stages).rps == 150.0
    for x in (150.01, 100.0):
        assert extrapolate(cap, [replace(knee, x_at_limit=x)], stages) == cap
    # A poor fit (even one whose knee shows), no knee yet, or no crossing: unchanged.
    assert extrapolate(cap, [replace(knee, r2=0.89)], stages) == cap
    assert extrapolate(cap, [replace(knee, b=499.0)], stages) == cap  # 24.99 ms at the top
    assert extrapolate(cap, [replace(knee, x_at_limit=None)], stages) == cap
    # Every SLO term's fit must say so; the lowest crossing is taken.
    assert extrapolate(cap, [knee, replace(knee, r2=0.5)], stages) == cap
    assert extrapolate(cap, [knee, replace(knee, x_at_limit=110.0)], stages).rps == 110.0
    assert extrapolate(cap, [], stages) == cap


def test_safety_factor_message_and_bounds() -> None:
    from recommender.analysis.recommend import check_safety_factor, parse_safety_factor

    assert check_safety_factor(1.0) == 1.0 and parse_safety_factor(" Auto ") is None
    with pytest.raises(ConfigError) as e:
        check_safety_factor(1.5)
    assert (e.value.message, e.value.hint) == (
        "--safety-factor must be in (0, 1] (got 1.5)", "AWS recommends 0.5 to start")
    with pytest.raises(ConfigError) as e:
        parse_safety_factor("half")
    assert (e.value.message, e.value.hint) == (
        "--safety-factor must be a number or auto (got 'half')",
        "e.g. 0.5, or auto with --traffic or --pattern")


def with_lag(records: list[dict[str, Any]], lag_ms_by_stage: list[float]) -> list[dict[str, Any]]:
    """The records with the generator's own lateness: every request sent that late."""
    out = []
    for r in records:
        hist = histograms.new()
        for _ in range(r["requests"]):
            histograms.record_ms(hist, lag_ms_by_stage[r["stage"]])
        out.append({**r, "lag_us": histograms.encode(hist), "wait_us": histograms.encode(hist)})
    return out


def test_a_stage_the_generator_sent_late_is_left_out_and_said(
    tmp_path: Path, ramp: RampPlan
) -> None:
    """p95 <= 100 ms: stage 4's failure came with the generator 30 ms late (past 10 ms, a
    tenth of the limit): it is left out, so the estimate is bracketed by stages 3 and 5, and
    the warning says so with its hint; the lateness is in the stage table, markdown and
    --json."""
    # Stage 1 passed 30 ms late: a pass stands (lateness only added to its latency).
    records = with_lag(synthetic_records(ramp, [20, 30, 60, 200, 400]), [30, 1, 2, 30, 5])
    path = write_run(tmp_path / "r", ramp, records)
    a = analyze_run(runs.load_run(path))
    assert [s.untrusted for s in a.stages] == [None, None, None, "generator_late", None]
    assert [s.lag_p95_ms for s in a.stages] == pytest.approx([30, 1, 2, 30, 5], rel=0.01)
    assert (a.capacity.passing_stage, a.capacity.failing_stage) == (2, 4)
    (w,) = [w for w in a.warnings if w.code == "generator_late"]
    assert w.message.startswith("Stage 4: the load generator fell behind (its own lateness "
                                "p95 up to 30 ms; CPU-starved?)")  # fmt: skip
    assert w.message.endswith("Add --workers, or run on a quieter machine, then re-run.")
    assert a.verdict == "recommendation"
    text = format_summary(a)
    assert "late ms" in text and "FAIL (left out: generator_late)" in text
    doc = result_document("analyze", a, path, exit_code=0)
    jsonschema.validate(doc, result_schema())
    assert doc["generator"]["late_limit_ms"] == pytest.approx(10.0)
    assert [s["late"] for s in doc["generator"]["stages"]] == [True, False, False, True, False]
    # A run recorded before the lateness was: no column, nothing left out.
    old = analyze_run(runs.load_run(write_run(tmp_path / "old", ramp, synthetic_records(
        ramp, [20, 30, 60, 200, 400]))))  # fmt: skip
    assert "late ms" not in format_summary(old) and all(s.untrusted is None for s in old.stages)


def test_a_closed_loop_pass_on_fewer_in_flight_than_its_level_is_left_out_and_said(
    tmp_path: Path,
) -> None:
    """Closed loop at 2, 4, 8, 16 in flight, p95 <= 100 ms. Stage 3 answered 110 a second
    at a mean of ~40 ms: by Little's law it held ~4.4 of 8 (a starved generator), so its
    pass is left out and the concurrency is bracketed by stages 2 and 4; the held level is
    in the stage table and --json. A failure on less load than its level stands."""
    plan = RampPlan(tuple(Stage(r, 5) for r in (2, 4, 8, 16)), 1, control="concurrency")
    records = synthetic_records(plan, [20, 20, 40, 120], achieved=[100, 200, 110, 100])
    a = analyze_run(runs.load_run(write_run(tmp_path / "r", plan, records)))
    held = [s.held_in_flight for s in a.stages]
    assert held == pytest.approx([2.0, 4.0, 4.4, 12.0], rel=0.05)
    assert [s.passed for s in a.stages] == [True, True, True, False]
    assert [s.untrusted for s in a.stages] == [None, None, "generator_late", None]
    assert (a.capacity.passing_stage, a.capacity.failing_stage) == (1, 3)
    (w,) = [w for w in a.warnings if w.code == "generator_late"]
    assert w.message.startswith(f"Stage 3: the load generator held fewer requests in flight "
                                f"than the level ({held[2]:.1f} of 8: slow to turn")  # fmt: skip
    assert w.message.endswith("Run on a quieter or faster machine (closed-loop load runs in "
                              "one Locust process), then re-run.")  # fmt: skip
    assert "8 (held 4.4)" in format_summary(a)
    doc = result_document("analyze", a, runs.load_run(tmp_path / "r").path, exit_code=0)
    jsonschema.validate(doc, result_schema())
    # Stage 4 held 12 of 16 too (late), and its failure stands: more load would only miss more.
    assert [s["late"] for s in doc["generator"]["stages"]] == [False, False, True, True]
    assert doc["generator"]["stages"][2]["held_in_flight"] == pytest.approx(held[2])


def test_a_search_stopped_by_the_generators_lateness_recommends_nothing(
    tmp_path: Path, ramp: RampPlan
) -> None:
    records = with_lag(synthetic_records(ramp, [20, 30, 60, 200, 400]), [1, 1, 2, 30, 30])
    path = write_run(tmp_path / "r", ramp, records)
    why = ("the load generator fell behind (p95 30 ms late; CPU-starved?) in two stages in a "
           "row: no capacity drawn from them; add --workers, or run on a quieter machine")
    decision = {"at": 25.0, "stage": 4, "rps": 100, "outcome": "generator_late",
                "reason": "the load generator fell behind (p95 30 ms late; CPU-starved?)",
                "action": "stop", "next_rps": None, "why": why, "code": "generator_late"}
    update_run_meta(path, search={"mode": "adaptive", "decisions": [decision]})
    a = analyze_run(runs.load_run(path))
    assert a.verdict == "generator_late" and a.recommendation is None
    assert a.exit_code == ExitCode.FAILED
    assert format_summary(a).startswith(f"No recommendation: {why}.")


@pytest.mark.parametrize(("apart", "flagged"), [(0.0, False), (0.01, False), (-0.01, False),
                                                (0.025, True), (-0.03, True), (0.10, True)])
def test_client_and_server_counts_more_than_2_percent_apart_are_flagged(
    tmp_path: Path, apart: float, flagged: bool
) -> None:
    """README: "client and server counts that disagree by more than 2% are flagged". One
    60 s stage starting on a whole minute, so exactly one CloudWatch period lies inside it;
    its Invocations are the client's successes that minute, `apart` off."""
    plan = RampPlan((Stage(100, 60),), warmup_seconds=0)
    records = synthetic_records(plan, [20])
    run_dir = write_run(tmp_path / "r", plan, records)
    update_run_meta(run_dir, started_at="2026-01-01T00:00:00.000+00:00",
                    ended_at="2026-01-01T00:01:00.000+00:00")  # fmt: skip
    client = sum(r["ok"] for r in records)
    invocations = client * (1 + apart)
    (run_dir / runs.CLOUDWATCH_FILE).write_text(
        "metric,stat,timestamp,value,unit,period\n"
        f"Invocations,Sum,2026-01-01T00:00:00+00:00,{invocations:g},Count,60\n"
    )
    a = analyze_run(runs.load_run(run_dir))
    mismatches = [w for w in a.warnings if w.code == "client_server_mismatch"]
    assert a.server and a.server[0]["client_successes"] == client  # the period was joined
    if flagged:
        (w,) = mismatches
        assert w.message == (
            f"Stage 1: CloudWatch counted {invocations:.0f} invocations, the client {client} "
            f"successes ({abs(apart):.1%} apart). Check the endpoint and variant, or re-collect "
            "later with `recommender collect` if the data was still arriving.")
    else:
        assert mismatches == []
