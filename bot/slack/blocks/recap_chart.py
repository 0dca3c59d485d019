"""The recap's 8-week chart: spend (bars) against the value measure (line), as PNG bytes.

Presentation, like the Block Kit builders beside it: a pure function of the ``Recap`` (no I/O,
no Slack calls), drawn headless with matplotlib's Agg canvas and no pyplot, so it is safe in the
scheduler's worker threads. The handler uploads the bytes into the recap's thread.
"""

from __future__ import annotations

import io

from bot.domain.money import format_usd
from bot.services.recap.model import Recap
from bot.services.recap.rules import WeekTotal


def chart_alt_text(recap: Recap) -> str:
    weeks = list(reversed(recap.facts.weeks))
    measure = recap.chart_measure()

    def spend(w: WeekTotal) -> str:
        hidden = recap.hidden_before is not None and w.start < recap.hidden_before
        return "left out (too few people)" if hidden else format_usd(w.spend_micros, cents=False)

    text = (
        f"Weekly AI spend of {recap.scope_label} over {len(weeks)} weeks, from {weeks[0].start:%b %-d}: "
        + ", ".join(spend(w) for w in weeks)
    )
    if measure:
        key, plural = measure
        text += f". {plural[0].upper()}{plural[1:]} per week: " + ", ".join(
            f"{w.measure(key):,}" for w in weeks
        )
    return text[:1000] + "."


def render_chart(recap: Recap) -> bytes:
    """A PNG of 8 weeks of spend (bars) against the value measure (line), drawn headless.

    Plotting takes floats; the money shown in the recap itself stays exact integer micros."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    weeks = list(reversed(recap.facts.weeks))
    labels = [f"{w.start:%b %-d}" for w in weeks]
    spend = [w.spend_micros / 1_000_000 for w in weeks]
    figure = Figure(figsize=(8, 3.6), dpi=110)
    FigureCanvasAgg(figure)  # pyplot-free: safe in the scheduler's worker threads
    axes = figure.add_subplot(1, 1, 1)
    axes.bar(labels, spend, color="#8fb3d9", label="AI spend (USD)")
    axes.set_ylabel("AI spend (USD)")
    axes.set_title(f"AI spend vs value, last {len(weeks)} weeks")
    axes.tick_params(axis="x", labelsize=8)
    measure = recap.chart_measure()
    if measure:
        key, plural = measure
        other = axes.twinx()
        other.plot(labels, [w.measure(key) for w in weeks], color="#1f3a5f", marker="o", label=plural)
        other.set_ylabel(plural)
        other.set_ylim(bottom=0)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png")
    return out.getvalue()
