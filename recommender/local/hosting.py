"""Local hosting: endpoints created in the AWS emulator get real model servers.

SageMaker starts instances when an endpoint is created and routes InvokeEndpoint calls to
them; the AWS emulator (moto's server) only keeps the records. This layer plays the rest,
watching the emulator through the ordinary SageMaker API and never changing it:

- **Reconciler.** About once a second: ListEndpoints, then DescribeEndpoint and
  DescribeEndpointConfig for each. An endpoint that appears gets instances of its variant's
  instance type (recommender.local.instance_types: slots and service time, hence a known
  capacity); one that disappears has its instances stopped. The variant's
  DesiredInstanceCount (which UpdateEndpointWeightsAndCapacities sets, as Application Auto
  Scaling does: `AwsClient.set_desired_instance_count`) is followed: each instance is a
  `recommender serve --instances 1` process, started or stopped to match, and a new one
  serves only `provision_seconds` after it was launched (SageMaker's instances take minutes).
  Starting a model server takes seconds of its own (more on a busy machine), which would
  add to the provisioning time; with `warm_spares` N started servers per variant wait
  ready, a scale-out's new instances take them (and new spares start), so a scale-out by
  up to N instances serves `provision_seconds` after its launch however slow the machine
  (tests that hold a provisioning time to its value).
  The emulator reports CurrentInstanceCount = desired at once; the instances really in
  service are in `GET /_local/endpoints`.
- **Router.** One runtime URL for every endpoint (`--endpoint-url` of `run`):
  `POST /endpoints/<name>/invocations` is checked like SageMaker's front end (a SigV4
  Authorization header, the endpoint exists, the target variant exists) and passed to one
  in-service instance's container `/invocations` (RoutingConfig's LEAST_OUTSTANDING_REQUESTS,
  else RANDOM, SageMaker's default). Until an endpoint's first instance serves, calls wait for
  it (at most `startup_wait_seconds`); the emulator says InService before any process runs.
- **Metrics.** As SageMaker's front end does, the router publishes each variant's
  CloudWatch metrics to the emulator (recommender.local.publisher): Invocations, errors,
  ModelLatency (the container's time, queueing in it included), OverheadLatency (the
  router's own), InvocationsPerInstance over the instances in service, CPU and memory.

Run it with `recommender host --aws-endpoint-url URL` (or `running_hosting` from code).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import re
import signal
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import psutil
from aiohttp import web

from recommender.aws import AwsClient, EndpointInfo
from recommender.bounds import check_number, check_port
from recommender.errors import ConfigError, RecommenderError
from recommender.local.autoscaler import ScalerConfig, TargetTrackingScaler, next_tick
from recommender.local.instance_types import InstanceProfile, profile_for
from recommender.local.process import running_command
from recommender.local.publisher import MetricBuckets, PublishConfig, publish_forever
from recommender.local.server import MODELS
from recommender.local.server import _looks_signed as looks_signed  # the server's own check

ACCOUNT = "123456789012"  # the emulator's default account, named in runtime errors
READY = re.compile(r"Listening on (http://\S+)")
TARGET_VARIANT = "X-Amzn-SageMaker-Target-Variant"
# Request headers the container gets (SageMaker passes the caller's own and strips its auth).
_HOP = {"host", "content-length", "connection", "transfer-encoding", "authorization",
        "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"}  # fmt: skip
INVOCATION_TIMEOUT_S = 60.0  # SageMaker real-time's limit on one invocation
SCALER_DELAY_S = 0.8  # after a minute ends, its last period is in CloudWatch


@dataclass(frozen=True)
class HostingConfig:
    aws_endpoint_url: str
    region: str = "us-east-1"
    host: str = "127.0.0.1"
    port: int = 0  # 0 = a free port
    poll_seconds: float = 1.0
    provision_seconds: float = 2.0  # a new instance serves this long after its launch
    metrics_period: int = 60
    model: str = "sklearn"
    max_queue: int = 100
    startup_wait_seconds: float = 120.0
    # The local scaler's emulated minute in real seconds (recommender.local.autoscaler).
    minute_seconds: float = 60.0
    # Model servers per variant started ahead, for the next instances (module docstring).
    warm_spares: int = 0

    def check(self) -> HostingConfig:
        if self.model not in MODELS:
            raise ConfigError(f"--model must be {' or '.join(MODELS)} (got {self.model!r})")
        for flag, value in (("--poll-seconds", self.poll_seconds),
                            ("--provision-seconds", self.provision_seconds)):  # fmt: skip
            if not 0 <= value < 3600 or (flag == "--poll-seconds" and value == 0):
                raise ConfigError(f"{flag} must be a number of seconds > 0 (got {value:g})")
        if not 0 <= self.warm_spares <= 16:
            raise ConfigError(f"--warm-spares must be 0 to 16 (got {self.warm_spares})")
        PublishConfig.from_flags("x", "v", self.metrics_period, self.region, None)
        check_port("--port", self.port, allow_zero=True, hint="0 picks a free one")
        check_number("--max-queue", self.max_queue, low=0)
        self.scaler_config().check()
        return self

    def scaler_config(self) -> ScalerConfig:
        return ScalerConfig(self.aws_endpoint_url, self.region, self.minute_seconds,
                            self.metrics_period)  # fmt: skip


# --- state -------------------------------------------------------------------------------

_Started = tuple[asyncio.subprocess.Process, str]  # a model server listening, and its URL


@dataclass(eq=False)
class _Instance:
    index: int
    launched: float  # loop time
    proc: asyncio.subprocess.Process | None = None
    url: str | None = None
    state: str = "starting"  # starting | in_service | stopping
    outstanding: int = 0
    usage: psutil.Process | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "state": self.state, "url": self.url,
                "pid": self.proc.pid if self.proc else None,
                "outstanding": self.outstanding}  # fmt: skip


@dataclass(eq=False)
class _Variant:
    endpoint: str
    name: str
    profile: InstanceProfile
    routing: str
    buckets: MetricBuckets
    desired: int = 1
    instances: list[_Instance] = field(default_factory=list)
    launched: int = 0
    serving: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    publisher: asyncio.Task[None] | None = None
    # `warm_spares`: model servers starting or started for the next instances, oldest
    # first (each gives its process and URL; None: it exited during startup).
    spares: list[asyncio.Task[_Started | None]] = field(default_factory=list)

    def in_service(self) -> list[_Instance]:
        return [i for i in self.instances if i.state == "in_service"]

    def active(self) -> list[_Instance]:
        return [i for i in self.instances if i.state != "stopping"]

    def to_dict(self) -> dict[str, Any]:
        p = self.profile
        return {"instance_type": p.instance_type, "slots": p.slots,
                "service_time_ms": p.service_time_ms,
                "capacity_rps_per_instance": p.capacity_rps, "routing": self.routing,
                "desired": self.desired, "in_service": len(self.in_service()),
                "starting": sum(i.state == "starting" for i in self.instances),
                "spares_ready": sum(t.done() and not t.cancelled() and t.exception() is None
                                    and t.result() is not None for t in self.spares),
                "instances": [i.to_dict() for i in self.instances]}  # fmt: skip


@dataclass(eq=False)
class _Endpoint:
    name: str
    config_name: str
    variants: dict[str, _Variant]


# --- the hosting layer ---------------------------------------------------------------------


class Hosting:
    """The reconciler and the router in one asyncio loop (see the module docstring)."""

    def __init__(self, config: HostingConfig, log: Callable[[str], None]) -> None:
        self.config = config.check()
        self.log = log
        self.aws = AwsClient.create(config.region, endpoint_url=config.aws_endpoint_url)
        self.endpoints: dict[str, _Endpoint] = {}
        self._skipped: set[str] = set()  # endpoints that cannot be hosted, said once
        self._tasks: set[asyncio.Task[Any]] = set()
        self._session: aiohttp.ClientSession | None = None
        self._round = asyncio.Lock()
        self._warned = False

    # The reconciler -------------------------------------------------------------------

    def _observe(self) -> dict[str, tuple[EndpointInfo, dict[str, str]]]:
        """What the emulator holds now (blocking: runs in a thread)."""
        seen = {}
        for name, status in self.aws.list_endpoints():
            if status not in ("InService", "Updating", "Creating", "SystemUpdating"):
                continue
            try:
                info = self.aws.describe_endpoint(name)
                routing = self.aws.routing_strategies(info.config_name)
            except RecommenderError:  # deleted between the calls: next round
                continue
            seen[name] = (info, routing)
        return seen

    async def reconcile(self) -> None:
        """One round: read the emulator, apply what changed. Rounds never overlap."""
        async with self._round:
            try:
                seen = await asyncio.to_thread(self._observe)
            except RecommenderError as exc:
                if not self._warned:
                    self.log(f"warning: cannot read the emulator's endpoints: {exc.one_line()}")
                    self._warned = True
                return
            self._warned = False
            self.apply(seen)

    def serving_count(self, endpoint: str, variant: str) -> int | None:
        """Instances of a variant in service now (None: not hosted)."""
        ep = self.endpoints.get(endpoint)
        v = ep.variants.get(variant) if ep else None
        return len(v.in_service()) if v else None

    async def scale_forever(self, stop: asyncio.Event) -> None:
        """The local scaler, once per emulated minute, after that minute's metrics are
        published (the router publishes a period ~0.2 s after it ends)."""
        scaler = TargetTrackingScaler(self.config.scaler_config(), self.log, self.serving_count)
        ms = self.config.minute_seconds
        while not stop.is_set():
            boundary = next_tick(time.time(), ms)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), boundary + SCALER_DELAY_S - time.time())
            if stop.is_set():
                return
            try:
                await asyncio.to_thread(scaler.tick, boundary)
            except RecommenderError as exc:
                self.log(f"warning: the local scaler: {exc.one_line()}")

    async def reconcile_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self.reconcile()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), self.config.poll_seconds)

    def apply(self, seen: dict[str, tuple[EndpointInfo, dict[str, str]]]) -> None:
        """Bring the hosted endpoints and instance counts in line with `seen`."""
        for name in [n for n in self.endpoints if n not in seen]:
            self.log(f"endpoint {name} deleted: stopping its instances")
            self._drop(self.endpoints.pop(name))
        for name, (info, routing) in seen.items():
            ep = self.endpoints.get(name)
            if ep is not None and ep.config_name != info.config_name:
                self.log(f"endpoint {name} now uses {info.config_name}: replacing its instances")
                self._drop(self.endpoints.pop(name))
                ep = None
            if ep is None:
                ep = self._host(info, routing)
                if ep is None:
                    continue
                self.endpoints[name] = ep
            for v in info.variants:
                variant = ep.variants.get(v.name)
                if variant is not None:
                    variant.desired = max(1, v.desired_instance_count or 1)
                    self._scale(variant)

    def _host(self, info: EndpointInfo, routing: dict[str, str]) -> _Endpoint | None:
        variants = {}
        for v in info.variants:
            try:
                if v.instance_type is None:
                    raise ConfigError("it has no instance type (serverless?)")
                profile = profile_for(v.instance_type)
            except ConfigError as exc:
                key = f"{info.name}/{v.name}"
                if key not in self._skipped:
                    self.log(f"endpoint {info.name} variant {v.name} not hosted: {exc.one_line()}")
                    self._skipped.add(key)
                continue
            c = self.config
            publish = PublishConfig(info.name, v.name, c.metrics_period, c.region,
                                    c.aws_endpoint_url)  # fmt: skip
            variant = _Variant(info.name, v.name, profile, routing.get(v.name, "RANDOM"),
                               MetricBuckets(publish, 1))  # fmt: skip
            variant.publisher = self._spawn(
                publish_forever(variant.buckets, functools.partial(_usage, variant), variant.stop,
                                self.aws)
            )
            variants[v.name] = variant
            variant.spares = [self._spawn(self._start_server(variant, "spare"))
                              for _ in range(c.warm_spares)]  # fmt: skip
            self.log(f"endpoint {info.name} variant {v.name}: {profile.instance_type}, "
                     f"{profile.slots} slots x {profile.service_time_ms:g} ms = "
                     f"{profile.capacity_rps:g} rps per instance")  # fmt: skip
        if not variants:
            return None
        return _Endpoint(info.name, info.config_name, variants)

    def _scale(self, variant: _Variant) -> None:
        active = variant.active()
        for _ in range(variant.desired - len(active)):
            variant.launched += 1
            instance = _Instance(variant.launched, asyncio.get_running_loop().time())
            variant.instances.append(instance)
            self._spawn(self._launch(variant, instance))
        surplus = len(active) - variant.desired
        # Scale-in takes the youngest first: those not yet serving cost nothing to drop.
        for instance in sorted(active, key=lambda i: (i.state == "in_service", -i.launched)):
            if surplus <= 0:
                break
            surplus -= 1
            self._spawn(self._stop_instance(variant, instance))

    def _drop(self, ep: _Endpoint) -> None:
        for variant in ep.variants.values():
            variant.stop.set()
            for spare in variant.spares:
                self._spawn(_discard(spare))
            variant.spares = []
            for instance in variant.instances:
                if instance.state != "stopping":
                    self._spawn(self._stop_instance(variant, instance))

    async def _start_server(self, variant: _Variant, name: str) -> _Started | None:
        """A model server of the variant's profile, once it listens: its process and URL
        (None: it exited during startup, which is logged)."""
        p, c = variant.profile, self.config
        cmd = [sys.executable, "-m", "recommender", "serve", "--host", "127.0.0.1",
               "--port", "0", "--instances", "1", "--concurrency", str(p.slots),
               "--service-time-ms", str(p.service_time_ms), "--model", c.model,
               "--max-queue", str(c.max_queue)]  # fmt: skip
        # In this process's group (stopping the hosting layer's group stops them too), and
        # told to die with it should it be killed outright.
        proc = await asyncio.create_subprocess_exec(
            *cmd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        assert proc.stdout is not None
        tag = f"{variant.endpoint}/{variant.name}#{name}"
        while True:
            line = (await proc.stdout.readline()).decode(errors="replace")
            if not line:
                if not variant.stop.is_set():  # not stopped on purpose
                    self.log(f"{tag}: the model server exited during startup")
                await proc.wait()
                return None
            m = READY.search(line)
            if m:
                self._spawn(_drain(proc, tag, self.log))
                return proc, m.group(1)

    async def _take_spare(self, variant: _Variant) -> _Started | None:
        """The variant's oldest warm spare (awaited if still starting: it began before a
        new one would), and a new spare started in its place; None without one."""
        if not variant.spares:
            return None
        task = variant.spares.pop(0)
        try:
            return await task
        finally:
            if not variant.stop.is_set():
                variant.spares.append(self._spawn(self._start_server(variant, "spare")))

    async def _launch(self, variant: _Variant, instance: _Instance) -> None:
        c = self.config
        started = await self._take_spare(variant)
        if started is None:
            started = await self._start_server(variant, str(instance.index))
        if started is None:
            instance.state = "stopping"
            return
        proc, instance.url = started
        instance.proc = proc
        if instance.state == "stopping":  # stopped while the process was being started
            proc.terminate()
            await proc.wait()
            return
        with contextlib.suppress(psutil.Error):
            instance.usage = psutil.Process(proc.pid)
        wait = instance.launched + c.provision_seconds - asyncio.get_running_loop().time()
        if wait > 0:
            await asyncio.sleep(wait)
        if instance.state != "starting":  # stopped while provisioning
            return
        instance.state = "in_service"
        variant.buckets.instances = len(variant.in_service())
        variant.serving.set()
        self.log(f"endpoint {variant.endpoint}: instance {instance.index} in service "
                 f"({len(variant.in_service())} of {variant.desired})")  # fmt: skip

    async def _stop_instance(self, variant: _Variant, instance: _Instance) -> None:
        instance.state = "stopping"
        variant.buckets.instances = max(1, len(variant.in_service()))
        if not variant.in_service():
            variant.serving.clear()
        # Let the requests it is serving finish, as SageMaker drains an instance.
        deadline = time.monotonic() + 10.0
        while instance.outstanding and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        proc = instance.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()  # `serve` stops its worker, which finishes what it serves
            try:
                await asyncio.wait_for(proc.wait(), 10.0)
            except asyncio.TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        with contextlib.suppress(ValueError):
            variant.instances.remove(instance)
        self.log(f"endpoint {variant.endpoint}: instance {instance.index} stopped")

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # The router -------------------------------------------------------------------------

    async def invoke(self, request: web.Request) -> web.Response:
        received = asyncio.get_running_loop().time()
        name = request.match_info["endpoint"]
        if not looks_signed(request):
            return web.json_response({"message": "Missing Authentication Token"}, status=403)
        ep = self.endpoints.get(name)
        if ep is None:  # created since the last round? SageMaker serves it once InService
            await self.reconcile()
            ep = self.endpoints.get(name)
        if ep is None:
            return _error(400, "ValidationError",
                          f"Endpoint {name} of account {ACCOUNT} not found.")  # fmt: skip
        wanted = request.headers.get(TARGET_VARIANT)
        if wanted is not None and wanted not in ep.variants:
            return _error(400, "ValidationError",
                          f"Variant {wanted} of endpoint {name} not found.")  # fmt: skip
        variant = ep.variants[wanted] if wanted else next(iter(ep.variants.values()))
        body = await request.read()
        instance = await self._pick(variant)
        if instance is None or instance.url is None:
            return _error(503, "ServiceUnavailable", f"Endpoint {name} has no instance in "
                          "service yet.")  # fmt: skip
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
        assert self._session is not None
        instance.outstanding += 1
        sent = asyncio.get_running_loop().time()
        try:
            async with self._session.post(f"{instance.url}/invocations", data=body,
                                          headers=headers) as upstream:  # fmt: skip
                payload = await upstream.read()
                status = upstream.status
                content_type = upstream.headers.get("Content-Type", "application/json")
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            status, payload = 500, None
            content_type, detail = "application/json", f"{type(exc).__name__}: {exc}"
        finally:
            instance.outstanding -= 1
        done = asyncio.get_running_loop().time()
        variant.buckets.record(time.time(), status, (done - sent) * 1e6, (sent - received) * 1e6)
        if payload is None:
            return _error(500, "InternalFailure", f"the instance failed: {detail}")
        return web.Response(status=status, body=payload, headers={
            "Content-Type": content_type, "x-Amzn-Invoked-Production-Variant": variant.name})

    async def _pick(self, variant: _Variant) -> _Instance | None:
        serving = variant.in_service()
        if not serving:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(variant.serving.wait(), self.config.startup_wait_seconds)
            serving = variant.in_service()
            if not serving:
                return None
        if variant.routing == "LEAST_OUTSTANDING_REQUESTS":
            return min(serving, key=lambda i: i.outstanding)
        return random.choice(serving)

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response({"minute_seconds": self.config.minute_seconds, "endpoints": {
            name: {"config": ep.config_name,
                   "variants": {n: v.to_dict() for n, v in ep.variants.items()}}
            for name, ep in self.endpoints.items()}})  # fmt: skip

    async def ping(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    # The whole ------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event, ready: Callable[[str], None]) -> None:
        app = web.Application()
        app.router.add_post("/endpoints/{endpoint}/invocations", self.invoke)
        app.router.add_get("/_local/endpoints", self.status)
        app.router.add_get("/ping", self.ping)
        timeout = aiohttp.ClientTimeout(total=INVOCATION_TIMEOUT_S)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), timeout=timeout)  # fmt: skip
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        # Made now, not when the first variant's metrics are due: it stalls the event loop
        # (recommender.local.publisher.publisher_client).
        self.aws.client("cloudwatch")
        try:
            site = web.TCPSite(runner, self.config.host, self.config.port, backlog=1024)
            await site.start()
            port = runner.addresses[0][1]
            reconciler = self._spawn(self.reconcile_forever(stop))
            scaler = self._spawn(self.scale_forever(stop))
            ready(f"http://{self.config.host}:{port}")
            await stop.wait()
            await reconciler
            await scaler
        finally:
            for ep in list(self.endpoints.values()):
                self._drop(ep)
            self.endpoints.clear()
            pending = [t for t in self._tasks if not t.done()]
            if pending:
                await asyncio.wait(pending, timeout=15.0)
            await self._session.close()
            await runner.cleanup()


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGTERM))


def _error(status: int, code: str, message: str) -> web.Response:
    """SageMaker runtime's error shape."""
    return web.json_response({"ErrorCode": code, "Message": message}, status=status,
                             headers={"x-amzn-ErrorType": code})  # fmt: skip


