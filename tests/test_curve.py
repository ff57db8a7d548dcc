"""The one latency-against-load interpolation (recommender.analysis.curve) and its edge rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from recommender.analysis.curve import curve_points, interpolate

XS = [50.0, 100.0, 120.0]
YS = [20.0, 40.0, 150.0]


def test_straight_lines_between_points() -> None:
    assert float(interpolate(80.0, XS, YS)) == pytest.approx(32.0)
    assert float(interpolate(110.0, XS, YS)) == pytest.approx(95.0)
    assert interpolate([50.0, 100.0], XS, YS).tolist() == [20.0, 40.0]


def test_beyond_the_points_held_flat_or_nan() -> None:
    assert interpolate([10.0, 500.0], XS, YS).tolist() == [20.0, 150.0]
    out = interpolate([10.0, 50.0, 120.0, 500.0], XS, YS, outside="nan")
    assert math.isnan(out[0]) and math.isnan(out[3])
    assert out[1:3].tolist() == [20.0, 150.0]


def test_points_in_any_order_and_equal_throughputs_keep_the_highest_latency() -> None:
    x, y = curve_points([100.0, 50.0, 100.0, 120.0], [45.0, 20.0, 40.0, 150.0])
    assert x.tolist() == XS and y.tolist() == [20.0, 45.0, 150.0]
    assert float(interpolate(100.0, [100.0, 50.0, 100.0], [45.0, 20.0, 40.0])) == 45.0


def test_no_points_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="no points"):
        interpolate(1.0, [], [])
    with pytest.raises(ValueError, match="2 throughputs but 1 latencies"):
        curve_points([1.0, 2.0], [3.0])


@given(
    xs=st.lists(st.floats(0, 1e4), min_size=1, max_size=20, unique=True),
    at=st.floats(-10, 2e4),
)
def test_agrees_with_numpy_interp_on_increasing_points(xs: list[float], at: float) -> None:
    xs = sorted(xs)
    ys = [x * 0.5 + 3 for x in xs]
    assert float(interpolate(at, xs, ys)) == float(np.interp(at, xs, ys))
