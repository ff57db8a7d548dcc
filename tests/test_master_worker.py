"""Locust's distributed mode, guarded: the master listens on loopback unless asked, and a
worker of another recommender version refuses the run (one line, non-zero status)."""

from __future__ import annotations

import inspect
import json
import socket
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from recommender import __version__
from recommender.cli import main
from recommender.cli.flags import run_options
from recommender.errors import LoadTestError
from recommender.loadgen.config import ControllerSpec, LoadgenConfig, check_version
from recommender.loadgen.payloads import Payloads
from recommender.loadgen.runner import DEFAULT_LOCUSTFILE, ENTRY, LoadTestSpec, finalize, prepare
from recommender.options import RunOptions
from recommender.plan import Target, linear_ramp, parse_slo

SLO = parse_slo(["p95<=100ms"])
PLAN = linear_ramp(10, 10, 1, 3, 1)
CONFIG = LoadgenConfig(controller=ControllerSpec(PLAN), slo=SLO, host="127.0.0.1:9",
                       path="/invocations", headers={"X-Api-Key": "k"}, users=10)  # fmt: skip


def test_the_master_listens_on_loopback_unless_asked(tmp_path: Path) -> None:
    assert RunOptions(url="http://127.0.0.1:9/").master_bind_host == "127.0.0.1"
    flag = inspect.signature(run_options, eval_str=True).parameters["master_bind_host"]
    assert flag.default == "127.0.0.1"
    help_text = flag.annotation.__metadata__[0].help
    assert "0.0.0.0" in help_text and "SSH tunnel" in help_text
    spec = LoadTestSpec(target=Target(url="http://127.0.0.1:9/invocations", name="t"),
                        plan=PLAN, slo=SLO, expect_workers=1)  # fmt: skip
    run = prepare(spec, Payloads((b"{}",), "application/json", "/p"), tmp_path, 0.0, port=5557)
    assert run.command[run.command.index("--master-bind-host") + 1] == "127.0.0.1"


def test_the_masters_message_carries_its_version() -> None:
    message = CONFIG.to_message([b"{}"])
    assert message["version"] == __version__
    got, bodies = LoadgenConfig.from_message(message)
    assert got == CONFIG and bodies == (b"{}",)


@pytest.mark.parametrize(("theirs", "said"), [("0.0.1", "recommender 0.0.1"),
                                              (None, "an unknown version")])  # fmt: skip
def test_a_worker_refuses_a_master_of_another_version(theirs: str | None, said: str) -> None:
    message = CONFIG.to_message([b"{}"])
    if theirs is None:
        del message["version"]
    else:
        message["version"] = theirs
    with pytest.raises(LoadTestError) as caught:
        LoadgenConfig.from_message(message)
    assert caught.value.one_line() == (
        f"the master runs {said}, this worker recommender {__version__} "
        "(install the same version on the master and every worker)"
    )
    check_version(__version__)  # the same version passes


class FakeRunner:
    client_id = "w1"

    def __init__(self) -> None:
        self.sent: list[tuple[str, Any]] = []
        self.handlers: dict[str, Any] = {}

    def register_message(self, kind: str, handler: Any) -> None:
        self.handlers[kind] = handler

    def send_message(self, kind: str, data: Any, client_id: str | None = None) -> None:
        self.sent.append((kind, data) if client_id is None else (kind, data, client_id))

    def quit(self) -> None:
        return


