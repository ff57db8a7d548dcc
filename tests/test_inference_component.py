"""Inference components end to end, locally: the AWS emulator's inference-component API (our
extension in front of moto), `run --endpoint E --inference-component IC --control concurrency`
through signed calls carrying the component header against the real local server (which
publishes the component's CloudWatch series), and `apply --kind inference-component` through
Application Auto Scaling in the emulator."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from recommender import metrics
from recommender.aws import AwsClient
from recommender.cli import main
from recommender.errors import EndpointError
from recommender.local import closed_loop
from recommender.local.emulator import running_emulator
from recommender.local.process import running_server
from recommender.local.publisher import PublishConfig
from recommender.local.server import ServerConfig
from recommender.redact import fingerprint
from tests.conftest import reset_emulator

COMPONENT = "llm-ic"
HEADER = "X-Amzn-SageMaker-Inference-Component"


@pytest.fixture(scope="module")
def shared_emulator() -> Iterator[str]:
    """One emulator process for the module (a start costs seconds on a busy machine)."""
    with pytest.MonkeyPatch.context() as mp:
        for k, v in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                     ("AWS_SESSION_TOKEN", "testing"), ("AWS_DEFAULT_REGION", "us-east-1")):
            mp.setenv(k, v)  # fmt: skip
        mp.delenv("AWS_PROFILE", raising=False)
        with running_emulator() as url:
            yield url


@pytest.fixture
def emulator(shared_emulator: str) -> AwsClient:
    """The module's emulator emptied (moto and the inference components alike), with two
    endpoints and a component on each."""
    reset_emulator(shared_emulator)
    aws = AwsClient.create("us-east-1", endpoint_url=shared_emulator)
    aws.create_endpoint("ep", "AllTraffic", "ml.g4dn.xlarge", 1, image="local/x:latest")
    aws.create_endpoint("other", "AllTraffic", "ml.g4dn.xlarge", 1, image="local/x:latest")
    aws.create_inference_component(COMPONENT, "ep", "AllTraffic", "ep-model", 1)
    aws.create_inference_component("elsewhere", "other", "AllTraffic", "other-model", 1)
    return aws


def test_the_emulators_reset_empties_its_extensions_too(emulator: AwsClient) -> None:
    """moto's POST /moto-api/reset, through our layer: the inference components and the
    scaling activities (extensions moto knows nothing of) go with moto's own state."""
    from recommender.local.activities_emulator import PUT_OPERATION

    url = emulator.endpoint_url or ""
    activity = {"ActivityId": "a-1", "ServiceNamespace": "sagemaker", "ResourceId": "r",
                "ScalableDimension": "d", "Description": "x", "Cause": "y", "StartTime": 1.0,
                "StatusCode": "Successful"}  # fmt: skip
    headers = {"X-Amz-Target": PUT_OPERATION, "Content-Type": "application/x-amz-json-1.1"}
    put = urllib.request.Request(url, data=json.dumps(activity).encode(), headers=headers,
                                 method="POST")  # fmt: skip
    with urllib.request.urlopen(put, timeout=10):
        pass
    scaling = emulator.client("application-autoscaling")
    assert len(scaling.describe_scaling_activities(
        ServiceNamespace="sagemaker")["ScalingActivities"]) == 1  # fmt: skip
    reset_emulator(url)
    assert scaling.describe_scaling_activities(
        ServiceNamespace="sagemaker")["ScalingActivities"] == []  # fmt: skip
    with pytest.raises(EndpointError, match=f"no inference component named '{COMPONENT}'"):
        emulator.describe_inference_component(COMPONENT)
    assert emulator.list_endpoints() == []


def test_emulator_answers_the_inference_component_api(emulator: AwsClient) -> None:
    sm = emulator.client("sagemaker")
    ic = emulator.describe_inference_component(COMPONENT)
    assert (ic.endpoint, ic.variant, ic.copies, ic.status) == ("ep", "AllTraffic", 1, "InService")
    sm.update_inference_component_runtime_config(InferenceComponentName=COMPONENT,
                                                 DesiredRuntimeConfig={"CopyCount": 3})
    assert emulator.describe_inference_component(COMPONENT).copies == 3
    listed = sm.list_inference_components(EndpointNameEquals="ep")["InferenceComponents"]
    assert [c["InferenceComponentName"] for c in listed] == [COMPONENT]
    with pytest.raises(EndpointError, match="no inference component named 'nope'"):
        emulator.describe_inference_component("nope")
    with pytest.raises(Exception, match="Could not find endpoint"):
        emulator.create_inference_component("x", "missing", "AllTraffic", "m", 1)
    sm.delete_inference_component(InferenceComponentName="elsewhere")
    assert sm.list_inference_components()["InferenceComponents"][0]["EndpointName"] == "ep"
    # What moto does not know still reaches moto (our layer forwards everything else).
    assert sm.describe_endpoint(EndpointName="ep")["EndpointStatus"] == "InService"


def test_unknown_or_foreign_component_is_one_line(
    emulator: AwsClient, capsys: pytest.CaptureFixture[str]
) -> None:
    url = emulator.endpoint_url or ""
    base = ["loadtest", "--endpoint", "ep", "--region", "us-east-1", "--aws-endpoint-url", url,
            "--endpoint-url", "http://127.0.0.1:9", "--max-rps", "10", "--yes"]  # fmt: skip
    for name, message in (("nope", "no inference component named 'nope'"),
                          ("elsewhere", "belongs to endpoint other, not ep")):  # fmt: skip
        assert main([*base, "--inference-component", name]) == 4  # ExitCode.ENDPOINT
        err = capsys.readouterr().err
        assert err.startswith("Error: ") and message in err and err.count("\n") == 1, err


