"""SageMaker inference components in the AWS emulator (moto 5.2 has none).

Create/Describe/List/Delete InferenceComponent and UpdateInferenceComponentRuntimeConfig, in
SageMaker's JSON protocol and shapes (botocore's service model), on endpoints moto knows:
creating one checks that its endpoint and variant exist in moto's SageMaker backend. A copy
count change takes effect at once (CurrentCopyCount = DesiredCopyCount; AWS takes minutes).

`install` lets moto's Application Auto Scaling register the scalable dimension
`sagemaker:inference-component:DesiredCopyCount` on `inference-component/<name>`, which it
refuses as unsupported; like AWS, only for an inference component that exists.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from recommender.local.emulator_app import ApiError, Call, Extension, JsonHandler

ACCOUNT = "123456789012"  # moto's default account
DIMENSION = "sagemaker:inference-component:DesiredCopyCount"
PREFIX = "inference-component/"


def _arn(region: str, kind: str, name: str) -> str:
    return f"arn:aws:sagemaker:{region}:{ACCOUNT}:{kind}/{name.lower()}"


class InferenceComponents(Extension):
    def __init__(self) -> None:
        super().__init__()
        self.components: dict[tuple[str, str], dict[str, Any]] = {}  # (region, name) -> record

    def reset(self) -> None:
        with self.lock:
            self.components.clear()

    def operations(self) -> Mapping[str, JsonHandler]:
        return {f"SageMaker.{op.__name__[1:]}": op for op in (
            self._CreateInferenceComponent, self._DescribeInferenceComponent,
            self._UpdateInferenceComponentRuntimeConfig, self._DeleteInferenceComponent,
            self._ListInferenceComponents)}  # fmt: skip

    def _get(self, call: Call) -> dict[str, Any]:
        name = str(call.require("InferenceComponentName"))
        ic = self.components.get((call.region, name))
        if ic is None:
            raise ApiError("ValidationException", f'Could not find inference component '
                           f'"{_arn(call.region, "inference-component", name)}".')  # fmt: skip
        return ic

    def _CreateInferenceComponent(self, call: Call) -> Mapping[str, Any]:
        name = str(call.require("InferenceComponentName"))
        endpoint = str(call.require("EndpointName"))
        variant = str(call.require("VariantName"))
        copies = int((call.require("RuntimeConfig") or {}).get("CopyCount", 1))
        spec = call.require("Specification")
        variants = _endpoint_variants(call.region, endpoint)
        if variant not in variants:
            raise ApiError("ValidationException", f"Endpoint {endpoint} has no variant {variant}")
        now = time.time()
        with self.lock:
            if (call.region, name) in self.components:
                raise ApiError("ValidationException", f"Cannot create already existing "
                               f'inference component "{name}".')  # fmt: skip
            arn = _arn(call.region, "inference-component", name)
            self.components[(call.region, name)] = {
                "InferenceComponentName": name,
                "InferenceComponentArn": arn,
                "EndpointName": endpoint,
                "EndpointArn": _arn(call.region, "endpoint", endpoint),
                "VariantName": variant,
                "Specification": spec,
                "RuntimeConfig": {"DesiredCopyCount": copies, "CurrentCopyCount": copies},
                "CreationTime": now,
                "LastModifiedTime": now,
                "InferenceComponentStatus": "InService",
            }
        return {"InferenceComponentArn": arn}

    def _DescribeInferenceComponent(self, call: Call) -> Mapping[str, Any]:
        with self.lock:
            return dict(self._get(call))

    def _UpdateInferenceComponentRuntimeConfig(self, call: Call) -> Mapping[str, Any]:
        copies = int((call.require("DesiredRuntimeConfig") or {}).get("CopyCount", -1))
        if copies < 0:
            raise ApiError("ValidationException", "DesiredRuntimeConfig.CopyCount must be >= 0")
        with self.lock:
            ic = self._get(call)
            ic["RuntimeConfig"] = {"DesiredCopyCount": copies, "CurrentCopyCount": copies}
            ic["LastModifiedTime"] = time.time()
            return {"InferenceComponentArn": ic["InferenceComponentArn"]}

    def _DeleteInferenceComponent(self, call: Call) -> Mapping[str, Any]:
        with self.lock:
            ic = self._get(call)
            del self.components[(call.region, ic["InferenceComponentName"])]
        return {}

    def _ListInferenceComponents(self, call: Call) -> Mapping[str, Any]:
        endpoint = call.params.get("EndpointNameEquals")
        keys = ("InferenceComponentName", "InferenceComponentArn", "EndpointName", "EndpointArn",
                "VariantName", "CreationTime", "LastModifiedTime", "InferenceComponentStatus")
        with self.lock:
            found = [{k: ic[k] for k in keys} for (region, _), ic in sorted(self.components.items())
                     if region == call.region and endpoint in (None, ic["EndpointName"])]
        return {"InferenceComponents": found}

    def exists(self, resource_id: str) -> bool:
        name = resource_id[len(PREFIX):]
        with self.lock:
            return any(n == name for _, n in self.components)

    def install(self) -> None:
        from moto.applicationautoscaling import models, responses
        from moto.applicationautoscaling.exceptions import AWSValidationException

        moto_check = models._target_params_are_valid
        moto_params = responses.ApplicationAutoScalingResponse._validate_params

        def params(response: Any) -> None:
            # moto checks the dimension against an enum without this one: AWS has it.
            if response._get_param("ScalableDimension") != DIMENSION:
                moto_params(response)

        def valid(namespace: str, resource_id: str, dimension: str) -> bool:
            if dimension == DIMENSION and namespace == "sagemaker":
                if not resource_id.startswith(PREFIX) or not self.exists(resource_id):
                    raise AWSValidationException(f"Could not find inference component for "
                                                 f"resource id {resource_id}")  # fmt: skip
                return True
            return bool(moto_check(namespace, resource_id, dimension))

        models._target_params_are_valid = valid  # type: ignore[assignment]
        responses.ApplicationAutoScalingResponse._validate_params = params  # type: ignore[method-assign,assignment]


def _endpoint_variants(region: str, endpoint: str) -> list[str]:
    """The variant names of an endpoint in moto's SageMaker backend; ApiError if none."""
    from moto.sagemaker.models import sagemaker_backends

    backend = sagemaker_backends[ACCOUNT][region]
    try:
        ep = backend.describe_endpoint(endpoint)
    except Exception as exc:  # noqa: BLE001 - moto's not-found error, whatever its class
        raise ApiError("ValidationException", f'Could not find endpoint "{endpoint}".') from exc
    return [str(v.get("VariantName")) for v in ep.get("ProductionVariants", [])]
