"""Which rate to offer next: the stage controllers (pure; the Locust process drives them).

`FixedRamp` plays the plan's stages in order. `AdaptiveSearch` finds capacity the way a
careful person would, only faster: it grows the offered rate geometrically until a stage
fails the SLO, then bisects between the highest passing and the lowest failing rate until
the bracket is narrower than the precision asked for, or the time/request budget is spent.

Each stage is judged with its uncertainty in mind (`judge`): for a percentile objective
"p95 <= L", the share of requests within L must be at least 0.95, and the Wilson interval
on that share (`wilson`) must lie wholly above (pass) or below (fail) 0.95.
Otherwise the stage is undecided and extends itself, up to `max_extensions` times, before
its point estimate decides (with early stopping, at once: see `advance`).
Requests within a second are correlated, so the interval is narrower than it should be; it
guards against thin stages, not against everything.

A queue that has not reached its steady state passes rates a longer stage would fail, so a
stage passes only if its later half passes too (`settled`): latency still rising at the end
of the stage makes it undecided, and a failing later half then fails it (with
--no-early-stop, after the stage's extensions).

Sequential stages: the search looks at a stage LOOKS - 1 times before its end (at 1/3 and
2/3 of its length: whole CloudWatch minutes for 180 s stages) and ends it there when the
Wilson interval lies wholly on one side of the threshold. Looking repeatedly would inflate
the error rate, so the 5% is spent across the looks (Bonferroni): 0.5% at each interim look
(99.5% intervals), the remaining 4% at the end (96%); the chance that any look of a stage
errs stays within 5%. A look judges on the effective sample size: requests in one second
share a queue, so their counts are divided by the design effect the stage's seconds show as
blocks (StageSummary.design_effect). Once the bracket is narrower than KNEE_BRACKET x the
precision, stages are near the knee and get no interim look: they keep their full length
(`near_knee`; the bracket the probe opens is exactly that wide, so not yet). The check of
the failing end (below) is the exception: a look that clearly confirms the failure ends it
(a pass, which would overturn it, takes the whole stage).

The check of the failing end: before stopping on a bracket whose failing end has failed only
once, the search makes sure one stage slowed by something else (a shared host, a noisy
neighbour) does not fix the top of the bracket for good (`SearchSettings.retest`; once per
search: re-testing every new failing end after a refuted one cost a 10 s-stage run of config
A 12 stages instead of 7). A failure within CORROBORATE x the precision above it, or the
probe's ceiling there (nothing above saturation is served), already bounds the capacity:
one noisy failure can then cost at most that much, and the interval reaches up towards it
(analysis.bootstrap.fail_above). Otherwise the search plays that corroborating stage itself,
CORROBORATE x the precision above the failing end (`DecisionCode.CORROBORATE`). Its failure
bounds the capacity the same way, and is usually clear at an interim look, since a rate 10%
above a failure is far from the knee (re-tests of config C's failing ends ran 20-30 s). A
pass refutes the failure below it (the analysis drops that stage) and reopens the bracket
above. Re-testing the failing end itself is a coin flip near the knee (bench/README.md,
bench_accuracy) whose chance pass reopens a correct bracket (a C coverage run: 188 s, +3.2%;
both in bench/README.md at 1fd14a8). It stays where nothing above can be played: a failing
end at the probe's ceiling (uniform arrivals may pass there) or at --max-rps.

The saturation probe: the search first offers --max-rps for a few seconds (the abort rules
stop it as soon as it overloads the endpoint). If the endpoint was overloaded, the
throughput it completed is its ceiling (AWS's MAX_RPS); the search then starts at
PROBE_START x that ceiling and searches below it, instead of climbing from --start-rps.
PROBE_START is 1/1.2: the bracket it opens, 20% wide, halves twice to the default 5%
precision (0.8 opened 25%, which took a third knee stage).
The ceiling is a throughput, not a stage: before it may end the bracket it is played as one
(`CEILING`); if it passes (uniform arrivals can meet the SLO up to saturation), the next
stage is one precision step above it.

Both controllers also stop a stage at once when it endangers the endpoint (errors above
`abort_error_rate`, or latency above `abort_latency_factor` x the SLO), as Inference
Recommender's ModelLatencyThresholds and k6's abortOnFail do; every decision carries why.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from statistics import NormalDist
from typing import Any

from recommender.plan import CORROBORATE, KNEE_BRACKET, RampPlan, SearchSettings, Slo

PASS, FAIL, UNDECIDED = "pass", "fail", "undecided"
CONFIDENCE = 0.95
LOOKS = 3  # per stage: two interim looks and the end
INTERIM_CONFIDENCE = 0.995  # alpha 0.5% at each interim look
FINAL_CONFIDENCE = 1 - ((1 - CONFIDENCE) - (LOOKS - 1) * (1 - INTERIM_CONFIDENCE))  # 96%
PROBE_SECONDS = 3.0  # the probe's measured seconds after its warm-up (if not aborted first)
PROBE_START = 1 / 1.2  # the first stage after the probe, and each step down, as a share of it
SATURATED = 0.9  # the probe completed less than this share of its rate: a ceiling
GENERATOR_SHORTFALL = 0.95
MIN_LOOK_SECONDS = 5  # measured seconds before an interim look may end a stage
MIN_LATE_TAIL = 10  # requests beyond the percentile the later half needs to be read
POISSON_Z = 3.09  # one-sided 0.1%: a Poisson count this far below its mean is no chance
RATE_DECIMALS = 3  # stage rates are rounded to this (they name the stage in run.json)
RATE_STEP = 10.0**-RATE_DECIMALS  # so each end of a bracket is off by up to half of it
# The generator's own lateness (p95) that makes a stage say nothing: this share of the
# tightest latency limit. Its lateness counts as latency (coordinated omission). Added to
# every request, a tenth of the limit lowers the M/D/c Poisson capacity by 0.1-4.6% (six
# servers, C 1-32, S 5-60 ms, p95-p99.9: queueing.poisson_capacity with that overhead), near
# the noise of a stage; a p95 lateness is on far fewer requests than every one. The tool's
# own is ~1.5 ms against a 100 ms limit (bench/README.md, bench_plain_client).
LATE_SHARE = 0.10


def slack(lo: float) -> float:
    """How far a bracket's width (hi - lo) / lo may be off because both ends are rounded
    rates: a bracket meant to be exactly 5% or 20% wide may miss it by this either way, so
    comparisons against those widths allow it (at 10 rps, 0.01 percentage points)."""
    return RATE_STEP / lo


def design_effect(n_i: list[int], w_i: list[int]) -> float:
    """How much less a share k/n is known than n independent requests would say: the
    variance of the share within a limit estimated from blocks (seconds: w_i of n_i within),
    by the ratio estimator's between-block variance, over the binomial p(1-p)/n; at least 1.
    Requests in one second share a queue, so they carry less evidence than their number.
    Fewer than 3 blocks say nothing about the spread: 1."""
    m, n = len(n_i), sum(n_i)
    if m < 3 or n == 0:
        return 1.0
    p = sum(w_i) / n
    nbar = n / m
    between = sum((w - p * k) ** 2 for w, k in zip(w_i, n_i, strict=True)) / (m - 1)
    var_blocks = between / (m * nbar**2)
    var_binom = max(p * (1 - p), 1.0 / n) / n  # a share of 0 or 1 still has some doubt
    return max(1.0, var_blocks / var_binom)


def generator_limited(requests: int, rps: float, seconds: float, arrivals: str) -> bool:
    """Did the generator fall short of the offered rate, beyond chance?

    Uniform arrivals send exactly rps x seconds, so completing less than GENERATOR_SHORTFALL
    of it means the generator (or the endpoint) set the pace. Poisson arrivals send a random
    count with mean and variance rps x seconds, so the random shortfall is allowed on top:
    POISSON_Z standard deviations (at 10 rps over 25 s, 19 points more; at 2,000 rps, 0.4).
    """
    expected = rps * seconds
    if expected <= 0:
        return False
    allowed = GENERATOR_SHORTFALL * expected
    if arrivals == "poisson":
        allowed -= POISSON_Z * math.sqrt(expected)
    return requests < allowed


def late_limit_ms(slo: Slo) -> float | None:
    """The generator lateness (p95, ms) past which a stage says nothing about the endpoint:
    LATE_SHARE of the tightest limit on a latency measured from the intended send
    (end-to-end or time to first token; the gaps between tokens are not). None: no such
    term, nothing to judge it against."""
    limits = [t.limit_ms for t in slo.terms if t.histogram in ("latency_co_us", "ttft_co_us")]
    return LATE_SHARE * min(limits) if limits else None


def generator_late(lag_p95_ms: float | None, slo: Slo) -> bool:
    """Did the load generator itself send late enough to move the stage's verdict?"""
    limit = late_limit_ms(slo)
    return lag_p95_ms is not None and limit is not None and lag_p95_ms > limit


