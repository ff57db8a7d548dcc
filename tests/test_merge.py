from __future__ import annotations

from typing import Any

import numpy as np
from hdrh.histogram import HdrHistogram

from recommender import histograms
from recommender.loadgen.merge import SecondMerger

# The coordinated-omission-corrected latency (from the intended send time) is the service
# latency plus a queueing delay: distinct data, so a merge that takes one field for the
# other is seen.
CO_DELAY_MS = 37.0
LAG_MS, WAIT_MS = 3.0, 11.0  # each request's lateness: its own and the wait for a user


def hist_of(latencies: list[float]) -> HdrHistogram:
    hist = histograms.new()
    for v in latencies:
        histograms.record_ms(hist, v)
    return hist


def record(second: int, latencies: list[float], errors: int = 0, cpu: float = 10) -> dict[str, Any]:
    enc = histograms.encode(hist_of(latencies)) if latencies else ""
    co = histograms.encode(hist_of([v + CO_DELAY_MS for v in latencies])) if latencies else ""
    sent = len(latencies) + errors
    lag = histograms.encode(hist_of([LAG_MS + i for i in range(sent)])) if sent else ""
    wait = histograms.encode(hist_of([WAIT_MS + i for i in range(sent)])) if sent else ""
    return {"second": second, "stage": 0, "requests": sent,
            "ok": len(latencies), "errors": {"HTTP 503": errors} if errors else {},
            "latency_us": enc, "latency_co_us": co, "cpu_percent": cpu,
            **({"lag_us": lag, "wait_us": wait} if sent else {})}  # fmt: skip


def counts(hist: HdrHistogram) -> dict[int, int]:
    """Every bucket of a histogram: equal dicts mean equal histograms, all percentiles."""
    return {i.value_iterated_to: i.count_at_value_iterated_to for i in hist.get_recorded_iterator()}


def assert_exact_sum(merged: dict[str, Any], *parts: list[float]) -> None:
    values = [v for p in parts for v in p]
    plain = histograms.decode(merged["latency_us"])
    co = histograms.decode(merged["latency_co_us"])
    assert counts(plain) == counts(hist_of(values))
    assert counts(co) == counts(hist_of([v + CO_DELAY_MS for v in values]))
    assert counts(co) != counts(plain)  # the test data tell the two fields apart


def assert_lateness_summed(merged: dict[str, Any], *records: dict[str, Any]) -> None:
    """The lateness histograms (every request sent, errors too) add like the latencies."""
    for key in ("lag_us", "wait_us"):
        total = histograms.merge(r[key] for r in records)
        assert counts(histograms.decode(merged[key])) == counts(total)
        assert total.get_total_count() == merged["requests"]
    assert merged["lag_us"] != merged["wait_us"]  # the test data tell the two apart


def test_merged_seconds_are_the_exact_sum_of_the_workers() -> None:
    rng = np.random.default_rng(0)
    a = [list(rng.exponential(20, 50)) for _ in range(3)]
    b = [list(rng.exponential(40, 30)) for _ in range(3)]
    m = SecondMerger(expected=2)
    m.add("w1", [record(s, a[s]) for s in range(3)], upto=2)
    assert m.final() == []  # nothing yet: w2 has not reported...
    w2_first = record(0, b[0], errors=2, cpu=95)
    m.add("w2", [w2_first], upto=0)
    out = m.final()
    assert [r["second"] for r in out] == [0]  # ...and w2 has flushed second 0 only
    assert out[0]["requests"] == 50 + 32 and out[0]["ok"] == 80
    assert out[0]["errors"] == {"HTTP 503": 2} and out[0]["cpu_percent"] == 95
    assert_exact_sum(out[0], a[0], b[0])
    assert_lateness_summed(out[0], record(0, a[0]), w2_first)
    m.add("w2", [record(s, b[s]) for s in (1, 2)], upto=2)
    rest = m.final()
    assert [r["second"] for r in rest] == [1, 2]
    for r in rest:
        assert r["requests"] == r["ok"] == 80 and r["errors"] == {}
        assert_exact_sum(r, a[r["second"]], b[r["second"]])
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


