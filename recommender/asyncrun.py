"""`loadtest` and `run` against an asynchronous endpoint (the application side).

The endpoint's kind decides: DescribeEndpoint -> DescribeEndpointConfig has an
AsyncInferenceConfig. Then the load is recommender.loadgen.asyncload's (inputs in S3,
InvokeEndpointAsync, completion seen in S3), the CloudWatch metrics are the async ones, and
the analysis gives a target for ApproximateBacklogSizePerInstance. Flags that contradict
the endpoint's kind are refused before anything is sent or written.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from recommender.analysis.asynchronous import check_async_slo
from recommender.aws import AwsClient, EndpointInfo
from recommender.errors import ConfigError, Declined, EndpointError
from recommender.loadgen.asyncload import AsyncLoadResult, AsyncLoadSpec, run_async_loadtest
from recommender.loadgen.payloads import load_payloads
from recommender.loadgen.sigv4 import Credentials
from recommender.options import RunOptions
from recommender.plan import RampPlan, describe_cost
from recommender.s3uri import parse_s3_uri

Echo = Callable[[str], None]
Confirm = Callable[[str], bool]


@dataclass(frozen=True)
class AsyncPrepared:
    spec: AsyncLoadSpec
    aws: AwsClient
    period: int
    wait: float | None


def prepare_async(options: RunOptions, echo: Echo, confirm: Confirm | None
                  ) -> AsyncPrepared | None:  # fmt: skip
    """The async load's spec when `--endpoint` names an asynchronous endpoint; None for any
    other target. ConfigError when the flags and the endpoint's kind disagree."""
    if options.endpoint is None:
        return None
    from recommender.metrics import default_period
    from recommender.pipeline import sagemaker_target

    aws = AwsClient.connect(options.aws)
    info: EndpointInfo = aws.describe_endpoint(options.endpoint)
    config = info.async_config
    if config is None:
        if options.input_s3 is not None:
            raise ConfigError(
                f"endpoint {options.endpoint} is a real-time endpoint (its config "
                f"{info.config_name} has no AsyncInferenceConfig), but --input-s3 was given",
                "drop --input-s3, or name an asynchronous endpoint",
            )
        return None
    if options.input_s3 is None:
        raise ConfigError(
            f"endpoint {options.endpoint} is asynchronous (AsyncInferenceConfig): its "
            "requests read their input from S3",
            "pass --input-s3 s3://bucket/prefix (the inputs are removed after the run)",
        )
    for flag, given in (("--workers", options.workers), ("--master", options.master),
                        ("--locustfile", options.locustfile), ("--web-ui", options.web_ui),
                        ("--keep-requests", options.keep_requests)):  # fmt: skip
        if given:
            raise ConfigError(f"{flag} is for Locust's load on real-time endpoints; "
                              f"{options.endpoint} is asynchronous", f"drop {flag}")  # fmt: skip
    parse_s3_uri(options.input_s3, "--input-s3")
    if info.status != "InService":
        raise EndpointError(f"endpoint {options.endpoint} is {info.status}, not InService",
                            "wait until it is InService")  # fmt: skip
    slo = options.parse_slo()
    check_async_slo(slo, options.poll_interval, options.completion_timeout)
    # A queue carries load from stage to stage, so async runs a fixed ramp, each stage
    # drained before the next, stopping at the first failing stage.
    plan = replace(options, search="fixed").load_plan(slo)
    assert isinstance(plan, RampPlan)
    payloads = load_payloads(options.payload, options.content_type)
    target = sagemaker_target(aws, options.endpoint, options.variant, options.endpoint_url,
                              name=options.name, instances=options.instances,
                              content_type=payloads.content_type, accept=options.accept,
                              headers=options.headers())  # fmt: skip
    target = replace(target, url=target.url.rsplit("/", 1)[0] + "/async-invocations")

    def credentials() -> Credentials:
        return Credentials(*aws.frozen_credentials())

    credentials()  # fail now, before any input is written, when there are none
    spec = AsyncLoadSpec(
        target=target, plan=plan, slo=slo, payloads=payloads, input_s3=options.input_s3,
        credentials=credentials, out=options.out, slots_per_instance=config.max_concurrent,
        completion_timeout=options.completion_timeout, poll_interval=options.poll_interval,
        keep_inputs=options.keep_inputs, keep_outputs=options.keep_outputs,
        arrivals=options.arrivals, seed=options.seed,
    )  # fmt: skip
    slots = config.max_concurrent or "SageMaker's choice of"
    echo(f"Endpoint {options.endpoint}: InService, asynchronous, variant {target.variant}, "
         f"{target.instances} x {target.instance_type or 'unknown type'}, {slots} concurrent "
         f"invocation(s) per instance; results in {config.output_path}")  # fmt: skip
    echo(describe_cost(plan, target.shown_url) + " (at most: the ramp stops at the first "
         "failing stage; each stage drains before the next)")
    if confirm is not None and not confirm("Start?"):
        raise Declined("the load test was not started", "answer yes, or pass --yes")
    period = options.cloudwatch_period or default_period(options.stage_length)
    return AsyncPrepared(spec, aws, period, options.cloudwatch_wait)


def measure_async(prepared: AsyncPrepared, echo: Echo) -> AsyncLoadResult:
    """The async load, then its CloudWatch metrics (a failed collection keeps the run)."""
    from recommender.collect import collect_run
    from recommender.errors import RecommenderError

    spec = prepared.spec
    echo(f"Load test (asynchronous): {len(spec.plan.stages)} stages, "
         f"{spec.plan.stages[0].rps:g} -> {spec.plan.max_rps:g} rps -> {spec.target.shown_url}")
    result = run_async_loadtest(spec, prepared.aws, echo)
    if result.status != "interrupted":
        echo("Collecting CloudWatch metrics for the test window...")
        try:
            got = collect_run(result.run_dir, prepared.aws, prepared.period, prepared.wait,
                              echo)  # fmt: skip
            echo(f"  {got.rows} datapoints at {got.period}s -> {got.path.name}")
        except RecommenderError as exc:
            echo(f"  warning: CloudWatch collection failed: {exc.one_line()}; "
                 f"run `recommender collect {result.run_dir}` later")  # fmt: skip
    return result
