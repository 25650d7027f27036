"""The doctor: reads a run's recent history and names, one line each, the pathologies the
lecture teaches, with the evidence, where, how sure, and the lecture's remedy.

Every number it judges by is in `THRESHOLDS`, the one table; the checks themselves are
plugins (`register_checks`; the built-in ones are in `nnsim_plugins.checks`). Nothing here
knows about a screen: the TUI shows `diagnose`'s findings, `nnsim doctor` prints them.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from nnsim.components import Finding
from nnsim.config import Config
from nnsim.engine.records import StepRecord
from nnsim.pluginmanager import Registry, call_plugin, default_registry


@dataclass(frozen=True)
class Threshold:
    value: float
    meaning: str


#: Every threshold of the built-in checks, with what it means. A plugin's check may add its
#: own through `Evidence.threshold(name, default)`.
THRESHOLDS: dict[str, Threshold] = {
    "window": Threshold(50, "measured steps the per-layer medians are taken over"),
    "min_steps": Threshold(20, "steps before the loss's course is judged (rising, noisy)"),
    "vanishing": Threshold(1e-2, "first hidden layer's ‖∂L/∂W‖ below this fraction of the "
                                 "last hidden layer's: vanishing gradients"),
    "exploding": Threshold(1e2, "first hidden layer's ‖∂L/∂W‖ above this multiple of the "
                                "last hidden layer's: exploding gradients"),
    "saturated": Threshold(0.4, "share of units saturated (local derivative under 5 % of "
                                "its maximum), in a layer and on average over the hidden "
                                "layers (sigmoid, tanh)"),
    "dead": Threshold(0.25, "share of a layer's units dead (inactive on every example of "
                            "the last ≥ 1,000)"),
    "update_high": Threshold(3e-2, "median ‖ΔW‖/‖W‖ above this: steps far larger than the "
                                   "1e-3 rule of thumb"),
    "early": Threshold(10, "first measured steps looked at for updates that were too large "
                           "from the start"),
    "update_low": Threshold(1e-5, "median ‖ΔW‖/‖W‖ below this: steps far smaller than the "
                                  "1e-3 rule of thumb"),
    "rising": Threshold(1.5, "recent mean loss above this multiple of the run's lowest: the "
                             "loss is rising"),
    "given_back": Threshold(0.25, "share of the loss's fall from its start to its lowest "
                                  "that it must have given back to count as rising"),
    "chance_steps": Threshold(100, "steps after which a loss still at ln C means nothing "
                                   "was learned"),
    "chance": Threshold(0.05, "relative distance from ln C within which the loss counts as "
                              "at chance"),
    "gap": Threshold(1.5, "validation loss above this multiple of the training loss, and "
                          "rising: overfitting"),
    "gap_accuracy": Threshold(0.05, "for classification, training accuracy above the "
                                    "validation accuracy by more than this too"),
    "stale_evals": Threshold(3, "evaluations since the best validation loss before a "
                                "rise counts as a trend"),
    "val_rise": Threshold(1.1, "latest validation loss above this multiple of its best"),
    "collapse": Threshold(0.1, "last hidden layer's act std below this fraction of the "
                               "first's: activations shrink with depth"),
    "growth": Threshold(10.0, "last hidden layer's act std above this multiple of the "
                              "first's: activations grow with depth"),
    "progress": Threshold(0.5, "recent loss below this fraction of the starting loss: it "
                               "has come down, so small updates are no fault"),
    "signal": Threshold(1e-2, "act std of the last hidden layer that still carries a "
                              "signal (below it a tiny update ratio is the initialization's "
                              "fault, not the learning rate's)"),
    "small_batch": Threshold(16, "batch sizes up to this are looked at for noise"),
    "noise": Threshold(1.5, "‖g_B − g‖/‖g‖, a minibatch gradient's distance from the whole "
                            "split's relative to its size, above which training is noisy "
                            "(about 2.2 at batch 8 on the spiral, 0.8 at 64)"),
    "noise_batches": Threshold(8, "minibatches the gradient noise is averaged over"),
}


class Evidence:
    """What a check reads: the recent records (oldest first), the run's config, its
    number of classes (None for regression), and the thresholds."""

    def __init__(self, records: list[StepRecord], config: Config, classes: int | None,
                 first: StepRecord | None = None,
                 thresholds: dict[str, Threshold] | None = None, sim=None) -> None:
        self.records = records
        self.sim = sim  # the Simulation, where a check may measure at the current weights
        self.config = config
        self.classes = classes
        self.first = first or (records[0] if records else None)
        self.thresholds = thresholds or THRESHOLDS

    def threshold(self, name: str, default: float | None = None) -> float:
        if name in self.thresholds:
            return self.thresholds[name].value
        if default is None:
            raise KeyError(f"no threshold {name!r}; declared: {', '.join(self.thresholds)}")
        return default

    @cached_property
    def measured(self) -> list[StepRecord]:
        """The newest `window` records with layer statistics."""
        window = int(self.threshold("window"))
        return [r for r in self.records if r.layers][-window:]

    @property
    def steps(self) -> tuple[int, int]:
        rs = self.measured or self.records
        return (rs[0].step, rs[-1].step) if rs else (0, 0)

    @property
    def step(self) -> int:
        return self.records[-1].step if self.records else 0

    @cached_property
    def hidden(self) -> list[int]:
        """Indices (from 1) of the hidden layers."""
        if not self.measured:
            return []
        return [layer.index for layer in self.measured[-1].layers if layer.kind == "hidden"]

    def layer_median(self, field: str, layer: int) -> float:
        """Median of a layer field over the window (NaN when nothing finite)."""
        values = [getattr(r.layers[layer - 1], field) for r in self.measured
                  if len(r.layers) >= layer]
        values = [v for v in values if math.isfinite(v)]
        return statistics.median(values) if values else math.nan

    def losses(self, last: int | None = None) -> list[float]:
        values = [r.loss for r in self.records if math.isfinite(r.loss)]
        return values[-last:] if last else values

    @property
    def diverged(self) -> StepRecord | None:
        return next((r for r in self.records if r.nonfinite), None)

    @property
    def evals(self) -> list[StepRecord]:
        return [r for r in self.records if r.val_loss is not None]

    @property
    def activation(self) -> str:
        return self.config.model.activation.name

    @cached_property
    def gradient_noise(self) -> float | None:
        """‖g_B − g‖ / ‖g‖ at the current weights: how far a minibatch's gradient g_B is
        from the whole training split's g, relative to g (the mean over a few batches of
        the run's size, drawn with a generator of their own). It falls as 1/√batch. None
        without a simulation, or with dropout (whose masks would add their own noise)."""
        sim = self.sim
        if sim is None or self.config.model.dropout > 0:
            return None
        from nnsim.lessons import RunResult

        x, y = sim.data.train_x, sim.data.train_y
        rng = np.random.default_rng(12345)
        if len(x) > 2048:
            keep = rng.choice(len(x), 2048, replace=False)
            x, y = x[keep], y[keep]
        probe = RunResult([], sim)
        full = probe.gradient(x, y)
        size = float(np.linalg.norm(full))
        if not size > 0:
            return None
        b = self.config.train.batch_size
        spread = []
        for _ in range(int(self.threshold("noise_batches"))):
            idx = rng.choice(len(x), min(b, len(x)), replace=False)
            spread.append(float(np.linalg.norm(probe.gradient(x[idx], y[idx]) - full)))
        return statistics.fmean(spread) / size

    @property
    def saturating(self) -> bool:
        """Whether the activation saturates on both sides (sigmoid, tanh, or a plugin that
        says `saturating = True`): for the ReLU family "saturated" is the inactive half,
        which is normal, and what goes wrong is dead units."""
        from nnsim.pluginmanager import default_registry

        try:
            cls = default_registry().get("activation", self.activation)
        except Exception:
            cls = None
        return self.activation in ("sigmoid", "tanh") or bool(getattr(cls, "saturating", False))

    def good_initializer(self) -> str:
        """The lecture's initializer for this activation: He (Xavier2) for the ReLU family,
        Xavier otherwise."""
        relu_like = self.activation in ("relu", "leaky_relu", "prelu", "elu", "gelu", "silu")
        return "he_normal" if relu_like else "xavier_normal"


def checks(registry: Registry | None = None) -> list[Any]:
    registry = registry or default_registry()
    return [registry.get("check", name)() for name in registry.names("check")]


def examine(evidence: Evidence, registry: Registry | None = None) -> list[Finding]:
    """Every registered check's findings, surest first. A check that raises is a
    PluginError naming it."""
    found: list[Finding] = []
    for check in checks(registry):
        found += list(call_plugin(check, "examine", evidence) or ())
    codes = {f.code for f in found}
    # a finding another one explains is left out: tiny updates while the gradients vanish
    # or the activations collapse are not the learning rate's fault
    found = [f for f in found if not (EXPLAINED_BY.get(f.code, set()) & codes)]
    return sorted(found, key=lambda f: -f.strength)


#: findings that make another redundant: the key is left out when any of its values is found
EXPLAINED_BY = {"learning_rate_low": {"vanishing_gradients", "activation_scale",
                                      "stuck_at_chance", "dead_units"},
                "stuck_at_chance": {"learning_rate_high"},
                # silent layers have no spread: the collapse is the dead units' doing
                "activation_scale": {"dead_units"}}


def diagnose(records: list[StepRecord], config: Config, classes: int | None,
             registry: Registry | None = None, first: StepRecord | None = None, sim=None
             ) -> list[Finding]:
    """The findings on a run's records (oldest first)."""
    return examine(Evidence(records, config, classes, first, sim=sim), registry)


def diagnose_simulation(sim, records: list[StepRecord], first: StepRecord | None = None
                        ) -> list[Finding]:
    """The findings on the records of `sim`'s run, with `sim` at hand for the checks that
    measure at the current weights. `first`: the run's first record, when `records` are
    only its newest (the TUI's window), so that "since the start" means the run's start."""
    classes = sim.data.outputs if sim.task == "classification" else None
    return diagnose(records, sim.config, classes, sim.registry, first=first, sim=sim)
