"""moto's server with the one SageMaker scalable dimension it does not know yet.

moto's Application Auto Scaling refuses `sagemaker:variant:DesiredProvisionedConcurrency`
("Unsupported service namespace, resource type or scalable dimension"), which AWS accepts
for a serverless variant's provisioned concurrency (resource id endpoint/<e>/variant/<v>;
"Amazon SageMaker and Application Auto Scaling", shared/reference/003_*). The emulator is
the embedded stand-in for AWS, so it is taught to accept that dimension, exactly and only
for resource ids of that form (in the request's validation and in the model's); everything
else goes to moto's own checks. The request shapes
are also checked against botocore's service model (Stubber) in the tests.

Run as `python -m recommender.local.moto_server -H 127.0.0.1 -p PORT` (moto.server's flags).
"""

from __future__ import annotations

import re

import moto.applicationautoscaling.models as autoscaling
import moto.applicationautoscaling.responses as autoscaling_api
from moto.server import main

SERVERLESS_DIMENSION = "sagemaker:variant:DesiredProvisionedConcurrency"
_VARIANT_ID = re.compile(r"^endpoint/[^/]+/variant/[^/]+$")
_moto_check = autoscaling._target_params_are_valid
_moto_validate = autoscaling_api.ApplicationAutoScalingResponse._validate_params


def _target_params_are_valid(namespace: str, r_id: str, dimension: str) -> bool:
    if namespace == "sagemaker" and dimension == SERVERLESS_DIMENSION and _VARIANT_ID.match(r_id):
        return True
    return _moto_check(namespace, r_id, dimension)


def _validate_params(self: autoscaling_api.ApplicationAutoScalingResponse) -> None:
    """The request-level check (an enum of dimensions) before the model's own."""
    if (self._get_param("ServiceNamespace") == "sagemaker"
            and self._get_param("ScalableDimension") == SERVERLESS_DIMENSION):  # fmt: skip
        return
    _moto_validate(self)


autoscaling._target_params_are_valid = _target_params_are_valid
autoscaling_api.ApplicationAutoScalingResponse._validate_params = _validate_params  # type: ignore[method-assign]

if __name__ == "__main__":
    main()
