"""A SageMaker-contract model server whose saturation capacity is known by construction.

It stands in for an endpoint so that a capacity estimate can be checked against the truth.
N worker processes ("instances") accept on one port through SO_REUSEPORT, so the kernel
spreads connections across them the way the endpoint's load balancer spreads them across
instances. Each instance has C slots; a request holds a slot for exactly S seconds (model
work, then a sleep that pads it to S), so an instance completes at most C/S requests per
second and the whole server saturates at

    capacity_rps = N * C / S

With `--service-time-dist exp` or `lognormal:CV` each request holds its slot for a time drawn
with mean S instead (recommender.local.service_time): the saturation is N * C / S on average,
and the queue below it is an M/G/c one's.

Below that, latency stays near S; at it, requests wait for a slot and latency climbs; once
`max_queue` requests wait on an instance it answers 503 at once, like an overloaded container.
A request that waited for its slot starts its S when the previous holder was due to finish,
so event-loop lag does not leak into the capacity (measured: 200.0 req/s for C=4, S=20 ms).

Habits of third-party model servers, on request (the truth stays computable):
- `keepalive_s`: idle keep-alive connections are closed after that many seconds, as
  gunicorn, uvicorn or a load balancer close them (default: aiohttp's own, about an hour).
  A send that crosses such a close is sent again by the load generator, as botocore does
  (recommender.loadgen.users); it changes no slot's time, so no truth.
- Abandoned requests are always finished: aiohttp does not cancel a handler whose client
  went away (handler_cancellation off), so a request the client timed out on keeps its slot
  to its end, as in TorchServe or a Flask worker. The accept queue is 1024 deep.
- `overlap` (a, default 0): a tail that grows with overlap (requests in flight slow each
  other: CPU, memory bandwidth). A request's slot time is its draw (S, or the law around
  S) times 1 + a x (busy - 1) / C, `busy` the instance's slots held at its start, its own
  included: S alone, up to S x (1 + a (C - 1) / C) with every slot busy. The saturation,
  every slot busy, is then N * C / (S * (1 + a (C - 1) / C)) (`capacity_rps`, as the
  server prints it); recommender.queueing.mgc_latency_ms(overlap=a) applies the same
  rule to its slots (busy: those whose due end is past the request's start), so the
  machine-true truth (recommender.local.trickle) is computed from the trickle's times with
  it. The rule is the server's, exactly; contention on a real host only resembles it.

The bound is exact only while CPU is not the bottleneck: each request also costs roughly
0.2-0.5 ms of CPython time (HTTP handling, inference), so keep C/S per instance well below
~2000 requests/s and give every instance a core, or the measured capacity falls short.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import math
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from types import FrameType
from typing import Any

import psutil
from aiohttp import web

from recommender.errors import ConfigError, RecommenderError
from recommender.local import iris
from recommender.local.faults import FaultBoard, Faults, dribble, error_response, reset
from recommender.local.iris import Prediction, Predictor
from recommender.local.llm import LlmHandlers, LlmParams
from recommender.local.publisher import (
    MetricBuckets,
    PublishConfig,
    publish_forever,
    publisher_client,
)
from recommender.local.serverless import (
    THROTTLING_HEADER,
    Executions,
    ServerlessEmulation,
)
from recommender.local.service_time import ServiceTimeDist, instance_rng
from recommender.redact import fingerprint

MODELS = ("sklearn", "sleep", "llm")
N_FEATURES = 4
STARTUP_TIMEOUT_S = 120.0  # a busy, small machine starts Python processes slowly
STOP_TIMEOUT_S = 5.0
EXPECTED = (
    f"expected rows of {N_FEATURES} numbers (sepal length, sepal width, petal length, "
    'petal width), e.g. {"instances": [[5.1, 3.5, 1.4, 0.2]]}'
)

# SageMaker's runtime routes a call to an inference component by this header.
COMPONENT_HEADER = "X-Amzn-SageMaker-Inference-Component"



@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8080  # 0 = pick a free port
    instances: int = 1  # N worker processes, each one "instance"
    concurrency: int = 4  # C: requests one instance works on at once; the rest queue
    service_time_ms: float = 20.0  # S: time each request occupies a slot (model work included)
    model: str = "sklearn"  # "sklearn" | "sleep"
    max_queue: int = 100  # requests waiting for a slot per instance; beyond -> 503
    publish: PublishConfig | None = None  # report to CloudWatch as SageMaker hosting does
    # A serverless variant instead (recommender.local.serverless): MaxConcurrency executions
    # take the place of the instance's slots, and throttle instead of queueing.
    serverless: ServerlessEmulation | None = None
    llm: LlmParams = LlmParams()  # --model llm: the decode model (recommender.local.llm)
    fault_control: bool = False  # serve /faults: inject failures on cue (local.faults)
    # How each request's slot time is drawn around its mean S: det | exp | lognormal:CV
    # (recommender.local.service_time), and the seed of the instances' draws (None: fresh).
    service_time_dist: str = "det"
    seed: int | None = None
    keepalive_s: float | None = None  # close keep-alive connections idle this long (s)
    overlap: float = 0.0  # a: slot time x (1 + a x (busy - 1) / C), see the module docstring

    @property
    def capacity_rps(self) -> float:
        """Requests/s the server saturates at (sklearn, sleep): N x C / (S x `stretch`);
        for --model llm see recommender.local.llm.capacity_rps, which needs the SLO and the
        request sizes."""
        if self.service_time_ms <= 0:
            return math.inf
        if self.serverless:  # its executions take no overlap rule
            return self.instances * self.serverless.max_concurrency / (self.service_time_ms
                                                                       / 1000.0)  # fmt: skip
        return self.instances * self.concurrency / (self.service_time_ms / 1000.0
                                                    * self.stretch)  # fmt: skip

    @property
    def stretch(self) -> float:
        """How much longer a slot is held with every slot busy, as at saturation (the
        overlap rule, 1 + a x (busy - 1) / C, at busy = C): 1 without --overlap."""
        return 1.0 + self.overlap * (self.concurrency - 1) / self.concurrency


def validate(config: ServerConfig) -> None:
    """Raise ConfigError naming the first bad option and how to fix it."""

    def bad(option: str, rule: str, got: object, hint: str) -> ConfigError:
        return ConfigError(f"--{option} must be {rule} (got {got!r})", hint)

    c = config
    if not c.host:
        raise bad("host", "an address to bind", c.host, "e.g. --host 127.0.0.1")
    if not 0 <= c.port <= 65535:
        raise bad("port", "between 0 and 65535", c.port, "use --port 0 to pick a free port")
    if c.instances < 1:
        raise bad("instances", ">= 1", c.instances, "it is the number of simulated instances")
    if c.concurrency < 1:
        raise bad("concurrency", ">= 1", c.concurrency, "e.g. --concurrency 4 slots per instance")
    if not (math.isfinite(c.service_time_ms) and c.service_time_ms > 0):
        raise bad("service-time-ms", "a positive number", c.service_time_ms, "e.g. 20 (ms)")
    if c.keepalive_s is not None and not (math.isfinite(c.keepalive_s) and c.keepalive_s > 0):
        raise bad("keepalive-s", "a positive number", c.keepalive_s, "e.g. 5 (seconds idle)")
    if not (math.isfinite(c.overlap) and c.overlap >= 0):
        raise bad("overlap", ">= 0", c.overlap, "e.g. 0.5: +50% with every slot busy")
    if c.max_queue < 0:
        raise bad("max-queue", ">= 0", c.max_queue, "0 rejects whatever finds every slot busy")
    dist = ServiceTimeDist.parse(c.service_time_dist)
    if c.seed is not None and c.seed < 0:
        raise bad("seed", ">= 0", c.seed, "any whole number from 0 replays the same draws")
    if c.overlap and (c.model == "llm" or c.serverless is not None):
        # Only the slots of `_Instance` stretch; taken and ignored, the flag would mislead.
        raise bad("overlap", "0 with --model llm or --serverless", c.overlap,
                  "the overlap rule applies to the sklearn and sleep models' slots")
    if c.model == "llm" and not dist.deterministic:
        raise bad("service-time-dist", "det with --model llm", c.service_time_dist,
                  "the LLM-like server's times come from --step-ms and the tokens")
    p = c.llm
    if p.max_batch < 1:
        raise bad("max-batch", ">= 1", p.max_batch, "e.g. --max-batch 16 sequences")
    if not (math.isfinite(p.step_ms) and p.step_ms > 0):
        raise bad("step-ms", "a positive number", p.step_ms, "e.g. 10 (ms per decode step)")
    if not (math.isfinite(p.growth) and p.growth >= 0):
        raise bad("step-growth", ">= 0", p.growth, "e.g. 0.02: +2% per running sequence")
    if not (math.isfinite(p.prefill_ms_per_token) and p.prefill_ms_per_token >= 0):
        raise bad("prefill-ms-per-token", ">= 0", p.prefill_ms_per_token, "e.g. 0.1")
    if p.default_max_new_tokens < 1:
        raise bad("max-new-tokens", ">= 1", p.default_max_new_tokens, "e.g. 64")
    if c.model not in MODELS:
        raise bad("model", " or ".join(MODELS), c.model, "sklearn serves a real iris classifier")
    if c.serverless is not None:
        c.serverless.check()
        if c.model == "llm":
            raise bad("model", "sklearn or sleep with --serverless", c.model,
                      "the LLM-like server has no serverless mode")
        if c.instances != 1:
            raise bad("instances", "1 with --serverless", c.instances,
                      "a serverless variant has executions, not instances: --max-concurrency")
    if not hasattr(socket, "SO_REUSEPORT"):
        raise ConfigError("the local server needs SO_REUSEPORT", "run it on Linux")


class _Reject(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def parse_rows(body: bytes, content_type: str) -> list[list[float]]:
    """Decode a request body into feature rows, or raise _Reject with a 4xx answer."""
    if content_type == "application/json":
        try:
            doc = json.loads(body)
        except ValueError:  # includes bad UTF-8
            raise _Reject(400, f"body is not valid JSON; {EXPECTED}") from None
        if isinstance(doc, dict):
            if "instances" not in doc:
                raise _Reject(400, f'JSON object has no "instances" key; {EXPECTED}')
            doc = doc["instances"]
        if not isinstance(doc, list) or not doc:
            raise _Reject(400, f"no rows in the body; {EXPECTED}")
        rows: list[Any] = doc if isinstance(doc[0], list) else [doc]
        return [_to_row(n, row, from_csv=False) for n, row in enumerate(rows, 1)]
    if content_type == "text/csv":
        try:
            lines = [line for line in body.decode("utf-8").splitlines() if line.strip()]
        except UnicodeDecodeError:
            raise _Reject(400, f"CSV body is not UTF-8 text; {EXPECTED}") from None
        if not lines:
            raise _Reject(400, f"empty CSV body; {EXPECTED}, one row per line")
        return [_to_row(n, line.split(","), from_csv=True) for n, line in enumerate(lines, 1)]
    supported = "application/json or text/csv"
    raise _Reject(415, f"unsupported Content-Type {content_type!r}; send {supported}")


def _to_row(n: int, row: object, from_csv: bool) -> list[float]:
    if not isinstance(row, list):
        raise _Reject(400, f"row {n} is not a list; {EXPECTED}")
    if len(row) != N_FEATURES:
        raise _Reject(400, f"row {n} has {len(row)} values; {EXPECTED}")
    values = []
    for v in row:
        # JSON must carry real numbers; CSV cells are text by nature.
        ok = isinstance(v, str) if from_csv else type(v) in (int, float)
        try:
            x = float(v) if ok else math.nan
        except (ValueError, OverflowError):
            x = math.nan
        if not math.isfinite(x):
            raise _Reject(400, f"row {n} has {v!r}, which is not a finite number; {EXPECTED}")
        values.append(x)
    return values


def _train_iris() -> Predictor:
    """The iris classifier, from its fitted coefficients (recommender.local.iris)."""
    predict = iris.predictor()
    predict([[5.1, 3.5, 1.4, 0.2]])  # the first call pays lazy imports; keep it off the clock
    return predict


class _Instance:
    def __init__(self, index: int, config: ServerConfig, predict: Predictor | None,
                 faults: Faults | None = None) -> None:  # fmt: skip
        self.index, self.config, self.predict = index, config, predict
        self.faults = faults
        self.slots = asyncio.Semaphore(config.concurrency)
        self.free_at = collections.deque([-math.inf] * config.concurrency)  # idle slots' due ends
        self.service_time_s = config.service_time_ms / 1000.0
        self.dist = ServiceTimeDist.parse(config.service_time_dist)
        self.rng = instance_rng(config.seed, index)
        self.waiting = self.served = self.rejected_503 = self.bad_request = 0
        self.busy = 0  # slots held
        self.unsigned_403 = 0
        # Requests taken and not yet answered whole (a dribbled answer counts until its last
        # byte): tests interrupt a run once answers are in flight, not after a guessed delay.
        self.in_flight = 0
        # Caller headers seen, as "Name: sha256:..." (never the value): tests check that a
        # run's --header values arrived without the server keeping them.
        self.headers_seen: collections.Counter[str] = collections.Counter()
        self.metrics = (
            MetricBuckets(config.publish, config.instances, config.serverless)
            if config.publish
            else None
        )
        self.executions = Executions(config.serverless) if config.serverless else None

    def looks_signed(self, request: web.Request) -> bool:
        return _looks_signed(request)

    def next_service_s(self) -> float:
        """The next request's slot time, s: S itself, or a draw of the law around S."""
        if self.dist.deterministic:
            return self.service_time_s
        return float(self.dist.draw(self.rng, self.service_time_s, 1)[0])

    def component(self, request: web.Request) -> str | None:
        """The inference component the request names, if any (its metrics go there too)."""
        return request.headers.get(COMPONENT_HEADER)

    def record(self, status: int, arrived: float, queued: float | None = None,
               component: str | None = None, throttled: bool = False) -> None:  # fmt: skip
        """CloudWatch's view: ModelLatency from the queue to the answer, the rest overhead;
        per inference component too when the request named one."""
        if self.metrics is not None:
            now = asyncio.get_running_loop().time()
            queued = now if queued is None else queued
            self.metrics.record(time.time(), status, (now - queued) * 1e6,
                                (queued - arrived) * 1e6, component, throttled)  # fmt: skip

    async def ping(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "instance": self.index,
                "pid": os.getpid(),
                "served": self.served,
                "rejected_503": self.rejected_503,
                "bad_request": self.bad_request,
                "unsigned_403": self.unsigned_403,
                "in_flight": self.in_flight,
                "headers_seen": dict(self.headers_seen),
                "faults_injected": dict(self.faults.injected) if self.faults else {},
                **(
                    {
                        "cold_starts": self.executions.cold_starts,
                        "throttled": self.executions.throttled,
                        "spillover": self.executions.spillover,
                    }
                    if self.executions is not None
                    else {}
                ),
            }
        )

    async def invoke(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        try:
            return await self._invoke_or_fault(request)
        finally:
            self.in_flight -= 1

    async def _invoke_or_fault(self, request: web.Request) -> web.StreamResponse:
        unsigned = "endpoint" in request.match_info and not _looks_signed(request)
        fault = (self.faults.pick(time.time())
                 if self.faults is not None and not unsigned else None)  # fmt: skip
        if fault is None:  # (an unsigned call is refused first, as by SageMaker)
            return await self._invoke(request)
        await request.read()  # the request arrived whole; the fault is in the answer
        if fault.kind == "error":
            assert fault.type is not None
            return error_response(fault.type, request.match_info.get("endpoint"))
        if fault.kind == "reset":
            reset(request)
            return web.Response(status=500)  # never sent: the connection is gone
        if fault.kind == "pause":
            await asyncio.sleep(max(0.0, fault.end - time.time()))
            return await self._invoke(request)
        assert fault.kind == "dribble"
        return await dribble(request, await self._invoke(request), fault.dribble_seconds)

    async def _invoke(self, request: web.Request) -> web.Response:
        loop = asyncio.get_running_loop()
        received = loop.time()
        if "endpoint" in request.match_info and not _looks_signed(request):
            # SageMaker's runtime refuses unsigned calls before any instance sees them.
            self.unsigned_403 += 1
            return web.json_response({"message": "Missing Authentication Token"}, status=403)
        for name, value in request.headers.items():
            if _is_caller_header(name, value):
                self.headers_seen[f"{name}: {fingerprint(value)}"] += 1
        body = await request.read()
        rows: list[list[float]] = []
        if self.predict is not None:
            try:  # validation is cheap, so bad requests never take a slot
                rows = parse_rows(body, request.content_type)
            except _Reject as exc:
                self.bad_request += 1
                self.record(exc.status, received)
                return web.json_response({"error": exc.message}, status=exc.status)
        if self.executions is not None:
            return await self._invoke_serverless(request, rows, received)
        if self.slots.locked() and self.waiting >= self.config.max_queue:
            self.rejected_503 += 1
            self.record(503, received)
            error = f"instance overloaded: queue full (max_queue={self.config.max_queue})"
            return web.json_response({"error": error}, status=503)
        arrived = loop.time()
        self.waiting += 1
        try:
            await self.slots.acquire()
        finally:
            self.waiting -= 1
        # A request that waited takes over its slot when the previous one was due to end, not
        # when the loop got round to it: timer and hand-over lag (~1 ms) would otherwise add to
        # every S and put the true capacity 5-10% under N*C/S. The credit is capped at S/2 so
        # a stalled loop cannot make requests free. (S/2 of the mean S, whatever this
        # request drew: the lag it makes up for does not depend on the draw.)
        now = loop.time()
        start = max(arrived, self.free_at.popleft(), now - self.service_time_s / 2)
        self.busy += 1
        stretch = 1.0 + self.config.overlap * (self.busy - 1) / self.config.concurrency
        end = start + self.next_service_s() * stretch
        try:
            predictions = self.predict(rows) if self.predict is not None else None
            # Pad to S so the slot's occupancy, hence capacity, does not depend on the CPU.
            await asyncio.sleep(max(0.0, end - loop.time()))
        finally:
            released = loop.time()
            self.free_at.append(min(end, released))
            self.busy -= 1
            self.slots.release()
        self.served += 1
        self.record(200, received, arrived, request.headers.get(COMPONENT_HEADER))
        answer = _answer(request, predictions)
        # The server's own timing (W3C Server-Timing): how long the request kept the next
        # one from its slot (S: a timer's overshoot past `end` is not passed on, see above;
        # more where work or a stalled loop ran past S/2 of it), and its whole time here, from its
        # headers read to its answer (the slot's wait and the overshoot included). The
        # machine-true truth (recommender.local.trickle) builds its queue from these.
        held = max(min(end, released), released - self.service_time_s / 2) - start
        answer.headers["Server-Timing"] = (f"slot;dur={held * 1000:.3f}, "
                                           f"total;dur={(loop.time() - received) * 1000:.3f}")
        return answer

    async def _invoke_serverless(
        self, request: web.Request, rows: list[list[float]], received: float
    ) -> web.Response:
        """One execution per request: a free one (cold after idle), or ThrottlingException."""
        executions = self.executions
        assert executions is not None and self.config.serverless is not None
        loop = asyncio.get_running_loop()
        busy, busy_provisioned = executions.in_use()
        picked = executions.acquire(loop.time())
        if picked is None:
            self.record(400, received, throttled=True)
            most = self.config.serverless.max_concurrency
            message = f"Endpoint is at its MaxConcurrency ({most}): request throttled"
            # The runtime's error wire format: the type in x-amzn-ErrorType and the body.
            return web.json_response({"message": message}, status=400,
                                     headers={"x-amzn-ErrorType": THROTTLING_HEADER})  # fmt: skip
        slot, cold = picked
        setup_s = self.config.serverless.cold_start_ms / 1000.0 if cold else 0.0
        start = loop.time()
        try:
            predictions = self.predict(rows) if self.predict is not None else None
            await asyncio.sleep(max(0.0, start + setup_s + self.next_service_s() - loop.time()))
        finally:
            executions.release(slot, loop.time())
        self.served += 1
        if self.metrics is not None:
            now = loop.time()
            # OverheadLatency includes the cold start, as AWS documents for serverless.
            self.metrics.record(time.time(), 200, (now - start - setup_s) * 1e6,
                                (start - received + setup_s) * 1e6)  # fmt: skip
            provisioned = executions.provisioned(slot)
            self.metrics.record_serverless(time.time(), setup_s * 1e6 if cold else None,
                                           provisioned, busy + 1, busy_provisioned + provisioned)
        return _answer(request, predictions)


def _answer(request: web.Request, predictions: list[Prediction] | None) -> web.Response:
    if predictions is None:
        return web.json_response({"ok": True})
    if "text/csv" in request.headers.get("Accept", ""):
        labels = "".join(f"{p['label']}\n" for p in predictions)
        return web.Response(text=labels, content_type="text/csv")
    return web.json_response({"predictions": predictions})


def _is_caller_header(name: str, value: str) -> bool:
    """A header the caller chose (`--header`, custom attributes), not HTTP's or SigV4's
    (a signature differs on every request)."""
    low = name.lower()
    if low == "authorization":
        return not value.startswith("AWS4-HMAC-SHA256")
    return low.startswith("x-") and not low.startswith("x-amz-")


def _looks_signed(request: web.Request) -> bool:
    """A SigV4 Authorization header and its date (the signature itself is not checked:
    the local server has no secret to check it with)."""
    auth = request.headers.get("Authorization", "")
    return auth.startswith("AWS4-HMAC-SHA256 Credential=") and "X-Amz-Date" in request.headers


def _bind(host: str, port: int, reuse_port: bool = True) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # restart over TIME_WAIT
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
    except OSError:
        sock.close()
        raise
    return sock


def _reserve_port(host: str, port: int) -> socket.socket:
    try:
        # Probe without SO_REUSEPORT first: with it we could share the port with another
        # server (a forgotten earlier run) and silently split the traffic with it.
        probe = _bind(host, port, reuse_port=False)
        port = probe.getsockname()[1]
        probe.close()
        return _bind(host, port)  # bound, never listening: holds the port for the workers
    except OSError as exc:
        raise ConfigError(
            f"--port {port} on {host} is not available ({exc.strerror})",
            "pick another --port, or --port 0 for a free one",
        ) from exc


def _worker(config: ServerConfig, index: int, port: int, parent: int, conn: Connection,
            board: FaultBoard | None) -> None:  # fmt: skip
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C hits the group; serve() stops us
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not serve()'s handler, inherited by fork
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1  # die with serve()'s process even if it is SIGKILLed
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM))
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)
    try:
        asyncio.run(_run_worker(config, index, port, conn, board))
    except Exception as exc:
        with contextlib.suppress(OSError):  # serve() may be gone already
            conn.send(("error", f"{type(exc).__name__}: {exc}"))
        sys.exit(1)


