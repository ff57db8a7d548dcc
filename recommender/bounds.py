"""The range a number given on the command line must fall in, checked the same way for
every flag.

A float flag parses "nan" and "inf" (Python's float() does), and NaN compares False with
everything: a check written `if x < low: raise` lets NaN through, and an unchecked NaN or
infinity then shows up far away (a plan of NaN-rate stages, a search that never ends). So
every number is checked here for being finite AND in its range, in one line of the flag's
own name, whether or not the chosen mode reads it: a bad value is refused, never silently
unused. Errors are ConfigError (exit 2, nothing started).
"""

from __future__ import annotations

import math

from recommender.errors import ConfigError

PORT_MAX = 65535


def describe_range(low: float | None, high: float | None, low_open: bool, high_open: bool
                   ) -> str:  # fmt: skip
    """"> 0", ">= 1", "<= 60", "in (0, 1]": how the rule reads in an error."""
    if low is not None and high is not None:
        left, right = "(" if low_open else "[", ")" if high_open else "]"
        return f"in {left}{low:g}, {high:g}{right}"
    if low is not None:
        return f"{'>' if low_open else '>='} {low:g}"
    if high is not None:
        return f"{'<' if high_open else '<='} {high:g}"
    return "a finite number"


def check_number(
    flag: str,
    value: float | None,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    hint: str | None = None,
) -> None:
    """ConfigError `FLAG must be <range> (got VALUE) (HINT)` unless `value` is None (not
    given) or a finite number within the range (bounds closed unless `*_open`)."""
    if value is None:
        return
    ok = math.isfinite(value)
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if ok:
        return
    # An int as the user wrote it (`:g` would show 99999999999999999999 as 1e+20).
    shown = str(value) if isinstance(value, int) else f"{value:g}"
    rule = describe_range(low, high, low_open, high_open)
    raise ConfigError(f"{flag} must be {rule} (got {shown})", hint)


def check_port(flag: str, value: int | None, *, allow_zero: bool = False, hint: str | None = None
               ) -> None:  # fmt: skip
    """A TCP port (0 where it means "pick a free one")."""
    check_number(flag, value, low=0 if allow_zero else 1, high=PORT_MAX, hint=hint)
