"""bench/bench_truth.py's drawing and summary (pure; its runs are the benchmark's, not ours)."""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "bench"))
    import bench_truth

    return bench_truth


def test_the_draws_are_within_bounds_and_replayed_by_their_seed(bench: ModuleType) -> None:
    draws = bench.draw_configs(11, 3, 400.0)
    assert draws == bench.draw_configs(11, 3, 400.0)  # --seed replays
    assert draws[0] != bench.draw_configs(12, 1, 400.0)[0]
    assert [d.index for d in draws] == [1, 2, 3]
    for d in draws:
        assert 1 <= d.instances <= 4 and 1 <= d.slots <= 32
        assert 2.0 <= d.service_ms <= 500.0 and d.law in bench.LAWS
        assert d.quantile in bench.QUANTILES
        assert 1.2 * d.service_ms - 0.1 <= d.limit_ms <= 20 * d.service_ms + 0.1
        assert d.saturation_rps <= 400.0
        assert bench.has_truth(d)
        assert d.slo.startswith(f"p{d.quantile * 100:g}<=") and d.slo.endswith("ms")


def test_the_summary_counts_errors_coverage_and_what_went_wrong(bench: ModuleType) -> None:
    d = bench.Draw(1, 1, 4, 20.0, "exp", 0.95, 100.0, 5)

    def result(error: float | None, covered: bool | None, wall: float,
               problem: str | None = None) -> object:  # fmt: skip
        r = bench.TruthResult(d, 200.0, 100.0, 101.0, "", 20.0, 1.0, 260.0, 10.0,
                              wall_s=wall, problem=problem)  # fmt: skip
        r.error_pct, r.covered = error, covered
        if error is not None:
            r.estimate_rps = 100.0 * (1 + error / 100)
        return r

    rs = [result(-2.0, True, 100), result(5.0, False, 300), result(1.0, True, 200),
          result(None, None, 0, problem="skipped")]  # fmt: skip
    s = bench.summary(rs)
    assert s["median_abs_error_pct"] == 2.0 and s["worst_error_pct"] == 5.0
    assert s["coverage_pct"] == pytest.approx(200 / 3) and s["with_interval"] == 3
    assert s["median_wall_s"] == 200 and s["problems"] == 1
    rs[1].stopped_late = True  # type: ignore[attr-defined]
    assert bench.summary(rs)["median_abs_error_pct_driven"] == 1.5
    text = bench.format_summary(s)
    assert "median |error| 2.0%, worst +5.0% (#1), coverage 66.7% of 3 intervals" in text
    assert bench.table(rs).count("\n") == 5
    assert not math.isnan(s["median_wall_s"])


