"""Fault injection: the real CLI while the endpoint, AWS or the disk misbehave on cue.

The local server's fault control (`recommender serve --fault-control`, recommender.local
.faults) answers SageMaker's error types, resets connections, dribbles answers or dies at
given seconds of the run; the test reads the run's clock origin (generator.json `t0`) and
posts the schedule against it. Every case checks the accounting invariant (each request the
arrival process released is counted once: succeeded, failed by kind, or not sent, in run.json
and latency.jsonl alike), that `analyze` still reads the run directory, the exit code and the
line the user sees. Bounded: short stages at low rates, everything on 127.0.0.1.

Covered elsewhere, not repeated here: Ctrl-C and a worker killed mid-run
(test_integration.py), a worker of another version (test_master_worker.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from recommender import runs, runtime_errors
from recommender.aws import AwsClient
from recommender.cli import main
from recommender.local.emulator import running_emulator
from recommender.local.process import running_server
from recommender.local.server import ServerConfig
from recommender.pipeline import write_reports
from tests.aws_front import AwsFront
from tests.conftest import (
    interruptible,
    reaped,
    step_run,
    update_run_meta,
    use_emulator_credentials,
)
from tests.test_apply import RESOURCE, snapshot

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
# 1 instance x 2 slots / 20 ms = 100 requests/s; the runs below stay at 20-40.
SERVER = ServerConfig(port=0, concurrency=2, service_time_ms=20.0, model="sleep", max_queue=20,
                      fault_control=True)  # fmt: skip
# Stages of 2 s: the second second of each is measured (a warm-up of 0.5 s is left out).
STAGES = ["--search", "fixed", "--stage-seconds", "2", "--warmup-seconds", "0.5"]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with running_server(SERVER) as url:
        yield url


@pytest.fixture
def url(server: str) -> Iterator[str]:
    control(server, "DELETE")
    yield server
    control(server, "DELETE")


def control(url: str, method: str, doc: Any = None) -> dict[str, Any]:
    data = None if doc is None else json.dumps(doc).encode()
    req = urllib.request.Request(f"{url}/faults", data=data, method=method)
    with OPENER.open(req, timeout=5) as r:
        out: dict[str, Any] = json.loads(r.read())
        return out


def stats(url: str) -> dict[str, Any]:
    with OPENER.open(f"{url}/stats", timeout=5) as r:
        out: dict[str, Any] = json.loads(r.read())
        return out


def start(args: list[str], out: Path) -> subprocess.Popen[str]:
    """The real CLI as a process (its own exit code, stdout and stderr). Uniform arrivals, so
    what the played plan released is exactly rate x seconds per stage."""
    return subprocess.Popen(
        [sys.executable, "-m", "recommender", *args, "--out", str(out), "--yes", "--quiet",
         "--arrivals", "uniform"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=interruptible,
    )  # fmt: skip


def clock_origin(out: Path, proc: subprocess.Popen[str], timeout: float = 40.0) -> float:
    """The run's t0 (epoch seconds of its second 0), once the Locust process has set it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        for gen in out.glob(f"*/{runs.GENERATOR_FILE}"):
            try:
                return float(json.loads(gen.read_text())["t0"])
            except (ValueError, KeyError, TypeError):
                pass  # being written
        time.sleep(0.05)
    raise AssertionError(f"no run started: {proc.communicate(timeout=30)}")


def at_run_seconds(t0: float, faults: list[dict[str, Any]]) -> dict[str, Any]:
    """A schedule whose `at` are seconds of the run, as the server wants them: from now."""
    now = time.time()
    out = []
    for f in faults:
        f = dict(f)
        f["start"] = max(0.0, t0 + f.pop("at") - now)
        out.append(f)
    return {"faults": out}


def finish(proc: subprocess.Popen[str], timeout: float = 60.0) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def only_run_dir(out: Path) -> Path:
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    return run_dir


