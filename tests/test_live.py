"""Watching a run: the once-a-second snapshot read from the run directory, its one-line
rendering, and the live status a user sees on a real pseudo-terminal."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from recommender import histograms, runs
from recommender.cli.live import PLAIN_EVERY, LiveView
from recommender.loadgen.progress import Snapshot, Watcher, describe
from recommender.plan import RampPlan, SearchSettings, Stage, parse_slo

SLO = parse_slo(["p95<=100ms"])



def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def short_loadtest(server: str, out: Path, *extra: str) -> subprocess.Popen[str]:
    """The real CLI, one 6 s stage at 20 rps, in the background."""
    return subprocess.Popen(
        [sys.executable, "-m", "recommender", "loadtest", "--url", f"{server}/invocations",
         "--search", "fixed", "--start-rps", "20", "--max-rps", "20", "--stages", "1",
         "--stage-seconds", "6", "--warmup-seconds", "1", "--out", str(out), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def record(second: int, stage: int, latencies_ms: list[float], errors: int = 0) -> str:
    hist = histograms.new()
    for ms in latencies_ms:
        histograms.record_ms(hist, ms)
    encoded = histograms.encode(hist)
    return json.dumps({
        "second": second, "stage": stage, "requests": len(latencies_ms) + errors,
        "ok": len(latencies_ms), "errors": {"http_503": errors} if errors else {},
        "latency_us": encoded, "latency_co_us": encoded, "cpu_percent": 12.0,
    })  # fmt: skip


def started_run(tmp_path: Path, elapsed: float, stages: list[dict[str, float]]) -> Path:
    """A run directory as the Locust process leaves it `elapsed` seconds into the run."""
    runs.write_json(tmp_path / runs.GENERATOR_FILE, {"t0": time.time() - elapsed})
    runs.write_json(tmp_path / runs.SEARCH_FILE, {"stages": stages, "decisions": []})
    return tmp_path


def test_nothing_to_show_before_the_run_starts(tmp_path: Path) -> None:
    plan = RampPlan((Stage(10, 5),))
    assert Watcher(tmp_path, plan, SLO).snapshot() is None


def test_a_snapshot_of_the_stage_so_far(tmp_path: Path) -> None:
    plan = RampPlan((Stage(10, 10), Stage(20, 10)), warmup_seconds=1)
    run_dir = started_run(tmp_path, 13.5, [{"rps": 10, "start": 0, "end": 10},
                                           {"rps": 20, "start": 10, "end": 20}])  # fmt: skip
    lines = [record(s, 0, [10.0] * 10) for s in range(10)]
    lines += [record(10, 1, [50.0] * 19, errors=1), record(11, 1, [50.0] * 10 + [150.0] * 10),
              record(12, 1, [60.0] * 18)]  # fmt: skip
    path = run_dir / runs.LATENCY_FILE
    # The last line is being written: it must wait, not break the parse.
    path.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:40])
    watcher = Watcher(run_dir, plan, SLO)
    s = watcher.snapshot()
    assert s is not None
    assert (s.stage, s.stages_planned, s.offered_rps) == (1, 2, 20.0)
    assert s.stage_elapsed == pytest.approx(3.5, abs=0.5)
    assert s.left_seconds == pytest.approx(6.5, abs=0.5)
    assert s.requests == 40 and s.errors == {"http_503": 1}
    assert s.achieved_rps == pytest.approx(20.0)  # stage 1's two whole seconds so far
    assert s.p50_ms == pytest.approx(50.0, rel=0.02) and s.p95_ms == pytest.approx(150, rel=0.02)
    assert s.within_slo is False and s.cpu_percent == 12.0
    with path.open("a") as f:
        f.write(lines[-1][40:] + "\n")
    s = watcher.snapshot()
    assert s is not None and s.requests == 58  # the completed line, counted once
    # A second in flight after the plan ended belongs to no stage: the run's totals only.
    with path.open("a") as f:
        f.write(record(13, 0, [70.0] * 3).replace('"stage": 0', '"stage": null') + "\n")
    s = watcher.snapshot()
    assert s is not None and s.requests == 58 and s.total_requests == 100 + 58 + 3
    assert s.latency_count == 100 + 57 + 3 and s.total_errors == {"http_503": 1}


def test_the_search_shows_its_budget_and_rests(tmp_path: Path) -> None:
    plan = SearchSettings(start_rps=10, max_rps=80, stage_seconds=10, warmup_seconds=1,
                          max_duration=600)  # fmt: skip
    run_dir = started_run(tmp_path, 11.0, [{"rps": 10, "start": 0, "end": 10},
                                           {"rps": 0, "start": 10, "end": 13}])  # fmt: skip
    s = Watcher(run_dir, plan, SLO).snapshot()
    assert s is not None and s.stages_planned is None
    assert s.left_seconds == pytest.approx(589, abs=1)
    assert describe(s).startswith("stage 2: resting 1/3s")


def snapshot(**changes: object) -> Snapshot:
    base = dict(elapsed=40.0, stage=2, stages_planned=None, stage_elapsed=12.0,
                stage_seconds=30.0, left_seconds=300.0, offered_rps=200.0, achieved_rps=199.5,
                requests=2400, p50_ms=21.0, p95_ms=48.25, errors={"timeout": 2, "http_503": 5},
                cpu_percent=35.0, within_slo=True)  # fmt: skip
    base.update(changes)
    return Snapshot(**base)  # type: ignore[arg-type]


def test_one_line_says_where_the_run_is() -> None:
    assert describe(snapshot()) == (
        "stage 3 12/30s | offered 200 rps | achieved 199.5 rps | p50 21.0 ms | p95 48.2 ms | "
        "SLO ok so far | errors http_503 5, timeout 2 | CPU 35% | 5.0 min left at most"
    )
    assert "stage 3/5 " in describe(snapshot(stages_planned=5))
    assert "SLO FAILING" in describe(snapshot(within_slo=False))


def test_off_a_terminal_a_plain_line_every_30_seconds(capsys: pytest.CaptureFixture[str]) -> None:
    now = [0.0]
    with LiveView(clock=lambda: now[0]) as view:
        for second in range(int(PLAIN_EVERY * 2) + 1):
            now[0] = float(second)
            view.update(snapshot())
        view.update(None)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.startswith("  ... stage 3 12/30s") for line in lines)
    with LiveView(quiet=True, clock=lambda: now[0]) as view:
        now[0] += 100
        view.update(snapshot())
    assert capsys.readouterr().out == ""


def test_a_terminal_sees_the_stage_progress_live(
    shared_demo_server: str, tmp_path: Path
) -> None:
    """The real CLI on a pseudo-terminal: the status line is redrawn as the run goes."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "recommender", "run", "--url", f"{shared_demo_server}/invocations",
         "--search", "fixed", "--start-rps", "20", "--max-rps", "40", "--stages", "2",
         "--stage-seconds", "5", "--warmup-seconds", "1", "--out", str(tmp_path), "--yes"],
        stdin=follower, stdout=follower, stderr=follower,
        env=dict(os.environ, TERM="xterm", COLUMNS="200"),
    )  # fmt: skip
    os.close(follower)
    out = b""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                data = os.read(leader, 65536)
            except OSError:  # the child closed the terminal
                break
            if not data:
                break
            out += data
        elif proc.poll() is not None:
            break
    os.close(leader)
    assert proc.wait(timeout=30) == 0
    text = out.decode(errors="replace")
    seen = set(re.findall(r"stage (\d)/2 (\d)/5s \| offered", text))
    # Redrawn as the run goes: each stage shown at two moments at least (a loaded machine
    # may skip a second between snapshots, so not every second is asserted).
    for stage in ("1", "2"):
        assert len({at for st, at in seen if st == stage}) >= 2, (stage, text[-2000:])
    assert "stage 1 at 20 rps: PASS" in text  # the stage results stay, above the live line
    assert re.search(r"achieved \d+\.\d rps \| p50 \d+\.\d ms", text)


