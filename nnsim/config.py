"""Experiment configuration: TOML files and --set overrides, validated against the plugins."""

from __future__ import annotations

import copy
import math
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnsim.errors import ConfigError, HyperError, did_you_mean
from nnsim.pluginmanager import Registry, UnknownComponent, default_registry

PREPROCESS = ("none", "standardize", "whiten")
DTYPES = ("float32", "float64")
NORM_POSITIONS = ("before", "after")

#: Every key with its default and one line of help; component hyperparameters come from
#: the plugins. The defaults are an experiment worth watching: a deep tanh net on spirals.
SCHEMA: dict[str, dict[str, tuple[Any, str]]] = {
    "data": {
        "name": ("spiral", "dataset plugin (its hyperparameters sit beside it: samples, noise, ...)"),
        "validation": (0.2, "share of the examples held out for validation, in [0, 0.9]"),
        "preprocess": ("standardize", "input preprocessing fitted on the training split: "
                                      "none, standardize or whiten (PCA)"),
        "augment": (0.0, "std of Gaussian noise added to every training batch (0 = off)"),
    },
    "model": {
        "hidden": ([32, 32, 32, 32, 32], "widths of the hidden layers, e.g. [64, 64]"),
        "activation": ("tanh", "activation plugin, a name or {name = ..., hyperparameters}"),
        "initializer": ("xavier_normal", "weight initializer plugin"),
        "bias_initializer": ("zeros", "bias initializer plugin"),
        "normalizer": ("none", "normalizer plugin: none, batchnorm, layernorm, ..."),
        "norm_position": ("before", "normalizer before or after the activation"),
        "dropout": (0.0, "dropout rate after each hidden activation, in [0, 1)"),
        "dtype": ("float32", "float32 or float64"),
    },
    "optimizer": {
        "name": ("momentum", "optimizer plugin (its hyperparameters sit beside it: lr, ...)"),
    },
    "train": {
        "batch_size": (64, "examples per step"),
        "steps": (3000, "steps `nnsim run` takes"),
        "l1": (0.0, "L1 penalty on the weights"),
        "l2": (0.0, "L2 penalty on the weights (λ/2 · Σw²)"),
        "clip_norm": (0.0, "clip the global gradient norm to this (0 = off)"),
        "eval_every": (50, "evaluate on the validation split every k steps (0 = never)"),
        "early_stopping": (0, "stop after this many evaluations without a better "
                              "validation loss (0 = off)"),
    },
}
SECTIONS = ("seed", *SCHEMA)
COMPONENT_KEYS = {"activation": "activation", "initializer": "initializer",
                  "bias_initializer": "initializer", "normalizer": "normalizer"}


@dataclass(frozen=True)
class Spec:
    """A chosen component: registry name and validated hyperparameters."""

    name: str
    hypers: dict[str, Any] = field(default_factory=dict)

    def build(self, registry: Registry, family: str):
        return registry.get(family, self.name)(**self.hypers)

    def to_toml_value(self) -> Any:
        return {"name": self.name, **self.hypers} if self.hypers else self.name


@dataclass(frozen=True)
class DataConfig:
    dataset: Spec
    validation: float
    preprocess: str
    augment: float


@dataclass(frozen=True)
class ModelConfig:
    hidden: tuple[int, ...]
    activation: Spec
    initializer: Spec
    bias_initializer: Spec
    normalizer: Spec
    norm_position: str
    dropout: float
    dtype: str


@dataclass(frozen=True)
class TrainConfig:
    batch_size: int
    steps: int
    l1: float
    l2: float
    clip_norm: float
    eval_every: int
    early_stopping: int