async def _run_worker(config: ServerConfig, index: int, port: int, conn: Connection,
                      board: FaultBoard | None) -> None:  # fmt: skip
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    faults = Faults(board) if board is not None else None
    instance = _Instance(index, config, _train_iris() if config.model == "sklearn" else None,
                         faults)  # fmt: skip
    app = web.Application()
    if faults is not None:
        for method in ("GET", "POST", "DELETE"):
            app.router.add_route(method, "/faults", faults.control)
        watcher = asyncio.create_task(faults.watch(stop))
    app.router.add_get("/ping", instance.ping)
    app.router.add_get("/stats", instance.stats)
    if config.model == "llm":
        llm = LlmHandlers(instance, config.llm)
        app.router.add_post("/invocations", llm.invoke)
        app.router.add_post("/endpoints/{endpoint}/invocations", llm.invoke)
        app.router.add_post("/endpoints/{endpoint}/invocations-response-stream", llm.invoke_stream)
    else:
        app.router.add_post("/invocations", instance.invoke)
        app.router.add_post("/endpoints/{endpoint}/invocations", instance.invoke)
    keepalive: dict[str, Any] = ({} if config.keepalive_s is None
                                 else {"keepalive_timeout": config.keepalive_s})  # fmt: skip
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=STOP_TIMEOUT_S / 2,
                           **keepalive)  # fmt: skip
    await runner.setup()
    sock = _bind(config.host, port)
    # aiohttp sets TCP_NODELAY per connection; accepted sockets also inherit it from the
    # listener, so Nagle cannot add ~40 ms to responses even if that ever changes.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    await web.SockSite(runner, sock, backlog=1024).start()
    publisher = None
    if instance.metrics is not None:
        aws = publisher_client(instance.metrics.config)  # before ready: it stalls the loop
        process = psutil.Process()
        process.cpu_percent(None)

        def usage() -> tuple[float, float]:
            return float(process.cpu_percent(None)), float(process.memory_percent())

        publisher = asyncio.create_task(publish_forever(instance.metrics, usage, stop, aws))
    conn.send(("ready", index))
    await stop.wait()
    if faults is not None:
        await watcher
    await runner.cleanup()
    if publisher is not None:
        await publisher


