"""measure -> apply -> verify -> calibrate -> simulate on the emulated endpoint, on a
compressed clock (one minute in 2 s): the local scaler really scales (processes start and
serve after their provisioning delay), verify observes it, compares it with simulate, and
fits the provisioning time the simulator had wrong."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from recommender.aws import AwsClient
from recommender.calibration import read_calibration
from recommender.cli import main
from recommender.local.emulator import EMULATOR_ENV, running_emulator
from recommender.local.hosting import HostingConfig, running_hosting
from recommender.simulate import DEFAULT_PROVISION_MINUTES

MINUTE_S = 2.0
PROVISION_MINUTES = 2  # the local stack's truth; the simulator assumes 6 until calibrated


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[AwsClient, str, str]]:
    for key, value in EMULATOR_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with running_emulator() as emulator:
        config = HostingConfig(emulator, model="sleep", metrics_period=1, poll_seconds=0.5,
                               provision_seconds=PROVISION_MINUTES * MINUTE_S,
                               minute_seconds=MINUTE_S)  # fmt: skip
        with running_hosting(config) as router:
            aws = AwsClient.create("us-east-1", endpoint_url=emulator)
            aws.create_model("m", "local/model:latest")
            aws.create_endpoint_config("e-config", "m", "AllTraffic", "ml.m5.large", 1, {})
            aws.create_endpoint_from_config("e", "e-config", {})  # 16 rps per instance
            yield aws, emulator, router


def test_verify_observes_real_scaling_and_calibrates_the_simulator(
    stack: tuple[AwsClient, str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aws, emulator, router = stack
    assert main([
        "run", "--endpoint", "e", "--region", "us-east-1", "--endpoint-url", router,
        "--aws-endpoint-url", emulator, "--slo", "p95<=400ms", "--search", "fixed",
        "--start-rps", "6", "--max-rps", "18", "--stages", "3", "--stage-seconds", "3",
        "--warmup-seconds", "1", "--cloudwatch-period", "1", "--cloudwatch-wait", "1",
        "--out", str(tmp_path / "runs"), "--yes", "--quiet",
    ]) == 0  # fmt: skip
    (run_dir,) = (tmp_path / "runs").iterdir()
    traffic = tmp_path / "step.csv"
    # 3 quiet minutes, then 24 rps: 1.5 instances' worth on one.
    traffic.write_text("timestamp,requests\n" + "".join(
        f"{60 * m},{(4 if m < 3 else 24) * 60}\n" for m in range(12)))  # fmt: skip
    verify = ["verify", str(run_dir), "--traffic", str(traffic), "--minute-seconds",
              str(MINUTE_S), "--aws-endpoint-url", emulator]  # fmt: skip
    capsys.readouterr()

    # No policy yet: refused in one line, no load sent.
    assert main(verify) == 2
    err = capsys.readouterr().err
    assert "no target-tracking policy on endpoint/e/variant/AllTraffic" in err
    assert err.count("\n") == 1 and not (run_dir / "verify-load").exists()

    assert main(["apply", str(run_dir), "--min-capacity", "1", "--max-capacity", "3",
                 "--aws-endpoint-url", emulator, "--yes"]) == 0  # fmt: skip
    capsys.readouterr()
    # verify's clock must be the local scaler's.
    assert main([*verify[:-4], "--minute-seconds", "3", *verify[-2:]]) == 2
    err = capsys.readouterr().err
    assert "differs from the local scaler's (2 s per minute)" in err and err.count("\n") == 1
    # One instance at 24 rps violates the SLO until help arrives: over a budget of 0.
    assert main([*verify, "--violation-budget", "0"]) == 1
    out = capsys.readouterr().out
    assert "time to first scale-out" in out and "OVER BUDGET" in out
    doc = json.loads((run_dir / "verify.json").read_text())
    rows = {r["what"]: r for r in doc["verdict"]}
    outs = [a for a in doc["observed"]["activities"] if "AlarmHigh" in a["cause"]]
    assert outs and outs[0]["status"] == "Successful", doc["observed"]["activities"]
    assert max(n for n in doc["observed"]["in_service"] if n is not None) >= 2
    # The alarm: 3 minutes above target after the step at minute 3 -> the end of minute 5.
    first = rows["time to first scale-out"]
    assert first["predicted"] == 6
    assert abs(first["observed"] - first["predicted"]) <= 1.5, first
    # The simulator's default provisioning (6 min) is wrong for this stack (2 min)...
    served = rows["time until in service"]
    assert served["predicted"] - served["observed"] >= 1.5, served
    # ... and the calibration finds the stack's, which simulate now uses and says so.
    cal = read_calibration(run_dir)
    assert cal is not None and PROVISION_MINUTES <= cal.provision_minutes <= PROVISION_MINUTES + 2
    assert cal.simulated_provision_minutes < DEFAULT_PROVISION_MINUTES
    calibrated = first["predicted"] + cal.simulated_provision_minutes
    assert abs(calibrated - served["observed"]) <= 1.5, (calibrated, served)
    assert main(["simulate", str(run_dir), "--traffic", str(traffic),
                 "--target-value", str(doc["policy"]["target_value"])]) in (0, 1)  # fmt: skip
    assert "note: calibrated by verify" in capsys.readouterr().out
    html = (run_dir / "verify.html").read_text()
    assert "<svg" in html and "time until in service" in html
    assert "| time to first scale-out |" in (run_dir / "verify.md").read_text()
    assert os.path.isdir(doc["load_run_dir"])


def test_bad_verify_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Refused before anything starts: no traffic, a bad clock, two demos at once."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for args, text in (
        (["verify", str(run_dir)], "verify needs traffic to replay"),
        (["verify", str(run_dir), "--pattern", "step", "--peak-rps", "5", "--minute-seconds",
          "0.2"], "--minute-seconds must be in [1, 60]"),
        (["verify", str(run_dir), "--pattern", "step", "--peak-rps", "5", "--minutes", "0"],
         "--minutes must be >= 1"),
        (["demo", "--verify", "--llm"], "are different demos"),
    ):  # fmt: skip
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert text in err and err.count("\n") == 1, err