@dataclass(frozen=True)
class Config:
    """A complete, validated experiment. Build one with `Config.from_dict` or `load`."""

    seed: int
    data: DataConfig
    model: ModelConfig
    optimizer: Spec
    train: TrainConfig
    #: the keys given explicitly (the raw dict this config was validated from): overrides
    #: start from these, so a changed component starts from its own defaults
    source: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    @classmethod
    def default(cls) -> Config:
        return cls.from_dict({})

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], registry: Registry | None = None) -> Config:
        config = _validate(raw, registry or default_registry())
        object.__setattr__(config, "source", copy.deepcopy(dict(raw)))
        return config

    def to_dict(self) -> dict[str, Any]:
        """The canonical nested dict: every key, every hyperparameter (TOML-ready)."""
        d, m, t = self.data, self.model, self.train
        return {
            "seed": self.seed,
            "data": {"name": d.dataset.name, **d.dataset.hypers, "validation": d.validation,
                     "preprocess": d.preprocess, "augment": d.augment},
            "model": {"hidden": list(m.hidden), "activation": m.activation.to_toml_value(),
                      "initializer": m.initializer.to_toml_value(),
                      "bias_initializer": m.bias_initializer.to_toml_value(),
                      "normalizer": m.normalizer.to_toml_value(),
                      "norm_position": m.norm_position, "dropout": m.dropout, "dtype": m.dtype},
            "optimizer": {"name": self.optimizer.name, **self.optimizer.hypers},
            "train": {"batch_size": t.batch_size, "steps": t.steps, "l1": t.l1, "l2": t.l2,
                      "clip_norm": t.clip_norm, "eval_every": t.eval_every,
                      "early_stopping": t.early_stopping},
        }

    def to_toml(self) -> str:
        return dumps_toml(self.to_dict())

    def with_overrides(self, overrides: Iterable[tuple[str, Any]],
                       registry: Registry | None = None) -> Config:
        """A new config with dotted-key overrides applied (see `apply_override`).

        The overrides apply to the keys given explicitly (`source`), not to every default
        filled in: a component whose name changes starts from its own defaults, keeping only
        hyperparameters that were given explicitly. The order of `overrides` does not matter
        (see `ordered`).
        """
        raw = copy.deepcopy(dict(self.source)) if self.source is not None else self.to_dict()
        for key, value in ordered(overrides):
            apply_override(raw, key, value, registry)
        return Config.from_dict(raw, registry)

    def structure_key(self) -> tuple:
        """Everything but the optimizer's hyperparameters: when it changes, rebuild."""
        d = self.to_dict()
        return (repr(d["seed"]), repr(d["data"]), repr(d["model"]), d["optimizer"]["name"],
                repr(d["train"]))


# ---------------------------------------------------------------- reading files and --set

def load(path: str | Path | None = None, sets: Iterable[str] = (),
         registry: Registry | None = None) -> Config:
    """Read a TOML file (or start from the defaults), apply KEY=VALUE strings, validate."""
    raw: dict[str, Any] = read_toml(path) if path is not None else {}
    for key, value in ordered(parse_set(item) for item in sets):
        apply_override(raw, key, value, registry)
    return Config.from_dict(raw, registry)


def chooses_component(key: str) -> bool:
    """Whether a dotted key picks a component (or a whole section) rather than setting a
    hyperparameter: 'optimizer.name', 'model.activation', 'model.activation.name', 'data'."""
    parts = key.strip().split(".")
    if len(parts) == 1:
        return True
    if parts[0] in ("data", "optimizer"):
        return parts[1:] == ["name"]
    return (parts[0] == "model" and parts[1] in COMPONENT_KEYS
            and (len(parts) == 2 or parts[2:] == ["name"]))


