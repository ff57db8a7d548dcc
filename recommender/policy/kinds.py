"""What each kind of endpoint scales, and on which metric: AWS's names, as tables (pure).

What each kind scales (AWS, "Amazon SageMaker and Application Auto Scaling"):

    kind                 scalable dimension                               resource id
    variant              sagemaker:variant:DesiredInstanceCount           endpoint/<e>/variant/<v>
    async                sagemaker:variant:DesiredInstanceCount           endpoint/<e>/variant/<v>
    serverless           sagemaker:variant:DesiredProvisionedConcurrency  endpoint/<e>/variant/<v>
    inference-component  sagemaker:inference-component:DesiredCopyCount   inference-component/<n>

A new kind of endpoint is a row in KINDS (and its metrics in METRICS), not a branch elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

NAMESPACE = "sagemaker"
# The name that makes the SageMaker console show the policy as its built-in one; any other
# name shows as an opaque "custom" policy there (shared/reference/004_*).
POLICY_NAME = "SageMakerEndpointInvocationScalingPolicy"
# AWS's own names in "Autoscale an asynchronous endpoint" (scaling up from zero).
STEP_POLICY_NAME = "HasBacklogWithoutCapacity-ScalingPolicy"
BACKLOG_METRIC = "ApproximateBacklogSizePerInstance"
NO_CAPACITY_METRIC = "HasBacklogWithoutCapacity"
MAX_POLICY_NAME = 256  # PolicyName's length limit in the Application Auto Scaling API

VARIANT_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
SCALABLE_DIMENSION = VARIANT_DIMENSION  # the reports' name for it
SERVERLESS_DIMENSION = "sagemaker:variant:DesiredProvisionedConcurrency"
COMPONENT_DIMENSION = "sagemaker:inference-component:DesiredCopyCount"


class Kind(str, Enum):
    VARIANT = "variant"
    ASYNC = "async"
    SERVERLESS = "serverless"
    INFERENCE_COMPONENT = "inference-component"


class Metric(str, Enum):
    INVOCATIONS = "invocations"
    CONCURRENCY = "concurrency"


@dataclass(frozen=True)
class MetricSpec:
    """What a target value counts, and the specification that names the metric."""

    name: str  # predefined metric type, or the customized metric's name
    unit: str  # what one unit of the target value is, for people
    predefined: bool = True

    def specification(self, endpoint: str | None) -> dict[str, Any]:
        if self.predefined:
            return {"PredefinedMetricSpecification": {"PredefinedMetricType": self.name}}
        return {
            "CustomizedMetricSpecification": {
                "MetricName": self.name,
                "Namespace": "AWS/SageMaker",
                "Dimensions": [{"Name": "EndpointName", "Value": endpoint}],
                "Statistic": "Average",
            }
        }


METRICS: dict[tuple[Kind, Metric], MetricSpec] = {
    (Kind.VARIANT, Metric.INVOCATIONS): MetricSpec(
        "SageMakerVariantInvocationsPerInstance", "invocations per instance per minute"
    ),
    (Kind.VARIANT, Metric.CONCURRENCY): MetricSpec(
        "SageMakerVariantConcurrentRequestsPerModelHighResolution",
        "concurrent requests per instance",
    ),
    (Kind.ASYNC, Metric.INVOCATIONS): MetricSpec(
        BACKLOG_METRIC, "queued requests per instance", predefined=False
    ),
    (Kind.SERVERLESS, Metric.INVOCATIONS): MetricSpec(
        "SageMakerVariantProvisionedConcurrencyUtilization",
        "share of the provisioned concurrency in use",
    ),
    (Kind.INFERENCE_COMPONENT, Metric.INVOCATIONS): MetricSpec(
        "SageMakerInferenceComponentInvocationsPerCopy", "invocations per copy per minute"
    ),
    (Kind.INFERENCE_COMPONENT, Metric.CONCURRENCY): MetricSpec(
        "SageMakerInferenceComponentConcurrentRequestsPerCopyHighResolution",
        "concurrent requests per copy",
    ),
}


@dataclass(frozen=True)
class KindSpec:
    dimension: str
    min_capacity_floor: int  # the least MinCapacity AWS accepts for this kind
    unit: str  # what capacity counts


KINDS: dict[Kind, KindSpec] = {
    Kind.VARIANT: KindSpec(VARIANT_DIMENSION, 1, "instance(s)"),
    # Asynchronous endpoints queue requests, so they may scale in to no instance at all.
    Kind.ASYNC: KindSpec(VARIANT_DIMENSION, 0, "instance(s)"),
    Kind.SERVERLESS: KindSpec(SERVERLESS_DIMENSION, 1, "provisioned concurrency"),
    Kind.INFERENCE_COMPONENT: KindSpec(COMPONENT_DIMENSION, 0, "copies"),
}


def resource_id(
    kind: Kind, endpoint: str | None, variant: str | None, component: str | None
) -> str:
    if kind is Kind.INFERENCE_COMPONENT:
        return f"inference-component/{component}"
    return f"endpoint/{endpoint}/variant/{variant}"
