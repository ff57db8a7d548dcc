"""A serverless variant's run: capacity per unit of concurrency, cold starts, throttling (pure).

A serverless variant (ServerlessConfig: MemorySizeInMB, MaxConcurrency M, ProvisionedConcurrency
P) runs each request in one execution and refuses what finds M executions busy with
ThrottlingException. So its capacity is counted per unit of concurrency: the run's target
holds `instances = M`, and the capacity search's rps per "instance" is the throughput one
concurrent execution sustains within the SLO (cross-checked by Little's law: 1000 / the warm
latency in ms).

Cold starts. A request that finds no warm execution pays the model's setup (CloudWatch's
ModelSetupTime, one sample per cold start; AWS counts it in OverheadLatency too). The client
sees them as a second latency mode far above the warm one: the run's latency histogram is
split half-way between the median and the median plus the mean ModelSetupTime when
CloudWatch has it, else where the between-class variance of log latency is largest (Otsu's
method, Otsu 1979); the split is kept only when the upper mode is clearly apart (its median
at least 3x the lower's) and a minority. ModelSetupTime's SampleCount is the exact count;
the client's is the latency users saw. Stages are read whole, warm-up included: that is where
executions start.

Provisioned concurrency for a peak R (requests/s): the load holds a = R x W executions busy
(W the warm latency in s; Little's law). With random arrivals, the share of requests that
find all P provisioned executions busy and spill over to on-demand ones is Erlang's loss
formula B(P, a), whatever the service-time distribution (the M/G/c/c insensitivity result).
Spilled requests may start cold; when a cold request's latency breaks an SLO term
`pQ <= L`, spillover spends that term's tail allowance (1 - Q), and half of it is given to
cold starts (the other half left to the warm requests' own tail):
P = the least P with B(P, a) <= (1 - Q) / 2. The target of
SageMakerVariantProvisionedConcurrencyUtilization is then a / P (the policy keeps that
share of P in use), and MaxConcurrency needs the least M with B(M, a) <= half the error
budget (beyond M requests are throttled, not queued).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from recommender import histograms
from recommender.analysis.capacity import Capacity
from recommender.analysis.checks import Finding
from recommender.analysis.stages import StageStats
from recommender.plan import RampPlan, Slo

THROTTLING = "ThrottlingException"  # the error kind a throttled request is counted under
POLICY_METRIC = "SageMakerVariantProvisionedConcurrencyUtilization"
COLD_BUDGET_SHARE = 0.5  # of an SLO term's tail allowance, given to cold starts
MIN_MODE_RATIO = 3.0  # the cold mode's median over the warm one's, at least
UTILIZATION_RANGE = (0.1, 0.9)  # targets outside are clamped (and said so)


def erlang_b(servers: int, load: float) -> float:
    """Erlang's loss formula B(c, a): the share of arrivals that find all `servers` busy
    under an offered load of `load` erlangs (random arrivals, any service-time
    distribution). The stable recurrence B(0) = 1, B(k) = a B(k-1) / (k + a B(k-1))."""
    if load <= 0:
        return 0.0
    b = 1.0
    for k in range(1, servers + 1):
        b = load * b / (k + load * b)
    return b


def servers_for(load: float, blocking: float, most: int = 10_000) -> int:
    """The least c with erlang_b(c, load) <= blocking (at most `most`)."""
    c = 0
    while c < most and erlang_b(c, load) > blocking:
        c += 1
    return c


@dataclass(frozen=True)
class ColdSplit:
    """Where the run's latencies split into a warm and a cold mode (Otsu on log latency)."""

    threshold_ms: float
    warm_p50_ms: float
    cold_p50_ms: float
    cold_share: float


def split_modes(counts: np.ndarray, setup_ms: float | None = None) -> ColdSplit | None:
    """The warm/cold split of a latency histogram's counts, or None without a clear cold mode.

    With the endpoint's own ModelSetupTime (`setup_ms`), cold requests take about the warm
    latency plus it, so the split is half-way: the median plus setup / 2 (a loaded warm tail
    rarely reaches it). Without it, Otsu's split of log latency."""
    total = int(counts.sum())
    if total < 10:
        return None
    hi, mid = histograms.bucket_values_us()
    used = np.nonzero(counts)[0]
    if len(used) < 2:
        return None
    if setup_ms is not None:
        median = histograms.stat_ms_from_counts(counts, "p50") or 0.0
        limit_us = (median + setup_ms / 2.0) * 1000.0
        below = used[hi[used] <= limit_us]
        if len(below) == 0 or len(below) == len(used):
            return None
        cut = int(below[-1])
    else:
        x = np.log(np.maximum(mid[used], 1.0))
        w = counts[used].astype(np.float64)
        cw, cx = np.cumsum(w), np.cumsum(w * x)
        w0, w1 = cw[:-1], total - cw[:-1]
        m0 = cx[:-1] / w0
        m1 = (cx[-1] - cx[:-1]) / w1
        between = w0 * w1 * (m0 - m1) ** 2
        cut = int(used[int(np.argmax(between))])  # the last bucket of the warm mode
    warm, cold = counts.copy(), counts.copy()
    warm[cut + 1 :] = 0
    cold[: cut + 1] = 0
    warm_p50 = histograms.stat_ms_from_counts(warm, "p50")
    cold_p50 = histograms.stat_ms_from_counts(cold, "p50")
    if warm_p50 is None or cold_p50 is None:
        return None
    share = float(cold.sum()) / total
    if cold_p50 < MIN_MODE_RATIO * warm_p50 or share >= 0.5:
        return None
    return ColdSplit(float(hi[cut]) / 1000.0, warm_p50, cold_p50, share)


