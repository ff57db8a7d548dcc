"""`recommender sweep` and `cleanup`: against the AWS emulator with the local hosting layer
(endpoints the sweep creates get model servers of their type's known capacity), as a user
runs them; a quota error through botocore's Stubber (the emulator has no quotas)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from botocore.stub import Stubber

from recommender import runs
from recommender import sweep as sweep_mod
from recommender.aws import AwsClient
from recommender.cli import main
from recommender.compare import Candidate, rank
from recommender.errors import EndpointError
from recommender.local.emulator import EMULATOR_ENV, running_emulator
from recommender.local.hosting import HostingConfig, running_hosting
from recommender.local.instance_types import profile_for
from recommender.options import RunOptions
from recommender.sizing import PRICES_USD_PER_HOUR
from recommender.traffic import TrafficSpec
from tests.conftest import interruptible, reaped

ARN = "arn:aws:sagemaker:us-east-1:123456789012:"
SCHEMA = Path(sweep_mod.__file__).parent / "report" / "sweep.schema.json"
# Two types of known capacity (recommender.local.instance_types): m5.large 16 rps, c5.xlarge
# 40 rps. Short stages and a small budget: the test checks the sweep's mechanics and its
# ranking, which these capacities (2.5x apart) decide whatever the noise.
TYPES = ("ml.m5.large", "ml.c5.xlarge")
LOAD = ["--slo", "p95<=400ms", "--start-rps", "12", "--max-rps", "60", "--stage-seconds", "3",
        "--warmup-seconds", "1", "--precision", "0.2", "--max-duration", "21",
        "--cloudwatch-period", "1", "--cloudwatch-wait", "6", "--peak-rps", "100",
        "--yes", "--quiet"]  # fmt: skip


@pytest.fixture(scope="module")
def stack() -> Iterator[tuple[str, str]]:
    """(emulator URL, router URL), with the model `m` registered."""
    saved = {k: os.environ.get(k) for k in (*EMULATOR_ENV, "AWS_PROFILE")}
    os.environ.update(EMULATOR_ENV)
    os.environ.pop("AWS_PROFILE", None)
    try:
        with running_emulator() as emulator:
            config = HostingConfig(emulator, model="sleep", provision_seconds=0,
                                   metrics_period=1)  # fmt: skip
            with running_hosting(config) as router:
                AwsClient.create("us-east-1", endpoint_url=emulator).create_model("m", "img")
                yield emulator, router
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def deployed(emulator: str) -> tuple[list[str], list[str]]:
    aws = AwsClient.create("us-east-1", endpoint_url=emulator)
    return [n for n, _ in aws.list_endpoints()], aws.list_endpoint_configs()


def errors(err: str) -> list[str]:
    """The command's own stderr lines (not the hosting layer's, which shares the stream)."""
    return [line for line in err.strip().splitlines() if not line.startswith("[host]")]


def urls(stack: tuple[str, str]) -> list[str]:
    return ["--aws-endpoint-url", stack[0], "--endpoint-url", stack[1], "--region", "us-east-1"]


def test_sweep_names_the_known_cheapest_and_keeps_only_it(
    stack: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Per request at the known capacities: m5.large $0.115 / 16 rps, c5.xlarge $0.15 / 40 rps.
    prices = {"ml.m5.large": PRICES_USD_PER_HOUR["ml.m5.large"], "ml.c5.xlarge": 0.15}
    code = main(["sweep", "--model-name", "m", "--instance-types", ",".join(TYPES),
                 "--instance-price", "ml.c5.xlarge=0.15", "--parallel", "2", "--keep", "--out",
                 str(tmp_path), *urls(stack), *LOAD])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, out + err
    (sweep_dir,) = tmp_path.iterdir()
    doc = json.loads((sweep_dir / "sweep.json").read_text())
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    # The truth: price over known capacity, per request.
    truth = min(TYPES, key=lambda t: prices[t] / profile_for(t).capacity_rps)
    assert doc["winner"]["instance_type"] == truth == "ml.c5.xlarge", out
    assert f"Cheapest that meets the SLO: {truth}" in out
    assert [c["instance_type"] for c in doc["ranking"]] == ["ml.c5.xlarge", "ml.m5.large"]
    by_type = {c["instance_type"]: c for c in doc["ranking"]}
    for t in TYPES:
        c = by_type[t]
        assert c["meets_slo"] and c["day_cost_usd"] > 0 and c["instances_at_peak"] >= 1
        assert c["rps_per_instance"] <= profile_for(t).capacity_rps * 1.1, c
        run_dir = Path(c["run_dir"])
        assert run_dir.parent == sweep_dir
        for name in ("run.json", "analysis.json", "report.html", "simulation.json",
                     "cloudwatch.csv"):  # fmt: skip
            assert (run_dir / name).is_file(), name
    assert by_type["ml.c5.xlarge"]["price_source"] == "--instance-price ml.c5.xlarge"
    assert "built-in table" in by_type["ml.m5.large"]["price_source"]
    assert "indicative" in (sweep_dir / "report.md").read_text()
    assert "<svg" in (sweep_dir / "report.html").read_text()
    # --keep: the winner stays deployed (tagged so that `cleanup` leaves it), the rest goes,
    # and the policy goes on the kept endpoint through its run directory.
    winner = by_type[truth]
    assert doc["winner"]["kept"] and doc["winner"]["endpoint"] == winner["endpoint"]
    assert doc["winner"]["apply_command"] == (
        f"recommender apply {winner['run_dir']} --min-capacity {winner['min_capacity']} "
        f"--max-capacity {winner['max_capacity']}")
    ledger = json.loads((sweep_dir / "deployed.json").read_text())
    assert sorted((r["name"] == winner["endpoint"], r["deleted"]) for r in ledger["resources"]
                  ) == [(False, True), (False, True), (True, False), (True, False)]  # fmt: skip
    assert deployed(stack[0]) == ([winner["endpoint"]], [winner["endpoint"]])
    aws = AwsClient.create("us-east-1", endpoint_url=stack[0])
    assert aws.sagemaker_tags("endpoint", winner["endpoint"])[sweep_mod.KEPT_KEY] == "true"
    assert sweep_mod.find_leftovers(aws) == []
    aws.delete_endpoint(winner["endpoint"])
    aws.delete_endpoint_config(winner["endpoint"])


def test_a_failure_while_deployed_deletes_it(
    stack: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The emulator cannot make a deployed endpoint fail: the load test does, once the
    # endpoint is InService and serving.
    seen: list[str] = []

    def failing(spec: Any, *args: Any, **kwargs: Any) -> Any:
        seen.append(deployed(stack[0])[0][0])
        raise EndpointError("the endpoint answered the first payload with HTTP 500")

    monkeypatch.setattr(sweep_mod.pipeline, "run_pipeline", failing)
    code = main(["sweep", "--model-name", "m", "--instance-types", ",".join(TYPES),
                 "--out", str(tmp_path), *urls(stack), *LOAD])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 4
    assert errors(err) == [
        "Error: the endpoint answered the first payload with HTTP 500"]
    assert len(seen) == 1 and seen[0].endswith("ml-m5-large")
    assert f"Deleted endpoint {seen[0]}" in out
    assert deployed(stack[0]) == ([], [])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--instance-types", "ml.m5.large,ml.zz9.xlarge"],
         "Error: no price for ml.zz9.xlarge: the built-in table has none "
         "(pass --instance-price ml.zz9.xlarge=USD_PER_HOUR)"),
        (["--instance-types", "ml.m5.large,ml.c5.xlarge", "--model-name", "nope"],
         "Error: no model named 'nope' in us-east-1 (check --model-name and --region "
         "(aws sagemaker list-models))"),
        # The emulator (like AWS in a region without it) refuses the type on create.
        (["--instance-types", "ml.c6i.2xlarge,ml.m5.large", "--instance-price",
          "ml.c6i.2xlarge=0.408"], "Error: CreateEndpointConfig rs-"),
        (["--instance-types", "ml.m5.large"],
         "Error: a sweep compares at least two configurations (give two or more, "
         "comma-separated)"),
        (["--instance-types", "ml.m5.large,ml.c5.xlarge", "--instance-price", "ml.c5.xlarge=x"],
         "Error: bad --instance-price 'ml.c5.xlarge=x' (write TYPE=USD_PER_HOUR, e.g. "
         "ml.c5.xlarge=0.204)"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_leaves_nothing(
    stack: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
    args: list[str], message: str,
) -> None:
    model = [] if "--model-name" in args else ["--model-name", "m"]
    code = main(["sweep", *model, *args, "--out", str(tmp_path), *urls(stack), *LOAD])
    out, err = capsys.readouterr()
    assert code != 0
    (line,) = errors(err)
    assert line.startswith(message), line
    assert deployed(stack[0]) == ([], [])


def test_a_quota_error_on_create_deletes_the_config(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:  # fmt: skip
    """AWS refuses CreateEndpoint when the account's quota for the type is spent; the
    config made just before must go. Request shapes checked against botocore's model."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    aws = AwsClient.create("us-east-1")
    stub = Stubber(aws.client("sagemaker"))
    stub.add_response("describe_model", {"ModelName": "m", "ModelArn": ARN + "model/m",
                      "CreationTime": 0, "ExecutionRoleArn": "arn:aws:iam::1:role/r"},
                      {"ModelName": "m"})  # fmt: skip
    stub.add_response("create_endpoint_config", {"EndpointConfigArn": ARN + "endpoint-config/c"})
    stub.add_client_error("create_endpoint", "ResourceLimitExceeded",
                          "The account-level service limit 'ml.m5.large for endpoint usage' "
                          "is 0 Instances")  # fmt: skip
    stub.add_client_error("delete_endpoint", "ValidationException", "Could not find endpoint")
    stub.add_response("delete_endpoint_config", {})
    stub.activate()
    monkeypatch.setattr(sweep_mod.AwsClient, "connect", lambda *a, **k: aws)
    load = sweep_mod.RunOptions(endpoint="x", slo=("p95<=400ms",), start_rps=8, max_rps=60,
                                stage_seconds=3, max_duration=14, out=tmp_path)  # fmt: skip
    options = sweep_mod.SweepOptions(
        load=load, traffic=sweep_mod.TrafficSpec(pattern="diurnal", peak_rps=100),
        model_name="m", instance_types=TYPES)  # fmt: skip
    with pytest.raises(sweep_mod.RecommenderError, match="ResourceLimitExceeded"):
        sweep_mod.run_sweep(options, echo=lambda _: None)
    stub.assert_no_pending_responses()  # the config was deleted


