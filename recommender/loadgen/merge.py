"""Merging the per-second records of several load-generator workers (pure).

Each worker folds its own requests into per-second records (see recorder.py) and sends
them to the master with `upto`, the last second it has flushed. A second is final once
every live worker has flushed past it; its merged record is the exact sum of the workers'
(counts add; HdrHistograms add bucket by bucket), so the master's data are what the
workers measured, no more and no less. A worker the master declares lost stops holding
seconds back; what it sent before is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from recommender import histograms
from recommender.loadgen.recorder import SecondCounts


@dataclass
class _Pending(SecondCounts):
    cpu: dict[str, float] = field(default_factory=dict)  # by worker
    stage: int | None = None


@dataclass
class WorkerTally:
    """What one worker has sent: for the run's generator report and the exact-sum check."""

    requests: int = 0
    ok: int = 0
    upto: int = -1
    cpu_max: float | None = None
    lost_at: int | None = None  # the second after which the worker stopped reporting


class SecondMerger:
    """`expected`: the workers the run starts with; no second is final before each has
    reported (or been lost)."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self._pending: dict[int, _Pending] = {}
        self.workers: dict[str, WorkerTally] = {}
        self.final_upto = -1

    def add(self, worker: str, records: list[dict[str, Any]], upto: int) -> None:
        tally = self.workers.setdefault(worker, WorkerTally())
        for r in records:
            second = int(r["second"])
            if second <= self.final_upto:
                continue  # arrived after the second was final (a lost worker came back)
            p = self._pending.setdefault(second, _Pending())
            p.requests += r["requests"]
            p.ok += r["ok"]
            p.errors.update(r["errors"])
            p.error_types.update(r.get("error_types") or {})
            p.reconnects += r.get("reconnects", 0)
            if r["latency_us"]:
                p.hist.add(histograms.decode(r["latency_us"]))
                p.hist_co.add(histograms.decode(r["latency_co_us"]))
            if r.get("lag_us"):
                p.lag.add(histograms.decode(r["lag_us"]))
                p.wait.add(histograms.decode(r["wait_us"]))
            if "tokens_in" in r:  # a streamed run's fields (recorder.SecondCounts)
                p.streamed += r["streamed"]
                p.tokens_out += r["tokens_out"]
                p.tokens_in += r["tokens_in"]
                p.good += r["good"]
                for key, hist in (("ttft_us", p.ttft), ("ttft_co_us", p.ttft_co),
                                  ("itl_us", p.itl)):  # fmt: skip
                    if r[key]:
                        hist.add(histograms.decode(r[key]))
            if r.get("cpu_percent") is not None:
                p.cpu[worker] = r["cpu_percent"]
                tally.cpu_max = max(tally.cpu_max or 0.0, r["cpu_percent"])
            p.stage = r.get("stage")
            tally.requests += r["requests"]
            tally.ok += r["ok"]
        tally.upto = max(tally.upto, upto)

    def lose(self, worker: str) -> None:
        tally = self.workers.get(worker)
        if tally is not None and tally.lost_at is None:
            tally.lost_at = tally.upto

    def final(self, everything: bool = False) -> list[dict[str, Any]]:
        """Merged records of the seconds every live worker has flushed past (all pending
        seconds with `everything`), in order, each returned once."""
        live = [t.upto for t in self.workers.values() if t.lost_at is None]
        if everything:
            limit = max(self._pending, default=self.final_upto)
        elif live and len(self.workers) >= self.expected:
            limit = min(live)
        else:
            return []
        out = []
        for second in sorted(s for s in self._pending if s <= limit):
            p = self._pending.pop(second)
            # The busiest worker's CPU: one saturated generator distorts the whole second.
            record = p.to_record(second, p.stage, max(p.cpu.values()) if p.cpu else None)
            out.append({**record, "workers": len(p.cpu)})
        self.final_upto = max(self.final_upto, limit)
        return out
