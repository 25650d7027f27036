"""Running lessons: each run of a lesson trained from the same seed, then the lesson's check;
the lesson's control through the same check; and the margins of both over many seeds."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from nnsim.components import Lesson, Verdict
from nnsim.config import Config, parse_set
from nnsim.engine.records import StepRecord
from nnsim.engine.simulation import Simulation
from nnsim.errors import PluginError, raised
from nnsim.pluginmanager import Registry, default_registry, plugin_failure


@dataclass
class RunResult:
    """One run of a lesson: its records and the Simulation as the run left it."""

    records: list[StepRecord]
    sim: Simulation

    @property
    def last(self) -> StepRecord:
        return self.records[-1]

    @property
    def diverged(self) -> bool:
        return self.sim.divergence is not None

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

    def series(self, field: str, layer: int | None = None) -> np.ndarray:
        """A record field (or a layer field, layers from 1) at every step."""
        if layer is None:
            return np.array([getattr(r, field) for r in self.records], dtype=float)
        return np.array([getattr(r.layers[layer - 1], field) for r in self.records], dtype=float)

    def full_loss(self, split: str = "train") -> float:
        """Data loss on a whole split in inference mode (inf once diverged)."""
        return self._full(split)[0]

    def error(self, split: str = "train") -> float:
        """Share of a whole split classified wrong, in inference mode (1 once diverged)."""
        return 1.0 - self._full(split)[1]

    def _full(self, split: str) -> tuple[float, float]:
        if self.diverged:
            return math.inf, 0.0
        data = self.sim.data
        x, y = (data.train_x, data.train_y) if split == "train" else (data.val_x, data.val_y)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            logits = self.sim.net.forward(x, training=False)
            loss, _, acc = self.sim._loss(logits, y, want_grad=False)
        loss = float(loss)
        return (loss if math.isfinite(loss) else math.inf), float(acc or 0.0)

    def gradient(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The gradient of the data loss on (x, y) at the current weights, in training mode,
        as one flat vector; the run's own state is left as it was. Not for dropout nets."""
        sim, net = self.sim, self.sim.net
        saved = net.grads.copy()
        buffers = {k: v.copy() for k, v in net.buffers().items()}
        logits = net.forward(x, training=True)
        _, grad_logits, _ = sim._loss(logits, y)
        net.backward(grad_logits)
        g = net.grads.copy()
        net.grads[...] = saved
        for layer in net.hidden:  # batch norm's running statistics stay untouched
            if layer.norm is not None:
                for k, v in layer.norm.buffers.items():
                    v[...] = buffers[f"layer{layer.index}.{k}"]
        return g


def run_config(lesson: Lesson, label: str, registry: Registry | None = None, *,
               seed: int | None = None, overrides: Iterable[Any] = (),
               control: bool = False) -> Config:
    """The config of one run: defaults, then the lesson's base, the run's overrides, the
    control's (with `control`), the seed, and last `overrides` (pairs or 'KEY=VALUE' text)."""
    items: list[tuple[str, Any]] = lesson.overrides(label, control)
    if seed is not None:
        items.append(("seed", seed))
    items += [parse_set(o) if isinstance(o, str) else tuple(o) for o in overrides]
    return Config.default().with_overrides(items, registry)


def run_lesson(lesson: Lesson, registry: Registry | None = None, steps: int | None = None, *,
               seed: int | None = None, overrides: Sequence[Any] = (),
               control: bool = False) -> tuple[dict[str, RunResult], Verdict]:
    """Train every run of the lesson (or of its control), then check the claim."""
    registry = registry or default_registry()
    results = {}
    for label in lesson.runs:
        config = run_config(lesson, label, registry, seed=seed, overrides=overrides,
                            control=control)
        sim = Simulation(config, registry)
        records = sim.run(lesson.steps if steps is None else steps)
        results[label] = RunResult(records, sim)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        try:
            return results, lesson.check(results)
        except BaseException as exc:  # the lesson's own failure: one line naming it
            if not plugin_failure(exc):
                raise
            table = registry.families.get("lesson", {})
            source = table[lesson.name].source if lesson.name in table else None
            raise PluginError.at(lesson, "check", raised(exc),
                                 source) from exc


# ---------------------------------------------------------------- many seeds

#: the most seeds one check takes (each seed runs every lesson and its control)
MAX_SEEDS = 10_000


