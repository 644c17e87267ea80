"""A Marketer sets up an A/B test in the composer (two variants: the template as is and another
subject), is told what is wrong with one variant, fixes it, launches; the campaign page shows
each variant's results and the marketer picks the winner. No console or page error."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.contrib.auth.models import Group
from playwright.sync_api import Page, expect

from accounts.roles import roles_ensure
from notifications.campaigns.runs import campaign_run_plan, campaigns_launch_due
from notifications.models import Audience, AudienceMember, Campaign, CampaignRun, Category, MessageTemplate
from tests.factories import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

SHOTS = Path("var/screenshots")


@pytest.fixture
def world():
    roles_ensure()
    User = get_user_model()
    mia = User.objects.create_user("mia", "mia@staff.example", PASSWORD, is_staff=True)
    mia.groups.add(Group.objects.get(name="Marketers"))
    password = make_password(None)
    User.objects.bulk_create(User(username=f"ab{i}", email=f"ab{i}@ab.test", first_name=f"R{i}", password=password)
                             for i in range(8))
    audience = Audience.objects.create(name="AB readers", kind=Audience.Kind.STATIC)
    AudienceMember.objects.bulk_create(AudienceMember(audience=audience, user=u)
                                       for u in User.objects.filter(username__startswith="ab"))
    MessageTemplate.objects.create(key="ab", name="AB sale", email_subject="Sale", email_body="Body")
    Category.objects.get_or_create(key="newsletter", defaults={"name": "Newsletter", "kind": "marketing"})
    return {"mia": mia}


def test_marketer_sets_up_an_a_b_test_and_picks_the_winner(page: Page, live_server, world):
    problems: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(f"{error.name}: {error.message}"))
    base = live_server.url
    page.goto(f"{base}/admin/login/?next=/admin/")
    page.locator("input[name=username]").fill("mia")
    page.locator("input[name=password]").fill(PASSWORD)
    page.locator("button[type=submit]").click()

    page.goto(f"{base}/admin/notifications/campaign/add/")
    page.locator("input[name=name]").fill("AB sale")
    page.locator("select[name=audience]").select_option(label="AB readers")
    page.locator("select[name=template]").select_option(label="AB sale")
    page.locator("select[name=category]").select_option(label="Newsletter")
    page.locator("select[name=channel_1]").select_option("email")
    page.locator("input[name=test_share]").fill("50")
    page.wait_for_load_state("load")  # the inline formset's script binds "Add another" on load
    add = page.get_by_text("Add another A/B variant")
    for row in (0, 1):  # one row per click: wait for each before the next (a click before binding adds none)
        add.click()
        expect(page.locator(f"select[name='variants-{row}-label']")).to_be_visible()
    page.locator("select[name='variants-0-label']").select_option("A")
    page.locator("select[name='variants-1-label']").select_option("B")
    page.locator("input[name='variants-0-email_subject']").fill("Same")
    page.locator("input[name='variants-1-email_subject']").fill("Same")
    page.locator("button[name=_continue]").click()
    expect(page.locator("body")).to_contain_text("Variants A and B are the same message")
    page.locator("input[name='variants-0-email_subject']").fill("")
    page.locator("input[name='variants-1-email_subject']").fill("Last chance")
    page.locator("button[name=_continue]").click()
    expect(page.locator("body")).to_contain_text("was added successfully")
    campaign = Campaign.objects.get(name="AB sale")
    assert list(campaign.variants.values_list("label", "email_subject")) == [("A", ""), ("B", "Last chance")]
    page.screenshot(path=str(SHOTS / "ab-composer.png"), full_page=True) if SHOTS.mkdir(parents=True, exist_ok=True) is None else None

    page.locator("button[data-action=launch]").click()
    (run_id,) = campaigns_launch_due()
    campaign_run_plan(run_id=run_id)
    page.goto(f"{base}/admin/notifications/campaign/{campaign.pk}/change/")
    expect(page.get_by_test_id("ab-variants")).to_contain_text("Last chance")
    expect(page.get_by_test_id("ab-note")).to_contain_text("Not enough data yet")
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator("button[data-pick=B]").click()
    expect(page.get_by_test_id("ab-winner")).to_contain_text("Variant B was picked by mia")
    page.screenshot(path=str(SHOTS / "ab-results.png"), full_page=True)
    assert CampaignRun.objects.get(pk=run_id).winner == "B"
    assert problems == []
