"""Loads the built-in plugins, then the `nnsim` entry points one at a time, into registries."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import signal
import sys
import threading
import types
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pluggy

from nnsim import hookspecs
from nnsim.components import FAMILIES, Component
from nnsim.errors import PluginError, did_you_mean, raised

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
    """A plugin that failed to load or register, and why (one line). `component` is
    "family:name" when the failure concerns one component (a name already taken)."""

    plugin: str
    source: str
    stage: str
    error: str
    component: str = ""

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


# ---------------------------------------------------------------- NumPy's error state
#
# A plugin may call np.seterr (at import, or inside a method); nnsim puts NumPy's
# floating-point error state back after loading each plugin and after each plugin call.
# Where NumPy keeps the state in a context variable (NumPy 2) reading it is one C call and
# a plugin that left it alone costs an identity comparison.

try:
    from numpy._core._multiarray_umath import _extobj_contextvar as _NUMPY_STATE
except ImportError:  # NumPy 1.x: the public, slower functions
    _NUMPY_STATE = None


def numpy_state() -> Any:
    """NumPy's floating-point error state, as a token for `restore_numpy_state`; two tokens
    compare equal when the state did not change."""
    if _NUMPY_STATE is not None:
        return _NUMPY_STATE.get()
    return tuple(sorted(np.geterr().items()))


def restore_numpy_state(saved: Any) -> None:
    """Put NumPy's error state back to `saved` (a `numpy_state()` token)."""
    if _NUMPY_STATE is not None:
        _NUMPY_STATE.set(saved)
    else:
        np.seterr(**dict(saved))


if _NUMPY_STATE is not None:
    numpy_state = _NUMPY_STATE.get  # noqa: F811 — the same, without a Python frame


def plugin_failure(exc: BaseException) -> bool:
    """Whether `exc`, raised while a plugin's method ran, is that plugin's failure (to be
    reported as a PluginError naming it) rather than the user stopping nnsim.

    Any Exception is, and SystemExit too: a plugin calling `sys.exit()` must not end a run
    quietly with status 0. A KeyboardInterrupt is the user's Ctrl-C only where Ctrl-C can
    raise one: in the main thread, with SIGINT neither ignored (sweep workers) nor only
    noted by a handler that lets the step finish (`nnsim run`'s first Ctrl-C); anywhere
    else it came from the plugin."""
    if isinstance(exc, (Exception, SystemExit)):
        return True
    if not isinstance(exc, KeyboardInterrupt):
        return False
    if threading.current_thread() is not threading.main_thread():
        return True
    handler = signal.getsignal(signal.SIGINT)
    return handler is signal.SIG_IGN or bool(getattr(getattr(handler, "__self__", None),
                                                     "noting", False))


def call_plugin(component: Any, method: str, *args: Any) -> Any:
    """Call a plugin's method: its failures become a PluginError naming it (a PluginError
    it raises with a message alone is given its name), and NumPy's error state is put back
    if the method changed it."""
    state = numpy_state()
    try:
        return getattr(component, method)(*args)
    except PluginError as exc:
        raise exc.placed(component, method) from exc.__cause__
    except BaseException as exc:
        if not plugin_failure(exc):
            raise
        raise PluginError.at(component, method, raised(exc)) \
            from exc
    finally:
        if numpy_state() != state:
            restore_numpy_state(state)


@contextmanager
def plugin_code() -> Iterator[_Interrupts]:
    """Run a plugin's own code (its import, a hook): NumPy's error state is restored
    afterwards, and a Ctrl-C that arrives meanwhile is told apart from a KeyboardInterrupt
    the plugin raises itself (`.received`)."""
    saved = numpy_state()
    guard = _Interrupts()
    try:
        with guard:
            yield guard
    finally:
        if numpy_state() != saved:
            restore_numpy_state(saved)


