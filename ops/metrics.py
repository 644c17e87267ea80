"""``/metrics`` for Prometheus: who may scrape it, and the collector that reads the database.

The collector reads every figure from the database at scrape time (``ops.figures``), so any web
process answers for the whole deployment: several uvicorn workers and RQ workers need no
``prometheus_client`` multiprocess mode, and a restart resets nothing (counters live in
``ops.Counter``). Per-process metrics (memory, CPU of the answering process) are left out: with
several processes behind one address they would describe whichever one answered.

The metric names are a contract (dashboards and alerts use them); README "Deploying" lists them.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from datetime import datetime
from ipaddress import ip_address

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from . import conf
from .figures import SystemFigures, system_figures
from .models import Heartbeat


def metrics_access_refusal(request) -> str:
    """Why ``request`` may not read ``/metrics`` ("" when it may).

    Allowed with ``Authorization: Bearer <SIGNALBOX_METRICS_TOKEN>`` (compared in constant time),
    or from an address in ``SIGNALBOX_METRICS_ALLOWED_IPS``; the address is resolved as for sign-in
    lockouts (``accounts.lockout.client_ip_address``: ``SIGNALBOX_TRUSTED_PROXY_COUNT`` decides
    whether ``X-Forwarded-For`` is believed). With neither configured, nobody may.
    """
    from accounts.lockout import client_ip_address

    settings = conf.metrics()
    if not settings.token and not settings.allowed_networks:
        return "metrics are off: set SIGNALBOX_METRICS_TOKEN or SIGNALBOX_METRICS_ALLOWED_IPS"
    scheme, _, given = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    given = given.strip()
    if settings.token and scheme.lower() == "bearer" and given:
        if hmac.compare_digest(given.encode(), settings.token.encode()):
            return ""
    address = client_ip_address(request)
    if address and settings.allowed_networks:
        client = ip_address(address)
        if any(client in network for network in settings.allowed_networks):
            return ""
    if given and scheme.lower() == "bearer":
        return "wrong bearer token"
    if settings.token and not settings.allowed_networks:
        return "a bearer token is required"
    return f"client address {address or 'unknown'} is not allowed"


class LedgerCollector(Collector):
    """Turns one ``system_figures`` read into Prometheus metric families."""

    def __init__(self, *, now: datetime, channels: list[str], delivery_statuses: list[str]) -> None:
        self.now = now
        self.channels = channels
        self.delivery_statuses = delivery_statuses

    def collect(self) -> Iterator[Metric]:
        figures = system_figures(now=self.now)
        yield from self._deliveries(figures)
        yield GaugeMetricFamily(
            "signalbox_unknown_outcomes",
            "Deliveries in status unknown: the provider may or may not have them; never re-sent automatically.",
            value=figures.unknown_outcomes,
        )
        yield GaugeMetricFamily(
            "signalbox_queue_depth",
            "Deliveries due now (planned or retrying, next attempt reached) that no worker has claimed yet.",
            value=figures.queue_depth,
        )
        yield GaugeMetricFamily(
            "signalbox_oldest_due_delivery_age_seconds",
            "How long the oldest due, unclaimed delivery has been due (0 when none is).",
            value=figures.oldest_due_age_seconds,
        )
        yield _by_label(
            "signalbox_lease_sweeps",
            "Deliveries the lease sweep settled after their worker stopped mid-batch, by outcome: requeued "
            "(never left), resent (in flight, at-least-once), unknown (in flight, now outcome unknown).",
            figures.lease_sweeps, label="outcome", values=("requeued", "resent", "unknown"), family=CounterMetricFamily,
        )
        window = int(figures.window.total_seconds())
        errors = GaugeMetricFamily(
            "signalbox_provider_errors",
            f"Sends that failed in the last {window} s (the provider refused, or transient errors ran out of "
            f"retries), by channel; retries still pending are signalbox_deliveries{{status=\"deferred\"}}.",
            labels=["channel"],
        )
        for channel in self._channels(figures.provider_errors):
            errors.add_metric([channel], figures.provider_errors.get(channel, 0))
        yield errors
        reports = GaugeMetricFamily(
            "signalbox_provider_failure_reports",
            f"Failures a provider reported later through its webhook in the last {window} s, by source.",
            labels=["source"],
        )
        for source, n in sorted(figures.failure_reports.items()):
            reports.add_metric([source], n)
        yield reports
        latency = HistogramMetricFamily(
            "signalbox_send_latency_seconds",
            f"Seconds from a delivery's ledger row (queued) to the provider's acceptance (sent), including "
            f"retries and scheduled waits, over the latest {figures.latency_sample} deliveries sent in the last "
            f"{window} s, by channel. Recomputed at each scrape: a window, not a running total.",
            labels=["channel"],
        )
        for channel in self._channels(figures.latency):
            histogram = figures.latency.get(channel)
            buckets = [(_bound(b), n) for b, n in histogram.buckets] if histogram else []
            count = histogram.count if histogram else 0
            latency.add_metric(
                [channel], buckets=[*buckets, ("+Inf", count)], sum_value=histogram.total_seconds if histogram else 0
            )
        yield latency
        yield from self._webhooks(figures)
        yield _by_status("signalbox_import_jobs", "CSV user imports by status.", figures.import_jobs)
        yield _by_status("signalbox_report_jobs", "Generated reports and exports by status.", figures.report_jobs)
        ages = GaugeMetricFamily(
            "signalbox_heartbeat_age_seconds",
            "Seconds since the worker (a task was run) or the scheduler (a tick completed) last proved it works; "
            "absent until the first heartbeat.",
            labels=["process"],
        )
        limits = conf.heartbeats()
        maximum = GaugeMetricFamily(
            "signalbox_heartbeat_max_age_seconds", "The age past which /readyz reports the process not ready.",
            labels=["process"],
        )
        for name, limit in ((Heartbeat.WORKER, limits.worker_max_age), (Heartbeat.SCHEDULER, limits.scheduler_max_age)):
            age = figures.heartbeat_age_seconds(name)
            if age is not None:
                ages.add_metric([name], age)
            maximum.add_metric([name], limit.total_seconds())
        yield ages
        yield maximum

    def _deliveries(self, figures: SystemFigures) -> Iterator[Metric]:
        deliveries = GaugeMetricFamily(
            "signalbox_deliveries",
            "Ledger rows by channel and status, as the scheduler last counted them "
            "(see signalbox_deliveries_count_age_seconds); absent until the first count.",
            labels=["channel", "status"],
        )
        if figures.deliveries_counted_at is not None:
            channels = self._channels({channel for channel, _ in figures.deliveries})
            statuses = list(dict.fromkeys([*self.delivery_statuses, *(s for _, s in figures.deliveries)]))
            for channel in channels:
                for status in statuses:
                    deliveries.add_metric([channel, status], figures.deliveries.get((channel, status), 0))
        yield deliveries
        age = figures.deliveries_count_age_seconds
        if age is not None:
            yield GaugeMetricFamily(
                "signalbox_deliveries_count_age_seconds",
                "Seconds since the scheduler last counted signalbox_deliveries.",
                value=age,
            )

    def _webhooks(self, figures: SystemFigures) -> Iterator[Metric]:
        webhooks = figures.webhooks
        yield GaugeMetricFamily(
            "signalbox_webhook_queue_depth",
            "Outbound webhook messages of enabled endpoints due now (a first POST or a retry) that no drain has "
            "claimed yet; a disabled endpoint's waiting messages are in signalbox_webhook_endpoints{state=\"disabled\"}.",
            value=webhooks.queue_depth,
        )
        yield GaugeMetricFamily(
            "signalbox_webhook_oldest_due_age_seconds",
            "How long the oldest due, unclaimed webhook message has been due (0 when none is).",
            value=figures.webhook_oldest_due_age_seconds,
        )
        yield GaugeMetricFamily(
            "signalbox_webhook_unknown_outcomes",
            "Webhook messages whose last POST got no answer and that have no retry left: the receiver may or "
            "may not have them.",
            value=webhooks.unknown_outcomes,
        )
        yield _by_label(
            "signalbox_webhook_endpoints",
            "Webhook endpoints by state: enabled, failing (enabled, its posts failing since a time), disabled "
            "(by staff, or after repeated failures).",
            webhooks.endpoints, label="state", values=("enabled", "failing", "disabled"),
        )

    def _channels(self, present) -> list[str]:
        """The configured channels, then any other one the data names (a channel since removed)."""
        return list(dict.fromkeys([*self.channels, *present]))


def _bound(value: float) -> str:
    return repr(float(value))


def _by_label(name: str, documentation: str, counts: dict[str, int], *, label: str, values=None,
              family=GaugeMetricFamily) -> Metric:
    """One sample per ``label`` value: each of ``values`` (zeros included) in that order, or
    every value ``counts`` holds, sorted."""
    metric = family(name, documentation, labels=[label])
    for value in values if values is not None else sorted(counts):
        metric.add_metric([value], counts.get(value, 0))
    return metric


def _by_status(name: str, documentation: str, counts: dict[str, int]) -> Metric:
    return _by_label(name, documentation, counts, label="status")


def metrics_exposition(*, now: datetime) -> bytes:
    """The text exposition of every Signalbox metric, read now."""
    from prometheus_client import CollectorRegistry, generate_latest

    from channels_adapters.handler import channels
    from notifications.models import Delivery

    registry = CollectorRegistry(auto_describe=False)
    registry.register(
        LedgerCollector(now=now, channels=list(channels.settings), delivery_statuses=list(Delivery.Status.values))
    )
    return generate_latest(registry)
