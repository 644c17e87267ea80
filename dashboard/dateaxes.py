"""Date axes in the reader's language, for the browser's plotly charts and the PDF's matplotlib ones.

matplotlib's and plotly's month abbreviations are English ("2026-Dec"); Chinese writes dates with
年/月/日 ("2026年12月", "12月3日"). English keeps the libraries' own formats.
"""

from __future__ import annotations

from django.utils.translation import get_language


def _chinese(language: str | None) -> bool:
    return (language or get_language() or "").lower().startswith("zh")


def plotly_date_axis(language: str | None = None) -> dict[str, str]:
    """``xaxis`` settings of a plotly date axis (d3-time-format; ``%-m`` is the month unpadded)."""
    if _chinese(language):
        return {"type": "date", "tickformat": "%-m月%-d日", "hoverformat": "%Y年%-m月%-d日"}
    # Numeric ticks: plotly's month names are English only.
    return {"type": "date", "tickformat": "%m-%d", "hoverformat": "%Y-%m-%d"}


def matplotlib_date_formatter(locator, language: str | None = None):
    """A ``ConciseDateFormatter`` for ``locator``: ticks, the first tick of a larger unit, and the
    offset written at the axis' end, in the reader's language."""
    from matplotlib import dates as mdates

    if not _chinese(language):
        return mdates.ConciseDateFormatter(locator)
    # Levels: years, months, days, hours, minutes, seconds (glibc strftime: %-m unpadded).
    return mdates.ConciseDateFormatter(
        locator,
        formats=["%Y年", "%-m月", "%-d日", "%H:%M", "%H:%M", "%S.%f"],
        zero_formats=["", "%Y年", "%-m月", "%-m月%-d日", "%H:%M", "%H:%M"],
        offset_formats=["", "%Y年", "%Y年%-m月", "%Y年%-m月%-d日", "%Y年%-m月%-d日", "%Y年%-m月%-d日 %H:%M"],
    )
