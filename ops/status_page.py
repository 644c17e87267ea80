"""The staff "System status" page's context: ``/readyz``'s checks and ``/metrics``' figures as tables.

Presentation only: every figure comes from ``ops.selectors.readiness`` and ``ops.figures``.
"""

from __future__ import annotations

from datetime import datetime

from django.utils.translation import gettext as _

from .figures import SystemFigures, system_figures
from .selectors import readiness


def seconds_label(seconds: float | None) -> str:
    """A duration as staff read it: "42 s", "7 min", "3.5 h", "2 d"; "—" when unknown."""
    if seconds is None:
        return "—"
    if seconds < 120:
        return _("%(n)s s") % {"n": f"{seconds:.0f}" if seconds >= 10 else f"{seconds:.1f}"}
    if seconds < 2 * 3600:
        return _("%(n)s min") % {"n": f"{seconds / 60:.0f}"}
    if seconds < 2 * 86400:
        return _("%(n)s h") % {"n": f"{seconds / 3600:.1f}"}
    return _("%(n)s d") % {"n": f"{seconds / 86400:.1f}"}


def _check_rows(now: datetime) -> list[dict]:
    names = {"database": _("Database"), "redis": _("Redis"), "worker": _("Task worker"), "scheduler": _("Scheduler")}
    return [
        {
            "name": check.name,
            "label": names.get(check.name, check.name),
            "ok": check.ok,
            "age": seconds_label(check.age_seconds) if check.max_age_seconds is not None else "",
            "max_age": seconds_label(check.max_age_seconds) if check.max_age_seconds is not None else "",
            "latency": _("%(ms)s ms") % {"ms": check.latency_ms} if check.latency_ms is not None else "",
            "error": check.error,
        }
        for check in readiness(now=now).checks
    ]


def _delivery_table(figures: SystemFigures, channel_labels: dict, status_labels: dict) -> dict:
    """Statuses down, channels across, with totals; only channels and statuses the ledger holds."""
    channels = [c for c in channel_labels if any(ch == c for ch, _ in figures.deliveries)]
    channels += sorted({ch for ch, _ in figures.deliveries} - set(channels))
    statuses = [s for s in status_labels if any(st == s for _, st in figures.deliveries)]
    statuses += sorted({st for _, st in figures.deliveries} - set(statuses))
    rows = [
        {
            "status": status,
            "label": status_labels.get(status, status),
            "cells": [figures.deliveries.get((channel, status), 0) for channel in channels],
            "total": sum(figures.deliveries.get((channel, status), 0) for channel in channels),
        }
        for status in statuses
    ]
    return {
        "columns": [{"channel": c, "label": channel_labels.get(c, c)} for c in channels],
        "rows": rows,
        "totals": [sum(row["cells"][i] for row in rows) for i in range(len(channels))],
        "total": sum(row["total"] for row in rows),
    }


def status_context(*, now: datetime) -> dict:
    from dashboard.models import ImportJob, Report
    from notifications.models import Channel, Delivery
    from notifications.querysets import WEBHOOK_CHANNEL

    figures = system_figures(now=now)
    # The ledger also holds the outbound webhook posts (to integrators' endpoints, not people).
    channel_labels = {**dict(Channel.choices), WEBHOOK_CHANNEL: _("Webhook posts")}
    latency = [
        {
            "channel": channel,
            "label": channel_labels.get(channel, channel),
            "count": histogram.count,
            "mean": seconds_label(histogram.total_seconds / histogram.count) if histogram.count else "—",
            "p50": seconds_label(histogram.quantile_bound(0.5)) if histogram.quantile_bound(0.5) else _("over a day"),
            "p95": seconds_label(histogram.quantile_bound(0.95)) if histogram.quantile_bound(0.95) else _("over a day"),
        }
        for channel, histogram in sorted(figures.latency.items())
    ]
    import_labels, report_labels = dict(ImportJob.Status.choices), dict(Report.Status.choices)
    return {
        "checks": _check_rows(now),
        "figures": figures,
        "window": seconds_label(figures.window.total_seconds()),
        "oldest_due_age": seconds_label(figures.oldest_due_age_seconds) if figures.oldest_due_at else "—",
        "count_age": seconds_label(figures.deliveries_count_age_seconds),
        "webhook_oldest_due_age": (
            seconds_label(figures.webhook_oldest_due_age_seconds) if figures.webhooks.oldest_due_at else "—"
        ),
        "webhook_endpoints": [
            ("enabled", _("Enabled"), figures.webhooks.endpoints.get("enabled", 0)),
            ("failing", _("Failing (still enabled)"), figures.webhooks.endpoints.get("failing", 0)),
            ("disabled", _("Disabled"), figures.webhooks.endpoints.get("disabled", 0)),
        ],
        "deliveries": _delivery_table(figures, channel_labels, dict(Delivery.Status.choices)),
        "sweeps": [
            ("requeued", _("Put back in line (had not left)"), figures.lease_sweeps.get("requeued", 0)),
            ("resent", _("Sent again (at least once)"), figures.lease_sweeps.get("resent", 0)),
            ("unknown", _("Outcome unknown"), figures.lease_sweeps.get("unknown", 0)),
        ],
        "provider_errors": [
            {"channel": c, "label": channel_labels.get(c, c), "count": n}
            for c, n in sorted(figures.provider_errors.items())
        ] + [
            {"channel": source, "label": _("Reported by %(source)s") % {"source": source}, "count": n}
            for source, n in sorted(figures.failure_reports.items())
        ],
        "latency": latency,
        "import_jobs": [(s, import_labels.get(s, s), n) for s, n in sorted(figures.import_jobs.items())],
        "report_jobs": [(s, report_labels.get(s, s), n) for s, n in sorted(figures.report_jobs.items())],
    }