# It holds a measured concurrency to a known truth, so it runs alone. The truth holds
# whatever the slots' phases (at 5 in flight on 4 slots of 50 ms, p95 <= 75 ms, spread phases
# passed the level above the truth), and a generator that holds fewer in flight than the
# level (starved of CPU) has its pass left out and replayed (recommender.search.short_of_level).
@pytest.mark.serial
def test_run_on_a_component_closed_loop_then_apply_its_concurrency_target(
    emulator: AwsClient, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One copy served by 1 instance x 2 slots x 50 ms: with p95 <= 68 ms the true
    concurrency is 2 in flight (closed_loop.concurrency_at_slo), at 40 requests/s; 3 in flight
    miss it whatever the phases (p95 at least 73.7 ms: closed_loop.robust_at_slo)."""
    aws, url = emulator, emulator.endpoint_url or ""
    truth = closed_loop.concurrency_at_slo(2, 50.0, 0.95, 68.0)
    assert truth == 2 and closed_loop.robust_at_slo(2, 50.0, 0.95, 68.0)
    publish = PublishConfig("ep", "AllTraffic", 1, "us-east-1", url)
    server = ServerConfig(port=0, concurrency=2, service_time_ms=50.0, model="sleep",
                          max_queue=50, publish=publish)  # fmt: skip
    with running_server(replace(server)) as base:
        code = main([
            "run", "--endpoint", "ep", "--region", "us-east-1", "--endpoint-url", base,
            "--aws-endpoint-url", url, "--inference-component", COMPONENT,
            "--control", "concurrency", "--start-concurrency", "2", "--max-concurrency", "16",
            "--slo", "p95<=68ms", "--stage-seconds", "4", "--warmup-seconds", "1",
            "--max-duration", "60", "--cloudwatch-wait", "5", "--out", str(tmp_path),
        ])  # fmt: skip
        with urllib.request.urlopen(f"{base}/stats", timeout=5) as r:
            seen = json.load(r)["headers_seen"]
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert f"Inference component {COMPONENT}: InService on endpoint ep" in out
    assert "1 copies (capacity is per copy)" in out
    assert "stage 1 at 2 in flight: PASS" in out
    # Every call named the component (the server keeps only a fingerprint of the value).
    assert seen.get(f"{HEADER}: {fingerprint(COMPONENT)}", 0) > 100
    (run_dir,) = tmp_path.iterdir()
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["target"]["inference_component"] == COMPONENT
    assert meta["target"]["headers"][HEADER] == COMPONENT  # a name, not a secret
    assert meta["plan"]["control"] == "concurrency"
    levels = [s["rps"] for s in meta["plan"]["stages"] if s["rps"] > 0]
    assert levels[:3] == [2, 4, 3] and all(float(k).is_integer() for k in levels)
    # CloudWatch: the component's own series (dimension InferenceComponentName).
    table = metrics.read_csv(run_dir / "cloudwatch.csv")
    names = {r["metric"] for r in table}
    assert {"InvocationsPerCopy", "ConcurrentRequestsPerCopy", "ModelLatency"} <= names
    invocations = sum(r["value"] for r in table if r["metric"] == "Invocations")
    assert abs(invocations - meta["totals"]["successes"]) <= 0.03 * meta["totals"]["successes"]
    busiest = max(r["value"] for r in table if r["metric"] == "ConcurrentRequestsPerCopy"
                  and r["stat"] == "Maximum")  # fmt: skip
    assert 3 <= busiest <= 17  # the copy held the stages' requests in flight
    analysis = json.loads((run_dir / "analysis.json").read_text())
    c = analysis["concurrency"]
    assert c["basis"] == "measured" and c["method"] == "interpolated"
    lo, hi = c["interval_per_instance"]
    assert lo <= truth < hi or lo == truth, c  # the bracket holds the truth
    assert truth <= c["per_instance"] < truth + 1  # between the bracketing levels
    assert c["throughput_rps_per_instance"] == pytest.approx(40, rel=0.15)
    rec = analysis["recommendation"]
    assert rec["metric"] == "SageMakerInferenceComponentInvocationsPerCopy"
    assert rec["concurrency_metric"] == (
        "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution")
    assert rec["concurrency_target_value"] == pytest.approx(c["per_instance"] * 0.5)
    md = (run_dir / "report.md").read_text()
    assert "Concurrency target:" in md and "| in flight |" in md and "rps per copy" in md

    # apply: the run says what scales (the component: no --kind) and the target.
    code = main(["apply", str(run_dir), "--metric", "concurrency", "--min-capacity", "1",
                 "--max-capacity", "4", "--aws-endpoint-url", url, "--yes"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, out + err
    scaling = aws.client("application-autoscaling")
    resource = f"inference-component/{COMPONENT}"
    (target,) = scaling.describe_scalable_targets(ServiceNamespace="sagemaker",
                                                  ResourceIds=[resource])["ScalableTargets"]
    assert target["ScalableDimension"] == "sagemaker:inference-component:DesiredCopyCount"
    assert (target["MinCapacity"], target["MaxCapacity"]) == (1, 4)
    (policy,) = scaling.describe_scaling_policies(ServiceNamespace="sagemaker",
                                                  ResourceId=resource)["ScalingPolicies"]
    config = policy["TargetTrackingScalingPolicyConfiguration"]
    assert config["PredefinedMetricSpecification"]["PredefinedMetricType"] == (
        "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution")
    assert config["TargetValue"] == pytest.approx(rec["concurrency_target_value"], rel=1e-2)
    # A variant policy from a run that measured a component is refused, in one line.
    assert main(["apply", str(run_dir), "--kind", "variant", "--min-capacity", "1",
                 "--max-capacity", "4", "--aws-endpoint-url", url, "--yes"]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "use --kind inference-component" in err and err.count("\n") == 1
