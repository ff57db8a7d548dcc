"""A queueing-shaped model of latency against throughput (pure).

    latency(x) = a + b / (c - x),   x < c

is the shape of a queue's waiting time (M/M/1: mean wait 1/(mu - lambda)): flat at `a`
well below capacity, rising without bound as throughput x nears the saturation rate `c`.
It is fitted per SLO statistic to the stages (achieved throughput, observed latency) with
scipy.optimize.curve_fit in log space, so the flat part and the knee weigh alike.
Goodness of fit is R^2 of log latency. The model smooths noisy stages; used beyond the
measured range (no stage failed) it extrapolates, and the analysis says so.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from recommender.analysis.stages import StageStats

MIN_POINTS = 4


@dataclass(frozen=True)
class LatencyFit:
    stat: str
    a_ms: float  # latency far below saturation
    b: float  # ms x rps: how soon the knee comes
    c_rps: float  # saturation throughput (the asymptote)
    r2: float  # of log latency
    points: int
    x_at_limit: float | None  # throughput where the fitted curve meets the SLO limit

    def latency_ms(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            y = self.a_ms + self.b / (self.c_rps - x)
        return np.where(x < self.c_rps, y, np.inf)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _model(x: np.ndarray, log_a: float, log_b: float, c: float) -> np.ndarray:
    gap = np.maximum(c - x, 1e-9)
    out: np.ndarray = np.log(np.exp(log_a) + np.exp(log_b) / gap)
    return out


def fit_latency(stages: Sequence[StageStats], stat: str, limit_ms: float) -> LatencyFit | None:
    """Fit the model to the stages' `stat`; None with too few usable stages or no fit."""
    from scipy.optimize import curve_fit

    # Goodput, not all responses: an overloaded endpoint's fast errors are not throughput.
    pts = [(s.successes / s.seconds, s.slo_values_ms.get(stat)) for s in stages if s.seconds]
    xy = sorted((x, y) for x, y in pts if y is not None and y > 0 and x > 0)
    if len(xy) < MIN_POINTS:
        return None
    x = np.array([p[0] for p in xy])
    y = np.log(np.array([p[1] for p in xy]))
    a0 = float(np.exp(y.min()))
    c0 = float(x.max() * 1.05)
    p0 = [math.log(a0), math.log(max(a0 * 0.1 * c0, 1e-6)), c0]
    bounds = ([-20.0, -20.0, float(x.max()) * 1.0001], [20.0, 30.0, float(x.max()) * 10])
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params, _ = curve_fit(_model, x, y, p0=p0, bounds=bounds, maxfev=5000)
    except (RuntimeError, ValueError):
        return None
    log_a, log_b, c = (float(p) for p in params)
    resid = y - _model(x, log_a, log_b, c)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid**2).sum()) / ss_tot if ss_tot > 0 else 0.0
    a, b = math.exp(log_a), math.exp(log_b)
    x_at = c - b / (limit_ms - a) if limit_ms > a else None
    return LatencyFit(stat, a, b, c, r2, len(xy), x_at)
