"""The local sleep server's truth under closed-loop load (`--control concurrency`), exactly.

One instance of `recommender serve` has C slots, each holding a request for S ms, and a FIFO
queue. k users each send their next request the moment the previous one is answered, so
k requests are always in flight. With slots = N x C (N instances sharing the k users evenly):

- k <= slots: nothing waits; every latency is S, throughput k / S.
- k > slots: the slots stay full, so throughput is slots / S and, by Little's law, mean
  latency is k x S / slots. With deterministic service the queue turns over in rounds of S:
  writing k = m x slots + j (0 <= j < slots), a share j / slots of the requests take
  (m + 1) rounds and the rest m rounds, which gives that mean exactly.

Hence the q-quantile of latency (`latency_quantile_ms`) and the highest k whose q-quantile
stays within a limit L (`concurrency_at_slo`): r = floor(L / S) whole rounds are allowed,
plus the extra requests whose share of (r + 1)-round waits stays within 1 - q:
k_max = r x slots + floor((1 - q) x slots). For N > 1 the users' keep-alive connections are
spread by the kernel (SO_REUSEPORT), not evenly, so the truth is exact for N = 1 and an upper
bound otherwise. Pure; the tests and bench/ check the search against it.

Rounds are the slots finishing together, the worst phases for the tail. A real server's
jitter spreads the slots' phases, and spread evenly they shorten the waits: at 5 in flight
on 4 slots of 50 ms every request then waits 12.5 ms (p95 62.5 ms, not the rounds' 100), so
one level above k_max can pass a limit between. Only the mean is the same whatever the
phases (Little's law), which bounds the quantile from below (`quantile_floor_ms`). A truth
is robust where the level above k_max misses the limit even at that floor
(`robust_at_slo`); the tests that hold a measured concurrency to k_max use such servers.
"""

from __future__ import annotations

import math


def latency_quantile_ms(k: int, slots: int, service_ms: float, quantile: float) -> float:
    """The `quantile` (0-1] of latency with k requests in flight on `slots` slots."""
    if k < 1 or slots < 1:
        raise ValueError("k and slots must be >= 1")
    if k <= slots:
        return service_ms
    m, j = divmod(k, slots)
    share_longer = j / slots  # of requests that take m + 1 rounds
    return service_ms * (m + 1 if share_longer > 1.0 - quantile + 1e-12 else m)


def throughput_rps(k: int, slots: int, service_ms: float) -> float:
    """Requests per second with k in flight: k / S until the slots are full."""
    return min(k, slots) / (service_ms / 1000.0)


def concurrency_at_slo(slots: int, service_ms: float, quantile: float, limit_ms: float) -> int:
    """The highest k whose `quantile` of latency is within `limit_ms` (0: none is)."""
    rounds = math.floor(limit_ms / service_ms + 1e-12)
    if rounds < 1:
        return 0
    return rounds * slots + math.floor((1.0 - quantile) * slots + 1e-12)


def quantile_floor_ms(k: int, slots: int, service_ms: float, quantile: float) -> float:
    """The lowest the `quantile` of latency can be with k in flight, whatever the slots'
    phases: the mean is k S / slots (Little's law) and no request takes more than
    ceil(k / slots) rounds, so mean <= q L_q + (1 - q) max gives L_q >= (mean - (1-q) max) / q."""
    if k <= slots:
        return service_ms
    mean = k * service_ms / slots
    longest = math.ceil(k / slots) * service_ms
    return max(service_ms, (mean - (1.0 - quantile) * longest) / quantile)


def robust_at_slo(slots: int, service_ms: float, quantile: float, limit_ms: float) -> bool:
    """Does `concurrency_at_slo` hold whatever the phases: the level above it misses the
    limit even at its `quantile_floor_ms`?"""
    k = concurrency_at_slo(slots, service_ms, quantile, limit_ms)
    return quantile_floor_ms(k + 1, slots, service_ms, quantile) > limit_ms
