"""Data retention (ops.retention): what goes, what stays, and that the analytics do not move."""

from __future__ import annotations

import re
from datetime import date, timedelta
from io import StringIO

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from channels_adapters.models import CapturedMessage
from dashboard.analytics import AnalyticsFilters, DayRange, analytics_figures, analytics_rollup_refresh, kpis_compare
from dashboard.analytics.rollups import analytics_rollup_tick
from dashboard.models import AnalyticsRollupState, DeliveryDailyStat, ImportJob, Report
from notifications.inbox.services import notification_mark_read
from notifications.models import AuditEntry, Campaign, CampaignRun, Delivery, DeliveryEvent, Notification, TrackedLink
from ops import retention
from ops.retention import retention_apply, retention_plan, retention_tick
from tests.dashboard.analytics_data import NOW, build_ledger
from tests.factories import DeliveryFactory, NotificationFactory, UserFactory

pytestmark = pytest.mark.django_db

FOREVER = {
    "SIGNALBOX_RETAIN_DELIVERIES_DAYS": "", "SIGNALBOX_RETAIN_OUTBOX_DAYS": "", "SIGNALBOX_RETAIN_IMPORTS_DAYS": "",
    "SIGNALBOX_RETAIN_REPORTS_DAYS": "", "SIGNALBOX_RETAIN_AUDIT_DAYS": "",
}


@pytest.fixture
def only(settings):
    """Keep every kind forever except the ones given: ``only(outbox=10)``."""

    def configure(**days):
        for name, value in FOREVER.items():
            setattr(settings, name, value)
        for kind, value in days.items():
            setattr(settings, f"SIGNALBOX_RETAIN_{kind.upper()}_DAYS", value)

    return configure


def aged(obj, moment):
    type(obj).objects.filter(pk=obj.pk).update(created_at=moment)
    return obj


# --- Each kind at its boundary -----------------------------------------------------------------


def test_outbox_and_audit_go_after_their_days_and_not_a_second_before(only):
    only(outbox=30, audit=730)
    now = timezone.now()
    old_copy = aged(CapturedMessage.objects.create(channel="email", address="a@example.com"), now - timedelta(days=30, seconds=1))
    young_copy = aged(CapturedMessage.objects.create(channel="email", address="b@example.com"), now - timedelta(days=30) + timedelta(seconds=5))
    old_entry = AuditEntry.objects.create(action="campaign.launch", created_at=now - timedelta(days=730, seconds=1))
    young_entry = AuditEntry.objects.create(action="campaign.launch", created_at=now - timedelta(days=729))

    result = retention_apply(now=now)

    assert {r.kind: r.deleted for r in result.kinds} == {"deliveries": 0, "outbox": 1, "imports": 0, "reports": 0, "audit": 1}
    assert list(CapturedMessage.objects.values_list("pk", flat=True)) == [young_copy.pk]
    assert not CapturedMessage.objects.filter(pk=old_copy.pk).exists()
    assert list(AuditEntry.objects.filter(action="campaign.launch").values_list("pk", flat=True)) == [young_entry.pk]
    assert old_entry.pk not in AuditEntry.objects.values_list("pk", flat=True)


