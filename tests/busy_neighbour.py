"""A CPU-bound neighbour: one process spinning on one core until it is stopped.

`.ci/run` starts it beside `make test`, so a suite that passes only on an idle machine
cannot land (users' laptops and CI runners are shared). Run it by hand the same way:

    python tests/busy_neighbour.py &  make test;  kill %1

It pins itself to the last core where the OS lets it (so it takes one core, not a share of
both) and stops by itself after `--seconds` (default two hours), so a forgotten one ends.
"""

from __future__ import annotations

import argparse
import os
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=7200.0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cores[-1]})
    end = time.monotonic() + args.seconds
    x = 0
    while time.monotonic() < end:
        for _ in range(100_000):  # pure Python work, checking the clock now and then
            x = (x * 1_103_515_245 + 12_345) & 0xFFFFFFFF


if __name__ == "__main__":
    main()
