"""Replay traffic through a target-tracking policy, minute by minute, before applying it (pure).

The policy is simulated as Application Auto Scaling runs target tracking on
SageMakerVariantInvocationsPerInstance, as its user guide ("Target tracking scaling policies
for Application Auto Scaling") and CloudWatch's ("Using Amazon CloudWatch alarms") describe it:

- The metric is CloudWatch's per-minute InvocationsPerInstance: the minute's invocations
  divided by the instances in service (new instances still starting do not count).
- Target tracking creates two alarms. The high alarm goes off when the metric is above the
  target for `scale_out_datapoints` consecutive 1-minute datapoints (3 by default), the low
  alarm when it is below `scale_in_ratio` x target (90%) for `scale_in_datapoints` (15). These
  are the alarms AWS documents target tracking creating for SageMaker, NOT guarantees: AWS
  may change them, so read your policy's real alarms back (DescribeScalingPolicies ->
  Alarms) and pass their datapoints here. An alarm with an Auto Scaling action invokes it
  every minute it stays in ALARM, not only when it changes state.
- The new desired capacity is target tracking's proportional rule,
  ceil(current x metric / target), bounded by MinCapacity and MaxCapacity. With `current`
  the instances in service (the metric's denominator) this is ceil(requests / target):
  capacity already starting counts towards the next scale-out, as AWS describes for a
  scale-out during the cooldown, so a rising metric adds only what is still missing.
- Cooldowns: during the scale-out cooldown another scale-out happens only if it asks for
  more than the current desired capacity; a scale-out may happen during the scale-in
  cooldown; a scale-in waits for both cooldowns to end.
- A new instance serves only `provision_minutes` after the scale-out (default 6: SageMaker
  instances take minutes to start; measure yours in the endpoint's events and fold in the
  ~2 minutes CloudWatch datapoints arrive late). A scale-in takes instances out at once.

Timing: an alarm is evaluated at the end of minute m on datapoints up to m; a scale-out
there puts its instances in service from minute m + 1 + provision_minutes, a scale-in takes
effect from minute m + 1. Load is assumed even over the minute and over the instances.

The endpoint comes from a LatencyModel: load per instance above its capacity (the highest
throughput within the SLO) makes the minute SLO-violating.

The queue (`FluidQueue`, when the model knows its SLO limit, as every run's does): requests
above what the instances in service serve (the highest throughput per instance the run
measured) wait, and the backlog carries into the next minutes, draining at the spare
capacity once instances come into service or the load falls. A minute is also SLO-violating
while the backlog's wait exceeds the SLO's limit for more of the minute than the SLO allows
(p95: 5% of its requests; a mean: the minute's mean wait), so the minutes after a scale-out
that a late policy let a queue build up count too. A request waits at most 60 s
(InvokeEndpoint's timeout for a real-time endpoint): backlog beyond that errors (dropped).
CloudWatch counts a request when it is served, so the metric the alarms see is the served
requests per instance, capped at the instances' throughput: an overloaded endpoint's first
scale-out asks for fewer instances than the offered load would. Without an SLO limit (a
model that does not say) there is no queue: requests above the highest throughput error.
`minute_seconds` is the length of a traffic minute in real seconds (60; verify's compressed
replays shorter): flows scale with it, a request's wait in seconds does not.

Cost counts every instance from its launch (billed while starting) to its removal.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from recommender.analysis import Analysis
from recommender.analysis.curve import curve_points, interpolate
from recommender.analysis.recommend import DEFAULT_SAFETY_FACTOR, check_safety_factor, target_value
from recommender.errors import ConfigError, InsufficientDataError
from recommender.policy.tracking import TargetTracking
from recommender.sizing import capacity_range, instances_for
from recommender.traffic import TrafficSeries

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

# Target tracking's alarms for SageMaker variants as AWS documents them (see module doc).
DEFAULT_SCALE_OUT_DATAPOINTS = 3
DEFAULT_SCALE_IN_DATAPOINTS = 15
DEFAULT_SCALE_IN_RATIO = 0.9
DEFAULT_PROVISION_MINUTES = 6
DEFAULT_MIN_CAPACITY = 2  # the report's floor: SageMaker spreads 2+ instances over zones
# The sweep of `--safety-factor auto`: 0.30 to 0.95 in steps of 0.05.
SWEEP_FACTORS = tuple(round(0.30 + 0.05 * i, 2) for i in range(14))
# Float noise (600 * 5 / 600.0000001) must not add or remove a whole instance.
_EPS = 1e-9

ASSUMPTIONS = (
    "alarm datapoints and the 90% scale-in threshold are AWS's documented target-tracking "
    "defaults for SageMaker, not guarantees; read your policy's alarms back "
    "(describe-scaling-policies) and pass theirs"
)


class LatencyModel(Protocol):
    """What the simulation needs to know about one instance of the endpoint.

    `latency_ms` gives the SLO's statistic at a load per instance (requests/s); NaN where
    the model cannot say (above `max_rps`). `capacity_rps`: the highest load per instance
    within the SLO. `max_rps`: the highest load per instance the endpoint is known to serve;
    requests above it are counted as erroring. `stat`: what latency_ms is ("p95").
    """

    @property
    def capacity_rps(self) -> float: ...

    @property
    def max_rps(self) -> float: ...

    @property
    def stat(self) -> str: ...

    def latency_ms(self, rps_per_instance: FloatArray) -> FloatArray: ...


@dataclass(frozen=True, eq=False)
class StagedLatencyModel:
    """Latency per instance interpolated between a run's stages.

    Method: the stages' (achieved throughput per instance, SLO statistic) points, sorted by
    throughput, made non-decreasing (a running maximum: latency is taken to grow with load,
    as the capacity estimate assumes too), joined by straight lines; below the lowest stage
    the lowest stage's latency (recommender.analysis.curve, `outside="hold"`).
    """

    rps: FloatArray  # achieved throughput per instance, increasing
    latency: FloatArray  # the SLO statistic at those loads, ms, non-decreasing
    capacity_rps: float
    max_rps: float
    stat: str
    capacity_method: str
    # The SLO's first term: its limit and quantile (None: a mean), for the queue's wait.
    limit_ms: float | None = None
    quantile: float | None = None

    def latency_ms(self, rps_per_instance: FloatArray) -> FloatArray:
        x = np.asarray(rps_per_instance, dtype=np.float64)
        out = interpolate(x, self.rps, self.latency)
        return np.where(x > self.max_rps * (1 + _EPS), np.nan, out)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "staged",
            "method": "linear interpolation between stages (running max), numpy.interp",
            "stat": self.stat,
            "capacity_rps_per_instance": self.capacity_rps,
            "capacity_method": self.capacity_method,
            "max_rps_per_instance": self.max_rps,
            "slo_limit_ms": self.limit_ms,
            "slo_quantile": self.quantile,
            "points": [[round(float(a), 3), round(float(b), 3)]
                       for a, b in zip(self.rps, self.latency, strict=True)],  # fmt: skip
        }


INVOKE_TIMEOUT_S = 60.0  # InvokeEndpoint's limit for a real-time endpoint's answer


@dataclass
class FluidQueue:
    """The requests waiting on the instances in service, as a fluid: each step's arrivals
    join the backlog, the instances serve up to `serve` requests each per step, the rest
    waits (at most `max_wait` steps, beyond which it is dropped). Records each step's
    backlog at its start, its capacity and what was dropped."""

    serve: float  # requests one instance serves per step at most
    max_wait: float = math.inf  # steps a request can wait (the invocation timeout)
    backlog: float = 0.0
    starts: list[float] = field(default_factory=list)
    capacity: list[float] = field(default_factory=list)
    dropped: list[float] = field(default_factory=list)
    served: list[float] = field(default_factory=list)

    def step(self, arrivals: float, serving: int) -> float:
        """One step: returns the requests served (what CloudWatch counts)."""
        cap = serving * self.serve
        self.starts.append(self.backlog)
        self.capacity.append(cap)
        total = self.backlog + arrivals
        served = min(total, cap)
        most = cap * self.max_wait
        left = total - served
        self.dropped.append(max(0.0, left - most))
        self.served.append(served)
        self.backlog = min(left, most)
        return served


def late_fraction(start: float, arrivals: float, capacity: float, limit: float) -> float:
    """The share of a step's (evenly spread) arrivals whose wait in the fluid queue exceeds
    `limit` (in steps): the wait runs linearly from start / capacity by (arrivals -
    capacity) / capacity over the step (clamped at 0, which lies below any limit)."""
    if capacity <= 0:
        return 1.0 if arrivals > 0 else 0.0
    w0, slope = start / capacity, (arrivals - capacity) / capacity
    if slope == 0:
        return 1.0 if w0 > limit else 0.0
    t = (limit - w0) / slope  # when the wait crosses the limit
    return min(1.0, max(0.0, 1.0 - t if slope > 0 else t))


def mean_wait(start: float, arrivals: float, capacity: float) -> float:
    """The step's mean wait (in steps) in the fluid queue (see `late_fraction`)."""
    if capacity <= 0:
        return math.inf if arrivals > 0 else 0.0
    w0, slope = start / capacity, (arrivals - capacity) / capacity
    if w0 + slope >= 0:
        return w0 + slope / 2
    return w0 * (w0 / -slope) / 2  # drained at w0 / -slope into the step


