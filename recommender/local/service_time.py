"""How long a request of the sleep (or sklearn) model holds its slot: `--service-time-dist`.

`det` holds every slot exactly S (the server as it always was); `exp` draws each request's
time exponential with mean S (coefficient of variation 1, the M/M/c server); `lognormal:CV`
draws it lognormal with mean S and coefficient of variation CV (the right-skewed times real
models show: most requests quick, a few slow). The mean is S in every law, so the server still
saturates at N x C / S on average, and what changes is the queue below it: the variable laws
wait longer at the same rate, so their capacity within an SLO is lower (issue 27's truth
benchmark exercises estimates against that).

One module for the law, so that the server draws its times and a benchmark computes the
truth of the same law from the same code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from recommender.errors import ConfigError

KINDS = ("det", "exp", "lognormal")


@dataclass(frozen=True)
class ServiceTimeDist:
    kind: str = "det"  # one of KINDS
    cv: float = 0.0  # lognormal's coefficient of variation (std / mean)

    @classmethod
    def parse(cls, text: str) -> ServiceTimeDist:
        """`det`, `exp` or `lognormal:CV` (CV > 0), or a one-line ConfigError."""
        kind, _, arg = text.strip().partition(":")
        if kind in ("det", "exp") and not arg:
            return cls(kind)
        if kind == "lognormal":
            try:
                cv = float(arg)
            except ValueError:
                cv = math.nan
            if math.isfinite(cv) and cv > 0:
                return cls(kind, cv)
        raise ConfigError(f"--service-time-dist must be det, exp or lognormal:CV with CV > 0 "
                          f"(got {text!r})", "e.g. --service-time-dist lognormal:0.5")

    def __str__(self) -> str:
        return f"lognormal:{self.cv:g}" if self.kind == "lognormal" else self.kind

    @property
    def deterministic(self) -> bool:
        return self.kind == "det"

    def draw(self, rng: np.random.Generator, mean: float, size: int) -> NDArray[np.float64]:
        """`size` service times of mean `mean` (in its unit)."""
        if self.kind == "exp":
            return rng.exponential(mean, size)
        if self.kind == "lognormal":
            # A lognormal of log-mean mu and log-sd sigma has mean exp(mu + sigma^2 / 2) and
            # CV sqrt(exp(sigma^2) - 1): solve both for the mean and CV asked.
            sigma2 = math.log1p(self.cv**2)
            mu = math.log(mean) - sigma2 / 2
            return rng.lognormal(mu, math.sqrt(sigma2), size)
        return np.full(size, float(mean))


def instance_rng(seed: int | None, instance: int) -> np.random.Generator:
    """Instance `instance`'s generator: from (seed, instance) when seeded, so that every
    instance draws its own stream and a run can be replayed; else from fresh OS entropy
    (called in the forked worker, so the instances never share one stream)."""
    return np.random.default_rng(None if seed is None else [seed, instance])
