"""Analytics figures from a hand-made ledger: live, from the rollups, and both merged."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from dashboard.analytics import (
    NO_CAMPAIGN,
    AnalyticsFilters,
    DayRange,
    analytics_figures,
    analytics_rollup_refresh,
    analytics_rollup_tick,
    kpis_compare,
)
from dashboard.models import AnalyticsRollupState, DeliveryDailyStat, OpenHourStat
from notifications.models import DeliveryEvent
from tests.dashboard.analytics_data import EXPECTED, EXPECTED_OPENS, NOW, build_ledger

pytestmark = pytest.mark.django_db

WEEK = DayRange(date(2026, 3, 5), date(2026, 3, 11))


@pytest.fixture
def ledger():
    return build_ledger()


@pytest.fixture(params=["live", "rollups"])
def source(request, ledger):
    """Every figure must be the same whether computed from the ledger or from the rollups."""
    if request.param == "rollups":
        result = analytics_rollup_refresh(since=None, now=NOW)
        assert result.covered_through == date(2026, 3, 10)
    return request.param


def opens_of(figures) -> dict[tuple[int, int], int]:
    return {(wd, h): n for wd, row in enumerate(figures.opens.cells) for h, n in enumerate(row) if n}


def test_totals_funnel_and_status_partition(ledger, source):
    figures = analytics_figures(filters=AnalyticsFilters(days=WEEK), now=NOW)
    assert figures.totals.as_dict() == EXPECTED
    partition = sum(v for k, v in figures.totals.as_dict().items() if k.startswith("status_"))
    assert partition == figures.totals.total
    t = figures.totals
    assert t.total >= t.reached_sent >= t.reached_delivered >= t.reached_opened >= t.reached_clicked


def test_by_day_channel_campaign_and_run(ledger, source):
    figures = analytics_figures(filters=AnalyticsFilters(days=WEEK), now=NOW)
    assert list(figures.by_day) == list(WEEK)
    assert {day.day: c.total for day, c in figures.by_day.items() if c.total} == {9: 7, 11: 3}
    assert figures.by_day[date(2026, 3, 9)].status_failed == 1  # the bounce
    assert {ch: c.total for ch, c in figures.by_channel.items()} == {"email": 6, "sms": 3, "inapp": 1}
    assert list(figures.by_channel) == ["email", "sms", "inapp"]  # biggest first
    assert {k: c.total for k, c in figures.by_campaign.items()} == {ledger.campaign.pk: 6, NO_CAMPAIGN: 4}
    assert figures.by_run[ledger.run.pk].reached_opened == 2
    assert figures.by_run[ledger.run.pk].unsubscribed == 1


def test_opens_by_weekday_and_hour_ignore_machine_opens(ledger, source):
    figures = analytics_figures(filters=AnalyticsFilters(days=WEEK), now=NOW)
    assert opens_of(figures) == EXPECTED_OPENS
    assert figures.opens.total == 4


@pytest.mark.parametrize(
    "narrow, total, opens",
    [
        ({"channel": "sms"}, 3, {}),
        ({"channel": "inapp"}, 1, {(0, 20): 1}),
        ({"category": "orders"}, 4, {(0, 20): 1}),
        ({"campaign": True}, 6, {(0, 18): 1, (1, 8): 2}),
        ({"campaign": True, "channel": "sms"}, 0, {}),
    ],
)
def test_filters(ledger, source, narrow, total, opens):
    filters = AnalyticsFilters(
        days=WEEK,
        channel=narrow.get("channel"),
        category_id=ledger.orders.pk if narrow.get("category") else None,
        campaign_id=ledger.campaign.pk if narrow.get("campaign") else None,
    )
    figures = analytics_figures(filters=filters, now=NOW)
    assert figures.totals.total == total
    assert opens_of(figures) == opens


def test_date_range_is_inclusive_and_outside_days_are_left_out(ledger, source):
    monday = analytics_figures(filters=AnalyticsFilters(days=DayRange(date(2026, 3, 9), date(2026, 3, 9))), now=NOW)
    assert monday.totals.total == 7
    assert opens_of(monday) == {(0, 18): 1, (0, 20): 1}  # Tuesday's opens happened outside the range
    earlier = analytics_figures(filters=AnalyticsFilters(days=DayRange(date(2026, 3, 1), date(2026, 3, 4))), now=NOW)
    assert earlier.totals.total == 2 and earlier.totals.status_failed == 1


def test_days_follow_the_site_time_zone(ledger, settings):
    # 20:00 UTC on Monday is 04:00 on Tuesday in Shanghai; 09:00 UTC is 17:00 the same day.
    settings.TIME_ZONE = "Asia/Shanghai"
    figures = analytics_figures(filters=AnalyticsFilters(days=WEEK), now=NOW)
    assert figures.by_day[date(2026, 3, 9)].total == 6
    assert figures.by_day[date(2026, 3, 10)].total == 1  # g, the inbox message
    assert opens_of(figures) == {(1, 2): 1, (1, 4): 1, (1, 16): 2}  # 18:30, 20:10 UTC Mon; 08:15/08:20 UTC Tue
    analytics_rollup_refresh(since=None, now=NOW)
    assert DeliveryDailyStat.objects.filter(day=date(2026, 3, 10)).count() == 1
    again = analytics_figures(filters=AnalyticsFilters(days=WEEK), now=NOW)
    assert again.totals.as_dict() == figures.totals.as_dict()
    assert opens_of(again) == opens_of(figures)


def test_kpis_compare_with_the_previous_period(ledger, source):
    period = kpis_compare(days=7, now=NOW)
    kpis = {kpi.key: kpi for kpi in period.kpis}
    assert [k.key for k in period.kpis] == ["sent", "delivered", "opened", "clicked", "failed", "unsubscribed"]
    assert (kpis["sent"].value, kpis["sent"].previous) == (7, 1)
    assert kpis["sent"].change == pytest.approx(6.0)
    assert (kpis["failed"].value, kpis["failed"].previous) == (2, 1)
    assert kpis["unsubscribed"].previous == 0 and kpis["unsubscribed"].change is None
    assert period.current == WEEK


# --- Rollups ------------------------------------------------------------------------------


def test_refresh_is_idempotent_and_covers_up_to_yesterday(ledger):
    first = analytics_rollup_refresh(since=None, now=NOW)
    rows = sorted(DeliveryDailyStat.objects.values_list("day", "channel", "run_id", "total", "reached_opened"))
    assert first.days == 8  # 3 March (the first delivery) to 10 March
    analytics_rollup_refresh(since=date(2026, 3, 1), now=NOW)
    assert sorted(DeliveryDailyStat.objects.values_list("day", "channel", "run_id", "total", "reached_opened")) == rows
    assert not DeliveryDailyStat.objects.filter(day=date(2026, 3, 11)).exists()  # today stays live
    assert OpenHourStat.objects.filter(day=date(2026, 3, 10), hour=8).get().opens == 2
    assert AnalyticsRollupState.objects.get().covered_through == date(2026, 3, 10)


def test_figures_do_not_double_count_a_day_in_rollups_and_live(ledger):
    analytics_rollup_refresh(since=None, now=NOW)
    # A day later: 11 March is not in the rollups yet, so it is computed live with 12 March.
    tomorrow = NOW + timedelta(days=1)
    figures = analytics_figures(filters=AnalyticsFilters(days=DayRange.last(7, now=tomorrow)), now=tomorrow)
    assert figures.totals.total == 10
    assert figures.live_from == date(2026, 3, 11)


def test_tick_picks_up_a_late_receipt_for_an_old_day(ledger):
    analytics_rollup_refresh(since=None, now=NOW)
    c = ledger.deliveries["c"]
    # Much later, a receipt for Monday's delivery c: an open on the 20th (back-dated by the provider).
    later = NOW + timedelta(days=10)
    DeliveryEvent.objects.create(delivery=c, kind="opened", source="test", occurred_at=later - timedelta(hours=1))
    type(c).objects.filter(pk=c.pk).update(status="opened", opened_at=later - timedelta(hours=1))
    monday = AnalyticsFilters(days=DayRange(date(2026, 3, 9), date(2026, 3, 9)))
    assert analytics_figures(filters=monday, now=later).totals.reached_opened == 3  # a, b, g: c not yet
    assert analytics_rollup_tick(now=later, max_days=30) is not None
    assert analytics_figures(filters=monday, now=later).totals.reached_opened == 4
    assert AnalyticsRollupState.objects.get().covered_through == date(2026, 3, 20)
    assert analytics_rollup_tick(now=later + timedelta(seconds=5)) is None  # not due yet


def test_tick_with_no_rollups_builds_from_the_first_delivery(ledger):
    assert analytics_rollup_tick(now=NOW).covered_through == date(2026, 3, 9)  # a week: 3–9 March
    assert DeliveryDailyStat.objects.exists()
    assert analytics_rollup_tick(now=NOW).covered_through == date(2026, 3, 10)


# --- Query counts ---------------------------------------------------------------------------


def test_figures_query_count_with_rollups(ledger, django_assert_num_queries):
    analytics_rollup_refresh(since=None, now=NOW)
    # Rollups two days behind: one more query for the extra day.
    analytics_rollup_refresh(since=None, until=date(2026, 3, 9), now=NOW)
    with django_assert_num_queries(7):
        analytics_figures(filters=AnalyticsFilters(days=WEEK), now=NOW)
    analytics_rollup_refresh(since=None, now=NOW)
    # State, daily rollups, hourly rollups; today's deliveries, unsubscribes and opens.
    with django_assert_num_queries(6):
        analytics_figures(filters=AnalyticsFilters(days=WEEK, channel="email"), now=NOW)
    # A range that ends before today needs no live query.
    with django_assert_num_queries(3):
        analytics_figures(filters=AnalyticsFilters(days=DayRange(date(2026, 3, 1), date(2026, 3, 9))), now=NOW)
    # KPIs need no opens: state, daily rollups, today's deliveries and unsubscribes.
    with django_assert_num_queries(4):
        kpis_compare(days=30, now=NOW)


def test_tick_catches_up_a_few_days_at_a_time_and_figures_stay_right(ledger):
    first = analytics_rollup_tick(now=NOW, max_days=3)  # 3–5 March
    assert first.covered_through == date(2026, 3, 5)
    mid = analytics_figures(filters=AnalyticsFilters(days=WEEK), now=NOW)
    assert mid.totals.as_dict() == EXPECTED and mid.live_from == date(2026, 3, 6)
    # Still behind, so the next tick is due at once (no waiting for the interval).
    assert analytics_rollup_tick(now=NOW + timedelta(seconds=1), max_days=3).covered_through == date(2026, 3, 8)
    assert analytics_rollup_tick(now=NOW + timedelta(seconds=2), max_days=3).covered_through == date(2026, 3, 10)
    assert analytics_rollup_tick(now=NOW + timedelta(seconds=3), max_days=3) is None  # caught up: wait
    done = analytics_figures(filters=AnalyticsFilters(days=WEEK), now=NOW)
    assert done.totals.as_dict() == EXPECTED and done.live_from == date(2026, 3, 11)
    assert opens_of(done) == EXPECTED_OPENS


# --- Home and per-campaign selectors ---------------------------------------------------------


def test_home_and_campaign_selectors_query_counts(ledger, django_assert_num_queries):
    from dashboard.analytics import (
        campaign_recipients,
        delivery_timeline,
        recent_failures,
        runs_progress,
        scheduled_campaigns,
    )

    with django_assert_num_queries(1):
        failures = recent_failures(now=NOW)
        assert [e.delivery.pk for e in failures] == [ledger.deliveries["h"].pk, ledger.deliveries["d"].pk]
        assert failures[1].delivery.run.campaign.name == "Spring sale"  # no query: selected together
    with django_assert_num_queries(1):
        assert scheduled_campaigns(now=NOW) == []
    with django_assert_num_queries(1):  # no run in progress: nothing more to count
        assert runs_progress(now=NOW) == []
    with django_assert_num_queries(3):  # the run finished within 15 minutes of "now"
        (progress,) = runs_progress(now=ledger.run.finished_at + timedelta(minutes=5))
        # "d" bounced after the provider accepted it: sent (it was) and failed (it is), as everywhere.
        assert (progress.total, progress.sent, progress.failed, progress.suppressed, progress.percent) == (6, 5, 1, 1, 100)
    with django_assert_num_queries(1):
        page = campaign_recipients(run_ids=[ledger.run.pk], status="opened", limit=25)
        assert [d.recipient.username for d in page.rows] == ["ana"]
    with django_assert_num_queries(1):
        assert [e.kind for e in delivery_timeline(delivery_id=ledger.deliveries["a"].pk)] == [
            "sent", "delivered", "opened", "clicked"
        ]


def test_overview_kpis_count_the_last_7_days_from_the_same_figures(ledger, source, django_assert_num_queries):
    from dashboard.selectors import overview_kpis

    kpis = overview_kpis(now=NOW)
    # Sent and failed are the "Sent" and "Failed / bounced" KPIs of the card beside it (bounced "d" is both).
    assert (kpis.deliveries_7d, kpis.sent_7d, kpis.failed_7d) == (10, 7, 2)
    kpi = {k.key: k.value for k in kpis_compare(days=7, now=NOW).kpis}
    assert (kpis.sent_7d, kpis.failed_7d) == (kpi["sent"], kpi["failed"])
    period = kpis_compare(days=7, now=NOW)
    with django_assert_num_queries(3):  # the week given: only the users, unread and suppression counts
        assert overview_kpis(now=NOW, week=period.totals) == kpis
