"""The local server's serverless variant: MaxConcurrency execution slots, warm or cold (pure).

A SageMaker serverless variant runs each request in one execution (one unit of concurrency)
and never queues: a request that finds MaxConcurrency executions busy is refused at once
with ThrottlingException. ProvisionedConcurrency executions are kept warm; the others are
started on demand, paying a cold start (the `ModelSetupTime` metric) when they have not run
for a while, and stay warm until they have been idle that long again.

`Executions` is that model with the clock passed in, so it is tested without sleeping and
its truth follows from its parameters alone:

    throughput per concurrent execution  = 1000 / S          requests/s  (S: service time, ms)
    throughput of the variant            = M x 1000 / S      beyond it: ThrottlingException
    latency of a warm request            = S
    latency of a cold request            = C + S             (C: the cold start, ms)

A request takes a free provisioned execution first, then the on-demand execution that ran
most recently (so the warm set stays as small as the load allows), then a cold one. At a
steady rate R (requests/s) the load holds a = R x S / 1000 executions busy on average
(Little's law); with random (Poisson) arrivals the share that finds all P provisioned
executions busy, and spills over to on-demand ones, is Erlang's loss formula B(P, a)
(`recommender.analysis.serverless.erlang_b`; it holds for any service-time distribution).
Spilled requests are cold when no on-demand execution ran within the idle timeout T: after
an idle gap longer than T, the first ceil(R x (C + S) / 1000) - P concurrent requests of a
step to rate R are cold (each occupies its execution for C + S), none after while the load
holds. `/stats` counts the cold starts and throttles it really served, for the benchmark.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from recommender.errors import ConfigError

THROTTLING = "ThrottlingException"
# What SageMaker's runtime sends: the type, then its namespace, in x-amzn-ErrorType.
THROTTLING_HEADER = f"{THROTTLING}:http://internal.amazon.com/coral/com.amazon.coral.availability/"
MEMORY_SIZES = (1024, 2048, 3072, 4096, 5120, 6144)  # ServerlessConfig.MemorySizeInMB


@dataclass(frozen=True)
class ServerlessEmulation:
    """The serverless variant the local server plays (ServerlessConfig plus its timing)."""

    max_concurrency: int = 8  # M: MaxConcurrency, 1..200
    provisioned_concurrency: int = 0  # P: ProvisionedConcurrency, 0 (on demand) .. M
    cold_start_ms: float = 500.0  # C: what a request pays on an execution that was cold
    idle_seconds: float = 30.0  # T: an on-demand execution idle this long is cold again
    memory_mb: int = 2048  # MemorySizeInMB (recorded, not emulated)

    def service_config(self) -> dict[str, int]:
        """As CreateEndpointConfig's ServerlessConfig takes it."""
        out = {"MemorySizeInMB": self.memory_mb, "MaxConcurrency": self.max_concurrency}
        if self.provisioned_concurrency:
            out["ProvisionedConcurrency"] = self.provisioned_concurrency
        return out

    def check(self) -> ServerlessEmulation:
        m, p = self.max_concurrency, self.provisioned_concurrency
        if not 1 <= m <= 200:
            raise ConfigError(f"--max-concurrency must be 1 to 200 (got {m})",
                              "SageMaker's MaxConcurrency range")  # fmt: skip
        if not 0 <= p <= m:
            raise ConfigError(f"--provisioned-concurrency must be 0 to --max-concurrency {m} "
                              f"(got {p})")  # fmt: skip
        for flag, v in (("--cold-start-ms", self.cold_start_ms),
                        ("--idle-seconds", self.idle_seconds)):  # fmt: skip
            if not (math.isfinite(v) and v >= 0):
                raise ConfigError(f"{flag} must be a number >= 0 (got {v!r})")
        if self.memory_mb not in MEMORY_SIZES:
            raise ConfigError(f"--memory-mb must be one of {', '.join(map(str, MEMORY_SIZES))} "
                              f"(got {self.memory_mb})")  # fmt: skip
        return self


class Executions:
    """M execution slots: which one a request gets, and whether it was cold (clock passed in)."""

    def __init__(self, emulation: ServerlessEmulation) -> None:
        self.e = emulation
        self.busy = [False] * emulation.max_concurrency
        # When each execution last finished a request (-inf: never ran, i.e. cold).
        self.last_done = [-math.inf] * emulation.max_concurrency
        self.cold_starts = self.throttled = self.spillover = 0

    def provisioned(self, slot: int) -> bool:
        return slot < self.e.provisioned_concurrency

    def in_use(self) -> tuple[int, int]:
        """(busy executions, busy provisioned executions)."""
        p = self.e.provisioned_concurrency
        return sum(self.busy), sum(self.busy[:p])

    def acquire(self, now: float) -> tuple[int, bool] | None:
        """(execution, cold) for a request arriving at `now`; None: throttled."""
        p = self.e.provisioned_concurrency
        for slot in range(p):
            if not self.busy[slot]:
                self.busy[slot] = True
                return slot, False
        free = [s for s in range(p, len(self.busy)) if not self.busy[s]]
        if not free:
            self.throttled += 1
            return None
        self.spillover += 1
        slot = max(free, key=lambda s: self.last_done[s])  # the most recently used
        cold = now - self.last_done[slot] > self.e.idle_seconds
        self.busy[slot] = True
        self.cold_starts += cold
        return slot, cold

    def release(self, slot: int, now: float) -> None:
        self.busy[slot] = False
        self.last_done[slot] = now
