"""Locust users that send the plan's open-loop load. Subclass them in your own locustfile.

`InvocationsUser.invoke()` is the one request; override it to send something else. The
pacing (`paced`) takes intended send times from the run's arrival schedule, so every
subclass gets the plan's offered rate and coordinated-omission-corrected latency.
"""

from __future__ import annotations

from typing import Any

from locust import FastHttpUser, constant, task

from recommender.loadgen import harness


class InvocationsUser(FastHttpUser):
    """POSTs the run's payloads to its invocation path at the plan's rate."""

    abstract = True
    wait_time = constant(0)
    network_timeout = 60.0
    connection_timeout = 10.0
    _intended: float | None = None

    def context(self) -> dict[str, Any]:
        # Read by the recorder from each request event: when this request should have gone.
        return {"intended": self._intended}

    @task
    def paced(self) -> None:
        ticket = harness.next_ticket()  # due now, or overdue
        if ticket is None:
            return  # the load is over
        self._intended = ticket[0]
        try:
            self.invoke()
        finally:
            harness.release()

    def invoke(self) -> None:
        invocation = harness.invocation()
        path, body = invocation.path, invocation.next_body()
        self.client.post(
            path,
            data=body,  # type: ignore[arg-type]  # bytes work; the hints lag
            headers=invocation.headers_for(path, body, None),
            name="invocations",
        )
