"""Our signer against botocore's: same inputs, same signature, byte for byte."""

from __future__ import annotations

from datetime import datetime, timezone
from unittest import mock

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from hypothesis import given, settings
from hypothesis import strategies as st

from recommender.loadgen.sigv4 import Credentials, SigV4Signer, runtime_url

NOW = datetime(2026, 11, 23, 12, 34, 56, tzinfo=timezone.utc)


def botocore_headers(
    creds: Credentials, region: str, url: str, body: bytes, headers: dict[str, str]
) -> dict[str, str]:
    request = AWSRequest(method="POST", url=url, data=body, headers=headers)
    auth = SigV4Auth(BotoCredentials(creds.access_key, creds.secret_key, creds.token),
                     "sagemaker", region)  # fmt: skip
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        auth.add_auth(request)
    return dict(request.headers.items())


@pytest.mark.parametrize("token", [None, "FwoGZXIvYXdzEJr//////////token+/="])
@pytest.mark.parametrize(
    ("url", "host"),
    [
        (runtime_url("eu-west-1", "my-endpoint"), "runtime.sagemaker.eu-west-1.amazonaws.com"),
        ("http://127.0.0.1:8080/endpoints/demo/invocations", "127.0.0.1:8080"),
    ],
)
def test_signature_matches_botocore(token: str | None, url: str, host: str) -> None:
    creds = Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token)
    region = "eu-west-1"
    headers = {
        "Content-Type": "application/json",
        "Accept": "application/json",
        "X-Amzn-SageMaker-Custom-Attributes": "trace=1,  mode=fast",
        "X-Amzn-SageMaker-Target-Variant": "AllTraffic",
    }
    body = b'{"instances": [[5.1, 3.5, 1.4, 0.2]]}'
    ours = SigV4Signer(region, lambda: creds).sign("POST", host, url.split(host, 1)[1], body,
                                                   headers, NOW)  # fmt: skip
    theirs = botocore_headers(creds, region, url, body, headers)
    assert ours["Authorization"] == theirs["Authorization"]
    assert ours["X-Amz-Date"] == theirs["X-Amz-Date"] == "20261123T123456Z"
    assert ours.get("X-Amz-Security-Token") == theirs.get("X-Amz-Security-Token")


@settings(max_examples=30, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(["us-east-1", "ap-southeast-2"]),
       st.from_regex(r"[a-zA-Z0-9](-?[a-zA-Z0-9]){0,20}", fullmatch=True))  # fmt: skip
def test_any_body_and_endpoint_name(body: bytes, region: str, name: str) -> None:
    creds = Credentials("AKID", "secret")
    url = runtime_url(region, name)
    host = f"runtime.sagemaker.{region}.amazonaws.com"
    headers = {"Content-Type": "text/csv"}
    ours = SigV4Signer(region, lambda: creds).sign("POST", host, f"/endpoints/{name}/invocations",
                                                   body, headers, NOW)  # fmt: skip
    assert ours["Authorization"] == botocore_headers(creds, region, url, body, headers)[
        "Authorization"
    ]


def test_signing_key_is_cached_per_day_and_follows_rotation() -> None:
    creds = [Credentials("AKID", "one")]
    signer = SigV4Signer("us-east-1", lambda: creds[0])
    signer.sign("POST", "h", "/", b"", {}, NOW)
    key = signer._key
    signer.sign("POST", "h", "/", b"x", {}, NOW)
    assert signer._key is key  # same day, same credentials: no new derivation
    creds[0] = Credentials("AKID2", "two")  # botocore refreshed the credentials
    signer.sign("POST", "h", "/", b"", {}, NOW)
    assert signer._key is not key


def test_credentials_repr_hides_the_secret() -> None:
    assert "SECRET" not in repr(Credentials("AKIAEXAMPLE", "SECRET", "TOKEN"))


def test_signatures_are_reused_within_a_second_only() -> None:
    signer = SigV4Signer("us-east-1", lambda: Credentials("AKID", "secret"))
    with mock.patch("recommender.loadgen.sigv4.time.time", return_value=1_795_000_000.2):
        a = signer.sign("POST", "h", "/p", b"body", {"Content-Type": "text/csv"})
        b = signer.sign("POST", "h", "/p", b"body", {"Content-Type": "text/csv"})
        c = signer.sign("POST", "h", "/p", b"other", {"Content-Type": "text/csv"})
    with mock.patch("recommender.loadgen.sigv4.time.time", return_value=1_795_000_001.0):
        d = signer.sign("POST", "h", "/p", b"body", {"Content-Type": "text/csv"})
    assert a == b and a is not b  # callers get their own copy
    assert a["Authorization"] != c["Authorization"]
    assert a["X-Amz-Date"] == "20261118T110640Z" and d["X-Amz-Date"] == "20261118T110641Z"
    fresh = SigV4Signer("us-east-1", lambda: Credentials("AKID", "secret")).sign(
        "POST", "h", "/p", b"body", {"Content-Type": "text/csv"},
        datetime(2026, 11, 18, 11, 6, 41, tzinfo=timezone.utc),
    )  # fmt: skip
    assert d == fresh
