"""The target-tracking simulation: hand-computed policy behaviour, the safety-factor sweep,
the latency model from a run, and the `simulate` command."""

from __future__ import annotations

import json
import math
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender import runs
from recommender.analysis import Analysis, analyze_run
from recommender.cli import main
from recommender.errors import ConfigError, InsufficientDataError
from recommender.plan import RampPlan, Stage
from recommender.simulate import (
    ASSUMPTIONS,
    ConcurrencyCurve,
    FluidQueue,
    LatencyModel,
    Policy,
    SafetyFactorChoice,
    ScalingEvent,
    StagedLatencyModel,
    SweepRow,
    Totals,
    backlog_violating,
    choose_safety_factor,
    concurrency_curve,
    explain_choice,
    late_fraction,
    mean_wait,
    model_from_analysis,
    scale_in,
    simulate,
    simulate_concurrency,
)
from recommender.traffic import from_counts, synthetic_traffic
from tests.conftest import synthetic_records, write_run

TARGET = 600.0  # invocations per instance per minute: 10 rps


@dataclass(frozen=True)
class FlatModel:
    """An instance that serves 20 rps within the SLO and 30 rps at most."""

    capacity_rps: float = 20.0
    max_rps: float = 30.0
    stat: str = "p95"

    def latency_ms(self, rps_per_instance: np.ndarray) -> np.ndarray:
        return np.where(rps_per_instance > self.max_rps, np.nan, 10.0 + rps_per_instance)


MODEL: LatencyModel = FlatModel()


def policy(**kw: object) -> Policy:
    base: dict[str, object] = {"target_value": TARGET, "min_capacity": 2, "max_capacity": 10}
    return Policy(**{**base, **kw})  # type: ignore[arg-type]


def run_policy(counts: list[float], **kw: object) -> tuple[np.ndarray, list[ScalingEvent]]:
    sim = simulate(from_counts(counts), MODEL, policy(**kw))
    return sim.in_service, list(sim.events)


# --- hand-computed policy behaviour ---------------------------------------------------------


@pytest.mark.parametrize(("datapoints", "provision"), [(3, 6), (1, 0), (5, 10)])
def test_step_scales_out_after_the_alarm_period_plus_provisioning(
    datapoints: int, provision: int
) -> None:
    # 1000/min on 2 instances (500 each, under 600), then 3000/min from minute 10: the metric
    # is 1500 from minute 10, the alarm acts at the end of minute 10 + datapoints - 1, and
    # ceil(3000 / 600) = 5 instances serve from minute 10 + datapoints + provision.
    counts = [1000.0] * 10 + [3000.0] * 40
    p = policy(scale_out_datapoints=datapoints, provision_minutes=provision)
    sim = simulate(from_counts(counts), MODEL, p)
    ready = 10 + datapoints + provision
    assert sim.events[0] == ScalingEvent(10 + datapoints - 1, "out", 2, 5, 1500.0)
    assert sim.in_service[ready - 1] == 2 and sim.in_service[ready] == 5
    assert sim.desired[10 + datapoints] == 5
    # 25 rps per instance (over the 20 within the SLO) until the new instances serve.
    assert np.nonzero(sim.violating)[0].tolist() == list(range(10, ready))
    assert sim.totals.violating_minutes == ready - 10
    assert sim.totals.requests_outside_slo == 3000.0 * (ready - 10)
    assert sim.totals.requests_erroring == 0.0


def test_flat_traffic_under_target_never_scales() -> None:
    # 95% of target on 3 instances: above the scale-in threshold (90%), below the target.
    in_service, events = run_policy([0.95 * TARGET * 3] * 240, min_capacity=1)
    assert events == []
    assert set(in_service.tolist()) == {3}


def test_max_capacity_caps_and_the_excess_errors() -> None:
    counts = [1000.0] * 5 + [12000.0] * 30
    sim = simulate(from_counts(counts), MODEL, policy(max_capacity=4))
    assert sim.in_service.max() == 4 and sim.desired.max() == 4
    assert sim.totals.capped_minutes == 30
    # 12000/min on 4 instances is 50 rps each: over the 30 the run reached, so 20 rps each
    # (4800/min) error and every minute violates.
    assert sim.totals.violating_minutes == 30
    assert sim.erroring[-1] == pytest.approx(12000 - 4 * 30 * 60)
    assert np.isnan(sim.latency_ms[-1])


def drop_traffic() -> list[float]:
    """10 instances' worth, then half, then a tenth: two scale-ins, 10 -> 5 -> 1."""
    return [6000.0] * 10 + [3000.0] * 15 + [600.0] * 30


def test_cooldown_delays_a_second_scale_in() -> None:
    # The low alarm (metric 300 < 540) has its 15th datapoint at minute 24: 10 -> 5. Still
    # low afterwards, but the 300 s scale-in cooldown holds the next one to minute 29.
    in_service, events = run_policy(drop_traffic(), min_capacity=1, max_capacity=20)
    assert [(e.minute, e.kind, e.from_desired, e.to_desired) for e in events] == [
        (24, "in", 10, 5), (29, "in", 5, 1)]  # fmt: skip
    assert in_service[24] == 10 and in_service[25] == 5
    assert in_service[29] == 5 and in_service[30] == 1


def test_without_cooldown_the_second_scale_in_follows_at_once() -> None:
    _, events = run_policy(drop_traffic(), min_capacity=1, max_capacity=20,
                           scale_in_cooldown=0, scale_out_cooldown=0)  # fmt: skip
    assert [e.minute for e in events] == [24, 25]


def test_disable_scale_in_never_scales_in() -> None:
    in_service, events = run_policy(drop_traffic(), min_capacity=1, max_capacity=20,
                                    disable_scale_in=True)  # fmt: skip
    assert events == []
    assert set(in_service.tolist()) == {10}


def test_scale_in_waits_for_the_scale_out_cooldown() -> None:
    # Scale out at minute 7 (to 3), then traffic collapses: a 1-datapoint low alarm wants
    # 1 instance from minute 8, but the 600 s scale-out cooldown holds it to minute 17.
    counts = [600.0] * 5 + [1800.0] * 3 + [60.0] * 20
    in_service, events = run_policy(counts, min_capacity=1, scale_in_datapoints=1,
                                    scale_out_cooldown=600)  # fmt: skip
    assert [(e.minute, e.kind, e.to_desired) for e in events] == [(7, "out", 3), (17, "in", 1)]
    assert in_service[14] == 3 and in_service[18] == 1


def test_scale_out_may_happen_during_the_scale_in_cooldown() -> None:
    counts = [6000.0] * 10 + [3000.0] * 15 + [6000.0] * 20
    _, events = run_policy(counts, min_capacity=1, max_capacity=20)
    # In at minute 24 (10 -> 5); the metric is 1200 from minute 25: out at minute 27,
    # inside the scale-in cooldown (to minute 29).
    assert [(e.minute, e.kind, e.to_desired) for e in events] == [(24, "in", 5), (27, "out", 10)]


def test_bad_policies_are_config_errors() -> None:
    with pytest.raises(ConfigError, match=r"--min-capacity \(5\) is above --max-capacity \(2\)"):
        Policy(min_capacity=5, max_capacity=2).check()
    with pytest.raises(ConfigError, match="--min-capacity must be >= 1"):
        Policy(min_capacity=0).check()
    with pytest.raises(ConfigError, match="target.value must be > 0"):
        simulate(from_counts([1.0]), MODEL, policy(target_value=0.0))


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.floats(0, 20000, allow_nan=False), min_size=1, max_size=200),
    lo=st.integers(1, 4),
    extra=st.integers(0, 8),
    provision=st.integers(0, 20),
)
def test_invariants(counts: list[float], lo: int, extra: int, provision: int) -> None:
    p = policy(min_capacity=lo, max_capacity=lo + extra, provision_minutes=provision)
    sim = simulate(from_counts(counts), MODEL, p)
    assert sim.in_service.min() >= lo and sim.desired.max() <= lo + extra
    assert np.all(sim.desired >= sim.in_service)  # in service never exceeds what is asked
    assert sim.totals.instance_hours == pytest.approx(sim.desired.sum() / 60)
    assert sim.totals.requests_outside_slo + sim.totals.requests_erroring <= sum(counts) + 1e-6
    json.dumps(sim.to_dict(), allow_nan=False)


