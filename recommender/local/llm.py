"""`recommender serve --model llm`: an LLM-like server of known capacity that streams tokens.

Each instance runs one decode loop (continuous batching, as TGI, LMI and vLLM do):

- a request takes one of the instance's B batch slots; while all B are taken, requests wait
  in a FIFO queue (beyond `max_queue` waiting, the instance answers 503 at once);
- in its slot it first prefills its prompt: `prefill_ms_per_token` x input tokens, during
  which the other sequences keep decoding (a chunked-prefill simplification);
- then it joins the decode steps: each step emits one token to every running sequence and
  lasts `step_ms x (1 + growth x (b - 1))` for b running sequences, so a fuller batch
  decodes more tokens per second in all but each sequence more slowly;
- a sequence's first token comes at the end of its first step; it leaves (freeing its slot)
  after `max_new_tokens` tokens, which the request sets.

Tokens stream back on `POST /invocations` (chunked: JSON lines `{"token": {"text": ...}}`
as LMI writes them, SSE `data:` lines as TGI does when `Accept: text/event-stream`, or
OpenAI-style chat chunks when the request has `messages`) and, behind the same SigV4 check
as InvokeEndpoint, on `POST /endpoints/E/invocations-response-stream` as the frames of
SageMaker's InvokeEndpointWithResponseStream (`application/vnd.amazon.eventstream`: one
PayloadPart event per token holding what the container would have written; a
ModelStreamError or InternalStreamFailure event on cue). Any SageMaker client, boto3's
`invoke_endpoint_with_response_stream` included, decodes them.

The truth: `capacity_rps` computes, from the parameters alone, the highest arrival rate one
instance sustains within an SLO on TTFT, ITL and end-to-end latency (see its docstring);
`concurrency_at_slo` the highest number of requests in flight (closed loop) within one.
"""

from __future__ import annotations

import asyncio
import binascii
import collections
import json
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from recommender.tokens import approx_tokens

FAULTS = ("model_stream_error", "internal_stream_failure", "cut")
STREAM_ERROR_CODES = ("ModelInvocationTimeExceeded", "StreamBroken")
WORD = " tok"  # every generated token's text: 4 characters, one approximate token


@dataclass(frozen=True)
class LlmParams:
    """The decode model of one instance (see the module docstring)."""

    max_batch: int = 16  # B: sequences decoded at once
    step_ms: float = 10.0  # one decode step with one sequence running
    growth: float = 0.02  # each further running sequence lengthens a step by this share
    prefill_ms_per_token: float = 0.1  # prompt processing before the first token
    default_max_new_tokens: int = 64  # when the request does not say

    def step_time_ms(self, b: float) -> float:
        return self.step_ms * (1.0 + self.growth * (max(b, 1.0) - 1.0))


# --- the truth ------------------------------------------------------------------------


@dataclass(frozen=True)
class SteadyState:
    """The mean-value model at an arrival rate (per instance): running sequences, ITL,
    TTFT, end-to-end latency, slots in use."""

    rps: float
    running: float
    itl_ms: float
    ttft_ms: float
    e2e_ms: float
    slots: float


def steady_state(
    p: LlmParams, rps: float, input_tokens: float, output_tokens: float
) -> SteadyState:
    """Below saturation, with evenly spaced arrivals of alike requests.

    By Little's law the decoding sequences are b = rate x N x T(b), N output tokens at step
    time T(b) = s (1 + g (b - 1)), which solves to b = rate N s (1 - g) / (1 - rate N s g).
    A sequence holds its slot for prefill P, half a step on average waiting to join, and N
    steps, so slots in use = b + rate (P + T/2); TTFT = P + T/2 + T (the first token comes
    at the end of the first step), ITL = T, end-to-end = P + T/2 + N T. Queueing adds
    nothing while slots in use stay below B; past B a queue grows without bound.
    """
    lam = rps / 1000.0  # per ms
    n, s, g = float(output_tokens), p.step_ms, p.growth
    denominator = 1.0 - lam * n * s * g
    if denominator <= 0:
        return SteadyState(rps, math.inf, math.inf, math.inf, math.inf, math.inf)
    b = lam * n * s * (1.0 - g) / denominator
    t = p.step_time_ms(b)
    prefill = p.prefill_ms_per_token * input_tokens
    return SteadyState(rps, b, t, prefill + 1.5 * t, prefill + t / 2 + n * t,
                       b + lam * (prefill + t / 2))  # fmt: skip


