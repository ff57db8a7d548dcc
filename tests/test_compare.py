"""`recommender compare`: capacity regressions beyond the noise fail, the rest pass."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest

from recommender import runs
from recommender.analysis import Analysis
from recommender.analysis.capacity import Capacity
from recommender.cli import main
from recommender.compare import (
    Candidate,
    Comparison,
    RunSide,
    _bounds,
    _rel,
    compare_runs,
    equal_load,
    p95_at,
    parse_threshold,
    rank,
    stage_points,
)
from recommender.errors import ConfigError, InsufficientDataError
from recommender.plan import parse_slo
from tests.conftest import step_run, update_run_meta


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("compare")
    # Stages 40..130 rps: capacity between 100 and 110 (base), 70 and 80 (30% less),
    # 90 and 100 (a stage less: intervals touch).
    return {
        "base": step_run(root / "base", passing_up_to=100, seed=1),
        "same": step_run(root / "same", passing_up_to=100, seed=2),
        "slower": step_run(root / "slower", passing_up_to=70, seed=3),
        "close": step_run(root / "close", passing_up_to=90, seed=4),
    }


def test_same_capacity_exits_0(capsys: pytest.CaptureFixture[str], dirs: dict[str, Path]) -> None:
    code, out, err = run_cli(capsys, "compare", str(dirs["base"]), str(dirs["same"]))
    assert (code, err) == (0, "")
    assert out.splitlines()[-1].startswith("OK: capacity per instance changed ")
    assert "capacity (rps/instance)" in out and "target value" in out
    assert "p95 at " in out and "rps/instance" in out


def test_30_percent_less_capacity_exits_1(
    capsys: pytest.CaptureFixture[str], dirs: dict[str, Path]
) -> None:
    code, out, _ = run_cli(capsys, "compare", str(dirs["base"]), str(dirs["slower"]))
    assert code == 1
    # Brackets [100, 110] and [70, 80]; the 95% intervals reach down 7% under the knee's pass
    # (analysis.bootstrap.chance_low): [93.5, 110] and [65.4, 80], 14.4% apart at the least,
    # more than the 10% allowed.
    assert out.splitlines()[-1].startswith("REGRESSION: capacity per instance fell 2")
    assert "14.4% beyond both runs' intervals (allowed 10%)" in out


def test_threshold_is_applied_beyond_the_intervals(
    capsys: pytest.CaptureFixture[str], dirs: dict[str, Path]
) -> None:
    code, _, _ = run_cli(capsys, "compare", str(dirs["base"]), str(dirs["slower"]),
                         "--max-regression", "0.25")  # fmt: skip
    assert code == 0
    # About 10% less, but the intervals touch: inside the noise, even with nothing allowed.
    code, out, _ = run_cli(capsys, "compare", str(dirs["base"]), str(dirs["close"]),
                           "--max-regression", "0%")  # fmt: skip
    assert code == 0, out


def test_json_output(capsys: pytest.CaptureFixture[str], dirs: dict[str, Path]) -> None:
    code, out, _ = run_cli(capsys, "compare", str(dirs["base"]), str(dirs["slower"]), "--json")
    assert code == 1
    data = json.loads(out)
    assert set(data) == {"schema", "slo", "base", "new", "load_rps_per_instance", "load_basis",
                         "change", "drop_beyond_intervals", "max_regression",
                         "regression"}  # fmt: skip
    assert set(data["base"]) == {"dir", "name", "method", "rps_per_instance", "target_value",
                                 "interval_rps_per_instance", "p95_at_load_ms"}  # fmt: skip
    assert data["base"]["interval_rps_per_instance"] == [100.0, 110.0]
    assert data["new"]["interval_rps_per_instance"] == [70.0, 80.0]
    assert set(data["change"]) == {"rps_per_instance", "target_value", "p95_at_load"}
    assert data["change"]["rps_per_instance"] < -0.25
    assert data["change"]["target_value"] == pytest.approx(data["change"]["rps_per_instance"])
    assert data["drop_beyond_intervals"] == pytest.approx((100 / 1.07 - 80) / (100 / 1.07))
    assert data["max_regression"] == 0.1 and data["regression"] is True
    # Equal load: BASE's capacity x 0.5, where both runs measured latency.
    base_cap = data["base"]["rps_per_instance"]
    assert data["load_rps_per_instance"] == pytest.approx(base_cap * 0.5)
    assert data["base"]["p95_at_load_ms"] < 100 and data["new"]["p95_at_load_ms"] < 100


def test_equal_load_stays_inside_both_runs(dirs: dict[str, Path]) -> None:
    c = compare_runs(runs.load_run(dirs["base"]), runs.load_run(dirs["base"]), 0.1, 0.99)
    assert c.load_basis == "BASE capacity x 0.99 (where its target runs an instance)"
    c = compare_runs(runs.load_run(dirs["base"]), runs.load_run(dirs["base"]), 0.1, 0.2)
    # 102 x 0.2 is below the lowest stage (40 rps): latency is not extrapolated.
    assert c.load_rps_per_instance == 40.0
    assert c.load_basis == "the lowest throughput both runs measured"
    assert c.change["rps_per_instance"] == 0.0 and not c.regression


@pytest.mark.parametrize(
    ("text", "value"), [("10%", 0.1), ("0.1", 0.1), ("12.5 %", 0.125), ("0", 0.0), ("0%", 0.0)]
)
def test_parse_threshold(text: str, value: float) -> None:
    assert parse_threshold(text) == pytest.approx(value)


@pytest.mark.parametrize("text", ["abc", "150%", "10", "-5%", "1", "", "nan"])
def test_parse_threshold_rejects(text: str) -> None:
    with pytest.raises(ConfigError, match="cannot read --max-regression"):
        parse_threshold(text)


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--max-regression", "ten"], 2, "Error: cannot read --max-regression 'ten' "
         "(write a share below 100%, e.g. \"10%\" or 0.1)"),
        (["--max-regression", "10"], 2, "Error: cannot read --max-regression '10' "
         "(write \"10%\" for percent, or a share like 0.1)"),
    ],
)  # fmt: skip
def test_bad_threshold_is_one_line(
    capsys: pytest.CaptureFixture[str], dirs: dict[str, Path], argv: list[str], code: int,
    message: str,
) -> None:  # fmt: skip
    got, out, err = run_cli(capsys, "compare", str(dirs["base"]), str(dirs["same"]), *argv)
    assert (got, out) == (code, "")
    assert err == message + "\n"


def test_missing_run_is_one_line(capsys: pytest.CaptureFixture[str], dirs: dict[str, Path]) -> None:
    code, _, err = run_cli(capsys, "compare", str(dirs["base"]), "/nonexistent-run")
    assert code == 1
    assert err.startswith("Error: /nonexistent-run is not a run directory")
    assert err.count("\n") == 1


# --- the pieces, on hand-built analyses (pure) -----------------------------------------------


def analysis(
    stages: Sequence[tuple[float, float | None]] = (),
    instances: int = 1,
    method: str = "interpolated",
    rps: float | None = None,
    interval: tuple[float, float] | None = None,
    ci: tuple[float, float] | None = None,
) -> Analysis:
    """What compare reads of an analysis: the stages' (throughput, p95) and the capacity."""
    cap = Capacity(method=method, instances=instances, rps=None, rps_per_instance=rps,
                   interval_rps_per_instance=interval, passing_stage=None, failing_stage=None,
                   ci_rps_per_instance=ci)  # fmt: skip
    rows = [SimpleNamespace(achieved_rps=x, p95_ms=p) for x, p in stages]
    return cast(Analysis, SimpleNamespace(capacity=cap, stages=rows))


