"""Experiment configuration: TOML files and --set overrides, validated against the plugins."""

from __future__ import annotations

import copy
import math
import re
import stat
import sys
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nnsim.components import Hyper
from nnsim.errors import ConfigError, HyperError, did_you_mean
from nnsim.pluginmanager import Registry, UnknownComponent, default_registry

PREPROCESS = ("none", "standardize", "whiten")
DTYPES = ("float32", "float64")
NORM_POSITIONS = ("before", "after")

@dataclass(frozen=True)
class Key(Hyper):
    """A config key, declared like a plugin's hyperparameter (`Hyper`: default, range or
    choices, one line of help) and validated by the same rule (`check`). `family` marks a
    key that picks a component (a name, or a table with `name` and its hyperparameters);
    `length` a list of length[0] to length[1] items, each in the range."""

    family: str | None = None
    length: tuple[int, int] | None = None


#: Every key of a config; component hyperparameters come from the plugins. The defaults are
#: an experiment worth watching: a deep tanh net on spirals.
SEED = Key(0, 0, 2**63 - 1, help="one seed for everything: data, split, weights, batch "
                                  "order, dropout, noise")
KEYS: dict[str, dict[str, Key]] = {
    "data": {
        "name": Key("spiral", family="dataset",
                    help="dataset plugin (its hyperparameters sit beside it: samples, noise, "
                         "...)"),
        "validation": Key(0.2, 0.0, 0.9, help="share of the examples held out for validation"),
        "preprocess": Key("standardize", choices=PREPROCESS,
                          help="input preprocessing fitted on the training split: none, "
                               "standardize or whiten (PCA)"),
        "augment": Key(0.0, 0.0, 10.0, help="std of Gaussian noise added to every training "
                                            "batch (0 = off)"),
    },
    "model": {
        "hidden": Key((32, 32, 32, 32, 32), 1, 8192, length=(1, 64),
                      help="widths of the hidden layers, e.g. [64, 64]"),
        "activation": Key("tanh", family="activation",
                          help="activation plugin, a name or {name = ..., hyperparameters}"),
        "initializer": Key("xavier_normal", family="initializer",
                           help="weight initializer plugin"),
        "bias_initializer": Key("zeros", family="initializer", help="bias initializer plugin"),
        "normalizer": Key("none", family="normalizer",
                          help="normalizer plugin: none, batchnorm, layernorm, ..."),
        "norm_position": Key("before", choices=NORM_POSITIONS,
                             help="normalizer before or after the activation"),
        "dropout": Key(0.0, 0.0, 1.0, high_open=True,
                       help="dropout rate after each hidden activation"),
        "dtype": Key("float32", choices=DTYPES, help="float32 or float64"),
    },
    "optimizer": {
        "name": Key("momentum", family="optimizer",
                    help="optimizer plugin (its hyperparameters sit beside it: lr, ...)"),
    },
    "train": {
        "batch_size": Key(64, 1, 1_000_000, help="examples per step"),
        "steps": Key(3000, 0, 10**9, help="steps `nnsim run` takes"),
        "l1": Key(0.0, 0.0, 10.0, help="L1 penalty on the weights"),
        "l2": Key(0.0, 0.0, 10.0, help="L2 penalty on the weights (λ/2 · Σw²)"),
        "clip_norm": Key(0.0, 0.0, 1e6, help="clip the global gradient norm to this (0 = off)"),
        "eval_every": Key(50, 0, 10**9,
                          help="evaluate on the validation split every k steps (0 = never)"),
        "early_stopping": Key(0, 0, 10**6, help="stop after this many evaluations without a "
                                                "better validation loss (0 = off)"),
    },
}
#: (default, help) of every key, derived from KEYS
SCHEMA: dict[str, dict[str, tuple[Any, str]]] = {
    section: {key: (list(k.default) if isinstance(k.default, tuple) else k.default, k.help)
              for key, k in keys.items()}
    for section, keys in KEYS.items()}
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
        text = self.__dict__.get("_toml")
        if text is None:  # a config never changes: written once (each checkpoint asks)
            text = dumps_toml(self.to_dict())
            object.__setattr__(self, "_toml", text)
        return text

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


#: the largest config file read (a config is a few hundred bytes; /dev/zero never ends)
MAX_CONFIG_BYTES = 2**20


