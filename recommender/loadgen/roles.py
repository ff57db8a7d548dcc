"""The part a Locust process plays in a load test: one class per role, holding its state.

- LocalRole: the whole test in one process. It runs the stage controller, releases send
  times into a queue that paced users take from, folds Locust's request events into
  per-second records and appends them to the run directory, flushing as it goes (an
  interrupted run keeps what it measured).
- MasterRole (Locust's distributed mode): runs the stage controller alone, sends the config
  and every stage decision to the workers, and merges the workers' per-second records
  exactly (recommender.loadgen.merge) into the run directory.
- WorkerRole: gets the config and the stages from the master, sends its share of the
  offered rate, and sends its per-second records to the master every second.

`harness` makes one at Locust's init; its event hooks call the role's methods. What two
roles share is a base class for the sending side (`Sender`: local and worker, on the
per-request path) and a `RunDirWriter` for the writing side (local and master).
Runs only inside the Locust subprocess (gevent); it imports no Locust itself.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import gevent
import psutil
from gevent.event import Event
from gevent.queue import Queue

from recommender import runs
from recommender.errors import LoadTestError
from recommender.loadgen.config import CONFIG_ENV, LoadgenConfig, Signing
from recommender.loadgen.driver import Driver
from recommender.loadgen.merge import SecondMerger
from recommender.loadgen.payloads import load_payloads, prompt_tokens
from recommender.loadgen.recorder import Recorder, error_kind, response_error_type
from recommender.loadgen.requestlog import RequestLog
from recommender.loadgen.sigv4 import Credentials, SigV4Signer
from recommender.plan import Slo
from recommender.search import Controller, Follower

MSG_CONFIG = "recommender_config"  # master -> workers: what to send, and how
MSG_STAGES = "recommender_stages"  # master -> workers: t0 and the stages decided so far
# worker -> master: "send me the config": it came before the worker could take it (below)
MSG_CONFIG_WANTED = "recommender_config_wanted"
MSG_SECONDS = "recommender_seconds"  # worker -> master: flushed per-second records
MSG_REFUSED = "recommender_refused"  # worker -> master: it will not take part (and why)
FINISH_GRACE = 5.0  # seconds the master waits for the workers' last records
FINAL_UPTO = 10**9  # a worker's "I have sent everything"
_START_HINT = "start it with `recommender run` or `recommender loadtest`"


class Invocation:
    """What each request sends: the path, the run's headers (SigV4-signed for a SageMaker
    endpoint) and the bodies in turn. Empty until the process has its config."""

    def __init__(self, config: LoadgenConfig | None = None, bodies: Sequence[bytes] = ()) -> None:
        self.path = "/invocations" if config is None else config.path
        self.host = "" if config is None else config.host
        self.headers: dict[str, str] = {} if config is None else dict(config.headers)
        self.signer = None if config is None or config.sigv4 is None else _signer(config.sigv4)
        self._bodies = itertools.cycle(bodies)
        # --stream: (event-stream frames?, token format) for the users; None: whole answers.
        self.stream: tuple[bool, str] | None = None
        self._tokens_in: dict[bytes, int] = {}
        if config is not None and config.stream:
            self.stream = (config.framed, config.token_format)
            self._tokens_in = {b: prompt_tokens(b) for b in set(bodies)}

    def input_tokens(self, body: bytes) -> int:
        """The prompt's approximate tokens (recommender.tokens), counted once per body."""
        return self._tokens_in.get(body, 0)

    def next_body(self) -> bytes:
        return next(self._bodies)

    def headers_for(self, path: str, body: bytes, headers: dict[str, str] | None) -> dict[str, str]:
        base = self.headers if headers is None else headers
        if self.signer is None:
            return base
        # The signature covers the Host header, so it is sent explicitly.
        return self.signer.sign("POST", self.host, path, body, {**base, "Host": self.host})


def _signer(signing: Signing) -> SigV4Signer:
    # Imported here, after Locust's gevent patching: boto3 imported before it breaks.
    from recommender.aws import credentials_provider

    frozen = credentials_provider(signing.profile)
    return SigV4Signer(signing.region, lambda: Credentials(*frozen()))


def config_from_env() -> LoadgenConfig:
    """A local or master process's config, from the file the runner wrote."""
    config = LoadgenConfig.from_env()
    if config is None:
        raise LoadTestError(f"no load test config: ${CONFIG_ENV} is not set", _START_HINT)
    return config


