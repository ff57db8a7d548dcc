"""The capacity of an ideal server under Poisson arrivals (pure NumPy): the truth the demo
and the accuracy benchmark read estimates against.

The model is an M/D/c queue per instance: C slots of exactly S, FIFO, fed by a Poisson
stream (an instance of N gets 1/N of it). Its waiting times are simulated, not taken from
Crommelin's exact M/D/c formulas, because the simulation is exact in law and short: with
equal, deterministic service times and FIFO, customer n starts right after customer n - c
finishes or on arrival, whichever is later (the slot freed first is the one taken c
customers ago), so W[n] = max(0, W[n-c] + S - (a[n] - a[n-c])): c interleaved Lindley
recursions, each a running minimum of partial sums (vectorised, about 10 ms per million
requests). The same exponential draws are reused for every rate (common random numbers),
so the bisection over the rate is monotone.

An instance of N gets 1/N of the stream in `poisson_capacity` and
`empirical_poisson_capacity`; `split_poisson_capacity` takes the shares a run's instances
really got (SO_REUSEPORT spreads connections, not requests), reading the quantile over all
requests together (`mixture_quantile`).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

SAMPLES = 400_000  # requests simulated per rate: the p95 to about 0.5% at rho 0.95
BURN_IN = 20_000  # the first requests, from an empty queue, are left out (steady state)


def md_c_latency_ms(
    rate: float,
    concurrency: int,
    service_ms: float,
    samples: int = SAMPLES,
    seed: int = 1,
    gaps: NDArray[np.float64] | None = None,
) -> NDArray[np.float64]:
    """Steady-state latencies (wait + service, ms) of an M/D/c queue at `rate` requests/s.

    `gaps` are unit-mean exponential draws (reused across rates); drawn from `seed` if None.
    """
    if gaps is None:
        gaps = np.random.default_rng(seed).exponential(1.0, samples + BURN_IN)
    arrivals = np.cumsum(gaps / rate)  # seconds
    service = service_ms / 1000.0
    c = concurrency
    wait = np.empty_like(arrivals)
    for r in range(c):
        a = arrivals[r::c]
        # X[k] = S - (a[k] - a[k-1]) within the residue class; the first starts at once.
        x = np.empty_like(a)
        x[0] = 0.0
        x[1:] = service - np.diff(a)
        s = np.cumsum(x)
        # Lindley: W[k] = S[k] - min(0, min_{j<=k} S[j]).
        wait[r::c] = s - np.minimum(np.minimum.accumulate(s), 0.0)
    return 1000.0 * (wait[BURN_IN:] + service)


def poisson_capacity(
    instances: int,
    concurrency: int,
    service_ms: float,
    quantile: float,
    limit_ms: float,
    overhead_ms: float = 0.0,
    samples: int = SAMPLES,
    seed: int = 1,
) -> float:
    """Highest Poisson arrival rate (whole server, requests/s) at which the `quantile` of
    latency (plus `overhead_ms` on every request: HTTP and client time outside the slot)
    stays within `limit_ms`, in steady state. Each instance gets 1/N of the stream, so it is
    N times one instance's. 0.0 when even an idle server misses the limit."""
    if service_ms + overhead_ms > limit_ms:
        return 0.0
    gaps = np.random.default_rng(seed).exponential(1.0, samples + BURN_IN)
    saturation = concurrency / (service_ms / 1000.0)
    lo, hi = 0.0, saturation

    def within(rate: float) -> bool:
        lat = md_c_latency_ms(rate, concurrency, service_ms, gaps=gaps) + overhead_ms
        return float(np.quantile(lat, quantile, method="inverted_cdf")) <= limit_ms

    for _ in range(40):
        mid = (lo + hi) / 2
        if within(mid):
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-4 * saturation:
            break
    return instances * lo


def relaxation_seconds(rate: float, concurrency: int, service_ms: float) -> float:
    """How long a queue fed at `rate` takes to forget its start, roughly: the relaxation
    time of a queue at utilisation rho, 1 / (mu * (1 - sqrt(rho))^2) with mu = C/S (Morse,
    for M/M/1; the right order for M/D/c). Infinite at or above saturation."""
    mu = concurrency / (service_ms / 1000.0)
    rho = rate / mu
    if rho >= 1:
        return math.inf
    return 1.0 / (mu * (1.0 - math.sqrt(rho)) ** 2)


