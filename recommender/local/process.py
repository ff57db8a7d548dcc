"""Start `recommender serve` as a real subprocess and stop it cleanly (demo and tests)."""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from recommender.errors import EndpointError
from recommender.local.asyncserver import AsyncServerConfig
from recommender.local.server import ServerConfig

READY = re.compile(r"Listening on (http://\S+)")


@contextmanager
def running_server(config: ServerConfig, timeout: float = 60.0) -> Iterator[str]:
    """Yield the base URL of a server started with `config`; stop it on exit."""
    cmd = [
        sys.executable, "-m", "recommender", "serve",
        "--host", config.host, "--port", str(config.port),
        "--instances", str(config.instances), "--concurrency", str(config.concurrency),
        "--service-time-ms", str(config.service_time_ms), "--model", config.model,
        "--max-queue", str(config.max_queue), "--service-time-dist", config.service_time_dist,
    ]  # fmt: skip
    if config.seed is not None:
        cmd += ["--seed", str(config.seed)]
    if config.keepalive_s is not None:
        cmd += ["--keepalive-s", str(config.keepalive_s)]
    if config.overlap:
        cmd += ["--overlap", str(config.overlap)]
    if (e := config.serverless) is not None:
        cmd += ["--serverless", "--max-concurrency", str(e.max_concurrency),
                "--provisioned-concurrency", str(e.provisioned_concurrency),
                "--cold-start-ms", str(e.cold_start_ms), "--idle-seconds", str(e.idle_seconds),
                "--memory-mb", str(e.memory_mb)]  # fmt: skip
    if config.model == "llm":
        q = config.llm
        cmd += ["--max-batch", str(q.max_batch), "--step-ms", str(q.step_ms),
                "--step-growth", str(q.growth), "--prefill-ms-per-token",
                str(q.prefill_ms_per_token),
                "--max-new-tokens", str(q.default_max_new_tokens)]  # fmt: skip
    if config.fault_control:
        cmd.append("--fault-control")
    if config.publish is not None:
        p = config.publish
        cmd += ["--publish-metrics", "--endpoint-name", p.endpoint, "--variant", p.variant,
                "--metrics-period", str(p.period), "--region", p.region]  # fmt: skip
        if p.aws_endpoint_url:
            cmd += ["--aws-endpoint-url", p.aws_endpoint_url]
    with running_command(cmd, "the local model server", timeout, "[serve] ") as url:
        yield url


@contextmanager
def running_command(cmd: list[str], what: str, timeout: float, prefix: str) -> Iterator[str]:
    """Start `cmd` in its own session, yield the URL it prints as "Listening on URL", pass
    its output on to stderr (`prefix` before each line); stop it and its group on exit."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        url = _wait_ready(proc, timeout, what)
        # Keep reading its output, or a chatty server would block on a full pipe.
        threading.Thread(target=_drain, args=(proc, prefix), daemon=True).start()
        yield url
    finally:
        stop_group(proc, timeout=30.0)
        if proc.stdout:
            proc.stdout.close()


@contextmanager
def running_async_server(config: AsyncServerConfig, timeout: float = 60.0) -> Iterator[str]:
    """Yield the base URL of `recommender serve --async` started with `config`."""
    c = config.server
    cmd = [
        sys.executable, "-m", "recommender", "serve", "--async",
        "--host", c.host, "--port", str(c.port), "--instances", str(c.instances),
        "--concurrency", str(c.concurrency), "--service-time-ms", str(c.service_time_ms),
        "--model", c.model, "--endpoint-name", config.endpoint, "--variant", config.variant,
        "--output-s3", config.output_path, "--metrics-period", str(config.metrics_period),
        "--region", config.region,
    ]  # fmt: skip
    if config.failure_path:
        cmd += ["--failure-s3", config.failure_path]
    if config.aws_endpoint_url:
        cmd += ["--aws-endpoint-url", config.aws_endpoint_url]
    if config.publish:
        cmd += ["--publish-metrics"]
    with running_command(cmd, "the local asynchronous endpoint", timeout, "[serve] ") as url:
        yield url


def stop_group(proc: subprocess.Popen[Any], timeout: float = 10.0) -> None:
    """SIGTERM to a subprocess started in its own session (its workers too), SIGKILL if it
    has not gone within `timeout`."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _drain(proc: subprocess.Popen[str], prefix: str) -> None:
    assert proc.stdout is not None
    with contextlib.suppress(ValueError, OSError):  # closed at exit
        for line in proc.stdout:
            sys.stderr.write(f"{prefix}{line}")


def _wait_ready(proc: subprocess.Popen[str], timeout: float, what: str) -> str:
    assert proc.stdout is not None
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if not sel.select(timeout=0.5):
                if proc.poll() is not None:
                    break
                continue
            line = proc.stdout.readline()
            if not line:
                break
            seen.append(line.strip())
            match = READY.search(line)
            if match:
                return match.group(1)
    last = seen[-1] if seen else "no output"
    raise EndpointError(f"{what} did not start: {last}")
