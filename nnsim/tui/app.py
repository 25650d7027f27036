"""The Textual app: status line, panel tabs, the panels, the footer; training in a thread."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Static, Tab, Tabs

from nnsim.components import Lesson
from nnsim.config import Config, load
from nnsim.engine.runner import Runner
from nnsim.errors import NnsimError
from nnsim.pluginmanager import Registry, default_registry
from nnsim.tui.chrome import CSS as CHROME_CSS
from nnsim.tui.chrome import ReadableChrome
from nnsim.tui.controls import CONTROL_BINDINGS, RunnerControls, redraw_covered
from nnsim.tui.render import fmt
from nnsim.tui.screens import HelpScreen, PathPrompt, PluginsScreen, SettingsScreen
from nnsim.tui.views import (WINDOWS, BoundaryView, CurvesView, DepthView, DistributionsView,
                             DoctorView, Frame, LayersView, OptimizerView, View, window_text)

VIEWS = (("layers", "1 Layers", LayersView), ("curves", "2 Curves", CurvesView),
         ("distributions", "3 Distributions", DistributionsView),
         ("boundary", "4 Boundary", BoundaryView), ("optimizer", "5 Optimizer", OptimizerView),
         ("depth", "6 Depth", DepthView), ("doctor", "7 Doctor", DoctorView))
REFRESH_HZ = 30
STATE_ROLE = {"running": "good", "paused": "warn", "diverged": "bad", "halted": "bad"}
NEXT_STEP = "press r to reset (same seed), e for a new seed, s to change the settings"
#: the same, as the status line puts it first (a narrow screen cuts the cause, not this)
NEXT_KEYS = "r: reset (same seed) · e: new seed · s: settings"
#: new decision grids a second, at most, while the Boundary panel is shown
GRID_HZ = 60


class StatusBar(View):
    """Two lines: the run's state and numbers; the experiment (or why the run stopped and
    what to do next). On a narrow screen the least needed numbers give way."""

    DEFAULT_CSS = "StatusBar { height: 2; padding: 0 1; }"
    plain = ""  # the text last shown, for tests and logs
    _lines: list[Text] = []

    def lines(self, width: int, height: int) -> list[Text]:
        return self._lines

    def show_status(self, frame: Frame, summary: str) -> None:
        roles = self.roles
        last = frame.newest or frame.last
        width = max(self.size.width - 2, 40) if self.size.width else 200
        parts: list[tuple[str, str, int]] = []  # (text, style, priority: lower stays)
        state = frame.state
        role = STATE_ROLE.get(state, "fg")
        parts.append((f" {state} ", f"bold {roles['bg']} on {roles[role]}"
                      if roles["bg"] != "default" else "bold reverse", 0))
        if last is None:
            parts.append(("  step 0", "bold", 0))
        else:
            val = frame.evals[-1] if frame.evals else None
            parts.append((f"  step {last.step:,}", "bold", 0))
            parts.append(("  loss ", "", 0))
            parts.append((fmt(last.loss), roles["train"], 0))
            if val is not None:
                parts.append((" val ", "", 2))
                parts.append((fmt(val[1]), roles["val"], 2))
            if last.accuracy is not None:
                parts.append(("  acc ", "", 1))
                parts.append((f"{last.accuracy:.1%}", roles["train"], 1))
                if val is not None and val[2] is not None:
                    parts.append((" val ", "", 2))
                    parts.append((f"{val[2]:.1%}", roles["val"], 2))
        parts.append((f"  lr {fmt(frame.lr)}", "", 1))
        if state == "running":
            parts.append((f"  {frame.rate:,.0f} steps/s", "", 3))
        parts.append((f"  speed {frame.speed}", roles["muted"], 3))
        for cut in (4, 3, 2, 1):
            kept = [p for p in parts if p[2] < cut]
            if sum(len(t) for t, _, _ in kept) <= width:
                break
        text = Text()
        for t, style, _ in kept:
            text.append(t, style)
        second = Text()
        cursor = frame.extras.get("cursor")
        if cursor is not None:
            kept = frame.extras.get("kept", 0)
            second.append(f"timeline: step {cursor:,} ({kept} kept)", f"bold {roles['warn']}")
            second.append(" — , . move · g: go back · B: branch · ")
        elif frame.findings and not frame.message:
            # the keys first, as after a divergence: a narrow screen cuts the title, not them
            top = frame.findings[0]
            more = f" (+{len(frame.findings) - 1} more: 7)" if len(frame.findings) > 1 else ""
            second.append(("f: fix · " if top.fix else "") + "7: details — ", "bold")
            second.append(f"doctor: {top.title}{more}", f"bold {roles['warn']}")
            second.append(" · ")
        if frame.message:
            if state in ("diverged", "halted"):
                second.append(f"{NEXT_KEYS} — ", "bold")
            second.append(frame.message, f"bold {roles['bad']}")
        else:
            if last is not None:
                second.append(f"epoch {last.epoch:.2f} · ")
            second.append(summary, roles["muted"])
        for line in (text, second):
            line.no_wrap, line.overflow = True, "ellipsis"
        self.plain = f"{text.plain}\n{second.plain}"
        self._lines = [text, second]
        self.show(frame)


class LessonPanel(VerticalScroll):
    """The lesson beside the live views: its runs and check first (they must stay in view on
    a small screen), then what it claims, where to look, and the lecture section. Scrolls."""

    DEFAULT_CSS = """
    LessonPanel { width: 34%; min-width: 28; max-width: 48; height: 1fr; padding: 0 1;
                  border-left: solid $accent; }
    LessonPanel > Static { width: 1fr; }
    LessonPanel > #lesson-more { dock: bottom; height: 1; text-style: bold reverse;
                                 display: none; }
    """

    def compose(self):
        yield Static(id="lesson-text")
        # said while more of the lesson lies below what the panel shows
        yield Static("▼ more below: PgDn", id="lesson-more")

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._more()

    def on_resize(self) -> None:
        self.call_after_refresh(self._more)

    def _more(self) -> None:
        more = self.query("#lesson-more")
        if more:
            more.first().display = self.scroll_y < self.max_scroll_y - 0.5

    @property
    def content(self):
        """What the panel shows (for tests and logs)."""
        return self.query_one("#lesson-text", Static).content

    def show(self, lesson: Lesson, current: str, verdict: str, seed: int,
             control: bool = False) -> None:
        text = Text()
        if control:
            text.append("CONTROL: the cause removed; the check should fail\n", "bold reverse")
        text.append(f"{lesson.title}\n", "bold")
        section = getattr(lesson, "section", "")
        if section:
            text.append(f"Lecture: {section}\n", "italic")
        text.append("\nRuns (o: next)\n", "bold")
        for label in lesson.runs:
            mark = "▶ " if label == current else "  "
            text.append(f"{mark}{label}\n", "bold" if label == current else "")
        text.append(f"\nCheck (k, seed {seed}): ", "bold")
        if verdict:
            style = "bold" if verdict.startswith(("PASS", "FAIL")) else "italic"
            text.append(verdict, style)
        else:
            steps = f"{lesson.steps} step{'s' if lesson.steps != 1 else ''}"
            text.append(f"trains every run for {steps} and tests the claim", "italic")
        text.append("\n\nWatch: ", "bold")
        text.append(f"{lesson.watch}\n\n")
        text.append(f"{lesson.explanation}\n")
        note = getattr(lesson, "control_note", "")
        if note:
            text.append("\nControl", "bold")
            text.append(f" (nnsim lesson {lesson.name} --control): {note}\n")
        self.query_one("#lesson-text", Static).update(text)
        self.call_after_refresh(self._more)


class NnsimApp(ReadableChrome, RunnerControls, App):
    """Watch a deep network train, live, layer by layer."""

    TITLE = "nnsim"
    CSS_PATH = "app.tcss"
    CSS = CHROME_CSS
    #: every key of the app, once: its line in the help screen and the bindings it stands for
    KEYMAP: list[tuple[str, str, list[Binding]]] = [
        ("space", "play / pause", [CONTROL_BINDINGS[0]]),
        ("n", "one step (pauses)", [CONTROL_BINDINGS[1]]),
        ("+ / -", "faster / slower (steps per frame); training starts slowly and speeds up "
                  "until you choose", CONTROL_BINDINGS[2:4]),
        ("r", "reset with the same seed", [CONTROL_BINDINGS[4]]),
        ("e", "reset with a new seed", [Binding("e", "reseed", "New seed", show=False)]),
        ("1 … 7, d, v", "switch panel: " + ", ".join(
            label.split(maxsplit=1)[1].lower() + (" (also d)" if name == "depth" else "")
            for name, label, _ in VIEWS) + "; v: the next panel",
         # a panel's number from its tab label ("6 Depth" → 6), plus any extra key
         [*(Binding(label.split()[0] + {"depth": ",d"}.get(name, ""), f"view('{name}')",
                    label.split(maxsplit=1)[1], show=False) for name, label, _ in VIEWS),
          Binding("v", "next_view", "Next view", show=False)]),
        ("f", "apply the doctor's first fix (shown in the status line)",
         [Binding("f", "fix", "Apply the doctor's fix", show=False)]),
        (", / .", "timeline: move back / forward through the kept steps (pauses)",
         [Binding("comma", "cursor(-1)", "Timeline: back", show=False, key_display=","),
          Binding("full_stop", "cursor(1)", "Timeline: forward", show=False,
                  key_display=".")]),
        ("g", "go back to the timeline's step: the run replays exactly from there",
         [Binding("g", "rewind", "Go back to the timeline's step", show=False)]),
        ("B", "branch at the timeline's step: change one setting and watch the run and its "
              "branch side by side",
         [Binding("B", "branch", "Branch at the timeline's step", show=False)]),
        ("m", "curves: moving average / raw (mean with min–max band)",
         [Binding("m", "smooth", "Raw / smoothed curves", show=False)]),
        ("[ / ]", "learning rate ÷2 / ×2 (live)",
         [Binding("left_square_bracket", "lr(0.5)", "lr ÷2", show=False, key_display="["),
          Binding("right_square_bracket", "lr(2.0)", "lr ×2", show=False, key_display="]")]),
        ("a / w", "next activation / next initializer (rebuilds from the seed)",
         [Binding("a", "cycle('activation')", "Next activation", show=False),
          Binding("w", "cycle('initializer')", "Next initializer", show=False)]),
        ("b", "batch norm on / off (rebuilds from the seed)",
         [Binding("b", "batchnorm", "Batch norm on/off", show=False)]),
        ("s", "settings: every config key", [Binding("s", "settings", "Settings")]),
        ("p", "plugins and failures", [Binding("p", "plugins", "Plugins", show=False)]),
        ("t", "history window: whole run / last 1,000 / last 100 steps",
         [Binding("t", "window", "Window")]),
        ("ctrl+s / ctrl+o", "save the config as TOML / load a config",
         [Binding("ctrl+s", "save_config", "Save config", show=False),
          Binding("ctrl+o", "load_config", "Load config", show=False)]),
        ("x", "export the metrics history (JSONL, or CSV for .csv)",
         [Binding("x", "export", "Export history", show=False)]),
        ("c / l", "save / load a checkpoint (weights, optimizer, random streams, history)",
         [Binding("c", "save_checkpoint", "Save checkpoint", show=False),
          Binding("l", "load_checkpoint", "Load checkpoint", show=False)]),
        ("o / k / i", "in a lesson: next configuration / run the check / hide the lesson "
                      "panel",
         [Binding("o", "next_run", "Lesson: next run", show=False),
          Binding("k", "check_lesson", "Lesson: check", show=False),
          Binding("i", "toggle_lesson", "Lesson: hide/show", show=False)]),
        ("PgDn / PgUp", "in a lesson: scroll the lesson panel",
         [Binding("pagedown", "scroll_lesson(1)", "Lesson: scroll down", show=False,
                  key_display="PgDn"),
          Binding("pageup", "scroll_lesson(-1)", "Lesson: scroll up", show=False,
                  key_display="PgUp")]),
        ("ctrl+p", "command palette", []),  # Textual's own
        ("?", "this help", [Binding("question_mark", "help", "Help", key_display="?")]),
        ("q", "quit", [Binding("q", "quit", "Quit")]),
    ]
    BINDINGS = [binding for _, _, bindings in KEYMAP for binding in bindings]
    HELP_KEYS = [(keys, what) for keys, what, _ in KEYMAP]

    def __init__(self, config: Config, registry: Registry | None = None,
                 paused: bool = False, lesson: Lesson | None = None,
                 lesson_overrides: Iterable = (), control: bool = False) -> None:
        super().__init__()
        self.registry = registry or default_registry()
        self.runner = Runner(config, self.registry, paused=paused, ramp=True)
        self.lesson = lesson
        self.lesson_run = next(iter(lesson.runs)) if lesson else ""
        self.lesson_overrides, self.control = list(lesson_overrides), control
        self.verdict: str = ""
        self.view_name = "layers"
        self.cursor: int | None = None  # a kept step picked on the timeline (, and .)
        self.window: int | None = WINDOWS[0]
        self.smooth = True
        self._drawn: tuple = (-1, "", -1)
        self._covered_drawn = [0.0]  # when the panels were last redrawn under another screen
        self._grid_asked: tuple = ()

    # ------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield StatusBar(id="status")
        yield Tabs(*(Tab(label, id=f"tab-{name}") for name, label, _ in VIEWS), id="tabs")
        with Horizontal(id="main"):
            with ContentSwitcher(initial="layers", id="views"):
                for name, _, cls in VIEWS:
                    yield cls(id=name)
            if self.lesson is not None:
                yield LessonPanel(id="lesson")
        yield Footer()

    def on_mount(self) -> None:
        if self.lesson is not None:
            self.title = f"nnsim lesson: {self.lesson.name}"
            self.show_lesson()
            self.call_after_refresh(self.action_view, self.lesson.panel)
        for failure in self.registry.failures:
            self.notify(str(failure), title="A plugin failed to load", severity="warning",
                        timeout=10)
        self.set_interval(1 / REFRESH_HZ, self.tick)
        self.train()
        self.tick()

    # ------------------------------------------------------------ drawing

    def summary(self) -> str:
        c = self.runner.sim.config
        m = c.model
        hidden = "×".join(map(str, m.hidden)) if len(set(m.hidden)) > 1 else \
            f"{len(m.hidden)}×{m.hidden[0]}"
        norm = "" if m.normalizer.name == "none" else f" {m.normalizer.name}({m.norm_position})"
        hypers = ", ".join(f"{k}={fmt(v) if isinstance(v, float) else v}"
                           for k, v in c.optimizer.hypers.items())
        return (f"{c.data.dataset.name} → {hidden} {m.activation.name}{norm} · init "
                f"{m.initializer.name} · {c.optimizer.name}({hypers}) · batch "
                f"{c.train.batch_size} · seed {c.seed}")

    def frame(self) -> Frame:
        runner = self.runner
        sim = runner.sim
        history = runner.history
        evals = history.eval_snapshot()
        measured = history.measured
        return Frame(
            records=[measured] if measured is not None else [],
            newest=history.last,
            evals=evals[-1:],
            state=runner.state, message=runner.message, rate=runner.rate,
            speed=runner.speed_text, activation=sim.config.model.activation.name,
            optimizer=sim.config.optimizer.name, lr=sim.lr, grid=runner.grid,
            extras={"input_dim": sim.data.input_dim,
                    "eval_every": sim.config.train.eval_every,
                    "focus": self.lesson.focus if self.lesson is not None else "",
                    "hypers": dict(sim.config.optimizer.hypers),
                    "cursor": self._kept_cursor(),
                    "kept": len(runner.snapshots.snapshots) if self.cursor is not None else 0},
            timeline=history.timeline, window=self.window, smooth=self.smooth,
            findings=list(runner.findings),
            first=history.first,
            classes=sim.data.outputs if sim.task == "classification" else None)

    def tick(self) -> None:
        """Redraw from the newest records, if anything changed since the last frame."""
        try:
            self._tick()
        except NoMatches:
            pass  # the panels are not mounted (starting up or shutting down)

    def _tick(self) -> None:
        runner = self.runner
        while not runner.notices.empty():
            level, text = runner.notices.get_nowait()
            # an error or a warning (a divergence, said whole) stays long enough to read
            self.notify(text, severity=level, timeout=3 if level == "information" else 8)
        if not redraw_covered(len(self.screen_stack) > 1, self._covered_drawn):
            return  # under another screen: redrawn now and then, not every frame
        if self.view_name == "boundary":
            self.ask_for_grid()
        # the boundary panel changes with each new grid, the others with each step
        panel_key = runner.grid_version if self.view_name == "boundary" else runner.version
        key = (runner.version, self.view_name, panel_key)
        if key == self._drawn:
            return
        panel_changed = key[1:] != self._drawn[1:]
        self._drawn = key
        frame = self.frame()
        self.query_one(StatusBar).show_status(frame, self.summary())
        if panel_changed:
            self.query_one(f"#{self.view_name}", View).show(frame)

    def ask_for_grid(self) -> None:
        """Ask the training thread for a new decision grid when the step or the panel's
        size has changed, at most GRID_HZ times a second (a grid of the default network at
        160×48 costs the training thread about 3 ms, its drawing the UI thread 2 ms)."""
        view = self.query_one("#boundary", BoundaryView)
        if view.size.width < 4:
            return  # not laid out yet
        now = time.monotonic()
        step = self.runner.sim.step_count
        wanted = (step, view.grid_size())
        if self._grid_asked and (self._grid_asked[:2] == wanted or now - self._grid_asked[2]
                                 < 1 / GRID_HZ):
            return
        self._grid_asked = (*wanted, now)
        self.runner.request_grid(view.grid_size())

    def redraw(self) -> None:
        self._drawn = (-1, "", -1)
        self.tick()

    # ------------------------------------------------------------ actions

    # ------------------------------------------------------------ lessons

    def show_lesson(self) -> None:
        if self.lesson is not None:
            self.query_one(LessonPanel).show(self.lesson, self.lesson_run, self.verdict,
                                             self.runner.sim.config.seed, self.control)

    def action_next_run(self) -> None:
        """Switch the lesson to its next configuration: a new run from the seed, whatever
        the last one did (it may have diverged), started at once."""
        if self.lesson is None:
            self.notify("Not in a lesson: try nnsim lessons", timeout=3)
            return
        from nnsim.lessons import run_config

        labels = list(self.lesson.runs)
        self.lesson_run = labels[(labels.index(self.lesson_run) + 1) % len(labels)]
        # runs that differ only in a hyperparameter (the learning-rate lesson) would take it
        # live, on the old run: rebuild
        self.runner.reconfigure(run_config(self.lesson, self.lesson_run, self.registry,
                                           seed=self.runner.sim.config.seed,
                                           overrides=self.lesson_overrides,
                                           control=self.control), rebuild=True, start=True)
        self.show_lesson()

    def action_check_lesson(self) -> None:
        if self.lesson is None:
            self.notify("Not in a lesson: try nnsim lessons", timeout=3)
            return
        self.verdict = "checking: training every run…"
        self.show_lesson()
        self.check_lesson()

    @work(thread=True, exclusive=True, group="lesson-check", exit_on_error=False)
    def check_lesson(self) -> None:
        from nnsim.lessons import run_lesson

        lesson = self.lesson
        assert lesson is not None  # started by action_check_lesson, in a lesson only
        try:
            _, verdict = run_lesson(lesson, self.registry,
                                    seed=self.runner.sim.config.seed,
                                    overrides=self.lesson_overrides, control=self.control)
            text = f"{'PASS' if verdict.passed else 'FAIL'}: {verdict.numbers}"
        except NnsimError as exc:
            text = f"could not check: {exc}"
        self.call_from_thread(self._checked, text)

    def _checked(self, text: str) -> None:
        self.verdict = text
        self.show_lesson()

    def action_scroll_lesson(self, direction: int) -> None:
        if self.lesson is not None:
            panel = self.query_one(LessonPanel)
            (panel.scroll_page_down if direction > 0 else panel.scroll_page_up)(animate=False)

    def action_toggle_lesson(self) -> None:
        if self.lesson is not None:
            panel = self.query_one(LessonPanel)
            panel.display = not panel.display

    # ------------------------------------------------------------ actions

    def action_reset(self) -> None:
        super().action_reset()
        self.notify("Reset: same seed, same run.", timeout=2)

    def action_play_pause(self) -> None:
        if not self._halted():
            super().action_play_pause()

    def action_step(self) -> None:
        if not self._halted():
            super().action_step()

    def _halted(self) -> bool:
        """A diverged or halted run cannot go on: say what can be done instead."""
        if self.runner.state in ("diverged", "halted"):
            self.notify(f"The run has stopped: {NEXT_STEP}.", severity="warning", timeout=4)
            return True
        return False

    # ------------------------------------------------------------ rewind and branch

    def action_cursor(self, move: int) -> None:
        """Move the timeline cursor over the kept snapshots (the run pauses)."""
        steps = self.runner.snapshots.steps()
        if not steps:
            self.notify("No steps kept yet (the network may be too large for the snapshot "
                        "budget).", timeout=3)
            return
        self.runner.pause()
        now = self.runner.sim.step_count
        if self.cursor is None or self.cursor not in steps:
            before = [s for s in steps if s < now] or steps
            self.cursor = before[-1] if move < 0 else steps[-1]
        else:
            i = steps.index(self.cursor) + move
            self.cursor = steps[max(0, min(len(steps) - 1, i))]
        self.redraw()

    def _kept_cursor(self) -> int | None:
        """The timeline cursor, dropped once its step is no longer kept (a reset, a new
        config or a rewind to before it cleared the snapshots)."""
        if self.cursor is not None and self.cursor not in self.runner.snapshots.snapshots:
            self.cursor = None
        return self.cursor

    def action_rewind(self) -> None:
        step = self._kept_cursor()
        if step is None:
            self.notify("Pick a step first with , and . (the timeline)", timeout=3)
            return
        self.runner.rewind(step)
        self.cursor = None

    def action_branch(self) -> None:
        step = self._kept_cursor()
        if step is None:
            self.notify("Pick a step first with , and . (the timeline), then B", timeout=3)
            return

        def branch(text: str | None) -> None:
            if text:
                self._open_branch(step, text)
        # (the prompt's box is 66 columns inside: the line fits it)
        self.push_screen(PathPrompt(f"Branch at step {step:,}: KEY=VALUE (e.g. "
                                    "model.activation=relu)", "optimizer.lr=0.5"), branch)

    def _open_branch(self, step: int, text: str) -> None:
        from nnsim.config import parse_set
        from nnsim.engine.lockstep import Lockstep
        from nnsim.engine.rewind import branch
        from nnsim.tui.compare import BranchScreen

        try:
            snap = self.runner.snapshots.get(step)
            change = parse_set(text)
            original = branch(snap, snap.config, self.registry)
            changed = branch(snap, snap.config.with_overrides([change], self.registry),
                             self.registry)
        except (NnsimError, KeyError) as exc:
            self.notify(f"no branch: {exc}", severity="error", timeout=6)
            return
        # started at once: the user asked to see the two go their ways
        runner = Lockstep.of([("as it went", original), (f"{change[0]}={change[1]}",
                                                         changed)], paused=False)
        self.push_screen(BranchScreen(runner, text.strip()))

    def action_fix(self) -> None:
        """Apply the first finding's fix, as the settings screen would."""
        findings = self.runner.findings
        fixable = [f for f in findings if f.fix]
        if not fixable:
            self.notify("The doctor has no fix to apply" + (
                ": its findings name no single setting." if findings else ": no findings."),
                timeout=3)
            return
        finding = fixable[0]
        config = self.runner.sim.config
        try:
            new = config.with_overrides(list(finding.fix), self.registry)
        except NnsimError as exc:
            self.notify(f"not applied: {exc}", severity="error", timeout=6)
            return
        live = new.structure_key() == config.structure_key()
        stopped = self.runner.state in ("diverged", "halted")
        self.runner.reconfigure(new)
        if stopped:  # a diverged run starts again from the seed with the fix
            live = False
            self.runner.reset()
        if not live:
            self.runner.play()
        fix = ", ".join(f"{k} = {v}" for k, v in finding.fix)
        self.notify(f"{fix}: " + ("applied live" if live else "rebuilt from the seed")
                    + f". Watch whether '{finding.title.split(':')[0]}' goes away.",
                    title="The doctor's fix", timeout=5)

    def action_window(self) -> None:
        self.window = WINDOWS[(WINDOWS.index(self.window) + 1) % len(WINDOWS)]
        self.notify(f"History: {window_text(self.window)}", timeout=1.5)
        self.redraw()

    def action_smooth(self) -> None:
        self.smooth = not self.smooth
        self.notify("Curves: " + ("moving average" if self.smooth else
                                  "raw, with each column's min–max band"), timeout=1.5)
        self.redraw()

    def _change(self, key: str, value, what: str) -> None:
        """Apply one config change from a quick key, as the settings screen would."""
        config = self.runner.sim.config
        try:
            new = config.with_overrides([(key, value)], self.registry)
        except NnsimError as exc:
            self.notify(f"not applied: {exc}", severity="error", timeout=6)
            return
        live = new.structure_key() == config.structure_key()
        # built on the training thread: one that cannot be built is refused there, with a
        # notice, and the run goes on as it was
        self.runner.reconfigure(new)
        self.notify(f"{what}" + (" (live)" if live else " (rebuilding from the seed)"),
                    timeout=2)

    def action_lr(self, factor: float) -> None:
        lr = self.runner.sim.lr
        self._change("optimizer.lr", lr * factor, f"lr {fmt(lr)} → {fmt(lr * factor)}")

    def action_cycle(self, family: str) -> None:
        model = self.runner.sim.config.model
        current = getattr(model, family).name
        names = self.registry.names(family)
        name = names[(names.index(current) + 1) % len(names)] if current in names else names[0]
        self._change(f"model.{family}", name, f"{family} {current} → {name}")

    def action_batchnorm(self) -> None:
        current = self.runner.sim.config.model.normalizer.name
        name = "none" if current == "batchnorm" else "batchnorm"
        self._change("model.normalizer", name, f"normalizer {current} → {name}")

    def action_reseed(self) -> None:
        self.runner.reseed()
        self.notify("Reset with a new seed.", timeout=2)

    def action_view(self, name: str) -> None:
        self.query_one("#tabs", Tabs).active = f"tab-{name}"

    def action_next_view(self) -> None:
        names = [name for name, _, _ in VIEWS]
        self.action_view(names[(names.index(self.view_name) + 1) % len(names)])

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        assert event.tab.id is not None  # every tab is made with an id (compose)
        name = event.tab.id.removeprefix("tab-")
        self.view_name = name
        self.query_one("#views", ContentSwitcher).current = name
        self.redraw()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """While a branch is on screen, the keys that act on the run behind it (e, g, the
        timeline, the panels, live changes) do nothing: only help and quit stay."""
        from nnsim.tui.compare import BranchScreen

        if isinstance(self.screen, BranchScreen):
            return action in ("help", "quit", "command_palette")
        return True

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.HELP_KEYS, [
            (f"{label.split(maxsplit=1)[1]} ({label.split()[0]})", cls.HELP)
            for _, label, cls in VIEWS]))

    def action_plugins(self) -> None:
        self.push_screen(PluginsScreen(self.registry))

    def action_settings(self) -> None:
        self.push_screen(SettingsScreen(self.runner.sim.config, self.registry,
                                        self.runner.reconfigure))

    def action_save_config(self) -> None:
        def save(path: str | None) -> None:
            if path:
                self._file_action(lambda: self.runner.save_config(path), "Config saved to")
        self.push_screen(PathPrompt("Save the config as TOML to:", "nnsim-config.toml"), save)

    def action_export(self) -> None:
        def export(path: str | None) -> None:
            if path:
                self.notify(f"Exporting the history to {path}…", timeout=2)
                self._in_background(lambda: self.runner.export_history(path),
                                    "History exported to")
        self.push_screen(PathPrompt("Export the kept history (JSONL; CSV for .csv) to:",
                                    "nnsim-history.jsonl"), export)

    def action_load_config(self) -> None:
        def load_from(path: str | None) -> None:
            if not path:
                return
            try:
                config = load(Path(path).expanduser(), registry=self.registry)
            except NnsimError as exc:
                self.notify(str(exc), title="Config not loaded", severity="error", timeout=8)
                return
            self.runner.reconfigure(config)
            self.notify(f"Loaded {path}", timeout=3)
        self.push_screen(PathPrompt("Load a config from:", "nnsim-config.toml"), load_from)

    def action_save_checkpoint(self) -> None:
        def save(path: str | None) -> None:
            if path:
                self.runner.save_checkpoint(path)
        self.push_screen(PathPrompt("Save a checkpoint to (a folder or a .npz file):",
                                    "nnsim-checkpoint"), save)

    def action_load_checkpoint(self) -> None:
        def load_from(path: str | None) -> None:
            if path:
                self.runner.load_checkpoint(path)
        self.push_screen(PathPrompt("Load the checkpoint in (a folder or a .npz file):",
                                    "nnsim-checkpoint"), load_from)

    def _in_background(self, do, done: str) -> None:
        """Write a file on a thread of its own; say how it went when it is done."""
        def work() -> None:
            try:
                path = do()
            except NnsimError as exc:
                self.call_from_thread(self.notify, str(exc), title="Not written",
                                      severity="error", timeout=8)
                return
            self.call_from_thread(self.notify, f"{done} {path}", timeout=4)
        self.run_worker(work, thread=True, group="files", exit_on_error=False)

    def _file_action(self, do, done: str) -> None:
        try:
            path = do()
        except NnsimError as exc:
            self.notify(str(exc), title="Not written", severity="error", timeout=8)
            return
        self.notify(f"{done} {path}", timeout=4)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        from nnsim.tui.compare import BranchScreen

        yield from super().get_system_commands(screen)
        if isinstance(screen, BranchScreen):  # the run behind it is left alone (check_action)
            return
        yield SystemCommand("Play / pause", "Start or stop training", self.action_play_pause)
        yield SystemCommand("Step", "Take one training step", self.action_step)
        yield SystemCommand("Reset", "Rebuild with the same seed", self.action_reset)
        yield SystemCommand("New seed", "Rebuild with a new random seed", self.action_reseed)
        yield SystemCommand("Settings", "Edit every config key", self.action_settings)
        yield SystemCommand("Save config", "Write the config as TOML", self.action_save_config)
        yield SystemCommand("Load config", "Read a TOML config", self.action_load_config)
        yield SystemCommand("Export history", "Write the metrics as JSONL or CSV",
                            self.action_export)
        yield SystemCommand("Save checkpoint", "Everything needed to resume exactly",
                            self.action_save_checkpoint)
        yield SystemCommand("Load checkpoint", "Resume a saved run", self.action_load_checkpoint)
        if self.lesson is not None:
            yield SystemCommand("Lesson: next run", "Switch to the lesson's next configuration",
                                self.action_next_run)
            yield SystemCommand("Lesson: check", "Train every run and test the claim",
                                self.action_check_lesson)
        yield SystemCommand("Plugins", "Loaded components and failed plugins",
                            self.action_plugins)
        for name, label, _ in VIEWS:
            yield SystemCommand(f"Show {label[2:]}", f"Switch to the {label[2:]} panel",
                                lambda n=name: self.action_view(n))


def make_app(config: Config | None = None, paused: bool = False,
             registry: Registry | None = None, lesson: Lesson | None = None,
             lesson_overrides: Iterable = (), control: bool = False) -> NnsimApp:
    """The one factory the CLI, the tests and the benchmarks build the app with.
    `lesson_overrides` (--set) and `control` apply to every run of the lesson and its
    check, as they do headless."""
    registry = registry or default_registry()
    return NnsimApp(config or Config.from_dict({}, registry), registry, paused=paused,
                    lesson=lesson, lesson_overrides=lesson_overrides, control=control)