def capacity_rps(
    p: LlmParams,
    input_tokens: float,
    output_tokens: float,
    ttft_ms: float | None = None,
    itl_ms: float | None = None,
    e2e_ms: float | None = None,
) -> float:
    """The highest arrival rate (requests/s per instance) within the given limits.

    Every quantity of `steady_state` grows with the rate, so the answer is the largest rate
    at which slots in use stay within B and each given limit holds (bisection to 0.01%).
    With prompts of varied length, pass the mean input and output tokens (slot occupancy is
    linear in them). It is a mean-value model: with evenly spaced arrivals (the load
    generator's default) the batch stays near its mean, and past the slot limit TTFT climbs
    without bound, so the knee is sharp and a TTFT or end-to-end SLO fails right above the
    value returned. Percentiles of ITL see the batch vary by a sequence or so around its
    mean: read an ITL-bound capacity as within a few percent.
    """

    def ok(rps: float) -> bool:
        st = steady_state(p, rps, input_tokens, output_tokens)
        limits = ((st.slots, float(p.max_batch)), (st.ttft_ms, ttft_ms), (st.itl_ms, itl_ms),
                  (st.e2e_ms, e2e_ms))  # fmt: skip
        return all(limit is None or value <= limit for value, limit in limits)

    lo, hi = 0.0, 1000.0 * p.max_batch / max(output_tokens * p.step_ms, 1e-9)
    if not ok(1e-9):
        return 0.0
    while (hi - lo) > 1e-4 * hi:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ok(mid) else (lo, mid)
    return lo


@dataclass(frozen=True)
class ClosedLoop:
    """The model under closed-loop load (`--control concurrency`): k requests always in
    flight on one instance. `first_token_ms` F and `generation_ms` G are a request's time
    from its slot to its first token and to its end; `throughput_rps` = running / G."""

    k: int
    running: int
    itl_ms: float
    first_token_ms: float
    generation_ms: float
    throughput_rps: float


def closed_loop(p: LlmParams, k: int, input_tokens: float, output_tokens: float) -> ClosedLoop:
    """With k users each sending its next request the moment the last one ends.

    Up to B, every request has a slot at once and the k decode together: b = min(k, B),
    T = s (1 + g (b - 1)), a request prefills (P), waits half a step to join, and takes N
    steps: F = P + 1.5 T, G = P + T/2 + N T. Beyond B, the slots stay full and the extra
    k - B wait. Requests admitted together finish together (same N, prefills shorter than
    a step or two), so the batch turns over in rounds of G, like the sleep server's slots
    (`recommender.local.closed_loop`): see `wait_rounds`.
    """
    b = min(k, p.max_batch)
    t = p.step_time_ms(b)
    prefill = p.prefill_ms_per_token * input_tokens
    g = prefill + t / 2 + output_tokens * t
    return ClosedLoop(k, b, t, prefill + 1.5 * t, g, 1000.0 * b / g)


def wait_rounds(k: int, slots: int, quantile: float | None) -> float:
    """Whole rounds a request waits for a slot with k in flight on `slots`: the `quantile`
    (0-1], or the mean when None. Writing k = m x slots + j (0 <= j < slots), a share
    j / slots of requests wait m rounds and the rest m - 1 (none while k <= slots); the mean
    is k / slots - 1, as Little's law requires (latency k G / slots)."""
    if k <= slots:
        return 0.0
    if quantile is None:
        return k / slots - 1.0
    m, j = divmod(k, slots)
    return float(m if j / slots > 1.0 - quantile + 1e-12 else m - 1)


def concurrency_at_slo(
    p: LlmParams,
    input_tokens: float,
    output_tokens: float,
    terms: Sequence[tuple[str, float | None, float]],
) -> int:
    """The highest number of requests in flight on one instance whose every term holds;
    `terms` are (metric ttft|itl|e2e, quantile 0-1 or None for the mean, limit ms). 0 when
    even one request in flight breaks a term.

    A request that waits w rounds has TTFT w G + F and end-to-end latency w G + G; ITL is
    the step time T of the batch (the k, at most B, decode together). Every quantity grows
    with k, so the answer is the last k before the first that fails. Exact in the rounds
    picture up to a step or two of spread (prefills differ, the join waits part of a step)
    and the HTTP time; with a TTFT or end-to-end term the truth sits at a round boundary,
    where one request more moves a share 1/B of requests a whole round G later.
    """

    def ok(k: int) -> bool:
        st = closed_loop(p, k, input_tokens, output_tokens)
        for metric, quantile, limit in terms:
            w = wait_rounds(k, p.max_batch, quantile) * st.generation_ms
            value = {"ttft": w + st.first_token_ms, "itl": st.itl_ms,
                     "e2e": w + st.generation_ms}[metric]  # fmt: skip
            if value > limit:
                return False
        return True

    k = 0
    while k < 1000 * p.max_batch and ok(k + 1):
        k += 1
    return k