def backlog_violating(queue: FluidQueue, arrivals: Sequence[float], limit: float,
                      quantile: float | None, steps: int = 1) -> BoolArray:  # fmt: skip
    """Per minute of `steps` steps: the queue's wait above `limit` (steps) for more of
    the minute's requests than the SLO allows (1 - quantile), or on average (a mean)."""
    # Most steps have no queue and no overload: nobody waits (and no call is made).
    late = np.array([0.0 if b <= 0 and a <= c else
                     (mean_wait(b, a, c) > limit if quantile is None
                      else late_fraction(b, a, c, limit))
                     for b, a, c in zip(queue.starts, arrivals, queue.capacity, strict=True)],
                    dtype=np.float64).reshape(-1, steps).mean(axis=1)  # fmt: skip
    allowed = 0.5 if quantile is None else 1.0 - quantile
    bad: BoolArray = late > allowed + _EPS
    return bad


def scale_in(pending: deque[list[int]], serving: int, remove: int) -> int:
    """Take `remove` instances away; those still starting (`pending`, [due minute, count],
    newest last) go first, since they serve nothing yet. Returns the instances serving."""
    while remove and pending:
        take = min(remove, pending[-1][1])
        pending[-1][1] -= take
        remove -= take
        if not pending[-1][1]:
            pending.pop()
    return serving - remove

