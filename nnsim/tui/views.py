"""The panels: thin widgets that lay out what the pure renderers draw from step records.

Every time series comes from the engine's Timeline, reduced to as many columns as the panel
has room for: by default the whole run (step 1 stays on screen), or the newest 1,000 or 100
steps. Every magnitude of a column shares one axis across the layers, decade-aligned on a
log scale, and the axis is printed, so a layer at 1e-5 never looks like one at 1e-1."""

from __future__ import annotations

import math
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np
from rich.console import Group
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from nnsim.engine.records import LayerRecord, StepRecord
from nnsim.engine.timeline import Columns, Timeline
from nnsim.tui.render import (ONE_CELL, Runs, bars, fmt, heatmap, plot, plot_cell,
                              run_colour, sparklines, theme_roles)

LABEL_WIDTH = 6  # the layer label column on narrow screens; wide ones get WIDE_LABEL
WIDE_LABEL = 9
VALUE_WIDTH = 6
#: the narrowest sparkline a column gets: on a narrow screen the last columns give way
#: rather than every column shrinking to a few points of the run (80 columns: four)
MIN_SPARK = 10
#: the history windows `t` cycles through: the whole run, then the newest steps
WINDOWS: tuple[int | None, ...] = (None, 1000, 100)


def window_text(window: int | None) -> str:
    return "whole run" if window is None else f"last {window:,} steps"


@dataclass
class Frame:
    """What one redraw shows: the newest records, the run's timeline and state."""

    records: list[StepRecord]
    evals: list[tuple[int, float, float | None]]
    state: str
    message: str
    rate: float
    speed: str
    activation: str
    optimizer: str
    lr: float
    grid: dict | None = None
    extras: dict = field(default_factory=dict)
    timeline: Timeline | None = None
    window: int | None = None  # None: the whole run
    smooth: bool = False  # curves: moving average instead of raw
    first: StepRecord | None = None  # the run's first record (the initial network)
    classes: int | None = None  # classification: number of classes (chance lines)
    newest: StepRecord | None = None  # the newest step, measured or not (status line)
    findings: list = field(default_factory=list)  # the doctor's (nnsim.components.Finding)

    @property
    def last(self) -> StepRecord | None:
        """The newest record with layer statistics (at high speed not every step has them)."""
        return self.records[-1] if self.records else None

    def columns(self, n: int, keys=None) -> Columns:
        """The timeline reduced to at most n columns over the frame's window (only the
        series in `keys`, when given)."""
        if self.timeline is None:
            return Timeline().resample(n)
        return self.timeline.resample(n, self.window, keys)


def _layer_series(records: list[StepRecord], index: int, name: str) -> list[float]:
    out = []
    for r in records:
        if index < len(r.layers):
            layer = r.layers[index]
            value = getattr(layer, name, None)
            if value is None:
                value = dict(layer.state).get(name, dict(layer.learnable).get(name))
            out.append(math.nan if value is None else value)
    return out


_STYLES: dict[tuple, Style] = {}


def _style(base: Style, span: str) -> Style:
    key = (base, span)
    style = _STYLES.get(key)
    if style is None:
        style = _STYLES[key] = base + Style.parse(span.strip() or "none")
    return style


def _segments(pieces, base: Style) -> list[Segment]:
    """Segments for a line's (style, text) pieces, in order: unstyled neighbours are one
    piece, neighbouring pieces of one style one segment, and blank text whose colour does
    not show joins the segment before it. `base` (the line's colours) is under every one."""
    gaps: list[list] = []  # [style, text]
    for style, text in pieces:
        if not style and gaps and not gaps[-1][0]:
            gaps[-1][1] += text
        else:
            gaps.append([style, text])
    merged: list[list] = []  # [style, texts]
    for style, text in gaps:
        if merged and (style == merged[-1][0] or (
                not text.strip() and "on " not in style and "on " not in merged[-1][0]
                and "underline" not in merged[-1][0])):
            merged[-1][1].append(text)
            continue
        merged.append([style, [text]])
    return [Segment("".join(texts), _style(base, style)) for style, texts in merged]


def text_strip(text: Text, width: int, base: Style | None = None) -> Strip:
    """A Strip for a Text built by appending styled runs, without going through Rich's
    general renderer: a frame is thousands of such runs. `base` (the panel's colours) is
    under every run. Spans that overlap (a Text with a style of its own appended to
    another) are combined as Rich combines them: the later on top."""
    plain = text.plain
    base = (base or Style()) + Style.parse(str(text.style or "") or "none")
    pieces: list[tuple[str, str]] = []  # (style, text): the spans and the gaps between
    pos = 0
    spans = sorted(text.spans, key=lambda sp: sp.start)
    for span in spans:
        if span.start < pos:  # overlapping: style each stretch between span ends
            return Strip(_segments(_layered(text.spans, plain), base)).crop_extend(
                0, width, base)
        if span.start > pos:
            pieces.append(("", plain[pos:span.start]))
        if span.end > span.start:
            pieces.append((str(span.style), plain[span.start:span.end]))
        pos = max(pos, span.end)
    if pos < len(plain):
        pieces.append(("", plain[pos:]))
    return Strip(_segments(pieces, base)).crop_extend(0, width, base)


def _layered(spans, plain: str) -> list[tuple[str, str]]:
    """(style, text) pieces for spans that may overlap: each stretch between span ends
    takes every span over it, in the spans' order (Rich's: a later span on top)."""
    ends = sorted({0, len(plain), *(min(max(x, 0), len(plain)) for sp in spans
                                    for x in (sp.start, sp.end))})
    return [(" ".join(str(sp.style) for sp in spans if sp.start <= a and sp.end >= b),
             plain[a:b]) for a, b in zip(ends, ends[1:]) if b > a]


def runs_strip(runs: Runs, width: int, base: Style | None = None) -> Strip:
    """`text_strip(runs.text(), width, base)`, made from the runs themselves: no Text, no
    spans to sort, and widths that are lengths (lines with a character of another width
    take the general way)."""
    if not runs.one_cell_each():
        return text_strip(runs.text(), width, base)
    base = (base or Style()) + Style.parse(runs.style or "none")
    segments, used = [], 0
    for segment in _segments(zip(runs.styles, runs.parts), base):
        if used + len(segment.text) >= width:  # cut at the panel's edge
            segments.append(Segment(segment.text[:width - used], segment.style))
            used = width
            break
        segments.append(segment)
        used += len(segment.text)
    if used < width:
        segments.append(Segment(" " * (width - used), base))
    return Strip(segments, width)


