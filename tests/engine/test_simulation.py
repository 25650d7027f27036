"""The Simulation: records, determinism, live changes, divergence, early stopping."""

import json
import math

import numpy as np
import pytest

from nnsim.config import Config
from nnsim.engine import Simulation
from nnsim.engine.history import History
from nnsim.engine.telemetry import HIST_BINS
from tests.helpers import small_config


def test_same_seed_gives_identical_records():
    a = [r.to_dict() for r in Simulation(small_config(("model.dropout", 0.2),
                                                      ("data.augment", 0.1))).run(30)]
    b = [r.to_dict() for r in Simulation(small_config(("model.dropout", 0.2),
                                                      ("data.augment", 0.1))).run(30)]
    assert json.dumps(a) == json.dumps(b)
    c = [r.to_dict() for r in Simulation(small_config(("seed", 4), ("model.dropout", 0.2),
                                                      ("data.augment", 0.1))).run(30)]
    assert json.dumps(a) != json.dumps(c)


def test_reset_replays_the_same_run():
    sim = Simulation(small_config())
    first = [r.loss for r in sim.run(15)]
    sim.reset()
    assert [r.loss for r in sim.run(15)] == first
    sim.reset(seed=99)
    assert [r.loss for r in sim.run(15)] != first


def test_default_experiment_learns():
    sim = Simulation()
    records = sim.run(600)
    assert records[0].loss > 1.0
    assert records[-1].accuracy > 0.9
    val = [r.val_accuracy for r in records if r.val_accuracy is not None]
    assert val[-1] > 0.9


def test_layer_statistics_match_a_direct_computation():
    sim = Simulation(small_config(("model.activation", "relu"), ("model.hidden", [16, 8])))
    sim.run(5)
    net = sim.net
    before = net.params.copy()
    record = sim.step()
    h1 = record.layers[0]
    a = net.hidden[0].a
    assert h1.act_mean == pytest.approx(a.mean(), rel=1e-9)
    assert h1.act_std == pytest.approx(a.std(), rel=1e-9)
    assert sum(h1.hist) == a.size and len(h1.hist) == HIST_BINS
    assert h1.hist[0] == np.count_nonzero(a < 3.0 / HIST_BINS)  # relu range is [0, 3]
    for layer, hidden in zip(record.layers, net.hidden):  # widths 16 and 8, side by side
        assert layer.saturated == np.count_nonzero(hidden.z <= 0) / hidden.z.size
    # dead means inactive on every example of a window of the data: never more than the
    # units inactive on this whole batch
    assert h1.dead <= np.mean((net.hidden[0].z <= 0).all(axis=0))
    w_old = before[:16 * 2].reshape(2, 16)
    w_new = net.hidden[0].W
    assert h1.weight_norm == pytest.approx(np.linalg.norm(w_old))
    assert h1.update_ratio == pytest.approx(np.linalg.norm(w_new - w_old) / np.linalg.norm(w_old))
    assert h1.grad_norm == pytest.approx(np.linalg.norm(net.hidden[0].gW))
    v = sim.opt_state["velocity"][:32].reshape(2, 16)
    assert h1.state_norm("velocity") == pytest.approx(np.linalg.norm(v))
    # momentum: ΔW = -lr·v, so the update is exactly anti-parallel to v
    g = net.hidden[0].gW
    cos = np.vdot(-(w_new - w_old), g) / (np.linalg.norm(w_new - w_old) * np.linalg.norm(g))
    assert h1.update_cos == pytest.approx(cos)
    assert record.layers[-1].kind == "output" and len(record.layers) == 3


def test_saturated_shares_are_of_the_batch_counted_whatever_its_size():
    """The shares divide by the entries of the batch the masks came from: a batch of
    another size than the network's (the fallback way) is not divided by the usual one."""
    sim = Simulation(small_config(("model.activation", "relu"), ("model.hidden", [16, 8])))
    sim.run(3)
    x = sim.data.train_x[:5]  # 5 rows, where the network's batch is 16
    sim.net.forward(x)
    sim.telemetry.activity()
    assert sim.telemetry.saturated == [np.count_nonzero(h.z <= 0) / h.z.size
                                       for h in sim.net.hidden]


def test_learnable_parameters_are_reported():
    sim = Simulation(small_config(("model.activation", "prelu"), ("model.normalizer", "batchnorm")))
    sim.run(2)
    slope = sim.net.hidden[0].activation.params["slope"].mean()
    gamma = sim.net.hidden[0].norm.params["gamma"].mean()
    layer = sim.step().layers[0]  # statistics are taken before the update
    learn = dict(layer.learnable)
    assert set(learn) == {"gamma", "beta", "slope"}
    assert learn["slope"] == pytest.approx(slope)
    assert learn["gamma"] == pytest.approx(gamma)


