"""`recommender.redact` value by value (pure, fast: in the mutation runner). The end-to-end
check that no secret reaches a run directory is tests/test_secrets.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from recommender.redact import (
    CLEAR_HEADERS,
    MIN_SCRUB_LENGTH,
    fingerprint,
    is_clear_header,
    redact_headers,
    redact_url,
    redacted,
    scrub,
    scrub_file,
    secret_values,
)

# sha256("abc") = ba7816bf 8f01cfea ... (FIPS 180-2's first example)
ABC = "<redacted sha256:ba7816bf>"


def test_fingerprint_is_the_first_8_hex_digits_of_sha256() -> None:
    assert fingerprint("abc") == "sha256:ba7816bf"
    assert redacted("abc") == ABC
    # UTF-8: sha256("é" as c3 a9) starts 9e1c... not sha256 of latin-1's e9.
    assert fingerprint("\u00e9") != fingerprint("\u00e9".encode().decode("latin-1"))


def test_clear_headers_are_the_encoding_and_routing_ones_whatever_their_case() -> None:
    assert CLEAR_HEADERS == {"content-type", "accept", "x-amzn-sagemaker-target-variant",
                             "x-amzn-sagemaker-inference-component"}  # fmt: skip
    assert is_clear_header(" Content-Type ") and is_clear_header("ACCEPT")
    assert not is_clear_header("Authorization") and not is_clear_header("X-Api-Key")
    assert redact_headers({"Accept": "text/csv", "X-Api-Key": "abc", "Authorization": ""}) == {
        "Accept": "text/csv", "X-Api-Key": ABC, "Authorization": redacted("")}  # fmt: skip


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        # Nothing secret: the URL comes back as it was, unquoted parts and all.
        ("http://h:8080/p?n=a b&signal=1#f", "http://h:8080/p?n=a b&signal=1#f"),
        ("http://u@h/p?token=&n=1", "http://u@h/p?token=&n=1"),  # a blank value hides nothing
        ("http://[::1", "http://[::1"),  # unreadable: nothing to find in it
        # The password only: the query is kept byte for byte.
        ("http://u:abc@h:8080/p?n=a%20b#f", f"http://u:{ABC}@h:8080/p?n=a%20b#f"),
        # The user part ends at the last @, the name at the first colon.
        ("http://u:ab@c@h/", f"http://u:{redacted('ab@c')}@h/"),
        ("http://u:a:bc@h/", f"http://u:{redacted('a:bc')}@h/"),
        # A credential-like query value: the others are re-quoted, blank ones kept.
        ("http://h/p?API_KEY=abc&q=a b&e=#f", f"http://h/p?API_KEY={ABC}&q=a%20b&e=#f"),
        ("http://h/p?sig=abc&signal=1", f"http://h/p?sig={ABC}&signal=1"),
        ("http://h/p?x=1&session_id=abc", f"http://h/p?x=1&session_id={ABC}"),
        ("http://u:abc@h/?pwd=abc", f"http://u:{ABC}@h/?pwd={ABC}"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    "name",
    ["Authorization", "access_token", "api_key", "secret", "password", "pwd", "signature",
     "sig", "X-Amz-Credential", "session", "cookie", "bearer"],  # fmt: skip
)
def test_each_credential_like_query_name_is_redacted(name: str) -> None:
    assert redact_url(f"http://h/?{name}=abc") == f"http://h/?{name}={ABC}"
    assert secret_values({}, f"http://h/?{name}=abc") == ["abc"]


def test_secret_values_are_every_secret_once_longest_first() -> None:
    headers = {"Authorization": "Bearer abcdef", "Accept": "text/csv", "X-Empty": "",
               "X-Api-Key": "key-1234"}  # fmt: skip
    url = "http://u:pw@h/?token=tok12&n=plain&sig=key-1234"
    assert secret_values(headers, url) == ["Bearer abcdef", "key-1234", "tok12", "pw"]
    assert secret_values(headers) == ["Bearer abcdef", "key-1234"]
    assert secret_values({}, "http://u@h/?token=&n=1") == []
    assert secret_values({}, "http://[::1") == []


def test_scrub_redacts_secrets_of_at_least_the_minimum_length() -> None:
    assert MIN_SCRUB_LENGTH == 4
    assert scrub("k=abcd and abcd", ["abcd"]) == f"k={redacted('abcd')} and {redacted('abcd')}"
    assert scrub("k=abc", ["abc"]) == "k=abc"  # too short to search for
    assert scrub("k=abcd", ["wxyz"]) == "k=abcd"
    # Longest first (as secret_values orders them): the longer one is redacted whole.
    both = scrub("Bearer abcdef", ["Bearer abcdef", "abcdef"])
    assert both == redacted("Bearer abcdef")
    assert scrub("a=abcd b=wxyz", iter(["abcd", "wxyz"])) == (
        f"a={redacted('abcd')} b={redacted('wxyz')}")  # fmt: skip


def test_scrub_file_rewrites_only_a_log_that_held_a_secret(tmp_path: Path) -> None:
    log = tmp_path / "locust.log"
    log.write_bytes(b"sent Bearer abcdef \xff\n")
    scrub_file(log, iter(["Bearer abcdef"]))
    # Read as UTF-8 with replacement, written back as UTF-8.
    assert log.read_text(encoding="utf-8") == f"sent {redacted('Bearer abcdef')} \ufffd\n"

    clean = tmp_path / "clean.log"
    clean.write_bytes(b"nothing here \xff\n")
    scrub_file(clean, ["Bearer abcdef"])
    scrub_file(clean, [])
    assert clean.read_bytes() == b"nothing here \xff\n"  # untouched, odd byte and all

    scrub_file(tmp_path / "missing.log", ["Bearer abcdef"])  # a missing file is left alone
    assert not (tmp_path / "missing.log").exists()