def model_from_analysis(analysis: Analysis) -> StagedLatencyModel:
    """The endpoint of an analysed run: its stage table and its capacity per instance."""
    cap = analysis.capacity
    if cap.rps_per_instance is None:
        raise InsufficientDataError(
            "no stage passed the SLO, so there is no capacity to simulate with",
            "re-run the test starting from a lower rate",
        )
    # The SLO's first term is the latency shown; capacity already accounts for every term.
    stat = analysis.slo.terms[0].key  # "p95", or "ttft_p95" for a streamed run
    pts = sorted(
        (s.achieved_rps / cap.instances, v)
        for s in analysis.stages
        if (v := s.slo_values_ms.get(stat)) is not None and s.achieved_rps > 0
    )
    if not pts:
        raise InsufficientDataError("the run's stages hold no latency to simulate with")
    x = np.array([p[0] for p in pts])
    rps, latency = curve_points(x, np.maximum.accumulate(np.array([p[1] for p in pts])))
    term = analysis.slo.terms[0]
    return StagedLatencyModel(
        rps=rps,
        latency=latency,
        capacity_rps=float(cap.rps_per_instance),
        max_rps=float(max(x.max(), cap.rps_per_instance)),
        stat=stat,
        capacity_method=cap.method,
        # Waiting in a queue delays the whole answer and its first token, not the gaps
        # between tokens: an ITL objective has no queue limit.
        limit_ms=None if term.metric == "itl" else float(term.limit_ms),
        quantile=term.quantile,
    )


# --- the policy ----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Policy(TargetTracking):
    """One target-tracking policy to simulate (defaults and their sources: module doc).

    The target value, MinCapacity and MaxCapacity (TargetTracking's) may be left None for
    `for_target` to fill in from a safety factor and the traffic; `simulate` needs them all.
    """

    scale_out_datapoints: int = DEFAULT_SCALE_OUT_DATAPOINTS
    scale_in_datapoints: int = DEFAULT_SCALE_IN_DATAPOINTS
    scale_in_ratio: float = DEFAULT_SCALE_IN_RATIO
    provision_minutes: int = DEFAULT_PROVISION_MINUTES

    def check(self) -> Policy:
        super().check()
        for flag, n in (("--scale-out-datapoints", self.scale_out_datapoints),
                        ("--scale-in-datapoints", self.scale_in_datapoints)):  # fmt: skip
            if n < 1:
                raise ConfigError(f"{flag} must be >= 1 (got {n})")
        if not 0 < self.scale_in_ratio <= 1:
            raise ConfigError(f"--scale-in-ratio must be in (0, 1] (got {self.scale_in_ratio:g})")
        if self.provision_minutes < 0:
            raise ConfigError(f"--provision-minutes must be >= 0 (got {self.provision_minutes})")
        return self

    def for_target(self, target: float, traffic: TrafficSeries) -> Policy:
        """The concrete policy for a target value: MinCapacity defaults to 2 (and enough for
        the lowest minute); MaxCapacity to the instances at peak x 1.5, as the report sizes."""
        self.check()
        at_min = instances_for(traffic.min_rps, target) if traffic.min_rps > 0 else 1
        lo = self.min_capacity or max(DEFAULT_MIN_CAPACITY, at_min)
        if self.max_capacity is not None:
            lo = min(lo, self.max_capacity)
            hi = self.max_capacity
        else:
            hi = capacity_range(instances_for(traffic.peak_rps, target), lo, lo)[1]
        return replace(self, target_value=target, min_capacity=lo, max_capacity=hi)

    def bounds(self) -> tuple[float, int, int]:
        """(target value, MinCapacity, MaxCapacity), checked: what `simulate` runs on."""
        self.check()
        target, lo, hi = self.target(), self.min_capacity, self.max_capacity
        if target is None or lo is None or hi is None:
            raise ConfigError("the policy to simulate needs a target value, MinCapacity and "
                              "MaxCapacity", "size it with Policy.for_target")  # fmt: skip
        return target, lo, hi

    def to_dict(self) -> dict[str, Any]:
        """simulation.json's `policy` (its keys predate TargetTracking: cooldowns in `_s`)."""
        target, lo, hi = self.bounds()
        return {
            "target_value": target,
            "min_capacity": lo,
            "max_capacity": hi,
            "scale_out_datapoints": self.scale_out_datapoints,
            "scale_in_datapoints": self.scale_in_datapoints,
            "scale_in_ratio": self.scale_in_ratio,
            "scale_out_cooldown_s": self.scale_out_cooldown,
            "scale_in_cooldown_s": self.scale_in_cooldown,
            "provision_minutes": self.provision_minutes,
            "disable_scale_in": self.disable_scale_in,
        }


