"""What every nnsim app shares: the run controls and the training worker."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import work
from textual.binding import Binding
from textual.worker import get_current_worker

if TYPE_CHECKING:
    from nnsim.engine.runner import Runner

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
