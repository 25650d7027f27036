"""Numbers for people: one formatter that never fails on None, NaN, infinities or the
strings "nan", "inf" and "-inf" that JSON records hold for non-finite values."""

from __future__ import annotations

import math
from typing import Any

NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf,
             "NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def number(value: Any) -> float | int | None:
    """A record's value as a number: None stays None, "nan"/"inf"/"-inf" become floats."""
    if value is None or isinstance(value, bool):
        return None if value is None else int(value)
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str) and value in NONFINITE:
        return NONFINITE[value]
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def fmt(value: Any, spec: str = ".4g", missing: str = "-") -> str:
    """format(value, spec), with `missing` for None and 'nan', 'inf', '-inf' for non-finite
    values (given as floats or as the strings records use)."""
    x = number(value)
    if x is None:
        return missing
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    try:
        return format(x, spec)
    except (TypeError, ValueError):
        return str(x)
