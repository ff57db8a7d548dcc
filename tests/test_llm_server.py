"""`recommender serve --model llm`: its decode model, its streams (read by boto3's own
client and botocore's own parser), and its computed capacity."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.eventstream import EventStreamBuffer
from botocore.exceptions import EventStreamError

from recommender.local.llm import (
    BadPrompt,
    LlmParams,
    capacity_rps,
    closed_loop,
    concurrency_at_slo,
    event_frame,
    exception_frame,
    parse_prompt,
    steady_state,
    wait_rounds,
)
from recommender.local.process import running_server
from recommender.local.server import ServerConfig

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
PARAMS = LlmParams(max_batch=4, step_ms=20.0, growth=0.25, prefill_ms_per_token=1.0,
                   default_max_new_tokens=8)  # fmt: skip


@pytest.fixture(scope="module")
def llm_server() -> Iterator[str]:
    with running_server(ServerConfig(port=0, model="llm", max_queue=2, llm=PARAMS)) as base:
        yield base


def _client(base: str) -> Any:
    return boto3.client("sagemaker-runtime", region_name="us-east-1", endpoint_url=base,
                        aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="secret",
                        config=Config(retries={"max_attempts": 1}))  # fmt: skip


def _body(n: int, **params: Any) -> str:
    return json.dumps({"inputs": "x" * 40, "parameters": {"max_new_tokens": n, **params}})


def test_boto3_decodes_the_stream(llm_server: str) -> None:
    resp = _client(llm_server).invoke_endpoint_with_response_stream(
        EndpointName="e", Body=_body(5), ContentType="application/json")
    parts = [event["PayloadPart"]["Bytes"] for event in resp["Body"]]
    assert len(parts) == 5
    assert [json.loads(p)["token"]["id"] for p in parts] == [0, 1, 2, 3, 4]
    assert resp["ContentType"] == "application/jsonlines"


def test_boto3_sees_stream_errors_on_cue(llm_server: str) -> None:
    client = _client(llm_server)
    resp = client.invoke_endpoint_with_response_stream(
        EndpointName="e", ContentType="application/json",
        Body=_body(6, fault="model_stream_error:StreamBroken", fault_after=2))  # fmt: skip
    got = []
    with pytest.raises(EventStreamError) as err:
        for event in resp["Body"]:
            got.append(event)
    assert len(got) == 2
    assert err.value.response["Error"]["Code"] == "ModelStreamError"
    resp = client.invoke_endpoint_with_response_stream(
        EndpointName="e", Body=_body(6, fault="internal_stream_failure"),
        ContentType="application/json")  # fmt: skip
    with pytest.raises(EventStreamError, match="InternalStreamFailure"):
        list(resp["Body"])


def test_chat_request_streams_openai_chunks_and_done(llm_server: str) -> None:
    body = json.dumps({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3})
    resp = _client(llm_server).invoke_endpoint_with_response_stream(
        EndpointName="e", Body=body, ContentType="application/json")
    parts = [event["PayloadPart"]["Bytes"] for event in resp["Body"]]
    assert parts[-1] == b"data: [DONE]\n\n"
    assert all(p.startswith(b"data: {") for p in parts[:-1]) and len(parts) == 4


def test_unsigned_stream_is_refused(llm_server: str) -> None:
    req = urllib.request.Request(llm_server + "/endpoints/e/invocations-response-stream",
                                 data=_body(2).encode(), method="POST")  # fmt: skip
    with pytest.raises(urllib.error.HTTPError) as err:
        OPENER.open(req, timeout=10)
    assert err.value.code == 403


def test_chunked_tokens_arrive_one_step_apart(llm_server: str) -> None:
    """One sequence alone: TTFT = prefill (10 tokens x 1 ms) + one step; then a token
    every 20 ms (step_ms with b = 1), each as it is made, not at the end."""
    req = urllib.request.Request(llm_server + "/invocations", data=_body(6).encode(),
                                 headers={"Accept": "text/event-stream"})  # fmt: skip
    t0 = time.perf_counter()
    times, lines = [], []
    with OPENER.open(req, timeout=10) as resp:
        for line in resp:
            if line.strip():
                times.append(time.perf_counter() - t0)
                lines.append(line)
    assert len(lines) == 6 and all(x.startswith(b"data:{") for x in lines)
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    # The first token after about 30 ms; the upper bound only catches gross errors, with room
    # for a scheduler stall on a shared CI machine (one made a 100 ms call take 290 ms).
    assert 0.025 <= times[0] <= 0.5
    assert times[-1] - times[0] >= 0.05  # streamed as made: the last is steps behind the first
    assert 0.012 <= sorted(gaps)[len(gaps) // 2] <= 0.06


def test_a_full_batch_steps_slower_and_the_fifth_request_waits(llm_server: str) -> None:
    """B = 4 sequences of 8 tokens: steps of 20 x (1 + 0.25 x 3) = 35 ms, so ~290 ms; a
    fifth request queues until a slot frees, so it ends about one whole request later."""
    ends: dict[int, float] = {}
    t0 = time.perf_counter()

    def call(i: int) -> None:
        req = urllib.request.Request(llm_server + "/invocations", data=_body(8).encode())
        with OPENER.open(req, timeout=20) as resp:
            assert len([x for x in resp.read().splitlines() if x]) == 8
        ends[i] = time.perf_counter() - t0

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.05)  # the four hold the slots
    fifth = threading.Thread(target=call, args=(4,))
    fifth.start()
    for t in [*threads, fifth]:
        t.join(30)
    first_four = max(ends[i] for i in range(4))
    assert 0.25 <= first_four <= 0.6  # 8 x 35 ms + prefill; 8 x 20 ms would be 0.17
    assert ends[4] - first_four >= 0.12  # it could not start before a slot freed


def test_frames_round_trip_through_botocore() -> None:
    buf = EventStreamBuffer()
    buf.add_data(event_frame({":event-type": "PayloadPart", ":message-type": "event"}, b"abc"))
    buf.add_data(exception_frame("ModelStreamError", "m", "StreamBroken")[:7])
    msgs = list(buf)
    assert len(msgs) == 1 and msgs[0].payload == b"abc"
    assert msgs[0].headers[":event-type"] == "PayloadPart"


def test_prompt_parsing_and_its_errors() -> None:
    p = parse_prompt(_body(7).encode(), 64)
    assert (p.input_tokens, p.max_new_tokens, p.chat) == (10, 7, False)
    assert parse_prompt(b'{"inputs": "abcd"}', 64).max_new_tokens == 64
    for bad in (b"nope", b"[]", b'{"prompt": "x"}', b'{"inputs": "x", "parameters": '
                b'{"max_new_tokens": 0}}', b'{"inputs": "x", "fault": "boom"}'):  # fmt: skip
        with pytest.raises(BadPrompt):
            parse_prompt(bad, 64)


def test_capacity_from_the_parameters() -> None:
    p = LlmParams(max_batch=16, step_ms=10.0, growth=0.02, prefill_ms_per_token=0.1)
    # Slot-bound: 16 slots over P + T/2 + N T with T = T(b) at the fixed point.
    cap = capacity_rps(p, 100, 64)
    st = steady_state(p, cap, 100, 64)
    assert st.slots == pytest.approx(16, rel=1e-3)
    assert 16 / (0.01 + 0.0065 + 64 * 0.013) < cap < 16 / (0.01 + 64 * 0.010)
    # An ITL limit below T(16) binds first: T(b) <= 11 ms means b <= 6.
    itl_cap = capacity_rps(p, 100, 64, itl_ms=11.0)
    assert steady_state(p, itl_cap, 100, 64).running == pytest.approx(6.0, rel=1e-3)
    assert itl_cap < cap
    # A TTFT limit under the prefill and a step is never met.
    assert capacity_rps(p, 100, 64, ttft_ms=5.0) == 0.0
    assert capacity_rps(p, 100, 64, e2e_ms=1e9) == pytest.approx(cap, rel=1e-3)


def test_concurrency_from_the_parameters() -> None:
    """The closed-loop truth: the batch decodes together up to B; beyond it the extra
    requests wait in rounds of a generation G, a share j/B of them one round more."""
    p = LlmParams(max_batch=16, step_ms=10.0, growth=0.02, prefill_ms_per_token=0.1)
    st = closed_loop(p, 16, 100, 64)
    assert st.itl_ms == pytest.approx(13.0)  # 10 x (1 + 0.02 x 15)
    assert st.first_token_ms == pytest.approx(10 + 1.5 * 13)
    assert st.generation_ms == pytest.approx(10 + 6.5 + 64 * 13)
    assert closed_loop(p, 40, 100, 64) == replace(st, k=40)  # the slots cap the batch
    # k = m B + j: a share j/B waits m rounds, the rest m - 1; the mean is k/B - 1.
    assert [wait_rounds(k, 16, 0.95) for k in (16, 17, 32, 33)] == [0, 1, 1, 2]
    assert wait_rounds(17, 16, 0.90) == 0  # 1/16 of requests is within the 10% allowed
    assert wait_rounds(24, 16, None) == pytest.approx(0.5)
    # TTFT within less than a generation: the batch; within more: one round of waiting.
    assert concurrency_at_slo(p, 100, 64, [("ttft", 0.95, 500.0)]) == 16
    assert concurrency_at_slo(p, 100, 64, [("ttft", 0.90, 500.0)]) == 17
    assert concurrency_at_slo(p, 100, 64, [("ttft", 0.95, 1000.0)]) == 32
    # ITL binds below the batch: T(k) <= 11 ms means k <= 6; so does end-to-end latency.
    assert concurrency_at_slo(p, 100, 64, [("itl", 0.5, 11.0), ("ttft", 0.95, 500.0)]) == 6
    e2e = closed_loop(p, 9, 100, 64).generation_ms
    assert concurrency_at_slo(p, 100, 64, [("e2e", 0.95, e2e + 0.1)]) == 9
    assert concurrency_at_slo(p, 100, 64, [("ttft", 0.95, 5.0)]) == 0


@pytest.mark.parametrize(("llm", "message"), [
    (LlmParams(max_batch=0), "--max-batch must be >= 1 (got 0)"),
    (LlmParams(step_ms=0.0), "--step-ms must be a positive number (got 0.0)"),
    (LlmParams(growth=-0.1), "--step-growth must be >= 0 (got -0.1)"),
    (LlmParams(prefill_ms_per_token=float("nan")), "--prefill-ms-per-token must be >= 0"),
    (LlmParams(default_max_new_tokens=0), "--max-new-tokens must be >= 1 (got 0)"),
])  # fmt: skip
def test_bad_llm_parameters_are_refused(llm: LlmParams, message: str) -> None:
    from recommender.errors import ConfigError
    from recommender.local.server import validate

    with pytest.raises(ConfigError) as err:
        validate(ServerConfig(model="llm", llm=llm))
    assert err.value.one_line().startswith(message)
