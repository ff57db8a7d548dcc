"""Predicted vs observed SLO-violating minutes of `recommender verify` replays, with the
queue in `simulate` and without it (the model's SLO limit removed: each minute judged on its
own load), on the default and on the calibrated provisioning.

    .venv/bin/python bench/verify_violations.py RUN/verify.json [...]

Each replay's traffic, policy and starting fleet come from its verify.json, the endpoint
from its run directory (as `verify` predicts); the calibration from its calibration.json.
The README's "Predicted vs observed SLO-violating minutes" table is this script's output.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

from recommender import runs
from recommender.analysis import analyze_run
from recommender.calibration import calibrated
from recommender.simulate import DEFAULT_PROVISION_MINUTES, Policy, model_from_analysis, simulate
from recommender.traffic import from_counts


def main(paths: list[str]) -> None:
    for name in paths:
        run = Path(name).parent
        doc = json.loads(Path(name).read_text())
        p = doc["simulated_policy"]
        policy = Policy(target_value=p["target_value"], min_capacity=p["min_capacity"],
                        max_capacity=p["max_capacity"],
                        scale_out_datapoints=p["scale_out_datapoints"],
                        scale_in_datapoints=p["scale_in_datapoints"],
                        scale_in_ratio=p["scale_in_ratio"],
                        scale_out_cooldown=p["scale_out_cooldown_s"],
                        scale_in_cooldown=p["scale_in_cooldown_s"],
                        provision_minutes=p["provision_minutes"])  # fmt: skip
        model = model_from_analysis(analyze_run(runs.load_run(run)))
        traffic = from_counts(doc["predicted"]["requests"])
        first = int(doc["predicted"]["in_service"][0])
        default = replace(policy, provision_minutes=DEFAULT_PROVISION_MINUTES)
        cal_policy, cal = calibrated(run, default)
        row = [str(run), f"observed {sum(doc['observed']['slo_violating'])}"]
        for label, pol in (("default", policy), ("calibrated", cal_policy)):
            for kind, m in (("queue", model), ("no queue", replace(model, limit_ms=None))):
                sim = simulate(traffic, m, pol, initial_instances=first,
                               minute_seconds=doc["minute_seconds"])  # fmt: skip
                row.append(f"{label}/{kind} {sim.totals.violating_minutes}")
        print("  ".join(row), f"({cal})" if cal else "(no calibration)")


if __name__ == "__main__":
    main(sys.argv[1:])
