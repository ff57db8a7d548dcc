"""The local hosting layer: endpoints created in the AWS emulator (through boto3, as a user
would) get real model servers behind one router; their instance count follows the
variant's desired count; deleting the endpoint stops them."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest

from recommender import metrics
from recommender.aws import AwsClient
from recommender.cli import main
from recommender.errors import ConfigError
from recommender.loadgen.sigv4 import Credentials, SigV4Signer
from recommender.local.emulator import EMULATOR_ENV, running_emulator
from recommender.local.hosting import HostingConfig, running_hosting
from recommender.local.instance_types import profile_for

BODY = b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
PROVISION_S = 3.0


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[AwsClient, str, str]]:
    """(AWS client on the emulator, emulator URL, router URL)."""
    for key, value in EMULATOR_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    with running_emulator() as emulator:
        config = HostingConfig(emulator, model="sleep", provision_seconds=PROVISION_S,
                               metrics_period=1, poll_seconds=0.5)  # fmt: skip
        with running_hosting(config) as router:
            aws = AwsClient.create("us-east-1", endpoint_url=emulator)
            aws.create_model("m", "local/model:latest")
            yield aws, emulator, router


def status(router: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{router}/_local/endpoints", timeout=5) as r:
        return dict(json.loads(r.read())["endpoints"])


def wait_for(router: str, check: Any, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        s = status(router)
        if check(s) or time.monotonic() > deadline:
            return s
        time.sleep(0.2)


def invoke(router: str, endpoint: str, signed: bool = True,
           headers: dict[str, str] | None = None) -> tuple[int, bytes, dict[str, str]]:  # fmt: skip
    url = f"{router}/endpoints/{endpoint}/invocations"
    h = {"Content-Type": "application/json", **(headers or {})}
    if signed:
        signer = SigV4Signer("us-east-1", lambda: Credentials("testing", "testing", None))
        h = signer.sign("POST", urlsplit(url).netloc, urlsplit(url).path, BODY, h)
    request = urllib.request.Request(url, data=BODY, headers=h, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def create(aws: AwsClient, name: str, instance_type: str, count: int = 1) -> None:
    aws.create_endpoint_config(f"{name}-config", "m", "AllTraffic", instance_type, count, {})
    aws.create_endpoint_from_config(name, f"{name}-config", {})


def test_profiles_follow_the_table() -> None:
    c5 = profile_for("ml.c5.2xlarge")
    assert (c5.slots, c5.service_time_ms, c5.capacity_rps) == (8, 100.0, 80.0)
    assert profile_for("ml.m5.large").capacity_rps == 16.0
    assert profile_for("ml.g4dn.2xlarge").slots == 4  # one accelerator, whatever the vCPUs
    assert profile_for("ml.c5.24xlarge").slots == 16  # capped
    with pytest.raises(ConfigError, match="no local capacity profile for instance type 'ml.zz9"):
        profile_for("ml.zz9.xlarge")


def test_an_endpoint_gets_a_server_that_follows_its_desired_count_and_goes(
    stack: tuple[AwsClient, str, str],
) -> None:
    aws, _, router = stack
    create(aws, "ep-a", "ml.c5.xlarge")
    # Invoked at once: the router waits for the endpoint's first instance to serve.
    code, body, headers = invoke(router, "ep-a")
    assert (code, json.loads(body)) == (200, {"ok": True})
    assert headers["x-Amzn-Invoked-Production-Variant"] == "AllTraffic"
    variant = status(router)["ep-a"]["variants"]["AllTraffic"]
    assert (variant["slots"], variant["service_time_ms"], variant["in_service"]) == (4, 100.0, 1)
    (first,) = variant["instances"]
    assert psutil.pid_exists(first["pid"])
    # As SageMaker's front end: unsigned calls, unknown endpoints and variants are refused.
    assert invoke(router, "ep-a", signed=False)[0] == 403
    code, body, _ = invoke(router, "nope")
    assert code == 400 and b"Endpoint nope of account" in body
    assert invoke(router, "ep-a", headers={"X-Amzn-SageMaker-Target-Variant": "B"})[0] == 400

    # Scale out as Application Auto Scaling does: the new instance is a new process that
    # serves only after the provisioning delay.
    scaled = time.monotonic()
    aws.set_desired_instance_count("ep-a", "AllTraffic", 2)
    s = wait_for(router, lambda s: s["ep-a"]["variants"]["AllTraffic"]["desired"] == 2)
    v = s["ep-a"]["variants"]["AllTraffic"]
    assert (v["in_service"], v["starting"]) == (1, 1), v
    s = wait_for(router, lambda s: s["ep-a"]["variants"]["AllTraffic"]["in_service"] == 2)
    assert time.monotonic() - scaled >= PROVISION_S - 0.5
    pids = [i["pid"] for i in s["ep-a"]["variants"]["AllTraffic"]["instances"]]
    assert len(set(pids)) == 2
    aws.set_desired_instance_count("ep-a", "AllTraffic", 1)
    s = wait_for(router, lambda s: len(s["ep-a"]["variants"]["AllTraffic"]["instances"]) == 1)
    assert s["ep-a"]["variants"]["AllTraffic"]["instances"][0]["pid"] == first["pid"]

    aws.delete_endpoint("ep-a")
    assert wait_for(router, lambda s: "ep-a" not in s) == {}
    deadline = time.monotonic() + 10
    while any(psutil.pid_exists(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids)
    assert invoke(router, "ep-a")[0] == 400


def test_run_against_a_hosted_endpoint_through_the_router(
    stack: tuple[AwsClient, str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`recommender run` as a user runs it against any endpoint created in the emulator:
    signed load through the router, CloudWatch published by the router for the endpoint."""
    aws, emulator, router = stack
    create(aws, "ep-b", "ml.m5.large")  # 2 slots x 125 ms = 16 rps
    code = main([
        "run", "--endpoint", "ep-b", "--region", "us-east-1", "--endpoint-url", router,
        "--aws-endpoint-url", emulator, "--slo", "p95<=400ms", "--search", "fixed",
        "--start-rps", "6", "--max-rps", "10", "--stages", "2", "--stage-seconds", "4",
        "--warmup-seconds", "1", "--cloudwatch-period", "1", "--cloudwatch-wait", "15",
        "--out", str(tmp_path), "--yes", "--quiet",
    ])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "Endpoint ep-b: InService, variant AllTraffic, 1 x ml.m5.large" in out
    (run_dir,) = tmp_path.iterdir()
    meta = json.loads((run_dir / "run.json").read_text())
    table = metrics.read_csv(run_dir / "cloudwatch.csv")
    invocations = sum(r["value"] for r in table if r["metric"] == "Invocations")
    successes = meta["totals"]["successes"]
    assert successes >= 40 and abs(invocations - successes) <= max(2, 0.05 * successes), (
        invocations, successes)  # fmt: skip