def test_merged_records_keep_stage_workers_cpu_and_tallies() -> None:
    """Each field of a merged record and of the workers' tallies (found by mutation testing:
    TESTING.md)."""
    m = SecondMerger(expected=2)
    r1 = {**record(0, [10.0, 20.0], errors=1, cpu=30.0), "stage": 3}
    r2 = {**record(0, [30.0], cpu=70.0), "stage": 3}
    m.add("w1", [r1], upto=0)
    m.add("w2", [r2], upto=0)
    (out,) = m.final()
    assert (out["stage"], out["workers"], out["cpu_percent"]) == (3, 2, 70.0)
    assert (m.workers["w1"].requests, m.workers["w1"].ok, m.workers["w1"].cpu_max) == (3, 2, 30.0)
    assert (m.workers["w2"].requests, m.workers["w2"].ok, m.workers["w2"].cpu_max) == (1, 1, 70.0)
    m.add("w1", [record(1, [10.0], cpu=0.5)], upto=1)
    assert m.workers["w1"].cpu_max == 30.0 and m.workers["w1"].ok == 3
    # A second without any CPU sample merges with cpu_percent None and no workers counted.
    no_cpu = {**record(1, [10.0]), "cpu_percent": None}
    m.add("w2", [no_cpu], upto=1)
    (out,) = m.final()
    assert out["second"] == 1 and out["cpu_percent"] == 0.5 and out["workers"] == 1
    m.add("w1", [{**record(2, [10.0]), "cpu_percent": None}], upto=2)
    m.add("w2", [], upto=2)
    (out,) = m.final()
    assert out["cpu_percent"] is None and out["workers"] == 0


def test_late_records_are_dropped_one_by_one() -> None:
    """A batch whose first record is for a second already final still merges the rest; the
    final second itself counts as late. Losing an unknown worker is a no-op."""
    m = SecondMerger(expected=1)
    m.add("w1", [record(0, [10.0], cpu=0.5), record(1, [10.0], cpu=0.25)], upto=1)
    assert m.workers["w1"].cpu_max == 0.5
    assert [r["second"] for r in m.final()] == [0, 1]
    m.add("w1", [record(1, [99.0]), record(2, [10.0, 11.0])], upto=2)
    (out,) = m.final()
    assert (out["second"], out["requests"]) == (2, 2)
    m.lose("nobody")
    assert "nobody" not in m.workers


def streamed(latencies: list[float], ttft: list[float], itl: list[float], tokens: int,
             good: int, error_types: dict[str, int] | None = None) -> dict[str, Any]:  # fmt: skip
    """A streamed second (recorder.SecondCounts.to_record's fields); TTFT from the intended
    send is 5 ms later than from the actual one."""
    r = record(0, latencies, errors=sum((error_types or {}).values()))
    r.update(streamed=len(ttft), tokens_out=tokens, tokens_in=3 * tokens, good=good,
             ttft_us=histograms.encode(hist_of(ttft)) if ttft else "",
             ttft_co_us=histograms.encode(hist_of([v + 5.0 for v in ttft])) if ttft else "",
             itl_us=histograms.encode(hist_of(itl)) if itl else "")  # fmt: skip
    if error_types is not None:
        r["errors"] = {"HTTP 424": sum(error_types.values())}
        r["error_types"] = error_types
    return r


def test_streamed_fields_and_error_types_are_summed_too() -> None:
    m = SecondMerger(expected=3)
    m.add("w1", [streamed([30.0, 40.0], [10.0, 12.0], [2.0, 3.0, 4.0], 7, 2,
                          {"ModelError": 2, "ThrottlingException": 1})], upto=0)  # fmt: skip
    m.add("w2", [streamed([50.0], [20.0], [], 5, 1, {"ModelError": 4})], upto=0)
    m.add("w3", [streamed([60.0], [30.0], [6.0], 11, 0)], upto=0)  # an older worker: no types
    (out,) = m.final()
    assert (out["streamed"], out["tokens_out"], out["tokens_in"], out["good"]) == (4, 23, 69, 3)
    assert out["error_types"] == {"ModelError": 6, "ThrottlingException": 1}
    assert out["errors"] == {"HTTP 424": 7}
    assert counts(histograms.decode(out["ttft_us"])) == counts(hist_of([10, 12, 20, 30]))
    assert counts(histograms.decode(out["ttft_co_us"])) == counts(hist_of([15, 17, 25, 35]))
    assert counts(histograms.decode(out["itl_us"])) == counts(hist_of([2, 3, 4, 6]))
    assert_exact_sum(out, [30.0, 40.0], [50.0], [60.0])


def test_reconnects_are_summed_and_kept_apart_from_the_errors() -> None:
    # Sends made again after a kept-alive connection closed (recommender.loadgen.users):
    # summed across workers, never errors; a line without any carries no count, as before.
    m = SecondMerger(expected=3)
    m.add("w1", [{**record(0, [10.0], errors=1), "reconnects": 2}], upto=0)
    m.add("w2", [{**record(0, [12.0]), "reconnects": 3}], upto=0)
    m.add("w3", [record(0, [14.0])], upto=0)
    (merged,) = m.final()
    assert merged["reconnects"] == 5
    assert merged["requests"] == 4 and merged["ok"] == 3 and merged["errors"] == {"HTTP 503": 1}
    m.add("w1", [record(1, [10.0])], upto=1)
    m.add("w2", [record(1, [10.0])], upto=1)
    m.add("w3", [record(1, [10.0])], upto=1)
    (quiet,) = m.final()
    assert "reconnects" not in quiet
