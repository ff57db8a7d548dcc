"""Request bodies for the load test: JSON lines, CSV rows, or one file per request."""

from __future__ import annotations

import json
import mimetypes
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from recommender.errors import ConfigError
from recommender.tokens import approx_tokens

DEFAULT_PAYLOAD = "iris_sample.jsonl"  # package data of recommender.local

_BY_SUFFIX = {
    ".json": "application/json",
    ".jsonl": "application/json",
    ".ndjson": "application/json",
    ".csv": "text/csv",
    ".txt": "text/plain",
    ".npy": "application/x-npy",
}


TEMPLATES = ("tgi", "messages")


@dataclass(frozen=True)
class Payloads:
    bodies: tuple[bytes, ...]
    content_type: str
    source: str
    template: str | None = None


@dataclass(frozen=True)
class Template:
    """`--template`: each payload line is a prompt, rendered into the body a container
    expects: `tgi` (TGI/LMI: {"inputs": ..., "parameters": {"max_new_tokens": N}}) or
    `messages` (OpenAI-style chat: {"messages": [{"role": "user", "content": ...}],
    "max_tokens": N}). A line is {"prompt": "...", "max_new_tokens": N} ("text" or
    "inputs" for the prompt; N from the line, else `max_new_tokens`), or plain text."""

    name: str
    max_new_tokens: int | None = None
    stream: bool = False

    def render(self, line: bytes, where: str) -> bytes:
        prompt, n = _prompt_line(line, where, self)
        if self.name == "messages":
            doc: dict[str, object] = {"messages": [{"role": "user", "content": prompt}],
                                      "max_tokens": n}  # fmt: skip
        else:
            doc = {"inputs": prompt, "parameters": {"max_new_tokens": n}}
        if self.stream:
            doc["stream"] = True  # TGI, LMI and vLLM stream only when asked
        return json.dumps(doc).encode()


def check_template(name: str | None, max_new_tokens: int | None) -> None:
    if name is not None and name not in TEMPLATES:
        raise ConfigError(f"unknown --template {name!r}", f"use {' or '.join(TEMPLATES)}")
    if max_new_tokens is not None and max_new_tokens < 1:
        raise ConfigError(f"--max-new-tokens must be >= 1 (got {max_new_tokens})")
    if max_new_tokens is not None and name is None:
        raise ConfigError("--max-new-tokens needs --template",
                          "or put max_new_tokens in your request bodies")  # fmt: skip


def _prompt_line(line: bytes, where: str, t: Template) -> tuple[str, int]:
    text = line.decode("utf-8", "replace").strip()
    doc: object = text
    if text.startswith("{"):
        try:
            doc = json.loads(text)
        except ValueError:
            raise ConfigError(f"{where} is not valid JSON",
                              'write {"prompt": "...", "max_new_tokens": N}') from None  # fmt: skip
    n: object = t.max_new_tokens
    if isinstance(doc, dict):
        prompt = next((doc[k] for k in ("prompt", "text", "inputs") if k in doc), None)
        n = doc.get("max_new_tokens", n)
        if not isinstance(prompt, str):
            raise ConfigError(f'{where} has no "prompt" text, which --template {t.name} needs',
                              'write {"prompt": "...", "max_new_tokens": N} per line')  # fmt: skip
    else:
        prompt = text
    if n is None:
        raise ConfigError(f"{where} has no max_new_tokens and --max-new-tokens is not given",
                          "pass --max-new-tokens N or put it on each line")  # fmt: skip
    if type(n) is not int or n < 1:
        raise ConfigError(f"{where}: max_new_tokens must be a whole number >= 1 (got {n!r})")
    return prompt, n


def default_payload_path() -> Path:
    """The iris rows the embedded model server accepts (used when --payload is not given)."""
    return Path(str(resources.files("recommender.local").joinpath(DEFAULT_PAYLOAD)))


def load_payloads(
    path: Path | None, content_type: str | None = None, template: Template | None = None
) -> Payloads:
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
    if template is not None:
        bodies = tuple(template.render(b, f"{path}, line {i}") for i, b in enumerate(bodies, 1))
        return Payloads(bodies, content_type or "application/json", str(path), template.name)
    return Payloads(bodies, content_type or guessed, str(path))


def _guess(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


def prompt_text(body: bytes) -> str | None:
    """The prompt in a generation request: TGI/LMI `inputs`, or the `content` of OpenAI-style
    `messages`; None for a body that is neither."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if not isinstance(doc, dict):
        return None
    if isinstance(doc.get("inputs"), str):
        return str(doc["inputs"])
    messages = doc.get("messages")
    if isinstance(messages, list):
        return "".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
    return None


def prompt_tokens(body: bytes) -> int:
    """Approximate input tokens of a generation request (0 when it is not one)."""
    text = prompt_text(body)
    return 0 if text is None else approx_tokens(text)
