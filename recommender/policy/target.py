"""The target value from a run's analysis.json, and why a run may not be trusted for one (pure).

The run arrives as the dicts `recommender analyze` wrote (RunFacts), not as an Analysis: `apply`
reads a run directory long after it was analysed, perhaps by another version.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from recommender.analysis.curve import interpolate
from recommender.errors import ConfigError, InsufficientDataError
from recommender.policy.kinds import Kind, Metric


@dataclass(frozen=True)
class RunFacts:
    """What a run directory says: run.json's `target` and analysis.json."""

    path: str
    target: Mapping[str, Any]
    analysis: Mapping[str, Any]


def round_target(value: float) -> float:
    # One decimal is plenty for invocations per minute (thousands); utilization and
    # concurrency targets are small numbers that need more.
    return round(value, 1) if value >= 10 else round(value, 3)


def trust_problems(analysis: Mapping[str, Any]) -> list[str]:
    """Why a run's capacity should not drive a policy, or [] when nothing stands out."""
    problems = []
    if analysis.get("recommendation") is None:
        problems.append("it has no recommendation (no stage passed the SLO)")
    capacity = analysis.get("capacity") or {}
    method = capacity.get("method")
    if method != "interpolated" and analysis.get("recommendation") is not None:
        problems.append(
            f"its capacity is a {str(method).replace('_', ' ')}, not interpolated between a "
            "passing and a failing stage (raise --max-rps until a stage fails)"
        )
    failing = capacity.get("failing_stage")
    slo = analysis.get("slo") or {}
    stage = next((s for s in analysis.get("stages") or () if s.get("index") == failing), None)
    if stage is not None and slo and failing is not None:
        limits = {str(t["stat"]): float(t["limit_ms"]) for t in slo.get("terms") or ()}
        values = stage.get("slo_values_ms") or {}
        latency_ok = all(values.get(k) is not None and values[k] <= v for k, v in limits.items())
        # A serverless variant refuses what is beyond MaxConcurrency with ThrottlingException:
        # that is its capacity limit, the very thing measured, not an error of the endpoint.
        throttled = bool(analysis.get("serverless")) and set(
            stage.get("errors_by_kind") or {}) == {"ThrottlingException"}  # fmt: skip
        if (latency_ok and not throttled
                and float(stage.get("error_rate") or 0) > float(slo.get("max_error_rate", 0))):
            problems.append(
                f"stage {int(failing) + 1} failed by errors ({stage['error_rate']:.1%}) while "
                "its latency was within the SLO: errors, not load, set the capacity (check "
                "the endpoint's logs and quotas)"
            )
    problems += [
        str(w.get("message"))
        for w in analysis.get("warnings") or ()
        if w.get("code") == "generator_limited"
    ]
    return problems


def concurrency_target(analysis: Mapping[str, Any]) -> tuple[float, str]:
    """Concurrent requests per instance at the recommended load, by Little's law
    (L = lambda x W): the rate per instance at the target times the mean latency there,
    interpolated linearly in the stage table (p50 where a stage has no mean)."""
    rec = analysis["recommendation"]
    rate = float(rec["target_value"]) / 60.0  # requests/s per instance at the target
    instances = int((analysis.get("capacity") or {}).get("instances") or 1)
    points = [
        (float(s["achieved_rps"]) / instances, float(s.get("mean_ms") or s.get("p50_ms")))
        for s in analysis.get("stages") or ()
        if (s.get("mean_ms") or s.get("p50_ms")) and s.get("achieved_rps")
    ]
    if not points:
        raise InsufficientDataError("the run's stages have no latency to apply Little's law to",
                                    "pass --target-value")  # fmt: skip
    # Held flat beyond the stages: a target outside them still gets the nearest latency.
    latency_ms = float(interpolate(rate, *zip(*points, strict=True)))
    value = rate * latency_ms / 1000.0
    return value, (
        f"target = requests/s per instance at the target x mean latency there = {rate:.2f} x "
        f"{latency_ms / 1000:.4f} s = {round_target(value):g} concurrent requests per instance "
        "(Little's law)"
    )


