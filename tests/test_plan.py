from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from recommender.errors import ConfigError
from recommender.plan import (
    RampPlan,
    SloTerm,
    linear_ramp,
    load_plan_file,
    parse_slo,
    parse_slo_term,
)


def test_linear_ramp_spaces_rates_evenly_and_sizes_warmup() -> None:
    plan = linear_ramp(10, 50, 5, 30)
    assert [s.rps for s in plan.stages] == [10, 20, 30, 40, 50]
    assert plan.duration == 150
    assert plan.warmup_seconds == 5.0
    assert plan.stage_bounds()[1] == (30, 60)


def test_linear_ramp_rejects_max_below_start() -> None:
    with pytest.raises(ConfigError, match=r"--max-rps \(5\) is below --start-rps \(10\)"):
        linear_ramp(10, 5, 3, 10)


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0, 10, 3, 10), "--start-rps must be > 0"),
        ((1, 10, 0, 10), "--stages must be between 1 and 1000"),
        ((1, 10, 3, 0.5), "seconds must be >= 1"),
    ],
)
def test_linear_ramp_rejects_bad_values(args: tuple[float, float, int, float], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        linear_ramp(*args)


def test_warmup_must_be_shorter_than_stage() -> None:
    with pytest.raises(ConfigError, match="warm-up"):
        linear_ramp(1, 10, 3, 5, warmup_seconds=5)


@pytest.mark.parametrize(
    ("text", "stat", "limit"),
    [
        ("p95<=300ms", "p95", 300.0),
        ("p99 < 1s", "p99", 1000.0),
        ("P99.9<=2.5s", "p99.9", 2500.0),
        ("mean<=200ms", "mean", 200.0),
        ("avg<=500us", "mean", 0.5),
        ("max<=1s", "p100", 1000.0),
    ],
)
def test_parse_slo_term(text: str, stat: str, limit: float) -> None:
    assert parse_slo_term(text) == SloTerm(stat, limit)


@pytest.mark.parametrize("text", ["p95<=fast", "p95>=300ms", "latency<=1s", "p95<=300", ""])
def test_parse_slo_rejects_nonsense_with_an_example(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_slo_term(text)
    assert "p95<=300ms" in info.value.one_line()


def test_parse_slo_several_terms_and_comma_form() -> None:
    slo = parse_slo(["p95<=300ms,p99<=1s", "mean<=100ms"], 0.02)
    assert [str(t) for t in slo.terms] == ["p95<=300ms", "p99<=1000ms", "mean<=100ms"]
    assert slo.max_error_rate == 0.02
    assert str(slo) == "p95<=300ms, p99<=1000ms, mean<=100ms, errors<=2.00%"


def test_parse_slo_refuses_two_limits_on_one_statistic() -> None:
    # Found by mutation testing (analysis.stages.score's zip over the terms' values): two
    # terms of one key kept one value and the analysis raised a traceback.
    twice = (["p95<=100ms", "p95<=200ms"], ["p95<=1s,p99<=2s,p95<=3s"], ["max<=1s", "max<=2s"])
    for texts in twice:
        with pytest.raises(ConfigError, match="twice"):
            parse_slo(texts)
    # A TTFT and an end-to-end p95 are two statistics.
    assert len(parse_slo(["ttft_p95<=1s", "p95<=2s"]).terms) == 2


def test_parse_slo_rejects_bad_error_rate() -> None:
    with pytest.raises(ConfigError, match="--max-error-rate"):
        parse_slo(["p95<=1s"], 1.5)


@given(st.sampled_from(["p50", "p90", "p99", "p99.9", "mean"]), st.integers(1, 100_000))
def test_slo_round_trips_through_its_dict(stat: str, limit: int) -> None:
    slo = parse_slo([f"{stat}<={limit}ms"])
    from recommender.plan import Slo

    assert Slo.from_dict(slo.to_dict()) == slo


def test_plan_file_yaml_stages(tmp_path: Path) -> None:
    f = tmp_path / "plan.yaml"
    f.write_text(
        "stages:\n  - {rps: 5, seconds: 10}\n  - {rps: 9, seconds: 20}\nwarmup_seconds: 1\n"
    )
    plan = load_plan_file(f)
    assert plan == RampPlan.from_dict(plan.to_dict())
    assert [(s.rps, s.seconds) for s in plan.stages] == [(5, 10), (9, 20)]


def test_plan_file_json_linear(tmp_path: Path) -> None:
    f = tmp_path / "plan.json"
    f.write_text('{"start_rps": 10, "max_rps": 30, "stages": 3, "stage_seconds": 10}')
    assert [s.rps for s in load_plan_file(f).stages] == [10, 20, 30]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("stages: [", "cannot parse"),
        ("- 1\n- 2\n", "must hold a mapping"),
        ("max_rps: 3", "missing"),
    ],
)
def test_plan_file_errors(tmp_path: Path, content: str, match: str) -> None:
    f = tmp_path / "plan.yaml"
    f.write_text(content)
    with pytest.raises(ConfigError, match=match):
        load_plan_file(f)


def test_missing_plan_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="plan file not found"):
        load_plan_file(tmp_path / "nope.yaml")
