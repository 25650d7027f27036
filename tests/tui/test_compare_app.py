"""Side by side in the TUI: lockstep runs, aligned per-layer statistics."""

import json
import time

from nnsim.compare import parse_vary, variants
from nnsim.engine import Simulation
from nnsim.engine.lockstep import Lockstep
from nnsim.tui.compare import METRICS, CompareApp, CompareView
from tests.helpers import small_config


def runs(*vary, base=small_config()):
    return variants(base, parse_vary(list(vary)))


def test_lockstep_records_equal_independent_runs_and_a_diverged_run_waits():
    wild = small_config(("model.activation", "relu"), ("optimizer.name", "sgd"),
                        ("model.initializer", "he_normal"), ("model.hidden", [64, 64, 64]))
    pairs = runs("optimizer.lr=0.05,10.0", base=wild)
    lock = Lockstep(pairs, paused=True)
    lock.advance(40)
    lock.run_pending()
    for label, config in pairs:
        alone = [json.dumps(r.to_dict()) for r in Simulation(config).run(40)]
        mine = [json.dumps(r.to_dict()) for r in lock.histories[label].snapshot()]
        assert mine == alone[:len(mine)]
    healthy, wild = (lock.histories[label] for label, _ in pairs)
    assert len(healthy) == 40 and len(wild) < 40  # lr 10 diverged and stopped; lr 0.05 went on
    assert lock.sims[pairs[1][0]].divergence is not None


async def test_compare_app_keys_and_metrics():
    app = CompareApp(Lockstep(runs("optimizer.name=sgd,momentum"), paused=True))
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("n", "n")
        deadline = time.monotonic() + 10
        while app.runner.sim.step_count < 2:
            assert time.monotonic() < deadline
            await pilot.pause(0.02)
        assert all(len(h) == 2 for h in app.runner.histories.values())
        view = app.query_one(CompareView)
        for k in range(len(METRICS)):
            text = "\n".join(line.plain for line in view.lines(116, 30))
            assert f"{METRICS[k][1]} per layer" in text
            assert "optimizer=sgd" in text and "optimizer=momentum" in text
            await pilot.press("m")
        assert view.metric == 0
        await pilot.press("r")
        deadline = time.monotonic() + 10
        while app.runner.sim.step_count:
            assert time.monotonic() < deadline
            await pilot.pause(0.02)
    app.tick()  # a timer's last tick after the screens are gone: nothing to draw, no error


def test_compare_snapshot(snap_compare):
    async def run_before(pilot):
        pilot.app.runner.advance(40)
        deadline = time.monotonic() + 20
        while pilot.app.runner.sim.step_count < 40:
            assert time.monotonic() < deadline
            await pilot.pause(0.02)
        await pilot.pause(0.2)

    app = CompareApp(Lockstep(runs("optimizer.name=sgd,momentum"), paused=True))
    assert snap_compare(app, terminal_size=(120, 36), run_before=run_before)


async def test_the_runs_read_at_four_and_a_half_to_one_in_every_theme():
    """Each run's column (its name, loss, sparklines) is text in the run's colour: moved to
    4.5:1 on the panel's background in every built-in theme (the palette's orange was 2.0:1
    and its blue 2.6:1 on textual-light)."""
    from textual.theme import BUILTIN_THEMES

    from nnsim.tui.render import contrast

    app = CompareApp(Lockstep(runs("optimizer.name=sgd,momentum,adam"), paused=True))
    failures, checked = [], 0
    async with app.run_test(size=(120, 36)) as pilot:
        app.runner.advance(20)
        deadline = time.monotonic() + 10
        while app.runner.sim.step_count < 20:
            assert time.monotonic() < deadline
            await pilot.pause(0.02)
        for theme in [name for name in BUILTIN_THEMES if not name.startswith("ansi")]:
            app.theme = theme
            await pilot.pause(0.05)
            view = app.query_one(CompareView)
            view.show_runs(app.runner)
            await pilot.pause(0.05)
            for y in range(view.size.height):
                for segment in view.render_line(y):
                    style = segment.style
                    if not segment.text.strip() or style is None or style.color is None \
                            or style.bgcolor is None:
                        continue
                    fg = "#%02x%02x%02x" % tuple(style.color.get_truecolor())
                    bg = "#%02x%02x%02x" % tuple(style.bgcolor.get_truecolor())
                    checked += 1
                    if contrast(fg, bg) < 4.5:
                        failures.append(f"{theme}: {segment.text[:16]!r} {fg} on {bg} = "
                                        f"{contrast(fg, bg):.2f}")
    assert checked > 100
    assert not failures, "\n".join(failures[:10]) + f"\n({len(failures)} in all)"


