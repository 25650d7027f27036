"""Errors nnsim reports to the user as one line: what was wrong, where, and what would be right."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(word: str, options: Iterable[str]) -> str:
    """' (did you mean 'relu'?)' for a near miss, else ''."""
    close = difflib.get_close_matches(str(word), list(options), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


#: the longest message an error prints; longer ones (an 8 MB value echoed back) keep their
#: head and tail around a note of how much was left out
MAX_MESSAGE = 600


def cap(text: str, limit: int = MAX_MESSAGE) -> str:
    """`text` on one line and at most about `limit` characters."""
    text = str(text)
    if "\n" in text or "\r" in text:
        text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head, tail = text[:limit * 2 // 3], text[-(limit // 4):]
    return f"{head} … ({len(text) - len(head) - len(tail):,} characters left out) … {tail}"


def raised(exc: BaseException) -> str:
    """'raised ValueError: bad width', or 'raised SystemExit' when there is no message."""
    text = str(exc)
    return f"raised {type(exc).__name__}" + (f": {text}" if text else "")


class NnsimError(Exception):
    """Base of the errors nnsim explains to the user without a traceback."""


class HyperError(NnsimError, ValueError):
    """A hyperparameter value a component refused; `key` names the hyperparameter."""

    def __init__(self, key: str, message: str, options: Iterable[str] | None = None) -> None:
        if options is not None:
            options = list(options)
            message += did_you_mean(key, options)
            message += f"; valid: {', '.join(options)}" if options else "; it takes none"
        message = cap(message)
        super().__init__(message)
        self.key = key
        self.message = message


class ConfigError(NnsimError, ValueError):
    """A bad configuration; `key` is the dotted key (or file) it concerns."""

    def __init__(self, key: str, message: str) -> None:
        key, message = cap(key, 200), cap(message)
        super().__init__(f"{key}: {message}" if key else message)
        self.key = key
        self.message = message


class PluginError(NnsimError):
    """A plugin misbehaved. Its fields say where: `family` and `component` (the registry
    name), `distribution` (the plugin's distribution, once known) and `method`, given by
    whoever raises it; `detail` is what went wrong. The message puts them in one line:
    "activation 'cube' (from nnsim-cube 1.2.3): forward() raised RuntimeError: worn out".

    A plugin may raise it with a message alone (`PluginError("width 30 ...")`); nnsim fills
    in where it came from when it wraps the call.
    """

    def __init__(self, detail: str, *, family: str | None = None,
                 component: str | None = None, method: str | None = None,
                 distribution: str | None = None) -> None:
        self.detail = str(detail)
        self.family = family
        self.component = component
        self.method = method
        self.distribution = distribution
        self.message = self._compose()
        super().__init__(self.message)

    @classmethod
    def at(cls, component: object, method: str | None, detail: str,
           distribution: str | None = None) -> PluginError:
        """The error of a component instance (or class): family and name read from it."""
        return cls(detail, family=getattr(component, "family", None),
                   component=getattr(component, "name", None), method=method,
                   distribution=distribution)

    def placed(self, component: object, method: str | None) -> PluginError:
        """This error, naming `component` and `method` if it names no component yet (a
        plugin raised it with a message alone)."""
        if self.component is not None or self.family is not None:
            return self
        error = PluginError.at(component, method, self.detail)
        error.__cause__ = self.__cause__
        return error

    def _compose(self) -> str:
        if self.family is None and self.component is None:
            return self.detail
        head = " ".join(part for part in (self.family, None if self.component is None
                                          else repr(self.component)) if part)
        if self.distribution:
            head += f" (from {self.distribution})"
        call = f"{self.method}() " if self.method else ""
        return f"{head}: {call}{self.detail}"

    @property
    def name(self) -> str | None:
        """The component's registry name (the same as `component`)."""
        return self.component

    def fields(self) -> dict[str, str | None]:
        """The structured fields, e.g. for a JSON report."""
        return {"family": self.family, "component": self.component, "method": self.method,
                "distribution": self.distribution, "detail": self.detail}

    def with_source(self, source: str) -> PluginError:
        """The same error, saying which plugin (distribution) the component came from."""
        if self.family is None or self.distribution is not None:
            return self
        error = PluginError(self.detail, family=self.family, component=self.component,
                            method=self.method, distribution=source)
        error.__cause__ = self.__cause__
        return error
