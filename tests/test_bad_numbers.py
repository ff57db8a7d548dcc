"""Every numeric option is checked for what it is (finite, in its range) wherever it is
given, even when the chosen plan or mode never reads it: one `Error:` line naming the flag,
exit 2, nothing started (no run directory, nothing contacted).

`run` and `loadtest` are aimed at a one-stage fixed ramp on a closed loopback port: the
smallest plan, which reads the fewest flags, so a flag left unchecked gets as far as the
preflight request and exits 4 ("cannot reach"), not 2.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import typer

from recommender.bounds import check_number, describe_range
from recommender.cli import app
from recommender.errors import ConfigError
from recommender.plan import RampPlan, Stage
from tests.conftest import synthetic_records, write_run
from tests.test_fuzz_cli import CLOSED_AWS, CLOSED_URL, check_clean, guarded, invoke

__all__ = ["guarded"]  # the fixture, used by name

ONE_STAGE = ["--url", CLOSED_URL, "--search", "fixed", "--stages", "1", "--start-rps", "5",
             "--stage-seconds", "2", "--warmup-seconds", "0", "-y"]  # fmt: skip

RATE, FRACTION = "requests/s, e.g. ", "a fraction, e.g. "
# flag -> (its rule as the error says it, the hint, values outside it besides nan/inf/-inf)
RUN_NUMBERS: dict[str, tuple[str, str | None, tuple[str, ...]]] = {
    "--start-rps": ("> 0", f"the first stage's offered rate in {RATE}10", ("0", "-1")),
    "--max-rps": ("> 0", f"the highest offered rate to try, in {RATE}200", ("0", "-1")),
    "--stage-seconds": (">= 1", "seconds, e.g. 30", ("0.5", "-1")),
    "--warmup-seconds": (">= 0", "seconds, e.g. 5", ("-1",)),
    "--precision": ("in (0, 1)", f"{FRACTION}0.05", ("0", "1", "-0.5")),
    "--max-duration": ("> 0", "seconds, e.g. 1800", ("0", "-1")),
    "--abort-error-rate": ("in (0, 1]", f"{FRACTION}0.10", ("0", "1.5")),
    "--max-error-rate": ("in [0, 1)", f"give {FRACTION}0.01 for 1%", ("1", "-0.1")),
    "--cloudwatch-wait": (">= 0", "seconds", ("-1",)),
    "--safety-factor": ("in (0, 1]", "AWS recommends 0.5 to start", ("0", "2")),
    "--completion-timeout": ("> 0", "seconds, e.g. 900", ("0", "-1")),
    "--poll-interval": ("in [0.05, 60]", "seconds", ("0.01", "61")),
}  # fmt: skip
RUN_INTEGERS: dict[str, tuple[str, str | None, tuple[str, ...]]] = {
    "--stages": ("in [1, 1000]", None, ("0", "1001")),
    "--max-requests": (">= 1", None, ("0",)),
    "--start-concurrency": (">= 1", None, ("0", "-3")),
    "--max-concurrency": (">= 1", "the most requests in flight to try, e.g. 64", ("0",)),
    "--users": (">= 0", "0 sizes the pool", ("-1",)),
    "--workers": (">= 0", "0 runs one process", ("-1",)),
    "--expect-workers": (">= 0", None, ("-1",)),
    "--master-port": ("in [1, 65535]", None, ("0", "65536")),
    "--web-port": ("in [1, 65535]", None, ("0", "70000")),  # even without --web-ui
    "--max-new-tokens": (">= 1", None, ("0",)),
    "--instances": (">= 1", None, ("0",)),
    "--cloudwatch-period": (">= 1", "seconds, e.g. 60", ("0",)),
    "--min-capacity": (">= 0", None, ("-1",)),
    "--max-capacity": (">= 0", None, ("-1",)),
    "--prometheus-port": ("in [0, 65535]", "0 picks a free one",
                          ("-1", "99999999999999999999")),
}  # fmt: skip


def _error(flag: str, rule: str, got: str, hint: str | None) -> str:
    return f"Error: {flag} must be {rule} (got {got})" + (f" ({hint})" if hint else "") + "\n"


def _cases() -> list[tuple[str, str, str]]:
    cases = []
    for flag, (rule, hint, outside) in RUN_NUMBERS.items():
        for value in ("nan", "inf", "-inf", *outside):
            cases.append((flag, value, _error(flag, rule, value, hint)))
    for flag, (rule, hint, outside) in RUN_INTEGERS.items():
        for value in outside:
            cases.append((flag, value, _error(flag, rule, value, hint)))
    return cases


@pytest.mark.parametrize("command", ["run", "loadtest"])
@pytest.mark.parametrize(("flag", "value", "error"), _cases())
def test_run_refuses_a_bad_number_the_plan_never_reads(
    guarded: list[str], tmp_path: Path, command: str, flag: str, value: str, error: str
) -> None:
    out = tmp_path / "reports"
    argv = [command, *ONE_STAGE, "--out", str(out), flag, value]
    code, stdout, stderr = invoke(argv)
    check_clean(argv, code, stdout, stderr, guarded)
    assert (code, stderr) == (2, error), stdout
    assert not out.exists()  # no run directory; and the closed port was never tried (4)


def test_the_issue_s_example_is_refused(guarded: list[str], tmp_path: Path) -> None:
    """Issue 28: a one-stage fixed plan never read --max-rps, so nan started a run."""
    code, _, err = invoke(["run", "--search", "fixed", "--stages", "1", "--start-rps", "10",
                           "--max-rps", "nan", "--url", CLOSED_URL, "-y",
                           "--out", str(tmp_path / "reports")])  # fmt: skip
    assert (code, err) == (2, _error("--max-rps", "> 0", "nan", RUN_NUMBERS["--max-rps"][1]))
    assert not (tmp_path / "reports").exists() and not guarded


# --- every float option of every command, given nan --------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    plan = RampPlan(tuple(Stage(r, 3) for r in (10, 20, 30)), warmup_seconds=1)
    return write_run(tmp_path_factory.mktemp("numbers") / "run", plan,
                     synthetic_records(plan, [20, 40, 400]))  # fmt: skip


# What each command needs besides the flag under test, so that a nan left unchecked goes on
# to something that is not a usage error naming that flag: the preflight to a closed port,
# the AWS API on a closed port, an analysis, a server started (stopped by the alarm).
COMMAND_ARGS = {
    "serve": ["--port", "0"],
    "loadtest": ONE_STAGE,
    "run": ONE_STAGE,
    "collect": ["RUN", "--aws-endpoint-url", CLOSED_AWS],
    "analyze": ["RUN"],
    "report": ["RUN"],
    "simulate": ["RUN", "--pattern", "diurnal", "--peak-rps", "100"],
    "apply": ["--endpoint", "e", "--target-value", "100", "--min-capacity", "1",
              "--max-capacity", "4", "--aws-endpoint-url", CLOSED_AWS, "-y", "--dry-run"],
    "verify": ["RUN", "--aws-endpoint-url", CLOSED_AWS, "--pattern", "spike", "--peak-rps", "10"],
    "host": ["--aws-endpoint-url", CLOSED_AWS],
    "sweep": ["--max-rps", "10", "--peak-rps", "10", "--endpoints", "ep-a,ep-b",
              "--aws-endpoint-url", CLOSED_AWS, "--region", "us-east-1", "-y"],
}  # fmt: skip


def _float_options() -> list[tuple[str, str]]:
    """(command, flag) for every option of every command that parses a float."""
    group = typer.main.get_command(app)
    ctx = typer.Context(group)
    found = []
    for name in group.list_commands(ctx):  # type: ignore[attr-defined]
        command = group.get_command(ctx, name)  # type: ignore[attr-defined]
        for param in command.params:
            if "float" in str(param.type_descriptor.annotation):  # float, float | None
                found.append((name, param.opts[0]))
    return found


FLOAT_OPTIONS = _float_options()


def test_every_command_with_a_float_option_is_covered() -> None:
    # A new command with a float option needs its arguments above to be tested.
    assert {command for command, _ in FLOAT_OPTIONS} <= set(COMMAND_ARGS)
    assert len(FLOAT_OPTIONS) > 50


@pytest.mark.parametrize(("command", "flag"), FLOAT_OPTIONS)
def test_any_float_option_given_nan_is_refused_in_one_line(
    guarded: list[str], run_dir: Path, tmp_path: Path, command: str, flag: str
) -> None:
    out = tmp_path / "reports"
    args = [str(run_dir) if a == "RUN" else a for a in COMMAND_ARGS[command]]
    argv = [command, *args, flag, "nan"]
    if command in ("loadtest", "run", "sweep"):
        argv += ["--out", str(out)]
    code, stdout, stderr = invoke(argv)
    check_clean(argv, code, stdout, stderr, guarded)
    assert code == 2, (argv, stderr)
    assert stderr.startswith(f"Error: {flag} ") and "(got nan)" in stderr, (argv, stderr)
    assert not out.exists()


# --- the rule itself --------------------------------------------------------------------


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_check_number_refuses_what_is_not_finite_even_without_bounds(value: float) -> None:
    with pytest.raises(ConfigError) as err:
        check_number("--x", value)
    assert err.value.one_line() == f"--x must be a finite number (got {value:g})"


def test_check_number_takes_its_bounds_and_none() -> None:
    check_number("--x", None, low=1)  # not given
    check_number("--x", 1, low=1)
    check_number("--x", 0.5, low=0, high=1, low_open=True, high_open=True)
    for value, kwargs in ((0, {"low": 0, "low_open": True}), (1, {"high": 1, "high_open": True}),
                          (2, {"high": 1})):  # fmt: skip
        with pytest.raises(ConfigError):
            check_number("--x", value, **kwargs)  # type: ignore[arg-type]
    assert describe_range(0, 1, True, False) == "in (0, 1]"
    assert describe_range(None, 60, False, True) == "< 60"


# --- integers read only in some modes ---------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        # --publish-metrics is off: the period is unused, but still refused.
        (["serve", "--port", "0", "--metrics-period", "0"],
         "Error: --metrics-period 0 is not a CloudWatch period (use 1, 5, 10, 30 or a multiple "
         "of 60)\n"),
        # --serverless is off: its flags too.
        (["serve", "--port", "0", "--max-concurrency", "0"],
         "Error: --max-concurrency must be 1 to 200 (got 0) (SageMaker's MaxConcurrency range)\n"),
        (["host", "--aws-endpoint-url", CLOSED_AWS, "--max-queue", "-1"],
         "Error: --max-queue must be >= 0 (got -1)\n"),
        (["host", "--aws-endpoint-url", CLOSED_AWS, "--port", "65536"],
         "Error: --port must be in [0, 65535] (got 65536) (0 picks a free one)\n"),
        (["simulate", "RUN", "--pattern", "diurnal", "--peak-rps", "100", "--min-capacity",
          "99999999999999999999"],
         "Error: --min-capacity must be <= 100000 (got 99999999999999999999)\n"),
        (["simulate", "RUN", "--pattern", "diurnal", "--peak-rps", "100", "--instance-price",
          "inf"], "Error: --instance-price must be > 0 (got inf) (give USD per hour)\n"),
        (["report", "RUN", "--peak-rps", "inf"],
         "Error: --peak-rps must be > 0 (got inf) (the expected peak, requests/s)\n"),
    ],
)  # fmt: skip
def test_numbers_a_mode_never_reads_are_refused(
    guarded: list[str], run_dir: Path, argv: list[str], error: str
) -> None:
    argv = [str(run_dir) if a == "RUN" else a for a in argv]
    code, stdout, stderr = invoke(argv)
    check_clean(argv, code, stdout, stderr, guarded)
    assert (code, stderr) == (2, error), stdout