def late_message(lag_p95_ms: float) -> str:
    return f"the load generator fell behind (p95 {lag_p95_ms:.0f} ms late; CPU-starved?)"


# Closed loop (--control concurrency) has no send times to be late for: a generator slow to
# turn an answer into the next send leaves the endpoint fewer requests in flight than the
# stage's level, so the stage is judged on less load than it names, and a pass on it is
# optimistic (a miss stands: at the full level it would only miss more). It must hold this
# share of its level, as lateness may take a tenth of the latency limit (LATE_SHARE). One
# Locust process held 1.0 of levels 2-4 on a 50 ms server (beside a CPU-bound neighbour too),
# 0.93-0.95 of 4-16 on a 10 ms one and 0.88 of 8 on a 2 ms one at 1,600 rps, where its own
# turnaround (~0.6 ms a request) is a seventh of the latency (bench/README.md,
# bench_concurrency, "Least held").
HELD_SHARE = 1.0 - LATE_SHARE


def held_in_flight(successes: int, seconds: float, mean_ms: float | None) -> float | None:
    """Requests the endpoint held in flight on average, by Little's law: answers per second
    x their mean latency (the time each spent sent and unanswered). None: nothing to say."""
    if seconds <= 0 or mean_ms is None or successes <= 0:
        return None
    return successes / seconds * mean_ms / 1000.0


def short_of_level(held: float | None, level: float) -> bool:
    """Did a closed-loop stage hold fewer in flight than HELD_SHARE of its level?"""
    return held is not None and level > 0 and held < HELD_SHARE * level


def short_message(held: float, level: float) -> str:
    return (f"the load generator held only {held:.1f} of {level:g} requests in flight (slow "
            "to turn answers into sends; CPU-starved?)")  # fmt: skip


LATE_HINT = "add --workers, or run on a quieter machine"
# Closed-loop load runs in one Locust process (--workers is refused with --control concurrency).
SHORT_HINT = "run on a quieter or faster machine (closed-loop load runs in one Locust process)"


