"""`Lockstep`: several runs stepped together on one training thread, for side-by-side views.

It is a Runner (same play, pause, step, speed and reset controls) whose every step steps each
run once. A run that diverges or stops early waits while the others go on.
"""

from __future__ import annotations

from collections.abc import Sequence

from nnsim.config import Config
from nnsim.engine.history import History
from nnsim.engine.runner import Runner
from nnsim.engine.simulation import Simulation
from nnsim.errors import NnsimError
from nnsim.pluginmanager import Registry


class Lockstep(Runner):
    def __init__(self, runs: Sequence[tuple[str, Config]], registry: Registry | None = None,
                 paused: bool = False, capacity: int = 4096, speed: int = 3) -> None:
        super().__init__(runs[0][1], registry, paused=paused, capacity=capacity, speed=speed)
        self.labels = [label for label, _ in runs]
        self.sims = {self.labels[0]: self.sim}
        self.sims.update({label: Simulation(config, self.sim.registry)
                          for label, config in runs[1:]})
        self.histories = {label: History(capacity) for label in self.labels}
        self.history = self.histories[self.labels[0]]
        self.start = 0  # the step the runs set out from (`of`: the step they were at)

    @classmethod
    def of(cls, runs: Sequence[tuple[str, Simulation]], paused: bool = True,
           speed: int = 3) -> Lockstep:
        """Lockstep over existing simulations (e.g. a run and its branch, both at step k)."""
        self = cls.__new__(cls)
        Runner.__init__(self, runs[0][1].config, runs[0][1].registry, paused=paused,
                        speed=speed, sim=runs[0][1], snapshot_budget=0)
        self.labels = [label for label, _ in runs]
        self.sims = dict(runs)
        self.histories = {label: History() for label in self.labels}
        self.history = self.histories[self.labels[0]]
        self.start = runs[0][1].step_count
        return self

    def halted(self, label: str) -> bool:
        sim = self.sims[label]
        return sim.divergence is not None or sim.stopped is not None

    def _advance(self, n: int) -> bool:
        for _ in range(n):
            if self.message or all(self.halted(label) for label in self.labels):
                return False
            for label in self.labels:
                if self.halted(label):
                    continue
                try:
                    record = self.sims[label].step()
                except NnsimError as exc:
                    self._halt(f"{label}: {exc}")
                    return False
                self.histories[label].append(record)
            self._count(record)  # (the newest run's: the first may have stopped)
            self.version += 1
        return True

    @property
    def step_count(self) -> int:
        """The step of the runs that go furthest (a diverged run stops where it was)."""
        return max(sim.step_count for sim in self.sims.values())

    @property
    def state(self) -> str:
        if self.message:
            return "halted"
        if all(self.halted(label) for label in self.labels):
            return "finished"
        return "paused" if self.paused else "running"

    def reset(self, seed: int | None = None) -> None:
        def rebuild():
            for sim in self.sims.values():
                sim.reset(seed)
            for history in self.histories.values():
                history.clear()
            self._after_rebuild()
            self._changed()
        self.submit(rebuild)
