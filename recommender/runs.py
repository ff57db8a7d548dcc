"""The run directory: the contract between measuring and analysing.

    <out>/<utc-stamp>-<name>/
      run.json        what was run and how it ended (schema_version, plan, SLO, target, stages,
                      generator, totals, status); rewritten atomically as the run progresses
      latency.jsonl   one line per second of the run: counts, errors, latency histograms
      generator.json  written by the Locust process at start (its clock origin t0) and end
      search.json     the stages as played and the controller's decisions
      backlog.jsonl   asynchronous endpoints: per second, requests sent, accepted, seen
                      done or failed, and outstanding (the backlog the generator sees)
      locust.log, locust-worker-<i>.log   Locust's own output (master/local, local workers)
      requests.parquet, requests-<worker>.parquet   --keep-requests: every request
      cloudwatch.csv  `collect`: the endpoint's CloudWatch datapoints
      analysis.json, report.md, report.html   written by `analyze` / `run`
      simulation.json `simulate`: the policy replayed on the run
      autoscaling_state.json   `apply`: the state saved before each change
      target_tracking_scaling_policy.json, step_scaling_policy.json   `apply --dry-run`:
                      the policy configurations its `aws` commands read (file://)

`analyze`, `report` and `compare` read only this directory, never the endpoint. Every file
name is declared here, once.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from recommender.errors import RunDirError
from recommender.plan import RampPlan, Slo

SCHEMA_VERSION = 1
RUN_FILE = "run.json"
# Measuring (recommender.loadgen)
LATENCY_FILE = "latency.jsonl"
GENERATOR_FILE = "generator.json"
SEARCH_FILE = "search.json"
BACKLOG_FILE = "backlog.jsonl"  # async endpoints: the backlog the generator sees, per second
LOCUST_LOG = "locust.log"
# Collecting and analysing
CLOUDWATCH_FILE = "cloudwatch.csv"
ANALYSIS_FILE = "analysis.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
SIMULATION_FILE = "simulation.json"
# Applying a policy
AUTOSCALING_STATE_FILE = "autoscaling_state.json"
TARGET_TRACKING_POLICY_FILE = "target_tracking_scaling_policy.json"
STEP_POLICY_FILE = "step_scaling_policy.json"
STATUSES = ("running", "complete", "stopped", "interrupted")
# Space held for the end of a run: given up when the disk fills, so the last seconds and
# run.json still fit (loadgen.roles.RunDirWriter, loadgen.runner.finalize).
RESERVE_FILE = ".reserve"
RESERVE_BYTES = 256 * 1024


def reserve_space(run_dir: Path) -> None:
    """Hold RESERVE_BYTES in the run directory; RunDirError when the disk has not that."""
    path = run_dir / RESERVE_FILE
    try:
        with path.open("wb") as f:
            f.write(bytes(RESERVE_BYTES))
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise RunDirError(f"cannot write to {run_dir}: {exc.strerror}",
                          "free some space on its disk, or pass another --out") from exc


def release_space(run_dir: Path) -> None:
    (run_dir / RESERVE_FILE).unlink(missing_ok=True)


def worker_log_file(index: int) -> str:
    """Locust's output of the run's `index`th local worker."""
    return f"locust-worker-{index}.log"


def requests_file(worker: str | None = None) -> str:
    """--keep-requests: the Parquet rows of one process (a worker's carry its Locust id)."""
    return "requests.parquet" if worker is None else f"requests-{worker}.parquet"


def utc_stamp(now: datetime) -> str:
    return now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="milliseconds")


def make_run_dir(out: Path, name: str, now: datetime) -> Path:
    """Create `<out>/<utc-stamp>-<name>`, adding -2, -3... if it exists already."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "run"
    base = out / f"{utc_stamp(now)}-{safe}"
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunDirError(f"cannot create {out}: {exc.strerror}", "pass a writable --out") from exc
    for n in range(1, 1000):
        path = base if n == 1 else base.with_name(f"{base.name}-{n}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise RunDirError(f"too many runs named {base}")


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically: readers see the old file or the new one, never half of one."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2, sort_keys=False)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_seconds(path: Path) -> list[dict[str, Any]]:
    """Per-second records; a torn last line (the run was killed mid-write) is skipped."""
    if not path.exists():
        return []
    records = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


def totals(records: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Requests completed, succeeded and failed: by kind ("HTTP 503", "ConnectionRefusedError")
    and, for answers that carried one, by SageMaker error type (a subset of the kinds); and,
    when there were some, `reconnects`: sends made again after a kept-alive connection
    closed before answering (retried as a SageMaker client would: no errors)."""
    requests = ok = reconnects = 0
    kinds: Counter[str] = Counter()
    types: Counter[str] = Counter()
    for r in records:
        requests += r["requests"]
        ok += r["ok"]
        kinds.update(r["errors"])
        types.update(r.get("error_types") or {})
        reconnects += r.get("reconnects", 0)
    out: dict[str, Any] = {
        "requests": requests,
        "successes": ok,
        "errors": requests - ok,
        "errors_by_kind": dict(kinds.most_common()),
        "errors_by_type": dict(types.most_common()),
    }
    if reconnects:
        out["reconnects"] = reconnects
    return out


def stage_totals(records: Iterable[dict[str, Any]], stage: int) -> dict[str, Any]:
    """`totals` of the seconds that belong to `stage` (by completion time)."""
    return totals(r for r in records if r.get("stage") == stage)


@dataclass(frozen=True)
class RunData:
    """A run directory read back: its metadata and its per-second records."""

    path: Path
    meta: dict[str, Any]
    seconds: list[dict[str, Any]]
    backlog: list[dict[str, Any]] = field(default_factory=list)  # async endpoints

    @property
    def plan(self) -> RampPlan:
        return RampPlan.from_dict(self.meta["plan"])

    @property
    def slo(self) -> Slo:
        return Slo.from_dict(self.meta["slo"])

    @property
    def instances(self) -> int:
        return int(self.meta["target"].get("instances") or 1)


def load_run(path: Path) -> RunData:
    run_file = path / RUN_FILE
    if not run_file.is_file():
        raise RunDirError(
            f"{path} is not a run directory (no {RUN_FILE})",
            "pass a directory made by `recommender run` or `recommender loadtest`",
        )
    try:
        meta = json.loads(run_file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise RunDirError(f"{run_file} is not valid JSON: {exc.msg}") from exc
    version = meta.get("schema_version")
    if version != SCHEMA_VERSION:
        raise RunDirError(
            f"{run_file} has schema_version {version!r}; this tool reads {SCHEMA_VERSION}",
            "re-analyse with the recommender version that made it",
        )
    return RunData(path, meta, read_seconds(path / LATENCY_FILE),
                   read_seconds(path / BACKLOG_FILE))
