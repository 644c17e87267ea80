"""The figures ``/metrics`` and the staff "System status" page show: one read for both.

Each query is cheap at a million deliveries, because each reads an index range that grows with
the backlog or the recent window, never with the ledger (README "Deploying", "Metrics"):

* unknown outcomes: ``delivery_due_idx`` (status, next_attempt_at), status = unknown only;
* queue depth and the oldest due delivery: the same index, the due rows only;
* send latency: ``deliveryevent_occurred_idx`` (occurred_at, kind) backwards over the window, each
  delivery by primary key, the latest ``latency_sample`` sends at most;
* provider errors: the same index over the window's failed receipts, grouped by their source;
* deliveries by channel and status: the scheduler's last count (``ops.LedgerCount``), since a
  count of the whole table costs about a second at that size;
* import and report jobs, heartbeats, counters: small tables;
* outbound webhooks: ``delivery_webhook_status_idx`` (the posts waiting or unknown) and the endpoints.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Count, Min
from django.db.models.functions import Coalesce

from . import conf
from .models import Counter, Heartbeat, LedgerCount

# Upper bounds (seconds) of the send latency histogram's buckets; +Inf is implied.
LATENCY_BUCKETS = (0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0)


@dataclass(frozen=True)
class LatencyHistogram:
    """Queued → sent seconds of one channel's recent sends: cumulative counts per bucket bound."""

    buckets: tuple[tuple[float, int], ...]  # (upper bound, sends at or under it), ascending
    count: int
    total_seconds: float

    def quantile_bound(self, q: float) -> float | None:
        """The smallest bucket bound at or under which at least ``q`` of the sends fall (None: above all)."""
        for bound, cumulative in self.buckets:
            if self.count and cumulative >= q * self.count:
                return bound
        return None


@dataclass(frozen=True)
class WebhookFigures:
    """The outbound webhooks' outbox, described as ``SystemFigures`` describes the deliveries."""

    queue_depth: int  # messages of enabled endpoints due now (first POST or a retry), unclaimed
    oldest_due_at: datetime | None
    unknown_outcomes: int  # last POST unanswered and no retry left: the receiver may have it or not
    endpoints: dict[str, int]  # "enabled" (healthy), "failing" (enabled, failing since), "disabled" -> count


@dataclass(frozen=True)
class SystemFigures:
    now: datetime
    window: timedelta
    latency_sample: int
    deliveries: dict[tuple[str, str], int]  # (channel, status) -> rows, at ``deliveries_counted_at``
    deliveries_counted_at: datetime | None  # None: the scheduler has not counted yet
    unknown_outcomes: int
    queue_depth: int
    oldest_due_at: datetime | None  # None: nothing is due
    lease_sweeps: dict[str, int]  # outcome -> deliveries the lease sweep settled so, ever
    # Failed receipts within the window: written by the send path (source = the channel: the
    # provider refused, or retries ran out) ...
    provider_errors: dict[str, int]
    failure_reports: dict[str, int]  # ... or reported later by a provider's webhook (source: twilio, anymail)
    latency: dict[str, LatencyHistogram]  # channel -> histogram of the window's latest sends
    import_jobs: dict[str, int]  # status -> jobs
    report_jobs: dict[str, int]  # status -> jobs
    webhooks: WebhookFigures
    heartbeats: dict[str, datetime | None] = field(default_factory=dict)  # name -> beat_at

    @property
    def oldest_due_age_seconds(self) -> float:
        return _age(self.now, self.oldest_due_at)

    @property
    def webhook_oldest_due_age_seconds(self) -> float:
        return _age(self.now, self.webhooks.oldest_due_at)

    def heartbeat_age_seconds(self, name: str) -> float | None:
        beat_at = self.heartbeats.get(name)
        return None if beat_at is None else _age(self.now, beat_at)

    @property
    def deliveries_count_age_seconds(self) -> float | None:
        return self.heartbeat_age_seconds(Heartbeat.LEDGER_COUNT)


def _age(now: datetime, since: datetime | None) -> float:
    return 0.0 if since is None else max(0.0, (now - since).total_seconds())


