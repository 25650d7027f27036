"""What the per-layer statistics mean, each checked against its definition."""

import json

import numpy as np
import pytest

from nnsim.engine import Simulation
from nnsim.engine.checkpoint import load, save
from nnsim.engine.telemetry import DEAD_WINDOW
from tests.helpers import small_config

# ---------------------------------------------------------------- dead units

FROZEN = (("model.activation", "relu"), ("model.hidden", [4, 4]), ("optimizer.name", "sgd"),
          ("optimizer.lr", 1e-12))


def _crafted(*overrides):
    """Layer 1's four ReLU units, by hand: dead on every example, active on about 5% of
    them, active on exactly one training example, active on every example."""
    sim = Simulation(small_config(*FROZEN, *overrides))
    x0 = np.sort(sim.data.train_x[:, 0])
    layer = sim.net.hidden[0]
    layer.W[...] = 0.0
    layer.W[0, 1:3] = 1.0
    layer.b[...] = [-1.0, -np.quantile(x0, 0.95), -(x0[-1] + x0[-2]) / 2, 1.0]
    return sim


def _batch_dead(sim):
    return np.mean((sim.net.hidden[0].z <= 0).all(axis=0))


def test_dead_counts_units_inactive_on_the_data_not_on_one_minibatch():
    sim = _crafted()
    assert len(sim.data.train_x) < DEAD_WINDOW  # the window covers the whole split at once
    per_batch = []
    for _ in range(80):
        record = sim.step()
        # unit 0 is dead from step 1; units 1 and 2 are alive, though often inactive on a
        # whole minibatch; unit 3 is always active
        assert record.layers[0].dead == 0.25
        per_batch.append(_batch_dead(sim))
    # the per-minibatch count would have overstated: the two rare units look dead there
    assert max(per_batch) == 0.75 and np.mean(per_batch) > 0.5


def test_a_unit_active_on_one_example_of_the_window_is_not_dead():
    sim = _crafted()
    z = sim.data.train_x @ sim.net.hidden[0].W + sim.net.hidden[0].b
    assert np.count_nonzero(z[:, 2] > 0) == 1
    records = sim.run(100)
    assert all(r.layers[0].dead == 0.25 for r in records)


