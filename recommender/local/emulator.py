"""The AWS emulator (moto's server) as a real HTTP server on a free loopback port.

It serves moto's own app behind `local/emulator_app.py`, which answers the APIs moto lacks
(inference components) and forwards everything else to moto.

The demo and the tests talk to it through the same `aws.py` code that talks to AWS. It
accepts things AWS rejects (see shared/DESIGN.md), so our own validation must not rely on it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from recommender.errors import RecommenderError
from recommender.local.process import stop_group

# Credentials the emulator accepts; never real ones, so nothing real is ever sent to it.
EMULATOR_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@contextmanager
def running_emulator(timeout: float = 60.0) -> Iterator[str]:
    """Yield the URL of a fresh moto server; stop it on exit."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "recommender.local.emulator_app", "-H", "127.0.0.1", "-p",
         str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
        env={**os.environ, "MOTO_PORT": str(port)},  # as moto.server sets it
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, url, timeout)
        # moto's server logs every request to stderr: unread, the pipe fills (~900 requests,
        # a few minutes of the hosting layer's polling) and the emulator blocks for good.
        threading.Thread(target=_discard, args=(proc,), daemon=True).start()
        yield url
    finally:
        stop_group(proc)
        if proc.stderr:
            proc.stderr.close()


def _discard(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ValueError, OSError):  # closed at exit
        while proc.stderr and proc.stderr.read(65536):
            pass


def _wait_ready(proc: subprocess.Popen[bytes], url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
            last = err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}"
            raise RecommenderError(
                f"the AWS emulator did not start: {last}",
                "install the local extra: pip install 'sagemaker-recommender[local]'",
            )
        try:
            with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise RecommenderError(f"the AWS emulator did not answer at {url} within {timeout:.0f}s")
