"""Pure renderers: numbers in, strings (or Rich Text with few style runs) out.

Kept free of widgets so each can be tested as a string. They draw whatever they are given,
NaN and infinity included, and never raise on it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from rich.text import Span, Text

BLOCKS = "▁▂▃▄▅▆▇█"
EIGHTHS = " ▁▂▃▄▅▆▇█"
GAP = "·"  # a missing or non-finite value


def fmt(x: float | None, digits: int = 3) -> str:
    """A compact number: 0.123, 12.3, 1.2e-05, 3.4k; 'nan', 'inf', '—' for None."""
    if x is None:
        return "—"
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    ax = abs(x)
    if ax == 0:
        return "0"
    if ax >= 1e5 or ax < 1e-3:
        return f"{x:.{max(digits - 2, 0)}e}".replace("e-0", "e-").replace("e+0", "e")
    if ax >= 1000:
        return f"{x / 1000:.{max(digits - 2, 0)}f}k"
    return f"{x:.{digits}g}"


def _scale(values: Sequence[float], log: bool) -> list[float | None]:
    out: list[float | None] = []
    for v in values:
        if v is None or not math.isfinite(v):
            out.append(None if v is None or math.isnan(v) else (math.inf if v > 0 else -math.inf))
        elif log:
            out.append(math.log10(v) if v > 0 else -math.inf)
        else:
            out.append(float(v))
    return out


def _levels(values: Sequence[float], width: int, lo: float | None, hi: float | None,
            log: bool) -> list[float | None]:
    """The newest `width` values mapped to [0, 1] (None for NaN), clipped to the range."""
    scaled = _scale(list(values)[-width:], log)
    finite = [v for v in scaled if v is not None and math.isfinite(v)]
    low = lo if lo is not None else (min(finite) if finite else 0.0)
    high = hi if hi is not None else (max(finite) if finite else 1.0)
    span = high - low
    out: list[float | None] = []
    for v in scaled:
        if v is None:
            out.append(None)
        elif not math.isfinite(v):
            out.append(1.0 if v > 0 else 0.0)
        elif span <= 0 or not math.isfinite(span):
            out.append(0.5)
        else:
            level = (v - low) / span
            out.append(0.0 if level < 0 else (1.0 if level > 1 else level))
    return out


def sparkline(values: Sequence[float], width: int, lo: float | None = None,
              hi: float | None = None, log: bool = False, height: int = 1) -> list[str]:
    """The newest `width` values as block-character columns `height` rows tall (top row
    first), right-aligned and padded with spaces.

    The range is [lo, hi] when given (in log10 units when `log`), else the finite data's own;
    values outside clip to the ends; NaN draws as '·', +inf full, -inf as the lowest block.
    A value never draws empty: the lowest level is one eighth of the bottom row.
    """
    if width <= 0 or height <= 0:
        return [""] * max(height, 0)
    values = [math.nan if v is None else v for v in list(values)[-width:]]
    if lo is None or hi is None:  # the data's own range, with the NaN and infinities kept
        levels = _levels(values, width, lo, hi, log)
        data = [math.nan if v is None else v for v in levels]
        return sparklines(np.array([data], dtype=np.float64), width, 0.0, 1.0, False,
                          height)[0]
    return sparklines(np.array([values], dtype=np.float64), width, lo, hi, log, height)[0]


_EIGHTHS = np.array([ord(c) for c in EIGHTHS], dtype=np.uint32)  # code points


def sparklines(values, width: int, lo: float, hi: float, log: bool = False,
               height: int = 1) -> list[list[str]]:
    """`sparkline` for several series at once on one fixed range: `values` is (series,
    points), the newest `width` points of each are drawn; returns, per series, its rows.
    A linear range around 0 (lo < 0 < hi) drawn two rows high or more has its bars grow
    from 0: up for positive values, down for negative ones, with ▔ marking 0
    (`signed_sparklines`)."""
    v = np.asarray(values, dtype=np.float64)[:, -width:] if width > 0 else \
        np.empty((len(values), 0))
    if not log and lo < 0 < hi and height >= 2:
        return signed_sparklines(v, width, lo, hi, height)
    n, k = v.shape
    with np.errstate(divide="ignore", invalid="ignore"):
        if log:
            v = np.where(v > 0, np.log10(np.where(v > 0, v, 1.0)),
                         np.where(np.isnan(v), np.nan, -np.inf))
        span = hi - lo
        level = (v - lo) / span if span > 0 and math.isfinite(span) else \
            np.where(np.isfinite(v), 0.5, v)
    nan = np.isnan(level)
    level = np.clip(np.nan_to_num(level, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    eighths = 1 + (level * (8 * height - 1) + 1e-9).astype(np.int64)
    # every row of every series at once, as code points, right-aligned in `width`; each
    # row's code points are then read as one string
    below = (height - 1 - np.arange(height))[:, None, None] * 8
    codes = np.full((height, n, width), ord(" "), dtype=np.uint32)
    codes[:, :, width - k:] = _EIGHTHS[np.clip(eighths[None] - below, 0, 8)]
    return _rows(codes, nan)


def _rows(codes: np.ndarray, nan: np.ndarray) -> list[list[str]]:
    """Per series, its rows as strings, from code points (height, series, width) whose
    newest `nan.shape[1]` columns are drawn: a missing value is blank, · on the bottom row."""
    height, n, width = codes.shape
    drawn = codes[:, :, width - nan.shape[1]:]
    drawn[:, nan] = ord(" ")
    drawn[height - 1][nan] = ord(GAP)
    return codes.view(f"<U{width}").reshape(height, n).T.tolist() if width > 0 else \
        [[""] * height for _ in range(n)]


_HALVES = np.array([ord(c) for c in " ▀█"], dtype=np.uint32)  # from the top of a cell
_ZERO = ord("▔")  # the zero line, where nothing is drawn below it


def signed_sparklines(v: np.ndarray, width: int, lo: float, hi: float, height: int
                      ) -> list[list[str]]:
    """Bars that grow from 0 for values in [lo, hi] with lo < 0 < hi: the upper
    ⌈height/2⌉ rows hold positive values (eighth blocks, up from the middle), the lower
    ⌊height/2⌋ negative ones (half blocks, down from it), and the first lower row shows the
    zero line (▔) where no bar goes down. A cosine of 0 is no bar at all, not half a bar
    as on a range drawn up from -1."""
    n, k = v.shape
    up, down = (height + 1) // 2, height // 2
    nan = np.isnan(v)
    w = np.nan_to_num(v, nan=0.0, posinf=hi, neginf=lo)
    rise = np.rint(np.clip(w / hi, 0.0, 1.0) * up * 8).astype(np.int64)
    fall = np.rint(np.clip(w / lo, 0.0, 1.0) * down * 2).astype(np.int64)
    codes = np.full((height, n, width), ord(" "), dtype=np.uint32)
    for r in range(up):  # top row first: the farthest from 0
        codes[r, :, width - k:] = _EIGHTHS[np.clip(rise - (up - 1 - r) * 8, 0, 8)]
    for j in range(down):
        codes[up + j, :, width - k:] = _HALVES[np.clip(fall - 2 * j, 0, 2)]
    first = codes[up, :, width - k:]
    first[fall == 0] = _ZERO
    return _rows(codes, nan)


def bars(counts: Sequence[float], height: int) -> list[str]:
    """A vertical bar chart, one column per count, `height` rows top to bottom, eighth-block
    resolution, scaled to the largest count."""
    top = max((c for c in counts if math.isfinite(c)), default=0)
    rows = [[" "] * len(counts) for _ in range(height)]
    if top <= 0 or height <= 0:
        return ["".join(r) for r in rows]
    for col, c in enumerate(counts):
        eighths = round(max(c, 0) / top * height * 8) if math.isfinite(c) else 0
        if c > 0 and eighths == 0:
            eighths = 1  # a non-empty bin always shows
        for row in range(height):
            fill = eighths - (height - 1 - row) * 8
            rows[row][col] = EIGHTHS[max(0, min(8, fill))]
    return ["".join(r) for r in rows]


class Runs:
    """A line built from styled runs: what `Text.append` does for plain strings, without its
    per-call work (a frame appends hundreds of runs). A panel hands it over as it is (the
    panel makes its Strip from the runs, `views.runs_strip`) or as a Text (`text()`)."""

    __slots__ = ("parts", "styles", "style")

    def __init__(self, text: str = "", style: str = "") -> None:
        self.parts: list[str] = []
        self.styles: list[str] = []  # each part's style ("" for the line's own)
        self.style = style
        if text:
            self.append(text)

    def append(self, text: str, style: str = "") -> None:
        if text:
            self.parts.append(text)
            self.styles.append(style)

    def text(self) -> Text:
        spans, pos = [], 0
        for part, style in zip(self.parts, self.styles):
            end = pos + len(part)
            if style:
                spans.append(Span(pos, end, style))
            pos = end
        return Text("".join(self.parts), style=self.style, spans=spans)

    def extend(self, other: Runs) -> None:
        """Append another line's runs (in their own styles)."""
        self.parts += other.parts
        self.styles += other.styles

    @property
    def plain(self) -> str:
        return "".join(self.parts)

    def __rich__(self) -> Text:
        return self.text()

    def key(self) -> tuple:
        """Equal for two lines drawn alike."""
        return tuple(self.parts), tuple(self.styles), self.style

    def one_cell_each(self) -> bool:
        """Whether every character is one terminal cell wide (so widths are lengths)."""
        return all(map(ONE_CELL.issuperset, self.parts))