# --- requests ------------------------------------------------------------------------


class BadPrompt(Exception):
    """The body is not a generation request; the message says what is expected."""


@dataclass(frozen=True)
class Prompt:
    input_tokens: int
    max_new_tokens: int
    chat: bool  # OpenAI-style messages: answer with chat-completion chunks
    fault: str | None = None  # model_stream_error[:code] | internal_stream_failure | cut
    fault_after: int = 0  # tokens sent before the fault


EXPECTED = ('send {"inputs": "...", "parameters": {"max_new_tokens": N}} (TGI/LMI) or '
            '{"messages": [{"role": "user", "content": "..."}], "max_tokens": N}')  # fmt: skip


def parse_prompt(body: bytes, default_max_new_tokens: int) -> Prompt:
    try:
        doc = json.loads(body)
    except ValueError:
        raise BadPrompt(f"body is not JSON; {EXPECTED}") from None
    if not isinstance(doc, dict):
        raise BadPrompt(f"body is not a JSON object; {EXPECTED}")
    raw = doc.get("parameters")
    params: dict[str, Any] = raw if isinstance(raw, dict) else {}
    if "messages" in doc:
        messages = doc["messages"]
        if not isinstance(messages, list) or not all(
            isinstance(m, dict) and isinstance(m.get("content"), str) for m in messages
        ):
            raise BadPrompt(f'"messages" must be a list of {{"role", "content"}}; {EXPECTED}')
        text = "".join(m["content"] for m in messages)
        limit = doc.get("max_tokens", doc.get("max_completion_tokens", default_max_new_tokens))
        chat = True
    elif isinstance(doc.get("inputs"), str):
        text = doc["inputs"]
        limit = params.get("max_new_tokens", default_max_new_tokens)
        chat = False
    else:
        raise BadPrompt(f'no "inputs" text or "messages"; {EXPECTED}')
    if type(limit) is not int or limit < 1:
        raise BadPrompt(f"max_new_tokens must be a whole number >= 1 (got {limit!r})")
    fault = params.get("fault", doc.get("fault"))
    if fault is not None and (not isinstance(fault, str) or fault.split(":")[0] not in FAULTS):
        raise BadPrompt(f"fault must be one of {', '.join(FAULTS)} (got {fault!r})")
    after = params.get("fault_after", doc.get("fault_after", 0))
    return Prompt(approx_tokens(text), limit, chat, fault, int(after) if after else 0)


# --- event-stream frames (application/vnd.amazon.eventstream) -------------------------


