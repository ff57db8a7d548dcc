"""Traffic to replay through a scaling policy: requests per minute, from a file or a pattern.

Two sources, one result (`TrafficSeries`, requests in each minute as a numpy array):

- A CSV of timestamp and request COUNT per interval (not a rate), one row per second or per
  minute; the spacing is detected from the timestamps. Timestamps are ISO 8601 (naive ones
  read as UTC) or epoch seconds. Header names are matched loosely: `timestamp`/`time`/`date`
  and `requests`/`invocations`/`count`/`value`/`sum` (a column whose name contains
  "invocations" also counts). CloudWatch's `Invocations` (statistic Sum, period 60) exported
  from a production endpoint has this shape (`Timestamp,Sum`). Rows are sorted by time;
  minutes with no row count as 0 requests, because CloudWatch leaves out the minutes in which
  an endpoint had no invocations. Sub-minute rows are summed into whole minutes counted from
  the first row; a trailing partial minute is dropped (it would read as a drop in traffic).
  Rows coarser than a minute (e.g. CloudWatch's 5-minute period) are refused: spreading them
  evenly would hide the very ramps the simulation is for.
- A synthetic day (`synthetic_traffic`), repeated for `days`, built from straight-line pieces
  between (minute of day, requests/s) knots, evaluated at each minute's midpoint (the
  minute's mean rate for a linear piece). `ramp_minutes` is how long the rise from the low
  rate to the peak takes; its slope is what decides how much headroom target tracking needs.

    diurnal  low until 07:00, rise over ramp (default 120 min), peak until 19:00, fall to low
             over 4 h (the evening fall only costs money, so it is not a parameter)
    spike    low all day; at 12:00 a rise over ramp (default 5 min), 30 min at peak, and a fall
             over the same ramp
    step     low until 12:00, then a rise over ramp (default 0: instant) to the peak, held
             to the end of the day

Pulling the traffic from a live endpoint belongs in the AWS module (the only one that imports
boto3), returning the same dataclass; it would plug in as:

    # recommender.aws.AwsClient.invocations_per_minute(
    #     endpoint: str, variant: str, days: int) -> TrafficSeries
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from recommender.bounds import check_number
from recommender.errors import ConfigError

if TYPE_CHECKING:
    import pandas as pd  # imported where a CSV or a time is read: every command imports this
    # module (its flags), and pandas took a third of a second of each start (`serve` too)

PATTERNS = ("diurnal", "spike", "step")
DEFAULT_RAMP_MINUTES = {"diurnal": 120.0, "spike": 5.0, "step": 0.0}
# --min-rps when only the peak is given: a night at a tenth of the day's peak.
DEFAULT_MIN_SHARE = 0.1
MAX_DAYS = 31
MINUTES_PER_DAY = 1440

_TIME_NAMES = ("timestamp", "time", "datetime", "date", "ts")
_COUNT_NAMES = ("requests", "invocations", "count", "value", "sum")
_COLUMN_HINT = "name the columns timestamp,requests (also read: time; invocations, count, Sum)"
# Epoch values this large are milliseconds (1e11 s is the year 5138).
_EPOCH_MS_ABOVE = 1e11


@dataclass(frozen=True, eq=False)
class TrafficSeries:
    """Requests in each minute, minute 0 first."""

    requests_per_minute: npt.NDArray[np.float64]
    source: str  # where it came from, in words, for the output
    start: str | None = None  # ISO time of minute 0, when the source had timestamps
    missing_minutes: int = 0  # minutes a file had no row for (counted as 0 requests)

    @property
    def minutes(self) -> int:
        return int(self.requests_per_minute.size)

    @property
    def peak_rps(self) -> float:
        return float(self.requests_per_minute.max()) / 60.0

    @property
    def min_rps(self) -> float:
        return float(self.requests_per_minute.min()) / 60.0

    def to_dict(self) -> dict[str, Any]:
        r = self.requests_per_minute
        return {
            "source": self.source,
            "start": self.start,
            "minutes": self.minutes,
            "missing_minutes": self.missing_minutes,
            "requests": float(r.sum()),
            "peak_rps": round(self.peak_rps, 3),
            "min_rps": round(self.min_rps, 3),
            "mean_rps": round(float(r.mean()) / 60.0, 3),
        }


def from_counts(requests_per_minute: Any, source: str = "given counts") -> TrafficSeries:
    """A series from per-minute counts already in hand (tests, other modules)."""
    r = np.asarray(requests_per_minute, dtype=np.float64).ravel()
    if r.size == 0:
        raise ConfigError("the traffic has no minutes", "give at least one minute of requests")
    if not np.all(np.isfinite(r)) or np.any(r < 0):
        raise ConfigError("traffic counts must be finite and >= 0")
    return TrafficSeries(r, source)


# --- files ---------------------------------------------------------------------------------


def _norm(name: object) -> str:
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def _pick_columns(columns: list[str], name: str) -> tuple[str, str]:
    norm = {c: _norm(c) for c in columns}
    time_col = next((c for want in _TIME_NAMES for c in columns if norm[c] == want), None)
    count_col = next((c for want in _COUNT_NAMES for c in columns if norm[c] == want), None)
    if count_col is None:
        count_col = next((c for c in columns if "invocations" in norm[c] and c != time_col), None)
    if time_col is None or count_col is None:
        missing = "timestamp" if time_col is None else "requests"
        found = ", ".join(str(c) for c in columns) or "none"
        raise ConfigError(f"{name}: no {missing} column (columns: {found})", _COLUMN_HINT)
    return time_col, count_col


def _epoch_seconds(values: pd.Series, name: str) -> npt.NDArray[np.float64]:
    """Epoch seconds from epoch numbers (s or ms) or ISO 8601 strings (naive = UTC)."""
    import pandas as pd

    numeric = pd.to_numeric(values, errors="coerce")
    if numeric.notna().all():
        secs: npt.NDArray[np.float64] = numeric.to_numpy(dtype=np.float64)
        return secs / 1000.0 if np.nanmax(np.abs(secs)) > _EPOCH_MS_ABOVE else secs
    try:
        parsed = pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError) as exc:
        bad = next((str(v) for v in values if not _parses(v)), str(values.iloc[0]))
        raise ConfigError(
            f"{name}: cannot read timestamp {bad!r}",
            "use ISO 8601 (2024-05-01T12:00:00Z) or epoch seconds",
        ) from exc
    # Nanoseconds since the epoch, as int64, whatever unit pandas chose to store.
    ns = parsed.astype("datetime64[ns, UTC]").astype("int64").to_numpy()
    out: npt.NDArray[np.float64] = ns.astype(np.float64) / 1e9
    return out


def _parses(value: object) -> bool:
    import pandas as pd

    try:
        pd.to_datetime(str(value), utc=True, format="ISO8601")
    except (ValueError, TypeError):
        return False
    return True


def _iso(epoch_s: float) -> str:
    import pandas as pd

    return str(pd.Timestamp(epoch_s, unit="s", tz="UTC").isoformat())


def read_traffic_csv(path: Path) -> TrafficSeries:
    """Per-minute requests from a CSV of timestamp and request count (see the module doc)."""
    import pandas as pd

    name = path.name
    if not path.is_file():
        raise ConfigError(f"traffic file not found: {path}", "check the --traffic path")
    try:
        frame = pd.read_csv(path, skipinitialspace=True)
    except pd.errors.EmptyDataError as exc:
        raise ConfigError(f"{name} is empty", _COLUMN_HINT) from exc
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"{name} is not a readable CSV: {first}", _COLUMN_HINT) from exc
    time_col, count_col = _pick_columns([str(c) for c in frame.columns], name)
    frame = frame.dropna(how="all")
    if len(frame) < 2:
        raise ConfigError(
            f"{name} has {len(frame)} data row(s)",
            "give at least two rows, so the spacing of the timestamps can be read",
        )
    counts = pd.to_numeric(frame[count_col], errors="coerce")
    bad = counts.isna() | (counts < 0)
    if bad.any():
        pos = int(np.argmax(bad.to_numpy()))
        row = int(frame.index[pos]) + 2  # 1-based, after the header line
        raise ConfigError(
            f"{name} line {row}: {count_col} {str(frame[count_col].iloc[pos])!r} is not "
            "a count >= 0",
            "give the number of requests in each interval",
        )
    t = _epoch_seconds(frame[time_col], name)
    order = np.argsort(t, kind="stable")
    t, c = t[order], counts.to_numpy(dtype=np.float64)[order]
    # Repeated timestamps (an export of several overlapping queries) add up.
    t, inverse = np.unique(t, return_inverse=True)
    c = np.bincount(inverse, weights=c).astype(np.float64)
    if t.size < 2:
        raise ConfigError(f"{name}: all rows share one timestamp", "give one row per interval")
    # The smallest spacing, not the median: gaps (minutes without invocations) only widen it.
    step = float(np.diff(t).min())
    return _to_minutes(t, c, step, name)


def _to_minutes(
    t: npt.NDArray[np.float64], c: npt.NDArray[np.float64], step: float, name: str
) -> TrafficSeries:
    step_r = round(step)
    if step_r < 1 or abs(step - step_r) > 1e-3:
        raise ConfigError(
            f"{name}: rows are {step:g} s apart", "give one row per second or per minute"
        )
    if step_r > 60 or 60 % step_r:
        raise ConfigError(
            f"{name}: rows are {step_r} s apart; the simulation needs per-minute or "
            "per-second counts",
            "export CloudWatch Invocations (Sum) with period 60",
        )
    offsets = (t - t[0]) / step_r
    if np.any(np.abs(offsets - np.round(offsets)) > 1e-3):
        raise ConfigError(
            f"{name}: timestamps are not on a {step_r} s grid",
            "give one row per whole second or minute",
        )
    slots = np.round(offsets).astype(np.int64)
    per_minute = 60 // step_r
    # Whole minutes only: a trailing part-minute would look like a fall in traffic.
    minutes = (int(slots[-1]) + 1) // per_minute
    if minutes < 1:
        raise ConfigError(f"{name} covers less than one minute", "give at least a whole minute")
    keep = slots < minutes * per_minute
    requests = np.bincount(slots[keep] // per_minute, weights=c[keep], minlength=minutes)
    filled = np.bincount(slots[keep] // per_minute, minlength=minutes) > 0
    unit = "minute" if step_r == 60 else f"{step_r} s, summed to minutes"
    return TrafficSeries(
        requests.astype(np.float64),
        f"{name} (per {unit})",
        _iso(float(t[0])),
        int(minutes - filled.sum()),
    )


# --- synthetic patterns --------------------------------------------------------------------


def _knots(pattern: str, low: float, peak: float, ramp: float) -> list[tuple[float, float]]:
    # A zero-length ramp still needs increasing x for np.interp: a microsecond step.
    r = max(ramp, 1e-6)
    if pattern == "diurnal":
        rise, fall = 7 * 60.0, 19 * 60.0
        return [(0, low), (rise, low), (rise + r, peak), (fall, peak), (fall + 240, low),
                (MINUTES_PER_DAY, low)]  # fmt: skip
    if pattern == "spike":
        at = 12 * 60.0
        return [(0, low), (at, low), (at + r, peak), (at + r + 30, peak), (at + 2 * r + 30, low),
                (MINUTES_PER_DAY, low)]  # fmt: skip
    at = 12 * 60.0
    return [(0, low), (at, low), (at + r, peak), (MINUTES_PER_DAY, peak)]


_MAX_RAMP = {"diurnal": 720.0, "spike": 300.0, "step": 720.0}


def synthetic_traffic(
    pattern: str,
    peak_rps: float | None,
    min_rps: float | None = None,
    ramp_minutes: float | None = None,
    days: int = 1,
) -> TrafficSeries:
    """A synthetic day of traffic, repeated `days` times (shapes in the module docstring)."""
    if pattern not in PATTERNS:
        raise ConfigError(f"unknown --pattern {pattern!r}", "use diurnal, spike or step")
    if peak_rps is None or not peak_rps > 0:
        got = "" if peak_rps is None else f" (got {peak_rps:g})"
        raise ConfigError(f"--pattern needs --peak-rps > 0{got}", "pass the expected peak rate")
    low = peak_rps * DEFAULT_MIN_SHARE if min_rps is None else min_rps
    if not 0 <= low <= peak_rps:
        raise ConfigError(
            f"--min-rps must be between 0 and --peak-rps ({peak_rps:g}) (got {low:g})"
        )
    ramp = DEFAULT_RAMP_MINUTES[pattern] if ramp_minutes is None else ramp_minutes
    if not 0 <= ramp <= _MAX_RAMP[pattern]:
        raise ConfigError(
            f"--ramp-minutes must be between 0 and {_MAX_RAMP[pattern]:g} for {pattern} "
            f"(got {ramp:g})",
            "it is how long the rise from --min-rps to --peak-rps takes",
        )
    if not 1 <= days <= MAX_DAYS:
        raise ConfigError(f"--days must be between 1 and {MAX_DAYS} (got {days})")
    x, y = zip(*_knots(pattern, low, peak_rps, ramp), strict=True)
    mid = np.arange(MINUTES_PER_DAY, dtype=np.float64) + 0.5
    day = np.interp(mid, np.asarray(x), np.asarray(y)) * 60.0
    source = (
        f"{pattern} pattern: {low:g} to {peak_rps:g} rps, ramp {ramp:g} min, "
        f"{days} day{'s' if days > 1 else ''}"
    )
    return TrafficSeries(np.tile(day, days), source)


@dataclass(frozen=True, kw_only=True)
class TrafficSpec:
    """The traffic flags as given (`--traffic FILE` or `--pattern` and its shape); read
    only when a command needs the series."""

    file: Path | None = None
    pattern: str | None = None
    peak_rps: float | None = None
    min_rps: float | None = None
    ramp_minutes: float | None = None
    days: int | None = None

    def __post_init__(self) -> None:
        # Each number alone, finite and in range, before the command reads anything (the
        # pattern's own ranges, e.g. --min-rps <= --peak-rps, are checked when it is built).
        check_number("--peak-rps", self.peak_rps, low=0, low_open=True,
                     hint="the pattern's peak, requests/s")
        check_number("--min-rps", self.min_rps, low=0, hint="the pattern's low, requests/s")
        check_number("--ramp-minutes", self.ramp_minutes, low=0, hint="minutes")
        check_number("--days", self.days, low=1, high=MAX_DAYS)

    @property
    def given(self) -> bool:
        return self.file is not None or self.pattern is not None

    def check(self) -> TrafficSpec:
        """ConfigError for a pattern's shape given without a pattern: it would be unused."""
        if self.pattern is None:
            for flag, value in (("--peak-rps", self.peak_rps), ("--min-rps", self.min_rps),
                                ("--ramp-minutes", self.ramp_minutes), ("--days", self.days)):
                if value is not None:
                    raise ConfigError(f"{flag} shapes a --pattern, and none was given",
                                      "add --pattern diurnal|spike|step, or leave it out")
        return self

    def load(self) -> TrafficSeries:
        return load_traffic(self.file, self.pattern, self.peak_rps, self.min_rps,
                            self.ramp_minutes, self.days)  # fmt: skip