def test_latency_curve_per_instance_sorted_by_throughput() -> None:
    a = analysis([(120.0, 80.0), (40.0, 20.0), (80.0, None), (60.0, 30.0)], instances=2)
    assert stage_points(a) == [(20.0, 20.0), (30.0, 30.0), (60.0, 80.0)]
    assert p95_at(a, 45.0) == pytest.approx(55.0)  # halfway from (30, 30) to (60, 80)
    assert p95_at(a, 20.0) == 20.0 and p95_at(a, 60.0) == 80.0
    assert p95_at(a, 19.9) is None and p95_at(a, 60.1) is None  # never extrapolated
    assert p95_at(analysis([(50.0, None)]), 50.0) is None
    assert stage_points(analysis()) == []


@pytest.mark.parametrize(
    ("base_rps", "factor", "load", "basis"),
    [
        (100.0, 0.5, 50.0, "BASE capacity x 0.5 (where its target runs an instance)"),
        (100.0, 0.8, 70.0, "the highest throughput both runs measured"),  # 80 > 70
        (100.0, 0.7, 70.0, "BASE capacity x 0.7 (where its target runs an instance)"),
        (100.0, 0.3, 30.0, "BASE capacity x 0.3 (where its target runs an instance)"),
        (100.0, 0.2, 30.0, "the lowest throughput both runs measured"),  # 20 < 30
        (None, 0.5, 70.0, "the highest throughput both runs measured"),
    ],
)
def test_equal_load_is_base_target_kept_inside_both_ranges(
    base_rps: float | None, factor: float, load: float, basis: str
) -> None:
    base = analysis([(20.0, 10.0), (70.0, 40.0), (90.0, 90.0)], rps=base_rps)
    new = analysis([(60.0, 20.0), (140.0, 70.0)], instances=2)  # 30 .. 70 per instance
    assert equal_load(base, new, factor) == pytest.approx((load, basis))
    assert isinstance(equal_load(base, new, factor)[0], float)


