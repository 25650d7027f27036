"""Every number of a run at every scale: the whole run in bounded memory, the newest steps
exactly.

A `Timeline` turns each step record into one row of floats (global numbers, then each
layer's statistics). The newest `recent` rows are kept as they are. The whole run is kept
in at most `buckets` buckets, each holding the minimum, the sum (so the mean) and the
maximum of the steps it covers: bucket k covers the steps of records k·w … (k+1)·w − 1, and
when every bucket is in use neighbours merge pairwise and w doubles. Step 1 is therefore
still there, as part of the first bucket, at step 100,000.

Appending is one row write; rows are folded into buckets in blocks, with a few vectorised
reductions, when a reader asks or when enough rows wait. A step whose layers were not
measured (see `Simulation.step(measure=False)`) adds its global numbers only: a bucket's
layer statistics are then the min, mean and max of its measured steps. `resample(n)` reduces either the
whole run or the newest `last` steps to `n` columns for drawing, with the min, mean and max
of each column. Nothing here knows about a screen.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from operator import attrgetter

import numpy as np

from nnsim.engine.records import LAYER_STATS, StepRecord

#: global series of every record, in row order; `loss_smooth` and `accuracy_smooth` are
#: exponential moving averages of the training loss and accuracy (time constant EMA_STEPS)
GLOBAL = ("loss", "accuracy", "val_loss", "val_accuracy", "grad_norm", "lr", "reg_loss",
          "loss_smooth", "accuracy_smooth")
EMA_STEPS = 25
_GLOBAL_GET = attrgetter(*GLOBAL[:7])
#: the per-layer statistics the buckets keep (declared with aggregate "range")
LAYER_SERIES = tuple(s.name for s in LAYER_STATS if s.aggregate == "range")
_LAYER_GET = attrgetter(*LAYER_SERIES)

Key = str | tuple[str, int]  # "loss", or (field, layer) with layers counted from 1


def layout_of(record: StepRecord) -> tuple[Key, ...]:
    """The row layout a record gives: global names, then (field, layer) for every layer
    scalar, optimizer state norm and learnable mean."""
    keys: list[Key] = list(GLOBAL)
    for layer in record.layers:
        keys += [(name, layer.index) for name in LAYER_SERIES]
        keys += [(name, layer.index) for name, _ in layer.state]
        keys += [(name, layer.index) for name, _ in layer.learnable]
    return tuple(keys)


def _columns_of(units: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first and the last unit of each of min(n, units) columns of about equal numbers
    of units, oldest first."""
    cols = min(n, units)
    starts = (np.arange(cols) * units) // cols
    return starts, np.concatenate([starts[1:], [units]]) - 1


@dataclass(frozen=True)
class Columns:
    """A run reduced to columns for drawing: per column, the first and last step it covers
    and the min, mean and max of every series over those steps (NaN where a series has no
    finite value there, e.g. validation between evaluations)."""

    first: np.ndarray  # (n,) step of each column's first record
    last: np.ndarray  # (n,) step of each column's last record
    lo: np.ndarray  # (n, F)
    mean: np.ndarray  # (n, F)
    hi: np.ndarray  # (n, F)
    index: dict  # Key -> column of the (n, F) arrays

    def __len__(self) -> int:
        return len(self.first)

    def has(self, key: Key) -> bool:
        return key in self.index

    def series(self, key: Key, which: str = "mean") -> np.ndarray:
        """One series over the columns; all NaN for a key this run does not have."""
        j = self.index.get(key)
        if j is None:
            return np.full(len(self.first), np.nan)
        return getattr(self, which)[:, j]


