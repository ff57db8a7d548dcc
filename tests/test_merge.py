from __future__ import annotations

from typing import Any

import numpy as np

from recommender import histograms
from recommender.loadgen.merge import SecondMerger


def record(second: int, latencies: list[float], errors: int = 0, cpu: float = 10) -> dict[str, Any]:
    hist = histograms.new()
    for v in latencies:
        histograms.record_ms(hist, v)
    enc = histograms.encode(hist) if latencies else ""
    return {"second": second, "stage": 0, "requests": len(latencies) + errors,
            "ok": len(latencies), "errors": {"HTTP 503": errors} if errors else {},
            "latency_us": enc, "latency_co_us": enc, "cpu_percent": cpu}  # fmt: skip


def test_merged_seconds_are_the_exact_sum_of_the_workers() -> None:
    rng = np.random.default_rng(0)
    a = [list(rng.exponential(20, 50)) for _ in range(3)]
    b = [list(rng.exponential(40, 30)) for _ in range(3)]
    m = SecondMerger(expected=2)
    m.add("w1", [record(s, a[s]) for s in range(3)], upto=2)
    assert m.final() == []  # nothing yet: w2 has not reported...
    m.add("w2", [record(0, b[0], errors=2, cpu=95)], upto=0)
    out = m.final()
    assert [r["second"] for r in out] == [0]  # ...and w2 has flushed second 0 only
    assert out[0]["requests"] == 50 + 32 and out[0]["ok"] == 80
    assert out[0]["errors"] == {"HTTP 503": 2} and out[0]["cpu_percent"] == 95
    both = histograms.new()
    for v in a[0] + b[0]:
        histograms.record_ms(both, v)
    merged = histograms.decode(out[0]["latency_us"])
    assert histograms.percentile_ms(merged, 0.95) == histograms.percentile_ms(both, 0.95)
    m.add("w2", [record(s, b[s]) for s in (1, 2)], upto=2)
    assert [r["second"] for r in m.final()] == [1, 2]
    assert m.workers["w1"].requests + m.workers["w2"].requests == 150 + 92


def test_a_lost_worker_no_longer_holds_seconds_back() -> None:
    m = SecondMerger(expected=2)
    m.add("w1", [record(0, [10.0])], upto=5)
    m.add("w2", [record(0, [10.0])], upto=0)
    assert [r["second"] for r in m.final()] == [0]
    m.add("w1", [record(s, [10.0]) for s in (1, 2)], upto=5)
    assert m.final() == []
    m.lose("w2")
    assert [r["second"] for r in m.final()] == [1, 2]
    assert m.workers["w2"].lost_at == 0
    m.add("w2", [record(1, [99.0])], upto=1)  # too late: second 1 is final
    assert m.final(everything=True) == []