def _usage(variant: _Variant) -> tuple[float, float]:
    """CPU and memory of the variant's instances (each process with its worker), averaged
    over the instances, as /aws/sagemaker/Endpoints reports them."""
    cpu, memory, n = 0.0, 0.0, 0
    for instance in variant.in_service():
        if instance.usage is None:
            continue
        with contextlib.suppress(psutil.Error):
            procs = [instance.usage, *instance.usage.children(recursive=True)]
            cpu += sum(p.cpu_percent(None) for p in procs)
            memory += sum(p.memory_percent() for p in procs)
            n += 1
    return (cpu / n, memory / n) if n else (0.0, 0.0)


async def _discard(spare: asyncio.Task[_Started | None]) -> None:
    """Stop a warm spare (once started, if it is still starting)."""
    started = await spare
    if started is not None:
        proc = started[0]
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        await proc.wait()


async def _drain(proc: asyncio.subprocess.Process, tag: str, log: Callable[[str], None]) -> None:
    """Keep reading a server's output (a full pipe would block it); show its errors."""
    assert proc.stdout is not None
    while True:
        line = await proc.stdout.readline()
        if not line:
            return
        text = line.decode(errors="replace").rstrip()
        if text:
            log(f"[{tag}] {text}")


def serve_hosting(config: HostingConfig, ready: Callable[[str], None],
                  log: Callable[[str], None]) -> None:  # fmt: skip
    """Host the emulator's endpoints until SIGINT/SIGTERM; ready(router URL) once it listens."""
    hosting = Hosting(config, log)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await hosting.run(stop, ready)

    asyncio.run(main())


# --- from other processes (the demo, the sweep's local default, the tests) ---------------


@contextmanager
def running_hosting(config: HostingConfig, timeout: float = 60.0) -> Iterator[str]:
    """Start `recommender host` as a subprocess; yield its router URL; stop it (and every
    instance it started) on exit."""
    c = config.check()
    cmd = [sys.executable, "-m", "recommender", "host", "--aws-endpoint-url", c.aws_endpoint_url,
           "--region", c.region, "--port", str(c.port), "--poll-seconds", str(c.poll_seconds),
           "--provision-seconds", str(c.provision_seconds),
           "--metrics-period", str(c.metrics_period), "--model", c.model,
           "--max-queue", str(c.max_queue), "--minute-seconds", str(c.minute_seconds),
           "--warm-spares", str(c.warm_spares)]  # fmt: skip
    with running_command(cmd, "the local hosting layer", timeout, "[host] ") as url:
        yield url
