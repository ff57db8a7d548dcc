"""Traffic for the policy simulation: CSV files (CloudWatch exports too) and patterns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from recommender.errors import ConfigError
from recommender.traffic import (
    MINUTES_PER_DAY,
    from_counts,
    load_traffic,
    read_traffic_csv,
    synthetic_traffic,
)

T0 = 1714521600  # 2024-05-01T00:00:00Z


def write(tmp_path: Path, text: str, name: str = "traffic.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_cloudwatch_export_per_minute_sorted_with_a_missing_minute(tmp_path: Path) -> None:
    # CloudWatch returns datapoints unordered and leaves out minutes without invocations.
    rows = ["2024-05-01T00:03:00Z,40", "2024-05-01T00:00:00Z,10", "2024-05-01T00:01:00Z,20"]
    path = write(tmp_path, "Timestamp,Sum\n" + "\n".join(rows) + "\n")
    t = read_traffic_csv(path)
    assert t.requests_per_minute.tolist() == [10.0, 20.0, 0.0, 40.0]
    assert t.missing_minutes == 1
    assert t.start == "2024-05-01T00:00:00+00:00"
    assert t.source == "traffic.csv (per minute)"


def test_per_second_epoch_rows_sum_to_whole_minutes(tmp_path: Path) -> None:
    # 150 s of 2 requests a second: two whole minutes of 120; the last 30 s are dropped.
    rows = "".join(f"{T0 + s},2\n" for s in range(150))
    t = read_traffic_csv(write(tmp_path, "time,count\n" + rows))
    assert t.requests_per_minute.tolist() == [120.0, 120.0]
    assert t.source == "traffic.csv (per 1 s, summed to minutes)"


def test_epoch_milliseconds_and_naive_iso_are_read(tmp_path: Path) -> None:
    ms = read_traffic_csv(write(tmp_path, f"timestamp,requests\n{T0 * 1000},5\n"
                                f"{(T0 + 60) * 1000},7\n"))  # fmt: skip
    iso = read_traffic_csv(write(tmp_path, "timestamp,requests\n2024-05-01 00:00:00,5\n"
                                 "2024-05-01 00:01:00,7\n"))  # fmt: skip
    assert ms.requests_per_minute.tolist() == iso.requests_per_minute.tolist() == [5.0, 7.0]
    assert ms.start == iso.start == "2024-05-01T00:00:00+00:00"


@pytest.mark.parametrize(
    "header",
    ["timestamp,requests", "Time,Invocations", "time,count", "TIMESTAMP,value",
     "Timestamp,Sum", '"Timestamp","Invocations (Sum)"', "timestamp,Unit,Sum"],
)  # fmt: skip
def test_header_names_are_matched_loosely(tmp_path: Path, header: str) -> None:
    extra = ",Count" if header.count(",") == 2 else ""
    rows = "".join(f"{T0 + 60 * i}{extra},{i + 1}\n" for i in range(3))
    t = read_traffic_csv(write(tmp_path, f"{header}\n{rows}"))
    assert t.requests_per_minute.tolist() == [1.0, 2.0, 3.0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a,b\n1,2\n3,4\n", "traffic.csv: no timestamp column (columns: a, b)"),
        ("timestamp,b\n1,2\n3,4\n", "traffic.csv: no requests column (columns: timestamp, b)"),
        ("timestamp,requests\nyesterday,1\ntoday,2\n", "cannot read timestamp 'yesterday'"),
        (f"timestamp,requests\n{T0},1\n{T0 + 300},2\n", "rows are 300 s apart"),
        (f"timestamp,requests\n{T0},1\n{T0 + 7},2\n", "rows are 7 s apart"),
        (f"timestamp,requests\n{T0},1\n{T0 + 60},-3\n", "line 3: requests '-3' is not a count"),
        (f"timestamp,requests\n{T0},1\n{T0 + 60},many\n", "'many' is not a count"),
        (f"timestamp,requests\n{T0},1\n", "has 1 data row(s)"),
        ("", "traffic.csv is empty"),
        (f"timestamp,requests\n{T0},1\n{T0 + 1},1\n", "covers less than one minute"),
    ],
)
def test_bad_files_give_one_line_config_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        read_traffic_csv(write(tmp_path, text))
    assert message in exc.value.one_line()
    assert "\n" not in exc.value.one_line()
    assert exc.value.hint


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="traffic file not found"):
        read_traffic_csv(tmp_path / "nope.csv")


def test_five_minute_export_says_how_to_fix(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        read_traffic_csv(write(tmp_path, f"Timestamp,Sum\n{T0},1\n{T0 + 300},2\n"))
    assert exc.value.hint == "export CloudWatch Invocations (Sum) with period 60"


def rps(pattern: str, **kw: float) -> np.ndarray:
    return synthetic_traffic(pattern, 800, 50, **kw).requests_per_minute / 60.0  # type: ignore[arg-type]


def test_diurnal_rises_over_the_ramp_and_holds_the_peak() -> None:
    r = rps("diurnal", ramp_minutes=60)
    assert r.size == MINUTES_PER_DAY
    assert np.all(r[:420] == 50) and r[419] == 50
    rising = np.nonzero((r > 50) & (r < 800))[0]
    # The rise from 07:00 takes 60 minutes; minute midpoints put 60 of them strictly between.
    assert rising[0] == 420 and rising[rising < 600][-1] == 479
    assert np.all(r[480:1140] == 800)
    assert r.min() == 50 and r[-1] == 50


def test_faster_ramp_is_steeper() -> None:
    assert np.diff(rps("diurnal", ramp_minutes=30)).max() > np.diff(rps("diurnal")).max()


def test_step_is_instant_by_default_and_spike_comes_back_down() -> None:
    step = rps("step")
    assert step[719] == 50 and step[720] == 800 and step[-1] == 800
    spike = rps("spike")
    assert spike.max() == 800 and spike[-1] == 50
    assert np.count_nonzero(spike == 800) == 30


def test_days_repeat_the_day() -> None:
    t = synthetic_traffic("diurnal", 800, 50, days=3)
    r = t.requests_per_minute
    assert t.minutes == 3 * MINUTES_PER_DAY
    assert np.array_equal(r[:MINUTES_PER_DAY], r[2 * MINUTES_PER_DAY:])


def test_min_rps_defaults_to_a_tenth_of_the_peak() -> None:
    assert synthetic_traffic("step", 500).min_rps == pytest.approx(50)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"pattern": "weekly", "peak_rps": 5}, "unknown --pattern 'weekly'"),
        ({"pattern": "diurnal", "peak_rps": None}, "--pattern needs --peak-rps > 0"),
        ({"pattern": "diurnal", "peak_rps": 10, "min_rps": 20}, "--min-rps must be between 0"),
        ({"pattern": "spike", "peak_rps": 10, "ramp_minutes": 400}, "--ramp-minutes must be"),
        ({"pattern": "step", "peak_rps": 10, "days": 0}, "--days must be between 1 and 31"),
    ],
)
def test_bad_patterns(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        synthetic_traffic(**kwargs)  # type: ignore[arg-type]
    assert message in exc.value.one_line()


def test_load_traffic_wants_exactly_one_source(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no traffic given"):
        load_traffic(None, None)
    with pytest.raises(ConfigError, match="not both"):
        load_traffic(tmp_path / "t.csv", "diurnal", 10)
    with pytest.raises(ConfigError, match="--peak-rps shapes a --pattern"):
        load_traffic(tmp_path / "t.csv", None, peak_rps=10)
    assert load_traffic(None, "step", 10, days=2).minutes == 2 * MINUTES_PER_DAY


def test_from_counts_rejects_negative() -> None:
    assert from_counts([1, 2]).minutes == 2
    with pytest.raises(ConfigError):
        from_counts([1, -2])