def crop_lines(lines: list) -> list:
    """Lines that never wrap: what does not fit is cut at the panel's edge (Runs never
    wrap)."""
    for line in lines:
        if isinstance(line, Text):
            line.no_wrap, line.overflow = True, "crop"
    return lines


class View(Widget):
    """Base of the panels: holds the newest Frame and redraws from it, line by line, in the
    theme's colours (`self.roles`)."""

    DEFAULT_CSS = """
    View { height: 1fr; width: 1fr; padding: 0 1; }
    """
    #: what the panel shows, for the help screen
    HELP: ClassVar[str] = ""
    frame: Frame | None = None
    _drawn: tuple = ()
    _strips: list[Strip] = []
    _made: dict = {}
    _roles: tuple[str | None, dict[str, str]] = (None, {})  # (theme, roles): none yet

    @property
    def roles(self) -> dict[str, str]:
        """Colours by role (grad, act, sat, dead, train, val, muted, fg, bg …) from the
        app's theme, each readable on its background."""
        try:
            theme = self.app.theme
        except Exception:  # no app (a renderer test): Textual's dark theme
            theme = "textual-dark"
        if self._roles[0] != theme:
            try:
                variables = self.app.get_css_variables()
            except Exception:
                variables = {}
            self._roles = (theme, theme_roles(variables))
        return self._roles[1]

    @property
    def base_style(self) -> Style:
        roles = self.roles
        fg, bg = roles["fg"], roles["bg"]
        return Style(color=None if fg == "default" else fg,
                     bgcolor=None if bg == "default" else bg)

    def show(self, frame: Frame) -> None:
        """Draw a new frame, asking Textual to repaint only the lines that changed."""
        self.frame = frame
        width, height = self.size
        if not width or not height:
            self._drawn = ()
            self.refresh()
            return
        old = self._strips
        self._build(width, height)
        new = self._strips
        if len(old) != len(new):
            self.refresh()
            return
        changed = [y for y, (a, b) in enumerate(zip(old, new))
                   if a is not b and (a.text != b.text or a._segments != b._segments)]
        if changed:  # one refresh, one region for each band of neighbouring lines
            regions, top = [], changed[0]
            for y, after in zip(changed, changed[1:] + [-1]):
                if after != y + 1:
                    regions.append(Region(0, top, width, y + 1 - top))
                    top = after
            self.refresh(*regions)

    def _build(self, width: int, height: int) -> None:
        self._drawn = (id(self.frame), width, height, self._roles[0])
        if width < 1:  # squeezed to nothing (a lesson beside it on a narrow terminal)
            self._made, self._strips = {}, []
            return
        base = self.base_style
        strips = []
        # a line drawn as in the last frame reuses its Strip: no new segments, and the
        # comparison in show() finds it unchanged at once
        previous = self._made
        made: dict[tuple, Strip] = {}
        for line in self.lines(width, height):
            if isinstance(line, Runs):  # a line of styled runs that never wraps
                runs_key = (line.key(), width, base)
                strip = previous.get(runs_key)
                made[runs_key] = strip if strip is not None else runs_strip(line, width, base)
                strips.append(made[runs_key])
                continue
            key = (line.plain, tuple(line.spans), str(line.style), line.no_wrap,
                   line.overflow, width, base)
            strip = previous.get(key)
            if strip is not None:
                made[key] = strip
                strips.append(strip)
                continue
            plain = line.plain
            narrow = ONE_CELL.issuperset(plain)  # (then its width is its length)
            cells = len(plain) if narrow else line.cell_len
            if line.no_wrap and line.overflow == "ellipsis" and cells > width:
                line = line.copy()
                if narrow:  # what truncate() does, without measuring each character
                    line.plain = plain[:width - 1] + "…"
                else:
                    line.truncate(width, overflow="ellipsis")
                strips.append(text_strip(line, width, base))
            elif line.no_wrap or cells <= width:
                strips.append(text_strip(line, width, base))
            else:  # a long sentence: wrap it the way Rich would
                strips += [text_strip(part, width, base) for part in line.wrap(
                    self.app.console, width)]
                continue
            made[key] = strips[-1]
        self._made = made
        self._strips = strips

    def lines(self, width: int, height: int) -> Sequence[Text | Runs]:
        """The panel as lines of Text (or Runs), for the current frame and size."""
        if self.frame is None or not self.frame.records:
            return [Text("No steps yet. Press space to train, n for one step.",
                         style=self.roles["muted"])]
        drawn = self.draw(self.frame, max(width, 10), max(height, 3))
        if isinstance(drawn, Group):
            return [line for line in drawn.renderables if isinstance(line, (Text, Runs))]
        return [drawn]

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        if (id(self.frame), width, height, self._roles[0]) != self._drawn:
            self._build(width, height)
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(width, self.base_style)

    def draw(self, frame: Frame, width: int, height: int):
        raise NotImplementedError


# ---------------------------------------------------------------- axes

def decade_range(values, floor_decades: float = 1.0) -> tuple[float, float]:
    """A log10 axis for positive values: whole decades from below the smallest to above the
    largest, at least `floor_decades` wide, so a spread of 1.2× draws nearly flat and one of
    three decades as a staircase."""
    finite = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    if not finite:
        return -1.0, 0.0
    low = math.floor(math.log10(min(finite)))
    high: float = math.ceil(math.log10(max(finite)))
    if high - low < floor_decades:
        high = low + floor_decades
    return float(low), float(high)


def decade(exponent: float) -> str:
    """10**exponent for an axis label: 0.01, 0.1, 1, 10, 100, else 1e-5, 1e4."""
    e = int(round(exponent))
    return {-2: "0.01", -1: "0.1", 0: "1", 1: "10", 2: "100"}.get(e, f"1e{e}")


def axis_text(lo: float, hi: float, log: bool, percent: bool = False) -> str:
    if percent:
        return f"{lo * 100:.0f}–{hi * 100:.0f}%"
    if log:
        return f"{decade(lo)}…{decade(hi)}"
    return f"{fmt(lo, 2)}…{fmt(hi, 2)}"


