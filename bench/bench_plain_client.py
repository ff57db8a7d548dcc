"""Does the tool add latency of its own? Its measurement against a plain client's, on the
same arrivals to the same server (issue 27).

    .venv/bin/python bench/bench_plain_client.py [--instances 1 --slots 3 --service-ms 30]
        [--rates 20,40,60,70,80] [--stage-seconds 20] [--neighbour] [--json out.json]

1. Starts `recommender serve --model sleep` (N instances x C slots x S ms).
2. Runs `recommender run --search fixed` with one stage per rate, Poisson arrivals and
   `--keep-requests`, so every request's intended send time, actual send and completion
   are on disk.
3. Replays exactly those intended send times with a plain client: a dispatcher thread
   sleeps until each one and hands it to a new thread with its own `http.client`
   connection, so requests overlap as they arrive, as independent clients' do.
4. Per stage (the tool's warm-up left out, requests by intended time), prints p50 and p95
   of latency from the intended send for both, the tool's lateness (actual send minus
   intended: the wait for a free user and the generator's own), and the plain client's.

`--neighbour` runs a CPU-bound process pinned to one core for the whole bench (the CI's
busy machine, tests/busy_neighbour.py). Not a test: the figures go into bench/README.md.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pyarrow.parquet as pq

from recommender import runs
from recommender.local.process import running_server
from recommender.local.server import ServerConfig

ROOT = Path(__file__).resolve().parent.parent
BODY = b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}'


def run_tool(url: str, rates: list[float], stage_s: float, slo_ms: float, seed: int,
             out: Path) -> Path:  # fmt: skip
    """A fixed ramp at `rates` (evenly spaced, as --stages makes them); the run directory."""
    cmd = [sys.executable, "-m", "recommender", "run", "--url", url, "--search", "fixed",
           "--start-rps", str(rates[0]), "--max-rps", str(rates[-1]),
           "--stages", str(len(rates)), "--stage-seconds", str(stage_s),
           "--arrivals", "poisson", "--seed", str(seed), "--keep-requests",
           "--slo", f"p95<={slo_ms:g}ms", "--max-error-rate", "0.5", "--abort-error-rate", "0.9",
           "--abort-latency", "60000ms", "-y", "-q", "--out", str(out)]  # fmt: skip
    subprocess.run(cmd, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return max(p.parent for p in out.glob("*/run.json"))


def plain_client(url: str, intended: np.ndarray) -> np.ndarray:
    """Send one request at each intended time (epoch s, sorted), each on a new thread and
    connection; rows of (intended, sent, end, ok)."""
    parts = urlsplit(url)
    out = np.zeros((len(intended), 4))

    def send(i: int, when: float) -> None:
        sent = time.time()
        ok = 0.0
        try:
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
            conn.request("POST", parts.path, BODY, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            ok = 1.0 if resp.status == 200 else 0.0
            conn.close()
        except OSError:
            pass
        out[i] = (when, sent, time.time(), ok)

    threads = []
    for i, when in enumerate(intended):
        delay = when - time.time()
        if delay > 0:
            time.sleep(delay)
        t = threading.Thread(target=send, args=(i, float(when)), daemon=True)
        t.start()
        threads.append(t)
    for t in threads:
        t.join(120)
    return out


def pct(values: np.ndarray, q: float) -> float:
    return float(np.percentile(values, q)) if len(values) else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--instances", type=int, default=1)
    ap.add_argument("--slots", type=int, default=3)
    ap.add_argument("--service-ms", type=float, default=30.0)
    ap.add_argument("--rates", default="20,40,60,70,80")
    ap.add_argument("--stage-seconds", type=float, default=20.0)
    ap.add_argument("--slo-ms", type=float, default=100.0)
    ap.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    ap.add_argument("--neighbour", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    step = (rates[-1] - rates[0]) / max(1, len(rates) - 1)
    rates = [rates[0] + i * step for i in range(len(rates))]  # what --stages plays
    neighbour = None
    if args.neighbour:
        neighbour = subprocess.Popen([sys.executable, str(ROOT / "tests/busy_neighbour.py")])
    config = ServerConfig(port=0, instances=args.instances, concurrency=args.slots,
                          service_time_ms=args.service_ms, model="sleep")  # fmt: skip
    print(f"seed {args.seed}; server {args.instances} x {args.slots} x {args.service_ms:g} ms; "
          f"neighbour {'on' if neighbour else 'off'}")  # fmt: skip
    rows: list[dict[str, Any]] = []
    try:
        with running_server(config) as base, tempfile.TemporaryDirectory() as tmp:
            url = base + "/invocations"
            run_dir = run_tool(url, rates, args.stage_seconds, args.slo_ms, args.seed, Path(tmp))
            table = pq.read_table(run_dir / runs.requests_file()).to_pandas()
            search = json.loads((run_dir / runs.SEARCH_FILE).read_text())
            t0 = json.loads((run_dir / runs.GENERATOR_FILE).read_text())["t0"]
            warmup = min(5.0, 0.2 * args.stage_seconds)
            intended = np.sort(table["intended"].to_numpy())
            shift = time.time() + 2.0 - intended[0]
            plain = plain_client(url, intended + shift)
            plain[:, :3] -= shift
            for stage in search["stages"]:
                lo, hi = t0 + stage["start"] + warmup, t0 + stage["end"]
                sel = table[(table["intended"] >= lo) & (table["intended"] < hi)]
                ok = sel[sel["error"].isna()]
                tool_co = (ok["end"] - ok["intended"]).to_numpy() * 1000.0
                tool_late = (ok["start"] - ok["intended"]).to_numpy() * 1000.0
                p = plain[(plain[:, 0] >= lo) & (plain[:, 0] < hi)]
                p_ok = p[p[:, 3] == 1.0]
                plain_co = (p_ok[:, 2] - p_ok[:, 0]) * 1000.0
                plain_late = (p_ok[:, 1] - p_ok[:, 0]) * 1000.0
                row = {"rps": stage["rps"], "requests": len(sel),
                       "tool_errors": int(sel["error"].notna().sum()),
                       "plain_errors": int(len(p) - len(p_ok)),
                       "tool_p50": pct(tool_co, 50), "tool_p95": pct(tool_co, 95),
                       "plain_p50": pct(plain_co, 50), "plain_p95": pct(plain_co, 95),
                       "tool_late_p95": pct(tool_late, 95), "tool_late_max": pct(tool_late, 100),
                       "plain_late_p95": pct(plain_late, 95)}  # fmt: skip
                rows.append(row)
    finally:
        if neighbour is not None:
            neighbour.kill()
    print(f"{'rps':>6} {'n':>5} {'tool p50':>9} {'plain p50':>9} {'tool p95':>9} "
          f"{'plain p95':>9} {'diff p95':>8} {'tool late p95/max':>18} {'plain late p95':>14}")
    for r in rows:
        print(f"{r['rps']:6.1f} {r['requests']:5d} {r['tool_p50']:9.1f} {r['plain_p50']:9.1f} "
              f"{r['tool_p95']:9.1f} {r['plain_p95']:9.1f} {r['tool_p95'] - r['plain_p95']:8.1f} "
              f"{r['tool_late_p95']:9.1f}/{r['tool_late_max']:<8.1f} {r['plain_late_p95']:14.1f}")
    if args.json:
        args.json.write_text(json.dumps({"seed": args.seed, "args": vars(args) | {"json": None},
                                         "rows": rows}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
