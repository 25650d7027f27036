"""Two-parameter loss landscapes: analytic surfaces, and any optimizer plugin's path on them.

Every registered optimizer works here unchanged: the two coordinates are its flat parameter
vector, the surface's gradient is its gradient. Several optimizers start from the same point
and step in lockstep, so their paths can be drawn over one contour map.

A fair race: an optimizer given no learning rate (and no shared `lr`) gets its own best one
on the surface, from a short search over a log grid (`LR_GRID`, 0.001 to 3, four points a
decade; at most `TUNE_STEPS` steps each): the fewest steps to converge (the noisy quadratic:
the smallest mean distance to the minimum over the second half of the steps), ties to the
larger lr; its other hyperparameters keep their defaults (momentum's β = 0.9). The saddle
also reports the step each path escapes it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from nnsim.components import Optimizer
from nnsim.config import validate_component
from nnsim.errors import ConfigError
from nnsim.pluginmanager import Registry, call_plugin, default_registry


class Surface:
    """f(w) and ∂f/∂w for w = (x, y); `minima` lists where f is lowest."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    extent: ClassVar[tuple[float, float, float, float]] = (-1, 1, -1, 1)  # x0, x1, y0, y1
    start: ClassVar[tuple[float, float]] = (0.0, 0.0)
    lr: ClassVar[float] = 0.01  # a learning rate that suits plain gradient descent here
    tol: ClassVar[float] = 1e-3  # converged within this distance of a minimum
    minima: ClassVar[tuple[tuple[float, float], ...]] = ()
    #: what the race measures: "converge" (steps to converge), "escape" (steps to leave the
    #: saddle), "stationary" (mean distance to the minimum once the noise dominates)
    measure: ClassVar[str] = "converge"

    def __init__(self, rng: np.random.Generator | None = None, **params: float) -> None:
        self.rng = rng or np.random.default_rng(0)
        for key, value in params.items():
            setattr(self, key, value)

    def value(self, x, y):
        raise NotImplementedError

    def grad(self, w: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def distance(self, w: np.ndarray) -> float:
        return min(math.dist(w, m) for m in self.minima)


class Quadratic(Surface):
    name = "quadratic"
    title = "ill-conditioned quadratic ½(x² + κy²)"
    extent = (-4.5, 4.5, -2.5, 2.5)
    start = (-4.0, 1.5)
    minima = ((0.0, 0.0),)
    condition = 20.0

    @property
    def lr(self):  # gradient descent's optimal step 2/(1 + κ)
        return 2.0 / (1.0 + self.condition)

    def value(self, x, y):
        return 0.5 * (x * x + self.condition * y * y)

    def grad(self, w):
        return np.array([w[0], self.condition * w[1]])


class Rosenbrock(Surface):
    name = "rosenbrock"
    title = "Rosenbrock's valley (1−x)² + 100(y−x²)²"
    extent = (-2.0, 2.0, -1.0, 3.0)
    start = (-1.2, 1.0)
    lr = 0.001
    tol = 1e-2
    minima = ((1.0, 1.0),)

    def value(self, x, y):
        return (1 - x) ** 2 + 100 * (y - x * x) ** 2

    def grad(self, w):
        x, y = w
        return np.array([-2 * (1 - x) - 400 * x * (y - x * x), 200 * (y - x * x)])


class Saddle(Surface):
    name = "saddle"
    title = "a saddle x² − y² + y⁴/4, minima at y = ±√2"
    extent = (-2.5, 2.5, -2.5, 2.5)
    start = (2.0, 1e-3)
    lr = 0.05
    tol = 1e-2
    minima = ((0.0, math.sqrt(2.0)), (0.0, -math.sqrt(2.0)))
    measure = "escape"
    #: escaped = |y| beyond this: halfway from the saddle (y = 0) to a minimum (|y| = √2)
    escape = math.sqrt(2.0) / 2

    def value(self, x, y):
        return x * x - y * y + y ** 4 / 4

    def grad(self, w):
        x, y = w
        return np.array([2 * x, -2 * y + y ** 3])


class NoisyQuadratic(Quadratic):
    name = "noisy_quadratic"
    title = "quadratic ½(x² + κy²) with noisy gradients (minibatch-like)"
    condition = 5.0
    noise = 1.0
    tol = 0.5  # the noise keeps a constant step hovering: converged = inside the noise ball
    measure = "stationary"

    def grad(self, w):
        return super().grad(w) + self.rng.normal(0.0, self.noise, 2)


SURFACES: dict[str, type[Surface]] = {cls.name: cls for cls in
                                      (Quadratic, Rosenbrock, Saddle, NoisyQuadratic)}


@dataclass
class Path:
    """One optimizer on the surface."""

    label: str
    optimizer: Optimizer
    w: np.ndarray
    state: dict[str, np.ndarray]
    points: list[tuple[float, float]] = field(default_factory=list)
    converged_at: int | None = None
    diverged_at: int | None = None
    escaped_at: int | None = None  # the saddle: first step beyond Saddle.escape
    streak: int = 0  # consecutive steps within tolerance
    distances: list[float] = field(default_factory=list)  # to the nearest minimum, per step
    lr: float = math.nan
    tuned: bool = False  # the lr came from the search

    def stationary_distance(self) -> float:
        """Mean distance to the minimum over the second half of the steps taken."""
        d = self.distances[len(self.distances) // 2:]
        return sum(d) / len(d) if d else math.nan

    @property
    def velocity(self) -> np.ndarray | None:
        """The first state vector (momentum's velocity, Adam's m), if it keeps one."""
        return next(iter(self.state.values()), None)


#: converged = within tolerance of a minimum and staying there this many steps
STAY = 20
#: the fair-lr search: learning rates tried, and steps at most for each
LR_GRID = tuple(round(10 ** (k / 4), 6) for k in range(-12, 3))
TUNE_STEPS = 1000
_TUNED: dict[tuple, float] = {}


def _score(path: Path, measure: str, steps: int) -> tuple[float, float]:
    """Lower is better: (main number, tie-break)."""
    if path.diverged_at is not None:
        return (math.inf, math.inf)
    if measure == "stationary":
        return (path.stationary_distance(), 0.0)
    return (path.converged_at or math.inf, path.distances[-1])


def tuned_lr(surface: str, spec: dict[str, Any], params: dict[str, float], seed: int = 0,
             registry: Registry | None = None, steps: int = TUNE_STEPS) -> float:
    """The optimizer's best learning rate on the surface from `LR_GRID` (see the module)."""
    key = (surface, repr(sorted(spec.items())), repr(sorted(params.items())), seed, steps)
    if key not in _TUNED:
        best, best_score = LR_GRID[0], (math.inf, math.inf)
        for lr in LR_GRID:
            land = Landscape(surface, [{**spec, "lr": lr}], start=None, seed=seed,
                             registry=registry, **params)
            land.run(steps)
            score = _score(land.paths[0], land.surface.measure, steps)
            if score <= best_score:
                best, best_score = lr, score
        _TUNED[key] = best
    return _TUNED[key]


class Landscape:
    """Optimizers stepping in lockstep on a surface from one start."""

    def __init__(self, surface: str, optimizers: list[Any], lr: float | None = None,
                 start: tuple[float, float] | None = None, seed: int = 0,
                 registry: Registry | None = None, **params: float) -> None:
        if surface not in SURFACES:
            from nnsim.errors import did_you_mean

            raise ConfigError("surface", f"unknown surface {surface!r}"
                                         f"{did_you_mean(surface, SURFACES)}; choose from "
                                         f"{', '.join(SURFACES)}")
        self.registry = registry or default_registry()
        self.surface_name, self.specs, self.lr_override = surface, optimizers, lr
        self.start_override, self.seed, self.params = start, seed, params
        self.reset()

    def reset(self) -> None:
        self.surface = SURFACES[self.surface_name](np.random.default_rng(self.seed),
                                                   **self.params)
        start = np.array(self.start_override or self.surface.start, dtype=np.float64)
        self.step_count = 0
        self.paths: list[Path] = []
        for spec in self.specs:
            hypers = dict(spec) if isinstance(spec, dict) else {"name": spec}
            tuned = False
            if "lr" not in hypers:
                if self.lr_override:
                    hypers["lr"] = self.lr_override
                else:
                    validate_component("optimizer", hypers, "optimizer", self.registry)
                    hypers["lr"] = tuned_lr(self.surface_name, hypers, self.params, self.seed,
                                            self.registry)
                    tuned = True
            chosen = validate_component("optimizer", hypers, "optimizer", self.registry)
            opt = chosen.build(self.registry, "optimizer")
            label = chosen.name if not isinstance(spec, dict) or len(spec) == 1 else \
                chosen.name + "(" + ", ".join(f"{k}={v}" for k, v in spec.items()
                                              if k != "name") + ")"
            w = start.copy()
            self.paths.append(Path(label, opt, w, opt.init_state(w), [tuple(w)],
                                   lr=float(hypers["lr"]), tuned=tuned))

    def step(self) -> None:
        self.step_count += 1
        for path in self.paths:
            if path.diverged_at is not None:
                continue
            g = self.surface.grad(path.w)
            call_plugin(path.optimizer, "update", path.w, g, path.state, self.step_count)
            if not np.isfinite(path.w).all() or np.abs(path.w).max() > 1e6:
                path.diverged_at = self.step_count
                continue
            path.points.append((float(path.w[0]), float(path.w[1])))
            distance = self.surface.distance(path.w)
            path.distances.append(distance)
            escape = getattr(self.surface, "escape", None)
            if escape is not None and path.escaped_at is None and abs(path.w[1]) > escape:
                path.escaped_at = self.step_count
            if distance < self.surface.tol:
                path.streak += 1
                if path.converged_at is None and path.streak == STAY:
                    path.converged_at = self.step_count - STAY + 1
            else:  # left the tolerance: whatever convergence was claimed no longer holds
                path.streak = 0
                path.converged_at = None

    @property
    def done(self) -> bool:
        """Every path has converged (and stayed) or diverged; on the noisy quadratic, never
        (the stationary phase is what it measures)."""
        if self.surface.measure == "stationary":
            return False
        return all((p.converged_at is not None and p.streak >= STAY) or
                   p.diverged_at is not None for p in self.paths)

    def run(self, steps: int) -> None:
        """Step until done, at most `steps` times."""
        for _ in range(steps):
            self.step()
            if self.done:
                return

    def report(self) -> str:
        width = max(len(p.label) for p in self.paths) + 2
        x0, y0 = self.paths[0].points[0]
        s = self.surface
        lines = [f"{s.title}; start ({x0:g}, {y0:g}); converged = within {s.tol:g} of a "
                 f"minimum for {STAY} steps; lr* = each optimizer's own best lr (log grid)"]
        extra = {"escape": f"{'escaped at':>12}", "stationary": f"{'mean dist (2nd half)':>22}"
                 }.get(s.measure, "")
        lines.append(f"{'optimizer':<{width}}{'lr':>10}{'steps to converge':>19}"
                     f"{'f at the end':>15}{'distance':>11}{extra}")
        for p in self.paths:
            x, y = p.points[-1]
            steps = (f"diverged at {p.diverged_at}" if p.diverged_at is not None else
                     str(p.converged_at) if p.converged_at is not None else
                     f"not in {self.step_count}")
            lr = f"{p.lr:g}" + ("*" if p.tuned else "")
            line = (f"{p.label:<{width}}{lr:>10}{steps:>19}{s.value(x, y):>15.4g}"
                    f"{s.distance(np.array([x, y])):>11.3g}")
            if s.measure == "escape":
                line += f"{p.escaped_at if p.escaped_at is not None else '-':>12}"
            elif s.measure == "stationary":
                line += f"{p.stationary_distance():>22.3g}"
            lines.append(line)
        return "\n".join(lines)