#: characters one terminal cell wide: the ranges Rich itself counts as one cell without a
#: lookup (Latin, Greek, Cyrillic, box drawing, blocks, braille) and the symbols the panels
#: use beside them
ONE_CELL = frozenset(chr(c) for a, b in ((0x20, 0x7E), (0xA0, 0xAC), (0xAE, 0x2FF),
                                         (0x370, 0x482), (0x2500, 0x25FC), (0x2800, 0x28FF))
                     for c in range(a, b + 1)) | frozenset("‖∂…–−→≥≤")


BRAILLE_BASE = 0x2800
_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))  # [row][col] within a cell
#: the braille bits of a cell's left and right dot column, by the 4-bit mask of its lit rows
_LEFT_BITS, _RIGHT_BITS = (
    np.array([sum(_DOTS[r][c] for r in range(4) if mask >> r & 1) for mask in range(16)])
    for c in (0, 1))


def _spread(n: int, dots: int) -> np.ndarray:
    """How `plot` spreads n values over `dots` dot columns: for each dot column the first
    value it draws (with more values than dot columns, each draws the mean of those from
    there to the next one's; else each value is repeated over its dot columns)."""
    if n > dots:
        return (np.arange(dots) * n) // dots
    return (np.arange(dots) * max(n - 1, 0)) // max(dots - 1, 1)