def _webhooks(*, now: datetime) -> WebhookFigures:
    """Two queries: the webhook posts still owed or unknown (``delivery_webhook_status_idx``, a
    range per status, never the delivered history) and the endpoints by state."""
    from django.db.models import Q

    from notifications.models import WebhookEndpoint, WebhookMessage
    from notifications.models.webhooks import OWED

    Status = WebhookMessage.Status
    # What the drains owe: a disabled endpoint's messages wait for it to be enabled again and are
    # counted as that endpoint (``endpoints["disabled"]``), not as a backlog that keeps ageing.
    due = Q(next_attempt_at__lte=now, webhook_endpoint__enabled=True, status__in=OWED)
    # ``webhook_endpoint`` not null: the predicate of the partial index this reads.
    open_ = WebhookMessage.objects.filter(webhook_endpoint__isnull=False, status__in=[*OWED, Status.UNKNOWN]).aggregate(
        due=Count("id", filter=due),
        oldest=Min("next_attempt_at", filter=due),
        unknown=Count("id", filter=Q(status=Status.UNKNOWN)),
    )
    endpoints = WebhookEndpoint.objects.aggregate(
        healthy=Count("id", filter=Q(enabled=True, failing_since__isnull=True)),
        failing=Count("id", filter=Q(enabled=True, failing_since__isnull=False)),
        off=Count("id", filter=Q(enabled=False)),
    )
    return WebhookFigures(
        queue_depth=open_["due"], oldest_due_at=open_["oldest"], unknown_outcomes=open_["unknown"],
        endpoints={"enabled": endpoints["healthy"], "failing": endpoints["failing"], "disabled": endpoints["off"]},
    )


def _latency(*, since: datetime, sample: int) -> dict[str, LatencyHistogram]:
    """The latest ``sample`` deliveries the providers accepted since ``since``, bucketed by channel.

    One query walking ``deliveryevent_occurred_idx`` backwards, each delivery joined by primary key
    under the LIMIT; the buckets are filled here. (Aggregating in SQL over ``pk IN (subquery)``
    let PostgreSQL pick a scan of the whole ledger: 1.4 s at a million rows.)
    """
    from notifications.models import DeliveryEvent

    rows = (
        DeliveryEvent.objects.filter(occurred_at__gte=since, kind=DeliveryEvent.Kind.SENT, delivery__sent_at__isnull=False)
        .order_by("-occurred_at")
        .values_list("delivery__channel", "delivery__created_at", "delivery__sent_at")[:sample]
    )
    seconds_by_channel: dict[str, list[float]] = defaultdict(list)
    for channel, created_at, sent_at in rows:
        seconds_by_channel[channel].append(max(0.0, (sent_at - created_at).total_seconds()))
    return {
        channel: LatencyHistogram(
            buckets=tuple((bound, sum(1 for s in seconds if s <= bound)) for bound in LATENCY_BUCKETS),
            count=len(seconds),
            total_seconds=sum(seconds),
        )
        for channel, seconds in seconds_by_channel.items()
    }


def system_figures(*, now: datetime) -> SystemFigures:
    """Everything ``/metrics`` exports, in eleven queries whatever the ledger's size."""
    from channels_adapters.handler import channels
    from dashboard.models import ImportJob, Report
    from notifications.ledger.outcomes import group_q
    from notifications.models import Delivery, DeliveryEvent

    settings = conf.metrics()
    since = now - settings.window
    channel_aliases = set(channels.settings)
    heartbeats = dict(Heartbeat.objects.values_list("name", "beat_at"))
    counted_at = heartbeats.get(Heartbeat.LEDGER_COUNT)
    deliveries = {
        (channel, status): n for channel, status, n in LedgerCount.objects.values_list("channel", "status", "deliveries")
    }
    due = Delivery.objects.due(now).aggregate(
        n=Count("id"), oldest=Min(Coalesce("next_attempt_at", "created_at"))
    )
    # The "Outcome unknown" group of notifications.ledger.outcomes (the analytics' figure too).
    unknown = Delivery.objects.to_people().filter(group_q("unknown")).count()  # webhook posts: their own series
    sweeps = {
        name.removeprefix(Counter.LEASE_SWEEPS_PREFIX): value
        for name, value in Counter.objects.filter(name__startswith=Counter.LEASE_SWEEPS_PREFIX).values_list(
            "name", "value"
        )
    }
    # By source, not joined to the deliveries: one range of deliveryevent_occurred_idx, however
    # many failed in the window (an outage can fail tens of thousands in minutes).
    failures = dict(
        DeliveryEvent.objects.filter(occurred_at__gte=since, kind=DeliveryEvent.Kind.FAILED)
        .order_by()
        .values("source")
        .annotate(n=Count("id"))
        .values_list("source", "n")
    )

    def by_status(model) -> dict[str, int]:
        return dict(model.objects.order_by().values("status").annotate(n=Count("id")).values_list("status", "n"))

    return SystemFigures(
        now=now,
        window=settings.window,
        latency_sample=settings.latency_sample,
        deliveries=deliveries if counted_at else {},
        deliveries_counted_at=counted_at,
        unknown_outcomes=unknown,
        queue_depth=due["n"],
        oldest_due_at=due["oldest"],
        lease_sweeps=sweeps,
        provider_errors={source: n for source, n in failures.items() if source in channel_aliases},
        failure_reports={source: n for source, n in failures.items() if source not in channel_aliases},
        latency=_latency(since=since, sample=settings.latency_sample),
        import_jobs=by_status(ImportJob),
        report_jobs=by_status(Report),
        heartbeats=heartbeats,
        webhooks=_webhooks(now=now),
    )
