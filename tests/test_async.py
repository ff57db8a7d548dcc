"""Asynchronous endpoints: backlog judging, the backlog target, the backlog simulation, and
`recommender run` against the emulated async endpoint (emulator + `serve --async`)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from recommender.analysis.asynchronous import (
    backlog_growth,
    check_async_slo,
    recommend_backlog,
)
from recommender.analysis.capacity import Capacity
from recommender.errors import ConfigError
from recommender.plan import parse_slo
from recommender.policy.kinds import Kind, Metric
from recommender.policy.target import RunFacts, target_value_for
from recommender.s3uri import parse_s3_uri
from recommender.simulate_async import BacklogEndpoint, BacklogPolicy, simulate_backlog
from recommender.traffic import TrafficSeries


def _timeline(values: list[float]) -> list[dict[str, float]]:
    return [{"second": i, "outstanding": v, "completed": 0, "failed": 0}
            for i, v in enumerate(values)]  # fmt: skip


def test_backlog_growing_by_one_a_second_fails_a_flat_noisy_one_passes() -> None:
    rng = np.random.default_rng(1)
    grows = backlog_growth(_timeline([3 + i for i in range(20)]), 0, 20, rate=9, slots=2)
    flat = backlog_growth(_timeline(list(3 + rng.integers(-2, 3, 20))), 0, 20, rate=9, slots=2)
    assert grows is not None and grows.grew and grows.growth == pytest.approx(20.0)
    assert flat is not None and not flat.grew
    assert backlog_growth(_timeline([1, 2, 3]), 0, 20, rate=9, slots=2) is None  # too few


def test_backlog_target_is_c_plus_mu_w_times_factor() -> None:
    from recommender.analysis.stages import StageStats

    stage = StageStats(0, 3, 3, 10, 30, 30, 0.0, {}, 0.3, 0.4, 0.5, 0.5, 0.3, 0.5,
                       {"p95": 500.0}, 0.1, True, None, False)  # fmt: skip
    cap = Capacity("interpolated", 1, 8.0, 8.0, (7.5, 9.0), 0, 1)
    rec = recommend_backlog(cap, [stage], parse_slo(["p95<=5s"]), slots=2, safety_factor=0.5)
    assert rec is not None and rec.metric == "ApproximateBacklogSizePerInstance"
    assert rec.target_value == pytest.approx(2 + 8.0 * (5.0 - 0.5) * 0.5)
    # An SLO that leaves no time to queue gives no target.
    assert recommend_backlog(cap, [stage], parse_slo(["p95<=400ms"]), 2, 0.5) is None


def test_bad_s3_locations_and_slos_are_one_line_errors() -> None:
    for text in ("bucket/prefix", "s3://B_ad/x", "s3://"):
        with pytest.raises(ConfigError, match="--input-s3"):
            parse_s3_uri(text, "--input-s3")
    assert str(parse_s3_uri("s3://my-bucket/a/b/", "--x").child("c")) == "s3://my-bucket/a/b/c"
    with pytest.raises(ConfigError, match="too coarse"):
        check_async_slo(parse_slo(["p95<=300ms"]), 0.5, 900)
    with pytest.raises(ConfigError, match="completion-timeout"):
        check_async_slo(parse_slo(["p95<=1000s"]), 0.5, 900)


def test_apply_async_takes_the_runs_target_and_refuses_a_realtime_run() -> None:
    rec = {"metric": "ApproximateBacklogSizePerInstance", "target_value": 20.2, "formula": "f"}
    run = RunFacts("r", {}, {"recommendation": rec})
    assert target_value_for(None, Kind.ASYNC, Metric.INVOCATIONS, run) == (20.2, "f", True)
    realtime = RunFacts("r", {}, {"recommendation": {**rec, "metric": "SageMakerVariant"
                                                      "InvocationsPerInstance"}})
    with pytest.raises(ConfigError, match="real-time endpoint"):
        target_value_for(None, Kind.ASYNC, Metric.INVOCATIONS, realtime)
    with pytest.raises(ConfigError, match="asynchronous endpoint"):
        target_value_for(None, Kind.VARIANT, Metric.INVOCATIONS, run)


def test_backlog_simulation_scales_from_zero_and_the_queue_waits_meanwhile() -> None:
    per_minute = np.array([0.0] * 5 + [240.0] * 30 + [0.0] * 30)  # 4 rps for 30 minutes
    traffic = TrafficSeries(per_minute, "test")
    endpoint = BacklogEndpoint(mu=8.0, slots=2, processing_s=0.5, limit_s=60.0, stat="p95")
    policy = BacklogPolicy(target_value=20.0, min_capacity=0, max_capacity=4,
                           scale_from_zero=True, provision_minutes=3)  # fmt: skip
    sim = simulate_backlog(traffic, endpoint, policy)
    assert sim.in_service[0] >= 0 and sim.totals.scale_out_events >= 1
    assert int(sim.desired.max()) >= 1
    assert sim.violating[6]  # requests wait with no instance: the SLO is broken
    assert not sim.violating[-1]  # the queue was worked off
    with pytest.raises(ConfigError, match="scale-from-zero"):
        simulate_backlog(traffic, endpoint, BacklogPolicy(target_value=20.0, min_capacity=0,
                                                          max_capacity=4))  # fmt: skip


def _sent(out: Path) -> int:
    """The sends the newest second of a run's backlog.jsonl counts (0 before it has one)."""
    for path in out.glob("*/backlog.jsonl"):
        lines = [line for line in path.read_text().splitlines() if line.endswith("}")]
        if lines:
            return int(json.loads(lines[-1])["sent"])
    return 0


