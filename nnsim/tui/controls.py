"""What every nnsim app shares: the run controls and the training worker."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from textual import work
from textual.binding import Binding
from textual.worker import get_current_worker

if TYPE_CHECKING:
    from nnsim.engine.runner import Runner

#: while another screen covers a live panel (help, settings, a prompt, the command palette),
#: it is redrawn only this often: a dimmed screen below a modal one costs Textual several
#: times a plain redraw, and a key typed into the screen on top must not wait for it
COVERED_SECONDS = 0.5


def redraw_covered(covered: bool, last: list[float]) -> bool:
    """Whether a panel under another screen (`covered`) is due for its occasional redraw;
    `last` holds when it was last redrawn so (updated here). An uncovered panel always is."""
    if not covered:
        return True
    now = time.monotonic()
    if now - last[0] < COVERED_SECONDS:
        return False
    last[0] = now
    return True


#: play/pause, one step, speed, reset, quit: the same keys in every nnsim app
CONTROL_BINDINGS = [
    Binding("space", "play_pause", "Play/pause"),
    Binding("n", "step", "Step"),
    Binding("plus,equals_sign", "faster", "Faster", key_display="+", show=False),
    Binding("minus", "slower", "Slower", key_display="-", show=False),
    Binding("r", "reset", "Reset", show=False),
]


class RunnerControls:
    """Mixin for an App with a `runner` (a Runner): trains it on a thread worker and maps
    the control keys to it."""

    runner: Runner  # set by the App's __init__

    @work(thread=True, exclusive=True, group="training", exit_on_error=False)
    def train(self) -> None:
        worker = get_current_worker()
        self.runner.loop(lambda: worker.is_cancelled)

    def action_play_pause(self) -> None:
        self.runner.toggle()

    def action_step(self) -> None:
        self.runner.step_once()

    def action_faster(self) -> None:
        self.runner.faster()

    def action_slower(self) -> None:
        self.runner.slower()

    def action_reset(self) -> None:
        self.runner.reset()
