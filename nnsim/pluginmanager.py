"""Loads the built-in plugins, then the `nnsim` entry points one at a time, into registries."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import pluggy

from nnsim import hookspecs
from nnsim.components import FAMILIES, Component
from nnsim.errors import did_you_mean

DEFAULT_PLUGINS = (
    "nnsim_plugins.activations",
    "nnsim_plugins.initializers",
    "nnsim_plugins.normalizers",
    "nnsim_plugins.optimizers",
    "nnsim_plugins.datasets",
    "nnsim_plugins.lessons",
    "nnsim_plugins.checks",
)
ENTRY_POINT_GROUP = "nnsim"
HOOKS = {family: f"register_{family}s" for family in FAMILIES}
BUILTIN = "built-in"


@dataclass(frozen=True)
class Entry:
    """A registered component class and where it came from."""

    cls: type[Component]
    plugin: str
    source: str  # "built-in" or "distribution version"


@dataclass(frozen=True)
class Failure:
    """A plugin that failed to load or register, and why (one line)."""

    plugin: str
    source: str
    stage: str
    error: str

    def __str__(self) -> str:
        return f"{self.plugin} ({self.source}) failed at {self.stage}: {self.error}"


class UnknownComponent(LookupError):
    def __init__(self, family: str, name: str, options: list[str]) -> None:
        super().__init__(f"unknown {family} {name!r}{did_you_mean(name, options)}; "
                         f"choose from {', '.join(options)}")


@dataclass
class Registry:
    """Component classes by family and name, plus the plugins that failed to load."""

    families: dict[str, dict[str, Entry]] = field(
        default_factory=lambda: {family: {} for family in FAMILIES})
    failures: list[Failure] = field(default_factory=list)
    plugins: list[tuple[str, str]] = field(default_factory=list)  # (plugin, source) loaded

    def names(self, family: str) -> list[str]:
        return list(self.families[family])

    def entry(self, family: str, name: str) -> Entry:
        try:
            return self.families[family][name]
        except KeyError:
            raise UnknownComponent(family, name, self.names(family)) from None

    def get(self, family: str, name: str) -> type[Component]:
        return self.entry(family, name).cls


def _error_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _env_list(value: str | None) -> set[str] | None:
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _source(ep: importlib.metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "unknown distribution"


class PluginLoader:
    """Registers modules with pluggy and calls each hook implementation in isolation."""

    def __init__(self, trace: bool = False, log: Callable[[str], None] | None = None) -> None:
        self.pm = pluggy.PluginManager("nnsim")
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        self.sources: dict[str, str] = {}
        self.trace = trace
        self.log = log or (lambda line: print(line, file=sys.stderr))

    def add(self, plugin: object, name: str, source: str) -> None:
        try:
            self.pm.register(plugin, name=name)
        except Exception as exc:  # pluggy refuses unknown hooks, duplicate names, ...
            self.registry.failures.append(Failure(name, source, "register", _error_line(exc)))
            return
        self.sources[name] = source
        self.registry.plugins.append((name, source))

    def collect(self) -> Registry:
        for family, hook_name in HOOKS.items():
            hook = getattr(self.pm.hook, hook_name)
            # in registration order, so built-ins come first and win name clashes
            for impl in hook.get_hookimpls():
                self._call(family, hook_name, impl)
        return self.registry

    def _call(self, family: str, hook_name: str, impl: pluggy.HookImpl) -> None:
        plugin = impl.plugin_name
        source = self.sources.get(plugin, "unknown")
        base = FAMILIES[family]
        found: list[type[Component]] = []

        def register(cls: type[Component]) -> None:
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise TypeError(f"{hook_name} expects a subclass of nnsim.components."
                                f"{base.__name__}, got {cls!r}")
            if not cls.name or not isinstance(cls.name, str):
                raise TypeError(f"{cls.__name__} has no registry name (set `name = ...`)")
            found.append(cls)

        if self.trace:
            self.log(f"nnsim: calling {hook_name} of plugin {plugin!r} ({source})")
        try:
            impl.function(**{arg: register for arg in impl.argnames})
        except Exception as exc:
            self.registry.failures.append(Failure(plugin, source, hook_name, _error_line(exc)))
            return
        table = self.registry.families[family]
        for cls in found:
            if cls.name in table:
                other = table[cls.name]
                self.registry.failures.append(Failure(
                    plugin, source, hook_name,
                    f"{family} {cls.name!r} is already registered by {other.plugin} "
                    f"({other.source}); this one was skipped"))
                continue
            table[cls.name] = Entry(cls, plugin, source)
            if self.trace:
                self.log(f"nnsim:   registered {family} {cls.name!r}")


def load_registry(
    entry_points: Iterable[importlib.metadata.EntryPoint] | None = None,
    env: Mapping[str, str] | None = None,
) -> Registry:
    """Build a registry: built-ins first, then every allowed `nnsim` entry point.

    `NNSIM_LOAD_PLUGINS` is an allow-list of entry-point names (empty: none),
    `NNSIM_DISABLE_PLUGINS` a block-list; `NNSIM_TRACE_PLUGINS=1` prints every hook call.
    """
    env = os.environ if env is None else env
    loader = PluginLoader(trace=env.get("NNSIM_TRACE_PLUGINS", "") not in ("", "0"))
    for module_name in DEFAULT_PLUGINS:
        loader.add(importlib.import_module(module_name), module_name, BUILTIN)

    allow = _env_list(env.get("NNSIM_LOAD_PLUGINS"))
    block = _env_list(env.get("NNSIM_DISABLE_PLUGINS")) or set()
    if entry_points is None:
        entry_points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    for ep in entry_points:
        if (allow is not None and ep.name not in allow) or ep.name in block:
            continue
        source = _source(ep)
        try:
            module = ep.load()
        except Exception as exc:
            loader.registry.failures.append(Failure(ep.name, source, "import", _error_line(exc)))
            continue
        loader.add(module, ep.name, source)
    return loader.collect()


_default: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _default
    if _default is None:
        _default = load_registry()
    return _default
