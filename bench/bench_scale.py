"""Benchmarks of issue 7, "Scale the load generator out":

    (1) --workers    requests/s one Locust process vs `--workers 2` achieve flat out against
                     the local server (`recommender loadtest --search fixed`, one stage
                     offered well above what one process can send), interleaved, medians
    (2) --analysis   `recommender analyze` of an hour-long run at an average of 10,000
                     requests/s (3,600 per-second records, 36,000,000 requests): wall time
                     (median of 3) and peak RSS (/usr/bin/time -v); cProfile when it misses
                     the bar (5 s, 500 MB) or with --profile
    (3) --recorder   peak memory of recommender.loadgen.recorder.Recorder fed 60 s and then
                     600 s of simulated requests (2,000/s, fake clock), each in its own
                     subprocess: tracemalloc peak (with the interpreter's own GC, and with
                     gc.collect() after each flush) and peak RSS (VmHWM)

    .venv/bin/python bench/bench_scale.py                 # all three
    .venv/bin/python bench/bench_scale.py --analysis      # one part (flags combine)

Before the CPU-sensitive parts (1, 2) it waits while `pgrep -f bench_accuracy` finds
another benchmark (every 15 s, at most 20 minutes) and prints the load average it starts at.
Not a test: the figures go in bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RECOMMENDER = [sys.executable, "-m", "recommender"]
OTHER_BENCH = "bench_accuracy"

# (1) the local server: 2 instances, service time ~0 (it takes no 0), a queue that never fills
SERVE_INSTANCES = 2
LOADTEST_ARGS = [
    "--search", "fixed", "--start-rps", "20000", "--max-rps", "20000", "--stages", "1",
    "--stage-seconds", "12", "--warmup-seconds", "2", "--users", "256",
    # The backlog of tickets makes coordinated-omission latency grow without bound; the
    # stage must still run its 12 s, so no abort.
    "--abort-latency", "1000x", "--abort-error-rate", "1", "--yes",
]  # fmt: skip

# (2) the long run: 12 stages of 300 s, offered 4,500 -> 15,500 rps (mean 10,000), a server
# of 13,000 rps capacity whose p95 crosses the SLO between 11,500 and 12,500 rps
STAGE_RATES = tuple(4500 + 1000 * i for i in range(12))
STAGE_SECONDS = 300
WARMUP_SECONDS = 5.0
CAPACITY_RPS = 13000.0
SLO = "p95<=100ms"
VALUES_PER_SECOND = 300  # representative latencies per histogram, each with its count
SIGMA = 0.5  # lognormal shape of the latency distribution
BAR_SECONDS = 5.0
BAR_MB = 500.0

# (3) the recorder
RECORDER_RATE = 2000
RECORDER_SHORT_S = 60
RECORDER_LONG_S = 600


# --- common ------------------------------------------------------------------------------


def wait_for_quiet(max_wait_s: float = 1200.0, poll_s: float = 15.0) -> dict[str, Any]:
    """Wait while another benchmark runs; return how long we waited and the load then."""
    started = time.monotonic()
    while time.monotonic() - started < max_wait_s:
        found = subprocess.run(["pgrep", "-f", OTHER_BENCH], capture_output=True, text=True)
        if not found.stdout.strip():
            break
        print(f"  waiting: {OTHER_BENCH} is running (pid {found.stdout.split()[0]})", flush=True)
        time.sleep(poll_s)
    else:
        print(f"  {OTHER_BENCH} still running after {max_wait_s:.0f} s; measuring anyway")
    still = bool(subprocess.run(["pgrep", "-f", OTHER_BENCH], capture_output=True).stdout)
    load = os.getloadavg()
    print(f"  load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
          f"{' (bench_accuracy still running)' if still else ''}", flush=True)  # fmt: skip
    return {"waited_s": round(time.monotonic() - started), "loadavg": load,
            "other_bench_running": still}  # fmt: skip


def machine() -> dict[str, Any]:
    model = ""
    try:
        model = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    from importlib.metadata import version

    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "locust": version("locust"),
        "hdrhistogram": version("hdrhistogram"),
        "numpy": np.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


# --- (1) 1 vs 2 local workers flat out ------------------------------------------------------


def tree_cpu_s(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def busy_cpu_s() -> float:
    t = psutil.cpu_times()
    return float(sum(t) - t.idle - getattr(t, "iowait", 0.0))


def loadtest_once(
    url: str, workers: int, out: Path, server: list[psutil.Process]
) -> dict[str, Any]:
    from recommender import runs
    from recommender.analysis.stages import stage_stats

    cmd = [*RECOMMENDER, "loadtest", "--url", f"{url}/invocations", *LOADTEST_ARGS,
           "--out", str(out)]  # fmt: skip
    if workers:
        cmd += ["--workers", str(workers)]
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    server0, busy0, t0 = tree_cpu_s(server), busy_cpu_s(), time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.monotonic() - t0
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"loadtest failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    (run_dir,) = [p for p in out.iterdir() if p.is_dir()]
    run = runs.load_run(run_dir)
    (stage,) = stage_stats(run.seconds, run.plan, run.slo)
    gen = run.meta.get("generator") or {}
    # The load test's whole process tree (Locust, its workers) has been reaped by now.
    loadgen_cpu = (after_children.ru_utime + after_children.ru_stime) - (
        before_children.ru_utime + before_children.ru_stime
    )
    server_cpu = tree_cpu_s(server) - server0
    busy = busy_cpu_s() - busy0
    return {
        "workers": workers,
        "achieved_rps": stage.achieved_rps,
        "offered_rps": stage.offered_rps,
        "measured_seconds": stage.seconds,
        "requests_in_window": stage.requests,
        "errors_in_window": stage.requests - stage.successes,
        "total_requests": run.meta["totals"]["requests"],
        "total_errors": run.meta["totals"]["errors"],
        # Sent after the plan's last stage had ended (late tickets still being drained).
        "requests_after_plan": sum(
            r["requests"] for r in run.seconds if r["second"] >= run.plan.duration
        ),
        "p50_ms": stage.p50_ms,
        "p95_uncorrected_ms": stage.p95_uncorrected_ms,
        "generator_cpu_percent_max": stage.cpu_percent_max,
        "processes": gen.get("processes"),
        "wall_s": wall,
        # Cores used over the whole command (start-up and shut-down included).
        "loadgen_cores": loadgen_cpu / wall,
        "server_cores": server_cpu / wall,
        "other_cores": max(0.0, busy - loadgen_cpu - server_cpu) / wall,
    }


def bench_workers(rounds: int) -> dict[str, Any]:
    from recommender.local.process import running_server
    from recommender.local.server import ServerConfig

    print("(1) 1 vs 2 local workers flat out", flush=True)
    quiet = wait_for_quiet()
    config = ServerConfig(port=0, instances=SERVE_INSTANCES, concurrency=512,
                          service_time_ms=0.001, model="sleep", max_queue=100000)  # fmt: skip
    samples: dict[int, list[dict[str, Any]]] = {0: [], 2: []}
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp, running_server(config) as url:
        server = [psutil.Process(p.pid) for p in psutil.Process().children(recursive=True)]
        for r in range(rounds):
            for workers in (0, 2):
                out = Path(tmp) / f"r{r}-w{workers}"
                s = loadtest_once(url, workers, out, server)
                samples[workers].append(s)
                print(f"  round {r + 1} {'--workers 2' if workers else 'one process'}: "
                      f"{s['achieved_rps']:.0f} req/s, errors {s['errors_in_window']}, "
                      f"{s['requests_after_plan']} requests after the plan ended, "
                      f"locust cpu max {s['generator_cpu_percent_max']}%, cores: loadgen "
                      f"{s['loadgen_cores']:.2f} server {s['server_cores']:.2f} other "
                      f"{s['other_cores']:.2f}", flush=True)  # fmt: skip
    med = {w: statistics.median(s["achieved_rps"] for s in v) for w, v in samples.items()}
    ratio = med[2] / med[0] if med[0] else float("nan")
    print(f"  median: one process {med[0]:.0f} req/s, --workers 2 {med[2]:.0f} req/s "
          f"({ratio:.2f}x)", flush=True)  # fmt: skip
    return {"quiet": quiet, "samples": {str(k): v for k, v in samples.items()},
            "median_rps": {str(k): v for k, v in med.items()}, "ratio": ratio,
            "command": " ".join(["recommender", "loadtest", "--url", "URL/invocations",
                                 *LOADTEST_ARGS])}  # fmt: skip


# --- (2) analysis of a long run -----------------------------------------------------------


def latency_scale_ms(rate: float) -> float:
    """Median latency at an offered rate: 8 ms plus queueing that explodes near capacity."""
    rho = min(rate / CAPACITY_RPS, 0.995)
    return 8.0 + 2.0 * rho / (1.0 - rho)


def make_long_run(path: Path, seed: int = 7) -> dict[str, Any]:
    """A run directory as the recorder and runner would write it (see tests/conftest.py)."""
    from recommender import histograms, runs
    from recommender.plan import RampPlan, Stage, parse_slo

    rng = np.random.default_rng(seed)
    # Equal-probability quantiles of a standard normal: a lognormal's shape in N values.
    z = np.array([statistics.NormalDist().inv_cdf((k + 0.5) / VALUES_PER_SECOND)
                  for k in range(VALUES_PER_SECOND)])  # fmt: skip
    shape = np.exp(SIGMA * z)
    plan = RampPlan(tuple(Stage(float(r), float(STAGE_SECONDS)) for r in STAGE_RATES),
                    warmup_seconds=WARMUP_SECONDS, users=4000)  # fmt: skip
    slo = parse_slo([SLO])
    path.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    requests = errors = ok_total = 0
    with (path / runs.LATENCY_FILE).open("w", encoding="utf-8") as f:
        for i, rate in enumerate(STAGE_RATES):
            scale = latency_scale_ms(rate)
            saturated = rate > CAPACITY_RPS
            for s in range(i * STAGE_SECONDS, (i + 1) * STAGE_SECONDS):
                n = int(rate)
                err = int(n * 0.002) if saturated else 0
                ok = n - err
                # Per-second noise, so the bootstrap has something to resample.
                values_ms = scale * float(np.exp(rng.normal(0.0, 0.05))) * shape
                base, extra = divmod(ok, VALUES_PER_SECOND)
                hist, hist_co = histograms.new(), histograms.new()
                late = 1.3 if saturated else 1.0 + 0.02 * rng.random()
                for k, v in enumerate(values_ms):
                    count = base + (1 if k < extra else 0)
                    if count:
                        hist.record_value(max(1, int(v * 1000.0)), count)
                        hist_co.record_value(max(1, int(v * late * 1000.0)), count)
                record = {
                    "second": s,
                    "stage": i,
                    "requests": n,
                    "ok": ok,
                    "errors": {"HTTP 503": err} if err else {},
                    "latency_us": histograms.encode(hist),
                    "latency_co_us": histograms.encode(hist_co),
                    "cpu_percent": round(30.0 + 40.0 * rate / max(STAGE_RATES), 1),
                }
                f.write(json.dumps(record, separators=(",", ":")) + "\n")
                requests += n
                errors += err
                ok_total += ok
    t0 = 1_800_000_000.0
    meta = {
        "schema_version": runs.SCHEMA_VERSION,
        "name": "synthetic-hour",
        "status": "complete",
        "created_at": runs.iso(t0 - 2),
        "started_at": runs.iso(t0),
        "ended_at": runs.iso(t0 + plan.duration),
        "target": {"url": "http://127.0.0.1:1/invocations", "instances": 1},
        "plan": plan.to_dict(),
        "slo": slo.to_dict(),
        "stages": [{"index": i, "rps": r, "seconds": b - a, "start": runs.iso(t0 + a),
                    "end": runs.iso(t0 + b)}
                   for i, ((a, b), r) in enumerate(zip(plan.stage_bounds(), STAGE_RATES,
                                                       strict=True))],
        "generator": {"tool": "locust", "users": 4000, "processes": 1},
        "totals": {"requests": requests, "successes": ok_total, "errors": errors,
                   "errors_by_kind": {"HTTP 503": errors} if errors else {}},
    }  # fmt: skip
    runs.write_json(path / runs.RUN_FILE, meta)
    return {
        "records": len(STAGE_RATES) * STAGE_SECONDS,
        "requests": requests,
        "latency_jsonl_mb": (path / runs.LATENCY_FILE).stat().st_size / 1e6,
        "generate_s": time.perf_counter() - started,
    }


def time_analyze(run_dir: Path) -> tuple[float, float, int, str]:
    """Wall seconds, peak RSS in MB, exit code, stdout of one `recommender analyze`."""
    cmd = ["/usr/bin/time", "-v", *RECOMMENDER, "analyze", str(run_dir)]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    match = re.search(r"Maximum resident set size \(kbytes\): (\d+)", done.stderr)
    if match is None:
        raise SystemExit(f"no RSS from /usr/bin/time -v:\n{done.stderr[-2000:]}")
    return wall, int(match.group(1)) / 1024.0, done.returncode, done.stdout


def profile_analyze(run_dir: Path, top: int = 25) -> str:
    """cProfile of one `recommender analyze`: the functions with the most own time and
    the heaviest cumulative ones, as text."""
    import pstats
    from io import StringIO

    with tempfile.TemporaryDirectory() as tmp:
        prof = Path(tmp) / "analyze.prof"
        subprocess.run([sys.executable, "-m", "cProfile", "-o", str(prof), "-m", "recommender",
                        "analyze", str(run_dir)], capture_output=True, cwd=ROOT)  # fmt: skip
        buf = StringIO()
        stats = pstats.Stats(str(prof), stream=buf)
        total = stats.total_tt  # type: ignore[attr-defined]
        buf.write(f"total {total:.2f} s under cProfile\n")
        stats.sort_stats("cumulative").print_stats(top)
        stats.sort_stats("tottime").print_stats(top)
        return buf.getvalue()


def bench_analysis(keep: Path | None, repeats: int, profile: bool) -> dict[str, Any]:
    from recommender import runs

    print("(2) analysis of a one-hour run", flush=True)
    if shutil.which("/usr/bin/time") is None:
        raise SystemExit("/usr/bin/time is missing: apt-get install -y time")
    tmp = None
    if keep is None:
        tmp = tempfile.TemporaryDirectory(prefix="bench-scale-run-")
        run_dir = Path(tmp.name) / "run"
    else:
        run_dir = keep
    try:
        made = make_long_run(run_dir)
        print(f"  generated {made['records']} records, {made['requests']:,} requests, "
              f"latency.jsonl {made['latency_jsonl_mb']:.1f} MB in {made['generate_s']:.0f} s",
              flush=True)  # fmt: skip
        quiet = wait_for_quiet()
        results = []
        for _ in range(repeats):
            wall, rss_mb, rc, out = time_analyze(run_dir)
            results.append((wall, rss_mb))
            print(f"  analyze: {wall:.2f} s, peak RSS {rss_mb:.0f} MB, exit {rc}", flush=True)
        print("  " + "\n  ".join(out.rstrip().splitlines()[:6]), flush=True)
        # The import of the CLI alone, for scale: what any command costs before it works.
        t0 = time.perf_counter()
        subprocess.run([*RECOMMENDER, "version"], capture_output=True, cwd=ROOT)
        startup = time.perf_counter() - t0
        wall = statistics.median(w for w, _ in results)
        rss = max(r for _, r in results)
        met = wall < BAR_SECONDS and rss < BAR_MB
        print(f"  median {wall:.2f} s (recommender version: {startup:.2f} s), peak RSS "
              f"{rss:.0f} MB: bar {BAR_SECONDS:g} s / {BAR_MB:g} MB "
              f"{'met' if met else 'MISSED'}", flush=True)  # fmt: skip
        analysis = json.loads((run_dir / runs.ANALYSIS_FILE).read_text())
        cap = analysis["capacity"]
        result: dict[str, Any] = {
            "quiet": quiet, **made, "walls_s": [w for w, _ in results],
            "rss_mb": [r for _, r in results], "median_s": wall, "peak_rss_mb": rss,
            "cli_startup_s": startup, "bar_met": met, "exit_code": rc,
            "capacity": {k: cap.get(k) for k in ("method", "rps", "ci_rps_per_instance")},
        }  # fmt: skip
        print(f"  capacity {cap.get('rps')} ({cap.get('method')}), CI "
              f"{cap.get('ci_rps_per_instance')}", flush=True)  # fmt: skip
        if profile or not met:
            text = profile_analyze(run_dir)
            print(text, flush=True)
            result["profile"] = text
        return result
    finally:
        if tmp is not None:
            tmp.cleanup()


# --- (3) recorder memory -----------------------------------------------------------------

# One run of the recorder in a fresh interpreter. argv: seconds, rate, trace (1: tracemalloc),
# gc ("auto": the interpreter's own collections; "collect": gc.collect() after each flush),
# locust (1: import locust first, as in the harness: more long-lived objects, so the cyclic
# GC's full collections come later), path of the JSON-lines sink.
RECORDER_CHILD = r"""
import gc, json, sys, tracemalloc
seconds, rate = int(sys.argv[1]), int(sys.argv[2])
trace, gc_mode, with_locust, path = sys.argv[3] == "1", sys.argv[4], sys.argv[5] == "1", sys.argv[6]
if with_locust:
    import locust  # noqa: F401