def test_the_worker_role_says_why_tells_the_master_and_exits_non_zero(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from recommender.loadgen.roles import MSG_CONFIG, MSG_REFUSED, WorkerRole

    runner, environment = FakeRunner(), type("Env", (), {"process_exit_code": None})()
    role = WorkerRole(runner)
    message = type("Msg", (), {"data": CONFIG.to_message([b"{}"], version="9.9.9")})()
    runner.handlers[MSG_CONFIG](environment=environment, msg=message)
    err = capsys.readouterr().err
    assert err.startswith("Error: the master runs recommender 9.9.9, this worker recommender")
    assert err.count("\n") == 1
    assert environment.process_exit_code == 1 and role.config is None
    ((kind, data),) = runner.sent
    assert kind == MSG_REFUSED and data["worker"] == "w1" and "9.9.9" in data["message"]


def test_a_worker_that_missed_the_config_asks_for_it_and_the_master_sends_it_to_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A worker says it is ready before Locust's init registers its handlers, so a busy one
    can drop the master's config; the stages come again every second, and with them it asks
    (at most once a second) until the config comes."""
    from recommender.loadgen import roles

    runner, environment = FakeRunner(), type("Env", (), {"process_exit_code": None})()
    roles.WorkerRole(runner)
    stages = type("Msg", (), {"data": {"stages": [], "done": False}})()
    now = [100.0]
    monkeypatch.setattr(roles.time, "time", lambda: now[0])
    for now[0] in (100.0, 100.5, 101.2):
        runner.handlers[roles.MSG_STAGES](environment=environment, msg=stages)
    asked = {"worker": "w1"}
    assert runner.sent == [(roles.MSG_CONFIG_WANTED, asked), (roles.MSG_CONFIG_WANTED, asked)]
    monkeypatch.undo()
    # The master answers that worker alone, with what it sent everyone at the start.
    master_runner = FakeRunner()
    (tmp_path / "body.json").write_text("{}")
    master = roles.MasterRole(master_runner, replace(CONFIG, payload=str(tmp_path / "body.json")))
    want = type("Msg", (), {"data": asked})()
    master_runner.handlers[roles.MSG_CONFIG_WANTED](environment=environment, msg=want)
    assert master_runner.sent == []  # before the test starts there is nothing to send
    master.t0 = 100.0
    master_runner.handlers[roles.MSG_CONFIG_WANTED](environment=environment, msg=want)
    ((kind, data, to),) = master_runner.sent
    assert (kind, to) == (roles.MSG_CONFIG, "w1")
    assert LoadgenConfig.from_message(data) == (CONFIG, (b"{}",))


def test_a_refusal_ends_the_run_with_the_workers_reason(tmp_path: Path) -> None:
    spec = LoadTestSpec(target=Target(url="http://127.0.0.1:9/invocations", name="t"),
                        plan=PLAN, slo=SLO, workers=1)  # fmt: skip
    run = prepare(spec, Payloads((b"{}",), "application/json", "/p"), tmp_path, 0.0, port=5557)
    refusal = {"worker": "w1", "message": "the master runs recommender 9.9.9, this worker "
               "recommender 1", "hint": "install the same version on the master and every worker"}
    (tmp_path / "generator.json").write_text(json.dumps({"refused": [refusal]}))
    with pytest.raises(LoadTestError) as caught:
        finalize(run, "stopped", 1)
    assert caught.value.one_line().startswith("worker w1 refused the run: the master runs")
    meta = json.loads((tmp_path / "run.json").read_text())
    assert meta["generator"]["refused"] == [refusal]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# A Locust worker as `recommender worker` starts it, but believing it is another version.
OTHER_VERSION_WORKER = """
import sys, runpy
import recommender
recommender.__version__ = "0.0.0-other"
sys.argv = ["locust", "-f", sys.argv[1], "--worker", "--master-host", "127.0.0.1",
            "--master-port", sys.argv[2], "--loglevel", "WARNING"]
runpy.run_module("locust", run_name="__main__")
"""


def test_end_to_end_a_worker_of_another_version_stops_the_run(
    demo_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _free_port()
    result: dict[str, int] = {}

    def master() -> None:
        result["code"] = main([
            "run", "--url", f"{demo_server}/invocations", "--master", "--expect-workers", "1",
            "--master-port", str(port), "--search", "fixed", "--start-rps", "10",
            "--max-rps", "10", "--stages", "1", "--stage-seconds", "3", "--warmup-seconds",
            "1", "--out", str(tmp_path), "--yes",
        ])  # fmt: skip

    thread = threading.Thread(target=master)
    thread.start()
    worker = subprocess.run(
        [sys.executable, "-c", OTHER_VERSION_WORKER, f"{ENTRY},{DEFAULT_LOCUSTFILE}", str(port)],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    thread.join(timeout=90)
    assert not thread.is_alive()
    assert worker.returncode == 1, worker.stderr
    errors = [line for line in worker.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [f"Error: the master runs recommender {__version__}, this worker "
                      "recommender 0.0.0-other (install the same version on the master and "
                      "every worker)"]  # fmt: skip
    assert "Traceback" not in worker.stderr
    err = capsys.readouterr().err
    assert result["code"] == 1
    assert err.startswith("Error: worker ") and "refused the run: the master runs" in err


def test_the_workers_share_the_request_cap_and_the_master_ends_when_all_have_sent_it(
    tmp_path: Path,
) -> None:
    """Each process releases floor(cap x its share) (together never more than the cap); the
    master ends the shape (tick None) once every worker has said it sent its share."""
    from recommender.loadgen.roles import MSG_SECONDS, MasterRole, Sender, share_of_cap

    assert [share_of_cap(31, 0.5), share_of_cap(31, 1.0), share_of_cap(2, 1 / 3)] == [15, 31, 0]
    sender = Sender(FakeRunner())
    sender.cap, sender.issued = 15, 14
    assert not sender._reached_cap() and not sender.capped
    sender.issued = 15
    assert sender._reached_cap() and sender.capped
    payload = tmp_path / "p.json"
    payload.write_text("{}")
    config = replace(CONFIG, workers=2, max_requests=31, run_dir=tmp_path, payload=str(payload))
    master = MasterRole(FakeRunner(), config)
    master.on_test_start()
    seconds = master.runner.handlers[MSG_SECONDS]

    def report(worker: str, capped: bool) -> None:
        data = {"worker": worker, "records": [], "upto": 0, "issued": 15, "capped": capped}
        seconds(environment=None, msg=type("Msg", (), {"data": data})())

    report("a", True)
    report("b", False)
    assert master.tick() is not None  # b still sends
    report("b", True)
    assert master.tick() is None
