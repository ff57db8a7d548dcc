"""The local server as it behaves on this machine: its service times measured at a trickle,
and the truth that follows from them (issue 27).

The demo's and the benchmarks' truths used to assume the ideal server: every request holds
its slot exactly S, and nothing else takes time. On a slower or busier machine its timers
overshoot and HTTP takes longer, so its real capacity falls under that ideal, and the truth
printed beside an estimate was one the server could not reach. Here the server is asked, one
request at a time (no queue), how long each request held its slot (its `Server-Timing`
header, recommender.local.server), and the client times the whole exchange; the difference
is the time outside the slot (HTTP, parsing, the client). The truth is then the M/G/c queue
with those service times, plus the typical (median) outside time on every request
(recommender.queueing.empirical_poisson_capacity).

With `serve --overlap a` a request's slot time grows with the slots busy at its start. At a
trickle each request runs alone (busy = 1: the previous one has released its slot before
its answer left), so the times measured here are the unstretched draws, which is what the
simulation must be given: it stretches them itself (`overlap`, the same rule), and times
measured under load would be stretched twice.
"""

from __future__ import annotations

import http.client
import math
import re
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np

from recommender.errors import EndpointError
from recommender.queueing import empirical_poisson_capacity

TRICKLE_REQUESTS = 150
IRIS_ROW = b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
_SLOT = re.compile(r"(?:^|,)\s*slot;dur=([0-9.]+)")


@dataclass(frozen=True)
class Trickle:
    """One request at a time against a local server: what each held its slot (ms, the
    server's own timing) and what it spent outside it (ms, the client's time less that)."""

    slot_ms: tuple[float, ...]
    outside_ms: tuple[float, ...]

    def describe(self) -> str:
        s, o = np.asarray(self.slot_ms), np.asarray(self.outside_ms)
        return (f"{len(s)} requests one at a time: slot p50 {np.median(s):.1f} / p99 "
                f"{np.quantile(s, 0.99):.1f} ms, outside it p50 {np.median(o):.1f} / p99 "
                f"{np.quantile(o, 0.99):.1f} ms")  # fmt: skip

    @property
    def outside_typical_ms(self) -> float:
        """The time outside the slot a request typically spends: the median. A few seconds
        of trickle on a shared machine catch its neighbours' stalls now and then (p99 73 ms
        once, beside a p50 of 2 ms); drawn on every simulated request they set the truth
        10 rps low on a run whose own stages, minutes long, passed above it."""
        return float(np.median(self.outside_ms))

    def poisson_capacity(self, instances: int, concurrency: int, quantile: float,
                         limit_ms: float, overlap: float = 0.0) -> float:  # fmt: skip
        """The M/G/c truth from the slot times, the typical outside time on every request
        (whole server, requests/s); `overlap` the server's, applied by the simulation to
        these unstretched times (see the module docstring)."""
        return empirical_poisson_capacity(instances, concurrency, np.asarray(self.slot_ms),
                                          quantile, limit_ms,
                                          np.array([self.outside_typical_ms]),
                                          overlap=overlap)  # fmt: skip

    def saturation(self, instances: int, concurrency: int, overlap: float = 0.0) -> float:
        """N x C / (mean slot time x (1 + a (C - 1) / C)): what the server completes at most,
        on this machine, every slot busy and so stretched by the overlap rule."""
        stretch = 1.0 + overlap * (concurrency - 1) / concurrency
        return instances * concurrency / (float(np.mean(self.slot_ms)) / 1000.0 * stretch)


def measure_trickle(base_url: str, requests: int = TRICKLE_REQUESTS, body: bytes = IRIS_ROW,
                    content_type: str = "application/json") -> Trickle:  # fmt: skip
    """POST `requests` requests to `base_url`/invocations one after the other on one
    keep-alive connection (as a load test's users hold theirs), each after a short pause."""
    parts = urlsplit(base_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    slots: list[float] = []
    outside: list[float] = []
    try:
        for _ in range(requests):
            sent = time.perf_counter()
            conn.request("POST", "/invocations", body, {"Content-Type": content_type})
            response = conn.getresponse()
            response.read()
            took_ms = (time.perf_counter() - sent) * 1000.0
            timing = _SLOT.search(response.getheader("Server-Timing") or "")
            if response.status != 200 or timing is None:
                raise EndpointError(f"the local server answered HTTP {response.status} "
                                    "without its slot timing at a trickle",
                                    "is it `recommender serve` of this version?")  # fmt: skip
            slot = float(timing.group(1))
            slots.append(slot)
            outside.append(max(0.0, took_ms - slot))
            time.sleep(0.005)
    except OSError as exc:
        raise EndpointError(f"the local server did not answer at a trickle ({exc})",
                            "is it still running?") from exc  # fmt: skip
    finally:
        conn.close()
    if not slots or not all(math.isfinite(v) for v in slots):
        raise EndpointError("no timing from the local server at a trickle", None)
    return Trickle(tuple(slots), tuple(outside))
