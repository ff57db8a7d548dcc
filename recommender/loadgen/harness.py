"""The part of a load test that lives inside the Locust subprocess(es).

Locust loads `entry.py` (which imports this module) beside the user's locustfile. At
Locust's init this module makes the one role the process plays (recommender.loadgen.roles:
local, master or worker; the config comes from $RECOMMENDER_CONFIG, or for a worker from its
master) and every Locust event hook below hands its event to that role. The hooks stay
registered here, at import, as Locust requires.

Users (recommender.loadgen.users, and the user's locustfiles) call `next_ticket`,
`next_body`, `headers_for` and `invocation`: once per request, so each is one call into
the role and nothing more.
"""

from __future__ import annotations

import signal
from typing import Any

import gevent
from locust import LoadTestShape, events
from locust.runners import MasterRunner, WorkerRunner

from recommender import histograms
from recommender.loadgen.roles import (
    Invocation,
    LocalRole,
    MasterRole,
    Role,
    WorkerRole,
    config_from_env,
)

# The bucket tables the per-second statistics read (a Python loop over ~3,000 buckets, 0.1 s
# on a slow machine): built now, not at the first second's flush, between sends.
histograms.bucket_values_us()

# Until Locust's init says which role this process plays: one that takes part in nothing.
_role: Role = Role()


# --- what users call -------------------------------------------------------------------


def next_ticket() -> tuple[float, int] | None:
    """Block until a send is due: (intended epoch time, stage). Tickets queue up while
    every user is busy, keeping their intended times (coordinated omission). None once
    the load is over, so waiting users let Locust stop them (in-flight ones finish)."""
    return _role.next_ticket()


def release() -> None:
    """The user's request is over: under --control concurrency its slot is free again."""
    _role.release()


def next_body() -> bytes:
    """The run's next request body (the payloads in turn)."""
    return _role.invocation.next_body()


def headers_for(path: str, body: bytes, headers: dict[str, str] | None = None) -> dict[str, str]:
    """The run's headers (or `headers`), SigV4-signed for this body when the target is a
    SageMaker endpoint. The signature covers the Host header, so it is sent explicitly."""
    return _role.invocation.headers_for(path, body, headers)


def invocation() -> Invocation:
    """What this process's requests send: `.path`, `.next_body()`, `.headers_for(...)`.
    One call per request instead of three (see InvocationsUser.invoke)."""
    return _role.invocation


# --- Locust's event hooks: each hands the event to the role ------------------------------


@events.init.add_listener
def _on_init(environment: Any, **_kw: Any) -> None:
    global _role
    runner = environment.runner
    if isinstance(runner, MasterRunner):
        _role = MasterRole(runner, config_from_env())
    elif isinstance(runner, WorkerRunner):
        _role = WorkerRole(runner)  # its config comes from the master
        return  # a worker leaves when its master stops it, or as Locust's own Ctrl-C says
    else:
        _role = LocalRole(runner, config_from_env())
    # The process running the shape: Ctrl-C ends the shape (see Role.interrupt).
    gevent.signal_handler(signal.SIGINT, _role.interrupt)


@events.test_start.add_listener
def _on_test_start(environment: Any, **_kw: Any) -> None:
    _role.on_test_start()


@events.request.add_listener
def _on_request(
    response_time: float,
    exception: BaseException | None = None,
    context: dict[str, Any] | None = None,
    response: Any = None,
    **_kw: Any,
) -> None:
    _role.on_request(response_time, exception, context, response)


@events.test_stopping.add_listener
def _on_test_stopping(**_kw: Any) -> None:
    _role.stopping()


def _finish(**_kw: Any) -> None:
    _role.finish()


def _on_quitting(environment: Any, **_kw: Any) -> None:
    # Locust fires `quitting` (on Ctrl-C, SIGTERM) before it stops the users: stop them
    # first, so requests in flight complete and are recorded (test_stop finishes the role)
    # instead of being served by the endpoint after the recording ended.
    if environment.runner is not None:
        environment.runner.stop()
    _role.finish()


# Both: a run stopped by the shape fires test_stop, one stopped by a signal may only quit.
events.test_stop.add_listener(_finish)
events.quitting.add_listener(_on_quitting)


class RampShape(LoadTestShape):
    """Holds the user pool until the stage controller stops, then ends the test.

    The rate is not set here: users take send times from the sender's queue. The pool is
    spawned before the run's first second (t0 waits for it). A master waits a moment
    after the last stage for the workers' last seconds.
    """

    def tick(self) -> tuple[int, float] | None:
        return _role.tick()