def assert_accounted(run_dir: Path) -> dict[str, Any]:
    """Every request the arrival process released is counted once, in run.json and in
    latency.jsonl alike; the run directory analyses. Returns run.json."""
    meta: dict[str, Any] = json.loads((run_dir / runs.RUN_FILE).read_text())
    records = runs.read_seconds(run_dir / runs.LATENCY_FILE)
    t = meta["totals"]
    kinds: Counter[str] = Counter()
    types: Counter[str] = Counter()
    for r in records:
        kinds.update(r["errors"])
        types.update(r.get("error_types") or {})
        assert r["requests"] == r["ok"] + sum(r["errors"].values()), r
        assert sum((r.get("error_types") or {}).values()) <= sum(r["errors"].values()), r
    assert t["requests"] == sum(r["requests"] for r in records)
    assert t["successes"] == sum(r["ok"] for r in records)
    assert t["errors_by_kind"] == dict(kinds) and t["errors_by_type"] == dict(types)
    assert t["requests"] == t["successes"] + sum(kinds.values())
    # Released = completed + not sent: nothing in between went missing.
    assert t["intended"] == t["requests"] + t["not_sent"] + t.get("not_written", 0), t
    # And released is what the played plan asked for (uniform arrivals: rate x seconds; a
    # run stopped early has its last stage end when run.json was written, a moment later).
    planned = sum(s["rps"] * s["seconds"] for s in meta["stages"])
    assert t["intended"] <= planned + len(meta["stages"]), (t, meta["stages"])
    if meta["status"] == "complete":
        assert abs(t["intended"] - planned) <= len(meta["stages"]), (t, meta["stages"])
    # Per stage, the same requests again (seconds outside every stage have stage null).
    outside = sum(r["requests"] for r in records if r.get("stage") is None)
    assert sum(s["requests"] for s in meta["stages"]) + outside == t["requests"]
    code = main(["analyze", str(run_dir), "--json"])
    assert code in (0, 1, 3, 4)
    return meta


def warning(run_dir: Path, code: str) -> str:
    analysis = json.loads((run_dir / runs.ANALYSIS_FILE).read_text())
    (message,) = [str(w["message"]) for w in analysis["warnings"] if w["code"] == code]
    return message


def codes(run_dir: Path) -> list[str]:
    analysis = json.loads((run_dir / runs.ANALYSIS_FILE).read_text())
    return [w["code"] for w in analysis["warnings"]]


