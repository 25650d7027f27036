"""Helpers shared by the tests: small configs and central differences in float64."""

import time

import numpy as np

from nnsim.config import Config
from nnsim.testing import numeric_grad  # noqa: F401  (the tests' central differences)


def small_config(*overrides: tuple[str, object]) -> Config:
    """A small, fast experiment (two hidden layers of 8, float64) with dotted overrides."""
    base = Config.from_dict({
        "seed": 3,
        "data": {"name": "spiral", "samples": 240},
        "model": {"hidden": [8, 8], "dtype": "float64"},
        "train": {"batch_size": 16, "eval_every": 10},
    })
    return base.with_overrides(list(overrides))


def assert_close(analytic, numeric, rtol=1e-5, atol=1e-8):
    analytic, numeric = np.asarray(analytic, float), np.asarray(numeric, float)
    err = np.abs(analytic - numeric)
    bound = atol + rtol * np.maximum(np.abs(analytic), np.abs(numeric))
    worst = int(np.argmax(err - bound))
    assert (err <= bound).all(), (
        f"gradient mismatch at flat index {worst}: analytic {analytic.flat[worst]!r} "
        f"vs numeric {numeric.flat[worst]!r}")


async def until(pilot, condition, timeout: float = 10.0) -> None:
    """Let a Textual app (and its training thread) run until `condition()` holds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting for the app"
        await pilot.pause(0.02)


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run `nnsim ARGS` in this process: (exit code, stdout, stderr)."""
    from nnsim.cli import main

    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err
