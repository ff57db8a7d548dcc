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
        self._bounds = plan.stage_bounds()
        self._stage = 0
        self._k = 0  # tickets handed out in the current stage
        self._t = 0.0  # time of the last Poisson arrival, from the start of the run
        self._rng = random.Random(seed)

    def take(self) -> tuple[float, int] | None:
        """The next intended send time and its stage, or None when the plan is over."""
        while self._stage < len(self._bounds):
            begin, end = self._bounds[self._stage]
            rate = self.plan.stages[self._stage].rps * self.share
            if self.plan.arrivals == "poisson":
                t = max(self._t, begin) + self._rng.expovariate(rate)
            else:
                # From the stage start, not by adding gaps: no drift, exact counts.
                t = begin + self._k / rate
            if t < end:
                self._k += 1
                self._t = t
                return self.start + t, self._stage
            self._stage += 1
            self._k = 0
        return None