@dataclass(frozen=True)
class ScalingEvent:
    minute: int  # the alarm acted at the end of this minute
    kind: str  # "out" | "in"
    from_desired: int
    to_desired: int
    invocations_per_instance: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Totals:
    minutes: int
    violating_minutes: int  # load per instance above the capacity within the SLO
    requests: float
    requests_outside_slo: float  # served, but in a violating minute
    requests_erroring: float  # above the highest throughput the run measured
    instance_hours: float
    cost_usd: float | None
    scale_out_events: int
    scale_in_events: int
    capped_minutes: int  # minutes the proportional rule wanted more than MaxCapacity
    in_service_min: int
    in_service_max: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class Simulation:
    """A policy replayed over traffic: per-minute arrays, the scaling events, the totals."""

    policy: Policy
    safety_factor: float | None  # None when a target value was given directly
    capacity_rps: float
    max_rps: float
    latency_stat: str
    traffic: TrafficSeries
    in_service: IntArray
    desired: IntArray
    latency_ms: FloatArray  # NaN above the highest measured throughput
    violating: BoolArray
    erroring: FloatArray  # requests dropped in each minute
    events: tuple[ScalingEvent, ...]
    totals: Totals
    instance_price: float | None
    # What the policy tracks: "invocations" (per instance per minute, 1-minute data) or
    # "concurrency" (requests in flight per instance or copy, 10-second data).
    metric: str = "invocations"
    step_seconds: int = 60
    # A serverless variant's replay (recommender.simulate_serverless): in_service is the
    # provisioned concurrency; per minute the requests that started cold (on demand) and
    # ServerlessProvisionedConcurrencyUtilization.
    cold_starts: FloatArray | None = None
    utilization: FloatArray | None = None
    # The requests queued at each minute's end and those served in it (FluidQueue; None:
    # no queue modelled, every request served in its minute or erroring).
    backlog: FloatArray | None = None
    served: FloatArray | None = None

    @property
    def requests(self) -> FloatArray:
        return self.traffic.requests_per_minute

    @property
    def invocations_per_instance(self) -> FloatArray:
        """CloudWatch's metric: the requests served per instance in service."""
        served = self.requests if self.served is None else self.served
        return served / self.in_service

    @property
    def rps_per_instance(self) -> FloatArray:
        return self.invocations_per_instance / 60.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the per-minute table is by column (pandas.DataFrame(d["per_minute"]))."""
        lat = [None if math.isnan(v) else round(v, 2) for v in self.latency_ms.tolist()]
        data: dict[str, Any] = {
            "schema_version": 1,
            "metric": self.metric,
            "step_seconds": self.step_seconds,
            "policy": self.policy.to_dict(),
            "safety_factor": self.safety_factor,
            "endpoint": {
                "capacity_rps_per_instance": self.capacity_rps,
                "max_rps_per_instance": self.max_rps,
                "latency_stat": self.latency_stat,
            },
            "traffic": self.traffic.to_dict(),
            "instance_price_usd_per_hour": self.instance_price,
            "assumptions": [ASSUMPTIONS],
            "totals": self.totals.to_dict(),
            "events": [e.to_dict() for e in self.events],
            "per_minute": {
                "minute": list(range(self.traffic.minutes)),
                "requests": [round(v, 2) for v in self.requests.tolist()],
                "in_service": self.in_service.tolist(),
                "desired": self.desired.tolist(),
                "invocations_per_instance": [
                    round(v, 2) for v in self.invocations_per_instance.tolist()
                ],
                "rps_per_instance": [round(v, 3) for v in self.rps_per_instance.tolist()],
                f"{self.latency_stat}_ms": lat,
                "slo_violating": self.violating.tolist(),
                "erroring_requests": [round(v, 2) for v in self.erroring.tolist()],
            },
        }
        if self.backlog is not None:
            data["per_minute"]["backlog"] = [round(v, 2) for v in self.backlog.tolist()]
        if self.cold_starts is not None and self.utilization is not None:
            per_minute = data["per_minute"]
            per_minute["cold_starts"] = [round(v, 2) for v in self.cold_starts.tolist()]
            per_minute["utilization"] = [round(v, 3) for v in self.utilization.tolist()]
        return data


def track(
    load: Sequence[float], policy: Policy, initial: int, *, saturates: bool = False,
    queue: FluidQueue | None = None,
) -> tuple[list[int], list[int], list[ScalingEvent], int]:
    """Target tracking minute by minute (module doc): the one stepping loop of `simulate`
    and of the serverless replay (recommender.simulate_serverless).

    `load[m]` is what the metric divides by the capacity in service: requests per minute
    (InvocationsPerInstance), or busy executions (provisioned-concurrency utilization).
    `saturates`: the metric counts at most the capacity in service (utilization <= 1), as
    ServerlessProvisionedConcurrencyUtilization does; one scale-out then at most multiplies
    the capacity by 1 / target, so a spike takes several.
    `queue`: what the instances cannot serve waits in it (FluidQueue, which records it), and
    the metric counts the requests served (CloudWatch counts a request once answered).
    Returns (capacity in service, desired capacity, the scaling events, the minutes the
    proportional rule wanted more than MaxCapacity), starting from `initial` in service."""
    target, lo, hi = policy.bounds()
    low = policy.scale_in_ratio * target
    out_cd = math.ceil(policy.scale_out_cooldown / 60)
    in_cd = math.ceil(policy.scale_in_cooldown / 60)
    n = len(load)
    desired = initial
    capped = 0
    serving = desired
    pending: deque[list[int]] = deque()  # [minute it serves from, instances], oldest first
    in_service = [0] * n
    desired_at = [0] * n
    events: list[ScalingEvent] = []
    high_run = low_run = 0
    out_until = in_until = -1  # the first minute-end at which the cooldown no longer holds

    # Plain Python over lists: the state (instances in service) feeds back into the metric,
    # so this cannot be one numpy expression; a week of minutes takes milliseconds.
    for m in range(n):
        while pending and pending[0][0] <= m:
            serving += pending.popleft()[1]
        in_service[m] = serving
        desired_at[m] = desired
        used = min(load[m], serving) if saturates else load[m]
        if queue is not None:
            used = queue.step(load[m], serving)
        metric = used / serving
        # The proportional rule, ceil(current x metric / target) = ceil(used / target).
        wanted = math.ceil(used / target - _EPS)
        capped += wanted > hi
        proposal = min(hi, max(lo, wanted))
        high_run = high_run + 1 if metric > target else 0
        low_run = low_run + 1 if metric < low else 0
        if high_run >= policy.scale_out_datapoints:
            want = proposal
            # Within the scale-out cooldown only a larger desired capacity goes through.
            # Outside it the same test holds, because the proposal already counts the
            # instances still starting: so the scale-out cooldown only holds scale-in back.
            if want > desired:
                pending.append([m + 1 + policy.provision_minutes, want - desired])
                events.append(ScalingEvent(m, "out", desired, want, metric))
                desired, out_until = want, m + out_cd
        elif (
            low_run >= policy.scale_in_datapoints
            and not policy.disable_scale_in
            and m >= out_until
            and m >= in_until
        ):
            want = proposal
            if want < desired:
                events.append(ScalingEvent(m, "in", desired, want, metric))
                serving = scale_in(pending, serving, desired - want)
                desired, in_until = want, m + in_cd
    return in_service, desired_at, events, capped


def simulate(
    traffic: TrafficSeries,
    model: LatencyModel,
    policy: Policy,
    *,
    safety_factor: float | None = None,
    initial_instances: int | None = None,
    instance_price: float | None = None,
    minute_seconds: float = 60.0,
) -> Simulation:
    """Replay `traffic` through `policy` on an endpoint described by `model` (module doc).

    The fleet starts where target tracking would have settled for the first minute,
    ceil(requests / target) within the bounds, unless `initial_instances` is given, with
    nothing queued. `minute_seconds`: the real length of a traffic minute (module doc).
    """
    target, lo, hi = policy.bounds()
    policy = replace(policy, target_value=target)  # a number from here on, text or not
    req = traffic.requests_per_minute
    n = traffic.minutes
    r = req.tolist()
    first = min(hi, max(lo, math.ceil(r[0] / target - _EPS))) if n else lo
    desired = first if initial_instances is None else initial_instances
    if not lo <= desired <= hi:
        raise ConfigError(f"the initial instances ({desired}) are outside Min/MaxCapacity")
    queue = _queue(model, minute_seconds)
    in_service, desired_at, events, capped = track(r, policy, desired, queue=queue)

    serving_a = np.array(in_service, dtype=np.int64)
    desired_a = np.array(desired_at, dtype=np.int64)
    per_instance = req / serving_a / 60.0
    violating = per_instance > model.capacity_rps * (1 + _EPS)
    if queue is None:
        erroring = np.maximum(req - model.max_rps * 60.0 * serving_a, 0.0)
        backlog = served = None
    else:
        violating |= _queue_violating(model, queue, r, minute_seconds)
        erroring = np.array(queue.dropped, dtype=np.float64)
        backlog = np.array([*queue.starts[1:], queue.backlog], dtype=np.float64)
        served = np.array(queue.served, dtype=np.float64)
    outside = float(np.where(violating, req - erroring, 0.0).sum())
    # Billed from launch: desired counts instances still starting.
    instance_hours = float(desired_a.sum()) / 60.0
    totals = Totals(
        minutes=n,
        violating_minutes=int(violating.sum()),
        requests=float(req.sum()),
        requests_outside_slo=outside,
        requests_erroring=float(erroring.sum()),
        instance_hours=instance_hours,
        cost_usd=instance_hours * instance_price if instance_price is not None else None,
        scale_out_events=sum(e.kind == "out" for e in events),
        scale_in_events=sum(e.kind == "in" for e in events),
        capped_minutes=capped,
        in_service_min=int(serving_a.min()),
        in_service_max=int(serving_a.max()),
    )
    return Simulation(
        policy=policy,
        safety_factor=safety_factor,
        capacity_rps=model.capacity_rps,
        max_rps=model.max_rps,
        latency_stat=model.stat,
        traffic=traffic,
        in_service=serving_a,
        desired=desired_a,
        latency_ms=model.latency_ms(per_instance),
        violating=violating,
        erroring=erroring,
        events=tuple(events),
        totals=totals,
        instance_price=instance_price,
        backlog=backlog,
        served=served,
    )


def _queue(model: LatencyModel, minute_seconds: float, steps: int = 1) -> FluidQueue | None:
    """The endpoint's queue in steps of 1 / `steps` minute (None: the model has no SLO
    limit to judge waits by, or no throughput to drain at)."""
    if getattr(model, "limit_ms", None) is None or not model.max_rps > 0:
        return None
    step_seconds = minute_seconds / steps
    return FluidQueue(serve=model.max_rps * 60.0 / steps,
                      max_wait=INVOKE_TIMEOUT_S / step_seconds)  # fmt: skip


def _queue_violating(model: LatencyModel, queue: FluidQueue, arrivals: Sequence[float],
                     minute_seconds: float, steps: int = 1) -> BoolArray:  # fmt: skip
    """The minutes whose queue waits break the SLO (`backlog_violating`); the limit in
    steps of the replay's clock."""
    limit_ms = float(getattr(model, "limit_ms"))  # noqa: B009 - LatencyModel does not say
    limit = limit_ms / 1000.0 / (minute_seconds / steps)
    return backlog_violating(queue, arrivals, limit, getattr(model, "quantile", None), steps)


