"""Runs a load test: preflight, Locust as a subprocess, and the run directory around it.

Locust monkey-patches the process with gevent on import, so it never runs in ours: we
start `python -m locust` headless with our harness and the user's locustfile, hand it the
plan in its environment (recommender.loadgen.config: it holds the request headers, so it
never touches the disk), and read back what it recorded.
Ctrl-C (or SIGTERM) stops Locust gracefully; everything measured so far stays, and the
run is marked `interrupted`.

`run_loadtest` is three steps: `prepare` (pure: the spec -> run.json, the Locust config and
command), `drive` (Locust and its workers through the plan, progress, interrupts) and
`finalize` (read back, totals, status, run.json).
"""

from __future__ import annotations

import base64
import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from recommender import __version__, runs
from recommender.errors import ConfigError, EndpointError, LoadTestError, RunDirError
from recommender.loadgen import payloads as payloads_mod
from recommender.loadgen.config import CONFIG_ENV, ControllerSpec, LoadgenConfig, Signing
from recommender.loadgen.progress import Snapshot, Watcher
from recommender.loadgen.sigv4 import Credentials, SigV4Signer
from recommender.plan import RampPlan, SearchSettings, Slo, Stage, Target
from recommender.redact import redact_url, scrub, scrub_file

HERE = Path(__file__).resolve().parent
ENTRY = HERE / "entry.py"
DEFAULT_LOCUSTFILE = HERE / "locustfile.py"
GRACE_SECONDS = 60  # beyond the plan's duration before Locust is stopped by force
STREAM_SECONDS = 20.0  # the least response time the user pool is sized for with --stream
_CANNOT_SIGN = "a SageMaker target needs credentials and a region to sign with"


# A live display: a Snapshot each second while the load runs, then None once it is over.
Watch = Callable[[Snapshot | None], None]

@dataclass(frozen=True)
class LoadTestSpec:
    """`plan`: a fixed staged ramp, or the settings of the adaptive search."""

    target: Target
    plan: RampPlan | SearchSettings
    slo: Slo
    payload: Path | None = None
    locustfile: Path | None = None
    out: Path = Path("reports")
    seed: int | None = None
    # Signs the preflight request of a SageMaker target (the Locust process resolves its own).
    credentials: Callable[[], Credentials] | None = None
    # The run starts on a multiple of this many seconds (epoch), so its seconds line up
    # with CloudWatch's periods and a stage can hold whole periods.
    align_seconds: int = 1
    # Stop a fixed ramp when a stage endangers the endpoint (the search has its own).
    abort_error_rate: float = 0.10
    abort_latency_factor: float = 3.0
    arrivals: str = "poisson"  # what production traffic from many clients looks like
    users: int = 0  # 0: sized from the top rate and the SLO (Little's law)
    # Locust's distributed mode: `workers` local worker processes, plus `expect_workers`
    # started elsewhere (`recommender worker --master-host ...`) for a multi-machine run.
    workers: int = 0
    expect_workers: int = 0
    keep_requests: bool = False  # raw per-request rows as Parquet, besides the histograms
    # --template (recommender.loadgen.payloads.Template): the payload's lines are prompts.
    template: str | None = None
    max_new_tokens: int | None = None
    # Locust's web UI on this loopback port while the run goes (None: headless). The plan
    # still decides the rates: with a load shape, the UI shows the run and cannot steer it.
    web_port: int | None = None
    master_bind_host: str = "127.0.0.1"
    master_port: int = 0  # 0: a free port (local workers)
    # A hard cap on the requests sent: the generator stops releasing sends there and the
    # run ends by itself, `stopped` (None: the plan's duration is the only bound).
    max_requests: int | None = None

    @property
    def distributed(self) -> bool:
        return self.workers + self.expect_workers > 0

    @property
    def max_rps(self) -> float:
        return self.plan.max_rps

    @property
    def max_duration(self) -> float:
        return self.plan.duration if isinstance(self.plan, RampPlan) else self.plan.max_duration

    def controller(self) -> ControllerSpec:
        """How the Locust process picks each stage's rate (see recommender.search)."""
        return ControllerSpec(self.plan, self.abort_error_rate, self.abort_latency_factor)


