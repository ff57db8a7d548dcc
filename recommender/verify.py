"""`recommender verify`: replay a traffic shape against the endpoint a run measured, with the
scaling policy live on it, and set what Application Auto Scaling did beside what `simulate`
predicted for the same traffic and policy. Then fit the simulator's provisioning time and
alarm lag to what was observed (calibration.json), for the next `simulate` and
`--safety-factor auto`.

    <run dir>/verify.json        the verdict, per-minute observed and predicted, the samples,
                                 the scaling activities and alarms read back
    <run dir>/verify.md, .html   the verdict table and the timeline (recommender.report.verify)
    <run dir>/calibration.json   the fitted provisioning time and alarm lag
    <run dir>/verify-load/<run>  the load test of the replay (a run directory of its own)

Time: the traffic replayed (all of it, or `window` minutes of it) is compressed into
`minutes` of wall clock, so one traffic minute lasts minutes x 60 / traffic minutes real
seconds (`--minutes 48`: a day of 1,440 minutes in 2 s each); `minute_seconds` gives that
length directly. Neither given: the local scaler's minute, or 60 against AWS. Against AWS a
minute must be 60 s (AWS's alarms run on real minutes); against the local stack it must equal
the local scaler's `--minute-seconds` (recommender.local.autoscaler), which compresses alarms,
cooldowns and the metric the same way. Every observed time is reported in traffic minutes.

Load: open loop, with the arrivals the run measured under (Poisson, the load generator's
default and what many independent clients send, unless the run said otherwise). Open loop:
`simulate` predicts from each minute's offered rate, and an open-loop client keeps offering
it while the endpoint slows down, as production traffic does; a closed loop would send less
exactly when the policy is late, and hide what is being verified. The run's arrivals:
`simulate`'s capacity within the SLO is the run's, measured under them, so the replay's
latency is comparable with it only under the same process. On a compressed clock an emulated
minute holds 60 / minute_seconds times fewer requests than a real one, so under Poisson its
count (what the alarm sums) varies sqrt(60 / minute_seconds) times more: a level close to the
target can breach the alarm by chance, earlier than `simulate` (exact per-minute counts) says.
The load stops by itself at the plan's end or at a hard request cap the load generator
enforces (`max_requests`, default `request_cap`: the traffic's requests with a margin), and
on Ctrl-C; either way what was observed is compared (with a simulation of the minutes
played) and written, the status saying which (`stopped`, `interrupted`).

Observed, every `observe_seconds` (10 s, or one emulated minute when that is shorter): the
variant's current and desired instance count (DescribeEndpoint), the instances really in
service (the local router's `/_local/endpoints`, where the runtime is the local one), the
target-tracking alarms' states (DescribeAlarms), and the metric as the alarm sees it
(InvocationsPerInstance, Sum over the last minute). After the load: the scaling activities
(DescribeScalingActivities) and the client's latency and errors per second (the replay's
latency.jsonl), folded into minutes.

The client's seconds count requests by when they completed (the load generator's records),
so during an overload the answered rate lags the offered one and catches up afterwards.

A minute is SLO-violating (observed) when its client latency statistic (the SLO's first
term) is above the limit, or its error rate above the SLO's; predicted as `simulate` says
(load per instance in service above the capacity within the SLO, or the queue an overload
left still waiting longer than the limit: recommender.simulate's FluidQueue, simulated on the
replay's clock, since a compressed minute shortens the flows but not a request's wait).
"""

from __future__ import annotations

import contextlib
import json
import math
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from recommender import histograms, runs
from recommender.aws import AwsClient
from recommender.calibration import CALIBRATION_FILE, Calibration, read_calibration
from recommender.errors import ConfigError, RecommenderError
from recommender.loadgen.runner import LoadTestSpec
from recommender.options import AwsAccess
from recommender.plan import RampPlan, Stage, Target
from recommender.policy.kinds import METRICS, VARIANT_DIMENSION, Kind, Metric
from recommender.replay import simulate_policy
from recommender.simulate import (
    DEFAULT_PROVISION_MINUTES,
    DEFAULT_SCALE_IN_DATAPOINTS,
    DEFAULT_SCALE_IN_RATIO,
    DEFAULT_SCALE_OUT_DATAPOINTS,
    Policy,
    Simulation,
)
from recommender.traffic import TrafficSeries, TrafficSpec, from_counts