def test_units_dead_at_initialization_read_dead_from_step_one():
    # a large training split: the window is the first ≥ 1,000 examples, not the whole data
    sim = Simulation(small_config(("model.activation", "relu"), ("model.hidden", [64, 64]),
                                  ("model.bias_initializer", {"name": "constant", "value": -1.0}),
                                  ("data.samples", 3000)))
    assert len(sim.data.train_x) > DEAD_WINDOW
    b = sim.config.train.batch_size
    window = -(-DEAD_WINDOW // b) * b

    def inactive_everywhere(h):  # per layer, at the initial weights
        dead = []
        for layer in sim.net.hidden:
            z = h @ layer.W + layer.b
            dead.append(np.mean((z <= 0).all(axis=0)))
            h = np.maximum(z, 0.0)
        return dead

    in_window = inactive_everywhere(sim.data.train_x[:window])
    on_all_data = inactive_everywhere(sim.data.train_x)
    assert on_all_data[0] > 0.05
    first = sim.step()
    assert [lr.dead for lr in first.layers[:2]] == pytest.approx(in_window)
    assert all(w >= d for w, d in zip(in_window, on_all_data))


def test_a_unit_that_stops_firing_reads_dead_only_after_the_window():
    sim = _crafted()
    sim.run(3)
    sim.net.hidden[0].b[3] = -1.0  # unit 3 stops firing on every example
    b = sim.config.train.batch_size
    needed = -(-DEAD_WINDOW // b)  # whole minibatches to cover the window
    reads = [r.layers[0].dead for r in sim.run(needed + 2)]
    assert reads[:needed - 1] == [0.25] * (needed - 1)
    assert reads[needed - 1:] == [0.5] * 3


def test_priming_leaves_the_run_untouched():
    """Filling the window draws from no random stream of the run and leaves batch norm's
    running statistics as they were: the records are those of a run without dead units."""
    config = small_config(("model.normalizer", "batchnorm"), ("model.dropout", 0.2))
    sim = Simulation(config)
    buffers = {k: v.copy() for k, v in sim.net.buffers().items()}
    rngs = {k: r.bit_generator.state for k, r in sim.rngs.items()}
    sim.telemetry.prime(sim.data.train_x)
    assert all(np.array_equal(sim.net.buffers()[k], v) for k, v in buffers.items())
    assert {k: r.bit_generator.state for k, r in sim.rngs.items()} == rngs
    plain = Simulation(config, telemetry=False).run(20)
    assert [r.loss for r in sim.run(20)] == [r.loss for r in plain]


DYING_OVERRIDES = (("model.activation", "relu"), ("model.hidden", [16, 16]),
                   ("optimizer.name", "sgd"), ("optimizer.lr", 3.0), ("train.clip_norm", 0.0),
                   ("data.samples", 2000))
DYING = small_config(*DYING_OVERRIDES)


def test_dead_units_are_deterministic_and_resume_exactly(tmp_path):
    def dumps(records):
        return [json.dumps(r.to_dict()) for r in records]

    straight = Simulation(DYING).run(120)
    assert dumps(straight) == dumps(Simulation(DYING).run(120))
    reads = {r.layers[0].dead for r in straight} | {r.layers[1].dead for r in straight}
    assert len(reads) > 2  # units die (or come back) during the run
    first = Simulation(DYING)
    head = first.run(50)
    resumed, _ = load(save(first, tmp_path, head))
    assert dumps(head) + dumps(resumed.run(70)) == dumps(straight)


# ---------------------------------------------------------------- update direction

def _cosines(sim, steps):
    """Per step and layer: (recorded update_cos, cos(−ΔW, ∂L/∂W) computed here)."""
    out = []
    for _ in range(steps):
        before = [d.W.copy() for d in sim.net.dense]
        record = sim.step()
        for layer, d, w0 in zip(record.layers, sim.net.dense, before):
            delta = d.W - w0
            cos = -np.vdot(delta, d.gW) / (np.linalg.norm(delta) * np.linalg.norm(d.gW))
            out.append((layer.update_cos, cos, record.grad_norm))
    return out


def test_plain_sgd_moves_against_the_gradient_even_when_clipped():
    for dtype, tol in (("float64", 1e-12), ("float32", 1e-5)):
        sim = Simulation(small_config(("optimizer.name", "sgd"), ("train.clip_norm", 0.3),
                                      ("model.dtype", dtype)))
        cosines = _cosines(sim, 5)
        assert all(norm > 0.3 for _, _, norm in cosines)  # clipping is active at every step
        assert [c for c, _, _ in cosines] == pytest.approx([1.0] * len(cosines), abs=tol)


def test_momentum_update_cos_is_the_same_with_and_without_clipping():
    for clip in (0.0, 0.3):
        sim = Simulation(small_config(("optimizer.name", "momentum"), ("train.clip_norm", clip)))
        cosines = _cosines(sim, 8)
        if clip:
            assert all(norm > clip for _, _, norm in cosines)
        assert [c for c, _, _ in cosines] == pytest.approx([d for _, d, _ in cosines], abs=1e-12)
        assert min(c for c, _, _ in cosines) < 0.99  # momentum does turn away from −g


# ---------------------------------------------------------------- learnable parameters

def test_learnable_means_are_taken_before_the_update():
    sim = Simulation(small_config(("model.activation", "prelu"),
                                  ("model.normalizer", "batchnorm"), ("optimizer.lr", 0.5)))
    first = dict(sim.step().layers[0].learnable)
    assert first == {"gamma": 1.0, "beta": 0.0, "slope": 0.25}  # the initial values
    for _ in range(3):
        layer = sim.net.hidden[0]
        before = {"gamma": layer.norm.params["gamma"].mean(),
                  "beta": layer.norm.params["beta"].mean(),
                  "slope": layer.activation.params["slope"].mean()}
        learn = dict(sim.step().layers[0].learnable)
        assert learn == pytest.approx(before, rel=1e-12)
        assert learn["gamma"] != layer.norm.params["gamma"].mean()  # the update moved it


def _every_step(config, n):
    """`Simulation(config).run(n)` by step, and for each step whether every unit was active
    in its batch (from the activation masks, not from the telemetry)."""
    sim, records, fired = Simulation(config), {}, {}
    for _ in range(n):
        record = sim.step()
        records[record.step] = record
        fired[record.step] = all(
            not np.logical_and.reduce(layer.activation.saturated(layer.z, layer.a), 0).any()
            for layer in sim.net.hidden)
    return records, fired


def _expected_counted(measured, fired, window, every, last):
    """The steps that count dead units: the window before each measured step m, except
    after a batch with every unit active when the next measured step comes w − 1 or more
    steps after m (and m is not the call's last)."""
    expected, start = [], 1
    for k, m in enumerate(measured):
        following = measured[k + 1] if k + 1 < len(measured) else None
        may_clear = m < last and following is not None and following - m >= window - 1
        for s in range(max(start, m - window + 1), m):
            expected.append(s)
            if fired[s] and may_clear:
                break
        expected.append(m)
        start = m + 1
    return expected


@pytest.mark.parametrize("every", [3, 100, 150])
@pytest.mark.parametrize("overrides", [DYING_OVERRIDES, (("data.samples", 2000),)],
                         ids=["dying", "healthy"])
def test_measured_records_are_the_same_when_steps_skip_the_dead_counters(every, overrides):
    """Steps more than w = ⌈DEAD_WINDOW / batch⌉ before the next measured one skip the
    dead-unit counters, and so do those after a batch that had every unit active when no
    later measured step can see it; what is measured is what counting every step gives."""
    config = small_config(*overrides)
    full, fired = _every_step(config, 300)
    sim = Simulation(config)
    counted = []
    activity = sim.telemetry.activity
    sim.telemetry.activity = lambda measured: (counted.append(sim.step_count + 1),
                                               activity(measured))[1]
    sampled = [r for r in sim.steps(300, every=every) if r.layers]
    measured = [s for s in range(1, 301) if s % every == 0 or s == 300]
    assert [r.step for r in sampled] == measured
    assert sampled == [full[r.step] for r in sampled]
    window = sim.telemetry.dead_batches
    assert counted == _expected_counted(measured, fired, window, every, 300)
    assert sim._skip_dead is False
    if overrides is DYING_OVERRIDES:
        assert len({lr.dead for r in sampled for lr in r.layers}) > 2  # units die and revive
    else:
        assert every < window or len(counted) <= 2 * len(measured) + window  # few counted


@pytest.mark.parametrize("batch, every, chunks", [
    (200, 3, [9]), (200, 6, [9]), (200, 4, [12]), (200, 100, [3, 3, 3]), (64, 10, [200]),
    (64, 20, [90, 110]), (16, 100, [250, 50])])
def test_measured_records_are_the_same_for_any_spacing_and_any_calls(batch, every, chunks):
    """Measured steps closer together than the window, a last step just after a multiple of
    K, and a run taken in several calls (each call's last step is measured): the records
    are those of counting every step."""
    config = small_config(*DYING_OVERRIDES, ("train.batch_size", batch))
    full, _ = _every_step(config, sum(chunks))
    sim = Simulation(config)
    sampled = [r for n in chunks for r in sim.steps(n, every=every) if r.layers]
    assert sampled and sampled == [full[r.step] for r in sampled]
    assert any(lr.dead for r in sampled for lr in r.layers)  # dead units are measured


@pytest.mark.parametrize("every, head", [(3, 9), (6, 12), (3, 10)])
def test_a_resumed_run_measures_what_counting_every_step_gives(tmp_path, every, head):
    """A checkpoint saved after a call (its last step measured) and continued with the same
    K: the counters it keeps are those every later measured step needs."""
    config = small_config(*DYING_OVERRIDES, ("train.batch_size", 200))
    full, _ = _every_step(config, 30)
    first = Simulation(config)
    before = [r for r in first.steps(head, every=every) if r.layers]
    resumed, _ = load(save(first, tmp_path, []))
    after = [r for r in resumed.steps(30 - head, every=every) if r.layers]
    assert before[-1].step == head and after[-1].step == 30
    assert before + after == [full[r.step] for r in before + after]