def simulate_factor(
    traffic: TrafficSeries,
    model: LatencyModel,
    policy: Policy,
    safety_factor: float,
    instance_price: float | None = None,
) -> Simulation:
    """The policy AWS's formula gives for `safety_factor` on this endpoint, simulated."""
    target = target_value(model.capacity_rps, check_safety_factor(safety_factor))
    policy = policy.for_target(target, traffic)
    return simulate(traffic, model, policy, safety_factor=safety_factor,
                    instance_price=instance_price)  # fmt: skip


# --- choosing the safety factor ------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class SweepRow:
    safety_factor: float
    target_value: float
    min_capacity: int
    max_capacity: int
    violating_minutes: int
    requests_outside_slo: float
    requests_erroring: float
    instance_hours: float
    cost_usd: float | None
    scale_out_events: int
    scale_in_events: int

    @classmethod
    def of(cls, sim: Simulation) -> SweepRow:
        t = sim.totals
        target, lo, hi = sim.policy.bounds()
        return cls(safety_factor=float(sim.safety_factor or 0.0), target_value=target,
                   min_capacity=lo, max_capacity=hi, violating_minutes=t.violating_minutes,
                   requests_outside_slo=t.requests_outside_slo,
                   requests_erroring=t.requests_erroring, instance_hours=t.instance_hours,
                   cost_usd=t.cost_usd, scale_out_events=t.scale_out_events,
                   scale_in_events=t.scale_in_events)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SafetyFactorChoice:
    """The sweep behind `--safety-factor auto` and what it chose."""

    rows: tuple[SweepRow, ...]
    violation_budget: int
    chosen: SweepRow | None  # None: no factor kept within the budget
    aws_default: SweepRow  # AWS's recommended 0.5, for comparison
    explanation: str

    @property
    def safety_factor(self) -> float:
        if self.chosen is None:
            raise InsufficientDataError(self.explanation, _NO_CHOICE_HINT)
        return self.chosen.safety_factor

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": (
                "highest safety factor whose simulated SLO-violating minutes stay within "
                "the budget (recommender.simulate.choose_safety_factor)"
            ),
            "violation_budget_minutes": self.violation_budget,
            "chosen": self.chosen.safety_factor if self.chosen else None,
            "target_value": self.chosen.target_value if self.chosen else None,
            "explanation": self.explanation,
            "assumptions": [ASSUMPTIONS],
            "sweep": [r.to_dict() for r in self.rows],
        }


