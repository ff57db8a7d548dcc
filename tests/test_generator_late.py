"""A load generator that cannot keep time says so, and no capacity is drawn from it
(issue 27): a real run whose Locust process is starved on purpose.

The user's locustfile blocks Locust's event loop 60 ms in every 100 ms (a CPU-bound
greenlet that never yields), as a CPU-starved machine does. Sends due meanwhile go out up to
60 ms late, a lateness the generator must tell apart from the endpoint's and that counts as
latency, so the verdicts it would give are its own. A busy machine only adds lateness, so
the test holds wherever it runs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recommender.cli import main
from tests.conftest import demo_config, running_demo_server

STARVING_LOCUSTFILE = '''
import time

import gevent

from recommender.loadgen.users import InvocationsUser


class Starved(InvocationsUser):
    pass


def _hog():
    while True:
        end = time.perf_counter() + 0.06
        while time.perf_counter() < end:  # CPU work that never yields to the event loop
            pass
        gevent.sleep(0.04)


gevent.spawn(_hog)
'''


def test_a_starved_generator_stops_the_search_with_its_lateness(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    locustfile = tmp_path / "starved.py"
    locustfile.write_text(STARVING_LOCUSTFILE)
    with running_demo_server(demo_config()) as url:
        code = main([
            "run", "--url", f"{url}/invocations", "--locustfile", str(locustfile),
            # 20 ms of service: p95 near 25 ms on time, past 60 ms with the loop blocked.
            "--slo", "p95<=60ms", "--no-probe", "--start-rps", "10", "--max-rps", "40",
            "--stage-seconds", "4", "--warmup-seconds", "1", "--max-duration", "60",
            "--out", str(tmp_path / "out"), "--json", "--yes",
        ])  # fmt: skip
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    # 10% of 60 ms: a 6 ms lateness p95 makes a stage that missed the limit the generator's.
    assert doc["verdict"] == "generator_late" and code == doc["exit_code"] == 1
    assert doc["recommendation"] is None
    assert doc["generator"]["late_limit_ms"] == pytest.approx(6.0)
    lags = [s["lag_p95_ms"] for s in doc["generator"]["stages"]]
    assert len(lags) == 2 and all(lag > 6.0 for lag in lags), lags
    assert all(s["late"] for s in doc["generator"]["stages"])
    # The stage is played once more at the same rate, then the search stops, saying why.
    run_dir = Path(doc["run_dir"])
    decisions = json.loads((run_dir / "run.json").read_text())["search"]["decisions"]
    assert [d["code"] for d in decisions] == ["repeat_late", "generator_late"]
    assert [d["rps"] for d in decisions] == [10, 10]
    assert "the load generator fell behind (p95" in decisions[-1]["why"]
    assert "add --workers, or run on a quieter machine" in decisions[-1]["why"]
    assert "stage 1 at 10 rps: GENERATOR_LATE" in captured.err
    codes = {w["code"] for w in doc["warnings"]}
    assert {"generator_late", "generator_stopped"} <= codes


SLOW_TURN_LOCUSTFILE = '''
import gevent

from recommender.loadgen import harness
from recommender.loadgen.users import InvocationsUser


class SlowTurn(InvocationsUser):
    pass


_release = harness.release


def _slow_release():
    gevent.spawn_later(0.03, _release)  # each slot freed 30 ms after its answer


harness.release = _slow_release
'''


def test_a_closed_loop_that_holds_fewer_in_flight_than_its_level_stops_the_search(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Closed loop: each slot is freed 30 ms after its answer (~20 ms of service), as a
    starved generator turns answers into sends late, so 2 in flight hold about 0.8. The
    stages pass, on less load than they name: each pass says nothing, is played once more,
    then the search stops. A busy machine only widens the gap: it holds wherever it runs."""
    locustfile = tmp_path / "slow_turn.py"
    locustfile.write_text(SLOW_TURN_LOCUSTFILE)
    with running_demo_server(demo_config()) as url:
        code = main([
            "run", "--url", f"{url}/invocations", "--locustfile", str(locustfile),
            "--control", "concurrency", "--start-concurrency", "2", "--max-concurrency", "8",
            # A limit no busy machine misses: the stages must pass for their pass to be
            # left out (a miss on less load than the level stands).
            "--slo", "p95<=1000ms", "--stage-seconds", "4", "--warmup-seconds", "1",
            "--max-duration", "60", "--out", str(tmp_path / "out"), "--json", "--yes",
        ])  # fmt: skip
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    assert doc["verdict"] == "generator_late" and code == doc["exit_code"] == 1
    assert doc["recommendation"] is None
    stages = doc["generator"]["stages"]
    assert len(stages) == 2 and all(s["late"] for s in stages)
    assert all(0 < s["held_in_flight"] < 0.9 * 2 for s in stages), stages
    run_dir = Path(doc["run_dir"])
    decisions = json.loads((run_dir / "run.json").read_text())["search"]["decisions"]
    # A stage too short to decide runs longer first (extend): not a verdict.
    decisions = [d for d in decisions if d["code"] != "extend"]
    assert [d["code"] for d in decisions] == ["repeat_late", "generator_late"]
    assert [d["outcome"] for d in decisions] == ["generator_late", "generator_late"]
    assert [d["rps"] for d in decisions] == [2, 2]
    assert "the load generator held only " in decisions[-1]["why"]
    assert "of 2 requests in flight (slow to turn answers" in decisions[-1]["why"]
    assert "run on a quieter or faster machine (closed-loop load runs in one Locust process)" \
        in decisions[-1]["why"]
    assert "stage 1 at 2 in flight: GENERATOR_LATE" in captured.err
    codes = {w["code"] for w in doc["warnings"]}
    assert {"generator_late", "generator_stopped"} <= codes
