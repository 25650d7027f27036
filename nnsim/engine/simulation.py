"""`Simulation`: the public Python API. Builds an experiment from a Config and steps it."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from nnsim.config import Config
from nnsim.engine.data import DataPipeline
from nnsim.engine.firstcheck import first_step
from nnsim.engine.losses import mean_squared_error, softmax_cross_entropy
from nnsim.engine.network import Network
from nnsim.engine.records import LayerRecord, StepRecord
from nnsim.engine.telemetry import Telemetry
from nnsim.errors import ConfigError, HyperError, PluginError
from nnsim.pluginmanager import Registry, call_plugin, default_registry

STREAMS = ("data", "split", "init", "shuffle", "dropout", "augment")


@dataclass(frozen=True)
class Divergence:
    """Where a run first went non-finite."""

    step: int
    where: str

    def __str__(self) -> str:
        return f"diverged at step {self.step}: non-finite {self.where}"


def reports_step(optimizer) -> bool:
    """Whether the optimizer's `update` leaves its whole step in `last_step` (the update
    was exactly params −= last_step): the built-in functions marked `reports_step`. A
    subclass that overrides `update` is measured by difference, whatever it sets."""
    return bool(getattr(type(optimizer).update, "reports_step", False))


def available_memory() -> int | None:
    """Bytes the system can still give this process (Linux: MemAvailable), or None."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        return None


def memory_estimate(cfg: Config, registry: Registry, input_dim: int, outputs: int,
                    examples: int) -> dict[str, int]:
    """Bytes a simulation of `cfg` needs, by part: parameters (with their gradients, the
    telemetry's copy and the penalty buffer), optimizer state, and activations (a
    training batch with its backward buffers, and an evaluation pass over `examples`)."""
    item = np.dtype(cfg.model.dtype).itemsize
    widths = [input_dim, *cfg.model.hidden, outputs]
    n_params = sum((a + 1) * b for a, b in zip(widths[:-1], widths[1:])) \
        + 4 * sum(cfg.model.hidden)
    try:
        n_state = len(getattr(registry.get("optimizer", cfg.optimizer.name), "state_names"))
    except Exception:  # noqa: BLE001 — the build reports a broken optimizer itself
        n_state = 2
    rows = cfg.train.batch_size * 8 + min(examples, 4096)
    return {"parameters": 4 * n_params * item, "optimizer state": n_state * n_params * item,
            "activations": rows * sum(widths) * item}


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def check_memory(cfg: Config, registry: Registry, input_dim: int, outputs: int,
                 examples: int) -> None:
    """Refuse, before allocating, a network that cannot fit in the memory available."""
    parts = memory_estimate(cfg, registry, input_dim, outputs, examples)
    need = sum(parts.values())
    free = available_memory()
    if free is not None and need > free:
        detail = ", ".join(f"{name} {_bytes(size)}" for name, size in parts.items())
        raise ConfigError("model.hidden", f"this network needs about {_bytes(need)} ({detail}) "
                                          f"but {_bytes(free)} of memory is available; use "
                                          f"fewer or narrower layers, or a smaller batch")


