"""One target-tracking policy as a user describes it, checked in one place (pure).

`apply` (recommender.policy.plan.PolicyRequest), `simulate` (recommender.simulate.Policy) and
the report (recommender.report.commands) all describe the same thing: MinCapacity,
MaxCapacity, a target value, the two cooldowns and whether scale-in is off. They extend
`TargetTracking` with what only they need (the kind and names to apply to; the alarms'
datapoints and the provisioning time to simulate), and `check()` holds the rules once.

The AWS emulator accepts what AWS rejects (MinCapacity > MaxCapacity, MinCapacity 0 on a
real-time variant), so these rules are ours to enforce before anything is sent or simulated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TypeVar

from recommender.bounds import check_number
from recommender.errors import ConfigError

COOLDOWN_SECONDS = 300  # SageMaker's default for variants, in and out
# Far above any SageMaker instance quota: a larger bound is a typo, and would overflow the
# simulator's 64-bit integer arrays (a traceback instead of an error).
MAX_CAPACITY = 100_000
MAX_COOLDOWN = 86_400  # a day, in seconds: a longer cooldown is a typo

_T = TypeVar("_T", bound="TargetTracking")


def parse_number(text: str | float, what: str) -> float:
    """A finite number > 0 from the command line's text (or a number)."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ConfigError(f"{what} must be a number (got {text!r})",
                          "e.g. --target-value 1200") from None  # fmt: skip
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"{what} must be a finite number > 0 (got {text!r})")
    return value


@dataclass(frozen=True, kw_only=True)
class TargetTracking:
    """A target-tracking policy: None where the caller fills it in later (the target from
    the run or the safety factor, the capacities from the sizing or the traffic)."""

    # In the metric's unit (invocations per instance per minute for the default metric).
    # Text is the command line's, parsed by `target()`: `apply --target-value lots` must be
    # our one-line error, not a usage error about a float.
    target_value: float | str | None = None
    min_capacity: int | None = None
    max_capacity: int | None = None
    scale_out_cooldown: int = COOLDOWN_SECONDS  # seconds
    scale_in_cooldown: int = COOLDOWN_SECONDS
    disable_scale_in: bool = False

    def below_floor(self, lo: int) -> ConfigError | None:
        """The error for MinCapacity `lo`, or None when it is allowed. Real-time variants
        keep an instance; a kind that may scale to zero overrides this."""
        if lo >= 1:
            return None
        return ConfigError(f"--min-capacity must be >= 1 (got {lo})",
                           "real-time variants keep at least one instance")  # fmt: skip

    def target(self) -> float | None:
        """The target value as a number, checked; None when not given."""
        v = self.target_value
        if v is None:
            return None
        if isinstance(v, str):
            return parse_number(v, "--target-value")
        if not (math.isfinite(v) and v > 0):
            raise ConfigError(f"--target-value must be > 0 (got {v:g})")
        return float(v)

    def check(self: _T) -> _T:
        """AWS's rules on the bounds and cooldowns, and a usable target; returns self."""
        lo, hi = self.min_capacity, self.max_capacity
        check_number("--min-capacity", lo, high=MAX_CAPACITY)
        check_number("--max-capacity", hi, high=MAX_CAPACITY)
        if lo is not None and (error := self.below_floor(lo)) is not None:
            raise error
        if hi is not None and hi < 1:
            raise ConfigError(f"--max-capacity must be >= 1 (got {hi})")
        if lo is not None and hi is not None and lo > hi:
            raise ConfigError(f"--min-capacity ({lo}) is above --max-capacity ({hi})",
                              "MinCapacity <= MaxCapacity: lower --min-capacity or raise "
                              "--max-capacity")  # fmt: skip
        for flag, seconds in (("--scale-out-cooldown", self.scale_out_cooldown),
                              ("--scale-in-cooldown", self.scale_in_cooldown)):  # fmt: skip
            if seconds < 0:
                raise ConfigError(f"{flag} must be >= 0 seconds (got {seconds})")
            check_number(flag, seconds, high=MAX_COOLDOWN, hint="seconds")
        self.target()
        return self
