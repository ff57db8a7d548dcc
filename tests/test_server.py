"""The local model server, run as a real subprocess the way the CLI runs it."""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest

from recommender.errors import ConfigError
from recommender.local.server import ServerConfig, serve, validate
from tests.test_fuzz_cli import check_clean, guarded, invoke

__all__ = ["guarded"]  # the fixture, used by name

ROOT = Path(__file__).resolve().parents[1]
# No proxy from the environment may get between the tests and 127.0.0.1.
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
SETOSA, VERSICOLOR, VIRGINICA = [5.1, 3.5, 1.4, 0.2], [6.0, 2.9, 4.5, 1.5], [6.7, 3.0, 5.2, 2.3]


def _gone(procs: list[psutil.Process], timeout: float) -> bool:
    """True once every process has exited (a zombie nobody reaps counts as exited)."""
    deadline = time.monotonic() + timeout
    while True:
        alive = []
        for proc in procs:
            with contextlib.suppress(psutil.NoSuchProcess):
                if proc.status() != psutil.STATUS_ZOMBIE:
                    alive.append(proc)
        if not alive or time.monotonic() > deadline:
            return not alive
        time.sleep(0.05)


@contextlib.contextmanager
def running_server(stop: signal.Signals = signal.SIGTERM, **options: Any) -> Iterator[str]:
    args = "".join(f", {key}={value!r}" for key, value in options.items())
    code = (
        "from recommender.local.server import ServerConfig, serve; "
        f"serve(ServerConfig(port=0{args}), ready=lambda u: print(u, flush=True))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    try:
        readable, _, _ = select.select([proc.stdout], [], [], 60)
        url = proc.stdout.readline().strip() if readable else ""
        assert url.startswith("http://127.0.0.1:"), f"no URL from server (exit {proc.poll()})"
        workers = psutil.Process(proc.pid).children(recursive=True)
        assert len(workers) == options.get("instances", 1)
        yield url
    finally:
        proc.send_signal(stop)
        try:
            exit_code = proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("server did not exit within 5 s of the stop signal") from None
    assert exit_code == 0
    assert _gone(workers, timeout=2), "server left worker processes behind"


def call(
    url: str,
    path: str = "/invocations",
    body: bytes | str | None = None,
    content_type: str = "application/json",
    accept: str | None = None,
) -> tuple[int, bytes]:
    data = body.encode() if isinstance(body, str) else body
    headers = {"Content-Type": content_type, **({"Accept": accept} if accept else {})}
    request = urllib.request.Request(url + path, data=data, headers=headers)
    try:
        with OPENER.open(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def stats(url: str) -> dict[str, Any]:
    status, body = call(url, "/stats")
    assert status == 200
    result: dict[str, Any] = json.loads(body)
    return result


@pytest.fixture(scope="module")
def iris_url() -> Iterator[str]:
    with running_server(model="sklearn", concurrency=4, service_time_ms=100) as url:
        yield url


def test_ping(iris_url: str) -> None:
    assert call(iris_url, "/ping")[0] == 200


@pytest.mark.parametrize(
    "payload",
    [SETOSA, [SETOSA, VIRGINICA], {"instances": [SETOSA, VIRGINICA]}, {"instances": SETOSA}],
    ids=["row", "rows", "instances", "instances-flat"],
)
def test_json_predictions(iris_url: str, payload: Any) -> None:
    status, body = call(iris_url, body=json.dumps(payload))
    assert status == 200
    predictions = json.loads(body)["predictions"]
    expected = ["setosa", "virginica"][: len(predictions)]
    assert [p["label"] for p in predictions] == expected
    assert predictions[0]["class"] == 0
    assert sum(predictions[0]["probabilities"]) == pytest.approx(1.0)


def test_csv_in_csv_out_on_runtime_path(iris_url: str) -> None:
    from urllib.parse import urlsplit

    from recommender.loadgen.sigv4 import Credentials, SigV4Signer

    body = "\n".join(",".join(map(str, row)) for row in (SETOSA, VERSICOLOR, VIRGINICA))
    path = "/endpoints/my-endpoint/invocations"
    # Like SageMaker's runtime, the runtime path refuses unsigned calls.
    status, answer = call(iris_url, path, body, "text/csv", accept="text/csv")
    assert (status, json.loads(answer)) == (403, {"message": "Missing Authentication Token"})
    signed = SigV4Signer("us-east-1", lambda: Credentials("AKID", "secret")).sign(
        "POST", urlsplit(iris_url).netloc, path, body.encode(),
        {"Content-Type": "text/csv", "Accept": "text/csv"},
    )  # fmt: skip
    request = urllib.request.Request(iris_url + path, data=body.encode(), headers=signed)
    with OPENER.open(request, timeout=10) as response:
        assert response.status == 200
        assert response.read().decode().splitlines() == ["setosa", "versicolor", "virginica"]


def test_iris_sample_is_valid_package_data(iris_url: str) -> None:
    lines = (resources.files("recommender.local") / "iris_sample.jsonl").read_text().splitlines()
    assert len(lines) == 20
    labels: set[str] = set()
    with ThreadPoolExecutor(4) as pool:  # the server's 4 slots at 100 ms each
        for status, body in pool.map(lambda line: call(iris_url, body=line), lines):
            assert status == 200, body
            labels.update(p["label"] for p in json.loads(body)["predictions"])
    assert labels == {"setosa", "versicolor", "virginica"}


@pytest.mark.parametrize(
    ("body", "content_type", "fragment"),
    [
        ("{not json", "application/json", "not valid JSON"),
        ("[]", "application/json", "no rows"),
        ('{"rows": [[1, 2, 3, 4]]}', "application/json", 'no "instances" key'),
        ("[[1, 2, 3]]", "application/json", "row 1 has 3 values"),
        ('[[1, 2, 3, 4], [1, "2", 3, 4]]', "application/json", "row 2 has '2'"),
        ("[1, 2, true, 4]", "application/json", "not a finite number"),
        ("", "text/csv", "empty CSV body"),
        ("1,2,3,4\n1,2,x,4\n", "text/csv", "row 2 has 'x'"),
        ("1,2,3,4,5", "text/csv", "row 1 has 5 values"),
    ],
)
def test_bad_payload_is_400_with_reason(
    iris_url: str, body: str, content_type: str, fragment: str
) -> None:
    before = stats(iris_url)
    status, answer = call(iris_url, body=body, content_type=content_type)
    assert status == 400
    error = json.loads(answer)["error"]
    assert fragment in error and "expected rows of 4 numbers" in error and "\n" not in error
    after = stats(iris_url)
    assert after["bad_request"] == before["bad_request"] + 1
    assert after["served"] == before["served"]


def test_unsupported_content_type_is_415(iris_url: str) -> None:
    status, answer = call(iris_url, body="5.1 3.5 1.4 0.2", content_type="text/plain")
    assert status == 415
    error = json.loads(answer)["error"]
    assert "text/plain" in error and "application/json" in error and "text/csv" in error


def test_service_time_includes_model_work(iris_url: str) -> None:
    host, port = iris_url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    headers = {"Content-Type": "application/json"}
    durations = []
    for _ in range(3):  # keep-alive, so connecting is off the clock
        start = time.perf_counter()
        conn.request("POST", "/invocations", json.dumps([SETOSA]), headers)
        response = conn.getresponse()
        response.read()
        durations.append(time.perf_counter() - start)
        assert response.status == 200
    conn.close()
    # Every call holds the 100 ms of model work; the fastest shows it is not counted twice.
    # (Only the fastest: a shared CI machine can stall any one call by a scheduler slice.)
    assert all(d >= 0.100 for d in durations) and min(durations) < 0.150, durations


def test_full_queue_answers_503() -> None:
    with running_server(model="sleep", concurrency=1, service_time_ms=200, max_queue=2) as url:
        barrier = threading.Barrier(8)
        results: list[tuple[int, bytes]] = []

        def client() -> None:
            barrier.wait()
            results.append(call(url, body=b"anything", content_type="application/octet-stream"))

        threads = [threading.Thread(target=client) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        statuses = sorted(status for status, _ in results)
        # One request in the slot plus two queued are served; the rest arrive while the
        # queue is full (they all land well within the 200 ms the first one holds the slot).
        assert statuses.count(200) >= 3 and statuses.count(503) >= 1, statuses
        assert statuses.count(200) + statuses.count(503) == 8
        for status, body in results:
            expected = (
                {"ok": True}
                if status == 200
                else {"error": "instance overloaded: queue full (max_queue=2)"}
            )
            assert json.loads(body) == expected
        counts = stats(url)
        assert (counts["served"], counts["rejected_503"]) == (
            statuses.count(200),
            statuses.count(503),
        )


async def _saturate(url: str, clients: int, warmup: float, measure: float) -> float:
    """Completions per second over `measure` s, after `warmup` s, of `clients` keep-alive loops."""
    loop = asyncio.get_running_loop()
    done: list[float] = []
    start = loop.time()
    stop = start + warmup + measure
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:

        async def client() -> None:
            while loop.time() < stop:
                async with session.post(f"{url}/invocations", data=b"{}") as response:
                    await response.read()
                    assert response.status == 200
                done.append(loop.time())

        await asyncio.gather(*(client() for _ in range(clients)))
    return sum(start + warmup <= t < stop for t in done) / measure


@pytest.mark.serial
def test_saturated_instance_serves_its_capacity() -> None:
    config = ServerConfig(concurrency=4, service_time_ms=20)
    with running_server(model="sleep", concurrency=4, service_time_ms=20) as url:
        rps = asyncio.run(_saturate(url, clients=64, warmup=0.5, measure=1.5))
    assert 0.95 * config.capacity_rps <= rps <= 1.02 * config.capacity_rps, rps


def test_instances_share_the_port_and_stop_on_sigint() -> None:
    with running_server(stop=signal.SIGINT, model="sleep", instances=2, service_time_ms=1) as url:
        seen = {}
        for _ in range(64):  # every call is a new connection, hashed to an instance
            answer = stats(url)
            seen[answer["instance"]] = answer["pid"]
            if len(seen) == 2:
                break
        assert sorted(seen) == [0, 1]
        assert seen[0] != seen[1]

        # The port is taken: a second server refuses it instead of sharing it.
        port = int(url.rsplit(":", 1)[1])
        with pytest.raises(ConfigError, match=f"--port {port} .* not available"):
            serve(ServerConfig(port=port, model="sleep"))


def test_workers_die_with_a_killed_server() -> None:
    code = (
        "from recommender.local.server import ServerConfig, serve; "
        "serve(ServerConfig(port=0, model='sleep', instances=2), "
        "ready=lambda u: print(u, flush=True))"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None
    try:
        assert proc.stdout.readline().startswith("http://")
        workers = psutil.Process(proc.pid).children()
        assert len(workers) == 2
    finally:
        proc.kill()
        proc.wait()
    assert _gone(workers, timeout=3)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"concurrency": 0}, "--concurrency must be >= 1 (got 0)"),
        ({"instances": 0}, "--instances must be >= 1 (got 0)"),
        ({"port": 70000}, "--port must be between 0 and 65535 (got 70000)"),
        ({"service_time_ms": 0.0}, "--service-time-ms must be a positive number (got 0.0)"),
        ({"service_time_ms": float("nan")}, "--service-time-ms must be a positive number"),
        ({"max_queue": -1}, "--max-queue must be >= 0 (got -1)"),
        ({"model": "xgboost"}, "--model must be sklearn or sleep or llm (got 'xgboost')"),
        ({"host": ""}, "--host must be an address to bind"),
        ({"service_time_dist": "gamma"}, "--service-time-dist must be det, exp or "
         "lognormal:CV with CV > 0 (got 'gamma')"),
        ({"service_time_dist": "lognormal:0"}, "--service-time-dist must be det"),
        ({"service_time_dist": "lognormal:nan"}, "--service-time-dist must be det"),
        ({"service_time_dist": "lognormal"}, "--service-time-dist must be det"),
        ({"service_time_dist": "exp:2"}, "--service-time-dist must be det"),
        ({"seed": -1}, "--seed must be >= 0 (got -1)"),
        ({"model": "llm", "service_time_dist": "exp"},
         "--service-time-dist must be det with --model llm (got 'exp')"),
    ],
)
def test_validate_rejects_bad_config(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate(ServerConfig(**options))
    assert info.value.message.startswith(message)
    assert info.value.hint
    assert "\n" not in info.value.one_line()


def test_validate_accepts_defaults_and_capacity_is_n_c_over_s() -> None:
    validate(ServerConfig())
    validate(ServerConfig(service_time_dist="lognormal:0.5", seed=7, model="sleep"))
    validate(ServerConfig(service_time_dist="exp", seed=0))
    assert ServerConfig().capacity_rps == pytest.approx(200.0)
    config = ServerConfig(instances=3, concurrency=2, service_time_ms=50)
    assert config.capacity_rps == pytest.approx(120.0)


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--service-time-dist", "gamma"], "Error: --service-time-dist must be det, exp or "
         "lognormal:CV with CV > 0 (got 'gamma') (e.g. --service-time-dist lognormal:0.5)\n"),
        (["--seed", "-3"], "Error: --seed must be >= 0 (got -3) (any whole number from 0 "
         "replays the same draws)\n"),
        (["--async", "--endpoint-name", "e", "--output-s3", "s3://b/o", "--service-time-dist",
          "exp"], "Error: --service-time-dist must be det with --async (the asynchronous "
         "endpoint holds each request exactly S)\n"),
    ],
)  # fmt: skip
def test_serve_refuses_a_bad_service_time_law_in_one_line(
    guarded: list[str], argv: list[str], error: str
) -> None:
    argv = ["serve", "--port", "0", "--model", "sleep", *argv]
    code, stdout, stderr = invoke(argv)
    check_clean(argv, code, stdout, stderr, guarded)
    assert (code, stderr) == (2, error), stdout
