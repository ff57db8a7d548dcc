"""Streamed responses (--stream): token counting, the per-request and per-second records,
token-level SLO terms, prompt templates, and real Locust runs against the local LLM server
over both transports (SageMaker event-stream frames, a chunked body)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from recommender import histograms
from recommender.analysis.stages import stage_stats
from recommender.errors import ConfigError
from recommender.loadgen.merge import SecondMerger
from recommender.loadgen.payloads import Template, load_payloads, prompt_tokens
from recommender.loadgen.recorder import Recorder, error_kind
from recommender.loadgen.runner import LoadTestSpec, run_loadtest
from recommender.loadgen.stream import StreamError, TokenCounter
from recommender.local.llm import LlmParams
from recommender.local.process import running_server
from recommender.local.server import ServerConfig
from recommender.options import RunOptions
from recommender.plan import RampPlan, Stage, Target, parse_slo
from recommender.search import StageSummary, judge

# --- tokens in payload parts ----------------------------------------------------------


def test_jsonl_tokens_counted_across_split_parts() -> None:
    c = TokenCounter("auto")
    line = b'{"token": {"text": " a"}}\n'
    assert c.feed(line[:10]) == 0  # half a line is no token yet
    assert c.feed(line[10:] + line) == 2
    assert c.feed(b"\n\n") == 0  # blank lines are not tokens
    assert c.feed(b'{"token": {"text": "b"}}') == 0
    assert c.finish() == 1  # a last line without its newline


def test_sse_tokens_skip_done_and_blank_lines() -> None:
    c = TokenCounter("auto")
    assert c.feed(b'data:{"token":{"text":"a"}}\n\n') == 1
    assert c.feed(b'data: {"choices":[{"delta":{"content":"b"}}]}\n\ndata: [DONE]\n\n') == 1
    forced = TokenCounter("jsonl")
    assert forced.feed(b"data: x\n\ndata: [DONE]\n") == 2  # told jsonl: every line counts


def test_stream_errors_are_their_own_kinds() -> None:
    assert error_kind(StreamError("ModelStreamError:StreamBroken", "m"), 200) == (
        "ModelStreamError:StreamBroken")  # fmt: skip
    assert error_kind(StreamError("StreamCutShort", "m"), 200) == "StreamCutShort"
    assert error_kind(RuntimeError("x"), 503) == "HTTP 503"


# --- token-level SLO terms -------------------------------------------------------------


def test_token_slo_terms_parse_and_round_trip() -> None:
    slo = parse_slo(["ttft_p95<=800ms,itl_p99<=60ms,e2e_p95<=20s"])
    assert [(t.metric, t.stat, t.limit_ms) for t in slo.terms] == [
        ("ttft", "p95", 800.0), ("itl", "p99", 60.0), ("e2e", "p95", 20000.0)]  # fmt: skip
    assert [t.key for t in slo.terms] == ["ttft_p95", "itl_p99", "e2e_p95"]
    assert [t.histogram for t in slo.terms] == ["ttft_co_us", "itl_us", "latency_co_us"]
    assert slo.needs_stream and not parse_slo(["e2e_p95<=2s"]).needs_stream
    assert type(slo).from_dict(slo.to_dict()) == slo
    assert str(slo).startswith("ttft_p95<=800ms, itl_p99<=60ms, e2e_p95<=20000ms")


def test_a_token_term_without_stream_is_one_line_error() -> None:
    with pytest.raises(ConfigError, match=r"--slo ttft_p95<=800ms needs --stream"):
        RunOptions(url="http://127.0.0.1:9/invocations", slo=("ttft_p95<=800ms",)).parse_slo()
    RunOptions(url="http://127.0.0.1:9/invocations", slo=("ttft_p95<=800ms",),
               stream=True).parse_slo()  # fmt: skip


def test_judge_counts_itl_gaps_not_requests() -> None:
    """ITL p99 <= 50ms with 98 of 100 gaps within: fails, judged on the gaps' count."""
    slo = parse_slo(["itl_p99<=50ms"])
    s = StageSummary(rps=1, seconds=10, requests=10, successes=10, within={"itl_p99": 98_000},
                     stat_ms={"itl_p99": 70.0}, counts={"itl_p99": 100_000})  # fmt: skip
    assert judge(s, slo).outcome == "fail"
    ok = StageSummary(rps=1, seconds=10, requests=10, successes=10, within={"itl_p99": 99_950},
                      stat_ms={"itl_p99": 40.0}, counts={"itl_p99": 100_000})  # fmt: skip
    assert judge(ok, slo).outcome == "pass"