def _payload_bodies(config: LoadgenConfig) -> tuple[bytes, ...]:
    if config.payload is None:
        raise LoadTestError("the load test config names no payload", _START_HINT)
    return load_payloads(Path(config.payload), template=config.payload_template()).bodies


def _start_clock(align_seconds: int) -> float:
    # Start on the next whole multiple of align_seconds (after spawning has had a moment),
    # so the run's seconds coincide with CloudWatch's periods. Users wait for it.
    return float(math.ceil((time.time() + 1.0) / align_seconds) * align_seconds)


def _deciding_driver(
    config: LoadgenConfig, t0: float, flush: Callable[[float], None], decided: Callable[[], None]
) -> Driver:
    """The driver of the process that decides the stages (local, master): `flush` makes the
    seconds before a stage boundary final, `decided` follows each decision."""
    controller = config.controller.controller(config.slo)
    return Driver(controller, t0, arrivals=config.arrivals, seed=config.seed, flush=flush,
                  on_decision=decided)  # fmt: skip


class Role:
    """Every hook with what a process that takes no part in it does: nothing. Also the role
    before Locust's init has said which one this process plays."""

    def _stop_for_disk(self, error: str) -> None:
        """The run directory's disk is full: stop the load (the runner says why)."""
        print(f"Error: cannot write the run directory ({error}); stopping the load",
              file=sys.stderr, flush=True)  # fmt: skip
        gevent.spawn(self.runner.quit)  # not from the writer's greenlet: quitting kills it

    def __init__(self, runner: Any = None) -> None:
        self.runner = runner
        self.invocation = Invocation()
        self.t0: float | None = None
        self.driver: Driver | None = None
        self.interrupted = False

    def on_test_start(self) -> None:
        return

    def on_request(
        self, response_time: float, exception: BaseException | None, context: Any, response: Any
    ) -> None:
        return

    def next_ticket(self) -> tuple[float, int] | None:
        return None

    def stopping(self) -> None:
        """Locust is stopping the users (the plan's end, an interrupt)."""
        return

    def interrupt(self) -> None:
        """Ctrl-C (SIGINT, from the runner): send nothing more, and end the shape at its
        next tick, so Locust stops the users the way it does at the plan's end (requests
        in flight complete and are recorded). Called in a greenlet of its own: SIGINT's
        default, a KeyboardInterrupt raised in whichever greenlet happens to run, could
        kill a user mid-request, served by the endpoint but never recorded."""
        self.interrupted = True
        self.stopping()

    def release(self) -> None:
        return

    def finish(self) -> None:
        return

    def tick(self) -> tuple[int, float] | None:
        return None


