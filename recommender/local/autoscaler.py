"""A local Application Auto Scaling: target tracking on the emulator's variants, evaluated.

moto stores scalable targets and scaling policies but evaluates nothing. This scaler plays
Application Auto Scaling's part for target tracking on `sagemaker:variant:DesiredInstanceCount`
as AWS documents it (the same documented behaviour recommender.simulate replays, whose
constants it reuses: DEFAULT_SCALE_OUT_DATAPOINTS, DEFAULT_SCALE_IN_DATAPOINTS,
DEFAULT_SCALE_IN_RATIO), but on measured metrics and real processes:

- Every emulated minute it reads the targets and target-tracking policies back
  (DescribeScalableTargets, DescribeScalingPolicies), and the policy's metric from the
  emulator's CloudWatch (GetMetricStatistics Sum of InvocationsPerInstance and Invocations,
  which the hosting router publishes for the instances really in service).
- Alarms: for each policy it creates the two alarms target tracking creates
  (TargetTracking-<resource id>-AlarmHigh-<id>: above the target for 3 of 3 one-minute
  datapoints; -AlarmLow-<id>: below 90% of it for 15 of 15) with PutMetricAlarm, reads them
  back every minute (DescribeAlarms: their thresholds and datapoints are what it evaluates),
  and sets their states (SetAlarmState), so DescribeAlarms shows what drove each decision.
  No data in a minute breaks both runs (an alarm without data takes no action).
- An alarm in ALARM acts every minute it stays there. The new desired count is the
  proportional rule, ceil(invocations per minute / target) within Min/MaxCapacity (the
  simulator's rule). A scale-out goes through whenever it asks for more than the desired
  count (also within the scale-out cooldown); a scale-in waits for both cooldowns.
  A desired count outside Min/MaxCapacity is brought within them at once.
- It scales with UpdateEndpointWeightsAndCapacities (`AwsClient.set_desired_instance_count`),
  which the hosting layer follows, and records each scaling activity in the emulator
  (recommender.local.activities_emulator) for DescribeScalingActivities: InProgress until
  the new instances are in service (read from the hosting layer), then Successful.

**Compressed time.** `minute_seconds` real seconds stand for one minute (default 60). The
metric over those seconds is scaled to a per-minute rate (x 60 / minute_seconds), cooldowns
(seconds) are scaled by minute_seconds / 60, and alarm datapoints are counted per emulated
minute. An emulated minute must be a whole number of the router's publishing periods (e.g. period 1
with minute_seconds 2): minutes start on multiples of minute_seconds of epoch time, so each
evaluation sums exactly the periods of one minute. The hosting layer's
`provision_seconds` is real time: 6 emulated minutes at minute_seconds 2 is 12 s.
"""

from __future__ import annotations

import json
import math
import time
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from recommender.aws import AwsClient
from recommender.errors import ConfigError, RecommenderError
from recommender.local.activities_emulator import PUT_OPERATION
from recommender.policy.kinds import VARIANT_DIMENSION
from recommender.simulate import (
    DEFAULT_SCALE_IN_DATAPOINTS,
    DEFAULT_SCALE_IN_RATIO,
    DEFAULT_SCALE_OUT_DATAPOINTS,
)

NAMESPACE = "sagemaker"
METRIC = "SageMakerVariantInvocationsPerInstance"
_EPS = 1e-9


@dataclass(frozen=True)
class ScalerConfig:
    aws_endpoint_url: str
    region: str = "us-east-1"
    minute_seconds: float = 60.0
    metrics_period: int = 60  # the router's publishing period (seconds)

    def check(self) -> ScalerConfig:
        if not 0.5 <= self.minute_seconds <= 60:
            raise ConfigError(
                f"--minute-seconds must be in [0.5, 60] (got {self.minute_seconds:g})")
        whole = self.minute_seconds / self.metrics_period
        # A minute of whole publishing periods, so each evaluation sums exactly one minute.
        if whole < 1 or abs(whole - round(whole)) > 1e-9:
            raise ConfigError(
                f"--minute-seconds {self.minute_seconds:g} is not a whole number of "
                f"--metrics-period {self.metrics_period} s",
                "e.g. --minute-seconds 2 --metrics-period 1")
        return self

    @property
    def scale(self) -> float:
        """Real seconds per emulated second."""
        return self.minute_seconds / 60.0


