"""`recommender sweep`: which instance type, and how many. Deploy each type, measure it with
the same adaptive search as `run`, price it, simulate a day of the traffic under its
recommended policy, rank, and delete what was deployed.

    <out>/<utc-stamp>-sweep-<model>/      the sweep directory
        sweep.json                         the ranking (schema report/sweep.schema.json)
        report.md, report.html             the table, the winner, its apply command, the plot
        deployed.json                      what the sweep created, and whether it is deleted
        <utc-stamp>-<instance type>/       each type's run directory (analyze, report, apply)

Everything the sweep creates (endpoint configs, endpoints) carries the tag
`recommender:sweep = <sweep id>` and is deleted whatever happens: after each type is
measured, on failure, on Ctrl-C (which is held off while deleting); `--keep` keeps the
winner. `recommender cleanup` deletes leftovers by the tag (a process killed outright).
"""

from __future__ import annotations

import ctypes
import json
import math
import re
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from recommender import pipeline, runs
from recommender.analysis import Analysis
from recommender.aws import AwsClient
from recommender.compare import Candidate, rank, stage_points
from recommender.errors import (
    ConfigError,
    Declined,
    EndpointError,
    ExitCode,
    InsufficientDataError,
    RecommenderError,
)
from recommender.loadgen.payloads import load_payloads
from recommender.loadgen.runner import Watch, sigterm_as_interrupt
from recommender.options import AwsAccess, RunOptions
from recommender.plan import DEFAULT_VARIANT, SearchSettings
from recommender.replay import simulate_run
from recommender.simulate import Policy
from recommender.sizing import (
    PRICES_NOTED,
    PRICES_REGION,
    Price,
    Traffic,
    instances_for,
    lookup_price,
)
from recommender.traffic import TrafficSeries, TrafficSpec

TAG_KEY = "recommender:sweep"
KEPT_KEY = "recommender:kept"  # the winner kept by --keep: `cleanup` leaves it
SWEEP_FILE, DEPLOYED_FILE = "sweep.json", "deployed.json"
SCHEMA = "recommender-sweep/1"
DEPLOY_TIMEOUT_S = 1800.0  # SageMaker endpoints take minutes (GPU types up to ~15) to deploy
# What one Locust process sends, signed, with room to spare: bench/README.md (bench_signing,
# bench_scale) measured 5,000-6,000 requests/s on one core; half leaves its timing honest.
GENERATOR_RPS_PER_PROCESS = 2500.0

Echo = Callable[[str], None]
Confirm = Callable[[str], bool]


@dataclass(frozen=True, kw_only=True)
class SweepOptions:
    """Everything `sweep` is told. `load` holds the load-test flags (as `run` takes them);
    its endpoint is filled in per configuration."""

    load: RunOptions
    traffic: TrafficSpec
    model_name: str | None = None
    instance_types: tuple[str, ...] = ()
    endpoints: tuple[str, ...] = ()  # compare endpoints the user deployed instead
    instance_count: int = 1
    variant: str = DEFAULT_VARIANT
    prices: tuple[str, ...] = ()  # "TYPE=USD"
    parallel: int = 1
    keep: bool = False
    deploy_timeout: float = DEPLOY_TIMEOUT_S


@dataclass(frozen=True)
class Config:
    """One configuration to measure."""

    instance_type: str
    endpoint: str
    price: Price
    created: bool  # deployed by the sweep (so it deletes it)


@dataclass
class Measured:
    config: Config
    result: pipeline.PipelineResult | None = None  # None: not measured (stopped before it)


@dataclass(frozen=True)
class SweepResult:
    sweep_dir: Path
    status: str  # complete | interrupted
    ranking: list[Candidate]
    winner: Candidate | None
    apply_command: str | None
    kept: str | None
    left: list[str] = field(default_factory=list)  # could not be deleted

    @property
    def exit_code(self) -> ExitCode:
        if self.status == "interrupted":
            return ExitCode.INTERRUPTED
        return ExitCode.OK if self.winner is not None else ExitCode.FAILED


# --- input ---------------------------------------------------------------------------------