def ordered(overrides: Iterable[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """Overrides in the order that makes them independent of how they were given: the ones
    choosing a component first, then hyperparameters (each group in its given order), so
    `model.activation.slope=0.1` and `model.activation=leaky_relu` mean the same either way."""
    items = list(overrides)
    return ([kv for kv in items if chooses_component(kv[0])]
            + [kv for kv in items if not chooses_component(kv[0])])


def read_toml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(str(p), "no such file") from None
    except IsADirectoryError:
        raise ConfigError(str(p), "is a folder; expected a TOML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(p), f"cannot be read ({exc.__class__.__name__}: "
                                  f"{getattr(exc, 'strerror', None) or exc})") from None
    return read_toml_text(text, str(p))


def read_toml_text(text: str, name: str) -> dict[str, Any]:
    """Parse TOML; a syntax error names `name` with its line and column."""
    try:
        return tomllib.loads(text)
    except RecursionError:
        raise ConfigError(name, "malformed TOML: arrays or tables nested too deeply; a "
                                "config needs at most a few levels") from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        if "end of document" in message:
            lines = text.count("\n") + (not text.endswith("\n"))
            message = message.replace("at end of document",
                                      f"at end of document, line {lines}")
        raise ConfigError(name, f"malformed TOML: {message}") from None


def parse_set(item: str) -> tuple[str, Any]:
    """'model.hidden=[64,64]' -> ('model.hidden', [64, 64]); a value that is not TOML is a string."""
    key, sep, text = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError("--set", f"expected KEY=VALUE (e.g. model.activation=relu), got {item!r}")
    text = text.strip()
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except RecursionError:
        raise ConfigError(key, "--set value nested too deeply; a config needs at most a few "
                               "levels") from None
    except tomllib.TOMLDecodeError:
        value = text
    return key, value


def apply_override(raw: dict[str, Any], key: str, value: Any,
                   registry: Registry | None = None) -> None:
    """Set a dotted key in a raw config dict.

    `model.initializer.std=0.1` turns a component given by name into a table; setting a
    component's `name` (or the component itself) drops hyperparameters of the old one.
    """
    parts = key.split(".")
    if any(not p for p in parts):
        raise ConfigError(key, "malformed key; expected dotted names like model.activation")
    if len(parts) == 1:
        raw[parts[0]] = value
        return
    node = raw.setdefault(parts[0], {})
    if not isinstance(node, dict):
        raise ConfigError(parts[0], f"expected a table, got {node!r}")
    section, rest = parts[0], parts[1:]
    if (section == "model" and len(rest) == 1 and rest[0] in COMPONENT_KEYS
            and isinstance(value, str) and isinstance(node.get(rest[0]), dict)):
        # a component given by name over a table: the same rule as setting its `name`
        _drop_foreign_hypers(node[rest[0]], COMPONENT_KEYS[rest[0]], value, {"name"}, registry)
        node[rest[0]]["name"] = value
        return
    if section in ("data", "optimizer") and rest == ["name"]:
        family = "dataset" if section == "data" else "optimizer"
        _drop_foreign_hypers(node, family, value, set(SCHEMA[section]), registry)
    if section == "model" and len(rest) == 2 and rest[0] in COMPONENT_KEYS:
        current = node.get(rest[0])
        if isinstance(current, str):
            node[rest[0]] = {"name": current}
        elif not isinstance(current, dict):
            node[rest[0]] = {"name": SCHEMA["model"][rest[0]][0]}
        if rest[1] == "name":
            _drop_foreign_hypers(node[rest[0]], COMPONENT_KEYS[rest[0]], value, {"name"},
                                 registry)
    for part in rest[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(key, f"{part!r} is not a table")
        node = child
    node[rest[-1]] = copy.deepcopy(value)


def _drop_foreign_hypers(table: dict[str, Any], family: str, new_name: Any, keep: set[str],
                        registry: Registry | None) -> None:
    """On a change of component, forget hyperparameters the new one does not declare."""
    if table.get("name") in (None, new_name):
        return
    try:
        declared = (registry or default_registry()).get(family, new_name).hyperparameters
    except (UnknownComponent, TypeError):
        return  # validation reports the unknown name
    for key in list(table):
        if key not in keep and key not in declared:
            del table[key]


# ---------------------------------------------------------------- validation

def _check_keys(where: str, table: Mapping[str, Any], allowed: Iterable[str]) -> None:
    allowed = list(allowed)
    for key in table:
        if key not in allowed:
            name = f"{where}.{key}" if where else key
            what = "section or key" if not where else "key"
            raise ConfigError(name, f"unknown {what}{did_you_mean(key, allowed)}; "
                                    f"valid: {', '.join(allowed)}")


def _number(key: str, value: Any, low: float, high: float, *, integer: bool = False,
            high_open: bool = False) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (
            integer and not isinstance(value, int)):
        kind = "an integer" if integer else "a number"
        raise ConfigError(key, f"expected {kind}, got {value!r}")
    if not math.isfinite(value) or value < low or value > high or (high_open and value == high):
        right = ")" if high_open else "]"
        raise ConfigError(key, f"expected a value in [{low:g}, {high:g}{right}, got {value!r}")
    return value if integer else float(value)


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(key, f"expected one of {', '.join(choices)}, got {value!r}"
                               f"{did_you_mean(str(value), choices)}")
    return value


def validate_component(key: str, value: Any, family: str, registry: Registry,
               extra: Mapping[str, Any] | None = None) -> Spec:
    """Validate a component given as a name or a table {name = ..., hyperparameter = ...}."""
    if isinstance(value, str):
        name, hypers = value, dict(extra or {})
    elif isinstance(value, Mapping):
        if "name" not in value:
            raise ConfigError(key, f"a {family} table needs a name, e.g. {{name = \"...\"}}")
        hypers = {k: v for k, v in value.items() if k != "name"}
        name = value["name"]
        if not isinstance(name, str):
            raise ConfigError(f"{key}.name", f"expected a {family} name, got {name!r}")
    else:
        raise ConfigError(key, f"expected a {family} name or a table, got {value!r}")
    try:
        cls = registry.get(family, name)
    except UnknownComponent as exc:
        raise ConfigError(key, str(exc)) from None
    try:
        instance = cls(**hypers)
    except HyperError as exc:
        # data and optimizer hyperparameters sit beside `name`; model ones inside the table
        parent = key.rpartition(".")[0] if key.endswith(".name") else key
        sub = f"{parent}.{exc.key}"
        raise ConfigError(sub, exc.message) from None
    return Spec(name, instance.hyper_values())


def _validate(raw: Mapping[str, Any], registry: Registry) -> Config:
    if not isinstance(raw, Mapping):
        raise ConfigError("", f"expected a table of sections, got {raw!r}")
    _check_keys("", raw, SECTIONS)
    seed = raw.get("seed", 0)
    seed = _number("seed", seed, 0, 2**63 - 1, integer=True)

    sections: dict[str, dict[str, Any]] = {}
    for name, schema in SCHEMA.items():
        table = raw.get(name, {})
        if not isinstance(table, Mapping):
            raise ConfigError(name, f"expected a table [{name}], got {table!r}")
        merged = {k: v[0] for k, v in schema.items()}
        merged.update(table)
        sections[name] = merged

    d = sections["data"]
    try:
        declared = registry.get("dataset", d["name"]).hyperparameters
    except (UnknownComponent, TypeError):
        declared = {}
    _check_keys("data", d, [*SCHEMA["data"], *declared])
    data_extra = {k: v for k, v in d.items() if k not in SCHEMA["data"]}
    dataset = validate_component("data.name", d["name"], "dataset", registry, data_extra)
    data = DataConfig(
        dataset=dataset,
        validation=_number("data.validation", d["validation"], 0.0, 0.9),
        preprocess=_choice("data.preprocess", d["preprocess"], PREPROCESS),
        augment=_number("data.augment", d["augment"], 0.0, 10.0),
    )

    m = sections["model"]
    _check_keys("model", m, SCHEMA["model"])
    hidden = m["hidden"]
    if (not isinstance(hidden, list) or not hidden or any(
            isinstance(h, bool) or not isinstance(h, int) or not 1 <= h <= 8192 for h in hidden)
            or len(hidden) > 64):
        raise ConfigError("model.hidden", f"expected a list of 1 to 64 widths in [1, 8192], "
                                          f"e.g. [64, 64], got {hidden!r}")
    def component(key: str, family: str) -> Spec:
        return validate_component(f"model.{key}", m[key], family, registry)

    model = ModelConfig(
        hidden=tuple(hidden),
        activation=component("activation", "activation"),
        initializer=component("initializer", "initializer"),
        bias_initializer=component("bias_initializer", "initializer"),
        normalizer=component("normalizer", "normalizer"),
        norm_position=_choice("model.norm_position", m["norm_position"], NORM_POSITIONS),
        dropout=_number("model.dropout", m["dropout"], 0.0, 1.0, high_open=True),
        dtype=_choice("model.dtype", m["dtype"], DTYPES),
    )

    o = sections["optimizer"]
    opt_extra = {k: v for k, v in o.items() if k != "name"}
    optimizer = validate_component("optimizer.name", o["name"], "optimizer", registry,
                                   opt_extra)

    t = sections["train"]
    _check_keys("train", t, SCHEMA["train"])
    train = TrainConfig(
        batch_size=_number("train.batch_size", t["batch_size"], 1, 1_000_000, integer=True),
        steps=_number("train.steps", t["steps"], 0, 10**9, integer=True),
        l1=_number("train.l1", t["l1"], 0.0, 10.0),
        l2=_number("train.l2", t["l2"], 0.0, 10.0),
        clip_norm=_number("train.clip_norm", t["clip_norm"], 0.0, 1e6),
        eval_every=_number("train.eval_every", t["eval_every"], 0, 10**9, integer=True),
        early_stopping=_number("train.early_stopping", t["early_stopping"], 0, 10**6,
                               integer=True),
    )
    if model.normalizer.name == "batchnorm" and train.batch_size < 2:
        # as PyTorch refuses it: "Expected more than 1 value per channel when training"
        raise ConfigError("train.batch_size", "batch norm needs more than 1 example per batch "
                                              "when training (a single example normalizes to 0 "
                                              "in every unit); use 2 or more, or "
                                              "model.normalizer=layernorm")
    return Config(seed=seed, data=data, model=model, optimizer=optimizer, train=train)


# ---------------------------------------------------------------- writing TOML

def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        return f'"{escaped}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as TOML")


def dumps_toml(data: Mapping[str, Any]) -> str:
    """TOML for a config-shaped dict: top-level scalars, then one [section] per table."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, Mapping)]
    for name, table in data.items():
        if isinstance(table, Mapping):
            lines += ["", f"[{name}]"]
            lines += [f"{k} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"
