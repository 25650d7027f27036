"""Records as written: a header with what is constant, float32 numbers as the shortest text
that reads back, NaN and infinities as null and named; statistics declared once."""

import csv
import io
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from nnsim.engine import Simulation
from nnsim.engine import checkpoint, timeline
from nnsim.engine.records import LAYER_SCALARS, LAYER_STATS, LayerRecord
from nnsim.engine.checkpoint import record_from_dict
from nnsim.engine.writers import CsvWriter, JsonlWriter, float32_texts, read_records
from tests.helpers import small_config

DOCS = Path(__file__).parent.parent.parent / "docs" / "records.md"


def written(records, writer=JsonlWriter) -> str:
    out = io.StringIO()
    w = writer(out)
    for record in records:
        w.write(record)
    return out.getvalue()


def strict(line: str):
    """json.loads that refuses NaN and Infinity, as jq and strict readers do."""
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")
    return json.loads(line, parse_constant=refuse)


def test_the_first_line_is_a_header_and_the_constant_fields_leave_the_records():
    records = Simulation(small_config()).run(5)
    lines = written(records).splitlines()
    header = strict(lines[0])
    assert header["nnsim_records"] == 2
    assert [(d["index"], d["kind"], d["width"]) for d in header["layers"]] == \
        [(lr.index, lr.kind, lr.width) for lr in records[0].layers]
    assert header["layers"][0]["hist_range"] == list(records[0].layers[0].hist_range)
    assert len(lines) == 6
    for line in lines[1:]:
        layer = strict(line)["layers"][0]
        assert not {"index", "kind", "width", "hist_range"} & set(layer)
        assert "act_mean" in layer and "hist" in layer


def test_numbers_are_the_shortest_text_that_reads_back_as_the_same_float32():
    record = Simulation(small_config()).run(3)[-1]
    line = written([record]).splitlines()[1]
    numbers = re.findall(r'"(\w+)":(-?[0-9][0-9.e+-]*)[,}]', line)
    assert len(numbers) > 20
    for name, text in numbers:
        value = float(text)
        if "." not in text and "e" not in text:
            continue  # step, or an integer
        # a shorter text does not read back as the same float32
        digits = len(re.sub(r"e.*|[-.]", "", text).strip("0"))  # significant digits
        if digits > 1:
            shorter = float(f"{value:.{digits - 2}e}")  # one significant digit fewer
            assert np.float32(shorter) != np.float32(value), (name, text)
    assert '"lr":0.05' in line  # not 0.05000000074505806
    assert len(line) < 0.75 * len(json.dumps(record.to_dict(), separators=(",", ":")))


def test_float32_texts_round_trip_and_keep_what_float32_cannot_hold():
    values = [0.1, 1 / 3, 1e-8, 123456.789, -2.5, 0.0, 1e39, math.nan, math.inf, -math.inf]
    texts = float32_texts(values)
    assert texts[:6] == ["0.1", "0.33333334", "1e-08", "123456.79", "-2.5", "0.0"]
    assert texts[6] == "1e+39"  # beyond float32: the float64 text, not inf
    assert texts[7:] == ["nan", "inf", "-inf"]


def test_reading_back_gives_every_field_of_every_record():
    records = Simulation(small_config(("train.eval_every", 2))).run(4)
    back = read_records(written(records).splitlines())
    assert len(back) == 4
    for record, d in zip(records, back):
        full = record.to_dict()
        assert d.keys() == full.keys()
        for a, b in zip(full["layers"], d["layers"]):
            assert a.keys() == b.keys()
            for k, v in a.items():
                if isinstance(v, float):
                    assert np.float32(b[k]) == np.float32(v), k
                else:
                    assert b[k] == v, k
        assert d["val_loss"] is None or np.float32(d["val_loss"]) == np.float32(
            full["val_loss"])


