"""The composer pages: value fields, live panels, pre-flight, duplicate, read-only non-draft campaigns."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from notifications.models import Campaign, MessageTemplate, RecipientProfile

from .conftest import AB_TEST_NONE, make_recipients, static_audience

pytestmark = pytest.mark.django_db


@pytest.fixture
def promo(db) -> MessageTemplate:
    return MessageTemplate.objects.create(
        key="promo", name="Promo", variables=["promo_code"], email_subject="Code for {{ recipient.first_name }}",
        email_body="Use {{ promo_code }}", sms_text="Code {{ promo_code }}",
    )


def _draft(make_campaign, promo, staff, **fields):
    ids = make_recipients(3)
    RecipientProfile.objects.filter(user_id__in=ids).update(phone="+15005550006")
    return make_campaign(static_audience("Composer", ids), template=promo, channels=["email", "sms"],
                         author=staff["marketer"], **fields)


def _form(campaign, **overrides) -> dict:
    data = {
        "name": campaign.name, "audience": campaign.audience_id, "template": campaign.template_id,
        "category": campaign.category_id, "channel_1": "email", "channel_2": "sms", "channel_3": "",
        "delivery_mode": "all", "schedule": "now", "max_lateness": "01:00:00", "schedule_timezone": "UTC",
        "runs-TOTAL_FORMS": "0", "runs-INITIAL_FORMS": "0", "runs-MIN_NUM_FORMS": "0", "runs-MAX_NUM_FORMS": "0",
        **AB_TEST_NONE,
        "_continue": "1",
    }
    return {**data, **overrides}


def test_the_draft_page_has_a_field_for_each_declared_variable_and_saves_it(client, staff, make_campaign, promo):
    campaign = _draft(make_campaign, promo, staff)
    client.force_login(staff["marketer"])
    url = reverse("admin:notifications_campaign_change", args=[campaign.pk])
    page = client.get(url).content.decode()
    assert 'name="value__promo_code"' in page and "1. Audience" in page and "2. Content" in page
    response = client.post(url, _form(campaign, value__promo_code="  SPRING24 "))
    assert response.status_code == 302, response.content.decode()[:3000]
    assert Campaign.objects.get(pk=campaign.pk).template_values == {"promo_code": "SPRING24"}


def test_pre_flight_page_shows_the_error_then_the_counts_and_sms_cost(client, staff, make_campaign, promo, settings):
    settings.SIGNALBOX_SMS_SEGMENT_PRICE = "0.01 USD"
    campaign = _draft(make_campaign, promo, staff)
    client.force_login(staff["marketer"])
    url = reverse("admin:notifications_campaign_preflight", args=[campaign.pk])
    page = client.get(url).content.decode()
    assert 'data-testid="preflight-errors"' in page and "&#x27;promo_code&#x27; is undefined" in page
    assert 'data-preflight-action="launch"' in page and 'data-preflight-action="submit"' in page
    launch = client.post(reverse("admin:notifications_campaign_transition", args=[campaign.pk, "launch"]), follow=True)
    assert "Pre-flight found problems" in launch.content.decode()
    Campaign.objects.filter(pk=campaign.pk).update(template_values={"promo_code": "SPRING24"})
    page = client.get(url).content.decode()
    assert 'data-testid="preflight-clean"' in page and "3 recipients" in page
    assert re.search(r'data-testid="cost-sms">0.03 USD<', page)


def test_the_live_panels_show_audience_size_sample_approval_and_a_per_locale_preview(
    client, staff, make_campaign, promo, settings
):
    settings.SIGNALBOX_APPROVAL_THRESHOLD = 2
    campaign = _draft(make_campaign, promo, staff)
    client.force_login(staff["marketer"])
    audience = client.get(reverse("admin:notifications_campaign_composer_audience"),
                          {"audience": campaign.audience_id}).content.decode()
    assert "3 recipients right now" in audience and "r0@example.com" in audience
    assert 'data-testid="audience-approval"' in audience
    content = client.get(reverse("admin:notifications_campaign_composer_content"), {
        "audience": campaign.audience_id, "template": promo.pk, "channel_1": "sms", "value__promo_code": "SPRING24",
    }).content.decode()
    assert "Code SPRING24" in content and 'data-locale="en"' in content
    unsaved = client.get(reverse("admin:notifications_campaign_composer_content"), {"template": promo.pk}).content.decode()
    assert "needs a value for: promo_code" in unsaved


@pytest.mark.parametrize("status", ["pending_approval", "scheduled", "running", "completed"])
def test_a_campaign_past_draft_is_read_only(client, staff, make_campaign, promo, status):
    campaign = _draft(make_campaign, promo, staff, status=status, template_values={"promo_code": "X"})
    client.force_login(staff["marketer"])
    url = reverse("admin:notifications_campaign_change", args=[campaign.pk])
    page = client.get(url).content.decode()
    form = page[page.index('id="campaign_form"'):]
    form = form[:form.index("</form>")]
    assert not re.search(r"<(select|textarea)\b", form)
    inputs = re.findall(r"<input(?![^>]*type=\"hidden\")[^>]*>", form)
    assert not inputs, inputs
    assert 'name="_save"' not in page and "/delete/" not in page
    assert "Email, SMS" in page and "promo_code = X" in page and 'data-testid="campaign-status"' in page
    response = client.post(url, _form(campaign, name="Changed", value__promo_code="Y"))
    assert response.status_code == 403
    assert Campaign.objects.get(pk=campaign.pk).name == campaign.name
    assert client.post(reverse("admin:notifications_campaign_delete", args=[campaign.pk]), {"post": "yes"}).status_code == 403


def test_duplicate_button_and_action_make_new_drafts(client, staff, make_campaign, promo):
    campaign = _draft(make_campaign, promo, staff, status="running", template_values={"promo_code": "X"})
    client.force_login(staff["other_marketer"])
    url = reverse("admin:notifications_campaign_duplicate", args=[campaign.pk])
    assert client.get(url).status_code == 405
    response = client.post(url)
    copy = Campaign.objects.exclude(pk=campaign.pk).get()
    assert response.status_code == 302 and response["Location"].endswith(f"/{copy.pk}/change/")
    assert copy.status == "draft" and copy.template_values == {"promo_code": "X"}
    client.post(reverse("admin:notifications_campaign_changelist"),
                {"action": "duplicate_selected", "_selected_action": [campaign.pk]})
    assert Campaign.objects.filter(status="draft").count() == 2
    client.force_login(staff["manager"])  # reads campaigns, does not build them
    assert client.post(url).status_code == 403


def test_a_running_campaign_page_has_no_alpine_conditions_left_without_their_inputs(client, staff, make_campaign, promo):
    from django.utils import timezone

    from notifications.models import CampaignRun

    campaign = _draft(make_campaign, promo, staff, status="running", schedule="recurring", rrule="FREQ=DAILY",
                      template_values={"promo_code": "X"})
    CampaignRun.objects.create(campaign=campaign, occurrence=timezone.now(), status="sending")
    client.force_login(staff["marketer"])
    page = client.get(reverse("admin:notifications_campaign_change", args=[campaign.pk])).content.decode()
    assert "schedule ==" not in page and "x-show=\"schedule" not in page


def test_a_draft_viewed_by_a_manager_has_no_conditions_and_its_audience_panel_reads_the_campaign(
    client, staff, make_campaign, promo
):
    """A Manager may view a draft but not change it: its page has no schedule inputs for Unfold's
    show/hide conditions nor an audience select for the live panel to read, so the browser would log
    "schedule is not defined" and htmx "#id_audience returned no matches"."""
    campaign = _draft(make_campaign, promo, staff, schedule="recurring", rrule="FREQ=DAILY")
    client.force_login(staff["manager"])
    page = client.get(reverse("admin:notifications_campaign_change", args=[campaign.pk])).content.decode()
    assert 'name="schedule"' not in page
    assert "schedule ==" not in page and "x-show=\"schedule" not in page
    assert 'hx-include="#id_audience"' not in page
    assert f'hx-vals=\'{{"campaign": "{campaign.pk}"}}\'' in page
    panel = client.get(reverse("admin:notifications_campaign_composer_audience"), {"campaign": campaign.pk})
    assert "3 recipients right now" in panel.content.decode()
    # On the page that edits it, the audience chosen in the form wins over the campaign's own.
    chosen = client.get(reverse("admin:notifications_campaign_composer_audience"), {"campaign": campaign.pk, "audience": ""})
    assert "recipients right now" not in chosen.content.decode()


def test_next_send_times_are_listed_once_the_builder_where_editable_the_panel_where_not(
    client, staff, make_campaign, promo
):
    draft = _draft(make_campaign, promo, staff, schedule="recurring", rrule="FREQ=DAILY;BYHOUR=9;BYMINUTE=0",
                   template_values={"promo_code": "X"})
    client.force_login(staff["marketer"])
    page = client.get(reverse("admin:notifications_campaign_change", args=[draft.pk])).content.decode()
    assert 'name="rrule_mode"' in page  # the builder, whose preview is live
    assert 'data-testid="next-occurrences"' not in page  # not a second, older list beside it
    Campaign.objects.filter(pk=draft.pk).update(status="running")
    page = client.get(reverse("admin:notifications_campaign_change", args=[draft.pk])).content.decode()
    panel = page[page.index('data-testid="next-occurrences"'):]
    assert "09:00 UTC" in panel[:2000]