class RunDirWriter:
    """Local and master: what the run directory gets from the Locust process.

    A write that fails (the disk is full) leaves no torn line behind: latency.jsonl is cut
    back to its last whole line, the space the runner reserved (runs.RESERVE_FILE) is given
    up so the seconds still to come and the final files fit, and `on_disk_error` is told
    once, so the role stops the load: a run that cannot record must not go on loading the
    endpoint. Seconds that still cannot be written are tallied in generator.json."""

    def __init__(self, config: LoadgenConfig,
                 on_disk_error: Callable[[str], None] | None = None) -> None:  # fmt: skip
        if config.run_dir is None:
            raise LoadTestError("the load test config names no run directory", _START_HINT)
        self.config = config
        self.run_dir = config.run_dir
        self.on_disk_error = on_disk_error
        self.disk_error: str | None = None
        self.unwritten = {"seconds": 0, "requests": 0}
        path = self.run_dir / runs.LATENCY_FILE
        self._latency: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    @property
    def closed(self) -> bool:
        return self._latency is None

    def second(self, record: dict[str, Any]) -> None:
        """One more final second, written at once: an interrupted run keeps it."""
        assert self._latency is not None
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        for _ in range(2):  # again once the reserved space is free
            good = os.lseek(self._latency, 0, os.SEEK_END)
            try:
                _write_all(self._latency, line)
                return
            except OSError as exc:
                with contextlib.suppress(OSError):
                    os.ftruncate(self._latency, good)
                self._disk_failed(exc)
        self.unwritten["seconds"] += 1
        self.unwritten["requests"] += int(record["requests"])

    def _disk_failed(self, exc: OSError) -> None:
        (self.run_dir / runs.RESERVE_FILE).unlink(missing_ok=True)
        if self.disk_error is None:
            self.disk_error = f"{exc.strerror or exc}"
            if self.on_disk_error is not None:
                self.on_disk_error(self.disk_error)

    def search(self, controller: Controller) -> None:
        """The stages as played and every decision, rewritten at each decision, so an
        interrupted run keeps them."""
        data = {
            "mode": self.config.controller.mode,
            "control": getattr(self.config.controller.plan, "control", "rate"),
            "stages": [{"rps": r, "start": a, "end": b} for r, a, b in controller.stages],
            "decisions": [d.to_dict() for d in controller.decisions],
            "done": controller.done,
        }
        self._replace(runs.SEARCH_FILE, json.dumps(data, indent=1))

    def generator(self, t0: float | None, extra: dict[str, Any]) -> None:
        data = {"t0": t0, "pid": os.getpid(), "users": self.config.users,
                "cpu_count": psutil.cpu_count(), **extra}  # fmt: skip
        if self.disk_error is not None:
            data.update(disk_error=self.disk_error, unwritten=self.unwritten)
        self._replace(runs.GENERATOR_FILE, json.dumps(data))

    def _replace(self, name: str, text: str) -> None:
        """Whole or not at all (readers see the old file or the new one)."""
        tmp = self.run_dir / f".{name}.tmp"
        for _ in range(2):
            try:
                tmp.write_text(text)
                tmp.replace(self.run_dir / name)
                return
            except OSError as exc:
                tmp.unlink(missing_ok=True)
                self._disk_failed(exc)

    def close(self) -> None:
        if self._latency is not None:
            os.close(self._latency)
            self._latency = None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def share_of_cap(max_requests: int, share: float) -> int:
    """A process's part of the request cap: its share, rounded down, so that the processes
    together never send more than the cap (0: it sends nothing, and says it reached its
    part when its first send falls due)."""
    return math.floor(max_requests * share + 1e-9)


