"""The pure renderers, tested as strings."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from nnsim.tui.render import bars, fmt, heatmap, plot, sparkline, sparklines


def test_sparkline_rises_through_the_blocks():
    assert sparkline([0, 1, 2, 3, 4, 5, 6, 7], 8) == ["▁▂▃▄▅▆▇█"]


def test_sparkline_right_aligns_and_keeps_the_newest():
    assert sparkline([1, 2], 4) == ["  ▁█"]
    assert sparkline(list(range(100)), 3) == ["▁▄█"]


def test_sparkline_fixed_range_clips():
    assert sparkline([-5, 0.5, 99], 3, lo=0, hi=1) == ["▁▄█"]


def test_sparkline_log_scale_and_non_finite_values():
    assert sparkline([1e-6, 1e-3, 1.0], 3, log=True) == ["▁▄█"]
    assert sparkline([1.0, math.nan, math.inf, -math.inf], 4) == ["▄·█▁"]
    assert sparkline([0.0, 1.0], 2, log=True) == ["▁▄"]  # log of 0 is the floor


def test_flat_sparkline_sits_in_the_middle():
    assert sparkline([3, 3, 3], 3) == ["▄▄▄"]


def test_tall_sparkline_stacks_rows():
    top, bottom = sparkline([0, 1], 2, height=2)
    assert top == " █" and bottom == "▁█"


def test_bars_scale_to_the_largest_count():
    assert bars([0, 4, 8], 1) == [" ▄█"]
    assert bars([1, 16], 2) == [" █", "▁█"]  # a non-empty bin always shows


def test_fmt_is_compact():
    assert [fmt(x) for x in (0.0, 0.1234, 12.3, 0.00012, 123456.0, 1234.0)] == [
        "0", "0.123", "12.3", "1.2e-4", "1.2e5", "1.2k"]
    assert (fmt(None), fmt(math.nan), fmt(-math.inf)) == ("—", "nan", "-inf")


def test_plot_draws_a_rising_line_bottom_left_to_top_right():
    lines, lo, hi = plot([(list(range(10)), "cyan")], width=5, height=2)
    assert (lo, hi) == (0, 9)
    assert lines[1].plain[0] != " " and lines[0].plain[-1] != " "
    assert lines[0].plain[0] == " " and lines[1].plain[-1] == " "


def test_plot_survives_nan_and_inf():
    lines, _, _ = plot([([1.0, math.nan, math.inf, 2.0], "red")], width=4, height=2)
    assert len(lines) == 2


def test_heatmap_has_two_grid_rows_per_line_and_marks_points():
    label = [[0, 1], [0, 1], [1, 1], [1, 0]]
    conf = [[1.0] * 2] * 4
    lines = heatmap(label, conf, 2, points=[(1, 0, 1, "●"), (0, 1, 0, "○")])
    assert [line.plain for line in lines] == ["▀○", "●▀"]


def _lit_dots(lines, width, height):
    """The dots a plot lit, as a set of (dot row, dot column), read back from the braille."""
    weights = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
    lit = set()
    for y, line in enumerate(lines):
        for x, ch in enumerate(line.plain):
            code = ord(ch) - 0x2800 if ch != " " else 0
            for r in range(4):
                for c in range(2):
                    if code & weights[r][c]:
                        lit.add((4 * y + r, 2 * x + c))
    return lit


@settings(max_examples=150, deadline=None)
@given(values=st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(math.nan)), max_size=90),
       width=st.integers(1, 40), height=st.integers(1, 8))
def test_plot_lights_each_dot_column_from_its_value_to_the_one_before(values, width, height):
    """The definition, dot by dot: a dot column with a value lights the dot rows between its
    row and the previous column's (its own row alone after a gap); the plot packs those
    dots into braille cells arithmetically, which must agree."""
    import numpy as np

    lines, low, high = plot([(values, "red")], width=width, height=height)
    dots_w, dots_h = 2 * width, 4 * height
    v = np.array(values, dtype=float)
    n = len(v)
    if n > dots_w:
        edges = (np.arange(dots_w) * n) // dots_w
        ok = np.isfinite(v)
        sums, counts = np.add.reduceat(np.where(ok, v, 0.0), edges), np.add.reduceat(ok, edges)
        col = [s / c if c else math.nan for s, c in zip(sums, counts)]
    elif n:
        col = [v[(j * (n - 1)) // max(dots_w - 1, 1)] for j in range(dots_w)]
    else:
        col = [math.nan] * dots_w
    want, before = set(), None
    for j, value in enumerate(col):
        row = None if math.isnan(value) else min(max(
            round((high - value) / (high - low) * (dots_h - 1)), 0), dots_h - 1)
        ends = [r for r in (row, before if before is not None else row) if r is not None]
        for r in range(min(ends, default=0), max(ends, default=-1) + 1):
            want.add((r, j))
        before = row
    assert _lit_dots(lines, width, height) == want


_PIECES = st.sampled_from(["abc", "   ", " ", "▁▂▃█", "‖∂L/∂W‖", "0.013 ", "…", "漢字", "x"])
_STYLES = st.sampled_from(["", "bold", "#ff8800", "bold #ff8800", "on #202020", "underline"])


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.tuples(_PIECES, _STYLES), max_size=12),
       line_style=st.sampled_from(["", "bold", "#808080"]), width=st.integers(1, 60))
def test_a_line_of_runs_gives_the_strip_of_its_text(parts, line_style, width):
    """The panels' fast way from runs to a Strip makes exactly the segments of the general
    way through a Text: same text, same styles, cut or padded alike (wide characters take
    the general way)."""
    from rich.style import Style

    from nnsim.tui.render import Runs
    from nnsim.tui.views import runs_strip, text_strip

    runs = Runs(style=line_style)
    for text, style in parts:
        runs.append(text, style)
    base = Style(color="#e0e0e0", bgcolor="#101010")
    fast, general = runs_strip(runs, width, base), text_strip(runs.text(), width, base)
    assert list(fast) == list(general)
    assert fast.cell_length == general.cell_length == width


@given(st.floats(-1e6, 1e6), st.floats(1e-6, 1e7), st.integers(5, 8))
def test_an_axis_number_fits_its_width_and_is_near_the_value(value, span, width):
    """To two significant digits of the span where that fits the width, else to fewer."""
    from nnsim.tui.views import axis_number

    text = axis_number(value, span, width)
    assert len(text) <= width and not (text.startswith("-") and float(text) == 0)  # no -0.0
    decimals = max(0, 1 - math.floor(math.log10(span)))
    if len(f"{value:.{decimals}f}") <= width - 1:  # room for it (and a sign's change)
        assert abs(float(text) - value) <= 0.5 * 10 ** -decimals * (1 + 1e-9)


async def test_the_boundary_plots_rows_line_up_at_80x24():
    """Every row of the plot starts in the same column: a middle label of -0.0091 was two
    characters wider than the others and shifted its row right."""
    from nnsim.tui.app import make_app
    from nnsim.tui.views import BoundaryView
    from tests.helpers import small_config, until

    app = make_app(small_config(), paused=False)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("4")
        view = app.query_one(BoundaryView)

        def rows():
            return ["".join(s.text for s in view.render_line(y)) for y in range(view.size.height)]
        await until(pilot, lambda: any("┤" in line for line in rows()), timeout=20)
        axis = [line for line in rows() if "┤" in line or "│" in line]
        assert len(axis) > 5 and len({line.index("┤" if "┤" in line else "│")
                                      for line in axis}) == 1
        legend = rows()[0]
        # the legend's meaning fits too, with the classes' key (it gave way at 80 columns)
        assert "background = " in legend and "faded = unsure" in legend
        assert "■ 0" in legend and "■ 2" in legend, legend


@given(st.lists(st.floats(-1.0, 1.0), min_size=1, max_size=12), st.integers(2, 6))
def test_a_signed_range_grows_its_bars_from_zero(values, height):
    """On a range around 0 (a cosine's -1…1) a bar goes up for a positive value and down
    for a negative one, in proportion, and 0 is no bar at all (drawn up from -1 it was half
    a bar), with ▔ marking the zero line."""
    from nnsim.tui.render import EIGHTHS

    (rows,) = sparklines(np.array([values]), len(values), -1.0, 1.0, False, height)
    up, down = (height + 1) // 2, height // 2
    for col, v in enumerate(values):
        above = sum(EIGHTHS.index(row[col]) for row in rows[:up])
        below = sum(" ▀█".index(row[col]) if row[col] in " ▀█" else 0 for row in rows[up:])
        assert above == round(max(v, 0.0) * up * 8)
        assert below == round(max(-v, 0.0) * down * 2)
        assert (rows[up][col] == "▔") == (below == 0)


@settings(max_examples=200, deadline=None)
@given(parts=st.lists(st.tuples(_PIECES.filter(lambda p: p != "漢字"), _STYLES), min_size=1,
                      max_size=6),
       outer=st.sampled_from(["", "bold", "#808080", "italic #00ff00"]),
       split=st.integers(0, 5), width=st.integers(1, 60))
def test_text_strip_layers_overlapping_spans_as_rich_does(parts, outer, split, width):
    """A Text with a style of its own appended to another gives overlapping spans; the
    strip takes each character's style as Rich's renderer does (it once drew a piece twice,
    a ▲ under the Curves plot and again at the end of the line)."""
    from rich.console import Console
    from rich.segment import Segment
    from rich.style import Style
    from rich.text import Text

    from nnsim.tui.views import text_strip

    inner = Text(style=outer)
    for piece, style in parts[split:]:
        inner.append(piece, style)
    text = Text()
    for piece, style in parts[:split]:
        text.append(piece, style)
    text.append(inner)
    base = Style(color="#e0e0e0", bgcolor="#101010")
    ours = text_strip(text, width, base)
    console = Console(width=1000, color_system="truecolor")
    theirs = [Segment(s.text, base + s.style if s.style else base)
              for s in text.render(console) if s.text != "\n"]
    # character by character: the same text in the same style
    def cells(segments):
        return [(ch, seg.style) for seg in segments for ch in seg.text]
    assert "".join(ch for ch, _ in cells(ours)).rstrip() == \
        "".join(ch for ch, _ in cells(theirs))[:width].rstrip()
    for (a, sa), (b, sb) in zip(cells(ours), cells(theirs)):
        if a.strip():
            assert sa == sb, (a, sa, sb)


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 90), st.integers(1, 400), st.data())
def test_plot_cell_is_where_plot_draws_a_value(width, n, data):
    """The timeline's ▲ goes under the cell where `plot` draws that column's value."""
    from nnsim.tui.render import plot_cell

    j = data.draw(st.integers(0, n - 1))
    values = np.full(n, np.nan)
    values[j] = 0.5
    rows, _, _ = plot([(values, "")], width, 2, lo=0.0, hi=1.0)
    texts = [row.plain for row in rows]
    lit = [c for c in range(width) if any(t[c] != " " for t in texts)]
    assert lit and lit[0] == plot_cell(j, n, width)


def test_a_whole_run_axis_never_narrows_as_the_run_grows():
    """Over the whole run, the layer table's log axes span every step's values (each
    column's min and max), so an axis only widens as the run goes on. Taken from the
    columns' means, it narrowed as early steps merged into wider buckets, and a climbing
    value drew lower than before (the momentum step: 0.36 on 0.01…1, then 0.55 on 0.1…1)."""
    from nnsim.engine import Simulation
    from nnsim.engine.timeline import Timeline
    from nnsim.tui.views import Column, Frame, layer_table
    from tests.helpers import small_config

    sim = Simulation(small_config(("optimizer.name", "momentum"),
                                  ("model.initializer", "normal")))
    timeline = Timeline(buckets=64, recent=64)  # merges early, as a long run does
    cols = [Column("grad", "grad_norm", "grad", log=True),
            Column("step", "step_size", "grad", log=True),
            Column("act", "act_std", "act", log=True)]
    roles = {k: "white" for k in ("grad", "act", "muted", "good", "warn", "bad")}
    seen: dict[int, list[tuple[str, str]]] = {}
    records = []
    for step in range(1, 1201):
        records.append(sim.step())
        timeline.append(records[-1])
        if step % 40 == 0:
            frame = Frame(records=records[-5:], evals=[], state="running", message="",
                          rate=0.0, speed="", activation="tanh", optimizer="momentum",
                          lr=sim.lr, timeline=timeline, first=records[0])
            scale = layer_table(frame, cols, 120, 20, roles, lambda layer: [f"L{layer.index}"])[1]
            seen[step] = [tuple(cell.split("…")) for cell in scale.plain.split()]
    decades = {"0.01": -2, "0.1": -1, "1": 0, "10": 1, "100": 2}

    def exponent(text: str) -> int:
        return decades[text] if text in decades else int(text[2:])

    widened = 0
    steps = sorted(seen)
    for before, after in zip(steps, steps[1:]):
        for (lo0, hi0), (lo1, hi1) in zip(seen[before], seen[after]):
            assert exponent(lo1) <= exponent(lo0) and exponent(hi1) >= exponent(hi0), \
                (before, after, seen[before], seen[after])
            widened += (lo1, hi1) != (lo0, hi0)
    assert widened  # the run does reach values beyond its first axes


def test_an_unsure_region_is_fainter_on_both_backgrounds():
    """The Boundary legend says 'faded = unsure' (it said 'brighter = surer', backwards on
    a light background, where a faint tint is the brighter colour): in both themes a region
    stands out less from the background the less sure the network is."""
    from nnsim.tui.render import DARK_BASE, LIGHT_BASE, PALETTE, _shade, contrast

    for dark, base in ((True, DARK_BASE), (False, LIGHT_BASE)):
        background = "#%02x%02x%02x" % base
        for rgb in PALETTE[:3]:
            ratios = [contrast(_shade(rgb, s, dark), background) for s in (0.0, 0.5, 1.0)]
            assert ratios == sorted(ratios) and ratios[0] < ratios[-1], (dark, rgb, ratios)


def test_a_curve_axis_labels_each_power_of_ten_on_the_row_that_draws_it():
    """A loss axis from 1.15 to 0.0057 had two labels; every power of ten between the ends
    is labelled, on the row where the plot draws that value."""
    import math

    from nnsim.tui.render import plot
    from nnsim.tui.views import _axis

    for rows in (6, 8, 12, 25):
        lo, hi = math.log10(0.0057), math.log10(1.15)
        for decade in (0.1, 0.01):
            drawn = plot([(np.full(40, decade), "white")], 20, rows, lo=lo, hi=hi, log=True)
            lines = [line.plain for line in _axis(drawn, "grey", log=True)]
            labelled = [i for i, line in enumerate(lines) if line.split("┤")[0].strip()
                        == ("0.1" if decade == 0.1 else "0.01")]
            inked = [i for i, line in enumerate(lines) if line.split("┤")[1].strip()]
            others = [i for i, line in enumerate(lines) if line.split("┤")[0].strip()]
            if labelled:
                assert labelled == inked, (rows, decade, lines)
            else:  # it gives way only to a label in the next row
                assert any(abs(inked[0] - i) <= 1 for i in others), (rows, decade, lines)
        assert sum(1 for line in lines if line.split("┤")[0].strip()) >= 3 or rows < 8


def test_a_layer_table_whose_timeline_was_emptied_meanwhile_draws():
    """The training thread can clear the timeline (a reset, a rewind) between the frame
    being taken and drawn: the banded column's first run of colours was read from an
    empty list (IndexError)."""
    from nnsim.engine import Simulation
    from nnsim.engine.timeline import Timeline
    from nnsim.tui.views import Column, Frame, layer_table
    from tests.helpers import small_config

    sim = Simulation(small_config())
    records = sim.run(5)
    timeline = Timeline()
    for record in records:
        timeline.append(record)
    cols = [Column("ratio", "update_ratio", "grad", log=True, banded=True)]
    roles = {k: "white" for k in ("grad", "act", "muted", "good", "warn", "bad")}
    frame = Frame(records=records, evals=[], state="running", message="", rate=0.0,
                  speed="", activation="tanh", optimizer="sgd", lr=sim.lr,
                  timeline=timeline, first=records[0])
    assert layer_table(frame, cols, 120, 20, roles, lambda layer: [f"L{layer.index}"])
    timeline.clear()
    assert layer_table(frame, cols, 120, 20, roles, lambda layer: [f"L{layer.index}"])
