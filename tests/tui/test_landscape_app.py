"""The landscape TUI: keys, and a snapshot of optimizers racing on the quadratic."""

from nnsim.landscape import Landscape
from nnsim.tui.landscape import LandscapeApp, LandscapeView


async def test_landscape_keys():
    app = LandscapeApp(Landscape("quadratic", ["sgd", "momentum"]), paused=True)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("n", "n", "n")
        assert app.landscape.step_count == 3
        await pilot.press("space")
        await pilot.pause(0.3)
        assert app.landscape.step_count > 3
        await pilot.press("space", "r")
        assert app.landscape.step_count == 0
        await pilot.press("s")
        assert app.landscape.surface_name == "rosenbrock"
        speed = app.speed
        await pilot.press("plus")
        assert app.speed == speed + 1
        text = "\n".join(line.plain for line in app.query_one(LandscapeView).lines(96, 26))
        assert "Rosenbrock" in text and "■ sgd" in text and "■ momentum" in text


def test_landscape_snapshot(snap_compare):
    land = Landscape("quadratic", ["sgd", "momentum", "adam"])
    land.run(60)
    assert snap_compare(LandscapeApp(land, paused=True), terminal_size=(100, 30))
