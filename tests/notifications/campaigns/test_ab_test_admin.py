"""The composer's A/B test section (form errors for bad input), the campaign page's results,
the manual winner pick, and the approval snapshot covering the variants."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse

from notifications.campaigns import ab_tests, services
from notifications.campaigns.approvals import campaign_fingerprint
from notifications.campaigns.runs import campaign_run_plan, campaigns_launch_due
from notifications.campaigns.snapshots import campaign_snapshot, snapshot_diff
from notifications.models import Campaign, CampaignRun, CampaignVariant, MessageTemplate

from .conftest import make_recipients, static_audience

pytestmark = pytest.mark.django_db


def _post_data(campaign, variants, **overrides):
    data = {
        "name": campaign.name, "audience": campaign.audience_id, "template": campaign.template_id,
        "category": campaign.category_id, "delivery_mode": "all", "schedule": "now", "max_lateness": "01:00:00", "schedule_timezone": "UTC",
        "channel_1": "email", "channel_2": "", "channel_3": "",
        "test_share": "20", "test_metric": "clicks", "test_window": "04:00:00",
        "variants-TOTAL_FORMS": str(len(variants)), "variants-INITIAL_FORMS": "0",
        "variants-MIN_NUM_FORMS": "0", "variants-MAX_NUM_FORMS": "4",
        "runs-TOTAL_FORMS": "0", "runs-INITIAL_FORMS": "0", "runs-MIN_NUM_FORMS": "0", "runs-MAX_NUM_FORMS": "0",
    }
    for i, (label, template, subject) in enumerate(variants):
        data[f"variants-{i}-label"] = label
        data[f"variants-{i}-template"] = template or ""
        data[f"variants-{i}-email_subject"] = subject
    data.update(overrides)
    return data


@pytest.fixture
def draft(make_campaign, staff):
    return make_campaign(static_audience("Few", make_recipients(5)), author=staff["marketer"])


@pytest.fixture
def marketer_client(client, staff):
    client.force_login(staff["marketer"])
    return client


def _errors(response) -> str:
    return response.content.decode()


@pytest.mark.parametrize(("variants", "overrides", "expected"), [
    ([("A", None, "Hi")], {}, "An A/B test needs 2 to 4 variants"),
    ([("A", None, ""), ("B", None, "Hi")], {"channel_1": "sms"}, "changes only the email subject"),
    ([("A", None, "Hi"), ("B", None, "Hi")], {}, "are the same message"),
    ([("A", None, ""), ("B", None, "Hi")], {"test_share": "95"}, "less than or equal to 90"),
    ([("A", None, ""), ("B", None, "Hi")], {"test_share": "abc"}, "Enter a whole number"),
    ([("A", None, ""), ("A", None, "Hi")], {}, "Please correct the duplicate data for label"),
])
def test_bad_a_b_input_is_a_form_error_and_saves_nothing(marketer_client, draft, variants, overrides, expected):
    url = reverse("admin:notifications_campaign_change", args=[draft.pk])
    response = marketer_client.post(url, _post_data(draft, variants, **overrides))
    assert response.status_code == 200
    context = response.context_data
    assert expected in _errors(response), (context["adminform"].form.errors, [(f.formset.errors, f.formset.non_form_errors()) for f in context["inline_admin_formsets"]])
    assert not CampaignVariant.objects.filter(campaign=draft).exists()


def test_good_variants_save_and_void_an_approval(marketer_client, draft, staff):
    other = MessageTemplate.objects.create(key="other", name="Other", email_subject="Other", email_body="Body")
    Campaign.objects.filter(pk=draft.pk).update(
        status="approved", approved_by=staff["manager"], approved_size=5, approval_fingerprint=campaign_fingerprint(draft),
    )
    url = reverse("admin:notifications_campaign_change", args=[draft.pk])
    response = marketer_client.post(url, _post_data(draft, [("A", None, ""), ("B", other.pk, ""), ("C", None, "Hey")]))
    assert response.status_code == 302, _errors(response)[:3000]
    assert list(CampaignVariant.objects.filter(campaign=draft).values_list("label", "template_id", "email_subject")) == [
        ("A", None, ""), ("B", other.pk, ""), ("C", None, "Hey")]
    draft.refresh_from_db()
    assert draft.status == "draft" and draft.approved_by is None  # the approval did not cover the variants


def test_the_approval_snapshot_and_fingerprint_change_when_a_variant_changes(draft):
    CampaignVariant.objects.create(campaign=draft, label="A")
    variant = CampaignVariant.objects.create(campaign=draft, label="B", email_subject="First subject")
    before, digest = campaign_snapshot(draft), campaign_fingerprint(draft)
    variant.email_subject = "Second subject"
    variant.save()
    after = campaign_snapshot(draft)
    assert campaign_fingerprint(draft)["template"] != digest["template"]
    (content,) = [d for d in snapshot_diff(before, after) if d.part == "template"]
    assert content.changed
    assert ("-", "Variant B: the campaign's template · subject “First subject”") in content.lines
    assert ("+", "Variant B: the campaign's template · subject “Second subject”") in content.lines
    for change in ({"test_share": 30}, {"test_metric": "opens"}, {"test_window": timedelta(hours=2)}):
        digest = campaign_fingerprint(draft)["template"]
        Campaign.objects.filter(pk=draft.pk).update(**change)
        draft.refresh_from_db()
        assert campaign_fingerprint(draft)["template"] != digest, change


def test_a_campaign_without_variants_keeps_the_digest_approvals_on_record_were_given_for(draft):
    from notifications.campaigns.approvals import template_digest

    assert campaign_fingerprint(draft)["template"] == template_digest(draft.template)
    assert "ab_test" not in campaign_snapshot(draft)["template"]


def test_the_campaign_page_shows_per_variant_results_and_a_marketer_picks_the_winner(
    marketer_client, draft, staff, locmem_channels, django_capture_on_commit_callbacks
):
    CampaignVariant.objects.create(campaign=draft, label="A")
    CampaignVariant.objects.create(campaign=draft, label="B", email_subject="Other subject")
    Campaign.objects.filter(pk=draft.pk).update(test_share=90)
    draft.refresh_from_db()
    services.campaign_launch(campaign=draft, actor=staff["marketer"])
    (run_id,) = campaigns_launch_due()
    campaign_run_plan(run_id=run_id)
    page = marketer_client.get(reverse("admin:notifications_campaign_change", args=[draft.pk])).content.decode()
    assert 'data-testid="ab-test"' in page and 'data-variant="A"' in page and 'data-variant="B"' in page
    assert "Other subject" in page and 'data-pick="B"' in page
    assert "Winner by click rate" in page  # the metric in running text, lower case
    url = reverse("admin:notifications_campaign_winner", args=[draft.pk, run_id, "B"])
    assert marketer_client.get(url).status_code == 405
    with django_capture_on_commit_callbacks(execute=True):
        response = marketer_client.post(url)
    assert response.status_code == 302
    run = CampaignRun.objects.get(pk=run_id)
    assert (run.winner, run.winner_chosen_by) == ("B", staff["marketer"])
    page = marketer_client.get(reverse("admin:notifications_campaign_change", args=[draft.pk])).content.decode()
    assert 'data-testid="ab-winner"' in page and "was picked by mia" in page and 'data-pick=' not in page
    marketer_client.force_login(staff["builder"])  # may build campaigns, not send them
    assert marketer_client.post(reverse("admin:notifications_campaign_winner", args=[draft.pk, run_id, "A"])).status_code == 403


def test_the_pdf_report_has_a_per_variant_table_with_the_note(draft, staff, locmem_channels,
                                                               django_capture_on_commit_callbacks):
    from django.utils import timezone

    from dashboard.reports.data import campaign_report_content
    from dashboard.reports.pdf import report_html
    from notifications.campaigns import ab_tests

    CampaignVariant.objects.create(campaign=draft, label="A")
    CampaignVariant.objects.create(campaign=draft, label="B", email_subject="Other subject")
    Campaign.objects.filter(pk=draft.pk).update(test_share=90)
    draft.refresh_from_db()
    services.campaign_launch(campaign=draft, actor=staff["marketer"])
    (run_id,) = campaigns_launch_due()
    campaign_run_plan(run_id=run_id)
    with django_capture_on_commit_callbacks(execute=True):
        ab_tests.run_winner_choose(run_id=run_id, label="B", actor=staff["marketer"])
    html = report_html(content=campaign_report_content(campaign_id=draft.pk), generated_by="meg",
                       generated_at=timezone.now())
    assert 'data-testid="ab-test"' in html and "Other subject" in html
    assert "Not enough data yet to compare the variants." in html  # nothing sent in this test
    assert "Variant B won" in html and "Winner by click rate" in html


def test_pre_flight_refuses_a_variant_whose_subject_does_not_render(draft, staff):
    from notifications.campaigns.preflight import campaign_preflight, campaign_preflight_errors

    CampaignVariant.objects.create(campaign=draft, label="A")
    CampaignVariant.objects.create(campaign=draft, label="B", email_subject="Hi {{ recipient.first_name ")
    errors = [e.message for e in campaign_preflight_errors(campaign=draft)]
    assert any(message.startswith("Variant B: ") for message in errors), errors
    assert [e.message for e in campaign_preflight(campaign=draft).errors] == errors
    with pytest.raises(services.CampaignError, match="Variant B"):
        services.campaign_launch(campaign=draft, actor=staff["marketer"])
    CampaignVariant.objects.filter(campaign=draft, label="B").update(email_subject="Hi {{ recipient.first_name }}")
    assert campaign_preflight_errors(campaign=draft) == []


def test_duplicating_a_campaign_copies_its_a_b_test(draft, staff):
    CampaignVariant.objects.create(campaign=draft, label="A")
    CampaignVariant.objects.create(campaign=draft, label="B", email_subject="Other")
    Campaign.objects.filter(pk=draft.pk).update(test_share=30, test_metric="opens", test_window=timedelta(hours=2))
    draft.refresh_from_db()
    copy = services.campaign_duplicate(campaign=draft, actor=staff["marketer"])
    assert (copy.test_share, copy.test_metric, copy.test_window) == (30, "opens", timedelta(hours=2))
    assert list(copy.variants.values_list("label", "email_subject")) == [("A", ""), ("B", "Other")]


def test_one_rule_decides_who_starts_and_stops_campaigns(monkeypatch, marketer_client, draft, staff):
    # services.may_launch is the rule: the admin's winner pick, the A/B service and pause all follow it.
    CampaignVariant.objects.create(campaign=draft, label="A")
    CampaignVariant.objects.create(campaign=draft, label="B", email_subject="Other subject")
    Campaign.objects.filter(pk=draft.pk).update(test_share=90)
    draft.refresh_from_db()
    services.campaign_launch(campaign=draft, actor=staff["marketer"])
    (run_id,) = campaigns_launch_due()
    campaign_run_plan(run_id=run_id)
    monkeypatch.setattr(services, "may_launch", lambda actor: False)
    url = reverse("admin:notifications_campaign_winner", args=[draft.pk, run_id, "B"])
    assert marketer_client.post(url).status_code == 403
    with pytest.raises(ab_tests.WinnerError):
        ab_tests.campaign_winner_pick(run=CampaignRun.objects.get(pk=run_id), label="B", actor=staff["marketer"])
    with pytest.raises(services.CampaignError):
        services.campaign_pause(campaign=draft, actor=staff["marketer"])
    page = marketer_client.get(reverse("admin:notifications_campaign_change", args=[draft.pk])).content.decode()
    assert 'data-pick=' not in page
    assert CampaignRun.objects.get(pk=run_id).winner == ""
