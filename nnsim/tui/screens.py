"""Modal screens: help, plugins, settings, and a file-name prompt."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Select, Static

from nnsim.config import COMPONENT_KEYS, SCHEMA, Config, parse_set
from nnsim.engine.simulation import Simulation
from nnsim.errors import ConfigError, NnsimError
from nnsim.pluginmanager import Registry

PANELS = {
    "Layers (1)": "One row per layer. ‖∂L/∂W‖: gradient norm of the weights (log scale): it "
                  "shrinking towards the first layers is vanishing gradients. saturated %: "
                  "units whose activation derivative is under 5% of its maximum. dead %: units "
                  "with no gradient for any example in the batch (dead ReLUs). act std: spread "
                  "of the activations. ‖ΔW‖/‖W‖: size of the update relative to the weights; "
                  "around 1e-3 (▄, green) is the rule of thumb. ‖velocity‖: the optimizer's "
                  "state.",
    "Curves (2)": "Training loss of every step and validation loss at each evaluation (log "
                  "scale), and accuracy.",
    "Distributions (3)": "Each layer's activation histogram at the newest step: with a good "
                         "initialization the shapes stay alike through depth; N(0, 0.01) "
                         "squeezes them to zero.",
    "Boundary (4)": "For 2-D datasets: the predicted class over the input plane and the "
                    "training points.",
    "Optimizer (5)": "Optimizer state norms per layer, the cosine between the update and the "
                     "gradient, and the effective step ‖ΔW‖/‖∂L/∂W‖ (momentum grows it towards "
                     "lr/(1−β)).",
}


class Dismissable(ModalScreen):
    BINDINGS = [Binding("escape", "dismiss", "Close"), Binding("q", "dismiss", "Close",
                                                               show=False)]
    DEFAULT_CSS = """
    Dismissable { align: center middle; }
    Dismissable > VerticalScroll { width: 90%; height: 90%; border: round $accent;
                                   background: $surface; padding: 0 1; }
    """


class HelpScreen(Dismissable):
    def __init__(self, bindings: list[tuple[str, str]]) -> None:
        super().__init__()
        self.keys = bindings

    def compose(self) -> ComposeResult:
        text = Text()
        text.append("Keys\n", "bold")
        for key, what in self.keys:
            text.append(f"  {key:<12}", "bold cyan")
            text.append(f"{what}\n")
        text.append("\nPanels\n", "bold")
        for name, what in PANELS.items():
            text.append(f"  {name}\n", "bold cyan")
            text.append(f"    {what}\n")
        text.append("\nThe status line shows the step, epoch, training and validation loss and "
                    "accuracy, the learning rate, steps per second and the state. A run that "
                    "goes non-finite pauses and says where. Escape closes this screen.", "dim")
        with VerticalScroll():
            yield Static(text)


class PluginsScreen(Dismissable):
    def __init__(self, registry: Registry) -> None:
        super().__init__()
        self.registry = registry

    def compose(self) -> ComposeResult:
        text = Text()
        for family, table in self.registry.families.items():
            text.append(f"{family}s\n", "bold")
            for name, entry in table.items():
                text.append(f"  {name:<16}", "bold cyan")
                text.append(f"{entry.cls.summary()} ")
                text.append(f"[{entry.source}]\n", "dim")
        text.append("\nfailed plugins\n", "bold")
        if not self.registry.failures:
            text.append("  none\n", "dim")
        for failure in self.registry.failures:
            text.append(f"  {failure}\n", "red")
        with VerticalScroll():
            yield Static(text)


class PathPrompt(ModalScreen[str | None]):
    """Asks for a file name; dismisses with it, or None on escape."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    PathPrompt { align: center middle; }
    PathPrompt > Vertical { width: 70; height: auto; border: round $accent;
                            background: $surface; padding: 0 1; }
    """

    def __init__(self, title: str, default: str) -> None:
        super().__init__()
        self.title_text, self.default = title, default

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(self.title_text)
            yield Input(self.default, id="path")
            yield Label("Enter to confirm, Escape to cancel", classes="dim")

    @on(Input.Submitted)
    def submit(self, event: Input.Submitted) -> None:
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)


def _text(value: Any) -> str:
    from nnsim.config import _toml_value

    return value if isinstance(value, str) else _toml_value(value)


class SettingsScreen(ModalScreen):
    """Every config key as a form field. Enter (or a new choice) applies one field: optimizer
    hyperparameters apply live, anything else rebuilds from the seed. A refused value keeps
    the old one and says why."""

    BINDINGS = [Binding("escape", "dismiss", "Close")]
    DEFAULT_CSS = """
    SettingsScreen { align: center middle; }
    SettingsScreen > VerticalScroll { width: 96%; height: 94%; border: round $accent;
                                      background: $surface; padding: 0 1; }
    SettingsScreen .row { height: auto; margin: 0 0 0 0; }
    SettingsScreen .key { width: 30; padding: 1 1 0 0; text-style: bold; }
    SettingsScreen Input, SettingsScreen Select { width: 34; }
    SettingsScreen .help { width: 1fr; padding: 1 0 0 1; color: $text-muted; }
    SettingsScreen .error { color: $error; padding: 0 0 0 30; height: auto; }
    SettingsScreen .section { text-style: bold; color: $accent; padding: 1 0 0 0; }
    SettingsScreen #status { height: auto; padding: 0 0 1 0; }
    """

    def __init__(self, config: Config, registry: Registry, apply) -> None:
        super().__init__()
        self.config = config
        self.registry = registry
        self.apply_config = apply

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="form"):
            yield Static("Settings: Enter applies a field, Escape closes. Optimizer "
                         "hyperparameters apply live; other changes rebuild from the seed.",
                         id="status")
            yield from self.fields()

    def fields(self):
        d = self.config.to_dict()
        yield from self.row("seed", d["seed"], "random seed: the same seed gives the same run")
        for section, table in d.items():
            if section == "seed":
                continue
            yield Static(f"[{section}]", classes="section")
            family = {"data": "dataset", "optimizer": "optimizer"}.get(section)
            for key, value in table.items():
                dotted = f"{section}.{key}"
                if key == "name" and family:
                    yield from self.choice(dotted, value, family, SCHEMA[section]["name"][1])
                elif section == "model" and key in COMPONENT_KEYS:
                    name = value if isinstance(value, str) else value["name"]
                    fam = COMPONENT_KEYS[key]
                    yield from self.choice(dotted, name, fam, SCHEMA["model"][key][1])
                    cls = self.registry.get(fam, name)
                    hypers = {} if isinstance(value, str) else value
                    for hk, hyper in cls.hyperparameters.items():
                        yield from self.row(f"{dotted}.{hk}", hypers.get(hk, hyper.default),
                                            f"{hyper.help} ({hyper.range_text()})")
                elif key in SCHEMA.get(section, {}):
                    yield from self.row(dotted, value, SCHEMA[section][key][1])
                else:  # a dataset's or optimizer's hyperparameter
                    cls = self.registry.get(family, table["name"])
                    hyper = cls.hyperparameters[key]
                    yield from self.row(dotted, value, f"{hyper.help} ({hyper.range_text()})")

    def row(self, key: str, value: Any, help_text: str):
        yield Horizontal(Label(key, classes="key"), Input(_text(value), name=key),
                         Label(help_text, classes="help"), classes="row")
        yield Static("", classes="error", id=_error_id(key))

    def choice(self, key: str, value: str, family: str, help_text: str):
        options = [(name, name) for name in self.registry.names(family)]
        yield Horizontal(Label(key, classes="key"),
                         Select(options, value=value, allow_blank=False, name=key),
                         Label(help_text, classes="help"), classes="row")
        yield Static("", classes="error", id=_error_id(key))

    @on(Input.Submitted)
    def input_submitted(self, event: Input.Submitted) -> None:
        key = event.input.name
        _, value = parse_set(f"{key}={event.value}")
        if not self.try_apply(key, value):
            event.input.value = _text(self.current(key))

    @on(Select.Changed)
    async def select_changed(self, event: Select.Changed) -> None:
        key = event.select.name
        if event.value == self.current(key):
            return
        if self.try_apply(key, event.value):
            await self.rebuild()

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

    def try_apply(self, key: str, value: Any) -> bool:
        """Validate and apply one change; on refusal show why and keep the old value."""
        error = self.query_one(f"#{_error_id(key)}", Static)
        try:
            new = self.config.with_overrides([(key, value)], self.registry)
        except ConfigError as exc:
            error.update(Text(f"refused: {exc}", style="red"))
            return False
        live = new.structure_key() == self.config.structure_key()
        if not live:
            try:  # some limits show only when built (a batch larger than the data, ...)
                Simulation(new, self.registry, telemetry=False)
            except NnsimError as exc:
                error.update(Text(f"refused: {exc}", style="red"))
                return False
        error.update("")
        self.config = new
        self.apply_config(new)
        self.query_one("#status", Static).update(
            f"{key} = {_text(value)}: " + ("applied live." if live else
                                           "applied; the network was rebuilt from the seed."))
        return True

    async def rebuild(self) -> None:
        """Redraw the fields: a new component brings its own hyperparameters."""
        form = self.query_one("#form", VerticalScroll)
        await form.remove_children(list(form.children)[1:])
        await form.mount_all(list(self.fields()))


def _error_id(key: str) -> str:
    return "error-" + key.replace(".", "-")



