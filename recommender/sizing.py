"""From expected traffic to instance counts and cost (pure).

Given the recommended target value (invocations per instance per minute) and the traffic
the endpoint must carry, target tracking settles where each instance sees about the target,
so the instances it runs at a steady rate R (requests/s) are ceil(R x 60 / target).

- MinCapacity: at least 2 by default, because SageMaker spreads a variant's instances over
  Availability Zones only when it has more than one; a single instance is a single point of
  failure. It is also raised to carry `min_rps` at the target. `min_capacity_floor=1` allows
  one instance (development endpoints).
- MaxCapacity: the instances needed at peak, times 1.5, rounded up. The headroom absorbs
  a peak above the forecast and the minutes target tracking needs to catch up (new instances
  take several minutes to come in service), without leaving scale-out unbounded; raise it if
  your peak forecast is uncertain.
- Cost: instances x price per hour. Cost per million requests is taken at the recommended
  load (each instance serving target / 60 requests a second), which is where target tracking
  keeps the fleet on average.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from recommender.bounds import check_number
from recommender.errors import ConfigError

HEADROOM = 1.5
DEFAULT_MIN_CAPACITY_FLOOR = 2

# Indicative on-demand prices of SageMaker real-time inference instances, USD per hour,
# us-east-1, as AWS's SageMaker pricing page listed them when noted. Prices change and differ
# by region and by savings plan: pass --instance-price for a real budget.
PRICES_NOTED = "2024-06"
PRICES_REGION = "us-east-1"
PRICES_USD_PER_HOUR: dict[str, float] = {
    "ml.m5.large": 0.115,
    "ml.m5.xlarge": 0.23,
    "ml.c5.xlarge": 0.204,
    "ml.c5.2xlarge": 0.408,
    "ml.g4dn.xlarge": 0.7364,
    "ml.g5.xlarge": 1.408,
    "ml.g5.2xlarge": 1.515,
    "ml.inf2.xlarge": 0.99,
}

# Float noise (e.g. 100 * 60 / 3000.0000000001) must not add a whole instance.
_EPS = 1e-9


@dataclass(frozen=True)
class Price:
    usd_per_hour: float
    source: str  # where the number comes from, shown beside every cost


@dataclass(frozen=True)
class Sizing:
    peak_rps: float
    min_rps: float | None
    target_value: float
    instances_at_peak: int
    instances_at_min_rps: int | None
    min_capacity_floor: int
    min_capacity: int
    max_capacity: int
    headroom: float
    instance_type: str | None
    price: Price | None
    cost_per_hour_min: float | None
    cost_per_hour_peak: float | None
    cost_per_million_requests: float | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def instances_for(rps: float, target_value: float) -> int:
    """Instances target tracking runs to carry `rps` with each at `target_value` per minute."""
    return max(1, math.ceil(rps * 60.0 / target_value - _EPS))


def capacity_range(
    instances_at_peak: int, instances_at_min: int, floor: int = DEFAULT_MIN_CAPACITY_FLOOR
) -> tuple[int, int]:
    """(MinCapacity, MaxCapacity): see the module docstring for the choices."""
    lo = max(floor, instances_at_min)
    hi = max(lo, math.ceil(instances_at_peak * HEADROOM - _EPS))
    return lo, hi


def default_capacity_range(
    instances_tested: int, floor: int = DEFAULT_MIN_CAPACITY_FLOOR
) -> tuple[int, int]:
    """A starting range when no traffic is given: the tested count (at least the floor) as
    the minimum, with the same headroom above it. A placeholder until --peak-rps is known."""
    lo = max(floor, instances_tested)
    return capacity_range(lo, lo, floor)


def lookup_price(
    instance_type: str | None, usd_per_hour: float | None = None
) -> Price | None:
    """The price given on the command line, else the built-in table's, else None."""
    if usd_per_hour is not None:
        if not (math.isfinite(usd_per_hour) and usd_per_hour > 0):
            raise ConfigError(
                f"--instance-price must be > 0 (got {usd_per_hour:g})", "give USD per hour"
            )
        return Price(usd_per_hour, "--instance-price")
    if instance_type and instance_type in PRICES_USD_PER_HOUR:
        return Price(
            PRICES_USD_PER_HOUR[instance_type],
            f"built-in table: {instance_type} on-demand, {PRICES_REGION}, noted "
            f"{PRICES_NOTED}; indicative only, pass --instance-price for yours",
        )
    return None