def _main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The CLI in this process (a bad input's exit code and line do not need a process of
    their own, and each costs seconds to start on a busy machine)."""
    from recommender.cli import main

    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.timeout(170)
def test_run_against_the_emulated_async_endpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`recommender run` as a user runs it: the endpoint's kind detected, the ramp played,
    the inputs and results removed; bad input is one line."""
    from recommender.aws import AsyncConfig, AwsClient
    from recommender.local.asyncserver import AsyncServerConfig
    from recommender.local.emulator import EMULATOR_ENV, running_emulator
    from recommender.local.process import running_async_server
    from recommender.local.server import ServerConfig

    env = {**os.environ, **EMULATOR_ENV}
    env.pop("AWS_PROFILE", None)
    for key, value in EMULATOR_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with running_emulator() as emu:
        aws = AwsClient.create("us-east-1", endpoint_url=emu)
        aws.create_bucket("async-test")
        config = AsyncConfig("s3://async-test/out", "s3://async-test/fail", 2)
        aws.create_async_endpoint("ae", "AllTraffic", "ml.m5.large", 1, "img", config)
        aws.create_endpoint("rt", "AllTraffic", "ml.m5.large", 1, "img")
        server = AsyncServerConfig(ServerConfig(port=0, concurrency=2, service_time_ms=200,
                                                model="sleep"), "ae", config.output_path,
                                   config.failure_path, aws_endpoint_url=emu,
                                   metrics_period=5)  # fmt: skip
        with running_async_server(server) as base:
            common = ["--endpoint-url", base, "--aws-endpoint-url", emu, "--region",
                      "us-east-1", "--out", str(tmp_path), "--yes", "--quiet"]  # fmt: skip
            small = ["--start-rps", "2", "--max-rps", "4", *common]
            code, _, err = _main(capsys, "run", "--endpoint", "ae", "--input-s3",
                                 "s3://no-such-bucket/x", "--slo", "p95<=5s", *small)  # fmt: skip
            assert code == 2, err
            assert err.strip().splitlines() == [
                "Error: --input-s3: no S3 bucket named 'no-such-bucket' (create it, or name "
                "one that exists)"]
            code, _, err = _main(capsys, "run", "--endpoint", "rt", "--input-s3",
                                 "s3://async-test/in", *small)  # fmt: skip
            assert code == 2 and "is a real-time endpoint" in err, err
            code, _, err = _main(capsys, "run", "--endpoint", "ae", "--slo", "p95<=5s", *small)
            assert code == 2 and "pass --input-s3" in err, err
            code, _, err = _main(capsys, "run", "--endpoint", "ae", "--input-s3",
                                 "s3://async-test/in", *small)  # default SLO p95<=300ms
            assert code == 2 and "too coarse" in err, err
            # Capacity 10 rps: 4 passes, 16 saturates (backlog grows 6/s).
            code, out, err = _main(capsys, "run", "--endpoint", "ae", "--input-s3",
                                   "s3://async-test/in", "--slo", "p95<=5s", "--search",
                                   "fixed", "--start-rps", "4", "--max-rps", "16", "--stages",
                                   "2", "--stage-seconds", "8", "--warmup-seconds", "2",
                                   "--cloudwatch-wait", "0", *common)  # fmt: skip
            assert code == 0, out + err
            assert "ApproximateBacklogSizePerInstance" in out
            assert aws.list_keys("async-test", "in/") == []  # inputs removed
            assert aws.list_keys("async-test", "out/") == []  # our results removed
            # Ctrl-C mid-stage: exit 130, what was measured kept, every send counted once,
            # the inputs still removed.
            stopped_dir = tmp_path / "stopped"
            proc = subprocess.Popen(
                [sys.executable, "-m", "recommender", "run", "--endpoint", "ae", "--input-s3",
                 "s3://async-test/in", "--slo", "p95<=5s", "--search", "fixed",
                 "--start-rps", "4", "--max-rps", "4", "--stages", "1", "--stage-seconds", "30",
                 *common[:-4], "--out", str(stopped_dir), "--yes", "--quiet"],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
            # Mid-stage: once the generator's own timeline shows a second of sends.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and _sent(stopped_dir) < 4:  # a second of sends
                time.sleep(0.2)
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=90)
            assert proc.returncode == 130, out
            stopped = json.loads(next(stopped_dir.glob("*/run.json")).read_text())
            assert stopped["status"] == "interrupted"
            assert stopped["totals"]["requests"] == stopped["generator"]["sent"] > 0
            assert aws.list_keys("async-test", "in/") == []
        run_dir = next(p for p in tmp_path.iterdir() if p.name != "stopped")
        target = json.loads((run_dir / "analysis.json").read_text())["recommendation"]
        apply_args = ["apply", str(run_dir), "--min-capacity", "0",
                      "--max-capacity", "4", "--scale-from-zero", "--aws-endpoint-url", emu,
                      "--yes"]  # fmt: skip
        code, _, err = _main(capsys, *apply_args, "--kind", "variant", "--dry-run")
        assert code == 2 and "pass --kind async" in err, err
        code, out, err = _main(capsys, *apply_args, "--dry-run")  # the kind is the run's: async
        assert code == 0, out + err
        shown = f"{round(target['target_value'], 1):g}"
        assert f'"TargetValue": {shown}' in out.replace("\n", " ") or shown in out
        code, out, err = _main(capsys, *apply_args, "--kind", "async")
        assert code == 0, out + err
        policies = aws.describe_scaling_policies("sagemaker", "endpoint/ae/variant/AllTraffic",
                                                 "sagemaker:variant:DesiredInstanceCount")
        tracking = [p for p in policies if p["PolicyType"] == "TargetTrackingScaling"][0]
        config = tracking["TargetTrackingScalingPolicyConfiguration"]
        assert config["TargetValue"] == pytest.approx(target["target_value"], abs=0.05)
        assert config["CustomizedMetricSpecification"]["MetricName"] == (
            "ApproximateBacklogSizePerInstance")
        meta = json.loads((run_dir / "run.json").read_text())
        assert meta["target"]["kind"] == "async" and meta["status"] == "complete"
        totals = meta["totals"]
        assert totals["requests"] == 4 * 8 + 16 * 8  # every intended request, once
        analysis = json.loads((run_dir / "analysis.json").read_text())
        mu = analysis["capacity"]["rps_per_instance"]
        assert 7.0 <= mu <= 11.0  # truth 10 (2 slots / 0.2 s); headroom for a busy machine
        stages = [s for s in analysis["stages"]]
        assert stages[-1]["passed"] is False and stages[-1]["extra"]["backlog"]["grew"]
