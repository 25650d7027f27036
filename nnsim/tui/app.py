"""The Textual app: status line, panel tabs, the panels, the footer; training in a thread."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Static, Tab, Tabs

from nnsim.components import Lesson
from nnsim.config import Config, load
from nnsim.engine.runner import Runner
from nnsim.errors import NnsimError
from nnsim.pluginmanager import Registry, default_registry
from nnsim.tui.controls import CONTROL_BINDINGS, RunnerControls
from nnsim.tui.render import fmt
from nnsim.tui.screens import HelpScreen, PathPrompt, PluginsScreen, SettingsScreen
from nnsim.tui.views import (BoundaryView, CurvesView, DistributionsView, Frame, LayersView,
                             OptimizerView, View)

VIEWS = (("layers", "1 Layers", LayersView), ("curves", "2 Curves", CurvesView),
         ("distributions", "3 Distributions", DistributionsView),
         ("boundary", "4 Boundary", BoundaryView), ("optimizer", "5 Optimizer", OptimizerView))
REFRESH_HZ = 30
HISTORY_SHOWN = 600  # records the curves and sparklines look back over
STATE_STYLE = {"running": "bold green", "paused": "bold yellow", "diverged": "bold white on red",
               "halted": "bold white on red"}


class StatusBar(View):
    """Two lines: the run's state and numbers; the experiment (or why the run stopped)."""

    DEFAULT_CSS = "StatusBar { height: 2; padding: 0 1; background: $boost; }"
    plain = ""  # the text last shown, for tests and logs
    _lines: list[Text] = []

    def lines(self, width: int, height: int) -> list[Text]:
        return self._lines

    def show_status(self, frame: Frame, summary: str) -> None:
        last = frame.last
        text = Text()
        text.append(f" {frame.state} ", STATE_STYLE.get(frame.state, "bold"))
        if last is None:
            text.append("  step 0")
        else:
            val = frame.evals[-1] if frame.evals else None
            text.append(f"  step {last.step:,}", "bold")
            text.append("  loss ")
            text.append(fmt(last.loss), "cyan")
            if val is not None:
                text.append(" val ")
                text.append(fmt(val[1]), "magenta")
            if last.accuracy is not None:
                text.append("  acc ")
                text.append(f"{last.accuracy:.1%}", "cyan")
                if val is not None and val[2] is not None:
                    text.append(" val ")
                    text.append(f"{val[2]:.1%}", "magenta")
        text.append(f"  lr {fmt(frame.lr)}")
        if frame.state == "running":
            text.append(f"  {frame.rate:,.0f} steps/s")
        text.append(f"  speed {frame.speed}", "dim")
        second = Text()
        if frame.message:
            second.append(frame.message, "bold red")
        else:
            if last is not None:
                second.append(f"epoch {last.epoch:.2f} · ")
            second.append(summary, "dim")
        for line in (text, second):
            line.no_wrap, line.overflow = True, "ellipsis"
        self.plain = f"{text.plain}\n{second.plain}"
        self._lines = [text, second]
        self.show(frame)


class LessonPanel(Static):
    """The lesson beside the live views: what it claims, where to look, its runs, its check."""

    DEFAULT_CSS = """
    LessonPanel { width: 34%; min-width: 28; max-width: 48; height: 1fr; padding: 0 1;
                  border-left: solid $accent; }
    """

    def show(self, lesson: Lesson, current: str, verdict: str) -> None:
        text = Text()
        text.append(f"{lesson.title}\n\n", "bold")
        text.append(f"{lesson.explanation}\n\n")
        text.append("Watch: ", "bold")
        text.append(f"{lesson.watch}\n\n")
        text.append("Runs (o: next)\n", "bold")
        for label in lesson.runs:
            mark = "▶ " if label == current else "  "
            text.append(f"{mark}{label}\n", "bold cyan" if label == current else "")
        text.append("\nCheck (k): ", "bold")
        if verdict:
            style = "bold green" if verdict.startswith("PASS") else (
                "bold red" if verdict.startswith("FAIL") else "dim")
            text.append(verdict, style)
        else:
            steps = f"{lesson.steps} step{'s' if lesson.steps != 1 else ''}"
            text.append(f"trains every run for {steps} and tests the claim", "dim")
        self.update(text)


