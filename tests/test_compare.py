"""`recommender compare`: capacity regressions beyond the noise fail, the rest pass."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recommender import runs
from recommender.cli import main
from recommender.compare import compare_runs, parse_threshold
from recommender.errors import ConfigError
from tests.conftest import step_run


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
