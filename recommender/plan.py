"""What to measure: the ramp, the SLO and the target, as frozen, validated data.

Everything here is parsed from user input (flags, plan files) and raises ConfigError with a
one-line message that names the bad value and how to fix it. The plan is written into the
run directory, so `analyze` can re-read it without the original flags.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from recommender.errors import ConfigError
from recommender.redact import redact_headers, redact_url, secret_values

ARRIVALS = ("uniform", "poisson")
# What a stage sets: an arrival rate (open loop, the default), or the number of requests
# kept in flight (closed loop: each Locust user sends its next request when the previous one
# is answered, no think time). Under "concurrency", a Stage's `rps` holds that number.
CONTROLS = ("rate", "concurrency")
MAX_STAGES = 1000  # a fixed ramp of more stages is a typo, and would be built in memory
# The adaptive search's rules (recommender.search), here so the plan's estimate models them:
KNEE_BRACKET = 4  # no interim look once the bracket is within this x the precision
CORROBORATE = 2  # a failure this x the precision above the failing end bounds it
DEFAULT_VARIANT = "AllTraffic"  # the variant SageMaker's console and SDK create by default


@dataclass(frozen=True)
class Stage:
    """One step of the ramp: an offered arrival rate held for a duration (under control
    "concurrency", `rps` is the number of requests in flight instead)."""

    rps: float
    seconds: float


@dataclass(frozen=True)
class RampPlan:
    """A staged, open-loop ramp.

    `warmup_seconds` at the start of each stage are measured but left out of the analysis:
    queues need time to settle after the rate changes.
    """

    stages: tuple[Stage, ...]
    warmup_seconds: float = 2.0
    arrivals: str = "uniform"
    users: int = 0  # the Locust users the run had (0: not recorded)
    control: str = "rate"  # what a stage's `rps` is: a rate, or requests in flight

    @property
    def duration(self) -> float:
        return sum(s.seconds for s in self.stages)

    @property
    def max_rps(self) -> float:
        return max(s.rps for s in self.stages)

    def stage_bounds(self) -> list[tuple[float, float]]:
        """(start, end) of each stage in seconds from the start of the run."""
        bounds, t = [], 0.0
        for s in self.stages:
            bounds.append((t, t + s.seconds))
            t += s.seconds
        return bounds

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RampPlan:
        return cls(
            stages=tuple(Stage(float(s["rps"]), float(s["seconds"])) for s in data["stages"]),
            warmup_seconds=float(data.get("warmup_seconds", 2.0)),
            arrivals=str(data.get("arrivals", "uniform")),
            users=int(data.get("users", 0)),
            control=str(data.get("control", "rate")),
        )


def linear_ramp(
    start_rps: float,
    max_rps: float,
    stages: int,
    stage_seconds: float,
    warmup_seconds: float | None = None,
    arrivals: str = "uniform",
    users: int = 0,
) -> RampPlan:
    """`stages` equally spaced rates from `start_rps` to `max_rps`, inclusive."""
    if start_rps <= 0:
        raise ConfigError(f"--start-rps must be > 0 (got {start_rps:g})")
    if max_rps < start_rps:
        raise ConfigError(
            f"--max-rps ({max_rps:g}) is below --start-rps ({start_rps:g})",
            "pass a --max-rps at least as large as --start-rps",
        )
    if not 1 <= stages <= MAX_STAGES:
        raise ConfigError(f"--stages must be between 1 and {MAX_STAGES} (got {stages})")
    if not math.isfinite(stage_seconds):
        raise ConfigError(f"--stage-seconds must be a number of seconds (got {stage_seconds:g})")
    if stages == 1 or max_rps == start_rps:
        rates = [start_rps] * stages
    else:
        step = (max_rps - start_rps) / (stages - 1)
        rates = [round(start_rps + i * step, 3) for i in range(stages)]
    if warmup_seconds is None:
        warmup_seconds = min(5.0, stage_seconds * 0.2)
    return validate_plan(
        RampPlan(
            stages=tuple(Stage(r, stage_seconds) for r in rates),
            warmup_seconds=warmup_seconds,
            arrivals=arrivals,
            users=users,
        )
    )


def validate_plan(plan: RampPlan) -> RampPlan:
    if not plan.stages:
        raise ConfigError("the plan has no stages", "give at least one stage")
    for i, s in enumerate(plan.stages, 1):
        if not s.rps > 0 or not math.isfinite(s.rps):
            raise ConfigError(f"stage {i}: rps must be a positive number (got {s.rps:g})")
        if not 1 <= s.seconds < math.inf:
            raise ConfigError(f"stage {i}: seconds must be >= 1 (got {s.seconds:g})")
        if plan.warmup_seconds >= s.seconds:
            raise ConfigError(
                f"warm-up ({plan.warmup_seconds:g}s) is not shorter than stage {i} "
                f"({s.seconds:g}s)",
                "lengthen the stages or shorten --warmup-seconds",
            )
    if not 0 <= plan.warmup_seconds < math.inf:
        raise ConfigError(f"--warmup-seconds must be >= 0 (got {plan.warmup_seconds:g})")
    if plan.arrivals not in ARRIVALS:
        raise ConfigError(
            f"unknown arrivals {plan.arrivals!r}", f"use one of: {', '.join(ARRIVALS)}"
        )
    if plan.users < 0:
        raise ConfigError(f"--users must be >= 0 (got {plan.users})")
    return plan


def load_plan_file(path: Path) -> RampPlan:
    """Read a plan from YAML or JSON.

    Either explicit stages::

        stages: [{rps: 50, seconds: 20}, {rps: 100, seconds: 20}]
        warmup_seconds: 3

    or the parameters of a linear ramp (start_rps, max_rps, stages, stage_seconds).
    """
    if not path.is_file():
        raise ConfigError(f"plan file not found: {path}", "check the --plan path")
    text = path.read_text()
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            import yaml  # YAML is a superset of JSON, so this also reads JSON without suffix

            data = yaml.safe_load(text)
    except Exception as exc:  # noqa: BLE001 - any parser error is the user's file
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"cannot parse plan file {path}: {first}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"plan file {path} must hold a mapping (stages: [...])")
    try:
        if isinstance(data.get("stages"), list):
            return validate_plan(RampPlan.from_dict(data))
        return linear_ramp(
            float(data["start_rps"]),
            float(data["max_rps"]),
            int(data["stages"]),
            float(data.get("stage_seconds", 30)),
            None if data.get("warmup_seconds") is None else float(data["warmup_seconds"]),
            str(data.get("arrivals", "uniform")),
            int(data.get("users", 0)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(
            f"plan file {path} is missing or has a bad value for {exc}",
            "give `stages: [{rps: .., seconds: ..}]` or start_rps, max_rps, stages",
        ) from exc


@dataclass(frozen=True)
class SearchSettings:
    """The adaptive capacity search's plan (recommender.search plays it): where it starts,
    its ceiling, its stages, and when it stops."""

    start_rps: float
    max_rps: float
    stage_seconds: float
    warmup_seconds: float
    precision: float = 0.05
    growth: float = 2.0
    max_duration: float = 1800.0
    max_requests: int | None = None
    max_extensions: int = 2
    abort_error_rate: float = 0.10
    abort_latency_factor: float = 3.0
    # A short burst well above capacity first, to start the bracket at the throughput
    # ceiling instead of climbing to it (recommender.search, "The saturation probe").
    probe: bool = True
    # End a stage at an interim look once its verdict is clear at the stricter interim
    # confidence (recommender.search, "Sequential stages").
    early_stop: bool = True
    # Check the failing end of the bracket before stopping on it, by a stage 2 x precision
    # above it (or, where nothing above can be played, by playing it again): a single stage
    # slowed by something else would otherwise fix it for good (recommender.search). Goes
    # with --no-early-stop off (today's search, which never checks, is `--no-probe
    # --no-early-stop`).
    retest: bool = True
    # CloudWatch's period on AWS (1: none): rests end, and interim looks fall, on whole
    # periods from the run's start, so the stages after them keep whole periods.
    period: int = 1
    # "concurrency": start_rps and max_rps are numbers of requests in flight (whole numbers).
    control: str = "rate"

    @property
    def duration(self) -> float:
        return self.max_duration

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


LoadPlan = RampPlan | SearchSettings


def load_plan(
    *,
    plan_file: Path | None,
    mode: str,
    start_rps: float,
    max_rps: float | None,
    stages: int,
    stage_seconds: float,
    warmup_seconds: float | None,
    precision: float,
    max_duration: float,
    max_requests: int | None,
    abort_error_rate: float,
    abort_latency_factor: float,
    probe: bool = True,
    early_stop: bool = True,
    control: str = "rate",
) -> LoadPlan:
    """The load plan from the command line: a plan file or a linear ramp (fixed), or the
    adaptive search's settings. Raises ConfigError naming the bad option. Every option is
    checked whichever plan it is for: a bad value is refused, never silently unused."""
    if mode not in ("adaptive", "fixed"):
        raise ConfigError(f"unknown --search {mode!r}", "use adaptive or fixed")
    if not 0 < precision < 1:
        raise ConfigError(f"--precision must be in (0, 1) (got {precision:g})", "e.g. 0.05")
    if not 0 < max_duration < math.inf:
        raise ConfigError(f"--max-duration must be a positive number of seconds "
                          f"(got {max_duration:g})")  # fmt: skip
    if max_requests is not None and max_requests < 1:
        raise ConfigError(f"--max-requests must be >= 1 (got {max_requests})")
    if not 0 < abort_error_rate <= 1:
        raise ConfigError(f"--abort-error-rate must be in (0, 1] (got {abort_error_rate:g})")
    if plan_file is not None:
        return load_plan_file(plan_file)
    if control == "concurrency":
        # start_rps and max_rps are requests in flight (options.py checked the flags).
        ramp = linear_ramp(start_rps, float(max_rps or start_rps), 1, stage_seconds,
                           warmup_seconds)  # fmt: skip
        return SearchSettings(
            start_rps=start_rps, max_rps=float(max_rps or start_rps),
            stage_seconds=stage_seconds, warmup_seconds=ramp.warmup_seconds,
            precision=precision, max_duration=max_duration, max_requests=max_requests,
            abort_error_rate=abort_error_rate, abort_latency_factor=abort_latency_factor,
            control=control, probe=False, early_stop=early_stop,
        )  # fmt: skip
    if max_rps is None:
        raise ConfigError("no ramp given", "pass --max-rps (and --start-rps) or --plan FILE")
    ramp = linear_ramp(start_rps, max_rps, stages, stage_seconds, warmup_seconds)
    if mode == "fixed":
        return ramp
    if max_duration < stage_seconds:
        raise ConfigError(
            f"--max-duration ({max_duration:g}s) is shorter than one stage ({stage_seconds:g}s)"
        )
    return SearchSettings(
        start_rps=start_rps,
        max_rps=max_rps,
        stage_seconds=stage_seconds,
        warmup_seconds=ramp.warmup_seconds,
        precision=precision,
        max_duration=max_duration,
        max_requests=max_requests,
        abort_error_rate=abort_error_rate,
        abort_latency_factor=abort_latency_factor,
        probe=probe,
        early_stop=early_stop,
        retest=early_stop,
    )


def estimate_seconds(settings: SearchSettings, capacity: float | None = None) -> float:
    """Roughly how long the adaptive search takes against an endpoint whose capacity at the
    SLO is `capacity` rps (default: half of --max-rps), for the plan printed before a run.

    A model of recommender.search, not a promise: without the probe it grows x`growth` from
    --start-rps past capacity, then bisects the last step to `precision`; with it, the probe
    (warm-up + 3 s, then a rest) finds the ceiling, taken as 1.1 x capacity, and the search
    bisects [ceiling / 1.2, ceiling]. With early stopping, a stage played while the bracket
    is still wider than 4 x precision (far from the knee) ends at its first look, a third of
    the way; stages near the knee run their full length. Only overloaded stages rest: the
    probe, the growth stage that fails, and about half the bisection stages far from the
    knee. With `retest`, the failing end of the final bracket is checked unless a failure
    within 2 x precision above it bounds it (the probe's ceiling, 10% above capacity, does
    that at the default 5%): after a climb a stage that far above it is played, which fails
    clearly at its first look and ends the search.
    """
    cfg = settings
    c = min(capacity if capacity is not None else cfg.max_rps / 2, cfg.max_rps)
    far = cfg.stage_seconds / 3 if cfg.early_stop else cfg.stage_seconds
    if cfg.early_stop and cfg.period > 1:
        far = math.ceil(far / cfg.period) * cfg.period
    near = cfg.stage_seconds
    rest = max(3.0, cfg.warmup_seconds, cfg.period)  # a rest waits for the next period
    probed = cfg.probe and cfg.max_rps > cfg.start_rps
    total = 0.0
    if probed:
        total += cfg.warmup_seconds + 3.0 + rest
        total += far  # the stage at ceiling / 1.2 (0.92 x capacity): clear at its first look
        width = 0.2  # the bracket [1 / 1.2, 1] x the ceiling
    else:
        grow = max(0, math.ceil(math.log(max(c / cfg.start_rps, 1.0), cfg.growth)))
        total += grow * far + near + rest  # the growth stages pass; the next one fails
        width = cfg.growth - 1
    overloads = 0.0
    while width > cfg.precision * (1 + 1e-9):
        knee = width <= KNEE_BRACKET * cfg.precision * (1 + 1e-9)
        total += near if knee else far
        overloads += 0 if knee else 0.5  # far above the knee, half fail and are overloads
        width /= 2
    total += rest * overloads
    if cfg.retest and not (probed and 0.1 <= CORROBORATE * cfg.precision):
        total += far  # the corroborating stage above the failing end; the last, so no rest
    return min(total, cfg.max_duration)


def describe_cost(plan: LoadPlan, url: str) -> str:
    """What the test will cost the endpoint, said before it starts."""
    if isinstance(plan, RampPlan):
        requests = sum(s.rps * s.seconds for s in plan.stages)
        return (f"The test takes {plan.duration / 60:.1f} min and sends about "
                f"{requests:,.0f} requests to {url}.")  # fmt: skip
    budget = f", {plan.max_requests:,} requests" if plan.max_requests else ""
    if plan.control == "concurrency":
        return (
            f"The adaptive search plays {plan.stage_seconds:g}s stages of closed-loop load from "
            f"{plan.start_rps:g} requests in flight (never above {plan.max_rps:g}) until the "
            f"highest concurrency within the SLO is bracketed to {plan.precision:.0%} (or to "
            f"one request), within {plan.max_duration / 60:.0f} min{budget}, against {url}."
        )
    start = (f"a {plan.warmup_seconds + 3:g}s probe at {plan.max_rps:g} rps, then "
             if plan.probe and plan.max_rps > plan.start_rps else "")
    return (
        f"The adaptive search plays {start}{plan.stage_seconds:g}s stages"
        f"{' (ended early once clearly passing or failing)' if plan.early_stop else ''}"
        f" from {'below the probed ceiling' if start else f'{plan.start_rps:g} rps'}"
        f" (never above {plan.max_rps:g} rps) until capacity is bracketed to "
        f"{plan.precision:.0%}: about {estimate_seconds(plan) / 60:.1f} min if capacity is "
        f"near {plan.max_rps / 2:g} rps, within {plan.max_duration / 60:.0f} min{budget}, "
        f"against {url}."
    )


# --- SLO -------------------------------------------------------------------------------

_SLO_RE = re.compile(
    r"^\s*(?:(?P<metric>ttft|itl|e2e)_)?(?P<stat>p\d{1,2}(?:\.\d+)?|mean|avg|max)\s*"
    r"(?P<op><=|<)\s*"
    r"(?P<value>\d+(?:\.\d+)?)\s*(?P<unit>us|µs|ms|s)\s*$",
    re.IGNORECASE,
)
_UNIT_MS = {"us": 1e-3, "µs": 1e-3, "ms": 1.0, "s": 1000.0}


# What an SLO term measures, and the per-second histogram it is judged on. `latency` (a
# bare "p95") and `e2e` are the whole request from its intended send; `ttft` is the time
# to the first token from the intended send; `itl` the gaps between token-bearing payload
# parts (all of a stage's gaps pooled). The last two need a streamed response (--stream).
METRIC_HISTOGRAMS = {"latency": "latency_co_us", "e2e": "latency_co_us",
                     "ttft": "ttft_co_us", "itl": "itl_us"}  # fmt: skip
STREAM_METRICS = ("ttft", "itl")


@dataclass(frozen=True)
class SloTerm:
    """One latency objective, e.g. p95 <= 300 ms or ttft_p95 <= 800 ms. `quantile` is None
    for the mean."""

    stat: str  # "p95", "p99.9", "mean"
    limit_ms: float
    metric: str = "latency"  # latency | e2e | ttft | itl

    @property
    def quantile(self) -> float | None:
        return None if self.stat == "mean" else float(self.stat[1:]) / 100.0

    @property
    def key(self) -> str:
        """How the term is named in stage tables and verdicts: "p95", "ttft_p95"."""
        return self.stat if self.metric == "latency" else f"{self.metric}_{self.stat}"

    @property
    def histogram(self) -> str:
        """The per-second record's histogram it is judged on."""
        return METRIC_HISTOGRAMS[self.metric]

    def __str__(self) -> str:
        return f"{self.key}<={self.limit_ms:g}ms"


