"""The numerical conventions docs/config.md states, each as nnsim does it: the L1/L2 penalty
inside grad_norm and clipping, AdamW's decay of every parameter against train.l2's weights
only, and the Dense bias in front of batch norm under Adam and SGD."""

import numpy as np
import pytest

from nnsim.config import load
from nnsim.engine import Simulation

SMALL = ["data.samples=400", "model.hidden=[16,16]", "seed=3"]


def cos(a, b) -> float:
    return float(np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b))


def test_the_penalty_gradient_is_in_grad_norm_and_is_clipped_with_the_data_gradient():
    sets = [*SMALL, "optimizer.name=sgd", "optimizer.lr=0.1", "train.l2=0.5"]
    ref = Simulation(load(sets=sets))
    ref.compute_gradients(*ref.data.next_batch())
    n = ref.net.n_weights
    total = ref.net.grads.copy()
    data = total.copy()
    data[:n] -= 0.5 * ref.net.params[:n]
    clipped = Simulation(load(sets=[*sets, "train.clip_norm=0.1"]))
    before = clipped.net.params.copy()
    record = clipped.step()
    step = (before - clipped.net.params) / 0.1
    assert record.grad_norm == pytest.approx(np.linalg.norm(total), rel=1e-5)
    assert record.grad_norm > 5 * np.linalg.norm(data)  # the penalty dominates here
    assert np.linalg.norm(step) == pytest.approx(0.1, rel=1e-4)
    assert cos(step, total) == pytest.approx(1.0, abs=1e-6)
    assert cos(step, data) < 0.5


def test_adamw_decays_every_parameter_and_l2_only_the_weights():
    sets = ["seed=3", "model.hidden=[16,16]", "model.normalizer=batchnorm",
            "model.activation=prelu"]
    sim = Simulation(load(sets=[*sets, "optimizer.name=adamw", "optimizer.weight_decay=0.5"]))
    for _ in range(5):
        sim.step()  # β away from 0
    for state in sim.opt_state.values():
        state[...] = 0  # with a zero gradient Adam's own step is then 0: only the decay
    before = sim.net.params.copy()
    sim.optimizer.update(sim.net.params, np.zeros_like(before), sim.opt_state, 6)
    names = set()
    for seg in sim.net.segments:
        part = slice(seg.start, seg.stop)
        np.testing.assert_allclose(sim.net.params[part], before[part] * (1 - 0.5 * sim.lr),
                                   rtol=1e-5)
        names.add(seg.name)
    assert {"W", "b", "gamma", "beta", "slope"} <= names
    plain = Simulation(load(sets=[*sets, "optimizer.name=sgd"]))
    penalized = Simulation(load(sets=[*sets, "optimizer.name=sgd", "train.l2=0.5"]))
    plain.step()
    penalized.step()
    n = plain.net.n_weights
    assert not np.array_equal(plain.net.params[:n], penalized.net.params[:n])
    assert np.array_equal(plain.net.params[n:], penalized.net.params[n:])


def bias_drift(optimizer: str, steps: int = 150) -> tuple[float, float]:
    """The largest |gradient| of a hidden Dense bias in front of batch norm, and how far
    those biases moved in `steps` steps at lr 0.01."""
    sim = Simulation(load(sets=["seed=1", "model.hidden=[16,16]", "model.normalizer=batchnorm",
                                f"optimizer.name={optimizer}", "optimizer.lr=0.01"]))
    hidden = [s for s in sim.net.segments if s.name == "b"][:-1]
    start = sim.net.params.copy()
    for _ in range(steps):
        sim.step()
    sim.compute_gradients(*sim.data.next_batch())
    grad = max(float(np.abs(sim.net.grads[s.start:s.stop]).max()) for s in hidden)
    drift = max(float(np.abs(sim.net.params[s.start:s.stop] - start[s.start:s.stop]).max())
                for s in hidden)
    return grad, drift


def test_the_bias_in_front_of_batch_norm_has_a_round_off_gradient_that_adam_turns_into_steps():
    for optimizer in ("sgd", "momentum"):
        grad, drift = bias_drift(optimizer)
        assert grad < 1e-5 and drift < 1e-5
    for optimizer in ("adam", "adagrad"):
        grad, drift = bias_drift(optimizer)
        assert grad < 1e-5 and drift > 0.01