def plot_cell(j: int, n: int, width: int) -> int:
    """The cell of a `plot` `width` cells wide where the j-th of n values first shows."""
    first = _spread(n, 2 * width)
    if n > len(first):  # the dot column whose values include j
        return (int(np.searchsorted(first, j, side="right")) - 1) // 2
    return int(np.searchsorted(first, j)) // 2  # the first dot column that draws it


def plot(series: Sequence[tuple[Sequence[float] | np.ndarray, str]], width: int, height: int,
         lo: float | None = None, hi: float | None = None, log: bool = False
         ) -> tuple[list[Runs], float, float]:
    """Line plot of several series on one braille canvas (2×4 dots per cell).

    Each series is (values, style), drawn over `width` cells with its values spread evenly
    over the width. Returns the lines and the y range used (in log10 units when `log`).
    Where series cross, the first one listed wins the cell's colour.
    """
    import numpy as np

    dots_w, dots_h = width * 2, height * 4
    columns = []  # per series: the value drawn at each dot column (NaN = nothing)
    for values, style in series:
        v = values.astype(np.float64) if isinstance(values, np.ndarray) else \
            np.array([np.nan if u is None else u for u in values], dtype=np.float64)
        if log:
            with np.errstate(divide="ignore", invalid="ignore"):
                v = np.where(v > 0, np.log10(np.where(v > 0, v, 1.0)),
                             np.where(np.isnan(v), np.nan, -np.inf))
        n = len(v)
        if n > dots_w:  # several values per dot column: draw the mean of the finite ones
            edges = _spread(n, dots_w)
            ok = np.isfinite(v)
            sums = np.add.reduceat(np.where(ok, v, 0.0), edges)
            counts = np.add.reduceat(ok.astype(np.int64), edges)
            with np.errstate(invalid="ignore", divide="ignore"):
                col = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
            # a bucket of nothing but infinities still shows them
            pos_inf = np.add.reduceat((v == np.inf).astype(np.int64), edges)
            col = np.where((counts == 0) & (pos_inf > 0), np.inf, col)
        elif n:
            col = v[_spread(n, dots_w)]
        else:
            col = np.full(dots_w, np.nan)
        columns.append((col, style))
    finite = np.concatenate([c[np.isfinite(c)] for c, _ in columns]) if columns else \
        np.empty(0)
    low = lo if lo is not None else (float(finite.min()) if finite.size else 0.0)
    high = hi if hi is not None else (float(finite.max()) if finite.size else 1.0)
    if high <= low:
        low, high = low - 0.5, high + 0.5
    cell_top = 4 * np.arange(height)[:, None]  # each cell row's first dot row
    codes = np.zeros((height, width), dtype=np.int64)
    owner_idx = np.full((height, width), -1)
    for k in range(len(columns) - 1, -1, -1):  # the first series listed is drawn last, on top
        col = columns[k][0]
        with np.errstate(invalid="ignore"):
            ys = np.clip(np.round((high - col) / (high - low) * (dots_h - 1)), 0, dots_h - 1)
        ys = np.where(col == np.inf, 0, np.where(col == -np.inf, dots_h - 1, ys))
        prev = np.concatenate([[np.nan], ys[:-1]])
        prev = np.where(np.isnan(prev), ys, prev)  # after a gap, start afresh
        # each dot column lights the dot rows from its value to the previous column's (a
        # column without a value after one with it: that row; none after a gap): in each
        # cell row, the dot rows [first, stop) of its four, as a 4-bit mask, then the
        # braille bits of the cell's left and right dot columns by table
        top, bottom = np.fmin(prev, ys), np.fmax(prev, ys)
        lit = ~np.isnan(top)
        top = np.where(lit, top, 0).astype(np.int64)
        bottom = np.where(lit, bottom, -1).astype(np.int64)
        first = np.clip(top - cell_top, 0, 4)
        stop = np.clip(bottom + 1 - cell_top, 0, 4)
        rows_lit = np.where(stop > first, (1 << stop) - (1 << first), 0)
        bits = _LEFT_BITS[rows_lit[:, 0::2]] | _RIGHT_BITS[rows_lit[:, 1::2]]
        codes |= bits
        owner_idx = np.where(bits > 0, k, owner_idx)
    chars = np.where(codes > 0, codes + BRAILLE_BASE, ord(" ")).astype(np.uint32)
    rows = chars.view(f"<U{width}").ravel().tolist()  # each row's code points as one str
    styles = ["", *(style for _, style in columns)]
    owners = owner_idx + 1
    # one run per stretch of one owner: where the owner changes along each row
    row_at, col_at = np.nonzero(np.diff(owners, axis=1))
    cuts: list[list[int]] = [[0] for _ in range(height)]
    for r, c in zip(row_at.tolist(), (col_at + 1).tolist()):
        cuts[r].append(c)
    lines = []
    for text, row_owner, bounds in zip(rows, owners.tolist(), cuts):
        bounds.append(width)
        line = Runs()
        for start, end in zip(bounds, bounds[1:]):
            line.append(text[start:end], styles[row_owner[start]])
        lines.append(line)
    return lines, low, high


