"""Compare two runs: capacity per instance, target value and latency at equal load (pure).

Both runs are analysed afresh against the BASE run's SLO, so a changed SLO cannot pass for
a changed endpoint. A regression counts only beyond the noise: the NEW run's capacity
interval must lie below the BASE run's by more than the allowed share, i.e.

    drop beyond the intervals = (base interval low - new interval high) / base interval low

must exceed `max_regression`. An estimate without an interval is treated by what it bounds:
a lower bound (no stage failed) says nothing about how high capacity goes, so a NEW lower
bound is never a regression; a NEW run whose first stage failed has capacity below that
stage's throughput.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recommender import runs
from recommender.analysis import Analysis, analyze_run
from recommender.analysis.curve import interpolate
from recommender.analysis.recommend import DEFAULT_SAFETY_FACTOR
from recommender.errors import ConfigError, InsufficientDataError
from recommender.runs import RunData

DEFAULT_MAX_REGRESSION = 0.10


def parse_threshold(text: str) -> float:
    """`10%` or `0.1` -> 0.1; a share in [0, 1)."""
    t = text.strip()
    m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%", t)
    hint = 'write a share below 100%, e.g. "10%" or 0.1'
    try:
        value = float(m.group(1)) / 100.0 if m else float(t)
    except ValueError:
        value = math.nan
    if not m and 1 <= value < 100:
        # "10" is ambiguous (ten percent or ten times?): ask for the % sign.
        value, hint = math.nan, f'write "{t}%" for percent, or a share like 0.1'
    if math.isnan(value) or not 0 <= value < 1:
        raise ConfigError(f"cannot read --max-regression {text!r}", hint)
    return value


@dataclass(frozen=True)
class RunSide:
    dir: str
    name: str | None
    method: str
    rps_per_instance: float | None
    interval_rps_per_instance: tuple[float, float] | None
    target_value: float | None
    p95_at_load_ms: float | None


@dataclass(frozen=True)
class Comparison:
    slo: str
    base: RunSide
    new: RunSide
    load_rps_per_instance: float | None
    load_basis: str
    change: dict[str, float | None]  # relative change NEW vs BASE: -0.3 is 30% less
    drop_beyond_intervals: float | None
    max_regression: float
    regression: bool

    def to_dict(self) -> dict[str, Any]:
        """`compare --json`; report/comparison.schema.json is its schema."""
        d = {"schema": "recommender-comparison/1", **asdict(self)}
        for side in ("base", "new"):
            iv = d[side]["interval_rps_per_instance"]
            d[side]["interval_rps_per_instance"] = list(iv) if iv else None
        return d


def _rel(new: float | None, base: float | None) -> float | None:
    if new is None or base is None or base == 0:
        return None
    return (new - base) / base


def _points(a: Analysis) -> tuple[np.ndarray, np.ndarray]:
    """(throughput per instance, p95 ms) of the stages, sorted by throughput."""
    n = a.capacity.instances
    pts = sorted((s.achieved_rps / n, s.p95_ms) for s in a.stages if s.p95_ms is not None)
    return np.array([p[0] for p in pts]), np.array([p[1] for p in pts])


def p95_at(a: Analysis, rps_per_instance: float) -> float | None:
    """p95 at a throughput per instance, interpolated linearly between the stages around
    it; None outside the measured range (no extrapolation: recommender.analysis.curve,
    `outside="nan"`)."""
    x, y = _points(a)
    if len(x) == 0:
        return None
    value = float(interpolate(rps_per_instance, x, y, outside="nan"))
    return None if math.isnan(value) else value


def equal_load(base: Analysis, new: Analysis, safety_factor: float) -> tuple[float | None, str]:
    """The throughput per instance to compare latency at: where BASE's recommended target
    would run each instance (capacity x safety factor), kept inside the range both runs
    measured."""
    xb, _ = _points(base)
    xn, _ = _points(new)
    if len(xb) == 0 or len(xn) == 0:
        return None, "a run has no stage with latency"
    lo, hi = max(xb[0], xn[0]), min(xb[-1], xn[-1])
    if lo > hi:
        return None, "the runs measured no throughput in common"
    cap = base.capacity.rps_per_instance
    if cap is None:
        return float(hi), "the highest throughput both runs measured"
    want = cap * safety_factor
    if want > hi:
        return float(hi), "the highest throughput both runs measured"
    if want < lo:
        return float(lo), "the lowest throughput both runs measured"
    return want, f"BASE capacity x {safety_factor:g} (where its target runs an instance)"


def _bounds(a: Analysis) -> tuple[float, float]:
    """(lowest, highest) capacity per instance the run is consistent with."""
    cap = a.capacity
    if cap.ci_rps_per_instance:
        return cap.ci_rps_per_instance
    if cap.interval_rps_per_instance:
        return cap.interval_rps_per_instance
    if cap.method == "lower_bound" and cap.rps_per_instance is not None:
        return cap.rps_per_instance, math.inf
    if a.stages:  # method "none": the first stage already failed
        return 0.0, a.stages[0].achieved_rps / cap.instances
    return 0.0, math.inf


def _side(run: RunData, a: Analysis, load: float | None) -> RunSide:
    cap = a.capacity
    return RunSide(
        dir=str(run.path),
        name=run.meta.get("name"),
        method=cap.method,
        rps_per_instance=cap.rps_per_instance,
        interval_rps_per_instance=cap.interval_rps_per_instance,
        target_value=a.recommendation.target_value if a.recommendation else None,
        p95_at_load_ms=p95_at(a, load) if load is not None else None,
    )


def compare_dirs(
    base_dir: Path, new_dir: Path, max_regression: float = DEFAULT_MAX_REGRESSION
) -> Comparison:
    """`recommender compare BASE NEW`: both run directories, judged on BASE's SLO."""
    return compare_runs(runs.load_run(base_dir), runs.load_run(new_dir), max_regression)