_NO_CHOICE_HINT = (
    "raise --max-capacity, shorten --provision-minutes if yours start faster, or allow a "
    "--violation-budget"
)


def choose_safety_factor(
    traffic: TrafficSeries,
    model: LatencyModel,
    policy: Policy,
    *,
    violation_budget: int = 0,
    factors: Sequence[float] = SWEEP_FACTORS,
    instance_price: float | None = None,
) -> SafetyFactorChoice:
    """Sweep the safety factor; choose the highest (cheapest) whose simulated SLO-violating
    minutes stay within `violation_budget`, and compare it with AWS's recommended 0.5."""
    if violation_budget < 0:
        raise ConfigError(f"--violation-budget must be >= 0 minutes (got {violation_budget})")
    if not factors:
        raise ConfigError("no safety factors to sweep")
    sims = {f: simulate_factor(traffic, model, policy, f, instance_price) for f in factors}
    if DEFAULT_SAFETY_FACTOR not in sims:
        sims[DEFAULT_SAFETY_FACTOR] = simulate_factor(
            traffic, model, policy, DEFAULT_SAFETY_FACTOR, instance_price
        )
    rows = tuple(SweepRow.of(sims[f]) for f in sorted(factors))
    ok = [r for r in rows if r.violating_minutes <= violation_budget]
    chosen = max(ok, key=lambda r: r.safety_factor) if ok else None
    aws = SweepRow.of(sims[DEFAULT_SAFETY_FACTOR])
    return SafetyFactorChoice(rows, violation_budget, chosen, aws,
                              explain_choice(chosen, aws, rows, violation_budget))  # fmt: skip


