"""`recommender demo`: the whole pipeline on the embedded default, through the AWS code path.

It starts the AWS emulator, registers an endpoint there (CreateModel, CreateEndpointConfig,
CreateEndpoint), starts the local model server publishing SageMaker's CloudWatch metrics to
the emulator, and runs the same code `recommender run --endpoint` runs against AWS: the
DescribeEndpoint check, SigV4-signed InvokeEndpoint load, CloudWatch collection.

The server (1 instance, 4 slots, 20 ms per request) saturates at exactly 200 requests/s.
Under Poisson arrivals (the default) it meets the SLO (p95 <= 150 ms) only up to about
188.5 rps: an M/D/4 queue (recommender.queueing). Under uniform arrivals it never queues
below saturation, so its capacity at the SLO is the 200 itself. That is the ideal server; the
one running here holds its slots a little longer (timers overshoot) and spends time outside
them (HTTP), more so on a slower or busier machine. So the demo times it at a trickle, before
and after the load (recommender.local.trickle), and prints the truth of the server as
measured (the median of three), for the arrival model it used, beside the ideal one, so the
estimate can be read against what this machine's server can do.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from recommender.analysis import Analysis
from recommender.aws import AwsClient
from recommender.errors import ConfigError
from recommender.loadgen.payloads import Template, load_payloads, prompt_tokens
from recommender.loadgen.runner import LoadTestResult, LoadTestSpec, Watch
from recommender.loadgen.sigv4 import Credentials
from recommender.local.emulator import EMULATOR_ENV, running_emulator
from recommender.local.hosting import HostingConfig, running_hosting
from recommender.local.instance_types import profile_for
from recommender.local.llm import LlmParams, capacity_rps, closed_loop, concurrency_at_slo
from recommender.local.process import running_server
from recommender.local.publisher import PublishConfig
from recommender.local.server import ServerConfig
from recommender.local.serverless import ServerlessEmulation
from recommender.local.trickle import Trickle, measure_trickle
from recommender.metrics import default_period
from recommender.options import AwsAccess, RunOptions
from recommender.pipeline import CloudWatchOptions, run_pipeline, sagemaker_target, write_reports
from recommender.plan import DEFAULT_VARIANT, SearchSettings, parse_slo
from recommender.simulate import DEFAULT_PROVISION_MINUTES, Simulation
from recommender.sizing import PRICES_USD_PER_HOUR, Traffic
from recommender.sweep import SweepOptions, SweepResult, run_sweep
from recommender.traffic import TrafficSpec
from recommender.verify import VerifyResult

DEMO_SERVER = ServerConfig(port=0, instances=1, concurrency=4, service_time_ms=20.0,
                           model="sklearn")  # fmt: skip
DEMO_SLO = "p95<=150ms"
DEMO_ENDPOINT = "recommender-demo"
DEMO_VARIANT = DEFAULT_VARIANT
DEMO_INSTANCE_TYPE = "ml.m5.large"


# `demo --serverless`: a serverless variant of MaxConcurrency 8 (2 provisioned) whose
# executions take 50 ms (20 rps each, 160 rps in all, throttled beyond) and start cold in
# 400 ms after 5 idle seconds; the SLO p95 <= 150 ms is broken by every cold request.
DEMO_SERVERLESS = ServerlessEmulation(max_concurrency=8, provisioned_concurrency=2,
                                      cold_start_ms=400.0, idle_seconds=5.0, memory_mb=2048)
DEMO_SERVERLESS_SERVER = ServerConfig(port=0, instances=1, service_time_ms=50.0,
                                      model="sklearn", serverless=DEMO_SERVERLESS)  # fmt: skip
DEMO_SERVERLESS_PLAN = SearchSettings(start_rps=20, max_rps=240, stage_seconds=10,
                                      warmup_seconds=2, max_duration=120, probe=False,
                                      early_stop=False)  # fmt: skip
DEMO_SERVERLESS_PEAK_RPS = 40.0  # the expected peak the demo sizes provisioned concurrency for


@dataclass(frozen=True)
class DemoResult:
    loadtest: LoadTestResult
    analysis: Analysis
    true_capacity: float  # at the SLO, under the arrivals used
    # `demo --llm`: the requests in flight within the SLO (the search is closed-loop) and
    # the throughput there, per copy.
    true_concurrency: int | None = None
    true_concurrency_rps: float | None = None
    true_rps_per_concurrency: float | None = None  # serverless: 1000 / service time
    saturation: float | None = None  # N x C / S: the throughput ceiling (None: not computed)
    arrivals: str = "poisson"
    # How the truth was obtained on this machine (recommender.local.trickle), and the ideal
    # server's truth (M/D/c, or N x C / S) beside it.
    truth_basis: str | None = None
    ideal_capacity: float | None = None


# Requests per trickle. Three trickles, one before the load and two after it, each a few
# seconds: on a shared machine one of them may catch a neighbour's burst (a stalled server
# held slots 15 ms long and put one truth at 179.7 where the others said 188.5), and the
# median of three is the server's, not the burst's.
TRICKLE_BATCH = 100


def machine_true_capacity(server: ServerConfig, trickle: Trickle, slo: str,
                          arrivals: str) -> float:  # fmt: skip
    """The demo server's capacity at its SLO on this machine: its slots held as long as they
    were at a trickle, and the time outside them on every request (whole server, rps)."""
    if arrivals == "uniform":
        return trickle.saturation(server.instances, server.concurrency, server.overlap)
    term = parse_slo([slo]).terms[0]
    assert term.quantile is not None
    return trickle.poisson_capacity(server.instances, server.concurrency, term.quantile,
                                    term.limit_ms, server.overlap)  # fmt: skip


def true_capacity(server: ServerConfig, slo: str, arrivals: str) -> float:
    """The ideal demo server's capacity at its SLO for the arrival model (whole server,
    rps): every slot held exactly S, nothing else taking time."""
    if arrivals == "uniform":
        return server.capacity_rps
    from recommender.queueing import poisson_capacity

    term = parse_slo([slo]).terms[0]
    assert term.quantile is not None
    return poisson_capacity(server.instances, server.concurrency, server.service_time_ms,
                            term.quantile, term.limit_ms)  # fmt: skip


# The adaptive search (the default): grow from 50 rps, then bisect to 5%. A module constant,
# read at each run, so the test suite can run the real demo path with shorter stages.
DEMO_PLAN = SearchSettings(start_rps=50, max_rps=240, stage_seconds=10, warmup_seconds=2,
                           max_duration=120)  # fmt: skip


# `demo --llm`: the LLM-like server (recommender.local.llm): 8 sequences a batch, 10 ms
# steps growing 2% per running sequence, 0.1 ms of prefill per prompt token; 24 prompts of
# 18-204 (approximate) tokens, each asking for 64 new tokens (alike outputs make the batch
# turn over in rounds, so the truth is sharp), deployed as an inference component with one
# copy. The search is over requests in flight (--control concurrency), the natural control
# for a streaming endpoint and what the concurrency-per-copy policy tracks. Its truth
# (llm.concurrency_at_slo): 8 in flight, the batch; one more and a share 1/8 of the
# requests waits a whole generation (~750 ms) for a slot, past the TTFT limit. (With 16
# slots that share, 1/16, sits too close to the 5% a p95 allows for a short stage to tell.)
# Stages of 12 s less 3 s of warm-up hold ~95 requests at the first level (8 in flight),
# enough for the p95 terms to be decided without extending the stage.
LLM_SERVER = ServerConfig(port=0, instances=1, model="llm", llm=LlmParams(
    max_batch=8, step_ms=10.0, growth=0.02, prefill_ms_per_token=0.1))  # fmt: skip
# ITL on p95: a shared machine's scheduling puts ~40 ms gaps in the last 1% (a slow
# read of the stream, then two tokens at once), far from the 13 ms steps measured.
LLM_SLO = "ttft_p95<=500ms,itl_p95<=50ms,e2e_p95<=3s"
LLM_PROMPTS = "llm_prompts.jsonl"  # package data of recommender.local
LLM_ENDPOINT = "recommender-llm-demo"
LLM_COMPONENT = "recommender-llm-demo-ic"
LLM_INSTANCE_TYPE = "ml.g4dn.xlarge"  # one the emulator knows
# Closed loop (--control concurrency): no arrivals, no probe; full stages as before.
LLM_PLAN = SearchSettings(start_rps=8, max_rps=16, stage_seconds=12, warmup_seconds=3,
                          max_duration=130, control="concurrency", early_stop=False)  # fmt: skip


@dataclass(frozen=True)
class LlmTruth:
    """The LLM server's truth for an SLO, per instance (copy): the highest arrival rate
    (rate control), the highest number of requests in flight (closed loop) and the
    throughput there."""

    rps: float
    concurrency: int
    concurrency_rps: float


def prompt_means(prompts: Path) -> tuple[float, float]:
    """Mean input (approximate) and output tokens of a prompts file rendered as TGI bodies."""
    bodies = load_payloads(prompts, template=Template("tgi")).bodies
    mean_in = sum(prompt_tokens(b) for b in bodies) / len(bodies)
    mean_out = sum(json.loads(b)["parameters"]["max_new_tokens"] for b in bodies) / len(bodies)
    return mean_in, mean_out


def llm_truth(server: ServerConfig, prompts: Path, slo_text: str) -> LlmTruth:
    """The LLM server's truth within the SLO's TTFT, ITL and end-to-end terms, from its
    parameters and the prompts' mean sizes (recommender.local.llm)."""
    mean_in, mean_out = prompt_means(prompts)
    terms = parse_slo([slo_text]).terms
    limits = {t.metric: t.limit_ms for t in terms}
    rps = capacity_rps(server.llm, mean_in, mean_out, ttft_ms=limits.get("ttft"),
                       itl_ms=limits.get("itl"),
                       e2e_ms=limits.get("e2e", limits.get("latency")))  # fmt: skip
    closed = [("e2e" if t.metric == "latency" else t.metric, t.quantile, t.limit_ms)
              for t in terms]  # fmt: skip
    k = concurrency_at_slo(server.llm, mean_in, mean_out, closed)
    there = closed_loop(server.llm, k, mean_in, mean_out).throughput_rps if k else 0.0
    return LlmTruth(rps, k, there)


