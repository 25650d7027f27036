"""Bounded history of step records, and the per-field series views draw from it."""

from __future__ import annotations

import threading
from collections import deque

import numpy as np

from nnsim.engine.records import StepRecord
from nnsim.engine.timeline import Timeline


class History:
    """The newest `capacity` records, every validation result in a ring of its own, the
    run's first record, and the whole run at every scale in a `Timeline`.

    One thread may append while another reads: readers take `snapshot()` (or `series`),
    which copy under a lock, or `timeline.resample()`.
    """

    def __init__(self, capacity: int = 4096, timeline: bool = True) -> None:
        self.capacity = capacity
        self.records: deque[StepRecord] = deque(maxlen=capacity)
        self.evals: deque[tuple[int, float, float | None]] = deque(maxlen=capacity)
        #: None where nobody draws the run (a headless run keeps records for checkpoints)
        self.timeline = Timeline(recent=max(capacity, 2)) if timeline else None
        self.first: StepRecord | None = None
        #: the newest record with layer statistics (a step may go unmeasured)
        self.measured: StepRecord | None = None
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.records)

    def clear(self) -> None:
        with self._lock:
            self.records.clear()
            self.evals.clear()
            self.first = self.measured = None
        if self.timeline is not None:
            self.timeline.clear()

    def append(self, record: StepRecord) -> None:
        with self._lock:
            if self.first is None or (record.layers and not self.first.layers):
                self.first = record  # the first measured record
            if record.layers or self.measured is None:
                self.measured = record
            self.records.append(record)
            if record.val_loss is not None:
                self.evals.append((record.step, record.val_loss, record.val_accuracy))
        if self.timeline is not None:
            self.timeline.append(record)

    def truncate(self, step: int) -> None:
        """Forget the records after `step` (a rewind). The timeline is rebuilt from the kept
        records, so its whole-run view starts at the oldest record still kept."""
        with self._lock:
            kept = [r for r in self.records if r.step <= step]
            self.records.clear()
            self.records.extend(kept)
            evals = [e for e in self.evals if e[0] <= step]
            self.evals.clear()
            self.evals.extend(evals)
            if self.first is not None and self.first.step > step:
                self.first = None
            self.measured = next((r for r in reversed(kept) if r.layers), None)
        if self.timeline is not None:
            self.timeline.clear()
            self.timeline.extend(kept)

    def snapshot(self, last: int | None = None) -> list[StepRecord]:
        """A copy of the newest `last` records (all by default), oldest first."""
        with self._lock:
            if last is None or last >= len(self.records):
                return list(self.records)
            return [self.records[i] for i in range(len(self.records) - last,
                                                   len(self.records))]

    def eval_snapshot(self) -> list[tuple[int, float, float | None]]:
        with self._lock:
            return list(self.evals)

    def extend(self, records) -> None:
        for record in records:
            self.append(record)

    @property
    def last(self) -> StepRecord | None:
        return self.records[-1] if self.records else None

    def series(self, field: str, layer: int | None = None, last: int | None = None
               ) -> np.ndarray:
        """Values of a record field (or, with `layer` counting from 1, of a layer field, or of
        a layer's state or learnable entry by name) over the newest `last` records; missing
        values are NaN."""
        records = self.snapshot(last)
        if layer is None:
            values = [getattr(r, field) for r in records]
        else:
            values = [_layer_value(r, layer, field) for r in records]
        return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _layer_value(record: StepRecord, layer: int, field: str):
    if layer > len(record.layers) or layer < 1:
        return None
    lr = record.layers[layer - 1]
    value = getattr(lr, field, None)
    if value is not None:
        return value
    for name, v in (*lr.state, *lr.learnable):
        if name == field:
            return v
    return None
