"""Plotly figures as plain dicts (``{"data": [...], "layout": {...}}``) built from the figures.

The browser draws them with the plotly.js served from our static files
(``static/signalbox/charts.js``); nothing here imports plotly. Labels are translated when the
figure is built, in the language of the request.
"""

from __future__ import annotations

from django.utils.dates import WEEKDAYS_ABBR
from django.utils.translation import gettext as _

from notifications.models import Channel

from ..dateaxes import plotly_date_axis
from .figures import Counters, Grid
from .selectors import AnalyticsFigures

# One colour per status group, the same in every chart.
COLOURS = {
    "waiting": "#94a3b8",
    "suppressed": "#cbd5e1",
    "sent": "#60a5fa",
    "unknown": "#fbbf24",
    "delivered": "#2563eb",
    "opened": "#7c3aed",
    "clicked": "#16a34a",
    "failed": "#dc2626",
}


def status_labels() -> dict[str, str]:
    return {
        "waiting": _("Waiting"),
        "suppressed": _("Not sent (suppressed)"),
        "sent": _("Sent, no receipt yet"),
        "unknown": _("Outcome unknown"),
        "delivered": _("Delivered"),
        "opened": _("Opened / read"),
        "clicked": _("Clicked"),
        "failed": _("Failed / bounced"),
    }


def funnel_stages(totals: Counters) -> list[dict]:
    """From planned to clicked, each stage with its count and its share of planned (whole percent);
    each stage includes the later ones. The page's funnel table and chart both read this."""
    stages = [
        ("planned", _("Planned"), totals.total),
        ("sent", _("Sent"), totals.reached_sent),
        ("delivered", _("Delivered"), totals.reached_delivered),
        ("opened", _("Opened / read"), totals.reached_opened),
        ("clicked", _("Clicked"), totals.reached_clicked),
    ]
    return [
        {"key": key, "label": label, "count": count, "percent": round(100 * count / totals.total) if totals.total else 0}
        for key, label, count in stages
    ]


def _layout(**extra) -> dict:
    return {
        "margin": {"l": 48, "r": 16, "t": 16, "b": 40},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "font": {"color": "#6b7280", "size": 12},
        "legend": {"orientation": "h", "y": -0.2},
        "height": 320,
        **extra,
    }


def volume_figure(figures: AnalyticsFigures) -> dict:
    """Deliveries created per day, stacked by what became of them."""
    days = [day.isoformat() for day in figures.by_day]
    labels = status_labels()
    data = [
        {
            "type": "bar",
            "name": labels[group],
            "x": days,
            "y": [getattr(counters, f"status_{group}") for counters in figures.by_day.values()],
            "marker": {"color": COLOURS[group]},
            "hovertemplate": "%{x}: %{y:,}<extra>" + labels[group] + "</extra>",
        }
        for group in COLOURS
    ]
    xaxis = plotly_date_axis()  # 12月3日 in Chinese; plotly's own month names are English only
    return {"data": data, "layout": _layout(barmode="stack", xaxis=xaxis, yaxis={"rangemode": "tozero"})}


def funnel_figure(figures: AnalyticsFigures) -> dict:
    """Planned → clicked as horizontal bars, each labelled with its count and share of planned.

    Bars rather than plotly's ``funnel`` trace: every chart here is a bar chart, so the pages load
    plotly.js's basic bundle (``config/storage.py``), which has no ``funnel``.
    """
    stages = funnel_stages(figures.totals)
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "y": [stage["label"] for stage in stages],
            "x": [stage["count"] for stage in stages],
            "customdata": [stage["percent"] for stage in stages],
            "texttemplate": "%{x:,} (%{customdata}%)",
            "textposition": "auto",
            "hovertemplate": "%{y}: %{x:,} (%{customdata}%)<extra></extra>",
            "marker": {"color": ["#94a3b8", "#60a5fa", "#2563eb", "#7c3aed", "#16a34a"]},
        }
    ]
    layout = _layout(margin={"l": 110, "r": 16, "t": 16, "b": 24}, yaxis={"autorange": "reversed"}, bargap=0.25)
    return {"data": data, "layout": layout}


def channel_figure(figures: AnalyticsFigures) -> dict:
    """Per channel: planned, sent, delivered, opened and clicked side by side."""
    names = dict(Channel.choices)
    channels = list(figures.by_channel)
    labels = [str(names.get(channel, channel)) for channel in channels]
    series = [
        ("total", _("Planned"), "#94a3b8"),
        ("reached_sent", _("Sent"), "#60a5fa"),
        ("reached_delivered", _("Delivered"), "#2563eb"),
        ("reached_opened", _("Opened / read"), "#7c3aed"),
        ("reached_clicked", _("Clicked"), "#16a34a"),
    ]
    data = [
        {
            "type": "bar",
            "name": label,
            "x": labels,
            "y": [getattr(figures.by_channel[channel], attr) for channel in channels],
            "marker": {"color": colour},
        }
        for attr, label, colour in series
    ]
    return {"data": data, "layout": _layout(barmode="group")}


def heatmap_figure(grid: Grid) -> dict:
    """Opens and reads by weekday (rows, Monday first) and hour of day (site time zone).

    A heatmap drawn as one bar trace: each cell is a bar one hour long starting at its hour
    (``base``), coloured by its count. plotly.js's basic bundle has no ``heatmap`` trace (see
    ``funnel_figure``).
    """
    weekdays = [str(WEEKDAYS_ABBR[day]) for day in range(7)]
    cells = [(weekdays[day], hour, count) for day, row in enumerate(grid.cells) for hour, count in enumerate(row)]
    data = [
        {
            "type": "bar",
            "orientation": "h",
            "y": [day for day, _hour, _count in cells],
            "base": [hour for _day, hour, _count in cells],
            "x": [1] * len(cells),
            "customdata": [[f"{hour:02d}", count] for _day, hour, count in cells],
            "hovertemplate": "%{y} %{customdata[0]}:00 · %{customdata[1]:,}<extra></extra>",
            "marker": {
                "color": [count for _day, _hour, count in cells],
                "colorscale": [[0, "#f5f3ff"], [1, "#6d28d9"]],
                "cmin": 0,  # an empty hour stays the palest; plotly needs both bounds to use them
                "cmax": max([1, *(count for _day, _hour, count in cells)]),
                "showscale": True,
                "colorbar": {"thickness": 12},
                "line": {"width": 1, "color": "#ffffff"},
            },
        }
    ]
    xaxis = {
        "title": {"text": _("Hour of day")}, "range": [0, 24], "showgrid": False, "zeroline": False,
        "tickvals": [hour + 0.5 for hour in range(0, 24, 2)], "ticktext": [f"{hour:02d}" for hour in range(0, 24, 2)],
    }
    yaxis = {"autorange": "reversed", "type": "category", "showgrid": False}
    layout = _layout(barmode="overlay", bargap=0.08, hovermode="closest", xaxis=xaxis, yaxis=yaxis)
    return {"data": data, "layout": layout}


def analytics_charts(figures: AnalyticsFigures) -> dict[str, dict]:
    return {
        "volume": volume_figure(figures),
        "funnel": funnel_figure(figures),
        "channels": channel_figure(figures),
        "opens": heatmap_figure(figures.opens),
    }