def run_demo(
    out: Path, echo: Callable[[str], None] = print, watch: Watch | None = None,
    llm: bool = False,
    serverless: bool = False,
) -> DemoResult:  # fmt: skip
    """Size the demo server; `llm`: the LLM-like server; `serverless`: the emulated
    serverless variant."""
    if llm and serverless:
        raise ConfigError("--llm and --serverless are two demos", "pick one")
    if llm:
        return run_llm_demo(out, echo, watch)
    plan = DEMO_SERVERLESS_PLAN if serverless else DEMO_PLAN
    base_server = DEMO_SERVERLESS_SERVER if serverless else DEMO_SERVER
    period = default_period(plan.stage_seconds)
    # The emulator's throwaway credentials, for this process and the ones it starts: the
    # demo must never sign with, or send, a user's real ones.
    os.environ.update(EMULATOR_ENV)
    os.environ.pop("AWS_PROFILE", None)
    echo("Starting the AWS emulator...")
    with running_emulator() as emulator:
        aws = AwsClient.create(EMULATOR_ENV["AWS_DEFAULT_REGION"], endpoint_url=emulator)
        aws.create_endpoint(DEMO_ENDPOINT, DEMO_VARIANT, DEMO_INSTANCE_TYPE, 1,
                            image="local/recommender-demo:latest",
                            serverless=DEMO_SERVERLESS.service_config() if serverless else None)
        publish = PublishConfig(DEMO_ENDPOINT, DEMO_VARIANT, period, aws.region, emulator)
        server = replace(base_server, publish=publish)
        echo(f"Starting the demo model server (true capacity {server.capacity_rps:g} rps)...")
        with running_server(server) as base:
            trickles: list[Trickle] = []
            if not serverless:
                echo("Timing the server at a trickle (its truth on this machine)...")
                trickles.append(measure_trickle(base, TRICKLE_BATCH))
            target = sagemaker_target(aws, DEMO_ENDPOINT, DEMO_VARIANT, endpoint_url=base,
                                      kind="serverless" if serverless else None,
                                      name="demo-serverless" if serverless else "demo")

            def credentials() -> Credentials:
                return Credentials(*aws.frozen_credentials())

            # The serverless demo reads Little's law against 1000 / service time, as before:
            # uniform arrivals, the climb, full stages (DEMO_SERVERLESS_PLAN).
            spec = LoadTestSpec(target, plan, parse_slo([DEMO_SLO]), out=out,
                                credentials=credentials, align_seconds=period,
                                arrivals="uniform" if serverless else "poisson")  # fmt: skip
            result = run_pipeline(spec, 0.5, echo, CloudWatchOptions(aws, period, 30.0), watch)
            if not serverless:  # twice more after the load: the truth is the median of three
                for _ in range(2):
                    time.sleep(1.0)
                    trickles.append(measure_trickle(base, TRICKLE_BATCH))
    if not serverless:
        arrivals = spec.arrivals
        truths = [machine_true_capacity(server, t, DEMO_SLO, arrivals) for t in trickles]
        middle = sorted(range(len(truths)), key=truths.__getitem__)[len(truths) // 2]
        basis = (f"{trickles[middle].describe()}; the median of {len(truths)} such truths, "
                 + ", ".join(f"{t:.1f}" for t in truths) + " rps, one before the run")
        return DemoResult(result.loadtest, result.analysis, truths[middle],
                          saturation=server.capacity_rps, arrivals=arrivals,
                          truth_basis=basis,
                          ideal_capacity=true_capacity(server, DEMO_SLO, arrivals))  # fmt: skip
    # Provisioned concurrency is sized for an expected peak: the report's --peak-rps.
    sized = write_reports(result.loadtest.run_dir, spec.slo, 0.5,
                          Traffic(peak_rps=DEMO_SERVERLESS_PEAK_RPS))  # fmt: skip
    return DemoResult(result.loadtest, sized.analysis, server.capacity_rps,
                      true_rps_per_concurrency=1000.0 / server.service_time_ms,
                      arrivals=spec.arrivals)


# `demo --sweep`: three types of known capacity (recommender.local.instance_types) at the
# built-in table's prices; per request, c5.2xlarge is the cheapest (price / capacity).
SWEEP_TYPES = ("ml.m5.xlarge", "ml.c5.2xlarge", "ml.g4dn.xlarge")
SWEEP_MODEL = "recommender-demo-model"
SWEEP_SLO = "p95<=300ms"
SWEEP_PEAK_RPS, SWEEP_MIN_RPS = 400.0, 40.0
# Module constants, read at each run, so the tests can shorten them.
SWEEP_PLAN = SearchSettings(start_rps=20, max_rps=200, stage_seconds=6, warmup_seconds=1,
                            precision=0.1, max_duration=48)  # fmt: skip
SWEEP_METRICS_PERIOD = 1
SWEEP_CLOUDWATCH_WAIT = 15.0


@dataclass(frozen=True)
class SweepDemoResult:
    sweep: SweepResult
    known_cheapest: str  # from the types' true capacities and prices
    true_capacity: dict[str, float]


def known_cheapest(types: tuple[str, ...]) -> str:
    """The type whose price over its true capacity is lowest: what the sweep should find."""
    return min(types, key=lambda t: PRICES_USD_PER_HOUR[t] / profile_for(t).capacity_rps)


def run_sweep_demo(out: Path, echo: Callable[[str], None] = print, watch: Watch | None = None,
                   confirm: Callable[[str], bool] | None = None) -> SweepDemoResult:  # fmt: skip
    """The AWS emulator with local hosting, a model registered, and `recommender sweep` over
    SWEEP_TYPES through the same code that sweeps AWS."""
    os.environ.update(EMULATOR_ENV)
    os.environ.pop("AWS_PROFILE", None)
    plan, types = SWEEP_PLAN, SWEEP_TYPES
    echo("Starting the AWS emulator and its local hosting layer...")
    with running_emulator() as emulator:
        hosting = HostingConfig(emulator, model="sklearn", provision_seconds=0,
                                metrics_period=SWEEP_METRICS_PERIOD)  # fmt: skip
        with running_hosting(hosting) as router:
            aws = AwsClient.create(EMULATOR_ENV["AWS_DEFAULT_REGION"], endpoint_url=emulator)
            aws.create_model(SWEEP_MODEL, "local/recommender-demo:latest")
            truth = {t: profile_for(t).capacity_rps for t in types}
            echo("True capacities per instance: " + ", ".join(
                f"{t} {c:g} rps" for t, c in truth.items()))  # fmt: skip
            load = RunOptions(
                endpoint="(each type's)", region=aws.region, endpoint_url=router,
                aws_endpoint_url=emulator, slo=(SWEEP_SLO,), start_rps=plan.start_rps,
                max_rps=plan.max_rps, stage_seconds=plan.stage_seconds,
                warmup_seconds=plan.warmup_seconds, precision=plan.precision,
                max_duration=plan.max_duration, cloudwatch_period=SWEEP_METRICS_PERIOD,
                cloudwatch_wait=SWEEP_CLOUDWATCH_WAIT, out=out,
                # The types' truths are their deterministic capacities: uniform arrivals
                # measure those; and the short search as before (no probe, full stages).
                arrivals="uniform", probe=False, early_stop=False,
            )  # fmt: skip
            options = SweepOptions(
                load=load, model_name=SWEEP_MODEL, instance_types=types,
                traffic=TrafficSpec(pattern="diurnal", peak_rps=SWEEP_PEAK_RPS,
                                    min_rps=SWEEP_MIN_RPS),
            )  # fmt: skip
            result = run_sweep(options, echo=echo, confirm=confirm, watch=watch)
    return SweepDemoResult(result, known_cheapest(types), truth)


def run_llm_demo(
    out: Path, echo: Callable[[str], None] = print, watch: Watch | None = None
) -> DemoResult:
    """The same pipeline on an LLM deployed as an inference component: a streaming
    endpoint (InvokeEndpointWithResponseStream, event-stream frames, the component's
    header) searched over requests in flight against token-level SLOs."""
    plan = LLM_PLAN
    period = default_period(plan.stage_seconds)
    prompts = Path(str(resources.files("recommender.local").joinpath(LLM_PROMPTS)))
    os.environ.update(EMULATOR_ENV)
    os.environ.pop("AWS_PROFILE", None)
    echo("Starting the AWS emulator...")
    with running_emulator() as emulator:
        aws = AwsClient.create(EMULATOR_ENV["AWS_DEFAULT_REGION"], endpoint_url=emulator)
        aws.create_endpoint(LLM_ENDPOINT, DEMO_VARIANT, LLM_INSTANCE_TYPE, 1,
                            image="local/recommender-llm-demo:latest")  # fmt: skip
        aws.create_inference_component(LLM_COMPONENT, LLM_ENDPOINT, DEMO_VARIANT,
                                       LLM_ENDPOINT, 1)  # fmt: skip
        publish = PublishConfig(LLM_ENDPOINT, DEMO_VARIANT, period, aws.region, emulator)
        server = replace(LLM_SERVER, publish=publish)
        truth = llm_truth(server, prompts, LLM_SLO)
        echo(f"Starting the LLM-like server (true concurrency within {LLM_SLO}: "
             f"{truth.concurrency} in flight per copy, {truth.concurrency_rps:.1f} rps)...")
        with running_server(server) as base:
            target = sagemaker_target(aws, LLM_ENDPOINT, DEMO_VARIANT, endpoint_url=base,
                                      name="llm-demo", stream=True,
                                      inference_component=LLM_COMPONENT)  # fmt: skip
            echo(f"Inference component {LLM_COMPONENT}: InService on endpoint "
                 f"{LLM_ENDPOINT}, {target.instances} copy (capacity is per copy)")

            def credentials() -> Credentials:
                return Credentials(*aws.frozen_credentials())

            spec = LoadTestSpec(target, plan, parse_slo([LLM_SLO]), payload=prompts, out=out,
                                credentials=credentials, align_seconds=period,
                                template="tgi", arrivals="uniform")  # fmt: skip
            result = run_pipeline(spec, 0.5, echo, CloudWatchOptions(aws, period, 30.0), watch)
    return DemoResult(result.loadtest, result.analysis, truth.rps, truth.concurrency,
                      truth.concurrency_rps)  # fmt: skip


# `demo --verify`: the whole loop on a compressed clock (one minute in VERIFY_MINUTE_S):
# measure a 1-instance ml.m5.large variant (16 rps per instance), apply its policy (1-4
# instances), verify it against a step from 5 to 30 rps, calibrate, and simulate again.
VERIFY_MINUTE_S = 2.0
VERIFY_PROVISION_MINUTES = 2  # the stack's truth; simulate assumes 6 until calibrated
VERIFY_TYPE = "ml.m5.large"
VERIFY_SLO = "p95<=400ms"
VERIFY_TRAFFIC = TrafficSpec(pattern="step", peak_rps=30.0, min_rps=5.0)
VERIFY_MINUTES = 20


@dataclass(frozen=True)
class VerifyDemoResult:
    run_dir: Path
    verify: VerifyResult
    calibrated: Simulation | None  # simulate again, with the calibration


def run_verify_demo(out: Path, echo: Callable[[str], None] = print) -> VerifyDemoResult:
    """measure -> apply -> verify -> calibrate -> simulate, on the AWS emulator with local
    hosting and the local scaler, through the same code each command runs against AWS."""
    from recommender.apply import apply as apply_policy
    from recommender.calibration import calibrated
    from recommender.policy import PolicyRequest
    from recommender.replay import simulate_policy
    from recommender.verify import LivePolicy, VerifyOptions, read_policy, replay_window, verify

    os.environ.update(EMULATOR_ENV)
    os.environ.pop("AWS_PROFILE", None)
    echo("Starting the AWS emulator, local hosting and the local scaler "
         f"(1 minute = {VERIFY_MINUTE_S:g} s)...")
    with running_emulator() as emulator:
        hosting = HostingConfig(emulator, model="sleep", metrics_period=1, poll_seconds=0.5,
                                provision_seconds=VERIFY_PROVISION_MINUTES * VERIFY_MINUTE_S,
                                minute_seconds=VERIFY_MINUTE_S)  # fmt: skip
        with running_hosting(hosting) as router:
            aws = AwsClient.create(EMULATOR_ENV["AWS_DEFAULT_REGION"], endpoint_url=emulator)
            aws.create_model(DEMO_ENDPOINT, "local/recommender-demo:latest")
            aws.create_endpoint_config(f"{DEMO_ENDPOINT}-config", DEMO_ENDPOINT, DEMO_VARIANT,
                                       VERIFY_TYPE, 1, {})  # fmt: skip
            aws.create_endpoint_from_config(DEMO_ENDPOINT, f"{DEMO_ENDPOINT}-config", {})
            echo(f"1. measure: {VERIFY_TYPE}, {profile_for(VERIFY_TYPE).capacity_rps:g} rps "
                 "per instance in truth")  # fmt: skip
            load = RunOptions(endpoint=DEMO_ENDPOINT, region=aws.region, endpoint_url=router,
                              aws_endpoint_url=emulator, slo=(VERIFY_SLO,), search="fixed",
                              start_rps=6, max_rps=18, stages=4, stage_seconds=4,
                              warmup_seconds=1, cloudwatch_period=1, cloudwatch_wait=1,
                              out=out)  # fmt: skip
            from recommender.pipeline import prepare

            spec, cloudwatch = prepare(load, echo)
            run = run_pipeline(spec, 0.5, echo, cloudwatch)
            run_dir = run.loadtest.run_dir
            echo("2. apply: the run's target-tracking policy, 1-4 instances")
            apply_policy(run_dir=run_dir, request=PolicyRequest(min_capacity=1, max_capacity=4),
                         access=AwsAccess(endpoint_url=emulator), echo=echo,
                         confirm=lambda _: True)  # fmt: skip
            echo(f"3. verify: {VERIFY_MINUTES} minutes of a step from "
                 f"{VERIFY_TRAFFIC.min_rps:g} to {VERIFY_TRAFFIC.peak_rps:g} rps")
            result = verify(VerifyOptions(run_dir=run_dir, traffic=VERIFY_TRAFFIC,
                                          window=VERIFY_MINUTES,
                                          minutes=VERIFY_MINUTES * VERIFY_MINUTE_S / 60.0,
                                          violation_budget=VERIFY_MINUTES,
                                          aws=AwsAccess(endpoint_url=emulator)), echo)  # fmt: skip
            live: LivePolicy | None = read_policy(aws, DEMO_ENDPOINT, DEMO_VARIANT)
    again = None
    if result.calibration is not None and live is not None:
        echo("4. simulate again with the calibration")
        series = replay_window(VERIFY_TRAFFIC.load(), VERIFY_TRAFFIC, VERIFY_MINUTES)
        policy, _ = calibrated(run_dir, live.simulated(DEFAULT_PROVISION_MINUTES))
        again = simulate_policy(run_dir, series, policy, initial_instances=1,
                                minute_seconds=VERIFY_MINUTE_S)  # fmt: skip
    return VerifyDemoResult(run_dir, result, again)
