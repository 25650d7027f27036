"""Two-parameter loss landscapes: analytic surfaces, and any optimizer plugin's path on them.

Every registered optimizer works here unchanged: the two coordinates are its flat parameter
vector, the surface's gradient is its gradient. Several optimizers start from the same point
and step in lockstep, so their paths can be drawn over one contour map.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from nnsim.components import Optimizer
from nnsim.config import validate_component
from nnsim.errors import ConfigError, PluginError
from nnsim.pluginmanager import Registry, default_registry


class Surface:
    """f(w) and ∂f/∂w for w = (x, y); `minima` lists where f is lowest."""

    name: ClassVar[str] = ""
    title: ClassVar[str] = ""
    extent: ClassVar[tuple[float, float, float, float]] = (-1, 1, -1, 1)  # x0, x1, y0, y1
    start: ClassVar[tuple[float, float]] = (0.0, 0.0)
    lr: ClassVar[float] = 0.01  # a learning rate that suits plain gradient descent here
    tol: ClassVar[float] = 1e-3  # converged within this distance of a minimum
    minima: ClassVar[tuple[tuple[float, float], ...]] = ()

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
    def lr(self):  # a quarter of plain gradient descent's stability limit 2/κ
        return 0.5 / self.condition

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
    streak: int = 0  # consecutive steps within tolerance

    @property
    def velocity(self) -> np.ndarray | None:
        """The first state vector (momentum's velocity, Adam's m), if it keeps one."""
        return next(iter(self.state.values()), None)


#: converged = within tolerance of a minimum and staying there this many steps
STAY = 20


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
            if "lr" not in hypers:
                hypers["lr"] = self.lr_override or self.surface.lr
            chosen = validate_component("optimizer", hypers, "optimizer", self.registry)
            opt = chosen.build(self.registry, "optimizer")
            label = chosen.name if not isinstance(spec, dict) or len(spec) == 1 else \
                chosen.name + "(" + ", ".join(f"{k}={v}" for k, v in spec.items()
                                              if k != "name") + ")"
            w = start.copy()
            self.paths.append(Path(label, opt, w, opt.init_state(w), [tuple(w)]))

    def step(self) -> None:
        self.step_count += 1
        for path in self.paths:
            if path.diverged_at is not None:
                continue
            g = self.surface.grad(path.w)
            try:
                path.optimizer.update(path.w, g, path.state, self.step_count)
            except Exception as exc:
                raise PluginError(f"optimizer {path.optimizer.name!r}: update() raised "
                                  f"{type(exc).__name__}: {exc}") from exc
            if not np.isfinite(path.w).all() or np.abs(path.w).max() > 1e6:
                path.diverged_at = self.step_count
                continue
            path.points.append((float(path.w[0]), float(path.w[1])))
            if self.surface.distance(path.w) < self.surface.tol:
                path.streak += 1
                if path.converged_at is None and path.streak == STAY:
                    path.converged_at = self.step_count - STAY + 1
            else:
                path.streak = 0

    @property
    def done(self) -> bool:
        """Every path has converged (and stayed) or diverged."""
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
        lines = [f"{self.surface.title}; start ({x0:g}, {y0:g}); converged = within "
                 f"{self.surface.tol:g} of a minimum for {STAY} steps",
                 f"{'optimizer':<{width}}{'steps to converge':>19}{'f at the end':>15}"
                 f"{'distance':>11}"]
        for p in self.paths:
            x, y = p.points[-1]
            steps = (f"diverged at {p.diverged_at}" if p.diverged_at is not None else
                     str(p.converged_at) if p.converged_at is not None else
                     f"not in {self.step_count}")
            lines.append(f"{p.label:<{width}}{steps:>19}{self.surface.value(x, y):>15.4g}"
                         f"{self.surface.distance(np.array([x, y])):>11.3g}")
        return "\n".join(lines)
