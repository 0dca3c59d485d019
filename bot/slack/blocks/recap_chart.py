"""The recap's 8-week chart: spend (bars, billed and estimated apart) against the value measure
(a line), as PNG bytes.

Presentation, like the Block Kit builders beside it: a pure function of the ``Recap`` (no I/O,
no Slack calls), drawn headless with matplotlib's Agg canvas and no pyplot, so it is safe in the
scheduler's worker threads. The handler uploads the bytes into the recap's thread.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from bot.domain.money import format_usd
from bot.services.recap.model import Recap
from bot.services.recap.rules import WeekTotal
from bot.slack.blocks.format import scope_label, scope_mention

if TYPE_CHECKING:
    from matplotlib.figure import Figure

BILLED_LABEL = "Billed spend"
ESTIMATED_LABEL = "Estimated spend (tokens × list prices)"
HEADROOM = 1.25  # the tallest bar or point reaches 80% of the axis: room for the legend
LEFT_OUT = "left out"


def _hidden(recap: Recap, week: WeekTotal) -> bool:
    return recap.hidden_before is not None and week.start < recap.hidden_before


def chart_alt_text(recap: Recap) -> str:
    weeks = list(reversed(recap.facts.weeks))
    measure = recap.chart_measure()

    def spend(w: WeekTotal) -> str:
        if _hidden(recap, w):
            return "left out (too few people)"
        text = format_usd(w.spend_micros, cents=False)
        return text + (
            f" ({format_usd(w.estimated_micros, cents=False)} estimated)" if w.estimated_micros else ""
        )

    text = (
        f"Weekly AI spend of {scope_mention(recap)} over {len(weeks)} weeks, from {weeks[0].start:%b %-d}: "
        + ", ".join(spend(w) for w in weeks)
    )
    if measure:
        key, plural = measure
        text += f". {plural[0].upper()}{plural[1:]} per week: " + ", ".join(
            f"{w.measure(key):,}" for w in weeks
        )
    return text[:1000] + "."


def dollars(value: float, _position: object = None) -> str:
    """A spend tick: whole dollars with thousands separators ("$1,250")."""
    return f"${value:,.0f}"


def thousands(value: float, _position: object = None) -> str:
    """A count tick: a whole number with thousands separators ("12,500")."""
    return f"{value:,.0f}"


def build_figure(recap: Recap) -> Figure:
    """The chart as a matplotlib Figure (tests read its axes, legend and tick formatters).

    Plotting takes floats; the money shown in the recap itself stays exact integer micros."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    weeks = list(reversed(recap.facts.weeks))
    x = list(range(len(weeks)))
    labels = [f"{w.start:%b %-d}" + (f"\n({LEFT_OUT})" if _hidden(recap, w) else "") for w in weeks]
    estimated = [w.estimated_micros / 1_000_000 for w in weeks]
    billed = [(w.spend_micros - w.estimated_micros) / 1_000_000 for w in weeks]
    figure = Figure(figsize=(8, 3.8), dpi=110)
    FigureCanvasAgg(figure)  # pyplot-free: safe in the scheduler's worker threads
    axes = figure.add_subplot(1, 1, 1)
    axes.bar(x, billed, color="#4f7fb3", label=BILLED_LABEL)
    axes.bar(
        x, estimated, bottom=billed, color="#cfe0f1", edgecolor="#4f7fb3", hatch="//", label=ESTIMATED_LABEL
    )
    axes.set_xticks(x, labels)
    axes.set_ylabel("AI spend (USD)")
    axes.yaxis.set_major_formatter(FuncFormatter(dollars))
    axes.set_ylim(0, max(max(b + e for b, e in zip(billed, estimated, strict=True)), 1.0) * HEADROOM)
    axes.tick_params(axis="x", labelsize=8)
    axes.set_title(f"{scope_label(recap)}: AI spend vs value, last {len(weeks)} weeks", fontsize=10)
    handles, names = axes.get_legend_handles_labels()
    measure = recap.chart_measure()
    if measure:
        key, plural = measure
        values = [w.measure(key) for w in weeks]
        other = axes.twinx()
        other.plot(x, values, color="#1f3a5f", marker="o", label=f"{plural[0].upper()}{plural[1:]}")
        other.set_ylabel(plural)
        other.yaxis.set_major_formatter(FuncFormatter(thousands))
        other.yaxis.set_major_locator(MaxNLocator(integer=True))
        other.set_ylim(0, max(max(values), 1) * HEADROOM)
        more_handles, more_names = other.get_legend_handles_labels()
        handles, names = handles + more_handles, names + more_names
    axes.legend(handles, names, loc="upper left", fontsize=8, frameon=False, ncols=len(names))
    figure.tight_layout()
    return figure


def render_chart(recap: Recap) -> bytes:
    """A PNG of ``build_figure``, drawn headless."""
    out = io.BytesIO()
    build_figure(recap).savefig(out, format="png")
    return out.getvalue()
