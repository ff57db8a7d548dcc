"""AWS Signature Version 4 for InvokeEndpoint, fast enough for a load generator.

botocore's SigV4Auth derives the signing key (four HMACs) and builds an AWSRequest for
every request; at thousands of requests per second that is most of a core. Here the key is
derived once per (access key, day, region, service) and reused, and the canonical request
is built directly from the few headers InvokeEndpoint sends. The algorithm is AWS's
(docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html), using only hmac and
hashlib; tests check every signature against botocore's own signer.

Credentials come from a callable (botocore's RefreshableCredentials.get_frozen_credentials
in the load generator), so expiring credentials are refreshed by botocore, not here.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

ALGORITHM = "AWS4-HMAC-SHA256"
# Headers botocore never signs (hop-by-hop or added by proxies).
UNSIGNED = frozenset({"user-agent", "expect", "connection", "keep-alive", "x-amzn-trace-id",
                      "transfer-encoding", "upgrade", "accept-encoding"})  # fmt: skip


@dataclass(frozen=True)
class Credentials:
    access_key: str
    secret_key: str
    token: str | None = None

    def __repr__(self) -> str:  # never print a secret, even in a traceback
        return f"Credentials(access_key={self.access_key[:4]}…)"


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def canonical_uri(path: str) -> str:
    """Non-S3 services encode each path segment twice: once for the URL, once here."""
    return quote(quote(path, safe="/~"), safe="/~")


class SigV4Signer:
    def __init__(
        self,
        region: str,
        credentials: Callable[[], Credentials],
        service: str = "sagemaker",
    ) -> None:
        self.region = region
        self.service = service
        self.credentials = credentials
        self._key: tuple[tuple[str, str, str], bytes] | None = None
        # X-Amz-Date has one-second resolution, so within a second the same request (a load
        # test cycles through a few bodies) always gets the same signature: keep it.
        self._second = -1
        self._date = ""
        self._signed: dict[tuple[Any, ...], dict[str, str]] = {}

    def signing_key(self, creds: Credentials, day: str) -> bytes:
        cache_id = (creds.access_key, creds.secret_key, day)
        if self._key is None or self._key[0] != cache_id:
            k = _hmac(("AWS4" + creds.secret_key).encode("utf-8"), day)
            k = _hmac(k, self.region)
            k = _hmac(k, self.service)
            self._key = (cache_id, _hmac(k, "aws4_request"))
        return self._key[1]

    def sign(
        self,
        method: str,
        host: str,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
        now: datetime | None = None,
    ) -> dict[str, str]:
        """The headers to send: `headers` plus X-Amz-Date, the token and Authorization.

        `host` is the Host header as sent (with the port when it is not the default).
        """
        creds = self.credentials()
        if now is None:
            second = int(time.time())
            if second != self._second:
                self._second, self._signed = second, {}
                self._date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(second))
            amz_date = self._date
        else:
            amz_date = now.astimezone(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        key = (amz_date, method, host, path, body, tuple(headers.items()), creds)
        done = self._signed.get(key)
        if done is not None:
            return dict(done)
        out = self._sign(creds, amz_date, method, host, path, body, headers)
        if now is None:
            self._signed[key] = out
        return dict(out)

    def _sign(
        self,
        creds: Credentials,
        amz_date: str,
        method: str,
        host: str,
        path: str,
        body: bytes,
        headers: Mapping[str, str],
    ) -> dict[str, str]:
        day = amz_date[:8]
        out = dict(headers)
        out["X-Amz-Date"] = amz_date
        if creds.token:
            out["X-Amz-Security-Token"] = creds.token
        signed = {"host": host.strip()}
        for name, value in out.items():
            low = name.lower()
            if low not in UNSIGNED and low != "host":
                signed[low] = " ".join(str(value).split())
        names = sorted(signed)
        signed_headers = ";".join(names)
        canonical = "\n".join(
            [
                method.upper(),
                canonical_uri(path),
                "",  # InvokeEndpoint has no query string
                "".join(f"{n}:{signed[n]}\n" for n in names),
                signed_headers,
                hashlib.sha256(body).hexdigest(),
            ]
        )
        scope = f"{day}/{self.region}/{self.service}/aws4_request"
        to_sign = "\n".join(
            [ALGORITHM, amz_date, scope, hashlib.sha256(canonical.encode("utf-8")).hexdigest()]
        )
        signature = hmac.new(
            self.signing_key(creds, day), to_sign.encode("utf-8"), hashlib.sha256
        ).hexdigest()
        out["Authorization"] = (
            f"{ALGORITHM} Credential={creds.access_key}/{scope}, "
            f"SignedHeaders={signed_headers}, Signature={signature}"
        )
        return out


def runtime_url(region: str, endpoint: str) -> str:
    """The SageMaker runtime URL InvokeEndpoint posts to."""
    return f"https://runtime.sagemaker.{region}.amazonaws.com/endpoints/{endpoint}/invocations"