VERIFY_FILE = "verify.json"
LOAD_DIR = "verify-load"
NAMESPACE = "sagemaker"
# The patterns' events are at 12:00; a window of --minutes starts this much before.
EVENT_MINUTE, LEAD_MINUTES = 12 * 60, 5
MIN_RPS = 0.05  # a stage needs a rate > 0: an idle minute sends ~nothing
# What `simulate` models (and the local scaler evaluates): a policy on another metric has a
# target in other units, so its prediction would mean nothing.
INVOCATIONS_METRIC = METRICS[(Kind.VARIANT, Metric.INVOCATIONS)].name
Echo = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class VerifyOptions:
    run_dir: Path
    traffic: TrafficSpec
    window: int | None = None  # how many minutes of the traffic to replay [all]
    minutes: float | None = None  # wall-clock minutes the replayed traffic is compressed into
    minute_seconds: float | None = None  # real seconds per traffic minute (instead of minutes)
    violation_budget: int = 0
    force: bool = False
    endpoint_url: str | None = None  # the runtime base URL; default: the run's
    aws: AwsAccess = field(default_factory=AwsAccess)
    observe_seconds: float = 10.0
    workers: int = 0
    max_requests: int | None = None  # the load's hard request cap [request_cap(plan)]

    def check(self) -> VerifyOptions:
        self.traffic.check()
        if not self.traffic.given:
            raise ConfigError("verify needs traffic to replay",
                              "pass --pattern spike|step|diurnal with --peak-rps, or "
                              "--traffic FILE")  # fmt: skip
        if self.window is not None and self.window < 1:
            raise ConfigError(f"--window must be >= 1 (got {self.window})")
        if self.minutes is not None and self.minute_seconds is not None:
            raise ConfigError("--minutes and --minute-seconds both set the clock",
                              "pass one: --minutes for the whole replay's wall-clock length, "
                              "--minute-seconds for one traffic minute's")  # fmt: skip
        if self.minutes is not None and not (math.isfinite(self.minutes) and self.minutes > 0):
            raise ConfigError(f"--minutes must be > 0 (got {self.minutes:g})")
        if self.minute_seconds is not None and not 1 <= self.minute_seconds <= 60:
            raise ConfigError(f"--minute-seconds must be in [1, 60] (got {self.minute_seconds:g})",
                              "60 against AWS; the local scaler's --minute-seconds locally")
        if self.violation_budget < 0:
            raise ConfigError(f"--violation-budget must be >= 0 (got {self.violation_budget})")
        if self.max_requests is not None and self.max_requests < 1:
            raise ConfigError(f"--max-requests must be >= 1 (got {self.max_requests})",
                              "leave it out for the traffic's requests with a margin")  # fmt: skip
        if self.workers < 0:
            raise ConfigError(f"--workers must be >= 0 (got {self.workers})", "0 runs one process")
        return self


@dataclass(frozen=True)
class LivePolicy:
    """The target-tracking policy read back from the endpoint, with its alarms."""

    name: str
    target_value: float
    min_capacity: int
    max_capacity: int
    scale_out_cooldown: int
    scale_in_cooldown: int
    disable_scale_in: bool
    alarms: tuple[dict[str, Any], ...]
    metric: str = INVOCATIONS_METRIC  # the metric tracked

    def simulated(self, provision_minutes: int) -> Policy:
        """The same policy for `simulate`, its alarm settings from the alarms read back
        (AWS's documented defaults where none could be read)."""
        high = next((a for a in self.alarms if "-AlarmHigh-" in a["AlarmName"]), None)
        low = next((a for a in self.alarms if "-AlarmLow-" in a["AlarmName"]), None)

        def points(alarm: dict[str, Any] | None, default: int) -> int:
            if alarm is None:
                return default
            return int(alarm.get("DatapointsToAlarm") or alarm["EvaluationPeriods"])

        ratio = (float(low["Threshold"]) / self.target_value if low is not None
                 else DEFAULT_SCALE_IN_RATIO)  # fmt: skip
        return Policy(target_value=self.target_value, min_capacity=self.min_capacity,
                      max_capacity=self.max_capacity,
                      scale_out_cooldown=self.scale_out_cooldown,
                      scale_in_cooldown=self.scale_in_cooldown,
                      disable_scale_in=self.disable_scale_in,
                      scale_out_datapoints=points(high, DEFAULT_SCALE_OUT_DATAPOINTS),
                      scale_in_datapoints=points(low, DEFAULT_SCALE_IN_DATAPOINTS),
                      scale_in_ratio=min(1.0, max(ratio, 1e-6)),
                      provision_minutes=provision_minutes).check()  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "target_value": self.target_value,
                "min_capacity": self.min_capacity, "max_capacity": self.max_capacity,
                "scale_out_cooldown_s": self.scale_out_cooldown,
                "scale_in_cooldown_s": self.scale_in_cooldown,
                "disable_scale_in": self.disable_scale_in,
                "alarms": [{k: a.get(k) for k in ("AlarmName", "StateValue", "Threshold",
                                                  "ComparisonOperator", "EvaluationPeriods",
                                                  "DatapointsToAlarm", "Period")}
                           for a in self.alarms]}  # fmt: skip


