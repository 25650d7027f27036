"""The panels: thin widgets that lay out what the pure renderers draw from step records."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from rich.console import Group
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget

from nnsim.engine.records import LayerRecord, StepRecord
from nnsim.tui.render import PALETTE, bars, fmt, heatmap, palette_colour, plot, sparkline

LABEL_WIDTH = 14
VALUE_WIDTH = 7
MIN_SPARK = 5


@dataclass
class Frame:
    """What one redraw shows: the newest records and the run's state, read once per tick."""

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

    @property
    def last(self) -> StepRecord | None:
        return self.records[-1] if self.records else None


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


def _ratio_style(x: float) -> str:
    """Green near the 1e-3 rule of thumb for update/weight, yellow off by 10×, red by 100×."""
    if not (x > 0 and math.isfinite(x)):
        return "red"
    off = abs(math.log10(x) + 3)
    return "green" if off <= 1 else ("yellow" if off <= 2 else "red")


_STYLES: dict[tuple[str, str], Style] = {}


def _style(base: str, span: str) -> Style:
    key = (base, span)
    style = _STYLES.get(key)
    if style is None:
        style = _STYLES[key] = Style.parse(f"{base} {span}".strip() or "none")
    return style


def text_strip(text: Text, width: int) -> Strip:
    """A Strip for a Text built by appending styled runs (non-overlapping spans), without
    going through Rich's general renderer: a frame is thousands of such runs. Neighbouring
    runs of one style become one segment."""
    plain = text.plain
    base = str(text.style or "")
    runs: list[list] = []  # [style, start, end]
    pos = 0
    for span in sorted(text.spans, key=lambda sp: sp.start):
        if span.start > pos:
            runs.append(["", pos, span.start])
        if span.end > span.start:
            runs.append([str(span.style), span.start, span.end])
        pos = max(pos, span.end)
    if pos < len(plain):
        runs.append(["", pos, len(plain)])
    segments = []
    for style, start, end in runs:
        if segments and (style == segments[-1][0] or (
                not plain[start:end].strip() and "on " not in style
                and "on " not in segments[-1][0] and "underline" not in segments[-1][0])):
            segments[-1][2] = end  # same style, or blank text whose colour does not show
            continue
        segments.append([style, start, end])
    return Strip([Segment(plain[start:end], _style(base, style))
                  for style, start, end in segments]).crop_extend(0, width, None)


def crop_lines(lines: list[Text]) -> list[Text]:
    """Lines that never wrap: what does not fit is cut at the panel's edge."""
    for line in lines:
        line.no_wrap, line.overflow = True, "crop"
    return lines


class View(Widget):
    """Base of the panels: holds the newest Frame and redraws from it, line by line."""

    DEFAULT_CSS = """
    View { height: 1fr; width: 1fr; padding: 0 1; }
    """
    frame: Frame | None = None
    _drawn: tuple = ()
    _strips: list[Strip] = []

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
        for y, (a, b) in enumerate(zip(old, new)):
            if a.text != b.text or a._segments != b._segments:
                self.refresh(Region(0, y, width, 1))

    def _build(self, width: int, height: int) -> None:
        self._drawn = (id(self.frame), width, height)
        strips = []
        for line in self.lines(width, height):
            if line.no_wrap and line.overflow == "ellipsis" and line.cell_len > width:
                line = line.copy()
                line.truncate(width, overflow="ellipsis")
                strips.append(text_strip(line, width))
            elif line.no_wrap or line.cell_len <= width:
                strips.append(text_strip(line, width))
            else:  # a long sentence: wrap it the way Rich would
                strips += [text_strip(part, width) for part in line.wrap(
                    self.app.console, width)]
        self._strips = strips

    def lines(self, width: int, height: int) -> list[Text]:
        """The panel as lines of Text, for the current frame and size."""
        if self.frame is None or not self.frame.records:
            return [Text("No steps yet. Press space to train, n for one step.", style="dim")]
        drawn = self.draw(self.frame, max(width, 10), max(height, 3))
        if isinstance(drawn, Group):
            return [line for line in drawn.renderables if isinstance(line, Text)]
        return [drawn]

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        if (id(self.frame), width, height) != self._drawn:
            self._build(width, height)
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(width)

    def draw(self, frame: Frame, width: int, height: int):
        raise NotImplementedError