def test_import_and_report_files_go_with_their_rows_unless_still_running(only, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    only(imports=30, reports=90)
    now = timezone.now()

    def job(name, status, age):
        row = ImportJob.objects.create(original_name=name, status=status)
        row.file.save(name, ContentFile(b"email\nana@example.com\n"))
        row.error_report.save(f"errors-{name}", ContentFile(b"row,reason\n"))
        return aged(row, now - age)

    def report(status, age):
        row = Report.objects.create(kind=Report.Kind.DELIVERIES, format=Report.Format.XLSX, status=status)
        row.file.save("deliveries.xlsx", ContentFile(b"PK"))
        return aged(row, now - age)

    old_job = job("old.csv", ImportJob.Status.COMPLETED, timedelta(days=31))
    running_job = job("running.csv", ImportJob.Status.RUNNING, timedelta(days=31))
    new_job = job("new.csv", ImportJob.Status.COMPLETED, timedelta(days=29))
    old_report = report(Report.Status.READY, timedelta(days=91))
    queued_report = report(Report.Status.QUEUED, timedelta(days=91))
    new_report = report(Report.Status.READY, timedelta(days=89))
    files = {row.pk: tmp_path / row.file.name for row in (old_job, running_job, new_job)}
    old_error_report = tmp_path / old_job.error_report.name
    report_files = {row.pk: tmp_path / row.file.name for row in (old_report, queued_report, new_report)}
    assert all(path.exists() for path in [*files.values(), *report_files.values(), old_error_report])

    result = retention_apply(now=now)

    by_kind = {r.kind: r for r in result.kinds}
    assert (by_kind["imports"].deleted, by_kind["imports"].files) == (1, 2)
    assert (by_kind["reports"].deleted, by_kind["reports"].files) == (1, 1)
    assert set(ImportJob.objects.values_list("pk", flat=True)) == {running_job.pk, new_job.pk}
    assert set(Report.objects.values_list("pk", flat=True)) == {queued_report.pk, new_report.pk}
    assert not files[old_job.pk].exists() and not old_error_report.exists()
    assert files[running_job.pk].exists() and files[new_job.pk].exists()
    assert not report_files[old_report.pk].exists()
    assert report_files[queued_report.pk].exists() and report_files[new_report.pk].exists()


def _rollups_through(day: date, now):
    analytics_rollup_refresh(since=None, until=day, now=now)
    assert AnalyticsRollupState.objects.get().covered_through == day


def test_deliveries_go_by_whole_days_once_older_than_the_period_and_covered_by_rollups(only):
    only(deliveries=10)
    now = timezone.now()
    today = timezone.localdate(now)
    last_old_day = today - timedelta(days=11)  # ended more than 10 days ago
    def at_day(day, hour):
        return timezone.make_aware(timezone.datetime.combine(day, timezone.datetime.min.time())) + timedelta(hours=hour)

    old = DeliveryFactory(status="delivered", created_at=at_day(last_old_day, 23))
    DeliveryEvent.objects.create(delivery=old, kind="delivered", source="test")
    TrackedLink.objects.create(delivery=old, url="https://example.com/", position=1)
    young = DeliveryFactory(status="delivered", created_at=at_day(last_old_day + timedelta(days=1), 0))
    _rollups_through(today - timedelta(days=1), now)

    assert retention_apply(now=now).kinds[0].deleted == 1

    assert list(Delivery.objects.values_list("pk", flat=True)) == [young.pk]
    assert not DeliveryEvent.objects.filter(delivery_id=old.pk).exists()
    assert not TrackedLink.objects.filter(delivery_id=old.pk).exists()
    assert AnalyticsRollupState.objects.get().frozen_through == last_old_day


def test_webhook_posts_go_like_deliveries_with_their_attempt_log(only):
    """Webhook posts are deliveries on the ledger: an old delivered one goes with its attempt log
    (a foreign key PostgreSQL checks at commit); one whose outcome is unknown stays."""
    from notifications.models import WebhookAttempt, WebhookEndpoint, WebhookMessage

    only(deliveries=10)
    now = timezone.now()
    old = now - timedelta(days=20)
    endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.com/", events=["campaign.finished"],
                                              secret="whsec_x")
    posts = [WebhookMessage.objects.create(
        idempotency_key=f"webhook:{endpoint.pk}:run:{n}", channel="webhook", webhook_endpoint=endpoint,
        address=f"run:{n}", provider_message_id=f"msg_{n}", status=status, created_at=old,
        content={"event_type": "campaign.finished", "payload": {}},
    ) for n, status in enumerate(["sent", "unknown"])]
    for post in posts:
        WebhookAttempt.objects.create(delivery=post, outcome=post.status, response_code=200)
    _rollups_through(timezone.localdate(now) - timedelta(days=1), now)

    assert retention_apply(now=now).kinds[0].deleted == 1

    assert list(WebhookMessage.objects.values_list("status", flat=True)) == ["unknown"]
    assert list(WebhookAttempt.objects.values_list("delivery_id", flat=True)) == [posts[1].pk]


