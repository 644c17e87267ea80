"""The campaign pages: build a campaign, move it through its states with POST buttons, watch runs."""

from __future__ import annotations

import pytest
from django.urls import reverse

from notifications.models import AuditEntry, Campaign

from .conftest import AB_TEST_NONE, make_recipients, static_audience

pytestmark = pytest.mark.django_db


def _form(audience, template, category, **overrides) -> dict:
    data = {
        "name": "Winter sale", "audience": audience.pk, "template": template.pk, "category": category.pk,
        "channel_1": "email", "channel_2": "inapp", "channel_3": "", "delivery_mode": "all",
        "schedule": "now", "max_lateness": "01:00:00", "schedule_timezone": "UTC",
        "runs-TOTAL_FORMS": "0", "runs-INITIAL_FORMS": "0", "runs-MIN_NUM_FORMS": "0", "runs-MAX_NUM_FORMS": "0",
        **AB_TEST_NONE,
    }
    return {**data, **overrides}


def test_a_marketer_builds_a_campaign_with_ordered_channels(client, staff, template, newsletter):
    audience = static_audience("Admin audience", make_recipients(3))
    client.force_login(staff["marketer"])
    response = client.post(reverse("admin:notifications_campaign_add"), _form(audience, template, newsletter))
    assert response.status_code == 302, response.content.decode()[:2000]
    campaign = Campaign.objects.get(name="Winter sale")
    assert campaign.channels == ["email", "inapp"] and campaign.author == staff["marketer"]
    assert AuditEntry.objects.filter(action="campaign.create", target_id=str(campaign.pk)).exists()


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"schedule": "once"}, "send_at", "Required for this schedule"),
        ({"schedule": "recurring", "rrule": "FREQ=SOMETIMES", "recurrence_start_0": "2026-01-01",
          "recurrence_start_1": "09:00"}, "rrule", "FREQ must be HOURLY, DAILY, WEEKLY, MONTHLY or YEARLY."),
        ({"schedule": "recurring", "rrule": "FREQ=MINUTELY", "recurrence_start_0": "2026-01-01",
          "recurrence_start_1": "09:00"}, "rrule", "at most hourly"),
        ({"channel_2": "email"}, "channel_2", "chosen once"),
    ],
)
def test_bad_schedules_and_channels_are_form_errors(client, staff, template, newsletter, overrides, field, message):
    audience = static_audience("Errors", make_recipients(1))
    client.force_login(staff["marketer"])
    response = client.post(reverse("admin:notifications_campaign_add"), _form(audience, template, newsletter, **overrides))
    assert response.status_code == 200
    assert message in str(response.context["adminform"].form.errors[field])
    assert not Campaign.objects.exists()


def test_the_status_panel_offers_only_the_allowed_buttons(client, staff, make_campaign):
    campaign = make_campaign(static_audience("Buttons", make_recipients(2)), author=staff["marketer"])
    url = reverse("admin:notifications_campaign_change", args=[campaign.pk])
    client.force_login(staff["marketer"])
    page = client.get(url).content.decode()
    assert 'data-action="launch"' in page and 'data-action="submit"' in page and 'data-action="approve"' not in page
    client.force_login(staff["builder"])
    page = client.get(url).content.decode()
    assert 'data-action="launch"' not in page and 'data-action="submit"' in page


def test_launching_through_the_page_starts_the_campaign(client, staff, make_campaign):
    campaign = make_campaign(static_audience("Go", make_recipients(2)), author=staff["marketer"])
    client.force_login(staff["marketer"])
    url = reverse("admin:notifications_campaign_transition", args=[campaign.pk, "launch"])
    response = client.post(url, follow=True)
    assert "Launched." in response.content.decode()
    assert Campaign.objects.get(pk=campaign.pk).status == "scheduled"


def test_transitions_are_post_only_and_permission_checked(client, staff, make_campaign):
    campaign = make_campaign(static_audience("Guarded", make_recipients(2)), author=staff["marketer"])
    url = reverse("admin:notifications_campaign_transition", args=[campaign.pk, "launch"])
    client.force_login(staff["marketer"])
    assert client.get(url).status_code == 405
    client.force_login(staff["builder"])  # builds campaigns, may not launch
    assert client.post(url).status_code == 403
    client.force_login(staff["manager"])
    assert client.post(url).status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"


def test_a_manager_approves_and_the_author_cannot(client, staff, make_campaign, settings):
    settings.SIGNALBOX_APPROVAL_THRESHOLD = 1
    campaign = make_campaign(static_audience("Big", make_recipients(3)), author=staff["marketer"],
                             status="pending_approval")
    url = reverse("admin:notifications_campaign_transition", args=[campaign.pk, "approve"])
    client.force_login(staff["marketer"])
    assert client.post(url).status_code == 403
    client.force_login(staff["manager"])
    assert client.post(url).status_code == 302
    assert Campaign.objects.get(pk=campaign.pk).approved_by == staff["manager"]


def test_a_running_campaign_is_read_only_and_its_progress_refreshes(client, staff, make_campaign):
    campaign = make_campaign(static_audience("Running", make_recipients(2)), author=staff["marketer"],
                             status="running")
    client.force_login(staff["marketer"])
    page = client.get(reverse("admin:notifications_campaign_change", args=[campaign.pk])).content.decode()
    assert 'name="name"' not in page  # no editable inputs
    assert 'hx-trigger="every 2s"' in page
    progress = client.get(reverse("admin:notifications_campaign_progress", args=[campaign.pk]))
    assert progress.status_code == 200 and 'id="campaign-progress"' in progress.content.decode()
    assert 'data-testid="campaign-status">Running<' in progress.content.decode()


def test_the_schedule_preview_lists_the_next_five_local_times(client, staff):
    client.force_login(staff["marketer"])
    response = client.get(
        reverse("admin:notifications_campaign_schedule_preview"),
        {"rrule": "FREQ=DAILY;BYHOUR=9;BYMINUTE=0", "schedule_timezone": "Asia/Shanghai",
         "recurrence_start_0": "2026-01-01", "recurrence_start_1": "09:00"},
    )
    page = response.content.decode()
    assert page.count("<li>") == 5 and "09:00 (CST)" in page and "01:00 UTC" in page
    bad = client.get(reverse("admin:notifications_campaign_schedule_preview"), {"rrule": "nonsense"})
    assert "“nonsense” is not a rule part" in bad.content.decode()