def parse_prices(texts: Sequence[str]) -> dict[str, float]:
    """`--instance-price ml.c5.xlarge=0.204` (repeatable, comma-separated) as a mapping."""
    prices: dict[str, float] = {}
    for item in (p.strip() for t in texts for p in t.split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        try:
            usd = float(value) if sep else math.nan
        except ValueError:
            usd = math.nan
        if not name.strip() or not (math.isfinite(usd) and usd > 0):
            raise ConfigError(f"bad --instance-price {item!r}",
                              "write TYPE=USD_PER_HOUR, e.g. ml.c5.xlarge=0.204")  # fmt: skip
        prices[name.strip()] = usd
    return prices


def price_of(instance_type: str, given: dict[str, float]) -> Price:
    """The price given for the type, else the built-in table's; ConfigError if neither."""
    price = lookup_price(instance_type, given.get(instance_type))
    if price is None:
        raise ConfigError(
            f"no price for {instance_type}: the built-in table has none",
            f"pass --instance-price {instance_type}=USD_PER_HOUR",
        )
    if instance_type in given:
        price = Price(price.usd_per_hour, f"--instance-price {instance_type}")
    return price


def _split(texts: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(x.strip() for t in texts for x in t.split(",") if x.strip()))


def endpoint_name(sweep_id: str, instance_type: str) -> str:
    """An endpoint (and config) name from the sweep and the type: SageMaker allows 63
    characters of letters, digits and hyphens."""
    return f"{sweep_id}-{re.sub(r'[^A-Za-z0-9]+', '-', instance_type)}"[:63].rstrip("-")


def sweep_id(now: datetime) -> str:
    return "rs-" + now.strftime("%m%d%H%M%S")


def check(options: SweepOptions) -> tuple[TrafficSeries, SearchSettings]:
    """Every flag, before anything is created or sent."""
    types, endpoints = options.instance_types, options.endpoints
    if bool(types) == bool(endpoints):
        raise ConfigError("give --instance-types (with --model-name) or --endpoints",
                          "--instance-types deploys and tests each type; --endpoints compares "
                          "endpoints you deployed")  # fmt: skip
    if types and not options.model_name:
        raise ConfigError("--instance-types needs --model-name", "name the SageMaker model "
                          "each type serves (aws sagemaker list-models)")  # fmt: skip
    if endpoints and options.model_name:
        raise ConfigError("--model-name is for --instance-types", "leave it out with --endpoints")
    for t in types:
        if not re.fullmatch(r"ml\.[a-z0-9]+\.[a-z0-9]+", t):
            raise ConfigError(f"{t!r} is not an instance type", "e.g. ml.c5.xlarge")
    if len(types or endpoints) < 2:
        raise ConfigError("a sweep compares at least two configurations",
                          "give two or more, comma-separated")  # fmt: skip
    if options.parallel < 1:
        raise ConfigError(f"--parallel must be >= 1 (got {options.parallel})")
    if options.instance_count < 1:
        raise ConfigError(f"--instance-count must be >= 1 (got {options.instance_count})")
    given = parse_prices(options.prices)
    for t in types:
        price_of(t, given)
    load = options.load
    load.check_generator()
    if load.search != "adaptive" or load.plan is not None:
        raise ConfigError("a sweep runs the adaptive search", "leave out --search and --plan")
    slo = load.parse_slo()
    plan = load.load_plan(slo)
    assert isinstance(plan, SearchSettings)
    load.headers()
    load_payloads(load.payload, load.content_type)  # a bad payload must not cost a deployment
    traffic = options.traffic.load()
    concurrent = min(options.parallel, len(types or endpoints))
    processes = max(1, load.workers + load.expect_workers)
    if concurrent * plan.max_rps > processes * GENERATOR_RPS_PER_PROCESS:
        raise ConfigError(
            f"{concurrent} configurations at up to {plan.max_rps:g} rps each need more than "
            f"{processes} load generator process(es) send well "
            f"({GENERATOR_RPS_PER_PROCESS:g} rps each)",
            "add --workers, or lower --parallel or --max-rps",
        )
    return traffic, plan


def describe(options: SweepOptions, plan: SearchSettings, configs: Sequence[Config]) -> str:
    """What the sweep will cost, said before it starts."""
    n = len(configs)
    rounds = math.ceil(n / min(options.parallel, n))
    requests = plan.max_requests or plan.max_rps * plan.max_duration
    lines = [f"{c.instance_type}: {c.endpoint} ({'deploy, test, delete' if c.created else 'test'}"
             f"; ${c.price.usd_per_hour:g}/h, {c.price.source})" for c in configs]  # fmt: skip
    lines.append(
        f"Each configuration: the adaptive search from {plan.start_rps:g} rps (never above "
        f"{plan.max_rps:g} rps), {plan.stage_seconds:g}s stages, at most "
        f"{plan.max_duration / 60:.1f} min and {requests:,.0f} requests."
    )
    lines.append(
        f"The sweep takes at most {rounds * plan.max_duration / 60:.1f} min of load "
        f"({n} configurations, {min(options.parallel, n)} at a time) plus deployment and "
        f"CloudWatch collection, and sends at most {n * requests:,.0f} requests."
    )
    return "\n".join(lines)


# --- what the sweep creates ------------------------------------------------------------------


class Ledger:
    """What the sweep created, written to deployed.json as it happens (a record for the user
    when deletion fails), and deleted in reverse."""

    def __init__(self, aws: AwsClient, path: Path, tags: dict[str, str], echo: Echo) -> None:
        self.aws, self.path, self.tags, self.echo = aws, path, tags, echo
        self.items: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def _save(self) -> None:
        runs.write_json(self.path, {"tags": self.tags, "resources": self.items})

    def _add(self, kind: str, name: str) -> None:
        with self._lock:
            self.items.append({"kind": kind, "name": name, "deleted": False})
            self._save()

    def deploy(self, config: Config, model: str, variant: str, count: int) -> None:
        """CreateEndpointConfig and CreateEndpoint, tagged. A failure leaves what was made
        in the ledger, for `delete`."""
        # Recorded first: a create that times out after AWS made it must still be deleted.
        self._add("endpoint-config", config.endpoint)
        self.aws.create_endpoint_config(config.endpoint, model, variant, config.instance_type,
                                        count, self.tags)  # fmt: skip
        self._add("endpoint", config.endpoint)
        self.aws.create_endpoint_from_config(config.endpoint, config.endpoint, self.tags)

    def delete(self, endpoint: str | None = None, keep: str | None = None) -> list[str]:
        """Delete what was created (only `endpoint`'s when given), endpoints before their
        configs, except `keep`'s; the names that could not be deleted."""
        left = []
        with self._lock:
            todo = [i for i in reversed(self.items)
                    if not i["deleted"] and i["name"] != keep
                    and (endpoint is None or i["name"] == endpoint)]  # fmt: skip
        for item in todo:
            try:
                if item["kind"] == "endpoint":
                    self.aws.delete_endpoint(item["name"])
                else:
                    self.aws.delete_endpoint_config(item["name"])
            except RecommenderError as exc:
                if "not find" not in exc.message.lower():  # never made, or gone already
                    left.append(f"{item['kind']} {item['name']}")
                    self.echo(f"warning: could not delete {item['kind']} {item['name']}: "
                              f"{exc.one_line()}")  # fmt: skip
                    continue
            with self._lock:
                item["deleted"] = True
                self._save()
            self.echo(f"Deleted {item['kind']} {item['name']}")
        return left


@contextmanager
def _held_interrupts() -> Iterator[None]:
    """Ctrl-C waits while resources are deleted (a second one must not leave them)."""
    try:
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def wait_in_service(aws: AwsClient, endpoint: str, timeout: float, echo: Echo,
                    sleep: Callable[[float], None] = time.sleep) -> None:  # fmt: skip
    deadline = time.monotonic() + timeout
    said = ""
    while True:
        status = aws.describe_endpoint(endpoint).status
        if status == "InService":
            return
        if status in ("Failed", "OutOfService", "Deleting"):
            raise EndpointError(f"endpoint {endpoint} is {status}",
                                "see its FailureReason: aws sagemaker describe-endpoint "
                                f"--endpoint-name {endpoint}")  # fmt: skip
        if time.monotonic() > deadline:
            raise EndpointError(f"endpoint {endpoint} not InService after {timeout:.0f}s")
        if status != said:
            echo(f"  {endpoint}: {status}...")
            said = status
        sleep(min(15.0, max(1.0, timeout / 100)))


# --- the sweep -----------------------------------------------------------------------------


def run_sweep(options: SweepOptions, *, echo: Echo = print, confirm: Confirm | None = None,
              watch: Watch | None = None, now: datetime | None = None) -> SweepResult:  # fmt: skip
    """`recommender sweep` (see the module docstring). Raises RecommenderError on bad input
    before anything is created, and after deleting what was created on any later failure."""
    traffic, plan = check(options)
    load = options.load
    aws = AwsClient.connect(load.aws)
    now = now or datetime.now(timezone.utc)
    sid = sweep_id(now)
    configs = _configs(options, aws, sid)
    echo(describe(options, plan, configs))
    if confirm is not None and not confirm("Start?"):
        raise Declined("the sweep was not started", "answer yes, or pass --yes")
    label = options.model_name or "endpoints"
    sweep_dir = runs.make_run_dir(load.out, f"sweep-{label}", now)
    tags = {TAG_KEY: sid}
    ledger = Ledger(aws, sweep_dir / DEPLOYED_FILE, tags, echo)
    measured: list[Measured] = []
    kept: str | None = None
    left: list[str] = []
    interrupted, ranking, winner = False, [], None
    with sigterm_as_interrupt():  # `kill` ends a sweep as Ctrl-C does: deleting first
        try:
            measured = _measure_all(options, configs, aws, ledger, sweep_dir, echo, watch)
            interrupted = any(m.result and m.result.loadtest.status == "interrupted"
                              for m in measured)  # fmt: skip
            ranking = rank([c for m in measured if (c := _candidate(m, options, traffic))])
            winner = next((c for c in ranking if c.meets_slo), None)
            if options.keep and winner is not None and not interrupted:
                kept = winner.endpoint if any(c.created and c.endpoint == winner.endpoint
                                              for c in configs) else None  # fmt: skip
            if kept is not None:  # so that `cleanup` leaves it
                for kind in ("endpoint", "endpoint-config"):
                    aws.add_sagemaker_tags(kind, kept, {KEPT_KEY: "true"})
        finally:
            with _held_interrupts():
                if any(not i["deleted"] for i in ledger.items):
                    echo("Deleting what the sweep deployed...")
                left = ledger.delete(keep=kept)
            if left:
                echo(f"warning: left behind: {', '.join(left)}; run `recommender cleanup "
                     f"--sweep-id {sid}` to delete them")  # fmt: skip
    status = "interrupted" if interrupted else "complete"
    apply_command = _apply_command(winner, kept, options) if winner else None
    result = SweepResult(sweep_dir, status, ranking, winner, apply_command, kept, left)
    _write(result, options, sid, traffic, measured, now)
    return result


def _configs(options: SweepOptions, aws: AwsClient, sid: str) -> list[Config]:
    given = parse_prices(options.prices)
    if options.instance_types:
        assert options.model_name is not None
        if not aws.model_exists(options.model_name):
            raise ConfigError(f"no model named {options.model_name!r} in {aws.region}",
                              "check --model-name and --region "
                              "(aws sagemaker list-models)")  # fmt: skip
        return [Config(t, endpoint_name(sid, t), price_of(t, given), True)
                for t in options.instance_types]  # fmt: skip
    out = []
    for e in options.endpoints:
        info = aws.describe_endpoint(e)
        if info.status != "InService":
            raise EndpointError(f"endpoint {e} is {info.status}, not InService",
                                "wait until it is InService")  # fmt: skip
        t = info.variant(options.load.variant).instance_type
        if t is None:
            raise ConfigError(f"endpoint {e} has no instance type (serverless?)",
                              "a sweep compares instance types")  # fmt: skip
        out.append(Config(t, e, price_of(t, given), False))
    return out


def _measure_all(
    options: SweepOptions, configs: list[Config], aws: AwsClient, ledger: Ledger,
    sweep_dir: Path, echo: Echo, watch: Watch | None,
) -> list[Measured]:  # fmt: skip
    measured = [Measured(c) for c in configs]
    stop = threading.Event()

    def one(m: Measured, say: Echo, live: Watch | None) -> None:
        if stop.is_set():
            return
        m.result = _measure_one(m.config, options, aws, ledger, sweep_dir, say, live)
        if m.result.loadtest.status == "interrupted":
            stop.set()

    if options.parallel == 1 or len(configs) == 1:
        for m in measured:  # in this thread: Ctrl-C reaches the load test directly
            one(m, echo, watch)
        return measured
    lock = threading.Lock()

    def prefixed(tag: str) -> Echo:
        def say(text: str) -> None:
            with lock:
                for line in text.splitlines() or [""]:
                    echo(f"[{tag}] {line}")
        return say

    running: dict[str, threading.Thread] = {}

    def start(m: Measured) -> None:
        running[m.config.endpoint] = threading.current_thread()
        one(m, prefixed(m.config.instance_type), None)

    with ThreadPoolExecutor(max_workers=options.parallel) as pool:
        futures: list[Future[None]] = [pool.submit(start, m) for m in measured]
        try:
            for f in futures:
                f.result()
        except KeyboardInterrupt:
            # Signals reach the main thread only: hand the interrupt to the load tests
            # running in the pool, so each stops its load and keeps what it measured.
            stop.set()
            for t in running.values():
                if t.is_alive() and t.ident is not None:
                    ctypes.pythonapi.PyThreadState_SetAsyncExc(
                        ctypes.c_ulong(t.ident), ctypes.py_object(KeyboardInterrupt))
            for f in futures:
                f.exception()
        except BaseException:
            stop.set()
            raise
    return measured


def _measure_one(
    config: Config, options: SweepOptions, aws: AwsClient, ledger: Ledger, sweep_dir: Path,
    echo: Echo, watch: Watch | None,
) -> pipeline.PipelineResult:  # fmt: skip
    if config.created:
        assert options.model_name is not None
        echo(f"Deploying {config.instance_type} as {config.endpoint}...")
        ledger.deploy(config, options.model_name, options.variant, options.instance_count)
        wait_in_service(aws, config.endpoint, options.deploy_timeout, echo)
    variant = options.variant if config.created else options.load.variant
    load = replace(options.load, endpoint=config.endpoint, variant=variant,
                   name=config.instance_type, out=sweep_dir)  # fmt: skip
    spec, cloudwatch = pipeline.prepare(load, echo, None)
    result = pipeline.run_pipeline(spec, load.safety_factor, echo, cloudwatch, watch)
    if config.created and not options.keep:
        with _held_interrupts():
            ledger.delete(config.endpoint)
    return result


def _candidate(m: Measured, options: SweepOptions, traffic: TrafficSeries) -> Candidate | None:
    if m.result is None:
        return None
    a: Analysis = m.result.analysis
    run_dir = m.result.loadtest.run_dir
    cap, rec, price = a.capacity, a.recommendation, m.config.price
    interval = cap.ci_rps_per_instance or cap.interval_rps_per_instance
    at_peak = lo = hi = hours = cost = violating = None
    if rec is not None:
        at_peak = instances_for(traffic.peak_rps, rec.target_value)
        try:
            sim = simulate_run(run_dir, traffic, Policy(), safety_factor=rec.safety_factor,
                               instance_price=price.usd_per_hour).simulation  # fmt: skip
        except InsufficientDataError:
            sim = None
        if sim is not None:
            _, lo, hi = sim.policy.bounds()
            t = sim.totals
            hours, cost, violating = t.instance_hours, t.cost_usd, t.violating_minutes
        # The run's own reports, now with the sizing for this traffic and the simulation.
        pipeline.write_reports(run_dir, None, rec.safety_factor,
                               Traffic(peak_rps=traffic.peak_rps, min_rps=traffic.min_rps,
                                       instance_price=price.usd_per_hour))  # fmt: skip
    return Candidate(
        instance_type=m.config.instance_type, endpoint=m.config.endpoint, run_dir=str(run_dir),
        status=m.result.loadtest.status, method=cap.method,
        rps_per_instance=cap.rps_per_instance, interval_rps_per_instance=interval,
        target_value=rec.target_value if rec else None, usd_per_hour=price.usd_per_hour,
        price_source=price.source, instances_at_peak=at_peak, min_capacity=lo, max_capacity=hi,
        day_instance_hours=hours, day_cost_usd=cost, day_violating_minutes=violating,
        curve=tuple(stage_points(a)),
    )  # fmt: skip


def _apply_command(winner: Candidate, kept: str | None, options: SweepOptions) -> str:
    bounds = f"--min-capacity {winner.min_capacity} --max-capacity {winner.max_capacity}"
    if kept or not any(t == winner.instance_type for t in options.instance_types):
        return f"recommender apply {winner.run_dir} {bounds}"
    # The sweep's endpoint is gone: the policy goes on the endpoint you deploy of this type.
    return (f"recommender apply --endpoint YOUR-ENDPOINT --variant {options.variant} "
            f"--target-value {winner.target_value:.0f} {bounds}")


def _write(result: SweepResult, options: SweepOptions, sid: str, traffic: TrafficSeries,
           measured: list[Measured], now: datetime) -> None:  # fmt: skip
    from recommender.report.sweep import format_sweep_html, format_sweep_markdown

    doc = sweep_document(result, options, sid, traffic, measured, now)
    runs.write_json(result.sweep_dir / SWEEP_FILE, doc)
    (result.sweep_dir / "report.md").write_text(format_sweep_markdown(doc), encoding="utf-8")
    (result.sweep_dir / "report.html").write_text(format_sweep_html(doc), encoding="utf-8")


def sweep_document(
    result: SweepResult, options: SweepOptions, sid: str, traffic: TrafficSeries,
    measured: list[Measured], now: datetime,
) -> dict[str, Any]:  # fmt: skip
    """sweep.json: report/sweep.schema.json is its schema."""
    load = options.load
    winner = result.winner
    return {
        "schema": SCHEMA,
        "sweep_id": sid,
        "created_at": runs.iso(now.timestamp()),
        "status": result.status,
        "model": options.model_name,
        "slo": str(load.parse_slo()),
        "safety_factor": load.safety_factor,
        "traffic": {"source": traffic.source, "peak_rps": traffic.peak_rps,
                    "min_rps": traffic.min_rps, "minutes": traffic.minutes},  # fmt: skip
        "prices": {"table_noted": PRICES_NOTED, "table_region": PRICES_REGION,
                   "indicative": any(c.price_source.startswith("built-in")
                                     for c in result.ranking)},  # fmt: skip
        "ranking": [{"rank": i + 1, **c.to_dict()} for i, c in enumerate(result.ranking)],
        "not_measured": [m.config.instance_type for m in measured if m.result is None],
        "winner": None if winner is None else {
            "instance_type": winner.instance_type, "run_dir": winner.run_dir,
            "endpoint": winner.endpoint, "kept": result.kept is not None,
            "apply_command": result.apply_command},  # fmt: skip
        "left_behind": result.left,
        "exit_code": int(result.exit_code),
    }


# --- cleanup -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Leftover:
    kind: str  # endpoint | endpoint-config
    name: str
    sweep_id: str


def find_leftovers(aws: AwsClient, sid: str | None = None) -> list[Leftover]:
    """Endpoints and endpoint configs tagged by a sweep (by `sid` when given), but not the
    winners `--keep` kept."""
    found = []
    for kind, names in (("endpoint", [n for n, _ in aws.list_endpoints()]),
                        ("endpoint-config", aws.list_endpoint_configs())):  # fmt: skip
        for name in names:
            tags = aws.sagemaker_tags(kind, name)
            tag = tags.get(TAG_KEY)
            if tag is not None and KEPT_KEY not in tags and (sid is None or tag == sid):
                found.append(Leftover(kind, name, tag))
    return found


def cleanup(access: AwsAccess, sid: str | None, *, echo: Echo = print,
            confirm: Confirm | None = None, dry_run: bool = False) -> list[Leftover]:  # fmt: skip
    """`recommender cleanup`: delete what sweeps left (endpoints before configs)."""
    aws = AwsClient.connect(access)
    found = find_leftovers(aws, sid)
    if not found:
        echo("Nothing left by a sweep" + (f" {sid}" if sid else "") + f" in {aws.region}.")
        return []
    for f in found:
        echo(f"{f.kind} {f.name} (sweep {f.sweep_id})")
    if dry_run:
        return found
    if confirm is not None and not confirm(f"Delete these {len(found)}?"):
        raise Declined("nothing was deleted", "answer yes, or pass --yes")
    with _held_interrupts():
        for f in found:
            (aws.delete_endpoint if f.kind == "endpoint" else aws.delete_endpoint_config)(f.name)
            echo(f"Deleted {f.kind} {f.name}")
    return found


def load_sweep(path: Path) -> dict[str, Any]:
    doc = json.loads((path / SWEEP_FILE).read_text())
    return dict(doc)
