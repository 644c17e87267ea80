"""The preference centre: signed link without login, the logged-in page, and what may be saved."""

from __future__ import annotations

import time as time_module
from datetime import time

import pytest
from django.core import signing
from django.test import Client
from django.urls import reverse

from notifications import tokens
from notifications.models import Preference
from notifications.recipients.preferences import PREFERENCE_CHANNELS, preferences_state
from tests.factories import CategoryFactory, RecipientProfileFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def user():
    return RecipientProfileFactory(user=UserFactory(username="ada"), timezone="Europe/London").user


@pytest.fixture
def marketing():
    return CategoryFactory(key="promotions", name="Promotions", kind="marketing")


@pytest.fixture
def newsletter():
    return CategoryFactory(key="newsletter", name="Newsletter", kind="marketing", default_enabled=False)


@pytest.fixture
def transactional():
    return CategoryFactory(key="orders", name="Orders", kind="transactional", user_can_opt_out=False)


@pytest.fixture
def categories(marketing, newsletter, transactional):
    return marketing, newsletter, transactional


@pytest.fixture
def browser():
    return Client(enforce_csrf_checks=True)


def token_url(user) -> str:
    return reverse("notifications:preferences_token", args=[tokens.preferences_token(user.pk)])


def form_data(response, **overrides) -> dict:
    """What the browser would submit for the page as rendered, with ``overrides`` applied."""
    form = response.context["form"]
    data = {"csrfmiddlewaretoken": response.cookies["csrftoken"].value}
    for name, field in form.fields.items():
        value = form[name].value()
        if field.disabled:
            continue
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = value.strftime("%H:%M") if isinstance(value, time) else value
    for name, value in overrides.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = value
    return data


def switch(category, channel: str) -> str:
    return f"pref_{category.pk}_{channel}"


def test_get_shows_defaults_for_absent_rows(browser, user, categories):
    marketing, newsletter, transactional = categories
    response = browser.get(token_url(user))
    assert response.status_code == 200
    form = response.context["form"]
    assert form[switch(marketing, "email")].value() is True
    assert form[switch(newsletter, "email")].value() is False
    assert form.fields[switch(transactional, "email")].disabled
    assert "Always sent" in response.content.decode()
    assert not Preference.objects.exists()


def test_signed_link_without_login_saves_choices(browser, user, categories):
    marketing, newsletter, transactional = categories
    page = browser.get(token_url(user))
    data = form_data(
        page,
        **{
            switch(marketing, "email"): None,  # unticked
            switch(newsletter, "sms"): "on",
            f"digest_{marketing.pk}": "daily",
            "quiet_hours_start": "22:00",
            "quiet_hours_end": "07:30",
            "timezone": "Asia/Shanghai",
        },
    )
    response = browser.post(token_url(user), data, follow=True)
    assert response.status_code == 200
    assert "Your preferences have been saved." in response.content.decode()

    rows = {(p.category_id, p.channel): (p.enabled, p.digest) for p in Preference.objects.filter(user=user)}
    assert rows[(marketing.pk, "email")] == (False, "daily")
    assert rows[(marketing.pk, "sms")] == (True, "daily")
    assert rows[(newsletter.pk, "sms")] == (True, "immediate")
    assert rows[(newsletter.pk, "email")] == (False, "immediate")
    assert len(rows) == 2 * len(PREFERENCE_CHANNELS)
    profile = user.recipient_profile
    profile.refresh_from_db()
    assert (profile.quiet_hours_start, profile.quiet_hours_end, profile.timezone) == (
        time(22, 0), time(7, 30), "Asia/Shanghai",
    )
    # The page now shows what was saved.
    state = preferences_state(user=user)
    assert (marketing.pk, "email") not in state.enabled and (newsletter.pk, "sms") in state.enabled


def test_post_without_csrf_token_is_refused(browser, user, marketing):
    page = browser.get(token_url(user))
    data = form_data(page, csrfmiddlewaretoken=None, **{switch(marketing, "email"): None})
    assert browser.post(token_url(user), data).status_code == 403
    assert not Preference.objects.exists()


def test_non_opt_out_category_cannot_be_turned_off_by_crafted_post(browser, user, categories):
    _, _, transactional = categories
    page = browser.get(token_url(user))
    data = form_data(page, **{switch(transactional, c): None for c in PREFERENCE_CHANNELS})
    data[f"digest_{transactional.pk}"] = "daily"
    browser.post(token_url(user), data)
    assert not Preference.objects.filter(category=transactional, enabled=False).exists()
    assert not Preference.objects.filter(category=transactional).exclude(digest="immediate").exists()
    assert all((transactional.pk, c) in preferences_state(user=user).enabled for c in PREFERENCE_CHANNELS)


def test_invalid_timezone_is_rejected_and_nothing_saved(browser, user, marketing):
    page = browser.get(token_url(user))
    data = form_data(page, timezone="Mars/Olympus_Mons", **{switch(marketing, "email"): None})
    response = browser.post(token_url(user), data)
    assert response.status_code == 200
    assert response.context["form"].errors["timezone"]
    assert b'data-testid="timezone-error"' in response.content
    assert not Preference.objects.exists()
    user.recipient_profile.refresh_from_db()
    assert user.recipient_profile.timezone == "Europe/London"


def test_half_set_quiet_hours_are_rejected(browser, user, marketing):
    page = browser.get(token_url(user))
    browser.post(token_url(user), form_data(page, quiet_hours_start="22:00", quiet_hours_end=None))
    assert not Preference.objects.exists()


