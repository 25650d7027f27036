"""The data pipeline: dataset → train/validation split → preprocessing → shuffled minibatches."""

from __future__ import annotations

import numpy as np

from nnsim.config import DataConfig
from nnsim.errors import ConfigError, PluginError
from nnsim.pluginmanager import Registry, numpy_state, plugin_failure, restore_numpy_state


def fit_preprocess(kind: str, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(shift, matrix) so that (x - shift) @ matrix is the preprocessed input.

    standardize: per-dimension zero mean and unit variance; whiten: PCA whitening, i.e.
    decorrelated dimensions of unit variance. Fitted on the training split only.
    """
    d = x.shape[1]
    if kind == "none":
        return np.zeros(d), np.eye(d)
    mean = x.mean(axis=0)
    centred = x - mean
    if kind == "standardize":
        std = centred.std(axis=0)
        std[std < 1e-12] = 1.0
        return mean, np.diag(1.0 / std)
    if kind == "whiten":
        cov = centred.T @ centred / max(len(x), 1)
        eigval, eigvec = np.linalg.eigh(cov)
        keep = eigval > 1e-10 * max(eigval.max(), 1e-300)
        scale = np.where(keep, 1.0 / np.sqrt(np.where(keep, eigval, 1.0)), 0.0)
        return mean, eigvec * scale
    raise ValueError(f"unknown preprocessing {kind!r}")


#: the most classes a dataset may declare (the output layer has one unit per class)
MAX_CLASSES = 65536


def _class_labels(name: str, dataset, y: np.ndarray) -> np.ndarray:
    """Labels as int64, checked against the dataset's declared classes: one line naming
    the dataset, what was wrong and what would be right."""
    state = numpy_state()
    try:
        classes = dataset.n_classes()
    except BaseException as exc:  # a plugin's failure, reported as one line
        if not plugin_failure(exc):
            raise
        raise PluginError(f"raised {type(exc).__name__}: {_short(exc)}", family="dataset",
                          component=name, method="n_classes") from exc
    finally:
        restore_numpy_state(state)
    if isinstance(classes, (bool, np.bool_)) or not isinstance(classes, (int, np.integer)) \
            or not 1 <= classes <= MAX_CLASSES:
        raise PluginError(f"must return an integer in [1, {MAX_CLASSES}], got "
                          f"{_short(repr(classes))}", family="dataset", component=name,
                          method="n_classes")
    classes = int(classes)
    if y.dtype.kind not in "iub" and not (
            y.dtype.kind == "f" and np.isfinite(y).all() and (y == np.round(y)).all()):
        raise PluginError(f"must return integer class labels in [0, {classes}), got dtype "
                          f"{y.dtype}", family="dataset", component=name, method="generate")
    y = y.reshape(-1)
    if len(y) and (y.min() < 0 or y.max() >= classes):
        bad = y[(y < 0) | (y >= classes)][0]
        raise PluginError(f"returned the label {_short(repr(bad.item()))}, outside "
                          f"[0, {classes}) of its n_classes() = {classes}", family="dataset",
                          component=name, method="generate")
    return y.astype(np.int64)


def _short(value, limit: int = 80) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _sizes(cfg: DataConfig) -> str:
    """The dataset's size settings, e.g. 'samples=1000000, dim=1024'."""
    hypers = cfg.dataset.hypers
    return ", ".join(f"{k}={hypers[k]}" for k in ("samples", "dim", "classes")
                     if k in hypers) or "its defaults"


class DataPipeline:
    """Training and validation arrays plus a seeded stream of minibatches of fixed size.

    Each epoch visits the training split in a fresh random order; a final partial batch is
    left for the next epoch's order, so every batch has exactly `batch_size` examples.
    """

    def __init__(self, cfg: DataConfig, registry: Registry, dtype: np.dtype, batch_size: int,
                 data_rng: np.random.Generator, split_rng: np.random.Generator,
                 shuffle_rng: np.random.Generator, augment_rng: np.random.Generator) -> None:
        dataset = cfg.dataset.build(registry, "dataset")
        self.dataset = dataset
        self.task = dataset.task
        state = numpy_state()
        try:
            x, y = dataset.generate(data_rng)
            x = np.asarray(x, dtype=np.float64)
        except MemoryError:  # the data asked for, not a broken plugin
            raise ConfigError("data", f"the {cfg.dataset.name} dataset as configured "
                                      f"({_sizes(cfg)}) does not fit in the memory available; "
                                      f"use fewer samples or fewer input dimensions") from None
        except BaseException as exc:
            if not plugin_failure(exc):
                raise
            raise PluginError.at(dataset, "generate", f"failed: {type(exc).__name__}: {exc}") \
                from exc
        finally:
            restore_numpy_state(state)
        y = np.asarray(y)
        if x.ndim != 2 or len(x) != len(y) or len(x) < 2:
            raise PluginError.at(dataset, "generate", f"must return X of shape (n, d) and y "
                                 f"with n entries, got {x.shape} and {y.shape}")
        if not np.isfinite(x).all():
            raise PluginError.at(dataset, "generate", "returned non-finite inputs")
        if self.task == "classification":
            y = _class_labels(cfg.dataset.name, dataset, y)
            self.outputs = int(dataset.n_classes())
        else:
            if y.dtype.kind not in "iufb":
                raise PluginError.at(dataset, "generate", f"must return numeric regression "
                                     f"targets, got dtype {y.dtype}")
            y = y.astype(np.float64).reshape(len(y), -1)
            if not np.isfinite(y).all():
                raise PluginError.at(dataset, "generate", "returned non-finite targets")
            self.outputs = y.shape[1]

        n = len(x)
        order = split_rng.permutation(n)
        n_val = int(round(n * cfg.validation))
        n_train = n - n_val
        if batch_size > n_train:
            raise ConfigError("train.batch_size", f"{batch_size} is larger than the training "
                                                  f"split ({n_train} examples); use at most "
                                                  f"{n_train} or more data.samples")
        train_idx, val_idx = order[:n_train], order[n_train:]
        shift, matrix = fit_preprocess(cfg.preprocess, x[train_idx])
        x = (x - shift) @ matrix

        self.dtype = np.dtype(dtype)
        target_dtype = np.int64 if self.task == "classification" else self.dtype
        self.train_x = np.ascontiguousarray(x[train_idx], dtype=self.dtype)
        self.train_y = np.ascontiguousarray(y[train_idx], dtype=target_dtype)
        self.val_x = np.ascontiguousarray(x[val_idx], dtype=self.dtype)
        self.val_y = np.ascontiguousarray(y[val_idx], dtype=target_dtype)
        self.input_dim = x.shape[1]
        self.batch_size = batch_size
        self.augment = cfg.augment
        self.shuffle_rng = shuffle_rng
        self.augment_rng = augment_rng
        self.examples_seen = 0
        self._order = shuffle_rng.permutation(n_train)
        self._pos = 0
        self._xb = np.empty((batch_size, self.input_dim), self.dtype)
        self._yb = np.empty((batch_size, *self.train_y.shape[1:]), target_dtype)
        self._noise = np.empty_like(self._xb) if self.augment else None

    @property
    def n_train(self) -> int:
        return len(self.train_x)

    @property
    def epoch(self) -> float:
        """Training examples seen so far, in epochs."""
        return self.examples_seen / self.n_train

    def next_batch(self) -> tuple[np.ndarray, np.ndarray]:
        """The next minibatch; the arrays are reused, so copy them to keep them."""
        b = self.batch_size
        if self._pos + b > self.n_train:
            self._order = self.shuffle_rng.permutation(self.n_train)
            self._pos = 0
        idx = self._order[self._pos:self._pos + b]
        self._pos += b
        self.examples_seen += b
        np.take(self.train_x, idx, axis=0, out=self._xb)
        np.take(self.train_y, idx, axis=0, out=self._yb)
        if self._noise is not None:
            self.augment_rng.standard_normal(out=self._noise, dtype=self.dtype)
            self._noise *= self.augment
            self._xb += self._noise
        return self._xb, self._yb
