"""Running lessons: each run of a lesson trained from the same seed, then the lesson's check."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nnsim.components import Lesson, Verdict
from nnsim.config import Config
from nnsim.engine.records import StepRecord
from nnsim.engine.simulation import Simulation
from nnsim.pluginmanager import Registry, default_registry


@dataclass
class RunResult:
    """One run of a lesson: its records and the Simulation as the run left it."""

    records: list[StepRecord]
    sim: Simulation

    @property
    def last(self) -> StepRecord:
        return self.records[-1]

    def evals(self, last: int = 10) -> list[StepRecord]:
        """The newest `last` records that carry a validation result."""
        return [r for r in self.records if r.val_loss is not None][-last:]

    def mean(self, field: str, last: int = 20, layer: int | None = None) -> float:
        """Mean of a record field (or a layer field, layers from 1) over the last steps."""
        values = []
        for r in self.records[-last:]:
            value = getattr(r, field) if layer is None else getattr(r.layers[layer - 1], field)
            if value is not None:
                values.append(value)
        return sum(values) / len(values) if values else float("nan")


def run_config(lesson: Lesson, label: str, registry: Registry | None = None) -> Config:
    """The config of one run: defaults, then the lesson's base, then the run's overrides."""
    overrides: list[tuple[str, Any]] = [*lesson.base.items(), *lesson.runs[label].items()]
    return Config.default().with_overrides(overrides, registry)


def run_lesson(lesson: Lesson, registry: Registry | None = None,
               steps: int | None = None) -> tuple[dict[str, RunResult], Verdict]:
    """Train every run of the lesson, then check the claim."""
    registry = registry or default_registry()
    results = {}
    for label in lesson.runs:
        sim = Simulation(run_config(lesson, label, registry), registry)
        records = sim.run(lesson.steps if steps is None else steps)
        results[label] = RunResult(records, sim)
    return results, lesson.check(results)