def steps_line(cols: Columns, window: int | None, width: int, muted: str) -> Text:
    """Under a chart: the steps its first and last columns cover, and the window."""
    if not len(cols):
        return Text("")
    left = f"step {int(cols.first[0]):,}"
    right = f"step {int(cols.last[-1]):,}"
    middle = f" {window_text(window)} (t: change) "
    gap = max(1, width - len(left) - len(right) - len(middle))
    return Text(f"{left}{'─' * (gap // 2)}{middle}{'─' * (gap - gap // 2)}{right}", muted)


def marker_line(at: int, width: int, step: int, style: str) -> Text:
    """A ▲ under cell `at` of a chart `width` cells wide, with the step it marks beside
    it (on the side with room)."""
    label = f" timeline: step {step:,}"
    if at + 1 + len(label) <= width:
        return Text.assemble(" " * at, ("▲" + label, style))
    start = max(at - len(label) + 1, 0)
    return Text.assemble(" " * start, (f"{label.strip()} ▲"[-(at - start + 1):], style))


def cursor_index(cols: Columns, step: int | None) -> int | None:
    """The column of `cols` that covers `step` (the timeline's cursor), or None."""
    if step is None or not len(cols):
        return None
    j = int(np.searchsorted(cols.last, step))
    return j if j < len(cols) and cols.first[j] <= step else None


def _marked(row: Runs, text: str, style: str, at: int | None, on: str) -> None:
    """`text` onto `row`, the character at `at` (if inside it) on the background `on`:
    the bar keeps its shape and colour, a blank cell shows the mark too."""
    if at is None or not 0 <= at < len(text):
        row.append(text, style)
        return
    row.append(text[:at], style)
    row.append(text[at], f"{style} on {on}".strip())
    row.append(text[at + 1:], style)


# ---------------------------------------------------------------- the layer table

class Column:
    """One metric of a layer table: a sparkline per layer over the window, and the newest
    value. Log columns share a decade-aligned axis across every layer (and the whole
    window); fractions use 0–100 %; signed quantities their fixed range."""

    def __init__(self, title: str, field: str, role: str, log: bool = False, lo=None,
                 hi=None, percent: bool = False, output: bool = True,
                 short: str | None = None, banded: bool = False, note: str = "") -> None:
        self.title, self.field, self.role, self.log = title, field, role, log
        self.short = short or title
        self.lo, self.hi, self.percent, self.output = lo, hi, percent, output
        self.banded = banded  # colour each column by its distance from 1e-3
        self.note = note  # said after the axis where it fits (the values to compare with)

    def value_text(self, value: float) -> str:
        if self.percent and math.isfinite(value):
            return f"{value * 100:.0f}%"
        return fmt(value, 2)

    def axis(self, series: list[np.ndarray]) -> tuple[float, float]:
        if self.lo is not None and self.hi is not None:
            return self.lo, self.hi
        values = [v for s in series for v in s.tolist()]
        return decade_range(values)


def _band_role(x: float) -> str:
    """Update/weight: good within a decade of 1e-3, warn within two, bad beyond."""
    if not (x > 0 and math.isfinite(x)):
        return "bad"
    off = abs(math.log10(x) + 3)
    return "good" if off <= 1 else ("warn" if off <= 2 else "bad")