def test_no_delivery_goes_from_a_day_the_rollups_do_not_cover(only):
    only(deliveries=10)
    now = timezone.now()
    old = DeliveryFactory(status="delivered", created_at=now - timedelta(days=40))
    older = DeliveryFactory(status="delivered", created_at=now - timedelta(days=50))

    assert retention_apply(now=now).deleted == 0  # no rollups at all
    [plan] = [p for p in retention_plan(now=now) if p.kind == "deliveries"]
    assert plan.before is None and "rollups" in plan.note

    _rollups_through(timezone.localdate(now - timedelta(days=45)), now)
    assert retention_apply(now=now).deleted == 1
    assert list(Delivery.objects.values_list("pk", flat=True)) == [old.pk]
    assert not Delivery.objects.filter(pk=older.pk).exists()


def test_unfinished_deliveries_runs_and_unread_inbox_rows_keep_their_deliveries(only):
    only(deliveries=10)
    now = timezone.now()
    long_ago = now - timedelta(days=60)
    kept = [DeliveryFactory(status=status, created_at=long_ago) for status in retention.DELIVERY_KEPT]
    ledger = build_ledger()  # a completed campaign run, re-used for an unfinished one below
    Delivery.objects.filter(pk__in=[d.pk for d in ledger.deliveries.values()]).delete()
    paused_run = CampaignRun.objects.create(
        campaign=ledger.campaign, occurrence=long_ago, status=CampaignRun.Status.PAUSED, started_at=long_ago
    )
    in_paused_run = DeliveryFactory(status="sent", run=paused_run, created_at=long_ago)
    unread = DeliveryFactory(status="sent", channel="inapp", created_at=long_ago)
    unread_row = NotificationFactory(recipient=unread.recipient, delivery=unread, created_at=long_ago)
    read = DeliveryFactory(status="read", channel="inapp", created_at=long_ago)
    read_row = NotificationFactory(recipient=read.recipient, delivery=read, created_at=long_ago, read_at=long_ago)
    gone = DeliveryFactory(status="failed", created_at=long_ago)
    _rollups_through(timezone.localdate(now) - timedelta(days=1), now)

    assert retention_apply(now=now).kinds[0].deleted == 2

    left = set(Delivery.objects.values_list("pk", flat=True))
    assert left == {*(d.pk for d in kept), in_paused_run.pk, unread.pk}
    assert gone.pk not in left and read.pk not in left
    # The recipient still sees both inbox rows; the read one lost only its ledger link.
    assert Notification.objects.get(pk=read_row.pk).delivery_id is None
    assert Notification.objects.get(pk=unread_row.pk).delivery_id == unread.pk
    # Reading the kept one later still records its receipt on the delivery.
    notification_mark_read(user=unread.recipient, notification_id=unread_row.pk)
    assert Delivery.objects.get(pk=unread.pk).status == Delivery.Status.READ


def test_a_delivery_retried_between_selection_and_delete_stays(only, monkeypatch):
    only(deliveries=10)
    now = timezone.now()
    failed = DeliveryFactory(status="failed", created_at=now - timedelta(days=60))
    _rollups_through(timezone.localdate(now) - timedelta(days=1), now)
    real = retention._delete_deliveries

    def retried_meanwhile(ids, **kwargs):
        Delivery.objects.filter(pk__in=ids).update(status=Delivery.Status.PLANNED)  # deliveries_retry_failed
        return real(ids, **kwargs)

    monkeypatch.setattr(retention, "_delete_deliveries", retried_meanwhile)
    assert retention_apply(now=now).deleted == 0
    assert Delivery.objects.filter(pk=failed.pk).exists()