def read_toml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        info = p.stat()
    except OSError:
        info = None  # opening it says what is wrong
    if info is not None and (stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)):
        raise ConfigError(str(p), "is a device, not a file; expected a TOML file")
    try:
        with open(p, "rb") as f:  # (a pipe too: `--config <(make-config)`)
            data = f.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(str(p), f"is larger than {MAX_CONFIG_BYTES:,} bytes; a config "
                                      f"is a short TOML file")
        text = data.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(str(p), "no such file") from None
    except IsADirectoryError:
        raise ConfigError(str(p), "is a folder; expected a TOML file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(p), f"cannot be read ({exc.__class__.__name__}: "
                                  f"{getattr(exc, 'strerror', None) or exc})") from None
    return read_toml_text(text, str(p))


def read_toml_text(text: str, name: str) -> dict[str, Any]:
    """Parse TOML; a syntax error names `name` with its line and column. A byte-order mark
    at the start (some editors save one) is not part of the text."""
    try:
        return tomllib.loads(text.removeprefix("\ufeff"))
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
    except ValueError as exc:  # Python's limit on the digits of an integer
        raise ConfigError(name, f"malformed TOML: {_too_long(exc)}") from None


def _too_long(exc: ValueError) -> str:
    if "integer string conversion" in str(exc):
        return (f"an integer of more than {sys.get_int_max_str_digits():,} digits; no setting "
                f"takes a number that long")
    return str(exc)


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
        raise ConfigError(key, "value nested too deeply; a config needs at most a few "
                               "levels") from None
    except tomllib.TOMLDecodeError:
        value = text
    except ValueError as exc:  # Python's limit on the digits of an integer
        raise ConfigError(key, _too_long(exc)) from None
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
        _drop_foreign_hypers(node, family, value, set(KEYS[section]), registry)
    if section == "model" and len(rest) == 2 and rest[0] in COMPONENT_KEYS:
        current = node.get(rest[0])
        if isinstance(current, str):
            node[rest[0]] = {"name": current}
        elif not isinstance(current, dict):
            node[rest[0]] = {"name": KEYS["model"][rest[0]].default}
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


def expected(spec: Hyper) -> str:
    """What a key or hyperparameter takes, in words: 'an integer in [1, 1,000,000]', 'a
    number in (0, 10]', 'one of none, standardize, whiten', 'a list of 1 to 64 integers in
    [1, 8,192]'."""
    if spec.choices is not None:
        return "one of " + ", ".join(map(str, spec.choices))
    if isinstance(spec, Key) and spec.family is not None:
        return f"{_a(spec.family)} name or a table {{name = \"...\", hyperparameters}}"
    if isinstance(spec, Key) and spec.length is not None:
        item = expected(Hyper(spec.default[0], spec.low, spec.high, low_open=spec.low_open,
                              high_open=spec.high_open))
        what = item.replace("an integer", "integers").replace("a number", "numbers")
        return f"a list of {spec.length[0]} to {spec.length[1]} {what}"
    return spec.range_text()


def _coerce(spec: Hyper, value: Any) -> Any:
    """`value` as the declared type, or ValueError (Hyper's one rule)."""
    return spec._coerce(value)


def check(key: str, spec: Hyper, value: Any) -> Any:
    """The one rule for every value of a config, nnsim's own keys (`KEYS`) and the
    components' hyperparameters alike: `value` as the declared type, or a ConfigError
    'KEY: expected WHAT, got VALUE' (with a "did you mean" for a near miss of a choice)."""
    try:
        if isinstance(spec, Key) and spec.length is not None:
            low, high = spec.length
            if not isinstance(value, (list, tuple)) or not low <= len(value) <= high:
                raise ValueError
            item = Hyper(spec.default[0], spec.low, spec.high, low_open=spec.low_open,
                         high_open=spec.high_open)
            return tuple(_coerce(item, v) for v in value)
        return _coerce(spec, value)
    except (ValueError, OverflowError, TypeError):  # UnicodeEncodeError is a ValueError
        hint = (did_you_mean(str(value), [str(c) for c in spec.choices])
                if spec.choices is not None else "")
        raise ConfigError(key, f"expected {expected(spec)}, got {value!r}{hint}") from None


def _a(noun: str) -> str:
    return f"{'an' if noun[:1] in 'aeiou' else 'a'} {noun}"


def validate_component(key: str, value: Any, family: str, registry: Registry,
               extra: Mapping[str, Any] | None = None) -> Spec:
    """Validate a component given as a name or a table {name = ..., hyperparameter = ...}."""
    if isinstance(value, str):
        name, hypers = value, dict(extra or {})
    elif isinstance(value, Mapping):
        if "name" not in value:
            raise ConfigError(key, f"{_a(family)} table needs a name, e.g. {{name = \"...\"}}")
        hypers = {k: v for k, v in value.items() if k != "name"}
        name = value["name"]
        if not isinstance(name, str):
            raise ConfigError(f"{key}.name", f"expected {_a(family)} name, got {name!r}")
    else:
        raise ConfigError(key, f"expected {_a(family)} name or a table, got {value!r}")
    try:
        cls = registry.get(family, name)
    except UnknownComponent as exc:
        raise ConfigError(key, str(exc)) from None
    # data and optimizer hyperparameters sit beside `name`; model ones inside the table
    parent = key.rpartition(".")[0] if key.endswith(".name") else key
    declared = cls.hyperparameters
    hypers = {k: check(f"{parent}.{k}", declared[k], v) if k in declared else v
              for k, v in hypers.items()}
    try:
        instance = cls(**hypers)
    except HyperError as exc:  # an undeclared name, or a plugin's own Hyper refusing
        raise ConfigError(f"{parent}.{exc.key}", exc.message) from None
    return Spec(name, instance.hyper_values())


def _validate(raw: Mapping[str, Any], registry: Registry) -> Config:
    if not isinstance(raw, Mapping):
        raise ConfigError("", f"expected a table of sections, got {raw!r}")
    _check_keys("", raw, SECTIONS)
    seed = check("seed", SEED, raw.get("seed", SEED.default))

    tables: dict[str, dict[str, Any]] = {}
    for name, keys in KEYS.items():
        table = raw.get(name, {})
        if not isinstance(table, Mapping):
            raise ConfigError(name, f"expected a table [{name}], got {table!r}")
        tables[name] = {**{k: spec.default for k, spec in keys.items()}, **table}

    def values(section: str) -> dict[str, Any]:
        """The section's own keys, each by the one rule (components apart)."""
        return {key: check(f"{section}.{key}", spec, tables[section][key])
                for key, spec in KEYS[section].items() if spec.family is None}

    d = tables["data"]
    try:
        declared = registry.get("dataset", d["name"]).hyperparameters
    except (UnknownComponent, TypeError):
        declared = {}
    _check_keys("data", d, [*KEYS["data"], *declared])
    data_extra = {k: v for k, v in d.items() if k not in KEYS["data"]}
    dataset = validate_component("data.name", d["name"], "dataset", registry, data_extra)
    data = DataConfig(dataset=dataset, **values("data"))

    m = tables["model"]
    _check_keys("model", m, KEYS["model"])
    model_values = values("model")
    components: dict[str, Any] = {
        key: validate_component(f"model.{key}", m[key], spec.family, registry)
        for key, spec in KEYS["model"].items() if spec.family is not None}
    model = ModelConfig(**model_values, **components)

    o = tables["optimizer"]
    opt_extra = {k: v for k, v in o.items() if k != "name"}
    optimizer = validate_component("optimizer.name", o["name"], "optimizer", registry,
                                   opt_extra)

    _check_keys("train", tables["train"], KEYS["train"])
    train = TrainConfig(**values("train"))
    if model.normalizer.name == "batchnorm" and train.batch_size < 2:
        # as PyTorch refuses it: "Expected more than 1 value per channel when training"
        raise ConfigError("train.batch_size", "batch norm needs more than 1 example per batch "
                                              "when training (a single example normalizes to 0 "
                                              "in every unit); use 2 or more, or "
                                              "model.normalizer=layernorm")
    return Config(seed=seed, data=data, model=model, optimizer=optimizer, train=train)


# ---------------------------------------------------------------- writing TOML

#: characters a TOML basic string cannot hold as they are, with their short escapes
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f",
            "\r": "\\r"}
