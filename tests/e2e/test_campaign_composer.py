"""A Marketer walks the campaign composer: pre-flight finds the template's missing value and Launch
is refused; the value is filled in; pre-flight is clean with counts and the SMS cost; submitted,
the campaign's page is read-only. Any console error or page error fails the walk."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from playwright.sync_api import Page, expect

from accounts.roles import roles_ensure
from notifications.models import (
    Audience, AudienceMember, Campaign, Category, MessageTemplate, MessageTemplateVariant, RecipientProfile, Suppression,
)
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

SHOTS = Path("var/screenshots")
RECIPIENTS = 12


@pytest.fixture
def world(settings):
    settings.SIGNALBOX_APPROVAL_THRESHOLD = 10
    settings.SIGNALBOX_SMS_SEGMENT_PRICE = "0.0079 USD"
    roles_ensure()
    User = get_user_model()
    mia = User.objects.create_user("mia", "mia@staff.example", PASSWORD, is_staff=True)
    mia.groups.add(Group.objects.get(name="Marketers"))
    password = make_password(None)
    User.objects.bulk_create(
        User(username=f"c{i}", email=f"c{i}@composer.test", first_name=f"Reader{i}", password=password)
        for i in range(RECIPIENTS)
    )
    people = list(User.objects.filter(username__startswith="c").order_by("pk"))
    RecipientProfile.objects.bulk_create(
        RecipientProfile(user=user, phone="+15005550006", locale="zh-hans" if i < 4 else "en")
        for i, user in enumerate(people)
    )
    audience = Audience.objects.create(name="Composer readers", kind=Audience.Kind.STATIC)
    AudienceMember.objects.bulk_create(AudienceMember(audience=audience, user=user) for user in people)
    Suppression.objects.create(channel="email", address="c11@composer.test", reason="hard_bounce")
    template = MessageTemplate.objects.create(
        key="promo", name="Spring promo", variables=["promo_code"],
        email_subject="A code for {{ recipient.first_name }}",
        email_body="Hello!\n\nSpring is here.\n\nYour code:\n**{{ promo_code }}**",
        sms_text="Spring sale: use {{ promo_code }} at checkout",
    )
    MessageTemplateVariant.objects.create(template=template, locale="zh-hans", email_subject="{{ recipient.first_name }}，您的优惠码",
                                          sms_text="春季特卖：结账时使用 {{ promo_code }}")
    Category.objects.get_or_create(key="newsletter", defaults={"name": "Newsletter", "kind": "marketing"})
    return {"mia": mia}


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"composer-{name}.png"), full_page=True)


def test_marketer_composes_fixes_what_pre_flight_finds_and_submits(page: Page, live_server, world):
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"{error.name}: {error.message}"))
    base = live_server.url
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.locator("input[name=username]").fill("mia")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    expect(page).to_have_url(f"{base}/admin/")

    # 1-3. Audience (live size and sample, approval told up front), content, channels.
    page.goto(f"{base}/admin/notifications/campaign/add/")
    page.locator("input[name=name]").fill("Spring promo")
    page.locator("select[name=audience]").select_option(label="Composer readers")
    expect(page.get_by_test_id("audience-size")).to_contain_text(f"{RECIPIENTS} recipients")
    expect(page.get_by_test_id("audience-approval")).to_be_visible()
    page.locator("select[name=template]").select_option(label="Spring promo")
    page.locator("select[name=category]").select_option(label="Newsletter")
    page.locator("select[name=channel_1]").select_option(label="Email")
    page.locator("select[name=channel_2]").select_option(label="SMS")
    expect(page.get_by_test_id("content-unsaved-names")).to_contain_text("promo_code")
    shot(page, "1-compose")
    page.locator("button[name=_continue]").click()

    # 4. Pre-flight: the missing value is an error, and Launch is refused.
    errors = page.get_by_test_id("preflight-errors")
    expect(errors).to_contain_text("promo_code")
    expect(errors).to_contain_text("is undefined")
    expect(page.get_by_test_id("preflight-approval")).to_be_visible()
    shot(page, "2-preflight-errors")
    page.locator("#preflight [data-preflight-action=launch]").click()
    expect(page.locator("body")).to_contain_text("Pre-flight found problems")
    expect(page.get_by_test_id("campaign-status")).to_have_text("Draft")
    shot(page, "3-launch-refused")

    # The value filled in: pre-flight is clean, with counts and the SMS cost.
    page.locator("input[name=value__promo_code]").fill("SPRING24")
    page.locator("button[name=_continue]").click()
    expect(page.get_by_test_id("preflight-clean")).to_be_visible()
    expect(page.get_by_test_id("preflight-recipients")).to_have_text(f"{RECIPIENTS} recipients")
    expect(page.locator('#preflight tr[data-channel="email"]')).to_contain_text("11")  # one address suppressed
    expect(page.get_by_test_id("cost-sms")).to_contain_text("USD")
    expect(page.locator('#preflight [data-locale="zh-hans"]')).to_contain_text("春季特卖：结账时使用 SPRING24")
    shot(page, "4-preflight-clean")

    # 5. Submit: the campaign waits for a Manager, and its page is read-only now.
    page.locator("#preflight [data-preflight-action=submit]").click()
    expect(page.get_by_test_id("campaign-status")).to_have_text("Pending approval")
    expect(page.locator("input[name=name]")).to_have_count(0)
    expect(page.locator("button[name=_save]")).to_have_count(0)
    shot(page, "5-submitted")
    assert Campaign.objects.get(name="Spring promo").template_values == {"promo_code": "SPRING24"}
    assert not problems, problems