# --- records: recorder, merge, stage statistics ----------------------------------------


def _streamed(ttft: float, gaps: list[float], out: int = 5, tokens_in: int = 7) -> dict[str, Any]:
    return {"intended": None, "tokens_in": tokens_in, "ttft": ttft, "gaps": gaps,
            "tokens_out": out}  # fmt: skip


def test_recorder_keeps_stream_measures_and_goodput() -> None:
    out: list[dict[str, Any]] = []
    slo = parse_slo(["ttft_p95<=100ms,itl_p99<=20ms"])
    rec = Recorder(1000.0, lambda s: 0, out.append, slo=slo)
    rec.record(1000.5, 200.0, 1000.3, None, _streamed(0.05, [0.01] * 99 + [0.03]))  # good
    rec.record(1000.6, 200.0, 1000.0, None, _streamed(0.15, [0.01] * 4))  # TTFT too long
    rec.record(1000.7, 200.0, 1000.0, None, _streamed(0.05, [0.01, 0.031]))  # mean gap 20.5ms
    rec.record(1000.8, 90.0, None, "ModelStreamError:StreamBroken", {"tokens_in": 7})
    rec.record(1000.9, 50.0, None, None)  # not streamed: no stream measures
    rec.flush()
    (r,) = out
    assert (r["requests"], r["ok"], r["streamed"], r["good"]) == (5, 4, 3, 1)
    assert r["errors"] == {"ModelStreamError:StreamBroken": 1}
    assert (r["tokens_out"], r["tokens_in"]) == (15, 21)  # of the successes
    itl = histograms.decode(r["itl_us"])
    assert itl.get_total_count() == 106
    ttft_co = histograms.decode(r["ttft_co_us"])
    # From the intended send: the 1000.6 request was sent (end - latency) 0.4 s late.
    assert histograms.percentile_ms(ttft_co, 0.01) == pytest.approx(50, rel=0.01)
    assert histograms.percentile_ms(ttft_co, 1.0) == pytest.approx(550, rel=0.01)
    # A second without streaming keeps the old shape.
    plain: list[dict[str, Any]] = []
    rec2 = Recorder(0.0, lambda s: 0, plain.append)
    rec2.record(0.5, 1.0, None, None)
    rec2.flush()
    assert "tokens_in" not in plain[0]


def test_merge_adds_stream_fields_exactly() -> None:
    recs: list[list[dict[str, Any]]] = [[], []]
    for i, sink in enumerate(recs):
        rec = Recorder(0.0, lambda s: 0, sink.append, slo=parse_slo(["ttft_p95<=1s"]))
        rec.record(0.5, 10.0, None, None, _streamed(0.02 * (i + 1), [0.01, 0.01], out=3 + i))
        rec.flush()
    merger = SecondMerger(expected=2)
    merger.add("a", recs[0], 5)
    merger.add("b", recs[1], 5)
    (m,) = merger.final()
    assert (m["streamed"], m["tokens_out"], m["tokens_in"], m["good"]) == (2, 7, 14, 2)
    assert histograms.decode(m["itl_us"]).get_total_count() == 4
    assert histograms.decode(m["ttft_co_us"]).get_total_count() == 2


def test_stage_stats_report_tokens_goodput_and_token_terms() -> None:
    out: list[dict[str, Any]] = []
    slo = parse_slo(["ttft_p95<=100ms"])
    rec = Recorder(0.0, lambda s: 0, out.append, slo=slo)
    for second in range(4):
        for k in range(10):
            rec.record(second + 0.1 * k, 300.0, None, None,
                       _streamed(0.05 if k < 9 else 0.2, [0.01] * 9, out=10))  # fmt: skip
    rec.flush()
    plan = RampPlan((Stage(10, 4),), warmup_seconds=0)
    (s,) = stage_stats(out, plan, slo)
    assert s.stream is not None
    assert s.stream.output_tokens_per_s == pytest.approx(100.0)
    assert s.stream.input_tokens_per_s == pytest.approx(70.0)
    assert s.stream.goodput_rps == pytest.approx(9.0)  # one request a second is too slow
    assert s.slo_values_ms["ttft_p95"] == pytest.approx(200, rel=0.01)
    assert not s.passed  # p95 of TTFT is the slow tenth
    assert s.to_dict()["stream"]["itl_p50_ms"] == pytest.approx(10, rel=0.01)


# --- prompts and templates ---------------------------------------------------------------


