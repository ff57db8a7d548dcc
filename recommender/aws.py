"""The one AWS boundary: the only module that imports boto3.

A typed client over a boto3 session (injected, so tests can point it at the AWS emulator
or wrap it in botocore's Stubber) for SageMaker, CloudWatch and Application Auto Scaling.
Every botocore exception is turned into an AwsError whose hint says how to fix it, in one
place (`_calling`). Retries use botocore's adaptive mode, which backs off on throttling (and
on connection errors): 9 attempts (8 retries) unless AWS_MAX_ATTEMPTS or the profile's
`max_attempts` says otherwise, as for the AWS CLI.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import boto3
import botocore.exceptions as bexc
from botocore.config import Config

from recommender.cloudwatch import Datapoint, MetricQuery
from recommender.errors import AwsError, ConfigError, EndpointError
from recommender.options import AwsAccess

RETRIES = Config(retries={"mode": "adaptive", "max_attempts": 8}, connect_timeout=10,
                 read_timeout=30)  # fmt: skip
# For calls whose failure we tolerate (percentile statistics): fail fast instead.
BEST_EFFORT = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=10,
                     read_timeout=30)  # fmt: skip
# The AWS emulator on loopback answers in milliseconds, but its HTTP server (werkzeug) now
# and then leaves a kept-alive connection unanswered; fail such a call over to a fresh
# connection after seconds, not after AWS's 30 s read timeout times eight attempts.
LOOPBACK = Config(retries={"mode": "standard", "max_attempts": 6}, connect_timeout=5,
                  read_timeout=5)  # fmt: skip
MAX_QUERIES_PER_CALL = 500  # GetMetricData's limit


@dataclass(frozen=True)
class Variant:
    name: str
    instance_type: str | None
    current_instance_count: int | None
    desired_instance_count: int | None
    # ServerlessConfig (MemorySizeInMB, MaxConcurrency, ProvisionedConcurrency) of a
    # serverless variant; None for instance-backed ones.
    serverless: Mapping[str, int] | None = None


@dataclass(frozen=True)
class AsyncConfig:
    """An endpoint config's AsyncInferenceConfig: where results land, and how many requests
    one instance works on at once (MaxConcurrentInvocationsPerInstance; None: SageMaker
    picks it)."""

    output_path: str
    failure_path: str | None = None
    max_concurrent: int | None = None
    success_topic: str | None = None
    error_topic: str | None = None


@dataclass(frozen=True)
class EndpointInfo:
    name: str
    status: str
    config_name: str
    variants: tuple[Variant, ...]
    async_config: AsyncConfig | None = None  # an asynchronous endpoint

    def variant(self, name: str | None) -> Variant:
        """The named variant, or the only one; EndpointError when that is ambiguous."""
        names = [v.name for v in self.variants]
        if name is None:
            if len(self.variants) == 1:
                return self.variants[0]
            raise EndpointError(
                f"endpoint {self.name} has variants {', '.join(names)}", "pass --variant"
            )
        for v in self.variants:
            if v.name == name:
                return v
        raise EndpointError(
            f"endpoint {self.name} has no variant {name!r} (it has {', '.join(names)})",
            "check --variant",
        )


@contextmanager
def _calling(what: str) -> Iterator[None]:
    """Map botocore's exceptions to ours, with the fix in the hint."""
    try:
        yield
    except bexc.NoRegionError as exc:
        raise AwsError("No region", "pass --region or set AWS_DEFAULT_REGION") from exc
    except (bexc.NoCredentialsError, bexc.PartialCredentialsError) as exc:
        raise AwsError(
            f"No AWS credentials for {what}",
            "set AWS_PROFILE or pass --profile, or export AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY, or run `aws sso login`",
        ) from exc
    except bexc.ProfileNotFound as exc:
        raise AwsError(str(exc), "check --profile against ~/.aws/config") from exc
    except (
        bexc.TokenRetrievalError,
        bexc.SSOTokenLoadError,
        bexc.UnauthorizedSSOTokenError,
    ) as exc:
        raise AwsError(f"AWS SSO session expired ({what})", "run `aws sso login`") from exc
    except bexc.EndpointConnectionError as exc:
        raise AwsError(
            f"cannot connect to AWS for {what}: {exc}", "check the network and --region"
        ) from exc
    except bexc.ClientError as exc:
        err = exc.response.get("Error", {})
        code, message = str(err.get("Code", "Error")), " ".join(str(err.get("Message", "")).split())
        if message.startswith("<"):  # an HTML error page (a proxy, or the emulator's 500)
            message = f"HTTP {exc.response.get('ResponseMetadata', {}).get('HTTPStatusCode')}"
        raise AwsError(f"{what} failed: {code}: {message}", _hint(code)) from exc
    except bexc.BotoCoreError as exc:
        raise AwsError(f"{what} failed: {exc}") from exc