class Simulation:
    """One experiment: data, network, optimizer, and the step counter.

    `step()` runs one minibatch (forward, backward, update) and returns a frozen
    StepRecord of that step's statistics. The same config and seed give identical records.
    """

    def __init__(self, config: Config | None = None, registry: Registry | None = None,
                 telemetry: bool = True) -> None:
        self.registry = registry or default_registry()
        self.config = config if config is not None else Config.from_dict({}, self.registry)
        self.telemetry_enabled = telemetry
        try:
            self._build()
        except PluginError as exc:  # build-time errors name the distribution too
            raise self._sourced(exc) from exc.__cause__

    # ------------------------------------------------------------ building

    def _build(self) -> None:
        cfg, reg = self.config, self.registry
        seeds = np.random.SeedSequence(cfg.seed).spawn(len(STREAMS))
        self.rngs = {name: np.random.default_rng(s) for name, s in zip(STREAMS, seeds)}
        dtype = np.dtype(cfg.model.dtype)
        self.data = DataPipeline(cfg.data, reg, dtype, cfg.train.batch_size, self.rngs["data"],
                                 self.rngs["split"], self.rngs["shuffle"], self.rngs["augment"])
        self.task = self.data.task
        check_memory(cfg, reg, self.data.input_dim, self.data.outputs,
                     max(self.data.n_train, len(self.data.val_x)))
        self.net = Network(self.data.input_dim, self.data.outputs, cfg.model, reg,
                           self.rngs["init"], cfg.train.batch_size)
        self.optimizer = cfg.optimizer.build(reg, "optimizer")
        state = call_plugin(self.optimizer, "init_state", self.net.params)
        for name, value in state.items():
            if not isinstance(value, np.ndarray) or value.shape != self.net.params.shape \
                    or value.dtype.kind not in "biufc":  # numbers: no objects, text, dates
                raise PluginError.at(self.optimizer, "init_state", f"must return arrays of "
                                     f"numbers shaped like the parameters, got {name!r}")
        self.opt_state: dict[str, np.ndarray] = state
        self.telemetry = Telemetry(self.net, state, reports_step(self.optimizer)) \
            if self.telemetry_enabled else None
        t = cfg.train
        self._reg = np.empty(self.net.n_weights, dtype) if (t.l1 or t.l2) else None
        self.step_count = 0
        self.best_val = math.inf
        self.evals_since_best = 0
        self.stopped: str | None = None
        self.divergence: Divergence | None = None
        self.last: StepRecord | None = None
        #: set by `steps` on a step whose dead-unit counting cannot change a measured record
        self._skip_dead = False

    def reset(self, seed: int | None = None) -> None:
        """Rebuild from the seed (a new one if given): same seed, same run."""
        config = self.config if seed is None else self.config.with_overrides(
            [("seed", seed)], self.registry)
        self._rebuild(config)

    def _rebuild(self, config: Config) -> None:
        """Build from `config`, or, if that fails, leave everything as it was and re-raise."""
        before = dict(vars(self))
        self.config = config
        try:
            self._build()
        except BaseException:
            vars(self).clear()
            vars(self).update(before)
            raise

    def reconfigure(self, config: Config, rebuild: bool = False) -> bool:
        """Adopt a new config. Optimizer hyperparameters apply live (unless `rebuild`);
        anything else rebuilds from the seed. Returns True when it rebuilt."""
        if not rebuild and config.structure_key() == self.config.structure_key():
            for key, value in config.optimizer.hypers.items():
                setattr(self.optimizer, key, value)
            self.config = config
            return False
        self._rebuild(config)
        return True

    def set_hyper(self, key: str, value: Any) -> None:
        """Change one optimizer hyperparameter (e.g. 'lr') live, validated."""
        hyper = self.optimizer.hyperparameters.get(key)
        if hyper is None:
            raise ConfigError(f"optimizer.{key}", HyperError(
                key, f"optimizer {self.optimizer.name!r} has no hyperparameter {key!r}",
                self.optimizer.hyperparameters).message)
        try:
            hyper.validate(value)
        except ValueError as exc:
            raise ConfigError(f"optimizer.{key}", str(exc)) from None
        self.reconfigure(self.config.with_overrides([(f"optimizer.{key}", value)],
                                                    self.registry))

    # ------------------------------------------------------------ stepping

    @property
    def lr(self) -> float:
        return float(getattr(self.optimizer, "lr", math.nan))

    def _loss(self, logits: np.ndarray, targets: np.ndarray, want_grad: bool = True):
        if self.task == "classification":
            loss, grad, correct = softmax_cross_entropy(logits, targets, want_grad)
            return loss, grad, correct / len(targets)
        loss, grad = mean_squared_error(logits, targets, want_grad)
        return loss, grad, None

    def compute_gradients(self, xb: np.ndarray, yb: np.ndarray, telemetry: bool = False):
        """Forward and backward on one batch, plus the L1/L2 penalty: fills `net.grads` with
        the gradient of loss + penalty. Returns (logits, loss, accuracy, penalty)."""
        net, cfg = self.net, self.config.train
        logits = net.forward(xb, training=True, rng=self.rngs["dropout"])
        loss, grad_logits, accuracy = self._loss(logits, yb)
        net.backward(grad_logits, input_grad=telemetry)
        reg_loss = 0.0
        if self._reg is not None:
            w, g, tmp = net.params[:net.n_weights], net.grads[:net.n_weights], self._reg
            if cfg.l2:
                reg_loss += 0.5 * cfg.l2 * float(np.vdot(w, w))
                np.multiply(w, cfg.l2, out=tmp)
                g += tmp
            if cfg.l1:
                np.abs(w, out=tmp)
                reg_loss += cfg.l1 * float(tmp.sum(dtype=np.float64))
                np.sign(w, out=tmp)
                tmp *= cfg.l1
                g += tmp
        return logits, loss, accuracy, reg_loss

    def step(self, measure: bool = True) -> StepRecord:
        """One minibatch: forward, backward, update. Returns the step's record.

        With `measure=False` the per-layer statistics are not computed for this step (its
        record has no `layers`): the step itself, its loss, accuracy and gradient norm, the
        divergence check and the dead-unit counters are exactly as when measured, so the
        records of the measured steps are the same whichever steps are measured."""
        # overflow on the way to a divergence is reported in the record, not as a warning
        try:
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                if self.step_count == 0:  # checks the plugins' contracts, once
                    return first_step(self, measure)
                return self._step(measure)
        except PluginError as exc:
            raise self._sourced(exc) from exc.__cause__

    def _sourced(self, exc: PluginError) -> PluginError:
        try:
            if exc.family is None or exc.component is None:
                return exc
            return exc.with_source(self.registry.entry(exc.family, exc.component).source)
        except (LookupError, KeyError, TypeError):
            return exc

    def _step(self, measure: bool = True) -> StepRecord:
        net, cfg = self.net, self.config.train
        tel = self.telemetry
        if tel is not None and not tel.primed:
            tel.prime(self.data.train_x)
        measured = tel if measure else None  # the telemetry, on a measured step
        xb, yb = self.data.next_batch()
        logits, loss, accuracy, reg_loss = self.compute_gradients(xb, yb, measured is not None)
        if tel is not None and (measured is not None or not self._skip_dead):
            tel.activity(measured is not None)
        if net.small:  # a few thousand parameters: NumPy calls cost, not passes
            grad_norm = math.sqrt(float(np.vdot(net.grads, net.grads)))
            if measured is not None:
                measured.before_update(net.square_norms(net.grads))
        else:  # per layer, then the rest: the norm and the layers' norms in one pass
            grad_sq = net.square_norms(net.grads)
            if measured is not None:
                measured.before_update(grad_sq)
            grad_norm = math.sqrt(sum(grad_sq))
        grad_scale = 1.0
        if cfg.clip_norm and grad_norm > cfg.clip_norm:
            grad_scale = cfg.clip_norm / grad_norm
            net.grads *= grad_scale

        self.step_count += 1
        call_plugin(self.optimizer, "update", net.params, net.grads, self.opt_state,
                    self.step_count)
        layers: tuple[LayerRecord, ...] = ()
        if measured is not None:
            measured.after_update(grad_scale, self.optimizer.last_step
                                  if measured.step_buffer else None)
            layers = measured.layers(logits)

        nonfinite = self._check_finite(loss, grad_norm, measured is not None)
        val_loss = val_acc = None
        if cfg.eval_every and self.step_count % cfg.eval_every == 0 and nonfinite is None:
            val_loss, val_acc = self.evaluate()
            self._early_stopping(val_loss)
        record = StepRecord(self.step_count, self.data.epoch, loss, accuracy, reg_loss,
                            grad_norm, self.lr, val_loss, val_acc, nonfinite, layers)
        self.last = record
        return record

    def _check_finite(self, loss: float, grad_norm: float, measured: bool = True
                      ) -> str | None:
        """Name the first non-finite quantity of this step in the order the step computed
        them: activations layer by layer, the loss, gradients, then the updated parameters.
        The common, finite case costs one dot product, and none on a measured step whose
        weights before the update and whose change both have finite sums of squares (each
        entry then under √(largest float), so their sum is finite too); locating is done
        only on failure."""
        tel = self.telemetry if measured else None
        where = None
        if not math.isfinite(loss) or (tel is not None and not math.isfinite(sum(tel.act_mean))):
            where = self._locate_nonfinite_activation() or "loss"
        elif not math.isfinite(grad_norm):  # backward runs from the output down
            where = self._locate(self.net.grads, "gradient of", reverse=True)
        elif tel is not None and math.isfinite(sum(tel.weight_sq)) and \
                math.isfinite(sum(tel.delta_sq)):
            pass  # the updated parameters are finite
        elif not math.isfinite(float(np.vdot(self.net.params, self.net.params))):
            where = self._locate(self.net.params, "parameter")
        if where is not None and self.divergence is None:
            self.divergence = Divergence(self.step_count, where)
        return where

    def _locate_nonfinite_activation(self) -> str | None:
        for layer in self.net.hidden:
            if not np.isfinite(layer.a).all():
                return f"layer {layer.index + 1} activations"
        return None

    def _locate(self, flat: np.ndarray, what: str, reverse: bool = False) -> str:
        segments = sorted(self.net.segments, key=lambda seg: seg.layer, reverse=reverse)
        for seg in segments:
            if not np.isfinite(flat[seg.start:seg.stop]).all():
                return f"layer {seg.layer + 1} {what} {seg.name}"
        # every entry is finite but the sum of squares is not: past √(largest float); the
        # layer holding the largest entry is where it grew
        noun = "gradient" if what.startswith("gradient") else "parameter"
        seg = max(segments, key=lambda seg: float(np.abs(flat[seg.start:seg.stop]).max(
            initial=0.0)))
        return (f"{noun} norm (beyond the {flat.dtype} range; largest in layer "
                f"{seg.layer + 1} {seg.name})")

    def _early_stopping(self, val_loss: float | None) -> None:
        patience = self.config.train.early_stopping
        if val_loss is None:
            return
        if val_loss < self.best_val:
            self.best_val, self.evals_since_best = val_loss, 0
            self.best_step = self.step_count
        else:
            self.evals_since_best += 1
            if patience and self.evals_since_best >= patience and self.stopped is None:
                self.stopped = (f"early stopping at step {self.step_count}: validation loss has "
                                f"not improved for {patience} evaluations (best "
                                f"{self.best_val:.4g} at step {self.best_step})")

    def evaluate(self) -> tuple[float | None, float | None]:
        """Loss and accuracy on the validation split, in inference mode."""
        if len(self.data.val_x) == 0:
            return None, None
        logits = self.net.forward(self.data.val_x, training=False)
        loss, _, acc = self._loss(logits, self.data.val_y, want_grad=False)
        return loss, acc

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class probabilities (classification) or outputs (regression), in inference mode.
        `x` is in the preprocessed input space."""
        logits = self.net.forward(np.asarray(x, dtype=self.net.dtype), training=False)
        if self.task != "classification":
            return logits
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def decision_grid(self, nx: int, ny: int, margin: float = 0.1) -> dict[str, Any]:
        """Predicted class over the input plane (2-D datasets), for drawing the boundary.

        Returns the plane's extent in the preprocessed input space (a square around the
        data), the winning class and its probability on an ny × nx grid (row 0 at the top),
        and the points of both splits.
        """
        if self.data.input_dim != 2:
            raise ValueError("the decision boundary needs 2-D inputs")
        points = np.concatenate([self.data.train_x, self.data.val_x])
        lo, hi = points.min(axis=0), points.max(axis=0)
        # a square extent: with as many grid columns as rows, a cell is as wide as tall
        centre, half = (lo + hi) / 2, (hi - lo).max() * (0.5 + margin) + 1e-9
        lo, hi = centre - half, centre + half
        xs = np.linspace(lo[0], hi[0], nx)
        ys = np.linspace(hi[1], lo[1], ny)
        grid = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            out = self.predict(grid)
        if self.task == "classification":
            label, confidence = out.argmax(axis=1), out.max(axis=1)
        else:
            label, confidence = np.zeros(len(out), int), np.ones(len(out))
        return {
            "extent": (float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])),
            "label": label.reshape(ny, nx), "confidence": confidence.reshape(ny, nx),
            "classes": self.data.outputs if self.task == "classification" else 1,
            "train": (self.data.train_x, self.data.train_y),
            "val": (self.data.val_x, self.data.val_y),
            "step": self.step_count,
        }

    def save(self, where, history=()) -> Path:
        """Write a checkpoint (a folder gets `checkpoint.npz`); see nnsim.engine.checkpoint."""
        from nnsim.engine import checkpoint

        return checkpoint.save(self, where, history)

    @classmethod
    def load(cls, where, registry: Registry | None = None) -> Simulation:
        """The simulation saved at `where`, ready to continue exactly where it stopped."""
        from nnsim.engine import checkpoint

        return checkpoint.load(where, registry)[0]

    def steps(self, n: int, stop_on_divergence: bool = True, every: int = 1
              ) -> Iterator[StepRecord]:
        """Yield up to n records; stops early on early stopping, or on divergence if asked.
        With `every` K > 1 only the steps whose number is a multiple of K, and the n-th,
        are measured (see `step`).

        A unit is dead at a measured step exactly when it was inactive on each of the last
        w = ⌈DEAD_WINDOW / batch⌉ batches (one active batch among them leaves it at most
        (w − 1)·batch < DEAD_WINDOW examples inactive), so the steps more than w before the
        next measured one skip the dead-unit counters: the measured records are the same
        as when every step counts. The counters are then not those of every step (a
        checkpoint saved during the call keeps them so; continued with other measured steps,
        another K or another last step, `dead` can differ during its first w steps).

        Within those w steps, once a batch has every unit active, no unit can be dead at
        the measured step m (it has fewer than w batches left to stay inactive on), so the
        steps up to m skip the counters too, and m counts from zero. The counters then read
        low until each unit fires again, which no measured step can see when the next one
        comes w − 1 or more steps after m; so this is done only then, and never before this
        call's last step (the next call's measured steps are not known)."""
        last = self.step_count + n
        tel = self.telemetry
        window = tel.dead_batches if tel is not None and every > 1 else 0
        cleared = 0  # a measured step that no unit can be dead at
        try:
            for _ in range(n):
                if self.stopped is not None:
                    return
                step = self.step_count + 1
                measure = every <= 1 or step % every == 0 or step == last
                if window:  # the next measured step: a multiple of `every`, or the last
                    upcoming = min(last, -(-step // every) * every)
                    self._skip_dead = (upcoming == cleared
                                       or upcoming - step >= window)
                record = self.step(measure)
                if window and not measure and not self._skip_dead and tel is not None \
                        and tel.all_fired and upcoming < last \
                        and min(last, upcoming + every) - upcoming >= window - 1:
                    cleared = upcoming
                yield record
                if record.nonfinite is not None and stop_on_divergence:
                    return
        finally:
            self._skip_dead = False

    def run(self, n: int) -> list[StepRecord]:
        """Run up to n steps and return their records."""
        return list(self.steps(n))
