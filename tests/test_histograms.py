from __future__ import annotations

import numpy as np
import pytest
from hdrh.histogram import HdrHistogram
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


def test_exact_values_of_each_reading() -> None:
    """Each reading against its definition, on values HdrHistogram holds exactly (with 2
    significant digits every microsecond below 256 us has its own bucket)."""
    hist = histograms.new()
    for v in (0.05, 0.1, 0.15, 0.2):  # ms, recorded as 50..200 us
        histograms.record_ms(hist, v)
    # Percentiles: the value of rank round(q * n).
    assert histograms.percentile_ms(hist, 0.25) == 0.05
    assert histograms.percentile_ms(hist, 0.5) == 0.1
    assert histograms.percentile_ms(hist, 1.0) == 0.2
    assert histograms.stat_ms(hist, "p50") == 0.1 and histograms.stat_ms(hist, "p100") == 0.2
    assert histograms.mean_ms(hist) == histograms.stat_ms(hist, "mean") == 0.125
    stddev = histograms.stddev_ms(hist)
    assert stddev is not None and abs(stddev - float(np.std([0.05, 0.1, 0.15, 0.2]))) < 1e-6
    # Counting at or below a limit: whole buckets only, like the percentiles.
    assert [histograms.count_at_or_below_ms(hist, x) for x in (0.04, 0.05, 0.125, 0.2, 9.0)] == [
        0, 1, 2, 4, 4]  # fmt: skip
    empty = histograms.new()
    assert histograms.stddev_ms(empty) is None and histograms.mean_ms(empty) is None
    assert histograms.count_at_or_below_ms(empty, 10.0) == 0
    one = histograms.new()
    histograms.record_ms(one, 0.07)
    assert histograms.percentile_ms(one, 0.5) == 0.07 and histograms.mean_ms(one) == 0.07
    assert histograms.stddev_ms(one) == 0.0


def _reference_ms(hist: HdrHistogram, stat: str) -> float:
    """HdrHistogram's own reading of `stat` (its pure-Python iterators), in ms."""
    if stat == "mean":
        return float(hist.get_mean_value()) / 1000.0
    return float(hist.get_value_at_percentile(float(stat[1:]))) / 1000.0


def _reference_count_at_or_below(hist: HdrHistogram, limit_ms: float) -> int:
    total = 0
    for item in hist.get_recorded_iterator():
        if hist.get_highest_equivalent_value(item.value_iterated_to) > limit_ms * 1000.0:
            break
        total += item.count_at_value_iterated_to
    return total


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.001, 500_000), min_size=1, max_size=300),
       st.sampled_from(["mean", "p50", "p90", "p95", "p99", "p99.9", "p100"]),
       st.floats(0.0, 600_000))  # fmt: skip
def test_statistics_read_exactly_like_the_histograms_own(
    values: list[float], stat: str, limit_ms: float
) -> None:
    """The statistics read from the counts array (numpy: microseconds, where HdrHistogram's
    iterators take milliseconds on the load generator's event loop) give exactly what
    HdrHistogram's own methods give, for every stat an SLO can name, the standard deviation
    and the count within a limit; so do those over a copied counts array (the bootstrap)."""
    hist = histograms.new()
    for v in values:
        histograms.record_ms(hist, v)
    want = _reference_ms(hist, stat)
    got = histograms.stat_ms(hist, stat)
    assert got is not None and abs(got - want) <= 1e-9 * max(1.0, want)
    c = histograms.counts(hist)
    assert c.dtype == np.int64 and int(c.sum()) == len(values)
    fast = histograms.stat_ms_from_counts(c, stat)
    assert fast is not None and abs(fast - want) <= 1e-9 * max(1.0, want)
    stddev = histograms.stddev_ms(hist)
    assert stddev is not None
    assert abs(stddev - hist.get_stddev() / 1000.0) <= 1e-9 * max(1.0, stddev)
    assert histograms.count_at_or_below_ms(hist, limit_ms) == _reference_count_at_or_below(
        hist, limit_ms)  # fmt: skip
    assert histograms.stat_ms_from_counts(np.zeros_like(c), stat) is None
    one = np.zeros_like(c)
    one[int(np.argmax(c > 0))] = 1  # a single request: its own value for every stat
    single = histograms.stat_ms_from_counts(one, stat)
    assert single is not None and single > 0


def test_a_decoded_histogram_reads_like_the_one_encoded() -> None:
    """What the driver reads each second is a decoded histogram: same layout, same stats."""
    hist = histograms.new()
    for v in (0.5, 12.0, 300.0, 300.0, 4_000.0):
        histograms.record_ms(hist, v)
    back = histograms.decode(histograms.encode(hist))
    for stat in ("mean", "p50", "p99"):
        assert histograms.stat_ms(back, stat) == histograms.stat_ms(hist, stat)
    assert histograms.count_at_or_below_ms(back, 350.0) == 4 == _reference_count_at_or_below(
        back, 350.0)  # fmt: skip


def test_encode_decode_round_trip() -> None:
    hist = histograms.new()
    for v in (0.5, 12.0, 300.0):
        histograms.record_ms(hist, v)
    text = histograms.encode(hist)
    assert isinstance(text, str) and text.isascii()
    assert (histograms.counts(histograms.decode(text)) == histograms.counts(hist)).all()


def test_bucket_values_computed_afresh_read_like_the_histogram() -> None:
    """bucket_values_us caches its arrays per process: recompute them here (a cache filled
    before this test would hide a wrong computation), and read every stat both ways."""
    saved = histograms._BUCKET_VALUES
    histograms._BUCKET_VALUES = None
    try:
        hist = histograms.new()
        for v in np.random.default_rng(5).lognormal(3, 1.5, 500):
            histograms.record_ms(hist, float(v))
        c = histograms.counts(hist)
        for stat in ("mean", "p50", "p95", "p99", "p100"):
            want = histograms.stat_ms(hist, stat)
            assert want is not None
            assert histograms.stat_ms_from_counts(c, stat) == pytest.approx(want, rel=1e-12)
        hi, mid = histograms.bucket_values_us()
        assert hi.dtype == mid.dtype == np.float64 and len(hi) == len(mid) == len(c)
    finally:
        histograms._BUCKET_VALUES = saved
