"""Snapshots of each panel at a fixed seed and step count (pytest-textual-snapshot).

Update them after a deliberate change with `pytest tests/tui --snapshot-update`, then look
at the SVGs before committing."""

import time

import pytest

from nnsim.tui.app import make_app
from tests.helpers import small_config

STEPS = 60


def prepared(key: str, wait_for_grid: bool = False):
    async def run_before(pilot) -> None:
        app = pilot.app
        app.runner.advance(STEPS)
        deadline = time.monotonic() + 20
        while len(app.runner.history) < STEPS:
            assert time.monotonic() < deadline
            await pilot.pause(0.02)
        await pilot.press(key)
        while wait_for_grid and (app.runner.grid is None or app.runner.grid["step"] != STEPS
                                 or app.runner.grid["label"].shape[1]
                                 != app.query_one("#boundary").grid_size()[0]):
            assert time.monotonic() < deadline
            await pilot.pause(0.05)
        await pilot.pause(0.2)
    return run_before


@pytest.mark.parametrize("key,name", [("1", "layers"), ("2", "curves"),
                                      ("3", "distributions"), ("5", "optimizer"),
                                      ("6", "depth")])
def test_panel_snapshot(snap_compare, key, name):
    app = make_app(small_config(("model.hidden", [16, 16, 16])), paused=True)
    assert snap_compare(app, terminal_size=(120, 36), run_before=prepared(key))


def test_boundary_snapshot(snap_compare):
    app = make_app(small_config(("model.hidden", [16, 16, 16])), paused=True)
    assert snap_compare(app, terminal_size=(100, 30), run_before=prepared("4", True))


def test_layers_snapshot_at_80x24(snap_compare):
    app = make_app(small_config(("model.hidden", [16, 16, 16]), ("model.activation", "prelu"),
                                ("model.normalizer", "batchnorm")), paused=True)
    assert snap_compare(app, terminal_size=(80, 24), run_before=prepared("1"))


def test_layers_snapshot_at_200x60(snap_compare):
    app = make_app(small_config(("model.hidden", [16, 16, 16])), paused=True)
    assert snap_compare(app, terminal_size=(200, 60), run_before=prepared("1"))


def test_curves_snapshot_at_80x24(snap_compare):
    app = make_app(small_config(("model.hidden", [16, 16, 16])), paused=True)
    assert snap_compare(app, terminal_size=(80, 24), run_before=prepared("2"))


def test_depth_snapshot_small_init_in_the_light_theme(snap_compare):
    """N(0, 0.01): activation std falling by decades with depth, on a light background."""
    app = make_app(small_config(("model.hidden", [16, 16, 16, 16]),
                                ("model.initializer", "normal")), paused=True)
    app.theme = "textual-light"
    assert snap_compare(app, terminal_size=(120, 36), run_before=prepared("6"))