@dataclass(frozen=True)
class Alarms:
    """The two alarms as read back (thresholds and datapoints are the evaluated ones)."""

    high: str
    low: str
    high_threshold: float
    low_threshold: float
    high_datapoints: int
    low_datapoints: int


@dataclass
class Track:
    """One policy's evaluation state (pure; times are real seconds)."""

    high_run: int = 0
    low_run: int = 0
    out_until: float = -math.inf
    in_until: float = -math.inf
    high_state: str = "INSUFFICIENT_DATA"
    low_state: str = "INSUFFICIENT_DATA"
    alarms: Alarms | None = None
    pending: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # out, in progress


@dataclass(frozen=True)
class Decision:
    kind: str  # "out" | "in" | "bounds"
    to_desired: int
    cause: str


def decide(track: Track, *, metric: float | None, per_minute: float | None, target: float,
           lo: int, hi: int, desired: int, now: float, out_cooldown_s: float,
           in_cooldown_s: float, disable_in: bool) -> Decision | None:  # fmt: skip
    """One emulated minute's evaluation (pure): update the alarms' runs and states; the
    scaling to do, if any. `metric`: InvocationsPerInstance per minute; `per_minute`: the
    variant's invocations per minute (the proportional rule's numerator)."""
    a = track.alarms
    assert a is not None
    if not lo <= desired <= hi:
        return Decision("bounds", min(hi, max(lo, desired)),
                        f"the desired count {desired} is outside MinCapacity {lo} and "
                        f"MaxCapacity {hi}")  # fmt: skip
    if metric is None or per_minute is None:
        track.high_run = track.low_run = 0
        track.high_state = track.low_state = "INSUFFICIENT_DATA"
        return None
    track.high_run = track.high_run + 1 if metric > a.high_threshold else 0
    track.low_run = track.low_run + 1 if metric < a.low_threshold else 0
    track.high_state = "ALARM" if track.high_run >= a.high_datapoints else "OK"
    track.low_state = "ALARM" if track.low_run >= a.low_datapoints else "OK"
    want = min(hi, max(lo, math.ceil(per_minute / target - _EPS)))
    if track.high_state == "ALARM":
        if want > desired:
            track.out_until = now + out_cooldown_s
            return Decision("out", want, f"monitor alarm {a.high} in state ALARM triggered "
                                         f"policy (metric {metric:.1f} > {a.high_threshold:g})")
    elif (track.low_state == "ALARM" and not disable_in and now >= track.out_until - _EPS
          and now >= track.in_until - _EPS and want < desired):  # fmt: skip
        track.in_until = now + in_cooldown_s
        return Decision("in", want, f"monitor alarm {a.low} in state ALARM triggered "
                                    f"policy (metric {metric:.1f} < {a.low_threshold:g})")
    return None


