"""Pre-flight: what a launch would do, counted over the whole audience, rendered for a sample."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from notifications.campaigns.preflight import campaign_preflight
from notifications.campaigns.services import CampaignError, campaign_duplicate, campaign_launch, campaign_submit
from notifications.models import (
    AuditEntry, Campaign, Delivery, MessageTemplate, MessageTemplateVariant, Preference, RecipientProfile, Suppression,
)

from .conftest import make_recipients, static_audience

pytestmark = pytest.mark.django_db


@pytest.fixture
def promo_template(db) -> MessageTemplate:
    template = MessageTemplate.objects.create(
        key="promo", name="Promo", variables=["promo_code"],
        email_subject="Hello {{ recipient.first_name }}",
        email_body="Hi\n\nThere is a sale.\n\nYour code:\n{{ promo_code }}",
        sms_text="Code {{ promo_code }} for {{ recipient.first_name }}",
    )
    MessageTemplateVariant.objects.create(template=template, locale="zh-hans", email_subject="你好 {{ recipient.first_name }}",
                                          sms_text="优惠码 {{ promo_code }}")
    return template


def _campaign(make_campaign, template, n=4, **fields):
    ids = make_recipients(n)
    RecipientProfile.objects.filter(user_id__in=ids).update(phone="+15005550006")
    return make_campaign(static_audience(f"Pre-flight {n}", ids), template=template, channels=["email", "sms"], **fields)


def test_a_missing_value_is_an_error_naming_part_locale_and_line(make_campaign, promo_template):
    campaign = _campaign(make_campaign, promo_template)
    report = campaign_preflight(campaign=campaign)
    assert not report.ok
    messages = [e.message for e in report.errors]
    assert any("“promo_code”" in m for m in messages)
    body = next(e for e in report.errors if e.part == "Email body")
    assert body.locale == "en" and body.line == 6 and "'promo_code' is undefined" in body.message


def test_with_the_value_filled_pre_flight_is_clean(make_campaign, promo_template):
    campaign = _campaign(make_campaign, promo_template, template_values={"promo_code": "SPRING24"})
    report = campaign_preflight(campaign=campaign)
    assert report.ok, report.errors
    assert report.recipients == 4
    sms = report.locales[0].samples[0].channels[1]
    assert sms.parts[0].text == "Code SPRING24 for N0"


def test_launch_and_submit_are_refused_while_pre_flight_has_errors(make_campaign, promo_template, staff):
    campaign = _campaign(make_campaign, promo_template, author=staff["marketer"])
    for verb in (campaign_launch, campaign_submit):
        with pytest.raises(CampaignError, match="Pre-flight found problems.*promo_code"):
            verb(campaign=campaign, actor=staff["marketer"])
    assert Campaign.objects.get(pk=campaign.pk).status == "draft"
    campaign.template_values = {"promo_code": "SPRING24"}
    campaign.save()
    campaign_submit(campaign=campaign, actor=staff["marketer"])
    assert Campaign.objects.get(pk=campaign.pk).status == "pending_approval"


def test_counts_suppressed_opted_out_capped_and_quiet_hours(make_campaign, promo_template):
    campaign = _campaign(make_campaign, promo_template, n=6, template_values={"promo_code": "X"},
                         frequency_cap_per_day=1)
    users = list(campaign.audience.members.order_by("user_id").values_list("user_id", flat=True))
    Suppression.objects.create(channel="email", address="r0@example.com", reason="hard_bounce")
    Preference.objects.create(user_id=users[1], category=campaign.category, channel="email", enabled=False)
    Delivery.objects.create(idempotency_key="earlier", recipient_id=users[2], channel="email", address="r2@example.com",
                            category=campaign.category, status="sent")
    now = timezone.now()
    shanghai = now.astimezone(dt.timezone(dt.timedelta(hours=8)))
    RecipientProfile.objects.filter(user_id=users[3]).update(
        timezone="Asia/Shanghai", quiet_hours_start=(shanghai - dt.timedelta(hours=1)).time().replace(second=0, microsecond=0),
        quiet_hours_end=(shanghai + dt.timedelta(hours=2)).time().replace(second=0, microsecond=0),
    )
    report = campaign_preflight(campaign=campaign, now=now)
    email = report.channel("email")
    assert (email.suppressed, email.opted_out, email.capped) == (1, 1, 1)
    assert email.sending == 3 and email.held == 1
    (hold,) = report.quiet_holds
    assert hold.count == 2 and hold.zone == "Asia/Shanghai"  # the email and the SMS of one person
    assert hold.until.strftime("%H:%M") == (shanghai + dt.timedelta(hours=2)).strftime("%H:%M")


def test_sms_segments_and_cost_per_channel(make_campaign, promo_template, settings):
    settings.SIGNALBOX_SMS_SEGMENT_PRICE = "0.05 EUR"
    campaign = _campaign(make_campaign, promo_template, n=4, template_values={"promo_code": "X" * 200})
    report = campaign_preflight(campaign=campaign)
    sms = report.channel("sms")
    assert sms.sending == 4 and sms.segments == 8  # 200+ GSM-7 characters: two segments each
    assert sms.cost == Decimal("0.40") and sms.currency == "EUR"
    assert report.channel("email").cost is None
    assert report.total_cost == [("EUR", Decimal("0.40"))]


def test_each_locale_of_the_audience_renders_its_own_variant(make_campaign, promo_template):
    campaign = _campaign(make_campaign, promo_template, n=4, template_values={"promo_code": "X"})
    users = list(campaign.audience.members.values_list("user_id", flat=True))
    RecipientProfile.objects.filter(user_id__in=users[:3]).update(locale="zh-hans")
    report = campaign_preflight(campaign=campaign)
    by_locale = {sample.locale: sample for sample in report.locales}
    assert by_locale["zh-hans"].recipients == 3 and by_locale["zh-hans"].variant == "zh-hans"
    assert len(by_locale["zh-hans"].samples) == 3 and len(by_locale["en"].samples) == 1
    assert by_locale["zh-hans"].samples[0].channels[0].parts[0].text.startswith("你好")
    assert by_locale["en"].samples[0].channels[1].parts[0].text.startswith("Code X")


def test_pre_flight_costs_the_same_queries_for_a_larger_audience(make_campaign, promo_template):
    small = _campaign(make_campaign, promo_template, n=3, template_values={"promo_code": "X"})
    with CaptureQueriesContext(connection) as few:
        campaign_preflight(campaign=small, per_locale=1)
    ids = make_recipients(40, prefix="big")
    RecipientProfile.objects.filter(user_id__in=ids).update(phone="+15005550006")
    large = Campaign.objects.create(name="Big", audience=static_audience("Big", ids), template=promo_template,
                                    category=small.category, channels=["email", "sms"], template_values={"promo_code": "X"})
    with CaptureQueriesContext(connection) as many:
        report = campaign_preflight(campaign=large, per_locale=1)
    assert report.recipients == 40
    assert len(many) == len(few), [q["sql"] for q in many.captured_queries]


def test_duplicate_makes_a_new_draft_with_the_same_settings(make_campaign, promo_template, staff):
    campaign = _campaign(make_campaign, promo_template, template_values={"promo_code": "X"}, status="running",
                         frequency_cap_per_day=2)
    copy = campaign_duplicate(campaign=campaign, actor=staff["other_marketer"])
    assert copy.pk != campaign.pk and copy.status == "draft" and copy.name == "Copy of Spring sale"
    assert (copy.channels, copy.template_values, copy.frequency_cap_per_day, copy.audience_id) == (
        ["email", "sms"], {"promo_code": "X"}, 2, campaign.audience_id)
    assert copy.author == staff["other_marketer"] and copy.approved_by is None
    assert AuditEntry.objects.filter(action="campaign.duplicate", target_id=str(copy.pk)).exists()


def test_an_audience_whose_rules_cannot_be_used_is_a_pre_flight_error(make_campaign, promo_template, staff):
    from notifications.models import Audience

    broken = Audience.objects.create(name="Broken", rules={"all": [{"field": "no.such.field", "op": "eq", "value": 1}]})
    campaign = make_campaign(broken, template=promo_template, template_values={"promo_code": "X"})
    report = campaign_preflight(campaign=campaign)
    assert [e.message for e in report.errors][0].startswith("The audience's rules cannot be used")


def test_an_approval_covers_the_template_values(make_campaign, promo_template, staff, settings):
    from notifications.campaigns.services import campaign_approval, campaign_approve

    settings.SIGNALBOX_APPROVAL_THRESHOLD = 1
    campaign = _campaign(make_campaign, promo_template, author=staff["marketer"], status="pending_approval",
                         template_values={"promo_code": "SPRING24"})
    campaign_approve(campaign=campaign, actor=staff["manager"])
    assert not campaign_approval(campaign=campaign).needed
    campaign.template_values = {"promo_code": "FREE100"}
    check = campaign_approval(campaign=campaign)
    assert check.needed and check.changed == ["template"]


def test_pre_flight_reads_the_a_b_variants_once(make_campaign, promo_template):
    """Every pre-flight asks for the A/B variants (a campaign without any too): once for the
    test's rules and the variants' renders alike (the full report's approval check digests them
    too, in ``approvals.ab_test_digest``)."""
    from notifications.campaigns.preflight import campaign_preflight_errors

    campaign = _campaign(make_campaign, promo_template, n=3, template_values={"promo_code": "X"})
    for check, expected in ((lambda: campaign_preflight(campaign=campaign, per_locale=1), 2),
                            (lambda: campaign_preflight_errors(campaign=campaign), 1)):
        with CaptureQueriesContext(connection) as queries:
            check()
        reads = [q["sql"] for q in queries.captured_queries if "campaignvariant" in q["sql"].lower()]
        assert len(reads) == expected, reads
