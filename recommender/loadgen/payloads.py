"""Request bodies for the load test: JSON lines, CSV rows, or one file per request."""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from recommender.errors import ConfigError

DEFAULT_PAYLOAD = "iris_sample.jsonl"  # package data of recommender.local

_BY_SUFFIX = {
    ".json": "application/json",
    ".jsonl": "application/json",
    ".ndjson": "application/json",
    ".csv": "text/csv",
    ".txt": "text/plain",
    ".npy": "application/x-npy",
}


@dataclass(frozen=True)
class Payloads:
    bodies: tuple[bytes, ...]
    content_type: str
    source: str


def default_payload_path() -> Path:
    """The iris rows the embedded model server accepts (used when --payload is not given)."""
    return Path(str(resources.files("recommender.local").joinpath(DEFAULT_PAYLOAD)))


def load_payloads(path: Path | None, content_type: str | None = None) -> Payloads:
    """Read request bodies from `path`.

    A `.jsonl`/`.ndjson` or `.csv` file gives one body per non-empty line (a CSV header is
    the user's to remove: every line is sent); a directory gives one body per file, sorted by
    name; any other file is one body. `content_type` overrides what the suffix implies.
    """
    path = default_payload_path() if path is None else path
    if not path.exists():
        raise ConfigError(f"payload not found: {path}", "check the --payload path")
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise ConfigError(f"payload directory {path} holds no files")
        bodies = tuple(p.read_bytes() for p in files)
        guessed = _guess(files[0])
    elif path.suffix.lower() in (".jsonl", ".ndjson", ".csv"):
        bodies = tuple(line for line in path.read_bytes().splitlines() if line.strip())
        guessed = _guess(path)
    else:
        bodies = (path.read_bytes(),)
        guessed = _guess(path)
    if not bodies or not any(bodies):
        raise ConfigError(f"payload {path} is empty", "give at least one request body")
    return Payloads(bodies, content_type or guessed, str(path))


def _guess(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"