# --- Dry run ---------------------------------------------------------------------------------


def test_dry_run_prints_what_would_go_and_changes_nothing(only):
    only(deliveries=10, outbox=30)
    now = timezone.now()
    for days in (40, 41):
        DeliveryFactory(status="delivered", created_at=now - timedelta(days=days))
    aged(CapturedMessage.objects.create(channel="sms", address="+14155550123"), now - timedelta(days=31))
    _rollups_through(timezone.localdate(now) - timedelta(days=1), now)
    before = (Delivery.objects.count(), DeliveryEvent.objects.count(), CapturedMessage.objects.count())

    out = StringIO()
    call_command("signalbox_retention", "--dry-run", stdout=out)

    text = out.getvalue()
    assert re.search(r"deliveries: kept 10 days; 2 to delete .*created \d{4}-\d\d-\d\d \.\. \d{4}-\d\d-\d\d", text)
    assert "outbox: kept 30 days; 1 to delete" in text
    assert "audit: kept forever; nothing to delete" in text
    assert "Dry run: nothing was deleted." in text
    assert (Delivery.objects.count(), DeliveryEvent.objects.count(), CapturedMessage.objects.count()) == before
    assert AnalyticsRollupState.objects.get().frozen_through is None

    out = StringIO()
    call_command("signalbox_retention", stdout=out)
    assert "deliveries: deleted 2 row(s)" in out.getvalue()
    assert Delivery.objects.count() == 0 and CapturedMessage.objects.count() == 0


def test_bad_settings_are_a_clear_error(only):
    from django.core.exceptions import ImproperlyConfigured

    only(outbox="a month")
    with pytest.raises(ImproperlyConfigured, match="SIGNALBOX_RETAIN_OUTBOX_DAYS must be a whole number"):
        retention_plan()


# --- Analytics after a purge ----------------------------------------------------------------


def _all_figures():
    """Every analytics reading of the hand-made ledger's fortnight (figures, per campaign, KPIs)."""
    fortnight = DayRange(date(2026, 2, 26), date(2026, 3, 11))
    readings = []
    ledger_campaign = Campaign.objects.get(name="Spring sale").pk
    for filters in (
        AnalyticsFilters(days=fortnight),
        AnalyticsFilters(days=DayRange(date(2026, 3, 9), date(2026, 3, 9)), channel="inapp"),
        AnalyticsFilters(days=fortnight, campaign_id=ledger_campaign),
    ):
        figures = analytics_figures(filters=filters, now=NOW)
        readings.append((
            figures.totals.as_dict(), {d: c.as_dict() for d, c in figures.by_day.items()},
            {k: c.as_dict() for k, c in figures.by_channel.items()}, {k: c.as_dict() for k, c in figures.by_campaign.items()},
            {k: c.as_dict() for k, c in figures.by_run.items()}, figures.opens.cells,
        ))
    kpis = kpis_compare(days=7, now=NOW)
    readings.append([(k.key, k.value, k.previous) for k in kpis.kpis])
    return readings


def test_analytics_are_identical_before_and_after_the_purge_and_stay_so(only):
    only(deliveries=1)  # NOW is 11 March: the days up to 9 March may go
    ledger = build_ledger()
    analytics_rollup_refresh(since=None, now=NOW)
    before = _all_figures()

    result = retention_apply(now=NOW)

    # Monday's campaign and inbox row, and the week before; not "b", opened on Tuesday (a day the
    # hour-of-day rollup may still rebuild), nor today's.
    assert result.kinds[0].deleted == 8
    left = {"analytics:b", "analytics:h", "analytics:i", "analytics:j"}
    assert set(Delivery.objects.values_list("idempotency_key", flat=True)) == left
    assert _all_figures() == before
    # A later refresh, even a full rebuild, never recomputes a purged day from what is left.
    analytics_rollup_tick(now=NOW + timedelta(days=1), force=True)
    analytics_rollup_refresh(since=None, now=NOW)
    assert _all_figures() == before
    assert DeliveryDailyStat.objects.filter(day=date(2026, 3, 9), campaign_id=ledger.campaign.pk).exists()


