"""The NumPy engine: networks, data pipeline, simulation and its records. Never imports a UI."""

from nnsim.engine.records import LayerRecord, StepRecord
from nnsim.engine.simulation import Simulation

__all__ = ["LayerRecord", "Simulation", "StepRecord"]
