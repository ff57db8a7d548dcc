"""Serverless variants' provisioned concurrency in the AWS emulator (moto 5.2 lacks it).

moto stores a production variant's ServerlessConfig (and returns it from DescribeEndpoint as
CurrentServerlessConfig), but its Application Auto Scaling refuses the scalable dimension
`sagemaker:variant:DesiredProvisionedConcurrency` ("Unsupported service namespace, resource
type or scalable dimension"), which AWS accepts for a serverless variant's provisioned
concurrency on `endpoint/<e>/variant/<v>` ("Amazon SageMaker and Application Auto Scaling",
shared/reference/003_*). `install` lets it through, for resource ids of that form only, in the
request's validation and in the model's; everything else goes on to moto's own checks (and to
the other extensions' adjustments installed before). Request shapes are also checked against
botocore's service model with Stubber in the tests.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from recommender.local.emulator_app import Extension, JsonHandler

DIMENSION = "sagemaker:variant:DesiredProvisionedConcurrency"
_VARIANT_ID = re.compile(r"^endpoint/[^/]+/variant/[^/]+$")


class ProvisionedConcurrency(Extension):
    """No operations of its own: it adjusts moto's checks."""

    def operations(self) -> Mapping[str, JsonHandler]:
        return {}

    def install(self) -> None:
        from moto.applicationautoscaling import models, responses
        from moto.applicationautoscaling.exceptions import AWSValidationException

        moto_check = models._target_params_are_valid
        moto_params = responses.ApplicationAutoScalingResponse._validate_params

        def params(response: Any) -> None:
            # moto checks the dimension against an enum without this one: AWS has it.
            if (response._get_param("ServiceNamespace") != "sagemaker"
                    or response._get_param("ScalableDimension") != DIMENSION):  # fmt: skip
                moto_params(response)

        def valid(namespace: str, resource_id: str, dimension: str) -> bool:
            if dimension == DIMENSION and namespace == "sagemaker":
                if not _VARIANT_ID.match(resource_id):
                    raise AWSValidationException(
                        f"{resource_id} is not a variant: endpoint/<endpoint>/variant/<variant>")
                return True
            return bool(moto_check(namespace, resource_id, dimension))

        models._target_params_are_valid = valid  # type: ignore[assignment]
        responses.ApplicationAutoScalingResponse._validate_params = params  # type: ignore[method-assign,assignment]
