"""Loss landscapes: exact surface gradients, any optimizer on them, the headless race."""

import math

import numpy as np
import pytest

from nnsim.cli import main
from nnsim.landscape import LR_GRID, SURFACES, Landscape
from nnsim.pluginmanager import default_registry
from tests.helpers import assert_close, numeric_grad


@pytest.mark.parametrize("name", list(SURFACES))
def test_surface_gradient_matches_central_differences(name):
    surface = SURFACES[name](noise=0.0) if name == "noisy_quadratic" else SURFACES[name]()
    for point in ([0.3, -0.7], [-1.1, 0.4], [1.5, 1.2]):
        w = np.array(point)
        assert_close(surface.grad(w), numeric_grad(lambda: float(surface.value(*w)), w))
    for m in surface.minima:
        assert np.allclose(surface.grad(np.array(m)), 0.0)


def test_gradient_descent_contracts_by_the_theoretical_rate():
    # at its optimal lr 2/(1+κ), GD multiplies both coordinates of ½(x² + κy²) by ±(κ−1)/(κ+1)
    for kappa in (5.0, 20.0, 100.0):
        land = Landscape("quadratic", [{"name": "sgd", "lr": 2 / (1 + kappa)}],
                         condition=kappa)
        for _ in range(30):
            land.step()
        d = land.paths[0].distances
        rates = [b / a for a, b in zip(d, d[1:])]
        assert np.allclose(rates, (kappa - 1) / (kappa + 1), rtol=1e-9)


def test_heavy_ball_contracts_by_the_square_root_rate():
    # momentum (v ← βv + g, w ← w − αv) is Polyak's heavy ball; at α = 4/(√κ+1)² and
    # β = ((√κ−1)/(√κ+1))² its error falls by (√κ−1)/(√κ+1) per step (times a factor
    # polynomial in t: the iteration is defective there), against GD's (κ−1)/(κ+1)
    kappa = 100.0
    root = math.sqrt(kappa)
    rate = (root - 1) / (root + 1)
    land = Landscape("quadratic", [{"name": "momentum", "lr": 4 / (root + 1) ** 2,
                                    "beta": rate ** 2}], condition=kappa)
    for _ in range(300):
        land.step()  # past convergence: the rate is what is measured
    d = land.paths[0].distances
    measured = (d[299] / d[199]) ** (1 / 100)
    assert measured == pytest.approx(rate, rel=0.01)
    assert measured < (kappa - 1) / (kappa + 1) - 0.1


def test_fair_default_gives_each_optimizer_its_own_best_lr():
    kappa = 20.0
    land = Landscape("quadratic", ["sgd", "momentum"], condition=kappa)
    sgd, momentum = land.paths
    assert sgd.tuned and momentum.tuned
    assert sgd.lr < 2 / kappa  # stable in the steep direction
    assert sgd.lr in LR_GRID and momentum.lr in LR_GRID
    land.run(5000)
    old = Landscape("quadratic", [{"name": "sgd", "lr": 0.5 / kappa}], condition=kappa)
    old.run(5000)  # a quarter of the stability limit, the old shared default
    assert sgd.converged_at < old.paths[0].converged_at
    for lr in LR_GRID:  # no lr of the grid converges in fewer steps
        other = Landscape("quadratic", [{"name": "sgd", "lr": lr}], condition=kappa)
        other.run(sgd.converged_at - 1)
        assert other.paths[0].converged_at is None or lr == sgd.lr
    assert "lr" in land.report().splitlines()[1] and "*" in land.report()


def test_convergence_is_withdrawn_when_a_path_leaves_the_tolerance():
    land = Landscape("noisy_quadratic", [{"name": "sgd", "lr": 0.1}], noise=1.0)
    path = land.paths[0]
    claimed = withdrawn = 0
    for _ in range(3000):
        before = path.converged_at
        land.step()
        if path.distances[-1] >= land.surface.tol:
            assert path.converged_at is None
        claimed += before is None and path.converged_at is not None
        withdrawn += before is not None and path.converged_at is None
    assert claimed and withdrawn


def test_saddle_reports_escape_and_noise_reports_the_stationary_distance():
    land = Landscape("saddle", [{"name": "sgd", "lr": 0.05}, {"name": "momentum", "lr": 0.05}])
    land.run(3000)
    sgd, momentum = land.paths
    assert sgd.escaped_at is not None and momentum.escaped_at is not None
    assert momentum.escaped_at < sgd.escaped_at  # velocity builds along the way down
    assert abs(sgd.points[sgd.escaped_at][1]) > land.surface.escape
    assert abs(sgd.points[sgd.escaped_at - 1][1]) <= land.surface.escape
    assert "escaped at" in land.report()

    small, large = (Landscape("noisy_quadratic", [{"name": "sgd", "lr": lr}], seed=1)
                    for lr in (0.02, 0.2))
    for land in (small, large):
        land.run(4000)
    assert not small.done  # the stationary phase is what it measures
    # a constant step hovers in a noise ball whose size grows with the step
    assert small.paths[0].stationary_distance() < 0.5 * large.paths[0].stationary_distance()
    assert "mean dist" in small.report()


def test_every_registered_optimizer_runs_on_every_surface():
    names = default_registry().names("optimizer")
    for surface in SURFACES:
        land = Landscape(surface, names)
        land.run(50)
        assert [p.label for p in land.paths] == names
        assert all(len(p.points) >= 2 or p.diverged_at for p in land.paths)


def test_divergence_is_reported_not_raised():
    land = Landscape("quadratic", [{"name": "sgd", "lr": 1.0}], condition=20.0)  # lr > 2/κ
    land.run(200)
    assert land.paths[0].diverged_at is not None
    assert "diverged at" in land.report()


def test_landscape_command(capsys):
    assert main(["landscape", "quadratic", "--headless", "--optimizer", "sgd", "--optimizer",
                 "momentum", "--condition", "30", "--lr", "0.01"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:4] == ["optimizer", "lr", "steps", "to"]
    steps = {line.split()[0]: line.split()[2] for line in out[2:]}
    assert int(steps["momentum"]) < int(steps["sgd"])
    assert main(["landscape", "hill", "--headless"]) == 2
    assert "unknown surface 'hill'" in capsys.readouterr().err
    assert main(["landscape", "--headless", "--optimizer", "adamm"]) == 2
    assert "did you mean 'adam'" in capsys.readouterr().err
