"""Writers for headless runs: JSON Lines, CSV and a plain table; and a reader of JSON Lines.

Numbers are written as the shortest text that reads back as the same float32 value
(`0.1`, not `0.10000000149011612`): the statistics carry float32 precision at most. A JSON
Lines file starts with a header record holding what is constant over a run (each layer's
index, kind, width and histogram range); a record whose layers have another layout writes
a new header first. JSON has no NaN or infinity: those are written as `null`, and the
record's `nonfinite_values` maps each such field to "nan", "inf" or "-inf".
"""

from __future__ import annotations

import csv
import json
import math
from operator import attrgetter, itemgetter
from typing import IO, Any

import numpy as np

from nnsim.engine.records import LAYER_LAYOUT, LAYER_STATS, LayerRecord, StepRecord

GLOBAL_FIELDS = ("step", "epoch", "loss", "accuracy", "reg_loss", "grad_norm", "lr",
                 "val_loss", "val_accuracy", "nonfinite")
#: global fields written as float32 numbers (or null)
_GLOBAL_FLOATS = ("epoch", "loss", "accuracy", "reg_loss", "grad_norm", "lr", "val_loss",
                  "val_accuracy")
#: per-layer fields written on every line, in order: numbers, then the histogram
_LAYER_NUMBERS = tuple(s.name for s in LAYER_STATS if s.type is float)
_LAYER_CONSTANT = (*LAYER_LAYOUT, "hist_range")
_POSITION = {name: i for i, name in enumerate(LayerRecord._fields)}
_GLOBAL_GET = attrgetter(*_GLOBAL_FLOATS)
_NUMBERS_GET = itemgetter(*(_POSITION[name] for name in _LAYER_NUMBERS))
#: the version of the JSON Lines layout, in every header
RECORDS_VERSION = 2


def float32_texts(values: list[float]) -> list[str]:
    """Each value as the shortest text that reads back as the same float32; values beyond
    float32's range keep their float64 text; NaN and infinities as 'nan', 'inf', '-inf'."""
    return _texts(values)[0]


def _texts(values: list[float]) -> tuple[list[str], bool]:
    """`float32_texts`, and whether every value was finite."""
    with np.errstate(over="ignore"):
        array = np.array(values, dtype=np.float32)
    texts = array.astype(str).tolist()
    if np.isfinite(array).all():
        return texts, True
    finite = True
    for i, text in enumerate(texts):
        if text[-1] in "nf":
            if math.isfinite(values[i]):  # beyond float32's range
                texts[i] = repr(float(values[i]))
            else:
                finite = False
    return texts, finite


def layout(record: StepRecord) -> tuple:
    """What is constant per layer over a run: index, kind, width and histogram range."""
    return tuple((layer.index, layer.kind, layer.width, layer.hist_range)
                 for layer in record.layers)


