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
    app.paused = False
    app.tick()  # a timer's last tick after the screens are gone: no error


def test_landscape_snapshot(snap_compare):
    land = Landscape("quadratic", ["sgd", "momentum", "adam"])
    land.run(60)
    assert snap_compare(LandscapeApp(land, paused=True), terminal_size=(100, 30))


def test_every_path_mark_stands_out_from_the_band_under_it():
    """Paths, heads and arrows at 3:1 or more on the contour band they cross (a graphic's
    minimum): Adam's red on the blue bands was 1.2:1, its path nearly invisible."""
    from rich.style import Style

    from nnsim.tui.render import contrast

    land = Landscape("quadratic", ["sgd", "momentum", "nesterov", "adam"])
    land.run(40)
    view = LandscapeView()
    view.landscape = land
    checked = 0
    for line in view.lines(100, 30):
        for span in line.spans:
            text = line.plain[span.start:span.end]
            style = Style.parse(str(span.style))
            if not set(text) & set("·●∙➤") or style.bgcolor is None:
                continue
            fg, bg = style.color.get_truecolor(), style.bgcolor.get_truecolor()
            ratio = contrast("#%02x%02x%02x" % tuple(fg), "#%02x%02x%02x" % tuple(bg))
            assert ratio >= 3.0, (text, str(span.style), ratio)
            checked += 1
    assert checked > 20


def test_what_each_path_did_is_never_cut_at_any_width():
    """The legend says when each path converged (or how far it is) in full at every width,
    or not at all: at 80 columns "converged at step 146" was cropped to "converged at step
    1". What makes room is f, then the hyperparameters, then shorter words, then …"""
    import re

    land = Landscape("quadratic", ["sgd", "momentum", "nesterov", "adam"], condition=50)
    land.run(400)
    done = {p.label: p.converged_at for p in land.paths}
    assert all(done.values()) and max(done.values()) >= 100
    view = LandscapeView()
    view.landscape = land
    for width in (200, 100, 80, 60, 40):
        legend = [line.plain for line in view.lines(width, 30)][-len(land.paths):]
        for path, line in zip(land.paths, legend):
            assert len(line) <= width
            found = re.search(r"converged(?: at step|:) (\d+)", line)
            assert found and int(found.group(1)) == path.converged_at, (width, line)
            if width == 200:
                assert "f = " in line and "lr " in line
            if width == 40:  # f and the hyperparameters made room
                assert "f = " not in line and "lr " not in line, line
