"""`recommender demo`, the real path (AWS emulator, model server publishing CloudWatch
metrics, SigV4-signed load, adaptive search, CloudWatch collection, reports), with the
search's stages shortened from 10 s to 6 s so the suite stays fast (~40 s instead of ~70 s).
Everything else is the demo as a user runs it: `main(["demo"])`."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from recommender import metrics
from recommender.analysis.capacity import interpolate_crossing
from recommender.cli import main
from recommender.local import demo
from recommender.local.emulator import EMULATOR_ENV

# A user's own credentials in the environment: the demo must never sign with them.
USER_KEY = "AKIADEMOUSERKEY00001"
USER_SECRET = "demo/user/SECRET/0123456789abcdefghijkl"


@pytest.mark.serial
def test_demo_sizes_its_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # run_demo sets the emulator's credentials in os.environ: monkeypatch restores them.
    for key in EMULATOR_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", USER_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", USER_SECRET)
    monkeypatch.setenv("AWS_PROFILE", "someone")
    monkeypatch.setattr(demo, "DEMO_PLAN", replace(demo.DEMO_PLAN, start_rps=100,
                        stage_seconds=6, warmup_seconds=1, precision=0.1,
                        max_duration=72))  # fmt: skip
    code = main(["demo", "--out", str(tmp_path), "--yes"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert "Starting the demo model server (true capacity 200 rps)" in out
    # The truth for the arrivals used (Poisson, the default) on this machine: the M/G/4
    # queue of the slot times the server reported at a trickle, plus the time outside them,
    # p95 <= 150 ms; at most the ideal server's (M/D/4: 188.5).
    head = ("True capacity of the demo server within p95<=150ms under poisson arrivals on "
            "this machine: ")  # fmt: skip
    assert head in out and "the ideal server's (every slot exactly its service time): " \
        "188.5 rps" in out and "the server timed at a trickle (100 requests one at a time" in out
    truth = float(out.split(head)[1].split(" rps")[0])
    assert 150 <= truth <= 189.0, truth
    (run_dir,) = tmp_path.iterdir()
    assert f"Run directory: {run_dir}" in out
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "complete" and meta["search"]["mode"] == "adaptive"
    assert meta["target"]["endpoint"] == "recommender-demo"
    assert meta["target"]["instance_type"] == "ml.m5.large"
    # Through the AWS path: CloudWatch's Invocations agree with the client's count.
    table = metrics.read_csv(run_dir / "cloudwatch.csv")
    invocations = sum(r["value"] for r in table if r["metric"] == "Invocations")
    assert abs(invocations - meta["totals"]["successes"]) <= 0.02 * meta["totals"]["successes"]
    analysis = json.loads((run_dir / "analysis.json").read_text())
    capacity = analysis["capacity"]
    assert capacity["method"] == "interpolated", analysis["stages"]
    lo, hi = capacity["interval_rps_per_instance"]
    assert lo <= capacity["rps_per_instance"] <= hi
    # The probe at 240 finds the ceiling (~200), the search bisects below it; 6 s stages
    # count Poisson arrivals to +-5%, so the estimate is held to 8% of the truth. Short
    # Poisson stages near the knee pass optimistically (197.6 rps, 1.05 x the truth, on CI
    # beside the neighbour), so the truth must lie in the 95% interval, which reaches down 7%
    # under the knee's pass (issue 17), not in the bracket: no stage passes at the
    # saturation (~200, 6% over the truth), so it always reaches under 187.
    ci_lo, ci_hi = capacity["ci_rps_per_instance"]
    assert ci_lo <= lo and hi <= ci_hi
    assert ci_lo <= truth <= ci_hi, (truth, capacity, analysis["stages"])
    saturation = analysis["saturation"]["rps_per_instance"]
    assert 190 <= saturation <= 202, analysis["saturation"]
    estimate = capacity["rps_per_instance"]
    assert 0.92 * truth <= estimate <= 1.08 * truth, (truth, saturation, analysis["stages"])
    # 1.08 x the truth is above the saturation, so the estimate must be the one the
    # bracketing stages give (where their SLO score crosses 1), not the throughput ceiling:
    # an estimator that took the ceiling for the capacity within the SLO fails here, not a
    # knee's pass by chance (a margin under the saturation did: 197.7 against 0.98 x 200).
    by_index = {s["index"]: s for s in analysis["stages"]}
    ok, bad = by_index[capacity["passing_stage"]], by_index[capacity["failing_stage"]]
    crossing = interpolate_crossing(ok["achieved_rps"], ok["score"], bad["achieved_rps"],
                                    math.inf if bad["score"] is None else bad["score"])  # fmt: skip
    assert estimate == pytest.approx(crossing) and estimate < saturation, (ok, bad, saturation)
    assert capacity["arrivals"] == "poisson"
    assert analysis["recommendation"]["target_value"] == pytest.approx(
        capacity["rps_per_instance"] * 0.5 * 60)
    for name in ("report.md", "report.html"):
        assert (run_dir / name).is_file()
    # The user's credentials were neither used nor written anywhere.
    for f in run_dir.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert USER_KEY.encode() not in data and USER_SECRET.encode() not in data, f


def test_llm_demo_sizes_its_inference_component_on_concurrency(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`demo --llm` as a user runs it, with 5 ms decode steps (a generation of ~430 ms, so
    stages of 5 s hold enough requests; the TTFT limit shortened with it to stay below one
    generation) and a coarser bracket: the streaming search over requests in flight on the
    emulated endpoint's inference component, its CloudWatch series, the concurrency target
    and the truth (8 in flight: the batch)."""
    for key in EMULATOR_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(demo, "LLM_SERVER", replace(
        demo.LLM_SERVER, llm=replace(demo.LLM_SERVER.llm, step_ms=5.0)))  # fmt: skip
    monkeypatch.setattr(demo, "LLM_SLO", demo.LLM_SLO.replace("ttft_p95<=500ms",
                                                              "ttft_p95<=300ms"))  # fmt: skip
    monkeypatch.setattr(demo, "LLM_PLAN", replace(demo.LLM_PLAN, stage_seconds=5,
                        warmup_seconds=1, precision=0.3, max_duration=45))  # fmt: skip
    code = main(["demo", "--llm", "--out", str(tmp_path), "--yes"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert f"Inference component {demo.LLM_COMPONENT}: InService" in out
    assert "stage 1 at 8 in flight: PASS" in out
    assert "True concurrency of the LLM server within its SLO: 8 in flight per copy" in out, out
    (run_dir,) = tmp_path.iterdir()
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["target"]["inference_component"] == demo.LLM_COMPONENT
    assert meta["target"]["url"].endswith("/invocations-response-stream")
    assert meta["plan"]["control"] == "concurrency"
    # The calls named the component: CloudWatch has its own series.
    table = metrics.read_csv(run_dir / "cloudwatch.csv")
    assert {"InvocationsPerCopy", "ConcurrentRequestsPerCopy"} <= {r["metric"] for r in table}
    # ... and the wait for them ended with the last period that served calls.
    assert "had not delivered" not in out
    analysis = json.loads((run_dir / "analysis.json").read_text())
    c = analysis["concurrency"]
    assert c["basis"] == "measured" and c["method"] == "interpolated", analysis["stages"]
    lo, hi = c["interval_per_instance"]
    assert lo == 8 < hi, analysis["stages"]  # the batch passes; more fail
    assert c["output_tokens_per_s_per_instance"] == pytest.approx(
        c["throughput_rps_per_instance"] * 64, rel=0.02)  # 64 new tokens a prompt
    rec = analysis["recommendation"]
    assert rec["concurrency_metric"] == (
        "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution")
    assert rec["concurrency_target_value"] == pytest.approx(c["per_instance"] * 0.5)
    assert "output tokens/s per copy" in (run_dir / "report.md").read_text()


def test_demo_sweep_names_the_known_cheapest(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`demo --sweep` as a user runs it, on two of its types (the third only lengthens it)
    and a shorter search: m5.xlarge (32 rps, $0.23) against c5.2xlarge (80 rps, $0.408).
    The search starts above m5.xlarge's capacity, so its run ends at the first stage; the
    ranking itself is tested in test_sweep.py."""
    for key in EMULATOR_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr(demo, "SWEEP_TYPES", ("ml.m5.xlarge", "ml.c5.2xlarge"))
    monkeypatch.setattr(demo, "SWEEP_PLAN", replace(demo.SWEEP_PLAN, start_rps=40, max_rps=120,
                        stage_seconds=3, max_duration=9))  # fmt: skip
    monkeypatch.setattr(demo, "SWEEP_CLOUDWATCH_WAIT", 3.0)
    code = main(["demo", "--sweep", "--out", str(tmp_path), "--quiet"])
    out, err = capsys.readouterr()
    assert code == 0, out + err
    assert demo.known_cheapest(demo.SWEEP_TYPES) == "ml.c5.2xlarge"
    assert ("Known cheapest (true capacity and price): ml.c5.2xlarge; the sweep found: "
            "ml.c5.2xlarge (right)") in out  # fmt: skip
    (sweep_dir,) = tmp_path.iterdir()
    resources = json.loads((sweep_dir / "deployed.json").read_text())["resources"]
    assert len(resources) == 4 and all(r["deleted"] for r in resources)
