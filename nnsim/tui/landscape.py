"""`nnsim landscape`: optimizers' paths over a two-parameter surface's contour map, live."""

from __future__ import annotations

import functools

import numpy as np
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.widgets import Footer, Static

from nnsim.landscape import SURFACES, Landscape
from nnsim.tui.chrome import CSS as CHROME_CSS
from nnsim.tui.chrome import ReadableChrome
from nnsim.tui.controls import CONTROL_BINDINGS
from nnsim.tui.render import fmt, palette_colour, readable
from nnsim.tui.views import View, crop_lines

SPEEDS = (1, 2, 5, 10, 25)
BANDS = 9  # contour bands, from the lowest f to the highest
BAND_COLOURS = [f"#{int(20 + 9 * i):02x}{int(28 + 11 * i):02x}{int(48 + 13 * i):02x}"
                for i in range(BANDS)]



@functools.lru_cache(maxsize=256)
def _on_band(style: str, band: str) -> str:
    """`style` ("bold #rrggbb" or "#rrggbb") drawn on `band`, its colour moved just far
    enough to stand out at 3:1 (Adam's red was 1.2:1 on the blue bands)."""
    words = style.split()
    colour = next((w for w in words if w.startswith("#")), None)
    if colour is not None:
        words[words.index(colour)] = readable(colour, band, 3.0)
    return f"{' '.join(words)} on {band}"


def _hypers(path) -> str:
    """The path's learning rate (* when it is the optimizer's own best on this surface) and
    its momentum-like hyperparameters."""
    opt = path.optimizer
    parts = [f"lr {path.lr:g}{'*' if path.tuned else ''}"]
    for name in ("beta", "beta1", "beta2", "rho"):
        if name in opt.hyperparameters:
            parts.append(f"{'β' if name == 'beta' else name} {getattr(opt, name):g}")
    return " ".join(parts)


class LandscapeView(View):
    """The contour map (log-spaced bands of f), each path's trail and head, and the
    optimizer's first state vector (velocity, or Adam's m) as a short arrow."""

    landscape: Landscape | None = None

    def show_landscape(self, landscape: Landscape) -> None:
        self.landscape = landscape
        self._drawn = ()  # the strips are built anew at the next paint
        self.refresh()

    def lines(self, width: int, height: int) -> list[Text]:
        land = self.landscape
        if land is None:
            return [Text("")]
        s = land.surface
        legend = [f"{s.title}; darker = lower; ✕ minimum; ● now",
                  "arrows: velocity (Adam: m), where it pushes; lr*: each optimizer's best lr"]
        if len(legend[0]) + len(legend[1]) + 2 <= width:
            legend = [f"{legend[0]}; {legend[1]}"]
        cols, rows = max(width, 10), max(height - len(land.paths) - len(legend), 4)
        x0, x1, y0, y1 = s.extent
        xs = np.linspace(x0, x1, cols)
        ys = np.linspace(y1, y0, rows * 2)
        X, Y = np.meshgrid(xs, ys)
        with np.errstate(over="ignore", invalid="ignore"):
            f = s.value(X, Y)
        low = float(np.nanmin(f))
        level = np.log1p(np.clip(f - low, 0, None))
        level = np.floor(level / max(float(np.nanmax(level)), 1e-12) * (BANDS - 1e-9))
        band = np.nan_to_num(level, nan=BANDS - 1).astype(int)

        def cell(x: float, y: float) -> tuple[int, int] | None:
            c = round((x - x0) / (x1 - x0) * (cols - 1))
            r = round((y1 - y) / (y1 - y0) * (rows * 2 - 1)) // 2
            return (r, c) if 0 <= r < rows and 0 <= c < cols else None

        marks: dict[tuple[int, int], tuple[str, str]] = {}
        for m in s.minima:
            at = cell(*m)
            if at:
                marks[at] = ("✕", "bold white")
        for k, path in reversed(list(enumerate(land.paths))):
            colour = palette_colour(k)
            for x, y in path.points[-400:]:
                at = cell(x, y)
                if at and at not in marks:
                    marks[at] = ("·", colour)
            v = path.velocity
            if v is not None and np.isfinite(v).all() and np.linalg.norm(v) > 0:
                x, y = path.points[-1]
                direction = -v / np.linalg.norm(v)  # the step goes against v
                span = 0.15 * min(x1 - x0, y1 - y0)
                for t in np.linspace(0.2, 1.0, 5):
                    at = cell(x + t * span * direction[0], y + t * span * direction[1])
                    if at:
                        marks[at] = ("∙" if t < 1.0 else "➤", f"bold {colour}")
            at = cell(*path.points[-1])
            if at:
                marks[at] = ("●", f"bold {colour}")

        lines = []
        for r in range(rows):
            text = Text()
            top, bottom = band[2 * r].tolist(), band[2 * r + 1].tolist()
            run_style: str | None = None
            run: list[str] = []
            for c in range(cols):
                mark = marks.get((r, c))
                if mark:  # a path's colour moved to 3:1 on the band under it (a graphic)
                    ch, style = mark[0], _on_band(mark[1], BAND_COLOURS[bottom[c]])
                else:
                    ch, style = "▀", f"{BAND_COLOURS[top[c]]} on {BAND_COLOURS[bottom[c]]}"
                if style != run_style and run:
                    text.append("".join(run), run_style)
                    run = []
                run_style = style
                run.append(ch)
            text.append("".join(run), run_style)
            lines.append(text)
        lines += [Text(line, style="dim") for line in legend]
        name_w = max((len(path.label) for path in land.paths), default=0) + 1
        hyper_w = max((len(_hypers(path)) for path in land.paths), default=0) + 1
        for k, path in enumerate(land.paths):
            lines.append(_path_line(k, path, s, width, name_w, hyper_w))
        return crop_lines(lines)


