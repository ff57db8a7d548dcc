"""SageMaker runtime's error types: read as botocore reads them, answered as AWS answers them."""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest
from botocore.parsers import create_parser

from recommender import runtime_errors
from recommender.loadgen.recorder import response_error_type
from recommender.runtime_errors import error_type


def botocore_code(status: int, headers: dict[str, str], body: bytes) -> str:
    """The error code botocore's sagemaker-runtime client gives this InvokeEndpoint answer."""
    model = botocore.session.get_session().get_service_model("sagemaker-runtime")
    op = model.operation_model("InvokeEndpoint")
    parser = create_parser(model.metadata["protocol"])
    parsed: dict[str, Any] = parser.parse(
        {"status_code": status, "headers": headers, "body": body}, op.output_shape
    )
    return str(parsed["Error"]["Code"])


NAMESPACED = "com.amazonaws.sagemaker.runtime#"


@pytest.mark.parametrize("kind", sorted(runtime_errors.STATUS))
@pytest.mark.parametrize("wire", ["header", "__type", "code"])
def test_the_type_is_the_one_botocore_reads(kind: str, wire: str) -> None:
    status = runtime_errors.STATUS[kind]
    headers = {"x-amzn-requestid": "r"}
    doc: dict[str, Any] = {"message": "m"}
    if wire == "header":
        headers["x-amzn-errortype"] = f"{kind}:{runtime_errors.CORAL_NAMESPACE}"
    elif wire == "__type":
        doc["__type"] = f"{NAMESPACED}{kind}"
    else:
        doc["code"] = kind
    body = json.dumps(doc).encode()
    assert botocore_code(status, headers, body) == kind
    assert error_type(headers, body) == kind


def test_the_header_wins_and_untyped_answers_have_none() -> None:
    assert error_type({"X-Amzn-ErrorType": "ModelError:http://x/"},
                      b'{"__type": "ThrottlingException"}') == "ModelError"  # fmt: skip
    assert error_type({"Content-Type": "application/json"}, b'{"error": "queue full"}') is None
    assert error_type({}, b"<html>502 Bad Gateway</html>") is None
    assert error_type(None, b"[1, 2]") is None
    assert error_type({}, None) is None
    # Not a type name: records stay bounded and clean.
    assert error_type({"x-amzn-ErrorType": "x" * 200}, b"") is None
    assert error_type({"x-amzn-ErrorType": "<script>"}, b"") is None


def test_a_response_cut_off_mid_body_has_no_type() -> None:
    class Broken:
        headers: dict[str, str] = {}

        @property
        def content(self) -> bytes:
            raise ConnectionResetError("reset while reading the body")

    class Typed:
        headers = {"x-amzn-ErrorType": "ModelNotReadyException:"}
        content = b""

    assert response_error_type(Broken(), 503) is None
    assert response_error_type(Typed()) == "ModelNotReadyException"
    assert response_error_type(None) is None
