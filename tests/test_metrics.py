from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from recommender import metrics, runs
from recommender.cloudwatch import Datapoint, MetricQuery
from recommender.local.publisher import MetricBuckets, PublishConfig

DIMS = (("EndpointName", "e"), ("VariantName", "v"))


def point(metric: str, stat: str, epoch: float, value: float, period: int = 10) -> Datapoint:
    q = MetricQuery("x", "AWS/SageMaker", metric, stat, DIMS, period)
    return Datapoint(q, datetime.fromtimestamp(epoch, timezone.utc), value)


def test_csv_round_trip_and_stage_join(tmp_path: Path) -> None:
    pts = []
    for t in range(1000, 1100, 10):  # ten 10 s periods
        pts += [point("Invocations", "Sum", t, 100), point("ModelLatency", "Average", t, 20_000),
                point("ModelLatency", "SampleCount", t, 100)]  # fmt: skip
    pts.append(point("ModelLatency", "Average", 1000, 50_000))  # odd one, weight 0
    path = tmp_path / runs.CLOUDWATCH_FILE
    path.write_text(metrics.to_csv(metrics.rows(pts)))
    table = metrics.read_csv(path)
    # Stage A: 1000-1045 holds 4 whole periods; stage B: 1045-1100, 5 (1050..1090);
    # the period 1040-1050 straddles both and belongs to neither.
    a, b, c = metrics.join_stages(table, [(1000, 1045), (1045, 1100), (2000, 2010)])
    assert a is not None and b is not None and c is None
    assert (a.periods, a.invocations, a.invocations_rps) == (4, 400, 10.0)
    assert (b.periods, b.start, b.end) == (5, 1050, 1100)
    assert b.model_latency_ms == pytest.approx(20.0)


def test_default_period_keeps_two_whole_periods_per_stage() -> None:
    assert metrics.default_period(180) == 60
    assert metrics.default_period(60) == 10
    assert metrics.default_period(10) == 1


def test_buckets_emulate_sagemaker_metrics() -> None:
    b = MetricBuckets(PublishConfig("e", "v", period=10), instances=2)
    b.record(1001, 200, 20_000, 100)
    b.record(1002, 200, 30_000, 100)
    b.record(1003, 400, 0, 50)
    b.record(1004, 503, 0, 10)
    b.record(1011, 200, 10_000, 100)
    data = dict(
        ((d["MetricName"], d["Timestamp"].timestamp()), d) for _, d in b.drain(1015, 5.0, 1.0)
    )
    assert data[("Invocations", 1000)]["Value"] == 3  # the 503 never reached the model
    assert data[("InvocationsPerInstance", 1000)]["Value"] == 1.5
    assert data[("Invocation4XXErrors", 1000)]["Value"] == 1
    assert data[("Invocation5XXErrors", 1000)]["Value"] == 1
    # Latencies as values and their counts (to 3 significant digits), for percentiles.
    def values(name: str) -> tuple[list[float], list[float]]:
        return data[(name, 1000)]["Values"], data[(name, 1000)]["Counts"]

    assert values("ModelLatency") == ([20_000, 30_000], [1, 1])
    assert values("OverheadLatency") == ([100], [2])
    assert data[("ModelLatency", 1000)]["Unit"] == "Microseconds"
    assert data[("CPUUtilization", 1000)]["StorageResolution"] == 1
    assert ("Invocations", 1010) not in data  # not over yet
    rest = b.drain(1030, 5.0, 1.0)
    assert {d["Timestamp"].timestamp() for _, d in rest} == {1010, 1020}  # 1020: an idle zero


def test_latency_values_go_150_distinct_ones_to_a_datum() -> None:
    # PutMetricData takes at most 150 distinct values in a call with a Values array.
    b = MetricBuckets(PublishConfig("e", "v", period=60), instances=1)
    for k in range(400):  # 400 distinct latencies, 100-499 ms
        b.record(1001, 200, 100_000 + 1000 * k, 10)
    b.record(1001, 200, 499_400, 10)  # 499 ms to 3 significant digits: counted with 499
    model = [d for _, d in b.drain(1100, 0, 0) if d["MetricName"] == "ModelLatency"]
    assert [len(d["Values"]) for d in model] == [150, 150, 100]
    assert sum(c for d in model for c in d["Counts"]) == 401
    assert model[-1]["Values"][-1] == 499_000 and model[-1]["Counts"][-1] == 2
    assert all("StatisticValues" not in d for d in model)