def event_frame(headers: Mapping[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (total length, headers length, CRC32), string
    headers (type 7), payload, CRC32 of all before it. botocore has only a decoder
    (botocore.eventstream); this is its inverse for string headers, checked against it and
    against boto3's client in the tests."""
    raw = b"".join(
        struct.pack("!B", len(k)) + k + b"\x07" + struct.pack("!H", len(v)) + v
        for k, v in ((k.encode(), v.encode()) for k, v in headers.items())
    )
    total = 12 + len(raw) + len(payload) + 4
    prelude = struct.pack("!II", total, len(raw))
    prelude += struct.pack("!I", binascii.crc32(prelude))
    body = prelude + raw + payload
    return body + struct.pack("!I", binascii.crc32(body))


def payload_part(data: bytes) -> bytes:
    return event_frame({":event-type": "PayloadPart", ":content-type": "application/octet-stream",
                        ":message-type": "event"}, data)  # fmt: skip


def exception_frame(kind: str, message: str, code: str | None = None) -> bytes:
    doc: dict[str, str] = {"Message": message}
    if code is not None:
        doc["ErrorCode"] = code
    return event_frame({":exception-type": kind, ":content-type": "application/json",
                        ":message-type": "exception"}, json.dumps(doc).encode())  # fmt: skip


def token_chunk(i: int, prompt: Prompt, sse: bool) -> bytes:
    """What a container writes for token i (0-based): LMI JSON lines, TGI SSE, or OpenAI
    chat-completion chunks (SSE) for a `messages` request."""
    if prompt.chat:
        doc = {"object": "chat.completion.chunk",
               "choices": [{"index": 0, "delta": {"content": WORD}}]}  # fmt: skip
        return b"data: " + json.dumps(doc).encode() + b"\n\n"
    line = json.dumps({"token": {"id": i, "text": WORD, "special": False}}).encode()
    return b"data:" + line + b"\n\n" if sse else line + b"\n"


def chat_done(prompt: Prompt) -> bytes:
    return b"data: [DONE]\n\n" if prompt.chat else b""


# --- the decode loop ------------------------------------------------------------------


class Sequence_:
    """One request in the engine: its tokens arrive on `tokens` (the count so far; None
    when it is done)."""

    __slots__ = ("cancelled", "emitted", "prefill_s", "remaining", "tokens")

    def __init__(self, prompt: Prompt, params: LlmParams) -> None:
        self.remaining = prompt.max_new_tokens
        self.prefill_s = params.prefill_ms_per_token * prompt.input_tokens / 1000.0
        self.emitted = 0
        self.cancelled = False
        self.tokens: asyncio.Queue[int | None] = asyncio.Queue()


class Engine:
    """Continuous batching on one instance (module docstring)."""

    def __init__(self, params: LlmParams, max_queue: int) -> None:
        self.params = params
        self.max_queue = max_queue
        self.waiting: collections.deque[Sequence_] = collections.deque()
        self.joining: list[Sequence_] = []
        self.running: list[Sequence_] = []
        self.slots_used = 0
        self.steps = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def submit(self, seq: Sequence_) -> bool:
        """Queue `seq`; False when the instance is full and its queue too (503)."""
        if self.slots_used >= self.params.max_batch and len(self.waiting) >= self.max_queue:
            return False
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())
        self.waiting.append(seq)
        self._admit()
        return True

    def _admit(self) -> None:
        loop = asyncio.get_running_loop()
        while self.waiting and self.slots_used < self.params.max_batch:
            seq = self.waiting.popleft()
            if seq.cancelled:
                continue
            self.slots_used += 1
            loop.call_later(seq.prefill_s, self._join, seq)

    def _join(self, seq: Sequence_) -> None:
        self.joining.append(seq)
        self._wake.set()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        step_end = loop.time()
        while True:
            if not self.running and not self.joining:
                self._wake.clear()
                await self._wake.wait()
                step_end = loop.time()
            self.running.extend(self.joining)
            self.joining.clear()
            t = self.params.step_time_ms(len(self.running)) / 1000.0
            # A step starts when the previous one was due to end, not when the loop got
            # round to it (timer lag would otherwise lengthen every step), with the credit
            # capped at half a step so a stalled loop cannot make tokens free.
            step_end = max(step_end, loop.time() - t / 2) + t
            await asyncio.sleep(max(0.0, step_end - loop.time()))
            self.steps += 1
            still = []
            for seq in self.running:
                if seq.cancelled:
                    self.slots_used -= 1
                    continue
                seq.emitted += 1
                seq.remaining -= 1
                seq.tokens.put_nowait(seq.emitted)
                if seq.remaining <= 0:
                    seq.tokens.put_nowait(None)
                    self.slots_used -= 1
                else:
                    still.append(seq)
            self.running = still
            self._admit()


# --- HTTP ------------------------------------------------------------------------------


class LlmHandlers:
    """The LLM routes of one instance; `host` is the server's `_Instance` (counters, metrics,
    the SigV4 check)."""

    def __init__(self, host: Any, params: LlmParams) -> None:
        self.host = host
        self.params = params
        self.engine = Engine(params, host.config.max_queue)

    async def _start(self, request: web.Request) -> tuple[Prompt, Sequence_, float] | web.Response:
        loop = asyncio.get_running_loop()
        received = loop.time()
        if "endpoint" in request.match_info and not self.host.looks_signed(request):
            self.host.unsigned_403 += 1
            return web.json_response({"message": "Missing Authentication Token"}, status=403)
        try:
            prompt = parse_prompt(await request.read(), self.params.default_max_new_tokens)
        except BadPrompt as exc:
            self.host.bad_request += 1
            self.host.record(400, received, None, self.host.component(request))
            return web.json_response({"error": str(exc)}, status=400)
        seq = Sequence_(prompt, self.params)
        if not self.engine.submit(seq):
            self.host.rejected_503 += 1
            self.host.record(503, received, None, self.host.component(request))
            error = f"instance overloaded: queue full (max_queue={self.engine.max_queue})"
            return web.json_response({"error": error}, status=503)
        return prompt, seq, received

    async def invoke(self, request: web.Request) -> web.StreamResponse:
        """`/invocations` (chunked tokens) and `/endpoints/E/invocations` (the whole answer
        at the end, as InvokeEndpoint returns it)."""
        started = await self._start(request)
        if isinstance(started, web.Response):
            return started
        prompt, seq, received = started
        if "endpoint" in request.match_info:
            return await self._whole(prompt, seq, received, self.host.component(request))
        sse = prompt.chat or "text/event-stream" in request.headers.get("Accept", "")
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream" if sse else "application/jsonlines"})  # fmt: skip
        response.enable_chunked_encoding()
        await response.prepare(request)
        ok = await self._pump(request, response, prompt, seq, lambda b: b, sse)
        if ok:
            await response.write(chat_done(prompt))
            await response.write_eof()
        self.host.record(200, received, None, self.host.component(request))
        return response

    async def _whole(self, prompt: Prompt, seq: Sequence_, received: float,
                     component: str | None) -> web.Response:  # fmt: skip
        n = 0
        while (await seq.tokens.get()) is not None:
            n += 1
        self.host.served += 1
        self.host.record(200, received, None, component)
        return web.json_response({"generated_text": WORD * n,
                                  "details": {"generated_tokens": n}})  # fmt: skip

    async def invoke_stream(self, request: web.Request) -> web.StreamResponse:
        """`/endpoints/E/invocations-response-stream`: SageMaker's event-stream frames."""
        started = await self._start(request)
        if isinstance(started, web.Response):
            return started
        prompt, seq, received = started
        sse = prompt.chat or "text/event-stream" in request.headers.get("Accept", "")
        inner = "text/event-stream" if sse else "application/jsonlines"
        response = web.StreamResponse(headers={
            "Content-Type": "application/vnd.amazon.eventstream",
            "X-Amzn-SageMaker-Content-Type": inner,
            "x-Amzn-Invoked-Production-Variant": "AllTraffic"})  # fmt: skip
        response.enable_chunked_encoding()
        await response.prepare(request)
        ok = await self._pump(request, response, prompt, seq, payload_part, sse)
        if ok:
            if prompt.chat:
                await response.write(payload_part(chat_done(prompt)))
            await response.write_eof()
        self.host.record(200, received, None, self.host.component(request))
        return response

    async def _pump(self, request: web.Request, response: web.StreamResponse, prompt: Prompt,
                    seq: Sequence_, wrap: Any, sse: bool) -> bool:  # fmt: skip
        """Write each token as it comes; act out the prompt's fault. False: the stream did
        not end normally (a fault, or the client went away)."""
        try:
            while (count := await seq.tokens.get()) is not None:
                if prompt.fault and count > prompt.fault_after:
                    seq.cancelled = True
                    await self._fault(request, response, prompt)
                    return False
                await response.write(wrap(token_chunk(count - 1, prompt, sse)))
        except (ConnectionError, asyncio.CancelledError):
            seq.cancelled = True
            raise
        self.host.served += 1
        return True

    async def _fault(self, request: web.Request, response: web.StreamResponse,
                     prompt: Prompt) -> None:  # fmt: skip
        kind, _, code = (prompt.fault or "").partition(":")
        streamed = request.path.endswith("-response-stream")
        if kind == "model_stream_error" and streamed:
            code = code if code in STREAM_ERROR_CODES else "ModelInvocationTimeExceeded"
            await response.write(exception_frame("ModelStreamError", "model stream error "
                                                 "(on cue)", code))  # fmt: skip
            await response.write_eof()
        elif kind == "internal_stream_failure" and streamed:
            await response.write(exception_frame("InternalStreamFailure", "internal stream "
                                                 "failure (on cue)"))  # fmt: skip
            await response.write_eof()
        elif request.transport is not None:  # cut: the connection drops mid-stream
            request.transport.close()
