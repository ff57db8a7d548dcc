"""The options of `loadtest` and `run`: one frozen, keyword-only object.

The CLI parses its flags into `RunOptions` and hands it to one library function
(`pipeline.loadtest` or `pipeline.run`). The rules that tie options together (one target,
the worker flags) are checked when the object is made; what the options mean (the SLO, the
plan, the headers, the defaults that depend on where the endpoint runs) is derived here,
purely, so each rule sits beside the options it reads. Every error names the flag.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from recommender.analysis.recommend import DEFAULT_SAFETY_FACTOR, check_safety_factor
from recommender.bounds import check_number, check_port
from recommender.errors import ConfigError
from recommender.plan import (
    CONTROLS,
    MAX_STAGES,
    STREAM_METRICS,
    LoadPlan,
    Slo,
    abort_factor,
    check_header,
    load_plan,
    parse_headers,
    parse_slo,
)

TOKEN_FORMATS = ("auto", "jsonl", "sse")  # recommender.loadgen.stream counts tokens so

# CloudWatch data is per minute: against AWS each stage holds two whole minutes, and the
# search may run for two hours; against a container, 30 s stages and half an hour.
AWS_STAGE_SECONDS, LOCAL_STAGE_SECONDS = 180.0, 30.0
AWS_MAX_DURATION, LOCAL_MAX_DURATION = 7200.0, 1800.0
CUSTOM_ATTRIBUTES_HEADER = "X-Amzn-SageMaker-Custom-Attributes"
TARGET_VARIANT_HEADER = "X-Amzn-SageMaker-Target-Variant"
INFERENCE_COMPONENT_HEADER = "X-Amzn-SageMaker-Inference-Component"
DEFAULT_START_RPS = 10.0


# What `run --kind` may assert about the variant (recommender.pipeline.sagemaker_target).
ENDPOINT_KINDS = ("variant", "serverless")

@dataclass(frozen=True, kw_only=True)
class AwsAccess:
    """Where a command's AWS calls go: region (None: the run's, else boto3's default),
    profile (boto3's credential chain) and an API URL of one's own (the local emulator)."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """Everything `loadtest` and `run` are told. Defaults are the CLI's; None means "pick
    from where the endpoint runs" (see the properties)."""

    # What to load: a container's invocation URL, or a SageMaker endpoint (signed).
    url: str | None = None
    endpoint: str | None = None
    variant: str | None = None
    kind: str | None = None  # what the variant must be: variant | serverless (None: as found)
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None  # the runtime URL, overridden
    aws_endpoint_url: str | None = None  # the AWS API URL, overridden
    name: str | None = None
    instances: int | None = None
    # The requests.
    payload: Path | None = None
    content_type: str | None = None
    accept: str | None = None
    header: tuple[str, ...] = ()  # "Name: value" lines
    custom_attributes: str | None = None
    target_variant: str | None = None
    # An inference component on the endpoint: every call names it (header), and capacity is
    # per copy of it.
    inference_component: str | None = None
    locustfile: Path | None = None
    # Streamed answers (LLMs) and prompts rendered by a template.
    stream: bool = False
    token_format: str = "auto"
    template: str | None = None
    max_new_tokens: int | None = None
    # The objective.
    slo: tuple[str, ...] = ("p95<=300ms",)
    max_error_rate: float = 0.01
    # The plan: the adaptive search, or a fixed ramp (flags or a plan file).
    search: str = "adaptive"
    # What a stage sets: an arrival rate (open loop), or requests in flight (closed loop).
    control: str = "rate"
    plan: Path | None = None
    start_rps: float = DEFAULT_START_RPS
    start_concurrency: int = 1  # --control concurrency: requests in flight
    max_concurrency: int | None = None
    max_rps: float | None = None
    stages: int = 8
    stage_seconds: float | None = None
    warmup_seconds: float | None = None
    precision: float = 0.05
    max_duration: float | None = None
    max_requests: int | None = None
    abort_error_rate: float = 0.10
    abort_latency: str = "3x"
    probe: bool = True  # adaptive: a saturation probe first
    early_stop: bool = True  # adaptive: end clear stages at an interim look
    # The load generator.
    arrivals: str | None = None  # --arrivals; None: not given (arrival_model)
    users: int = 0
    seed: int | None = None
    workers: int = 0
    master: bool = False
    expect_workers: int = 0
    # Loopback unless asked: Locust's master port takes any worker, unauthenticated.
    master_bind_host: str = "127.0.0.1"
    master_port: int = 5557
    keep_requests: bool = False
    web_ui: bool = False  # Locust's web UI on loopback while the run goes
    web_port: int = 8089
    # An asynchronous endpoint: where the inputs go, how completion is watched.
    input_s3: str | None = None
    keep_inputs: bool = False
    keep_outputs: bool = False
    completion_timeout: float = 900.0
    poll_interval: float = 0.5
    # CloudWatch, for a SageMaker endpoint.
    cloudwatch_period: int | None = None
    cloudwatch_wait: float | None = None
    out: Path = Path("reports")
    # `run` only: the recommendation, and the policy applied after it.
    safety_factor: float = DEFAULT_SAFETY_FACTOR
    apply: bool = False
    min_capacity: int | None = None
    max_capacity: int | None = None

    def __post_init__(self) -> None:
        if (self.url is None) == (self.endpoint is None):
            raise ConfigError("give either --url or --endpoint", "--url for a container, "
                              "--endpoint for a SageMaker endpoint")  # fmt: skip
        if self.kind is not None and self.kind not in ENDPOINT_KINDS:
            raise ConfigError(f"unknown --kind {self.kind!r}", "use variant or serverless")
        if self.kind is not None and self.endpoint is None:
            raise ConfigError("--kind needs --endpoint", "a container URL has no kind")
        self.check_numbers()
        if self.input_s3 is not None and self.url is not None:
            raise ConfigError("--input-s3 is for an asynchronous SageMaker endpoint",
                              "pass --endpoint, or drop --input-s3")  # fmt: skip
        if self.inference_component is not None and self.endpoint is None:
            raise ConfigError("--inference-component needs --endpoint",
                              "an inference component is addressed through its endpoint")

    def check_numbers(self) -> None:
        """Every number given, finite and in its range, whether or not the plan or mode
        chosen reads it (a one-stage ramp never reads --max-rps, a plan file never reads
        --stage-seconds, --web-port is read only with --web-ui): checked when the options
        are made, so before the endpoint, AWS or the disk is touched."""
        rate, fraction = "requests/s, e.g. ", "a fraction, e.g. "
        check_number("--start-rps", self.start_rps, low=0, low_open=True,
                      hint=f"the first stage's offered rate in {rate}10")
        check_number("--max-rps", self.max_rps, low=0, low_open=True,
                      hint=f"the highest offered rate to try, in {rate}200")
        check_number("--stages", self.stages, low=1, high=MAX_STAGES)
        check_number("--stage-seconds", self.stage_seconds, low=1, hint="seconds, e.g. 30")
        check_number("--warmup-seconds", self.warmup_seconds, low=0, hint="seconds, e.g. 5")
        check_number("--precision", self.precision, low=0, high=1, low_open=True,
                     high_open=True, hint=f"{fraction}0.05")
        check_number("--max-duration", self.max_duration, low=0, low_open=True,
                     hint="seconds, e.g. 1800")
        check_number("--max-requests", self.max_requests, low=1)
        check_number("--abort-error-rate", self.abort_error_rate, low=0, high=1,
                     low_open=True, hint=f"{fraction}0.10")
        check_number("--max-error-rate", self.max_error_rate, low=0, high=1, high_open=True,
                     hint=f"give {fraction}0.01 for 1%")
        check_number("--start-concurrency", self.start_concurrency, low=1)
        check_number("--max-concurrency", self.max_concurrency, low=1,
                     hint="the most requests in flight to try, e.g. 64")
        check_number("--users", self.users, low=0, hint="0 sizes the pool")
        check_number("--workers", self.workers, low=0, hint="0 runs one process")
        check_number("--expect-workers", self.expect_workers, low=0)
        check_port("--master-port", self.master_port)
        check_port("--web-port", self.web_port)
        check_number("--max-new-tokens", self.max_new_tokens, low=1)
        check_number("--instances", self.instances, low=1)
        check_number("--cloudwatch-period", self.cloudwatch_period, low=1, hint="seconds, e.g. 60")
        check_number("--cloudwatch-wait", self.cloudwatch_wait, low=0, hint="seconds")
        check_number("--min-capacity", self.min_capacity, low=0)
        check_number("--max-capacity", self.max_capacity, low=0)
        check_safety_factor(self.safety_factor)
        check_number("--completion-timeout", self.completion_timeout, low=0, low_open=True,
                     hint="seconds, e.g. 900")
        check_number("--poll-interval", self.poll_interval, low=0.05, high=60, hint="seconds")

    @property
    def aws(self) -> AwsAccess:
        return AwsAccess(region=self.region, profile=self.profile,
                         endpoint_url=self.aws_endpoint_url)  # fmt: skip

    def check_generator(self) -> None:
        """Locust's distributed mode: local workers, or a master that others join (each
        number alone was checked when the options were made: `check_numbers`)."""
        if self.master and self.expect_workers < 1:
            raise ConfigError("--master needs --expect-workers N", "say how many workers will join")
        if self.expect_workers and not self.master:
            raise ConfigError("--expect-workers needs --master")

    @property
    def on_aws(self) -> bool:
        """A real SageMaker endpoint (not a container, not a runtime URL of our own)."""
        return self.endpoint is not None and self.endpoint_url is None

    @property
    def stage_length(self) -> float:
        if self.stage_seconds is not None:
            return self.stage_seconds
        return AWS_STAGE_SECONDS if self.on_aws else LOCAL_STAGE_SECONDS

    @property
    def duration_budget(self) -> float:
        if self.max_duration is not None:
            return self.max_duration
        return AWS_MAX_DURATION if self.on_aws else LOCAL_MAX_DURATION

    def parse_slo(self) -> Slo:
        slo = parse_slo(self.slo, self.max_error_rate)
        if slo.needs_stream and not self.stream:
            term = next(t for t in slo.terms if t.metric in STREAM_METRICS)
            raise ConfigError(f"--slo {term} needs --stream",
                              "only a streamed answer has tokens to time")  # fmt: skip
        if self.token_format not in TOKEN_FORMATS:
            raise ConfigError(f"unknown --token-format {self.token_format!r}",
                              f"use {', '.join(TOKEN_FORMATS)}")  # fmt: skip
        return slo

    def abort_latency_factor(self, slo: Slo) -> float:
        return abort_factor(self.abort_latency, slo)

    def check_control(self) -> None:
        """--control and the flags that only make sense with one control or the other."""
        if self.control not in CONTROLS:
            raise ConfigError(f"unknown --control {self.control!r}", "use rate or concurrency")
        if self.control == "rate":
            if self.max_concurrency is not None or self.start_concurrency != 1:
                raise ConfigError("--start-concurrency and --max-concurrency are for "
                                  "--control concurrency", "add --control concurrency, or "
                                  "give rates with --start-rps and --max-rps")  # fmt: skip
            return
        rules = (
            (self.search != "adaptive", "--search fixed",
             "--control concurrency runs the adaptive search; drop --search fixed"),
            (self.plan is not None, "--plan", "a plan file holds rates; drop --plan"),
            (self.max_rps is not None or self.start_rps != DEFAULT_START_RPS,
             "--start-rps/--max-rps", "give --start-concurrency and --max-concurrency"),
            (self.arrivals is not None, "--arrivals",
             "closed loop has no arrival process: each user sends when its last answer came"),
            (self.users != 0, "--users",
             "the users are the concurrency: give --max-concurrency"),
            (self.workers > 0 or self.master, "--workers/--master",
             "closed-loop load runs in one Locust process; drop --workers and --master"),
        )  # fmt: skip
        for bad, flag, hint in rules:
            if bad:
                raise ConfigError(f"{flag} makes no sense with --control concurrency", hint)
        if self.max_concurrency is None:
            raise ConfigError("--control concurrency needs --max-concurrency",
                              "the most requests in flight to try, e.g. 64")  # fmt: skip
        if self.max_concurrency < self.start_concurrency:
            raise ConfigError(f"--max-concurrency ({self.max_concurrency}) is below "
                              f"--start-concurrency ({self.start_concurrency})")  # fmt: skip

    @property
    def arrival_model(self) -> str:
        """The arrivals of a rate-controlled run: Poisson unless --arrivals says otherwise
        (what production traffic from many independent clients looks like)."""
        return self.arrivals or "poisson"

    def load_plan(self, slo: Slo) -> LoadPlan:
        self.check_control()
        concurrency = self.control == "concurrency"
        return load_plan(
            plan_file=self.plan,
            mode=self.search,
            control=self.control,
            start_rps=float(self.start_concurrency) if concurrency else self.start_rps,
            max_rps=(float(self.max_concurrency or 0) if concurrency else self.max_rps),
            stages=self.stages,
            stage_seconds=self.stage_length,
            warmup_seconds=self.warmup_seconds,
            precision=self.precision,
            max_duration=self.duration_budget,
            max_requests=self.max_requests,
            abort_error_rate=self.abort_error_rate,
            abort_latency_factor=self.abort_latency_factor(slo),
            probe=self.probe,
            early_stop=self.early_stop,
        )

    def headers(self) -> dict[str, str]:
        """--header lines plus the SageMaker headers given by their own flags."""
        headers = parse_headers(self.header)
        if self.custom_attributes:
            headers[CUSTOM_ATTRIBUTES_HEADER] = self.custom_attributes
        if self.target_variant:
            headers[TARGET_VARIANT_HEADER] = self.target_variant
        if self.inference_component:
            headers[INFERENCE_COMPONENT_HEADER] = self.inference_component
        for flag, name, value in (
            ("--custom-attributes", CUSTOM_ATTRIBUTES_HEADER, self.custom_attributes),
            ("--target-variant", TARGET_VARIANT_HEADER, self.target_variant),
            ("--inference-component", INFERENCE_COMPONENT_HEADER, self.inference_component),
            ("--content-type", "Content-Type", self.content_type),
            ("--accept", "Accept", self.accept),
        ):
            if value is not None:
                check_header(name, value, flag)
        return headers