def _resource_id(endpoint: str, variant: str) -> str:
    return f"endpoint/{endpoint}/variant/{variant}"


def alarms_of(aws: AwsClient, policy: dict[str, Any], rid: str) -> list[dict[str, Any]]:
    """The policy's alarms: by the names DescribeScalingPolicies lists, else by target
    tracking's naming (TargetTracking-<resource id>-...)."""
    names = [str(a["AlarmName"]) for a in policy.get("Alarms") or []]
    if names:
        return aws.describe_alarms(names)
    return aws.alarms_with_prefix(f"TargetTracking-{rid}-")


def read_policy(aws: AwsClient, endpoint: str, variant: str) -> LivePolicy | None:
    """The variant's target-tracking policy and its bounds (None: none there)."""
    rid = _resource_id(endpoint, variant)
    targets = aws.describe_scalable_targets(NAMESPACE, rid, VARIANT_DIMENSION)
    policies = [p for p in aws.describe_scaling_policies(NAMESPACE, rid, VARIANT_DIMENSION)
                if p.get("PolicyType") == "TargetTrackingScaling"]  # fmt: skip
    if not targets or not policies:
        return None
    p, t = policies[0], targets[0]
    spec = p["TargetTrackingScalingPolicyConfiguration"]
    metric = str((spec.get("PredefinedMetricSpecification") or {}).get("PredefinedMetricType")
                 or (spec.get("CustomizedMetricSpecification") or {}).get("MetricName"))
    return LivePolicy(str(p["PolicyName"]), float(spec["TargetValue"]), int(t["MinCapacity"]),
                      int(t["MaxCapacity"]), int(spec.get("ScaleOutCooldown", 300)),
                      int(spec.get("ScaleInCooldown", 300)), bool(spec.get("DisableScaleIn")),
                      tuple(alarms_of(aws, p, rid)), metric)  # fmt: skip


def replay_window(series: TrafficSeries, spec: TrafficSpec, minutes: int | None) -> TrafficSeries:
    """The minutes to replay: all of them, or `minutes` of them (a spike's or step's from
    5 minutes before its event at 12:00; otherwise from the start)."""
    if minutes is None or minutes >= series.minutes:
        return series
    start = 0
    if spec.pattern in ("spike", "step"):
        start = min(EVENT_MINUTE - LEAD_MINUTES, series.minutes - minutes)
    cut = from_counts(series.requests_per_minute[start : start + minutes],
                      f"{series.source}, minutes {start} to {start + minutes}")  # fmt: skip
    return cut


