"""What the load test is doing right now, read from the run directory once a second.

The Locust process already writes one line per second to latency.jsonl (flushed at once)
and the stages as played to search.json; the runner reads their new parts here, in its own
process, so watching a run adds nothing to Locust's hot path. A `Snapshot` is what a live
display needs: the stage and how far into it, time left, offered and achieved rate, the
stage's latency so far (coordinated-omission corrected, as the SLO is judged), its errors
by kind, the generator's CPU, and whether the stage is within the SLO so far.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recommender import histograms, runs
from recommender.analysis.stages import score
from recommender.plan import RampPlan, SearchSettings, Slo
from recommender.search import generator_late

ACHIEVED_WINDOW = 3  # seconds: achieved rate over the last few whole seconds
# Upper bounds (ms) of the run-wide latency histogram a metrics exporter publishes.
BUCKETS_MS = (5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0)


@dataclass(frozen=True)
class Snapshot:
    elapsed: float  # seconds since the run started
    stage: int  # 0-based, counting rests (as run.json's stages do)
    stages_planned: int | None  # a fixed ramp's number of stages; None for the search
    stage_elapsed: float
    stage_seconds: float
    left_seconds: float | None  # a fixed ramp: what is left of it; the search: of its budget
    offered_rps: float
    achieved_rps: float | None
    requests: int  # this stage's, so far
    p50_ms: float | None
    p95_ms: float | None
    errors: dict[str, int]  # this stage's, by kind
    cpu_percent: float | None
    within_slo: bool | None  # None before the stage has a completed request
    # The whole run so far, for a metrics exporter (Prometheus' counters only grow).
    total_requests: int = 0
    total_errors: dict[str, int] = field(default_factory=dict)
    latency_buckets: tuple[int, ...] = ()  # successes at or below each BUCKETS_MS bound
    latency_count: int = 0
    latency_sum_ms: float = 0.0
    in_flight: float | None = None  # --control concurrency: the stage's requests in flight
    # The generator's own lateness this stage (p95 ms, recorder `lag_us`), and whether it
    # passes what the search allows (recommender.search.generator_late).
    lag_p95_ms: float | None = None
    late: bool = False


@dataclass
class _Stage:
    """The stage now playing, accumulated second by second."""

    index: int
    requests: int = 0
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    latency: Any = field(default_factory=histograms.new)  # corrected, microseconds
    lag: Any = field(default_factory=histograms.new)  # the generator's lateness
    # A streamed run's TTFT (corrected) and ITL histograms, for its token-level SLO terms.
    tokens: dict[str, Any] = field(default_factory=dict)

    def histogram(self, key: str) -> Any:
        if key == "latency_co_us":
            return self.latency
        if key not in self.tokens:
            self.tokens[key] = histograms.new()
        return self.tokens[key]


class Watcher:
    """Reads the run directory's new lines each call; `snapshot()` is None until the run
    has started (the Locust process writes search.json when its clock starts)."""

    def __init__(self, run_dir: Path, plan: RampPlan | SearchSettings, slo: Slo) -> None:
        self.run_dir = run_dir
        self.plan = plan
        self.slo = slo
        self._offset = 0
        self._partial = b""
        self._stage: _Stage | None = None
        self._recent: list[dict[str, Any]] = []  # the last few seconds' records
        self._total = _Stage(-1)  # the whole run, for the counters

    def _new_records(self) -> list[dict[str, Any]]:
        path = self.run_dir / runs.LATENCY_FILE
        try:
            with path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()  # a line still being written waits for the next call
        return [json.loads(line) for line in lines if line.strip()]

    def _add(self, record: dict[str, Any]) -> None:
        encoded = record.get("latency_co_us")
        latency = histograms.decode(encoded) if encoded else None
        # A second outside every stage (in flight after the plan ended) has stage null: it
        # counts for the run, not for a stage.
        accumulate = [self._total]
        if record.get("stage") is not None:
            index = int(record["stage"])
            if self._stage is None or self._stage.index != index:
                self._stage = _Stage(index)
            accumulate.append(self._stage)
        streamed = [(key, histograms.decode(record[key])) for key in ("ttft_co_us", "itl_us")
                    if record.get(key)]  # fmt: skip
        for s in accumulate:
            s.requests += int(record["requests"])
            s.ok += int(record["ok"])
            s.errors.update(record.get("errors") or {})
            if latency is not None:
                s.latency.add(latency)
            if s is not self._total and record.get("lag_us"):
                s.lag.add(histograms.decode(record["lag_us"]))
            if s is not self._total:
                for key, hist in streamed:
                    s.histogram(key).add(hist)
        self._recent = [*self._recent, record][-ACHIEVED_WINDOW:]

    def snapshot(self) -> Snapshot | None:
        for record in self._new_records():
            self._add(record)
        try:
            search = json.loads((self.run_dir / runs.SEARCH_FILE).read_text())
            t0 = float(json.loads((self.run_dir / runs.GENERATOR_FILE).read_text())["t0"])
        except (FileNotFoundError, json.JSONDecodeError, KeyError, ValueError):
            return None  # not started yet, or a file mid-replace: next second
        played = search.get("stages") or []
        if not played:
            return None
        elapsed = max(0.0, time.time() - t0)
        current = next((i for i, st in enumerate(played)
                        if st["start"] <= elapsed < st["end"]), len(played) - 1)  # fmt: skip
        st = played[current]
        s = self._stage if self._stage is not None and self._stage.index == current else None
        if isinstance(self.plan, RampPlan):
            planned: int | None = len(self.plan.stages)
            left: float | None = max(0.0, self.plan.duration - elapsed)
        else:
            planned, left = None, max(0.0, self.plan.max_duration - elapsed)
        recent = [r for r in self._recent if r.get("stage") == current]
        achieved = sum(r["requests"] for r in recent) / len(recent) if recent else None
        cpus = [float(r["cpu_percent"]) for r in self._recent if r.get("cpu_percent") is not None]
        p50 = p95 = None
        within = None
        if s is not None and s.ok:
            p50 = histograms.percentile_ms(s.latency, 0.50)
            p95 = histograms.percentile_ms(s.latency, 0.95)
            values = {t.key: histograms.stat_ms(s.histogram(t.histogram), t.stat)
                      for t in self.slo.terms}  # fmt: skip
            error_rate = (s.requests - s.ok) / s.requests if s.requests else 0.0
            within = score(values, error_rate, self.slo, s.ok) <= 1.0
        lag = histograms.percentile_ms(s.lag, 0.95) if s is not None else None
        return Snapshot(
            elapsed=elapsed,
            stage=current,
            stages_planned=planned,
            stage_elapsed=max(0.0, elapsed - float(st["start"])),
            stage_seconds=float(st["end"]) - float(st["start"]),
            left_seconds=left,
            offered_rps=float(st["rps"]),
            achieved_rps=achieved,
            requests=s.requests if s else 0,
            p50_ms=p50,
            p95_ms=p95,
            errors=dict(s.errors) if s else {},
            cpu_percent=cpus[-1] if cpus else None,
            within_slo=within,
            total_requests=self._total.requests,
            total_errors=dict(self._total.errors),
            in_flight=(float(st["rps"]) if getattr(self.plan, "control", "rate") == "concurrency"
                       else None),
            latency_buckets=tuple(histograms.count_at_or_below_ms(self._total.latency, b)
                                  for b in BUCKETS_MS),  # fmt: skip
            lag_p95_ms=lag,
            late=generator_late(lag, self.slo),
            latency_count=int(self._total.latency.get_total_count()),
            latency_sum_ms=(histograms.mean_ms(self._total.latency) or 0.0)
            * int(self._total.latency.get_total_count()),
        )


def describe(s: Snapshot) -> str:
    """One line: where the run is and how the stage looks so far."""
    of = f"/{s.stages_planned}" if s.stages_planned else ""
    if s.offered_rps <= 0:
        return (f"stage {s.stage + 1}{of}: resting {s.stage_elapsed:.0f}/{s.stage_seconds:.0f}s "
                "so the queue drains")  # fmt: skip
    parts = [
        f"stage {s.stage + 1}{of} {s.stage_elapsed:.0f}/{s.stage_seconds:.0f}s",
        f"offered {s.offered_rps:g} rps" if s.in_flight is None else f"{s.in_flight:g} in flight",
        "achieved " + ("-" if s.achieved_rps is None else f"{s.achieved_rps:.1f}") + " rps",
        "p50 " + ("-" if s.p50_ms is None else f"{s.p50_ms:.1f}") + " ms",
        "p95 " + ("-" if s.p95_ms is None else f"{s.p95_ms:.1f}") + " ms",
        "SLO " + {True: "ok so far", False: "FAILING", None: "-"}[s.within_slo],
        "errors " + (", ".join(f"{k} {n}" for k, n in sorted(s.errors.items())) or "0"),
    ]
    if s.late and s.lag_p95_ms is not None:  # only when it matters: the line is long already
        parts.append(f"GENERATOR LATE p95 {s.lag_p95_ms:.0f} ms")
    if s.cpu_percent is not None:
        parts.append(f"CPU {s.cpu_percent:.0f}%")
    if s.left_seconds is not None:
        budget = "" if s.stages_planned else " at most"
        parts.append(f"{s.left_seconds / 60:.1f} min left{budget}")
    return " | ".join(parts)