def test_ctrl_c_deletes_what_was_deployed_and_keeps_the_data(
    stack: tuple[str, str], tmp_path: Path
) -> None:
    # Minute-long stages, a budget of 10 minutes and a fine precision: the first type's
    # search cannot end before the signal, however slow the machine. (With LOAD's 21 s a
    # type, a slow machine's signal once came after the load: Ctrl-C ignored while the
    # first endpoint was deleted, the sweep went on and exited 0.)
    load = [*LOAD]
    for flag, value in (("--stage-seconds", "60"), ("--max-duration", "600"),
                        ("--precision", "0.02")):  # fmt: skip
        load[load.index(flag) + 1] = value
    cmd = [sys.executable, "-m", "recommender", "sweep", "--model-name", "m", "--instance-types",
           ",".join(TYPES), "--out", str(tmp_path), *urls(stack), *load]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=interruptible)
    with reaped(proc):
        # The load is running against a deployed endpoint: requests are on disk.
        deadline = time.monotonic() + 120
        while sum(r["requests"] for f in tmp_path.glob("*/*/latency.jsonl")
                  for r in runs.read_seconds(f)) < 20:  # fmt: skip
            assert proc.poll() is None and time.monotonic() < deadline, proc.poll()
            time.sleep(0.2)
        assert deployed(stack[0])[0]
        assert proc.poll() is None
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 130, out
    assert deployed(stack[0]) == ([], []), out
    (sweep_dir,) = tmp_path.iterdir()
    (run_dir,) = [p for p in sweep_dir.iterdir() if p.is_dir()]
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    assert json.loads((sweep_dir / "sweep.json").read_text())["status"] == "interrupted"