# --- the endpoint from a run, and the sweep -------------------------------------------------

RATES = tuple(range(20, 140, 10))


def ramp_run(path: Path) -> Path:
    """A run whose p95 grows past 100 ms above ~100 rps (capacity ~99.2 rps: the stage at
    100 rps is judged by its later half)."""
    plan = RampPlan(tuple(Stage(r, 4) for r in RATES), warmup_seconds=1)
    latency = [30 + max(0, r - 90) * 4 for r in RATES]
    return write_run(path, plan, synthetic_records(plan, latency))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return ramp_run(tmp_path_factory.mktemp("sim") / "run")


@pytest.fixture(scope="module")
def model(run_dir: Path) -> LatencyModel:
    return model_from_analysis(analyze_run(runs.load_run(run_dir)))


def test_model_from_the_runs_stages(run_dir: Path, model: LatencyModel) -> None:
    analysis = analyze_run(runs.load_run(run_dir))
    assert model.capacity_rps == analysis.capacity.rps_per_instance
    assert model.max_rps == pytest.approx(max(s.achieved_rps for s in analysis.stages))
    assert model.stat == "p95"
    lat = model.latency_ms(np.linspace(0, model.max_rps, 50))
    assert np.all(np.diff(lat) >= 0)  # monotone
    # Around 100 ms (the SLO's limit) at the capacity; unknown above what the run reached.
    assert model.latency_ms(np.array([model.capacity_rps]))[0] == pytest.approx(100, rel=0.2)
    assert np.isnan(model.latency_ms(np.array([model.max_rps * 1.1]))[0])


def test_no_passing_stage_gives_no_model(tmp_path: Path) -> None:
    plan = RampPlan(tuple(Stage(r, 4) for r in (20, 40)), warmup_seconds=1)
    path = write_run(tmp_path / "r", plan, synthetic_records(plan, [500.0, 600.0]))
    with pytest.raises(InsufficientDataError, match="no stage passed the SLO"):
        model_from_analysis(analyze_run(runs.load_run(path)))


@pytest.mark.parametrize("ramp", [60.0, 240.0])
def test_auto_target_has_no_violations_but_one_and_a_half_times_it_has(
    model: LatencyModel, ramp: float
) -> None:
    traffic = synthetic_traffic("diurnal", 800, 50, ramp)
    options = Policy()
    choice = choose_safety_factor(traffic, model, options)
    assert choice.chosen is not None and choice.chosen.violating_minutes == 0
    target = choice.chosen.target_value
    at = simulate(traffic, model, options.for_target(target, traffic))
    assert at.totals.violating_minutes == 0
    over = simulate(traffic, model, options.for_target(1.5 * target, traffic))
    assert over.totals.violating_minutes > 0


def test_auto_picks_a_lower_target_on_a_fast_morning_ramp(model: LatencyModel) -> None:
    options = Policy()
    fast = choose_safety_factor(synthetic_traffic("diurnal", 800, 50, 60), model, options)
    slow = choose_safety_factor(synthetic_traffic("diurnal", 800, 50, 240), model, options)
    assert fast.chosen is not None and slow.chosen is not None
    assert fast.chosen.target_value < slow.chosen.target_value
    assert slow.explanation.startswith(f"auto: {slow.chosen.safety_factor:.2f} (target ")
    assert "AWS's 0.5 would cost" in slow.explanation and "more instance-hours" in slow.explanation


def test_auto_with_no_safe_factor_says_so(model: LatencyModel) -> None:
    traffic = synthetic_traffic("spike", 800, 50, 1)
    choice = choose_safety_factor(traffic, model, Policy(max_capacity=3))
    assert choice.chosen is None
    assert choice.explanation.startswith("auto: no safety factor from 0.30 to 0.95 keeps within")
    with pytest.raises(InsufficientDataError):
        _ = choice.safety_factor


# --- the command ----------------------------------------------------------------------------


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_simulate_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = ramp_run(tmp_path / "run")
    code, out, err = cli(capsys, "simulate", str(run), "--pattern", "diurnal", "--peak-rps",
                         "400", "--min-rps", "40", "--instance-price", "0.5")  # fmt: skip
    assert (code, err) == (0, "")
    assert out.startswith("Simulated 1 day of traffic (diurnal pattern: 40 to 400 rps, ramp "
                          "120 min, 1 day) through target tracking:\n")  # fmt: skip
    assert "SLO-violating minutes: 0 of 1440 (over 99.2 rps per instance" in out
    assert "not guarantees" in out
    assert out.endswith(f"Wrote {run / 'simulation.json'}\n")
    data = json.loads((run / "simulation.json").read_text())
    assert len(data["per_minute"]["in_service"]) == 1440
    assert data["totals"]["cost_usd"] == pytest.approx(data["totals"]["instance_hours"] * 0.5)
    assert data["policy"]["scale_in_datapoints"] == 15
    # The report then shows the simulated policy (plot and totals).
    code, _, err = cli(capsys, "report", str(run), "--format", "html")
    html = (run / "report.html").read_text()
    assert 'data-plot="simulation"' in html and "SLO-violating minute(s) of 1440" in html


def test_simulate_auto_and_violations_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = ramp_run(tmp_path / "run")
    code, out, _ = cli(capsys, "simulate", str(run), "--pattern", "diurnal", "--peak-rps",
                       "800", "--min-rps", "50", "--ramp-minutes", "60",
                       "--safety-factor", "auto")  # fmt: skip
    assert code == 0
    assert "auto: 0.45 (target 2678/min): 0 violating minutes; AWS's 0.5 would have" in out
    written = json.loads((run / "simulation.json").read_text())
    assert written["safety_factor_choice"]["chosen"] == 0.45
    code, out, _ = cli(capsys, "simulate", str(run), "--pattern", "spike", "--peak-rps", "800",
                       "--max-capacity", "3")  # fmt: skip
    assert code == 1 and "MaxCapacity 3 held the fleet back" in out


