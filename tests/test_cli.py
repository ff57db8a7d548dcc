"""The CLI's contract: one-line errors with a fix, exit codes, no tracebacks."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from recommender.cli import main
from tests.conftest import synthetic_records, write_run


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


URL = "http://127.0.0.1:9/invocations"


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (
            ["loadtest", "--url", URL, "--max-rps", "10", "--slo", "p95<=fast"],
            2,
            "Error: cannot read SLO 'p95<=fast' (write it like \"p95<=300ms\"",
        ),
        (
            ["loadtest", "--url", URL, "--start-rps", "50", "--max-rps", "10"],
            2,
            "Error: --max-rps (10) is below --start-rps (50) (pass a --max-rps at least",
        ),
        (
            ["loadtest", "--url", URL, "--max-rps", "10", "--arrivals", "bursty"],
            2,
            "Error: Invalid value for '--arrivals'",
        ),
        (
            ["loadtest", "--url", URL, "--max-rps", "10", "--payload", "/nonexistent.jsonl"],
            2,
            "Error: payload not found: /nonexistent.jsonl (check the --payload path)",
        ),
        (["loadtest", "--url", "ftp://x/y", "--max-rps", "10"], 2, "Error: not an http(s) URL"),
        (["loadtest", "--url", URL], 2, "Error: no ramp given (pass --max-rps"),
        (["loadtest", "--max-rps", "10"], 2, "Error: give either --url or --endpoint"),
        (
            ["run", "--url", URL, "--max-rps", "10", "--header", "nocolon"],
            2,
            "Error: bad --header #1: no name before a colon (write it",
        ),
        (["serve", "--concurrency", "0"], 2, "Error: --concurrency must be >= 1"),
        (["analyze", "/nonexistent-run"], 1, "Error: /nonexistent-run is not a run directory"),
        (["frobnicate"], 2, "Error: No such command 'frobnicate'"),
    ],
)
def test_bad_input_gives_one_line_error(
    capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str
) -> None:
    got, out, err = run_cli(capsys, *argv)
    assert got == code
    assert err.startswith(message), err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_unreachable_url(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/invocations"
    code, _, err = run_cli(capsys, "run", "--url", url, "--max-rps", "10", "--out", str(tmp_path))
    assert code == 4  # the endpoint's exit code
    assert (
        err
        == f"Error: cannot reach {url}: Connection refused (is the endpoint running? check --url)\n"
    )
    assert list(tmp_path.iterdir()) == []  # nothing started, nothing written


def test_analyze_prints_summary_and_writes_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, ramp: object
) -> None:
    from recommender.plan import RampPlan

    assert isinstance(ramp, RampPlan)
    run_dir = write_run(tmp_path / "r", ramp, synthetic_records(ramp, [20, 30, 60, 200, 400]))
    code, out, err = run_cli(capsys, "analyze", str(run_dir), "--safety-factor", "0.5")
    assert code == 0, err
    assert out.startswith("Recommended target value: ")
    assert "stage  offered rps  achieved rps" in out
    assert (run_dir / "analysis.json").exists() and (run_dir / "report.md").exists()
    code, out, _ = run_cli(capsys, "analyze", str(run_dir), "--slo", "p95<=1ms")
    assert code == 3 and out.startswith("No recommendation")  # failed at the first stage
    code, _, err = run_cli(capsys, "analyze", str(run_dir), "--slo", "p95<=soon")
    assert code == 2 and err.startswith("Error: cannot read SLO")


def test_real_console_script_exit_code_and_no_traceback() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "recommender", "analyze", "/nonexistent-run"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.startswith("Error: /nonexistent-run is not a run directory")
    assert "Traceback" not in proc.stderr