def test_endpoints_the_user_deployed_are_compared_and_kept(
    stack: tuple[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    aws = AwsClient.create("us-east-1", endpoint_url=stack[0])
    for name, instance_type in (("user-a", "ml.m5.large"), ("user-b", "ml.c5.xlarge")):
        aws.create_endpoint_config(name, "m", "AllTraffic", instance_type, 1, {})
        aws.create_endpoint_from_config(name, name, {})
    # 14 s: the saturation probe (4 s) and its rest (3 s) come first, then stages of 3 s.
    load = [*LOAD[: LOAD.index("--max-duration")], "--max-duration", "14",
            *LOAD[LOAD.index("--max-duration") + 2 :]]  # fmt: skip
    code = main(["sweep", "--endpoints", "user-a,user-b", "--parallel", "2", "--json", "--out",
                 str(tmp_path), *urls(stack), *load])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, out + err
    doc = json.loads(out)  # --json: stdout holds sweep.json alone, the progress is on stderr
    assert doc == json.loads(next(tmp_path.iterdir()).joinpath("sweep.json").read_text())
    assert {c["endpoint"]: c["instance_type"] for c in doc["ranking"]} == {
        "user-a": "ml.m5.large", "user-b": "ml.c5.xlarge"}  # fmt: skip
    # Still deployed: the policy goes on the measured endpoint, by its run directory.
    assert doc["winner"]["apply_command"] == (
        f"recommender apply {doc['winner']['run_dir']} --min-capacity "
        f"{doc['ranking'][0]['min_capacity']} --max-capacity {doc['ranking'][0]['max_capacity']}")
    assert "Deleted" not in err
    assert deployed(stack[0]) == (["user-a", "user-b"], ["user-a", "user-b"])
    for name in ("user-a", "user-b"):
        aws.delete_endpoint(name)
        aws.delete_endpoint_config(name)


def test_cleanup_deletes_only_what_sweeps_tagged(
    stack: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    aws = AwsClient.create("us-east-1", endpoint_url=stack[0])
    tag = {sweep_mod.TAG_KEY: "rs-0000000001"}
    aws.create_endpoint_config("left", "m", "AllTraffic", "ml.m5.large", 1, tag)
    aws.create_endpoint_from_config("left", "left", tag)
    aws.create_endpoint_config("mine", "m", "AllTraffic", "ml.m5.large", 1, {})
    kept = {**tag, sweep_mod.KEPT_KEY: "true"}  # a winner --keep kept
    aws.create_endpoint_config("kept", "m", "AllTraffic", "ml.m5.large", 1, kept)
    assert main(["cleanup", "--aws-endpoint-url", stack[0], "--region", "us-east-1",
                 "--dry-run"]) == 0  # fmt: skip
    assert deployed(stack[0]) == (["left"], ["left", "mine", "kept"])
    assert main(["cleanup", "--aws-endpoint-url", stack[0], "--region", "us-east-1",
                 "--yes"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "Deleted endpoint left" in out and "Deleted endpoint-config left" in out
    assert deployed(stack[0]) == ([], ["mine", "kept"])
    aws.delete_endpoint_config("mine")
    aws.delete_endpoint_config("kept")


def test_rank_puts_slo_misses_last_then_day_cost_then_cost_per_request() -> None:
    def c(name: str, rps: float | None, day: float | None, price: float = 1.0) -> Candidate:
        return Candidate(name, name, "", "complete", "interpolated" if rps else "none", rps,
                         None, rps and rps * 30, price, "", None, None, None, None, day, None,
                         ())  # fmt: skip

    ranked = rank([c("miss", None, None), c("dear", 10, 50.0), c("cheap", 10, 20.0),
                   c("tie-a", 20, 50.0), c("tie-b", 5, 50.0, 0.1)])  # fmt: skip
    assert [x.instance_type for x in ranked] == ["cheap", "tie-b", "tie-a", "dear", "miss"]
    assert ranked[0].usd_per_million == pytest.approx(1.0 * 1e6 / (10 * 3600))
    assert ranked[-1].usd_per_million is None and not ranked[-1].meets_slo


class _DeletingAws:
    """AWS as `run_sweep` sees it once the load is over: each deletion is recorded, and the
    first one is interrupted by a second Ctrl-C (SIGINT to this very process)."""

    def __init__(self) -> None:
        self.deleted: list[str] = []

    def delete_endpoint(self, name: str) -> None:
        if not self.deleted:
            signal.raise_signal(signal.SIGINT)  # delivered now, synchronously, to this thread
        self.deleted.append(f"endpoint {name}")

    def delete_endpoint_config(self, name: str) -> None:
        self.deleted.append(f"endpoint-config {name}")


@pytest.mark.usefixtures("keyboard_interrupts")
def test_a_second_ctrl_c_is_held_off_until_deletion_is_done(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """README: deletion happens on Ctrl-C, and "a second Ctrl-C is held off until it is
    done". In process and deterministic: the first Ctrl-C ends the measuring, the second
    arrives in the middle of the deletion; both endpoints and configs are deleted all the
    same, deployed.json says so, the first Ctrl-C still ends the sweep, and Ctrl-C works
    again afterwards."""
    sweep_module = sweep_mod
    aws = _DeletingAws()
    monkeypatch.setattr(sweep_module, "check", lambda options: (None, None))
    monkeypatch.setattr(sweep_module.AwsClient, "connect", lambda *a, **k: aws)
    monkeypatch.setattr(sweep_module, "_configs", lambda options, aws, sid: [])
    monkeypatch.setattr(sweep_module, "describe", lambda options, plan, configs: "")

    def measure_all(options: Any, configs: Any, aws: Any, ledger: Any, *rest: Any) -> None:
        for name in ("rs-a", "rs-b"):  # what Ledger.deploy records, in its order
            ledger._add("endpoint-config", name)
            ledger._add("endpoint", name)
        raise KeyboardInterrupt  # the first Ctrl-C, while measuring

    monkeypatch.setattr(sweep_module, "_measure_all", measure_all)
    options = sweep_module.SweepOptions(
        load=RunOptions(endpoint="(each configuration's)", max_rps=10, out=tmp_path),
        traffic=TrafficSpec(pattern="diurnal", peak_rps=10), endpoints=("a", "b"))
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        sweep_module.run_sweep(options, echo=lambda _: None)
    assert aws.deleted == ["endpoint rs-b", "endpoint-config rs-b", "endpoint rs-a",
                           "endpoint-config rs-a"]  # fmt: skip
    (sweep_dir,) = tmp_path.iterdir()
    ledger = json.loads((sweep_dir / sweep_module.DEPLOYED_FILE).read_text())
    assert all(item["deleted"] for item in ledger["resources"]), ledger
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C is Ctrl-C again
    with pytest.raises(KeyboardInterrupt):
        signal.raise_signal(signal.SIGINT)
