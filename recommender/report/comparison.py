"""`recommender compare`'s text: the two runs side by side, and the verdict."""

from __future__ import annotations

from recommender.compare import Comparison, RunSide


def _num(v: float | None, fmt: str, unit: str = "") -> str:
    return "-" if v is None else f"{v:{fmt}}{unit}"


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{v:+.1%}"


def verdict(c: Comparison) -> str:
    change = c.change["rps_per_instance"]
    if c.regression:
        return (
            f"REGRESSION: capacity per instance fell {-(change or 0):.1%}, "
            f"{c.drop_beyond_intervals:.1%} beyond both runs' intervals "
            f"(allowed {c.max_regression:.0%})."
        )
    if c.drop_beyond_intervals is None:
        why = "NEW's capacity is a lower bound, so it may be as high as BASE's"
    elif c.drop_beyond_intervals > 0:
        why = (f"it is {c.drop_beyond_intervals:.1%} beyond the intervals, within "
               f"the {c.max_regression:.0%} allowed")  # fmt: skip
    else:
        why = "the runs' intervals overlap or NEW's lies above"
    return f"OK: capacity per instance changed {_pct(change)}; {why}."


def format_comparison(c: Comparison) -> str:
    def iv(side: RunSide) -> str:
        i = side.interval_rps_per_instance
        return f"{i[0]:.1f} - {i[1]:.1f}" if i else f"none ({side.method})"

    load = c.load_rps_per_instance
    load_label = f"p95 at {load:.1f} rps/instance" if load is not None else "p95 at equal load"
    rows = [
        ["", "base", "new", "change"],
        ["capacity (rps/instance)", _num(c.base.rps_per_instance, ".1f"),
         _num(c.new.rps_per_instance, ".1f"), _pct(c.change["rps_per_instance"])],
        ["  interval", iv(c.base), iv(c.new), ""],
        ["target value", _num(c.base.target_value, ".0f"), _num(c.new.target_value, ".0f"),
         _pct(c.change["target_value"])],
        [load_label, _num(c.base.p95_at_load_ms, ".1f", " ms"),
         _num(c.new.p95_at_load_ms, ".1f", " ms"), _pct(c.change["p95_at_load"])],
    ]  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        f"base: {c.base.dir}",
        f"new:  {c.new.dir}",
        f"Both judged on {c.slo}; equal load: {c.load_basis}.",
        "",
    ]
    for r in rows:
        cells = [x.rjust(w) for x, w in zip(r[1:], widths[1:], strict=True)]
        lines.append("  ".join([r[0].ljust(widths[0]), *cells]))
    lines += ["", verdict(c)]
    return "\n".join(line.rstrip() for line in lines) + "\n"