def test_equal_load_without_common_throughput() -> None:
    base = analysis([(20.0, 10.0), (40.0, 40.0)], rps=30.0)
    assert equal_load(base, analysis([(50.0, 10.0)]), 0.5) == (
        None, "the runs measured no throughput in common")  # fmt: skip
    # Touching at 40: that is the load, from above or below.
    assert equal_load(base, analysis([(40.0, 10.0)]), 0.5) == (40.0, "the lowest throughput "
                                                               "both runs measured")  # fmt: skip
    assert equal_load(base, analysis([(40.0, 10.0)]), 0.9) == (40.0, "the lowest throughput "
                                                               "both runs measured")  # fmt: skip
    top = analysis([(20.0, 10.0), (40.0, 40.0)], rps=100.0)
    assert equal_load(top, analysis([(40.0, 10.0)]), 0.5) == (40.0, "the highest throughput "
                                                              "both runs measured")  # fmt: skip
    assert equal_load(base, analysis([(40.0, None)]), 0.5) == (
        None, "a run has no stage with latency")  # fmt: skip
    assert equal_load(analysis(), base, 0.5) == (None, "a run has no stage with latency")


def test_bounds_a_run_is_consistent_with() -> None:
    stages = [(30.0, 50.0), (60.0, 500.0)]
    # The confidence interval first, then the bracket, per instance as recorded.
    assert _bounds(analysis(stages, rps=40.0, interval=(30.0, 60.0), ci=(28.0, 55.0))) == (
        28.0, 55.0)  # fmt: skip
    assert _bounds(analysis(stages, rps=40.0, interval=(30.0, 60.0))) == (30.0, 60.0)
    # A lower bound says nothing about how high capacity goes.
    assert _bounds(analysis(stages, method="lower_bound", rps=60.0)) == (60.0, math.inf)
    # No capacity: below the first stage's throughput per instance.
    assert _bounds(analysis(stages, method="none", instances=2)) == (0.0, 15.0)
    assert _bounds(analysis(method="lower_bound")) == (0.0, math.inf)