def hms(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%H:%M:%S")


# --- the endpoint -------------------------------------------------------------------------


def test_an_endpoint_killed_mid_stage_is_reported_as_down(tmp_path: Path) -> None:
    with running_server(SERVER) as url:
        proc = start(["run", "--url", f"{url}/invocations", "--start-rps", "20",
                      "--max-rps", "30", "--stages", "2", *STAGES], tmp_path)  # fmt: skip
        t0 = clock_origin(tmp_path, proc)
        control(url, "POST", at_run_seconds(t0, [{"kind": "kill", "at": 2.5}]))
        code, out, err = finish(proc)
    assert code == 4, (out, err)  # the endpoint could not be reached
    assert "Traceback" not in err
    run_dir = only_run_dir(tmp_path)
    meta = assert_accounted(run_dir)
    refused = meta["totals"]["errors_by_kind"]["ConnectionRefusedError"]
    assert refused >= 20 and meta["totals"]["successes"] >= 40 + 10
    # The line the user sees says what happened, and when (the second of the first refusal).
    assert f"No recommendation: connection refused from {hms(t0 + 2)} UTC: is the endpoint " \
           "down?" in out, out
    assert "errors_before_knee" not in codes(run_dir)
    assert warning(run_dir, "endpoint_down").startswith(
        f"Connection refused from {hms(t0 + 2)} UTC: is the endpoint down? Stage 2 ("
    )


def test_throttling_is_not_capacity(url: str, tmp_path: Path) -> None:
    proc = start(["run", "--url", f"{url}/invocations", "--start-rps", "20", "--max-rps", "40",
                  "--stages", "3", *STAGES], tmp_path)  # fmt: skip
    t0 = clock_origin(tmp_path, proc)
    control(url, "POST", at_run_seconds(t0, [
        {"kind": "error", "type": "ThrottlingException", "at": 4.0, "seconds": 2.0}]))
    code, out, err = finish(proc)
    injected = stats(url)["faults_injected"]["error"]
    assert code == 0, (out, err)  # a recommendation, from the stages AWS did not throttle
    run_dir = only_run_dir(tmp_path)
    meta = assert_accounted(run_dir)
    assert meta["totals"]["errors_by_type"] == {"ThrottlingException": injected}
    assert meta["totals"]["errors_by_kind"] == {"ThrottlingException": injected}
    assert meta["stages"][2]["errors_by_type"]["ThrottlingException"] >= 60
    analysis = json.loads((run_dir / runs.ANALYSIS_FILE).read_text())
    assert analysis["capacity"]["method"] == "lower_bound"
    assert analysis["capacity"]["rps_per_instance"] == pytest.approx(30, rel=0.05)
    assert [s["untrusted"] for s in analysis["stages"]] == [None, None, "throttled"]
    message = warning(run_dir, "throttled")
    assert message.startswith("Stage 3: AWS throttled ")
    assert "not the endpoint's capacity" in message and "is only a lower bound" in message
    assert "Raise the quota (Service Quotas) or spread the load" in message
    assert f"warning: {message}" in out
    assert "no_failing_stage" not in codes(run_dir)  # it would say "raise --max-rps"
    assert "errors_before_knee" not in codes(run_dir)


def test_model_not_ready_model_error_and_5xx_are_told_apart(url: str, tmp_path: Path) -> None:
    # A fixed ramp stops at its first failing stage: stage 2's few errors stay within
    # --max-error-rate, and stage 3 fails.
    proc = start(["run", "--url", f"{url}/invocations", "--start-rps", "20", "--max-rps", "40",
                  "--stages", "3", "--max-error-rate", "0.1", *STAGES], tmp_path)  # fmt: skip
    t0 = clock_origin(tmp_path, proc)
    control(url, "POST", at_run_seconds(t0, [
        # Stage 2: a short 429 burst, the endpoint not ready.
        {"kind": "error", "type": "ModelNotReadyException", "at": 3.2, "seconds": 0.5,
         "count": 2},
        # Stage 3: the model fails half the requests, SageMaker a quarter (503).
        {"kind": "error", "type": "ModelError", "at": 4.0, "seconds": 2.0, "share": 0.5},
        {"kind": "error", "type": "ServiceUnavailable", "at": 4.0, "seconds": 2.0,
         "share": 0.5},
    ]))  # fmt: skip
    code, out, err = finish(proc)
    assert code == 0, (out, err)
    run_dir = only_run_dir(tmp_path)
    meta = assert_accounted(run_dir)
    types = meta["totals"]["errors_by_type"]
    assert set(types) == {"ModelNotReadyException", "ModelError", "ServiceUnavailable"}
    assert meta["totals"]["errors_by_kind"] == types  # each kind named by its type
    analysis = json.loads((run_dir / runs.ANALYSIS_FILE).read_text())
    assert [s["untrusted"] for s in analysis["stages"]] == [None, "model_not_ready", None]
    assert analysis["stages"][1]["passed"]  # within the error budget, and still not trusted
    # Stage 2 is left out: the estimate lies between stages 1 and 3.
    assert analysis["capacity"]["method"] == "interpolated"
    assert analysis["capacity"]["passing_stage"] == 0
    assert analysis["capacity"]["failing_stage"] == 2
    assert warning(run_dir, "model_not_ready").startswith(
        "Stage 2: the endpoint answered ModelNotReadyException x")
    assert "not the instance saturating" in warning(run_dir, "model_error")
    assert warning(run_dir, "model_error").startswith("Stage 3 failed on errors the model itself")
    # SageMaker's own 503s are what "errors before the knee" means.
    assert "ServiceUnavailable x" in warning(run_dir, "errors_before_knee")


@pytest.mark.parametrize("kind", sorted(runtime_errors.STATUS))
def test_botocore_reads_each_injected_error_type(url: str, kind: str) -> None:
    """The signed InvokeEndpoint path answers each type in the wire format boto3's own
    sagemaker-runtime client parses into that exception."""
    import boto3
    from botocore.config import Config

    control(url, "POST", {"faults": [{"kind": "error", "type": kind, "count": 1}]})
    client = boto3.client("sagemaker-runtime", region_name="us-east-1", endpoint_url=url,
                          aws_access_key_id="testing", aws_secret_access_key="testing",
                          config=Config(retries={"total_max_attempts": 1}))  # fmt: skip
    with pytest.raises(client.exceptions.ClientError) as caught:
        client.invoke_endpoint(EndpointName="ep", Body=b"[1, 2, 3, 4]",
                               ContentType="application/json")  # fmt: skip
    response = caught.value.response
    assert response["Error"]["Code"] == kind
    assert response["ResponseMetadata"]["HTTPStatusCode"] == runtime_errors.STATUS[kind]
    if kind == "ModelError":
        assert response["OriginalStatusCode"] == 500
    # The fault was for one request: the next one is served.
    assert client.invoke_endpoint(EndpointName="ep", Body=b"[1, 2, 3, 4]",
                                  ContentType="application/json")["Body"].read()  # fmt: skip


def test_resets_a_pause_and_dribbled_answers_lose_nothing(url: str, tmp_path: Path) -> None:
    before = stats(url)
    # Errors and latency within bounds, so the fixed ramp plays every stage.
    proc = start(["loadtest", "--url", f"{url}/invocations", "--start-rps", "20",
                  "--max-rps", "20", "--stages", "3", "--max-error-rate", "0.5",
                  "--abort-error-rate", "0.9", "--slo", "p95<=5s", *STAGES], tmp_path)  # fmt: skip
    t0 = clock_origin(tmp_path, proc)
    control(url, "POST", at_run_seconds(t0, [
        {"kind": "reset", "at": 0.2, "seconds": 1.6, "share": 0.25},
        {"kind": "dribble", "at": 4.2, "seconds": 1.6, "share": 0.5, "dribble_seconds": 0.5},
    ]))  # fmt: skip
    # Stage 2: the whole server process stopped (SIGSTOP) for 1.5 s, then resumed.
    pid = int(before["pid"])
    stop_at = t0 + 2.2 - time.time()
    threading.Timer(stop_at, os.kill, (pid, signal.SIGSTOP)).start()
    threading.Timer(stop_at + 1.5, os.kill, (pid, signal.SIGCONT)).start()
    code, out, err = finish(proc)
    after = stats(url)
    assert code == 0, (out, err)
    run_dir = only_run_dir(tmp_path)
    meta = assert_accounted(run_dir)
    t = meta["totals"]
    resets = after["faults_injected"]["reset"] - before["faults_injected"].get("reset", 0)
    assert resets >= 6
    # Each reset is one failed request, or, on a kept-alive connection, one send made again
    # on a fresh one, as botocore would, and counted as a reconnect (a reset the retry met
    # too is the request's error); the only other errors are the server's own 503s for the
    # backlog the pause left (its queue is 20).
    rejected = after["rejected_503"] - before["rejected_503"]
    failed = resets - t.get("reconnects", 0)
    assert t["errors_by_kind"] == {**({"HTTPConnectionClosed": failed} if failed else {}),
                                   **({"HTTP 503": rejected} if rejected else {})}, t
    assert t["errors_by_type"] == {}
    # Every answer the server gave was recorded (plus the preflight request).
    assert after["served"] - before["served"] == t["successes"] + 1
    assert out.strip().splitlines()[-1] == (
        f"complete: {t['requests']} requests, {t['errors']} errors"
        + (f" ({t['reconnects']} sent again after a kept-alive connection closed)"
           if t.get("reconnects") else "") + f" -> {run_dir}")  # fmt: skip
    assert t["requests"] == 3 * 40 and t["not_sent"] == 0
    code = main(["analyze", str(run_dir), "--json"])
    analysis = json.loads((run_dir / runs.ANALYSIS_FILE).read_text())
    p99 = [s["p99_ms"] for s in analysis["stages"]]
    assert p99[1] > 1000  # held by the pause (from the intended send)
    assert p99[2] > 400  # dribbled over half a second


def test_ctrl_c_with_answers_in_flight_records_them(url: str, tmp_path: Path) -> None:
    """Every answer slow (0.6 s): about 12 requests are in flight when Ctrl-C comes."""
    before = stats(url)
    # Stages of a minute, interrupted a few seconds in: the run cannot end by itself before
    # the signal, however slow the machine (a 6 s plan signalled at t0 + 2.3 s once did).
    proc = start(["loadtest", "--url", f"{url}/invocations", "--start-rps", "20",
                  "--max-rps", "20", "--stages", "3", "--slo", "p95<=5s", "--search", "fixed",
                  "--stage-seconds", "60", "--warmup-seconds", "0.5"], tmp_path)  # fmt: skip
    with reaped(proc):
        t0 = clock_origin(tmp_path, proc)
        control(url, "POST", at_run_seconds(t0, [
            {"kind": "dribble", "at": 0.0, "dribble_seconds": 0.6}]))  # fmt: skip
        # Interrupt once answers are on disk and others are in flight at the server.
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, proc.poll()
            recorded = sum(r["requests"] for r in
                           runs.read_seconds(only_run_dir(tmp_path) / runs.LATENCY_FILE))
            at_signal = stats(url)
            if recorded >= 20 and at_signal["in_flight"] >= 2:
                break
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        code, out, err = finish(proc)
    after = stats(url)
    assert code == 130, (out, err)
    run_dir = only_run_dir(tmp_path)
    meta = assert_accounted(run_dir)
    t = meta["totals"]
    # Stopped long before the first stage's end (1,200 requests), keeping what was on disk.
    assert meta["status"] == "interrupted" and recorded <= t["requests"] < 600
    # Each answer the server gave is on disk (and the preflight request's): those it had
    # begun to dribble when the signal came, which `served` already counted, too.
    assert t["requests"] >= at_signal["served"] - before["served"] - 1
    assert after["served"] - before["served"] == t["successes"] + 1 == t["requests"] + 1
    assert out.strip().splitlines()[-1] == (
        f"interrupted: {t['requests']} requests, 0 errors -> {run_dir}")


# --- the run directory's disk -------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (root can mount one; elsewhere the test is skipped and says why)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    got = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
                         capture_output=True, text=True)  # fmt: skip
    if got.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({got.stderr.strip() or got.returncode}): "
                    "the full-disk case needs one (run as root)")  # fmt: skip
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def fill(path: Path) -> None:
    """Write to `path` until the disk is full."""
    with path.open("wb", buffering=0) as f:
        try:
            while True:
                f.write(bytes(64 * 1024))
        except OSError:
            pass
        try:
            while True:
                f.write(b"x")
        except OSError:
            pass