class Sender(Role):
    """Local and worker: the arrival process (send times into a queue that paced users take
    from) and the recording of every request into per-second records."""

    def __init__(self, runner: Any) -> None:
        super().__init__(runner)
        # Send times for the users, then None once the load is over (`_end_of_load`).
        self.tickets: Queue[tuple[float, int] | None] = Queue()
        self.recorder: Recorder | None = None
        self.request_log: RequestLog | None = None  # --keep-requests
        self.unsent = 0  # tickets dropped at the end of the plan (or at an interrupt)
        self.issued = 0  # tickets the arrival process released: the requests intended
        self._stopping = False  # no more sends: Locust is stopping the users
        self._ended = False  # the end of the load is in the ticket queue
        self._process = psutil.Process()
        # Closed loop (--control concurrency): at most `level` requests in flight, each
        # user sending its next one as soon as its last is answered.
        self.closed_loop = False
        self.level: tuple[int, int] = (0, -1)  # (requests in flight allowed, stage index)
        self.in_flight = 0
        self._slot_freed = Event()
        self.cap: int | None = None  # this process's share of the request cap
        self.capped = False  # the cap was reached: nothing more is released

    def _start_sending(
        self,
        config: LoadgenConfig,
        driver: Driver,
        sink: Callable[[dict[str, Any]], None],
        requests_file: str,
    ) -> None:
        self.driver = driver
        self.closed_loop = getattr(config.controller.plan, "control", "rate") == "concurrency"
        if config.max_requests is not None:
            self.cap = share_of_cap(config.max_requests, driver.share)
        self._cpu()  # the first psutil sample only primes the counter
        self.recorder = Recorder(driver.t0, driver.stage_at, sink, self._cpu, config.slo)
        if config.keep_requests:
            # The run directory; a worker on another machine: its own cwd.
            where = Path(config.requests_dir or ".")
            self.request_log = RequestLog((where if where.is_dir() else Path(".")) / requests_file)
        gevent.spawn(self._flusher)
        gevent.spawn(self._sender)

    def _cpu(self) -> float:
        return float(self._process.cpu_percent(interval=None))

    def stopping(self) -> None:
        # An interrupt stops the load where it is: a user waiting for its next send leaves
        # (the tickets left are counted as not sent when recording stops).
        self._stopping = True
        self._end_of_load()

    def _end_of_load(self) -> None:
        """Wake the users waiting for a send: there will be none. One None at the queue's
        end, which each user that takes it puts back for the next (sends queued before it
        are still taken, and counted as not sent once the plan is over)."""
        if not self._ended:
            self._ended = True
            self.tickets.put(None)

    def next_ticket(self) -> tuple[float, int] | None:
        if self.closed_loop:
            return self._next_slot()
        while True:
            if self._stopping:
                return None
            # No timeout: a pool sized for the top rate holds thousands of idle users, and
            # each waking twice a second to look cost the event loop more than the sends
            # (3,840 users, 22 ms of its own lateness p95 at 40 rps). The end of the load
            # wakes them instead (`_end_of_load`).
            ticket: tuple[float, int] | None = self.tickets.get()
            if ticket is None:
                self.tickets.put(None)  # for the next waiting user: the load is over
                return None
            if self._stopping:
                self.tickets.put(ticket)  # not sent: counted with the rest
                return None
            if self.driver is not None and self.driver.done:
                # The plan is over: sends still queued (the generator fell behind) are not
                # made, or the endpoint would get load past the plan's end. They are counted.
                self.unsent += 1 + self._drop_queued()
                self._end_of_load()
                return None
            return ticket

    def _next_slot(self) -> tuple[float, int] | None:
        """Closed loop: wait for room under the stage's concurrency, then send now (the
        intended time is the actual one: no schedule to fall behind)."""
        while True:
            driver = self.driver
            if self._stopping or (driver is not None and driver.done):
                return None
            level, index = self.level
            if driver is not None and self.in_flight < level and time.time() >= driver.t0:
                if self._reached_cap():
                    return None
                self.in_flight += 1  # no yield between the test and this: gevent is cooperative
                self.issued += 1
                return time.time(), index
            self._slot_freed.clear()
            self._slot_freed.wait(timeout=0.25)

    def release(self) -> None:
        """A user's request is over (closed loop: its slot is free for the next)."""
        if self.closed_loop:
            self.in_flight = max(0, self.in_flight - 1)
            self._slot_freed.set()

    def on_request(
        self, response_time: float, exception: BaseException | None, context: Any, response: Any
    ) -> None:
        recorder = self.recorder
        if recorder is None:
            return
        status = getattr(response, "status_code", None)
        end, latency_ms = time.time(), float(response_time or 0.0)
        context = context or {}
        intended = context.get("intended")
        kind = response_error_type(response, status) if exception is not None else None
        error = error_kind(exception, status, kind)
        streamed = context if "tokens_in" in context else None
        reconnects = getattr(context.get("send"), "reconnects", 0)  # users.Send
        recorder.record(end, latency_ms, intended, error, streamed, kind, context.get("free"),
                        reconnects)  # fmt: skip
        log = self.request_log
        if log is not None and self.t0 is not None and self.driver is not None:
            # The stage it was sent in (one completing after the plan's end still has one).
            stage = self.driver.stage_at(int((intended or end) - self.t0))
            log.add(intended, end - latency_ms / 1000.0, end, latency_ms, stage, error,
                    streamed, kind)  # fmt: skip

    def _sender(self) -> None:
        """Release each ticket at its intended time (closed loop: follow the stages' levels)."""
        driver = self.driver
        assert driver is not None
        while self.closed_loop and not driver.done and not self._stopping:
            driver.advance_to(time.time())
            cur = driver.controller.current()
            level = (0, -1) if cur is None else (int(cur[1]), cur[0])
            if level != self.level:
                self.level = level
                self._slot_freed.set()  # a higher level lets waiting users go
            gevent.sleep(0.02)
        while not driver.done and not self._stopping:
            now = time.time()
            for ticket in driver.due(now):
                if self._reached_cap():
                    self._end_of_load()
                    return
                self.tickets.put(ticket)
                self.issued += 1
            nxt = driver.next_time(time.time())
            # Wake at least every 0.25 s: an abort can move the stage's end earlier, and a
            # worker waits for the master's next stage.
            wait = 0.05 if nxt is None else nxt - time.time()
            gevent.sleep(max(0.0, min(wait, 0.25)))
        self._end_of_load()

    def _reached_cap(self) -> bool:
        """True once this process released its share of the request cap: it releases
        nothing more, and its users leave once the sends already released are made (the
        load ends by itself; the runner marks the run `stopped`)."""
        if self.cap is None or self.issued < self.cap:
            return False
        if not self.capped:
            self.capped = True
            print(f"Request cap reached ({self.cap} sends): stopping the load",
                  file=sys.stderr, flush=True)  # fmt: skip
        return True

    def _flusher(self) -> None:
        while self.recorder is not None:
            gevent.sleep(1.0 - (time.time() - (self.t0 or 0.0)) % 1.0 + 0.01)
            if self.recorder is not None:
                self.recorder.flush(time.time())
            if self.request_log is not None:
                self.request_log.flush()
            self._flushed()

    def _flushed(self) -> None:
        """After each second's flush."""

    def _drop_queued(self) -> int:
        """Empty the queue of sends never made; how many (the end of the load stays)."""
        dropped = 0
        while not self.tickets.empty():
            if self.tickets.get_nowait() is not None:
                dropped += 1
        if self._ended:
            self.tickets.put(None)
        return dropped

    def _stop_recording(self) -> None:
        # Tickets still queued when the users stopped (an interrupt) were never sent.
        self.unsent += self._drop_queued()
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            recorder.flush()
        log, self.request_log = self.request_log, None
        if log is not None:
            log.close()