def _path_line(k: int, path, surface, width: int, name_w: int, hyper_w: int) -> Text:
    """A path's legend line in `width` cells. What it has done (converged or diverged at
    step k, or how far it is from the minimum) is never cut: when the line is too wide, f
    goes first, then the hyperparameters, then the wording is shortened, and only then is
    the end cut with … (a clipped "converged at step 146" read "converged at step 1")."""
    x, y = path.points[-1]
    distance = fmt(surface.distance(np.array([x, y])))
    states = (("diverged at step %d" % path.diverged_at, "diverged: %d" % path.diverged_at)
              if path.diverged_at else
              ("converged at step %d" % path.converged_at, "converged: %d" % path.converged_at)
              if path.converged_at else
              ("distance to the minimum " + distance, "distance " + distance))
    escaped = (f", escaped at step {path.escaped_at}", f", escaped: {path.escaped_at}") \
        if path.escaped_at is not None else ("", "")
    f = f" f = {fmt(surface.value(x, y))}  "
    hypers = f"{_hypers(path):<{hyper_w}}"
    name = f"{path.label:<{name_w}}"
    for with_f, with_hypers, wording in ((True, True, 0), (False, True, 0), (False, False, 0),
                                         (False, False, 1)):
        tail = (f if with_f else " ") + states[wording] + escaped[wording]
        if 2 + len(name) + (len(hypers) if with_hypers else 0) + len(tail) <= width:
            break
    line = Text()
    line.append("■ ", palette_colour(k))
    line.append(name, "bold")
    if with_hypers:
        line.append(hypers, "dim")
    line.append(tail)
    if line.cell_len > width:
        line.truncate(max(width, 1), overflow="ellipsis")
    return line


class LandscapeApp(ReadableChrome, App):
    """Optimizers racing on a loss surface."""

    TITLE = "nnsim landscape"
    BINDINGS = [
        *CONTROL_BINDINGS,
        Binding("s", "surface", "Next surface"),
        Binding("q", "quit", "Quit"),
    ]
    CSS = "#status { height: 1; padding: 0 1; background: $boost; }" + CHROME_CSS

    def __init__(self, landscape: Landscape, paused: bool = False) -> None:
        super().__init__()
        self.landscape = landscape
        self.paused = paused
        self.speed = 1

    def compose(self) -> ComposeResult:
        yield Static(id="status")
        yield LandscapeView(id="landscape")
        yield Footer()

    def on_mount(self) -> None:
        self.set_interval(1 / 30, self.tick)
        self.draw()

    def tick(self) -> None:
        if self.paused or self.landscape.done:
            return
        for _ in range(SPEEDS[self.speed]):
            self.landscape.step()
        try:
            self.draw()
        except NoMatches:
            pass  # the app is closing: its screens are gone before its timers

    def draw(self) -> None:
        land = self.landscape
        state = "done" if self.landscape.done else ("paused" if self.paused else "running")
        self.query_one("#status", Static).update(Text.assemble(
            (f" {state} ", "bold"), f"  step {land.step_count}  ",
            (f"{land.surface_name}", "bold cyan"), f"  speed {SPEEDS[self.speed]}/frame"),
            layout=False)
        self.query_one(LandscapeView).show_landscape(land)

    def action_play_pause(self) -> None:
        self.paused = not self.paused
        self.draw()

    def action_step(self) -> None:
        self.paused = True
        self.landscape.step()
        self.draw()

    def action_faster(self) -> None:
        self.speed = min(self.speed + 1, len(SPEEDS) - 1)
        self.draw()

    def action_slower(self) -> None:
        self.speed = max(self.speed - 1, 0)
        self.draw()

    def action_reset(self) -> None:
        self.landscape.reset()
        self.draw()

    def action_surface(self) -> None:
        names = list(SURFACES)
        land = self.landscape
        land.surface_name = names[(names.index(land.surface_name) + 1) % len(names)]
        land.start_override = None
        land.reset()
        self.draw()

