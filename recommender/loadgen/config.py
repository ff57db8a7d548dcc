"""What the runner tells the Locust process(es): one frozen, typed config.

It crosses two process boundaries as plain data, and never through a file: the runner puts
it, as JSON, in the environment of the local or master process ($RECOMMENDER_CONFIG), and a
master sends it to its workers in a Locust message (msgpack, in memory), without its
run-directory paths and with the request bodies instead. It holds the request headers in
clear (the Locust processes send them), so it is never written into the run directory,
whose files are shared: run.json records the headers redacted (recommender.redact).
`to_dict`/`from_dict` are that data.

Plain Python (no Locust): the runner and the tests import it freely.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from recommender import __version__
from recommender.errors import LoadTestError
from recommender.loadgen.payloads import Template
from recommender.plan import RampPlan, SearchSettings, Slo
from recommender.search import AdaptiveSearch, Controller, FixedRamp

CONFIG_ENV = "RECOMMENDER_CONFIG"  # the config (JSON) of a local or master Locust process


@dataclass(frozen=True)
class ControllerSpec:
    """How the Locust process picks each stage's rate (see recommender.search): a fixed
    staged ramp, or the settings of the adaptive search."""

    plan: RampPlan | SearchSettings
    # Stop a fixed ramp when a stage endangers the endpoint (the search has its own).
    abort_error_rate: float = 0.10
    abort_latency_factor: float = 3.0

    @property
    def mode(self) -> str:
        return "fixed" if isinstance(self.plan, RampPlan) else "adaptive"

    def to_dict(self) -> dict[str, Any]:
        """As run.json's `search` and the config file hold it."""
        if isinstance(self.plan, RampPlan):
            return {"mode": "fixed", "plan": self.plan.to_dict(),
                    "abort_error_rate": self.abort_error_rate,
                    "abort_latency_factor": self.abort_latency_factor}  # fmt: skip
        return {"mode": "adaptive", "settings": self.plan.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ControllerSpec:
        if data["mode"] == "adaptive":
            return cls(SearchSettings(**data["settings"]))
        return cls(RampPlan.from_dict(data["plan"]), float(data["abort_error_rate"]),
                   float(data["abort_latency_factor"]))  # fmt: skip

    def controller(self, slo: Slo) -> Controller:
        if isinstance(self.plan, RampPlan):
            return FixedRamp(self.plan, slo, self.abort_error_rate, self.abort_latency_factor)
        return AdaptiveSearch(self.plan, slo)


@dataclass(frozen=True)
class Signing:
    """Where to SigV4-sign for; each Locust process resolves its own credentials."""

    region: str
    profile: str | None = None


@dataclass(frozen=True, kw_only=True)
class LoadgenConfig:
    controller: ControllerSpec
    slo: Slo
    host: str  # host[:port]: the signed Host header
    path: str  # the invocation path (and query)
    headers: Mapping[str, str] = field(default_factory=dict)
    users: int
    workers: int = 0  # 0: one process, no workers
    arrivals: str = "poisson"  # what production traffic from many clients looks like
    seed: int | None = None
    align_seconds: int = 1
    keep_requests: bool = False
    sigv4: Signing | None = None
    # Local and master only: a worker writes no run directory and gets the bodies instead.
    run_dir: Path | None = None
    payload: str | None = None
    # --keep-requests: local workers share this machine's disk; remote ones write to their cwd.
    requests_dir: str | None = None
    bodies_count: int = 1
    # --stream: read the answer as it arrives (event-stream frames on a SageMaker
    # .../invocations-response-stream path, else a chunked body) and count its tokens.
    stream: bool = False
    token_format: str = "auto"
    # --template: the payload's lines are prompts rendered into bodies (loadgen.payloads).
    template: str | None = None
    max_new_tokens: int | None = None
    # A hard cap on the requests released (all processes together; each its share): the
    # arrival process stops there and the load ends by itself (verify's --max-requests).
    max_requests: int | None = None

    def payload_template(self) -> Template | None:
        if self.template is None:
            return None
        return Template(self.template, self.max_new_tokens, self.stream)

    @property
    def framed(self) -> bool:
        """The answer is SageMaker's event stream (InvokeEndpointWithResponseStream)."""
        return self.path.split("?")[0].endswith("/invocations-response-stream")

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {}
        if self.run_dir is not None:
            data["run_dir"] = str(self.run_dir)
        data.update(controller=self.controller.to_dict(), slo=self.slo.to_dict(),
                    arrivals=self.arrivals, path=self.path, host=self.host,
                    headers=dict(self.headers))  # fmt: skip
        if self.payload is not None:
            data["payload"] = self.payload
        data.update(users=self.users, workers=self.workers, bodies_count=self.bodies_count,
                    keep_requests=self.keep_requests, requests_dir=self.requests_dir,
                    seed=self.seed, align_seconds=self.align_seconds,
                    stream=self.stream, token_format=self.token_format,
                    template=self.template, max_new_tokens=self.max_new_tokens,
                    max_requests=self.max_requests,
                    sigv4=None if self.sigv4 is None else asdict(self.sigv4))  # fmt: skip
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoadgenConfig:
        sigv4 = data.get("sigv4")
        return cls(
            controller=ControllerSpec.from_dict(data["controller"]),
            slo=Slo.from_dict(data["slo"]),
            host=str(data["host"]),
            path=str(data["path"]),
            headers=dict(data["headers"]),
            users=int(data["users"]),
            workers=int(data.get("workers", 0)),
            arrivals=str(data.get("arrivals", "uniform")),
            seed=None if data.get("seed") is None else int(data["seed"]),
            align_seconds=max(1, int(data.get("align_seconds", 1))),
            keep_requests=bool(data.get("keep_requests", False)),
            sigv4=Signing(str(sigv4["region"]), sigv4.get("profile")) if sigv4 else None,
            run_dir=Path(data["run_dir"]) if data.get("run_dir") else None,
            payload=data.get("payload"),
            requests_dir=data.get("requests_dir"),
            bodies_count=int(data.get("bodies_count", 1)),
            stream=bool(data.get("stream", False)),
            token_format=str(data.get("token_format", "auto")),
            template=data.get("template"),
            max_new_tokens=data.get("max_new_tokens"),
            max_requests=data.get("max_requests"),
        )

    @classmethod
    def from_env(cls) -> LoadgenConfig | None:
        """The config the runner gave this (local or master) process, if any. It leaves the
        environment once read: nothing this process starts inherits the headers."""
        text = os.environ.pop(CONFIG_ENV, None)
        if not text:
            return None
        return cls.from_dict(json.loads(text))

    def to_env(self) -> dict[str, str]:
        """The environment entry `from_env` reads."""
        return {CONFIG_ENV: json.dumps(self.to_dict())}

    def to_message(self, bodies: Sequence[bytes], version: str = __version__) -> dict[str, Any]:
        """The master's message to its workers: no run-directory paths, the bodies instead,
        and the master's recommender version (a worker of another version refuses)."""
        data = replace(self, run_dir=None, payload=None).to_dict()
        data["bodies"] = list(bodies)
        data["version"] = version
        return data

    @classmethod
    def from_message(
        cls, data: Mapping[str, Any], version: str = __version__
    ) -> tuple[LoadgenConfig, tuple[bytes, ...]]:
        """A worker's config from its master's message; LoadTestError when the master runs
        another version of recommender (the two would disagree on the plan and the records)."""
        check_version(data.get("version"), version)
        bodies = tuple(b if isinstance(b, bytes) else str(b).encode() for b in data["bodies"])
        return cls.from_dict(data), bodies


def check_version(master: object, worker: str = __version__) -> None:
    """A worker joins only a master of its own recommender version."""
    if master != worker:
        theirs = "an unknown version" if master is None else f"recommender {master}"
        raise LoadTestError(
            f"the master runs {theirs}, this worker recommender {worker}",
            "install the same version on the master and every worker",
        )
