"""Errors nnsim reports to the user as one line: what was wrong, where, and what would be right."""

from __future__ import annotations

import difflib
import re
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
    """A plugin misbehaved at run time; names the component, the method and, once the
    simulation has added it, the plugin the component came from.

    Messages start with the component: "activation 'cube': forward() raised ...".
    """

    _PREFIX = re.compile(r"^(activation|initializer|normalizer|optimizer|dataset) '([^']*)': ")

    def __init__(self, message: str) -> None:
        super().__init__(message)
        match = self._PREFIX.match(message)
        self.family, self.name = (match.group(1), match.group(2)) if match else (None, None)
        self.message = message

    def with_source(self, source: str) -> PluginError:
        """The same error, saying which plugin (distribution) the component came from."""
        if self.family is None or "(from " in self.message:
            return self
        head = f"{self.family} {self.name!r}"
        error = PluginError(f"{head} (from {source}){self.message[len(head):]}")
        error.__cause__ = self.__cause__
        return error