def _minutes(n: int) -> str:
    return f"{n} violating minute{'s' if n != 1 else ''}"


def explain_choice(
    chosen: SweepRow | None, aws: SweepRow, rows: Sequence[SweepRow], budget: int
) -> str:
    """One line: the choice, its violations, and AWS's 0.5 beside it."""
    if chosen is None:
        best = min(rows, key=lambda r: (r.violating_minutes, -r.safety_factor))
        return (
            f"auto: no safety factor from {rows[0].safety_factor:.2f} to "
            f"{rows[-1].safety_factor:.2f} keeps within {_minutes(budget)} "
            f"(fewest: {best.safety_factor:.2f} with {_minutes(best.violating_minutes)})"
        )
    head = (
        f"auto: {chosen.safety_factor:.2f} (target {chosen.target_value:.0f}/min): "
        f"{_minutes(chosen.violating_minutes)}"
    )
    if chosen.safety_factor == aws.safety_factor:
        return f"{head}; the same as AWS's 0.5"
    if aws.violating_minutes > budget:
        return (
            f"{head}; AWS's 0.5 would have {_minutes(aws.violating_minutes)} "
            f"({aws.requests_outside_slo:,.0f} requests outside the SLO)"
        )
    more = (aws.instance_hours - chosen.instance_hours) / chosen.instance_hours
    word = "more" if more >= 0 else "fewer"
    return f"{head}; AWS's 0.5 would cost {abs(more):.0%} {word} instance-hours"


# --- concurrency (high-resolution) target tracking ------------------------------------------

HIGH_RESOLUTION_SECONDS = 10  # ConcurrentRequestsPerModel/PerCopy are published every 10 s
STEPS_PER_MINUTE = 60 // HIGH_RESOLUTION_SECONDS
CONCURRENCY_ASSUMPTIONS = (
    "the concurrency policy is evaluated on 10-second datapoints: scale-out after "
    "--scale-out-datapoints of them above target (AWS documents faster scale-out, not the "
    "alarm's datapoints: read yours back), scale-in as slowly as a 1-minute policy "
    "(--scale-in-datapoints minutes), as AWS documents; load is even within each minute"
)


@dataclass(frozen=True, eq=False)
class ConcurrencyCurve:
    """Requests in flight per instance (or copy) against requests/s per instance, from a
    run's stages: each stage's in-flight count (closed loop: its level; rate control:
    throughput x mean latency, Little's law), made non-decreasing and joined by straight
    lines; beyond the highest stage, in flight grows in proportion to the load (the last
    stage's latency held: a lower bound, since latency only grows there)."""

    rps: FloatArray
    in_flight: FloatArray

    def at(self, rps_per_instance: float) -> float:
        top_x, top_y = float(self.rps[-1]), float(self.in_flight[-1])
        if rps_per_instance > top_x > 0:
            return top_y * rps_per_instance / top_x
        return float(interpolate(rps_per_instance, self.rps, self.in_flight))

    def to_dict(self) -> dict[str, Any]:
        return {"method": "in flight per stage (running max), linear; proportional above",
                "points": [[round(float(a), 3), round(float(b), 3)]
                           for a, b in zip(self.rps, self.in_flight, strict=True)]}  # fmt: skip


def concurrency_curve(analysis: Analysis) -> ConcurrencyCurve:
    n = analysis.capacity.instances
    pts = sorted((s.achieved_rps / n, f / n) for s in analysis.stages
                 if (f := s.in_flight) is not None and s.achieved_rps > 0)  # fmt: skip
    if not pts:
        raise InsufficientDataError("the run's stages hold no latency to tell requests in "
                                    "flight from", "simulate --metric invocations")  # fmt: skip
    x = np.array([p[0] for p in pts])
    rps, flight = curve_points(x, np.maximum.accumulate(np.array([p[1] for p in pts])))
    return ConcurrencyCurve(rps, flight)