class TargetTrackingScaler:
    """Evaluates every target-tracking policy on the emulator's variants once per emulated
    minute (`tick`, blocking: the hosting layer runs it in a thread)."""

    def __init__(self, config: ScalerConfig, log: Callable[[str], None],
                 in_service: Callable[[str, str], int | None]) -> None:  # fmt: skip
        self.config = config.check()
        self.log = log
        self.in_service = in_service
        self.aws = AwsClient.create(config.region, endpoint_url=config.aws_endpoint_url)
        self.tracks: dict[str, Track] = {}
        self._said: set[str] = set()

    def _say_once(self, key: str, text: str) -> None:
        if key not in self._said:
            self._said.add(key)
            self.log(text)

    def tick(self, now: float) -> None:
        """Evaluate the emulated minute that ended at `now` (epoch seconds)."""
        targets = {t["ResourceId"]: t for t in self.aws.scalable_targets(NAMESPACE)
                   if t["ScalableDimension"] == VARIANT_DIMENSION}  # fmt: skip
        for policy in self.aws.scaling_policies(NAMESPACE):
            rid = policy["ResourceId"]
            if policy.get("PolicyType") != "TargetTrackingScaling" or rid not in targets:
                continue
            spec = policy.get("TargetTrackingScalingPolicyConfiguration") or {}
            kind = (spec.get("PredefinedMetricSpecification") or {}).get("PredefinedMetricType")
            if kind != METRIC:
                self._say_once(rid + str(kind), f"scaler: {policy['PolicyName']} tracks {kind}: "
                               f"only {METRIC} is evaluated locally")  # fmt: skip
                continue
            try:
                self._evaluate(policy, spec, targets[rid], now)
            except RecommenderError as exc:  # an endpoint deleted meanwhile: next minute
                self._say_once(rid + "err", f"scaler: {rid}: {exc.one_line()}")
        self._finish_activities(now)

    def _alarms(self, rid: str, target: float, track: Track) -> Alarms:
        prefix = f"TargetTracking-{rid}-"
        found = self.aws.alarms_with_prefix(prefix)
        high = [a for a in found if "-AlarmHigh-" in a["AlarmName"]]
        low = [a for a in found if "-AlarmLow-" in a["AlarmName"]]
        if not high or not low or abs(float(high[0]["Threshold"]) - target) > _EPS:
            if found:  # the policy's target changed: AWS replaces its alarms
                self.aws.delete_alarms([a["AlarmName"] for a in found])
            endpoint, variant = rid.split("/")[1], rid.split("/")[3]
            for name, op, threshold, n in (
                ("AlarmHigh", "GreaterThanThreshold", target, DEFAULT_SCALE_OUT_DATAPOINTS),
                ("AlarmLow", "LessThanThreshold", target * DEFAULT_SCALE_IN_RATIO,
                 DEFAULT_SCALE_IN_DATAPOINTS),
            ):  # fmt: skip
                self.aws.put_metric_alarm({
                    "AlarmName": f"{prefix}{name}-{uuid.uuid4()}",
                    "AlarmDescription": f"DO NOT EDIT OR DELETE. For TargetTrackingScaling "
                                        f"policy on {rid}",
                    "Namespace": "AWS/SageMaker", "MetricName": "InvocationsPerInstance",
                    "Dimensions": [{"Name": "EndpointName", "Value": endpoint},
                                   {"Name": "VariantName", "Value": variant}],
                    "Statistic": "Sum", "Period": 60, "EvaluationPeriods": n,
                    "DatapointsToAlarm": n, "Threshold": threshold,
                    "ComparisonOperator": op})  # fmt: skip
            track.high_state = track.low_state = "INSUFFICIENT_DATA"
            return self._alarms(rid, target, track)
        h, lw = high[0], low[0]
        return Alarms(h["AlarmName"], lw["AlarmName"], float(h["Threshold"]),
                      float(lw["Threshold"]),
                      int(h.get("DatapointsToAlarm") or h["EvaluationPeriods"]),
                      int(lw.get("DatapointsToAlarm") or lw["EvaluationPeriods"]))  # fmt: skip

    def _evaluate(self, policy: dict[str, Any], spec: dict[str, Any],
                  target_def: dict[str, Any], now: float) -> None:  # fmt: skip
        rid = policy["ResourceId"]
        endpoint, variant = rid.split("/")[1], rid.split("/")[3]
        target = float(spec["TargetValue"])
        track = self.tracks.setdefault(rid, Track())
        track.alarms = self._alarms(rid, target, track)
        c = self.config
        # The emulated minute that just ended, as whole publishing periods.
        end = datetime.fromtimestamp(now, timezone.utc)
        start = datetime.fromtimestamp(now - c.minute_seconds, timezone.utc)
        dims = {"EndpointName": endpoint, "VariantName": variant}
        per_instance = self.aws.metric_sum("AWS/SageMaker", "InvocationsPerInstance", dims,
                                           start, end, c.metrics_period)  # fmt: skip
        invocations = self.aws.metric_sum("AWS/SageMaker", "Invocations", dims, start, end,
                                          c.metrics_period)  # fmt: skip
        rate = 60.0 / c.minute_seconds
        info = self.aws.describe_endpoint(endpoint).variant(variant)
        desired = int(info.desired_instance_count or 1)
        before = (track.high_state, track.low_state)
        decision = decide(
            track, metric=None if per_instance is None else per_instance * rate,
            per_minute=None if invocations is None else invocations * rate, target=target,
            lo=int(target_def["MinCapacity"]), hi=int(target_def["MaxCapacity"]),
            desired=desired, now=now,
            out_cooldown_s=float(spec.get("ScaleOutCooldown", 300)) * c.scale,
            in_cooldown_s=float(spec.get("ScaleInCooldown", 300)) * c.scale,
            disable_in=bool(spec.get("DisableScaleIn")))  # fmt: skip
        a = track.alarms
        for name, old, new in ((a.high, before[0], track.high_state),
                               (a.low, before[1], track.low_state)):  # fmt: skip
            if old != new:
                self.aws.set_alarm_state(name, new, f"local scaler at {end:%H:%M:%S}")
        if decision is None:
            return
        self.aws.set_desired_instance_count(endpoint, variant, decision.to_desired)
        activity = {
            "ActivityId": str(uuid.uuid4()), "ServiceNamespace": NAMESPACE, "ResourceId": rid,
            "ScalableDimension": VARIANT_DIMENSION,
            "Description": f"Setting desired instance count to {decision.to_desired}.",
            "Cause": f"{decision.cause}, changing the desired capacity from {desired} to "
                     f"{decision.to_desired}",
            "StartTime": now, "StatusCode": "InProgress",
            "StatusMessage": "Waiting for the instances to be in service",
        }  # fmt: skip
        self.log(f"scaler: {rid}: {desired} -> {decision.to_desired} ({decision.kind})")
        if decision.to_desired > desired:
            track.pending.append((variant, activity))  # ends when its instances serve
        else:
            activity.update(EndTime=now, StatusCode="Successful", StatusMessage="")
            # Instances still starting are dropped first: a scale-out they belonged to is
            # over (its desired count no longer stands).
            for _, older in track.pending:
                older.update(EndTime=now, StatusCode="Successful",
                             StatusMessage="Superseded by a scale-in")  # fmt: skip
                self._put(older)
            track.pending = []
        self._put(activity)

    def _finish_activities(self, now: float) -> None:
        for rid, track in self.tracks.items():
            keep = []
            for variant, activity in track.pending:
                wanted = int(activity["Description"].split()[-1].rstrip("."))
                serving = self.in_service(rid.split("/")[1], variant)
                if serving is not None and serving >= wanted:
                    activity.update(EndTime=now, StatusCode="Successful", StatusMessage="")
                    self._put(activity)
                else:
                    keep.append((variant, activity))
            track.pending = keep

    def _put(self, activity: dict[str, Any]) -> None:
        """Record an activity in the emulator (a local-only operation, plain HTTP)."""
        req = urllib.request.Request(
            self.config.aws_endpoint_url, data=json.dumps(activity).encode(), method="POST",
            headers={"X-Amz-Target": PUT_OPERATION,
                     "Content-Type": "application/x-amz-json-1.1"})  # fmt: skip
        with urllib.request.urlopen(req, timeout=10) as resp:
            resp.read()


def next_tick(now: float, minute_seconds: float) -> float:
    """The next emulated-minute boundary after `now` (boundaries are multiples of
    minute_seconds of epoch time, so they line up with the router's publishing periods)."""
    return (math.floor(now / minute_seconds + _EPS) + 1) * minute_seconds


def wall() -> float:
    return time.time()