@dataclass(frozen=True)
class StageServerless:
    """One stage, read whole (warm-up included): throttles and cold starts."""

    index: int
    offered_rps: float
    requests: int
    throttled: int
    throttle_rate: float
    cold: int | None  # requests in the cold mode (client), None without a cold mode
    cold_share: float | None
    model_setup_count: int | None = None  # CloudWatch ModelSetupTime SampleCount
    model_setup_ms: float | None = None  # its Average


@dataclass(frozen=True)
class ServerlessSizing:
    """Provisioned concurrency, its policy target and MaxConcurrency for an expected peak."""

    peak_rps: float
    busy_at_peak: float  # a = peak x warm latency (erlangs)
    cold_budget: float | None  # spillover share allowed (None: cold starts keep the SLO)
    provisioned_concurrency: int
    spillover_at_peak: float
    target_utilization: float
    min_capacity: int
    max_capacity: int
    max_concurrency_needed: int
    max_concurrency: int
    on_demand_cold_per_rise: int  # requests starting cold when on-demand load rises from idle
    on_demand_miss_share: float | None  # of the peak minute's requests, when cold breaks SLO
    derivation: tuple[str, ...]
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class ServerlessAnalysis:
    memory_mb: int | None
    max_concurrency: int
    provisioned_concurrency: int
    rps_per_concurrency: float | None  # the capacity search's, per unit of concurrency
    rps_per_concurrency_interval: tuple[float, float] | None
    capacity_method: str
    warm_latency_ms: float | None
    littles_rps_per_concurrency: float | None  # 1000 / warm latency
    cold: ColdSplit | None
    model_setup_ms: float | None  # CloudWatch ModelSetupTime, Average over the run
    model_setup_count: int | None
    throttled: int
    requests: int
    stages: list[StageServerless]
    sizing: ServerlessSizing | None = None
    findings: list[Finding] = field(default_factory=list)

    @property
    def cold_latency_ms(self) -> float | None:
        """What a cold request costs: the client's cold mode, else warm + ModelSetupTime."""
        if self.cold is not None:
            return self.cold.cold_p50_ms
        if self.model_setup_ms is not None and self.warm_latency_ms is not None:
            return self.warm_latency_ms + self.model_setup_ms
        return None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["cold_latency_ms"] = self.cold_latency_ms
        d["findings"] = [f.to_dict() for f in self.findings]
        d["sizing"] = self.sizing.to_dict() if self.sizing else None
        return d


def _stage_spans(plan: RampPlan) -> list[tuple[int, int]]:
    return [(math.floor(a), math.ceil(b)) for a, b in plan.stage_bounds()]