def replay_clock(o: VerifyOptions, traffic_minutes: int, local_minute: float | None) -> float:
    """Real seconds per traffic minute: from --minutes (the whole replay's wall-clock length),
    --minute-seconds, or else the local scaler's minute (60 against AWS); checked against the
    clock the policy really runs on (the local scaler's, or AWS's real minutes)."""
    if o.minutes is not None:
        seconds = o.minutes * 60.0 / traffic_minutes
        given = (f"--minutes {o.minutes:g} puts {traffic_minutes:,} traffic minutes into "
                 f"{seconds:.3g} s each")  # fmt: skip
    elif o.minute_seconds is not None:
        seconds, given = o.minute_seconds, f"--minute-seconds {o.minute_seconds:g}"
    else:
        return local_minute if local_minute is not None else 60.0
    clock = local_minute if local_minute is not None else 60.0
    if abs(seconds - clock) <= 1e-6 * clock:
        return clock
    whose = (f"the local scaler's minute is {clock:g} s" if local_minute is not None
             else "AWS's alarms run on real minutes (60 s)")  # fmt: skip
    if o.minutes is None:
        raise ConfigError(f"{given} differs from the clock: {whose}",
                          f"pass --minute-seconds {clock:g}, or leave it out")  # fmt: skip
    hint = (f"pass --minutes {clock * traffic_minutes / 60.0:g} (or leave --minutes out), or "
            "--window N to replay fewer traffic minutes")  # fmt: skip
    if local_minute is not None and seconds >= 1 and seconds == int(seconds):
        # The local scaler's minute is whole publishing periods (1 s at the least).
        hint += f", or restart `recommender host` with --minute-seconds {seconds:g}"
    raise ConfigError(f"{given}, but {whose}", hint)


def load_plan(series: TrafficSeries, minute_seconds: float,
              arrivals: str = "poisson") -> RampPlan:  # fmt: skip
    """One open-loop stage per traffic minute, `minute_seconds` long, at its mean rate."""
    stages = tuple(Stage(max(round(r / 60.0, 3), MIN_RPS), minute_seconds)
                   for r in series.requests_per_minute.tolist())  # fmt: skip
    return RampPlan(stages=stages, warmup_seconds=0.0, arrivals=arrivals)


def request_cap(plan: RampPlan) -> int:
    """The load's hard request cap: the plan's expected requests (each stage's rate x its
    seconds) with a margin for the arrival process's chance, 5 standard deviations of a
    Poisson count (sqrt of it) plus 10: a full replay stops on it with a probability below
    one in a million, a runaway generator within 5 sigma of the plan."""
    expected = sum(s.rps * s.seconds for s in plan.stages)
    return math.ceil(expected + 5.0 * math.sqrt(expected)) + 10


def run_arrivals(meta: dict[str, Any]) -> str:
    """The arrivals the run measured its capacity under (Poisson where it does not say):
    `simulate`'s capacity within the SLO is that run's, so the replay's latency is comparable
    only under the same arrival process."""
    plan = meta.get("plan")
    found = plan.get("arrivals") if isinstance(plan, dict) else None
    return str(found or "poisson")


# --- observing --------------------------------------------------------------------------


class Observer:
    """Samples the endpoint every `every` seconds in a thread until stopped."""

    def __init__(self, aws: AwsClient, endpoint: str, variant: str, runtime: str | None,
                 every: float, minute_seconds: float) -> None:  # fmt: skip
        self.aws, self.endpoint, self.variant = aws, endpoint, variant
        self.runtime, self.every, self.minute_seconds = runtime, every, minute_seconds
        self.samples: list[dict[str, Any]] = []
        self.warnings: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="verify-observer", daemon=True)

    def __enter__(self) -> Observer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(self.sample(time.time()))
            except RecommenderError as exc:
                if len(self.warnings) < 5:
                    self.warnings.append(exc.one_line())
            self._stop.wait(self.every)

    def _in_service(self) -> int | None:
        """The local router's count of instances serving (None: not the local runtime)."""
        if self.runtime is None:
            return None
        try:
            with urllib.request.urlopen(f"{self.runtime}/_local/endpoints", timeout=5) as r:
                data = json.loads(r.read())
        except (OSError, ValueError):
            return None
        v = ((data.get("endpoints") or {}).get(self.endpoint) or {}).get("variants", {})
        found = v.get(self.variant)
        return int(found["in_service"]) if found else None

    def sample(self, now: float) -> dict[str, Any]:
        v = self.aws.describe_endpoint(self.endpoint).variant(self.variant)
        rid = _resource_id(self.endpoint, self.variant)
        alarms = self.aws.alarms_with_prefix(f"TargetTracking-{rid}-")
        dims = {"EndpointName": self.endpoint, "VariantName": self.variant}
        period = 1 if self.minute_seconds < 60 else 60
        end = datetime.fromtimestamp(math.floor(now), timezone.utc)
        start = datetime.fromtimestamp(math.floor(now) - self.minute_seconds, timezone.utc)
        metric = self.aws.metric_sum("AWS/SageMaker", "InvocationsPerInstance", dims, start,
                                     end, period)  # fmt: skip
        return {
            "time": now,
            "current": v.current_instance_count,
            "desired": v.desired_instance_count,
            "in_service": self._in_service(),
            "alarms": {("high" if "-AlarmHigh-" in a["AlarmName"] else "low"): a["StateValue"]
                       for a in alarms},  # fmt: skip
            # Per minute, as the alarm compares it with the target.
            "metric": None if metric is None else metric * 60.0 / self.minute_seconds,
        }

    def stop(self) -> None:
        self._stop.set()