def _recommended(run: RunFacts) -> Mapping[str, Any]:
    rec = run.analysis.get("recommendation")
    if not isinstance(rec, Mapping):
        raise InsufficientDataError(
            f"the run {run.path} has no recommendation (no stage passed the SLO)",
            "re-run with a lower --start-rps or a looser --slo, or pass --target-value",
        )
    value = rec.get("target_value")
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"analysis.json's target value is not a number (got {value!r})",
                          f"re-run `recommender analyze {run.path}`")  # fmt: skip
    return rec


def target_value_for(
    given: float | None, kind: Kind, metric: Metric, run: RunFacts | None
) -> tuple[float, str, bool]:
    """(value, where it comes from, whether it comes from the run's capacity); `given`: the
    --target-value, already checked."""
    if given is not None:
        return given, "given with --target-value", False
    if kind is Kind.ASYNC:
        return _async_target(run)
    if run is None:
        raise ConfigError("no target value", "pass --target-value, or a run directory")
    found = run.analysis.get("recommendation")
    if isinstance(found, Mapping) and found.get("metric") == ASYNC_METRIC:
        raise ConfigError(f"the run {run.path} measured an asynchronous endpoint",
                          "apply it with --kind async")  # fmt: skip
    if kind is Kind.SERVERLESS:
        sized = serverless_sizing(run)
        value = float(sized["target_utilization"])
        return value, (
            f"the run's sizing for a peak of {float(sized['peak_rps']):g} requests/s: "
            f"{float(sized['busy_at_peak']):.2f} executions busy / ProvisionedConcurrency "
            f"{int(sized['provisioned_concurrency'])}, which keeps cold starts within the SLO"
        ), True
    rec = _recommended(run)
    if metric is Metric.CONCURRENCY:
        # The run's own concurrency target (at the SLO x the safety factor) when it has one;
        # an older analysis.json: Little's law at the invocations target.
        given_c = rec.get("concurrency_target_value")
        if isinstance(given_c, (int, float)) and not isinstance(given_c, bool) and given_c > 0:
            return float(given_c), str(rec.get("concurrency_formula")), True
        value, formula = concurrency_target(run.analysis)
        return value, formula, True
    return float(rec["target_value"]), str(rec.get("formula") or "the run's recommendation"), True


ASYNC_METRIC = "ApproximateBacklogSizePerInstance"


def _async_target(run: RunFacts | None) -> tuple[float, str, bool]:
    """The run's ApproximateBacklogSizePerInstance target (recommender.analysis.asynchronous:
    c + mu x W x safety factor), only from a run against an asynchronous endpoint."""
    if run is None:
        raise ConfigError("--kind async needs --target-value (queued requests per instance), "
                          "or a run directory of an asynchronous endpoint",
                          "run `recommender run --endpoint E --input-s3 ...` first, or pass "
                          "--target-value (AWS's example uses 5)")  # fmt: skip
    rec = _recommended(run)
    if rec.get("metric") != ASYNC_METRIC:
        raise ConfigError(f"the run {run.path} measured a real-time endpoint, not the queue "
                          "of an asynchronous one",
                          "run the load test against the asynchronous endpoint, or pass "
                          "--target-value")  # fmt: skip
    return float(rec["target_value"]), str(rec.get("formula") or "the run's target"), True


def serverless_sizing(run: RunFacts) -> Mapping[str, Any]:
    """analysis.json's provisioned-concurrency sizing (`report --peak-rps` writes it)."""
    section = run.analysis.get("serverless")
    if not isinstance(section, Mapping):
        raise ConfigError(f"the run {run.path} measured a real-time variant, not a serverless one",
                          "use --kind variant, or a run made against the serverless variant")
    sized = section.get("sizing")
    if not isinstance(sized, Mapping):
        raise ConfigError(f"the run {run.path} has no provisioned-concurrency sizing",
                          f"size it for your peak first: recommender report {run.path} "
                          "--peak-rps R (or pass --target-value and the capacities)")  # fmt: skip
    return sized


def check_trust(run: RunFacts, force: bool) -> list[str]:
    problems = trust_problems(run.analysis)
    if problems and not force:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise InsufficientDataError(
            f"the run {run.path} is not a trustworthy basis for a policy: {problems[0]}{more}",
            "re-run the load test, or pass --force to apply it anyway",
        )
    return [f"--force: applying despite: {p}" for p in problems]