class Column:
    """One metric of a layer table: a sparkline per layer and the current value.

    Without a fixed range, every layer's sparkline shares the range of all layers' values,
    so heights compare across depth (vanishing gradients show as a staircase)."""

    def __init__(self, title: str, field: str, log: bool = False, lo=None, hi=None,
                 percent: bool = False, style=None, output: bool = True,
                 short: str | None = None) -> None:
        self.title, self.field, self.log = title, field, log
        self.short = short or title
        self.lo, self.hi, self.percent, self.style, self.output = lo, hi, percent, style, output

    def value_text(self, value: float) -> str:
        if self.percent and math.isfinite(value):
            return f"{value * 100:.0f}%"
        return fmt(value)

    def heading(self, width: int) -> str:
        title = self.title if len(self.title) < width else self.short
        return f"{title[:width - 1]:<{width}}"

    def shared_range(self, series: list[list[float]]) -> tuple[float | None, float | None]:
        if self.lo is not None and self.hi is not None:
            return self.lo, self.hi
        values = [v for s in series for v in s if v is not None and math.isfinite(v)
                  and (v > 0 or not self.log)]
        if not values:
            return self.lo, self.hi
        low, high = min(values), max(values)
        if self.log:
            low, high = math.log10(low), math.log10(high)
        return (self.lo if self.lo is not None else low,
                self.hi if self.hi is not None else high)


