"""Faults the local model server injects on cue: `recommender serve --fault-control`.

The fault-injection tests (and anyone trying the tool's failure paths) post a schedule to
`/faults` on loopback; every instance of the server reads it from shared memory, so the
schedule holds whichever instance a connection lands on:

    curl -X POST 127.0.0.1:8080/faults -d '{"faults": [
        {"kind": "error", "type": "ThrottlingException", "start": 0, "seconds": 2},
        {"kind": "reset", "start": 3, "seconds": 1, "share": 0.5},
        {"kind": "pause", "start": 5, "seconds": 2},
        {"kind": "dribble", "start": 8, "seconds": 2, "dribble_seconds": 1.5},
        {"kind": "kill", "start": 11}]}'
    curl -X DELETE 127.0.0.1:8080/faults        # back to normal

Times are seconds from the post. Each fault applies to the invocations received in its
window [start, start + seconds) (no `seconds`: until cleared), at most `count` of them
per instance when given, and a `share` of them (every k-th, deterministically):

- error: answer SageMaker's error `type` (runtime_errors.STATUS) in its wire format: the
  `x-amzn-ErrorType` header and a JSON body, as the runtime does;
- reset: close the connection with a TCP reset instead of answering;
- pause: hold the request until the window ends, then serve it;
- dribble: serve it, then send the answer a byte at a time over `dribble_seconds`;
- kill: the instance process dies (SIGKILL) at `start`, taking the server down with it.
"""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing
import os
import signal
import socket
import struct
import time
import uuid
from dataclasses import asdict, dataclass
from typing import Any

from aiohttp import web

from recommender import runtime_errors

KINDS = ("error", "reset", "pause", "dribble", "kill")
BOARD_BYTES = 1 << 16
LOOPBACK = ("127.0.0.1", "::1")


@dataclass(frozen=True)
class Fault:
    kind: str
    start: float  # epoch seconds
    end: float  # epoch seconds; inf: until cleared
    type: str | None = None  # error
    count: int | None = None
    share: float = 1.0
    dribble_seconds: float = 1.0

    def active(self, now: float) -> bool:
        return self.start <= now < self.end


def parse_schedule(doc: Any, now: float) -> tuple[Fault, ...]:
    """The faults of a posted schedule, times made absolute; ValueError says what is wrong."""
    if not isinstance(doc, dict) or not isinstance(doc.get("faults"), list):
        raise ValueError('expected {"faults": [{"kind": ..., "start": s, "seconds": s}, ...]}')
    out = []
    for n, f in enumerate(doc["faults"], 1):
        if not isinstance(f, dict):
            raise ValueError(f"fault {n} is not an object")
        unknown = set(f) - {"kind", "type", "start", "seconds", "count", "share",
                            "dribble_seconds"}  # fmt: skip
        if unknown:
            raise ValueError(f"fault {n} has unknown keys {sorted(unknown)}")
        kind = f.get("kind")
        if kind not in KINDS:
            raise ValueError(f"fault {n}: kind must be one of {', '.join(KINDS)} (got {kind!r})")
        start, seconds = _number(f, "start", n, 0.0), _number(f, "seconds", n, math.inf)
        share, dribble = _number(f, "share", n, 1.0), _number(f, "dribble_seconds", n, 1.0)
        count = f.get("count")
        if count is not None and (type(count) is not int or count < 0):
            raise ValueError(f"fault {n}: count must be a whole number >= 0")
        if not 0 < share <= 1:
            raise ValueError(f"fault {n}: share must be in (0, 1]")
        error = f.get("type")
        if kind == "error" and error not in runtime_errors.STATUS:
            raise ValueError(f"fault {n}: type must be one of "
                             f"{', '.join(runtime_errors.STATUS)} (got {error!r})")  # fmt: skip
        out.append(Fault(kind, now + start, now + start + seconds, error if kind == "error"
                         else None, count, share, dribble))  # fmt: skip
    return tuple(out)


def _number(f: dict[str, Any], key: str, n: int, default: float) -> float:
    value = f.get(key, default)
    if type(value) not in (int, float) or math.isnan(value) or value < 0:
        raise ValueError(f"fault {n}: {key} must be a number >= 0 (got {value!r})")
    return float(value)