@pytest.mark.parametrize("method", ["get", "post"])
def test_tampered_or_expired_token_is_400_and_changes_nothing(browser, user, marketing, method, settings):
    good = tokens.preferences_token(user.pk)
    bad_tokens = [good[:-1] + ("A" if good[-1] != "A" else "B"), tokens.unsubscribe_token(user.pk), "junk"]
    for bad in bad_tokens:
        target = reverse("notifications:preferences_token", args=[bad])
        if method == "get":
            response = browser.get(target)
        else:
            # A client without CSRF checks, so only the token stands in the way.
            response = Client().post(target, {switch(marketing, "email"): "", "timezone": "UTC"})
        assert response.status_code == 400
    assert not Preference.objects.exists()


def test_token_older_than_90_days_is_400(client, user, marketing, monkeypatch):
    token = tokens.preferences_token(user.pk)
    target = reverse("notifications:preferences_token", args=[token])
    assert client.get(target).status_code == 200
    later = time_module.time() + tokens.PREFERENCES_MAX_AGE.total_seconds() + 60
    monkeypatch.setattr(signing.time, "time", lambda: later)
    response = client.get(target)
    assert response.status_code == 400
    assert b"has expired" in response.content


def test_logged_in_page_saves_for_the_logged_in_user(browser, user, marketing):
    browser.force_login(user)
    target = reverse("notifications:preferences")
    page = browser.get(target)
    assert page.status_code == 200
    assert target.encode() in page.content  # the nav link
    response = browser.post(target, form_data(page, **{switch(marketing, "webpush"): None}))
    assert response.status_code == 302 and response["Location"] == target
    assert Preference.objects.get(user=user, category=marketing, channel="webpush").enabled is False


def test_anonymous_is_sent_to_login(client):
    response = client.get(reverse("notifications:preferences"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_service_ignores_choices_for_non_opt_out_categories(user, categories):
    from notifications.recipients.preferences import preferences_update

    marketing, _, transactional = categories
    preferences_update(user=user, choices=set(), quiet_hours=None, timezone="UTC", digest={transactional.pk: "daily"})
    assert not Preference.objects.filter(category=transactional).exists()
    assert Preference.objects.filter(category=marketing, enabled=False).count() == len(PREFERENCE_CHANNELS)


@pytest.mark.parametrize("posted", ["Factory", "localtime", "posixrules"])
def test_zones_that_are_no_place_are_refused(browser, user, marketing, posted):
    page = browser.get(token_url(user))
    response = browser.post(token_url(user), form_data(page, timezone=posted))
    assert response.status_code == 200
    assert "is not a time zone" in response.context["form"].errors["timezone"][0]


def test_a_stored_alias_shows_and_saves_as_its_zone(browser, user, marketing):
    user.recipient_profile.timezone = "Asia/Calcutta"
    user.recipient_profile.save()
    page = browser.get(token_url(user))
    assert b'<option value="Asia/Kolkata" selected>' in page.content and b"Factory" not in page.content
    browser.post(token_url(user), form_data(page))
    user.recipient_profile.refresh_from_db()
    assert user.recipient_profile.timezone == "Asia/Kolkata"


def test_categories_are_listed_in_the_order_of_the_names_the_recipient_reads(user):
    from django.utils import translation

    # U+4E59 乙 sorts before U+7532 甲: in Chinese the two come the other way round.
    CategoryFactory(key="alpha", name="Alpha news", name_zh_hans="甲 新闻", kind="marketing")
    CategoryFactory(key="beta", name="Beta offers", name_zh_hans="乙 优惠", kind="marketing")

    def names() -> list[str]:
        return [c.display_name() for c in preferences_state(user=user).categories if c.key in {"alpha", "beta"}]

    assert names() == ["Alpha news", "Beta offers"]
    with translation.override("zh-hans"):
        assert names() == ["乙 优惠", "甲 新闻"]


def test_turning_off_wechat_and_app_pushes_in_the_centre_holds_those_and_nothing_else(browser, user, marketing, settings):
    """The centre has a WeChat and a Mobile push switch per category, in the reader's language, and
    what is saved there is what planning honours."""
    from channels_adapters.devices import device_register
    from notifications.api import notify
    from notifications.models import Delivery

    settings.NOTIFICATION_CHANNELS = {alias: {"BACKEND": "channels_adapters.locmem.LocmemChannel", "OPTIONS": {}}
                                      for alias in ("email", "wechat", "mobilepush")}
    user.recipient_profile.chat_ids = {"wechat": "oAda0000000000000000000000001"}
    user.recipient_profile.save()
    device_register(user=user, token="ada-phone")
    page = browser.get(token_url(user), HTTP_ACCEPT_LANGUAGE="zh-hans")
    html = page.content.decode()
    assert "微信" in html and "移动推送" in html
    data = form_data(page, **{switch(marketing, "wechat"): None, switch(marketing, "mobilepush"): None})
    assert browser.post(token_url(user), data).status_code in (200, 302)

    notify([user], title="Sale", body="20% off.", channels=["email", "wechat", "mobilepush"], category=marketing,
           idempotency_key="sale")

    planned = dict(Delivery.objects.filter(recipient=user).values_list("channel", "status_reason"))
    assert planned == {"email": "", "wechat": "suppressed:opted_out", "mobilepush": "suppressed:opted_out"}