def load_traffic(
    traffic_file: Path | None,
    pattern: str | None,
    peak_rps: float | None = None,
    min_rps: float | None = None,
    ramp_minutes: float | None = None,
    days: int | None = None,
) -> TrafficSeries:
    """The traffic the command line asks for: exactly one of a file and a pattern."""
    if traffic_file is not None and pattern is not None:
        raise ConfigError("give --traffic or --pattern, not both")
    if traffic_file is not None:
        for flag, value in (("--peak-rps", peak_rps), ("--min-rps", min_rps),
                            ("--ramp-minutes", ramp_minutes), ("--days", days)):  # fmt: skip
            if value is not None:
                raise ConfigError(f"{flag} shapes a --pattern; it does not apply to --traffic")
        return read_traffic_csv(traffic_file)
    if pattern is None:
        raise ConfigError(
            "no traffic given",
            "pass --traffic FILE (timestamp,requests) or --pattern diurnal|spike|step "
            "with --peak-rps",
        )
    return synthetic_traffic(pattern, peak_rps, min_rps, ramp_minutes, 1 if days is None else days)


def describe_minutes(minutes: int) -> str:
    """'1 day', '7 days', '90 minutes': how long a series is, in words."""
    if minutes % MINUTES_PER_DAY == 0:
        d = minutes // MINUTES_PER_DAY
        return f"{d} day{'s' if d > 1 else ''}"
    if minutes >= 120:
        return f"{minutes / 60:.1f} hours"
    return f"{minutes} minute{'s' if minutes != 1 else ''}"

