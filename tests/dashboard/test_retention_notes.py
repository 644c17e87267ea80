"""After data retention purged old deliveries: the campaign page's figures do not move, and the
pages that list ledger rows themselves (recipients, reports, exports) say what is gone."""

from __future__ import annotations

from datetime import date

import pytest
from django.urls import reverse

from dashboard.analytics import analytics_rollup_refresh
from dashboard.reports import data
from ops.retention import retention_apply
from tests.dashboard.analytics_data import NOW, build_ledger

pytestmark = pytest.mark.django_db

WEEK = {"start": "2026-03-05", "end": "2026-03-11"}


@pytest.fixture
def purged_ledger(settings):
    settings.SIGNALBOX_RETAIN_DELIVERIES_DAYS = "1"  # NOW is 11 March: the days up to 9 March may go
    ledger = build_ledger()
    analytics_rollup_refresh(since=None, now=NOW)
    return ledger


def _campaign_page(client, ledger):
    response = client.get(reverse("dashboard:campaign", args=[ledger.campaign.pk]), WEEK)
    assert response.status_code == 200
    figures = response.context["figures"]
    runs = [(row["run"].pk, row["counters"].as_dict() if row["counters"] else None) for row in response.context["runs"]]
    return figures.totals.as_dict(), {d: c.as_dict() for d, c in figures.by_day.items()}, runs, response.content.decode()


def test_the_campaign_page_keeps_its_funnel_and_says_which_recipients_are_gone(manager_client, purged_ledger):
    totals, by_day, runs, html = _campaign_page(manager_client, purged_ledger)
    assert totals["total"] == 6 and 'data-testid="recipients-purged"' not in html
    assert data.campaign_report_content(campaign_id=purged_ledger.campaign.pk).purged_before is None

    assert retention_apply(now=NOW).deleted == 8

    totals_after, by_day_after, runs_after, html = _campaign_page(manager_client, purged_ledger)
    assert (totals_after, by_day_after, runs_after) == (totals, by_day, runs)
    assert 'data-testid="recipients-purged"' in html
    assert "data retention deleted their delivery details" in html
    partial = manager_client.get(
        reverse("dashboard:campaign_recipients", args=[purged_ledger.campaign.pk]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert 'data-testid="recipients-purged"' in partial
    assert data.campaign_report_content(campaign_id=purged_ledger.campaign.pk).purged_before == date(2026, 3, 10)


def test_reports_say_what_retention_deleted(manager_client, purged_ledger):
    index = reverse("reports:index")
    assert 'data-testid="reports-purged"' not in manager_client.get(index).content.decode()
    retention_apply(now=NOW)

    assert 'data-testid="reports-purged"' in manager_client.get(index).content.decode()
    later = data.ReportFilters(date_from=date(2026, 3, 10), date_to=date(2026, 3, 11))
    assert data.period_report_content(filters=later).purged_before is None
    earlier = data.ReportFilters(date_from=date(2026, 3, 1), date_to=date(2026, 3, 11))
    assert data.period_report_content(filters=earlier).purged_before == date(2026, 3, 10)


def test_the_campaign_admin_does_not_count_what_retention_left_of_a_finished_run(admin_client, purged_ledger):
    url = reverse("admin:notifications_campaign_change", args=[purged_ledger.campaign.pk])
    html = admin_client.get(url).content.decode()
    assert 'data-testid="run-percent"' in html and 'data-testid="run-purged"' not in html

    retention_apply(now=NOW)

    html = admin_client.get(url).content.decode()
    assert 'data-testid="run-percent"' not in html
    assert 'data-testid="run-purged"' in html and "deleted by data retention" in html
