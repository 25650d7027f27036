"""A learnable parameter's declared range bounds its starting value only."""

from pathlib import Path

from nnsim.config import load
from nnsim.engine import Simulation

GUIDE = (Path(__file__).parents[2] / "docs" / "plugins.md").read_text()


def test_training_takes_a_learnable_parameter_outside_its_declared_range():
    sim = Simulation(load(sets=["model.activation=prelu", "optimizer.name=sgd",
                                "optimizer.lr=0.5", "model.hidden=[8]"]))
    hyper = sim.net.hidden[0].activation.hyperparameters["slope"]
    assert (hyper.low, hyper.high) == (-1.0, 1.0)
    sim.run(300)
    slope = sim.net.hidden[0].activation.params["slope"]
    assert slope.min() < hyper.low  # nothing clips it
    assert "hyperparameter the declared range limits only its starting value" in GUIDE