def test_a_late_receipt_on_a_kept_delivery_leaves_the_frozen_day_alone(only):
    only(deliveries=1)
    build_ledger()
    waiting = Delivery.objects.create(
        idempotency_key="late", channel="email", status="unknown", created_at=NOW - timedelta(days=3)
    )
    analytics_rollup_refresh(since=None, now=NOW)
    before = _all_figures()
    retention_apply(now=NOW)
    assert Delivery.objects.filter(pk=waiting.pk).exists()  # unknown outcomes stay

    DeliveryEvent.objects.create(delivery=waiting, kind="delivered", source="test", occurred_at=NOW)
    Delivery.objects.filter(pk=waiting.pk).update(status="delivered", delivered_at=NOW)
    analytics_rollup_tick(now=NOW + timedelta(hours=1), force=True)

    assert _all_figures() == before


# --- Batches -----------------------------------------------------------------------------------


def test_each_batch_is_one_short_transaction_of_bounded_deletes(only):
    only(deliveries=10, audit=30)
    now = timezone.now()
    user = UserFactory()
    for n in range(5):
        delivery = DeliveryFactory(recipient=user, status="delivered", created_at=now - timedelta(days=40, minutes=n))
        DeliveryEvent.objects.bulk_create(
            [DeliveryEvent(delivery=delivery, kind=k, source="test") for k in ("sent", "delivered")]
        )
        AuditEntry.objects.create(action="x", created_at=now - timedelta(days=40, minutes=n))
    _rollups_through(timezone.localdate(now) - timedelta(days=1), now)

    with CaptureQueriesContext(connection) as queries:
        result = retention_apply(now=now, batch=2)

    assert [(r.kind, r.deleted, r.batches) for r in result.kinds if r.deleted] == [("deliveries", 5, 3), ("audit", 5, 3)]
    deletes = [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith("DELETE")]
    delivery_table = Delivery._meta.db_table
    on_deliveries = [sql for sql in deletes if re.match(rf'DELETE FROM "?{delivery_table}"? ', sql)]
    on_audit = [sql for sql in deletes if AuditEntry._meta.db_table in sql.split("WHERE")[0]]
    assert len(on_deliveries) == 3 and len(on_audit) == 3
    for sql in on_deliveries + on_audit:  # at most two ids per statement
        ids = re.search(r"IN \(([^)]*)\)", sql).group(1)
        assert 1 <= len(ids.split(",")) <= 2
    assert all(r.longest_ms >= 0 for r in result.kinds)


def test_a_round_stops_when_its_time_is_up_and_the_next_tick_goes_on(only, settings):
    only(audit=30)
    settings.SIGNALBOX_RETENTION_INTERVAL_SECONDS = 3600
    now = timezone.now()
    AuditEntry.objects.bulk_create([AuditEntry(action="x", created_at=now - timedelta(days=40)) for _ in range(3)])

    stopped = retention_apply(now=now, budget=timedelta(0))
    assert not stopped.finished and stopped.deleted == 0

    retention._last_round.clear()
    assert retention_tick() == ["retention: deleted 3 audit"]
    AuditEntry.objects.create(action="x", created_at=now - timedelta(days=40))
    assert retention_tick() == []  # finished: not due again before the interval
    assert retention_tick(once=True) == ["retention: deleted 1 audit"]


def test_the_scheduler_runs_retention_after_the_rollups():
    from notifications.scheduling import ticks

    names = [tick.name for tick in ticks()]
    assert names.index("analytics") < names.index("retention")