class Timeline:
    """The run's series at two resolutions; one thread appends while another reads."""

    def __init__(self, buckets: int = 1024, recent: int = 4096) -> None:
        if buckets < 2 or buckets % 2 or recent < 2:
            raise ValueError("buckets must be an even number >= 2 and recent >= 2")
        self.n_buckets, self.n_recent = buckets, recent
        self._lock = threading.Lock()
        self._reset()

    def clear(self) -> None:
        with self._lock:
            self._reset()

    def _reset(self) -> None:
        self.keys: tuple[Key, ...] = ()
        self.index: dict = {}
        #: the columns of the series a reader asked for, and their index (`resample`)
        self._picked: tuple = (None, [], {})
        self.count = 0  # records appended
        self.folded = 0  # records already in the buckets
        self.width = 1  # records per bucket
        self._rows = np.empty((0, 0))
        self._steps = np.zeros(self.n_recent, dtype=np.int64)
        self._ema: list[float] = [math.nan, math.nan]
        # the buckets: min, max, sum and count of every series, first and last step
        self._lo = self._hi = self._sum = np.empty((0, 0))
        self._cnt = np.empty((0, 0), dtype=np.int64)
        self._first = self._last = np.empty(0, dtype=np.int64)

    # ------------------------------------------------------------ writing

    def append(self, record: StepRecord) -> None:
        row = list(_GLOBAL_GET(record))
        ema = self._ema
        for i, value in enumerate((record.loss, record.accuracy)):
            if value is not None and math.isfinite(value):
                ema[i] = value if ema[i] != ema[i] else ema[i] + (value - ema[i]) / EMA_STEPS
        row += ema
        for layer in record.layers:
            row += _LAYER_GET(layer)
            row += [v for _, v in layer.state]
            row += [v for _, v in layer.learnable]
        with self._lock:
            if len(row) != len(self.keys):
                if not record.layers and self.keys:  # a step whose layers were not measured
                    row += [math.nan] * (len(self.keys) - len(row))
                else:
                    self._relayout(record, len(row))
            slot = self.count % self.n_recent
            self._rows[slot] = row
            self._steps[slot] = record.step
            self.count += 1
            if self.count - self.folded >= self.n_recent // 2:
                self._fold()

    def extend(self, records) -> None:
        for record in records:
            self.append(record)

    def _relayout(self, record: StepRecord, n: int) -> None:
        """A record of another shape: the first measured one after unmeasured steps adds its
        layer columns (NaN before it); any other (a rebuilt network) starts over."""
        keys = layout_of(record)
        assert len(keys) == n
        old = len(self.keys)
        if old and keys[:old] == self.keys:
            grow = n - old
            self.keys, self.index = keys, {k: j for j, k in enumerate(keys)}
            self._rows = np.concatenate(
                [self._rows, np.full((self._rows.shape[0], grow), np.nan)], axis=1)
            for name, fill in (("_lo", np.inf), ("_hi", -np.inf), ("_sum", 0.0), ("_cnt", 0)):
                arr = getattr(self, name)
                setattr(self, name, np.concatenate(
                    [arr, np.full((grow, arr.shape[1]), fill, dtype=arr.dtype)]))
            return
        ema = self._ema
        self._reset()
        self._ema = ema
        self.keys = keys
        self.index = {k: j for j, k in enumerate(keys)}
        f = len(keys)
        self._rows = np.full((self.n_recent, f), np.nan)
        # one row per series, one column per bucket: a series' buckets lie side by side
        self._lo = np.full((f, self.n_buckets), np.inf)
        self._hi = np.full((f, self.n_buckets), -np.inf)
        self._sum = np.zeros((f, self.n_buckets))
        self._cnt = np.zeros((f, self.n_buckets), dtype=np.int64)
        self._first = np.zeros(self.n_buckets, dtype=np.int64)
        self._last = np.zeros(self.n_buckets, dtype=np.int64)

    def _fold(self) -> None:
        """Fold the rows appended since the last fold into the buckets (lock held)."""
        start, stop = self.folded, self.count
        if stop <= start:
            return
        while (stop - 1) // self.width >= self.n_buckets:  # every bucket in use: merge
            self._merge()
        w = self.width
        a, b = start // w, (stop - 1) // w  # the first and the last bucket it touches
        if (b - a + 1) * w <= 2 * (stop - start) + 64:
            self._fold_blocks(start, stop, a, b)
            return
        idx = np.arange(start, stop)
        rows = self._rows[idx % self.n_recent]
        steps = self._steps[idx % self.n_recent]
        bucket = idx // w
        cuts = np.flatnonzero(np.diff(bucket)) + 1
        starts = np.concatenate([[0], cuts])
        ids = bucket[starts]
        finite = np.isfinite(rows)
        lo = np.minimum.reduceat(np.where(np.isnan(rows), np.inf, rows), starts)
        hi = np.maximum.reduceat(np.where(np.isnan(rows), -np.inf, rows), starts)
        total = np.add.reduceat(np.where(finite, rows, 0.0), starts)
        cnt = np.add.reduceat(finite.astype(np.int64), starts)
        new = ids * w == idx[starts]  # buckets that start in this block
        self._first[ids[new]] = steps[starts[new]]
        self._lo[:, ids] = np.minimum(self._lo[:, ids], lo.T)
        self._hi[:, ids] = np.maximum(self._hi[:, ids], hi.T)
        self._sum[:, ids] += total.T
        self._cnt[:, ids] += cnt.T
        self._last[ids] = steps[np.concatenate([cuts - 1, [len(idx) - 1]])]
        self.folded = stop

    def _fold_blocks(self, start: int, stop: int, a: int, b: int) -> None:
        """`_fold` for a block of rows that fills buckets a … b, the first and last perhaps
        in part: the rows go into a (buckets, width, series) array, NaN where the block does
        not reach, so that each statistic is one reduction."""
        w, n, f = self.width, stop - start, self._rows.shape[1]
        off = start - a * w
        flat = np.full(((b - a + 1) * w, f), np.nan)
        np.take(self._rows, np.arange(start, stop) % self.n_recent, axis=0,
                out=flat[off:off + n])
        block = flat.reshape(b - a + 1, w, f)
        finite = np.isfinite(block)
        lo = np.fmin.reduce(block, axis=1)  # NaN only where a bucket's part has no value
        hi = np.fmax.reduce(block, axis=1)
        empty = np.isnan(lo)
        lo[empty], hi[empty] = np.inf, -np.inf
        total = np.where(finite, block, 0.0).sum(axis=1)
        cnt = finite.sum(axis=1)
        ids = slice(a, b + 1)
        recent = self.n_recent
        # the step of each bucket's first row, for the buckets that begin in this block
        begins = np.arange(a if off == 0 else a + 1, b + 1) * w
        self._first[begins // w] = self._steps[begins % recent]
        ends = np.minimum(np.arange(a + 1, b + 2) * w, stop) - 1
        self._last[ids] = self._steps[ends % recent]
        np.minimum(self._lo[:, ids], lo.T, out=self._lo[:, ids])
        np.maximum(self._hi[:, ids], hi.T, out=self._hi[:, ids])
        self._sum[:, ids] += total.T
        self._cnt[:, ids] += cnt.T
        self.folded = stop

    def _merge(self) -> None:
        """Merge bucket pairs (0, 1), (2, 3) …: half the buckets, each twice as wide."""
        half = self.n_buckets // 2
        for arr, op in ((self._lo, np.minimum), (self._hi, np.maximum)):
            arr[:, :half] = op(arr[:, 0::2], arr[:, 1::2])
            arr[:, half:] = np.inf if op is np.minimum else -np.inf
        for total in (self._sum, self._cnt):
            total[:, :half] = total[:, 0::2] + total[:, 1::2]
            total[:, half:] = 0
        self._first[:half] = self._first[0::2]
        self._last[:half] = np.where(self._last[1::2] > 0, self._last[1::2], self._last[0::2])
        self._first[half:] = 0
        self._last[half:] = 0
        self.width *= 2

    # ------------------------------------------------------------ reading

    @property
    def span(self) -> tuple[int, int]:
        """The first and the newest step appended ((0, 0) before any)."""
        with self._lock:
            if not self.count:
                return 0, 0
            first = int(self._first[0]) if self.folded else int(
                self._steps[max(0, self.count - self.n_recent) % self.n_recent])
            return first, int(self._steps[(self.count - 1) % self.n_recent])

    def resample(self, n: int, last: int | None = None, keys=None) -> Columns:
        """The whole run (or its newest `last` steps, at most `recent`) in at most `n`
        columns of about equal numbers of steps, oldest first; only the series in `keys`
        when given (the others read as absent)."""
        with self._lock:
            pick: list[int] | slice
            if keys is not None:
                wanted = (self.keys, tuple(keys))  # the same on every frame of a panel
                if self._picked[0] != wanted:
                    self._picked = (wanted, [self.index[k] for k in keys if k in self.index],
                                    {k: j for j, k in enumerate(k for k in keys
                                                                if k in self.index)})
                _, pick, index = self._picked
                index = dict(index)
            else:
                pick, index = slice(None), dict(self.index)
            f = len(index)
            if not self.count or n < 1:
                empty = np.empty((0, f))
                return Columns(np.empty(0, np.int64), np.empty(0, np.int64), empty, empty,
                               empty, index)
            if last is None:  # the buckets: exact while each covers one step
                self._fold()
                units = (self.count - 1) // self.width + 1
                starts, ends = _columns_of(units, n)
                # the series asked for, reduced along their buckets (under the lock: the
                # appending thread waits for a few copies and reductions)
                lo = np.minimum.reduceat(self._lo[pick, :units], starts, axis=1).T
                hi = np.maximum.reduceat(self._hi[pick, :units], starts, axis=1).T
                total = np.add.reduceat(self._sum[pick, :units], starts, axis=1).T
                cnt = np.add.reduceat(self._cnt[pick, :units], starts, axis=1).T
                first, final = self._first[starts], self._last[ends]
                rows = None
            else:  # the recent rows are exact: every step its own unit
                k = min(self.count, self.n_recent, last)
                idx = np.arange(self.count - k, self.count) % self.n_recent
                rows = self._rows[idx][:, pick]
                steps = self._steps[idx]
        if rows is not None:
            starts, ends = _columns_of(len(rows), n)
            finite = np.isfinite(rows)
            lo = np.minimum.reduceat(np.where(np.isnan(rows), np.inf, rows), starts)
            hi = np.maximum.reduceat(np.where(np.isnan(rows), -np.inf, rows), starts)
            total = np.add.reduceat(np.where(finite, rows, 0.0), starts)
            cnt = np.add.reduceat(finite.astype(np.int64), starts)
            first, final = steps[starts], steps[ends]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(cnt > 0, total / np.maximum(cnt, 1), np.nan)
        # a column of nothing but infinities keeps them at its ends, NaN only where empty
        lo = np.where(np.isposinf(lo), np.nan, lo)
        hi = np.where(np.isneginf(hi), np.nan, hi)
        mean = np.where(np.isnan(mean) & np.isposinf(hi), np.inf, mean)
        return Columns(first, final, lo, mean, hi, index)