def compare_runs(
    base: RunData,
    new: RunData,
    max_regression: float = DEFAULT_MAX_REGRESSION,
    safety_factor: float = DEFAULT_SAFETY_FACTOR,
) -> Comparison:
    slo = base.slo
    a_base = analyze_run(base, slo, safety_factor)
    if a_base.capacity.rps_per_instance is None:
        raise InsufficientDataError(
            f"BASE run {base.path} has no capacity estimate within {slo}",
            "compare against a run with at least one stage within the SLO",
        )
    a_new = analyze_run(new, slo, safety_factor)
    load, basis = equal_load(a_base, a_new, safety_factor)
    b, n = _side(base, a_base, load), _side(new, a_new, load)
    base_low, _ = _bounds(a_base)
    _, new_high = _bounds(a_new)
    drop = (base_low - new_high) / base_low if base_low > 0 and math.isfinite(new_high) else None
    return Comparison(
        slo=str(slo),
        base=b,
        new=n,
        load_rps_per_instance=load,
        load_basis=basis,
        change={
            "rps_per_instance": _rel(n.rps_per_instance, b.rps_per_instance),
            "target_value": _rel(n.target_value, b.target_value),
            "p95_at_load": _rel(n.p95_at_load_ms, b.p95_at_load_ms),
        },
        drop_beyond_intervals=drop,
        max_regression=max_regression,
        regression=drop is not None and drop > max_regression,
    )


# --- several configurations: `recommender sweep` ------------------------------------------


def stage_points(a: Analysis) -> list[tuple[float, float]]:
    """(throughput per instance, p95 ms) of the stages, by throughput: the latency curve
    `compare` interpolates, as points to plot."""
    x, y = _points(a)
    return [(float(u), float(v)) for u, v in zip(x, y, strict=True)]


@dataclass(frozen=True)
class Candidate:
    """One configuration of a sweep (an instance type on an endpoint), measured and priced.

    `day_*`: the recommended target-tracking policy simulated (recommender.simulate) over the
    sweep's traffic; None when the run gave no capacity within the SLO.
    """

    instance_type: str
    endpoint: str
    run_dir: str
    status: str  # the run's: complete, stopped, interrupted
    method: str  # the capacity estimate's
    rps_per_instance: float | None
    interval_rps_per_instance: tuple[float, float] | None
    target_value: float | None
    usd_per_hour: float
    price_source: str
    instances_at_peak: int | None
    min_capacity: int | None
    max_capacity: int | None
    day_instance_hours: float | None
    day_cost_usd: float | None
    day_violating_minutes: int | None
    curve: tuple[tuple[float, float], ...]  # stage_points

    @property
    def meets_slo(self) -> bool:
        """A recommendation was made: some load per instance was served within the SLO."""
        return self.target_value is not None and bool(self.rps_per_instance)

    @property
    def usd_per_million(self) -> float | None:
        """$ per million requests with each instance at its capacity within the SLO: the
        price of one instance-hour over the requests it serves in that hour."""
        if not self.meets_slo or not self.rps_per_instance:
            return None
        return self.usd_per_hour * 1e6 / (self.rps_per_instance * 3600.0)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        iv = d["interval_rps_per_instance"]
        d["interval_rps_per_instance"] = list(iv) if iv else None
        d["curve"] = [list(p) for p in self.curve]
        d["meets_slo"] = self.meets_slo
        d["usd_per_million_requests"] = self.usd_per_million
        return d


def rank(candidates: list[Candidate]) -> list[Candidate]:
    """Cheapest first: those that meet the SLO before those that do not, then by the day's
    cost under the recommended policy, then by $ per million requests at the SLO (a lower
    cost per request wins when the day's costs tie), then by name (a stable order)."""

    def key(c: Candidate) -> tuple[bool, float, float, str]:
        day = c.day_cost_usd if c.day_cost_usd is not None else math.inf
        per_m = c.usd_per_million if c.usd_per_million is not None else math.inf
        return (not c.meets_slo, day, per_m, c.instance_type)

    return sorted(candidates, key=key)
