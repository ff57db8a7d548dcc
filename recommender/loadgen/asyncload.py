"""Load on an asynchronous endpoint: InvokeEndpointAsync at an open-loop rate, completion
observed in S3.

Not Locust: an async request is two events far apart (accepted in milliseconds, done
seconds or minutes later in S3), and async endpoints take tens of requests per second,
not thousands, so one asyncio loop (aiohttp) sends and watches everything. Per request:

1. Its body was put in S3 once, before the load, under the run's prefix
   (`--input-s3 s3://bucket/prefix` + `/<run>/<i>.<ext>`), and is reused.
2. At its intended send time (uniform or Poisson arrivals), a SigV4-signed
   InvokeEndpointAsync names that input. The 202 gives the InferenceId, OutputLocation and
   FailureLocation; accept latency is measured to it.
3. One poller HEADs every outstanding request's output (then failure) location through a
   presigned URL (no boto3 call per poll), at most POLL_CONCURRENCY at a time, one round
   every `poll_interval` seconds at most: polling cost grows with the backlog, never with
   time, and nothing spins. A request found done is taken to have completed halfway between
   the poll that found it and the one before (or its accept), so the resolution is one
   round. One not done within `completion_timeout` counts as the error `timeout`.
   S3 polling only: SNS notifications would need a subscriber (an SQS queue or an HTTP
   endpoint the endpoint can reach), which a load generator should not create.

Stages: the fixed ramp, each followed by a drain (the plan as played holds it as a rest of
rate 0) until the stage's requests are all resolved, so a stage's completion latencies
are its own, not the backlog the previous stage left. After each stage it is judged
(completion-latency SLO, errors, and backlog growth: recommender.analysis.asynchronous);
the ramp stops after the first failing stage.

Accounting: every request whose send time came is recorded exactly once, by the second of
its intended send: ok (completion latency), or an error kind (HTTP status, `failed`: the
endpoint wrote a failure, `timeout`, `unfinished`: the run was interrupted before it was
seen done). Ctrl-C or SIGTERM stops the sends, marks what is outstanding `unfinished`, and
writes everything measured; the inputs (and our outputs) are removed on the way out
unless `--keep-inputs` (`--keep-outputs`).
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from hdrh.histogram import HdrHistogram

from recommender import __version__, histograms, runs
from recommender.analysis.asynchronous import judge_stage
from recommender.errors import LoadTestError
from recommender.loadgen.payloads import Payloads
from recommender.loadgen.sigv4 import Credentials, SigV4Signer
from recommender.plan import RampPlan, Slo, Stage, Target
from recommender.s3uri import S3Uri, parse_s3_uri

POLL_CONCURRENCY = 16
BACKLOG_FILE = runs.BACKLOG_FILE
_SUFFIX = {"application/json": "json", "text/csv": "csv", "text/plain": "txt"}


class S3Access(Protocol):
    """What the load needs of recommender.aws.AwsClient (passed in: loadgen stays off boto3)."""

    def check_bucket(self, bucket: str, flag: str) -> None: ...
    def put_object(self, bucket: str, key: str, body: bytes, content_type: str) -> None: ...
    def delete_objects(self, bucket: str, keys: list[str]) -> int: ...
    def presigned_head(self, bucket: str, key: str, expires: int) -> str: ...
    def list_keys(self, bucket: str, prefix: str, start_after: str | None = None
                  ) -> list[str]: ...  # fmt: skip


@dataclass(frozen=True)
class AsyncLoadSpec:
    target: Target  # url: .../endpoints/<e>/async-invocations
    plan: RampPlan
    slo: Slo
    payloads: Payloads
    input_s3: str  # s3://bucket/prefix: the run's inputs go under <prefix>/<run>/
    credentials: Callable[[], Credentials]
    out: Path = Path("reports")
    slots_per_instance: int | None = None  # MaxConcurrentInvocationsPerInstance
    completion_timeout: float = 900.0
    poll_interval: float = 0.5
    keep_inputs: bool = False
    keep_outputs: bool = False
    arrivals: str = "uniform"
    seed: int | None = None
    stop_on_failure: bool = True


@dataclass
class _Second:
    requests: int = 0
    ok: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    hist: HdrHistogram = field(default_factory=histograms.new)
    hist_co: HdrHistogram = field(default_factory=histograms.new)
    accept: HdrHistogram = field(default_factory=histograms.new)

    def record(self, stage: int, second: int) -> dict[str, Any]:
        return {
            "second": second,
            "stage": stage,
            "requests": self.requests,
            "ok": self.ok,
            "errors": dict(self.errors),
            "latency_us": histograms.encode(self.hist) if self.ok else "",
            "latency_co_us": histograms.encode(self.hist_co) if self.ok else "",
            "accept_us": histograms.encode(self.accept) if self.accept.get_total_count() else "",
            "cpu_percent": None,
        }


@dataclass
class _Pending:
    inference_id: str
    intended: float
    sent: float
    accepted: float
    output_url: str
    failure_url: str | None
    output_key: S3Uri | None
    failure_key: S3Uri | None
    last_check: float


@dataclass
class _State:
    t0: float
    seconds: dict[int, _Second] = field(default_factory=dict)
    stage_of: dict[int, int] = field(default_factory=dict)
    pending: dict[int, _Pending] = field(default_factory=dict)
    in_send: int = 0  # sent, no answer yet
    sent: int = 0
    accepted: int = 0
    completed: int = 0
    failed: int = 0
    next_key: int = 0
    results: list[S3Uri] = field(default_factory=list)  # our outputs and failures, to remove

    def bucket(self, intended: float, stage: int) -> _Second:
        s = int(intended - self.t0)
        self.stage_of[s] = stage
        return self.seconds.setdefault(s, _Second())

    def done(self, intended: float, stage: int, error: str | None,
             sent: float | None = None, completed: float | None = None) -> None:  # fmt: skip
        b = self.bucket(intended, stage)
        b.requests += 1
        if error is not None:
            b.errors[error] += 1
            return
        assert sent is not None and completed is not None
        b.ok += 1
        histograms.record_ms(b.hist, max(0.0, completed - sent) * 1000.0)
        histograms.record_ms(b.hist_co, max(0.0, completed - intended) * 1000.0)


@dataclass(frozen=True)
class AsyncLoadResult:
    run_dir: Path
    status: str
    totals: dict[str, Any]


def run_async_loadtest(spec: AsyncLoadSpec, s3: S3Access,
                       echo: Callable[[str], None] = print) -> AsyncLoadResult:  # fmt: skip
    """Upload the inputs, drive the ramp, write the run directory, clean up."""
    prefix = parse_s3_uri(spec.input_s3, "--input-s3")
    s3.check_bucket(prefix.bucket, "--input-s3")
    started = time.time()
    run_dir = runs.make_run_dir(spec.out, spec.target.name, datetime.fromtimestamp(started,
                                                                               timezone.utc))
    run_prefix = prefix.child(run_dir.name)
    ext = _SUFFIX.get(spec.payloads.content_type, "bin")
    inputs = [run_prefix.child(f"{i}.{ext}") for i in range(len(spec.payloads.bodies))]
    meta = _meta(spec, run_dir, started, run_prefix)
    runs.write_json(run_dir / runs.RUN_FILE, meta)
    uploaded: list[S3Uri] = []
    state = _State(t0=math.ceil(time.time()) + 1.0)
    status: str = "complete"
    played: list[tuple[float, float, float]] = []
    try:
        for uri, body in zip(inputs, spec.payloads.bodies, strict=True):
            s3.put_object(uri.bucket, uri.key, body, spec.payloads.content_type)
            uploaded.append(uri)
        echo(f"  {len(uploaded)} input(s) in {run_prefix}")
        state.t0 = math.ceil(time.time()) + 1.0
        status, played = asyncio.run(_drive(spec, s3, inputs, state, run_dir, echo))
    except KeyboardInterrupt:
        status = "interrupted"
    finally:
        _write_seconds(state, run_dir)
        _cleanup(spec, s3, uploaded, state, echo)
        ended = time.time()
        records = runs.read_seconds(run_dir / runs.LATENCY_FILE)
        meta = _final_meta(meta, spec, state, status, played, records, ended)
        runs.write_json(run_dir / runs.RUN_FILE, meta)
    if not records and status != "interrupted":
        raise LoadTestError("no request was sent", f"see {run_dir}")
    return AsyncLoadResult(run_dir, status, meta["totals"])


async def _drive(spec: AsyncLoadSpec, s3: S3Access, inputs: list[S3Uri], state: _State,
                 run_dir: Path, echo: Callable[[str], None]
                 ) -> tuple[str, list[tuple[float, float, float]]]:  # fmt: skip
    import aiohttp

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
    signer = SigV4Signer(spec.target.region or "us-east-1", spec.credentials)
    parts = urlsplit(spec.target.url)
    rng = random.Random(spec.seed)
    played: list[tuple[float, float, float]] = []  # (rps, start, end) relative to t0
    status = "complete"
    timeline = (run_dir / BACKLOG_FILE).open("a", encoding="utf-8")
    connector = aiohttp.TCPConnector(limit=256)
    timeout = aiohttp.ClientTimeout(total=60, connect=10)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as http:
        poller = asyncio.create_task(_poll(spec, http, s3, state, run_dir.name, stop))
        sampler = asyncio.create_task(_sample(state, timeline, stop))
        sends: set[asyncio.Task[None]] = set()
        n = 0
        try:
            at = 0.0
            for number, stage in enumerate(spec.plan.stages):
                index = len(played)  # the stage's place in the plan as played (rests too)
                start, end = at, at + stage.seconds
                ticks = _arrivals(stage.rps, start, end, spec.arrivals, rng)
                for t in ticks:
                    delay = state.t0 + t - time.time()
                    if delay > 0:
                        try:
                            await asyncio.wait_for(stop.wait(), timeout=delay)
                        except asyncio.TimeoutError:
                            pass
                    if stop.is_set():
                        break
                    task = asyncio.create_task(_send(spec, http, signer, s3, parts, inputs[
                        n % len(inputs)], f"{run_dir.name}-{n:07d}", state.t0 + t, index, state))
                    sends.add(task)
                    task.add_done_callback(sends.discard)
                    n += 1
                if stop.is_set():
                    played.append((stage.rps, start, max(start, time.time() - state.t0)))
                    status = "interrupted"
                    break
                wait_until = state.t0 + end - time.time()
                if wait_until > 0:
                    try:
                        await asyncio.wait_for(stop.wait(), timeout=wait_until)
                    except asyncio.TimeoutError:
                        pass
                played.append((stage.rps, start, end))
                # The drain: the stage's requests resolve before the next stage starts.
                while (sends or state.pending) and not stop.is_set():
                    try:
                        await asyncio.wait_for(stop.wait(), timeout=spec.poll_interval)
                    except asyncio.TimeoutError:
                        pass
                if stop.is_set():
                    status = "interrupted"
                    break
                drained = time.time() - state.t0
                at = math.ceil(drained)
                if at > end:
                    played.append((0.0, end, float(at)))
                verdict = _judge(spec, state, run_dir, played, index, stage, start, end)
                echo(f"  stage {number + 1} at {stage.rps:g} rps: {verdict.outcome.upper()} "
                     f"[{verdict.reason}] (drained in {drained - end:.1f}s)")  # fmt: skip
                if not verdict.passed and spec.stop_on_failure:
                    break
        finally:
            stop.set()
            for task in list(sends):
                task.cancel()
            await asyncio.gather(*sends, return_exceptions=True)
            await asyncio.gather(poller, sampler, return_exceptions=True)
            timeline.close()
            for p_id, p in list(state.pending.items()):  # seen accepted, never seen done
                state.done(p.intended, state.stage_of.get(int(p.intended - state.t0), 0),
                           "unfinished")  # fmt: skip
                state.pending.pop(p_id)
    return status, played


def _arrivals(rate: float, start: float, end: float, kind: str, rng: random.Random
              ) -> list[float]:  # fmt: skip
    """Intended send times (relative) in [start, end): exactly 1/rate apart, or Poisson."""
    if rate <= 0:
        return []
    if kind == "poisson":
        out, t = [], start
        while (t := t + rng.expovariate(rate)) < end:
            out.append(t)
        return out
    return [start + k / rate for k in range(math.ceil((end - start) * rate - 1e-9))]


async def _send(spec: AsyncLoadSpec, http: Any, signer: SigV4Signer, s3: S3Access,
                parts: Any, source: S3Uri, inference_id: str, intended: float, stage: int,
                state: _State) -> None:  # fmt: skip
    import aiohttp

    headers = {
        "X-Amzn-SageMaker-InputLocation": str(source),
        "X-Amzn-SageMaker-Content-Type": spec.payloads.content_type,
        "X-Amzn-SageMaker-Inference-Id": inference_id,
        **{k: v for k, v in spec.target.headers.items()},
    }
    if spec.target.accept:
        headers["X-Amzn-SageMaker-Accept"] = spec.target.accept
    signed = signer.sign("POST", parts.netloc, parts.path, b"", headers)
    sent = time.time()
    state.sent += 1
    state.in_send += 1
    try:
        async with http.post(spec.target.url, data=b"", headers=signed) as resp:
            await resp.read()
            status = resp.status
            out_loc = resp.headers.get("X-Amzn-SageMaker-OutputLocation")
            fail_loc = resp.headers.get("X-Amzn-SageMaker-FailureLocation")
    except asyncio.CancelledError:
        state.done(intended, stage, "unfinished")
        raise
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
        state.done(intended, stage, type(exc).__name__)
        return
    finally:
        state.in_send -= 1
    accepted = time.time()
    histograms.record_ms(state.bucket(intended, stage).accept, (accepted - sent) * 1000.0)
    if status != 202 or not out_loc:
        state.done(intended, stage, f"HTTP {status}")
        return
    state.accepted += 1
    expires = int(spec.completion_timeout + 3600)
    output = parse_s3_uri(out_loc, "OutputLocation")
    failure = parse_s3_uri(fail_loc, "FailureLocation") if fail_loc else None
    state.results += [u for u in (output, failure) if u is not None]
    # Presigning is local computation (no call); done once per request, off the poll path.
    out_url = s3.presigned_head(output.bucket, output.key, expires)
    fail_url = s3.presigned_head(failure.bucket, failure.key, expires) if failure else None
    state.next_key += 1
    state.pending[state.next_key] = _Pending(
        inference_id, intended, sent, accepted, out_url, fail_url, output, failure, accepted)


async def _exists(http: Any, url: str) -> bool | None:
    """HEAD a presigned URL: True (200), False (404/403: not there yet), None (no answer)."""
    import aiohttp

    try:
        async with http.head(url) as resp:
            return bool(resp.status == 200)
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError):
        return None


def _listing(key: S3Uri | None, inference_id: str, suffix: str) -> tuple[str, str] | None:
    """(bucket, folder) when `key` is `<folder><inference id><suffix>`: SageMaker's default
    result name, which a listing of the folder finds without a HEAD per request."""
    if key is None or not key.key.endswith(inference_id + suffix):
        return None
    return key.bucket, key.key[: len(key.key) - len(inference_id + suffix)]


async def _poll(spec: AsyncLoadSpec, http: Any, s3: S3Access, state: _State, run_tag: str,
                stop: asyncio.Event) -> None:  # fmt: skip
    """Round after round over the outstanding requests, one round every poll_interval at
    most. Results named after their InferenceId (SageMaker's default) are found by listing
    their folder from the oldest outstanding one on (ListObjectsV2: one call per folder
    and round, however many are outstanding); any other is HEADed through its presigned
    URL, POLL_CONCURRENCY at a time."""
    gate = asyncio.Semaphore(POLL_CONCURRENCY)

    def resolve(key: int, p: _Pending, error: str | None, seen: float) -> None:
        if state.pending.pop(key, None) is None:
            return
        stage = state.stage_of.get(int(p.intended - state.t0), 0)
        if error is None:
            state.completed += 1
            # Done somewhere between the previous look and this one: take the middle.
            state.done(p.intended, stage, None, p.sent, (p.last_check + seen) / 2)
        else:
            state.failed += 1
            state.done(p.intended, stage, error)

    async def listed(bucket: str, folder: str, members: list[tuple[int, _Pending]],
                     suffix: str) -> set[str]:  # fmt: skip
        first = min(p.inference_id for _, p in members)
        try:
            keys = await asyncio.to_thread(s3.list_keys, bucket, folder + run_tag + "-",
                                           folder + first[:-1])  # fmt: skip
        except Exception:  # noqa: BLE001 - an unanswered poll is retried next round
            return set()
        return {k[len(folder):-len(suffix)] for k in keys if k.endswith(suffix)}

    async def head(key: int, p: _Pending) -> None:
        async with gate:
            now = time.time()
            if await _exists(http, p.output_url):
                resolve(key, p, None, now)
            elif p.failure_url and await _exists(http, p.failure_url):
                resolve(key, p, "failed", now)

    while not stop.is_set():
        began = time.time()
        items = list(state.pending.items())
        outputs: dict[tuple[str, str], list[tuple[int, _Pending]]] = {}
        failures: dict[tuple[str, str], list[tuple[int, _Pending]]] = {}
        others = []
        for k, p in items:
            where = _listing(p.output_key, p.inference_id, ".out")
            if where is None:
                others.append((k, p))
                continue
            outputs.setdefault(where, []).append((k, p))
            fail_where = _listing(p.failure_key, p.inference_id, "-error.out")
            if fail_where is not None:
                failures.setdefault(fail_where, []).append((k, p))
        if items:
            done_out = await asyncio.gather(*(listed(b, f, m, ".out")
                                              for (b, f), m in outputs.items()))  # fmt: skip
            done_fail = await asyncio.gather(*(listed(b, f, m, "-error.out")
                                               for (b, f), m in failures.items()))  # fmt: skip
            now = time.time()
            for found, members in zip(done_out, outputs.values(), strict=True):
                for k, p in members:
                    if p.inference_id in found:
                        resolve(k, p, None, now)
            for found, members in zip(done_fail, failures.values(), strict=True):
                for k, p in members:
                    if p.inference_id in found:
                        resolve(k, p, "failed", now)
            await asyncio.gather(*(head(k, p) for k, p in others))
            now = time.time()
            for k, p in items:
                if k in state.pending:
                    if now - p.sent > spec.completion_timeout:
                        resolve(k, p, "timeout", now)
                    else:
                        p.last_check = now
        rest = spec.poll_interval - (time.time() - began)
        try:
            await asyncio.wait_for(stop.wait(), timeout=max(rest, 0.05))
        except asyncio.TimeoutError:
            pass


async def _sample(state: _State, out: Any, stop: asyncio.Event) -> None:
    """Once a second: what the generator sees of the endpoint's queue (backlog.jsonl)."""
    while not stop.is_set():
        now = time.time()
        second = math.floor(now - state.t0)
        if second >= 0:
            out.write(json.dumps({"second": second, "sent": state.sent,
                                  "accepted": state.accepted, "completed": state.completed,
                                  "failed": state.failed,
                                  "outstanding": len(state.pending) + state.in_send}) + "\n")
            out.flush()
        try:
            await asyncio.wait_for(stop.wait(), timeout=1.0 - (time.time() - state.t0) % 1.0)
        except asyncio.TimeoutError:
            pass


def _judge(spec: AsyncLoadSpec, state: _State, run_dir: Path,
           played: list[tuple[float, float, float]], index: int, stage: Stage,
           start: float, end: float) -> Any:  # fmt: skip
    records = [b.record(state.stage_of[s], s) for s, b in sorted(state.seconds.items())
               if state.stage_of.get(s) == index]  # fmt: skip
    timeline = runs.read_seconds(run_dir / BACKLOG_FILE)
    return judge_stage(records, timeline, stage.rps, start, end, spec.plan.warmup_seconds,
                       spec.slo, _slots(spec))  # fmt: skip


def _slots(spec: AsyncLoadSpec) -> int:
    return (spec.slots_per_instance or 1) * max(1, spec.target.instances)


def _write_seconds(state: _State, run_dir: Path) -> None:
    with (run_dir / runs.LATENCY_FILE).open("w", encoding="utf-8") as f:
        for s, b in sorted(state.seconds.items()):
            f.write(json.dumps(b.record(state.stage_of[s], s)) + "\n")


def _cleanup(spec: AsyncLoadSpec, s3: S3Access, uploaded: list[S3Uri], state: _State,
             echo: Callable[[str], None]) -> None:  # fmt: skip
    """Remove the inputs and the results of our requests, unless asked to keep them; a
    failure here is told, never hidden (the objects would be left behind)."""
    groups = [("input", [] if spec.keep_inputs else uploaded),
              ("result", [] if spec.keep_outputs else state.results)]  # fmt: skip
    for what, uris in groups:
        by_bucket: dict[str, list[str]] = {}
        for u in uris:
            by_bucket.setdefault(u.bucket, []).append(u.key)
        for bucket, keys in by_bucket.items():
            try:
                s3.delete_objects(bucket, keys)
            except Exception as exc:  # noqa: BLE001 - say what is left, keep the run
                echo(f"  warning: could not remove the {what} objects in s3://{bucket} "
                     f"({exc}); remove them by hand")  # fmt: skip
    if spec.keep_inputs and uploaded:
        echo(f"  kept {len(uploaded)} input(s) under {uploaded[0].bucket} (--keep-inputs)")


def _meta(spec: AsyncLoadSpec, run_dir: Path, started: float, run_prefix: S3Uri
          ) -> dict[str, Any]:  # fmt: skip
    return {
        "schema_version": runs.SCHEMA_VERSION,
        "tool": {"name": "recommender", "version": __version__},
        "name": spec.target.name,
        "status": "running",
        "created_at": runs.iso(started),
        "target": {**spec.target.to_dict(), "kind": "async"},
        "plan": spec.plan.to_dict(),
        "search": {"mode": "fixed", "stop_on_failure": spec.stop_on_failure},
        "slo": spec.slo.to_dict(),
        "payload": {"source": spec.payloads.source, "bodies": len(spec.payloads.bodies)},
        "async": {
            "input_prefix": str(run_prefix),
            "slots_per_instance": spec.slots_per_instance,
            "completion_timeout_s": spec.completion_timeout,
            "poll_interval_s": spec.poll_interval,
            "completion": "S3 polling (HEAD of OutputLocation, then FailureLocation)",
            "kept_inputs": spec.keep_inputs,
            "kept_outputs": spec.keep_outputs,
        },
        "files": {"latency": runs.LATENCY_FILE, "backlog": BACKLOG_FILE},
    }


def _final_meta(meta: dict[str, Any], spec: AsyncLoadSpec, state: _State, status: str,
                played: list[tuple[float, float, float]], records: list[dict[str, Any]],
                ended: float) -> dict[str, Any]:  # fmt: skip
    t0 = state.t0
    plan = RampPlan(tuple(Stage(r, b - a) for r, a, b in played), spec.plan.warmup_seconds,
                    spec.arrivals, 0)  # fmt: skip
    return {
        **meta,
        "status": status,
        "started_at": runs.iso(t0),
        "ended_at": runs.iso(ended),
        "plan": plan.to_dict(),
        "stages": [{"index": i, "rps": r, "seconds": b - a, "start": runs.iso(t0 + a),
                    "end": runs.iso(t0 + b)} for i, (r, a, b) in enumerate(played)],  # fmt: skip
        "generator": {"tool": "asyncio (recommender.loadgen.asyncload)", "processes": 1,
                      "arrivals": spec.arrivals, "sent": state.sent,
                      "accepted": state.accepted},  # fmt: skip
        "totals": runs.totals(records),
    }