@dataclass(frozen=True)
class Slo:
    """All terms must hold, and the error rate must stay within `max_error_rate`."""

    terms: tuple[SloTerm, ...]
    max_error_rate: float = 0.01

    def __str__(self) -> str:
        parts = [str(t) for t in self.terms] + [f"errors<={self.max_error_rate:.2%}"]
        return ", ".join(parts)

    @property
    def needs_stream(self) -> bool:
        """Some term is on tokens (TTFT, ITL): only a streamed response measures it."""
        return any(t.metric in STREAM_METRICS for t in self.terms)

    def to_dict(self) -> dict[str, Any]:
        return {
            "terms": [{"stat": t.stat, "limit_ms": t.limit_ms,
                       **({"metric": t.metric} if t.metric != "latency" else {})}
                      for t in self.terms],  # fmt: skip
            "max_error_rate": self.max_error_rate,
            "text": str(self),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Slo:
        return cls(
            tuple(SloTerm(str(t["stat"]), float(t["limit_ms"]), str(t.get("metric", "latency")))
                  for t in data["terms"]),  # fmt: skip
            float(data.get("max_error_rate", 0.01)),
        )


def parse_slo_term(text: str) -> SloTerm:
    m = _SLO_RE.match(text)
    if not m:
        raise ConfigError(
            f"cannot read SLO {text!r}",
            'write it like "p95<=300ms", "p99<=1s", "mean<=200ms", or for a streamed '
            'response "ttft_p95<=800ms", "itl_p99<=60ms", "e2e_p95<=20s"',
        )
    stat = m["stat"].lower()
    stat = "mean" if stat in ("mean", "avg") else stat
    if stat == "max":
        stat = "p100"
    if stat.startswith("p"):
        q = float(stat[1:])
        if not 0 < q <= 100:
            raise ConfigError(f"SLO percentile must be in (0, 100] (got {q:g} in {text!r})")
    limit_ms = float(m["value"]) * _UNIT_MS[m["unit"].lower()]
    if limit_ms <= 0:
        raise ConfigError(f"SLO limit must be > 0 (got {text!r})")
    return SloTerm(stat, limit_ms, (m["metric"] or "latency").lower())


def parse_slo(texts: Sequence[str], max_error_rate: float = 0.01) -> Slo:
    if not texts:
        raise ConfigError("no SLO given", 'pass --slo "p95<=300ms"')
    if not 0 <= max_error_rate < 1:
        raise ConfigError(
            f"--max-error-rate must be in [0, 1) (got {max_error_rate:g})",
            "give a fraction, e.g. 0.01 for 1%",
        )
    # A comma also separates terms, so --slo "p95<=300ms,p99<=1s" works.
    terms = [parse_slo_term(part) for t in texts for part in t.split(",") if part.strip()]
    # One limit per statistic: a stage's value of each is judged once (analysis.stages.score).
    seen: dict[str, SloTerm] = {}
    for term in terms:
        if term.key in seen:
            raise ConfigError(f"--slo gives {term.key} twice ({seen[term.key]} and {term})",
                              "give each statistic one limit")  # fmt: skip
        seen[term.key] = term
    return Slo(tuple(terms), max_error_rate)


def abort_factor(text: str, slo: Slo) -> float:
    """--abort-latency as a multiple of the SLO's first limit: "3x" or a duration "900ms"."""
    raw = text.strip().lower()
    try:
        if raw.endswith("x"):
            factor = float(raw[:-1])
            if not math.isfinite(factor):
                raise ValueError(raw)
        else:
            factor = parse_slo_term(f"p50<={raw}").limit_ms / slo.terms[0].limit_ms
    except (ValueError, ConfigError) as exc:
        raise ConfigError(
            f"cannot read --abort-latency {text!r}", 'write a multiple of the SLO ("3x") or a '
            'latency ("900ms")'
        ) from exc  # fmt: skip
    if factor <= 1:
        raise ConfigError(
            f"--abort-latency {text!r} is not above the SLO", "abort only well past the SLO"
        )
    return factor


# --- target ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What is being load-tested. `url` is the full invocation URL.

    With `endpoint` set, it is a SageMaker endpoint: requests are signed with SigV4 for
    `region`, with credentials from boto3's chain (`profile`). `headers` holds the values
    sent, which may be secrets (an API key, custom attributes): `to_dict`, what run.json
    records, and `shown_url`, what the terminal shows, redact them (recommender.redact).
    """

    url: str
    name: str
    instances: int = 1
    instance_type: str | None = None
    content_type: str | None = None  # None: what the payload's file suffix implies
    accept: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    endpoint: str | None = None
    variant: str | None = None
    region: str | None = None
    profile: str | None = None
    # An inference component: `instances` then counts its copies (capacity is per copy).
    inference_component: str | None = None
    # --stream: the answer is read as it streams (tokens, TTFT, ITL); on a SageMaker
    # endpoint through InvokeEndpointWithResponseStream. `token_format`: how its tokens
    # are counted (recommender.loadgen.stream).
    stream: bool = False
    token_format: str = "auto"
    # A serverless variant's ServerlessConfig (MemorySizeInMB, MaxConcurrency,
    # ProvisionedConcurrency). Its capacity is counted per unit of concurrency, so `instances`
    # is then MaxConcurrency (recommender.analysis.serverless).
    serverless: Mapping[str, int] | None = None

    @property
    def signed(self) -> bool:
        return self.endpoint is not None

    @property
    def shown_url(self) -> str:
        """The URL with any credential in it redacted, for the terminal and the record."""
        return redact_url(self.url)

    def secrets(self) -> list[str]:
        """The values `to_dict` and `shown_url` redact: to scrub from logs."""
        return secret_values(self.headers, self.url)

    def to_dict(self) -> dict[str, Any]:
        """As run.json records it: the header names with their values redacted."""
        d = asdict(self)
        d["url"] = self.shown_url
        d["headers"] = redact_headers(self.headers)
        return d


_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an HTTP header name (RFC 9110)


def check_header(name: str, value: str, flag: str) -> None:
    """ConfigError unless `name: value` can be sent as an HTTP header. The error never
    repeats the value: it may be a secret."""
    if not _TOKEN.match(name):
        raise ConfigError(f"bad {flag}: {name[:40]!r} is not a header name",
                          "use letters, digits and -")  # fmt: skip
    if any((ord(c) < 32 and c != "\t") or ord(c) == 127 for c in value):
        raise ConfigError(f"bad {flag}: the value of {name} holds a line break or another "
                          "control character", "give it on one line")  # fmt: skip


def parse_headers(lines: Sequence[str]) -> dict[str, str]:
    """`--header "Name: value"` lines as a mapping; ConfigError on a line without a name.
    The error never repeats the line: it may hold a secret."""
    headers = {}
    for i, line in enumerate(lines, 1):
        key, sep, value = line.partition(":")
        if not sep or not key.strip():
            raise ConfigError(f"bad --header #{i}: no name before a colon",
                              'write it as "Name: value"')  # fmt: skip
        check_header(key.strip(), value.strip(), f"--header #{i}")
        headers[key.strip()] = value.strip()
    return headers


def name_from_url(url: str) -> str:
    """A run name for a URL: the endpoint in a SageMaker runtime path, else host-port."""
    parts = urlsplit(url)
    segs = [p for p in parts.path.split("/") if p]
    if len(segs) >= 2 and segs[0] == "endpoints":
        return segs[1]
    try:
        port = parts.port
    except ValueError:  # a bad port: split_url refuses the URL
        port = None
    return f"{parts.hostname}-{port}" if port else str(parts.hostname)