PALETTE = ((66, 135, 245), (245, 130, 48), (60, 180, 75), (230, 25, 75), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 190), (0, 128, 128))


def palette_colour(k: int) -> str:
    """The k-th colour of the palette as '#rrggbb' (runs, classes, optimizers)."""
    r, g, b = PALETTE[k % len(PALETTE)]
    return f"#{r:02x}{g:02x}{b:02x}"


def run_colour(k: int, background: str) -> str:
    """The k-th palette colour as text on `background` ('#rrggbb', or 'default': the
    terminal's own), moved just far enough to read at 4.5:1 (the palette's orange was
    2.0:1 on the light theme's background)."""
    colour = palette_colour(k)
    return colour if background == "default" else readable(colour, background)


SHADES = 5  # brightness levels: few levels make long runs of one style, drawn fast
DARK_BASE, LIGHT_BASE = (24, 24, 32), (246, 246, 240)


def _shade(rgb: tuple[int, int, int], strength: float, dark: bool = True) -> str:
    """A region's colour: the class colour over the background, from a faint tint (at
    chance) to 45 % (certain), so that points in full colour stand out on either class."""
    base = DARK_BASE if dark else LIGHT_BASE
    level = round(max(0.0, min(1.0, strength)) * (SHADES - 1)) / (SHADES - 1)
    t = 0.08 + 0.37 * level
    r, g, b = (int(bb + (c - bb) * t) for c, bb in zip(rgb, base))
    return f"#{r:02x}{g:02x}{b:02x}"


