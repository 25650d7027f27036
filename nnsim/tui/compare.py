"""`nnsim compare --tui`: runs side by side, per-layer statistics aligned, stepped in lockstep."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import App, ComposeResult
from textual.screen import Screen
from textual.binding import Binding
from textual.widgets import Footer, Static

from nnsim.engine.lockstep import Lockstep
from nnsim.tui.chrome import CSS as CHROME_CSS
from nnsim.tui.chrome import ReadableChrome
from nnsim.tui.controls import CONTROL_BINDINGS, RunnerControls, redraw_covered
from nnsim.tui.render import fmt, run_colour, sparkline
from nnsim.tui.views import (VALUE_WIDTH, View, _layer_series, axis_text, crop_lines,
                             decade_range)

if TYPE_CHECKING:
    from textual.dom import DOMNode

    class _PanelHost(RunnerControls, DOMNode):
        """What LockstepPanel is mixed into: RunnerControls and an App or a Screen."""
else:
    _PanelHost = object

LABEL_WIDTH = 9  # "accuracy" fits

METRICS = (("grad_norm", "‖∂L/∂W‖", True), ("act_std", "act std", True),
           ("update_ratio", "‖ΔW‖/‖W‖", True), ("saturated", "saturated", False),
           ("dead", "dead", False), ("step_size", "step ‖ΔW‖/‖∂L/∂W‖", True))



def _percent(value: float | None) -> str:
    """A share (accuracy, saturated, dead) as the rest of the screen writes it: 95.3%."""
    if value is None or not math.isfinite(value):
        return fmt(value)
    return f"{value:.1%}" if value < 1 else "100%"


class CompareView(View):
    """One metric at a time: a row per layer, a column per run, on one shared scale."""

    runner: Lockstep | None = None
    metric = 0

    def show_runs(self, runner: Lockstep) -> None:
        self.runner = runner
        self._drawn = ()  # the strips are built anew at the next paint
        self.refresh()

    def lines(self, width: int, height: int) -> list[Text]:
        runner = self.runner
        if runner is None:
            return [Text("")]
        field, title, log = METRICS[self.metric]
        labels = runner.labels
        cell = max((width - LABEL_WIDTH) // len(labels), VALUE_WIDTH + 5)
        spark = cell - VALUE_WIDTH - 2
        records = {label: runner.histories[label].snapshot(spark) for label in labels}
        lines = []
        bg = self.roles["bg"]
        colour = [run_colour(k, bg) for k in range(len(labels))]  # text: 4.5:1 on the panel
        head = Text(f"{'':<{LABEL_WIDTH}}")
        for k, label in enumerate(labels):
            head.append(f"{label[:cell - 1]:<{cell}}", f"bold {colour[k]}")
        lines.append(head)
        for name, attr in (("loss", "loss"), ("accuracy", "accuracy")):
            row = Text(f"{name:<{LABEL_WIDTH}}", "bold")
            for k, label in enumerate(labels):
                recs = records[label]
                value = getattr(recs[-1], attr) if recs else None
                state = ""
                sim = runner.sims[label]
                if name == "loss" and sim.divergence is not None:
                    state = " diverged"
                text = fmt(value) if name == "loss" else _percent(value)  # as the status line
                row.append(f"{text + state:<{cell}}", colour[k])
            lines.append(row)
        lines.append(Text(""))
        depth = max((len(r[-1].layers) for r in records.values() if r), default=0)
        # each run over its whole course (from the step they set out from), in buckets of
        # min, mean and max (a Lockstep's histories keep timelines): the sparkline draws the
        # means, the shared axis spans the extremes
        series, extent, covered_steps = {}, [], {}
        for label in labels:
            timeline = runner.histories[label].timeline
            assert timeline is not None
            # only the layers this run has (a shallower run's other rows stay blank)
            keys = [(field, i + 1) for i in range(len(records[label][-1].layers)
                                                  if records[label] else 0)]
            cols = timeline.resample(spark, None, keys)
            series[label] = [cols.series(key).tolist() for key in keys]
            extent += [v for key in keys for which in ("lo", "hi")
                       for v in cols.series(key, which).tolist()]
            if len(cols):
                covered_steps[label] = (int(cols.first[0]), int(cols.last[-1]))
        finite = [v for v in extent
                  if v is not None and math.isfinite(v) and (v > 0 or not log)]
        # one axis for every layer and both runs, in whole decades, printed
        lo, hi = decade_range(finite) if log else (0.0, 1.0)
        scale = axis_text(lo, hi, log, percent=not log)
        lines.append(Text.assemble((f"{title} per layer", "bold"),
                                   (f"  axis {scale}{', log, shared' if log else ''}"
                                    "   m: next statistic", "dim")))
        block = max(1, min(4, (height - len(lines) - 1) // max(depth, 1) - 1))
        for i in range(depth):
            kinds = [records[label][-1].layers[i].kind for label in labels
                     if records[label] and i < len(records[label][-1].layers)]
            name = "out" if kinds and all(k == "output" for k in kinds) else f"L{i + 1}"
            rows = [Text(f"{name if r == 0 else '':<{LABEL_WIDTH}}", "bold")
                    for r in range(block)]
            for k, label in enumerate(labels):
                values = series[label][i] if i < len(series[label]) else []
                # the newest step's value, as the loss row and the Layers panel give it (a
                # bucket's mean would hide a NaN among finite steps)
                newest = _layer_series(records[label][-1:], i, field)
                value = newest[-1] if newest and values else None
                chars = sparkline(values, spark, lo, hi, log, block)
                for r, part in enumerate(chars):
                    rows[r].append(part, colour[k])
                    # fractions as the axis gives them: 0–100 %
                    text = (fmt(value) if log else _percent(value)) if r == 0 else ""
                    rows[r].append(f" {text:<{VALUE_WIDTH}} ", colour[k])  # by its own
            lines += rows + [Text("")]
        covered = Text(f"{'':<{LABEL_WIDTH}}")  # what each run's sparklines cover
        for k, label in enumerate(labels):
            span = covered_steps.get(label)
            text = f"steps {span[0]:,}–{span[1]:,}" if span else ""
            covered.append(f"{text:<{cell}}", colour[k])
        lines.append(covered)
        return crop_lines(lines)


class LockstepPanel(_PanelHost):
    """What the compare app and the branch screen share: a status line over a CompareView
    of a Lockstep runner, trained on a worker, redrawn 30 times a second."""

    runner: Lockstep

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        yield CompareView(id="compare")
        yield Footer()

    def on_mount(self) -> None:
        self._drawn: tuple = ()
        self._covered_drawn = [0.0]  # see redraw_covered
        self.set_interval(1 / 30, self.tick)
        self.train()
        self.tick()

    def status(self) -> Text:
        runner = self.runner
        return Text.assemble(
            (f" {runner.state} ", "bold"), f"  step {runner.step_count:,}  "
            f"{len(runner.labels)} runs in lockstep from seed {runner.sim.config.seed}  speed "
            f"{runner.speed_text}", (f"  {runner.message}" if runner.message else "",
                                     "bold red"))

    def tick(self) -> None:
        stack = self.app.screen_stack
        if not isinstance(self, Screen) and not stack:
            return  # the app is closing: its screens are gone before its timers
        own = self if isinstance(self, Screen) else stack[0]
        views = own.query(CompareView)
        if not views:  # (nor the panel, while they go)
            return
        if not redraw_covered(self.app.screen is not own, self._covered_drawn):
            return
        view = views.first()
        key = (self.runner.version, view.metric)
        if key == self._drawn:
            return
        self._drawn = key
        own.query_one("#status", Static).update(self.status(), layout=False)
        view.show_runs(self.runner)

    def action_metric(self) -> None:
        view = self.query_one(CompareView)
        view.metric = (view.metric + 1) % len(METRICS)
        self.tick()


class CompareApp(ReadableChrome, LockstepPanel, RunnerControls, App):
    """Runs that differ in chosen settings, side by side."""

    TITLE = "nnsim compare"
    BINDINGS = [
        *CONTROL_BINDINGS,
        Binding("m", "metric", "Next statistic"),
        Binding("q", "quit", "Quit"),
    ]
    CSS = "#status { height: 1; padding: 0 1; background: $boost; }" + CHROME_CSS

    def __init__(self, runner: Lockstep) -> None:
        super().__init__()
        self.runner = runner


class BranchScreen(LockstepPanel, RunnerControls, Screen):
    """A run and its branch from one kept step, side by side in lockstep: the original as
    it went, and the same state with one setting changed. Escape returns to the run."""

    # the status line names space, n and m: the footer keeps room for escape, help and quit
    BINDINGS = [*(Binding(b.key, b.action, b.description, show=False, key_display=b.key_display)
                  for b in CONTROL_BINDINGS),
                Binding("m", "metric", "Next statistic", show=False),
                Binding("escape", "close", "Back to the run")]
    DEFAULT_CSS = ("BranchScreen #status { height: 2; padding: 0 1; background: $boost; "
                   "text-wrap: nowrap; text-overflow: ellipsis; }")

    def __init__(self, runner: Lockstep, change: str) -> None:
        super().__init__()
        self.runner, self.change = runner, change

    def status(self) -> Text:
        runner = self.runner
        # two lines that never wrap (DEFAULT_CSS; at 80 columns the first wrapped over the
        # keys)
        text = Text.assemble(
            (f" {runner.state} ", "bold"),
            f"  step {runner.step_count:,}  branched at step {runner.start:,}: "
            f"{self.change}  speed {runner.speed_text}\n",
            ("space: play/pause · n: one step · m: next statistic · escape: back to the run",
             "italic"),
            (f"  {runner.message}" if runner.message else "", "bold red"))
        return text

    def action_reset(self) -> None:
        self.app.notify("A branch starts at its step: escape and branch again to restart it.",
                        timeout=3)

    def action_close(self) -> None:
        self.workers.cancel_node(self)
        self.dismiss()
