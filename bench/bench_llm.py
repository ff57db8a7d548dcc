"""What `--stream` searches find on the local LLM server, against its computed truth.

For each configuration (one instance of `recommender serve --model llm` with B batch slots,
step time s x (1 + g (b - 1)), prefill per prompt token, N new tokens a prompt) and its
token-level SLO, run `recommender run --url ... --stream --template tgi` with the package's
24 prompts (18-204 approximate tokens, N new tokens each):

- **concurrency**: `--control concurrency`, against `recommender.local.llm.concurrency_at_slo`
  (the closed-loop truth: requests in flight per instance);
- **rate**: the adaptive search over arrival rates (`--arrivals uniform`, the arrivals the
  truth assumes), against `recommender.local.llm.capacity_rps` (the open-loop truth).

Prints one Markdown row per configuration and control; exits 1 when a concurrency bracket
misses its truth.

    .venv/bin/python bench/bench_llm.py [--control both|concurrency|rate] [--configs ABC]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from recommender.cli import main
from recommender.local import llm
from recommender.local.demo import prompt_means
from recommender.local.process import running_server
from recommender.local.server import ServerConfig
from recommender.plan import parse_slo


@dataclass(frozen=True)
class Config:
    name: str
    what: str  # which limit binds, in words
    params: llm.LlmParams
    new_tokens: int
    slo: str
    start_concurrency: int
    max_concurrency: int
    start_rps: float
    max_rps: float


CONFIGS = (
    # ITL binds below the batch: T(k) = 20 + 5 (k - 1) ms, within 42.5 ms up to k = 5.
    Config("A", "ITL (step time grows with the batch)",
           llm.LlmParams(max_batch=16, step_ms=20.0, growth=0.25, prefill_ms_per_token=0.1),
           32, "itl_p50<=42.5ms", 2, 16, 1.0, 8.0),
    # TTFT binds at the batch: one request more than B waits a whole generation (~360 ms).
    Config("B", "TTFT (the batch is full)",
           llm.LlmParams(max_batch=8, step_ms=10.0, growth=0.02, prefill_ms_per_token=0.1),
           32, "ttft_p95<=250ms", 4, 16, 8.0, 32.0),
    # End-to-end latency binds below the batch: 325 + 32.5 (k - 1) ms, within 505 up to 6.
    Config("C", "end-to-end (32 steps growing 10% a sequence)",
           llm.LlmParams(max_batch=16, step_ms=10.0, growth=0.1, prefill_ms_per_token=0.0),
           32, "e2e_p95<=505ms", 4, 16, 4.0, 24.0),
)  # fmt: skip


def prompts_file(new_tokens: int, out: Path) -> Path:
    """The package's prompts, each asking for `new_tokens`."""
    src = resources.files("recommender.local").joinpath("llm_prompts.jsonl").read_text()
    lines = [json.loads(line) for line in src.splitlines() if line.strip()]
    path = out / "prompts.jsonl"
    path.write_text("".join(json.dumps({**d, "max_new_tokens": new_tokens}) + "\n"
                            for d in lines))  # fmt: skip
    return path


def truths(c: Config, prompts: Path) -> tuple[int, float, float]:
    """(concurrency, throughput there, rate capacity) per instance."""
    mean_in, mean_out = prompt_means(prompts)
    terms = parse_slo([c.slo]).terms
    k = llm.concurrency_at_slo(c.params, mean_in, mean_out,
                               [(t.metric, t.quantile, t.limit_ms) for t in terms])  # fmt: skip
    limits = {t.metric: t.limit_ms for t in terms}
    rps = llm.capacity_rps(c.params, mean_in, mean_out, ttft_ms=limits.get("ttft"),
                           itl_ms=limits.get("itl"), e2e_ms=limits.get("e2e"))  # fmt: skip
    return k, llm.closed_loop(c.params, k, mean_in, mean_out).throughput_rps, rps


