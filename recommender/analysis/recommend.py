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


@dataclass(frozen=True)
class Recommendation:
    metric: str
    target_value: float
    safety_factor: float
    rps_per_instance: float
    formula: str

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


def recommend(rps_per_instance: float, safety_factor: float) -> Recommendation:
    value = target_value(rps_per_instance, check_safety_factor(safety_factor))
    return Recommendation(
        metric=METRIC,
        target_value=value,
        safety_factor=safety_factor,
        rps_per_instance=rps_per_instance,
        formula=(
            f"target = rps_per_instance x safety_factor x 60 = {rps_per_instance:.2f} x "
            f"{safety_factor:g} x 60 = {value:.1f} invocations per instance per minute"
        ),
    )
