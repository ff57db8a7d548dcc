"""Real parts end to end: `recommender serve` subprocess, Locust subprocess, run directory.

Every load loop here is bounded by its plan (seconds x rate) and the runner's deadline,
and talks only to 127.0.0.1.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from recommender import runs
from recommender.cli import main
from recommender.search import PROBE_START
from tests.conftest import (
    assert_interpolates_the_known_truth,
    calm_config,
    interruptible,
    known_truth,
    reaped,
)


def server_stats(url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{url}/stats", timeout=5) as r:
        data: dict[str, int] = json.loads(r.read())
        return data


def start_cli_until(args: list[str], out: Path, seconds: int) -> subprocess.Popen[str]:
    """`recommender ARGS --out OUT --yes` as a real process, returned once its run directory
    holds `seconds` recorded seconds (or after 40 s)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "recommender", *args, "--out", str(out), "--yes"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        dirs = list(out.iterdir())
        if dirs and len(runs.read_seconds(dirs[0] / "latency.jsonl")) >= seconds:
            break
        time.sleep(0.2)
    return proc


def only_run_dir(out: Path) -> Path:
    (run_dir,) = list(out.iterdir())
    return run_dir


@pytest.mark.serial
def test_run_estimates_known_capacity(
    calm_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Server capacity: 1 instance x 4 slots / 100 ms = 40 requests/s; stages at 35-115% of
    # it. A truth check: it runs alone (`serial`). Beside other load tests on a fresh 2-core
    # machine the starved server showed p95 264 ms at 14 rps, a third of its capacity.
    code = main([
        "run", "--url", f"{calm_server}/invocations", "--slo", "p95<=250ms", "--search", "fixed",
        "--start-rps", "14", "--max-rps", "46", "--stages", "5", "--stage-seconds", "5",
        "--warmup-seconds", "1", "--out", str(tmp_path), "--name", "it",
        # Uniform: 5 s Poisson stages near saturation are optimistic (a queue far from its
        # steady state passed 95 against a truth of 82: issue 17); the demo test and
        # bench/bench_accuracy.py check Poisson accuracy.
        "--arrivals", "uniform",
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    run_dir = only_run_dir(tmp_path)
    assert run_dir.name.endswith("-it")
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "complete" and meta["schema_version"] == 1
    assert [s["rps"] for s in meta["stages"]] == [14, 22, 30, 38, 46]
    assert meta["generator"]["users"] >= 46
    totals = meta["totals"]
    assert totals["requests"] == totals["successes"] + totals["errors"]
    # The last stage (46, above saturation) may be aborted after its 3 s abort window.
    assert totals["requests"] > 0.9 * ((14 + 22 + 30 + 38) * 5 + 46 * 3)
    analysis = json.loads((run_dir / "analysis.json").read_text())
    # Under uniform arrivals the truth is 40 and the bracket ~[38, 46] (see
    # assert_interpolates_the_known_truth).
    assert analysis["arrivals"] == "uniform" and analysis["capacity"]["arrivals"] == "uniform"
    cap = assert_interpolates_the_known_truth(analysis, calm_config())
    rec = analysis["recommendation"]
    assert rec["target_value"] == pytest.approx(cap * 0.5 * 60)
    # Offered and achieved agree below capacity: the generator kept up. (Uniform arrivals
    # send the rate itself: 10% allows for a request across a second's boundary; the 35 rps
    # this stage had on the demo server was held to 26%, a Poisson count's 3.09 sd.)
    first = analysis["stages"][0]
    assert abs(first["achieved_rps"] - 14) <= 0.1 * 14 and first["passed"]
    assert not first["generator_limited"]
    assert (run_dir / "report.md").read_text().startswith("# Sizing report: it")
    assert not (run_dir / "loadgen.json").exists()
    # Every request we counted reached the server (which also saw the preflight one).
    stats = server_stats(calm_server)
    assert stats["served"] + stats["rejected_503"] >= totals["requests"] + 1
    assert "stage 1 at 14 rps: PASS" in out and "Recommended target value" in out


@pytest.mark.serial
def test_adaptive_search_brackets_capacity(
    demo_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Saturation 100 requests/s; within p95 <= 100 ms under Poisson arrivals (the default)
    # up to about 82. The probe at --max-rps finds the ceiling (~100 served), the search
    # starts at 1/1.2 of it (PROBE_START) and bisects below it to 10%.
    code = main([
        "run", "--url", f"{demo_server}/invocations", "--slo", "p95<=100ms",
        "--start-rps", "30", "--max-rps", "160", "--stage-seconds", "4",
        "--warmup-seconds", "1", "--precision", "0.1", "--out", str(tmp_path),
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    meta = json.loads((only_run_dir(tmp_path) / "run.json").read_text())
    decisions = meta["search"]["decisions"]
    assert meta["search"]["mode"] == "adaptive"
    probe = decisions[0]
    assert probe["rps"] == 160 and probe["code"] == "probe_ceiling", probe
    assert PROBE_START * 90 <= probe["next_rps"] <= PROBE_START * 102, probe
    assert decisions[-1]["action"] == "stop" and "wide" in decisions[-1]["why"]
    assert decisions[-1]["code"] == "precision_reached"
    # Every decision says why; overloaded stages are followed by a rest (rate 0).
    assert all(d["reason"] and d["why"] for d in decisions)
    rates = [s["rps"] for s in meta["stages"]]
    assert rates[:2] == [160, 0]
    analysis = json.loads((only_run_dir(tmp_path) / "analysis.json").read_text())
    truth = known_truth(analysis)
    # Stages of 3 measured seconds pass by chance above the capacity (once 91.2 rps, 1.11 x
    # the truth, passed with p95 90.6 ms on a busy machine), more often than 30 s ones.
    assert 0.85 * truth <= analysis["capacity"]["rps_per_instance"] <= 1.15 * truth, out
    assert 90 <= analysis["saturation"]["rps_per_instance"] <= 102, analysis["saturation"]
    assert analysis["saturation"]["reached"]


def served(stats: dict[str, int]) -> int:
    """Requests the server answered (successes and its own 503s)."""
    return stats["served"] + stats["rejected_503"]


def recorded_requests(out: Path) -> int:
    """Requests the run in `out` has on disk so far (0 before its run directory exists)."""
    return sum(sum(r["requests"] for r in runs.read_seconds(d / "latency.jsonl"))
               for d in out.iterdir())  # fmt: skip


def start_cli_until_recorded(args: list[str], out: Path, requests: int,
                             timeout: float = 120.0) -> tuple[subprocess.Popen[str], int]:
    """`recommender ARGS --out OUT --yes` as a real process that Ctrl-C reaches, returned
    once its run directory holds at least `requests` recorded requests, with the number it
    held then. Waits on the run's own progress, not on a clock (a busy machine starts Locust
    late and records slowly); fails, the process killed, when there is none within
    `timeout`."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "recommender", *args, "--out", str(out), "--yes"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=interruptible,
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        seen = recorded_requests(out)
        if seen >= requests:
            return proc, seen
        time.sleep(0.2)
    if proc.poll() is None:
        proc.kill()
    got, err = proc.communicate(timeout=30)
    raise AssertionError(f"fewer than {requests} requests recorded within {timeout:g} s "
                         f"(exit {proc.returncode}): {got}{err}")  # fmt: skip


def test_ctrl_c_keeps_what_was_measured(shared_demo_server: str, tmp_path: Path) -> None:
    before = server_stats(shared_demo_server)
    # A plan of 6 minutes, interrupted once 60 requests are on disk (3 s at 20 rps on an
    # idle machine): it cannot end by itself first, however slow the machine. (It once did:
    # a 30 s plan, signalled after a wait with a clock, exited 0 on a slow machine.) An SLO
    # a starved server still meets (p95 367 ms at 20 rps was seen beside the busy
    # neighbour), so that `analyze` below has a stage to recommend from.
    proc, seen = start_cli_until_recorded(
        ["loadtest", "--url", f"{shared_demo_server}/invocations", "--start-rps", "20",
         "--max-rps", "40", "--stages", "3", "--stage-seconds", "120", "--search", "fixed",
         "--slo", "p95<=5s"],
        tmp_path, requests=60,
    )  # fmt: skip
    with reaped(proc):
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    run_dir = only_run_dir(tmp_path)
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "interrupted"
    # What was on disk when the signal came is kept (and what was in flight is added).
    assert meta["totals"]["requests"] >= seen
    assert "interrupted" in out
    # Nothing measured is lost: every request the server answered is on disk (the server
    # also answered the preflight request). Requests in flight at the interrupt once were
    # served but not recorded (1 of 146, under a loaded machine): Locust fires `quitting`,
    # which ended the recording, before it stopped the users; the harness now stops them
    # first. And every send released is counted: completed, or not sent.
    after = served(server_stats(shared_demo_server))
    lost = after - served(before) - (meta["totals"]["requests"] + 1)
    assert lost == 0, lost
    t = meta["totals"]
    assert t["intended"] == t["requests"] + t["not_sent"], t
    records = runs.read_seconds(run_dir / "latency.jsonl")
    assert sum(r["requests"] for r in records) == meta["totals"]["requests"]
    # And it analyses.
    code = main(["analyze", str(run_dir)])
    assert code in (0, 1)
    assert json.loads((run_dir / "analysis.json").read_text())["warnings"][0]["code"] == (
        "incomplete_run"
    )


MARK = "X-Locustfile"  # a header only the test's own locustfile sends


def marked(stats: dict[str, Any]) -> int:
    """Requests the server saw carrying MARK (it keeps headers by name and fingerprint)."""
    return sum(n for key, n in stats["headers_seen"].items()
               if key.lower().startswith(MARK.lower() + ":"))  # fmt: skip


def test_users_own_locustfile_and_csv_payload(shared_demo_server: str, tmp_path: Path) -> None:
    locustfile = tmp_path / "mine.py"
    locustfile.write_text(
        "from recommender.loadgen.users import InvocationsUser\n"
        "class Mine(InvocationsUser):\n"
        "    def invoke(self):\n"
        "        self.client.post('/invocations', data=b'5.1,3.5,1.4,0.2',\n"
        f"                         headers={{'Content-Type': 'text/csv', '{MARK}': 'mine'}},\n"
        "                         name='mine')\n"
    )
    payload = tmp_path / "rows.csv"
    payload.write_text("5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3\n")
    out = tmp_path / "out"
    before = server_stats(shared_demo_server)
    code = main([
        "loadtest", "--url", f"{shared_demo_server}/invocations", "--name", "my-endpoint",
        "--payload", str(payload), "--locustfile", str(locustfile), "--search", "fixed",
        "--start-rps", "20", "--max-rps", "20", "--stages", "2", "--stage-seconds", "3",
        "--warmup-seconds", "1", "--out", str(out),
        "--arrivals", "uniform",  # exactly 2 x 3 x 20 sends released
    ])  # fmt: skip
    assert code == 0
    after = server_stats(shared_demo_server)
    run_dir = only_run_dir(out)
    assert run_dir.name.endswith("-my-endpoint")
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["target"]["content_type"] == "text/csv"
    t = meta["totals"]
    # The user's class drove the run: every request counted carried its mark, and every
    # one the server answered but the preflight request (ours, unmarked) was counted.
    assert t["errors"] == 0 and t["requests"] > 0
    assert marked(after) - marked(before) == t["requests"], (after["headers_seen"], t)
    assert served(after) - served(before) == t["requests"] + 1
    # Accounting, not pace (a busy machine's generator falls short of the 120 sends, and
    # counts those not sent): every send released is completed or not sent.
    assert t["intended"] == t["requests"] + t["not_sent"] == 120, t


def test_rejected_payload_is_caught_before_the_load(
    shared_demo_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    payload = tmp_path / "bad.jsonl"
    payload.write_text('{"instances": [[1, 2, 3]]}\n')
    code = main([
        "loadtest", "--url", f"{shared_demo_server}/invocations", "--payload", str(payload),
        "--max-rps", "10", "--out", str(tmp_path / "out"),
    ])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 4  # the endpoint refused
    assert err.startswith("Error: the endpoint answered the first payload with HTTP 400")
    assert err.rstrip().endswith(
        "(check --payload and --content-type against what the model expects)"
    )
    assert not (tmp_path / "out").exists()


def test_two_local_workers_merge_exactly(
    shared_demo_server: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = server_stats(shared_demo_server)
    code = main([
        "loadtest", "--url", f"{shared_demo_server}/invocations", "--search", "fixed",
        "--start-rps", "40", "--max-rps", "80", "--stages", "2", "--stage-seconds", "4",
        "--warmup-seconds", "1", "--workers", "2", "--out", str(tmp_path),
        "--arrivals", "uniform",  # exact counts (a Poisson count varies)
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert "2 workers" in out
    run_dir = only_run_dir(tmp_path)
    meta = json.loads((run_dir / "run.json").read_text())
    workers = meta["generator"]["workers"]
    assert len(workers) == 2 and meta["generator"]["processes"] == 2
    merged = meta["totals"]["requests"]
    assert merged == sum(w["requests"] for w in workers.values()) == (40 + 80) * 4
    after = server_stats(shared_demo_server)
    served = lambda s: s["served"] + s["rejected_503"]  # noqa: E731
    assert served(after) - served(before) == merged + 1  # and the preflight request
    assert all(w["lost_after_second"] is None for w in workers.values())
    assert (run_dir / "locust-worker-0.log").exists()


def test_a_dying_worker_is_reported_and_its_data_kept(
    shared_demo_server: str, tmp_path: Path
) -> None:
    import psutil

    before = server_stats(shared_demo_server)
    proc = start_cli_until(
        ["run", "--url", f"{shared_demo_server}/invocations", "--search", "fixed",
         "--start-rps", "30", "--max-rps", "40", "--stages", "2", "--stage-seconds", "8",
         "--warmup-seconds", "1", "--workers", "2"],
        tmp_path, seconds=3,
    )  # fmt: skip
    workers = [p for p in psutil.Process(proc.pid).children(recursive=True)
               if "--worker" in p.cmdline()]  # fmt: skip
    assert len(workers) == 2
    workers[0].kill()
    out, err = proc.communicate(timeout=90)
    assert proc.returncode in (0, 1), err
    meta = json.loads((only_run_dir(tmp_path) / "run.json").read_text())
    tallies = list(meta["generator"]["workers"].values())
    lost = [w for w in tallies if w["lost_after_second"] is not None]
    assert len(lost) == 1 and lost[0]["requests"] > 0  # its data up to then are kept
    totals = meta["totals"]["requests"]
    assert totals == sum(w["requests"] for w in tallies)
    # Against the server's own count: everything is on disk but what the killed worker had
    # not yet sent to the master (at most its share of stage 1, 15 rps, for the two seconds it
    # may hold: the one in progress and one not yet sent) and the preflight request.
    missing = served(server_stats(shared_demo_server)) - served(before) - 1 - totals
    assert 0 <= missing <= 2 * 15, (missing, lost)
    # The stage flagged is the one the worker died in: 8-second stages, killed in stage 1.
    died = lost[0]["lost_after_second"] + 1
    assert 3 <= died < 8, died
    analysis = json.loads((only_run_dir(tmp_path) / "analysis.json").read_text())
    (w,) = [w for w in analysis["warnings"] if w["code"] == "worker_lost"]
    assert f"stopped reporting after second {died - 1} (in stage 1);" in w["message"]


def test_master_and_a_worker_joining_it(shared_demo_server: str, tmp_path: Path) -> None:
    """The multi-machine form on loopback: `run --master` waits for `recommender worker`,
    which gets its config and payload from the master."""
    from recommender.local.emulator import free_port

    port = str(free_port())
    master = subprocess.Popen(
        [sys.executable, "-m", "recommender", "loadtest", "--url",
         f"{shared_demo_server}/invocations",
         "--search", "fixed", "--start-rps", "30", "--max-rps", "30", "--stages", "1",
         "--stage-seconds", "4", "--warmup-seconds", "1", "--master", "--expect-workers", "1",
         "--master-bind-host", "127.0.0.1", "--master-port", port, "--out", str(tmp_path),
         "--yes", "--arrivals", "uniform"],  # exactly 30 x 4 requests
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    worker = subprocess.run(
        [sys.executable, "-m", "recommender", "worker", "--master-host", "127.0.0.1",
         "--master-port", port],
        capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    out, err = master.communicate(timeout=60)
    assert master.returncode == 0 and worker.returncode == 0, err + worker.stderr
    assert "Waiting for 1 worker(s)" in out
    meta = json.loads((only_run_dir(tmp_path) / "run.json").read_text())
    assert meta["totals"]["requests"] == 120 and len(meta["generator"]["workers"]) == 1


def test_keep_requests_writes_every_request_as_parquet(
    shared_demo_server: str, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    before = server_stats(shared_demo_server)
    code = main([
        "loadtest", "--url", f"{shared_demo_server}/invocations", "--search", "fixed",
        "--start-rps", "25", "--max-rps", "50", "--stages", "2", "--stage-seconds", "3",
        "--warmup-seconds", "1", "--keep-requests", "--out", str(tmp_path),
        "--arrivals", "uniform",  # exact counts (a Poisson count varies)
    ])  # fmt: skip
    assert code == 0
    run_dir = only_run_dir(tmp_path)
    table = pq.read_table(run_dir / "requests.parquet")
    meta = json.loads((run_dir / "run.json").read_text())
    t = meta["totals"]
    # Accounting, not pace: the plan releases exactly (25 + 50) x 3 sends; each is either
    # completed or counted not sent (a busy machine's generator, late, sends fewer: it once
    # fell short of the 225 this test wanted completed), and each completed one is a row.
    assert t["intended"] == t["requests"] + t["not_sent"] == (25 + 50) * 3, t
    records = runs.read_seconds(run_dir / "latency.jsonl")
    assert table.num_rows == t["requests"] == sum(r["requests"] for r in records) > 0
    # Every request the server answered is a row (it also answered the preflight request).
    assert served(server_stats(shared_demo_server)) - served(before) == table.num_rows + 1
    rows = table.to_pylist()
    assert {r["stage"] for r in rows} == {0, 1}
    assert all(r["end"] >= r["start"] >= r["intended"] - 0.05 for r in rows)
    # A row's error is the request's: the rows' errors are the run's, kind by kind.
    errors: dict[str, int] = {}
    for r in rows:
        if r["error"] is not None:
            errors[r["error"]] = errors.get(r["error"], 0) + 1
    assert errors == t["errors_by_kind"] and t["successes"] == table.num_rows - sum(
        errors.values())


def test_sigterm_to_run_exits_130_and_keeps_what_was_measured(
    shared_demo_server: str, tmp_path: Path
) -> None:
    """README's failure table, "Ctrl-C or SIGTERM": `kill` ends `run` as Ctrl-C does. The
    signal goes only once the run directory shows progress (seconds recorded), polled to a
    deadline, so a slow or busy machine waits longer instead of failing."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "recommender", "run", "--url",
         f"{shared_demo_server}/invocations", "--search", "fixed", "--start-rps", "20",
         "--max-rps", "40", "--stages", "3", "--stage-seconds", "10", "--out", str(tmp_path),
         "--yes"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    with reaped(proc):
        deadline, seen = time.monotonic() + 120, 0
        while seen < 3:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "no progress in the run directory"
            latency = [d / runs.LATENCY_FILE for d in tmp_path.iterdir()]
            if latency and latency[0].exists():
                seen = len(runs.read_seconds(latency[0]))
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err
    run_dir = only_run_dir(tmp_path)
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["status"] == "interrupted"
    records = runs.read_seconds(run_dir / runs.LATENCY_FILE)
    assert len(records) >= seen  # nothing recorded before the signal was lost
    t = meta["totals"]
    assert sum(r["requests"] for r in records) == t["requests"] > 0
    assert t["intended"] == t["requests"] + t["not_sent"], t
