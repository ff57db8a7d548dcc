"""From capacity per instance to the target-tracking target value (pure).

SageMakerVariantInvocationsPerInstance counts invocations per instance per MINUTE, so
AWS's documented formula is target = max_rps_per_instance x safety_factor x 60, with 0.5
as the recommended starting safety factor (AWS CDK's scaleOnInvocations uses the same).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from recommender.errors import ConfigError

METRIC = "SageMakerVariantInvocationsPerInstance"
DEFAULT_SAFETY_FACTOR = 0.5
# The predefined metrics of the other targets (DESIGN.md, "Facts"): per copy for an
# inference component, and concurrency (10-second, high-resolution data) beside invocations.
COMPONENT_METRIC = "SageMakerInferenceComponentInvocationsPerCopy"
CONCURRENCY_METRIC = "SageMakerVariantConcurrentRequestsPerModelHighResolution"
COMPONENT_CONCURRENCY_METRIC = "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution"


@dataclass(frozen=True)
class Recommendation:
    metric: str
    target_value: float
    safety_factor: float
    rps_per_instance: float
    formula: str
    # The concurrency target (requests in flight per instance or copy at the SLO x the
    # safety factor), when the run tells the concurrency at the SLO.
    concurrency_metric: str | None = None
    concurrency_target_value: float | None = None
    concurrency_formula: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_safety_factor(safety_factor: float) -> float:
    if not 0 < safety_factor <= 1:
        raise ConfigError(
            f"--safety-factor must be in (0, 1] (got {safety_factor:g})",
            "AWS recommends 0.5 to start",
        )
    return safety_factor


def parse_safety_factor(text: str) -> float | None:
    """`--safety-factor`: a number in (0, 1], or None for "auto" (chosen by simulation)."""
    if text.strip().lower() == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"--safety-factor must be a number or auto (got {text!r})",
                          "e.g. 0.5, or auto with --traffic or --pattern") from None  # fmt: skip
    return check_safety_factor(value)


def target_value(rps_per_instance: float, safety_factor: float) -> float:
    return rps_per_instance * safety_factor * 60.0


def recommend(rps_per_instance: float, safety_factor: float,
              concurrency_per_instance: float | None = None, per_copy: bool = False,
              concurrency_basis: str = "measured") -> Recommendation:  # fmt: skip
    """`per_copy`: the run measured an inference component, whose capacity is per copy."""
    value = target_value(rps_per_instance, check_safety_factor(safety_factor))
    unit = "copy" if per_copy else "instance"
    extra: dict[str, Any] = {}
    if concurrency_per_instance is not None:
        c = concurrency_per_instance * safety_factor
        how = ("measured with closed-loop stages" if concurrency_basis == "measured" else
               "by Little's law: throughput x mean latency of the bracketing stages")
        extra = {
            "concurrency_metric": COMPONENT_CONCURRENCY_METRIC if per_copy
            else CONCURRENCY_METRIC,
            "concurrency_target_value": c,
            "concurrency_formula": (
                f"target = concurrency per {unit} at the SLO x safety_factor = "
                f"{concurrency_per_instance:.2f} x {safety_factor:g} = {c:.2f} concurrent "
                f"requests per {unit} (concurrency at the SLO {how})"),
        }  # fmt: skip
    return Recommendation(
        metric=COMPONENT_METRIC if per_copy else METRIC,
        target_value=value,
        safety_factor=safety_factor,
        rps_per_instance=rps_per_instance,
        formula=(
            f"target = rps_per_instance x safety_factor x 60 = {rps_per_instance:.2f} x "
            f"{safety_factor:g} x 60 = {value:.1f} invocations per {unit} per minute"
        ).replace("rps_per_instance", f"rps_per_{unit}"),
        **extra,
    )
