"""The layers of DESIGN.md ("what may import what"), checked two ways.

1. At run time: the pure domain modules import in a fresh interpreter where boto3, botocore
   and Locust cannot be imported at all (gevent too: it is how Locust patches a process).
2. Statically: every import statement in recommender/ (function-level ones included, since
   they run too, only later) is read with `ast` and held to the rules below; the domain's
   imports are followed transitively, so a domain module cannot reach boto3 or Locust by
   way of another module either.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import recommender

PACKAGE_DIR = Path(recommender.__file__).parent

# The domain (DESIGN.md, "Layers"): pure, reaching neither boto3 nor Locust, and importing
# nothing of report/. `sizing` may not exist yet on every branch; absent ones are skipped.
DOMAIN = ("recommender.plan", "recommender.search", "recommender.analysis",
          "recommender.policy", "recommender.sizing", "recommender.simulate",
          "recommender.compare", "recommender.traffic", "recommender.metrics",
          "recommender.cloudwatch", "recommender.histograms", "recommender.options",
          "recommender.calibration")  # fmt: skip
# Third-party packages only the edges may touch: boto3 through aws.py, Locust in loadgen/.
AWS_PACKAGES = ("boto3", "botocore")
LOCUST_PACKAGES = ("locust", "gevent")
BLOCKED = AWS_PACKAGES + LOCUST_PACKAGES

# Who may import report/ (the renderers): report/ itself, the thin CLI and the pipeline
# (which writes the reports for every command that makes them: run, analyze, report,
# simulate through replay, the demo), and the sweep and verify, which write their own beside
# them.
REPORT_IMPORTERS = ("recommender.report", "recommender.cli", "recommender.pipeline",
                    "recommender.sweep", "recommender.verify")  # fmt: skip
# Known exception, kept on purpose: the Locust roles sign InvokeEndpoint requests with
# credentials that boto3's chain resolves (recommender.aws.credentials_provider). It imports
# recommender.aws inside a function, so boto3 loads only after Locust's gevent patching
# (boto3 imported before it breaks), and only in the Locust process, never in analysis.
LOADGEN_AWS_EXCEPTIONS = {("recommender.loadgen.roles", "recommender.aws")}
# Known exception, kept on purpose: --stream decodes SageMaker's event-stream frames with
# botocore's own parser (botocore.eventstream: plain Python, no network, no boto3) rather
# than a hand-written one; only inside the Locust process, after its gevent patching.
EVENTSTREAM_EXCEPTIONS = {("recommender.loadgen.stream", "botocore.eventstream")}


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _modules() -> dict[str, Path]:
    """Every module of the package by dotted name."""
    out = {}
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import statement in the module, at any depth."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the importing package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                # `from recommender import metrics` imports the module recommender.metrics.
                sub = f"{base}.{alias.name}"
                yield (sub if sub in MODULES else base), node.lineno


# One entry per (imported module, line): `from m import a, b` is one edge.
EDGES = {name: sorted(set(_imports(name, path))) for name, path in MODULES.items()}


def _domain_modules() -> list[str]:
    return [m for m in MODULES if _within(m, DOMAIN)]


def test_the_package_is_found() -> None:
    assert "recommender.analysis" in MODULES and "recommender.aws" in MODULES
    assert len(_domain_modules()) >= 10


def test_domain_imports_without_boto3_or_locust() -> None:
    """Import the domain in a fresh interpreter where the edges' packages cannot load."""
    script = textwrap.dedent(
        f"""
        import importlib, importlib.abc, sys

        BLOCKED = {BLOCKED!r}

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, fullname, path=None, target=None):
                if fullname.split(".")[0] in BLOCKED:
                    raise ImportError(f"{{fullname}} is blocked: the domain must not need it")
                return None

        sys.meta_path.insert(0, Block())
        for name in {_domain_modules()!r}:
            importlib.import_module(name)
        leaked = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        assert not leaked, leaked
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]


def _violations(
    importers: tuple[str, ...], targets: tuple[str, ...], allowed: Callable[[str, str], bool]
) -> list[str]:
    """Imports by modules under `importers` of modules under `targets` not `allowed`."""
    return [f"{m}:{line} imports {target}"
            for m, edges in EDGES.items() if _within(m, importers)
            for target, line in edges
            if _within(target, targets) and not allowed(m, target)]  # fmt: skip


def test_report_is_imported_only_from_above() -> None:
    """Nothing in the domain (or the edges) imports report/; arrows point down."""
    bad = _violations(("recommender",), ("recommender.report",),
                      lambda m, _: _within(m, REPORT_IMPORTERS))  # fmt: skip
    assert not bad, "\n".join(bad)


def test_only_aws_imports_boto3() -> None:
    bad = _violations(("recommender",), AWS_PACKAGES,
                      lambda m, t: m == "recommender.aws" or (m, t) in EVENTSTREAM_EXCEPTIONS)
    assert not bad, "\n".join(bad)


def test_only_loadgen_imports_locust() -> None:
    bad = _violations(("recommender",), LOCUST_PACKAGES,
                      lambda m, _: _within(m, ("recommender.loadgen",)))  # fmt: skip
    assert not bad, "\n".join(bad)


def test_loadgen_reaches_aws_only_through_the_known_exception() -> None:
    bad = _violations(("recommender.loadgen",), ("recommender.aws",) + AWS_PACKAGES,
                      lambda m, target: (m, target) in LOADGEN_AWS_EXCEPTIONS
                      | EVENTSTREAM_EXCEPTIONS)  # fmt: skip
    assert not bad, "\n".join(bad)


def _reach(start: str) -> dict[str, list[str]]:
    """Every module `start` imports, directly or not (function-level imports included),
    each with one chain of modules that leads to it."""
    chains = {start: [start]}
    todo = [start]
    while todo:
        m = todo.pop()
        for target, _ in EDGES.get(m, []):
            # Importing a.b.c runs a/__init__ and a/b/__init__ first.
            parts = target.split(".")
            for name in (".".join(parts[:k]) for k in range(1, len(parts) + 1)):
                if name not in chains:
                    chains[name] = chains[m] + [name]
                    if name in MODULES:
                        todo.append(name)
    return chains


@pytest.mark.parametrize("module", _domain_modules())
def test_domain_reaches_neither_boto3_nor_locust(module: str) -> None:
    """Also through other modules, and through imports inside functions, which test 1
    (a plain import) does not run."""
    forbidden = AWS_PACKAGES + LOCUST_PACKAGES + ("recommender.aws", "recommender.loadgen")
    bad = [" -> ".join(chain) for target, chain in _reach(module).items()
           if _within(target, forbidden)]  # fmt: skip
    assert not bad, "\n".join(bad)
