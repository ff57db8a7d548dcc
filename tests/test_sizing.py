"""Sizing and cost from expected traffic: hand-computed cases."""

from __future__ import annotations

import pytest

from recommender.errors import ConfigError
from recommender.sizing import (
    PRICES_USD_PER_HOUR,
    Traffic,
    capacity_range,
    default_capacity_range,
    instances_for,
    lookup_price,
    size,
    size_for,
)


def test_exact_fit_needs_no_extra_instance() -> None:
    # 100 rps x 60 = 6000 per minute; at 3000 per instance: exactly 2.
    z = size(3000.0, peak_rps=100)
    assert z.instances_at_peak == 2
    assert (z.min_capacity, z.max_capacity) == (2, 3)  # floor 2; ceil(2 x 1.5) = 3


def test_one_request_more_needs_another_instance() -> None:
    # 101 x 60 / 3000 = 2.02 -> 3; MaxCapacity ceil(3 x 1.5) = ceil(4.5) = 5.
    z = size(3000.0, peak_rps=101)
    assert (z.instances_at_peak, z.min_capacity, z.max_capacity) == (3, 2, 5)


def test_float_noise_does_not_add_an_instance() -> None:
    assert instances_for(100, 3000.0000000001) == 2
    assert instances_for(100, 2999.9) == 3


def test_min_rps_raises_min_capacity() -> None:
    # Target 600/min = 10 rps per instance. Peak 95 -> 10 instances, max 15.
    # Min 35 rps -> 3.5 -> 4 instances, above the floor of 2.
    z = size(600.0, peak_rps=95, min_rps=35)
    assert (z.instances_at_peak, z.instances_at_min_rps) == (10, 4)
    assert (z.min_capacity, z.max_capacity) == (4, 15)


def test_floor_one_allows_a_single_instance() -> None:
    z = size(600.0, peak_rps=5, min_capacity_floor=1)
    assert (z.instances_at_peak, z.min_capacity, z.max_capacity) == (1, 1, 2)


def test_placeholder_range_without_traffic() -> None:
    assert default_capacity_range(1) == (2, 3)
    assert default_capacity_range(1, floor=1) == (1, 2)
    assert default_capacity_range(4) == (4, 6)


def test_max_capacity_never_below_min() -> None:
    assert capacity_range(1, 1, floor=2) == (2, 2)
    assert capacity_range(instances_at_peak=4, instances_at_min=4, floor=2) == (4, 6)


def test_cost_from_the_built_in_table() -> None:
    z = size(3000.0, peak_rps=100, instance_type="ml.c5.xlarge")
    price = PRICES_USD_PER_HOUR["ml.c5.xlarge"]
    assert z.price is not None and z.price.usd_per_hour == price
    assert "indicative" in z.price.source and "us-east-1" in z.price.source
    assert z.cost_per_hour_min == pytest.approx(2 * price)
    assert z.cost_per_hour_peak == pytest.approx(2 * price)
    # One instance at the target serves 3000 x 60 = 180,000 requests an hour.
    assert z.cost_per_million_requests == pytest.approx(price * 1e6 / 180_000)


def test_given_price_overrides_the_table() -> None:
    z = size(1200.0, peak_rps=100, min_rps=10, instance_type="ml.c5.xlarge", instance_price=1.0)
    # 100 x 60 / 1200 = 5 at peak; min: 10 x 60 / 1200 = 0.5 -> 1, floor 2; max ceil(7.5) = 8.
    assert (z.instances_at_peak, z.min_capacity, z.max_capacity) == (5, 2, 8)
    assert z.price is not None and z.price.source == "--instance-price"
    assert (z.cost_per_hour_min, z.cost_per_hour_peak) == (2.0, 5.0)
    assert z.cost_per_million_requests == pytest.approx(1e6 / 72_000)


def test_unknown_instance_type_has_no_cost() -> None:
    z = size(3000.0, peak_rps=100, instance_type="ml.unknown.large")
    assert z.price is None and z.cost_per_hour_peak is None
    assert lookup_price(None) is None


def test_no_peak_no_sizing() -> None:
    assert size_for(3000.0, Traffic(), "ml.m5.large") is None
    z = size_for(3000.0, Traffic(peak_rps=100), "ml.m5.large")
    assert z is not None and z.instance_type == "ml.m5.large"
    z = size_for(3000.0, Traffic(peak_rps=100, instance_type="ml.g5.xlarge"), "ml.m5.large")
    assert z is not None and z.instance_type == "ml.g5.xlarge"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"peak_rps": 0}, "--peak-rps must be > 0"),
        ({"peak_rps": 10, "min_rps": 20}, "--min-rps must be between 0 and --peak-rps"),
        ({"peak_rps": 10, "min_capacity_floor": 0}, "--min-capacity-floor must be >= 1"),
        ({"peak_rps": 10, "instance_price": -1.0}, "--instance-price must be > 0"),
    ],
)
def test_bad_traffic(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        size(3000.0, **kwargs)  # type: ignore[arg-type]


def test_traffic_flags_need_a_peak() -> None:
    with pytest.raises(ConfigError, match="--min-rps needs --peak-rps"):
        Traffic(min_rps=5).check()
    with pytest.raises(ConfigError, match="--instance-price needs --peak-rps"):
        Traffic(instance_price=1.0).check()