_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_INT64 = (-2**63, 2**63 - 1)


def _toml_string(text: str) -> str:
    """A TOML basic string: quotes and backslashes escaped, control characters (U+0000 to
    U+001F, U+007F) as \\uXXXX or their short escapes, characters beyond the BMP as
    \\UXXXXXXXX (read back the same, and safe from editors that mangle them); a lone
    surrogate, which no TOML string can hold, is a ValueError."""
    out = []
    for ch in text:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\u{code:04X}")
        elif 0xD800 <= code <= 0xDFFF:
            raise ValueError(f"cannot write the lone surrogate U+{code:04X} in TOML")
        elif code > 0xFFFF:
            out.append(f"\\U{code:08X}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _toml_key(key: Any) -> str:
    key = str(key)
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_value(value: Any) -> str:
    """One TOML value. Floats are written with repr (the shortest text that reads back to the
    same float); NaN and the infinities as TOML's nan, inf and -inf (a config never holds
    them: every number a config takes must be finite, but a writer that cannot write one
    would lose data). Integers must fit TOML's 64 bits."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if not _INT64[0] <= value <= _INT64[1]:
            raise ValueError(f"cannot write {value} in TOML: integers are 64-bit")
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{_toml_key(k)} = {_toml_value(v)}"
                               for k, v in value.items()) + "}"
    raise TypeError(f"cannot write {value!r} as TOML")


def dumps_toml(data: Mapping[str, Any]) -> str:
    """TOML for a config-shaped dict: top-level scalars, then one [section] per table;
    `tomllib.loads` gives the same dict back (NaN aside, which is never equal to itself)."""
    lines = [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in data.items()
             if not isinstance(v, Mapping)]
    for name, table in data.items():
        if isinstance(table, Mapping):
            lines += ["", f"[{_toml_key(name)}]"]
            lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items()]
    return "\n".join(lines) + "\n"
