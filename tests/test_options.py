"""`loadtest` and `run` share one options object: its rules, its defaults, and the flags
declared once for both commands."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from recommender.cli import app, main
from recommender.errors import ConfigError
from recommender.options import RunOptions
from recommender.plan import RampPlan, SearchSettings

URL = "http://127.0.0.1:9/invocations"


def test_loadtest_and_run_take_the_same_flags() -> None:
    group = typer.main.get_command(app)
    ctx = typer.Context(group)
    flags = {}
    for name in ("loadtest", "run"):
        command = group.get_command(ctx, name)  # type: ignore[attr-defined]
        assert command is not None
        flags[name] = {opt for p in command.params for opt in p.opts}
    assert flags["loadtest"] == flags["run"] - {"--json"}  # run's own: its result as JSON
    assert {"--url", "--endpoint", "--slo", "--workers", "--apply", "--yes"} <= flags["run"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "give either --url or --endpoint"),
        ({"url": URL, "endpoint": "e"}, "give either --url or --endpoint"),
        ({"url": URL, "instances": 0}, "--instances must be >= 1 (got 0)"),
        ({"url": URL, "workers": -1}, "--workers must be >= 0 (got -1)"),
        # Checked whatever the plan reads (a one-stage ramp never reads --max-rps).
        ({"url": URL, "search": "fixed", "stages": 1, "max_rps": float("nan")},
         "--max-rps must be > 0 (got nan)"),
    ],
)
def test_the_options_refuse_what_cannot_be_run(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        RunOptions(**kwargs)  # type: ignore[arg-type]
    assert err.value.message == message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"master": True}, "--master needs --expect-workers N"),
        ({"expect_workers": 2}, "--expect-workers needs --master"),
    ],
)
def test_worker_flags_are_checked_together(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        RunOptions(url=URL, **kwargs).check_generator()  # type: ignore[arg-type]
    assert err.value.message == message
    RunOptions(url=URL, master=True, expect_workers=2).check_generator()  # a valid pair


def test_stage_length_and_budget_follow_where_the_endpoint_runs() -> None:
    aws = RunOptions(endpoint="e")
    assert (aws.on_aws, aws.stage_length, aws.duration_budget) == (True, 180.0, 7200.0)
    # A runtime URL of one's own (the demo, the tests) is not AWS: no CloudWatch minutes.
    emulated = RunOptions(endpoint="e", endpoint_url="http://127.0.0.1:1")
    assert (emulated.on_aws, emulated.stage_length, emulated.duration_budget) == (
        False, 30.0, 1800.0)  # fmt: skip
    given = RunOptions(endpoint="e", stage_seconds=60, max_duration=600)
    assert (given.stage_length, given.duration_budget) == (60.0, 600.0)


def test_the_plan_is_the_search_or_the_fixed_ramp() -> None:
    options = RunOptions(url=URL, start_rps=10, max_rps=40, stages=4, stage_seconds=20,
                         abort_latency="900ms", slo=("p95<=300ms",))  # fmt: skip
    slo = options.parse_slo()
    search = options.load_plan(slo)
    assert isinstance(search, SearchSettings)
    assert (search.start_rps, search.max_rps, search.stage_seconds) == (10, 40, 20)
    assert search.abort_latency_factor == pytest.approx(3.0)
    assert search.max_duration == 1800.0
    ramp = RunOptions(url=URL, search="fixed", start_rps=10, max_rps=40, stages=4,
                      stage_seconds=20).load_plan(slo)  # fmt: skip
    assert isinstance(ramp, RampPlan)
    assert [s.rps for s in ramp.stages] == [10, 20, 30, 40]


def test_headers_gather_the_lines_and_the_sagemaker_flags() -> None:
    options = RunOptions(url=URL, header=("X-A: 1", "X-B:two words"), custom_attributes="c=1",
                         target_variant="Blue")  # fmt: skip
    assert options.headers() == {
        "X-A": "1",
        "X-B": "two words",
        "X-Amzn-SageMaker-Custom-Attributes": "c=1",
        "X-Amzn-SageMaker-Target-Variant": "Blue",
    }


def test_bad_worker_flags_stop_before_anything_is_sent(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code = main(["loadtest", "--url", URL, "--max-rps", "10", "--expect-workers", "2",
                 "--out", str(tmp_path)])  # fmt: skip
    _, err = capsys.readouterr()
    assert (code, err.strip()) == (2, "Error: --expect-workers needs --master")
    assert not list(tmp_path.iterdir())  # no run directory was made