def analyze_serverless(
    config: Mapping[str, Any],
    seconds: Sequence[Mapping[str, Any]],
    plan: RampPlan,
    stages: Sequence[StageStats],
    capacity: Capacity,
    slo: Slo,
    cloudwatch: Sequence[Mapping[str, Any]] = (),
    t0: float | None = None,
) -> ServerlessAnalysis:
    """The serverless view of a run: `config` is the variant's ServerlessConfig, `seconds`
    latency.jsonl's records, `cloudwatch` the rows of cloudwatch.csv (metrics.read_csv)."""
    m = int(config.get("MaxConcurrency") or 1)
    p = int(config.get("ProvisionedConcurrency") or 0)
    all_counts = None
    for r in seconds:
        if r.get("latency_us"):
            c = histograms.counts(histograms.decode(str(r["latency_us"])))
            all_counts = c if all_counts is None else all_counts + c
    setups = [r for r in cloudwatch if r.get("metric") == "ModelSetupTime"]
    count, setup_ms = _setup(setups)
    split = split_modes(all_counts, setup_ms) if all_counts is not None else None
    out_stages = []
    for s, (a, b) in zip(stages, (_stage_spans(plan)[st.index] for st in stages), strict=True):
        recs = [r for r in seconds if a <= int(r["second"]) < b]
        n = sum(int(r["requests"]) for r in recs)
        throttled = sum(int((r.get("errors") or {}).get(THROTTLING, 0)) for r in recs)
        cold = None
        if split is not None:
            cold = 0
            for r in recs:
                if r.get("latency_us"):
                    h = histograms.decode(str(r["latency_us"]))
                    cold += int(r["ok"]) - histograms.count_at_or_below_ms(h, split.threshold_ms)
        stage_count = stage_setup = None
        if t0 is not None and setups:
            inside = [r for r in setups if t0 + a <= float(r["epoch"]) < t0 + b]
            stage_count, stage_setup = _setup(inside)
        out_stages.append(StageServerless(
            s.index, s.offered_rps, n, throttled, throttled / n if n else 0.0, cold,
            (cold / n if n else 0.0) if cold is not None else None, stage_count, stage_setup,
        ))  # fmt: skip
    warm = split.warm_p50_ms if split else _lowest_p50(stages)
    interval = capacity.interval_rps_per_instance
    return ServerlessAnalysis(
        memory_mb=int(config["MemorySizeInMB"]) if config.get("MemorySizeInMB") else None,
        max_concurrency=m,
        provisioned_concurrency=p,
        rps_per_concurrency=capacity.rps_per_instance,
        rps_per_concurrency_interval=tuple(interval) if interval else None,  # type: ignore[arg-type]
        capacity_method=capacity.method,
        warm_latency_ms=warm,
        littles_rps_per_concurrency=1000.0 / warm if warm else None,
        cold=split,
        model_setup_ms=setup_ms,
        model_setup_count=count,
        # Over every second, not only the stages': a request that ends after the plan counts.
        throttled=sum(int((r.get("errors") or {}).get(THROTTLING, 0)) for r in seconds),
        requests=sum(int(r["requests"]) for r in seconds),
        stages=out_stages,
        findings=_findings(split, setups, slo, p),
    )


def _setup(rows: Sequence[Mapping[str, Any]]) -> tuple[int | None, float | None]:
    """(cold starts, mean ModelSetupTime in ms) from ModelSetupTime's SampleCount and Average."""
    counts = {r["epoch"]: float(r["value"]) for r in rows if r.get("stat") == "SampleCount"}
    means = {r["epoch"]: float(r["value"]) for r in rows if r.get("stat") == "Average"}
    n = sum(counts.values())
    if not n:
        return (0, None) if counts else (None, None)
    total_us = sum(means.get(t, 0.0) * c for t, c in counts.items())
    return int(round(n)), total_us / n / 1000.0


def _lowest_p50(stages: Sequence[StageStats]) -> float | None:
    passing = [s for s in stages if s.p50_ms is not None]
    return min(passing, key=lambda s: s.offered_rps).p50_ms if passing else None


def _findings(split: ColdSplit | None, setups: Sequence[Mapping[str, Any]], slo: Slo,
              p: int) -> list[Finding]:  # fmt: skip
    out = []
    if split is None and not setups:
        out.append(Finding("no_cold_starts_seen", "no cold start was seen (no second latency "
                           "mode, no ModelSetupTime): the run cannot price them; run once after "
                           "the endpoint has been idle, or collect CloudWatch"))  # fmt: skip
    return out


ERROR_FINDINGS = ("errors_before_knee", "errors_within_budget")


def throttling_findings(
    stages: Sequence[StageStats], findings: Sequence[Finding], max_concurrency: int
) -> list[Finding]:
    """`findings` with the generic "errors under load" ones replaced where a stage's only
    errors were ThrottlingException: on a serverless variant that is MaxConcurrency being
    reached, the limit the capacity is measured against, not the model failing."""
    throttled_only = {s.index + 1: s for s in stages
                      if s.errors_by_kind and set(s.errors_by_kind) == {THROTTLING}}  # fmt: skip
    out = []
    for f in findings:
        number = f.message.split(" ", 2)[1] if f.message.startswith("Stage ") else ""
        stage = throttled_only.get(int(number)) if number.isdigit() else None
        if f.code in ERROR_FINDINGS and stage is not None:
            out.append(Finding("throttled_at_max_concurrency", (
                f"Stage {stage.index + 1}: {stage.error_rate:.1%} throttled (ThrottlingException): "
                f"more than MaxConcurrency {max_concurrency} requests at once, the serverless "
                "variant's limit (raise MaxConcurrency for more)")))  # fmt: skip
        else:
            out.append(f)
    return out


def cold_budget(slo: Slo, cold_latency_ms: float | None) -> float | None:
    """The share of requests that may start cold: half the tail allowance of the tightest
    percentile term a cold request breaks; None when cold requests break no term."""
    if cold_latency_ms is None:
        return None
    budgets = [
        (1.0 - float(t.stat[1:]) / 100.0) * COLD_BUDGET_SHARE
        for t in slo.terms
        if t.stat.startswith("p") and cold_latency_ms > t.limit_ms
    ]
    return min(budgets) if budgets else None