def size(
    target_value: float,
    peak_rps: float,
    min_rps: float | None = None,
    *,
    instance_type: str | None = None,
    instance_price: float | None = None,
    min_capacity_floor: int = DEFAULT_MIN_CAPACITY_FLOOR,
) -> Sizing:
    """Instances and cost for the expected traffic under the recommended target value."""
    if not target_value > 0:
        raise ConfigError(f"the target value must be > 0 (got {target_value:g})")
    if not (math.isfinite(peak_rps) and peak_rps > 0):
        raise ConfigError(f"--peak-rps must be > 0 (got {peak_rps:g})")
    if min_rps is not None and not 0 <= min_rps <= peak_rps:
        raise ConfigError(
            f"--min-rps must be between 0 and --peak-rps ({peak_rps:g}) (got {min_rps:g})"
        )
    if min_capacity_floor < 1:
        raise ConfigError(
            f"--min-capacity-floor must be >= 1 (got {min_capacity_floor})",
            "real-time variants need at least 1; 2 keeps one in a second Availability Zone",
        )
    at_peak = instances_for(peak_rps, target_value)
    at_min = instances_for(min_rps, target_value) if min_rps else None
    lo, hi = capacity_range(at_peak, at_min or 1, min_capacity_floor)
    price = lookup_price(instance_type, instance_price)
    per_hour = price.usd_per_hour if price else None
    # Requests one instance serves in an hour at the target: target per minute x 60.
    per_million = per_hour * 1e6 / (target_value * 60.0) if per_hour is not None else None
    return Sizing(
        peak_rps=peak_rps,
        min_rps=min_rps,
        target_value=target_value,
        instances_at_peak=at_peak,
        instances_at_min_rps=at_min,
        min_capacity_floor=min_capacity_floor,
        min_capacity=lo,
        max_capacity=hi,
        headroom=HEADROOM,
        instance_type=instance_type,
        price=price,
        cost_per_hour_min=lo * per_hour if per_hour is not None else None,
        cost_per_hour_peak=at_peak * per_hour if per_hour is not None else None,
        cost_per_million_requests=per_million,
    )


@dataclass(frozen=True)
class Traffic:
    """What the user expects the endpoint to carry, and what an instance costs."""

    peak_rps: float | None = None
    min_rps: float | None = None
    instance_type: str | None = None  # overrides the run's, for the price look-up
    instance_price: float | None = None
    min_capacity_floor: int = DEFAULT_MIN_CAPACITY_FLOOR

    def check(self) -> Traffic:
        """Each number finite and in range, and the flags that need --peak-rps have it."""
        check_number("--peak-rps", self.peak_rps, low=0, low_open=True,
                     hint="the expected peak, requests/s")
        check_number("--min-rps", self.min_rps, low=0, hint="the expected low, requests/s")
        check_number("--instance-price", self.instance_price, low=0, low_open=True,
                     hint="give USD per hour")
        if self.peak_rps is None:
            for flag, value in (("--min-rps", self.min_rps),
                                ("--instance-price", self.instance_price)):  # fmt: skip
                if value is not None:
                    raise ConfigError(f"{flag} needs --peak-rps", "pass the expected peak rate")
        if self.min_capacity_floor < 1:
            raise ConfigError(f"--min-capacity-floor must be >= 1 (got {self.min_capacity_floor})")
        return self


def size_for(target_value: float, traffic: Traffic, run_instance_type: str | None) -> Sizing | None:
    """The sizing for `traffic`, or None when no peak rate was given."""
    peak = traffic.check().peak_rps
    if peak is None:
        return None
    return size(
        target_value,
        peak,
        traffic.min_rps,
        instance_type=traffic.instance_type or run_instance_type,
        instance_price=traffic.instance_price,
        min_capacity_floor=traffic.min_capacity_floor,
    )
