"""The first step of a run, watched: each plugin keeps the contract the conformance kit tests.

At the first step only (a run's later steps call the plugins directly, at no cost):

- the dataset's labels lie within its declared classes;
- activations and normalizers leave the arrays they are given (`x`, `y`, `grad_y`) as
  they were: the engine reuses them;
- the optimizer changes the parameter vector it is given in place (`params -= step`, not
  `params = params - step`, which leaves the network untrained).

Each failure is a one-line PluginError naming the component and the method; the
simulation adds the distribution the component came from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from nnsim.errors import PluginError

if TYPE_CHECKING:
    from nnsim.engine.records import StepRecord
    from nnsim.engine.simulation import Simulation

#: the methods whose array arguments must come back unchanged, by family: argument names
#: in order (`training` is a flag, not an array)
KEEPS_INPUTS: dict[str, dict[str, tuple[str, ...]]] = {
    "activation": {"forward": ("x",), "backward": ("x", "y", "grad_y"),
                   "saturated": ("x", "y")},
    "normalizer": {"forward": ("x", "training"), "backward": ("grad_y",)},
}


def first_step(sim: Simulation, measure: bool = True) -> StepRecord:
    """Run `sim`'s first step with the plugins' contracts checked (see the module)."""
    check_labels(sim)
    installed: list[tuple[object, str]] = []
    try:
        for layer in sim.net.hidden:
            for component in (layer.activation, layer.norm):
                if component is None or any(component is done for done, _ in installed):
                    continue
                depth = [0]
                for method, names in KEEPS_INPUTS[component.family].items():
                    _install(component, method, _keeps_inputs(component, method, names, depth),
                             installed)
        _install(sim.optimizer, "update", _updates_in_place(sim.optimizer), installed)
        return sim._step(measure)
    finally:
        for owner, method in installed:
            try:
                delattr(owner, method)
            except AttributeError:
                pass


def check_labels(sim: Simulation) -> None:
    """Every label of a classification dataset within [0, classes)."""
    data = sim.data
    if data.task != "classification":
        return
    for split in (data.train_y, data.val_y):
        if split.size and (split.min() < 0 or split.max() >= data.outputs):
            bad = split[(split < 0) | (split >= data.outputs)][0]
            raise PluginError.at(data.dataset, "generate",
                                 f"returned the label {bad.item()!r}, outside [0, "
                                 f"{data.outputs}) of its declared classes")


def _install(component: object, method: str,
             wrap: Callable[[Callable[..., Any]], Callable[..., Any]],
             installed: list[tuple[object, str]]) -> None:
    """Shadow `component.method` with a checking wrapper, for this step only."""
    own = getattr(component, "__dict__", None)
    if own is None or method in own:
        return  # no instance dict, or a method set on the instance: leave it alone
    try:
        setattr(component, method, wrap(getattr(component, method)))
    except (AttributeError, TypeError):
        return
    installed.append((component, method))


def _keeps_inputs(component: Any, method: str, names: tuple[str, ...], depth: list[int]
                  ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Check the arrays the engine hands `method`; calls a component makes to its own
    methods (the default `saturated` calls `backward` on a scratch array) are its own
    business: `depth` counts the component's calls in progress."""
    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        def checked(*args: Any) -> Any:
            if depth[0]:
                return original(*args)
            before = [(i, a.copy()) for i, a in enumerate(args) if isinstance(a, np.ndarray)]
            depth[0] += 1
            try:
                out = original(*args)
            finally:
                depth[0] -= 1
            for i, copy in before:
                if not _same(args[i], copy):
                    name = names[i] if i < len(names) else f"argument {i + 1}"
                    raise PluginError.at(component, method,
                                         f"changed its input {name} in place; leave the "
                                         f"arrays it is given as they were and return new "
                                         f"ones (the engine reuses them)")
            return out
        return checked
    return wrap


def _updates_in_place(optimizer: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        def checked(params: np.ndarray, grads: np.ndarray, state: dict[str, np.ndarray],
                    t: int) -> Any:
            before = params.copy()
            state_before = {k: np.array(v, copy=True) for k, v in state.items()}
            out = original(params, grads, state, t)
            if np.array_equal(params, before) and np.any(grads) \
                    and not _moves_zeros(optimizer, before, grads, state_before, t):
                raise PluginError.at(optimizer, "update",
                                     "left the parameters it was given unchanged; change "
                                     "them in place (params -= step), not by making a new "
                                     "array (params = params - step)")
            return out
        return checked
    return wrap


def _moves_zeros(optimizer: Any, params: np.ndarray, grads: np.ndarray,
                  state: dict[str, np.ndarray], t: int) -> bool:
    """Whether a fresh optimizer moves a float64 vector of zeros, with the same
    hyperparameters or else with its defaults: an update too small for the parameters'
    precision (lr 1e-300) or none at all (lr 0) is not a broken one, and the code that
    rebinds `params` instead of changing it does so whatever the learning rate."""
    defaults: dict[str, Any] = {}
    for hypers in (optimizer.hyper_values(), defaults):
        try:
            fresh = type(optimizer)(**hypers)
            p = np.zeros(params.shape, np.float64)
            fresh.update(p, grads.astype(np.float64),
                         {k: v.astype(np.float64) for k, v in state.items()}, t)
        except Exception:  # noqa: BLE001 — no evidence either way
            return True
        if np.any(p):
            return True
    return False


def _same(a: np.ndarray, b: np.ndarray) -> bool:
    if a.shape != b.shape:
        return False
    if a.dtype.kind in "fc":
        return bool(np.array_equal(a, b, equal_nan=True))
    return bool(np.array_equal(a, b))