@dataclass(frozen=True)
class LoadTestResult:
    run_dir: Path
    status: str
    totals: dict[str, Any]


def split_url(url: str) -> tuple[str, str]:
    """("http://host:port", "/path") of an invocation URL; ConfigError when it is not one."""
    how = "pass e.g. --url http://127.0.0.1:8080/invocations"
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is not a number in 0-65535
    except ValueError as exc:
        raise ConfigError(f"not a URL: {redact_url(url)!r}: {exc}", how) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"not an http(s) URL: {redact_url(url)!r}", how)
    if any(ord(c) < 33 or ord(c) == 127 for c in url):
        raise ConfigError(f"the URL holds a space or control character: {redact_url(url)!r}", how)
    base = f"{parts.scheme}://{parts.netloc}"
    path = parts.path or "/invocations"
    return base, path + (f"?{parts.query}" if parts.query else "")


def request_headers(
    target: Target, body: bytes, credentials: Callable[[], Credentials] | None
) -> dict[str, str]:
    """The headers of one invocation; SigV4-signed when the target is a SageMaker endpoint."""
    headers = dict(_headers(target))
    signing = _signing(target)
    if signing is None:
        return headers
    if credentials is None:
        raise ConfigError(_CANNOT_SIGN)
    parts = urlsplit(target.url)
    signer = SigV4Signer(signing.region, credentials)
    return signer.sign("POST", parts.netloc, parts.path, body, headers)


def _signing(target: Target) -> Signing | None:
    """Where a SageMaker target's requests are signed for; None for a plain container."""
    if not target.signed:
        return None
    if target.region is None:
        raise ConfigError(_CANNOT_SIGN)
    return Signing(target.region, target.profile)


