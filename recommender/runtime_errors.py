"""SageMaker runtime's error types: what InvokeEndpoint answers a failure with (pure).

The runtime is a rest-json service: a failure carries its type in the `x-amzn-ErrorType`
header, e.g. `ModelError:http://internal.amazon.com/coral/com.amazonaws.sagemaker.runtime/`,
and JSON services put it in the body's `__type` (sometimes `code`), e.g.
`com.amazonaws.sagemaker.runtime#ModelError`. `error_type` reads it the way botocore's
RestJSONParser does (header first, then the body's `code` and `__type`; the part before `:`
and after `#`), so a run records the same name a boto3 caller would catch.

The types and their HTTP statuses are botocore's sagemaker-runtime service model
(InvokeEndpoint's errors), plus ThrottlingException, AWS's common error for a request over
the account's rate (HTTP 400). What each means for sizing:

- ThrottlingException: AWS refused the call before any instance saw it (the account's
  InvokeEndpoint quota); not the endpoint's capacity.
- ModelError: the container answered an error (its status in `OriginalStatusCode`): the model
  failing, not the instance saturating.
- ModelNotReadyException: the endpoint was not ready (a serverless variant provisioning, a
  multi-model endpoint loading the model); what was measured then is not its capacity.
- ServiceUnavailable, InternalFailure, InternalDependencyException: SageMaker's side failed.
- ValidationError: the request itself is wrong (payload, headers).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

HEADER = "x-amzn-ErrorType"
THROTTLING = "ThrottlingException"
MODEL_ERROR = "ModelError"
MODEL_NOT_READY = "ModelNotReadyException"
SERVICE_UNAVAILABLE = "ServiceUnavailable"
INTERNAL_FAILURE = "InternalFailure"
VALIDATION_ERROR = "ValidationError"
INTERNAL_DEPENDENCY = "InternalDependencyException"

STATUS = {
    THROTTLING: 400,
    MODEL_ERROR: 424,
    MODEL_NOT_READY: 429,
    SERVICE_UNAVAILABLE: 503,
    INTERNAL_FAILURE: 500,
    VALIDATION_ERROR: 400,
    INTERNAL_DEPENDENCY: 530,
}
# The namespace the runtime's header carries after the type (seen on real responses).
CORAL_NAMESPACE = "http://internal.amazon.com/coral/com.amazonaws.sagemaker.runtime/"
MAX_TYPE_LENGTH = 64  # anything longer is not a type name: keep records bounded


def normalize(code: str) -> str | None:
    """`ModelError:http://...` or `ns#ModelError` -> `ModelError` (botocore's rule)."""
    name = code.split(":", 1)[0].rsplit("#", 1)[-1].strip()
    if not name or len(name) > MAX_TYPE_LENGTH or not name.isidentifier():
        return None
    return name


def error_type(headers: Mapping[str, str] | None, body: bytes | str | None) -> str | None:
    """The error type of a failed response, or None when it carries none (a plain
    container answering 503, a proxy's HTML page)."""
    if headers:
        for key, value in headers.items():
            if key.lower() == HEADER.lower() and value:
                return normalize(str(value))
    if not body:
        return None
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict):
        return None
    for key in ("code", "Code", "__type"):  # botocore's order
        found = doc.get(key)
        if isinstance(found, str) and found:
            return normalize(found)
    return None