def test_records_are_immutable():
    record = Simulation(small_config()).step()
    with pytest.raises(AttributeError):
        record.loss = 0.0
    with pytest.raises(AttributeError):
        record.layers[0].grad_norm = 0.0


def test_float32_stays_float32():
    sim = Simulation(small_config(("model.dtype", "float32"), ("model.normalizer", "batchnorm"),
                                  ("optimizer.name", "adam")))
    sim.run(3)
    assert sim.net.params.dtype == np.float32
    assert all(v.dtype == np.float32 for v in sim.opt_state.values())
    assert sim.net.hidden[0].a.dtype == np.float32


def test_learning_rate_changes_live_without_rebuilding():
    sim = Simulation(small_config())
    sim.run(5)
    weights = sim.net.params.copy()
    sim.set_hyper("lr", 0.2)
    assert sim.step_count == 5 and np.array_equal(sim.net.params, weights)
    record = sim.step()
    assert record.lr == 0.2 and sim.config.optimizer.hypers["lr"] == 0.2


def test_structural_change_rebuilds_from_the_seed():
    sim = Simulation(small_config())
    sim.run(5)
    rebuilt = sim.reconfigure(sim.config.with_overrides([("model.activation", "relu")]))
    assert rebuilt and sim.step_count == 0
    fresh = Simulation(small_config(("model.activation", "relu")))
    assert sim.step().to_dict() == fresh.step().to_dict()


def test_invalid_live_hyperparameter_is_refused_and_kept():
    from nnsim.errors import ConfigError

    sim = Simulation(small_config())
    with pytest.raises(ConfigError, match="optimizer.lr"):
        sim.set_hyper("lr", -1.0)
    with pytest.raises(ConfigError, match="did you mean 'beta'"):
        sim.set_hyper("betta", 0.5)
    assert sim.optimizer.lr == 0.05


def test_divergence_is_caught_at_the_step_it_appears():
    sim = Simulation(small_config(("model.activation", "relu"), ("optimizer.name", "sgd"),
                                  ("optimizer.lr", 10.0), ("model.initializer", "he_normal"),
                                  ("model.hidden", [64, 64, 64])))
    records = sim.run(200)
    last = records[-1]
    assert last.nonfinite is not None and sim.divergence.step == last.step
    assert all(r.nonfinite is None for r in records[:-1])
    assert str(sim.divergence).startswith(f"diverged at step {last.step}: non-finite")
    json.dumps(last.to_dict())  # NaN and inf are written as strings, so the JSON is valid


def test_early_stopping_stops_when_validation_loss_stops_improving():
    sim = Simulation(small_config(("data.samples", 80), ("data.noise", 0.3),
                                  ("model.hidden", [64, 64]), ("optimizer.name", "adam"),
                                  ("optimizer.lr", 0.01), ("train.early_stopping", 3),
                                  ("train.eval_every", 10)))
    records = sim.run(5000)
    assert sim.stopped is not None and "early stopping" in sim.stopped
    evals = [r.val_loss for r in records if r.val_loss is not None]
    assert len(records) < 5000
    assert min(evals[-3:]) >= min(evals)  # the last three evaluations were no better


def test_telemetry_off_gives_the_same_training():
    on = Simulation(small_config())
    off = Simulation(small_config(), telemetry=False)
    a, b = on.run(20), off.run(20)
    assert [r.loss for r in a] == [r.loss for r in b]
    assert b[-1].layers == () and len(a[-1].layers) == 3


def test_batchnorm_inference_uses_running_statistics():
    sim = Simulation(small_config(("model.normalizer", "batchnorm")))
    sim.run(50)
    layer = sim.net.hidden[0]
    x = sim.data.val_x[:5]
    z = x @ layer.W + layer.b
    bn = layer.norm
    expected = ((z - bn.buffers["running_mean"]) / np.sqrt(bn.buffers["running_var"] + bn.eps)
                * bn.params["gamma"] + bn.params["beta"])
    assert np.allclose(bn.forward(z, training=False), expected)
    # ...and differs from batch statistics on the same five rows
    assert not np.allclose(bn.forward(z, training=True), expected)


def test_batchnorm_running_statistics_converge_to_the_data():
    from nnsim.pluginmanager import default_registry

    bn = default_registry().get("normalizer", "batchnorm")(momentum=0.1)
    bn.params = bn.init_params(3, np.dtype("float64"))
    bn.buffers = bn.init_buffers(3, np.dtype("float64"))
    rng = np.random.default_rng(0)
    for _ in range(300):
        bn.forward(rng.normal([1.0, -2.0, 0.0], [0.5, 2.0, 1.0], (256, 3)), True)
    np.testing.assert_allclose(bn.buffers["running_mean"], [1.0, -2.0, 0.0], atol=0.1)
    np.testing.assert_allclose(bn.buffers["running_var"], [0.25, 4.0, 1.0], rtol=0.1)


