"""The load generator's config across the process boundary, and the runner's pure steps
(prepare, final_meta): no Locust, no process."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from recommender import runs
from recommender.errors import ConfigError
from recommender.loadgen.config import ControllerSpec, LoadgenConfig, Signing
from recommender.loadgen.payloads import Payloads
from recommender.loadgen.runner import ENTRY, LoadTestSpec, final_meta, prepare
from recommender.plan import RampPlan, Target, linear_ramp, parse_slo
from recommender.search import AdaptiveSearch, FixedRamp, SearchSettings

SLO = parse_slo(["p95<=100ms"])
PLAN = linear_ramp(10, 30, 3, 5, 1)
SEARCH = SearchSettings(start_rps=20, max_rps=200, stage_seconds=10, warmup_seconds=2)
BODIES = Payloads((b'{"a": 1}', b'{"a": 2}'), "application/json", "/data/p.jsonl")
# The keys of the config, in the order the runner has always written them.
CONFIG_KEYS = ["run_dir", "controller", "slo", "arrivals", "path", "host", "headers", "payload",
               "users", "workers", "bodies_count", "keep_requests", "requests_dir", "seed",
               "align_seconds", "stream", "token_format", "template", "max_new_tokens",
               "max_requests", "sigv4"]  # fmt: skip


def config(**changes: object) -> LoadgenConfig:
    values: dict[str, object] = dict(
        controller=ControllerSpec(PLAN, 0.2, 4.0), slo=SLO, host="127.0.0.1:8080",
        path="/invocations?x=1", headers={"Content-Type": "application/json"}, users=40,
        workers=2, seed=7, align_seconds=60, keep_requests=True,
        sigv4=Signing("eu-west-1", "dev"), run_dir=Path("/runs/r1"), payload="/data/p.jsonl",
        requests_dir="/runs/r1", bodies_count=2, max_requests=500,
    )  # fmt: skip
    values.update(changes)
    return LoadgenConfig(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("plan", [PLAN, SEARCH])
def test_config_survives_json_and_keeps_the_config_file_keys(plan: RampPlan) -> None:
    original = config(controller=ControllerSpec(plan))
    data = json.loads(json.dumps(original.to_dict()))
    assert list(data) == CONFIG_KEYS
    assert data["sigv4"] == {"region": "eu-west-1", "profile": "dev"}
    assert data["slo"] == SLO.to_dict() and data["run_dir"] == "/runs/r1"
    assert LoadgenConfig.from_dict(data) == original


def test_controller_spec_is_run_json_search_and_builds_the_controller() -> None:
    fixed = ControllerSpec(PLAN, 0.2, 4.0)
    assert fixed.to_dict() == {"mode": "fixed", "plan": PLAN.to_dict(),
                               "abort_error_rate": 0.2, "abort_latency_factor": 4.0}  # fmt: skip
    assert isinstance(fixed.controller(SLO), FixedRamp)
    adaptive = ControllerSpec(SEARCH)
    assert adaptive.to_dict() == {"mode": "adaptive", "settings": SEARCH.to_dict()}
    assert isinstance(adaptive.controller(SLO), AdaptiveSearch)
    for spec in (fixed, adaptive):
        assert ControllerSpec.from_dict(spec.to_dict()).to_dict() == spec.to_dict()


def test_the_masters_message_carries_bodies_not_run_dir_paths() -> None:
    message = config().to_message([b"one", b"two"])
    assert "run_dir" not in message and "payload" not in message
    got, bodies = LoadgenConfig.from_message(message)
    assert bodies == (b"one", b"two")
    assert got == config(run_dir=None, payload=None)
    # Bodies sent as text (msgpack without bin types) still arrive as bytes.
    assert LoadgenConfig.from_message({**message, "bodies": ["x"]})[1] == (b"x",)


def spec(**changes: object) -> LoadTestSpec:
    target = Target(url="http://127.0.0.1:8080/invocations", name="t",
                    content_type="application/json")  # fmt: skip
    values: dict[str, object] = dict(target=target, plan=PLAN, slo=SLO, seed=3)
    values.update(changes)
    return LoadTestSpec(**values)  # type: ignore[arg-type]


def test_prepare_decides_everything_and_writes_nothing(tmp_path: Path) -> None:
    run_dir = tmp_path / "not-made"
    run = prepare(spec(workers=2, expect_workers=1), BODIES, run_dir, 1_700_000_000.0, port=5599)
    assert not run_dir.exists()
    assert run.users == 36  # Little's law: 30 rps x max(1 s, 4 x 100 ms) x 1.2
    assert run.headline == (
        "Load test: 3 fixed stages, 10 -> 30 rps, 15s, 36 users, 3 workers -> "
        "http://127.0.0.1:8080/invocations"
    )
    cmd = list(run.command)
    assert cmd[:5] == [sys.executable, "-m", "locust", "-f",
                       f"{ENTRY},{(Path(ENTRY).parent / 'locustfile.py').resolve()}"]  # fmt: skip
    assert cmd[cmd.index("--expect-workers") + 1] == "3"
    assert cmd[cmd.index("--master-bind-port") + 1] == "5599" and run.port == 5599
    c = run.config
    assert (c.run_dir, c.host, c.path, c.payload, c.workers, c.seed) == (
        run_dir, "127.0.0.1:8080", "/invocations", "/data/p.jsonl", 3, 3)  # fmt: skip
    assert c.sigv4 is None and c.bodies_count == 2 and c.requests_dir == str(run_dir)
    assert run.meta["status"] == "running" and run.meta["search"]["mode"] == "fixed"
    assert run.meta["payload"] == {"source": "/data/p.jsonl", "bodies": 2}
    assert run.deadline == 1_700_000_000.0 + 1 + 15 + 60


def test_prepare_a_single_process_run_and_a_signed_target(tmp_path: Path) -> None:
    signed = Target(url="https://runtime.example/endpoints/e/invocations", name="e",
                    endpoint="e", region="us-east-2", profile="p")  # fmt: skip
    run = prepare(spec(target=signed, plan=SEARCH, users=12), BODIES, tmp_path, 0.0)
    assert "--master" not in run.command and run.port is None
    assert run.config.sigv4 == Signing("us-east-2", "p") and run.config.users == 12
    assert run.config.host == "runtime.example" and run.config.path == "/endpoints/e/invocations"
    assert run.headline.startswith("Load test: adaptive search from 20 rps (at most 200 rps")
    with pytest.raises(ConfigError, match="region"):
        prepare(spec(target=Target(url=signed.url, name="e", endpoint="e")), BODIES, tmp_path, 0.0)


def test_final_meta_plays_the_stages_up_to_the_end(tmp_path: Path) -> None:
    run = prepare(spec(), BODIES, tmp_path, 1000.0)
    stages = [(10, 0, 5), (20, 5, 10), (30, 10, 15)]
    search = {"stages": [{"rps": r, "start": a, "end": b} for r, a, b in stages],
              "decisions": [{"stage": 0}]}  # fmt: skip
    records = [{"requests": 10, "ok": 9, "errors": {"HTTP 503": 1}}]
    generator = {"t0": 1002.0, "unsent_at_end": 4, "issued": 14}
    meta = final_meta(run, "interrupted", 0, records, generator, search, ended=1009.0)
    assert list(meta)[: len(run.meta)] == list(run.meta)  # run.json keeps its key order
    assert meta["status"] == "interrupted" and meta["started_at"] == runs.iso(1002.0)
    assert [(s["rps"], s["seconds"]) for s in meta["stages"]] == [(10, 5), (20, 2)]
    assert RampPlan.from_dict(meta["plan"]).duration == 7
    assert meta["search"]["decisions"] == [{"stage": 0}]
    assert meta["generator"]["unsent_at_end"] == 4 and meta["generator"]["processes"] == 1
    assert meta["totals"] == {"requests": 10, "successes": 9, "errors": 1,
                              "errors_by_kind": {"HTTP 503": 1}, "errors_by_type": {},
                              "intended": 14, "not_sent": 4}  # fmt: skip


def test_final_meta_of_a_capped_run_ends_its_stages_with_the_load(tmp_path: Path) -> None:
    """The request cap stopped the load in second 3; a master's clock ran on to 12 s."""
    run = prepare(spec(max_requests=40), BODIES, tmp_path, 1000.0)
    assert run.config.max_requests == 40 and run.meta["max_requests"] == 40
    search = {"stages": [{"rps": 10, "start": 0, "end": 5}, {"rps": 20, "start": 5, "end": 15}]}
    records = [{"second": s, "requests": 10, "ok": 10, "errors": {}} for s in range(4)]
    meta = final_meta(run, "stopped", 0, records, {"t0": 1000.0, "capped": True}, search,
                      ended=1012.0)  # fmt: skip
    assert [(s["rps"], s["seconds"]) for s in meta["stages"]] == [(10, 4)]
    assert meta["generator"]["capped_at"] == 40
    uncapped = final_meta(run, "complete", 0, records, {"t0": 1000.0}, search, ended=1012.0)
    assert [s["seconds"] for s in uncapped["stages"]] == [5, 7]