@dataclass(frozen=True)
class StageSummary:
    """What one stage measured so far (its seconds after warm-up)."""

    rps: float
    seconds: int
    requests: int
    successes: int
    within: dict[str, int]  # SLO stat -> successes within its limit (percentile terms)
    stat_ms: dict[str, float | None]  # SLO stat -> observed value
    mean_ms: float | None = None
    stddev_ms: float | None = None
    cpu_percent_max: float | None = None
    # Observations behind a term judged on another histogram than the requests' latency
    # (TTFT: streamed successes; ITL: gaps between token-bearing parts), by term key.
    counts: dict[str, int] = field(default_factory=dict)
    arrivals: str = "uniform"
    # The later half of the measured seconds: observations (successes, or the term's own
    # count), and within each percentile term's limit, by term key.
    late_successes: int = 0
    late_within: dict[str, int] = field(default_factory=dict)
    late_counts: dict[str, int] = field(default_factory=dict)
    # Per percentile term: the variance of the share within its limit estimated from
    # per-second blocks over the binomial variance that treats requests as independent
    # (the design effect, >= 1). Requests within a second share a queue, so a look divides
    # its counts by this before the Wilson interval (effective sample size).
    design_effect: dict[str, float] = field(default_factory=dict)
    # The generator's own lateness (recorder `lag_us`): p95 of how late requests went out
    # past the time a send was due and a user free. None where the sender does not say.
    lag_p95_ms: float | None = None

    @property
    def held_in_flight(self) -> float | None:
        """Closed loop: the requests in flight the endpoint held (`held_in_flight`)."""
        return held_in_flight(self.successes, self.seconds, self.mean_ms)

    def effective(self) -> StageSummary:
        """This summary with each percentile term's counts divided by its design effect."""
        if not self.design_effect:
            return self
        d = max(self.design_effect.values())

        def scale(v: int) -> int:
            return int(v / d)

        return replace(self, requests=scale(self.requests), successes=scale(self.successes),
                       within={k: scale(v) for k, v in self.within.items()},
                       counts={k: scale(v) for k, v in self.counts.items()})  # fmt: skip

    @property
    def achieved_rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def generator_limited(self) -> bool:
        return generator_limited(self.requests, self.rps, self.seconds, self.arrivals)

    def late_n(self, key: str) -> int:
        """Observations of a term in the later half: its own count, or the successes."""
        return self.late_counts.get(key, self.late_successes)

    def late_readable(self, slo: Slo) -> bool:
        """Enough observations in the later half, beyond each percentile, to read its trend."""
        return all(self.late_n(t.key) * (1 - t.quantile) >= MIN_LATE_TAIL
                   for t in slo.terms if t.quantile is not None and t.quantile < 1)  # fmt: skip

    def rising(self, slo: Slo) -> list[str]:
        """Percentile terms the later half fails on its own: the queue is still growing."""
        out = []
        for t in slo.terms:
            q, n = t.quantile, self.late_n(t.key)
            if q is None or q >= 1.0 or n * (1 - q) < MIN_LATE_TAIL:
                continue  # too few observations beyond the percentile to read the trend
            share = self.late_within.get(t.key, 0) / n
            if share < q:
                out.append(f"{t.key} within {t.limit_ms:g}ms for only {share:.1%} of the "
                           "later half")  # fmt: skip
        return out


@dataclass(frozen=True)
class Verdict:
    outcome: str  # pass | fail | undecided
    reason: str


