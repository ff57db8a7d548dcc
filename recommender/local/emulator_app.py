"""The AWS emulator's HTTP server: moto's own WSGI app, with our extensions in front of it.

moto 5 implements SageMaker endpoints, CloudWatch and Application Auto Scaling, but not every
API this tool needs (inference components, for one). Rather than fake those in tests, the
emulator answers them itself, over the same HTTP, in the same JSON protocol, so botocore (and
`aws.py`) cannot tell them from moto's: an `Extension` names the operations it answers by
their `X-Amz-Target` (e.g. `SageMaker.DescribeInferenceComponent`), and every other request
goes on to moto unchanged. An extension may also adjust moto's own checks where moto lags
AWS (`install`), in this process only.

Adding an emulated API: write an Extension (see `local/ic_emulator.py`) and add it to
`extensions()`. Run with `python -m recommender.local.emulator_app -H 127.0.0.1 -p PORT`
(`local/emulator.py` does, on a free loopback port).
"""

from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

JsonHandler = Callable[["Call"], Mapping[str, Any]]
StartResponse = Callable[..., Any]

_REGION = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/")
DEFAULT_REGION = "us-east-1"
RESET_PATH = "/moto-api/reset"  # moto's: empties every service


class ApiError(Exception):
    """An AWS error answer: botocore reads `__type` as the error code."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


class Call:
    """One JSON-protocol request to an extension: its operation, input and region."""

    def __init__(self, operation: str, params: Mapping[str, Any], region: str) -> None:
        self.operation = operation
        self.params = params
        self.region = region

    def require(self, name: str) -> Any:
        if name not in self.params:
            raise ApiError("ValidationException", f"{name} is required for {self.operation}")
        return self.params[name]


class Extension:
    """Operations the emulator answers itself, by X-Amz-Target; the state is per instance
    and guarded by `lock` (the server is threaded)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()

    def operations(self) -> Mapping[str, JsonHandler]:
        raise NotImplementedError

    def install(self) -> None:
        """Adjust moto in this process where it lags AWS (called once, before serving)."""

    def reset(self) -> None:
        """Forget what it holds, as moto's `POST /moto-api/reset` forgets moto's state (so
        one emulator can serve many tests, emptied between them)."""


class ExtendedEmulator:
    """WSGI: the extensions' operations answered here, everything else by `fallback` (moto)."""

    def __init__(self, fallback: Callable[..., Iterable[bytes]],
                 extensions: Iterable[Extension]) -> None:  # fmt: skip
        self.fallback = fallback
        self.extensions = list(extensions)
        self.handlers: dict[str, JsonHandler] = {}
        for ext in self.extensions:
            self.handlers.update(ext.operations())

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == RESET_PATH and environ.get("REQUEST_METHOD") == "POST":
            for ext in self.extensions:  # then moto resets its own
                ext.reset()
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        handler = self.handlers.get(target)
        if handler is None or environ.get("REQUEST_METHOD") != "POST":
            return self.fallback(environ, start_response)
        m = _REGION.search(str(environ.get("HTTP_AUTHORIZATION", "")))
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        try:
            params = json.loads(raw or b"{}")
            if not isinstance(params, dict):
                raise ApiError("SerializationException", "the request body is not a JSON object")
            out: Mapping[str, Any] = handler(
                Call(target.split(".", 1)[-1], params, m.group(1) if m else DEFAULT_REGION)
            )
            status, body = 200, dict(out)
        except json.JSONDecodeError:
            status, body = 400, {"__type": "SerializationException", "message": "bad JSON"}
        except ApiError as exc:
            status, body = exc.status, {"__type": exc.code, "message": exc.message}
        data = json.dumps(body, default=str).encode()
        reason = {200: "OK", 400: "Bad Request"}.get(status, "Error")
        start_response(f"{status} {reason}", [("Content-Type", "application/x-amz-json-1.1"),
                                              ("Content-Length", str(len(data)))])  # fmt: skip
        return [data]


def extensions() -> list[Extension]:
    """Every extension, fresh (each server process has its own state)."""
    from recommender.local.activities_emulator import ScalingActivities
    from recommender.local.cw_emulator import PercentileStatistics
    from recommender.local.ic_emulator import InferenceComponents
    from recommender.local.serverless_emulator import ProvisionedConcurrency

    return [InferenceComponents(), ProvisionedConcurrency(), ScalingActivities(),
            PercentileStatistics()]  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Serve moto with the extensions until SIGTERM/SIGINT."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import run_simple

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args(argv)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: sys.exit(0))
    exts = extensions()
    for ext in exts:
        ext.install()
    app = ExtendedEmulator(DomainDispatcherApplication(create_backend_app), exts)
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    # Through the package, not this __main__ copy: extensions raise the package's ApiError.
    from recommender.local import emulator_app

    emulator_app.main()
