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


#: whole numbers below this print in full with thousands separators; above, in e-notation
WHOLE_LIMIT = 1e15


def human(value: Any, digits: int = 4, missing: str = "-") -> str:
    """A number for people: `missing` for None; nan, inf, -inf; whole numbers in full with
    thousands separators (1,000,000) up to 1e15 and as 9.22e+18 beyond; other numbers with
    `digits` significant digits (0.001234, 1.099), in full from 10**digits (12,346), and in
    e-notation below 1e-4 or from 1e15 (3.92e+22). Never a run of digits no one can read."""
    x = number(value)
    if x is None:
        return missing
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    size = abs(x)
    if size >= WHOLE_LIMIT:
        return f"{x:.3g}"
    if isinstance(x, int) or float(x).is_integer():
        return f"{int(x):,}"
    if size >= 10 ** digits:
        return f"{x:,.0f}"
    if size < 1e-4:
        return f"{x:.{max(digits - 1, 1)}g}"
    return f"{x:.{digits}g}"


def fit(value: Any, width: int, digits: int = 4, missing: str = "-") -> str:
    """`human(value)` right-aligned in a column of `width` characters, one of them a gap;
    in e-notation when the digits in full would not leave the gap (3.66e+12, not
    3,655,286,264,966 run into its neighbour)."""
    text = human(value, digits, missing)
    x = number(value)
    if len(text) >= width and x is not None:
        for d in range(max(digits - 1, 1), 0, -1):
            text = f"{x:.{d}g}"
            if len(text) < width:
                break
    return f"{text:>{width}}"


def interval(low: float | None, high: float | None, low_open: bool = False,
             high_open: bool = False) -> str:
    """'[0, 1,000,000]', '(0, 10]', '[1, inf)': a range with its numbers for people."""
    left = "(" if low_open or low is None else "["
    right = ")" if high_open or high is None else "]"
    lo = "-inf" if low is None else human(low)
    hi = "inf" if high is None else human(high)
    return f"{left}{lo}, {hi}{right}"


class RecordTable:
    """`nnsim run --format table`: aligned columns of a run's records, for people (numbers
    by `human`; nan where a value went non-finite)."""

    COLUMNS = (("step", 9), ("epoch", 8), ("loss", 10), ("acc", 6), ("val_loss", 10),
               ("val_acc", 7), ("grad_norm", 10))

    def __init__(self, out) -> None:
        self.out = out
        self.header = False

    def write(self, record) -> None:
        if not self.header:
            self.out.write(" ".join(f"{n:>{w}}" for n, w in self.COLUMNS) + "\n")
            self.header = True
        cells = (human(record.step), human(record.epoch), human(record.loss),
                 fmt(record.accuracy, ".3f"), human(record.val_loss),
                 fmt(record.val_accuracy, ".3f"), human(record.grad_norm, 3))
        line = " ".join(f"{cell:>{width}}" for (_, width), cell in zip(self.COLUMNS, cells))
        if record.nonfinite:
            line += f"  non-finite {record.nonfinite}"
        self.out.write(line + "\n")

    def close(self) -> None:
        self.out.flush()