class LocalRole(Sender):
    def __init__(self, runner: Any, config: LoadgenConfig) -> None:
        super().__init__(runner)
        self.config = config
        self.invocation = Invocation(config, _payload_bodies(config))
        self.writer: RunDirWriter | None = None

    def on_test_start(self) -> None:
        if self.t0 is not None:
            return
        config = self.config
        self.t0 = _start_clock(config.align_seconds)
        driver = _deciding_driver(config, self.t0, self._flush, self._decided)
        self.writer = writer = RunDirWriter(config, self._stop_for_disk)
        self._start_sending(config, driver, self._append, runs.requests_file())
        writer.search(driver.controller)
        writer.generator(self.t0, {"processes": 1})

    def _append(self, record: dict[str, Any]) -> None:
        """One more final second into the run directory and the controller."""
        assert self.writer is not None and self.driver is not None
        self.writer.second(record)
        self.driver.on_second(record)

    def _flush(self, now: float) -> None:
        if self.recorder is not None:
            self.recorder.flush(now)

    def _decided(self) -> None:
        assert self.writer is not None and self.driver is not None
        self.writer.search(self.driver.controller)

    def finish(self) -> None:
        self._stop_recording()
        if self.writer is not None:
            self.writer.generator(self.t0, {"processes": 1, "unsent_at_end": self.unsent,
                                            "issued": self.issued,
                                            "capped": self.capped})  # fmt: skip
            self.writer.close()

    def tick(self) -> tuple[int, float] | None:
        if self.interrupted or self.capped or (self.driver is not None and self.driver.done):
            return None
        return self.config.users, float(max(self.config.users, 1))


