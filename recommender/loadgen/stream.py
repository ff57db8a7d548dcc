"""Reading a streamed response as it arrives: time to first token, gaps between payload
parts, output tokens, and stream errors.

Two transports: SageMaker's InvokeEndpointWithResponseStream answers
`application/vnd.amazon.eventstream` frames, decoded with botocore's own parser
(`botocore.eventstream.EventStreamBuffer`); a container's `/invocations` answers a chunked
body. Either way the payload bytes are what the container wrote: JSON lines (LMI:
`{"token": {"text": ...}}`) or server-sent events (TGI, vLLM/OpenAI: `data: {...}` lines,
`data: [DONE]` at the end). Tokens are counted per line (`--token-format`): `jsonl` counts
every non-empty line, `sse` every `data:` line but `[DONE]`, `auto` picks by the first
line. A payload part (a frame, or one read of a chunked body) that carries at least one
token is a token arrival: TTFT is the first one's time, ITL the gaps between them.

Errors of their own kind, never successes: `ModelStreamError:<ErrorCode>`,
`InternalStreamFailure` (exception events after a 200), `StreamCutShort` (the connection
ended before the stream did), `StreamNoTokens` (a complete stream without one token:
usually the wrong --token-format).

Runs inside the Locust process; botocore's event-stream module is plain Python (no
network, no boto3), imported after Locust's gevent patching like the rest of loadgen.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from botocore.eventstream import EventStreamBuffer

TOKEN_FORMATS = ("auto", "jsonl", "sse")
EVENTSTREAM = "application/vnd.amazon.eventstream"


class StreamError(Exception):
    """A stream that failed after its 200; `kind` is the error kind the run records."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass
class StreamStats:
    """What one streamed request measured (seconds from the actual send)."""

    ttft: float | None
    gaps: list[float]
    tokens: int


class TokenCounter:
    """Counts tokens in payload bytes split anywhere (a line may span parts)."""

    __slots__ = ("_format", "_rest")

    def __init__(self, token_format: str = "auto") -> None:
        self._format = token_format
        self._rest = b""

    def feed(self, data: bytes) -> int:
        """Tokens completed by `data`."""
        data = self._rest + data if self._rest else data
        cut = data.rfind(b"\n")
        if cut < 0:
            self._rest = data
            return 0
        self._rest = data[cut + 1 :]
        return self._count(data[:cut])

    def finish(self) -> int:
        """Tokens in a last line without its newline."""
        rest, self._rest = self._rest, b""
        return self._count(rest) if rest.strip() else 0

    def _count(self, block: bytes) -> int:
        fmt = self._format
        if fmt == "auto":
            first = block.lstrip()[:5]
            if not first:
                return 0
            fmt = self._format = "sse" if first == b"data:" else "jsonl"
        if fmt == "sse":
            # "data:" lines (with or without a space), less the end marker.
            return block.count(b"data:") - block.count(b"[DONE]")
        return sum(1 for line in block.split(b"\n") if line.strip())


def _reads(raw: Any) -> Iterator[bytes]:
    """The body of a geventhttpclient response as it arrives: what is buffered, else one
    socket read. Its `read(n)` waits for n bytes, which would bunch tokens together."""
    buf = raw._body_buffer
    while True:
        if buf:
            data = bytes(buf)
            del buf[:]
            yield data
            continue
        if raw.message_complete:
            return
        sock = raw._sock
        if sock is None:
            raise StreamError("StreamCutShort", "the connection ended before the stream did")
        data = sock.recv(raw.block_size)
        if not data:
            raise StreamError("StreamCutShort", "the connection ended before the stream did")
        raw.feed(data)


def _drop(raw: Any) -> None:
    """A broken stream's connection is not reused."""
    pool, sock = getattr(raw, "_pool", None), raw._sock
    raw._sock = raw._pool = None
    if sock is not None and pool is not None:
        pool.release_socket(sock)


def read_stream(raw: Any, framed: bool, token_format: str, t_sent: float) -> StreamStats:
    """Read `raw` (geventhttpclient's response) to its end. `framed`: event-stream frames.
    Raises StreamError on a stream error; `t_sent` is the actual send (perf_counter)."""
    counter = TokenCounter(token_format)
    frames = EventStreamBuffer() if framed else None
    clock = time.perf_counter
    first: float | None = None
    last = 0.0
    gaps: list[float] = []
    tokens = 0
    try:
        for data in _reads(raw):
            n = 0
            if frames is None:
                n = counter.feed(data)
            else:
                frames.add_data(data)
                for message in frames:
                    headers = message.headers
                    if headers.get(":message-type") != "event":
                        raise _stream_exception(headers, message.payload)
                    if headers.get(":event-type") == "PayloadPart":
                        n += counter.feed(message.payload)
            if n:
                now = clock()
                if first is None:
                    first = now
                else:
                    gaps.append(now - last)
                last = now
                tokens += n
        n = counter.finish()
        if n:
            now = clock()
            first = now if first is None else first
            tokens += n
    except StreamError:
        _drop(raw)
        raise
    except Exception as exc:  # a reset connection, a bad frame (botocore's CRC check)
        _drop(raw)
        raise StreamError("StreamCutShort", f"{type(exc).__name__}: {exc}") from exc
    if not tokens:
        raise StreamError("StreamNoTokens", "the stream ended without a token "
                          "(check --token-format)")  # fmt: skip
    return StreamStats(None if first is None else first - t_sent, gaps, tokens)


def _stream_exception(headers: dict[str, Any], payload: bytes) -> StreamError:
    import json

    kind = str(headers.get(":exception-type") or headers.get(":error-code") or "StreamError")
    try:
        doc = json.loads(payload)
    except ValueError:
        doc = {}
    code = doc.get("ErrorCode") if isinstance(doc, dict) else None
    message = doc.get("Message", "") if isinstance(doc, dict) else ""
    return StreamError(f"{kind}:{code}" if code else kind, str(message))