def test_comparison_json_keeps_a_missing_interval_as_null() -> None:
    side = RunSide(dir="d", name=None, method="none", rps_per_instance=None,
                   interval_rps_per_instance=None, target_value=None,
                   p95_at_load_ms=None)  # fmt: skip
    with_iv = replace(side, interval_rps_per_instance=(1.0, 2.0))
    c = Comparison(slo="p95<=100ms", base=with_iv, new=side, load_rps_per_instance=None,
                   load_basis="x", change={}, drop_beyond_intervals=None, max_regression=0.1,
                   regression=False)  # fmt: skip
    d = c.to_dict()
    assert d["schema"] == "recommender-comparison/1"
    assert d["base"]["interval_rps_per_instance"] == [1.0, 2.0]
    assert d["new"]["interval_rps_per_instance"] is None


def candidate(name: str, rps: float | None, target: float | None, usd: float = 1.0,
              day: float | None = None) -> Candidate:  # fmt: skip
    return Candidate(instance_type=name, endpoint="e", run_dir="r", status="complete",
                     method="interpolated", rps_per_instance=rps,
                     interval_rps_per_instance=(rps * 0.9, rps * 1.1) if rps else None,
                     target_value=target, usd_per_hour=usd, price_source="list",
                     instances_at_peak=None, min_capacity=None, max_capacity=None,
                     day_instance_hours=None, day_cost_usd=day, day_violating_minutes=None,
                     curve=((1.0, 2.0), (3.0, 4.0)))  # fmt: skip


def test_candidate_price_per_million_requests_and_json() -> None:
    c = candidate("ml.m5.large", 10.0, 300.0, usd=0.36)
    # $0.36 an hour over 10 rps x 3600 s = 36,000 requests: $10 per million.
    assert c.meets_slo and c.usd_per_million == pytest.approx(10.0)
    d = c.to_dict()
    assert d["interval_rps_per_instance"] == [9.0, 11.0] and d["curve"] == [[1.0, 2.0], [3.0, 4.0]]
    assert d["meets_slo"] is True and d["usd_per_million_requests"] == pytest.approx(10.0)
    assert d["instance_type"] == "ml.m5.large" and d["usd_per_hour"] == 0.36
    none = candidate("ml.t2.medium", None, None)
    assert not none.meets_slo and none.usd_per_million is None
    assert none.to_dict()["interval_rps_per_instance"] is None
    assert none.to_dict()["meets_slo"] is False
    assert not candidate("a", 10.0, None).meets_slo and not candidate("a", 0.0, 0.0).meets_slo
    assert candidate("a", 10.0, None).usd_per_million is None


def test_rank_meeting_the_slo_first_then_day_cost_then_cost_per_request_then_name() -> None:
    fails = candidate("a-fails", None, None, day=1.0)
    cheap_day = candidate("z-cheap-day", 10.0, 300.0, usd=5.0, day=2.0)
    tie_dear = candidate("b-tie", 10.0, 300.0, usd=2.0, day=3.0)  # $55.6 per million
    tie_cheap = candidate("c-tie", 10.0, 300.0, usd=1.0, day=3.0)  # $27.8 per million
    no_day = candidate("d-no-day", 10.0, 300.0, usd=0.1)
    same_b = candidate("e-same", 10.0, 300.0, usd=0.1)
    got = rank([fails, same_b, no_day, tie_dear, tie_cheap, cheap_day])
    assert [c.instance_type for c in got] == [
        "z-cheap-day", "c-tie", "b-tie", "d-no-day", "e-same", "a-fails"]  # fmt: skip
    # Without a day's cost: by cost per request, then name.
    got = rank([candidate("y", 10.0, 300.0, usd=2.0), candidate("x", 10.0, 300.0, usd=3.0),
                candidate("w", 10.0, 300.0, usd=2.0)])  # fmt: skip
    assert [c.instance_type for c in got] == ["w", "y", "x"]
    # Two that fail alike (no day cost, no price per request): by name.
    got = rank([candidate("q", None, None), candidate("p", None, None)])
    assert [c.instance_type for c in got] == ["p", "q"]