def test_locusts_web_ui_and_prometheus_answer_during_the_run(
    shared_demo_server: str, tmp_path: Path
) -> None:
    """--web-ui and --prometheus-port in one run: Locust's UI on loopback shows the run while
    the plan drives it, the exporter serves its requests, and Locust still quits when the
    plan is over."""
    web_port, prom_port = free_port(), free_port()
    proc = short_loadtest(shared_demo_server, tmp_path, "--web-ui", "--web-port", str(web_port),
                          "--prometheus-port", str(prom_port))  # fmt: skip
    seen, scraped = 0, 0.0
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (seen and scraped >= 20):
        time.sleep(0.5)
        if not seen:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{web_port}/stats/requests",
                                            timeout=2) as r:  # fmt: skip
                    stats = json.load(r)
            except OSError:
                stats = {}  # not listening yet
            seen = sum(int(s.get("num_requests", 0)) for s in stats.get("stats", [])
                       if s.get("name") == "Aggregated")  # fmt: skip
        if scraped < 20:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{prom_port}/metrics",
                                            timeout=2) as r:  # fmt: skip
                    text = r.read().decode()
            except OSError:
                continue
            found = re.search(r"^recommender_requests_total (\S+)$", text, re.MULTILINE)
            scraped = float(found.group(1)) if found else 0.0
    out, _ = proc.communicate(timeout=90)
    assert proc.returncode == 0, out
    assert seen > 0, "the web UI never showed a request"
    assert scraped >= 20, "Prometheus never saw the run's requests"
    assert f"Locust's web UI: http://127.0.0.1:{web_port}" in out
    assert f"Prometheus metrics: http://127.0.0.1:{prom_port}/metrics" in out
    (run_dir,) = tmp_path.iterdir()
    assert json.loads((run_dir / "run.json").read_text())["status"] == "complete"


def test_prometheus_metrics_from_a_snapshot() -> None:
    """The exporter serves the snapshot it was given, in Prometheus' text format."""
    from recommender.loadgen.metrics_export import PrometheusExporter

    exporter = PrometheusExporter(0)
    try:
        exporter.update(snapshot(total_requests=1200, total_errors={"http_503": 7},
                                 latency_buckets=(0, 10, 600, 1100, 1190, 1193, 1193, 1193,
                                                  1193, 1193, 1193),
                                 latency_count=1193, latency_sum_ms=35790.0))  # fmt: skip
        url = f"http://127.0.0.1:{exporter.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as r:
            text = r.read().decode()
    finally:
        exporter.close()
    assert "recommender_requests_total 1200.0" in text
    assert 'recommender_errors_total{kind="http_503"} 7.0' in text
    assert 'recommender_latency_seconds_bucket{le="0.025"} 600.0' in text
    assert 'recommender_latency_seconds_bucket{le="+Inf"} 1193.0' in text
    assert "recommender_latency_seconds_sum 35.79" in text
    assert "recommender_offered_rps 200.0" in text and "recommender_stage 3.0" in text
    assert "recommender_stage_within_slo 1.0" in text