# --- the machine's own server: service times as measured, not S exactly -------------------

EMPIRICAL_SAMPLES = 100_000  # a Python loop: ~0.1 s per rate on a fast core


def mgc_latency_ms(
    rate: float,
    concurrency: int,
    service_ms: NDArray[np.float64],
    overhead_ms: NDArray[np.float64] | None = None,
    samples: int = EMPIRICAL_SAMPLES,
    seed: int = 1,
    overlap: float = 0.0,
) -> NDArray[np.float64]:
    """Steady-state latencies (wait + service + overhead, ms) of an M/G/c FIFO queue at
    `rate` requests/s whose service times are drawn (with replacement) from `service_ms`,
    each request also spending a time drawn from `overhead_ms` outside its slot (HTTP and
    client time: it delays nobody else). Slots go to requests in arrival order, each to the
    earliest free one (a heap). The same seed draws the same unit gaps and the same service
    and overhead picks at every rate (common random numbers), so a bisection over the rate
    sees a monotone latency. With every service time equal it is `md_c_latency_ms` exactly.

    `overlap` (a) is the local server's rule for a tail that grows with overlap
    (recommender.local.server): a request's slot time is its draw times
    1 + a x (busy - 1) / c, busy the slots whose due end is past its start, its own included."""
    rng = np.random.default_rng(seed)
    n = samples + BURN_IN
    arrivals = np.cumsum(rng.exponential(1.0, n) / rate)
    service = rng.choice(np.asarray(service_ms, dtype=np.float64), n) / 1000.0
    overhead = (np.zeros(n) if overhead_ms is None or len(overhead_ms) == 0
                else rng.choice(np.asarray(overhead_ms, dtype=np.float64), n))  # fmt: skip
    free = [0.0] * concurrency  # a heap of the slots' next free times
    start = np.empty(n)
    held: NDArray[np.float64] = service.copy()  # slot times, stretched by the overlap rule
    for i, (a, s) in enumerate(zip(arrivals.tolist(), service.tolist(), strict=True)):
        begin = a if a > free[0] else free[0]
        if overlap:
            busy = 1 + sum(1 for f in free[1:] if f > begin)
            s *= 1.0 + overlap * (busy - 1) / concurrency
            held[i] = s
        heapq.heapreplace(free, begin + s)
        start[i] = begin
    latency = (start - arrivals + held) * 1000.0 + overhead
    return latency[BURN_IN:]


def empirical_poisson_capacity(
    instances: int,
    concurrency: int,
    service_ms: NDArray[np.float64],
    quantile: float,
    limit_ms: float,
    overhead_ms: NDArray[np.float64] | None = None,
    samples: int = EMPIRICAL_SAMPLES,
    seed: int = 1,
    overlap: float = 0.0,
) -> float:
    """`poisson_capacity` for a server whose service times (and time outside the slot) are
    the ones measured on this machine (`mgc_latency_ms`): the highest Poisson rate (whole
    server, N instances each fed 1/N) whose `quantile` of latency stays within `limit_ms`.
    0.0 when even an idle server misses the limit.

    `overlap` (a) is the server's `--overlap`, applied by `mgc_latency_ms`: `service_ms` are
    then the slot times of requests that ran alone (busy = 1, unstretched), as a trickle
    measures them (recommender.local.trickle: one request at a time), and the simulation
    stretches each by the slots busy at its start. Times measured under load, stretched
    already, would be stretched twice. The bisection's top, C / mean time, stays above the
    stretched saturation (C / (mean x (1 + a (C - 1) / C)))."""
    service = np.asarray(service_ms, dtype=np.float64)
    saturation = concurrency / (float(service.mean()) / 1000.0)

    def within(rate: float) -> bool:
        lat = mgc_latency_ms(rate, concurrency, service, overhead_ms, samples, seed, overlap)
        return float(np.quantile(lat, quantile, method="inverted_cdf")) <= limit_ms

    return instances * _highest_within(within, saturation)


def _highest_within(within: Callable[[float], bool], saturation: float) -> float:
    """The highest rate in (0, saturation) that `within` accepts, to 1e-3 of saturation by
    bisection (within is monotone: more load, more latency); 0.0 when even an idle server,
    at 1e-3 of saturation, is not within."""
    if not within(1e-3 * saturation):
        return 0.0
    lo, hi = 0.0, saturation
    while hi - lo >= 1e-3 * saturation:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if within(mid) else (lo, mid)
    return lo


