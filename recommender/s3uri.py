"""S3 locations as `s3://bucket/key` (pure): parsed once, with the flag in the error."""

from __future__ import annotations

import re
from dataclasses import dataclass

from recommender.errors import ConfigError

# S3's bucket naming rules, the part a typo breaks: 3-63 of lower case, digits, . and -.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class S3Uri:
    bucket: str
    key: str  # no leading slash; a prefix ends without one too

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.key}"

    def child(self, name: str) -> S3Uri:
        """The location `name` under this prefix."""
        return S3Uri(self.bucket, f"{self.key}/{name}" if self.key else name)


def parse_s3_uri(text: str | None, flag: str) -> S3Uri:
    """`s3://bucket[/prefix]` -> S3Uri; ConfigError naming `flag` otherwise."""
    raw = (text or "").strip()
    if not raw.startswith("s3://"):
        raise ConfigError(f"{flag} must be an S3 location s3://bucket/prefix (got {raw!r})",
                          "e.g. s3://my-bucket/recommender-inputs")  # fmt: skip
    bucket, _, key = raw[len("s3://"):].partition("/")
    if not _BUCKET.match(bucket):
        raise ConfigError(f"{flag}: {bucket!r} is not a valid S3 bucket name",
                          "3-63 lower-case letters, digits, dots and hyphens")  # fmt: skip
    return S3Uri(bucket, key.strip("/"))
