"""Secrets kept out of everything a run leaves behind: run.json, analysis.json, the reports,
Locust's logs and the terminal. Run directories and reports are shared and committed.

What is a secret here: the value of every request header except the few that only say how
the payload is encoded or which variant serves it (`CLEAR_HEADERS`), which covers
`--header` values (`Authorization`, `X-Api-Key`, ...) and `--custom-attributes`; and in a
URL, the password of its user part and the values of query parameters whose names look like
credentials (`token`, `api_key`, `signature`, ...).

A secret is recorded as `<redacted sha256:ab12cd34>`: the first 8 hex digits of the SHA-256
of the value. Two runs that sent the same key show the same fingerprint; 32 bits cannot
give the key back. Pure: no I/O but `scrub_file`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

# Headers whose values are not credentials by definition: recorded in clear.
CLEAR_HEADERS = frozenset({"content-type", "accept", "x-amzn-sagemaker-target-variant",
                           "x-amzn-sagemaker-inference-component"})
# Query parameter names that look like credentials.
_SECRET_NAME = re.compile(
    r"auth|token|key|secret|passw|pwd|signature|^sig$|credential|session|cookie|bearer",
    re.IGNORECASE,
)
MIN_SCRUB_LENGTH = 4  # shorter values are not searched for in logs: they would match anything


def fingerprint(value: str) -> str:
    """`sha256:` and the first 8 hex digits of the value's SHA-256: enough to tell whether
    two runs used the same value, not to recover it."""
    return "sha256:" + hashlib.sha256(value.encode("utf-8")).hexdigest()[:8]


def redacted(value: str) -> str:
    return f"<redacted {fingerprint(value)}>"


def is_clear_header(name: str) -> bool:
    return name.strip().lower() in CLEAR_HEADERS


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The header names with their values redacted (but those of `CLEAR_HEADERS`)."""
    return {k: v if is_clear_header(k) else redacted(v) for k, v in headers.items()}


def _url_secrets(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:  # not a URL we can read: nothing in it we can tell apart
        return []
    found = [password] if password else []
    found += [v for k, v in parse_qsl(parts.query, keep_blank_values=True)
              if v and _SECRET_NAME.search(k)]  # fmt: skip
    return found


def redact_url(url: str) -> str:
    """The URL with its password and credential-like query values redacted: for the
    record and the terminal, never to be sent."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    netloc = parts.netloc
    if password:
        user, _, host = netloc.rpartition("@")
        name = user.partition(":")[0]
        netloc = f"{name}:{redacted(password)}@{host}"
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    secret_query = any(v and _SECRET_NAME.search(k) for k, v in pairs)
    query = parts.query
    if secret_query:
        query = "&".join(f"{quote(k)}={redacted(v) if v and _SECRET_NAME.search(k) else quote(v)}"
                         for k, v in pairs)  # fmt: skip
    if not password and not secret_query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def secret_values(headers: Mapping[str, str], url: str = "") -> list[str]:
    """Every secret a target holds, longest first (for `scrub`)."""
    values = [v for k, v in headers.items() if not is_clear_header(k) and v]
    values += _url_secrets(url)
    return sorted(set(values), key=len, reverse=True)


def scrub(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret (of at least MIN_SCRUB_LENGTH characters) redacted."""
    for secret in secrets:
        if len(secret) >= MIN_SCRUB_LENGTH and secret in text:
            text = text.replace(secret, redacted(secret))
    return text


def scrub_file(path: Path, secrets: Iterable[str]) -> None:
    """Redact the secrets in a text file (a log), in place; a missing file is left alone."""
    secrets = list(secrets)
    if not secrets or not path.is_file():
        return
    text = path.read_text(encoding="utf-8", errors="replace")
    clean = scrub(text, secrets)
    if clean != text:
        path.write_text(clean, encoding="utf-8")
