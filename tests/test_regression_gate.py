"""`recommender compare` as a CI gate on real adaptive searches of a real server (the unit
tests in test_compare.py hold it to synthetic runs). Its own file: its three searches take
about a minute and a half, and `--dist loadfile` runs a file on one process."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from recommender.cli import main
from recommender.local.process import running_server
from tests.conftest import calm_config


def test_compare_gates_a_real_capacity_regression(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two runs of the same server compare as equal; a server with 30% less capacity fails
    the gate (`recommender compare` exits 1)."""

    def measure(url: str, name: str) -> Path:
        out = tmp_path / name
        code = main([
            "run", "--url", f"{url}/invocations", "--slo", "p95<=250ms", "--start-rps", "60",
            "--max-rps", "160", "--stage-seconds", "3", "--warmup-seconds", "1",
            "--precision", "0.1", "--out", str(out), "--arrivals", "uniform",
            # The default search: the probe's ceiling is played as a stage before it may end
            # the bracket (unplayed, it stood as the interval's top, 160, and nothing gated).
        ])  # fmt: skip
        assert code == 0, capsys.readouterr().out
        (run_dir,) = out.iterdir()
        return run_dir

    # 1 instance x 10 slots / 100 ms = 100 requests/s: the demo server's rates (so the
    # search's 3 s stages count as many requests as they did on it), with the 150 ms between
    # service and SLO that lets `calm_config` servers hold their truth beside other tests.
    server = calm_config(slots=10)
    with running_server(server) as url:
        base = measure(url, "base")
        same = measure(url, "same")
    # 10 slots / 142.9 ms = 70 requests/s: 30% less.
    with running_server(replace(server, service_time_ms=142.9)) as url:
        worse = measure(url, "worse")
    capsys.readouterr()
    assert main(["compare", str(base), str(same), "--max-regression", "10%"]) == 0
    assert main(["compare", str(base), str(worse), "--max-regression", "10%"]) == 1
    out = capsys.readouterr().out
    assert "capacity" in out.lower()
