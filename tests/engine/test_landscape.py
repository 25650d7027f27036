"""Loss landscapes: exact surface gradients, any optimizer on them, the headless race."""

import numpy as np
import pytest

from nnsim.cli import main
from nnsim.landscape import SURFACES, Landscape
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


def test_momentum_beats_sgd_on_the_ill_conditioned_quadratic():
    land = Landscape("quadratic", ["sgd", "momentum"], condition=50.0)
    land.run(5000)
    sgd, momentum = land.paths
    assert momentum.converged_at is not None and sgd.converged_at is not None
    assert momentum.converged_at < 0.5 * sgd.converged_at


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
                 "momentum", "--condition", "30"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split()[:3] == ["optimizer", "steps", "to"]
    steps = {line.split()[0]: line.split()[1] for line in out[2:]}
    assert int(steps["momentum"]) < int(steps["sgd"])
    assert main(["landscape", "hill", "--headless"]) == 2
    assert "unknown surface 'hill'" in capsys.readouterr().err
    assert main(["landscape", "--headless", "--optimizer", "adamm"]) == 2
    assert "did you mean 'adam'" in capsys.readouterr().err
