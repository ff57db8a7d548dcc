"""Locust users that send the plan's open-loop load. Subclass them in your own locustfile.

`InvocationsUser.invoke()` is the one request; override it to send something else. The
pacing (`paced`) takes intended send times from the run's arrival schedule, so every
subclass gets the plan's offered rate and coordinated-omission-corrected latency.
"""

from __future__ import annotations

import time
from typing import Any

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

    def context(self) -> dict[str, Any]:
        # Read by the recorder from each request event: when this request should have gone,
        # and since when this user was free to send it (the generator's own lateness is the
        # send's delay past the later of the two; the wait before it, the endpoint's).
        return {"intended": self._intended, "free": self._free}

    @task
    def paced(self) -> None:
        free = time.time()
        ticket = harness.next_ticket()  # due now, or overdue
        if ticket is None:
            return  # the load is over
        self._intended, self._free = ticket[0], free
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