class JsonlWriter:
    """One JSON object per record and line, after a header record; per-layer fields in a
    `layers` list, in the order of their declaration. A line is filled into a template
    made once per shape, from one array conversion of all its numbers."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.layout: tuple | None = None
        self._templates: dict[tuple, str] = {}

    @staticmethod
    def header(record: StepRecord) -> dict[str, Any]:
        return {"nnsim_records": RECORDS_VERSION,
                "layers": [{"index": i, "kind": k, "width": w, "hist_range": list(r)}
                           for i, k, w, r in layout(record)]}

    def write(self, record: StepRecord) -> None:
        self.out.write(self.line(record))

    def line(self, record: StepRecord) -> str:
        """The text written for `record`: its line, after a header when its layout is new."""
        head = ""
        layers = record.layers
        if layers or self.layout is None:
            shape = layout(record)
            if shape != self.layout:
                self.layout = shape
                head = json.dumps(self.header(record), separators=(",", ":")) + "\n"
        key = tuple((tuple(n for n, _ in layer.state), tuple(n for n, _ in layer.learnable))
                    for layer in layers)
        template = self._templates.get(key) or self._template(record, key)
        values: list[Any] = list(_GLOBAL_GET(record))
        for layer in layers:
            values += _NUMBERS_GET(layer)
            values += [v for _, v in layer.state]
            values += [v for _, v in layer.learnable]
        nones = [i for i in range(len(_GLOBAL_FLOATS)) if values[i] is None]
        for i in nones:
            values[i] = 0.0
        texts, finite = _texts(values)
        for i in nones:
            texts[i] = "null"
        extra = ""
        if not finite:  # JSON has no NaN or infinity: null, and named in nonfinite_values
            bad = {}
            for name, text in zip(self._names(record), texts):
                if text in ("nan", "inf", "-inf"):
                    bad[name] = text
            texts = ["null" if t in ("nan", "inf", "-inf") else t for t in texts]
            extra = ',"nonfinite_values":' + json.dumps(bad, separators=(",", ":"))
        hists = [",".join(map(str, layer.hist)) for layer in layers]
        nonfinite = "null" if record.nonfinite is None else json.dumps(record.nonfinite)
        return head + template.format(record.step, nonfinite, extra, *texts, *hists)

    @staticmethod
    def _names(record: StepRecord) -> list[str]:
        """The field names of a line's numbers, as `nonfinite_values` names them."""
        names = list(_GLOBAL_FLOATS)
        for layer in record.layers:
            p = f"layer{layer.index}."
            names += [p + n for n in _LAYER_NUMBERS]
            names += [f"{p}{n}_norm" for n, _ in layer.state]
            names += [f"{p}{n}_mean" for n, _ in layer.learnable]
        return names

    def _template(self, record: StepRecord, key: tuple) -> str:
        """A format string for lines of this shape: {0} step, {1} nonfinite, {2} the
        nonfinite_values entry, then the numbers' texts, then each layer's histogram."""
        n_numbers = len(_GLOBAL_FLOATS) + sum(len(_LAYER_NUMBERS) + len(layer.state)
                                              + len(layer.learnable)
                                              for layer in record.layers)
        slot = iter(range(3, 3 + n_numbers))
        parts = ['{{"step":{0}']
        parts += [f',"{name}":{{{next(slot)}}}' for name in _GLOBAL_FLOATS]
        parts.append(',"nonfinite":{1}{2},"layers":[')
        for j, layer in enumerate(record.layers):
            fields = []
            for stat in LAYER_STATS:
                if stat.type is float:
                    fields.append(f'"{stat.name}":{{{next(slot)}}}')
                elif stat.name == "hist":
                    fields.append(f'"hist":[{{{3 + n_numbers + j}}}]')
            fields += [f'"{n}_norm":{{{next(slot)}}}' for n, _ in layer.state]
            fields += [f'"{n}_mean":{{{next(slot)}}}' for n, _ in layer.learnable]
            parts.append(("," if j else "") + "{{" + ",".join(fields) + "}}")
        parts.append("]}}\n")
        template = self._templates[key] = "".join(parts)
        return template

    def close(self) -> None:
        self.out.flush()


def read_records(lines) -> list[dict[str, Any]]:
    """The records of a JSON Lines file (an iterable of lines) as whole objects: each
    layer's constant fields put back from the header before it; `null` numbers named in
    `nonfinite_values` read back as NaN or ±inf. Lines without a header before them (files
    from earlier versions) are read as they are."""
    records: list[dict[str, Any]] = []
    constant: list[dict[str, Any]] = []
    for line in lines:
        if not line.strip():
            continue
        d = json.loads(line)
        if "nnsim_records" in d:
            constant = d["layers"]
            continue
        restore_nonfinite(d)
        if d.get("layers") and constant:
            d["layers"] = [{**{k: c[k] for k in _LAYER_CONSTANT}, **layer}
                           for c, layer in zip(constant, d["layers"])]
        records.append(d)
    return records


def restore_nonfinite(d: dict[str, Any]) -> dict[str, Any]:
    """Put a record's non-finite numbers back in place of their nulls (from its
    `nonfinite_values`, which it drops); returns `d`, changed in place."""
    for path, text in d.pop("nonfinite_values", {}).items():
        value = float(text)
        if path.startswith("layer"):
            prefix, name = path.split(".", 1)
            d["layers"][int(prefix[5:]) - 1][name] = value
        else:
            d[path] = value
    return d


def flat_row(record: StepRecord) -> dict[str, Any]:
    """A record as one flat row: global fields, then `layer{i}.{field}` for each layer."""
    row = {k: getattr(record, k) for k in GLOBAL_FIELDS}
    for layer in record.layers:
        prefix = f"layer{layer.index}."
        for name in _LAYER_NUMBERS:
            row[prefix + name] = layer[_POSITION[name]]
        for name, value in layer.state:
            row[f"{prefix}{name}_norm"] = value
        for name, value in layer.learnable:
            row[f"{prefix}{name}_mean"] = value
    return row


class CsvWriter:
    """A header from the first record, then one row per record (histograms left out);
    numbers as float32 text, NaN and infinities as nan, inf, -inf (as pandas reads them),
    a missing value as an empty cell."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.writer: csv.DictWriter | None = None

    def write(self, record: StepRecord) -> None:
        row = flat_row(record)
        if self.writer is None:
            self.writer = csv.DictWriter(self.out, fieldnames=list(row), extrasaction="ignore",
                                         lineterminator="\n")
            self.writer.writeheader()
        floats = [k for k, v in row.items() if isinstance(v, float)]
        for k, text in zip(floats, float32_texts([row[k] for k in floats])):
            row[k] = text
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
