"""The offered load over time, as pure functions of the plan (no Locust here).

Load is open-loop: an `ArrivalSchedule` hands out intended send times at the planned rate,
and any free user takes the next one. Rate changes take effect at once (no per-user
pacing to drain), and a request sent late keeps its intended time, so latency can be
measured from when it *should* have been sent (coordinated omission, as in wrk2).
"""

from __future__ import annotations

import bisect
import random

from recommender.plan import RampPlan


class Timeline:
    """Stage lookup by time since the start of the run."""

    def __init__(self, plan: RampPlan) -> None:
        self.plan = plan
        self.ends = [end for _, end in plan.stage_bounds()]

    def stage_at(self, t: float) -> int | None:
        """Index of the stage running `t` seconds after the start, None outside the plan."""
        if t < 0:
            return None
        i = bisect.bisect_right(self.ends, t)
        return i if i < len(self.ends) else None


def load_at(t: float, plan: RampPlan) -> tuple[int, float] | None:
    """(stage index, offered requests/second) at `t` seconds into the run; None after it."""
    i = Timeline(plan).stage_at(t)
    return None if i is None else (i, plan.stages[i].rps)


class ArrivalSchedule:
    """Intended send times (epoch seconds) for the whole plan.

    `share` is this process's fraction of the offered rate, for when several generator
    processes split the load. Uniform arrivals space requests exactly 1/rate apart (the
    constant-arrival-rate of k6 and wrk2); Poisson arrivals draw exponential gaps.
    """

    def __init__(
        self, plan: RampPlan, start: float, share: float = 1.0, seed: int | None = None
    ) -> None:
        self.plan = plan
        self.start = start
        self.share = share
        self.timeline = Timeline(plan)
        self._next = start
        self._rng = random.Random(seed)

    def take(self) -> tuple[float, int] | None:
        """The next intended send time and its stage, or None when the plan is over."""
        t = self._next
        stage = self.timeline.stage_at(t - self.start)
        if stage is None:
            return None
        rate = self.plan.stages[stage].rps * self.share
        gap = self._rng.expovariate(rate) if self.plan.arrivals == "poisson" else 1.0 / rate
        self._next = t + gap
        return t, stage