import numpy as np
import psutil
from recommender.loadgen.recorder import Recorder

proc = psutil.Process()
rss_after_imports = proc.memory_info().rss
rng = np.random.default_rng(3)
out = open(path, "w", encoding="utf-8")
def sink(record):
    out.write(json.dumps(record, separators=(",", ":")) + "\n")
    out.flush()
t0 = 1_800_000_000.0
rec = Recorder(t0, lambda s: s // 30, sink, lambda: 42.0)
tracked = len(gc.get_objects())
if trace:
    tracemalloc.start()
rss_max = 0
minute_peaks = []
for s in range(seconds):
    lat = rng.lognormal(np.log(20.0), 0.5, rate).tolist()
    late = rng.exponential(2.0, rate).tolist()
    fail = rng.random(rate).tolist()
    for k in range(rate):
        end = t0 + s + k / rate
        err = "HTTP 503" if fail[k] < 0.001 else None
        rec.record(end, lat[k], end - (lat[k] + late[k]) / 1000.0, err)
    # As the recording roles' flusher does (loadgen/roles.py): just after each whole second.
    rec.flush(t0 + s + 1.01)
    if gc_mode == "collect":
        gc.collect()
    rss_max = max(rss_max, proc.memory_info().rss)
    if trace and s % 60 == 59:
        minute_peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.reset_peak()
rec.flush()
out.close()
if trace:
    minute_peaks.append(tracemalloc.get_traced_memory()[1])
peak = max(minute_peaks) if trace else None
# The RSS high-water mark of this process image. Not ru_maxrss: Linux carries that over
# exec from the forking parent, so it would report the (bigger) benchmark process.
hwm = next(int(line.split()[1]) * 1024 for line in open("/proc/self/status")
           if line.startswith("VmHWM:"))
gc.collect()
live = tracemalloc.get_traced_memory()[0] if trace else None
print(json.dumps({"seconds": seconds, "rate": rate, "gc": gc_mode, "locust": with_locust,
                  "tracemalloc_peak": peak, "live_after_gc": live,
                  "vmhwm": hwm, "minute_peaks": minute_peaks,
                  "rss_after_imports": rss_after_imports, "rss_max_sampled": rss_max,
                  "gc_tracked_at_start": tracked,
                  "full_collections": gc.get_stats()[2]["collections"] - 1,
                  "lines": sum(1 for _ in open(path))}))
"""

# (label, trace, gc mode, import locust). Peak RSS is the child's VmHWM.
RECORDER_VARIANTS = (
    ("tracemalloc, automatic GC", True, "auto", False),
    ("tracemalloc, gc.collect() after each flush", True, "collect", False),
    ("tracemalloc, automatic GC, locust imported", True, "auto", True),
    ("RSS, automatic GC", False, "auto", False),
    ("RSS, automatic GC, locust imported", False, "auto", True),
)


def recorder_once(seconds: int, trace: bool, gc_mode: str, with_locust: bool) -> dict[str, Any]:
    from recommender import runs

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", RECORDER_CHILD, str(seconds), str(RECORDER_RATE),
             "1" if trace else "0", gc_mode, "1" if with_locust else "0",
             str(Path(tmp) / runs.LATENCY_FILE)],
            capture_output=True, text=True, cwd=ROOT,
        )  # fmt: skip
        if done.returncode != 0:
            raise SystemExit(f"recorder child failed:\n{done.stderr[-3000:]}")
        result: dict[str, Any] = json.loads(done.stdout)
        result["wall_s"] = time.perf_counter() - t0
        return result


def bench_recorder(long_s: int) -> dict[str, Any]:
    print(f"(3) recorder memory: {RECORDER_SHORT_S} s vs {long_s} s at {RECORDER_RATE} "
          "requests/s", flush=True)  # fmt: skip
    rows = []
    for label, trace, gc_mode, with_locust in RECORDER_VARIANTS:
        short, long = (recorder_once(n, trace, gc_mode, with_locust)
                       for n in (RECORDER_SHORT_S, long_s))  # fmt: skip
        key = "tracemalloc_peak" if trace else "vmhwm"
        ratio = long[key] / short[key]
        row = {"variant": label, "measure": key, "short": short, "long": long, "ratio": ratio}
        rows.append(row)
        mb = 1e6 if trace else 2**20
        unit = "MB" if trace else "MiB"
        extra = (f"; live after full gc {short['live_after_gc'] / 1e6:.2f} / "
                 f"{long['live_after_gc'] / 1e6:.2f} MB" if trace else
                 f"; RSS after imports {short['rss_after_imports'] / mb:.1f} MiB")  # fmt: skip
        print(f"  {label}: {key} {short[key] / mb:.2f} / {long[key] / mb:.2f} {unit} "
              f"(x{ratio:.3f}){extra}; full GCs {short['full_collections']} / "
              f"{long['full_collections']}; {short['wall_s']:.0f} + {long['wall_s']:.0f} s",
              flush=True)  # fmt: skip
    return {"rows": rows, "long_s": long_s}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", action="store_true", help="(1) 1 vs 2 local workers")
    parser.add_argument("--analysis", action="store_true", help="(2) analyze a one-hour run")
    parser.add_argument("--recorder", action="store_true", help="(3) recorder memory")
    parser.add_argument("--rounds", type=int, default=3, help="(1) interleaved rounds")
    parser.add_argument("--repeats", type=int, default=3, help="(2) analyze runs")
    parser.add_argument("--profile", action="store_true", help="(2) cProfile even if fast")
    parser.add_argument("--keep-run", type=Path, help="(2) write the run directory here")
    parser.add_argument("--recorder-long", type=int, default=RECORDER_LONG_S,
                        help="(3) simulated seconds of the long run")  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    everything = not (args.workers or args.analysis or args.recorder)
    results: dict[str, Any] = {"machine": machine()}
    print(json.dumps(results["machine"]), flush=True)
    if everything or args.workers:
        results["workers"] = bench_workers(args.rounds)
    if everything or args.analysis:
        results["analysis"] = bench_analysis(args.keep_run, args.repeats, args.profile)
    if everything or args.recorder:
        results["recorder"] = bench_recorder(args.recorder_long)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
