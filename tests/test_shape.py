from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.loadgen.shape import ArrivalSchedule, Timeline, load_at
from recommender.plan import RampPlan, Stage


def plan_of(*rates: float, seconds: float = 10, arrivals: str = "uniform") -> RampPlan:
    return RampPlan(tuple(Stage(r, seconds) for r in rates), 1.0, arrivals)


def test_load_at_follows_the_stages_and_ends() -> None:
    plan = plan_of(10, 20, 30)
    assert load_at(0, plan) == (0, 10)
    assert load_at(9.99, plan) == (0, 10)
    assert load_at(10, plan) == (1, 20)
    assert load_at(29.9, plan) == (2, 30)
    assert load_at(30, plan) is None
    assert load_at(-1, plan) is None


def drain(schedule: ArrivalSchedule) -> list[tuple[float, int]]:
    out = []
    while (ticket := schedule.take()) is not None:
        out.append(ticket)
    return out


def test_uniform_schedule_offers_exactly_the_planned_requests() -> None:
    tickets = drain(ArrivalSchedule(plan_of(10, 25, 40), start=1000.0))
    per_stage = [sum(1 for _, s in tickets if s == i) for i in range(3)]
    assert per_stage == [100, 250, 400]
    times = [t for t, _ in tickets]
    assert times == sorted(times) and times[0] == 1000.0 and times[-1] < 1030.0


def test_schedule_share_splits_the_rate() -> None:
    tickets = drain(ArrivalSchedule(plan_of(40), start=0.0, share=0.25))
    assert len(tickets) == 100


@settings(max_examples=20, deadline=None)
@given(st.floats(20, 500), st.integers(0, 2**32 - 1))
def test_poisson_schedule_rate_is_right_on_average(rate: float, seed: int) -> None:
    tickets = drain(ArrivalSchedule(plan_of(rate, seconds=60, arrivals="poisson"), 0.0, seed=seed))
    expected = rate * 60
    # Poisson count: sd = sqrt(expected); 5 sd is a bound that does not flake.
    assert abs(len(tickets) - expected) < 5 * expected**0.5


def test_timeline_with_fractional_stages() -> None:
    t = Timeline(plan_of(1, 2, seconds=1.5))
    assert [t.stage_at(x) for x in (0, 1.49, 1.5, 2.99, 3.0)] == [0, 0, 1, 1, None]
