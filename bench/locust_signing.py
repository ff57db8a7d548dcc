"""The locustfile of bench_signing.py: three ways to POST one invocation, flat out.

    UnsignedUser  FastHttpUser, POST /invocations (the container contract, no signing)
    SignedUser    FastHttpUser, each request signed by recommender.loadgen.sigv4.SigV4Signer
                  with credentials from recommender.aws.credentials_provider, POST
                  /endpoints/bench/invocations: what recommender.loadgen.roles.Invocation does
    Boto3User     one boto3 sagemaker-runtime client per user, invoke_endpoint, reported
                  through Locust's request event

Run by bench_signing.py, never imported by it (importing Locust patches the process with
gevent). A probe measures a steady window: from WARMUP_S after every user has spawned, for
MEASURE_S, it takes the request/failure counts, this process's CPU seconds, the server's
($BENCH_SERVER_PIDS) and the whole machine's busy CPU seconds at both ends, writes the
differences to $BENCH_OUT as JSON, and stops the test.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

import gevent
import psutil
from locust import FastHttpUser, User, constant, events, task

BODY = b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
ENDPOINT = "bench"
REGION = "us-east-1"
WARMUP_S = float(os.environ.get("BENCH_WARMUP_S", "2"))
MEASURE_S = float(os.environ.get("BENCH_MEASURE_S", "10"))
BUSY_FIELDS = ("user", "nice", "system")  # process time; interrupts are nobody's


class UnsignedUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def invoke(self) -> None:
        self.client.post(
            "/invocations",
            data=BODY,  # type: ignore[arg-type]
            headers={"Content-Type": "application/json"},
            name="invocations",
        )


class SignedUser(FastHttpUser):
    wait_time = constant(0)
    _signer: Any = None  # one per process, as in recommender.loadgen.roles

    def on_start(self) -> None:
        if SignedUser._signer is None:
            # As recommender.loadgen.roles._signer: boto3 only after Locust's patching.
            from recommender.aws import credentials_provider
            from recommender.loadgen.sigv4 import Credentials, SigV4Signer

            frozen = credentials_provider(None)
            SignedUser._signer = SigV4Signer(REGION, lambda: Credentials(*frozen()))
        self.netloc = self.host.split("://", 1)[1].rstrip("/")
        self.path = f"/endpoints/{ENDPOINT}/invocations"

    @task
    def invoke(self) -> None:
        # As recommender.loadgen.roles.Invocation.headers_for: the Host header is signed, so sent.
        base = {"Content-Type": "application/json", "Host": self.netloc}
        headers = self._signer.sign("POST", self.netloc, self.path, BODY, base)
        self.client.post(
            self.path,
            data=BODY,  # type: ignore[arg-type]
            headers=headers,
            name="invocations",
        )


class Boto3User(User):
    wait_time = constant(0)

    def on_start(self) -> None:
        import boto3
        from botocore.config import Config

        self.runtime = boto3.client(
            "sagemaker-runtime",
            region_name=REGION,
            endpoint_url=self.host,
            # No retries: a failure must show as one, not as a slower success.
            config=Config(retries={"total_max_attempts": 1}, max_pool_connections=1),
        )

    @task
    def invoke(self) -> None:
        start = time.perf_counter()
        exception: BaseException | None = None
        length = 0
        try:
            response = self.runtime.invoke_endpoint(
                EndpointName=ENDPOINT, Body=BODY, ContentType="application/json"
            )
            length = len(response["Body"].read())
        except Exception as exc:  # any botocore error is a failed request
            exception = exc
        self.environment.events.request.fire(
            request_type="POST",
            name="invocations",
            response_time=(time.perf_counter() - start) * 1000.0,
            response_length=length,
            exception=exception,
            context={},
        )


def _cpu_s(processes: list[psutil.Process]) -> float:
    total = 0.0
    for p in processes:
        try:
            t = p.cpu_times()
        except psutil.Error:  # gone: its share is lost, not fatal
            continue
        total += t.user + t.system
    return total


def _sample(environment: Any, server: list[psutil.Process]) -> dict[str, float]:
    machine = psutil.cpu_times()
    total = environment.stats.total
    return {
        "t": time.monotonic(),
        "requests": total.num_requests,
        "failures": total.num_failures,
        "cpu_s": _cpu_s([psutil.Process()]),
        "server_cpu_s": _cpu_s(server),
        # Every core's process time: what is neither Locust nor the server is other work.
        "machine_busy_s": sum(getattr(machine, f, 0.0) for f in BUSY_FIELDS),
    }


def _probe(environment: Any) -> None:
    pids = os.environ.get("BENCH_SERVER_PIDS", "")
    server = [psutil.Process(int(pid)) for pid in pids.split(",") if pid]
    gevent.sleep(WARMUP_S)
    first = _sample(environment, server)
    gevent.sleep(MEASURE_S)
    last = _sample(environment, server)
    errors = {
        f"{e.method} {e.name}: {e.error}": e.occurrences for e in environment.stats.errors.values()
    }
    result = {
        "users": environment.runner.user_count,
        "seconds": last["t"] - first["t"],
        "requests": last["requests"] - first["requests"],
        "window_failures": last["failures"] - first["failures"],
        "cpu_s": last["cpu_s"] - first["cpu_s"],
        "server_cpu_s": last["server_cpu_s"] - first["server_cpu_s"],
        "machine_busy_s": last["machine_busy_s"] - first["machine_busy_s"],
        "total_requests": last["requests"],
        "total_failures": last["failures"],
        "errors": errors,
    }
    with open(os.environ["BENCH_OUT"], "w") as f:
        json.dump(result, f)
    environment.runner.quit()


_ENVIRONMENT: list[Any] = []  # set at init: spawning_complete is not given it


@events.init.add_listener
def _on_init(environment: Any, **_kw: Any) -> None:
    _ENVIRONMENT.append(environment)


@events.spawning_complete.add_listener
def _on_spawned(user_count: int, **_kw: Any) -> None:
    gevent.spawn(_probe, _ENVIRONMENT[0])
