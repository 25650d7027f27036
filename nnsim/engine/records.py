"""Immutable per-step records: what one step's forward and backward pass measured.

Records are named tuples: immutable, cheap to create on every step, and picklable."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple


@dataclass(frozen=True)
class Stat:
    """One per-layer statistic, declared once: telemetry fills it, `LayerRecord` holds it,
    the writers, the history's timeline and checkpoints read its name and type from here,
    and the record reference (docs/records.md) documents every one (a test checks).

    `type` is float (one number) or tuple (the histogram and its range); `aggregate` says
    how the whole-run history's buckets keep it: "range" (the min, mean and max of the
    measured steps in the bucket) or "none" (kept only in the newest records);
    `every_step` marks what is counted on every step, measured or not."""

    name: str
    type: type
    meaning: str
    aggregate: str = "range"
    every_step: bool = False


#: Every per-layer statistic, in `LayerRecord` order. A new statistic is one line here,
#: its field in `LayerRecord`, where telemetry computes it, and its row in docs/records.md.
LAYER_STATS: tuple[Stat, ...] = (
    Stat("act_mean", float, "mean of the activation outputs over the batch (output: logits)"),
    Stat("act_std", float, "std of the activation outputs over the batch (output: logits)"),
    Stat("hist", tuple, "activation histogram: counts in 20 fixed bins", "none"),
    Stat("hist_range", tuple, "the histogram's (low, high), the activation's range", "none"),
    Stat("saturated", float, "share of entries whose local derivative is under 5 % of the "
                             "activation's largest"),
    Stat("dead", float, "share of units saturated on every one of the last >= 1,000 "
                        "training examples", every_step=True),
    Stat("grad_norm", float, "norm of the gradient of the layer's weights"),
    Stat("grad_in_norm", float, "norm of the gradient flowing back into the layer's input"),
    Stat("weight_norm", float, "norm of the weights before the update"),
    Stat("update_ratio", float, "norm of the weight change over the weight norm"),
    Stat("update_cos", float, "cosine between the weight change and minus the gradient"),
    Stat("step_size", float, "norm of the weight change over the gradient norm"),
)
#: the fields that say which layer a record is (constant over a run)
LAYER_LAYOUT = ("index", "kind", "width")
#: Layer fields that hold one number each, in record order (CSV, timeline, checkpoints).
LAYER_SCALARS = tuple(s.name for s in LAYER_STATS if s.type is float)


class LayerRecord(NamedTuple):
    """Statistics of one dense layer (hidden, or the output layer) at one step.

    Layers count from 1 (`index`); the output layer comes last.
    Activation statistics describe the layer's activation output (for the output layer, its
    logits). Everything is measured on the step's forward and backward pass, before its
    update, except `update_ratio`, `update_cos`, `step_size` and `state`.

    - `saturated`: share of (example, unit) entries whose local derivative is below 5 % of
      the activation's maximum derivative (one rule for every activation; see each
      activation's docstring for what it gives).
    - `dead`: share of units saturated on every one of the last ≥ DEAD_WINDOW (1,000)
      training examples, counted in whole minibatches (nnsim.engine.telemetry); the window is
      filled from the initial network before step 1.
    - `update_cos`: cosine between −ΔW and the gradient the optimizer was given (1 for plain
      SGD, clipped or not).
    - `step_size`: ‖ΔW‖/‖∂L/∂W‖ (the gradient before clipping): lr for plain SGD. Under
      momentum it approaches lr/(1−β) while successive gradients agree, and exceeds it
      while the gradient shrinks (the velocity holds larger past gradients); where they
      disagree (across a narrow valley) the velocity cancels and it stays near lr or below.
    - `state`: the norm of each optimizer state vector over the layer's weights after the
      update (e.g. ('velocity', 0.3)); `learnable`: the mean of each learnable parameter of
      the layer's normalizer and activation before the update (e.g. ('gamma', 1.01)).
    """

    index: int  # type: ignore[assignment]  # the field shadows tuple.index
    kind: str
    width: int
    act_mean: float
    act_std: float
    hist: tuple[int, ...]
    hist_range: tuple[float, float]
    saturated: float
    dead: float
    grad_norm: float
    grad_in_norm: float
    weight_norm: float
    update_ratio: float
    update_cos: float
    step_size: float
    state: tuple[tuple[str, float], ...] = ()
    learnable: tuple[tuple[str, float], ...] = ()

    def state_norm(self, name: str) -> float | None:
        return dict(self.state).get(name)

    def to_dict(self, nonfinite: dict[str, str] | None = None) -> dict[str, Any]:
        """The layer as JSON-ready values; a non-finite number becomes None and is named in
        `nonfinite` (as `layer{index}.{field}`: "nan", "inf" or "-inf")."""
        bad = {} if nonfinite is None else nonfinite
        prefix = f"layer{self.index}."
        d: dict[str, Any] = {}
        for name in self._fields:
            if name in ("state", "learnable"):
                continue
            value = getattr(self, name)
            d[name] = list(value) if isinstance(value, tuple) else \
                _json_float(value, prefix + name, bad)
        for name, value in self.state:
            d[f"{name}_norm"] = _json_float(value, f"{prefix}{name}_norm", bad)
        for name, value in self.learnable:
            d[f"{name}_mean"] = _json_float(value, f"{prefix}{name}_mean", bad)
        return d


_expected = (*LAYER_LAYOUT, *(s.name for s in LAYER_STATS), "state", "learnable")
if LayerRecord._fields != _expected:
    raise TypeError(f"LayerRecord fields {LayerRecord._fields} differ from the declared "
                    f"statistics {_expected}")


class StepRecord(NamedTuple):
    """One training step: global numbers plus one LayerRecord per dense layer.

    `loss` is the data loss of the minibatch before the update (`reg_loss` the L1/L2
    penalty beside it); `grad_norm` the global gradient norm before clipping; `val_loss` and
    `val_accuracy` are set on evaluation steps only. `nonfinite` names the first non-finite
    quantity of a diverged step, e.g. "layer 3 activations".
    """

    step: int
    epoch: float
    loss: float
    accuracy: float | None
    reg_loss: float
    grad_norm: float
    lr: float
    val_loss: float | None = None
    val_accuracy: float | None = None
    nonfinite: str | None = None
    layers: tuple[LayerRecord, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON-ready values, as a JSON Lines record reads back: a non-finite
        number is None, and `nonfinite_values` (present only then) names each such field
        with "nan", "inf" or "-inf" (`writers.restore_nonfinite` puts them back)."""
        bad: dict[str, str] = {}
        d = {name: _json_float(getattr(self, name), name, bad)
             for name in self._fields if name != "layers"}
        d["layers"] = [layer.to_dict(bad) for layer in self.layers]
        if bad:
            d["nonfinite_values"] = bad
        return d


def _json_float(value: Any, name: str, bad: dict[str, str]) -> Any:
    """JSON has no NaN or infinity: None, with the value's text kept in `bad[name]`."""
    if isinstance(value, float) and not math.isfinite(value):
        bad[name] = "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
        return None
    return value
