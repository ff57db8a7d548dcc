"""bench/bench_truth.py's drawing and summary (pure; its runs are the benchmark's, not ours)."""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType

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