def simulate_concurrency(
    traffic: TrafficSeries,
    model: LatencyModel,
    curve: ConcurrencyCurve,
    policy: Policy,
    *,
    safety_factor: float | None = None,
    instance_price: float | None = None,
    minute_seconds: float = 60.0,
) -> Simulation:
    """Target tracking on requests in flight per instance (copy), in 10-second steps.

    As `simulate`, with these differences (see CONCURRENCY_ASSUMPTIONS): the metric at
    each step is `curve` at the step's load per instance in service; the proportional rule
    is ceil(instances in service x metric / target); scale-out needs
    `policy.scale_out_datapoints` 10-second datapoints above target, scale-in
    `policy.scale_in_datapoints` minutes below `scale_in_ratio` x target; cooldowns and the
    provisioning delay are counted in steps. The per-minute results are each minute's
    fewest instances in service (its worst step) and most desired. The queue (module doc)
    runs in the same 10-second steps; what waits in it is in flight too (the metric counts
    the requests queued on an instance besides those it is serving)."""
    target, lo, hi = policy.bounds()
    policy = replace(policy, target_value=target)
    k = STEPS_PER_MINUTE
    per_step = np.repeat(traffic.requests_per_minute / k, k).tolist()
    steps = len(per_step)
    low = policy.scale_in_ratio * target
    out_cd = math.ceil(policy.scale_out_cooldown / HIGH_RESOLUTION_SECONDS)
    in_cd = math.ceil(policy.scale_in_cooldown / HIGH_RESOLUTION_SECONDS)
    scale_in_steps = policy.scale_in_datapoints * k
    provision = policy.provision_minutes * k

    def wanted(requests: float, serving: int, queued: float = 0.0) -> tuple[float, int]:
        metric = curve.at(requests / HIGH_RESOLUTION_SECONDS / serving) + queued / serving
        return metric, math.ceil(serving * metric / target - _EPS)

    _, first = wanted(per_step[0], 1) if steps else (0.0, lo)
    # Settle the start as `simulate` does: the fleet whose own metric meets the target.
    desired = min(hi, max(lo, first))
    for _ in range(20):
        _, again = wanted(per_step[0], desired) if steps else (0.0, desired)
        if min(hi, max(lo, again)) == desired:
            break
        desired = min(hi, max(lo, again))
    serving = desired
    pending: deque[list[int]] = deque()
    in_service = [0] * steps
    desired_at = [0] * steps
    events: list[ScalingEvent] = []
    high_run = low_run = 0
    out_until = in_until = -1
    capped = 0
    queue = _queue(model, minute_seconds, k)
    for t in range(steps):
        while pending and pending[0][0] <= t:
            serving += pending.popleft()[1]
        in_service[t], desired_at[t] = serving, desired
        if queue is None:
            metric, want = wanted(per_step[t], serving)
        else:
            served = queue.step(per_step[t], serving)
            metric, want = wanted(served, serving, queue.backlog)
        capped += want > hi
        want = min(hi, max(lo, want))
        high_run = high_run + 1 if metric > target else 0
        low_run = low_run + 1 if metric < low else 0
        if high_run >= policy.scale_out_datapoints:
            if want > desired:
                pending.append([t + 1 + provision, want - desired])
                events.append(ScalingEvent(t // k, "out", desired, want, metric))
                desired, out_until = want, t + out_cd
        elif (low_run >= scale_in_steps and not policy.disable_scale_in
              and t >= out_until and t >= in_until and want < desired):  # fmt: skip
            events.append(ScalingEvent(t // k, "in", desired, want, metric))
            serving = scale_in(pending, serving, desired - want)
            desired, in_until = want, t + in_cd

    serving_a = np.array(in_service, dtype=np.int64).reshape(-1, k).min(axis=1)
    desired_a = np.array(desired_at, dtype=np.int64).reshape(-1, k).max(axis=1)
    req = traffic.requests_per_minute
    per_instance = req / serving_a / 60.0
    violating = per_instance > model.capacity_rps * (1 + _EPS)
    backlog = served_a = None
    if queue is None:
        erroring = np.maximum(req - model.max_rps * 60.0 * serving_a, 0.0)
    else:
        violating |= _queue_violating(model, queue, per_step, minute_seconds, k)
        erroring = np.array(queue.dropped, dtype=np.float64).reshape(-1, k).sum(axis=1)
        backlog = np.array([*queue.starts[1:], queue.backlog])[k - 1 :: k].astype(np.float64)
        served_a = np.array(queue.served, dtype=np.float64).reshape(-1, k).sum(axis=1)
    instance_hours = float(np.array(desired_at).sum()) / 60.0 / k
    totals = Totals(
        minutes=traffic.minutes,
        violating_minutes=int(violating.sum()),
        requests=float(req.sum()),
        requests_outside_slo=float(np.where(violating, req - erroring, 0.0).sum()),
        requests_erroring=float(erroring.sum()),
        instance_hours=instance_hours,
        cost_usd=instance_hours * instance_price if instance_price is not None else None,
        scale_out_events=sum(e.kind == "out" for e in events),
        scale_in_events=sum(e.kind == "in" for e in events),
        capped_minutes=capped // k,  # steps held back by MaxCapacity, as whole minutes
        in_service_min=int(serving_a.min()),
        in_service_max=int(serving_a.max()),
    )
    return Simulation(
        policy=policy, safety_factor=safety_factor, capacity_rps=model.capacity_rps,
        max_rps=model.max_rps, latency_stat=model.stat, traffic=traffic,
        in_service=serving_a, desired=desired_a, latency_ms=model.latency_ms(per_instance),
        violating=violating, erroring=erroring, events=tuple(events), totals=totals,
        instance_price=instance_price, metric="concurrency",
        step_seconds=HIGH_RESOLUTION_SECONDS, backlog=backlog, served=served_a,
    )  # fmt: skip
