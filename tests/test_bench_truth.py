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


def test_the_habits_come_from_their_own_stream_and_leave_the_draws_as_they_were(
    bench: ModuleType,
) -> None:
    """--habits: earlier seeds replay the same configurations (pinned: seed 11's first two,
    drawn before the habits existed), with habits added on top from a stream of their own."""
    plain = bench.draw_configs(11, 2, 400.0)
    assert plain == [bench.Draw(1, 1, 18, 336.38, "det", 0.99, 4336.4, 2036519846),
                     bench.Draw(2, 2, 15, 155.13, "exp", 0.999, 1787.5, 1753928140)]  # fmt: skip
    assert bench.with_habits(11, plain, 0.0) == plain
    real = bench.draw_configs(11, 2, 400.0, habits=1.0)
    assert [bench.replace(d, keepalive_s=None, overlap=0.0) for d in real] == plain
    assert real == bench.with_habits(11, plain, 1.0)  # replayed by the seed
    many = [bench.Draw(i, 2, 4, 20.0, "exp", 0.95, 100.0, i) for i in range(1, 41)]
    every = bench.with_habits(11, many, 1.0)
    for d in every:
        assert 1.0 <= d.keepalive_s <= 5.0 and 0.0 <= d.overlap <= 0.5 and d.overlap > 0
    assert len({d.overlap for d in every}) > 30
    assert every != bench.with_habits(12, many, 1.0)
    # A probability picks some; each picked one has the habits it has at probability 1.
    half = bench.with_habits(11, many, 0.5)
    picked = [i for i, d in enumerate(half) if d.keepalive_s is not None]
    assert 8 < len(picked) < 32
    assert all(half[i] == (every[i] if i in picked else many[i]) for i in range(len(many)))
    assert bench.parse_habits("none") == 0.0 and bench.parse_habits("real") == 1.0
    assert bench.parse_habits("0.25") == 0.25
    for bad in ("sometimes", "1.5", "-0.1", "nan"):
        with pytest.raises(Exception, match="--habits takes none, real or a probability"):
            bench.parse_habits(bad)


def test_a_configuration_with_habits_runs_and_is_judged_with_them(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    d = bench.Draw(1, 2, 4, 20.0, "det", 0.95, 100.0, 5, keepalive_s=2.5, overlap=0.5)
    server = bench.server_config(d)
    assert (server.keepalive_s, server.overlap, server.seed) == (2.5, 0.5, 5)
    assert d.saturation_rps == pytest.approx(server.capacity_rps) == pytest.approx(400 / 1.375)
    assert bench.Draw(1, 2, 4, 20.0, "det", 0.95, 100.0, 5).saturation_rps == 400.0
    assert d.label() == "#1 2x4 S=20ms det keep-alive 2.5s overlap 0.5 p95<=100ms"
    # Every truth is the queue's with the draw's overlap (its effect: tests/test_real_habits).
    calls: list[tuple[str, Any, float]] = []

    def recorded(name: str, value: float) -> Any:
        def capacity(first: Any, c: int, service: Any, *args: Any, overlap: float = 0.0) -> float:
            calls.append((name, service, overlap))
            return value
        return capacity

    monkeypatch.setattr(bench, "empirical_poisson_capacity", recorded("1/N", 90.0))
    monkeypatch.setattr(bench, "split_poisson_capacity", recorded("split", 80.0))
    slot, outside = np.array([18.0, 20.0, 22.0]), np.array([1.0])
    assert bench.truths(d, slot, outside, 2_000) == (90.0, 90.0, slot)
    assert calls == [("1/N", slot, 0.5)]
    calls.clear()
    truth, by_trickle, service = bench.truths(bench.replace(d, law="exp"), slot, outside, 2_000)
    assert [(name, overlap) for name, _, overlap in calls] == [("1/N", 0.5), ("1/N", 0.5)]
    assert calls[0][1] is slot and calls[1][1] is service and len(service) == 2_000
    calls.clear()
    r = bench.TruthResult(d, d.saturation_rps, 90.0, 90.0, "", 20.0, 1.0, 380.0, 10.0,
                          instance_share=[0.6, 0.4])  # fmt: skip
    bench.judge_split(r, slot, outside, 2_000)
    assert r.truth_split == 80.0 and calls == [("split", slot, 0.5)]


def test_keepalive_closes_are_recorded_and_one_counted_as_an_error_fails(
    bench: ModuleType, tmp_path: Path
) -> None:
    import json

    from recommender import runs

    d = bench.Draw(1, 1, 4, 20.0, "exp", 0.95, 100.0, 5, keepalive_s=1.5, overlap=0.2)

    def read(totals: dict[str, Any] | None) -> Any:
        run_dir = tmp_path / f"run-{len(list(tmp_path.iterdir()))}"
        run_dir.mkdir()
        meta: dict[str, Any] = {"stages": [{"rps": 10.0}], "search": {"decisions": []}}
        if totals is not None:
            meta["totals"] = totals
        (run_dir / runs.RUN_FILE).write_text(json.dumps(meta))
        doc = {"capacity": {"rps_per_instance": 150.0, "interval_rps_per_instance": [140, 160]},
               "verdict": "pass", "run_dir": str(run_dir)}
        r = bench.TruthResult(d, 190.0, 150.0, 150.0, "", 20.0, 1.0, 247.0, 10.0)
        bench._read_run(r, doc, tmp_path)
        return r

    clean = read({"requests": 900, "errors": 1, "reconnects": 7,
                  "errors_by_kind": {"HTTP 503": 1}})  # fmt: skip
    assert (clean.reconnects, clean.close_errors) == (7, 0)
    assert "7 sent again" in clean.line() and "FAILED" not in clean.line()
    none = read({"requests": 900, "errors": 0, "errors_by_kind": {}})
    assert (none.reconnects, none.close_errors) == (0, 0)
    assert read(None).reconnects is None  # no totals: nothing recorded
    bad = read({"requests": 900, "errors": 3, "reconnects": 2,
                "errors_by_kind": {"HTTPConnectionClosed": 2, "ConnectionResetError": 1}})
    assert (bad.reconnects, bad.close_errors) == (2, 3)
    assert "FAILED: 3 connection closes counted as errors" in bad.line()
    s = bench.summary([clean, none, bad])
    assert (s["with_habits"], s["reconnects"], s["runs_with_close_errors"]) == (3, 9, 1)
    assert ("3 with real server habits: 9 sends made again after a keep-alive close; 1 runs "
            "counted a connection close as an error (FAILED") in bench.format_summary(s)
    table = bench.table([clean, bad])
    assert "| exp keep-alive 1.5s overlap 0.2 |" in table
    assert ", 2 sent again, FAILED: 3 connection closes counted as errors |" in table
    # Without habits or closes the summary reads as before.
    plain = bench.TruthResult(bench.Draw(1, 1, 4, 20.0, "exp", 0.95, 100.0, 5), 200.0, 150.0,
                              150.0, "", 20.0, 1.0, 260.0, 10.0)  # fmt: skip
    assert bench.format_summary(bench.summary([plain])).endswith("0 without a result")