def _items(client: Any, operation: str, key: str, what: str, **kwargs: Any) -> list[Any]:
    """The `key` lists of every page of a paginated call, joined. botocore's paginator
    follows NextToken (and fails on a repeated token, which a hand-written loop would follow
    forever); pages come lazily, so errors are mapped around the whole iteration."""
    with _calling(what):
        pages = list(client.get_paginator(operation).paginate(**kwargs))
    return [item for page in pages for item in page.get(key, [])]


def _hint(code: str) -> str | None:
    if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
        return "the credentials lack this permission: check the IAM policy"
    if code in ("ExpiredToken", "ExpiredTokenException", "RequestExpired"):
        return "the credentials expired: refresh them (e.g. `aws sso login`)"
    if code in ("ThrottlingException", "Throttling", "TooManyRequestsException"):
        return "AWS is throttling: wait and retry"
    if code in ("ValidationException", "ValidationError", "InvalidParameterValue"):
        return "check the names and values passed"
    if code in ("UnrecognizedClientException", "InvalidClientTokenId", "SignatureDoesNotMatch"):
        return "the credentials are not valid for this account/region"
    return None


class AwsClient:
    """SageMaker, CloudWatch and Application Auto Scaling over one boto3 session."""

    def __init__(self, session: boto3.session.Session, endpoint_url: str | None = None) -> None:
        self.session = session
        self.endpoint_url = endpoint_url
        self._clients: dict[str, Any] = {}
        self._account_id: str | None = None

    @classmethod
    def create(
        cls,
        region: str | None = None,
        profile: str | None = None,
        endpoint_url: str | None = None,
    ) -> AwsClient:
        """boto3's standard credential chain (env, profile, SSO, instance role)."""
        with _calling("the AWS session"):
            session = boto3.session.Session(profile_name=profile, region_name=region)
        if session.region_name is None:
            raise AwsError("No region", "pass --region or set AWS_DEFAULT_REGION")
        return cls(session, endpoint_url)

    @classmethod
    def connect(cls, access: AwsAccess, fallback_region: str | None = None) -> AwsClient:
        """`create` for a command's AWS flags; a run's or saved state's region fills in."""
        return cls.create(access.region or fallback_region, access.profile, access.endpoint_url)

    @property
    def region(self) -> str:
        return str(self.session.region_name)

    def client(self, service: str, best_effort: bool = False) -> Any:
        key = f"{service}:{best_effort}"
        if key not in self._clients:
            with _calling(f"the {service} client"):
                loopback = (self.endpoint_url or "").startswith(("http://127.0.0.1",
                                                                  "http://localhost"))
                self._clients[key] = self.session.client(
                    service,
                    endpoint_url=self.endpoint_url,
                    config=self._retries(LOOPBACK if loopback else BEST_EFFORT if best_effort
                                         else RETRIES),  # fmt: skip
                )
        return self._clients[key]

    def _retries(self, base: Config) -> Config:
        """`base`, with the user's own setting of total attempts (AWS_MAX_ATTEMPTS, the
        profile's max_attempts, as the AWS CLI reads them) over ours."""
        try:
            total = self.session._session.get_config_variable("max_attempts")
        except ValueError as exc:  # botocore converts it with int()
            raise ConfigError("AWS_MAX_ATTEMPTS (or the profile's max_attempts) is not a whole "
                              "number", "e.g. AWS_MAX_ATTEMPTS=5, or unset it") from exc
        if total is None:
            return base
        mode = (base.retries or {}).get("mode", "standard")
        return base.merge(Config(retries={"mode": mode, "total_max_attempts": int(total)}))

    def frozen_credentials(self) -> tuple[str, str, str | None]:
        """Resolve credentials now, so a missing one fails before any load is sent."""
        with _calling("signing InvokeEndpoint"):
            creds = self.session.get_credentials()
            if creds is None:
                raise bexc.NoCredentialsError()
            frozen = creds.get_frozen_credentials()
        return frozen.access_key, frozen.secret_key, frozen.token

    # --- SageMaker -------------------------------------------------------------------

    def describe_endpoint(self, name: str) -> EndpointInfo:
        sm = self.client("sagemaker")
        try:
            with _calling(f"DescribeEndpoint {name}"):
                ep = sm.describe_endpoint(EndpointName=name)
        except AwsError as exc:
            if "ValidationException" in exc.message and "not find" in exc.message.lower():
                raise EndpointError(
                    f"no endpoint named {name!r} in {self.region}", "check --endpoint and --region"
                ) from exc
            raise
        with _calling(f"DescribeEndpointConfig {ep['EndpointConfigName']}"):
            config = sm.describe_endpoint_config(EndpointConfigName=ep["EndpointConfigName"])
        types = {v["VariantName"]: v.get("InstanceType") for v in config["ProductionVariants"]}
        # The endpoint's current ServerlessConfig (an update may be under way), else the config's.
        configured = {v["VariantName"]: v.get("ServerlessConfig")
                      for v in config["ProductionVariants"]}  # fmt: skip
        variants = tuple(
            Variant(
                v["VariantName"],
                types.get(v["VariantName"]),
                v.get("CurrentInstanceCount"),
                v.get("DesiredInstanceCount"),
                _serverless(v.get("CurrentServerlessConfig") or configured.get(v["VariantName"])),
            )
            for v in ep.get("ProductionVariants", [])
        )
        return EndpointInfo(name, ep["EndpointStatus"], ep["EndpointConfigName"], variants,
                            _async_config(config.get("AsyncInferenceConfig")))  # fmt: skip

    def create_model(self, name: str, image: str) -> None:
        """CreateModel with a placeholder role (the demo's and the tests' model)."""
        with _calling(f"CreateModel {name}"):
            self.client("sagemaker").create_model(
                ModelName=name,
                ExecutionRoleArn="arn:aws:iam::123456789012:role/recommender-demo",
                PrimaryContainer={"Image": image},
            )

    def create_endpoint(
        self, name: str, variant: str, instance_type: str, instances: int, image: str,
        serverless: Mapping[str, int] | None = None,
    ) -> None:  # fmt: skip
        """CreateModel + CreateEndpointConfig + CreateEndpoint (the demo's registration);
        with `serverless` (a ServerlessConfig) a serverless variant instead of instances."""
        sm = self.client("sagemaker")
        capacity: dict[str, Any] = (
            {"ServerlessConfig": dict(serverless)}
            if serverless
            else {"InitialInstanceCount": instances, "InstanceType": instance_type}
        )
        self.create_model(f"{name}-model", image)
        with _calling(f"creating endpoint {name}"):
            sm.create_endpoint_config(
                EndpointConfigName=f"{name}-config",
                ProductionVariants=[
                    {"VariantName": variant, "ModelName": f"{name}-model", **capacity}
                ],
            )
            sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")

    def create_async_endpoint(
        self,
        name: str,
        variant: str,
        instance_type: str,
        instances: int,
        image: str,
        config: AsyncConfig,
    ) -> None:
        """CreateModel + CreateEndpointConfig (with AsyncInferenceConfig) + CreateEndpoint:
        the demo's asynchronous endpoint."""
        sm = self.client("sagemaker")
        output: dict[str, Any] = {"S3OutputPath": config.output_path}
        if config.failure_path:
            output["S3FailurePath"] = config.failure_path
        client = ({"MaxConcurrentInvocationsPerInstance": config.max_concurrent}
                  if config.max_concurrent else {})  # fmt: skip
        with _calling(f"creating endpoint {name}"):
            sm.create_model(
                ModelName=f"{name}-model",
                ExecutionRoleArn="arn:aws:iam::123456789012:role/recommender-demo",
                PrimaryContainer={"Image": image},
            )
            sm.create_endpoint_config(
                EndpointConfigName=f"{name}-config",
                ProductionVariants=[{"VariantName": variant, "ModelName": f"{name}-model",
                                     "InitialInstanceCount": instances,
                                     "InstanceType": instance_type}],
                AsyncInferenceConfig={"ClientConfig": client, "OutputConfig": output},
            )  # fmt: skip
            sm.create_endpoint(EndpointName=name, EndpointConfigName=f"{name}-config")

    # --- S3 (an asynchronous endpoint's inputs and results) -----------------------------

    def check_bucket(self, bucket: str, flag: str) -> None:
        """HeadBucket: the bucket exists and these credentials reach it; else one line
        naming `flag`."""
        try:
            with _calling(f"S3 HeadBucket {bucket}"):
                self.client("s3").head_bucket(Bucket=bucket)
        except AwsError as exc:
            code = exc.message.rsplit("failed: ", 1)[-1].split(":", 1)[0]
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise ConfigError(f"{flag}: no S3 bucket named {bucket!r}",
                                  "create it, or name one that exists") from exc  # fmt: skip
            if code in ("403", "AccessDenied", "Forbidden"):
                raise ConfigError(f"{flag}: S3 bucket {bucket!r} is not accessible with "
                                  "these credentials",
                                  "grant s3:ListBucket, s3:PutObject, s3:GetObject and "
                                  "s3:DeleteObject on it") from exc  # fmt: skip
            raise

    def put_object(self, bucket: str, key: str, body: bytes, content_type: str) -> None:
        try:
            with _calling(f"S3 PutObject s3://{bucket}/{key}"):
                self.client("s3").put_object(Bucket=bucket, Key=key, Body=body,
                                             ContentType=content_type)  # fmt: skip
        except AwsError as exc:
            raise ConfigError(f"--input-s3: cannot write s3://{bucket}/{key} ({exc.message})",
                              "pass an --input-s3 prefix these credentials may write "
                              "(s3:PutObject)") from exc  # fmt: skip

    def create_bucket(self, bucket: str) -> None:
        with _calling(f"S3 CreateBucket {bucket}"):
            self.client("s3").create_bucket(Bucket=bucket)

    def delete_objects(self, bucket: str, keys: Sequence[str]) -> int:
        """Delete these keys (DeleteObjects takes up to 1000 at a time); how many went."""
        s3, gone = self.client("s3"), 0
        for i in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[i : i + 1000]]
            with _calling(f"S3 DeleteObjects s3://{bucket}"):
                out = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
            gone += len(batch) - len(out.get("Errors") or [])
        return gone

    def list_keys(self, bucket: str, prefix: str, start_after: str | None = None) -> list[str]:
        """Keys under `prefix` (after `start_after`, in S3's lexicographic order)."""
        more = {"StartAfter": start_after} if start_after else {}
        return [str(o["Key"]) for o in _items(self.client("s3"), "list_objects_v2", "Contents",
                                              f"S3 ListObjectsV2 s3://{bucket}/{prefix}",
                                              Bucket=bucket, Prefix=prefix, **more)]  # fmt: skip

    def get_object(self, bucket: str, key: str) -> bytes:
        with _calling(f"S3 GetObject s3://{bucket}/{key}"):
            return bytes(self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())

    def presigned_head(self, bucket: str, key: str, expires: int) -> str:
        """A URL that HEADs s3://bucket/key without credentials for `expires` seconds: the
        load generator polls results with plain HTTP, no boto3 call per poll."""
        with _calling("presigning an S3 HeadObject"):
            return str(self.client("s3").generate_presigned_url(
                "head_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires))

    def list_endpoints(self) -> list[tuple[str, str]]:
        """(name, status) of every endpoint in the region."""
        return [(str(e["EndpointName"]), str(e["EndpointStatus"]))
                for e in _items(self.client("sagemaker"), "list_endpoints", "Endpoints",
                                "ListEndpoints")]  # fmt: skip

    def list_endpoint_configs(self) -> list[str]:
        return [str(c["EndpointConfigName"])
                for c in _items(self.client("sagemaker"), "list_endpoint_configs",
                                "EndpointConfigs", "ListEndpointConfigs")]  # fmt: skip

    def routing_strategies(self, config_name: str) -> dict[str, str]:
        """Variant -> its RoutingConfig.RoutingStrategy (RANDOM when the config sets none,
        as SageMaker does)."""
        with _calling(f"DescribeEndpointConfig {config_name}"):
            c = self.client("sagemaker").describe_endpoint_config(EndpointConfigName=config_name)
        return {str(v["VariantName"]): str((v.get("RoutingConfig") or {}).get(
                    "RoutingStrategy", "RANDOM"))
                for v in c.get("ProductionVariants", [])}  # fmt: skip

    def model_exists(self, name: str) -> bool:
        try:
            with _calling(f"DescribeModel {name}"):
                self.client("sagemaker").describe_model(ModelName=name)
        except AwsError as exc:
            if "ValidationException" in exc.message and "not find" in exc.message.lower():
                return False
            raise
        return True

    def create_endpoint_config(self, name: str, model: str, variant: str, instance_type: str,
                               instances: int, tags: Mapping[str, str]) -> str:  # fmt: skip
        """CreateEndpointConfig of one variant; its ARN."""
        with _calling(f"CreateEndpointConfig {name}"):
            out = self.client("sagemaker").create_endpoint_config(
                EndpointConfigName=name,
                ProductionVariants=[{"VariantName": variant, "ModelName": model,
                                     "InitialInstanceCount": instances,
                                     "InstanceType": instance_type}],  # fmt: skip
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            )
        return str(out["EndpointConfigArn"])

    def create_endpoint_from_config(self, name: str, config_name: str,
                                    tags: Mapping[str, str]) -> str:  # fmt: skip
        """CreateEndpoint; its ARN."""
        with _calling(f"CreateEndpoint {name}"):
            out = self.client("sagemaker").create_endpoint(
                EndpointName=name, EndpointConfigName=config_name,
                Tags=[{"Key": k, "Value": v} for k, v in tags.items()],
            )  # fmt: skip
        return str(out["EndpointArn"])

    def delete_endpoint(self, name: str) -> None:
        with _calling(f"DeleteEndpoint {name}"):
            self.client("sagemaker").delete_endpoint(EndpointName=name)

    def delete_endpoint_config(self, name: str) -> None:
        with _calling(f"DeleteEndpointConfig {name}"):
            self.client("sagemaker").delete_endpoint_config(EndpointConfigName=name)

    def sagemaker_tags(self, kind: str, name: str) -> dict[str, str]:
        """The tags of an endpoint or endpoint config (`kind`: "endpoint" or
        "endpoint-config"), by the ARN its name makes in this account and region."""
        with _calling("STS GetCallerIdentity"):
            account = self._account()
        arn = f"arn:aws:sagemaker:{self.region}:{account}:{kind}/{name}"
        tags = _items(self.client("sagemaker"), "list_tags", "Tags", f"ListTags {arn}",
                      ResourceArn=arn)  # fmt: skip
        return {str(t["Key"]): str(t["Value"]) for t in tags}

    def add_sagemaker_tags(self, kind: str, name: str, tags: Mapping[str, str]) -> None:
        with _calling("STS GetCallerIdentity"):
            account = self._account()
        arn = f"arn:aws:sagemaker:{self.region}:{account}:{kind}/{name}"
        with _calling(f"AddTags {arn}"):
            self.client("sagemaker").add_tags(
                ResourceArn=arn, Tags=[{"Key": k, "Value": v} for k, v in tags.items()])

    def _account(self) -> str:
        if self._account_id is None:
            self._account_id = str(self.client("sts").get_caller_identity()["Account"])
        return self._account_id

    def set_desired_instance_count(self, endpoint: str, variant: str, count: int) -> None:
        """UpdateEndpointWeightsAndCapacities: what Application Auto Scaling calls to scale a
        variant (the local hosting layer follows the desired count it sets)."""
        with _calling(f"UpdateEndpointWeightsAndCapacities {endpoint}"):
            self.client("sagemaker").update_endpoint_weights_and_capacities(
                EndpointName=endpoint,
                DesiredWeightsAndCapacities=[{"VariantName": variant,
                                              "DesiredInstanceCount": count}],
            )  # fmt: skip

    def create_inference_component(
        self, name: str, endpoint: str, variant: str, model: str, copies: int
    ) -> None:
        """CreateInferenceComponent for a model already created (the demo's and the tests')."""
        with _calling(f"CreateInferenceComponent {name}"):
            self.client("sagemaker").create_inference_component(
                InferenceComponentName=name,
                EndpointName=endpoint,
                VariantName=variant,
                Specification={
                    "ModelName": model,
                    "ComputeResourceRequirements": {"MinMemoryRequiredInMb": 1024},
                },
                RuntimeConfig={"CopyCount": copies},
            )

    # --- CloudWatch ------------------------------------------------------------------

    def get_metric_data(
        self,
        queries: Sequence[MetricQuery],
        start: datetime,
        end: datetime,
        best_effort: bool = False,
    ) -> list[Datapoint]:
        """All datapoints of `queries` in [start, end), over all pages."""
        cw = self.client("cloudwatch", best_effort)
        by_id = {q.id: q for q in queries}
        out: list[Datapoint] = []
        for i in range(0, len(queries), MAX_QUERIES_PER_CALL):
            batch = [q.to_api() for q in queries[i : i + MAX_QUERIES_PER_CALL]]
            # A series can continue on the next page: each page's results are appended.
            results = _items(cw, "get_metric_data", "MetricDataResults",
                             "CloudWatch GetMetricData", MetricDataQueries=batch,
                             StartTime=start, EndTime=end, ScanBy="TimestampAscending")  # fmt: skip
            for result in results:
                q = by_id[result["Id"]]
                for ts, value in zip(result["Timestamps"], result["Values"], strict=True):
                    out.append(Datapoint(q, ts.astimezone(timezone.utc), float(value)))
        return out

    def put_metric_data(self, namespace: str, data: Sequence[Mapping[str, Any]]) -> None:
        cw = self.client("cloudwatch")
        # PutMetricData takes up to 1000 items, and only 150 distinct values in all in a
        # call that has a Values array: each datum with values goes in a call of its own.
        plain = [d for d in data if "Values" not in d]
        calls = [plain[i : i + 1000] for i in range(0, len(plain), 1000)]
        calls += [[d] for d in data if "Values" in d]
        for batch in calls:
            with _calling("CloudWatch PutMetricData"):
                cw.put_metric_data(Namespace=namespace, MetricData=list(batch))

    # --- Application Auto Scaling (recommender.apply plans the requests) ----------------

    def describe_endpoint_config_facts(self, config_name: str) -> EndpointConfigFacts:
        """What decides which scalable kind an endpoint is: async, serverless variants."""
        with _calling(f"DescribeEndpointConfig {config_name}"):
            c = self.client("sagemaker").describe_endpoint_config(EndpointConfigName=config_name)
        serverless = {
            str(v["VariantName"]): dict(v["ServerlessConfig"])
            for v in c.get("ProductionVariants", [])
            if v.get("ServerlessConfig")
        }
        return EndpointConfigFacts(config_name, bool(c.get("AsyncInferenceConfig")), serverless)

    def describe_inference_component(self, name: str) -> InferenceComponentInfo:
        try:
            with _calling(f"DescribeInferenceComponent {name}"):
                ic = self.client("sagemaker").describe_inference_component(
                    InferenceComponentName=name
                )
        except AwsError as exc:
            if "ValidationException" in exc.message and "not find" in exc.message.lower():
                raise EndpointError(
                    f"no inference component named {name!r} in {self.region}",
                    "check --inference-component and --region",
                ) from exc
            raise
        copies = (ic.get("RuntimeConfig") or {}).get("CurrentCopyCount")
        return InferenceComponentInfo(
            name,
            str(ic.get("InferenceComponentStatus")),
            str(ic.get("EndpointName")),
            ic.get("VariantName"),
            copies,
        )

    def describe_scalable_targets(
        self, namespace: str, resource_id: str, dimension: str
    ) -> list[dict[str, Any]]:
        return _items(self.client("application-autoscaling"), "describe_scalable_targets",
                      "ScalableTargets", f"DescribeScalableTargets {resource_id}",
                      ServiceNamespace=namespace, ResourceIds=[resource_id],
                      ScalableDimension=dimension)  # fmt: skip

    def describe_scaling_policies(
        self, namespace: str, resource_id: str, dimension: str
    ) -> list[dict[str, Any]]:
        return _items(self.client("application-autoscaling"), "describe_scaling_policies",
                      "ScalingPolicies", f"DescribeScalingPolicies {resource_id}",
                      ServiceNamespace=namespace, ResourceId=resource_id,
                      ScalableDimension=dimension)  # fmt: skip

    def scalable_targets(self, namespace: str) -> list[dict[str, Any]]:
        """Every scalable target of a namespace (the local scaler's view)."""
        return _items(self.client("application-autoscaling"), "describe_scalable_targets",
                      "ScalableTargets", f"DescribeScalableTargets {namespace}",
                      ServiceNamespace=namespace)  # fmt: skip

    def scaling_policies(self, namespace: str) -> list[dict[str, Any]]:
        """Every scaling policy of a namespace."""
        return _items(self.client("application-autoscaling"), "describe_scaling_policies",
                      "ScalingPolicies", f"DescribeScalingPolicies {namespace}",
                      ServiceNamespace=namespace)  # fmt: skip

    def describe_scaling_activities(
        self, namespace: str, resource_id: str, dimension: str
    ) -> list[dict[str, Any]]:
        """The target's scaling activities, newest first (cause, start, end, status)."""
        return _items(self.client("application-autoscaling"), "describe_scaling_activities",
                      "ScalingActivities", f"DescribeScalingActivities {resource_id}",
                      ServiceNamespace=namespace, ResourceId=resource_id,
                      ScalableDimension=dimension)  # fmt: skip

    def register_scalable_target(self, params: Mapping[str, Any]) -> None:
        with _calling(f"RegisterScalableTarget {params.get('ResourceId')}"):
            self.client("application-autoscaling").register_scalable_target(**params)

    def deregister_scalable_target(self, params: Mapping[str, Any]) -> None:
        with _calling(f"DeregisterScalableTarget {params.get('ResourceId')}"):
            self.client("application-autoscaling").deregister_scalable_target(**params)

    def put_scaling_policy(self, params: Mapping[str, Any]) -> str:
        """Put (create or replace) a scaling policy; its ARN."""
        with _calling(f"PutScalingPolicy {params.get('PolicyName')}"):
            out = self.client("application-autoscaling").put_scaling_policy(**params)
        return str(out["PolicyARN"])

    def delete_scaling_policy(self, params: Mapping[str, Any]) -> None:
        with _calling(f"DeleteScalingPolicy {params.get('PolicyName')}"):
            self.client("application-autoscaling").delete_scaling_policy(**params)

    def put_metric_alarm(self, params: Mapping[str, Any]) -> None:
        with _calling(f"PutMetricAlarm {params.get('AlarmName')}"):
            self.client("cloudwatch").put_metric_alarm(**params)

    def describe_alarms(self, names: Sequence[str]) -> list[dict[str, Any]]:
        """The metric alarms of these names (DescribeAlarms takes up to 100 at a time)."""
        cw = self.client("cloudwatch")
        return [alarm for i in range(0, len(names), 100)
                for alarm in _items(cw, "describe_alarms", "MetricAlarms",
                                    "CloudWatch DescribeAlarms",
                                    AlarmNames=list(names[i : i + 100]))]  # fmt: skip

    def alarms_with_prefix(self, prefix: str) -> list[dict[str, Any]]:
        """The metric alarms whose names start with `prefix` (target tracking's are named
        TargetTracking-<resource id>-AlarmHigh/-AlarmLow-<id>)."""
        return _items(self.client("cloudwatch"), "describe_alarms", "MetricAlarms",
                      "CloudWatch DescribeAlarms", AlarmNamePrefix=prefix)  # fmt: skip

    def set_alarm_state(self, name: str, state: str, reason: str) -> None:
        with _calling(f"CloudWatch SetAlarmState {name}"):
            self.client("cloudwatch").set_alarm_state(AlarmName=name, StateValue=state,
                                                      StateReason=reason)  # fmt: skip

    def metric_sum(self, namespace: str, name: str, dimensions: Mapping[str, str],
                   start: datetime, end: datetime, period: int) -> float | None:  # fmt: skip
        """The Sum of a metric over [start, end) (GetMetricStatistics); None: no data."""
        with _calling(f"CloudWatch GetMetricStatistics {name}"):
            out = self.client("cloudwatch").get_metric_statistics(
                Namespace=namespace, MetricName=name, StartTime=start, EndTime=end,
                Period=period, Statistics=["Sum"],
                Dimensions=[{"Name": k, "Value": v} for k, v in dimensions.items()])
        points = out.get("Datapoints") or []
        return sum(float(p["Sum"]) for p in points) if points else None

    def delete_alarms(self, names: Sequence[str]) -> None:
        cw = self.client("cloudwatch")
        for i in range(0, len(names), 100):
            with _calling("CloudWatch DeleteAlarms"):
                cw.delete_alarms(AlarmNames=list(names[i : i + 100]))


def _async_config(config: Mapping[str, Any] | None) -> AsyncConfig | None:
    if not config:
        return None
    output = config.get("OutputConfig") or {}
    notify = output.get("NotificationConfig") or {}
    limit = (config.get("ClientConfig") or {}).get("MaxConcurrentInvocationsPerInstance")
    return AsyncConfig(str(output.get("S3OutputPath") or ""), output.get("S3FailurePath"),
                       int(limit) if limit else None, notify.get("SuccessTopic"),
                       notify.get("ErrorTopic"))  # fmt: skip


def _serverless(config: Mapping[str, Any] | None) -> dict[str, int] | None:
    """A ServerlessConfig's numbers (MemorySizeInMB, MaxConcurrency, ProvisionedConcurrency)."""
    if not config:
        return None
    keys = ("MemorySizeInMB", "MaxConcurrency", "ProvisionedConcurrency")
    return {k: int(config[k]) for k in keys if config.get(k) is not None}


def credentials_provider(profile: str | None) -> Callable[[], tuple[str, str, str | None]]:
    """Resolve credentials once through boto3's chain and return a cheap getter.

    botocore's RefreshableCredentials renew themselves shortly before they expire, so
    calling the getter per request always yields valid (access key, secret, token).
    """
    with _calling("resolving AWS credentials"):
        creds = boto3.session.Session(profile_name=profile).get_credentials()
        if creds is None:
            raise bexc.NoCredentialsError()

    def frozen() -> tuple[str, str, str | None]:
        f = creds.get_frozen_credentials()
        return f.access_key, f.secret_key, f.token

    return frozen


def aligned(ts: float, period: int, up: bool = False) -> datetime:
    """`ts` (epoch seconds) rounded down (or up) to a multiple of `period`, in UTC:
    CloudWatch buckets start on period boundaries, so queries should too."""
    f = math.ceil if up else math.floor
    return datetime.fromtimestamp(f(ts / period) * period, timezone.utc)


@dataclass(frozen=True)
class EndpointConfigFacts:
    """An endpoint config's facts that decide how its variants scale."""

    name: str
    async_inference: bool
    serverless: Mapping[str, Mapping[str, Any]]  # variant -> its ServerlessConfig


@dataclass(frozen=True)
class InferenceComponentInfo:
    name: str
    status: str
    endpoint: str
    variant: str | None
    copies: int | None