def two_sided_z(confidence: float) -> float:
    """The normal quantile a two-sided interval at `confidence` spans either side."""
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson(k: int, n: int, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Wilson score interval of a proportion k/n, without continuity correction: scipy's
    `binomtest(k, n).proportion_ci(method="wilson")` (test_search holds it to that). Written
    out with the standard library because it runs in the Locust process, where importing
    scipy.stats cost 1.1 CPU-seconds at every start (and mid-run it would stall the load)."""
    z = two_sided_z(confidence)
    z2 = z * z
    centre = (k + z2 / 2) / (n + z2)
    half = z / (n + z2) * math.sqrt(k * (n - k) / n + z2 / 4)
    return max(0.0, centre - half), min(1.0, centre + half)


def judge(s: StageSummary, slo: Slo, confidence: float = CONFIDENCE) -> Verdict:
    """Pass, fail or undecided at `confidence`, with the statistic that decided it."""
    if s.requests == 0 or s.successes == 0:
        return Verdict(FAIL, "no successful requests")
    z = two_sided_z(confidence)
    outcomes: list[Verdict] = []
    errors = s.requests - s.successes
    rate = errors / s.requests
    lo, hi = wilson(errors, s.requests, confidence)
    if lo > slo.max_error_rate:
        outcomes.append(Verdict(FAIL, f"errors {rate:.2%} > {slo.max_error_rate:.2%}"))
    elif errors == 0 or hi <= slo.max_error_rate:
        outcomes.append(Verdict(PASS, f"errors {rate:.2%}"))
    else:
        outcomes.append(Verdict(UNDECIDED, f"errors {rate:.2%} ~ {slo.max_error_rate:.2%}"))
    for term in slo.terms:
        name = term.key
        value = s.stat_ms.get(name)
        shown = "-" if value is None else f"{value:.1f}ms"
        q = term.quantile
        n = s.counts.get(name, s.successes)
        if n == 0:
            outcomes.append(Verdict(FAIL, f"{name}: nothing measured"))
            continue
        if q is None or q >= 1.0:  # mean, max: a normal-theory interval on the mean
            if (term.stat == "mean" and term.histogram == "latency_co_us"
                    and s.mean_ms is not None and s.stddev_ms is not None):  # fmt: skip
                half = z * s.stddev_ms / math.sqrt(s.successes)
                low, high = s.mean_ms - half, s.mean_ms + half
            else:
                low = high = value if value is not None else math.inf
            if low > term.limit_ms:
                outcomes.append(Verdict(FAIL, f"{name} {shown} > {term.limit_ms:g}ms"))
            elif high <= term.limit_ms:
                outcomes.append(Verdict(PASS, f"{name} {shown}"))
            else:
                outcomes.append(Verdict(UNDECIDED, f"{name} {shown} ~ {term.limit_ms:g}ms"))
            continue
        lo, hi = wilson(s.within.get(name, 0), n, confidence)
        if hi < q:
            outcomes.append(Verdict(FAIL, f"{name} {shown} > {term.limit_ms:g}ms"))
        elif lo >= q:
            outcomes.append(Verdict(PASS, f"{name} {shown}"))
        else:
            share = s.within.get(name, 0) / n
            outcomes.append(
                Verdict(
                    UNDECIDED,
                    f"{name} {shown} ~ {term.limit_ms:g}ms "
                    f"({share:.1%} within, CI {lo:.1%}-{hi:.1%})",
                )  # fmt: skip
            )
    rising = s.rising(slo)
    if rising and all(v.outcome == PASS for v in outcomes):
        return Verdict(UNDECIDED, "; ".join(rising) + ": not settled")
    for outcome in (FAIL, UNDECIDED, PASS):
        hits = [v.reason for v in outcomes if v.outcome == outcome]
        if hits:
            return Verdict(outcome, "; ".join(hits))
    raise AssertionError("unreachable")


def point_verdict(s: StageSummary, slo: Slo) -> Verdict:
    """The decision on point estimates alone (for a stage still undecided at its limit)."""
    bad = []
    for t in slo.terms:
        v = s.stat_ms.get(t.key)
        if v is None or v > t.limit_ms:
            bad.append(f"{t.key} {'-' if v is None else f'{v:.1f}'}ms > {t.limit_ms:g}ms")
    rate = (s.requests - s.successes) / s.requests if s.requests else 1.0
    if rate > slo.max_error_rate:
        bad.append(f"errors {rate:.2%} > {slo.max_error_rate:.2%}")
    bad += s.rising(slo)
    if bad:
        return Verdict(FAIL, "; ".join(bad) + " (point estimate)")
    return Verdict(PASS, "within the SLO (point estimate)")


def abort_reason(
    s: StageSummary, slo: Slo, abort_error_rate: float, abort_latency_factor: float
) -> str | None:
    """Why the stage must stop at once to protect the endpoint, or None."""
    if s.requests >= 20:
        rate = (s.requests - s.successes) / s.requests
        if rate > abort_error_rate:
            return f"error rate {rate:.1%} above --abort-error-rate {abort_error_rate:.0%}"
    term = slo.terms[0]
    value = s.stat_ms.get(term.key)
    if s.successes >= 20 and value is not None and value > abort_latency_factor * term.limit_ms:
        return (
            f"{term.key} {value:.0f}ms above --abort-latency "
            f"({abort_latency_factor:g} x {term.limit_ms:g}ms)"
        )
    return None


class DecisionCode(str, Enum):
    """Why a controller decided what it did, for machines (`Decision.why` says it to people).

    Written to run.json's `search.decisions` as the value string; readers of older run
    directories find no code and fall back to the prose.
    """

    NEXT_STAGE = "next_stage"  # fixed ramp: the plan's next stage
    PLAN_COMPLETE = "plan_complete"  # fixed ramp: no stage left
    ABORTED = "aborted"  # the stage endangered the endpoint; the ramp stops
    GENERATOR_LIMITED = "generator_limited"  # the load generator could not drive the rate
    GENERATOR_LATE = "generator_late"  # the generator sent late twice in a row: stop
    REPEAT_LATE = "repeat_late"  # the generator sent late: the stage is played again
    EXTEND = "extend"  # undecided: the stage runs longer
    GROW = "grow"  # passed, nothing failed yet: offer more
    DESCEND = "descend"  # failed, nothing passed yet: offer less
    BISECT = "bisect"  # between the highest pass and the lowest failure
    RETEST = "retest"  # the bracket is narrow: play its failing end once more
    CORROBORATE = "corroborate"  # the bracket is narrow: play a rate above its failing end
    CEILING = "ceiling"  # the bracket is narrow: play its end the probe set, never played yet
    PRECISION_REACHED = "precision_reached"  # the bracket is as narrow as asked
    MAX_RPS = "max_rps"  # --max-rps passed: capacity is at least that
    FAILS_AT_START = "fails_at_start"  # fails far below --start-rps: nothing to find
    BUDGET_DURATION = "budget_duration"  # --max-duration spent
    BUDGET_REQUESTS = "budget_requests"  # --max-requests would be exceeded
    PROBE_CEILING = "probe_ceiling"  # the probe overloaded the endpoint: search below it
    PROBE_NO_CEILING = "probe_no_ceiling"  # the probe did not overload it: climb as before


# The checks of the bracket's failing end before stopping on it (`AdaptiveSearch._next_rate`).
CHECKS = (DecisionCode.RETEST, DecisionCode.CORROBORATE)


@dataclass
class Decision:
    """One controller decision, as written to run.json."""

    at: float  # seconds since the start of the run
    stage: int
    rps: float
    outcome: str  # pass | fail | undecided | aborted | generator_limited
    reason: str
    action: str  # extend | next | stop
    next_rps: float | None = None
    why: str = ""
    code: DecisionCode = field(kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "code": self.code.value}


@dataclass
class Controller:
    """Common state: the stages played so far and the decisions taken."""

    slo: Slo
    warmup_seconds: float
    abort_error_rate: float
    abort_latency_factor: float
    stages: list[tuple[float, float, float]] = field(default_factory=list)  # rps, start, end
    decisions: list[Decision] = field(default_factory=list)
    done: bool = False
    abort_window: StageSummary | None = None  # what the last abort saw (its recent seconds)
    _late_before: bool = False  # the last stage was sent late by the generator (`_late`)

    @property
    def closed_loop(self) -> bool:
        """Stages are numbers of requests in flight (--control concurrency), not rates."""
        return False

    def current(self) -> tuple[int, float, float, float] | None:
        """(index, rps, start, end) of the running stage, None once stopped."""
        if self.done or not self.stages:
            return None
        rps, start, end = self.stages[-1]
        return len(self.stages) - 1, rps, start, end

    def stage_at(self, t: float) -> int | None:
        for i, (_, start, end) in enumerate(self.stages):
            if start <= t < end:
                return i
        return None

    def abort(self, t: float, s: StageSummary) -> str | None:
        """Cut the running stage short at `t` if it endangers the endpoint."""
        cur = self.current()
        if cur is None or cur[1] <= 0:
            # A rest sends nothing: its slow answers are the backlog it is there to drain.
            # (Cut short by them, a rest hands its backlog to the next stage, which aborts on
            # it: config C's first stage did at 1.06 x its capacity, bench/README.md at 3ee0216.)
            return None
        reason = abort_reason(s, self.slo, self.abort_error_rate, self.abort_latency_factor)
        if reason is not None:
            i, rps, start, _ = cur
            self.stages[i] = (rps, start, t)
            self.abort_window = s
        return reason

    def look(self, t: float, s: StageSummary) -> bool:
        """An interim look at the running stage at `t`: True if it ends there (the stage's
        end is moved to `t`). Only the adaptive search looks."""
        return False

    def _late(self, t: float, i: int, rps: float, s: StageSummary, aborted: str | None,
              outcome: str) -> str | None:  # fmt: skip
        """The stage that ended missed its latency limits while the generator itself sent
        late (`generator_late`): the miss may be the generator's, so it is judged neither
        pass nor fail. The first time, returns why, for the caller to go on (the adaptive
        search plays the stage again); right after another, stops the search and returns
        why. None: not late. A pass stands (the lateness only added to its latency), as do
        an abort (it protects the endpoint) and a failure on errors (lateness sends no
        error). In a closed loop it is the other way round: a pass on fewer requests in
        flight than the level (`short_of_level`) says nothing, a miss stands."""
        errors = (s.requests - s.successes) / s.requests if s.requests else 0.0
        reason: str | None = None
        if aborted:
            pass
        elif self.closed_loop:
            held = s.held_in_flight
            if outcome == PASS and short_of_level(held, rps):
                assert held is not None
                reason = short_message(held, rps)
        elif (outcome != PASS and errors <= self.slo.max_error_rate
              and generator_late(s.lag_p95_ms, self.slo)):  # fmt: skip
            assert s.lag_p95_ms is not None
            reason = late_message(s.lag_p95_ms)
        before, self._late_before = self._late_before, reason is not None
        if reason is None:
            return None
        if before:
            self._decide(t, i, rps, "generator_late", reason, "stop", DecisionCode.GENERATOR_LATE,
                         f"{reason} in two stages in a row: no capacity drawn from them; "
                         f"{SHORT_HINT if self.closed_loop else LATE_HINT}")  # fmt: skip
        return reason

    def advance(self, t: float, s: StageSummary, aborted: str | None = None) -> None:
        """The running stage ended at `t` having measured `s`: decide what comes next."""
        raise NotImplementedError

    def _decide(self, t: float, stage: int, rps: float, outcome: str, reason: str, action: str,
                code: DecisionCode, why: str, next_rps: float | None = None) -> None:  # fmt: skip
        """Record a decision; a stop ends the run."""
        self.decisions.append(
            Decision(t, stage, rps, outcome, reason, action, next_rps, why, code=code)
        )
        if action == "stop":
            self.done = True

    def _start(self, rps: float, at: float, seconds: float) -> None:
        self.stages.append((rps, at, at + seconds))

    def _extend(self, seconds: float) -> None:
        rps, start, end = self.stages[-1]
        self.stages[-1] = (rps, start, end + seconds)

    control = "rate"  # what a stage's rps is (AdaptiveSearch: its settings')

    def realized_plan(self, arrivals: str = "uniform", users: int = 0) -> RampPlan:
        """The stages as played (for the run directory and the analysis)."""
        from recommender.plan import Stage

        return RampPlan(
            tuple(Stage(rps, end - start) for rps, start, end in self.stages if end > start),
            self.warmup_seconds,
            arrivals,
            users,
            self.control,
        )


class Follower(Controller):
    """A worker's view of the master's stages: it plays what the master decided, and
    waits (no tickets) at a stage's end until the master says what comes next."""

    def __init__(self, slo: Slo, warmup_seconds: float) -> None:
        super().__init__(slo, warmup_seconds, 1.0, math.inf)
        self.waiting = False

    def update(self, stages: list[tuple[float, float, float]], done: bool) -> None:
        if stages != self.stages:
            self.stages = [tuple(s) for s in stages]  # type: ignore[misc]
            self.waiting = False
        self.done = done

    def current(self) -> tuple[int, float, float, float] | None:
        return None if self.waiting else super().current()

    def abort(self, t: float, s: StageSummary) -> str | None:
        return None  # the master judges the merged data

    def advance(self, t: float, s: StageSummary, aborted: str | None = None) -> None:
        self.waiting = True


class FixedRamp(Controller):
    def __init__(self, plan: RampPlan, slo: Slo, abort_error_rate: float = 0.10,
                 abort_latency_factor: float = 3.0) -> None:  # fmt: skip
        super().__init__(slo, plan.warmup_seconds, abort_error_rate, abort_latency_factor)
        self.plan = plan
        self._start(plan.stages[0].rps, 0.0, plan.stages[0].seconds)

    @property
    def closed_loop(self) -> bool:
        return self.plan.control == "concurrency"

    def advance(self, t: float, s: StageSummary, aborted: str | None = None) -> None:
        """The running stage ended at `t`: play the next one, or stop."""
        i, rps, _, _ = self.current() or (0, 0.0, 0.0, 0.0)
        verdict = Verdict(FAIL, aborted) if aborted else point_verdict(s, self.slo)
        outcome = "aborted" if aborted else verdict.outcome
        if aborted:
            # Later stages offer more: the endpoint would only suffer more.
            self._decide(t, i, rps, outcome, verdict.reason, "stop", DecisionCode.ABORTED,
                         "aborted: the ramp stops here")  # fmt: skip
            return
        # A fixed ramp plays the plan as given: a late stage is left out by the analysis
        # and the ramp goes on; a second one in a row stops it.
        late = self._late(t, i, rps, s, aborted, outcome)
        if self.done:
            return
        if late is not None:
            verdict = Verdict(UNDECIDED, f"{late}: neither pass nor fail")
            outcome = "generator_late"
        if i + 1 >= len(self.plan.stages):
            self._decide(t, i, rps, outcome, verdict.reason, "stop", DecisionCode.PLAN_COMPLETE,
                         "the plan is complete")  # fmt: skip
            return
        nxt = self.plan.stages[i + 1]
        self._decide(t, i, rps, outcome, verdict.reason, "next", DecisionCode.NEXT_STAGE,
                     "the plan's next stage", nxt.rps)  # fmt: skip
        self._start(nxt.rps, t, nxt.seconds)


class AdaptiveSearch(Controller):
    def __init__(self, settings: SearchSettings, slo: Slo) -> None:
        super().__init__(slo, settings.warmup_seconds, settings.abort_error_rate,
                         settings.abort_latency_factor)  # fmt: skip
        self.settings = settings
        self.lo: float | None = None  # highest passing rate
        self.hi: float | None = None  # lowest failing rate
        self.ceiling: float | None = None  # the probe's throughput ceiling (MAX_RPS)
        self.extensions = 0
        self.requests = 0
        self._pending: float | None = None  # the rate to offer after a rest
        self._early: Verdict | None = None  # the running stage's verdict at an interim look
        self.tested: dict[float, int] = {}  # rate -> stages played at it
        self.failed: set[float] = set()  # rates whose (latest) stage failed
        self.arrivals = "uniform"  # as the stages report them (StageSummary.arrivals)
        self.control = settings.control
        # Closed loop has no rate to overload with: the probe is for arrival rates.
        self._probing = (settings.probe and settings.control != "concurrency"
                         and settings.max_rps > settings.start_rps)  # fmt: skip
        if self._probing:
            self._start(settings.max_rps, 0.0, settings.warmup_seconds + PROBE_SECONDS)
        else:
            self._start(min(settings.start_rps, settings.max_rps), 0.0, settings.stage_seconds)

    @property
    def rest_seconds(self) -> float:
        """Idle time after an overloaded stage, so its queue drains before the next one
        (otherwise the backlog makes a lower rate look like a failure too)."""
        return max(3.0, self.settings.warmup_seconds)

    @property
    def final_confidence(self) -> float:
        return FINAL_CONFIDENCE if self.settings.early_stop else CONFIDENCE

    def look(self, t: float, s: StageSummary) -> bool:
        cfg = self.settings
        cur = self.current()
        if cur is None or not cfg.early_stop or self._probing:
            return False  # (nor is an extension looked at: only --no-early-stop extends)
        i, rps, start, _ = cur
        if rps <= 0 or s.seconds < MIN_LOOK_SECONDS:
            return False  # a few seconds of a queue still filling say little
        if self.near_knee and not self.checking:
            return False  # stages near the knee keep their full length
        at = [k for k in range(1, LOOKS) if self._look_time(start, k) == t]
        if not at:
            return False
        # On the effective sample size: seconds as blocks, not requests as independent.
        verdict = judge(s.effective(), self.slo, INTERIM_CONFIDENCE)
        if verdict.outcome == UNDECIDED:
            return False
        if verdict.outcome == PASS and (s.generator_limited or not s.late_readable(self.slo)):
            return False  # a pass ends early only once its later half shows it settled
        if verdict.outcome == PASS and self.checking:
            # A pass would overturn a failure measured at full length (or an abort), near the
            # knee, where a short stage passes by chance (bootstrap.chance_low): it takes as
            # much evidence as the failure had. A clear failure only confirms it.
            return False
        self._early = Verdict(verdict.outcome, f"{verdict.reason} (clear at look {at[0]} of "
                              f"{LOOKS}, {INTERIM_CONFIDENCE:.1%} interval)")  # fmt: skip
        self.stages[i] = (rps, start, t)
        return True

    @property
    def near_knee(self) -> bool:
        """The bracket is within KNEE_BRACKET x the precision: the stages played now are
        near the knee, where an early verdict is least certain and sets the estimate."""
        lo, hi = self.lo, self.hi
        # Strictly within: the bracket the probe opens, [ceiling / 1.2, ceiling], is exactly
        # 4 x 5%, and its first bisection, often well off the knee, may still end at a look.
        # Whichever way its rounded lower end fell: with a tolerance tighter than the
        # rounding, half the searches lost that look (config K, simulated: 113 s, not 94).
        return lo is not None and hi is not None and (
            (hi - lo) / lo < KNEE_BRACKET * self.settings.precision - slack(lo))

    @property
    def checking(self) -> bool:
        """The running stage checks the bracket's failing end, a failure already measured at
        full length or by an abort: it re-tests it, or corroborates it from above. A failure
        clear at an interim look only confirms it, so it may end the stage there, near the
        knee too; a pass would overturn it and runs the whole stage (`look`)."""
        return bool(self.decisions) and self.decisions[-1].code in CHECKS

    def _look_time(self, start: float, k: int) -> float:
        """The k-th interim look: k/LOOKS of the stage, on a whole second, or on a whole
        CloudWatch period (from the run's start) when there is one."""
        at = start + k * self.settings.stage_seconds / LOOKS
        p = max(1, self.settings.period)
        return float(math.ceil(at / p) * p)

    def advance(self, t: float, s: StageSummary, aborted: str | None = None) -> None:
        cfg = self.settings
        i, rps, start, _ = self.current() or (0, 0.0, 0.0, 0.0)
        if rps == 0 and self._pending is not None:  # a rest is over
            pending, self._pending = self._pending, None
            self._start(pending, t, cfg.stage_seconds)
            return
        if self._probing:
            self._after_probe(t, i, rps, s, aborted)
            return
        early, self._early = self._early, None
        self.arrivals = s.arrivals
        if aborted:
            verdict, outcome = Verdict(FAIL, aborted), "aborted"
        else:
            # The final look stays on requests: on the effective sample size nearly every
            # knee stage is undecided and extends, doubling the search (measured, bench/
            # README.md); the interval carries that uncertainty instead (analysis.bootstrap).
            verdict = early or judge(s, self.slo, self.final_confidence)
            outcome = verdict.outcome
            late = self._late(t, i, rps, s, aborted, outcome)
            if late is not None:
                self.requests += s.requests
                if not self.done:
                    self._go(t, i, rps, "generator_late", late, rps, DecisionCode.REPEAT_LATE,
                             f"{late}: neither pass nor fail; play it again")  # fmt: skip
                return
            # Closed loop sends as fast as answers come: there is no offered rate to fall short of.
            if not self.closed_loop and s.generator_limited and verdict.outcome != FAIL:
                why = (f"achieved {s.achieved_rps:.1f} of {rps:g} rps while within the SLO "
                       f"(short beyond the spread of {s.arrivals} arrivals): the load "
                       "generator cannot drive more; add --workers")  # fmt: skip
                self._decide(t, i, rps, "generator_limited", verdict.reason, "stop",
                             DecisionCode.GENERATOR_LIMITED, why)  # fmt: skip
                return
        budget_left = cfg.max_duration - t
        if outcome == UNDECIDED:
            ext = cfg.stage_seconds / 2
            # An undecided stage is near the capacity, where it is a coin flip that half a
            # stage more hardly settles (at 1.016 x the capacity 10 s stages pass 57% of the
            # time, 30 s ones 41%: bench/README.md): with early stopping its point estimate
            # decides at full length, and the interval carries the doubt (analysis.bootstrap
            # .chance_low, fail_above). That holds before the bracket is narrow too: C's
            # slowest simulated runs lost 30 s to extensions there (sim_search.py; bench/README.md
            # at 73c258c). --no-early-stop extends as today's search does.
            if (self.extensions < cfg.max_extensions and budget_left >= ext
                    and not cfg.early_stop):  # fmt: skip
                self.extensions += 1
                self._decide(t, i, rps, outcome, verdict.reason, "extend", DecisionCode.EXTEND,
                             f"undecided: +{ext:g}s", rps)  # fmt: skip
                self._extend(ext)
                return
            verdict = point_verdict(s, self.slo)
            outcome = verdict.outcome
        self.extensions = 0
        self.requests += s.requests
        self.tested[rps] = self.tested.get(rps, 0) + 1
        if outcome == PASS:
            self.lo = max(self.lo or 0.0, rps)
            # A pass at or above a failure refutes it (something else slowed that stage):
            # only the check of the failing end plays there (`_next_rate`).
            self.failed = {f for f in self.failed if f > rps}
            if self.hi is not None and rps >= self.hi:
                # The bracket reopens above: at the next failure or the probe's ceiling,
                # or, passed at the ceiling, it steps just above it (`_next_rate`).
                above = [f for f in (*self.failed, self.ceiling or 0.0) if f > rps]
                self.hi = min(above) if above else None
        else:
            self.failed.add(rps)
            self.hi = min(self.hi if self.hi is not None else math.inf, rps)
        nxt, code, why = self._next_rate(rps)
        if early is not None:
            why = f"ended early: {why}"
        self._go(t, i, rps, outcome, verdict.reason, nxt, code, why)

    def _go(self, t: float, i: int, rps: float, outcome: str, reason: str, nxt: float | None,
            code: DecisionCode, why: str, drain: float = 0.0) -> None:  # fmt: skip
        """Start the next stage (after a rest if this one overloaded, of at least `drain`
        seconds), or stop."""
        cfg = self.settings
        if nxt is not None:
            cost = nxt * cfg.stage_seconds
            if cfg.max_duration - t < cfg.stage_seconds:
                nxt, code = None, DecisionCode.BUDGET_DURATION
                why = f"--max-duration spent ({t:.0f}s of {cfg.max_duration:g}s)"
            elif cfg.max_requests is not None and self.requests + cost > cfg.max_requests:
                nxt, code = None, DecisionCode.BUDGET_REQUESTS
                why = f"--max-requests would be exceeded ({cfg.max_requests})"
        if nxt is None:
            self._decide(t, i, rps, outcome, reason, "stop", code, why)
            return
        # Only an overload (an aborted stage, the probe) leaves a queue worth a rest. A stage
        # that failed without being aborted ended with waits under --abort-latency x the
        # SLO; the next, lower stage drains most of it in its warm-up, and a rest changed
        # nothing measured: near the knee a stage passes as often right after a stage at
        # 1.05x its rate as from an empty queue (simulated, bench/README.md, issue 17).
        # (Nor does a stage the generator sent late: it says nothing of the endpoint's queue.)
        rest = (max(self.rest_seconds, drain)
                if outcome not in (PASS, FAIL, "generator_late") or drain else 0.0)  # fmt: skip
        if rest and cfg.period > 1:  # to the next whole period, so the next stage starts on one
            rest = math.ceil((t + rest) / cfg.period) * cfg.period - t
        if not rest:
            self._decide(t, i, rps, outcome, reason, "next", code, why, nxt)
            self._start(nxt, t, cfg.stage_seconds)
            return
        why += f"; after {rest:g}s without load to drain the queue"
        self._decide(t, i, rps, outcome, reason, "next", code, why, nxt)
        self._pending = nxt
        self._start(0.0, t, rest)

    def _after_probe(self, t: float, i: int, rps: float, s: StageSummary,
                     aborted: str | None) -> None:  # fmt: skip
        """The probe is over: start below its ceiling if it overloaded the endpoint, else
        climb from --start-rps as without it."""
        cfg = self.settings
        self._probing = False
        seen = s if s.seconds else self.abort_window
        served = seen.successes / seen.seconds if seen is not None and seen.seconds else 0.0
        self.requests += s.requests
        verdict = Verdict(FAIL, aborted) if aborted else judge(s, self.slo)
        outcome = "aborted" if aborted else verdict.outcome
        overloaded = outcome in ("aborted", FAIL) and served < SATURATED * rps
        if overloaded and served > 0:
            self.ceiling = served
            # Nothing above the ceiling can be served, let alone within a latency SLO.
            self.hi = served
            nxt = round(max(PROBE_START * served, cfg.start_rps / cfg.growth**3), RATE_DECIMALS)
            why = (f"probe: the endpoint served at most {served:.1f} rps (its ceiling); "
                   f"search below it from {nxt:g} rps")  # fmt: skip
            code = DecisionCode.PROBE_CEILING
        else:
            nxt = min(cfg.start_rps, cfg.max_rps)
            why = (f"probe: not overloaded at {rps:g} rps (served {served:.1f}); "
                   f"climb from --start-rps {nxt:g}")  # fmt: skip
            code = DecisionCode.PROBE_NO_CEILING
        # The probe queues what it sends beyond the ceiling; the rest lets that drain at the
        # ceiling's pace, or the first stage measures the probe's backlog (a 60 rps probe of
        # a 16 rps endpoint left 8 s of it: the first stage's p95 was 6.4 s).
        queued = max(0.0, rps - served) * (t - self.stages[i][1])
        drain = max(self.rest_seconds, queued / served if served > 0 else 0.0)
        self._go(t, i, rps, outcome, verdict.reason, nxt, code, why,
                 drain=drain if outcome != PASS else 0.0)  # fmt: skip

    @property
    def closed_loop(self) -> bool:
        return self.settings.control == "concurrency"

    def _next_rate(self, rps: float) -> tuple[float | None, DecisionCode, str]:
        """The next rate (None: stop), why as a code, and why in words."""
        if self.closed_loop:
            return self._next_concurrency(rps)
        cfg = self.settings
        lo, hi = self.lo, self.hi
        if hi is None:  # still growing
            if lo is not None and lo >= cfg.max_rps:
                return (None, DecisionCode.MAX_RPS,
                        f"--max-rps {cfg.max_rps:g} passed: capacity is at least that")  # fmt: skip
            if self.ceiling is not None and rps >= self.ceiling:
                # Nothing much above the probe's ceiling can be served: one precision step
                # above it fails (a bracket as narrow as asked) unless the probe was wrong.
                nxt = round(min(rps * (1 + cfg.precision), cfg.max_rps), RATE_DECIMALS)
                return (nxt, DecisionCode.GROW, f"passed at or above the probe's ceiling "
                        f"{self.ceiling:g}: grow x{1 + cfg.precision:g}")  # fmt: skip
            nxt = min(rps * cfg.growth, cfg.max_rps)
            return nxt, DecisionCode.GROW, f"passed: grow x{cfg.growth:g}"
        if lo is None:  # failing from the start: come down
            # Below a probe's ceiling, in smaller steps: the SLO's rate is not far under it.
            # (Steps of 10% after a stage that failed only at full length were tried: on a
            # busy machine, whose capacity had fallen far below the ceiling, test_sweep's
            # search then spent its budget before a stage passed.)
            step = 1 / PROBE_START if self.ceiling is not None else cfg.growth
            nxt = round(rps / step, RATE_DECIMALS)
            if nxt < cfg.start_rps / cfg.growth**3:
                return (None, DecisionCode.FAILS_AT_START,
                        f"fails even at {rps:g} rps: lower --start-rps or relax --slo")  # fmt: skip
            return (nxt, DecisionCode.DESCEND,
                    f"failed without a passing rate: divide by {step:g}")  # fmt: skip
        width = (hi - lo) / lo
        if width <= cfg.precision + slack(lo):  # a step of exactly the precision is in
            if hi not in self.tested:
                # The probe's ceiling, a throughput, not a stage played at that rate: a
                # bracket end no stage measured would stand unchecked (under uniform arrivals
                # the ceiling may well pass), and the analysis has no failing stage there.
                return (hi, DecisionCode.CEILING,
                        f"bracket {lo:g}-{hi:g} rps is {width:.1%} wide: play {hi:g}, "
                        "the probe's ceiling, as a stage before stopping")  # fmt: skip
            checked = any(d.code in CHECKS for d in self.decisions)
            if (cfg.retest and not checked and hi in self.failed
                    and self.tested.get(hi, 0) == 1 and not self.corroborated(hi)):  # fmt: skip
                # One stage slowed by something else (a shared host, a noisy neighbour)
                # would fix the top of the bracket for good: bisection never goes back.
                above = round(min(hi * (1 + CORROBORATE * cfg.precision), cfg.max_rps),
                              RATE_DECIMALS)  # fmt: skip
                if above > hi and (self.ceiling is None or hi < self.ceiling):
                    return (above, DecisionCode.CORROBORATE,
                            f"bracket {lo:g}-{hi:g} rps is {width:.1%} wide: play {above:g}, "
                            f"{CORROBORATE * cfg.precision:.0%} above {hi:g} (failed once), "
                            "before stopping: its failure bounds the capacity, a pass "
                            f"refutes {hi:g}")  # fmt: skip
                # Nothing above to play (the ceiling, --max-rps): the failing end itself.
                return (hi, DecisionCode.RETEST,
                        f"bracket {lo:g}-{hi:g} rps is {width:.1%} wide: re-test "
                        f"{hi:g}, failed once, before stopping")  # fmt: skip
            why = f"bracket {lo:g}-{hi:g} rps is {width:.1%} wide (<= {cfg.precision:.0%})"
            return None, DecisionCode.PRECISION_REACHED, why
        return (round((lo + hi) / 2, RATE_DECIMALS), DecisionCode.BISECT,
                f"bisect {lo:g}-{hi:g} ({width:.1%} wide)")  # fmt: skip

    def corroborated(self, hi: float) -> bool:
        """Another failure, or the probe's ceiling, within CORROBORATE x the precision above
        `hi`: if `hi` failed by chance, the capacity is still under that, so checking `hi`
        would buy at most that much (and the interval covers it, analysis.bootstrap). Under
        Poisson arrivals a failure at the ceiling itself is no chance either (the queue of a
        stream at the saturation throughput grows without bound); uniform arrivals may pass
        there, so that one is re-tested (nothing above the ceiling can corroborate it)."""
        if self.arrivals == "poisson" and self.ceiling is not None and hi >= self.ceiling:
            return True  # a Poisson stream at the saturation throughput queues without bound
        top = hi * (1 + CORROBORATE * self.settings.precision + slack(hi))
        return any(hi < f <= top for f in (*self.failed, self.ceiling or 0.0))

    def _next_concurrency(self, level: float) -> tuple[float | None, DecisionCode, str]:
        """`_next_rate` over whole numbers of requests in flight: the same growth, descent
        and bisection, stopping also when the bracket is one request wide."""
        cfg = self.settings
        lo, hi = self.lo, self.hi
        if hi is None:
            if lo is not None and lo >= cfg.max_rps:
                return (None, DecisionCode.MAX_RPS, f"--max-concurrency {cfg.max_rps:g} "
                        "passed: the concurrency within the SLO is at least that")  # fmt: skip
            nxt = min(max(math.ceil(level * cfg.growth), level + 1), cfg.max_rps)
            return nxt, DecisionCode.GROW, f"passed: grow x{cfg.growth:g}"
        if lo is None:
            if level <= 1:
                return (None, DecisionCode.FAILS_AT_START,
                        "fails even with 1 request in flight: relax --slo")  # fmt: skip
            return (float(max(1, math.floor(level / cfg.growth))), DecisionCode.DESCEND,
                    f"failed without a passing concurrency: divide by {cfg.growth:g}")  # fmt: skip
        width = (hi - lo) / lo
        if width <= cfg.precision or hi - lo <= 1:
            why = (f"bracket {lo:g}-{hi:g} in flight is {width:.1%} wide "
                   f"(<= {cfg.precision:.0%}, or one request)")  # fmt: skip
            return None, DecisionCode.PRECISION_REACHED, why
        return (float((lo + hi) // 2), DecisionCode.BISECT,
                f"bisect {lo:g}-{hi:g} in flight ({width:.1%} wide)")  # fmt: skip
