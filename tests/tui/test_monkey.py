"""Random key presses and terminal sizes while the run trains: whatever a person types, the
app keeps running, the training thread never dies of an unexpected exception, and `q`
still quits."""

import random

import pytest
from textual import events

from nnsim.tui.app import make_app
from tests.helpers import small_config, until

#: (key, character): every binding's key, keys a settings form, a file prompt or the
#: command palette sees, and a few stray ones
CHARS = {"space": " ", "plus": "+", "minus": "-", "comma": ",", "full_stop": ".",
         "left_square_bracket": "[", "right_square_bracket": "]", "question_mark": "?",
         "slash": "/"}
KEYS = [(k, CHARS.get(k, k if len(k) == 1 else None)) for k in (
    "space n plus minus r e 1 2 3 4 5 6 7 d v f comma full_stop g B m left_square_bracket "
    "right_square_bracket a w b s p t x c l o k i question_mark escape tab shift+tab enter "
    "up down left right home end pageup pagedown backspace ctrl+s ctrl+o ctrl+p 0 9 z Z "
    "slash").split()]
SIZES = ((80, 24), (120, 36), (200, 60), (40, 12), (160, 48))


def unexpected(app) -> str:
    """What went wrong inside the app: an exception Textual caught, or a halt that names
    one (a plugin's or nnsim's own errors halt with their message, not 'halted')."""
    if app._exception is not None:
        return repr(app._exception)
    message = app.runner.message
    return message if message.startswith("halted") else ""


@pytest.mark.parametrize("seed", [1, 2])
async def test_random_keys_and_sizes_never_break_the_app(seed, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # what the file prompts write lands here
    rng = random.Random(seed)
    app = make_app(small_config(("train.eval_every", 5)), paused=False)
    async with app.run_test(size=SIZES[0]) as pilot:
        pressed = []
        for i in range(200):
            if i % 40 == 39:
                await pilot.resize_terminal(*rng.choice(SIZES))
            key, char = rng.choice(KEYS)
            pressed.append(key)
            # as a terminal sends it: no waiting for the app to go idle between keys (it
            # never does while training runs)
            app.post_message(events.Key(key, char))
            await pilot.pause(rng.choice((0.0, 0.01, 0.05)))
            assert not unexpected(app), f"after {pressed}: {unexpected(app)}"
        await pilot.pause(0.3)
        assert not unexpected(app), f"after {pressed}: {unexpected(app)}"
        while len(app.screen_stack) > 1:  # back to the main screen, then quit
            app.pop_screen()
            await pilot.pause(0.05)
        app.post_message(events.Key("q", "q"))
        await until(pilot, lambda: not app.is_running, timeout=5)


@pytest.mark.parametrize("key,char", [("s", "s"), ("question_mark", "?"), ("x", "x"),
                                      ("p", "p")])
async def test_a_screen_opened_as_the_app_quits_breaks_nothing(key, char, tmp_path,
                                                               monkeypatch):
    # `q` and then a key that opens a screen, typed faster than the app closes
    monkeypatch.chdir(tmp_path)
    app = make_app(small_config(), paused=False)
    async with app.run_test(size=SIZES[0]) as pilot:
        await pilot.pause(0.2)
        app.post_message(events.Key("q", "q"))
        app.post_message(events.Key(key, char))
        await until(pilot, lambda: not app.is_running, timeout=5)
    assert app._exception is None, repr(app._exception)
