"""Writers for headless runs: JSON Lines, CSV and a plain table."""

from __future__ import annotations

import csv
import json
from typing import IO, Any

from nnsim.engine.records import LAYER_SCALARS, StepRecord

GLOBAL_FIELDS = ("step", "epoch", "loss", "accuracy", "reg_loss", "grad_norm", "lr",
                 "val_loss", "val_accuracy", "nonfinite")


class JsonlWriter:
    """One JSON object per record and line; per-layer fields in a `layers` list."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def write(self, record: StepRecord) -> None:
        self.out.write(json.dumps(record.to_dict(), separators=(",", ":")) + "\n")

    def close(self) -> None:
        self.out.flush()


def flat_row(record: StepRecord) -> dict[str, Any]:
    """A record as one flat row: global fields, then `layer{i}.{field}` for each layer."""
    row = {k: getattr(record, k) for k in GLOBAL_FIELDS}
    for layer in record.layers:
        prefix = f"layer{layer.index}."
        for name in LAYER_SCALARS:
            row[prefix + name] = getattr(layer, name)
        for name, value in layer.state:
            row[f"{prefix}{name}_norm"] = value
        for name, value in layer.learnable:
            row[f"{prefix}{name}_mean"] = value
    return row


class CsvWriter:
    """A header from the first record, then one row per record (histograms left out)."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.writer: csv.DictWriter | None = None

    def write(self, record: StepRecord) -> None:
        row = flat_row(record)
        if self.writer is None:
            self.writer = csv.DictWriter(self.out, fieldnames=list(row), extrasaction="ignore",
                                         lineterminator="\n")
            self.writer.writeheader()
        self.writer.writerow({k: "" if v is None else v for k, v in row.items()})

    def close(self) -> None:
        self.out.flush()


class TableWriter:
    """Aligned columns for reading at a terminal."""

    COLUMNS = (("step", 8, "d"), ("epoch", 7, ".2f"), ("loss", 9, ".4f"), ("acc", 6, ".3f"),
               ("val_loss", 9, ".4f"), ("val_acc", 7, ".3f"), ("grad_norm", 10, ".3g"))

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.header = False

    def write(self, record: StepRecord) -> None:
        if not self.header:
            self.out.write(" ".join(f"{n:>{w}}" for n, w, _ in self.COLUMNS) + "\n")
            self.header = True
        values = (record.step, record.epoch, record.loss, record.accuracy, record.val_loss,
                  record.val_accuracy, record.grad_norm)
        cells = []
        for (_, width, fmt), value in zip(self.COLUMNS, values):
            cells.append(f"{'-':>{width}}" if value is None else f"{value:>{width}{fmt}}")
        line = " ".join(cells)
        if record.nonfinite:
            line += f"  non-finite {record.nonfinite}"
        self.out.write(line + "\n")

    def close(self) -> None:
        self.out.flush()


WRITERS = {"jsonl": JsonlWriter, "csv": CsvWriter, "table": TableWriter}