def test_nonfinite_numbers_are_null_and_named():
    record = Simulation(small_config()).step()
    layer = record.layers[1]._replace(act_std=math.inf, update_cos=math.nan)
    bad = record._replace(loss=math.nan, grad_norm=-math.inf,
                          layers=(record.layers[0], layer, *record.layers[2:]),
                          nonfinite="loss")
    line = written([bad]).splitlines()[1]
    d = strict(line)  # valid JSON: no NaN or Infinity tokens
    assert d["loss"] is None and d["grad_norm"] is None and d["nonfinite"] == "loss"
    assert d["layers"][1]["act_std"] is None and d["layers"][1]["update_cos"] is None
    assert d["nonfinite_values"] == {"loss": "nan", "grad_norm": "-inf",
                                     "layer2.act_std": "inf", "layer2.update_cos": "nan"}
    back = read_records([written([bad]).splitlines()[0], line])[0]
    assert math.isnan(back["loss"]) and back["grad_norm"] == -math.inf
    assert back["layers"][1]["act_std"] == math.inf and "nonfinite_values" not in back
    # a finite record has no such field
    assert "nonfinite_values" not in strict(written([record]).splitlines()[1])


def test_to_dict_writes_nonfinite_numbers_as_the_lines_do():
    """`StepRecord.to_dict` (sweep files, `compare --json`) follows the JSON Lines rule:
    null plus `nonfinite_values`, which the readers turn back into NaN and infinities."""
    record = Simulation(small_config()).step()
    layer = record.layers[1]._replace(act_std=math.inf, update_cos=math.nan)
    bad = record._replace(loss=math.nan, grad_norm=-math.inf,
                          layers=(record.layers[0], layer, *record.layers[2:]))
    d = strict(json.dumps(bad.to_dict()))
    assert d["loss"] is None and d["layers"][1]["act_std"] is None
    assert d["nonfinite_values"] == strict(written([bad]).splitlines()[1])["nonfinite_values"]
    back = record_from_dict(d)
    assert math.isnan(back.loss) and back.grad_norm == -math.inf
    assert back.layers[1].act_std == math.inf and math.isnan(back.layers[1].update_cos)
    assert back.layers[0] == record.layers[0]
    assert "nonfinite_values" not in record.to_dict()


def test_missing_values_are_null_and_not_named():
    record = Simulation(small_config(("train.eval_every", 0))).step()
    d = strict(written([record]).splitlines()[1])
    assert d["val_loss"] is None and "nonfinite_values" not in d


def test_a_record_of_another_layout_writes_a_new_header():
    a = Simulation(small_config()).run(2)
    b = Simulation(small_config(("model.hidden", [5]))).run(1)
    unmeasured = a[-1]._replace(layers=())
    lines = written([*a, unmeasured, *b]).splitlines()
    heads = [i for i, line in enumerate(lines) if "nnsim_records" in line]
    assert heads == [0, 4]  # a record without layers keeps the header it follows
    back = read_records(lines)
    assert [len(r["layers"]) for r in back] == [len(a[0].layers)] * 2 + [0, 2]
    assert back[-1]["layers"][0]["width"] == 5


def test_csv_numbers_are_float32_text_and_nonfinite_as_pandas_reads_them():
    record = Simulation(small_config()).run(2)[-1]
    bad = record._replace(loss=math.nan)
    rows = list(csv.DictReader(io.StringIO(written([record, bad], CsvWriter))))
    assert rows[0]["lr"] == "0.05" and rows[1]["loss"] == "nan"
    assert np.float32(float(rows[0]["layer1.act_std"])) == np.float32(
        record.layers[0].act_std)
    assert rows[0]["val_loss"] == ""


# ---------------------------------------------------------------- declared once

def test_every_reader_of_the_statistics_follows_their_declaration():
    names = tuple(s.name for s in LAYER_STATS)
    assert LayerRecord._fields[3:-2] == names
    assert LAYER_SCALARS == tuple(s.name for s in LAYER_STATS if s.type is float)
    assert checkpoint._LAYER_FLOATS == LAYER_SCALARS
    assert timeline.LAYER_SERIES == tuple(s.name for s in LAYER_STATS
                                          if s.aggregate == "range")
    record = Simulation(small_config()).step()
    line = strict(written([record]).splitlines()[1])
    written_fields = [k for k in line["layers"][0] if not k.endswith("_norm")
                      or k in names]
    assert written_fields == [n for n in names if n != "hist_range"]