def size_serverless(
    a: ServerlessAnalysis, slo: Slo, peak_rps: float, min_rps: float | None = None
) -> ServerlessSizing:
    """Provisioned concurrency, the utilization target and MaxConcurrency for `peak_rps`."""
    # An execution is held for the warm latency (Little's law: busy = rate x holding time);
    # without one, the throughput per execution the search sustained gives it.
    warm_s = (a.warm_latency_ms or 0.0) / 1000.0
    if not warm_s and a.rps_per_concurrency:
        warm_s = 1.0 / a.rps_per_concurrency
    load = peak_rps * warm_s
    budget = cold_budget(slo, a.cold_latency_ms)
    lines = [f"busy executions at the peak a = peak x W = {peak_rps:g} x {warm_s:.4f} s = "
             f"{load:.2f} (Little's law; W = the warm latency; Erlang's formulas below assume "
             "random arrivals)"]  # fmt: skip
    warnings = []
    if budget is None:
        provisioned = max(1, math.ceil(load))
        lines.append("cold requests stay within the SLO (or no cold start was measured): "
                     f"ProvisionedConcurrency = ceil(a) = {provisioned}, for steady latency only")
    else:
        provisioned = max(1, servers_for(load, budget))
        lines.append(f"cold budget = (1 - Q) x {COLD_BUDGET_SHARE:g} = {budget:.2%} of requests "
                     f"(a cold request takes {a.cold_latency_ms:.0f} ms, beyond the SLO)")
        lines.append(f"ProvisionedConcurrency = least P with ErlangB(P, a) <= {budget:.2%}: "
                     f"P = {provisioned}, ErlangB = {erlang_b(provisioned, load):.2%}")
    spill = erlang_b(provisioned, load)
    target = load / provisioned if provisioned else UTILIZATION_RANGE[1]
    lo_t, hi_t = UTILIZATION_RANGE
    if not lo_t <= target <= hi_t:
        warnings.append(f"the utilization target {target:.2f} is clamped to "
                        f"[{lo_t:g}, {hi_t:g}]")  # fmt: skip
        target = min(hi_t, max(lo_t, target))
    lines.append(f"target {POLICY_METRIC} = a / P = {load:.2f} / {provisioned} = {target:.2f}")
    error_budget = slo.max_error_rate * COLD_BUDGET_SHARE
    needed = max(1, servers_for(load, max(error_budget, 1e-6)))
    lines.append(f"MaxConcurrency >= least M with ErlangB(M, a) <= {error_budget:.2%} "
                 f"(throttled share within half the error budget): {needed}")
    if needed > a.max_concurrency:
        warnings.append(f"MaxConcurrency {a.max_concurrency} is below the {needed} the peak "
                        f"of {peak_rps:g} requests/s needs: about "
                        f"{erlang_b(a.max_concurrency, load):.1%} of requests would be throttled; "
                        "raise MaxConcurrency (a new endpoint config, at most 200)")  # fmt: skip
    max_cap = min(a.max_concurrency, provisioned)
    if provisioned > a.max_concurrency:
        warnings.append(f"ProvisionedConcurrency {provisioned} exceeds MaxConcurrency "
                        f"{a.max_concurrency}: capped at it")  # fmt: skip
    min_cap = 1
    if min_rps:
        min_cap = max(1, min(max_cap, math.ceil(min_rps * warm_s / target)))
    cold_s = (a.cold_latency_ms or 0.0) / 1000.0
    per_rise = min(a.max_concurrency, math.ceil(peak_rps * (cold_s + warm_s))) if cold_s else 0
    miss = per_rise / (peak_rps * 60.0) if budget is not None and per_rise else None
    if miss is not None:
        lines.append(f"on demand (ProvisionedConcurrency 0): a rise from idle to the peak starts "
                     f"ceil(peak x (cold + W)) = {per_rise} executions cold, {miss:.2%} of the "
                     f"peak minute's requests outside the SLO (the cold budget is {budget:.2%}); "
                     "again after every idle spell longer than the idle timeout")  # fmt: skip
    return ServerlessSizing(
        peak_rps=peak_rps, busy_at_peak=load, cold_budget=budget,
        provisioned_concurrency=min(provisioned, a.max_concurrency), spillover_at_peak=spill,
        target_utilization=round(target, 3), min_capacity=min_cap, max_capacity=max_cap,
        max_concurrency_needed=needed, max_concurrency=a.max_concurrency,
        on_demand_cold_per_rise=per_rise, on_demand_miss_share=miss,
        derivation=tuple(lines), warnings=tuple(warnings),
    )  # fmt: skip