class MasterRole(Role):
    def __init__(self, runner: Any, config: LoadgenConfig) -> None:
        super().__init__(runner)
        self.config = config
        self.bodies = _payload_bodies(config)  # for the workers; the master sends nothing
        self.writer: RunDirWriter | None = None
        self.merger: SecondMerger | None = None
        self.done_at: float | None = None
        self.unsent_by_worker: dict[str, int] = {}
        self.issued_by_worker: dict[str, int] = {}
        self.capped_workers: set[str] = set()  # those that released their share of the cap
        self.lost: dict[str, int] = {}
        self.refused: list[dict[str, str]] = []  # workers that would not take part, and why
        runner.register_message(MSG_SECONDS, self._on_worker_seconds)
        runner.register_message(MSG_REFUSED, self._on_worker_refused)
        runner.register_message(MSG_CONFIG_WANTED, self._on_config_wanted)

    def on_test_start(self) -> None:
        if self.t0 is not None:
            return
        config = self.config
        self.t0 = _start_clock(config.align_seconds)
        self.driver = _deciding_driver(config, self.t0, self._flush, self._decided)
        self.writer = RunDirWriter(config, self._stop_for_disk)
        self.merger = SecondMerger(expected=config.workers)
        self.runner.send_message(MSG_CONFIG, self._config_message())
        self._decided()
        self.writer.generator(self.t0, {"processes": config.workers, "role": "master"})
        gevent.spawn(self._clock)

    def _config_message(self) -> dict[str, Any]:
        return self.config.to_message(self.bodies[: self.config.bodies_count])

    def _on_config_wanted(self, environment: Any, msg: Any, **_kw: Any) -> None:
        """A worker missed the config (see WorkerRole): send it again, to that worker."""
        if self.t0 is not None:
            self.runner.send_message(MSG_CONFIG, self._config_message(),
                                     client_id=str(msg.data["worker"]))  # fmt: skip

    def _flush(self, _now: float) -> None:
        self._merge_final()

    def _decided(self) -> None:
        """Save the stages and decisions, and tell the workers."""
        assert self.writer is not None and self.driver is not None
        self.writer.search(self.driver.controller)
        self._broadcast_stages()

    def _broadcast_stages(self) -> None:
        assert self.driver is not None
        c = self.driver.controller
        data = {"t0": self.t0, "stages": [list(s) for s in c.stages], "done": c.done,
                "share": 1.0 / max(1, self.config.workers),
                "warmup": c.warmup_seconds, "slo": self.config.slo.to_dict()}  # fmt: skip
        self.runner.send_message(MSG_STAGES, data)

    def _clock(self) -> None:
        """Cross stage boundaries as time passes; repeat the stages now and then, so a
        worker that missed a message (or joined late) catches up."""
        driver = self.driver
        assert driver is not None
        last_broadcast = 0.0
        while not driver.done:
            before = [tuple(s) for s in driver.controller.stages]
            driver.advance_to(time.time())
            self._merge_final()
            if [tuple(s) for s in driver.controller.stages] != before:
                self._decided()  # an abort moved the stage's end
            if time.time() - last_broadcast > 1.0:
                self._broadcast_stages()
                last_broadcast = time.time()
            self._note_lost_workers()
            gevent.sleep(0.1)
        self._broadcast_stages()
        self.done_at = time.time()

    def _note_lost_workers(self) -> None:
        assert self.merger is not None
        for client_id, client in getattr(self.runner, "clients", {}).items():
            if getattr(client, "state", None) == "missing" and client_id not in self.lost:
                self.merger.lose(client_id)
                tally = self.merger.workers.get(client_id)
                self.lost[client_id] = tally.upto  # type: ignore[union-attr]

    def _on_worker_refused(self, environment: Any, msg: Any, **_kw: Any) -> None:
        """A worker refused the run (another version): the load would fall short of the
        plan, so the whole run stops; the runner reports why (generator.json `refused`)."""
        self.refused.append({k: str(v) for k, v in dict(msg.data).items()})
        if self.writer is not None and not self.writer.closed:
            self.writer.generator(self.t0, {"processes": self.config.workers, "role": "master",
                                            "refused": self.refused})  # fmt: skip
        environment.process_exit_code = 1
        gevent.spawn(self.runner.quit)  # not from this handler: quitting kills its greenlet

    def _on_worker_seconds(self, environment: Any, msg: Any, **_kw: Any) -> None:
        if self.merger is None:
            return
        data = msg.data
        self.merger.add(data["worker"], data["records"], int(data["upto"]))
        self.unsent_by_worker[data["worker"]] = int(data.get("unsent", 0))
        self.issued_by_worker[data["worker"]] = int(data.get("issued", 0))
        if data.get("capped"):
            self.capped_workers.add(str(data["worker"]))
        self._merge_final()

    def _merge_final(self, everything: bool = False) -> None:
        writer, driver = self.writer, self.driver
        if self.merger is None or writer is None or writer.closed or driver is None:
            return
        for record in self.merger.final(everything):
            writer.second(record)
            driver.on_second(record)

    def finish(self) -> None:
        merger, writer = self.merger, self.writer
        if merger is None or writer is None or writer.closed:
            return
        # Locust may declare the workers stopped before their last records arrive: wait
        # (bounded) for every live worker's final message, so no measured second is lost.
        deadline = time.time() + FINISH_GRACE
        while time.time() < deadline and any(
            t.upto < FINAL_UPTO for t in merger.workers.values() if t.lost_at is None
        ):
            gevent.sleep(0.05)
        self._merge_final(everything=True)
        workers = {
            w: {
                "requests": t.requests,
                "successes": t.ok,
                "cpu_percent_max": t.cpu_max,
                "lost_after_second": t.lost_at,
            }  # fmt: skip
            for w, t in merger.workers.items()
        }
        unsent = sum(self.unsent_by_worker.values())
        extra: dict[str, Any] = {"refused": self.refused} if self.refused else {}
        writer.generator(self.t0, {"processes": self.config.workers, "role": "master",
                                   "workers": workers, "unsent_at_end": unsent,
                                   "issued": sum(self.issued_by_worker.values()),
                                   "capped": bool(self.capped_workers), **extra})  # fmt: skip
        writer.close()

    def tick(self) -> tuple[int, float] | None:
        driver = self.driver
        if self.interrupted:
            return None
        if self.config.workers and len(self.capped_workers) >= self.config.workers:
            return None  # every worker sent its share of the request cap: the load is over
        if driver is not None and driver.done:
            # Wait a moment after the last stage for the workers' last seconds.
            end = driver.controller.stages[-1][2] if driver.controller.stages else 0.0
            caught_up = self.merger is not None and self.merger.final_upto >= math.floor(end) - 1
            if caught_up or time.time() - (self.done_at or time.time()) > FINISH_GRACE:
                return None
        return self.config.users, float(max(self.config.users, 1))