def test_the_record_reference_documents_every_declared_statistic():
    doc = DOCS.read_text(encoding="utf-8")
    for stat in LAYER_STATS:
        assert f"`{stat.name}`" in doc, stat.name
        assert stat.aggregate in ("range", "none") and stat.meaning


@pytest.mark.parametrize("name", ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"])
def test_an_optimizer_that_reports_its_step_subtracted_exactly_that(name):
    from nnsim.engine.simulation import reports_step

    sim = Simulation(small_config(("optimizer.name", name)))
    assert reports_step(sim.optimizer)
    sim.step()
    before = sim.net.params.copy()
    sim.step()
    assert np.array_equal(sim.net.params, before - sim.optimizer.last_step)
    assert np.any(sim.optimizer.last_step != 0)


def test_an_optimizer_that_overrides_update_is_measured_by_difference():
    from nnsim.engine.simulation import reports_step
    from plugins.optimizers import AdamW, Momentum

    class Halved(Momentum):
        def update(self, params, grads, state, t):
            super().update(params, grads, state, t)
            params -= 0.5 * self.last_step  # more than the step it left

    assert not reports_step(Halved(lr=0.05, beta=0.9))
    assert not reports_step(AdamW(lr=0.01))


def test_the_weight_change_from_the_step_agrees_with_the_difference():
    """The step buffer is the change the optimizer meant; the difference is what float
    rounding of the parameters made of it: they agree to float32 precision."""
    from plugins.optimizers import Momentum

    class ByDifference(Momentum):
        def update(self, params, grads, state, t):
            super().update(params, grads, state, t)

    config = small_config(("model.dtype", "float32"))
    a = Simulation(config)
    b = Simulation(config)
    b.optimizer.__class__ = ByDifference
    b.telemetry.step_buffer = False
    b.telemetry.old = np.empty_like(b.net.params)
    for ra, rb in zip(a.run(20), b.run(20)):
        assert ra.loss == rb.loss
        for la, lb in zip(ra.layers, rb.layers):
            for k in ("update_ratio", "update_cos", "step_size"):
                assert getattr(la, k) == pytest.approx(getattr(lb, k), rel=1e-4, abs=1e-6)


def test_gradient_norm_and_per_layer_norms_come_from_one_pass():
    sim = Simulation(small_config(("model.dtype", "float64")))
    record = sim.step()
    net = sim.net
    parts = net.square_norms(net.grads)
    assert len(parts) == len(net.dense) + 1
    assert record.grad_norm == pytest.approx(float(np.linalg.norm(net.grads)), rel=1e-12)
    for lr, dense, part in zip(record.layers, net.dense, parts):
        assert lr.grad_norm == pytest.approx(float(np.linalg.norm(dense.gW)), rel=1e-12)
        assert part == pytest.approx(float(np.sum(dense.gW ** 2)), rel=1e-12)


@pytest.mark.parametrize("hidden", [[8, 8], [300, 300]])
def test_the_gradient_norm_is_the_same_whether_the_step_is_measured(hidden):
    """Small networks take the norm in one dot product, large ones from the per-layer sums
    of one pass; either way a measured and an unmeasured step agree bit for bit."""
    config = small_config(("model.hidden", hidden), ("model.dtype", "float32"))
    a, b = Simulation(config), Simulation(config)
    assert a.net.small == (hidden == [8, 8])
    measured = a.run(4)
    unmeasured = [b.step(measure=False) for _ in range(4)]
    assert [r.grad_norm for r in measured] == [r.grad_norm for r in unmeasured]
    assert [r.loss for r in measured] == [r.loss for r in unmeasured]
    net = a.net
    parts = net.square_norms(net.grads)
    assert sum(parts) == pytest.approx(float(np.vdot(net.grads.astype(np.float64),
                                                     net.grads.astype(np.float64))), rel=1e-5)