class NnsimApp(RunnerControls, App):
    """Watch a deep network train, live, layer by layer."""

    TITLE = "nnsim"
    CSS_PATH = "app.tcss"
    BINDINGS = [
        *CONTROL_BINDINGS,
        Binding("e", "reseed", "New seed"),
        Binding("s", "settings", "Settings"),
        Binding("p", "plugins", "Plugins"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        Binding("1", "view('layers')", "Layers", show=False),
        Binding("2", "view('curves')", "Curves", show=False),
        Binding("3", "view('distributions')", "Distributions", show=False),
        Binding("4", "view('boundary')", "Boundary", show=False),
        Binding("5", "view('optimizer')", "Optimizer", show=False),
        Binding("v", "next_view", "Next view", show=False),
        Binding("ctrl+s", "save_config", "Save config", show=False),
        Binding("ctrl+o", "load_config", "Load config", show=False),
        Binding("x", "export", "Export history", show=False),
        Binding("c", "save_checkpoint", "Save checkpoint", show=False),
        Binding("l", "load_checkpoint", "Load checkpoint", show=False),
        Binding("o", "next_run", "Lesson: next run", show=False),
        Binding("k", "check_lesson", "Lesson: check", show=False),
        Binding("i", "toggle_lesson", "Lesson: hide/show", show=False),
    ]
    HELP_KEYS = [("space", "play / pause"), ("n", "one step (pauses)"),
                 ("+ / -", "faster / slower (steps per frame)"),
                 ("r", "reset with the same seed"), ("e", "reset with a new seed"),
                 ("1 … 5, v", "switch panel: layers, curves, distributions, boundary, "
                                "optimizer"),
                 ("s", "settings: every config key"), ("p", "plugins and failures"),
                 ("ctrl+s", "save the config as TOML"), ("ctrl+o", "load a config"),
                 ("x", "export the metrics history (JSONL, or CSV for .csv)"),
                 ("c / l", "save / load a checkpoint (weights, optimizer, random streams, "
                           "history)"),
                 ("o / k / i", "in a lesson: next configuration / run the check / hide the "
                               "lesson panel"),
                 ("ctrl+p", "command palette"), ("?", "this help"), ("q", "quit")]

    def __init__(self, config: Config, registry: Registry | None = None,
                 paused: bool = False, lesson: Lesson | None = None) -> None:
        super().__init__()
        self.registry = registry or default_registry()
        self.runner = Runner(config, self.registry, paused=paused)
        self.lesson = lesson
        self.lesson_run = next(iter(lesson.runs)) if lesson else ""
        self.verdict: str = ""
        self.view_name = "layers"
        self._drawn: tuple = (-1, "", -1)
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
        return Frame(
            records=runner.history.snapshot(HISTORY_SHOWN),
            evals=runner.history.eval_snapshot(),
            state=runner.state, message=runner.message, rate=runner.rate,
            speed=runner.speed_text, activation=sim.config.model.activation.name,
            optimizer=sim.config.optimizer.name, lr=sim.lr, grid=runner.grid,
            extras={"input_dim": sim.data.input_dim,
                    "focus": self.lesson.focus if self.lesson is not None else ""})

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
            self.notify(text, severity=level, timeout=6 if level == "error" else 3)
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
        size has changed, at most about three times a second."""
        import time

        view = self.query_one("#boundary", BoundaryView)
        if view.size.width < 4:
            return  # not laid out yet
        now = time.monotonic()
        step = self.runner.sim.step_count
        wanted = (step, view.grid_size())
        if self._grid_asked and (self._grid_asked[:2] == wanted or now - self._grid_asked[2]
                                 < 0.3):
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
            self.query_one(LessonPanel).show(self.lesson, self.lesson_run, self.verdict)

    def action_next_run(self) -> None:
        """Switch the lesson to its next configuration (rebuilt from the seed)."""
        if self.lesson is None:
            self.notify("Not in a lesson: try nnsim lessons", timeout=3)
            return
        from nnsim.lessons import run_config

        labels = list(self.lesson.runs)
        self.lesson_run = labels[(labels.index(self.lesson_run) + 1) % len(labels)]
        self.runner.reconfigure(run_config(self.lesson, self.lesson_run, self.registry))
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

        try:
            _, verdict = run_lesson(self.lesson, self.registry)
            text = f"{'PASS' if verdict.passed else 'FAIL'}: {verdict.numbers}"
        except NnsimError as exc:
            text = f"could not check: {exc}"
        self.call_from_thread(self._checked, text)

    def _checked(self, text: str) -> None:
        self.verdict = text
        self.show_lesson()

    def action_toggle_lesson(self) -> None:
        if self.lesson is not None:
            panel = self.query_one(LessonPanel)
            panel.display = not panel.display

    # ------------------------------------------------------------ actions

    def action_reset(self) -> None:
        super().action_reset()
        self.notify("Reset: same seed, same run.", timeout=2)

    def action_reseed(self) -> None:
        self.runner.reseed()
        self.notify("Reset with a new seed.", timeout=2)

    def action_view(self, name: str) -> None:
        self.query_one("#tabs", Tabs).active = f"tab-{name}"

    def action_next_view(self) -> None:
        names = [name for name, _, _ in VIEWS]
        self.action_view(names[(names.index(self.view_name) + 1) % len(names)])

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        name = event.tab.id.removeprefix("tab-")
        self.view_name = name
        self.query_one("#views", ContentSwitcher).current = name
        self.redraw()

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.HELP_KEYS))

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
                self._file_action(lambda: self.runner.export_history(path),
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

    def _file_action(self, do, done: str) -> None:
        try:
            path = do()
        except NnsimError as exc:
            self.notify(str(exc), title="Not written", severity="error", timeout=8)
            return
        self.notify(f"{done} {path}", timeout=4)

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Play / pause", "Start or stop training", self.action_toggle)
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
             registry: Registry | None = None, lesson: Lesson | None = None) -> NnsimApp:
    """The one factory the CLI, the tests and the benchmarks build the app with."""
    registry = registry or default_registry()
    return NnsimApp(config or Config.from_dict({}, registry), registry, paused=paused,
                    lesson=lesson)
