"""The audit-log page: filters, keyset pages, pinned query count, access."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Group
from django.contrib.contenttypes.models import ContentType
from django.core.cache import cache
from django.urls import reverse

from dashboard.reports import selectors
from dashboard.reports.selectors import AuditCursor
from accounts.roles import roles_ensure
from notifications.models import AuditEntry, Campaign, Category
from notifications.services import audit_record
from tests.factories import (
    AudienceFactory,
    CategoryFactory,
    MessageTemplateFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 3, 10, 12, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _fresh_action_cache():
    cache.delete(selectors.AUDIT_ACTIONS_CACHE_KEY)
    yield
    cache.delete(selectors.AUDIT_ACTIONS_CACHE_KEY)


@pytest.fixture
def log(manager):
    """A few entries by different people about different objects, one minute apart (and nothing
    else: setting up the staff wrote privilege entries, which are not what these tests read)."""
    mia = UserFactory(username="mia", is_staff=True)
    AuditEntry.objects.all().delete()
    campaign = Campaign.objects.create(
        name="Spring sale", audience=AudienceFactory(), template=MessageTemplateFactory(),
        category=CategoryFactory(key="newsletter", name="Newsletter"),
    )
    category = Category.objects.get(key="newsletter")
    made = {
        "launch": audit_record(actor=mia, action="campaign.launch", target=campaign, changes={"size": 1200}),
        "approve": audit_record(actor=manager, action="campaign.approve", target=campaign),
        "category": audit_record(actor=mia, action="category.change", target=category, changes={"name": ["A", "B"]}),
        "system": audit_record(actor=None, action="campaign.complete", target=campaign),
        "old": audit_record(actor=mia, action="campaign.launch", target=campaign),
    }
    for minutes, entry in enumerate(made.values()):
        entry.created_at = T0 - timedelta(minutes=minutes) - (timedelta(days=20) if entry is made["old"] else timedelta())
        entry.save(update_fields=["created_at"])
    made["campaign"], made["mia"] = campaign, mia
    return made


def listed(client, **params) -> list[int]:
    response = client.get(reverse("reports:audit_log"), params)
    assert response.status_code == 200
    return [row["id"] for row in response.context["rows"]]


def test_lists_entries_newest_first_with_links_to_their_objects(manager_client, log):
    response = manager_client.get(reverse("reports:audit_log"))

    ids = [row["id"] for row in response.context["rows"]]
    assert ids == [log[k].pk for k in ("launch", "approve", "category", "system", "old")]
    html = response.content.decode()
    assert f'href="{reverse("admin:notifications_campaign_change", args=[log["campaign"].pk])}"' in html
    assert "{&quot;size&quot;: 1200}" in html
    assert 'data-testid="audit-older"' not in html


def test_filters(manager_client, log, manager):
    campaign_type = ContentType.objects.get_for_model(Campaign)
    category_type = ContentType.objects.get_for_model(Category)

    assert listed(manager_client, action="campaign.launch") == [log["launch"].pk, log["old"].pk]
    assert listed(manager_client, actor=manager.pk) == [log["approve"].pk]
    assert listed(manager_client, target_type=category_type.pk) == [log["category"].pk]
    assert listed(manager_client, target_type=campaign_type.pk, date_from="2025-03-01") == [
        log[k].pk for k in ("launch", "approve", "system")
    ]
    assert listed(manager_client, date_to="2025-03-01") == [log["old"].pk]
    assert listed(manager_client, q="system") == [log["system"].pk]
    assert listed(manager_client, q="Newsletter") == [log["category"].pk]
    assert listed(manager_client, q="approve") == [log["approve"].pk]


def test_invalid_filters_show_everything_rather_than_fail(manager_client, log):
    assert len(listed(manager_client, actor="nobody", date_from="yesterday")) == 5


def test_pages_follow_each_other_without_gaps_or_repeats(manager_client, manager, monkeypatch):
    monkeypatch.setattr(selectors, "AUDIT_PAGE_SIZE", 3)
    same_time = [audit_record(actor=manager, action="bulk", changes={"n": n}) for n in range(7)]
    AuditEntry.objects.update(created_at=T0)  # ties on created_at are broken by id

    seen, url, pages = [], reverse("reports:audit_log") + "?action=bulk", 0
    while url:
        response = manager_client.get(url)
        seen += [row["id"] for row in response.context["rows"]]
        older = response.context["older_url"]
        url = reverse("reports:audit_log") + older if older else ""
        pages += 1
        if pages > 1:
            assert "action=bulk" in older or not older  # the filters carry over
            assert response.context["newest_url"] == "?action=bulk"

    assert pages == 3
    assert seen == sorted((e.pk for e in same_time), reverse=True)


def test_a_garbled_cursor_shows_the_first_page(manager_client, log):
    assert listed(manager_client, after="not-a-cursor")[0] == log["launch"].pk
    assert AuditCursor.decode(AuditCursor(created_at=T0, pk=5).encode()) == AuditCursor(created_at=T0, pk=5)


def test_query_count_is_pinned_whatever_the_log_size_and_filters(manager_client, manager, log, django_assert_num_queries):
    url = reverse("reports:audit_log")
    manager_client.get(url)  # warm the action list cache and the content type cache
    for n in range(60):
        audit_record(actor=manager, action="campaign.launch", target=log["campaign"], changes={"n": n})

    # session, user, the user's and the group's permissions, staff (actor choices), content
    # types (object type choices), the page of entries
    with django_assert_num_queries(7):
        manager_client.get(url)
    with django_assert_num_queries(7):
        manager_client.get(url, {"action": "campaign.launch", "actor": manager.pk, "q": "Spring", "date_from": "2025-01-01"})


def test_htmx_filtering_swaps_only_the_results(manager_client, log):
    response = manager_client.get(reverse("reports:audit_log"), {"action": "campaign.approve"}, HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert html.lstrip().startswith('<div id="audit-results"')
    assert "<html" not in html
    assert html.count('data-testid="audit-row"') == 1


def test_action_choices_come_from_the_log(manager_client, log):
    form = manager_client.get(reverse("reports:audit_log")).context["form"]

    actions = [value for value, _label in form.fields["action"].choices if value]
    assert actions == ["campaign.approve", "campaign.complete", "campaign.launch", "category.change"]


def test_exports_and_report_requests_show_up_in_the_log(manager_client, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    b"".join(manager_client.post(
        reverse("reports:export"), {"export-kind": "deliveries", "export-format": "csv", "export-channel": "sms"}
    ).streaming_content)

    rows = manager_client.get(reverse("reports:audit_log"), {"q": "data.export"}).context["rows"]

    assert [(row["actor"], row["action"]) for row in rows] == [("meg", "data.export")]
    assert '"channel": "sms"' in rows[0]["changes"]


@pytest.mark.parametrize("group", ["Marketers", "Operators"])
def test_marketers_and_operators_may_not_open_it(client, group):
    roles_ensure()
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=group))
    client.force_login(user)

    assert client.get(reverse("reports:audit_log")).status_code == 403
