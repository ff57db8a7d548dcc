"""`recommender apply` and `rollback` against the AWS emulator as a real HTTP server, with
the policy read back by the plain AWS CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from recommender.aws import AwsClient
from recommender.cli import main
from recommender.errors import AwsError
from recommender.local.emulator import running_emulator
from recommender.pipeline import write_reports
from tests.conftest import reset_emulator, step_run, update_run_meta, use_emulator_credentials

AWS_CLI = str(Path(sys.executable).with_name("aws"))
RESOURCE = "endpoint/ep/variant/AllTraffic"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"


@pytest.fixture(scope="module")
def shared_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One emulator process for the module (each takes seconds to start on a busy machine);
    `emulator` empties it before every test."""
    home = tmp_path_factory.mktemp("aws")
    with pytest.MonkeyPatch.context() as mp:
        use_emulator_credentials(mp, home)
        with running_emulator() as url:
            yield url


@pytest.fixture
def emulator(shared_emulator: str) -> str:
    """The module's emulator as new: moto's state reset (every service; these tests use
    none of the emulator's own extensions), then endpoint `ep` made again."""
    reset_emulator(shared_emulator)
    assert snapshot(shared_emulator) == {"targets": [], "policies": [], "alarms": []}
    AwsClient.create("us-east-1", endpoint_url=shared_emulator).create_endpoint(
        "ep", "AllTraffic", "ml.c5.xlarge", 1, image="local/x:latest"
    )
    return shared_emulator


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A run of endpoint `ep` whose capacity lies between 80 and 90 requests/s."""
    run = step_run(tmp_path / "run", passing_up_to=80)
    update_run_meta(run, target={"endpoint": "ep", "variant": "AllTraffic",
                                 "region": "us-east-1"})  # fmt: skip
    write_reports(run, formats=["json"])
    return run


def aws_cli(url: str, *args: str) -> Any:
    out = subprocess.run([AWS_CLI, *args, "--endpoint-url", url, "--output", "json"],
                         check=True, capture_output=True, text=True, env=os.environ)  # fmt: skip
    return json.loads(out.stdout or "{}")


def snapshot(url: str) -> dict[str, Any]:
    """What the emulator holds for SageMaker, read with plain boto3 (the AWS CLI takes half a
    second a call), less what AWS makes up anew each time (ARNs, times)."""
    aws = AwsClient.create("us-east-1", endpoint_url=url)
    aas, cw = aws.client("application-autoscaling"), aws.client("cloudwatch")
    targets = aas.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    policies = aas.describe_scaling_policies(ServiceNamespace="sagemaker")["ScalingPolicies"]
    alarms = cw.describe_alarms()["MetricAlarms"]
    drop = ("CreationTime", "ScalableTargetARN", "PolicyARN", "AlarmArn", "AlarmActions",
            "AlarmConfigurationUpdatedTimestamp", "StateUpdatedTimestamp")  # fmt: skip
    return {
        "targets": [{k: v for k, v in t.items() if k not in drop} for t in targets],
        "policies": sorted(({k: v for k, v in p.items() if k not in drop} for p in policies),
                           key=lambda p: p["PolicyName"]),
        "alarms": [{k: v for k, v in a.items() if k not in drop} for a in alarms],
    }  # fmt: skip


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_apply_read_back_no_change_and_rollback_to_nothing(
    emulator: str, run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("apply", str(run_dir), "--min-capacity", "2", "--max-capacity", "8",
            "--aws-endpoint-url", emulator, "--yes")  # fmt: skip
    code, out, err = cli(capsys, *args)
    assert (code, err) == (0, ""), out + err
    target = json.loads((run_dir / "analysis.json").read_text())["recommendation"]["target_value"]
    assert "Endpoint ep: InService, variant AllTraffic, 1 x ml.c5.xlarge\n" in out
    assert "    MinCapacity: (none) -> 2\n" in out
    assert f"    TargetValue: (none) -> {round(target, 1):g}\n" in out
    assert "\nApplied. Read back:\n" in out
    assert "alarms Application Auto Scaling created: none reported" in out
    assert f"undo it with `recommender rollback {run_dir}`" in out
    # The plain AWS CLI sees what was asked for.
    policies = aws_cli(emulator, "application-autoscaling", "describe-scaling-policies",
                       "--service-namespace", "sagemaker")["ScalingPolicies"]  # fmt: skip
    (p,) = policies
    assert (p["PolicyName"], p["PolicyType"], p["ResourceId"], p["ScalableDimension"]) == (
        "SageMakerEndpointInvocationScalingPolicy", "TargetTrackingScaling", RESOURCE, DIMENSION)
    config = p["TargetTrackingScalingPolicyConfiguration"]
    assert config == {
        "TargetValue": round(target, 1),
        "PredefinedMetricSpecification": {
            "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
        "ScaleInCooldown": 300, "ScaleOutCooldown": 300, "DisableScaleIn": False,
    }  # fmt: skip
    assert snapshot(emulator)["targets"] == [{
        "ServiceNamespace": "sagemaker", "ResourceId": RESOURCE, "ScalableDimension": DIMENSION,
        "MinCapacity": 2, "MaxCapacity": 8}]  # fmt: skip
    saved = json.loads((run_dir / "autoscaling_state.json").read_text())["saved"]
    assert len(saved) == 1 and saved[0]["state"]["target"] is None
    # Applying again changes nothing and saves nothing.
    code, out, _ = cli(capsys, *args)
    assert code == 0 and "No change: what is there already matches the plan.\n" in out
    assert "Applied" not in out
    assert len(json.loads((run_dir / "autoscaling_state.json").read_text())["saved"]) == 1
    # Rolling back restores "nothing was there": no policy, no target.
    code, out, err = cli(capsys, "rollback", str(run_dir), "--aws-endpoint-url", emulator, "--yes")
    assert (code, err) == (0, ""), out + err
    assert out.endswith(f"Rolled back. Read back:\n{RESOURCE} [{DIMENSION}]: not registered\n")
    assert snapshot(emulator) == {"targets": [], "policies": [], "alarms": []}
    assert not (run_dir / "autoscaling_state.json").exists()


def test_rollback_restores_what_was_there(
    emulator: str, run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aws = AwsClient.create("us-east-1", endpoint_url=emulator)
    common = {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE,
              "ScalableDimension": DIMENSION}  # fmt: skip
    aws.register_scalable_target({**common, "MinCapacity": 1, "MaxCapacity": 3})
    for name, value in (("SageMakerEndpointInvocationScalingPolicy", 700.0), ("cpu", 70.0)):
        aws.put_scaling_policy({**common, "PolicyName": name,
                                "PolicyType": "TargetTrackingScaling",
                                "TargetTrackingScalingPolicyConfiguration": {
                                    "TargetValue": value, "ScaleInCooldown": 600,
                                    "PredefinedMetricSpecification": {"PredefinedMetricType":
                                        "SageMakerVariantInvocationsPerInstance"}}})  # fmt: skip
    before = snapshot(emulator)
    code, out, err = cli(capsys, "apply", str(run_dir), "--min-capacity", "2",
                         "--max-capacity", "8", "--aws-endpoint-url", emulator,
                         "--scale-in-cooldown", "120")  # fmt: skip
    assert (code, err) == (0, ""), out + err
    assert "    MinCapacity: 1 -> 2\n    MaxCapacity: 3 -> 8\n" in out
    assert "    TargetValue: 700 -> " in out and "    ScaleInCooldown: 600 -> 120\n" in out
    assert "    ScaleOutCooldown: (default) -> 300\n" in out
    assert "note: policy cpu is on endpoint/ep/variant/AllTraffic too and stays" in out
    assert snapshot(emulator) != before
    code, out, err = cli(capsys, "rollback", str(run_dir), "--aws-endpoint-url", emulator)
    assert (code, err) == (0, ""), out + err
    assert snapshot(emulator) == before


def test_dry_run_changes_nothing_and_its_commands_make_what_apply_makes(
    emulator: str, run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("apply", str(run_dir), "--min-capacity", "2", "--max-capacity", "8",
            "--policy-name", "my-policy", "--aws-endpoint-url", emulator)  # fmt: skip
    code, out, err = cli(capsys, *args, "--dry-run")
    assert (code, err) == (0, ""), out + err
    assert "note: Policy name 'my-policy': the SageMaker console shows it as a custom " in out
    assert snapshot(emulator) == {"targets": [], "policies": [], "alarms": []}
    assert not (run_dir / "autoscaling_state.json").exists()
    policy_file = run_dir / "target_tracking_scaling_policy.json"
    assert json.loads(policy_file.read_text())["ScaleOutCooldown"] == 300
    commands = out[out.index("aws application-autoscaling register-scalable-target"):]
    assert f"file://{policy_file}" in commands
    # The printed commands, as they are, with only the endpoint URL added.
    script = commands.replace("aws application-autoscaling ",
                              f"{AWS_CLI} --endpoint-url {emulator} application-autoscaling ")
    subprocess.run(["bash", "-euo", "pipefail", "-c", script], check=True,
                   capture_output=True, env=os.environ)  # fmt: skip
    by_commands = snapshot(emulator)
    code, out, _ = cli(capsys, *args)
    assert code == 0 and "No change: what is there already matches the plan." in out
    # The real apply, from nothing, makes the same.
    aws = AwsClient.create("us-east-1", endpoint_url=emulator)
    common = {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE,
              "ScalableDimension": DIMENSION}  # fmt: skip
    aws.delete_scaling_policy({**common, "PolicyName": "my-policy"})
    aws.deregister_scalable_target(common)
    code, out, err = cli(capsys, *args)
    assert (code, err) == (0, "") and "Applied" in out, out + err
    assert snapshot(emulator) == by_commands


def create_async_endpoint(url: str) -> None:
    sm = AwsClient.create("us-east-1", endpoint_url=url).client("sagemaker")
    sm.create_endpoint_config(
        EndpointConfigName="aep-config",
        ProductionVariants=[{"VariantName": "AllTraffic", "ModelName": "ep-model",
                             "InitialInstanceCount": 1, "InstanceType": "ml.m5.large"}],
        AsyncInferenceConfig={"OutputConfig": {"S3OutputPath": "s3://bucket/out"}},
    )  # fmt: skip
    sm.create_endpoint(EndpointName="aep", EndpointConfigName="aep-config")


def test_async_scale_from_zero_dry_run_apply_and_rollback(
    emulator: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    create_async_endpoint(emulator)
    monkeypatch.chdir(tmp_path)
    args = ("apply", "--kind", "async", "--endpoint", "aep", "--target-value", "5",
            "--min-capacity", "0", "--max-capacity", "4", "--scale-from-zero",
            "--aws-endpoint-url", emulator, "--region", "us-east-1")  # fmt: skip
    code, out, err = cli(capsys, *args, "--dry-run")
    assert (code, err) == (0, ""), out + err
    assert (tmp_path / "step_scaling_policy.json").is_file()
    script = out[out.index("aws application-autoscaling register-scalable-target"):]
    for service in ("application-autoscaling", "cloudwatch"):
        script = script.replace(f"aws {service} ", f"{AWS_CLI} --endpoint-url {emulator} "
                                f"{service} ")  # fmt: skip
    subprocess.run(["bash", "-euo", "pipefail", "-c", script], check=True,
                   capture_output=True, env=os.environ)  # fmt: skip
    by_commands = snapshot(emulator)
    (alarm,) = aws_cli(emulator, "cloudwatch", "describe-alarms")["MetricAlarms"]
    policies = aws_cli(emulator, "application-autoscaling", "describe-scaling-policies",
                       "--service-namespace", "sagemaker")["ScalingPolicies"]  # fmt: skip
    step = next(p for p in policies if p["PolicyType"] == "StepScaling")
    assert alarm["AlarmActions"] == [step["PolicyARN"]]
    assert (alarm["MetricName"], alarm["Threshold"]) == ("HasBacklogWithoutCapacity", 1.0)
    code, out, _ = cli(capsys, *args)
    assert code == 0 and "No change" in out
    # Now from nothing, for real, and back.
    aws = AwsClient.create("us-east-1", endpoint_url=emulator)
    common = {"ServiceNamespace": "sagemaker", "ResourceId": "endpoint/aep/variant/AllTraffic",
              "ScalableDimension": DIMENSION}  # fmt: skip
    for p in policies:
        aws.delete_scaling_policy({**common, "PolicyName": p["PolicyName"]})
    aws.deregister_scalable_target(common)
    aws.delete_alarms([alarm["AlarmName"]])
    code, out, err = cli(capsys, *args, "--yes")
    assert (code, err) == (0, ""), out + err
    assert "  alarm HasBacklogWithoutCapacity-aep: HasBacklogWithoutCapacity Average " in out
    assert snapshot(emulator) == by_commands
    assert (tmp_path / "autoscaling_state.json").is_file()
    code, out, err = cli(capsys, "rollback", "--aws-endpoint-url", emulator)
    assert (code, err) == (0, ""), out + err
    assert snapshot(emulator) == {"targets": [], "policies": [], "alarms": []}


ERRORS = [
    (["--min-capacity", "3", "--max-capacity", "2"], 2,
     "Error: --min-capacity (3) is above --max-capacity (2)"),
    (["--min-capacity", "0", "--max-capacity", "2"], 2,
     "Error: --min-capacity 0: a real-time variant needs at least 1 instance"),
    (["--endpoint", "missing", "--min-capacity", "1", "--max-capacity", "2"], 4,
     "Error: no endpoint named 'missing' in us-east-1 (check --endpoint and --region)"),
    (["--variant", "Blue", "--min-capacity", "1", "--max-capacity", "2"], 4,
     "Error: endpoint ep has no variant 'Blue' (it has AllTraffic) (check --variant)"),
    (["--kind", "async", "--target-value", "5", "--min-capacity", "0", "--max-capacity", "2"],
     2, "Error: endpoint ep is not asynchronous (use --kind variant)"),
    (["--target-value", "many", "--min-capacity", "1", "--max-capacity", "2"], 2,
     "Error: --target-value must be a number (got 'many')"),
    (["--min-capacity", "1", "--max-capacity", "2", "UNTRUSTED"], 1,
     "Error: the run {run} is not a trustworthy basis for a policy: its capacity is a "
     "lower bound"),
]  # fmt: skip


def test_errors_are_one_line_and_change_nothing(
    emulator: str, run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # One emulator for all the cases: none of them may leave anything in it.
    untrusted = step_run(tmp_path / "untrusted", passing_up_to=1000)  # no stage fails the SLO
    update_run_meta(untrusted, target={"endpoint": "ep", "region": "us-east-1"})
    write_reports(untrusted, formats=["json"])
    for argv, code, message in ERRORS:
        run = untrusted if "UNTRUSTED" in argv else run_dir
        args = [a for a in argv if a != "UNTRUSTED"]
        got, out, err = cli(capsys, "apply", str(run), *args, "--aws-endpoint-url", emulator,
                            "--yes")  # fmt: skip
        assert got == code, (argv, out, err)
        assert err.startswith(message.format(run=run)) and err.count("\n") == 1, (argv, err)
        assert snapshot(emulator) == {"targets": [], "policies": [], "alarms": []}, argv
        assert not (run / "autoscaling_state.json").exists(), argv


def test_a_failed_put_restores_what_was_there(
    emulator: str, run_dir: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    def refuse(self: AwsClient, params: Any) -> str:
        raise AwsError("PutScalingPolicy failed: LimitExceededException: too many policies")

    monkeypatch.setattr(AwsClient, "put_scaling_policy", refuse)
    code, out, err = cli(capsys, "apply", str(run_dir), "--min-capacity", "2",
                         "--max-capacity", "8", "--aws-endpoint-url", emulator,
                         "--yes")  # fmt: skip
    assert code == 4  # an AWS call failed
    assert err == (
        "Error: PutScalingPolicy failed: LimitExceededException: too many policies; the "
        f"previous state was restored (DeregisterScalableTarget {RESOURCE})\n"
    )
    assert snapshot(emulator) == {"targets": [], "policies": [], "alarms": []}
    assert not (run_dir / "autoscaling_state.json").exists()


def test_apply_library_asks_and_a_no_changes_nothing(emulator: str, run_dir: Path) -> None:
    """recommender.apply.apply: the CLI's flow as a function; `confirm` answering no leaves
    what is there (nothing saved), and a dry run never asks."""
    from recommender.apply import Outcome, apply
    from recommender.options import AwsAccess
    from recommender.policy.plan import PolicyRequest

    shown: list[str] = []
    asked: list[str] = []

    def no(message: str) -> bool:
        asked.append(message)
        return False

    request = PolicyRequest(min_capacity=2, max_capacity=8)
    common = {"run_dir": run_dir, "request": request, "access": AwsAccess(endpoint_url=emulator),
              "echo": shown.append, "confirm": no}  # fmt: skip
    assert apply(**common, dry_run=True) is Outcome.DRY_RUN  # type: ignore[arg-type]
    assert asked == [] and "Dry run: nothing was changed" in "\n".join(shown)
    assert apply(**common) is Outcome.DECLINED  # type: ignore[arg-type]
    assert asked == ["Apply these changes?"]
    assert snapshot(emulator)["targets"] == []
    assert not (run_dir / "autoscaling_state.json").exists()


def test_two_applies_need_two_rollbacks_each_restoring_its_state(
    emulator: str, run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The saved states are a stack: apply A, apply B, rollback -> A exactly, rollback ->
    what was there before A exactly."""
    aws = AwsClient.create("us-east-1", endpoint_url=emulator)
    common = {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE,
              "ScalableDimension": DIMENSION}  # fmt: skip
    aws.register_scalable_target({**common, "MinCapacity": 1, "MaxCapacity": 3})
    aws.put_scaling_policy({**common, "PolicyName": "SageMakerEndpointInvocationScalingPolicy",
                            "PolicyType": "TargetTrackingScaling",
                            "TargetTrackingScalingPolicyConfiguration": {
                                "TargetValue": 700.0, "ScaleInCooldown": 600,
                                "PredefinedMetricSpecification": {"PredefinedMetricType":
                                    "SageMakerVariantInvocationsPerInstance"}}})  # fmt: skip
    state_file = run_dir / "autoscaling_state.json"
    states = [snapshot(emulator)]
    for lo, hi, cooldown in (("2", "8", "120"), ("3", "10", "240")):
        code, out, err = cli(capsys, "apply", str(run_dir), "--min-capacity", lo,
                             "--max-capacity", hi, "--scale-in-cooldown", cooldown,
                             "--aws-endpoint-url", emulator, "--yes")  # fmt: skip
        assert (code, err) == (0, ""), out + err
        states.append(snapshot(emulator))
        assert states[-1]["targets"][0]["MinCapacity"] == int(lo)
        assert len(json.loads(state_file.read_text())["saved"]) == len(states) - 1
    assert states[0] != states[1] != states[2]
    for expected in (states[1], states[0]):
        code, out, err = cli(capsys, "rollback", str(run_dir), "--aws-endpoint-url", emulator,
                             "--yes")  # fmt: skip
        assert (code, err) == (0, ""), out + err
        assert snapshot(emulator) == expected
    assert not state_file.exists()
    code, out, err = cli(capsys, "rollback", str(run_dir), "--aws-endpoint-url", emulator,
                         "--yes")  # fmt: skip
    assert code == 1 and err.startswith(f"Error: no saved autoscaling state in {state_file}")
    assert snapshot(emulator) == states[0]