def point_colour(k: int, dark: bool = True) -> str:
    """A data point of class k: its class colour pushed towards white on a dark background
    (black on a light one), readable on every region."""
    r, g, b = PALETTE[k % len(PALETTE)]
    target = 255 if dark else 0
    t = 0.35
    return "#%02x%02x%02x" % tuple(int(c + (target - c) * t) for c in (r, g, b))


def heatmap(label, confidence, classes: int, points=(), dark: bool = True) -> list[Runs]:
    """Decision regions as half blocks: each cell shows two grid rows (top as foreground
    '▀', bottom as background). Colour is the winning class, strength its probability
    above chance. `points` are (row, col, class, mark) cells drawn as `mark` (e.g. '●') in
    the class's point colour."""
    import numpy as np

    label = np.asarray(label, dtype=np.int64)
    conf = np.asarray(confidence, dtype=np.float64)
    rows, cols = label.shape if label.ndim == 2 else (0, 0)
    chance = 1.0 / max(classes, 1)
    strength = (conf - chance) / (1 - chance) if classes > 1 else np.zeros_like(conf)
    strength = np.nan_to_num(strength, nan=0.0)
    level = np.clip(np.round(strength * (SHADES - 1)), 0, SHADES - 1).astype(np.int64)
    code = (label % len(PALETTE)) * SHADES + level
    colours = [_shade(rgb, lv / (SHADES - 1), dark) for rgb in PALETTE for lv in range(SHADES)]
    marks = {(r, c): (k, ch) for r, c, k, ch in points}
    styles: dict[tuple, str] = {}
    lines = []
    for cell_row in range(rows // 2):
        top, bottom = code[2 * cell_row].tolist(), code[2 * cell_row + 1].tolist()
        line = Runs()  # (runs of one style, made into a Strip directly: no Text to render)
        run_style: str | None = None
        run: list[str] = []
        for c in range(cols):
            mark = marks.get((cell_row, c))
            key = (top[c], bottom[c], mark)
            style = styles.get(key)
            if style is None:
                if mark is not None:
                    style = f"bold {point_colour(mark[0], dark)} on {colours[bottom[c]]}"
                else:
                    style = f"{colours[top[c]]} on {colours[bottom[c]]}"
                styles[key] = style
            if style != run_style and run:
                line.append("".join(run), run_style or "")
                run = []
            run_style = style
            run.append("▀" if mark is None else mark[1])
        if run:
            line.append("".join(run), run_style or "")
        lines.append(line)
    return lines


# ---------------------------------------------------------------- colours from the theme

def _rgb(colour: str) -> tuple[int, int, int]:
    colour = colour.lstrip("#")
    return int(colour[0:2], 16), int(colour[2:4], 16), int(colour[4:6], 16)


def _hex(rgb) -> str:
    return "#%02x%02x%02x" % tuple(max(0, min(255, round(c))) for c in rgb)


def luminance(colour: str) -> float:
    """WCAG relative luminance of a '#rrggbb' colour."""
    def channel(c: int) -> float:
        s = c / 255
        return s / 12.92 if s <= 0.04045 else ((s + 0.055) / 1.055) ** 2.4
    r, g, b = (channel(c) for c in _rgb(colour))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two '#rrggbb' colours, 1 to 21."""
    la, lb = sorted((luminance(a), luminance(b)), reverse=True)
    return (la + 0.05) / (lb + 0.05)


def blend(a: str, b: str, t: float) -> str:
    """a moved a fraction t of the way towards b."""
    return _hex(ca + (cb - ca) * t for ca, cb in zip(_rgb(a), _rgb(b)))


def readable(colour: str, background: str, ratio: float = 4.5) -> str:
    """The colour, moved towards black or white (whichever the background is further from)
    just enough to reach `ratio` against the background."""
    if contrast(colour, background) >= ratio:
        return colour
    target = "#000000" if luminance(background) > 0.18 else "#ffffff"
    for step in range(1, 21):
        out = blend(colour, target, step / 20)
        if contrast(out, background) >= ratio:
            return out
    return target


#: what each role is drawn with: a theme variable (see Textual's themes)
ROLE_VARIABLES = {"fg": "foreground", "grad": "primary", "act": "accent", "state": "foreground",
                  "sat": "warning", "dead": "error", "good": "success", "warn": "warning",
                  "bad": "error", "train": "primary", "val": "accent"}


def theme_roles(variables: dict[str, str]) -> dict[str, str]:
    """Colours for the panels' roles from a theme's CSS variables, each readable (4.5:1) on
    the theme's background; `muted` is the foreground faded half way to the background, and
    `bg` the background itself. ANSI themes keep the terminal's own colours."""
    background = variables.get("background", "#000000")
    if not background.startswith("#"):  # an ANSI theme: the terminal's palette decides
        # Textual names the terminal's colours 'ansi_blue', 'ansi_bright_red'; rich (which
        # draws the panels) 'blue', 'bright_red'
        roles = {role: variables.get(var, "default").split()[0].removeprefix("ansi_")
                 for role, var in ROLE_VARIABLES.items()}
        roles["fg"] = "default"
        roles["muted"] = "default"
        roles["bg"] = "default"
        return roles
    background = background[:7]
    roles = {role: readable(variables.get(var, "#808080")[:7], background)
             for role, var in ROLE_VARIABLES.items()}
    if variables.get("accent", "")[:7].lower() == variables.get("warning", "")[:7].lower():
        # the accent is the warning colour (Textual's own themes): activation statistics
        # take a purple between primary and error instead, apart from saturation's colour
        mix = blend(variables.get("primary", "#808080")[:7],
                    variables.get("error", "#808080")[:7], 0.5)
        roles["act"] = readable(mix, background)
    roles["muted"] = readable(blend(roles["fg"], background, 0.4), background)
    roles["bg"] = background
    return roles