def test_history_is_bounded():
    history = History(capacity=10)
    sim = Simulation(small_config())
    history.extend(sim.run(25))
    assert len(history) == 10 and history.last.step == 25
    assert history.series("loss").shape == (10,)
    grad = history.series("grad_norm", layer=1)
    assert np.isfinite(grad).all()
    assert np.isfinite(history.series("velocity", layer=1)).all()
    assert len(history.evals) == 2  # eval_every=10 → steps 10 and 20


def test_l2_penalty_is_reported_and_shrinks_weights():
    plain = Simulation(small_config())
    decayed = Simulation(small_config(("train.l2", 0.5)))
    plain.run(100)
    rec = decayed.run(100)[-1]
    assert rec.reg_loss == pytest.approx(0.25 * np.sum(decayed.net.params[:decayed.net.n_weights]
                                                       ** 2), rel=0.2)
    assert (np.linalg.norm(decayed.net.params[:decayed.net.n_weights])
            < np.linalg.norm(plain.net.params[:plain.net.n_weights]))


def test_gradient_clipping_bounds_the_update():
    sim = Simulation(small_config(("train.clip_norm", 1e-3), ("optimizer.name", "sgd"),
                                  ("optimizer.lr", 1.0)))
    before = sim.net.params.copy()
    record = sim.step()
    assert record.grad_norm > 1e-3
    assert np.linalg.norm(sim.net.params - before) == pytest.approx(1e-3, rel=1e-6)


def test_config_default_is_valid_and_round_trips_through_toml():
    import tomllib

    config = Config.default()
    again = Config.from_dict(tomllib.loads(config.to_toml()))
    assert again == config
    assert math.isfinite(Simulation(config).step().loss)


def test_activation_std_is_exact_when_tiny_beside_the_mean():
    """Sigmoid layers under N(0, 1e-4) sit at 0.5 ± 1e-4: E[a²] − m² would lose the spread."""
    sim = Simulation(small_config(("model.activation", "sigmoid"), ("model.dtype", "float32"),
                                  ("model.initializer", {"name": "normal", "std": 1e-4}),
                                  ("model.hidden", [32] * 6)))
    record = sim.step()
    deepest = sim.net.hidden[-1].a.astype(np.float64)
    assert record.layers[5].act_mean == pytest.approx(0.5, abs=1e-3)
    assert deepest.std() < 1e-4
    assert record.layers[5].act_std == pytest.approx(deepest.std(), rel=1e-3)


def test_a_config_that_cannot_be_built_leaves_the_run_as_it_was():
    from nnsim.errors import ConfigError

    sim = Simulation(small_config())
    sim.run(5)
    params = sim.net.params.copy()
    too_big = sim.config.with_overrides([("train.batch_size", 10_000)])
    with pytest.raises(ConfigError, match="train.batch_size: 10000 is larger than the training"):
        sim.reconfigure(too_big)
    assert sim.config.train.batch_size == 16 and sim.step_count == 5
    assert np.array_equal(sim.net.params, params)
    assert sim.step().step == 6


def test_a_gradient_too_large_to_square_is_named_as_such():
    sim = Simulation(small_config(("model.dtype", "float32")))
    sim.step()
    sim.net.grads[:] = 1e19  # finite, but four squares already pass float32's 3.4e38
    second = next(seg for seg in sim.net.segments if seg.layer == 1 and seg.name == "W")
    sim.net.grads[second.start + 3] = 3e19  # the largest entry: where it grew
    with np.errstate(over="ignore"):
        where = sim._check_finite(1.0, float(np.vdot(sim.net.grads, sim.net.grads)))
    assert where == "gradient norm (beyond the float32 range; largest in layer 2 W)"



@pytest.mark.parametrize("measure", [True, False])
def test_parameters_an_update_made_infinite_are_named_measured_or_not(measure):
    """A measured step skips the parameters' own finite check only when the weights before
    the update and the change both have finite sums of squares."""
    from plugins.optimizers import Momentum

    class Overflowing(Momentum):  # measured by difference: it overrides update
        def update(self, params, grads, state, t):
            super().update(params, grads, state, t)
            params[3] = np.inf

    sim = Simulation(small_config(("model.dtype", "float32")))
    sim.step()
    sim.optimizer.__class__ = Overflowing
    sim.telemetry.step_buffer = False
    sim.telemetry.old = np.empty_like(sim.net.params)
    record = sim.step(measure)
    assert record.nonfinite == "layer 1 parameter W"