def mixture_quantile(
    latencies: Sequence[NDArray[np.float64]], weights: Sequence[float], quantile: float
) -> float:
    """The `quantile` of a mixture: sample set i drawn with probability proportional to
    `weights[i]`, its values equally likely within it. The smallest value v whose mixture
    CDF, sum_i w_i #{x in set i: x <= v} / n_i, reaches the quantile: Hyndman and Fan's
    definition 1, NumPy's `inverted_cdf`, as the truths above read a quantile (one set is
    handed to NumPy, so it is exactly theirs). Each CDF value is computed directly, not
    summed along the sorted values (a running sum of 100,000 terms of 1/n drifts past any
    fixed tolerance), and compared with a relative slack of 1e-12, so a CDF that reaches
    the quantile exactly is not lost to rounding."""
    sets = [np.sort(np.asarray(x, dtype=np.float64)) for x, w in
            zip(latencies, weights, strict=True) if w > 0]  # fmt: skip
    kept = [float(w) for w in weights if w > 0]
    if len(sets) == 1:
        return float(np.quantile(sets[0], quantile, method="inverted_cdf"))
    values = np.unique(np.concatenate(sets))
    cdf = sum(w / len(x) * np.searchsorted(x, values, side="right")
              for x, w in zip(sets, kept, strict=True)) / sum(kept)  # fmt: skip
    k = int(np.searchsorted(cdf, quantile * (1.0 - 1e-12), side="left"))
    return float(values[min(k, len(values) - 1)])


def split_poisson_capacity(
    shares: Sequence[float],
    concurrency: int,
    service_ms: NDArray[np.float64],
    quantile: float,
    limit_ms: float,
    overhead_ms: NDArray[np.float64] | None = None,
    samples: int = EMPIRICAL_SAMPLES,
    seed: int = 1,
    overlap: float = 0.0,
) -> float:
    """`empirical_poisson_capacity` for a server whose instances get uneven shares of the
    stream: the highest Poisson rate (whole server, requests/s) at which, instance i fed a
    Poisson stream of `shares[i]` x the rate (each an M/G/c queue, `mgc_latency_ms`), the
    `quantile` of the latency of all requests together stays within `limit_ms`.

    Why: SO_REUSEPORT spreads connections, not requests, over the instances, and a Locust
    user keeps its connection, so a run's instances get uneven shares (the server's /stats
    says which); the busiest saturates first and fills the tail, and the 1/N truth overrates
    what the run could have found. All requests together is a mixture, each instance's
    latencies weighted by its share (`mixture_quantile`), as the run measures them.

    Shares are normalised to sum 1; an instance of share 0 gets nothing and is left out.
    Every instance draws from the same `seed` (common random numbers: the mixture needs
    each instance's law, not their independence): equal shares give
    `empirical_poisson_capacity(N, ...)` (to rounding) and shares (1, 0, ...) one instance's
    capacity; instances of equal share are simulated once. The bisection runs up to the rate
    that saturates the busiest instance, to 1e-3 of it. 0.0 when even an idle server misses
    the limit. `overlap` as in `empirical_poisson_capacity` (the times unstretched: the
    trickle's), applied to every instance's slots."""
    weights = np.asarray(shares, dtype=np.float64)
    if weights.size == 0 or (weights < 0).any() or not weights.sum() > 0:
        raise ValueError(f"shares must be non-negative with a positive sum, not {shares!r}")
    weights = weights / weights.sum()
    used = [float(w) for w in weights if w > 0]
    service = np.asarray(service_ms, dtype=np.float64)
    saturation = concurrency / (float(service.mean()) / 1000.0) / max(used)  # the busiest's

    # Instances of one share have one law: simulated once, weighted by their total share.
    share_of = {w: sum(x for x in used if x == w) for w in sorted(set(used))}

    def within(rate: float) -> bool:
        lat = [mgc_latency_ms(w * rate, concurrency, service, overhead_ms, samples, seed,
                              overlap) for w in share_of]  # fmt: skip
        return mixture_quantile(lat, list(share_of.values()), quantile) <= limit_ms

    return _highest_within(within, saturation)