def parse_seeds(text: str) -> list[int]:
    """'0-9' or '0,3,5' or '2' → the seeds (ValueError on anything else)."""
    seeds: list[int] = []
    shown = text if len(text) <= 60 else text[:57] + "..."
    for part in text.split(","):
        part = part.strip()
        lo, dash, hi = part.partition("-")
        if not (lo.isdigit() and (not dash or hi.isdigit())):
            raise ValueError(f"expected seeds as N, A-B or a list of them (e.g. 0-9 or "
                             f"0,3,5), got {shown!r}")
        a, b = int(lo), int(hi) if dash else int(lo)
        if b < a:
            raise ValueError(f"empty range {part!r}")
        if len(seeds) + b - a + 1 > MAX_SEEDS:
            raise ValueError(f"at most {MAX_SEEDS:,} seeds, got more in {shown!r}")
        seeds += range(a, b + 1)
    return seeds


@dataclass
class Margins:
    """One lesson (or its control) over several seeds: the verdict at each."""

    name: str
    control: bool
    verdicts: dict[int, Verdict]

    @property
    def margins(self) -> list[float]:
        return [v.margin for v in self.verdicts.values()]

    @property
    def passes(self) -> int:
        return sum(v.passed for v in self.verdicts.values())


def lesson_class(registry: Registry, name: str) -> type[Lesson]:
    """The lesson registered as `name`."""
    cls = registry.get("lesson", name)
    assert issubclass(cls, Lesson)  # the registry takes only Lesson subclasses as lessons
    return cls


def verify_one(name: str, seeds: Sequence[int], control: bool,
               registry: Registry | None = None) -> Margins:
    """Run one lesson (or its control) at every seed."""
    registry = registry or default_registry()
    lesson = lesson_class(registry, name)()
    return Margins(name, control, {s: run_lesson(lesson, registry, seed=s, control=control)[1]
                                   for s in seeds})


def _verify_job(args: tuple[str, tuple[int, ...], bool]) -> Margins:
    return verify_one(*args)


def verify(names: Sequence[str], seeds: Sequence[int], jobs: int = 1,
           progress=None) -> list[tuple[Margins, Margins]]:
    """Every named lesson and its control at every seed: [(lesson, control)], in order.
    `jobs` > 1 runs them in worker processes (built-in and installed lessons only)."""
    work = [(n, tuple(seeds), c) for n in names for c in (False, True)]
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        from nnsim.sweep import init_worker  # Ctrl-C and SIGTERM are the parent's

        pool = ProcessPoolExecutor(min(jobs, len(work)), initializer=init_worker)
        done = []
        # submitted one by one: a stopped map would cancel its futures (see below)
        futures = [pool.submit(_verify_job, job) for job in work]
        try:
            for future in futures:
                m = future.result()
                done.append(m)
                if progress:
                    progress(m)
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM in the parent: end the workers too
            # (no future cancelled first: Python 3.11's pool would then fail to mark them
            # broken, with a traceback from its manager thread)
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.terminate()
            pool.shutdown(wait=False)
            raise
        pool.shutdown()
    else:
        done = []
        for job in work:
            done.append(_verify_job(job))
            if progress:
                progress(done[-1])
    return [(done[i], done[i + 1]) for i in range(0, len(done), 2)]


def format_margin(x: float) -> str:
    return f"{x:+.2f}" if math.isfinite(x) else ("+inf" if x > 0 else "-inf")


def margin_table(rows: Sequence[tuple[Margins, Margins]], registry: Registry | None = None
                 ) -> str:
    """Lesson, its claim, the lesson's smallest margin over the seeds, the control's largest
    (a good lesson: the first > 0, the second < 0) and the condition that set each."""
    registry = registry or default_registry()
    lines = []
    head = ("lesson", "claim", "pass", "min margin", "control fails", "control max",
            "tightest condition")
    table: list[tuple[str, ...]] = []
    for lesson, control in rows:
        cls = lesson_class(registry, lesson.name)
        lo_seed = min(lesson.verdicts, key=lambda s: lesson.verdicts[s].margin)
        weakest = lesson.verdicts[lo_seed].weakest
        n = len(lesson.verdicts)
        table.append((lesson.name, cls.title, f"{lesson.passes}/{n}",
                      format_margin(min(lesson.margins)),
                      f"{n - control.passes}/{len(control.verdicts)}",
                      format_margin(max(control.margins)),
                      weakest.name if weakest else ""))
    table = [tuple(str(c).replace("|", "¦") for c in row) for row in table]  # cells never split
    widths = [max(len(str(r[i])) for r in [head, *table]) for i in range(len(head))]
    lines.append(" | ".join(h.ljust(w) for h, w in zip(head, widths)))
    lines.append("-|-".join("-" * w for w in widths))
    for row in table:
        lines.append(" | ".join(c.ljust(w) for c, w in zip(row, widths)))
    return "\n".join(lines)
