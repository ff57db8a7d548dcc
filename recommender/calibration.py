"""The simulator's calibration from a verified run (pure): how long this endpoint's new
instances really took to serve, and how much later than predicted its alarm acted.

`recommender verify` fits it to the scaling activities it observed and saves it in the run
directory (calibration.json); `simulate` and `analyze --safety-factor auto` read it from there
when `--provision-minutes` is not given, and say so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from recommender.errors import ConfigError
from recommender.simulate import Policy

CALIBRATION_FILE = "calibration.json"


@dataclass(frozen=True)
class Calibration:
    provision_minutes: int  # a scale-out's start to its instances in service
    alarm_lag_minutes: int  # observed first scale-out later than predicted by this much
    scale_outs: int  # how many scale-outs it rests on

    @property
    def simulated_provision_minutes(self) -> int:
        """What `simulate` uses: the alarm lag folded into the provisioning time. The
        simulator counts a scale-out's effect from its alarm's datapoints; to the load, an
        alarm that acts later is the same as instances that start slower."""
        return self.provision_minutes + self.alarm_lag_minutes

    def describe(self) -> str:
        return (f"calibrated by verify: new instances serve {self.provision_minutes} min after "
                f"a scale-out, alarm lag {self.alarm_lag_minutes} min (from {self.scale_outs} "
                f"scale-out(s)): simulating with {self.simulated_provision_minutes} min")

    def to_dict(self) -> dict[str, Any]:
        return {"provision_minutes": self.provision_minutes,
                "alarm_lag_minutes": self.alarm_lag_minutes, "scale_outs": self.scale_outs,
                "simulated_provision_minutes": self.simulated_provision_minutes,
                "method": "provision: median of (EndTime - StartTime) over successful "
                          "scale-out activities, rounded up to whole minutes; alarm lag: "
                          "observed minus predicted time to the first scale-out (>= 0)"}


def read_calibration(run_dir: Path) -> Calibration | None:
    """The run's calibration.json, or None when there is none."""
    path = run_dir / CALIBRATION_FILE
    if not path.is_file():
        return None
    try:
        d = json.loads(path.read_text())
        return Calibration(int(d["provision_minutes"]), int(d["alarm_lag_minutes"]),
                           int(d["scale_outs"]))  # fmt: skip
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is not a calibration recommender wrote ({exc})",
                          f"delete it, or run `recommender verify {run_dir}` again") from exc


def calibrated(run_dir: Path, policy: Policy) -> tuple[Policy, Calibration | None]:
    """The policy with the run's calibrated provisioning time, when there is one."""
    cal = read_calibration(run_dir)
    if cal is None:
        return policy, None
    return replace(policy, provision_minutes=cal.simulated_provision_minutes), cal
