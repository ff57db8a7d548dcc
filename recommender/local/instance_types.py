"""What one instance of an `ml.*` type can do, as the local hosting layer models it.

The local model server's capacity per instance is `slots / service time` (see
recommender.local.server). The hosting layer picks both from the instance type so that a
sweep over types has a known answer, not a claim about real hardware:

- **slots**: the type's vCPUs (large 2, xlarge 4, 2xlarge 8, 4xlarge 16; capped at 16 so
  a laptop can host it) for CPU families; 4 for accelerator families (one GPU or Inferentia
  chip working on 4 requests at once, whatever the vCPUs);
- **service time**: one per family (the table below), shorter for newer and compute-optimised
  families and for accelerators.

| family | kind | service time | e.g. | slots | capacity |
|---|---|---|---|---|---|
| m4, m5, m5d, r5, r5d, t2 | general / memory | 125 ms | ml.m5.xlarge | 4 | 32 rps |
| c4, c5, c5d | compute | 100 ms | ml.c5.2xlarge | 8 | 80 rps |
| m6i, m7i, r6i | general (newer) | 100 ms | ml.m6i.xlarge | 4 | 40 rps |
| c6i, c7i | compute (newer) | 64 ms | ml.c6i.2xlarge | 8 | 125 rps |
| g4dn, inf1 | accelerator | 32 ms | ml.g4dn.xlarge | 4 | 125 rps |
| g5, g6, inf2 | accelerator (newer) | 25 ms | ml.g5.xlarge | 4 | 160 rps |
| p2, p3 | accelerator | 20 ms | ml.p3.2xlarge | 4 | 200 rps |

Capacities stay in the tens to low hundreds of requests/s on purpose: the local servers,
the router in front of them and the load generator share one machine.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from recommender.errors import ConfigError

MAX_SLOTS = 16
ACCELERATOR_SLOTS = 4

# family -> (service time per request in ms, accelerator?)
FAMILIES: dict[str, tuple[float, bool]] = {
    **{f: (125.0, False) for f in ("m4", "m5", "m5d", "r5", "r5d", "t2", "t3")},
    **{f: (100.0, False) for f in ("c4", "c5", "c5d", "m6i", "m7i", "r6i")},
    **{f: (64.0, False) for f in ("c6i", "c7i")},
    **{f: (32.0, True) for f in ("g4dn", "inf1")},
    **{f: (25.0, True) for f in ("g5", "g6", "inf2")},
    **{f: (20.0, True) for f in ("p2", "p3")},
}

_TYPE = re.compile(r"^ml\.(?P<family>[a-z0-9]+)\.(?P<size>[0-9]*x?large|medium|small)$")
_VCPUS = {"small": 1, "medium": 2, "large": 2, "xlarge": 4}


@dataclass(frozen=True)
class InstanceProfile:
    """One local instance of a type: `slots` requests at once, each taking `service_time_ms`."""

    instance_type: str
    slots: int
    service_time_ms: float

    @property
    def capacity_rps(self) -> float:
        return self.slots / (self.service_time_ms / 1000.0)


def vcpus(size: str) -> int:
    """vCPUs of an EC2 size: large 2, xlarge 4, NxLarge 4N (how AWS names them)."""
    if size in _VCPUS:
        return _VCPUS[size]
    return 4 * int(size[: -len("xlarge")])


def profile_for(instance_type: str) -> InstanceProfile:
    """The local profile of `instance_type`; ConfigError for a type the table lacks."""
    m = _TYPE.match(instance_type)
    family = m.group("family") if m else None
    if m is None or family not in FAMILIES:
        raise ConfigError(
            f"no local capacity profile for instance type {instance_type!r}",
            f"the local hosting layer knows the families {', '.join(sorted(FAMILIES))}",
        )
    service_ms, accelerator = FAMILIES[family]
    slots = ACCELERATOR_SLOTS if accelerator else min(MAX_SLOTS, vcpus(m.group("size")))
    return InstanceProfile(instance_type, slots, service_ms)