class FaultBoard:
    """The schedule in memory shared by the server's instances (made before they fork)."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("fork")
        self._data = ctx.Array("c", BOARD_BYTES)
        self._version = ctx.RawValue("L", 0)

    def post(self, faults: tuple[Fault, ...]) -> None:
        data = json.dumps([_to_json(f) for f in faults]).encode()
        if len(data) >= BOARD_BYTES:
            raise ValueError(f"the schedule is too long ({len(data)} bytes)")
        with self._data.get_lock():
            self._data.value = data  # type: ignore[attr-defined]  # a "c" array has .value
            self._version.value += 1

    @property
    def version(self) -> int:
        return int(self._version.value)

    def read(self) -> tuple[Fault, ...]:
        with self._data.get_lock():
            raw = bytes(self._data.value)  # type: ignore[attr-defined]
        return tuple(_from_json(d) for d in json.loads(raw or b"[]"))


def _to_json(f: Fault) -> dict[str, Any]:
    d = asdict(f)
    d["end"] = None if math.isinf(f.end) else f.end
    return d


def _from_json(d: dict[str, Any]) -> Fault:
    return Fault(**{**d, "end": math.inf if d["end"] is None else d["end"]})


class Faults:
    """One instance's view of the board: which fault, if any, the next request meets."""

    def __init__(self, board: FaultBoard) -> None:
        self.board = board
        self._version = -1
        self._faults: tuple[Fault, ...] = ()
        self._seen: list[int] = []  # requests in each fault's window
        self._hit: list[int] = []  # requests each fault was applied to
        self.injected: dict[str, int] = {}
        self._kill: asyncio.TimerHandle | None = None

    def refresh(self) -> None:
        version = self.board.version
        if version == self._version:
            return
        self._version = version
        self._faults = self.board.read()
        self._seen, self._hit = [0] * len(self._faults), [0] * len(self._faults)
        if self._kill is not None:
            self._kill.cancel()
            self._kill = None
        kills = [f.start for f in self._faults if f.kind == "kill"]
        if kills:
            delay = max(0.0, min(kills) - time.time())
            self._kill = asyncio.get_running_loop().call_later(delay, _die)

    def pick(self, now: float) -> Fault | None:
        """The first fault active now that takes this request (count, share)."""
        self.refresh()
        for i, f in enumerate(self._faults):
            if f.kind == "kill" or not f.active(now):
                continue
            if f.count is not None and self._hit[i] >= f.count:
                continue
            self._seen[i] += 1
            seen = self._seen[i]
            if math.floor(seen * f.share) == math.floor((seen - 1) * f.share):
                continue  # every 1/share-th request only
            self._hit[i] += 1
            self.injected[f.kind] = self.injected.get(f.kind, 0) + 1
            return f
        return None

    async def watch(self, stop: asyncio.Event) -> None:
        """Notice a new schedule even while no request comes (a kill is due on time)."""
        while not stop.is_set():
            self.refresh()
            await asyncio.sleep(0.05)

    async def control(self, request: web.Request) -> web.Response:
        """GET: the schedule; POST: replace it; DELETE: clear it. Loopback callers only."""
        if request.remote not in LOOPBACK:
            return web.json_response({"error": "fault control is for loopback callers"},
                                     status=403)  # fmt: skip
        if request.method == "POST":
            try:
                faults = parse_schedule(json.loads(await request.read() or b"null"), time.time())
                self.board.post(faults)
            except ValueError as exc:  # JSON errors included
                return web.json_response({"error": str(exc)}, status=400)
        elif request.method == "DELETE":
            self.board.post(())
        self.refresh()
        return web.json_response({"faults": [_to_json(f) for f in self._faults],
                                  "injected": self.injected})  # fmt: skip


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def error_response(error_type: str, endpoint: str | None) -> web.Response:
    """SageMaker runtime's answer for `error_type`: status, `x-amzn-ErrorType` (with the
    namespace real responses carry) and a JSON body; ModelError with the container's
    status and message, as the runtime wraps a container's failure."""
    where = endpoint or "local"
    body: dict[str, Any] = {"message": {
        runtime_errors.THROTTLING: "Rate exceeded",
        runtime_errors.MODEL_NOT_READY: f"Model for endpoint {where} is not ready",
        runtime_errors.SERVICE_UNAVAILABLE: "Service Unavailable",
        runtime_errors.INTERNAL_FAILURE: "An internal failure occurred",
        runtime_errors.VALIDATION_ERROR: "Inspect your request and try again",
    }.get(error_type, error_type)}  # fmt: skip
    if error_type == runtime_errors.MODEL_ERROR:
        original = '{"error": "injected model failure"}'
        body = {
            "ErrorCode": "CLIENT_ERROR_FROM_MODEL",
            "LogStreamArn": f"arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/"
                            f"Endpoints/{where}",
            "Message": f"Received server error (500) from primary with message \"{original}\"",
            "OriginalMessage": original,
            "OriginalStatusCode": 500,
        }  # fmt: skip
    headers = {
        runtime_errors.HEADER: f"{error_type}:{runtime_errors.CORAL_NAMESPACE}",
        "x-amzn-RequestId": str(uuid.uuid4()),
    }
    return web.json_response(body, status=runtime_errors.STATUS[error_type], headers=headers)


def reset(request: web.Request) -> None:
    """Drop the connection with a TCP RST (SO_LINGER 0), as a crashing proxy does."""
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


async def dribble(request: web.Request, answer: web.Response, seconds: float) -> web.StreamResponse:
    """Send `answer` a byte at a time, spread over `seconds`."""
    body = answer.body if isinstance(answer.body, bytes) else b""
    out = web.StreamResponse(status=answer.status)
    out.content_type = answer.content_type
    out.content_length = len(body)
    await out.prepare(request)
    step = seconds / max(1, len(body))
    for i in range(len(body)):
        await out.write(body[i : i + 1])
        await asyncio.sleep(step)
    await out.write_eof()
    return out