def serve(config: ServerConfig, ready: Callable[[str], None] | None = None) -> None:
    """Serve until SIGINT/SIGTERM; call ready(base_url) once every instance accepts."""
    validate(config)
    stopping = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    # Signal handlers can only be set from the main thread; elsewhere the caller's own
    # shutdown (process exit) takes the daemon workers down.
    in_main = threading.current_thread() is threading.main_thread()
    stop_signals = (signal.SIGINT, signal.SIGTERM) if in_main else ()
    previous = {s: signal.signal(s, on_signal) for s in stop_signals}
    workers: list[multiprocessing.process.BaseProcess] = []
    readers: dict[Connection, int] = {}
    reserved: socket.socket | None = None
    try:
        reserved = _reserve_port(config.host, config.port)
        port = reserved.getsockname()[1]
        host = f"[{config.host}]" if ":" in config.host else config.host
        # fork, not spawn: spawn re-runs the caller's __main__ in every worker, which breaks
        # scripts without a main guard. Call serve() before starting threads of your own.
        ctx = multiprocessing.get_context("fork")
        board = FaultBoard() if config.fault_control else None
        for i in range(config.instances):
            reader, writer = ctx.Pipe(duplex=False)
            worker = ctx.Process(
                target=_worker,
                args=(config, i, port, os.getpid(), writer, board),
                name=f"recommender-instance-{i}",
                daemon=True,
            )
            worker.start()
            writer.close()  # so that a worker dying early reads as EOF here
            workers.append(worker)
            readers[reader] = i
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        pending = dict(readers)
        while pending and not stopping:
            if time.monotonic() > deadline:
                raise RecommenderError(f"local server not ready after {STARTUP_TIMEOUT_S:.0f} s")
            for done in wait(list(pending), timeout=0.2):
                assert isinstance(done, Connection)
                i = pending.pop(done)
                try:
                    kind, detail = done.recv()
                except EOFError:
                    kind, detail = "error", "exited during startup"
                if kind != "ready" and not stopping:  # a stop signal may reach workers too
                    raise RecommenderError(f"local server instance {i} failed: {detail}")
        if not stopping and ready is not None:
            ready(f"http://{host}:{port}")
        while not stopping:
            if wait([w.sentinel for w in workers], timeout=0.2):
                codes = [w.exitcode for w in workers if not w.is_alive()]
                if stopping or codes == [0] * len(codes):  # stopped from outside (killpg)
                    break
                raise RecommenderError(f"local server instance exited unexpectedly ({codes})")
    finally:
        _stop(workers)
        for reader in readers:
            reader.close()
        if reserved is not None:
            reserved.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop(workers: list[multiprocessing.process.BaseProcess]) -> None:
    for worker in workers:
        if worker.is_alive():
            worker.terminate()  # SIGTERM: the worker finishes in-flight requests, then exits
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for worker in workers:
        worker.join(max(0.0, deadline - time.monotonic()))
        if worker.is_alive():
            worker.kill()
            worker.join()
