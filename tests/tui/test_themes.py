"""Every panel drawn in every built-in theme: text readable (WCAG 4.5:1) on what it is drawn
on, and the panels on the theme's own background, not the terminal's."""

import time

import pytest
from rich.color import Color as RichColor
from textual.theme import BUILTIN_THEMES

from nnsim.tui.app import StatusBar, make_app
from nnsim.tui.render import contrast, readable, theme_roles
from nnsim.tui.views import View
from tests.helpers import small_config

#: ANSI themes draw with the terminal's own palette, whose colours no program can know
THEMES = [name for name in BUILTIN_THEMES if not name.startswith("ansi")]
PANELS = ("layers", "curves", "distributions", "optimizer", "depth")


def _hex(colour: RichColor | None) -> str | None:
    if colour is None:
        return None
    r, g, b = colour.get_truecolor()
    return f"#{r:02x}{g:02x}{b:02x}"


def test_readable_reaches_the_ratio_and_keeps_good_colours():
    assert readable("#ffffff", "#000000") == "#ffffff"
    for fg, bg in (("#ffa62b", "#e0e0e0"), ("#0178d4", "#000000"), ("#777777", "#888888")):
        assert contrast(readable(fg, bg), bg) >= 4.5
    assert contrast("#ffa62b", "#e0e0e0") < 4.5  # the case it exists for


async def test_every_panel_is_readable_in_every_builtin_theme():
    app = make_app(small_config(("model.hidden", [8, 8, 8])), paused=True)
    failures = []
    async with app.run_test(size=(120, 36)) as pilot:
        app.runner.advance(40)
        deadline = time.monotonic() + 20
        while len(app.runner.history) < 40:
            assert time.monotonic() < deadline
            await pilot.pause(0.02)
        for theme in THEMES:
            app.theme = theme
            for panel in PANELS:
                app.action_view(panel)
                await pilot.pause(0.05)
                app.redraw()
                widgets = [app.query_one(StatusBar), app.query_one(f"#{panel}", View)]
                for widget in widgets:
                    width, height = widget.size
                    for y in range(height):
                        for segment in widget.render_line(y):
                            style = segment.style
                            bg = _hex(style.bgcolor) if style else None
                            if bg is None:
                                failures.append(f"{theme} {panel}: no background at row {y}")
                                continue
                            if not segment.text.strip():
                                continue
                            fg = _hex(style.color)
                            if fg is None:
                                failures.append(f"{theme} {panel}: no colour: {segment.text!r}")
                                continue
                            ratio = contrast(fg, bg)
                            if ratio < 4.5:
                                failures.append(f"{theme} {panel}: {segment.text[:20]!r} "
                                                f"{fg} on {bg} = {ratio:.2f}")
    assert not failures, "\n".join(failures[:20]) + f"\n({len(failures)} in all)"


async def test_the_tabs_and_footer_are_readable_in_every_builtin_theme():
    """Textual's own tab bar and footer too: it dims inactive tabs to half the text colour
    and draws footer keys in the accent colour (1.8–3.8:1 in many built-in themes before
    `nnsim.tui.chrome`). The tab bar is checked focused and not."""
    from textual.widgets import Footer, Tabs
    from textual.widgets._tabs import Underline

    app = make_app(small_config(), paused=True)
    failures = []
    async with app.run_test(size=(120, 36)) as pilot:
        for theme in THEMES:
            app.theme = theme
            for focus in (False, True):
                if focus:
                    app.query_one(Tabs).focus()
                else:
                    app.set_focus(None)
                await pilot.pause(0.05)
                widgets = [*app.query_one(Tabs).query("*"), *app.query_one(Footer).query("*")]
                for widget in widgets:
                    if isinstance(widget, Underline):  # a bar, not text
                        continue
                    for y in range(widget.size.height):
                        for segment in widget.render_line(y):
                            if not segment.text.strip() or segment.style is None:
                                continue
                            fg, bg = _hex(segment.style.color), _hex(segment.style.bgcolor)
                            if fg and bg and contrast(fg, bg) < 4.5:
                                failures.append(f"{theme} {type(widget).__name__} "
                                                f"{segment.text.strip()[:12]!r} "
                                                f"{contrast(fg, bg):.2f}")
    assert not failures, "\n".join(failures[:20]) + f"\n({len(failures)} in all)"


@pytest.mark.parametrize("theme", THEMES)
def test_roles_are_distinct_enough_to_tell_train_from_validation(theme):
    from textual.app import App

    app = App()
    app.theme = theme
    roles = theme_roles(app.get_css_variables())
    assert roles["bg"] == app.get_css_variables()["background"][:7]
    for role in ("fg", "muted", "grad", "act", "sat", "dead", "train", "val"):
        assert contrast(roles[role], roles["bg"]) >= 4.5, role


def test_an_empty_theme_name_still_gives_every_role(monkeypatch):
    """`TEXTUAL_THEME=` (set but empty) leaves the app's theme name empty: a panel still
    takes its colours from the theme's variables (it kept an empty role table before, and
    the first frame failed with KeyError: 'bg')."""
    class EmptyThemeApp:
        theme = ""

        def get_css_variables(self):
            return {"background": "#121212", "foreground": "#e0e0e0"}

    monkeypatch.setattr(View, "app", property(lambda self: EmptyThemeApp()))
    roles = View().roles
    assert {"bg", "fg", "train", "val", "muted"} <= set(roles)


@pytest.mark.parametrize("theme", ["ansi-dark", "ansi-light"])
def test_an_ansi_themes_roles_are_colours_rich_can_draw(theme):
    """Textual calls them 'ansi_blue'; rich, which draws the panels, refused that name and
    the status line's first coloured part (the timeline cursor, a finding) closed the app."""
    from rich.style import Style
    from textual.app import App

    app = App()
    app.theme = theme
    roles = theme_roles(app.get_css_variables())
    for role, colour in roles.items():
        Style.parse(f"bold {colour}")  # raises on a name rich does not know
    assert any(colour != "default" for colour in roles.values())
