from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender import histograms


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0.01, 100_000), min_size=1, max_size=300), st.floats(0.01, 1.0))
def test_percentiles_within_one_percent(values: list[float], q: float) -> None:
    hist = histograms.new()
    for v in values:
        histograms.record_ms(hist, v)
    got = histograms.percentile_ms(hist, q)
    assert got is not None
    # HdrHistogram's rank: the value below which round(q * n) of the values lie.
    exact = float(np.sort(values)[max(1, int(q * len(values) + 0.5)) - 1])
    exact_us = max(1.0, int(exact * 1000)) / 1000
    assert abs(got - exact_us) <= 0.01 * exact_us + 0.001


def test_merge_is_exact_sum() -> None:
    a, b, both = histograms.new(), histograms.new(), histograms.new()
    for i, v in enumerate(np.random.default_rng(3).exponential(50, 2000)):
        histograms.record_ms(a if i % 2 else b, float(v))
        histograms.record_ms(both, float(v))
    merged = histograms.merge([histograms.encode(a), histograms.encode(b), ""])
    assert merged.get_total_count() == 2000
    for q in (0.5, 0.9, 0.99):
        assert histograms.percentile_ms(merged, q) == histograms.percentile_ms(both, q)


def test_empty_histogram_has_no_percentile() -> None:
    assert histograms.percentile_ms(histograms.new(), 0.95) is None
    assert histograms.stat_ms(histograms.new(), "mean") is None


def test_extreme_values_are_clamped_not_lost() -> None:
    hist = histograms.new()
    histograms.record_ms(hist, 0.0)
    histograms.record_ms(hist, 10**9)
    assert hist.get_total_count() == 2