def preflight(
    target: Target,
    body: bytes,
    credentials: Callable[[], Credentials] | None = None,
    timeout: float = 10.0,
) -> None:
    """Fail fast, before any load: is the endpoint there, and does it accept the payload?"""
    parts = urlsplit(target.url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise EndpointError(
            f"cannot reach {target.shown_url}: {reason}", "is the endpoint running? check --url"
        ) from exc
    url, headers = target.url, request_headers(target, body, credentials)
    secret = target.secrets()
    if parts.username is not None:
        # urllib reads "user:password@host" as the host's name; Locust's FastHttpUser sends
        # the URL's user and password as Basic auth, so the first request does the same.
        url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        user_pass = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        basic = base64.b64encode(user_pass.encode("latin1")).decode("ascii")
        headers["Authorization"] = f"Basic {basic}"
        secret.append(basic)  # an endpoint echoing the request must not print it either
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        # Some servers echo the request back: its secrets must not reach the terminal.
        detail = scrub(" ".join(exc.read(300).decode("utf-8", "replace").split()),
                       secret)  # fmt: skip
        if exc.code in (429, 503):
            return  # busy, not wrong: the ramp will measure it
        raise EndpointError(
            f"the endpoint answered the first payload with HTTP {exc.code}: {detail}",
            "check --payload and --content-type against what the model expects",
        ) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise EndpointError(
            f"cannot invoke {target.shown_url}: {getattr(exc, 'reason', exc)}", "check --url"
        ) from exc


def _headers(target: Target) -> Iterator[tuple[str, str]]:
    yield "Content-Type", target.content_type or "application/json"
    if target.accept:
        yield "Accept", target.accept
    yield from target.headers.items()


def run_loadtest(
    spec: LoadTestSpec, echo: Callable[[str], None] = print, watch: Watch | None = None
) -> LoadTestResult:
    """Check the target, make the run directory, drive Locust through the plan, and read
    back what it measured. Ctrl-C or SIGTERM ends the run early; what was measured stays.
    `watch` gets a Snapshot of the run each second (a live display)."""
    spec, bodies = _resolve(spec)
    preflight(spec.target, bodies.bodies[0], spec.credentials)
    started = time.time()
    run_dir = runs.make_run_dir(
        spec.out, spec.target.name, datetime.fromtimestamp(started, timezone.utc)
    )
    port = (spec.master_port or _free_port()) if spec.distributed else None
    run = prepare(spec, bodies, run_dir, started, port)
    runs.write_json(run_dir / runs.RUN_FILE, run.meta)
    runs.reserve_space(run_dir)
    echo(run.headline)
    status, returncode = drive(run, echo, watch)
    return finalize(run, status, returncode)


def _resolve(spec: LoadTestSpec) -> tuple[LoadTestSpec, payloads_mod.Payloads]:
    """The spec with its content type settled by the payload, and the payload; ConfigError
    before anything is sent."""
    split_url(spec.target.url)
    if spec.locustfile is not None and not spec.locustfile.is_file():
        raise ConfigError(f"locustfile not found: {spec.locustfile}", "check --locustfile")
    payloads_mod.check_template(spec.template, spec.max_new_tokens)
    template = None
    if spec.template is not None:
        template = payloads_mod.Template(spec.template, spec.max_new_tokens, spec.target.stream)
    bodies = payloads_mod.load_payloads(spec.payload, spec.target.content_type, template)
    return replace(spec, target=replace(spec.target, content_type=bodies.content_type)), bodies


@dataclass(frozen=True, kw_only=True)
class PreparedRun:
    """Everything a load test runs with, decided before anything runs (see `prepare`)."""

    spec: LoadTestSpec
    run_dir: Path
    started: float  # epoch seconds: the run directory's stamp, the deadline's origin
    users: int
    meta: dict[str, Any]  # run.json as the run starts
    config: LoadgenConfig  # for the Locust process, in its environment ($RECOMMENDER_CONFIG)
    command: tuple[str, ...]  # Locust: the single process, or the master
    port: int | None  # the master's, when distributed
    headline: str  # the line shown as the load starts

    @property
    def deadline(self) -> float:
        """Past this, Locust has overrun the plan and is stopped."""
        spec = self.spec
        return self.started + spec.align_seconds + spec.max_duration + GRACE_SECONDS


def pool_size(spec: LoadTestSpec) -> int:
    """Users needed to keep the top rate open-loop while responses take up to a few SLO
    limits (Little's law: in flight = rate x latency), plus slack; or the spec's own."""
    if getattr(spec.plan, "control", "rate") == "concurrency":
        return math.ceil(spec.max_rps)  # one user per request in flight, at the most
    budget_s = max(1.0, 4 * max(t.limit_ms for t in spec.slo.terms) / 1000.0)
    if spec.target.stream:
        # A streamed answer lasts its whole generation, however short its TTFT limit.
        budget_s = max(budget_s, STREAM_SECONDS)
    return spec.users or max(10, math.ceil(spec.max_rps * budget_s * 1.2))


def _payload_meta(bodies: payloads_mod.Payloads) -> dict[str, Any]:
    """run.json's `payload`: where the bodies came from; for prompts, their approximate
    input tokens (recommender.tokens: no tokenizer)."""
    meta: dict[str, Any] = {"source": bodies.source, "bodies": len(bodies.bodies)}
    if bodies.template is not None:
        meta["template"] = bodies.template
    tokens = [payloads_mod.prompt_tokens(b) for b in bodies.bodies]
    if any(tokens):
        from recommender.tokens import APPROXIMATE

        meta["input_tokens"] = {"mean": sum(tokens) / len(tokens), "min": min(tokens),
                                "max": max(tokens), "counted": APPROXIMATE}  # fmt: skip
    return meta


def prepare(
    spec: LoadTestSpec,
    bodies: payloads_mod.Payloads,
    run_dir: Path,
    started: float,
    port: int | None = None,
) -> PreparedRun:
    """The run's files and commands from its spec (pure: nothing is written or started).
    `port`: the master's, for a distributed run."""
    base, path = split_url(spec.target.url)
    users = pool_size(spec)
    locustfile = spec.locustfile or DEFAULT_LOCUSTFILE
    meta: dict[str, Any] = {
        "schema_version": runs.SCHEMA_VERSION,
        "tool": {"name": "recommender", "version": __version__},
        "name": spec.target.name,
        "status": "running",
        "created_at": runs.iso(started),
        "target": spec.target.to_dict(),
        "plan": spec.plan.to_dict(),
        "search": spec.controller().to_dict(),
        "slo": spec.slo.to_dict(),
        "payload": _payload_meta(bodies),
        "locustfile": str(locustfile),
        "files": {"latency": runs.LATENCY_FILE},
    }
    config = LoadgenConfig(
        run_dir=run_dir,
        controller=spec.controller(),
        slo=spec.slo,
        arrivals=spec.arrivals,
        path=path,
        host=urlsplit(base).netloc,
        headers=dict(_headers(spec.target)),
        payload=bodies.source,
        users=users,
        workers=spec.workers + spec.expect_workers,
        bodies_count=len(bodies.bodies),
        keep_requests=spec.keep_requests,
        # Local workers share this machine's disk; remote ones write to their cwd.
        requests_dir=str(run_dir),
        seed=spec.seed,
        align_seconds=spec.align_seconds,
        # Where to sign for; the Locust process resolves credentials itself.
        sigv4=_signing(spec.target),
        stream=spec.target.stream,
        token_format=spec.target.token_format,
        template=spec.template,
        max_new_tokens=spec.max_new_tokens,
        max_requests=spec.max_requests,
    )
    if spec.max_requests is not None:
        meta["max_requests"] = spec.max_requests
    # Locust's web UI, when asked, on loopback only (it has no authentication): the run starts
    # at once as headless does, and Locust quits when the plan is over.
    ui = (["--autostart", "--autoquit", "0", "--web-host", "127.0.0.1",
           "--web-port", str(spec.web_port)] if spec.web_port else ["--headless"])  # fmt: skip
    command = [
        *_locust(locustfile),
        *ui, "--host", base,
        "--loglevel", "WARNING", "--only-summary",
        "--exit-code-on-error", "0",
        # At the end, requests in flight complete and are recorded instead of being cut off,
        # so the run counts exactly what the endpoint served.
        "--stop-timeout", "30",
    ]  # fmt: skip
    if spec.distributed:
        assert port is not None, "a distributed run needs the master's port"
        command += ["--master", "--expect-workers", str(spec.workers + spec.expect_workers),
                    "--expect-workers-max-wait", "120", "--master-bind-host",
                    spec.master_bind_host, "--master-bind-port", str(port)]  # fmt: skip
    if isinstance(spec.plan, RampPlan):
        shape = f"{len(spec.plan.stages)} fixed stages, {spec.plan.stages[0].rps:g} -> "
        shape += f"{spec.plan.max_rps:g} rps, {spec.plan.duration:.0f}s"
    else:
        unit = "in flight" if spec.plan.control == "concurrency" else "rps"
        shape = f"adaptive search from {spec.plan.start_rps:g} {unit} (at most "
        shape += f"{spec.plan.max_rps:g} {unit}, {spec.plan.max_duration:.0f}s)"
    procs = f", {spec.workers + spec.expect_workers} workers" if spec.distributed else ""
    return PreparedRun(
        spec=spec, run_dir=run_dir, started=started, users=users, meta=meta, config=config,
        command=tuple(command), port=port if spec.distributed else None,
        headline=f"Load test: {shape}, {users} users{procs} -> {spec.target.shown_url}" + (
            f"\nLocust's web UI: http://127.0.0.1:{spec.web_port} (from elsewhere: ssh -L "
            f"{spec.web_port}:127.0.0.1:{spec.web_port} this-host)" if spec.web_port else ""),
    )  # fmt: skip


def drive(
    run: PreparedRun, echo: Callable[[str], None], watch: Watch | None = None
) -> tuple[str, int]:
    """Run Locust (and its local workers) through the plan, showing each stage's result;
    returns the run's status and Locust's exit code. An interrupt or an overrun stops
    Locust gracefully, so it flushes what it measured."""
    spec = run.spec
    status, returncode = "complete", 0
    env = dict(os.environ, **run.config.to_env())
    workers: list[subprocess.Popen[bytes]] = []
    with (run.run_dir / runs.LOCUST_LOG).open("w") as log, sigterm_as_interrupt():
        proc = subprocess.Popen(
            run.command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            if run.port is not None:
                if spec.expect_workers:
                    echo(
                        f"Waiting for {spec.expect_workers} worker(s): on each load machine run "
                        f"`recommender worker --master-host <this host> --master-port {run.port}`"
                    )
                for i in range(spec.workers):
                    log_path = run.run_dir / runs.worker_log_file(i)
                    workers.append(start_worker("127.0.0.1", run.port, spec.locustfile, log_path))
            returncode = _watch(proc, run, echo, watch)
            if returncode != 0:
                status = "stopped"
        except KeyboardInterrupt:
            status = "interrupted"
            echo("Interrupted: stopping the load and keeping what was measured...")
            _stop(proc)
        except _Overrun:
            status = "stopped"
            echo("Locust ran past the plan; stopped it.")
            _stop(proc)
        except BaseException:
            _stop(proc)  # never leave load running behind an error of ours
            raise
        finally:
            for w in workers:  # they leave with the master; make sure
                _stop(w)
            if watch is not None:
                watch(None)
    return status, returncode


def finalize(run: PreparedRun, status: str, returncode: int) -> LoadTestResult:
    """Read back what Locust recorded, complete run.json, and redact any secret of the
    target's (a header value) that Locust's logs may have printed. LoadTestError when
    nothing was recorded and nobody interrupted the run."""
    run_dir = run.run_dir
    runs.release_space(run_dir)  # run.json must fit, even on a full disk
    secrets = run.spec.target.secrets()
    for name in (runs.LOCUST_LOG, *(runs.worker_log_file(i) for i in range(run.spec.workers))):
        try:
            scrub_file(run_dir / name, secrets)
        except OSError:  # no room to rewrite it: a log that may hold a secret goes
            (run_dir / name).unlink(missing_ok=True)
    records = runs.read_seconds(run_dir / runs.LATENCY_FILE)
    generator = _read_json(run_dir / runs.GENERATOR_FILE)
    ended = time.time()
    search = _read_json(run_dir / runs.SEARCH_FILE)
    disk_error = generator.get("disk_error")
    if (disk_error or generator.get("capped")) and status == "complete":
        status = "stopped"
    meta = final_meta(run, status, returncode, records, generator, search, ended)
    try:
        runs.write_json(run_dir / runs.RUN_FILE, meta)
    except OSError as exc:
        raise RunDirError(f"cannot write {run_dir / runs.RUN_FILE}: {exc.strerror}; the "
                          f"seconds measured are in {runs.LATENCY_FILE}",
                          "free some space on its disk") from exc  # fmt: skip
    if disk_error:
        last = max((int(r["second"]) for r in records), default=-1)
        raise RunDirError(f"the disk holding {run_dir} is full ({disk_error}): the load "
                          f"stopped after second {last}; what was measured until then is kept",
                          f"free some space, then `recommender analyze {run_dir}`")  # fmt: skip
    refused = generator.get("refused") or []
    if refused:  # a worker of another version: the load fell short of the plan
        first = refused[0]
        raise LoadTestError(f"worker {first.get('worker')} refused the run: "
                            f"{first.get('message')}", first.get("hint") or None)  # fmt: skip
    if not records and status != "interrupted":
        log = run_dir / runs.LOCUST_LOG
        tail = log.read_text()[-2000:].strip().splitlines()
        raise LoadTestError(
            f"Locust recorded no requests (exit {returncode}): {tail[-1] if tail else 'no output'}",
            f"see {log}",
        )
    return LoadTestResult(run_dir, status, meta["totals"])


def final_meta(
    run: PreparedRun,
    status: str,
    returncode: int,
    records: list[dict[str, Any]],
    generator: dict[str, Any],
    search: dict[str, Any],
    ended: float,
) -> dict[str, Any]:
    """run.json once the load is over (pure), from what the Locust process wrote."""
    spec = run.spec
    t0 = float(generator.get("t0", run.started))
    stop = ended - t0
    if generator.get("capped") and records:
        # The request cap ended the load: the stages were played until its last second (a
        # master's clock runs on to the plan's end while it waits for its workers).
        stop = min(stop, max(float(r["second"]) for r in records) + 1.0)
    played = [(float(x["rps"]), float(x["start"]), min(float(x["end"]), stop))
              for x in search.get("stages", [])]  # fmt: skip
    played = [(r, a, b) for r, a, b in played if b > a]
    warmup = spec.plan.warmup_seconds
    plan = RampPlan(tuple(Stage(r, b - a) for r, a, b in played), warmup, spec.arrivals, run.users,
                    getattr(spec.plan, "control", "rate"))  # fmt: skip
    return {
        **run.meta,
        "status": status,
        "started_at": runs.iso(t0),
        "ended_at": runs.iso(ended),
        # The stages as played: for a fixed ramp the plan (cut short if it was stopped),
        # for the search the rates it chose. The analysis reads this.
        "plan": plan.to_dict(),
        "search": {**spec.controller().to_dict(), "decisions": search.get("decisions", [])},
        "stages": [
            {"index": i, "rps": r, "seconds": b - a, "start": runs.iso(t0 + a),
             "end": runs.iso(t0 + b), **runs.stage_totals(records, i)}
            for i, (r, a, b) in enumerate(played)
        ],  # fmt: skip
        "generator": {
            "tool": "locust",
            "locust_returncode": returncode,
            "users": run.users,
            "processes": max(1, spec.workers + spec.expect_workers),
            "workers": generator.get("workers"),
            **({"refused": generator["refused"]} if generator.get("refused") else {}),
            # The run directory's disk filled up: the load stopped; seconds not written.
            **({"disk_error": generator["disk_error"], "unwritten": generator.get("unwritten")}
               if generator.get("disk_error") else {}),  # fmt: skip
            # The load reached its request cap (max_requests) and stopped there.
            **({"capped_at": spec.max_requests} if generator.get("capped") else {}),
            # Sends still queued when the plan ended (the generator had fallen behind);
            # dropped so the endpoint gets no load past the plan.
            "unsent_at_end": generator.get("unsent_at_end", 0),
            "host": socket.gethostname(),
            "cpu_count": os.cpu_count(),
            "arrivals": spec.arrivals,
        },
        # Every request the arrival process released is here once: completed (succeeded or
        # failed, by kind), not sent, or (a full disk) measured but not written; `intended`
        # = requests + not_sent + not_written unless some were lost (a worker killed before
        # it reported them).
        "totals": {**runs.totals(records), "intended": generator.get("issued"),
                   "not_sent": generator.get("unsent_at_end", 0),
                   **({"not_written": generator["unwritten"]["requests"]}
                      if generator.get("unwritten") else {})},  # fmt: skip
    }


class _Overrun(Exception):
    pass


def _watch(
    proc: subprocess.Popen[bytes],
    run: PreparedRun,
    echo: Callable[[str], None],
    watch: Watch | None = None,
) -> int:
    """Wait for Locust, printing each stage's result as it completes (and, to `watch`, a
    snapshot of the run each second)."""
    shown = 0
    watcher = Watcher(run.run_dir, run.spec.plan, run.spec.slo) if watch else None
    while True:
        try:
            code = proc.wait(timeout=1.0)
            _progress(run.run_dir, shown, echo)  # the last decisions
            return code
        except subprocess.TimeoutExpired:
            pass
        if time.time() > run.deadline:
            raise _Overrun()
        shown = _progress(run.run_dir, shown, echo)
        if watch is not None and watcher is not None:
            try:
                snapshot = watcher.snapshot()
            except (OSError, ValueError, KeyError, TypeError) as exc:
                # The live view is a display: its failure must never cost the run.
                echo(f"  (live status stopped: {type(exc).__name__}: {exc})")
                watcher = None
                continue
            if snapshot is not None:
                watch(snapshot)


def _progress(run_dir: Path, shown: int, echo: Callable[[str], None]) -> int:
    """Print the controller's decisions not shown yet; returns how many are shown."""
    search = _read_json(run_dir / runs.SEARCH_FILE)
    decisions = search.get("decisions", [])
    unit = "in flight" if search.get("control") == "concurrency" else "rps"
    for d in decisions[shown:]:
        if d["action"] == "next":
            action = f"next {d['next_rps']:g} {unit} ({d['why']})"
        else:
            action = f"{d['action']}: {d['why']}"
        echo(f"  stage {d['stage'] + 1} at {d['rps']:g} {unit}: {d['outcome'].upper()} "
             f"[{d['reason']}] -> {action}")  # fmt: skip
    return len(decisions)


def run_worker(master_host: str, master_port: int, locustfile: Path | None,
               echo: Callable[[str], None] = print) -> int:  # fmt: skip
    """`recommender worker`: one Locust worker in the foreground until the master's run
    ends (its exit code); Ctrl-C stops it and is raised again."""
    if locustfile is not None and not locustfile.is_file():
        raise ConfigError(f"locustfile not found: {locustfile}", "check --locustfile")
    echo(f"Worker for the master at {master_host}:{master_port}; Ctrl-C to leave.")
    proc = start_worker(master_host, master_port, locustfile, None)
    try:
        return proc.wait()
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
        raise


def start_worker(
    master_host: str, master_port: int, locustfile: Path | None, log: Path | None
) -> subprocess.Popen[bytes]:
    """One Locust worker process; it gets its config and stages from the master."""
    cmd = [*_locust(locustfile or DEFAULT_LOCUSTFILE), "--worker",
           "--master-host", master_host, "--master-port", str(master_port),
           "--loglevel", "WARNING"]  # fmt: skip
    # A worker's config comes from the master, never from a file.
    env = {k: v for k, v in os.environ.items() if k != CONFIG_ENV}
    out = log.open("w") if log else None
    try:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env,
                                start_new_session=log is not None)  # fmt: skip
    finally:
        if out:
            out.close()


def _locust(locustfile: Path) -> list[str]:
    """Locust, loading our harness beside the locustfile."""
    return [sys.executable, "-m", "locust", "-f", f"{ENTRY},{locustfile.resolve()}"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT lets Locust fire its stop events, which flush the last seconds. Not SIGTERM:
    a headless Locust running a shape installs its SIGTERM handler only once the shape is
    over, so until then SIGTERM kills it outright and the seconds not yet flushed (the one
    in progress, requests in flight) are lost; SIGINT is handled by the harness, which ends
    the shape (roles.Role.interrupt), so Locust stops the users as at the plan's end
    (in-flight requests finish, --stop-timeout) and fires test_stop."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises KeyboardInterrupt, so `kill` ends the run as Ctrl-C does (data kept)."""
    def handler(_sig: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, json.JSONDecodeError):
        return {}