def layer_table(frame: Frame, cols: list[Column], width: int, height: int,
                label_of, extra=None, extra_width: int = 0) -> list[Text]:
    """Rows of sparklines, one block of rows per layer, sized to fill width and height."""
    layers = frame.last.layers
    room = width - LABEL_WIDTH - extra_width
    min_cell = MIN_SPARK + VALUE_WIDTH + 2
    cols = cols[:max(1, room // min_cell)]  # the last columns give way on narrow screens
    cell = max(room // len(cols), min_cell)
    spark = max(cell - VALUE_WIDTH - 2, MIN_SPARK)
    block = max(1, min(6, (height - 2) // max(len(layers), 1) - 1))
    gap = (height - 2) >= len(layers) * (block + 1)
    lines = [Text(f"{'layer':<{LABEL_WIDTH}}" + "".join(c.heading(cell) for c in cols)
                  + ("learnable (mean)" if extra_width else ""), style="bold")]
    shown = frame.records[-spark:]  # only what the sparklines can show
    series = {c.field: [_layer_series(shown, i, c.field) for i in range(len(layers))]
              for c in cols}
    ranges = {c.field: c.shared_range([s for s, layer in zip(series[c.field], layers)
                                       if layer.kind == "hidden" or c.output]) for c in cols}
    for i, layer in enumerate(layers):
        rows = [Text(f"{label_of(layer):<{LABEL_WIDTH}}" if r == 0 else " " * LABEL_WIDTH,
                     style="bold") for r in range(block)]
        for col in cols:
            if layer.kind == "output" and not col.output:
                for row in rows:
                    row.append(" " * cell)
                continue
            values = series[col.field][i]
            value = values[-1] if values else math.nan
            style = col.style or _ratio_style(value)
            lo, hi = ranges[col.field]
            for r, chars in enumerate(sparkline(values, spark, lo, hi, col.log, block)):
                rows[r].append(chars, style)
                if r == 0:
                    value_style = "bold red" if col.field == "dead" and value > 0 else style
                    rows[r].append(f" {col.value_text(value):>{VALUE_WIDTH}} ", value_style)
                else:
                    rows[r].append(" " * (VALUE_WIDTH + 2))
        if extra is not None:
            rows[0].append(extra(layer)[:extra_width])
        lines += rows
        if gap:
            lines.append(Text(""))
    return crop_lines(lines)


class LayersView(View):
    """Per layer: gradient norm, saturation, activation spread, update/weight, optimizer state."""

    def columns(self, frame: Frame) -> list[Column]:
        state_names = [name for name, _ in frame.last.layers[0].state]
        # in order of importance: on narrow screens the last ones give way
        cols = [
            Column("‖∂L/∂W‖ (log)", "grad_norm", log=True, style="cyan", short="‖∂L/∂W‖"),
            Column("act std (log)", "act_std", log=True, style="magenta", output=False,
                   short="act std"),
            Column("‖ΔW‖/‖W‖ green≈1e-3", "update_ratio", log=True, lo=-6.0, hi=0.0,
                   short="‖ΔW‖/‖W‖"),
            Column("saturated %", "saturated", lo=0.0, hi=1.0, percent=True,
                   style="yellow", output=False, short="sat %"),
            Column("dead %", "dead", lo=0.0, hi=1.0, percent=True, style="red", output=False),
        ]
        for name in state_names[:1]:
            cols.append(Column(f"‖{name}‖ (log)", name, log=True, style="blue",
                               short=f"‖{name[0]}‖"))
        focus = frame.extras.get("focus")  # a lesson's statistic comes first
        cols.sort(key=lambda col: col.field != focus)
        return cols

    def draw(self, frame: Frame, width: int, height: int):
        last = frame.last
        if not last.layers:
            return Text("Telemetry is off: no per-layer statistics.", style="dim")
        learn = 18 if any(layer.learnable for layer in last.layers) else 0

        def label(layer: LayerRecord) -> str:
            name = frame.activation[:6] if layer.kind == "hidden" else "output"
            return f"L{layer.index} {name} {layer.width}"

        def learnable(layer: LayerRecord) -> str:
            return " ".join(f"{k}={fmt(v)}" for k, v in layer.learnable)

        return Group(*layer_table(frame, self.columns(frame), width, height, label,
                                  learnable if learn else None, learn))


class OptimizerView(View):
    """Per layer: optimizer state norms, cos(update, gradient), effective step size."""

    def draw(self, frame: Frame, width: int, height: int):
        last = frame.last
        if not last.layers:
            return Text("Telemetry is off: no per-layer statistics.", style="dim")
        state_names = [name for name, _ in last.layers[0].state]
        cols = [Column(f"‖{n}‖ (log)", n, log=True, style="blue", short=f"‖{n}‖")
                for n in state_names]
        cols += [Column("cos(−ΔW, ∂L/∂W)", "update_cos", lo=-1.0, hi=1.0, style="green",
                        short="cos"),
                 Column("step ‖ΔW‖/‖∂L/∂W‖", "step_size", log=True, style="cyan",
                        short="step")]
        head = Text(f"{frame.optimizer}, lr {fmt(frame.lr)}. "
                    + ("Momentum builds velocity: while gradients agree (cos near 1) the step "
                       "grows towards lr/(1−β)." if "velocity" in state_names else
                       "No velocity kept: the step follows the gradient." if not state_names
                       else "Adaptive steps: ‖ΔW‖/‖∂L/∂W‖ varies by layer."), style="dim")
        return Group(head, *layer_table(frame, cols, width, height - 1,
                                        lambda layer: f"L{layer.index} {layer.kind}"))


class CurvesView(View):
    """Train and validation loss (log scale), and accuracy."""

    def draw(self, frame: Frame, width: int, height: int):
        records = frame.records
        loss = [r.loss for r in records]
        val_loss = _spread(frame.evals, records, 1)
        plot_h = max((height - 4) // 2, 2)
        plot_w = max(width - 9, 10)
        lines = [Text.assemble(("loss (log)  ", "bold"), ("━ train ", "cyan"),
                               ("━ validation", "magenta"),
                               (f"   last {len(records)} steps", "dim"))]
        lines += _axis(plot([(loss, "cyan"), (val_loss, "magenta")], plot_w, plot_h, log=True),
                       log=True)
        acc = [r.accuracy for r in records]
        if any(a is not None for a in acc):
            val_acc = _spread(frame.evals, records, 2)
            lines.append(Text.assemble(("accuracy  ", "bold"), ("━ train ", "cyan"),
                                       ("━ validation", "magenta")))
            lines += _axis(plot([(acc, "cyan"), (val_acc, "magenta")], plot_w, plot_h,
                                lo=0.0, hi=1.0))
        return Group(*lines)


def _spread(evals, records, column: int) -> list[float]:
    """Validation values placed at their steps over the records' span (NaN between)."""
    if not records:
        return []
    first = records[0].step
    out = [math.nan] * len(records)
    for e in evals:
        i = e[0] - first
        if 0 <= i < len(out) and e[column] is not None:
            out[i] = e[column]
    # hold each value until the next evaluation so the line is continuous
    held, current = [], math.nan
    for v in out:
        current = v if not math.isnan(v) else current
        held.append(current)
    return held


def _axis(result, log: bool = False) -> list[Text]:
    lines, low, high = result
    out = []
    for i, line in enumerate(lines):
        if i == 0:
            label = fmt(10 ** high if log else high)
        elif i == len(lines) - 1:
            label = fmt(10 ** low if log else low)
        else:
            label = ""
        out.append(Text(f"{label:>7} ┤", style="dim") + line)
    return out


class DistributionsView(View):
    """Per-layer activation histograms of the newest step (fixed bins per activation)."""

    def draw(self, frame: Frame, width: int, height: int):
        hidden = [layer for layer in frame.last.layers if layer.kind == "hidden"]
        if not hidden:
            return Text("Telemetry is off: no histograms.", style="dim")
        panel_w = len(hidden[0].hist) + 4
        per_row = max(1, width // panel_w)
        n_rows = math.ceil(len(hidden) / per_row)
        bar_h = max(2, min(10, (height - 2) // n_rows - 3))
        lines = [Text("Activation histograms, newest step: each layer's outputs over its "
                      "activation's range (ends hold everything beyond).", style="dim")]
        for start in range(0, len(hidden), per_row):
            group = hidden[start:start + per_row]
            title = Text()
            for layer in group:
                title.append(f"{'L%d  std %s' % (layer.index, fmt(layer.act_std)):<{panel_w}}",
                             "bold")
            lines.append(title)
            charts = [bars(layer.hist, bar_h) for layer in group]
            for row in range(bar_h):
                text = Text()
                for chart in charts:
                    text.append(f" {chart[row]}   ", "magenta")
                lines.append(text)
            axis = Text()
            for layer in group:
                lo, hi = layer.hist_range
                left, right = fmt(lo), fmt(hi)
                span = len(layer.hist) + 1 - len(left)
                axis.append(f"{left}{right:>{span}}   ", "dim")
            lines.append(axis)
        return Group(*lines)


class BoundaryView(View):
    """The network's predicted class over the input plane, with the training points."""

    def draw(self, frame: Frame, width: int, height: int):
        grid = frame.grid
        if frame.extras.get("input_dim", 2) != 2:
            return Text(f"The decision boundary needs a 2-D dataset (circle, xor, gauss, spiral, "
                        f"moons); this one has {frame.extras.get('input_dim')} inputs.",
                        style="dim")
        if grid is None:
            return Text("Computing the decision boundary…", style="dim")
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
        legend = Text(f"step {grid['step']}: ● training, ○ validation; colour = predicted "
                      "class, brightness = confidence   ", style="dim")
        for k in range(min(grid["classes"], len(PALETTE))):
            legend.append(f"■ class {k} ", palette_colour(k))
        legend.no_wrap, legend.overflow = True, "crop"
        return Group(legend, *heatmap(label, conf, grid["classes"], points))

    def grid_size(self) -> tuple[int, int]:
        """The grid (columns, rows) that fills this panel: two grid rows per text row."""
        return max(self.size.width - 2, 4), max((self.size.height - 1) * 2, 4)
