"""Every command's options, fuzzed: arbitrary strings and numbers end in a clean exit code and
exactly one `Error:` line on stderr, never a traceback, and never exit 0 for a value that is
invalid.

Nothing here sends load or reaches the network beyond 127.0.0.1: loadtest/run always aim at
a closed loopback port (so even a fully valid flag set stops at the preflight, before a run
directory is made), the AWS commands at a closed loopback AWS URL and a run without an
endpoint, and name resolution of any other host fails the test.
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import signal
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from recommender.cli import main
from recommender.plan import RampPlan, Stage
from tests.conftest import synthetic_records, write_run

CLOSED_URL = "http://127.0.0.1:9/invocations"  # the discard port: nothing listens
CLOSED_AWS = "http://127.0.0.1:9"
EXAMPLE_SECONDS = 20  # one example taking longer is a bug (a plan built in memory, a hang)
# A longer, random exploration: RECOMMENDER_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz_cli.py
EXPLORE = int(os.environ.get("RECOMMENDER_FUZZ_EXAMPLES", "0"))
FUZZ = settings(max_examples=EXPLORE or 40, deadline=None, derandomize=not EXPLORE,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])  # fmt: skip

NUMBER_TEXTS = st.sampled_from(["nan", "-nan", "inf", "-inf", "1e309", "-1e309", "0", "-0",
                                "-1", "1", "0.5", "2", "1e9", "99999999999999999999", "",
                                " ", "0x10", "1_000", "1,5", "½"])  # fmt: skip
NUMBERS = st.one_of(
    st.integers(-(10**15), 10**15).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    NUMBER_TEXTS,
)
TEXTS = st.text(max_size=24).filter(lambda s: s not in ("--help", "-h"))
VALUES = st.one_of(NUMBERS, TEXTS)
# URLs always on loopback (or no host at all): a fuzzed host could be looked up in DNS, so
# the fuzzed parts cannot end the host part and start another ("@", "]", "/").
NO_HOST = st.text(max_size=24).filter(lambda s: not set(s) & set("@[]/\\?#"))
URLS = st.one_of(
    st.just(CLOSED_URL),
    st.builds("http://127.0.0.1:{}".format, NO_HOST),
    st.builds("http://[{}".format, NO_HOST),
    st.builds("http://127.0.0.1:9/{}".format, TEXTS),
    TEXTS.filter(lambda s: ":" not in s),
)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def _nonneg(text: str) -> bool:
    x = _number(text)
    return x is None or (math.isfinite(x) and x >= 0)  # None: the parser refuses it anyway


def _positive(text: str) -> bool:
    x = _number(text)
    return x is None or (math.isfinite(x) and x > 0)


def _fraction(low_open: bool, high_open: bool) -> Callable[[str], bool]:
    def ok(text: str) -> bool:
        x = _number(text)
        if x is None:
            return True
        low = x > 0 if low_open else x >= 0
        high = x < 1 if high_open else x <= 1
        return low and high

    return ok


def _anything(_text: str) -> bool:
    return True


# Flags of loadtest/run and what a valid value is (False: exit 0 is a bug; the URL is closed,
# so loadtest and run never exit 0 anyway, and their invalid values must exit 2).
RUN_FLAGS: dict[str, Callable[[str], bool]] = {
    "--start-rps": _positive, "--max-rps": _positive, "--stages": _positive,
    "--stage-seconds": _positive, "--warmup-seconds": _nonneg,
    "--precision": _fraction(True, True), "--max-duration": _positive,
    "--max-requests": _positive, "--abort-error-rate": _fraction(True, False),
    "--abort-latency": _anything, "--slo": _anything, "--max-error-rate": _fraction(False, True),
    "--arrivals": _anything, "--search": _anything, "--users": _nonneg, "--seed": _anything,
    "--workers": _nonneg, "--expect-workers": _nonneg, "--master-port": _positive,
    "--master-bind-host": _anything, "--instances": _positive,
    "--safety-factor": _fraction(True, False), "--cloudwatch-period": _positive,
    "--cloudwatch-wait": _nonneg, "--min-capacity": _nonneg, "--max-capacity": _nonneg,
    "--header": _anything, "--custom-attributes": _anything, "--target-variant": _anything,
    "--content-type": _anything, "--accept": _anything, "--name": _anything,
    "--payload": _anything, "--plan": _anything, "--locustfile": _anything,
    "--variant": _anything,
}  # fmt: skip
RUN_SWITCHES = ["--master", "--keep-requests", "--apply"]

TRAFFIC_FLAGS: dict[str, Callable[[str], bool]] = {
    "--traffic": _anything, "--pattern": _anything, "--peak-rps": _positive,
    "--min-rps": _nonneg, "--ramp-minutes": _nonneg, "--days": _positive,
}  # fmt: skip
ANALYZE_FLAGS: dict[str, Callable[[str], bool]] = {
    "--slo": _anything, "--max-error-rate": _fraction(False, True), "--safety-factor": _anything,
    **TRAFFIC_FLAGS, "--min-capacity": _nonneg, "--max-capacity": _nonneg,
    "--provision-minutes": _nonneg, "--violation-budget": _nonneg, "--slo-source": _anything,
}  # fmt: skip
REPORT_FLAGS: dict[str, Callable[[str], bool]] = {
    "--format": _anything, "--peak-rps": _positive, "--min-rps": _nonneg,
    "--instance-price": _nonneg, "--instance-type": _anything,
    "--min-capacity-floor": _positive, "--slo": _anything,
    "--max-error-rate": _fraction(False, True), "--safety-factor": _fraction(True, False),
}  # fmt: skip
SIMULATE_FLAGS: dict[str, Callable[[str], bool]] = {
    **TRAFFIC_FLAGS, "--min-capacity": _nonneg, "--max-capacity": _nonneg,
    "--safety-factor": _anything, "--target-value": _positive,
    "--scale-out-datapoints": _positive, "--scale-in-datapoints": _positive,
    "--scale-in-ratio": _fraction(True, False), "--scale-out-cooldown": _nonneg,
    "--scale-in-cooldown": _nonneg, "--provision-minutes": _nonneg,
    "--instance-price": _nonneg, "--violation-budget": _nonneg, "--slo": _anything,
    "--max-error-rate": _fraction(False, True),
}  # fmt: skip
COMPARE_FLAGS: dict[str, Callable[[str], bool]] = {"--max-regression": _anything}
APPLY_FLAGS: dict[str, Callable[[str], bool]] = {
    "--variant": _anything, "--kind": _anything, "--metric": _anything,
    "--target-value": _anything, "--min-capacity": _nonneg, "--max-capacity": _nonneg,
    "--policy-name": _anything, "--scale-in-cooldown": _nonneg,
    "--scale-out-cooldown": _nonneg, "--peak-rps": _positive, "--state-file": _anything,
    "--region": _anything, "--profile": _anything,
}  # fmt: skip
ROLLBACK_FLAGS: dict[str, Callable[[str], bool]] = {
    "--state-file": _anything, "--region": _anything, "--profile": _anything,
}  # fmt: skip
COLLECT_FLAGS: dict[str, Callable[[str], bool]] = {
    "--period": _positive, "--wait": _nonneg, "--profile": _anything,
}


Pairs = list[tuple[str, str]]


def flag_values(flags: dict[str, Callable[[str], bool]]) -> st.SearchStrategy[Pairs]:
    return st.lists(st.tuples(st.sampled_from(sorted(flags)), VALUES), min_size=1, max_size=4)


@pytest.fixture
def guarded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[str]]:
    """Name resolution only for loopback (other hosts are recorded and refused); fake AWS
    credentials; an empty working directory (a fuzzed relative path finds nothing)."""
    asked: list[str] = []
    real = socket.getaddrinfo

    def loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host not in ("127.0.0.1", "::1", "localhost", None):
            asked.append(str(host))
            raise OSError(f"the fuzz test refuses to resolve {host!r}")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", loopback_only)
    for name, value in {"AWS_ACCESS_KEY_ID": "AKIDFUZZ", "AWS_SECRET_ACCESS_KEY": "fuzz",
                        "AWS_SESSION_TOKEN": "fuzz", "AWS_DEFAULT_REGION": "us-east-1",
                        "AWS_CONFIG_FILE": "/dev/null",
                        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
                        "AWS_EC2_METADATA_DISABLED": "true",
                        "AWS_MAX_ATTEMPTS": "1"}.items():  # fmt: skip
        monkeypatch.setenv(name, value)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    yield asked


class _Overtime(Exception):
    pass


def invoke(argv: list[str]) -> tuple[int, str, str]:
    """The CLI in this process: (exit code, stdout, stderr); it must not raise."""
    out, err = io.StringIO(), io.StringIO()

    def overtime(_sig: int, _frame: Any) -> None:
        raise _Overtime(f"{argv!r} took over {EXAMPLE_SECONDS} s")

    previous = signal.signal(signal.SIGALRM, overtime)
    signal.alarm(EXAMPLE_SECONDS)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    return code, out.getvalue(), err.getvalue()


def check_clean(argv: list[str], code: int, out: str, err: str, asked: list[str]) -> None:
    assert not asked, f"{argv!r} looked up {asked}"
    assert "Traceback" not in out + err, (argv, err)
    if code != 0:
        # The documented failures (README "Exit codes"): 1, usage 2, every stage failing 3,
        # the endpoint or AWS 4.
        assert code in (1, 2, 3, 4), (argv, code, err)
        assert err.startswith("Error: ") and err.count("\n") == 1, (argv, err)
    else:
        assert err == "" or not err.startswith("Error"), (argv, err)


REPEATABLE = {"--slo", "--header", "--format"}  # every value counts; elsewhere the last one


def invalid_flag(pairs: list[tuple[str, str]], flags: dict[str, Callable[[str], bool]]
                 ) -> str | None:  # fmt: skip
    last = {flag: value for flag, value in pairs}
    for flag, value in pairs:
        if flag not in REPEATABLE and value != last[flag]:
            continue
        if not flags[flag](value):
            return f"{flag} {value!r}"
    return None


@FUZZ
@given(command=st.sampled_from(["loadtest", "run"]), url=URLS, pairs=flag_values(RUN_FLAGS),
       switches=st.lists(st.sampled_from(RUN_SWITCHES), unique=True))  # fmt: skip
def test_loadtest_and_run_refuse_cleanly_before_any_load(
    guarded: list[str], tmp_path: Path, command: str, url: str,
    pairs: list[tuple[str, str]], switches: list[str],
) -> None:  # fmt: skip
    out_dir = tmp_path / "reports"
    argv = [command, "--url", url, "--out", str(out_dir), "--yes", *switches]
    given = dict(pairs)
    for flag, tiny in (("--start-rps", "5"), ("--max-rps", "5"), ("--stages", "1"),
                       ("--stage-seconds", "2"), ("--warmup-seconds", "0")):  # fmt: skip
        if flag not in given:
            argv += [flag, tiny]
    argv += [x for pair in pairs for x in pair]
    guarded.clear()  # what an earlier example asked for
    code, out, err = invoke(argv)
    check_clean(argv, code, out, err, guarded)
    assert code != 0, (argv, out)  # nothing listens on the URL
    bad = invalid_flag(pairs, RUN_FLAGS)
    assert bad is None or code == 2, (f"{bad} was not refused", argv, err)
    assert not out_dir.exists() or not any(out_dir.iterdir()), "a run directory was made"


@FUZZ
@given(command=st.sampled_from(["loadtest", "run"]), url=URLS)
def test_any_url_is_refused_cleanly(guarded: list[str], tmp_path: Path, command: str,
                                    url: str) -> None:  # fmt: skip
    out_dir = tmp_path / "reports"
    argv = [command, "--url", url, "--start-rps", "5", "--max-rps", "5", "--stage-seconds", "2",
            "--search",
            "fixed", "--stages", "1", "--warmup-seconds", "0", "--out", str(out_dir), "--yes"]
    guarded.clear()  # what an earlier example asked for
    code, out, err = invoke(argv)
    check_clean(argv, code, out, err, guarded)
    assert code != 0 and not out_dir.exists(), (argv, out)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    plan = RampPlan(tuple(Stage(r, 3) for r in (10, 20, 30)), warmup_seconds=1)
    return write_run(tmp_path / "run", plan, synthetic_records(plan, [20, 40, 400]))


COMMANDS = {
    "analyze": ANALYZE_FLAGS, "report": REPORT_FLAGS, "simulate": SIMULATE_FLAGS,
    "compare": COMPARE_FLAGS, "apply": APPLY_FLAGS, "rollback": ROLLBACK_FLAGS,
    "collect": COLLECT_FLAGS,
}  # fmt: skip


@FUZZ
@given(data=st.data(), command=st.sampled_from(sorted(COMMANDS)), missing=st.booleans())
def test_run_directory_commands_fail_cleanly(
    guarded: list[str], run_dir: Path, data: st.DataObject, command: str, missing: bool
) -> None:
    flags = COMMANDS[command]
    pairs = data.draw(flag_values(flags))
    where = str(run_dir.parent / "no-such-run") if missing else str(run_dir)
    argv = [command, where] + ([str(run_dir)] if command == "compare" else [])
    if command in ("apply", "rollback", "collect"):
        argv += ["--aws-endpoint-url", CLOSED_AWS]
    if command in ("apply", "rollback"):
        argv += ["--yes"]
    argv += [x for pair in pairs for x in pair]
    assume("--help" not in argv)
    guarded.clear()  # what an earlier example asked for
    code, out, err = invoke(argv)
    check_clean(argv, code, out, err, guarded)
    if missing:
        assert code != 0, (argv, out)
    bad = invalid_flag(pairs, flags)
    assert bad is None or code != 0, (f"{bad} was not refused", argv, out)


@pytest.mark.parametrize(
    "argv",
    [
        ["loadtest", "--url", "http://[::1", "--max-rps", "10"],
        ["loadtest", "--url", "http://127.0.0.1:99999/invocations", "--max-rps", "10"],
        ["loadtest", "--url", "http://127.0.0.1:x/invocations", "--max-rps", "10"],
        ["run", "--url", CLOSED_URL, "--max-rps", "10", "--search", "fixed", "--precision", "2"],
        ["run", "--url", CLOSED_URL, "--max-rps", "10", "--search", "fixed",
         "--abort-error-rate", "5"],
        ["run", "--url", CLOSED_URL, "--max-rps", "10", "--stages", "1000000000"],
        ["run", "--url", CLOSED_URL, "--max-rps", "10", "--stage-seconds", "nan"],
        ["run", "--url", CLOSED_URL, "--max-rps", "10", "--abort-latency", "infx"],
        ["run", "--url", CLOSED_URL, "--max-rps", "10", "--safety-factor", "5"],
        ["run", "--url", CLOSED_URL, "--max-rps", "10", "--master-port", "70000"],
        ["run", "--url", CLOSED_URL, "--max-rps", "10", "--content-type", "a\nb"],
        ["run", "--url", CLOSED_URL, "--max-rps", "10", "--header", "X-Key: a\r\nb"],
        ["run", "--url", CLOSED_URL, "--max-rps", "10", "--header", "Bad Name: v"],
    ],
)
def test_what_the_fuzzer_found_is_refused_as_usage(
    guarded: list[str], tmp_path: Path, argv: list[str]
) -> None:
    argv = [*argv, "--out", str(tmp_path / "reports"), "--yes"]
    guarded.clear()  # what an earlier example asked for
    code, out, err = invoke(argv)
    check_clean(argv, code, out, err, guarded)
    assert code == 2, (argv, err)
    assert not (tmp_path / "reports").exists()
