"""Latency against load from a stage table: one interpolation for every caller (pure).

A run's stages give points (throughput, latency). `apply` reads the mean latency at its
target (Little's law), `simulate` the SLO's statistic at each minute's load, `compare` the p95
at an equal load; all of them go through `interpolate`, so they agree between the points.

The rule, in full:

- Points are taken in order of throughput. Where several share a throughput, the one with
  the highest latency stands for them (a curve needs one value per x; the higher latency
  is the cautious one, and is the later stage when latency grows with load).
- Between two points the latency is on the straight line joining them (numpy.interp).
- Beyond the lowest and highest throughput: `outside="hold"` keeps the end point's latency
  (flat, no extrapolation); `outside="nan"` answers NaN, for a caller that must not claim a
  latency the run did not measure.

Callers shape the points themselves (which statistic, per instance, a running maximum):
that is a choice about the endpoint, not about interpolating.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
Outside = Literal["hold", "nan"]


def curve_points(xs: npt.ArrayLike, ys: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
    """The points as `interpolate` uses them: increasing throughput, one latency per
    throughput (the highest of equal throughputs). Empty in, empty out."""
    x = np.asarray(xs, dtype=np.float64).ravel()
    y = np.asarray(ys, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise ValueError(f"{x.size} throughputs but {y.size} latencies")
    order = np.lexsort((y, x))  # by throughput, then latency: the highest of equals last
    x, y = x[order], y[order]
    keep = np.append(np.diff(x) > 0, True) if x.size else np.zeros(0, dtype=bool)
    return x[keep], y[keep]


def interpolate(
    x: npt.ArrayLike, xs: npt.ArrayLike, ys: npt.ArrayLike, *, outside: Outside = "hold"
) -> FloatArray:
    """The latency at throughput(s) `x` on the curve through (xs, ys) (module doc's rule).

    Raises ValueError without points: a caller says what that means for its user.
    """
    px, py = curve_points(xs, ys)
    if px.size == 0:
        raise ValueError("no points to interpolate between")
    at = np.asarray(x, dtype=np.float64)
    out = np.asarray(np.interp(at, px, py), dtype=np.float64)
    if outside == "nan":
        out = np.where((at < px[0]) | (at > px[-1]), np.nan, out)
    return out