def test_each_value_is_the_newest_steps_and_a_shallower_run_leaves_its_missing_rows_blank():
    """The sparklines cover each run's whole course in buckets; the number beside them is
    the newest step's value (a bucket's mean differed: 0.39 for a newest 0.364), and rows
    of layers a run does not have stay blank ('—'), not 'nan' over a row of dots."""
    from nnsim.tui.render import fmt

    lock = Lockstep(runs("optimizer.name=sgd,momentum"), paused=True)
    lock.advance(600)
    lock.run_pending()
    view = CompareView()
    view.runner = lock
    lines = [line.plain for line in view.lines(100, 40)]
    row = next(line for line in lines if line.startswith("L1"))
    newest = [fmt(lock.histories[label].last.layers[0].grad_norm) for label in lock.labels]
    assert [w for w in row.split() if w[0].isdigit()] == newest, (row, newest)
    deep = Lockstep(runs("model.hidden=[16],[16,16,16]"), paused=True)
    deep.advance(30)
    deep.run_pending()
    view.runner = deep
    lines = [line.plain for line in view.lines(100, 40)]
    assert "nan" not in "\n".join(lines)
    l3 = lines.index(next(line for line in lines if line.startswith("L3")))
    shallow = lines[l3][:len(lines[l3]) // 2 + 5]
    assert "—" in shallow and not set(shallow[9:40]) - {" "}, lines[l3:l3 + 3]


def test_shares_are_written_as_percentages_like_their_axis():
    """Accuracy, saturated and dead shares in percent, as the axis (0–100 %) and the main
    screen give them: the view wrote 0.953 and 0.0923 under an axis of 0–100%."""
    lock = Lockstep(runs("optimizer.name=sgd,momentum"), paused=True)
    lock.advance(60)
    lock.run_pending()
    view = CompareView()
    view.runner = lock
    view.metric = [m[0] for m in METRICS].index("saturated")
    lines = [line.plain for line in view.lines(100, 40)]
    accuracy = next(line for line in lines if line.startswith("accuracy")).split()[1:]
    layer = [w for w in next(line for line in lines if line.startswith("L1")).split()[1:]
             if w[0].isdigit()]
    assert accuracy and layer and all(w.endswith("%") for w in accuracy + layer), lines[:8]


async def test_the_status_follows_the_runs_still_going_when_the_first_diverges():
    """The status line (and the steps a second) read the first run's step, which froze when
    that run diverged while the others went on."""
    from textual.widgets import Static

    wild = small_config(("model.activation", "relu"), ("optimizer.name", "sgd"),
                        ("model.initializer", "he_normal"), ("model.hidden", [64, 64, 64]))
    lock = Lockstep(runs("optimizer.lr=10.0,0.05", base=wild), paused=True)
    app = CompareApp(lock)
    async with app.run_test(size=(120, 36)) as pilot:
        lock.advance(40)
        deadline = time.monotonic() + 20
        while "step 40 " not in str(app.query_one("#status", Static).content):
            assert time.monotonic() < deadline, str(app.query_one("#status", Static).content)
            await pilot.pause(0.05)
        first = next(iter(lock.sims.values()))
        assert first.divergence is not None and first.step_count < 40
        assert lock.step_count == 40