def test_apply_and_rollback_check_what_they_read_back(
    emulator: str, run_dir: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """AWS taking a call but storing something else (here: another MinCapacity) is an error
    that keeps the saved state, for apply and for rollback alike."""
    real = AwsClient.register_scalable_target
    altered: dict[str, int] = {}

    def alter(self: AwsClient, params: Any) -> None:
        real(self, {**params, **altered})

    monkeypatch.setattr(AwsClient, "register_scalable_target", alter)
    state_file = run_dir / "autoscaling_state.json"
    altered["MinCapacity"] = 5
    code, out, err = cli(capsys, "apply", str(run_dir), "--min-capacity", "2",
                         "--max-capacity", "8", "--aws-endpoint-url", emulator,
                         "--yes")  # fmt: skip
    assert code == 4, out + err  # AWS answered, but not what was asked: an AWS error
    assert err == (
        "Error: the policy read back differs from the plan: scalable target MinCapacity is 5, "
        f"planned 2 (the previous state is saved in {state_file}: run `recommender rollback "
        f"{run_dir}`)\n"
    )
    assert len(json.loads(state_file.read_text())["saved"]) == 1
    # The rollback deregisters (nothing was there): make it leave a target behind instead.
    monkeypatch.setattr(AwsClient, "deregister_scalable_target",
                        lambda self, params: None)  # fmt: skip
    code, out, err = cli(capsys, "rollback", str(run_dir), "--aws-endpoint-url", emulator,
                         "--yes")  # fmt: skip
    assert code == 4, out + err
    assert err.startswith("Error: the state read back differs from the saved one: scalable "
                          "target ")
    assert err.endswith(f"(the saved state stays in {state_file})\n")
    assert len(json.loads(state_file.read_text())["saved"]) == 1
    assert snapshot(emulator)["targets"][0]["MinCapacity"] == 5
