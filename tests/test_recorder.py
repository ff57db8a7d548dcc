from __future__ import annotations

from typing import Any

from recommender import histograms
from recommender.loadgen.recorder import Recorder, error_kind
from recommender.plan import RampPlan, Stage


def make() -> tuple[Recorder, list[dict[str, Any]]]:
    out: list[dict[str, Any]] = []
    plan = RampPlan((Stage(10, 2), Stage(20, 2)), warmup_seconds=0.5)
    def stage_of(second: int) -> int | None:
        return next((i for i, (a, b) in enumerate(plan.stage_bounds()) if a <= second < b), None)

    return Recorder(100.0, stage_of, out.append, lambda: 12.5), out


def test_requests_fold_into_the_second_they_complete() -> None:
    rec, out = make()
    rec.record(100.2, 10.0, 100.19, None)
    rec.record(100.9, 20.0, 100.88, None)
    rec.record(101.1, 5.0, None, "HTTP 503", error_type="ServiceUnavailable")
    rec.record(101.2, 5.0, None, "HTTP 503")  # a plain 503, no type
    assert rec.flush(101.5) == 1  # second 1 is still open
    assert out[0]["second"] == 0 and out[0]["requests"] == 2 and out[0]["ok"] == 2
    assert out[0]["stage"] == 0 and out[0]["cpu_percent"] == 12.5
    rec.flush()
    assert out[1] == {
        "second": 1, "stage": 0, "requests": 2, "ok": 0, "errors": {"HTTP 503": 2},
        "error_types": {"ServiceUnavailable": 1},
        "latency_us": "", "latency_co_us": "", "cpu_percent": 12.5,
    }  # fmt: skip


def test_latency_from_intended_send_includes_the_delay() -> None:
    rec, out = make()
    # Sent 250 ms late (no free user), answered in 30 ms.
    rec.record(102.53, 30.0, 102.25, None)
    rec.flush()
    actual = histograms.decode(out[0]["latency_us"])
    corrected = histograms.decode(out[0]["latency_co_us"])
    assert abs(histograms.percentile_ms(actual, 1.0) - 30.0) < 0.3  # type: ignore[operator]
    assert abs(histograms.percentile_ms(corrected, 1.0) - 280.0) < 2.8  # type: ignore[operator]
    assert out[0]["stage"] == 1


def test_memory_stays_bounded_by_open_seconds() -> None:
    rec, out = make()
    for i in range(5000):
        t = 100.0 + i * 0.01
        rec.record(t, 1.0, t, None)
        rec.flush(t)
        assert len(rec._open) <= 2
    rec.flush()
    assert sum(r["requests"] for r in out) == 5000


def test_error_kind() -> None:
    assert error_kind(None, 200) is None
    assert error_kind(RuntimeError("x"), 503) == "HTTP 503"
    assert error_kind(ConnectionRefusedError(), None) == "ConnectionRefusedError"


def test_the_sends_lateness_is_told_apart_from_the_wait_for_a_free_user() -> None:
    """Due at 100.10: a user free since 100.05 sends at 100.13, 30 ms late (the
    generator's own: its loop ran late); a user free only at 100.30 sends at 100.31, 200 ms
    after its time: 200 ms waiting for a free user (every one busy with an answer), 10 ms
    its own. Both lateness histograms are kept for every request sent, errors too."""
    rec, out = make()
    rec.record(100.16, 30.0, 100.10, None, free=100.05)  # sent at 100.13
    rec.record(100.35, 40.0, 100.10, "HTTP 503", free=100.30)  # sent at 100.31
    rec.record(100.40, 20.0, None, None)  # closed loop or a custom sender: no intended time
    rec.flush()
    (record,) = out
    lag, wait = histograms.decode(record["lag_us"]), histograms.decode(record["wait_us"])
    assert lag.get_total_count() == wait.get_total_count() == 2
    assert abs(histograms.percentile_ms(lag, 1.0) - 30.0) < 0.4  # type: ignore[operator]
    assert abs(histograms.percentile_ms(lag, 0.5) - 10.0) < 0.2  # type: ignore[operator]
    assert abs(histograms.percentile_ms(wait, 1.0) - 200.0) < 2.0  # type: ignore[operator]
    assert histograms.percentile_ms(wait, 0.5) < 0.01  # type: ignore[operator]
    # Without `free` (an older user class), all of the lateness is the generator's.
    rec.record(101.50, 30.0, 101.20, None)
    rec.flush()
    lag = histograms.decode(out[1]["lag_us"])
    assert abs(histograms.percentile_ms(lag, 1.0) - 270.0) < 2.7  # type: ignore[operator]
