"""The multi-resolution timeline: whole-run buckets agree with the raw records."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nnsim.engine.history import History
from nnsim.engine.records import StepRecord
from nnsim.engine.simulation import Simulation
from nnsim.engine.timeline import Timeline
from tests.helpers import small_config


def record(step: int, loss: float, val: float | None = None) -> StepRecord:
    return StepRecord(step=step, epoch=step / 10, loss=loss, accuracy=None, reg_loss=0.0,
                      grad_norm=1.0, lr=0.1, val_loss=val)


def brute(losses, first: int, last: int):
    chunk = [v for v in losses[first - 1:last] if not math.isnan(v)]
    if not chunk:
        return math.nan, math.nan, math.nan
    return min(chunk), sum(chunk) / len(chunk), max(chunk)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 700), buckets=st.sampled_from([2, 4, 8, 64]),
       columns=st.integers(1, 50), seed=st.integers(0, 10_000))
def test_whole_run_columns_are_min_mean_max_of_the_steps_they_cover(n, buckets, columns, seed):
    rng = np.random.default_rng(seed)
    losses = rng.lognormal(size=n).tolist()
    for i in rng.integers(0, n, size=n // 7):
        losses[i] = math.nan  # gaps must not count as values
    timeline = Timeline(buckets=buckets, recent=16)
    for step, loss in enumerate(losses, start=1):
        timeline.append(record(step, loss))
    cols = timeline.resample(columns)
    assert len(cols) == min(columns, len(cols)) and len(cols) <= columns
    # the columns tile the run: step 1 to step n, no gap, no overlap
    assert cols.first[0] == 1 and cols.last[-1] == n
    assert (cols.first[1:] == cols.last[:-1] + 1).all()
    for j in range(len(cols)):
        lo, mean, hi = brute(losses, int(cols.first[j]), int(cols.last[j]))
        got = (cols.series("loss", "lo")[j], cols.series("loss")[j],
               cols.series("loss", "hi")[j])
        np.testing.assert_allclose(got, (lo, mean, hi), rtol=1e-12, equal_nan=True)


def test_step_one_is_still_there_at_step_100000_in_bounded_memory():
    timeline = Timeline(buckets=64, recent=32)
    for step in range(1, 100_001):
        timeline.append(record(step, 10.0 if step == 1 else 1.0))
    cols = timeline.resample(10)
    assert cols.first[0] == 1 and cols.last[-1] == 100_000
    assert cols.series("loss", "hi")[0] == 10.0  # the first step's value survives merging
    assert timeline._sum.shape[1] == 64 and timeline._rows.shape[0] == 32
    assert timeline.width >= 100_000 / 64


def test_recent_window_is_exact():
    timeline = Timeline(buckets=8, recent=64)
    for step in range(1, 201):
        timeline.append(record(step, float(step)))
    cols = timeline.resample(100, last=50)
    assert cols.first.tolist() == list(range(151, 201))
    assert cols.series("loss").tolist() == [float(s) for s in range(151, 201)]


def test_validation_counts_only_at_evaluations_and_smoothing_follows_the_loss():
    timeline = Timeline()
    for step in range(1, 101):
        timeline.append(record(step, 2.0 if step <= 50 else 1.0,
                               val=float(step) if step % 10 == 0 else None))
    cols = timeline.resample(2)
    assert cols.series("val_loss").tolist() == [30.0, 80.0]  # means of 10..50 and 60..100
    smooth = timeline.resample(100).series("loss_smooth")
    assert smooth[0] == 2.0 and 1.0 < smooth[-1] < 1.2 and (np.diff(smooth[50:]) < 0).all()


def test_history_of_a_real_run_feeds_its_timeline_layer_by_layer():
    sim = Simulation(small_config())
    history = History()
    records = sim.run(30)
    history.extend(records)
    cols = history.timeline.resample(30)
    grads = cols.series(("grad_norm", 1))
    assert grads.tolist() == [r.layers[0].grad_norm for r in records]
    assert history.first is records[0]
    history.clear()
    assert history.first is None and len(history.timeline.resample(5)) == 0


def test_a_rebuilt_network_starts_a_new_layout():
    deep = Simulation(small_config(("model.hidden", [8, 8, 8])))
    shallow = Simulation(small_config(("model.hidden", [8])))
    timeline = Timeline()
    timeline.extend(deep.run(3))
    timeline.extend(shallow.run(2))
    cols = timeline.resample(10)
    assert len(cols) == 2 and not cols.has(("grad_norm", 3)) and cols.has(("grad_norm", 2))


def test_measured_records_are_the_same_whichever_steps_are_measured():
    """Layer statistics are computed only where asked; every step trains identically, and
    a measured step's record equals the fully measured run's, dead units included."""
    config = small_config(("model.activation", "relu"), ("model.hidden", [8, 8, 8]))
    every = Simulation(config).run(60)
    sparse = Simulation(config)
    records = [sparse.step(measure=(step % 7 == 0)) for step in range(1, 61)]
    for full, some in zip(every, records):
        assert some.loss == full.loss and some.grad_norm == full.grad_norm
        if some.step % 7 == 0:
            assert some == full
        else:
            assert some.layers == () and full.layers != ()
    assert any(layer.dead > 0 or layer.saturated > 0 for r in every for layer in r.layers)


def test_steps_every_k_measures_the_multiples_and_the_last():
    sim = Simulation(small_config())
    measured = [r.step for r in sim.steps(23, every=5) if r.layers]
    assert measured == [5, 10, 15, 20, 23]


def test_unmeasured_steps_leave_gaps_in_layer_series_only():
    sim = Simulation(small_config())
    timeline = Timeline()
    records = [sim.step(measure=(step % 3 == 1)) for step in range(1, 31)]
    timeline.extend([records[1], *records[2:]])  # the first appended is unmeasured
    cols = timeline.resample(30)
    assert not np.isnan(cols.series("loss")).any()
    grads = cols.series(("grad_norm", 1))
    expected = [r.layers[0].grad_norm if r.layers else np.nan for r in records[1:]]
    np.testing.assert_array_equal(grads, expected)


def test_resampling_some_series_gives_the_same_numbers_as_all():
    sim = Simulation(small_config())
    timeline = Timeline(buckets=8, recent=64)
    timeline.extend(sim.run(100))
    keys = ["loss", ("grad_norm", 2), ("nope", 9)]
    for last in (None, 50):
        every, some = timeline.resample(7, last), timeline.resample(7, last, keys)
        assert not some.has(("nope", 9)) and some.mean.shape[1] == 2
        for key in keys[:2]:
            for which in ("lo", "mean", "hi"):
                np.testing.assert_array_equal(every.series(key, which), some.series(key, which))
