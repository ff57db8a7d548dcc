"""`run --json` and `analyze --json`: one document on stdout that validates against the
published schema, the exit codes of the README's table, progress kept off stdout."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from recommender.cli import main
from recommender.errors import ExitCode
from recommender.plan import RampPlan
from recommender.report.result import schema
from tests.conftest import synthetic_records, write_run


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())


def test_analyze_json_holds_the_verdict_capacity_and_warnings(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, ramp: RampPlan
) -> None:
    run_dir = write_run(tmp_path / "r", ramp, synthetic_records(ramp, [20, 30, 60, 200, 400]))
    code, out, _ = run_cli(capsys, "analyze", str(run_dir), "--json")
    doc = json.loads(out)  # stdout is the document alone
    jsonschema.validate(doc, schema())
    analysis = json.loads((run_dir / "analysis.json").read_text())
    assert code == ExitCode.OK == doc["exit_code"]
    assert (doc["command"], doc["verdict"], doc["status"]) == (
        "analyze", "recommendation", "complete")  # fmt: skip
    assert doc["capacity"]["rps_per_instance"] == analysis["capacity"]["rps_per_instance"]
    assert doc["capacity"]["interval_rps_per_instance"] == (
        analysis["capacity"]["ci_rps_per_instance"])  # fmt: skip
    assert doc["recommendation"] == analysis["recommendation"]
    assert doc["warnings"] == analysis["warnings"]
    assert doc["slo"]["text"] == "p95<=100ms, errors<=1.00%"


def test_every_stage_failing_has_its_own_exit_code(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, ramp: RampPlan
) -> None:
    run_dir = write_run(tmp_path / "r", ramp, synthetic_records(ramp, [20, 30, 60, 200, 400]))
    code, out, _ = run_cli(capsys, "analyze", str(run_dir), "--json", "--slo", "p95<=1ms")
    doc = json.loads(out)
    jsonschema.validate(doc, schema())
    assert code == ExitCode.SLO_FAILED_AT_FIRST_STAGE == doc["exit_code"] == 3
    assert doc["verdict"] == "slo_failed_at_first_stage"
    assert doc["recommendation"] is None and doc["capacity"]["method"] == "none"


def test_run_json_keeps_progress_off_stdout(
    demo_server: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = run_cli(
        capsys, "run", "--url", f"{demo_server}/invocations", "--search", "fixed",
        "--start-rps", "20", "--max-rps", "140", "--stages", "2", "--stage-seconds", "4",
        "--warmup-seconds", "1", "--slo", "p95<=100ms", "--out", str(tmp_path), "--json",
    )  # fmt: skip
    doc = json.loads(out)
    jsonschema.validate(doc, schema())
    (run_dir,) = tmp_path.iterdir()
    assert doc["command"] == "run" and doc["run_dir"] == str(run_dir)
    assert doc["status"] == "complete" and doc["applied"] is None
    assert code == doc["exit_code"] == ExitCode.OK
    assert "stage 1 at 20 rps" in err and "Run directory:" in err  # progress on stderr


def test_compare_json_validates_against_its_schema(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from tests.conftest import step_run

    base = step_run(tmp_path / "base", passing_up_to=100, seed=1)
    slower = step_run(tmp_path / "slower", passing_up_to=70, seed=3)
    code, out, _ = run_cli(capsys, "compare", str(base), str(slower), "--json")
    doc = json.loads(out)
    jsonschema.Draft202012Validator.check_schema(schema("comparison"))
    jsonschema.validate(doc, schema("comparison"))
    assert code == 1 and doc["regression"] is True
    assert doc["schema"] == "recommender-comparison/1"
