"""Rewind and branch: in-memory snapshots of a run, kept at intervals in a bounded store.

A `Snapshot` holds everything the next step depends on: the weights, normalizer buffers,
optimizer state, the state of every random stream, the data order and position, the
counters (early stopping, divergence) and the dead-unit window. Restoring one and stepping
on gives, bit for bit, the records the run gave the first time. A branch is a copy of the
run restored at a snapshot, with a setting changed from there on (`branch`).

`SnapshotStore` keeps one every `interval` steps within a memory budget: when a new one
would pass the budget, every other kept snapshot is dropped (oldest first in spacing) and
the interval doubles, so the whole run stays covered, more coarsely the longer it gets.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nnsim.config import Config
from nnsim.engine.records import StepRecord
from nnsim.errors import ConfigError


@dataclass(frozen=True)
class Snapshot:
    step: int
    params: np.ndarray
    buffers: dict[str, np.ndarray]
    opt_state: dict[str, np.ndarray]
    data: tuple[np.ndarray, int, int, float]  # order, position, examples seen, epoch base
    rngs: dict[str, Any]
    counters: dict[str, Any]
    inactive_run: np.ndarray | None
    primed: bool
    last: StepRecord | None
    config: Config
    nbytes: int = 0


def take(sim) -> Snapshot:
    """Everything `sim` needs to take its next step exactly as it will now."""
    tel = sim.telemetry
    buffers = {k: v.copy() for k, v in sim.net.buffers().items()}
    state = {k: v.copy() for k, v in sim.opt_state.items()}
    data = sim.data
    order = data._order.copy()
    inactive = tel.inactive_run.copy() if tel is not None else None
    arrays = [sim.net.params, order, *buffers.values(), *state.values()]
    if inactive is not None:
        arrays.append(inactive)
    counters = {"step": sim.step_count, "best_val": sim.best_val,
                "evals_since_best": sim.evals_since_best,
                "best_step": getattr(sim, "best_step", 0), "stopped": sim.stopped,
                "divergence": sim.divergence}
    return Snapshot(sim.step_count, sim.net.params.copy(), buffers, state,
                    (order, data._pos, data.examples_seen, 0.0),
                    # (the getter builds a new dict each time: nothing shared to copy)
                    {name: rng.bit_generator.state for name, rng in sim.rngs.items()},
                    counters, inactive, bool(tel is not None and tel.primed), sim.last,
                    sim.config, sum(a.nbytes for a in arrays))


def restore(sim, snap: Snapshot, optimizer_state: bool = True) -> None:
    """Put `sim` back where it was when `snap` was taken. The network's layout must be the
    snapshot's (same parameter count and buffers); with `optimizer_state=False` the
    optimizer keeps its own (fresh) state, for a branch that changes the optimizer."""
    if sim.net.params.shape != snap.params.shape:
        raise ConfigError("model", "a branch keeps the network's layout: this change gives "
                                   f"{sim.net.params.size:,} parameters instead of "
                                   f"{snap.params.size:,}")
    np.copyto(sim.net.params, snap.params)
    buffers = sim.net.buffers()
    for key, value in snap.buffers.items():
        if key in buffers and buffers[key].shape == value.shape:
            np.copyto(buffers[key], value)
    if optimizer_state:
        for key, value in snap.opt_state.items():
            np.copyto(sim.opt_state[key], value)
    order, pos, seen, _ = snap.data
    sim.data._order = order.copy()
    sim.data._pos, sim.data.examples_seen = pos, seen
    for name, rng in sim.rngs.items():
        rng.bit_generator.state = copy.deepcopy(snap.rngs[name])
    tel = sim.telemetry
    if tel is not None and snap.inactive_run is not None:
        np.copyto(tel.inactive_run, snap.inactive_run)
        tel.primed = snap.primed
    c = snap.counters
    sim.step_count = c["step"]
    sim.best_val, sim.evals_since_best = c["best_val"], c["evals_since_best"]
    sim.best_step, sim.stopped, sim.divergence = c["best_step"], c["stopped"], c["divergence"]
    sim.last = snap.last


def branch(snap: Snapshot, config: Config, registry=None):
    """A new Simulation at `snap` with `config`'s settings from there on: the weights, data
    order, random streams and counters of the snapshot; the optimizer's state too when the
    optimizer is the same one (its hyperparameters may differ)."""
    from nnsim.engine.simulation import Simulation

    sim = Simulation(config, registry)
    same_optimizer = config.optimizer.name == snap.config.optimizer.name and \
        set(sim.opt_state) == set(snap.opt_state)
    restore(sim, snap, optimizer_state=same_optimizer)
    return sim


@dataclass
class SnapshotStore:
    """Snapshots every `interval` steps (doubling when the budget is reached), newest kept
    always; thread-safe."""

    budget: int = 64 * 2**20  # bytes
    interval: int = 10
    snapshots: dict[int, Snapshot] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    #: (the kept dict, its length, their bytes): see `_total`
    _sum: tuple[dict, int, int] | None = field(default=None, repr=False)

    def clear(self) -> None:
        with self._lock:
            self.snapshots.clear()

    @property
    def nbytes(self) -> int:
        with self._lock:
            return self._total()

    def steps(self) -> list[int]:
        with self._lock:
            return sorted(self.snapshots)

    def get(self, step: int) -> Snapshot:
        with self._lock:
            return self.snapshots[step]

    def due(self, step: int) -> bool:
        return step % self.interval == 0

    def keep(self, sim) -> None:
        """Snapshot `sim` if its step is due (step 0 always)."""
        step = sim.step_count
        if step and not self.due(step):
            return
        snap = take(sim)
        with self._lock:
            if snap.nbytes > self.budget:
                return  # not even one fits: keep none rather than break the budget
            total, old = self._total(), self.snapshots.get(step)
            self.snapshots[step] = snap
            self._sum = (self.snapshots, len(self.snapshots),
                         total + snap.nbytes - (old.nbytes if old is not None else 0))
            self._thin(step)

    def _thin(self, newest: int) -> None:
        """Within the budget: double the spacing, keeping `newest` (the lock held)."""
        while len(self.snapshots) > 1 and self._total() > self.budget:
            self.interval *= 2
            self.snapshots = {s: v for s, v in self.snapshots.items()
                              if s % self.interval == 0 or s == newest}

    def _total(self) -> int:
        """The bytes of the kept snapshots: summed again only when the kept set is another
        (`keep` adds each new one to the sum), not on every step of a long run."""
        total = self._sum
        if total is None or total[0] is not self.snapshots or total[1] != len(self.snapshots):
            total = (self.snapshots, len(self.snapshots),
                     sum(s.nbytes for s in self.snapshots.values()))
            self._sum = total
        return total[2]

    def adopt(self, snapshots: dict[int, Snapshot]) -> None:
        """Keep `snapshots` too (those of an earlier part of the run, read back from its
        checkpoint), within the budget: the spacing doubles as `keep` does it."""
        with self._lock:
            self.snapshots = dict(sorted({**snapshots, **self.snapshots}.items()))
            self._thin(max(self.snapshots, default=0))

    def truncate(self, step: int) -> None:
        """Forget the snapshots after `step` (a rewind makes them another future)."""
        with self._lock:
            self.snapshots = {s: v for s, v in self.snapshots.items() if s <= step}