class _Interrupts:
    """While a plugin's code runs, notes a real SIGINT before it interrupts as usual.

    A plugin raising KeyboardInterrupt or SystemExit itself is a broken plugin; a user
    pressing Ctrl-C meanwhile wants nnsim to stop. Signals reach only the main thread, so
    elsewhere every KeyboardInterrupt comes from the plugin.
    """

    def __init__(self) -> None:
        self.received = False
        self.previous: Any = None
        self.installed = False

    def __enter__(self) -> _Interrupts:
        if threading.current_thread() is threading.main_thread():
            try:
                self.previous = signal.getsignal(signal.SIGINT)
                signal.signal(signal.SIGINT, self._handler)
                self.installed = True
            except (ValueError, OSError):  # no signals here (an embedded interpreter)
                self.installed = False
        return self

    def __exit__(self, *exc: object) -> None:
        if self.installed:
            signal.signal(signal.SIGINT, self.previous)

    def _handler(self, signum: int, frame: Any) -> None:
        self.received = True
        if self.previous is signal.SIG_IGN:
            return
        if callable(self.previous):
            self.previous(signum, frame)
        raise KeyboardInterrupt


def _reraise_interrupt(guard: _Interrupts, exc: BaseException) -> None:
    """A real Ctrl-C stops nnsim, whatever the plugin's code turned it into."""
    if guard.received:
        if isinstance(exc, KeyboardInterrupt):
            raise exc
        raise KeyboardInterrupt from exc


def _hook_names() -> list[str]:
    return sorted(name for name in vars(hookspecs) if name.startswith("register_"))


def hook_problems(pm: pluggy.PluginManager, plugin: object) -> list[str]:
    """What is wrong with a registered plugin's hooks: implementations of hooks nnsim does
    not have (a misspelt name), and module functions named like a hook that lack
    `@hookimpl` (so pluggy never calls them)."""
    problems = []
    hooks = _hook_names()
    try:
        pm.check_pending()
    except pluggy.PluginValidationError:
        for caller in pm.get_hookcallers(plugin) or []:
            if not caller.has_spec():
                problems.append(f"unknown hook {caller.name!r}{did_you_mean(caller.name, hooks)}"
                                f"; nnsim's hooks: {', '.join(hooks)}")
    if isinstance(plugin, types.ModuleType):
        for name, obj in vars(plugin).items():
            if name.startswith("register_") and isinstance(obj, types.FunctionType) \
                    and obj.__module__ == plugin.__name__ \
                    and pm.parse_hookimpl_opts(plugin, name) is None:
                known = "" if name in hooks else \
                    f", and nnsim has no hook of that name{did_you_mean(name, hooks)}"
                problems.append(f"{name}() is not marked @hookimpl (from nnsim import "
                                f"hookimpl){known}")
    return problems


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
        with plugin_code() as guard:
            try:
                self.pm.register(plugin, name=name)
            except BaseException as exc:  # pluggy refuses duplicate names, bad hookimpls
                _reraise_interrupt(guard, exc)
                self.registry.failures.append(Failure(name, source, "register",
                                                      _error_line(exc)))
                return
        problems = hook_problems(self.pm, plugin)
        if problems:
            self.pm.unregister(plugin)
            self.registry.failures.append(Failure(name, source, "register",
                                                  "; ".join(problems)))
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
            if isinstance(cls, base):
                raise TypeError(f"{hook_name} got an instance of {type(cls).__name__}; "
                                f"register the class: register({type(cls).__name__})")
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise TypeError(f"{hook_name} expects a subclass of nnsim.components."
                                f"{base.__name__}, got {cls!r}")
            if not cls.name or not isinstance(cls.name, str):
                raise TypeError(f"{cls.__name__} has no registry name (set `name = ...`)")
            found.append(cls)

        if self.trace:
            self.log(f"nnsim: calling {hook_name} of plugin {plugin!r} ({source})")
        with plugin_code() as guard:
            try:
                impl.function(**{arg: register for arg in impl.argnames})
            except BaseException as exc:  # SystemExit and KeyboardInterrupt included
                _reraise_interrupt(guard, exc)
                self.registry.failures.append(Failure(plugin, source, hook_name,
                                                      _error_line(exc)))
                return
        table = self.registry.families[family]
        for cls in found:
            if cls.name in table:
                other = table[cls.name]
                self.registry.failures.append(Failure(
                    plugin, source, hook_name,
                    f"{family} {cls.name!r} is already registered by {other.plugin} "
                    f"({other.source}); this one was skipped", f"{family}:{cls.name}"))
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
        with plugin_code() as guard:
            try:
                module = ep.load()
            except BaseException as exc:  # SystemExit and KeyboardInterrupt included
                _reraise_interrupt(guard, exc)
                loader.registry.failures.append(Failure(ep.name, source, "import",
                                                        _error_line(exc)))
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