def test_a_full_disk_stops_the_load_and_keeps_what_was_measured(
    url: str, small_disk: Path
) -> None:
    proc = start(["run", "--url", f"{url}/invocations", "--start-rps", "20", "--max-rps", "20",
                  "--stages", "3", *STAGES], small_disk)  # fmt: skip
    clock_origin(small_disk, proc)
    run_dir = only_run_dir(small_disk)
    deadline = time.monotonic() + 30
    while len(runs.read_seconds(run_dir / runs.LATENCY_FILE)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    fill(small_disk / "filler")
    code, out, err = finish(proc)
    assert code == 1, (out, err)
    last = max(r["second"] for r in runs.read_seconds(run_dir / runs.LATENCY_FILE))
    assert err.splitlines()[-1] == (
        f"Error: the disk holding {run_dir} is full (No space left on device): the load "
        f"stopped after second {last}; what was measured until then is kept (free some "
        f"space, then `recommender analyze {run_dir}`)")  # fmt: skip
    assert "Traceback" not in err
    (small_disk / "filler").unlink()
    # No torn line, nothing reserved left behind, every measured second on disk.
    lines = (run_dir / runs.LATENCY_FILE).read_text().splitlines()
    assert [json.loads(line)["second"] for line in lines] == list(range(last + 1))
    assert not (run_dir / runs.RESERVE_FILE).exists()
    meta = assert_accounted(run_dir)
    assert meta["status"] == "stopped"
    assert meta["generator"]["disk_error"] == "No space left on device"
    assert meta["totals"].get("not_written", 0) == 0
    assert 3 * 20 <= meta["totals"]["requests"] < 6 * 20  # stopped early


def test_a_write_cut_short_by_a_full_disk_leaves_no_torn_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The part of a line a full disk lets through is cut off again; the line is written
    whole into the reserved space, and the load is told to stop once."""
    from recommender.loadgen import roles
    from recommender.loadgen.config import ControllerSpec, LoadgenConfig
    from recommender.plan import linear_ramp, parse_slo

    config = LoadgenConfig(controller=ControllerSpec(linear_ramp(10, 10, 1, 3, 1)),
                           slo=parse_slo(["p95<=1s"]), host="h", path="/invocations",
                           users=1, run_dir=tmp_path)  # fmt: skip
    runs.reserve_space(tmp_path)
    told: list[str] = []
    writer = roles.RunDirWriter(config, told.append)
    writer.second({"second": 0, "requests": 1})
    real_write, full = roles._write_all, [True]

    def short_then_full(fd: int, data: bytes) -> None:
        if full and full.pop():
            os.write(fd, data[:7])  # what fitted before the disk was full
            raise OSError(28, "No space left on device")
        real_write(fd, data)

    monkeypatch.setattr(roles, "_write_all", short_then_full)
    writer.second({"second": 1, "requests": 2})
    writer.second({"second": 2, "requests": 3})
    writer.close()
    lines = (tmp_path / runs.LATENCY_FILE).read_text().splitlines()
    assert [json.loads(line)["second"] for line in lines] == [0, 1, 2]
    assert told == ["No space left on device"]
    assert not (tmp_path / runs.RESERVE_FILE).exists()
    assert writer.unwritten == {"seconds": 0, "requests": 0}


# --- AWS: the emulator throttling or gone, during collect and apply --------------------------


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The AWS emulator with endpoint `ep`; AWS_MAX_ATTEMPTS=2 keeps the retries short."""
    home = tmp_path_factory.mktemp("aws")
    with pytest.MonkeyPatch.context() as mp:
        use_emulator_credentials(mp, home)
        mp.setenv("AWS_MAX_ATTEMPTS", "2")
        with running_emulator() as url:
            AwsClient.create("us-east-1", endpoint_url=url).create_endpoint(
                "ep", "AllTraffic", "ml.c5.xlarge", 1, image="local/x:latest"
            )
            yield url


@pytest.fixture
def front(emulator: str) -> Iterator[AwsFront]:
    f = AwsFront(emulator)
    yield f
    f.close()


@pytest.fixture
def endpoint_run(tmp_path: Path) -> Path:
    """A run of endpoint `ep` (capacity 80-90 requests/s), analysed, with a test window."""
    run = step_run(tmp_path / "run", passing_up_to=80)
    update_run_meta(run, target={"endpoint": "ep", "variant": "AllTraffic", "region": "us-east-1"},
                    started_at="2026-11-29T12:00:00+00:00",
                    ended_at="2026-11-29T12:00:40+00:00")  # fmt: skip
    write_reports(run, formats=["json"])
    return run


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_collect_retries_throttling_then_says_so_in_one_line(
    front: AwsFront, endpoint_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (endpoint_run / runs.RUN_FILE).read_text()
    front.throttle = {"GetMetricData"}
    code, _, err = cli(capsys, "collect", str(endpoint_run), "--wait", "0",
                       "--aws-endpoint-url", front.url)  # fmt: skip
    assert code == 4
    assert err == ("Error: CloudWatch GetMetricData failed: ThrottlingException: Rate exceeded "
                   "(AWS is throttling: wait and retry)\n")  # fmt: skip
    assert front.throttled["GetMetricData"] == 2  # AWS_MAX_ATTEMPTS: tried, retried once
    # Nothing half-written: the run directory is as it was, and analyses.
    assert (endpoint_run / runs.RUN_FILE).read_text() == before
    assert not (endpoint_run / runs.CLOUDWATCH_FILE).exists()
    assert cli(capsys, "analyze", str(endpoint_run), "--json")[0] == 0
    # Once AWS lets it through, the same command collects.
    front.throttle.clear()
    code, out, err = cli(capsys, "collect", str(endpoint_run), "--wait", "0",
                         "--aws-endpoint-url", front.url)  # fmt: skip
    assert code == 0, err
    assert (endpoint_run / runs.CLOUDWATCH_FILE).exists()


def test_collect_with_the_emulator_gone(
    front: AwsFront, endpoint_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    front.go()
    code, _, err = cli(capsys, "collect", str(endpoint_run), "--wait", "0",
                       "--aws-endpoint-url", front.url)  # fmt: skip
    assert code == 4
    assert err.startswith("Error: cannot connect to AWS for CloudWatch GetMetricData: Could "
                          f'not connect to the endpoint URL: "{front.url}/')  # fmt: skip
    assert err.endswith("(check the network and --region)\n") and err.count("\n") == 1
    assert not (endpoint_run / runs.CLOUDWATCH_FILE).exists()


APPLY = ("--min-capacity", "2", "--max-capacity", "8", "--yes")
NOTHING: dict[str, list[Any]] = {"targets": [], "policies": [], "alarms": []}


def test_apply_throttled_half_way_restores_what_was_there(
    emulator: str, front: AwsFront, endpoint_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    front.throttle = {"PutScalingPolicy"}
    code, _, err = cli(capsys, "apply", str(endpoint_run), *APPLY, "--aws-endpoint-url", front.url)
    assert code == 4
    assert err == (
        "Error: PutScalingPolicy SageMakerEndpointInvocationScalingPolicy failed: "
        "ThrottlingException: Rate exceeded; the previous state was restored "
        f"(DeregisterScalableTarget {RESOURCE}) (AWS is throttling: wait and retry)\n"
    )
    assert front.throttled["PutScalingPolicy"] == 2
    assert front.calls["RegisterScalableTarget"] == 1  # made, then undone
    assert snapshot(emulator) == NOTHING
    assert not (endpoint_run / runs.AUTOSCALING_STATE_FILE).exists()


def test_apply_with_the_emulator_gone_keeps_the_state_for_rollback(
    emulator: str, front: AwsFront, endpoint_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    front.gone_at = "PutScalingPolicy"  # the target is registered, then AWS is unreachable
    code, _, err = cli(capsys, "apply", str(endpoint_run), *APPLY, "--aws-endpoint-url", front.url)
    state = endpoint_run / runs.AUTOSCALING_STATE_FILE
    assert code == 4
    # The connection reset, then refused (which of them the last retry met varies).
    assert err.startswith(("Error: cannot connect to AWS for PutScalingPolicy "
                           "SageMakerEndpointInvocationScalingPolicy: ",
                           "Error: PutScalingPolicy SageMakerEndpointInvocationScalingPolicy "
                           "failed: Connection was closed"))  # fmt: skip
    assert "; restoring the previous state failed too: cannot connect to AWS for " in err
    assert err.endswith(f"(the previous state is saved in {state}: run `recommender rollback "
                        f"{endpoint_run}`)\n") and err.count("\n") == 1  # fmt: skip
    assert snapshot(emulator)["targets"] != []  # half applied, and saved
    front.gone_at = None
    front.back()
    code, out, err = cli(capsys, "rollback", str(endpoint_run), "--yes",
                         "--aws-endpoint-url", front.url)  # fmt: skip
    assert code == 0, err
    assert snapshot(emulator) == NOTHING
    assert not state.exists()
