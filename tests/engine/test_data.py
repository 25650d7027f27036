"""The data pipeline and the built-in datasets."""

import numpy as np
import pytest

from nnsim.engine import Simulation
from nnsim.errors import ConfigError
from nnsim.pluginmanager import default_registry
from tests.helpers import small_config

REG = default_registry()
TWO_D = ["circle", "xor", "gauss", "spiral", "moons"]


@pytest.mark.parametrize("name", TWO_D + ["teacher"])
def test_dataset_shapes_labels_and_seed(name):
    ds = REG.get("dataset", name)(samples=300)
    x, y = ds.generate(np.random.default_rng(0))
    x2, y2 = ds.generate(np.random.default_rng(0))
    assert x.shape[0] == 300 and np.array_equal(x, x2) and np.array_equal(y, y2)
    assert set(np.unique(y)) == set(range(ds.n_classes()))
    if name in TWO_D:
        assert x.shape == (300, 2)
    if name in ("circle", "gauss", "spiral", "moons"):
        counts = np.bincount(y)
        assert counts.max() - counts.min() <= 1  # classes drawn evenly


def test_xor_is_not_linearly_separable_but_gauss_is():
    def linear_fit_accuracy(name):
        x, y = REG.get("dataset", name)(samples=400, noise=0.0).generate(
            np.random.default_rng(0))
        a = np.column_stack([x, np.ones(len(x))])
        w, *_ = np.linalg.lstsq(a, 2.0 * y - 1.0, rcond=None)
        return np.mean((a @ w > 0) == (y == 1))

    assert linear_fit_accuracy("gauss") > 0.99
    assert linear_fit_accuracy("xor") < 0.7


def test_teacher_regression_returns_float_targets():
    ds = REG.get("dataset", "teacher")(samples=50, dim=5, classes=3, task="regression")
    x, y = ds.generate(np.random.default_rng(0))
    assert x.shape == (50, 5) and y.shape == (50, 3) and y.dtype.kind == "f"


def test_digits_loads_through_scikit_learn():
    sim = Simulation(small_config(("data.name", "digits"), ("data.samples", 300)))
    assert sim.data.input_dim == 64 and sim.data.outputs == 10
    assert np.isfinite(sim.step().loss)


def test_digits_without_scikit_learn_says_what_to_install(monkeypatch):
    from nnsim.errors import PluginError

    monkeypatch.setitem(__import__("sys").modules, "sklearn.datasets", None)
    with pytest.raises(PluginError, match=r"needs scikit-learn: pip install 'nnsim\[digits\]'"):
        Simulation(small_config(("data.name", "digits")))


def test_standardize_is_fitted_on_the_training_split_only():
    sim = Simulation(small_config(("data.preprocess", "standardize"), ("data.validation", 0.5)))
    d = sim.data
    np.testing.assert_allclose(d.train_x.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(d.train_x.std(axis=0), 1.0, rtol=1e-12)
    assert np.abs(d.val_x.mean(axis=0)).max() > 1e-6  # not refitted on validation


def test_whiten_decorrelates_the_training_inputs():
    sim = Simulation(small_config(("data.name", "teacher"), ("data.dim", 6),
                                  ("data.preprocess", "whiten")))
    x = sim.data.train_x
    cov = np.cov(x, rowvar=False, bias=True)
    np.testing.assert_allclose(cov, np.eye(6), atol=1e-10)


def test_minibatches_visit_every_training_example_once_per_epoch():
    sim = Simulation(small_config(("data.samples", 100), ("data.validation", 0.2),
                                  ("train.batch_size", 20)))
    d = sim.data
    seen = np.concatenate([d.next_batch()[0].copy() for _ in range(4)])
    assert len(np.unique(seen, axis=0)) == 80
    assert d.epoch == pytest.approx(1.0)


def test_augmentation_adds_noise_to_batches_only():
    plain = Simulation(small_config())
    noisy = Simulation(small_config(("data.augment", 0.5)))
    assert np.array_equal(plain.data.train_x, noisy.data.train_x)
    diff = noisy.data.next_batch()[0] - plain.data.next_batch()[0]
    assert diff.std() == pytest.approx(0.5, rel=0.2)


def test_batch_larger_than_the_training_split_is_a_config_error():
    with pytest.raises(ConfigError, match="train.batch_size"):
        Simulation(small_config(("data.samples", 50), ("train.batch_size", 64)))
