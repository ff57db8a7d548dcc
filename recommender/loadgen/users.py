"""Locust users that send the plan's open-loop load. Subclass them in your own locustfile.

`InvocationsUser.invoke()` is the one request; override it to send something else. The
pacing (`paced`) takes intended send times from the run's arrival schedule, so every
subclass gets the plan's offered rate and coordinated-omission-corrected latency.

A send on a kept-alive connection can cross the server's close of it as idle: the server
closes just as the request arrives, unread, and the answer is a close before any byte
(geventhttpclient's `HTTPConnectionClosed`; it drops connections whose close has already
arrived before reusing them, but not one that arrives during the send, and it retries no
POST). botocore retries such a send (urllib3's `ProtocolError` becomes
`ConnectionClosedError`, which its legacy and standard retry modes both retry, InvokeEndpoint
included), so a SageMaker client sees no error. So does this one, once: a POST that a reused
connection closes before any response byte is sent again on a fresh connection, and the
request counts as one, with its latency from its first send (and from its intended time, as
every request's), and a `reconnects` count beside the errors, never an error. A close on a
fresh connection, or on the retry, is the endpoint's failure and counts as one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from geventhttpclient.response import HTTPConnectionClosed
from locust import FastHttpUser, constant, task

from recommender.loadgen import harness
from recommender.loadgen.stream import StreamError, read_stream


class InvocationsUser(FastHttpUser):
    """POSTs the run's payloads to its invocation path at the plan's rate."""

    abstract = True
    wait_time = constant(0)
    network_timeout = 60.0
    connection_timeout = 10.0
    _intended: float | None = None
    _free: float | None = None

    def __init__(self, environment: Any) -> None:
        super().__init__(environment)
        self._send = Send()
        # FastHttpSession builds its user agent itself: the retry wraps the agent's one send.
        agent = self.client.client
        agent._urlopen = _retrying_urlopen(agent, self._sent_again)  # type: ignore[method-assign]

    def _sent_again(self) -> None:
        self._send.reconnects += 1

    def context(self) -> dict[str, Any]:
        # Read by the recorder from each request event: when this request should have gone,
        # and since when this user was free to send it (the generator's own lateness is the
        # send's delay past the later of the two; the wait before it, the endpoint's); and
        # `send`, this request's own, which counts its reconnects while it is under way
        # (Locust copies the context before the send, so a count in it would stay 0).
        return {"intended": self._intended, "free": self._free, "send": self._send}

    @task
    def paced(self) -> None:
        free = time.time()
        ticket = harness.next_ticket()  # due now, or overdue
        if ticket is None:
            return  # the load is over
        self._intended, self._free = ticket[0], free
        self._send = Send()
        try:
            self.invoke()
        finally:
            harness.release()

    def invoke(self) -> None:
        invocation = harness.invocation()
        path, body = invocation.path, invocation.next_body()
        if invocation.stream is not None:
            self.invoke_stream(path, body, invocation.headers_for(path, body, None))
            return
        self.client.post(
            path,
            data=body,  # type: ignore[arg-type]  # bytes work; the hints lag
            headers=invocation.headers_for(path, body, None),
            name="invocations",
        )

    def invoke_stream(self, path: str, body: bytes, headers: dict[str, str]) -> None:
        """POST and read the streamed answer as it arrives (recommender.loadgen.stream):
        the request event carries the end-to-end latency, and in its context the time to
        first token, the gaps between token-bearing parts and the output tokens."""
        invocation = harness.invocation()
        assert invocation.stream is not None
        framed, token_format = invocation.stream
        sent = time.perf_counter()
        with self.client.post(path, data=body, headers=headers, name="invocations",  # type: ignore[arg-type]
                              stream=True, catch_response=True) as response:  # fmt: skip
            if getattr(response, "error", None) is not None or response.status_code != 200:
                return  # Locust reports it as it would any failed request
            meta = response.request_meta
            context = meta["context"] = dict(meta["context"])
            context["tokens_in"] = invocation.input_tokens(body)
            try:
                stats = read_stream(response._response, framed, token_format, sent)
            except StreamError as exc:
                response.failure(exc)
            else:
                context["ttft"] = stats.ttft
                context["gaps"] = stats.gaps
                context["tokens_out"] = stats.tokens
                response.success()
            meta["response_time"] = (time.perf_counter() - sent) * 1000.0


class Send:
    """One request's own count of reconnects (sends again after a kept-alive connection
    closed before any response byte)."""

    __slots__ = ("reconnects",)

    def __init__(self) -> None:
        self.reconnects = 0


def _retrying_urlopen(agent: Any, reconnected: Callable[[], None]) -> Callable[[Any], Any]:
    """The agent's send, sent once more on a fresh connection when a kept-alive one closed
    before any response byte (see the module docstring)."""
    urlopen = agent._urlopen

    def send(request: Any) -> Any:
        reused = _holds_idle_connection(agent, request)
        try:
            return urlopen(request)
        except HTTPConnectionClosed:
            if not reused:
                raise
        reconnected()
        return urlopen(request)

    return send


def _holds_idle_connection(agent: Any, request: Any) -> bool:
    """Whether the send will reuse a kept-alive connection. Each user has its own pool, used
    by one greenlet, so an idle socket in it is the one the send takes. geventhttpclient's
    pool is read through private names: if they change, every send counts as reused, as
    botocore would have it (it retries a closed connection whether reused or not)."""
    try:
        client = agent.clientpool.get_client(request.url_split)
        return bool(client._connection_pool._socket_queue.qsize() > 0)
    except AttributeError:
        return True