def test_analyze_auto_records_the_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = ramp_run(tmp_path / "run")
    code, out, _ = cli(capsys, "analyze", str(run), "--safety-factor", "auto", "--pattern",
                       "diurnal", "--peak-rps", "800", "--min-rps", "50",
                       "--ramp-minutes", "240")  # fmt: skip
    assert code == 0
    data = json.loads((run / runs.ANALYSIS_FILE).read_text())
    choice = data["safety_factor_choice"]
    assert data["recommendation"]["safety_factor"] == choice["chosen"] == 0.85
    assert len(choice["sweep"]) == 14
    assert choice["explanation"] in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["simulate", "{run}", "--traffic", "/nonexistent/traffic.csv"],
         "Error: traffic file not found: /nonexistent/traffic.csv (check the --traffic path)"),
        (["simulate", "{run}", "--pattern", "weekly", "--peak-rps", "5"],
         "Error: unknown --pattern 'weekly' (use diurnal, spike or step)"),
        (["simulate", "{run}", "--pattern", "step", "--peak-rps", "5", "--min-capacity", "5",
          "--max-capacity", "2"],
         "Error: --min-capacity (5) is above --max-capacity (2) (MinCapacity <= MaxCapacity: "
         "lower --min-capacity or raise --max-capacity)"),
        (["simulate", "{run}"], "Error: no traffic given (pass --traffic FILE"),
        (["analyze", "{run}", "--safety-factor", "auto"],
         "Error: --safety-factor auto needs traffic to simulate (pass --traffic FILE"),
        (["analyze", "{run}", "--safety-factor", "half"],
         "Error: --safety-factor must be a number or auto (got 'half')"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    run = ramp_run(tmp_path / "run")
    code, out, err = cli(capsys, *[a.format(run=run) for a in args])
    assert code == 2
    assert err.startswith(message)
    assert err.count("\n") == 1


def test_apply_and_simulate_check_a_policy_by_the_same_rules() -> None:
    """One description (TargetTracking), one check: the same bounds, cooldowns and defaults."""
    from recommender.policy.plan import PolicyRequest
    from recommender.policy.tracking import COOLDOWN_SECONDS

    for make in (Policy, PolicyRequest):
        default = make()
        assert (default.scale_out_cooldown, default.scale_in_cooldown) == (COOLDOWN_SECONDS,) * 2
        with pytest.raises(ConfigError) as info:
            make(max_capacity=0).check()
        assert info.value.one_line() == "--max-capacity must be >= 1 (got 0)"
        with pytest.raises(ConfigError) as info:
            make(min_capacity=1, max_capacity=2, scale_out_cooldown=-1).check()
        assert info.value.one_line() == "--scale-out-cooldown must be >= 0 seconds (got -1)"
        with pytest.raises(ConfigError, match="--target-value must be a number"):
            make(target_value="lots").check()


# --- the queue an overload leaves (FluidQueue) ----------------------------------------------


@dataclass(frozen=True)
class QueueModel(FlatModel):
    """FlatModel with its SLO's limit: p95 <= 400 ms, so the queue is modelled."""

    limit_ms: float | None = 400.0
    quantile: float | None = 0.95


OVERLOAD = [1000.0] * 10 + [4800.0] * 20  # 2 instances serve 3600/min at most


@pytest.mark.parametrize(("minute_seconds", "violating", "dropped"), [
    # Real minutes: a request waits at most 60 s (InvokeEndpoint's timeout), so the backlog
    # holds at one minute of the 2 instances' throughput (3600) from minute 12 and the
    # 1200/min beyond it error (minutes 13-18); 6 instances drain 3600 in 0.6 of minute 19.
    (60.0, list(range(10, 20)), 1200.0 * 6),
    # A replay at 2 s a minute: 9 minutes of 1200 queue up (10800, 9 s of waiting); 6
    # instances drain 6000/min, so minute 20 starts 4800 behind, 1.6 s over 0.4 s.
    (2.0, list(range(10, 21)), 0.0),
])  # fmt: skip
def test_a_queue_left_by_a_late_scale_out_violates_until_it_drains(
    minute_seconds: float, violating: list[int], dropped: float
) -> None:
    sim = simulate(from_counts(OVERLOAD), QueueModel(), policy(max_capacity=6),
                   minute_seconds=minute_seconds)  # fmt: skip
    # CloudWatch counts served requests: the metric is 3600 / 2, and the scale-out asks
    # for ceil(3600 / 600) = 6 instances, not ceil(4800 / 600) = 8.
    assert sim.events[0] == ScalingEvent(12, "out", 2, 6, 1800.0)
    assert sim.in_service[18] == 2 and sim.in_service[19] == 6
    assert np.nonzero(sim.violating)[0].tolist() == violating
    assert sim.totals.requests_erroring == pytest.approx(dropped)
    assert sim.backlog is not None and sim.backlog[-1] == 0.0
    # Every request is served, queued at the end, or dropped.
    assert sim.served is not None
    assert sim.served.sum() + sim.totals.requests_erroring == pytest.approx(sum(OVERLOAD))
    # Without the SLO's limit (no queue): the old minute-by-minute judgement, 10 to 18.
    old = simulate(from_counts(OVERLOAD), MODEL, policy(max_capacity=6))
    assert np.nonzero(old.violating)[0].tolist() == list(range(10, 19))
    assert old.events[0] == ScalingEvent(12, "out", 2, 6, 2400.0)


def test_the_queue_wait_against_the_limit() -> None:
    # 1200 queued on 3600/min: 1/3 minute of waiting, draining at 1/6 per minute.
    assert late_fraction(1200.0, 3000.0, 3600.0, 0.25) == pytest.approx(0.5)
    assert late_fraction(0.0, 7200.0, 3600.0, 0.5) == pytest.approx(0.5)  # growing 1/min
    assert late_fraction(0.0, 3000.0, 3600.0, 0.01) == 0.0  # no queue
    assert late_fraction(3600.0, 3600.0, 3600.0, 0.5) == 1.0  # a steady queue of 1 min
    assert mean_wait(1200.0, 3000.0, 3600.0) == pytest.approx(1 / 3 - 1 / 12)
    assert mean_wait(600.0, 0.0, 3600.0) == pytest.approx((1 / 6) * (1 / 6) / 2)  # drained
    sim = simulate(from_counts(OVERLOAD), replace(QueueModel(), quantile=None),
                   policy(max_capacity=6), minute_seconds=2.0)  # fmt: skip
    # A mean objective: minute 20's queue (4800, drained at 0.8 of it) waits 0.36 s on
    # average, under 0.4 s: the violation ends a minute before the p95 one.
    assert np.nonzero(sim.violating)[0].tolist()[-1] == 19


def test_the_ten_second_simulation_carries_the_queue_too() -> None:
    """The concurrency policy's 10-second steps: what waits is in flight too, so the metric
    sees it (2 -> 6 instances, not 4), and the minutes after help arrives still violate."""
    curve = ConcurrencyCurve(np.array([0.0, 30.0]), np.array([0.0, 1.5]))
    p = policy(target_value=1.0, max_capacity=6)
    queued = simulate_concurrency(from_counts(OVERLOAD), QueueModel(), curve, p,
                                  minute_seconds=2.0)  # fmt: skip
    plain = simulate_concurrency(from_counts(OVERLOAD), MODEL, curve, p)
    assert (queued.events[0].to_desired, plain.events[0].to_desired) == (6, 4)
    assert np.nonzero(plain.violating)[0].tolist() == list(range(10, 17))
    # 6 instances from 16.5 (10 s steps) drain the 7800 queued at 6000/min to 17.8.
    assert np.nonzero(queued.violating)[0].tolist() == list(range(10, 18))


# --- the records, field by field ---------------------------------------------------------------


def test_simulation_record_minute_by_minute() -> None:
    # 1000/min on 2 instances, then 3000/min: a 1-datapoint alarm scales out at minute 1 to
    # ceil(3000 / 600) = 5, which serve from minute 3 (1 minute to provision).
    traffic = from_counts([1000.0, 3000.0, 3000.0, 3000.0])
    sim = simulate(traffic, MODEL, policy(scale_out_datapoints=1, provision_minutes=1),
                   instance_price=2.0)  # fmt: skip
    d = sim.to_dict()
    assert (d["schema_version"], d["metric"], d["step_seconds"]) == (1, "invocations", 60)
    assert d["policy"] == {
        "target_value": 600.0, "min_capacity": 2, "max_capacity": 10,
        "scale_out_datapoints": 1, "scale_in_datapoints": 15, "scale_in_ratio": 0.9,
        "scale_out_cooldown_s": 300, "scale_in_cooldown_s": 300, "provision_minutes": 1,
        "disable_scale_in": False}  # fmt: skip
    assert d["safety_factor"] is None and d["instance_price_usd_per_hour"] == 2.0
    assert d["endpoint"] == {"capacity_rps_per_instance": 20.0, "max_rps_per_instance": 30.0,
                             "latency_stat": "p95"}  # fmt: skip
    assert d["traffic"] == traffic.to_dict() and d["assumptions"] == [ASSUMPTIONS]
    assert d["events"] == [{"minute": 1, "kind": "out", "from_desired": 2, "to_desired": 5,
                            "invocations_per_instance": 1500.0}]  # fmt: skip
    assert d["totals"] == {
        "minutes": 4, "violating_minutes": 2, "requests": 10000.0,
        "requests_outside_slo": 6000.0, "requests_erroring": 0.0,
        "instance_hours": pytest.approx(14 / 60), "cost_usd": pytest.approx(28 / 60),
        "scale_out_events": 1, "scale_in_events": 0, "capped_minutes": 0,
        "in_service_min": 2, "in_service_max": 5}  # fmt: skip
    assert d["per_minute"] == {
        "minute": [0, 1, 2, 3], "requests": [1000.0, 3000.0, 3000.0, 3000.0],
        "in_service": [2, 2, 2, 5], "desired": [2, 2, 5, 5],
        "invocations_per_instance": [500.0, 1500.0, 1500.0, 600.0],
        "rps_per_instance": [8.333, 25.0, 25.0, 10.0], "p95_ms": [18.33, 35.0, 35.0, 20.0],
        "slo_violating": [False, True, True, False], "erroring_requests": [0.0] * 4}  # fmt: skip
    # With the SLO's limit the queue is modelled, and its backlog recorded each minute.
    queued = simulate(traffic, QueueModel(), policy(scale_out_datapoints=1)).to_dict()
    assert queued["per_minute"]["backlog"] == [0.0, 0.0, 0.0, 0.0]  # 3000 <= 2 x 1800
    assert SweepRow.of(sim).safety_factor == 0.0  # a target given outright: no factor


def test_policy_checks_and_bounds() -> None:
    cases: list[tuple[dict[str, object], str]] = [
        ({"scale_out_datapoints": 0}, "--scale-out-datapoints must be >= 1 (got 0)"),
        ({"scale_in_datapoints": 0}, "--scale-in-datapoints must be >= 1 (got 0)"),
        ({"scale_in_ratio": 0.0}, "--scale-in-ratio must be in (0, 1] (got 0)"),
        ({"scale_in_ratio": 1.5}, "--scale-in-ratio must be in (0, 1] (got 1.5)"),
        ({"provision_minutes": -1}, "--provision-minutes must be >= 0 (got -1)"),
    ]
    for kw, message in cases:
        with pytest.raises(ConfigError) as info:
            policy(**kw).check()
        assert info.value.one_line() == message
    ok = policy(scale_out_datapoints=1, scale_in_datapoints=1, scale_in_ratio=1.0,
                provision_minutes=0)  # fmt: skip
    assert ok.check() is ok and ok.bounds() == (600.0, 2, 10)
    with pytest.raises(ConfigError) as info:
        Policy(min_capacity=1).bounds()
    assert info.value.one_line() == (
        "the policy to simulate needs a target value, MinCapacity and MaxCapacity (size it "
        "with Policy.for_target)")  # fmt: skip


def test_policy_for_a_target_sizes_min_and_max_from_the_traffic() -> None:
    # 10 rps per instance at 600/min: 30 rps at the lowest minute needs 3, the 100 rps
    # peak 10, so MaxCapacity 15 (x 1.5, as the report sizes it).
    traffic = from_counts([1800.0, 6000.0])
    p = Policy().for_target(600.0, traffic)
    assert (p.target_value, p.min_capacity, p.max_capacity) == (600.0, 3, 15)
    # At least 2 (SageMaker spreads instances over zones), even for an idle minute.
    assert Policy().for_target(600.0, from_counts([0.0, 6000.0])).min_capacity == 2
    assert Policy().for_target(600.0, from_counts([600.0, 6000.0])).min_capacity == 2
    # Given bounds are kept; MinCapacity never above a given MaxCapacity.
    assert Policy(min_capacity=1).for_target(600.0, traffic).min_capacity == 1
    capped = Policy(max_capacity=2).for_target(600.0, traffic)
    assert (capped.min_capacity, capped.max_capacity) == (2, 2)
    with pytest.raises(ConfigError):
        Policy(scale_in_ratio=2.0).for_target(600.0, traffic)


def test_a_fleet_started_outside_its_bounds_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        simulate(from_counts([600.0]), MODEL, policy(), initial_instances=11)
    assert info.value.one_line() == "the initial instances (11) are outside Min/MaxCapacity"
    assert simulate(from_counts([600.0]), MODEL, policy(), initial_instances=10).in_service[0] == 10
    # The first minute settles the fleet: ceil(6000 / 600) = 10, and never above MaxCapacity.
    assert simulate(from_counts([6000.0]), MODEL, policy()).in_service[0] == 10
    assert simulate(from_counts([6001.0]), MODEL, policy()).in_service[0] == 10


def test_scale_in_takes_instances_still_starting_first() -> None:
    pending: deque[list[int]] = deque([[5, 2], [6, 3]])
    assert scale_in(pending, 4, 4) == 4  # the 3 due at 6, then 1 of the 2 due at 5
    assert list(pending) == [[5, 1]]
    assert scale_in(pending, 4, 3) == 2 and not pending
    assert scale_in(deque(), 4, 0) == 4


def test_fluid_queue_drops_what_would_wait_past_the_timeout() -> None:
    q = FluidQueue(serve=10.0, max_wait=2.0)
    assert q.step(50.0, 1) == 10.0  # 40 left: 20 wait (2 steps of 10), 20 are dropped
    assert (q.backlog, q.dropped, q.starts, q.capacity) == (20.0, [20.0], [0.0], [10.0])
    assert q.step(5.0, 2) == 20.0  # 25 on 20: 5 wait
    assert (q.backlog, q.dropped, q.starts, q.served) == (5.0, [20.0, 0.0], [0.0, 20.0],
                                                          [10.0, 20.0])  # fmt: skip


def test_latency_model_record_and_its_edges() -> None:
    m = StagedLatencyModel(rps=np.array([10.0, 20.12345]), latency=np.array([30.0, 90.55555]),
                           capacity_rps=18.0, max_rps=20.12345, stat="p95",
                           capacity_method="interpolated", limit_ms=100.0,
                           quantile=0.95)  # fmt: skip
    assert m.to_dict() == {
        "kind": "staged",
        "method": "linear interpolation between stages (running max), numpy.interp",
        "stat": "p95", "capacity_rps_per_instance": 18.0, "capacity_method": "interpolated",
        "max_rps_per_instance": 20.12345, "slo_limit_ms": 100.0, "slo_quantile": 0.95,
        "points": [[10.0, 30.0], [20.123, 90.556]]}  # fmt: skip
    lat = m.latency_ms(np.array([0.0, 10.0, 20.12345 * (1 + 1e-10), 20.12345 * 1.001]))
    assert lat[:3].tolist() == pytest.approx([30.0, 30.0, 90.55555])  # held below, float noise
    assert np.isnan(lat[3])


def test_concurrency_curve_beyond_the_top_stage_grows_in_proportion() -> None:
    curve = ConcurrencyCurve(np.array([0.0, 10.0, 20.0]), np.array([0.0, 1.0, 3.0]))
    assert curve.at(15.0) == 2.0 and curve.at(20.0) == 3.0
    assert curve.at(40.0) == 6.0  # the last stage's latency held: 3 x 40 / 20
    assert ConcurrencyCurve(np.array([0.0]), np.array([0.0])).at(5.0) == 0.0
    assert ConcurrencyCurve(np.array([1.23456]), np.array([0.12345])).to_dict() == {
        "method": "in flight per stage (running max), linear; proportional above",
        "points": [[1.235, 0.123]]}  # fmt: skip


def row(factor: float, violating: int, hours: float = 10.0, outside: float = 0.0) -> SweepRow:
    return SweepRow(safety_factor=factor, target_value=factor * 1200, min_capacity=2,
                    max_capacity=10, violating_minutes=violating, requests_outside_slo=outside,
                    requests_erroring=0.0, instance_hours=hours, cost_usd=None,
                    scale_out_events=0, scale_in_events=0)  # fmt: skip


def test_the_choice_explained_in_each_case() -> None:
    rows = [row(0.3, 2), row(0.5, 2), row(0.95, 5)]
    assert explain_choice(None, rows[1], rows, 1) == (
        "auto: no safety factor from 0.30 to 0.95 keeps within 1 violating minute (fewest: "
        "0.50 with 2 violating minutes)")  # fmt: skip
    aws = row(0.5, 0, hours=12.0)
    assert explain_choice(aws, aws, [aws], 0) == (
        "auto: 0.50 (target 600/min): 0 violating minutes; the same as AWS's 0.5")
    assert explain_choice(row(0.4, 0), row(0.5, 3, outside=12345.6), [], 2) == (
        "auto: 0.40 (target 480/min): 0 violating minutes; AWS's 0.5 would have 3 violating "
        "minutes (12,346 requests outside the SLO)")  # fmt: skip
    # Within the budget, AWS's 0.5 is compared on cost.
    assert explain_choice(row(0.6, 1), row(0.5, 3, hours=12.0), [], 3) == (
        "auto: 0.60 (target 720/min): 1 violating minute; AWS's 0.5 would cost 20% more "
        "instance-hours")  # fmt: skip
    assert explain_choice(row(0.4, 0), row(0.5, 0, hours=8.0), [], 0).endswith(
        "AWS's 0.5 would cost 20% fewer instance-hours")  # fmt: skip
    assert explain_choice(row(0.4, 0), row(0.5, 0), [], 0).endswith(
        "AWS's 0.5 would cost 0% more instance-hours")  # fmt: skip


def test_the_choice_record() -> None:
    rows = (row(0.3, 0), row(0.5, 1))
    choice = SafetyFactorChoice(rows, 0, rows[0], rows[1], "why")
    assert choice.safety_factor == 0.3
    assert choice.to_dict() == {
        "method": "highest safety factor whose simulated SLO-violating minutes stay within "
                  "the budget (recommender.simulate.choose_safety_factor)",
        "violation_budget_minutes": 0, "chosen": 0.3, "target_value": 360.0,
        "explanation": "why", "assumptions": [ASSUMPTIONS],
        "sweep": [r.to_dict() for r in rows]}  # fmt: skip
    none = SafetyFactorChoice(rows, 0, None, rows[1], "none kept")
    assert (none.to_dict()["chosen"], none.to_dict()["target_value"]) == (None, None)
    with pytest.raises(InsufficientDataError) as info:
        _ = none.safety_factor
    assert info.value.one_line() == (
        "none kept (raise --max-capacity, shorten --provision-minutes if yours start faster, "
        "or allow a --violation-budget)")  # fmt: skip


def test_the_sweep_checks_its_inputs_and_always_simulates_aws_default(
    model: LatencyModel,
) -> None:
    traffic = from_counts([3000.0] * 30)
    with pytest.raises(ConfigError) as info:
        choose_safety_factor(traffic, model, Policy(), violation_budget=-1)
    assert info.value.one_line() == "--violation-budget must be >= 0 minutes (got -1)"
    with pytest.raises(ConfigError) as info:
        choose_safety_factor(traffic, model, Policy(), factors=())
    assert info.value.one_line() == "no safety factors to sweep"
    choice = choose_safety_factor(traffic, model, Policy(), factors=(0.8, 0.3),
                                  instance_price=1.0)  # fmt: skip
    assert [r.safety_factor for r in choice.rows] == [0.3, 0.8]  # sorted, 0.5 not among them
    assert choice.aws_default.safety_factor == 0.5 and choice.violation_budget == 0
    aws = choice.aws_default  # simulated apart, at the same price
    assert aws.cost_usd is not None and aws.cost_usd == pytest.approx(aws.instance_hours)
    assert choice.rows[0].cost_usd == pytest.approx(choice.rows[0].instance_hours)
    assert choice.chosen is not None and choice.chosen.safety_factor == 0.8  # flat traffic


def test_concurrency_curve_from_the_stages_in_flight() -> None:
    def stage(rps: float, in_flight: float | None) -> SimpleNamespace:
        return SimpleNamespace(achieved_rps=rps, in_flight=in_flight)

    a = SimpleNamespace(capacity=SimpleNamespace(instances=2), stages=[
        stage(80.0, 1.5), stage(40.0, 2.0), stage(0.0, 5.0), stage(60.0, None),
        stage(100.0, 4.0)])  # fmt: skip
    curve = concurrency_curve(cast(Analysis, a))
    # Per instance, by throughput, never decreasing: (20, 1), (40, 1 not 0.75), (50, 2).
    assert curve.rps.tolist() == [20.0, 40.0, 50.0]
    assert curve.in_flight.tolist() == [1.0, 1.0, 2.0]
    with pytest.raises(InsufficientDataError) as info:
        concurrency_curve(cast(Analysis, SimpleNamespace(capacity=a.capacity,
                                                         stages=[stage(10.0, None)])))  # fmt: skip
    assert info.value.one_line() == ("the run's stages hold no latency to tell requests in "
                                     "flight from (simulate --metric invocations)")  # fmt: skip


def test_the_mean_wait_of_a_step() -> None:
    # Draining: 1/6 min of backlog, half the capacity arriving: empty after 1/3 of the step.
    assert mean_wait(600.0, 1800.0, 3600.0) == pytest.approx((1 / 6) * (1 / 3) / 2)
    # Draining exactly by the step's end: the same by either formula (w0 / 2).
    assert mean_wait(1800.0, 1800.0, 3600.0) == pytest.approx(0.25)
    # No capacity: an arrival waits for ever; nothing arriving, nobody waits.
    assert mean_wait(0.0, 10.0, 0.0) == math.inf and mean_wait(5.0, 0.0, 0.0) == 0.0
    assert mean_wait(5.0, 0.0, 0.5) == pytest.approx(9.5)  # a small capacity is still one


def test_the_concurrency_replay_keeps_a_numeric_target_and_real_minutes() -> None:
    curve = ConcurrencyCurve(np.array([0.0, 30.0]), np.array([0.0, 1.5]))
    p = policy(target_value="1.0", max_capacity=6)
    sim = simulate_concurrency(from_counts(OVERLOAD), QueueModel(), curve, p)
    assert sim.policy.target_value == 1.0
    real = simulate_concurrency(from_counts(OVERLOAD), QueueModel(), curve, p, minute_seconds=60.0)
    assert sim.violating.tolist() == real.violating.tolist()
    assert sim.totals == real.totals


# In flight = rps / 10 per instance: a concurrency target of 1 is 10 rps, as TARGET is.
LINEAR = ConcurrencyCurve(np.array([0.0, 30.0]), np.array([0.0, 3.0]))


def test_concurrency_scale_out_in_ten_second_steps() -> None:
    # 1000/min settles on 2 (1.67 in flight on one). From minute 10, 500 a step on 2
    # instances is 2.5 in flight each: the 3rd datapoint above (step 62, minute 10) asks for
    # ceil(2 x 2.5) = 5, in service 36 steps later, from step 99 (minute 16's 4th step).
    sim = simulate_concurrency(from_counts([1000.0] * 10 + [3000.0] * 40), MODEL, LINEAR,
                               policy(target_value=1.0))  # fmt: skip
    assert len(sim.events) == 1
    e = sim.events[0]
    assert (e.minute, e.kind, e.from_desired, e.to_desired) == (10, "out", 2, 5)
    assert e.invocations_per_instance == pytest.approx(2.5)
    assert sim.in_service.tolist() == [2] * 17 + [5] * 33  # each minute's fewest
    assert sim.desired.tolist() == [2] * 10 + [5] * 40  # each minute's most
    assert np.nonzero(sim.violating)[0].tolist() == list(range(10, 17))  # 25 rps > 20
    assert sim.totals.instance_hours == pytest.approx((63 * 2 + 237 * 5) / 360)
    assert (sim.totals.capped_minutes, sim.totals.scale_out_events) == (0, 1)
    assert (sim.metric, sim.step_seconds) == ("concurrency", 10)


def test_concurrency_scale_in_after_its_minutes_of_datapoints() -> None:
    # 3000/min settles on 5 (1.0 in flight each). From minute 10, 0.2 each: below 0.9 for
    # 15 minutes of 10-second datapoints (90), so at step 149 (minute 24) 5 -> 2 (MinCapacity).
    sim = simulate_concurrency(from_counts([3000.0] * 10 + [600.0] * 40), MODEL, LINEAR,
                               policy(target_value=1.0))  # fmt: skip
    assert [(e.minute, e.kind, e.from_desired, e.to_desired) for e in sim.events] == [
        (24, "in", 5, 2)]  # fmt: skip
    assert sim.in_service.tolist() == [5] * 25 + [2] * 25
    assert sim.desired.tolist() == [5] * 25 + [2] * 25
    # The scale-in cooldown holds nothing here; a scale-out cooldown of 0 neither.
    held = simulate_concurrency(from_counts([3000.0] * 10 + [600.0] * 40), MODEL, LINEAR,
                                policy(target_value=1.0, scale_in_datapoints=16))  # fmt: skip
    assert [e.minute for e in held.events] == [25]
    never = simulate_concurrency(from_counts([3000.0] * 10 + [600.0] * 40), MODEL, LINEAR,
                                 policy(target_value=1.0, disable_scale_in=True))  # fmt: skip
    assert never.events == () and set(never.in_service.tolist()) == {5}


# --- the 10-second replay, rule by rule (mutation testing: TESTING.md) ----------------------

# 1/8 in flight per request/s per instance, exact in binary: at a target of 2 in flight, an
# instance takes 16 rps, and the scale-in threshold (90%) is 1.8 in flight, 14.4 rps.
EXACT = ConcurrencyCurve(np.array([0.0, 32.0]), np.array([0.0, 4.0]))


def test_concurrency_scale_out_provisioning_and_max_capacity_minute_by_minute() -> None:
    # 32 rps settles on 2 instances at the target exactly (16 rps, 2 in flight: not above
    # it). From minute 10, 64 rps: 4 in flight each, so ceil(2 x 4 / 2) = 4 (MaxCapacity,
    # not beyond it); the 6th datapoint above is step 65, the last of minute 10, and the 2
    # new instances serve 1 + 36 steps later, from step 102: minute 17's first.
    # From minute 20, 96 rps: 3 in flight on each of 4 wants 6, held at 4 for 10 minutes.
    traffic = from_counts([1920.0] * 10 + [3840.0] * 10 + [5760.0] * 10)
    sim = simulate_concurrency(traffic, MODEL, EXACT,
                               policy(target_value=2.0, max_capacity=4, scale_out_datapoints=6),
                               safety_factor=0.4, instance_price=3.0)  # fmt: skip
    assert sim.events == (ScalingEvent(10, "out", 2, 4, 4.0),)
    assert sim.in_service.tolist() == [2] * 17 + [4] * 13
    assert sim.desired.tolist() == [2] * 11 + [4] * 19  # the event ends minute 10
    # 64 rps on 2 is 32 each: over the 20 within the SLO, and 2 over the 30 served (240/min
    # error); 96 on 4 is 24 each: violating, but served.
    assert np.nonzero(sim.violating)[0].tolist() == [*range(10, 17), *range(20, 30)]
    assert sim.erroring.tolist() == [0.0] * 10 + [240.0] * 7 + [0.0] * 13
    assert np.isnan(sim.latency_ms[10]) and sim.latency_ms[20] == 10.0 + 24.0
    # Billed from the scale-out: 66 steps of 2 and 114 of 4, at $3 an hour.
    assert sim.totals == Totals(
        minutes=30, violating_minutes=17, requests=115200.0,
        requests_outside_slo=7 * (3840.0 - 240.0) + 10 * 5760.0, requests_erroring=7 * 240.0,
        instance_hours=pytest.approx((66 * 2 + 114 * 4) / 360), cost_usd=pytest.approx(4.9),
        scale_out_events=1, scale_in_events=0, capped_minutes=10, in_service_min=2,
        in_service_max=4)  # fmt: skip
    assert type(sim.totals.capped_minutes) is int  # whole minutes in simulation.json
    d = sim.to_dict()  # no queue modelled: what the minute's requests make of it
    assert (d["safety_factor"], d["instance_price_usd_per_hour"]) == (0.4, 3.0)
    assert d["endpoint"] == {"capacity_rps_per_instance": 20.0, "max_rps_per_instance": 30.0,
                             "latency_stat": "p95"}  # fmt: skip
    assert d["traffic"] == traffic.to_dict() and "backlog" not in d["per_minute"]
    assert d["per_minute"]["invocations_per_instance"][:11] == [960.0] * 10 + [1920.0]


def test_concurrency_scale_in_waits_for_both_cooldowns_and_takes_the_starting_first() -> None:
    # 64 rps settles on 4. Minute 2, 96 rps: 3 in flight each, out at step 17 (6 datapoints)
    # to 6, serving from step 54. Minute 3, 20 rps: below 1.8 in flight from step 18, but
    # the scale-out cooldown (300 s: 30 steps) holds the scale-in to step 47, the last of
    # minute 7: 6 -> 2 (ceil(4 x 0.625 / 2)), the 2 still starting going first. Minute 8,
    # 8 rps: 0.5 each wants 1, held by the scale-in cooldown (120 s: 12 steps) to step 59.
    traffic = from_counts([3840.0] * 2 + [5760.0] + [1200.0] * 5 + [480.0] * 4)
    sim = simulate_concurrency(traffic, MODEL, EXACT,
                               policy(target_value=2.0, min_capacity=1, scale_out_datapoints=6,
                                      scale_in_datapoints=1, scale_in_cooldown=120))  # fmt: skip
    assert [(e.minute, e.kind, e.from_desired, e.to_desired, e.invocations_per_instance)
            for e in sim.events] == [(2, "out", 4, 6, 3.0), (7, "in", 6, 2, 0.625),
                                     (9, "in", 2, 1, 0.5)]  # fmt: skip
    assert sim.in_service.tolist() == [4] * 8 + [2] * 2 + [1] * 2
    assert sim.desired.tolist() == [4] * 3 + [6] * 5 + [2] * 2 + [1] * 2
    assert (sim.totals.scale_out_events, sim.totals.scale_in_events) == (1, 2)


@pytest.mark.parametrize(("first", "scaled_in"), [
    # 68 rps on 5 is 1.7 in flight each: below the threshold from the first step, so the
    # 12th low datapoint is step 11 and minute 1 ends on 2.
    (4080.0, 1),
    # 72 rps on 5 is 1.8 each: at the threshold, not below; low from step 6, in at step 17.
    (4320.0, 2),
])  # fmt: skip
def test_concurrency_scale_in_counts_low_datapoints_from_the_first_step(
    first: float, scaled_in: int
) -> None:
    traffic = from_counts([first] + [1920.0] * 3)  # then 32 rps: 0.8 each on 5, wants 2
    sim = simulate_concurrency(traffic, MODEL, EXACT,
                               policy(target_value=2.0, min_capacity=1,
                                      scale_in_datapoints=2))  # fmt: skip
    assert [(e.minute, e.to_desired) for e in sim.events] == [(scaled_in, 2)]
    assert sim.in_service.tolist() == [5] * (scaled_in + 1) + [2] * (3 - scaled_in)


def test_the_concurrency_replay_settles_its_first_fleet_on_its_own_metric() -> None:
    # 0.5 in flight even when idle (an intercept): 100 rps needs ceil(0.5 d + 10) = d
    # instances, 20, not the 12 one instance's reading suggests (11.7 in flight at 100 rps).
    curve = ConcurrencyCurve(np.array([0.0, 30.0]), np.array([0.5, 3.5]))
    sim = simulate_concurrency(from_counts([6000.0] * 3), MODEL, curve,
                               policy(target_value=1.0, max_capacity=30))  # fmt: skip
    assert sim.in_service.tolist() == [20] * 3 and sim.events == ()


def test_the_concurrency_replay_counts_the_queue_as_in_flight_and_records_it() -> None:
    # 32 rps settles on 2 (30 rps each at most: 300 a step). Minute 1, 96 rps (960 a step):
    # 360 wait after its first step, so the metric is 3.75 serving + 180 queued per
    # instance, out at once to MaxCapacity (10), serving from step 19. Meanwhile the queue
    # holds at most 6 steps of service (60 s, 3600) and drops the rest.
    traffic = from_counts([1920.0] + [5760.0] * 3 + [15000.0] * 2)
    sim = simulate_concurrency(traffic, QueueModel(), EXACT,
                               policy(target_value=2.0, scale_out_datapoints=1,
                                      provision_minutes=2))  # fmt: skip
    assert sim.events == (ScalingEvent(1, "out", 2, 10, 3.75 + 360 / 2),)
    assert sim.backlog is not None and sim.served is not None
    assert sim.backlog.tolist() == [0.0, 2160.0, 3600.0, 0.0, 0.0, 0.0]  # at each minute's end
    assert sim.served.tolist() == [1920.0, 3600.0, 3600.0, 9000.0, 15000.0, 15000.0]
    assert sim.erroring.tolist() == [0.0, 0.0, 720.0, 360.0, 0.0, 0.0]
    # Minutes 4 and 5 queue nothing (25 rps each on 10) but still exceed the 20 within the
    # SLO; capped: 27 steps wanted more than 10 (4.5 minutes, counted as 4).
    assert np.nonzero(sim.violating)[0].tolist() == [1, 2, 3, 4, 5]
    assert sim.totals.capped_minutes == 4
    assert sim.to_dict()["per_minute"]["backlog"] == sim.backlog.tolist()


# --- the pieces, edge by edge (mutation testing: TESTING.md) ---------------------------------


def test_the_share_of_a_step_waiting_past_the_limit_at_its_edges() -> None:
    # No capacity in service: every arrival waits past any limit; nothing arriving, none.
    assert late_fraction(0.0, 0.5, 0.0, 1.0) == 1.0 and late_fraction(5.0, 0.0, 0.0, 1.0) == 0.0
    assert late_fraction(0.0, 0.5, 0.5, 0.1) == 0.0  # a small capacity is still one
    # A steady queue waits w0 throughout: late only above the limit, not at it.
    assert late_fraction(1800.0, 3600.0, 3600.0, 0.5) == 0.0  # 0.5 of a step, at the limit
    assert late_fraction(900.0, 3600.0, 3600.0, 0.5) == 0.0
    # Growing by half a step per step from nothing: past 0.1 after 0.2 of it, so 0.8 late.
    assert late_fraction(0.0, 5400.0, 3600.0, 0.1) == pytest.approx(0.8)
    assert late_fraction(0.0, 7200.0, 3600.0, 0.25) == pytest.approx(0.75)
    # Already past the limit and growing: all of it, never more.
    assert late_fraction(3600.0, 7200.0, 3600.0, 0.5) == 1.0
    assert mean_wait(0.0, 0.5, 0.0) == math.inf  # any arrival on no capacity waits for ever


def test_a_minute_is_late_by_the_slo_s_rule_for_its_queue() -> None:
    def one_step(start: float, arrivals: float, capacity: float, limit: float,
                 quantile: float | None) -> bool:  # fmt: skip
        q = FluidQueue(serve=capacity, starts=[start], capacity=[capacity])
        return bool(backlog_violating(q, [arrivals], limit, quantile)[0])

    # A mean objective reads the mean wait: half a step queued, nothing arriving, drained
    # at half the step: mean 0.125 > 0.1, though only 0.4 of the step waits past 0.1.
    assert one_step(5.0, 0.0, 10.0, 0.1, None)
    assert not one_step(5.0, 0.0, 10.0, 0.125, None)  # a mean exactly at the limit is within
    # p50: a step half past the limit is within (more than half would not be).
    assert not one_step(0.0, 20.0, 10.0, 0.5, 0.5)
    assert one_step(0.0, 20.0, 10.0, 0.4, 0.5)
    # One request queued on a slow endpoint (1/10 of a step against 1/20) is late.
    assert one_step(1.0, 10.0, 10.0, 0.05, 0.95)


def test_the_model_of_a_run_from_its_analysis() -> None:
    from recommender.analysis.capacity import Capacity
    from recommender.plan import Slo, SloTerm

    def analysis(slo: Slo, per_instance: float | None = 30.0) -> Analysis:
        cap = Capacity("interpolated", 2, None if per_instance is None else 2 * per_instance,
                       per_instance, None, 0, 1)  # fmt: skip
        stages = [SimpleNamespace(achieved_rps=rps, slo_values_ms={slo.terms[0].key: v})
                  for rps, v in ((0.5, 12.0), (40.0, 20.0), (80.0, 90.0), (0.0, 5.0),
                                 (60.0, None))]  # fmt: skip
        return cast(Analysis, SimpleNamespace(capacity=cap, slo=slo, stages=stages))

    m = model_from_analysis(analysis(Slo((SloTerm("p95", 100.0),))))
    # Per instance (2): the stages' throughput halved; one that served nothing, or has no
    # value of the SLO's statistic, left out.
    assert m.rps.tolist() == [0.25, 20.0, 40.0] and m.latency.tolist() == [12.0, 20.0, 90.0]
    assert (m.capacity_rps, m.max_rps, m.capacity_method) == (30.0, 40.0, "interpolated")
    assert (m.stat, m.limit_ms, m.quantile) == ("p95", 100.0, 0.95)  # the queue's limit
    ttft = model_from_analysis(analysis(Slo((SloTerm("p99", 800.0, metric="ttft"),))))
    assert (ttft.stat, ttft.limit_ms, ttft.quantile) == ("ttft_p99", 800.0, 0.99)
    # Waiting delays the first token, not the gaps between tokens: ITL has no queue limit.
    itl = model_from_analysis(analysis(Slo((SloTerm("p95", 50.0, metric="itl"),))))
    assert (itl.stat, itl.limit_ms) == ("itl_p95", None)
    with pytest.raises(InsufficientDataError) as info:
        model_from_analysis(analysis(Slo((SloTerm("p95", 100.0),)), per_instance=None))
    assert info.value.one_line() == ("no stage passed the SLO, so there is no capacity to "
                                     "simulate with (re-run the test starting from a lower "
                                     "rate)")  # fmt: skip
    empty = analysis(Slo((SloTerm("p95", 100.0),)))
    empty.stages.clear()  # type: ignore[attr-defined]
    with pytest.raises(InsufficientDataError) as info:
        model_from_analysis(empty)
    assert info.value.one_line() == "the run's stages hold no latency to simulate with"


def test_the_concurrency_curve_of_a_slow_endpoint() -> None:
    # Under 1 rps per instance is still a stage, and beyond it in flight grows in proportion.
    slow = ConcurrencyCurve(np.array([0.0, 0.5]), np.array([0.0, 0.05]))
    assert slow.at(1.0) == pytest.approx(0.1)
    a = SimpleNamespace(capacity=SimpleNamespace(instances=1),
                        stages=[SimpleNamespace(achieved_rps=0.5, in_flight=0.05)])  # fmt: skip
    assert concurrency_curve(cast(Analysis, a)).rps.tolist() == [0.5]


def test_min_capacity_for_a_small_target_reads_even_a_trickle() -> None:
    # 1 rps at its lowest minute on 12 invocations per instance a minute: 5 instances.
    assert Policy().for_target(12.0, from_counts([60.0, 600.0])).min_capacity == 5


def test_the_record_rounds_each_column_and_keeps_serverless_columns() -> None:
    # Per minute, requests and invocations to 2 decimals, rps to 3, utilization to 3.
    sim = simulate(from_counts([1000.125, 1000.125]), QueueModel(), policy())
    pm = sim.to_dict()["per_minute"]
    assert pm["requests"] == [1000.12, 1000.12] and pm["backlog"] == [0.0, 0.0]
    assert pm["invocations_per_instance"] == [500.06, 500.06]
    over = simulate(from_counts([4000.125]), MODEL, policy(max_capacity=2))  # 3600 served
    assert over.to_dict()["per_minute"]["erroring_requests"] == [400.12]
    slow = QueueModel(capacity_rps=0.2, max_rps=0.5)  # 30 a minute per instance
    queued = simulate(from_counts([100.125, 30.0]), slow, policy(max_capacity=2))
    assert queued.to_dict()["per_minute"]["backlog"] == [40.12, 10.12]  # 40.125, 10.125
    served = sim.to_dict()
    assert "cold_starts" not in served["per_minute"]
    serverless = replace(sim, cold_starts=np.array([1.234567, 0.0]),
                         utilization=np.array([0.123456, 1.0]))  # fmt: skip
    pm = serverless.to_dict()["per_minute"]
    assert (pm["cold_starts"], pm["utilization"]) == ([1.23, 0.0], [0.123, 1.0])
    assert "cold_starts" not in replace(sim, utilization=np.array([0.5, 0.5])).to_dict()[
        "per_minute"]  # fmt: skip
    assert "utilization" not in replace(sim, cold_starts=np.array([1.0, 1.0])).to_dict()[
        "per_minute"]  # fmt: skip


def test_a_sweep_row_is_its_simulation_s_policy_and_totals() -> None:
    sim = simulate(from_counts([1000.0] * 5 + [4800.0] * 5), MODEL,
                   policy(max_capacity=6), safety_factor=0.4, instance_price=2.0)  # fmt: skip
    t = sim.totals
    assert t.requests_erroring > 0 and t.scale_out_events == 1
    assert SweepRow.of(sim) == SweepRow(
        safety_factor=0.4, target_value=600.0, min_capacity=2, max_capacity=6,
        violating_minutes=t.violating_minutes, requests_outside_slo=t.requests_outside_slo,
        requests_erroring=t.requests_erroring, instance_hours=t.instance_hours,
        cost_usd=t.cost_usd, scale_out_events=1, scale_in_events=0)  # fmt: skip


def test_the_minute_replay_runs_on_real_minutes_unless_told() -> None:
    # The queue's timeout and the SLO's limit in minutes of the replay: 60 s by default.
    p = policy(max_capacity=6)
    sim = simulate(from_counts(OVERLOAD), QueueModel(), p)
    assert sim.totals == simulate(from_counts(OVERLOAD), QueueModel(), p,
                                  minute_seconds=60.0).totals  # fmt: skip
    assert sim.totals.requests_erroring == pytest.approx(1200.0 * 6)


def test_a_minute_exactly_at_the_capacity_is_within_the_slo() -> None:
    # 2400/min on 2 instances is 20 rps each: the capacity itself, not above it.
    sim = simulate(from_counts([2400.0] * 3), MODEL, policy(max_capacity=2))
    assert not sim.violating.any() and sim.totals.violating_minutes == 0


def test_scale_in_events_record_their_metric_and_count() -> None:
    sim = simulate(from_counts(drop_traffic()), MODEL, policy(min_capacity=1, max_capacity=20))
    assert [(e.kind, e.invocations_per_instance) for e in sim.events] == [("in", 300.0),
                                                                        ("in", 120.0)]
    assert (sim.totals.scale_in_events, sim.totals.scale_out_events) == (2, 0)


def test_cooldowns_hold_whole_minute_ends_rounded_up() -> None:
    # A 61-second cooldown outlasts the next minute-end: it holds two (alarms act at
    # minute ends). Scale-in after the scale-in cooldown: 24, then 26 (not 25) ...
    _, events = run_policy(drop_traffic(), min_capacity=1, max_capacity=20,
                           scale_in_cooldown=61)  # fmt: skip
    assert [e.minute for e in events] == [24, 26]
    # ... and after the scale-out cooldown: out at 7, in at 9 (not 8).
    counts = [600.0] * 5 + [1800.0] * 3 + [60.0] * 20
    _, events = run_policy(counts, min_capacity=1, scale_in_datapoints=1, scale_out_cooldown=61)
    assert [(e.minute, e.kind) for e in events] == [(7, "out"), (9, "in")]


def test_a_fleet_started_off_target_counts_datapoints_from_its_first_minute() -> None:
    # Started on 2 at 3000/min (1500 each): the 3rd datapoint above is minute 2.
    sim = simulate(from_counts([3000.0] * 5), MODEL, policy(), initial_instances=2)
    assert [(e.minute, e.kind, e.to_desired) for e in sim.events] == [(2, "out", 5)]
    # Started on 10 at 600/min, one low datapoint: in at the end of minute 0 already.
    sim = simulate(from_counts([600.0] * 3), MODEL, policy(scale_in_datapoints=1),
                   initial_instances=10)  # fmt: skip
    assert [(e.minute, e.kind, e.to_desired) for e in sim.events] == [(0, "in", 2)]
    assert sim.in_service.tolist() == [10, 2, 2]


def test_a_metric_at_the_threshold_neither_scales_nor_is_capped() -> None:
    # 10 instances at 5400/min: 540 each, exactly 90% of the target, is not below it.
    sim = simulate(from_counts([6000.0] + [5400.0] * 30), MODEL, policy(max_capacity=10))
    assert sim.events == () and sim.totals.capped_minutes == 0  # wanted 10 = MaxCapacity


def test_a_scale_in_takes_the_instances_still_starting_first() -> None:
    # 600/min settles on 1. Out at minute 7 to 3 (the 2 new ones due at minute 14); traffic
    # collapses, and the scale-out cooldown holds the scale-in to minute 12: 3 -> 1 takes
    # the 2 still starting, and the one serving never stops.
    counts = [600.0] * 5 + [1800.0] * 3 + [60.0] * 10
    sim = simulate(from_counts(counts), MODEL, policy(min_capacity=1, scale_in_datapoints=1))
    assert [(e.minute, e.kind, e.to_desired) for e in sim.events] == [(7, "out", 3),
                                                                      (12, "in", 1)]
    assert sim.in_service.tolist() == [1] * 18
    assert sim.desired.tolist() == [1] * 8 + [3] * 5 + [1] * 5


def test_track_with_a_saturating_metric_scales_by_at_most_one_over_the_target() -> None:
    # Provisioned-concurrency utilization counts at most the capacity in service: 5 busy
    # on 2 is 100%, so at a target of 0.5 one scale-out asks for 4, not 10.
    from recommender.simulate import track

    p = policy(target_value=0.5, scale_out_datapoints=1, provision_minutes=0)
    _, _, events, _ = track([5.0, 5.0], p, 2, saturates=True)
    assert [(e.from_desired, e.to_desired, e.invocations_per_instance)
            for e in events] == [(2, 4, 1.0), (4, 8, 1.0)]  # fmt: skip
    _, _, events, _ = track([5.0, 5.0], p, 2)
    assert [(e.to_desired, e.invocations_per_instance) for e in events] == [(10, 2.5)]


def test_the_queue_is_modelled_for_any_throughput_but_none() -> None:
    slow = QueueModel(capacity_rps=0.2, max_rps=0.5)  # 30 a minute per instance
    sim = simulate(from_counts([120.0, 30.0]), slow, policy(max_capacity=2))
    assert sim.backlog is not None and sim.backlog.tolist() == [60.0, 30.0]
    none = simulate(from_counts([120.0]), QueueModel(capacity_rps=0.0, max_rps=0.0),
                    policy(max_capacity=2))  # fmt: skip
    assert none.backlog is None and none.served is None


def test_bounds_need_each_of_target_min_and_max() -> None:
    for kw in ({"min_capacity": 1, "max_capacity": 5}, {"target_value": 600.0, "min_capacity": 1},
               {"target_value": 600.0, "max_capacity": 5}):  # fmt: skip
        with pytest.raises(ConfigError, match="needs a target value, MinCapacity and"):
            Policy(**kw).bounds()  # type: ignore[arg-type]


def test_a_standing_queue_is_late_only_past_the_slo_s_limit() -> None:
    # Two instances held at 30 rps each (the most they serve, and here the capacity too).
    # Minute 0, 4 requests a step too many, leaves 24 queued: a standing queue of 24 / 600
    # of a 10-second step, 0.4 s, exactly the SLO's limit: within it, not late. 48 queued
    # (0.8 s) are late for every request of the minute.
    at = QueueModel(capacity_rps=30.0)
    fixed = policy(target_value=100.0, max_capacity=2)
    for over, late in ((3624.0, False), (3648.0, True)):
        sim = simulate_concurrency(from_counts([over, 3600.0, 3600.0]), at, EXACT, fixed)
        assert sim.violating.tolist() == [True, late, late], over  # minute 0: over capacity
