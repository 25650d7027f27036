"""Modal screens: help, plugins, settings, and a file-name prompt."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from rich.console import Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, ScreenResultType
from textual.validation import Integer, Number, ValidationResult, Validator
from textual.widget import Widget
from textual.widgets import (Input, Label, OptionList, Select, Static, TabbedContent, TabPane,
                             Tabs)

from nnsim.config import (COMPONENT_KEYS, DTYPES, NORM_POSITIONS, PREPROCESS, SCHEMA, Config,
                          parse_set)
from nnsim.engine.simulation import Simulation
from nnsim.errors import ConfigError, NnsimError
from nnsim.pluginmanager import Registry

if TYPE_CHECKING:
    from nnsim.engine.runner import Runner



class Dismissable(ModalScreen):
    BINDINGS = [Binding("escape", "dismiss", "Close"), Binding("q", "dismiss", "Close",
                                                               show=False)]
    DEFAULT_CSS = """
    Dismissable { align: center middle; }
    Dismissable > VerticalScroll { width: 90%; height: 90%; border: round $accent;
                                   background: $surface; padding: 0 1; }
    """


class HelpScreen(Dismissable):
    def __init__(self, bindings: list[tuple[str, str]],
                 panels: Sequence[tuple[str, str]] = ()) -> None:
        super().__init__()
        self.keys = bindings
        self.panels = list(panels)  # (title, what it shows)

    def compose(self) -> ComposeResult:
        # keys and their meanings as a grid, so that a meaning wraps under itself, not under
        # the keys (the theme's text colour: readable in every theme)
        keys = Table.grid(padding=(0, 2))
        keys.add_column(no_wrap=True, style="bold")
        keys.add_column()
        for key, what in self.keys:
            keys.add_row(key, what)
        panels = [part for name, what in self.panels  # each meaning wraps under itself
                  for part in (Padding(Text(name, "bold"), (0, 0, 0, 2)),
                               Padding(Text(what), (0, 0, 0, 4)))]
        body = Group(
            Text("Escape or q closes this screen; the arrows and PgDn scroll it.\n", "dim"),
            Text("Keys", "bold"), Padding(keys, (0, 0, 0, 2)),
            Text("\nPanels", "bold"), *panels,
            Text("\nThe status line shows the step, epoch, training and validation loss and "
                 "accuracy, the learning rate, steps per second and the state. A run that "
                 "goes non-finite pauses and says where.", "dim"))
        with VerticalScroll():
            yield Static(body)


class PluginsScreen(Dismissable):
    def __init__(self, registry: Registry) -> None:
        super().__init__()
        self.registry = registry

    def compose(self) -> ComposeResult:
        text = Text()
        for family, table in self.registry.families.items():
            text.append(f"{family}s\n", "bold")
            for name, entry in table.items():
                text.append(f"  {name:<16}", "bold")
                text.append(f"{entry.cls.summary()} ")
                text.append(f"[{entry.source}]\n", "dim")
        text.append("\nfailed plugins\n", "bold")
        if not self.registry.failures:
            text.append("  none\n", "dim")
        for failure in self.registry.failures:
            text.append(f"  {failure}\n", "red")
        with VerticalScroll():
            yield Static(text)


class TypingPausesTraining(ModalScreen[ScreenResultType]):
    """A modal screen with text fields. While an Input has focus the training pauses, so a
    busy screen loses no keystroke; when focus leaves the text fields (or the screen closes)
    a run that was going before goes on."""

    holding = False  # True while this screen paused a run that was going

    def _app_runner(self) -> Runner | None:
        """The app's run, if it has one."""
        return getattr(self.app, "runner", None)

    def watch_focused(self, focused: Widget | None) -> None:
        runner = self._app_runner()
        if runner is None:
            return
        typing = isinstance(focused, Input)
        if typing and not self.holding and not runner.paused:
            runner.pause()
            self.holding = True
        elif not typing and self.holding:
            self.holding = False
            runner.play()

    def on_unmount(self) -> None:
        if self.holding:
            self.holding = False
            runner = self._app_runner()
            assert runner is not None  # holding: this screen paused it
            runner.play()


