"""The recap chart's figure, read from its matplotlib objects (not its pixels): a legend naming
every series, billed and estimated spend as distinct (hatched) bars, dollar and thousands tick
labels, headroom above the tallest bar and point, and left-out weeks marked."""

from __future__ import annotations

from datetime import timedelta

from bot.slack.blocks.recap_chart import (
    BILLED_LABEL,
    ESTIMATED_LABEL,
    build_figure,
    chart_alt_text,
    dollars,
    render_chart,
    thousands,
)
from tests.support.recap_builders import MONDAY, make_recap, week


def test_the_chart_has_a_legend_ticks_headroom_and_billed_apart_from_estimated():
    recap = make_recap([week(n, 1500 - 100 * n, 400 if n % 2 else 0, 12_500 - 500 * n) for n in range(8)])
    figure = build_figure(recap)
    spend_axes, measure_axes = figure.axes
    legend = spend_axes.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [BILLED_LABEL, ESTIMATED_LABEL, "Accepted lines"]

    billed, estimated = spend_axes.containers  # two bar series, one bar per week
    # Oldest week first: week 7 back (billed $800 - $400 estimated) ... this week ($1,500, all billed).
    assert [round(b.get_height()) for b in billed] == [400, 900, 600, 1100, 800, 1300, 1000, 1500]
    assert [round(b.get_height()) for b in estimated] == [400, 0, 400, 0, 400, 0, 400, 0]
    assert all(b.get_hatch() == "//" for b in estimated) and not any(b.get_hatch() for b in billed)
    assert [round(b.get_y()) for b in estimated] == [400, 900, 600, 1100, 800, 1300, 1000, 1500]

    assert spend_axes.yaxis.get_major_formatter()(1250, 0) == "$1,250" == dollars(1250.4)
    assert measure_axes.yaxis.get_major_formatter()(12500, 0) == "12,500" == thousands(12_500.2)
    assert spend_axes.get_ylim() == (0, 1500 * 1.25)  # headroom: the tallest bar at 80%
    assert measure_axes.get_ylim() == (0, 12_500 * 1.25)
    labels = [t.get_text() for t in spend_axes.get_xticklabels()]
    assert labels[0] == f"{MONDAY - timedelta(weeks=7):%b %-d}" and labels[-1] == f"{MONDAY:%b %-d}"
    assert render_chart(recap)[:4] == b"\x89PNG"


def test_no_measure_means_no_line_and_left_out_weeks_are_marked():
    weeks = [week(n, 0 if n >= 5 else 300, 0, 0) for n in range(8)]  # hidden weeks come empty
    recap = make_recap(weeks, hidden_before=MONDAY - timedelta(weeks=4))
    figure = build_figure(recap)
    [spend_axes] = figure.axes  # no value measure in 8 weeks: no second axis
    assert [t.get_text() for t in spend_axes.get_legend().get_texts()] == [BILLED_LABEL, ESTIMATED_LABEL]
    labels = [t.get_text() for t in spend_axes.get_xticklabels()]
    assert [label.endswith("(left out)") for label in labels] == [True, True, True] + [False] * 5
    assert spend_axes.get_ylim() == (0, 300 * 1.25)
    alt = chart_alt_text(recap)
    assert alt.count("left out (too few people)") == 3 and "$300" in alt and "estimated" not in alt


def test_an_empty_chart_still_has_an_axis():
    figure = build_figure(make_recap([week(n, 0) for n in range(8)]))
    assert figure.axes[0].get_ylim() == (0, 1.25)
