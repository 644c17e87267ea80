"""PDF reports: ``ReportContent`` → HTML (``templates/reports/report.html``) → WeasyPrint → PDF.

The HTML is rendered by Django from figures computed in ``data``; the charts are SVG from
``charts`` embedded as ``data:`` images (each chart keeps its own SVG ids, so clip paths of two
charts cannot collide). WeasyPrint may fetch nothing but those ``data:`` URLs: no file, no
network, whatever ends up in a campaign name.

Fonts come from fontconfig: the stylesheet asks for "Noto Sans CJK SC" first (Debian's
``fonts-noto-cjk``) so Chinese campaign names and labels render, then Noto Sans / sans-serif.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO

from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _

from . import charts
from notifications.ledger.outcomes import RATES

from .data import Outcomes, ReportContent

TEMPLATE = "reports/report.html"


@dataclass(frozen=True)
class Figure:
    """One headline figure: "Sent · 1,234 · 98.0% of planned"."""

    label: str
    value: str
    note: str


def _count(value: int) -> str:
    return f"{value:,}"


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{rate:.1%}"


def headline_figures(outcomes: Outcomes) -> list[Figure]:
    """The figures and rates of ``notifications.ledger.outcomes`` (denominators from ``RATES``)."""
    of = {"planned": _("%(rate)s of planned"), "sent": _("%(rate)s of sent"), "delivered": _("%(rate)s of delivered")}

    def note(rate: str) -> str:
        return of[RATES[rate][1]] % {"rate": _percent(outcomes.rate(rate))}

    return [
        Figure(_("Planned"), _count(outcomes.planned), _("%(n)s not sent (suppressed, opted out)") % {"n": _count(outcomes.suppressed)}),
        Figure(_("Sent"), _count(outcomes.sent), note("sent_rate")),
        Figure(_("Delivered"), _count(outcomes.delivered), note("delivered_rate")),
        Figure(_("Opened"), _count(outcomes.opened), note("open_rate")),
        Figure(_("Clicked"), _count(outcomes.clicked), note("click_rate")),
        Figure(_("Failed"), _count(outcomes.failed), note("failure_rate")),
        Figure(_("Unsubscribed"), _count(outcomes.unsubscribed), note("unsubscribe_rate")),
    ]


def outcome_cells(outcomes: Outcomes, *, rates: bool = True) -> list[str]:
    """The numeric columns shared by the channel and run tables."""
    cells = [
        _count(outcomes.planned), _count(outcomes.sent), _count(outcomes.delivered), _count(outcomes.opened),
        _count(outcomes.clicked), _count(outcomes.failed), _count(outcomes.unsubscribed),
    ]
    return [*cells, _percent(outcomes.open_rate), _percent(outcomes.click_rate)] if rates else cells


def outcome_headers(*, rates: bool = True) -> list[str]:
    headers = [_("Planned"), _("Sent"), _("Delivered"), _("Opened"), _("Clicked"), _("Failed"), _("Unsubscribed")]
    return [*headers, _("Open rate"), _("Click rate")] if rates else headers


def _data_uri(svg: str) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _when(value: datetime | None) -> str:
    return date_format(timezone.localtime(value), "DATETIME_FORMAT") if value else ""


def _short(value: datetime | None) -> str:
    """Compact and unambiguous in any language, for table cells."""
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""


def report_html(*, content: ReportContent, generated_by: str, generated_at: datetime) -> str:
    """The report as HTML (also handy to look at in a browser while changing the layout)."""
    has_data = content.outcomes.planned > 0
    campaign = content.campaign
    details = []
    if campaign is not None:
        details = [
            (_("Status"), campaign.get_status_display()),
            (_("Category"), str(campaign.category)),
            (_("Channels"), ", ".join(campaign.channels or [])),
            (_("Author"), str(campaign.author or "—")),
            (_("Approved by"), str(campaign.approved_by or "—")),
            (_("Created"), _when(campaign.created_at)),
        ]
    context = {
        "content": content,
        "campaign": campaign,
        "details": details,
        "generated_by": generated_by,
        "generated_at": _when(generated_at),
        "figures": headline_figures(content.outcomes),
        "has_data": has_data,
        "volume_chart": _data_uri(charts.volume_chart_svg(content.volume)) if content.volume.buckets else "",
        "funnel_chart": _data_uri(charts.funnel_chart_svg(content.outcomes)) if has_data else "",
        "channel_chart": _data_uri(charts.channel_chart_svg(content.channels)) if content.channels else "",
        "legend": [(charts.series_labels()[name], colour) for name, colour in charts.SERIES],
        "outcome_headers": outcome_headers(),
        "run_headers": outcome_headers(rates=False),
        "channel_rows": [(row.label, outcome_cells(row.outcomes)) for row in content.channels],
        "run_rows": [
            (
                str(run_row.run.campaign),
                _short(run_row.run.occurrence),
                run_row.run.get_status_display(),
                outcome_cells(run_row.outcomes, rates=False),
            )
            for run_row in content.runs.rows
        ],
        "runs_shown": len(content.runs.rows),
        "runs_total": content.runs.total,
        "failure_reasons": [(reason.reason, _count(reason.count)) for reason in content.failure_reasons],
        "ab_tests": [
            {
                "due_at": _short(test.run.occurrence), "metric": test.metric_label, "note": test.verdict.note,
                "winner": test.run.winner, "chosen_at": _when(test.run.winner_chosen_at),
                "chosen_by": str(test.run.winner_chosen_by or ""),
                "rows": [(v.label, v.content, _count(v.outcomes.sent), _count(v.outcomes.opened),
                          _count(v.outcomes.clicked), v.open_rate, v.click_rate) for v in test.variants],
            }
            for test in content.ab_tests
        ],
    }
    return render_to_string(TEMPLATE, context)


def _fetcher():
    from weasyprint.urls import URLFetcher

    # Only the charts' data: URLs; a stray URL in user content cannot reach a file or the network.
    return URLFetcher(allowed_protocols={"data"}, fail_on_errors=False)


def report_pdf(
    *, content: ReportContent, generated_by: str, generated_at: datetime, target: str | Path | IO[bytes] | None = None
) -> bytes | None:
    """Render the report; returns the PDF bytes, or writes them to ``target`` (a path or a binary
    file) and returns None."""
    # Imported here: WeasyPrint parses its stylesheets on import, which web processes that never
    # render a PDF should not pay for at start-up.
    from weasyprint import HTML

    html = report_html(content=content, generated_by=generated_by, generated_at=generated_at)
    document = HTML(string=html, url_fetcher=_fetcher(), base_url=None)
    if target is not None:
        document.write_pdf(target=str(target) if isinstance(target, Path) else target)
        return None
    return document.write_pdf()