class PathPrompt(TypingPausesTraining[str | None]):
    """Asks for a file name; dismisses with it, or None on escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    PathPrompt { align: center middle; }
    PathPrompt > Vertical { width: 70; max-width: 100%; height: auto; border: round $accent;
                            background: $surface; padding: 0 1; }
    PathPrompt .dim { color: $text-muted; }
    """

    def __init__(self, title: str, default: str) -> None:
        super().__init__()
        self.title_text, self.default = title, default

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text, markup=False)
            yield Input(self.default, id="path")
            yield Label("Enter to confirm, Escape to cancel (training waits while you type)",
                        classes="dim")

    @on(Input.Submitted)
    def submit(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


def _text(value: Any) -> str:
    from nnsim.config import _toml_value

    return value if isinstance(value, str) else _toml_value(value)


#: Config keys outside the plugins whose value is one of a fixed set.
CHOICES: dict[str, tuple[str, ...]] = {"data.preprocess": PREPROCESS,
                                       "model.norm_position": NORM_POSITIONS,
                                       "model.dtype": DTYPES}
#: The tabs, in order: what is tuned most comes first. The seed sits with the training.
TABS = ("optimizer", "model", "train", "data")
#: Keys whose value is a plugin: the Select's family; their hyperparameters follow them.
FAMILIES = {"optimizer.name": "optimizer", "data.name": "dataset",
            **{f"model.{key}": family for key, family in COMPONENT_KEYS.items()}}


class Accepted(Validator):
    """Checks a field's text the way the config will: the message is the config's own."""

    def __init__(self, screen: SettingsScreen, key: str) -> None:
        super().__init__()
        self.screen, self.key = screen, key

    def validate(self, value: str) -> ValidationResult:
        try:
            _, parsed = parse_set(f"{self.key}={value}")
            self.screen.config.with_overrides([(self.key, parsed)], self.screen.registry)
        except ConfigError as exc:
            return self.failure(exc.message, value)
        return self.success()


class ErrorLine(Static):
    """Why a field's value is refused or invalid; it scrolls itself into sight."""

    def on_resize(self) -> None:
        if self.display:  # laid out anew (shown, or a longer message): keep it in sight
            self.scroll_visible(animate=False)


class Field(Vertical):
    """One setting: a line with its name, its widget and a short help (cropped), and under
    it a line that appears only to say why a value is refused or invalid."""

    def __init__(self, key: str, label: str, widget: Widget, help_text: str) -> None:
        super().__init__(classes="field", id="field-" + _dashed(key))
        self.key, self.label, self.widget, self.help_text = key, label, widget, help_text

    def compose(self) -> ComposeResult:
        with Horizontal(classes="line"):
            yield Label(self.label, classes="key", markup=False)
            yield self.widget
            yield Label(self.help_text, classes="help", markup=False)
        yield ErrorLine("", classes="error", id=_error_id(self.key), markup=False)


class Sections(TabbedContent):
    """The settings' tabs. A section comes forward for a focused field only if the field still
    has focus when the notice arrives: with keys typed quickly, a stale notice would show one
    section while the focus is in another."""

    def _on_tab_pane_focused(self, event: TabPane.Focused) -> None:
        event.prevent_default()
        event.stop()
        focused = self.screen.focused
        if focused is not None and event.tab_pane in focused.ancestors and event.tab_pane.id:
            self.active = event.tab_pane.id


class SettingsScreen(TypingPausesTraining[None]):
    """Every config key as a one-line field, a tab per section. Enter (or a new choice)
    applies one field: optimizer hyperparameters apply live, anything else rebuilds from the
    seed. A refused value keeps the old one and says why on the field's own line."""

    BINDINGS = [Binding("escape", "dismiss", "Close"),
                # moving focus before the next key is read: keys typed right after Tab
                # reach the new field instead of the old one
                Binding("tab", "app.focus_next", "Next field", show=False, priority=True),
                Binding("shift+tab", "app.focus_previous", "Previous field", show=False,
                        priority=True),
                # on the tab bar, ←/→ switch sections at once for the same reason
                Binding("left", "section(-1)", "Previous section", show=False, priority=True),
                Binding("right", "section(1)", "Next section", show=False, priority=True)]
    DEFAULT_CSS = """
    SettingsScreen { align: center middle; }
    SettingsScreen > #box { width: 100%; max-width: 130; height: 100%; max-height: 26;
                            border: round $accent; background: $surface; padding: 0 1;
                            border-title-color: $accent; border-subtitle-color: $text-muted; }
    SettingsScreen TabbedContent { height: 1fr; }
    SettingsScreen ContentSwitcher { height: 1fr; }
    SettingsScreen TabPane { height: 1fr; padding: 0; }
    SettingsScreen TabPane > VerticalScroll { height: 1fr; }
    SettingsScreen .field { height: auto; }
    SettingsScreen .field.-current { background: $boost; }
    SettingsScreen .field.-current .key { color: $accent; text-style: bold; }
    SettingsScreen .line { height: 1; }
    SettingsScreen .key { width: 18; height: 1; text-wrap: nowrap; text-overflow: ellipsis;
                          color: $text; }
    SettingsScreen .line Input, SettingsScreen .line Select { width: 22; height: 1; }
    SettingsScreen .line Input { background: $boost; }
    SettingsScreen .line Input:focus { background: $primary 30%; }
    SettingsScreen .line Input.-invalid { color: $error; background: $error 15%; }
    SettingsScreen .help { width: 1fr; height: 1; padding: 0 0 0 1; color: $text-muted;
                           text-wrap: nowrap; text-overflow: ellipsis; }
    SettingsScreen .error { display: none; height: auto; padding: 0 0 0 18; color: $error; }
    SettingsScreen .error.-shown { display: block; }
    SettingsScreen .hypers { height: auto; }
    SettingsScreen #about { height: auto; max-height: 2; color: $text-muted; }
    SettingsScreen #status { height: auto; max-height: 2; color: $text; }
    """

    def __init__(self, config: Config, registry: Registry, apply) -> None:
        super().__init__()
        self.config = config
        self.registry = registry
        self.apply_config = apply

    # ------------------------------------------------------------ building the form

    def compose(self) -> ComposeResult:
        d = self.config.to_dict()
        box = Vertical(id="box")
        box.border_title = "Settings"
        box.border_subtitle = "Esc closes"
        with box:
            with Sections(initial="section-" + TABS[0]):
                for section in TABS:
                    with TabPane(section, id="section-" + section):
                        with VerticalScroll(can_focus=False):
                            if section == "train":
                                yield self.field("seed", "seed", d["seed"],
                                                 "random seed: the same seed gives the same run")
                            yield from self.section_fields(section, d[section])
            yield Static("", id="about", markup=False)
            yield Static("Enter applies a field · Tab: next field · ←/→ (but in a text "
                         "field): another section", id="status", markup=False)

    def section_fields(self, section: str, table: dict[str, Any]) -> ComposeResult:
        for key, value in table.items():
            dotted = f"{section}.{key}"
            if dotted in FAMILIES:
                name = value if isinstance(value, str) else value["name"]
                yield self.component_field(dotted, name)
                with Vertical(classes="hypers", id="hypers-" + _dashed(dotted)):
                    yield from self.hyper_fields(dotted, name)
            elif key in SCHEMA[section]:
                yield self.field(dotted, key, value, SCHEMA[section][key][1])
            # a dataset's or an optimizer's hyperparameter is made with its plugin's field

    def component_field(self, key: str, name: str) -> Field:
        family = FAMILIES[key]
        label = {"optimizer.name": "optimizer", "data.name": "dataset"}.get(
            key, key.partition(".")[2])
        options = [(n, n) for n in self.registry.names(family)]
        select = Select(options, value=name, allow_blank=False, name=key, compact=True)
        return Field(key, label, select, self.component_help(key, name))

    def component_help(self, key: str, name: str) -> str:
        summary = self.registry.get(FAMILIES[key], name).summary()
        section, _, rest = key.partition(".")
        return summary or SCHEMA[section][rest][1]

    def hyper_fields(self, key: str, name: str) -> list[Field]:
        """The fields of a plugin's hyperparameters, with their values in the config."""
        cls = self.registry.get(FAMILIES[key], name)
        parent = key.rpartition(".")[0] if key.endswith(".name") else key
        fields = []
        for hk, hyper in cls.hyperparameters.items():
            dotted = f"{parent}.{hk}"
            value = self.current(dotted)
            value = hyper.default if value is None else value
            help_text = f"{hyper.help} ({hyper.range_text()})"
            choices = (True, False) if hyper.kind is bool else hyper.choices
            if choices is not None:
                fields.append(self.choice_field(dotted, "  " + hk, value, choices, help_text))
                continue
            validators: list[Validator] = [Accepted(self, dotted)]
            kind: Literal["integer", "number", "text"] = "text"
            if hyper.kind in (int, float):
                number = Integer if hyper.kind is int else Number
                validators.append(number(minimum=hyper.low, maximum=hyper.high))
                kind = "integer" if hyper.kind is int else "number"
            fields.append(Field(dotted, "  " + hk,
                                self.input(dotted, value, kind, validators), help_text))
        return fields

    def field(self, key: str, label: str, value: Any, help_text: str) -> Field:
        if key in CHOICES:
            return self.choice_field(key, label, value, CHOICES[key], help_text)
        if isinstance(value, bool):
            return self.choice_field(key, label, value, (True, False), help_text)
        validators: list[Validator] = [Accepted(self, key)]
        kind: Literal["integer", "number", "text"] = "text"
        if isinstance(value, int):
            validators.append(Integer())
            kind = "integer"
        elif isinstance(value, float):
            validators.append(Number())
            kind = "number"
        return Field(key, label, self.input(key, value, kind, validators), help_text)

    def choice_field(self, key: str, label: str, value: Any, choices, help_text: str) -> Field:
        options = [(_text(c), c) for c in choices]
        return Field(key, label, Select(options, value=value, allow_blank=False, name=key,
                                        compact=True), help_text)

    @staticmethod
    def input(key: str, value: Any, kind: Literal["integer", "number", "text"],
              validators: list[Validator]) -> Input:
        return Input(_text(value), name=key, type=kind, validators=validators,
                     validate_on=["changed", "submitted"], compact=True)

    def on_mount(self) -> None:
        """Focus the first field of the first tab (none while the app is closing: `q` and
        then `s` typed fast mount this screen as the app takes its widgets down)."""
        fields = self.query(f"#section-{TABS[0]} .field").results(Field)
        first = next(fields, None)
        if first is not None:
            self.call_after_refresh(first.widget.focus)

    # ------------------------------------------------------------ reacting

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "section":  # ←/→ move the cursor in a text field and nothing else
            return not isinstance(self.focused, (Input, OptionList))  # (an open choice list)
        return True

    def action_section(self, step: int) -> None:
        tabs = self.query_one(TabbedContent)
        index = TABS.index(tabs.active.removeprefix("section-"))
        section = TABS[(index + step) % len(TABS)]
        tabs.active = "section-" + section
        if not isinstance(self.focused, Tabs):  # from a field: on to the new section's first
            first = self.query(f"#section-{section} Input, #section-{section} Select")
            if first:
                first.first().focus()

    editing: Input | None = None  # the text field that had focus last

    def watch_focused(self, focused: Widget | None) -> None:
        super().watch_focused(focused)
        field = next((node for node in (focused.ancestors if focused else [])
                      if isinstance(node, Field)), None)
        if not self.is_mounted:
            return
        left, self.editing = self.editing, focused if isinstance(focused, Input) else None
        if left is not None and left is not focused and left.is_attached and left.name:
            self.forget_typing(left)
        for other in self.query(".field.-current"):
            other.set_class(other is field, "-current")
        if field is not None:
            field.add_class("-current")
            self.query_one("#about", Static).update(f"{field.key}: {field.help_text}")
        elif isinstance(focused, Tabs):
            self.query_one("#about", Static).update("Sections: ←/→ switches, Tab goes to "
                                                    "the fields.")

    def forget_typing(self, field: Input) -> None:
        """A text field left without Enter shows the value in force again, not a value that
        looks applied but is not."""
        key = field.name
        if key is None:
            return  # not a config field
        applied = _text(self.current(key))
        if field.value != applied:
            field.value = applied
            self.show_error(key, "")
            self.query_one("#status", Static).update(
                f"{key} is still {applied}: a value applies with Enter.")

    @on(Input.Changed)
    def input_changed(self, event: Input.Changed) -> None:
        """Flag an invalid value as it is typed; the applied value never shows a flag."""
        key = event.input.name
        if key is None or event.value == _text(self.current(key)):
            return
        result = event.validation_result
        if result is not None and not result.is_valid:
            self.show_error(key, f"invalid: {result.failure_descriptions[0]}")
        else:
            self.show_error(key, "")

    @on(Input.Submitted)
    def input_submitted(self, event: Input.Submitted) -> None:
        key = event.input.name
        event.stop()
        if key is None:
            return
        try:
            _, value = parse_set(f"{key}={event.value}")
        except ConfigError as exc:  # too long, or nested too deeply, to read at all
            self.show_error(key, f"refused: {exc.message}")
            return
        self.try_apply(key, value)
        event.input.value = _text(self.current(key))  # the value now in force

    @on(Select.Changed)
    async def select_changed(self, event: Select.Changed) -> None:
        key = event.select.name
        event.stop()
        if key is None or event.value == self.current(key):
            return
        if not self.try_apply(key, event.value):
            event.select.value = self.current(key)  # the old value; nothing else changes
        elif key in FAMILIES:
            await self.replace_hypers(key)

    async def replace_hypers(self, key: str) -> None:
        """A new plugin brings its own hyperparameters: only their rows are replaced."""
        name = self.current(key)
        field = self.query_one(f"#field-{_dashed(key)}", Field)
        field.help_text = self.component_help(key, name)
        field.query_one(".help", Label).update(field.help_text)
        if self.focused is field.widget:
            self.query_one("#about", Static).update(f"{key}: {field.help_text}")
        box = self.query_one(f"#hypers-{_dashed(key)}", Vertical)
        await box.remove_children()
        await box.mount_all(self.hyper_fields(key, name))

    def current(self, key: str) -> Any:
        """The config's value for a field; a component field's value is its name."""
        node: Any = self.config.to_dict()
        for part in key.split("."):
            if isinstance(node, str) and part == "name":
                return node
            node = node.get(part) if isinstance(node, dict) else None
        section, _, rest = key.partition(".")
        if section == "model" and rest in COMPONENT_KEYS and isinstance(node, dict):
            return node["name"]
        return node

    def show_error(self, key: str, message: str) -> None:
        error = self.query_one(f"#{_error_id(key)}", Static)
        error.update(message)
        error.set_class(bool(message), "-shown")
        if message:
            self.call_after_refresh(error.scroll_visible, animate=False)

    def try_apply(self, key: str, value: Any) -> bool:
        """Validate and apply one change; on refusal show why and keep the old value."""
        try:
            new = self.config.with_overrides([(key, value)], self.registry)
        except ConfigError as exc:
            self.show_error(key, f"refused: {exc}")
            return False
        live = new.structure_key() == self.config.structure_key()
        if not live:
            try:  # some limits show only when built (a batch larger than the data, ...)
                Simulation(new, self.registry, telemetry=False)
            except NnsimError as exc:
                self.show_error(key, f"refused: {exc}")
                return False
        self.show_error(key, "")
        self.config = new
        self.apply_config(new)
        self.query_one("#status", Static).update(
            f"{key} = {_text(self.current(key))}: " + (
                "applied live." if live else "applied; the network was rebuilt from the seed."))
        return True


def _dashed(key: str) -> str:
    return key.replace(".", "-")


def _error_id(key: str) -> str:
    return "error-" + _dashed(key)