def test_both_runs_are_judged_on_base_slo_and_described_side_by_side(tmp_path: Path) -> None:
    base = step_run(tmp_path / "base", passing_up_to=100)
    # NEW's own SLO (p95 <= 1 s) passes every stage; BASE's fails it above 70 rps.
    new = update_run_meta(step_run(tmp_path / "new", passing_up_to=70, seed=2), name="new-one",
                          slo=parse_slo(["p95<=1000ms"]).to_dict())  # fmt: skip
    c = compare_runs(runs.load_run(base), runs.load_run(new), 0.1, 0.75)
    assert c.slo == "p95<=100ms, errors<=1.00%"
    assert (c.base.dir, c.base.name, c.base.method) == (str(base), "synthetic", "interpolated")
    assert (c.new.dir, c.new.name, c.new.method) == (str(new), "new-one", "interpolated")
    assert c.new.interval_rps_per_instance == (70.0, 80.0)
    assert c.base.rps_per_instance is not None and c.base.target_value is not None
    assert c.base.target_value == pytest.approx(c.base.rps_per_instance * 0.75 * 60)
    assert c.load_basis == "BASE capacity x 0.75 (where its target runs an instance)"
    assert c.new.rps_per_instance is not None and c.new.target_value is not None
    assert c.new.target_value == pytest.approx(c.new.rps_per_instance * 0.75 * 60)
    assert c.regression  # [93.5, 110] against [65.4, 80] at best
    assert c.new.p95_at_load_ms is not None and c.base.p95_at_load_ms is not None
    assert c.change["p95_at_load"] == pytest.approx(
        c.new.p95_at_load_ms / c.base.p95_at_load_ms - 1)  # fmt: skip
    # A drop exactly at the limit is allowed: only beyond it is a regression.
    assert c.drop_beyond_intervals is not None
    at_limit = compare_runs(runs.load_run(base), runs.load_run(new), c.drop_beyond_intervals, 0.75)
    assert at_limit.drop_beyond_intervals == c.drop_beyond_intervals and not at_limit.regression
    # A NEW lower bound (no stage failed) says nothing of how high capacity goes: no drop.
    higher = step_run(tmp_path / "higher", passing_up_to=1000, seed=3)
    c = compare_runs(runs.load_run(base), runs.load_run(higher))
    assert c.new.method == "lower_bound"
    assert c.drop_beyond_intervals is None and not c.regression

    # A NEW run that measured other rates, all failing: no load in common, no target.
    far = step_run(tmp_path / "far", passing_up_to=0, rates=(300, 400))
    c = compare_runs(runs.load_run(base), runs.load_run(far))
    assert (c.load_rps_per_instance, c.load_basis) == (None, "the runs measured no throughput "
                                                             "in common")  # fmt: skip
    assert (c.new.method, c.new.target_value, c.new.p95_at_load_ms) == ("none", None, None)
    assert c.change == {"rps_per_instance": None, "target_value": None, "p95_at_load": None}
    with pytest.raises(InsufficientDataError) as info:
        compare_runs(runs.load_run(far), runs.load_run(base))
    assert info.value.one_line() == (
        f"BASE run {far} has no capacity estimate within p95<=100ms, errors<=1.00% (compare "
        "against a run with at least one stage within the SLO)")  # fmt: skip


def test_relative_change() -> None:
    assert _rel(75.0, 100.0) == -0.25 and _rel(150.0, 100.0) == 0.5
    assert _rel(None, 100.0) is None and _rel(75.0, None) is None and _rel(75.0, 0.0) is None
    assert _rel(2.0, 1.0) == 1.0  # a base of 1 is a number like any other


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("1", 'write "1%" for percent, or a share like 0.1'),
        ("99.5", 'write "99.5%" for percent, or a share like 0.1'),
        ("100", 'write a share below 100%, e.g. "10%" or 0.1'),
        ("100%", 'write a share below 100%, e.g. "10%" or 0.1'),
        ("0.999%", None),  # fine: 0.00999
    ],
)
def test_parse_threshold_hints(text: str, hint: str | None) -> None:
    if hint is None:
        assert parse_threshold(text) == pytest.approx(0.00999)
        return
    with pytest.raises(ConfigError) as info:
        parse_threshold(text)
    assert info.value.hint == hint