def one(c: Config, control: str, tmp: Path) -> dict[str, Any]:
    prompts = prompts_file(c.new_tokens, tmp)
    k, k_rps, rps = truths(c, prompts)
    server = ServerConfig(port=0, model="llm", llm=c.params, max_queue=200)
    if control == "concurrency":
        load = ["--control", "concurrency", "--start-concurrency", str(c.start_concurrency),
                "--max-concurrency", str(c.max_concurrency)]  # fmt: skip
    else:
        load = ["--start-rps", f"{c.start_rps:g}", "--max-rps", f"{c.max_rps:g}",
                "--arrivals", "uniform"]  # fmt: skip
    out = tmp / "runs"
    with running_server(server) as base:
        code = main(["run", "--url", f"{base}/invocations", "--stream", "--payload",
                     str(prompts), "--template", "tgi", "--slo", c.slo, *load,
                     "--stage-seconds", "8", "--warmup-seconds", "2", "--max-duration", "150",
                     "--quiet", "--out", str(out)])  # fmt: skip
    (run_dir,) = list(out.iterdir())
    a = json.loads((run_dir / "analysis.json").read_text())
    meta = json.loads((run_dir / "run.json").read_text())
    row: dict[str, Any] = {"config": c.name, "control": control, "slo": c.slo, "exit": code,
                           "stages": len(a["stages"]),
                           "seconds": _seconds(meta)}  # fmt: skip
    if control == "concurrency":
        cc = a["concurrency"]
        lo, hi = cc["interval_per_instance"] or (cc["per_instance"], cc["per_instance"])
        row.update(truth=k, truth_rps=k_rps, lo=lo, hi=hi, estimate=cc["per_instance"],
                   rps=cc["throughput_rps_per_instance"],
                   tokens=cc.get("output_tokens_per_s_per_instance"),
                   holds=lo <= k < hi or lo == k)  # fmt: skip
    else:
        cap = a["capacity"]
        ci = cap.get("ci_rps_per_instance") or cap.get("interval_rps_per_instance") or [0, 0]
        row.update(truth=rps, estimate=cap["rps_per_instance"], lo=ci[0], hi=ci[1],
                   holds=ci[0] <= rps <= ci[1])  # fmt: skip
    return row


def _seconds(meta: dict[str, Any]) -> float:
    from datetime import datetime

    start, end = meta.get("started_at"), meta.get("ended_at")
    if not start or not end:
        return 0.0
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def bench(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--control", choices=("both", "concurrency", "rate"), default="both")
    ap.add_argument("--configs", default="ABC")
    args = ap.parse_args(argv)
    controls = ("concurrency", "rate") if args.control == "both" else (args.control,)
    rows = []
    for c in CONFIGS:
        if c.name not in args.configs:
            continue
        for control in controls:
            with tempfile.TemporaryDirectory() as tmp:
                rows.append(one(c, control, Path(tmp)))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    missed = 0
    for control in controls:
        mine = [r for r in rows if r["control"] == control]
        if not mine:
            continue
        if control == "concurrency":
            print("\n| config | SLO | truth in flight (rps there) | bracket | interpolated | "
                  "rps there | output tokens/s there | stages | test time |")
            print("|---|---|---:|---|---:|---:|---:|---:|---:|")
            for r in mine:
                missed += not r["holds"]
                print(f"| {r['config']} | `{r['slo']}` | {r['truth']} ({r['truth_rps']:.1f}) | "
                      f"{r['lo']:g}-{r['hi']:g}{'' if r['holds'] else ' MISSED'} | "
                      f"{r['estimate']:.2f} | {r['rps'] or 0:.1f} | {r['tokens'] or 0:,.0f} | "
                      f"{r['stages']} | {r['seconds']:.0f} s |")
        else:
            print("\n| config | SLO | truth rps | estimate | error | interval | holds? | "
                  "stages | test time |")
            print("|---|---|---:|---:|---:|---|---|---:|---:|")
            for r in mine:
                est = r["estimate"] or 0.0
                print(f"| {r['config']} | `{r['slo']}` | {r['truth']:.2f} | {est:.2f} | "
                      f"{est / r['truth'] - 1:+.1%} | {r['lo']:.2f}-{r['hi']:.2f} | "
                      f"{'yes' if r['holds'] else 'no'} | {r['stages']} | "
                      f"{r['seconds']:.0f} s |")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(bench())
