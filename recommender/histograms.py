"""Mergeable latency histograms (HdrHistogram), the unit of latency data in a run.

Latency is kept in microseconds from 1 us to 10 min with 2 significant digits, so any
percentile read back is within 1% of the recorded value; histograms add exactly, which is
what lets per-second, per-stage and per-worker data merge without keeping requests.
Serialised with HdrHistogram's own compressed, base64 wire format.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 600_000_000
SIGNIFICANT_DIGITS = 2


def new() -> HdrHistogram:
    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)


def record_ms(hist: HdrHistogram, latency_ms: float) -> None:
    # Clamp instead of failing: a value past 10 min is a hung request and still counts.
    hist.record_value(min(max(int(latency_ms * 1000.0), LOWEST_US), HIGHEST_US))


def encode(hist: HdrHistogram) -> str:
    return str(hist.encode().decode("ascii"))


def decode(text: str) -> HdrHistogram:
    return HdrHistogram.decode(text.encode("ascii"))


def merge(encoded: Iterable[str]) -> HdrHistogram:
    total = new()
    for text in encoded:
        if text:
            total.add(decode(text))
    return total


def percentile_ms(hist: HdrHistogram, quantile: float) -> float | None:
    """The value at `quantile` (0..1], in ms; None for an empty histogram."""
    if hist.get_total_count() == 0:
        return None
    return _at_percent(_view(hist), quantile * 100.0)


def mean_ms(hist: HdrHistogram) -> float | None:
    if hist.get_total_count() == 0:
        return None
    return stat_ms_from_counts(_view(hist), "mean")


def stat_ms(hist: HdrHistogram, stat: str) -> float | None:
    """`stat` as written in an SLO: "mean" or "p<percentile>"."""
    if hist.get_total_count() == 0:
        return None
    return stat_ms_from_counts(_view(hist), stat)


def count_at_or_below_ms(hist: HdrHistogram, limit_ms: float) -> int:
    """Recorded values whose whole bucket lies at or below `limit_ms` (the same rounding
    up as the percentiles read from the histogram, so the two agree on pass/fail)."""
    hi, _ = bucket_values_us()
    return int(_view(hist)[: int(np.searchsorted(hi, limit_ms * 1000.0, side="right"))].sum())


def stddev_ms(hist: HdrHistogram) -> float | None:
    """HdrHistogram's standard deviation (of its buckets' median values), in ms."""
    total = hist.get_total_count()
    if total == 0:
        return None
    c = _view(hist)
    _, mid = bucket_values_us()
    mean = float((c * mid).sum()) / total
    return math.sqrt(float((c * (mid - mean) ** 2).sum()) / total) / 1000.0


# --- as arrays, for resampling many times (the bootstrap) ------------------------------

_BUCKET_VALUES: tuple[np.ndarray, np.ndarray] | None = None


def bucket_values_us() -> tuple[np.ndarray, np.ndarray]:
    """(highest, median) equivalent value of every counts-array index, in microseconds:
    what HdrHistogram reports for a percentile falling in that bucket, and what it uses
    for the mean."""
    global _BUCKET_VALUES
    if _BUCKET_VALUES is None:
        h = new()
        raw = [h.get_value_from_index(i) for i in range(h.counts_len)]
        hi = np.array([h.get_highest_equivalent_value(v) for v in raw], dtype=np.float64)
        mid = np.array([h._hdr_median_equiv_value(v) for v in raw], dtype=np.float64)
        _BUCKET_VALUES = (hi, mid)
    return _BUCKET_VALUES


def _view(hist: HdrHistogram) -> np.ndarray:
    """The histogram's bucket counts as an array, without a copy. Reading statistics from
    it takes microseconds where HdrHistogram's own iterators, pure Python over ~3,000
    buckets, took milliseconds: the load generator reads them every second between sends,
    and a blocked event loop sends late (bench/README.md, bench_plain_client)."""
    c = np.ctypeslib.as_array(hist.counts)
    if len(c) != len(bucket_values_us()[0]):  # another layout than `new()`'s: not ours
        raise ValueError(f"histogram of {len(c)} buckets, expected {len(bucket_values_us()[0])}")
    return c


def counts(hist: HdrHistogram) -> np.ndarray:
    """The histogram's bucket counts as an int64 array (a copy)."""
    return np.ctypeslib.as_array(hist.counts).astype(np.int64)


def stat_ms_from_counts(c: np.ndarray, stat: str) -> float | None:
    """`stat_ms` over a counts array, the same way HdrHistogram computes it."""
    total = int(c.sum())
    if total == 0:
        return None
    if stat == "mean":
        return float((c * bucket_values_us()[1]).sum() / total) / 1000.0
    return _at_percent(c, float(stat[1:]))


def _at_percent(c: np.ndarray, percent: float) -> float | None:
    """HdrHistogram's get_value_at_percentile over a counts array, in ms (None: empty)."""
    total = int(c.sum())
    if total == 0:
        return None
    # HdrHistogram's get_target_count_at_percentile, to the same float rounding.
    target = max(1, int(min(percent, 100.0) * total / 100 + 0.5))
    index = int(np.searchsorted(np.cumsum(c), target))
    return float(bucket_values_us()[0][index]) / 1000.0