def test_a_foreign_cloudwatch_file_is_a_warning_not_a_crash(tmp_path: Path) -> None:
    from recommender import runs
    from recommender.analysis import analyze_run
    from recommender.plan import RampPlan, Stage
    from tests.conftest import synthetic_records, write_run

    plan = RampPlan((Stage(10, 5), Stage(20, 5)), warmup_seconds=1)
    run_dir = write_run(tmp_path / "r", plan, synthetic_records(plan, [10, 20]))
    meta = runs.load_run(run_dir).meta
    meta["started_at"] = "2026-11-23T12:00:00+00:00"
    runs.write_json(run_dir / "run.json", meta)
    (run_dir / "cloudwatch.csv").write_text("metric,stat,timestamp,value,unit\nX,Sum,bad,1,None\n")
    a = analyze_run(runs.load_run(run_dir))
    (w,) = [w for w in a.warnings if w.code == "bad_cloudwatch_file"]
    assert "is not a CloudWatch table" in w.message and "recommender collect" in w.message


def test_slo_on_server_model_latency(tmp_path: Path) -> None:
    """--slo-source server: the same run, judged on CloudWatch's ModelLatency."""
    from recommender import runs
    from recommender.analysis import analyze_run
    from recommender.errors import InsufficientDataError
    from recommender.plan import RampPlan, Stage, parse_slo
    from tests.conftest import synthetic_records, write_run

    plan = RampPlan(tuple(Stage(r, 5) for r in (20, 40, 60, 80)), warmup_seconds=1)
    # The client sees 30 ms everywhere; the server's p95 passes 100 ms from the 3rd stage.
    run_dir = write_run(tmp_path / "r", plan, synthetic_records(plan, [20, 20, 20, 20]))
    meta = runs.load_run(run_dir).meta
    t0 = 1_800_000_000
    meta["started_at"] = datetime.fromtimestamp(t0, timezone.utc).isoformat()
    runs.write_json(run_dir / "run.json", meta)
    pts = []
    for second in range(20):
        stage = second // 5
        n = plan.stages[stage].rps
        p95 = [40_000, 60_000, 150_000, 300_000][stage]
        pts += [point("Invocations", "Sum", t0 + second, n, 1),
                point("ModelLatency", "p95", t0 + second, p95, 1),
                point("ModelLatency", "Average", t0 + second, p95 / 2, 1),
                point("ModelLatency", "SampleCount", t0 + second, n, 1)]  # fmt: skip
    (run_dir / runs.CLOUDWATCH_FILE).write_text(metrics.to_csv(metrics.rows(pts)))
    run = runs.load_run(run_dir)
    slo = parse_slo(["p95<=100ms"])
    client = analyze_run(run, slo)
    server = analyze_run(run, slo, slo_source="server")
    assert client.capacity.method == "lower_bound"
    assert server.capacity.method == "interpolated"
    assert [s.passed for s in server.stages] == [True, True, False, False]
    assert server.stages[2].slo_values_ms == {"p95": 150.0}
    assert server.to_dict()["slo_source"] == "server"
    with pytest.raises(InsufficientDataError, match="no p99 ModelLatency"):
        analyze_run(run, parse_slo(["p99<=1s"]), slo_source="server")


def test_one_csv_reader_strict_for_ours_lenient_for_any() -> None:
    """The collector's file must read whole; a CSV a user drops in (for the report) keeps
    the rows it can: no period means 60 s, epoch or naive timestamps are UTC."""
    text = ("metric,stat,timestamp,value,unit\n"
            "ModelLatency,Average,1767225600,20,Milliseconds\n"
            "ModelLatency,Average,2026-01-01T00:01:00,nan,Microseconds\n"
            "ModelLatency,Average,yesterday,1,Microseconds\n")  # fmt: skip
    rows = metrics.parse_csv(text, lenient=True)
    assert [(r["epoch"], r["value"], r["unit"], r["period"]) for r in rows] == [
        (1767225600.0, 20.0, "Milliseconds", 60)]  # fmt: skip
    with pytest.raises(KeyError):
        metrics.parse_csv(text)
    assert metrics.epoch_seconds("2026-01-01T00:00:00Z") == 1767225600.0
    assert metrics.epoch_seconds("2026-01-01T00:00:00") == 1767225600.0


def test_the_publisher_s_cloudwatch_client_is_made_before_it_is_used() -> None:
    # Made lazily, importing boto3 and loading CloudWatch's model stalled the serving process
    # ~130 ms just after it said it was ready (60 requests at 20 rps right after start: max
    # 141 ms against 26 ms made before, by hand on 2026-12-08).
    from recommender.local.publisher import publisher_client

    aws = publisher_client(PublishConfig("e", period=1, aws_endpoint_url="http://127.0.0.1:9"))
    assert "cloudwatch:False" in aws._clients
