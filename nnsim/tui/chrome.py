"""Textual's own tabs and footer in colours that read at 4.5:1 in every theme.

Textual draws an inactive tab at half its theme's text colour and footer keys in the
accent colour; in many built-in themes that is 1.8–3.8:1 against what they sit on. An app
that mixes in `ReadableChrome` and adds `CSS` gets, per theme, the same colours moved just
far enough to reach 4.5:1 (`render.readable`)."""

from __future__ import annotations

from typing import Any

from textual.color import Color, ColorParseError

from nnsim.tui.render import blend, readable

CSS = """
Tab { color: $nnsim-tab; }
Tab.-active, Tab:hover { color: $foreground; }
Tabs:focus Tab.-active { color: $nnsim-tab-cursor; }
FooterKey .footer-key--key { color: $nnsim-footer-key; }
FooterKey .footer-key--description { color: $nnsim-footer-text; }
"""


def _solid(value: str | None) -> str | None:
    """'#rrggbb' for a colour the theme gives, None for one it does not (an ANSI theme's
    'ansi_default', 'transparent')."""
    if not value:
        return None
    try:
        colour = Color.parse(value)
    except ColorParseError:
        return None
    return None if colour.a < 1 or colour.ansi is not None else colour.hex6


def chrome_variables(variables: dict[str, str]) -> dict[str, str]:
    """The `$nnsim-…` variables `CSS` uses, from a theme's CSS variables: an inactive tab a
    third of the way from the text colour to the background, the active tab of the focused
    tab bar and the footer's keys and text in the theme's colours, each moved to 4.5:1 where
    it falls short; the theme's own where its colours cannot be known (ANSI themes)."""
    fg, bg = _solid(variables.get("foreground")), _solid(variables.get("background"))
    footer = _solid(variables.get("footer-background")) or bg
    cursor = _solid(variables.get("block-cursor-background")) or bg
    on_cursor = _solid(variables.get("block-cursor-foreground")) or fg
    key = _solid(variables.get("footer-key-foreground")) or fg
    text = _solid(variables.get("footer-description-foreground")) or fg
    if None in (fg, bg, footer, key, text, cursor, on_cursor):
        return {"nnsim-tab": variables.get("foreground", "white"),
                "nnsim-tab-cursor": variables.get("block-cursor-foreground", "white"),
                "nnsim-footer-key": variables.get("footer-key-foreground", "white"),
                "nnsim-footer-text": variables.get("footer-description-foreground", "white")}
    assert fg and bg and footer and key and text and cursor and on_cursor  # (for mypy)
    return {"nnsim-tab": readable(blend(fg, bg, 1 / 3), bg),
            "nnsim-tab-cursor": readable(on_cursor, cursor),
            "nnsim-footer-key": readable(key, footer),
            "nnsim-footer-text": readable(text, footer)}


class ReadableChrome:
    """Mixin for an App (before App in its bases): the `$nnsim-…` variables of `CSS`."""

    def get_css_variables(self) -> dict[str, str]:
        variables: dict[str, Any] = super().get_css_variables()  # type: ignore[misc]
        variables.update(chrome_variables(variables))
        return variables