# --- folding into minutes -----------------------------------------------------------------


@dataclass(frozen=True)
class Observed:
    minutes: int
    requests: list[int]
    errors: list[int]
    latency_ms: list[float | None]  # the SLO's first statistic, per minute
    violating: list[bool]
    in_service: list[int | None]  # the fewest in service within the minute
    desired: list[int | None]  # the most desired within the minute
    activities: list[dict[str, Any]]  # scaling activities, times in minutes from the start
    minute_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"minute": list(range(self.minutes)), "requests": self.requests,
                "errors": self.errors, "latency_ms": self.latency_ms,
                "slo_violating": self.violating, "in_service": self.in_service,
                "desired": self.desired}  # fmt: skip


def observed_minutes(load_dir: Path, samples: list[dict[str, Any]],
                     activities: list[dict[str, Any]], minutes: int,
                     minute_seconds: float) -> Observed:  # fmt: skip
    run = runs.load_run(load_dir)
    t0 = datetime.fromisoformat(str(run.meta["started_at"]).replace("Z", "+00:00")).timestamp()
    slo = run.slo
    term = slo.terms[0]
    req = [0] * minutes
    err = [0] * minutes
    hists: list[list[str]] = [[] for _ in range(minutes)]
    for r in run.seconds:
        m = int(float(r["second"]) // minute_seconds)
        if 0 <= m < minutes:
            req[m] += int(r["requests"])
            err[m] += int(r["requests"]) - int(r["ok"])
            hists[m].append(str(r.get(term.histogram) or ""))
    lat: list[float | None] = []
    bad: list[bool] = []
    for m in range(minutes):
        h = histograms.merge(hists[m])
        q = term.quantile
        value = (histograms.percentile_ms(h, q) if q is not None
                 else (float(h.get_mean_value()) / 1000.0 if h.get_total_count() else None))
        lat.append(None if value is None else round(value, 2))
        over = value is not None and value > term.limit_ms
        bad.append(bool(over or (req[m] and err[m] / req[m] > slo.max_error_rate)))
    serving: list[int | None] = [None] * minutes
    desired: list[int | None] = [None] * minutes
    last: dict[str, Any] | None = None
    seen_until = max((float(s["time"]) for s in samples), default=t0)
    for m in range(minutes):
        inside = [s for s in samples
                  if t0 + m * minute_seconds <= s["time"] < t0 + (m + 1) * minute_seconds]
        # A minute between two samples holds the last one; none after the last sample.
        if not inside and last and t0 + m * minute_seconds <= seen_until:
            inside = [last]
        if inside:
            last = inside[-1]
            counts = [s["in_service"] if s["in_service"] is not None else s["current"]
                      for s in inside]  # fmt: skip
            serving[m] = min(int(c) for c in counts if c is not None) if any(
                c is not None for c in counts) else None
            ds = [int(s["desired"]) for s in inside if s["desired"] is not None]
            desired[m] = max(ds) if ds else None
    acts: list[dict[str, Any]] = []
    for a in activities:
        start = _epoch(a.get("StartTime"))
        if start is None or start < t0 - minute_seconds:
            continue
        end = _epoch(a.get("EndTime"))
        acts.append({"start_minute": round((start - t0) / minute_seconds, 2),
                     "end_minute": None if end is None else round((end - t0) / minute_seconds, 2),
                     "status": a.get("StatusCode"), "description": a.get("Description"),
                     "cause": a.get("Cause")})  # fmt: skip
    acts.sort(key=lambda a: float(a["start_minute"]))
    return Observed(minutes, req, err, lat, bad, serving, desired, acts, minute_seconds)


def _epoch(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.timestamp()
    return float(value)


# --- the verdict --------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    what: str
    predicted: float | None
    observed: float | None
    unit: str

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "predicted": self.predicted, "observed": self.observed,
                "unit": self.unit}  # fmt: skip


def _scale_outs(acts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [a for a in acts if "AlarmHigh" in str(a.get("cause"))]


def verdict(sim: Simulation, obs: Observed) -> list[Row]:
    """Predicted beside observed (times in minutes from the replay's start)."""
    outs = [e for e in sim.events if e.kind == "out"]
    p_first = float(outs[0].minute + 1) if outs else None
    p_served = (p_first + float(sim.policy.provision_minutes)) if p_first is not None else None
    o_outs = _scale_outs(obs.activities)
    o_first = float(o_outs[0]["start_minute"]) if o_outs else None
    o_served = o_outs[0]["end_minute"] if o_outs else None
    served = [n for n in obs.in_service if n is not None]
    desired = [n for n in obs.desired if n is not None]
    # At the traffic's scale: a compressed minute sent its rate for minute_seconds only.
    req = np.array(obs.requests, dtype=np.float64) * 60.0 / obs.minute_seconds
    outside = float(req[np.array(obs.violating, dtype=bool)].sum()) if obs.minutes else 0.0
    return [
        Row("time to first scale-out", p_first, o_first, "min"),
        Row("time until in service", p_served,
            None if o_served is None else float(o_served), "min"),
        Row("peak instances in service", float(sim.totals.in_service_max),
            float(max(served)) if served else None, ""),
        Row("instance-minutes", float(sim.desired.sum()),
            float(sum(desired)) if desired else None, ""),
        Row("SLO-violating minutes", float(sim.totals.violating_minutes),
            float(sum(obs.violating)), "min"),
        Row("requests outside the SLO", round(sim.totals.requests_outside_slo, 1),
            round(outside, 1), ""),
    ]  # fmt: skip


# --- calibration --------------------------------------------------------------------------


def fit(sim: Simulation, obs: Observed) -> Calibration | None:
    """Calibration from the observed scale-outs (None: none finished)."""
    done = [a for a in _scale_outs(obs.activities)
            if a["end_minute"] is not None and a["status"] == "Successful"]  # fmt: skip
    if not done:
        return None
    spans = [float(a["end_minute"]) - float(a["start_minute"]) for a in done]
    provision = max(0, math.ceil(float(np.median(spans)) - 1e-6))
    outs = [e for e in sim.events if e.kind == "out"]
    lag = 0
    first = _scale_outs(obs.activities)
    if outs and first:
        lag = max(0, round(float(first[0]["start_minute"]) - (outs[0].minute + 1)))
    return Calibration(provision, lag, len(done))



# --- the whole ----------------------------------------------------------------------------


@dataclass(frozen=True)
class VerifyResult:
    data: dict[str, Any]  # verify.json
    rows: list[Row]
    simulation: Simulation
    observed: Observed
    calibration: Calibration | None
    path: Path
    budget_met: bool
    status: str  # the load test's: complete | stopped | interrupted


def _target(run: runs.RunData, endpoint_url: str | None) -> tuple[Target, str | None]:
    """The run's endpoint as a load-test target, and the runtime base URL."""
    t = run.meta.get("target") or {}
    endpoint, variant = t.get("endpoint"), t.get("variant")
    if not endpoint or not variant:
        raise ConfigError(f"{run.path} measured a URL, not a SageMaker endpoint",
                          "verify replays traffic against an endpoint's policy")  # fmt: skip
    url = str(t["url"])
    base = url.split("/endpoints/")[0]
    if endpoint_url:
        base = endpoint_url.rstrip("/")
        url = f"{base}/endpoints/{endpoint}/invocations"
    return (Target(url=url, name=f"verify-{endpoint}", instances=int(t.get("instances") or 1),
                   instance_type=t.get("instance_type"), content_type=t.get("content_type"),
                   accept=t.get("accept"), endpoint=endpoint, variant=variant,
                   region=t.get("region"), profile=t.get("profile")), base)  # fmt: skip


def verify(options: VerifyOptions, echo: Echo = print,
           measure: Callable[[LoadTestSpec], Any] | None = None) -> VerifyResult:  # fmt: skip
    """Read the live policy, replay the traffic while observing, simulate, compare, fit."""
    o = options.check()
    run = runs.load_run(o.run_dir)
    target, base = _target(run, o.endpoint_url)
    assert target.endpoint is not None and target.variant is not None
    aws = AwsClient.connect(o.aws, target.region)
    live = read_policy(aws, target.endpoint, target.variant)
    rid = _resource_id(target.endpoint, target.variant)
    if live is None and not o.force:
        raise ConfigError(f"no target-tracking policy on {rid}",
                          f"apply one first (recommender apply {o.run_dir}), or pass --force "
                          "to replay without one")  # fmt: skip
    if live is not None and live.metric != INVOCATIONS_METRIC:
        if not o.force:
            raise ConfigError(f"{live.name} on {rid} tracks {live.metric}: verify compares "
                              f"policies on {INVOCATIONS_METRIC} (what simulate models)",
                              f"apply one on invocations (recommender apply {o.run_dir} "
                              "--metric invocations), or pass --force to replay without a "
                              "prediction of scaling")  # fmt: skip
        echo(f"warning: {live.name} tracks {live.metric}; predicted as a fixed fleet (--force)")
        live = None
    series = replay_window(o.traffic.load(), o.traffic, o.window)
    # The clock the policy runs on: the local scaler's, or AWS's real minutes.
    minute_seconds = replay_clock(o, series.minutes, _local_minute_seconds(base))
    calibration = read_calibration(o.run_dir)
    provision = (calibration.simulated_provision_minutes if calibration
                 else DEFAULT_PROVISION_MINUTES)  # fmt: skip
    now_desired = aws.describe_endpoint(target.endpoint).variant(target.variant)
    start_n = int(now_desired.desired_instance_count or 1)
    if live is not None:
        policy = live.simulated(provision)
        echo(f"Policy {live.name} on {rid}: target {live.target_value:g} invocations per "
             f"instance per minute, {live.min_capacity}-{live.max_capacity} instances")
    else:
        policy = Policy(target_value=1e12, min_capacity=start_n, max_capacity=start_n)
        echo(f"No policy on {rid} (--force): the replay runs on {start_n} instance(s)")
    start_n = min(policy.max_capacity or start_n, max(policy.min_capacity or 1, start_n))
    sim = simulate_policy(o.run_dir, series, policy, initial_instances=start_n,
                          minute_seconds=minute_seconds)
    arrivals = run_arrivals(run.meta)
    echo(f"Replaying {series.minutes} minutes of {series.source} "
         f"({series.requests_per_minute.sum():,.0f} requests, {arrivals} arrivals as the run "
         "measured, open loop) in "
         f"{series.minutes * minute_seconds / 60.0:,.1f} min (1 minute = {minute_seconds:g} s); "
         "simulator's provisioning "
         f"{provision} min" + (" (calibrated)" if calibration else " (default)"))
    plan = load_plan(series, minute_seconds, arrivals)
    cap = o.max_requests or request_cap(plan)
    echo(f"The load stops by itself after {plan.duration:,.0f} s or {cap:,} requests "
         "(--max-requests), whichever comes first")  # fmt: skip
    spec = LoadTestSpec(target=target, plan=plan, slo=run.slo, payload=_payload(run),
                        out=o.run_dir / LOAD_DIR, credentials=_credentials(aws),
                        abort_error_rate=1.0, abort_latency_factor=1e9,
                        arrivals=arrivals, workers=o.workers, max_requests=cap)  # fmt: skip
    if measure is None:
        from recommender.loadgen.runner import run_loadtest

        def measure(s: LoadTestSpec) -> Any:
            return run_loadtest(s, echo)

    every = min(o.observe_seconds, minute_seconds)
    # The local router says how many instances really serve; AWS's runtime has no such page.
    local = base if base and ("127.0.0.1" in base or "localhost" in base) else None
    with Observer(aws, target.endpoint, target.variant, local, every, minute_seconds) as obs:
        loadtest = measure(spec)
    activities: list[dict[str, Any]] = []
    with contextlib.suppress(RecommenderError):
        activities = aws.describe_scaling_activities(NAMESPACE, rid, VARIANT_DIMENSION)
    alarms = []
    with contextlib.suppress(RecommenderError):
        alarms = aws.alarms_with_prefix(f"TargetTracking-{rid}-")
    if live is not None and alarms and not live.alarms:
        live = replace(live, alarms=tuple(alarms))
    planned = series.minutes
    played = _played_minutes(loadtest.run_dir, minute_seconds, series.minutes)
    if played < series.minutes:  # interrupted: compare the minutes that were played
        series = from_counts(series.requests_per_minute[:played],
                             f"{series.source}, the first {played} minutes")  # fmt: skip
        sim = simulate_policy(o.run_dir, series, policy, initial_instances=start_n,
                              minute_seconds=minute_seconds)  # fmt: skip
    observed = observed_minutes(loadtest.run_dir, obs.samples, activities, series.minutes,
                                minute_seconds)  # fmt: skip
    rows = verdict(sim, observed)
    calibrated = fit(sim, observed)
    if calibrated is not None:
        runs.write_json(o.run_dir / CALIBRATION_FILE, {
            **calibrated.to_dict(), "from": str(loadtest.run_dir),
            "minute_seconds": minute_seconds})  # fmt: skip
    budget_met = sum(observed.violating) <= o.violation_budget
    data = {
        "schema_version": 1,
        "run_dir": str(o.run_dir),
        "load_run_dir": str(loadtest.run_dir),
        "status": loadtest.status,
        "max_requests": cap,
        "capped": bool(runs.load_run(loadtest.run_dir).meta["generator"].get("capped_at")),
        "endpoint": target.endpoint, "variant": target.variant,
        "minute_seconds": minute_seconds,
        "observe_seconds": every,
        "policy": live.to_dict() if live else None,
        "simulated_policy": policy.to_dict() if live else None,
        "calibration_used": calibration.to_dict() if calibration else None,
        "calibration": calibrated.to_dict() if calibrated else None,
        "traffic": series.to_dict(),  # the minutes played
        "minutes_planned": planned,
        "violation_budget": o.violation_budget,
        "budget_met": budget_met,
        "verdict": [r.to_dict() for r in rows],
        "observed": {**observed.to_dict(), "activities": observed.activities},
        "predicted": sim.to_dict()["per_minute"],
        "samples": obs.samples,
        "warnings": obs.warnings,
    }  # fmt: skip
    path = o.run_dir / VERIFY_FILE
    runs.write_json(path, data)
    write_verify_reports(o.run_dir, data, run.meta)
    return VerifyResult(data, rows, sim, observed, calibrated, path, budget_met,
                        str(loadtest.status))  # fmt: skip


def write_verify_reports(run_dir: Path, data: dict[str, Any], meta: dict[str, Any]) -> None:
    """verify.md and verify.html beside verify.json."""
    from recommender.report.verify import format_verify_html, format_verify_markdown, slo_limit

    (run_dir / "verify.md").write_text(format_verify_markdown(data), encoding="utf-8")
    (run_dir / "verify.html").write_text(format_verify_html(data, slo_limit(meta)),
                                         encoding="utf-8")  # fmt: skip


def _local_minute_seconds(base: str | None) -> float | None:
    """The local hosting layer's scaler minute (None: not the local runtime)."""
    if not base or not ("127.0.0.1" in base or "localhost" in base):
        return None
    try:
        with urllib.request.urlopen(f"{base}/_local/endpoints", timeout=5) as r:
            value = json.loads(r.read()).get("minute_seconds")
    except (OSError, ValueError):
        return None
    return float(value) if value is not None else None


def _played_minutes(load_dir: Path, minute_seconds: float, minutes: int) -> int:
    """How many traffic minutes the load test played (all, unless it was interrupted)."""
    seconds = runs.load_run(load_dir).seconds
    last = max((float(r["second"]) + 1 for r in seconds), default=0.0)
    return max(1, min(minutes, math.ceil(last / minute_seconds - 1e-6)))


def _payload(run: runs.RunData) -> Path | None:
    """The run's payload file when it is still there (else the default payload)."""
    meta = run.meta.get("payload")
    source = meta.get("source") if isinstance(meta, dict) else None
    return Path(source) if source and Path(source).is_file() else None


def _credentials(aws: AwsClient) -> Callable[[], Any]:
    from recommender.loadgen.sigv4 import Credentials

    def frozen() -> Credentials:
        return Credentials(*aws.frozen_credentials())

    return frozen