def layer_table(frame: Frame, cols: list[Column], width: int, height: int, roles,
                label_of, extra=None, extra_width: int = 0) -> list[Text | Runs]:
    """Rows of sparklines, one block of rows per layer, sized to fill width and height; the
    last line says which steps the sparklines cover."""
    last = frame.last
    assert last is not None  # panels draw only frames with records (View.lines)
    layers = last.layers
    label_w = WIDE_LABEL if width >= 120 else LABEL_WIDTH
    room = width - label_w - extra_width
    min_cell = MIN_SPARK + VALUE_WIDTH + 2
    fit = max(1, room // min_cell)
    cols, hidden = cols[:fit], cols[fit:]
    # (the last columns give way on narrow screens; a line under the table names them)
    cell = max(room // len(cols), min_cell)
    spark = max(cell - VALUE_WIDTH - 2, MIN_SPARK)
    rows_free = height - 3  # two heading lines, the step line (and a note if a row is left)
    per_layer = rows_free // max(len(layers), 1)
    # taller sparklines first; a blank row between layers once there is room for one
    block, gap = (min(6, per_layer - 1), True) if per_layer >= 4 else (max(1, per_layer), False)
    timeline = frame.columns(spark, [(c.field, layer.index) for c in cols
                                     for layer in layers])
    series = {c.field: [timeline.series((c.field, layer.index)) for layer in layers]
              for c in cols}
    # each axis spans the least and the greatest value of every step in the window (each
    # column's min and max, not only its mean): over the whole run the early steps merge
    # into wider buckets whose means span less, and an axis taken from the means narrowed
    # as the run went on, so a climbing value could draw lower than before (a momentum
    # step of 0.36 on 0.01…1 stood taller than 0.55 on 0.1…1)
    extent = {c.field: [timeline.series((c.field, layer.index), which)
                        for layer in layers if layer.kind == "hidden" or c.output
                        for which in ("lo", "hi")] for c in cols}
    axes = {c.field: c.axis(extent[c.field]) for c in cols}
    title = Runs(f"{'layer':<{label_w}}", style="bold")
    scale = Runs(" " * label_w, style=roles["muted"])
    for c in cols:
        name = c.title if len(c.title) < cell else c.short
        title.append(f"{name[:cell - 1]:<{cell}}", f"bold {roles[c.role]}"
                     if not c.banded else "bold")
        lo, hi = axes[c.field]
        ax = axis_text(lo, hi, c.log, c.percent)
        if c.banded and len(ax) + 10 < cell:
            ax += " aim 1e-3"  # the rule of thumb; columns are coloured by their distance
        if c.note and len(ax) + len(c.note) + 2 < cell:
            ax += " " + c.note
        scale.append(f"{ax[:cell - 1]:<{cell}}")
    if extra_width:
        title.append("learnable (mean)", "bold")
    lines: list[Text | Runs] = [title, scale]
    drawn = {c.field: sparklines(np.vstack(series[c.field]), spark, *axes[c.field], c.log,
                                 block) for c in cols}
    # the timeline's step (, and .): its cell of every sparkline on a background of its own
    at = cursor_index(timeline, frame.extras.get("cursor"))
    mark = None if at is None else spark - len(timeline) + at
    on = roles["muted"]
    for i, layer in enumerate(layers):
        rows = [Runs(style="bold") for _ in range(block)]
        label = label_of(layer)
        for r in range(block):
            text = fit_label(label[r] if r < len(label) else "", label_w)
            rows[r].append(f"{text:<{label_w}}", "bold" if r == 0 else roles["muted"])
        for col in cols:
            if layer.kind == "output" and not col.output:
                for row in rows:
                    row.append(" " * cell)
                continue
            values = series[col.field][i]
            newest = _newest(layer, col.field)
            chars = drawn[col.field][i]
            if col.banded:  # each column in the colour of its own distance from 1e-3
                tail = values.tolist()[-spark:]
                pad = spark - len(tail)
                bands = [_band_role(v) for v in tail]
                # (no values in the window: a reset or a rewind on the training thread
                # emptied the timeline since this frame was taken)
                runs = [0] + [k for k in range(1, len(bands)) if bands[k] != bands[k - 1]] \
                    if bands else []
                for r, row_chars in enumerate(chars):
                    _marked(rows[r], row_chars[:pad], "", mark, on)
                    for a, b in zip(runs, runs[1:] + [len(bands)]):
                        _marked(rows[r], row_chars[pad + a:pad + b], roles[bands[a]],
                                None if mark is None else mark - pad - a, on)
            else:
                for r, row_chars in enumerate(chars):
                    _marked(rows[r], row_chars, roles[col.role], mark, on)
            value_role = col.role if not col.banded else _band_role(newest)
            if col.field == "dead" and newest > 0:
                value_role = "dead"
            # beside its own sparkline, the gap before the next column's (right-aligned,
            # a value sat against the next sparkline and read as its label)
            rows[0].append(f" {col.value_text(newest):<{VALUE_WIDTH}} ",
                           f"bold {roles[value_role]}")
            for row in rows[1:]:
                row.append(" " * (VALUE_WIDTH + 2))
        if extra is not None:  # one entry a row; the last row takes what fits whole
            items = extra(layer)
            for r, row in enumerate(rows):
                text = _whole(items[r:], extra_width) if r == len(rows) - 1 else \
                    (items[r] if r < len(items) else "")
                row.append(fit_label(text, extra_width + 1) if text else "")
        lines += rows
        if gap:
            lines.append(Text(""))
    lines.append(steps_line(timeline, frame.window, min(width, label_w + cell * len(cols)),
                            roles["muted"]))
    lines = crop_lines(lines)
    if hidden and len(lines) < height:
        lines.append(Text(f"not shown at this width: {', '.join(c.title for c in hidden)} "
                          f"(a wider terminal shows {'them' if len(hidden) > 1 else 'it'})",
                          style=roles["muted"],
                          no_wrap=True, overflow="ellipsis"))
    return lines


def _newest(layer: LayerRecord, name: str) -> float:
    value = getattr(layer, name, None)
    if value is None:
        value = dict(layer.state).get(name, dict(layer.learnable).get(name))
    return math.nan if value is None else float(value)


def _whole(items: list[str], width: int) -> str:
    """As many of `items` as fit whole in `width`, joined by blanks, with … for the rest
    (one item is given as it is)."""
    if len(items) <= 1:
        return "".join(items)
    text = ""
    for k, item in enumerate(items):
        more = "" if k == len(items) - 1 else " …"
        if len(f"{text} {item}{more}".strip()) > width:
            return f"{text} …".strip()
        text = f"{text} {item}".strip()
    return text


def fit_label(text: str, width: int) -> str:
    """`text` in a column `width` wide with a blank after it: cut with … when longer
    ('sigmoid' in 6 columns is 'sigm…', not 'sigmoi' running into the sparkline)."""
    return text if len(text) < width else text[:max(width - 2, 0)] + "…"


def _label(frame: Frame):
    def label(layer: LayerRecord) -> list[str]:
        if layer.kind == "output":
            return ["out", f"{layer.width}"]
        return [f"L{layer.index}", f"{layer.width}", frame.activation[:WIDE_LABEL - 1]]
    return label


class LayersView(View):
    """Per layer: gradient norm, activation spread, update/weight, saturated and dead share,
    optimizer state, over the run."""
    HELP = ("One block per layer; every sparkline covers the whole run (t: the last 1,000 "
            "or 100 steps), and the line under the table says which steps. A column's "
            "axis is shared by every layer and printed under its heading, in whole "
            "decades, so heights compare across depth. ‖∂L/∂W‖: gradient norm of the "
            "weights; shrinking towards the first layers is vanishing gradients. act std: "
            "spread of the activations. saturated: units whose local derivative is under "
            "5% of its maximum (ReLU: input ≤ 0; tanh, sigmoid: the flat ends; a leaky "
            "ReLU with slope ≥ 0.05: never). dead: units saturated for every example of "
            "the last ≥ 1,000 (dead ReLUs). ‖ΔW‖/‖W‖: size of the update relative to the weights, "
            "coloured by its distance from the 1e-3 rule of thumb. ‖velocity‖: the "
            "optimizer's state. On a narrow screen the last columns give way (named under "
            "the table).")

    def columns(self, frame: Frame) -> list[Column]:
        last = frame.last
        assert last is not None  # panels draw only frames with records (View.lines)
        state_names = [name for name, _ in last.layers[0].state]
        # in order of importance: on narrow screens the last ones give way
        cols = [
            Column("‖∂L/∂W‖", "grad_norm", "grad", log=True),
            Column("act std", "act_std", "act", log=True, output=False),
            Column("saturated", "saturated", "sat", lo=0.0, hi=1.0, percent=True,
                   output=False, short="sat"),
            Column("dead", "dead", "dead", lo=0.0, hi=1.0, percent=True, output=False),
            Column("‖ΔW‖/‖W‖", "update_ratio", "good", log=True, lo=-6.0, hi=0.0,
                   short="ΔW/W", banded=True),
        ]
        for name in state_names[:1]:
            cols.append(Column(f"‖{name}‖", name, "state", log=True, short=f"‖{name[0]}‖"))
        focus = frame.extras.get("focus")  # a lesson's statistic comes first
        cols.sort(key=lambda col: col.field != focus)
        return cols

    def draw(self, frame: Frame, width: int, height: int):
        last = frame.last
        assert last is not None  # panels draw only frames with records (View.lines)
        if not last.layers:
            return Text("Telemetry is off: no per-layer statistics.", style=self.roles["muted"])
        learn = 18 if any(layer.learnable for layer in last.layers) and width >= 110 else 0

        def learnable(layer: LayerRecord) -> list[str]:
            return [f"{k} {fmt(v)}" for k, v in layer.learnable]

        return Group(*layer_table(frame, self.columns(frame), width, height, self.roles,
                                  _label(frame), learnable if learn else None, learn))


class OptimizerView(View):
    """Per layer: optimizer state norms, cos(update, gradient), effective step size."""
    HELP = ("Optimizer state norms per layer, the cosine between the update and the "
            "negative gradient, and the effective step ‖ΔW‖/‖∂L/∂W‖: with momentum it "
            "grows towards lr/(1−β) while successive gradients agree (cos near 1), and "
            "past it while the gradient shrinks (the velocity still holds larger ones).")

    def draw(self, frame: Frame, width: int, height: int):
        last = frame.last
        assert last is not None  # panels draw only frames with records (View.lines)
        roles = self.roles
        if not last.layers:
            return Text("Telemetry is off: no per-layer statistics.", style=roles["muted"])
        state_names = [name for name, _ in last.layers[0].state]
        cols = [Column(f"‖{n}‖", n, "state", log=True) for n in state_names]
        hypers = frame.extras.get("hypers", {})
        beta = hypers.get("beta")
        momentum = "velocity" in state_names and beta is not None and beta < 1
        # the step's two landmarks under its axis: lr, and with momentum lr/(1−β)
        note = (f"lr {fmt(frame.lr)}" + (f", lr/(1−β) {fmt(frame.lr / (1 - beta))}"
                                         if momentum else "")) if not state_names or momentum \
            else ""
        cols += [Column("cos(−ΔW,∂L/∂W)", "update_cos", "good", lo=-1.0, hi=1.0,
                        short="cos"),
                 Column("step ‖ΔW‖/‖∂L/∂W‖", "step_size", "grad", log=True, short="step",
                        note=note)]
        if momentum:
            assert beta is not None
            ceiling = frame.lr / (1 - beta)
            say = (f"Momentum: the step ‖ΔW‖/‖∂L/∂W‖ grows from lr = {fmt(frame.lr)} towards "
                   f"lr/(1−β) = {fmt(ceiling)} while successive gradients agree (cos near 1), "
                   "and goes past it while the gradient shrinks (the velocity still holds "
                   "larger ones); where they disagree the velocity cancels and the step "
                   "stays near lr.")
        elif not state_names:
            say = "No state kept: each step follows the newest gradient (cos = 1 without "\
                  "clipping or decay)."
        else:
            say = "Adaptive steps: ‖ΔW‖/‖∂L/∂W‖ differs by layer and changes over time."
        head = Text(f"{frame.optimizer}, lr {fmt(frame.lr)}. {say}", style=roles["muted"])
        # the lines the words take (at 80 columns four, not the two reserved for them)
        head_lines = len(textwrap.wrap(head.plain, max(width, 1))) or 1
        return Group(head, *layer_table(frame, cols, width, height - head_lines, roles,
                                        _label(frame)))


# ---------------------------------------------------------------- curves

def _dashed(value: float, n: int) -> np.ndarray:
    """A horizontal line at `value` across n dot columns, dashed (gaps every few dots)."""
    out = np.full(n, float(value))
    out[(np.arange(n) // 3) % 2 == 1] = np.nan
    return out


def _held(values: np.ndarray) -> np.ndarray:
    """NaN gaps filled with the last value before them (validation between evaluations)."""
    out = values.copy()
    ok = ~np.isnan(out)
    if not ok.any():
        return out
    idx = np.where(ok, np.arange(len(out)), 0)
    np.maximum.accumulate(idx, out=idx)
    out = out[idx]
    out[:int(np.argmax(ok))] = np.nan
    return out


class CurvesView(View):
    """Train and validation loss (log scale) and accuracy over the run, raw (mean with its
    min–max band) or smoothed, against the chance level."""
    HELP = ("Training loss (log scale) and accuracy over the run, validation at each "
            "evaluation, the dashed chance level (ln C for the loss, 1/C for accuracy). m "
            "switches between a moving average and the raw values (each column's mean "
            "with its min–max band).")

    def draw(self, frame: Frame, width: int, height: int):
        roles = self.roles
        plot_w = max(width - 10, 10)
        cols = frame.columns(plot_w * 2, ("loss", "accuracy", "val_loss", "val_accuracy",
                                          "loss_smooth", "accuracy_smooth"))
        has_acc = bool(np.isfinite(cols.series("accuracy")).any())
        cursor = frame.extras.get("cursor")
        at = cursor_index(cols, cursor)
        # a header above each plot, the step line below them (and the timeline's step under
        # it, when one is picked in the window): every other row is plot
        rows = height - (at is not None)
        plot_h = max((rows - 3) // 2 if has_acc else rows - 2, 2)
        chance_loss = math.log(frame.classes) if frame.classes else None
        lines: list[Text | Runs] = []
        for name, key, log, chance in (("loss", "loss", True, chance_loss),
                                       ("accuracy", "accuracy", False,
                                        1 / frame.classes if frame.classes else None)):
            if name == "accuracy" and not has_acc:
                break
            # validation is measured every eval_every steps: its line is a staircase
            every = frame.extras.get("eval_every")
            val = f"━ validation (every {every} steps) " if every and width >= 100 else \
                "━ validation "
            head = Text.assemble((f"{name}{' (log)' if log else ''}  ", "bold"),
                                 ("━ train ", roles["train"]), (val, roles["val"]),
                                 no_wrap=True, overflow="ellipsis")
            if chance is not None:
                head.append(f"╌ chance {fmt(chance)} ", roles["muted"])
            # one line each, whatever the width: the plots take the rows that are left
            mode = ("moving average (m: change)", "average (m)") if frame.smooth else \
                ("raw: mean and min–max band (m: change)", "raw, min–max (m)")
            room = width - head.cell_len - 2
            head.append(f"  {mode[0] if len(mode[0]) <= room else mode[1]}", roles["muted"])
            lines.append(head)
            n = len(cols)
            series = []
            if frame.smooth:
                series.append((cols.series(f"{key}_smooth"), roles["train"]))
            else:
                series.append((cols.series(key), roles["train"]))
            series.append((_held(cols.series(f"val_{key}")), roles["val"]))
            if not frame.smooth:
                faint = roles["muted"]
                series += [(cols.series(key, "lo"), faint), (cols.series(key, "hi"), faint)]
            if chance is not None and n:
                series.append((_dashed(chance, n), roles["muted"]))
            if log:
                lo, hi = loss_axis(cols.series(key, "lo"), cols.series(key, "hi"), chance)
            else:
                lo, hi = 0.0, 1.0
            drawn = plot(series, plot_w, plot_h, lo=lo, hi=hi, log=log)
            lines += _axis(drawn, roles["muted"], log=log)
        lines.append(Text(" " * 9) + steps_line(cols, frame.window, plot_w, roles["muted"]))
        if at is not None and cursor is not None:
            lines.append(Text(" " * 9) + marker_line(plot_cell(at, len(cols), plot_w), plot_w,
                                                     cursor, f"bold {roles['warn']}"))
        return Group(*lines)


def loss_axis(lows: np.ndarray, highs: np.ndarray, chance: float | None
              ) -> tuple[float, float]:
    """A log10 axis for a loss: its whole range and the chance level, at least a factor of
    4 wide, so a loss stuck at chance draws as a flat line on the chance line, not as noise
    blown up to fill the plot."""
    values = [v for v in (*lows.tolist(), *highs.tolist(), chance or math.nan)
              if math.isfinite(v) and v > 0]
    if not values:
        return -1.0, 1.0
    low, high = math.log10(min(values)), math.log10(max(values))
    short = math.log10(4) - (high - low)
    if short > 0:
        low, high = low - short / 2, high + short / 2
    return low, high


def _axis(result, muted: str, log: bool = False) -> list[Runs]:
    """The plot's lines behind the y axis, in the axis' colour where no series is drawn."""
    lines, low, high = result
    n = len(lines)
    labels = {0: fmt(10 ** high if log else high), n - 1: fmt(10 ** low if log else low)}
    # ticks between the ends, where rows allow: every power of ten a log axis crosses (a
    # loss axis from 1.15 to 0.0057 had no other label), the middle of a linear one; each
    # on the row that holds its value, two rows clear of any other label
    span = high - low
    inner = range(math.floor(high), math.ceil(low) - 1, -1) if log else [(low + high) / 2]
    for value in inner:
        if span <= 0 or not low < value < high:
            continue
        at = min(n - 1, int((high - value) / span * n))
        if all(abs(at - other) > 1 for other in labels):
            labels[at] = fmt(10.0 ** value if log else value)
    out = []
    for i, line in enumerate(lines):
        label = labels.get(i, "")
        row = Runs(f"{label:>7} ┤", style=muted)
        row.extend(line)
        out.append(row)
    return out


# ---------------------------------------------------------------- depth profile

DEPTH_METRICS = (("act std", "act_std", "act", True, False),
                 ("‖∂L/∂W‖", "grad_norm", "grad", True, True),
                 ("saturated", "saturated", "sat", False, False),
                 ("dead", "dead", "dead", False, False))


class DepthView(View):
    """The lecture's initialization figure, live: per layer a bar for each statistic on an
    axis shared by every layer, now (the bar) and at the start (the ┃ mark)."""
    HELP = ("The lecture's initialization figure, live: per layer, bars for act std, "
            "‖∂L/∂W‖, saturated and dead on axes shared by every layer, now (the bar) and "
            "at step 1 (the ┃ mark).")

    def draw(self, frame: Frame, width: int, height: int):
        roles = self.roles
        last, first = frame.last, frame.first or frame.last
        assert last is not None and first is not None  # panels draw only frames with records
        if not last.layers:
            return Text("Telemetry is off: no per-layer statistics.", style=roles["muted"])
        layers = last.layers
        begin = {layer.index: layer for layer in first.layers} if len(
            first.layers) == len(layers) else {}
        label_w = WIDE_LABEL if width >= 120 else LABEL_WIDTH
        metrics = DEPTH_METRICS if width >= 70 else DEPTH_METRICS[:3]
        cell = (width - label_w) // len(metrics)
        bar_w = max(cell - VALUE_WIDTH - 2, 4)
        head = Text.assemble(("Depth profile ", "bold"),
                               (f"█ step {last.step:,}  ┃ step {first.step:,} (as initialized)"
                                + ("; each axis is shared by every layer" if width >= 90
                                   else ""), roles["muted"]))
        title = Runs(f"{'layer':<{label_w}}", style="bold")
        scale = Runs(" " * label_w, style=roles["muted"])
        axes = {}
        for name, fld, role, log, output in metrics:
            title.append(f"{name[:cell - 1]:<{cell}}", f"bold {roles[role]}")
            if log:
                vals = [getattr(layer, fld) for layer in layers if output or
                        layer.kind == "hidden"]
                vals += [getattr(layer, fld) for layer in begin.values() if output or
                         layer.kind == "hidden"]
                axes[fld] = decade_range(vals)
            else:
                axes[fld] = (0.0, 1.0)
            ax = axis_text(*axes[fld], log, not log)
            scale.append(f"{ax[:cell - 1]:<{cell}}")
        lines: list[Text | Runs] = [head, title, scale]
        # rows per layer: up to 3, as many as the panel holds below its three header rows
        block = max(1, min(3, (height - 3) // max(len(layers), 1)))
        for layer in layers:
            rows = [Runs() for _ in range(block)]
            label = _label(frame)(layer)
            for r in range(block):
                text = fit_label(label[r] if r < len(label) else "", label_w)
                rows[r].append(f"{text:<{label_w}}", "bold" if r == 0 else roles["muted"])
            for name, fld, role, log, output in metrics:
                if layer.kind == "output" and not output:
                    for row in rows:
                        row.append(" " * cell)
                    continue
                lo, hi = axes[fld]
                now = getattr(layer, fld)
                then = getattr(begin[layer.index], fld) if layer.index in begin else None
                bar = _hbar(now, then, lo, hi, log, bar_w)
                for row in rows:
                    _track_runs(row, bar[0], roles[role], roles["muted"])
                    row.append(bar[1], f"bold {roles['fg']}" if roles['fg'] != "default"
                               else "bold")
                    _track_runs(row, bar[2], roles[role], roles["muted"])
                value = (f"{now * 100:.0f}%" if not log and math.isfinite(now)
                         else fmt(now, 2))
                # beside its own bar, the gap before the next column's
                rows[0].append(f" {value:<{VALUE_WIDTH}} ", f"bold {roles[role]}")
                for row in rows[1:]:
                    row.append(" " * (VALUE_WIDTH + 2))
            lines += rows
        return Group(*crop_lines(lines))


def _position(value: float | None, lo: float, hi: float, log: bool, width: int) -> float:
    """Where a value falls on a bar of `width` cells, in cells (0 … width)."""
    if value is None or not math.isfinite(value):
        return 0.0 if value is None or math.isnan(value) or value < 0 else float(width)
    if log:
        value = math.log10(value) if value > 0 else -math.inf
    frac = (value - lo) / (hi - lo) if hi > lo else 0.5
    return max(0.0, min(1.0, frac)) * width


#: the empty part of a depth bar: its extent shows, so the ┃ of a value at the bottom of
#: its axis reads as a mark on a bar, not as a border between columns
TRACK = "·"


def _track_runs(row: Runs, text: str, style: str, track_style: str) -> None:
    """Append a bar's text: its blocks in `style`, its track in `track_style`."""
    for part in re.split(f"({re.escape(TRACK)}+)", text):
        if part:
            row.append(part, track_style if part[0] == TRACK else style)


def _hbar(now: float, then: float | None, lo: float, hi: float, log: bool, width: int
          ) -> tuple[str, str, str]:
    """A horizontal bar for `now` in eighths of a cell, with the cell of `then` marked ┃:
    returned as (before the mark, the mark, after the mark); the empty cells are TRACK."""
    eighths = round(_position(now, lo, hi, log, width) * 8)
    if now is not None and math.isfinite(now) and (now > 0 or not log) and eighths == 0 \
            and now != 0:
        eighths = 1
    full, part = divmod(eighths, 8)
    cells = ["█"] * full + ([" ▏▎▍▌▋▊▉"[part]] if part and full < width else [])
    cells += [TRACK] * (width - len(cells))
    if then is None:
        return "".join(cells), "", ""
    mark = min(width - 1, int(_position(then, lo, hi, log, width)))
    return "".join(cells[:mark]), "┃", "".join(cells[mark + 1:])


# ---------------------------------------------------------------- distributions

class DistributionsView(View):
    """Per-layer activation histograms of the newest step over each activation's fixed
    range, heights on one scale for every layer (share of the layer's units per bin)."""
    HELP = ("Each layer's activation histogram at the newest step, over the activation's "
            "fixed range, all on one height scale: with a good initialization the shapes "
            "stay alike through depth; N(0, 0.01) squeezes them into the middle bin.")

    def draw(self, frame: Frame, width: int, height: int):
        roles = self.roles
        last = frame.last
        assert last is not None  # panels draw only frames with records (View.lines)
        hidden = [layer for layer in last.layers if layer.kind == "hidden"]
        if not hidden:
            return Text("Telemetry is off: no histograms.", style=roles["muted"])
        panel_w = len(hidden[0].hist) + 4
        per_row = max(1, width // panel_w)
        n_rows = math.ceil(len(hidden) / per_row)
        bar_h = max(2, min(10, (height - 2) // n_rows - 3))
        shares = [[c / max(sum(layer.hist), 1) for c in layer.hist] for layer in hidden]
        top = max((max(s) for s in shares if s), default=1.0) or 1.0
        lines = [Text(f"Activation histograms, newest step: each layer's outputs over its "
                      f"activation's range (the end bins hold everything beyond); heights "
                      f"share one scale, the tallest bar = {top:.0%} of a layer's units.",
                      style=roles["muted"])]
        for start in range(0, len(hidden), per_row):
            group = hidden[start:start + per_row]
            title = Text()
            for layer in group:
                title.append(f"{'L%d std %s' % (layer.index, fmt(layer.act_std, 2)):<{panel_w}}",
                             "bold")
            lines.append(title)
            charts = [bars([s / top for s in shares[hidden.index(layer)]] + [1.0], bar_h)
                      for layer in group]
            for row in range(bar_h):
                text = Text()
                for chart in charts:
                    text.append(f" {chart[row][:-1]}   ", roles["act"])
                lines.append(text)
            axis = Text()
            for layer in group:
                lo, hi = layer.hist_range
                left, right = fmt(lo), fmt(hi)
                span = len(layer.hist) + 1 - len(left)
                axis.append(f"{left}{right:>{span}}   ", roles["muted"])
            lines.append(axis)
        return Group(*lines)


# ---------------------------------------------------------------- decision boundary

class BoundaryView(View):
    """The network's predicted class over the input plane, with the training points, at
    true aspect ratio (a grid cell is half a text row tall, about as tall as it is wide)."""
    HELP = ("For 2-D datasets: the predicted class over the input plane (square, with "
            "axes) and the training (●) and validation (○) points in their class's "
            "colour.")

    AXIS = 7  # columns of y labels

    def draw(self, frame: Frame, width: int, height: int):
        roles = self.roles
        grid = frame.grid
        if frame.extras.get("input_dim", 2) != 2:
            return Text(f"The decision boundary needs a 2-D dataset (circle, xor, gauss, spiral, "
                        f"moons); this one has {frame.extras.get('input_dim')} inputs.",
                        style=roles["muted"])
        if grid is None:
            return Text("Computing the decision boundary…", style=roles["muted"])
        label, conf = grid["label"], grid["confidence"]
        rows, cols = label.shape
        x0, x1, y0, y1 = grid["extent"]
        points = []
        for split, mark in (("val", "○"), ("train", "●")):  # training points on top
            xs, ys = grid[split]
            if not len(xs):
                continue
            c = ((xs[:, 0] - x0) / (x1 - x0) * (cols - 1)).round().astype(int)
            r = ((y1 - xs[:, 1]) / (y1 - y0) * (rows - 1) / 2).round().astype(int)
            classes = ys.tolist() if ys.ndim == 1 else [0] * len(xs)
            points += [(rr, cc, k, mark) for rr, cc, k in zip(r.tolist(), c.tolist(), classes)]
        classes = min(grid["classes"], 10)
        # the longest legend that fits, the classes' colours with it where they fit too
        wordings = (f"step {grid['step']:,}: ● training, ○ validation, in their class's colour; "
                    "background = predicted class, faded = less confident   ",
                    f"step {grid['step']:,}: ● training ○ validation; background = predicted "
                    "class, faded = unsure  ",
                    f"step {grid['step']:,}: ● train ○ val · background = predicted class, "
                    "faded = unsure ",
                    # (short enough for the classes' key at 80 columns)
                    f"step {grid['step']:,}: ● train ○ val · background = class, "
                    "faded = unsure ")
        swatches = [(f"■ class {k} ", f"■ {k} ") for k in range(classes)]
        text, names = next(((text, [w[n] for w in swatches]) for text in wordings
                            for n in (0, 1)
                            if len(text) + sum(len(w[n]) for w in swatches) <= width),
                           (wordings[-1], []))
        legend = Text(text, style=roles["muted"])
        for k, name in enumerate(names):
            legend.append(name, run_colour(k, roles["bg"]))
        legend.no_wrap, legend.overflow = True, "crop"
        dark = roles["bg"] == "default" or _is_dark(roles["bg"])
        body = heatmap(label, conf, grid["classes"], points, dark=dark)
        out: list[Text | Runs] = [legend]
        n = len(body)
        for i, line in enumerate(body):
            y = y1 - (y1 - y0) * (2 * i + 0.5) / max(rows - 1, 1)
            tick = f"{axis_number(y, y1 - y0, self.AXIS - 2):>{self.AXIS - 2}} ┤" \
                if i in (0, n // 2, n - 1) else f"{'':>{self.AXIS - 2}} │"
            plotted = Runs()
            plotted.append(tick, roles["muted"])
            plotted.extend(line)
            out.append(plotted)
        ticks = [" "] * (cols + 1)
        labels = Text(" " * self.AXIS, style=roles["muted"])
        row = [" "] * cols
        for frac in (0.0, 0.5, 1.0):
            c = min(cols - 1, int(frac * (cols - 1)))
            ticks[c] = "┬"
            text = axis_number(x0 + (x1 - x0) * frac, x1 - x0, 8)
            at = max(0, min(cols - len(text), c - len(text) // 2))
            row[at:at + len(text)] = list(text)
        out.append(Text(" " * (self.AXIS - 1) + "└" + "".join(ticks[:cols]).replace(" ", "─"),
                        style=roles["muted"]))
        labels.append("".join(row))
        out.append(labels)
        return Group(*crop_lines(out))

    def grid_size(self) -> tuple[int, int]:
        """The square grid (columns, rows) that fits this panel: two grid rows per text
        row, so equal counts give square cells."""
        width = self.size.width - 2 - self.AXIS
        rows = (self.size.height - 3) * 2
        n = max(min(width, rows), 4)
        return n, n


def axis_number(value: float, span: float, width: int) -> str:
    """`value` on an axis that spans `span`, in at most `width` characters, to the
    precision the span gives (two significant digits of it): a row centred at -0.0091 of an
    axis from -2.6 to 2.9 reads 0.0. Fewer digits are given before any is cut."""
    decimals = max(0, 1 - math.floor(math.log10(abs(span)))) if span else 2
    value = round(value, decimals) + 0.0  # (+ 0.0: no "-0.0")
    text = f"{value:.{decimals}f}"
    if len(text) <= width:
        return text
    for spec in (".2g", ".1g", ".0e"):
        text = f"{value:{spec}}".replace("e+0", "e").replace("e-0", "e-")
        if len(text) <= width:
            return text
    return text[:width]


def _is_dark(colour: str) -> bool:
    from nnsim.tui.render import luminance

    return luminance(colour) < 0.18


# ---------------------------------------------------------------- the doctor

class DoctorView(View):
    """The doctor's findings, surest first: what, the evidence and where, the lecture's
    remedy and section, and the fix `f` applies."""
    HELP = ("What the doctor finds wrong with the run, surest first: the evidence and "
            "where, the lecture's remedy and section. f applies the first finding's fix "
            "so you can watch it work; the status line shows the first finding.")

    def lines(self, width: int, height: int) -> list[Text]:
        roles = self.roles
        frame = self.frame
        if frame is None or frame.newest is None:
            return [Text("No steps yet: the doctor looks at the run every 50 steps.",
                         style=roles["muted"])]
        if not frame.findings:
            return [Text("Healthy: nothing the doctor checks for (vanishing or exploding "
                         "gradients, saturation, dead units, a learning rate too high or too "
                         "low, no learning, overfitting, activations collapsing or growing "
                         "with depth, noisy small-batch gradients). It looks again every 50 "
                         "steps (at most once a second) and when the run pauses.",
                         style=roles["good"])]
        lines = [Text.assemble(("The doctor: ", "bold"),
                               (f"{len(frame.findings)} finding"
                                f"{'s' if len(frame.findings) != 1 else ''}, surest first. "
                                "f applies the first one's fix (rebuilt from the seed, or live "
                                "for the learning rate) so you can watch it work.",
                                roles["muted"]))]
        for k, f in enumerate(frame.findings):
            lines.append(Text(""))
            lines.append(Text.assemble((f"{k + 1}. {f.title}", f"bold {roles['bad']}"),
                                       (f"  [{f.sureness}]", roles["muted"])))
            where = f", layers {', '.join(map(str, f.layers))}" if f.layers else ""
            lines.append(Text(f"   evidence: {f.evidence} (steps {f.steps[0]:,}–"
                              f"{f.steps[1]:,}{where})"))
            lines.append(Text.assemble("   remedy:   ", (f.remedy, roles["good"])))
            if f.fix:
                fix = ", ".join(f"{key} = {value}" for key, value in f.fix)
                lines.append(Text.assemble("   fix:      ", (fix, "bold"),
                                           (" (f)" if k == 0 else "", roles["muted"])))
            lines.append(Text(f"   lecture:  {f.section}", style=roles["muted"]))
        return lines
