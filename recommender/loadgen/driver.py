"""Turns a stage controller into intended send times, and feeds it what each stage measured.

Plain Python (no Locust, no gevent): the harness calls `due(now)` from its dispatcher
greenlet and `on_second(record)` for every second the recorder flushes; tests call them
with a fake clock. Stage boundaries are crossed only when the clock reaches them, so a
decision always sees the whole stage.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from recommender import histograms
from recommender.plan import Slo
from recommender.search import Controller, StageSummary, design_effect

ABORT_WINDOW = 3  # seconds of the running stage the abort check looks at


# The histograms an SLO term can be judged on (recommender.plan.METRIC_HISTOGRAMS); the
# streaming ones are in a second's record only when it had streamed requests.
_JUDGED = ("latency_co_us", "ttft_co_us", "itl_us")


@dataclass
class _Acc:
    requests: int = 0
    ok: int = 0
    seconds: int = 0
    hists: dict[str, HdrHistogram] = field(default_factory=dict)
    cpu_max: float | None = None
    # Per second: successes, and per percentile term (by key) the observations within its
    # limit and, for terms on another histogram, their count (for the later half).
    parts: list[tuple[int, dict[str, int], dict[str, int]]] = field(default_factory=list)

    @property
    def hist(self) -> HdrHistogram:
        return self.histogram("latency_co_us")

    def histogram(self, key: str) -> HdrHistogram:
        h = self.hists.get(key)
        if h is None:
            h = self.hists[key] = histograms.new()
        return h

    def add(self, record: dict[str, Any], slo: Slo | None = None) -> None:
        self.requests += record["requests"]
        self.ok += record["ok"]
        self.seconds += 1
        decoded = {}
        for key in _JUDGED:
            if record.get(key):
                decoded[key] = h = histograms.decode(record[key])
                self.histogram(key).add(h)
        # This second's share of each percentile term, for the later half (settled?).
        within: dict[str, int] = {}
        counts: dict[str, int] = {}
        for t in slo.terms if slo is not None else ():
            if t.quantile is None or t.quantile >= 1:
                continue
            h = decoded.get(t.histogram)
            within[t.key] = 0 if h is None else histograms.count_at_or_below_ms(h, t.limit_ms)
            if t.histogram != "latency_co_us":
                counts[t.key] = 0 if h is None else int(h.get_total_count())
        self.parts.append((int(record["ok"]), within, counts))
        if record.get("lag_us"):
            self.histogram("lag_us").add(histograms.decode(record["lag_us"]))
        cpu = record.get("cpu_percent")
        if cpu is not None:
            self.cpu_max = cpu if self.cpu_max is None else max(self.cpu_max, cpu)


def summarize(acc: _Acc, rps: float, slo: Slo, arrivals: str = "uniform") -> StageSummary:
    hists = {t.key: acc.histogram(t.histogram) for t in slo.terms}
    late = acc.parts[len(acc.parts) // 2 :] if len(acc.parts) >= 2 else []
    late_within: dict[str, int] = {}
    late_counts: dict[str, int] = {}
    for _, w, c in late:
        for k, v in w.items():
            late_within[k] = late_within.get(k, 0) + v
        for k, v in c.items():
            late_counts[k] = late_counts.get(k, 0) + v
    return StageSummary(
        rps=rps,
        seconds=acc.seconds,
        requests=acc.requests,
        successes=acc.ok,
        within={t.key: histograms.count_at_or_below_ms(hists[t.key], t.limit_ms)
                for t in slo.terms},  # fmt: skip
        stat_ms={t.key: histograms.stat_ms(hists[t.key], t.stat) for t in slo.terms},
        mean_ms=histograms.mean_ms(acc.hist),
        stddev_ms=histograms.stddev_ms(acc.hist),
        cpu_percent_max=acc.cpu_max,
        counts={t.key: int(h.get_total_count()) for t in slo.terms
                if t.histogram != "latency_co_us" for h in (hists[t.key],)},  # fmt: skip
        arrivals=arrivals,
        late_successes=sum(ok for ok, _, _ in late),
        late_within=late_within,
        late_counts=late_counts,
        design_effect=design_effects(acc.parts),
        lag_p95_ms=histograms.percentile_ms(acc.hists["lag_us"], 0.95)
        if "lag_us" in acc.hists else None,
    )


def design_effects(parts: list[tuple[int, dict[str, int], dict[str, int]]]) -> dict[str, float]:
    """Per percentile term: its design effect over the stage's seconds as blocks
    (`recommender.search.design_effect`)."""
    keys = {k for _, w, _ in parts for k in w}
    return {key: design_effect([c.get(key, ok) for ok, _, c in parts],
                               [w.get(key, 0) for _, w, _ in parts]) for key in keys}  # fmt: skip


class Driver:
    """`t0` is the epoch second the run starts; times given to the controller are relative."""

    def __init__(
        self,
        controller: Controller,
        t0: float,
        arrivals: str = "uniform",
        share: float = 1.0,
        seed: int | None = None,
        flush: Callable[[float], None] | None = None,
        on_decision: Callable[[], None] | None = None,
    ) -> None:
        self.controller = controller
        self.t0 = t0
        self.arrivals = arrivals
        self.share = share
        self.flush = flush
        self.on_decision = on_decision
        self._rng = random.Random(seed)
        self._k = 0  # tickets issued in the running stage
        self._k_stage = 0  # the stage _k counts for
        self._t = 0.0  # last Poisson arrival (relative)
        self._next: float | None = None  # relative time of the next ticket
        self._measured: dict[int, _Acc] = {}
        self._recent: deque[dict[str, Any]] = deque(maxlen=ABORT_WINDOW)
        self._aborted: str | None = None

    @property
    def done(self) -> bool:
        return self.controller.done

    def stage_at(self, second: int) -> int | None:
        return self.controller.stage_at(second + 0.5)

    def summary(self, index: int) -> StageSummary:
        rps = self.controller.stages[index][0]
        return summarize(self._measured.get(index, _Acc()), rps, self.controller.slo,
                         self.arrivals)  # fmt: skip

    def on_second(self, record: dict[str, Any]) -> None:
        """A flushed second: count it toward its stage's measurement and check for abort."""
        s = int(record["second"])
        index = self.controller.stage_at(s + 0.5)
        if index is None:
            return
        rps, start, end = self.controller.stages[index]
        if s >= start + self.controller.warmup_seconds and s + 1 <= end:
            self._measured.setdefault(index, _Acc()).add(record, self.controller.slo)
        current = self.controller.current()
        if current is None or current[0] != index or self._aborted:
            return
        if s + 1 < end and self.controller.look(s + 1.0, self.summary(index)):
            self._next = None  # drawn for the stage that just ended
            return
        self._recent.append(record)
        if len(self._recent) < ABORT_WINDOW:
            return  # one slow second (a hiccup, the last stage's backlog) is no reason
        window = _Acc()
        for r in self._recent:
            window.add(r)
        reason = self.controller.abort(
            s + 1.0, summarize(window, rps, self.controller.slo, self.arrivals)
        )
        if reason is not None:
            self._aborted = reason
            self._next = None

    def _advance_stage(self, now_rel: float) -> None:
        cur = self.controller.current()
        assert cur is not None
        if self.flush is not None:
            self.flush(self.t0 + now_rel)
        index, _, _, end = cur
        aborted, self._aborted = self._aborted, None
        self.controller.advance(end, self.summary(index), aborted)
        self._recent.clear()
        if self.on_decision is not None:
            self.on_decision()

    def advance_to(self, now: float) -> None:
        """Cross every stage boundary the clock has passed, without issuing tickets (the
        master of several workers decides stages; the workers send)."""
        while (cur := self.controller.current()) is not None and now - self.t0 >= cur[3]:
            self._advance_stage(now - self.t0)

    def _peek(self, now_rel: float) -> float | None:
        """Relative time of the next ticket; crosses stage boundaries the clock has passed."""
        while self._next is None:
            cur = self.controller.current()
            if cur is None:
                return None
            if cur[0] != self._k_stage:
                self._k, self._k_stage = 0, cur[0]
            rate, start, end = cur[1] * self.share, cur[2], cur[3]
            if rate <= 0:  # a rest: no tickets until it ends
                if now_rel < end:
                    return end
                self._advance_stage(now_rel)
                continue
            if self.arrivals == "poisson":
                t = max(self._t, start) + self._rng.expovariate(rate)
            else:
                t = start + self._k / rate  # from the stage start: no drift, exact counts
            if t < end:
                self._next = t
            elif now_rel >= end:
                self._advance_stage(now_rel)
            else:
                return end  # nothing more in this stage; decide when the clock gets there
        return self._next

    def due(self, now: float) -> list[tuple[float, int]]:
        """Tickets (epoch intended time, stage) due by `now`."""
        now_rel = now - self.t0
        out: list[tuple[float, int]] = []
        while True:
            t = self._peek(now_rel)
            if t is None or t > now_rel or self._next is None:
                return out
            index = len(self.controller.stages) - 1
            out.append((self.t0 + t, index))
            self._k += 1
            self._t = t
            self._next = None

    def next_time(self, now: float) -> float | None:
        """Epoch time of the next event (ticket or stage boundary), None when done."""
        t = self._peek(now - self.t0)
        return None if t is None else self.t0 + t
