"""Report charts as SVG, drawn by matplotlib without a browser (DESIGN.md "Stack").

Each chart is its own ``Figure`` rendered through ``FigureCanvasSVG``: nothing touches pyplot's
global figure state, so concurrent requests and worker threads cannot draw into each other's
charts. Text is converted to paths (matplotlib's default ``svg.fonttype``), so the SVG needs no
font where it is shown; labels in Chinese are drawn with Noto Sans CJK (Debian's
``fonts-noto-cjk``) through matplotlib's per-glyph font fallback.
"""

from __future__ import annotations

import io
import logging
import threading
from glob import glob

from django.utils.translation import gettext as _
from matplotlib import dates as mdates
from matplotlib import font_manager
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties

from ..dateaxes import matplotlib_date_formatter
from .data import ChannelRow, Outcomes, Volume

logger = logging.getLogger(__name__)

# Latin first (DejaVu ships with matplotlib), then CJK for the glyphs DejaVu lacks.
FONT_FAMILIES = ["DejaVu Sans", "Noto Sans CJK SC", "Noto Sans CJK JP"]
CJK_FONT_GLOBS = ["/usr/share/fonts/opentype/noto/NotoSansCJK-*.ttc", "/usr/share/fonts/**/NotoSansCJK*.tt[cf]"]

# Outcome groups, in stacking order, with their colours (also used in the PDF's legend).
SERIES = [
    ("sent", "#16a34a"),
    ("failed", "#dc2626"),
    ("unknown", "#6b7280"),
    ("suppressed", "#9ca3af"),
    ("waiting", "#f59e0b"),
]

_fonts_checked = False
_fonts_lock = threading.Lock()


def _ensure_cjk_font() -> None:
    """Make Noto Sans CJK known to matplotlib even if its font cache predates the font.

    matplotlib caches the system font list on first use and does not rescan; a machine where
    ``fonts-noto-cjk`` was installed after that would otherwise draw Chinese labels as boxes.
    """
    global _fonts_checked
    if _fonts_checked:
        return
    with _fonts_lock:
        if _fonts_checked:
            return
        known = {entry.name for entry in font_manager.fontManager.ttflist}
        if "Noto Sans CJK SC" not in known:
            paths = sorted({path for pattern in CJK_FONT_GLOBS for path in glob(pattern, recursive=True)})
            for path in paths:
                font_manager.fontManager.addfont(path)
            if not paths:
                logger.warning("Noto Sans CJK not found: Chinese chart labels will not render (apt-get install fonts-noto-cjk).")
        _fonts_checked = True


def _font(size: float = 9, weight: str = "normal") -> FontProperties:
    return FontProperties(family=FONT_FAMILIES, size=size, weight=weight)


def _figure(width_cm: float, height_cm: float) -> Figure:
    _ensure_cjk_font()
    return Figure(figsize=(width_cm / 2.54, height_cm / 2.54), layout="constrained")


def _style_axes(ax) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="y" if ax.name == "rectilinear" else "both", color="#e5e7eb", linewidth=0.6)
    ax.set_axisbelow(True)
    for label in (*ax.get_xticklabels(), *ax.get_yticklabels()):
        label.set_fontproperties(_font(8))
    # Ticks made at draw time and the date offset ("2026年12月") need the CJK fallback too.
    ax.tick_params(labelfontfamily=FONT_FAMILIES)
    for axis in (ax.xaxis, ax.yaxis):
        axis.get_offset_text().set_fontproperties(_font(8))


def _svg(fig: Figure) -> str:
    buffer = io.StringIO()
    FigureCanvasSVG(fig).print_svg(buffer)
    return buffer.getvalue()


def series_labels() -> dict[str, str]:
    # "sent" here is a partition (not failed since), not the headline Sent, which counts bounces too.
    return {
        "sent": _("Sent, not failed"), "failed": _("Failed"), "unknown": _("Outcome unknown"),
        "suppressed": _("Not sent"), "waiting": _("Waiting"),
    }


def volume_chart_svg(volume: Volume) -> str:
    """Stacked bars: deliveries per day (or week) by outcome."""
    fig = _figure(17, 7)
    ax = fig.add_subplot()
    days = [bucket.start for bucket in volume.buckets]
    width = 6 if volume.weekly else 0.8
    bottom = [0] * len(days)
    labels = series_labels()
    for name, colour in SERIES:
        values = [getattr(bucket, name) for bucket in volume.buckets]
        ax.bar(days, values, width=width, bottom=bottom, color=colour, label=labels[name], align="edge" if volume.weekly else "center")
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    locator = mdates.AutoDateLocator(minticks=3, maxticks=8)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(matplotlib_date_formatter(locator))  # "2026年12月", not "2026-Dec"
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(_("Deliveries per week") if volume.weekly else _("Deliveries per day"), fontproperties=_font(10, "bold"), loc="left")
    # The legend is in the page's HTML (one legend for this chart and the channel chart).
    _style_axes(ax)
    return _svg(fig)


def funnel_chart_svg(outcomes: Outcomes) -> str:
    """Horizontal funnel: planned → sent → delivered → opened → clicked."""
    steps = [
        (_("Planned"), outcomes.planned),
        (_("Sent"), outcomes.sent),
        (_("Delivered"), outcomes.delivered),
        (_("Opened"), outcomes.opened),
        (_("Clicked"), outcomes.clicked),
    ]
    fig = _figure(8.5, 6)
    ax = fig.add_subplot()
    names = [name for name, _value in steps][::-1]
    values = [value for _name, value in steps][::-1]
    bars = ax.barh(names, values, color=["#1d4ed8", "#2563eb", "#3b82f6", "#60a5fa", "#93c5fd"][::-1])
    ax.bar_label(bars, labels=[f"{v:,}" for v in values], padding=3, fontproperties=_font(8))
    ax.set_xlim(0, max(values + [1]) * 1.25)
    ax.set_title(_("Funnel"), fontproperties=_font(10, "bold"), loc="left")
    _style_axes(ax)
    ax.grid(False)
    ax.set_xticks([])  # each bar carries its value
    ax.spines["bottom"].set_visible(False)
    return _svg(fig)


def channel_chart_svg(channels: list[ChannelRow]) -> str:
    """Horizontal stacked bars: each channel's deliveries by outcome."""
    fig = _figure(8.5, 6)
    ax = fig.add_subplot()
    rows = channels[::-1]
    names = [row.label for row in rows]
    left = [0] * len(rows)
    labels = series_labels()
    for name, colour in SERIES:
        values = [getattr(row.outcomes, name) for row in rows]
        ax.barh(names, values, left=left, color=colour, label=labels[name])
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title(_("By channel"), fontproperties=_font(10, "bold"), loc="left")
    _style_axes(ax)
    ax.grid(False)
    return _svg(fig)
