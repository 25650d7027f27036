"""Losses with their gradients: softmax cross-entropy for classes, mean squared error for values."""

from __future__ import annotations

import numpy as np


_ROWS: dict[int, np.ndarray] = {}


def softmax_cross_entropy(logits: np.ndarray, labels: np.ndarray,
                          want_grad: bool = True) -> tuple[float, np.ndarray | None, int]:
    """Mean cross-entropy of softmax(logits) against integer labels.

    Returns (loss, ∂loss/∂logits or None, number of correct argmax predictions).
    """
    n = logits.shape[0]
    rows = _ROWS.get(n)
    if rows is None:
        rows = _ROWS[n] = np.arange(n)
    shifted = logits - np.maximum.reduce(logits, axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = np.add.reduce(exp, axis=1)
    picked = shifted[rows, labels]
    loss = float(np.add.reduce(np.log(total) - picked, dtype=np.float64)) / n
    correct = int(np.count_nonzero(logits.argmax(axis=1) == labels))
    grad = None
    if want_grad:
        exp /= total[:, None]
        exp[rows, labels] -= 1.0
        exp *= 1.0 / n
        grad = exp
    return loss, grad, correct


def mean_squared_error(pred: np.ndarray, target: np.ndarray,
                       want_grad: bool = True) -> tuple[float, np.ndarray | None]:
    """mean((pred - target)²) over every element, and its gradient."""
    diff = pred - target
    loss = float(np.mean(diff * diff, dtype=np.float64))
    grad = diff * (2.0 / diff.size) if want_grad else None
    return loss, grad