def test_templates_render_prompts(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_text('{"prompt": "hello there", "max_new_tokens": 9}\n{"text": "abcdefgh"}\n')
    tgi = load_payloads(path, template=Template("tgi", 32, stream=True))
    first, second = (json.loads(b) for b in tgi.bodies)
    assert first == {"inputs": "hello there", "parameters": {"max_new_tokens": 9},
                     "stream": True}  # fmt: skip
    assert second["parameters"]["max_new_tokens"] == 32
    chat = load_payloads(path, template=Template("messages", 32))
    assert json.loads(chat.bodies[0]) == {
        "messages": [{"role": "user", "content": "hello there"}], "max_tokens": 9}  # fmt: skip
    assert [prompt_tokens(b) for b in chat.bodies] == [3, 2]  # ~4 characters a token


def test_payload_without_what_the_template_needs(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "a", "max_new_tokens": 3}\n{"question": "b"}\n')
    with pytest.raises(ConfigError, match=r'line 2 has no "prompt" text'):
        load_payloads(path, template=Template("tgi", 8))
    path.write_text('{"prompt": "a"}\n')
    with pytest.raises(ConfigError, match="no max_new_tokens and --max-new-tokens"):
        load_payloads(path, template=Template("tgi"))


# --- real runs: Locust against the local LLM server --------------------------------------

PARAMS = LlmParams(max_batch=8, step_ms=5.0, growth=0.05, prefill_ms_per_token=0.05)


@pytest.fixture(scope="module")
def llm_base() -> Iterator[str]:
    with running_server(ServerConfig(port=0, model="llm", llm=PARAMS)) as base:
        yield base


def _bodies(tmp_path: Path) -> Path:
    """Twelve requests: nine good ones and one of each stream failure."""
    lines = [{"inputs": "x" * 80, "parameters": {"max_new_tokens": 6}}] * 9 + [
        {"inputs": "y", "parameters": {"max_new_tokens": 6, "fault": fault, "fault_after": 2}}
        for fault in ("model_stream_error:StreamBroken", "internal_stream_failure", "cut")
    ]
    path = tmp_path / "bodies.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def _run(tmp_path: Path, target: Target, payload: Path) -> tuple[list[dict[str, Any]], Path]:
    spec = LoadTestSpec(target=target, plan=RampPlan((Stage(24, 3),), warmup_seconds=0),
                        slo=parse_slo(["ttft_p95<=500ms,itl_p99<=200ms"]), payload=payload,
                        out=tmp_path / "runs", keep_requests=True,
                        credentials=None)  # fmt: skip
    result = run_loadtest(spec, echo=lambda _: None)
    records = [json.loads(x) for x in (result.run_dir / "latency.jsonl").read_text().splitlines()]
    return records, result.run_dir


def _check(records: list[dict[str, Any]], run_dir: Path) -> None:
    errors: dict[str, int] = {}
    for r in records:
        for k, n in r["errors"].items():
            errors[k] = errors.get(k, 0) + n
    requests = sum(r["requests"] for r in records)
    assert requests == 72
    # 6 of each failure (72 requests cycle 12 bodies), none of them counted as a success.
    assert sum(errors.values()) == 18
    ok = sum(r["ok"] for r in records)
    assert ok == 72 - sum(errors.values())
    assert sum(r.get("streamed", 0) for r in records) == ok == 54
    assert sum(r.get("tokens_out", 0) for r in records) == 54 * 6
    rows = pq.read_table(run_dir / "requests.parquet").to_pandas()
    good = rows[rows.error.isna()]
    assert (good.tokens_out == 6).all() and (good.tokens_in == 20).all()
    # One sequence at a time or a few: steps of 5-8 ms, so gaps far under 100 ms, and the
    # first token after prefill (1 ms) and one step.
    assert good.itl_mean_ms.median() < 40 and good.ttft_ms.median() < 150
    assert (good.latency_ms >= good.ttft_ms).all()
    # Read as they arrive, not at the end: five more steps of >= 5 ms after the first token.
    assert (good.latency_ms - good.ttft_ms).median() >= 15 and good.itl_mean_ms.median() >= 3


def test_stream_run_over_event_stream_frames(
    llm_base: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "s",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)  # the Locust process signs with them
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    from recommender.loadgen.sigv4 import Credentials

    target = Target(url=f"{llm_base}/endpoints/e/invocations-response-stream", name="e",
                    endpoint="e", variant="AllTraffic", region="us-east-1",
                    stream=True)  # fmt: skip
    spec_credentials = lambda: Credentials("AKIDEXAMPLE", "s", None)  # noqa: E731
    spec = LoadTestSpec(target=target, plan=RampPlan((Stage(24, 3),), warmup_seconds=0),
                        slo=parse_slo(["ttft_p95<=500ms,itl_p99<=200ms"]),
                        payload=_bodies(tmp_path), out=tmp_path / "runs", keep_requests=True,
                        credentials=spec_credentials)  # fmt: skip
    result = run_loadtest(spec, echo=lambda _: None)
    records = [json.loads(x) for x in (result.run_dir / "latency.jsonl").read_text().splitlines()]
    _check(records, result.run_dir)
    errors = {k for r in records for k in r["errors"]}
    assert errors == {"ModelStreamError:StreamBroken", "InternalStreamFailure",
                      "StreamCutShort"}  # fmt: skip


def test_stream_run_over_a_chunked_body(llm_base: str, tmp_path: Path) -> None:
    target = Target(url=f"{llm_base}/invocations", name="c", stream=True)
    records, run_dir = _run(tmp_path, target, _bodies(tmp_path))
    _check(records, run_dir)
    # A container has no stream error events: the faults end the connection mid-stream.
    errors = {k for r in records for k in r["errors"]}
    assert errors == {"StreamCutShort"}


# --- the reports ---------------------------------------------------------------------------


def _streamed_run(tmp_path: Path) -> Path:
    """Four stages through the real recorder: TTFT grows with the rate and breaks 300 ms
    (the SLO's TTFT limit) at the last stage."""
    from tests.conftest import write_run

    slo = parse_slo(["ttft_p95<=300ms,itl_p99<=100ms"])
    plan = RampPlan(tuple(Stage(r, 6) for r in (5, 10, 15, 20)), warmup_seconds=1)
    out: list[dict[str, Any]] = []
    rec = Recorder(0.0, lambda s: s // 6, out.append, slo=slo)
    for i, stage in enumerate(plan.stages):
        ttft = 0.05 * (i + 1) ** 2  # 50, 200, 450, 800 ms
        for second in range(i * 6, i * 6 + 6):
            for k in range(int(stage.rps)):
                t = second + k / stage.rps
                rec.record(t, ttft * 1000 + 500, t - ttft - 0.5, None,
                           _streamed(ttft, [0.02] * 20, out=21))  # fmt: skip
    rec.flush()
    return write_run(tmp_path / "run", plan, out, slo)


def test_reports_show_tokens_goodput_and_the_ttft_bound(tmp_path: Path) -> None:
    import jsonschema

    from recommender.pipeline import write_reports
    from recommender.report.result import result_document, schema

    run_dir = _streamed_run(tmp_path)
    a = write_reports(run_dir).analysis
    # TTFT p95 crosses 300 ms between the stages at 10 rps (200 ms) and 15 rps (450 ms).
    assert a.capacity.method == "interpolated"
    assert 10 < (a.capacity.rps_per_instance or 0) < 15
    md = (run_dir / "report.md").read_text()
    assert "## Tokens" in md and "| 2 | 10 | 200.7 |" in md
    html = (run_dir / "report.html").read_text()
    assert 'data-plot="tokens"' in html and "SLO ttft_p95&lt;=300ms" in html
    doc = result_document("analyze", a, run_dir, exit_code=0)
    jsonschema.validate(doc, schema())
    # Tokens/s at the concurrency at the SLO: its throughput x 21 tokens a request.
    c = doc["concurrency"]
    assert c["output_tokens_per_s_per_instance"] == pytest.approx(
        c["throughput_rps_per_instance"] * 21)
    assert "output tokens/s per instance" in md
    stages = doc["stream"]["stages"]
    assert [s["goodput_rps"] for s in stages] == [5.0, 10.0, 0.0, 0.0]
    assert stages[0]["output_tokens_per_s"] == pytest.approx(105.0)
    thin = [w.message for w in a.warnings if w.code == "thin_tail"]
    assert len(thin) == 1 and thin[0].startswith("Stages 1, 2, 3, 4: ttft_p95 rests on fewer")
    analysis = json.loads((run_dir / "analysis.json").read_text())
    assert analysis["stream"]["goodput_slo"].startswith("ttft_p95<=300ms")
    assert analysis["stages"][0]["stream"]["itl_p99_ms"] == pytest.approx(20, rel=0.01)


def test_token_terms_on_a_run_without_tokens_are_refused(tmp_path: Path) -> None:
    from recommender.pipeline import analyze_dir
    from tests.conftest import synthetic_records, write_run

    plan = RampPlan((Stage(10, 5),), warmup_seconds=1)
    run_dir = write_run(tmp_path / "r", plan, synthetic_records(plan, [50]))
    with pytest.raises(ConfigError, match="needs a run made with --stream"):
        analyze_dir(run_dir, parse_slo(["ttft_p95<=1s"]), 0.5)


def test_the_llm_demos_truth_comes_from_its_parameters() -> None:
    """The demo's truth line: capacity_rps at the prompts' mean sizes (124.4 approximate
    input tokens, 64 output) and the SLO's limits; its slots bind, not TTFT or ITL."""
    from importlib import resources

    from recommender.local.demo import LLM_PROMPTS, LLM_SERVER, LLM_SLO, llm_truth
    from recommender.local.llm import capacity_rps

    prompts = Path(str(resources.files("recommender.local").joinpath(LLM_PROMPTS)))
    truth = llm_truth(LLM_SERVER, prompts, LLM_SLO)
    assert truth.rps == pytest.approx(capacity_rps(LLM_SERVER.llm, 124.375, 64), rel=1e-6)
    assert 10.5 < truth.rps < 11.0  # 8 slots over ~750 ms
    assert llm_truth(LLM_SERVER, prompts, "itl_p99<=10.5ms").rps < truth.rps / 2
    # Closed loop: the batch (8) within the TTFT limit; one more waits a whole generation.
    assert truth.concurrency == 8
    assert 10.5 < truth.concurrency_rps < 11.0


def test_the_live_line_judges_token_terms(tmp_path: Path) -> None:
    """Its SLO has ttft_p95 and e2e_p95 (both "p95"): each is read from its own histogram."""
    import time

    from recommender import runs
    from recommender.loadgen.progress import Watcher

    slo = parse_slo(["ttft_p95<=100ms,e2e_p95<=5s"])
    runs.write_json(tmp_path / runs.GENERATOR_FILE, {"t0": time.time() - 3.5})
    runs.write_json(tmp_path / runs.SEARCH_FILE,
                    {"stages": [{"rps": 10, "start": 0, "end": 10}], "decisions": []})  # fmt: skip
    lines: list[dict[str, Any]] = []
    rec = Recorder(0.0, lambda s: 0, lines.append, slo=slo)
    for second in range(3):
        for k in range(10):
            rec.record(second + 0.1 * k, 1000.0, None, None, _streamed(0.3, [0.01] * 5))
    rec.flush()
    (tmp_path / runs.LATENCY_FILE).write_text("".join(json.dumps(x) + "\n" for x in lines))
    watcher = Watcher(tmp_path, RampPlan((Stage(10, 10),)), slo)
    s = watcher.snapshot()
    assert s is not None and s.within_slo is False  # TTFT 300 ms > 100 ms; e2e 1 s is fine
    ok = Watcher(tmp_path, RampPlan((Stage(10, 10),)), parse_slo(["ttft_p95<=1s,e2e_p95<=5s"]))
    s = ok.snapshot()
    assert s is not None and s.within_slo is True


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--slo", "ttft_p95<=800ms"], "Error: --slo ttft_p95<=800ms needs --stream (only a "),
        (["--stream", "--slo", "itl_p99<=1fortnight"], "Error: cannot read SLO"),
        (["--max-new-tokens", "5"], "Error: --max-new-tokens needs --template"),
        (["--stream", "--template", "tgi", "--payload", "BAD"],
         'Error: BAD, line 1 has no "prompt" text, which --template tgi needs'),
        (["--stream", "--template", "messages", "--payload", "NO_N"],
         "Error: NO_N, line 1 has no max_new_tokens and --max-new-tokens is not given"),
    ],
)
def test_bad_stream_input_gives_one_line_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    from recommender.cli import main

    bad, no_n = tmp_path / "bad.jsonl", tmp_path / "no_n.jsonl"
    bad.write_text('{"question": "x"}\n')
    no_n.write_text('{"prompt": "x"}\n')
    paths = {"BAD": str(bad), "NO_N": str(no_n)}
    argv = [paths.get(a, a) for a in argv]
    message = message.replace("BAD", str(bad)).replace("NO_N", str(no_n))
    code = main(["run", "--url", "http://127.0.0.1:9/invocations", "--start-rps", "1",
                 "--max-rps", "2", "--yes", *argv])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(message), err
    assert err.count("\n") == 1 and "Traceback" not in err