def test_the_split_truth_is_judged_from_the_shares_the_run_recorded(bench: ModuleType) -> None:
    """Issue 27: with N > 1 the arbiter is the truth for the shares the instances served
    (the kernel spreads connections, not requests), not the 1/N one."""
    from recommender.queueing import empirical_poisson_capacity, split_poisson_capacity

    d = bench.Draw(1, 3, 4, 20.0, "exp", 0.95, 100.0, 5)
    service, outside = np.array([10.0, 20.0, 30.0]), np.array([1.0])
    truth = empirical_poisson_capacity(3, 4, service, 0.95, 100.0, outside, 2_000)

    def judged(shares: list[float], estimate: float | None = None,
               interval: list[float] | None = None) -> Any:  # fmt: skip
        r = bench.TruthResult(d, 600.0, truth, truth, "", 20.0, 1.0, 780.0, 10.0,
                              instance_share=shares, estimate_rps=estimate,
                              interval_rps=interval)  # fmt: skip
        bench.judge_split(r, service, outside, 2_000)
        return r

    shares = [0.5, 0.3, 0.2]
    split = split_poisson_capacity(shares, 4, service, 0.95, 100.0, outside, 2_000)
    assert split < 0.8 * truth  # the busiest instance, half the stream, saturates first
    # An estimate near the split truth: right against the arbiter, wrong against 1/N.
    r = judged(shares, 1.02 * split, [0.97 * split, 1.07 * split])
    assert r.truth_split == split and r.covers_split is True
    assert r.error_split == pytest.approx(2.0)
    assert r.truth_rps == truth  # the 1/N truth is kept beside it, untouched
    r = judged(shares, 0.5 * split, [0.4 * split, 0.6 * split])
    assert r.covers_split is False and r.error_split == pytest.approx(-50.0)
    # Equal shares: the 1/N truth. One instance: the same number, not simulated again.
    assert judged([1 / 3] * 3).truth_split == pytest.approx(truth, abs=1e-3 * 600.0)
    one = bench.TruthResult(bench.Draw(1, 1, 4, 20.0, "exp", 0.95, 100.0, 5), 200.0, 123.4,
                            123.4, "", 20.0, 1.0, 260.0, 10.0, instance_share=[1.0],
                            estimate_rps=111.06, interval_rps=[100.0, 120.0])  # fmt: skip
    bench.judge_split(one, service, outside, 2_000)
    assert one.truth_split == 123.4 and one.error_split == pytest.approx(-10.0)
    assert one.covers_split is False
    # No run (skipped), or a run no instance answered: no split truth, nothing judged.
    for none in ([], [0.0, 0.0, 0.0]):
        r = judged(none, 100.0, [90.0, 110.0])
        assert r.truth_split is None and r.error_split is None and r.covers_split is None


def test_the_summary_and_table_show_both_truths_and_name_the_arbiter(
    bench: ModuleType,
) -> None:
    d = bench.Draw(1, 2, 4, 20.0, "exp", 0.95, 100.0, 5)
    rs = []
    for error, split_error, covers, covers_split in ((10.0, -1.0, False, True),
                                                     (20.0, 3.0, False, False)):  # fmt: skip
        r = bench.TruthResult(d, 400.0, 300.0, 300.0, "", 20.0, 1.0, 520.0, 10.0,
                              instance_share=[0.6, 0.4])  # fmt: skip
        r.error_pct, r.error_split, r.covered, r.covers_split = (error, split_error, covers,
                                                                 covers_split)  # fmt: skip
        r.truth_split, r.estimate_rps, r.interval_rps = 250.0, 300.0, [240.0, 320.0]
        rs.append(r)
    rs[1].timed_out = True
    s = bench.summary(rs)
    assert s["arbiter"] == bench.ARBITER and "truth_split" in s["arbiter"]
    assert s["median_abs_error_pct"] == 15.0 and s["worst_error_pct"] == 20.0
    assert s["coverage_pct"] == 0.0 and s["with_interval"] == 2
    assert s["median_abs_error_split_pct"] == 2.0 and s["worst_error_split_pct"] == 3.0
    assert s["worst_config_split"] == 1 and s["estimates_split"] == 2
    assert s["coverage_split_pct"] == 50.0 and s["with_interval_split"] == 2
    assert s["median_abs_error_split_pct_driven"] == 1.0 and s["driven_split"] == 1
    text = bench.format_summary(s)
    assert ("Against the split truth (the arbiter: the instances' shares as the run loaded "
            "them): 2 estimates: median |error| 2.0%, worst +3.0% (#1), coverage 50.0% of 2 "
            "intervals; median |error| 1.0% over the 1 runs") in text  # fmt: skip
    assert "Against the 1/N truth (each instance 1/N; the same for N = 1): 2 estimates: " \
        "median |error| 15.0%, worst +20.0% (#1), coverage 0.0% of 2 intervals" in text
    table = bench.table(rs)
    assert "| shares | truth split | truth 1/N |" in table
    assert "| 0.60/0.40 | 250.0 | 300.0 | 300.0 | 240.0-320.0 | True | False | -1.0% | +10.0% |" \
        in table
    assert "truth split 250.0 (shares 0.60/0.40; 1/N 300.0" in rs[0].line()