class WorkerRole(Sender):
    def __init__(self, runner: Any) -> None:
        super().__init__(runner)
        self.config: LoadgenConfig | None = None  # from the master, at the test's start
        self.outbox: list[dict[str, Any]] = []  # records not sent yet
        self.asked_at = 0.0  # when it last asked the master for the config
        self.refused = False  # it refused the master's config (another version)
        runner.register_message(MSG_CONFIG, self._on_config)
        runner.register_message(MSG_STAGES, self._on_stages)

    def _on_config(self, environment: Any, msg: Any, **_kw: Any) -> None:
        try:
            self.config, bodies = LoadgenConfig.from_message(msg.data)
        except LoadTestError as exc:
            self._refuse(environment, exc)
            return
        self.invocation = Invocation(self.config, bodies)

    def _refuse(self, environment: Any, exc: LoadTestError) -> None:
        """Say why in one line (this worker's output), tell the master, and quit with a
        non-zero status."""
        print(f"Error: {exc.one_line()}", file=sys.stderr, flush=True)
        self.refused = True
        self.runner.send_message(MSG_REFUSED, {"worker": self.runner.client_id,
                                               "message": exc.message, "hint": exc.hint or ""})
        environment.process_exit_code = exc.exit_code
        gevent.spawn(self.runner.quit)  # not from this handler: quitting kills its greenlet

    def _on_stages(self, environment: Any, msg: Any, **_kw: Any) -> None:
        data, config = msg.data, self.config
        if config is None:
            # The master sends its config first, but a worker says it is ready (Locust's
            # runner, at its start) before Locust's init lets it take the message: a busy
            # worker dropped it ("Unknown message type"). The stages come again every
            # second, so ask for the config again, at most once a second.
            if time.time() - self.asked_at >= 1.0 and not self.refused:
                self.asked_at = time.time()
                self.runner.send_message(MSG_CONFIG_WANTED, {"worker": self.runner.client_id})
            return
        stages, done = [tuple(s) for s in data["stages"]], bool(data["done"])
        if self.driver is not None:
            controller = self.driver.controller
            assert isinstance(controller, Follower)
            controller.update(stages, done)
            return
        # The first stages: a worker starts here, not at test_start.
        self.t0 = float(data["t0"])
        follower = Follower(Slo.from_dict(data["slo"]), float(data["warmup"]))
        follower.update(stages, done)
        driver = Driver(follower, self.t0, arrivals=config.arrivals, share=float(data["share"]),
                        seed=config.seed)  # fmt: skip
        self._start_sending(config, driver, self.outbox.append,
                            runs.requests_file(self.runner.client_id))  # fmt: skip

    def _flushed(self) -> None:
        self._send_seconds()

    def _send_seconds(self, final: bool = False) -> None:
        if self.t0 is None:
            return
        records, self.outbox[:] = list(self.outbox), []
        upto = FINAL_UPTO if final else int(time.time() - self.t0) - 1
        self.runner.send_message(MSG_SECONDS, {"worker": self.runner.client_id,
                                               "records": records, "upto": upto,
                                               "unsent": self.unsent,
                                               "issued": self.issued,
                                               "capped": self.capped})  # fmt: skip

    def finish(self) -> None:
        self._stop_recording()
        self._send_seconds(final=True)
