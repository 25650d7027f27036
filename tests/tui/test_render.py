"""The pure renderers, tested as strings."""

import math

from nnsim.tui.render import bars, fmt, heatmap, plot, sparkline


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
