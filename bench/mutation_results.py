"""Write mutmut's results as data: one tests/mutation/<module>.json per mutated module.

Run after `mutmut run` (see tests/mutation/README.md):

    .venv/bin/python bench/mutation_results.py            # every module mutmut has results for
    .venv/bin/python bench/mutation_results.py queueing   # some modules (names as the files)
    .venv/bin/python bench/mutation_results.py --check    # also fail on unexplained survivors

It reads mutmut's own record (`mutants/<path>.meta`: the exit code of each mutant's test
run) and maps the exit codes the way mutmut does (`mutmut.stats.status_by_exit_code`).
The reason given for a survivor is written by hand in the module's JSON file; rewriting the
file keeps the reasons of the mutants that still survive, and a new survivor gets the reason
"TODO". The score is (killed + timeout) / all mutants of the module: equivalent mutants are
NOT taken out of the denominator (they count as survivors, with their reason).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any

from mutmut.stats import status_by_exit_code

ROOT = Path(__file__).resolve().parents[1]
MUTANTS = ROOT / "mutants"
OUT = ROOT / "tests" / "mutation"
TODO = "TODO"


def module_name(meta: Path) -> str:
    """`mutants/recommender/analysis/stages.py.meta` -> `analysis.stages`."""
    rel = meta.relative_to(MUTANTS / "recommender").with_suffix("").with_suffix("")
    return ".".join(rel.parts)


def results(meta: Path, previous: dict[str, Any]) -> dict[str, Any]:
    exit_codes: dict[str, int | None] = json.loads(meta.read_text())["exit_code_by_key"]
    status = {key: status_by_exit_code[code] for key, code in sorted(exit_codes.items())}
    counts = {s: sum(1 for v in status.values() if v == s) for s in set(status.values())}
    killed, timeout = counts.pop("killed", 0), counts.pop("timeout", 0)
    survived, no_tests = counts.pop("survived", 0), counts.pop("no tests", 0)
    total = len(status)
    reasons = {s["id"]: s["reason"] for s in previous.get("survivors", [])}
    return {
        "module": "recommender/" + module_name(meta).replace(".", "/") + ".py",
        "mutmut_version": version("mutmut"),
        "date": dt.datetime.now(dt.timezone.utc).date().isoformat(),
        "killed": killed,
        "survived": survived,
        "timeout": timeout,
        "no_tests": no_tests,
        # Anything else mutmut reports (not checked, suspicious, segfault...): should be {}.
        "other": counts,
        "total": total,
        "score": round((killed + timeout) / total, 4) if total else None,
        "survivors": [
            {"id": key, "reason": reasons.get(key, TODO)}
            for key, s in status.items() if s in ("survived", "no tests")
        ],
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("modules", nargs="*", help="e.g. search analysis.stages (default: all)")
    parser.add_argument("--check", action="store_true", help="fail on a survivor without reason")
    args = parser.parse_args(argv)
    metas = sorted((MUTANTS / "recommender").rglob("*.py.meta"))
    if args.modules:
        metas = [m for m in metas if module_name(m) in args.modules]
    if not metas:
        print("no mutmut results (run `mutmut run` first)", file=sys.stderr)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    unexplained = 0
    for meta in metas:
        path = OUT / f"{module_name(meta)}.json"
        previous = json.loads(path.read_text()) if path.is_file() else {}
        data = results(meta, previous)
        if not data["total"] or data["other"].get("not checked") == data["total"]:
            continue  # mutants made but none run yet
        path.write_text(json.dumps(data, indent=2) + "\n")
        todo = sum(1 for s in data["survivors"] if s["reason"] == TODO)
        unexplained += todo
        print(f"{data['module']:36} killed {data['killed']:4}  survived {data['survived']:3}  "
              f"timeout {data['timeout']:3}  no tests {data['no_tests']:3}  "
              f"score {data['score']:.1%}  unexplained {todo}")  # fmt: skip
    return 1 if args.check and unexplained else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
