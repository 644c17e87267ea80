"""Unsubscribe: RFC 8058 one-click POST and the landing page leave the message's *category* (or all
marketing) on its channel; transactional mail keeps flowing; GET changes nothing."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.urls import reverse

from channels_adapters.locmem import LocmemChannel
from notifications import ledger, tokens
from notifications.receipts import tracking
from notifications.api import notify
from notifications.models import Delivery, DeliveryEvent, Preference, Suppression
from tests.factories import CategoryFactory, DeliveryFactory, RecipientProfileFactory, UserFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("locmem_channels")]

ONE_CLICK = {"List-Unsubscribe": "One-Click"}


@pytest.fixture
def user():
    return RecipientProfileFactory(user=UserFactory(username="ada", email="ada@example.com")).user


@pytest.fixture
def newsletter():
    return CategoryFactory(key="newsletter", name="Newsletter", kind="marketing")


@pytest.fixture
def promotions():
    return CategoryFactory(key="promotions", name="Promotions", kind="marketing")


@pytest.fixture
def orders():
    return CategoryFactory(key="orders", name="Order updates", kind="transactional", user_can_opt_out=False)


@pytest.fixture
def delivery(user, newsletter, promotions, orders):
    return DeliveryFactory(recipient=user, status="sent", address="ada@example.com", category=newsletter)


@pytest.fixture
def mail_client():
    """A mail provider's server: no cookies, no CSRF token, and CSRF checks on."""
    return Client(enforce_csrf_checks=True)


def url(delivery) -> str:
    return reverse("notifications:unsubscribe", args=[tokens.unsubscribe_token(delivery.pk)])


def snapshot() -> tuple:
    return (
        Suppression.objects.count(),
        DeliveryEvent.objects.count(),
        sorted(Preference.objects.values_list("user_id", "category_id", "channel", "enabled")),
        sorted(Delivery.objects.values_list("pk", "status")),
    )


def off(user) -> set[tuple[str, str]]:
    """(category key, channel) pairs the user has turned off."""
    return set(Preference.objects.filter(user=user, enabled=False).values_list("category__key", "channel"))


def test_one_click_post_without_cookies_leaves_only_that_category_on_that_channel(mail_client, delivery, user):
    response = mail_client.post(url(delivery), ONE_CLICK)
    assert response.status_code == 200
    assert not response.cookies.get("sessionid")
    assert response["Content-Type"].startswith("text/plain")
    # Not the whole channel: the address stays reachable for everything else.
    assert not Suppression.objects.exists()
    assert off(user) == {("newsletter", "email")}
    event = DeliveryEvent.objects.get(delivery=delivery, kind="unsubscribed")
    assert (event.source, event.data) == ("one_click", {"scope": "category", "categories": ["newsletter"]})


def test_one_click_is_idempotent(mail_client, delivery, user):
    first = mail_client.post(url(delivery), ONE_CLICK)
    second = mail_client.post(url(delivery), ONE_CLICK)
    assert (first.status_code, second.status_code) == (200, 200)
    assert Preference.objects.filter(user=user).count() == 1
    assert DeliveryEvent.objects.filter(kind="unsubscribed").count() == 1


def test_tracking_unsubscribe_url_is_absolute(delivery, settings):
    settings.SITE_URL = "https://signalbox.test"
    assert tracking.unsubscribe_url(delivery) == "https://signalbox.test" + url(delivery)


def test_get_names_the_category_offers_all_marketing_and_changes_nothing(mail_client, delivery):
    before = snapshot()
    response = mail_client.get(url(delivery))
    assert response.status_code == 200
    page = response.content.decode()
    assert "ada@example.com" in page and "Newsletter" in page
    assert 'method="post"' in page
    assert 'name="scope" value="category"' in page and 'name="scope" value="marketing"' in page
    assert "/notifications/preferences/" in page
    assert "<script>" not in page and "style=" not in page  # no inline script or style (CSP)
    assert snapshot() == before


def test_page_choice_all_marketing_leaves_every_marketing_category_and_nothing_else(mail_client, delivery, user):
    response = mail_client.post(url(delivery), {"scope": "marketing"})
    assert response.status_code == 200
    assert off(user) == {("newsletter", "email"), ("promotions", "email")}
    assert "no more marketing messages" in response.content.decode()
    assert b"/notifications/preferences/" in response.content
    assert not Suppression.objects.exists()


def test_page_choice_this_category_links_back_to_preferences(mail_client, delivery, user):
    response = mail_client.post(url(delivery), {"scope": "category"})
    assert response.status_code == 200
    assert off(user) == {("newsletter", "email")}
    assert "Newsletter" in response.content.decode()
    assert b"/notifications/preferences/" in response.content


def test_unknown_choice_is_400_and_changes_nothing(mail_client, delivery):
    before = snapshot()
    response = mail_client.post(url(delivery), {"scope": "everything"})
    assert response.status_code == 400
    assert snapshot() == before


@pytest.mark.parametrize("method", ["get", "one_click", "form_post"])
def test_tampered_token_is_4xx_and_changes_nothing(mail_client, delivery, method):
    token = tokens.unsubscribe_token(delivery.pk)
    bad_tokens = [token[:-1] + ("A" if token[-1] != "A" else "B"), tokens.open_token(delivery.pk), "junk"]
    before = snapshot()
    for bad in bad_tokens:
        target = reverse("notifications:unsubscribe", args=[bad])
        if method == "get":
            response = mail_client.get(target)
        else:
            response = mail_client.post(target, ONE_CLICK if method == "one_click" else {})
        assert 400 <= response.status_code < 500
    assert snapshot() == before


def test_the_preference_centre_shows_the_opt_out_and_undoes_it(mail_client, delivery, user, newsletter):
    mail_client.post(url(delivery), ONE_CLICK)
    browser = Client(enforce_csrf_checks=True)
    prefs = reverse("notifications:preferences_token", args=[tokens.preferences_token(user.pk)])
    page = browser.get(prefs)
    form = page.context["form"]
    switch = f"pref_{newsletter.pk}_email"
    assert form[switch].value() is False
    data = {"csrfmiddlewaretoken": page.cookies["csrftoken"].value, "timezone": form["timezone"].value(), switch: "on"}
    for name, field in form.fields.items():
        if name.startswith("digest_"):
            data[name] = "immediate"
        elif name.startswith("pref_") and not field.disabled and form[name].value():
            data[name] = "on"
    assert browser.post(prefs, data).status_code == 302
    assert Preference.objects.get(user=user, category=newsletter, channel="email").enabled is True


def test_waiting_mail_of_that_category_stops_and_everything_else_goes(mail_client, delivery, user, orders, promotions):
    newsletter = delivery.category
    planned = DeliveryFactory(recipient=user, address="ADA@example.com", status="planned", category=newsletter)
    deferred = DeliveryFactory(recipient=user, address="ada@example.com", status="deferred", category=newsletter)
    receipt = DeliveryFactory(recipient=user, address="ada@example.com", status="planned", category=orders)
    other_marketing = DeliveryFactory(recipient=user, address="ada@example.com", status="planned", category=promotions)
    other_channel = DeliveryFactory(recipient=user, channel="sms", address="+14155550100", status="planned",
                                    category=newsletter)
    someone_else = DeliveryFactory(status="planned", category=newsletter)

    assert mail_client.post(url(delivery), ONE_CLICK).status_code == 200

    statuses = dict(Delivery.objects.values_list("pk", "status"))
    assert statuses[planned.pk] == statuses[deferred.pk] == "suppressed"
    assert Delivery.objects.get(pk=planned.pk).status_reason == "suppressed:opted_out"
    assert statuses[receipt.pk] == statuses[other_marketing.pk] == "planned"
    assert statuses[other_channel.pk] == statuses[someone_else.pk] == "planned"

    ledger.deliveries_send(delivery_ids=[d.pk for d in (planned, deferred, receipt, other_marketing, other_channel,
                                                          someone_else)])
    sent = sorted((p.message.delivery_id for p in LocmemChannel.outbox))
    assert sent == sorted([receipt.pk, other_marketing.pk, other_channel.pk, someone_else.pk])


def test_delivery_planned_before_unsubscribe_but_claimed_after_is_not_sent(delivery, user):
    """The send-time re-check catches a row the bulk UPDATE could not (already claimed)."""
    claimed = DeliveryFactory(recipient=user, address="ada@example.com", status="planned", category=delivery.category)
    tracking.unsubscribe(delivery=delivery, source="test")
    Delivery.objects.filter(pk=claimed.pk).update(status="planned", status_reason="")
    summary = ledger.deliveries_send(delivery_ids=[claimed.pk])
    assert (summary.sent, summary.suppressed) == (0, 1)
    assert LocmemChannel.outbox == []


def test_transactional_mail_still_reaches_someone_who_left_marketing(mail_client, user, newsletter, orders):
    """End to end: a marketing email's List-Unsubscribe URL, then an order receipt by notify()."""
    notify([user], title="November news", body="News.", channels=["email"], category=newsletter)
    ledger.deliveries_send(delivery_ids=list(Delivery.objects.values_list("pk", flat=True)))
    [marketing_mail] = LocmemChannel.outbox
    one_click_url = marketing_mail.message.metadata["unsubscribe_url"]  # what List-Unsubscribe carries
    assert mail_client.post(urlsplit(one_click_url).path, ONE_CLICK).status_code == 200
    LocmemChannel.outbox.clear()

    receipt = notify([user], title="Your order SO-1", body="Paid.", channels=["email"], category=orders)
    more_news = notify([user], title="December news", body="News.", channels=["email"], category=newsletter)
    receipt_row = Delivery.objects.get(content__subject="Your order SO-1")
    news_row = Delivery.objects.get(content__subject="December news")
    assert (receipt_row.status, news_row.status, news_row.status_reason) == (
        "planned", "suppressed", "suppressed:opted_out"
    )
    assert receipt.planned == 1 and more_news.planned == 0
    ledger.deliveries_send(delivery_ids=[receipt_row.pk, news_row.pk])
    assert [(p.message.address, p.message.subject) for p in LocmemChannel.outbox] == [
        ("ada@example.com", "Your order SO-1")
    ]


def test_hard_bounce_and_complaint_still_stop_the_whole_address(delivery, user, orders):
    tracking.receipt_record(delivery=delivery, kind="bounced", source="anymail:test", provider_event_id="b-1")
    assert Suppression.objects.get(channel="email", address="ada@example.com").reason == "hard_bounce"
    notify([user], title="Your order SO-2", channels=["email"], category=orders)
    assert Delivery.objects.get(content__subject="Your order SO-2").status_reason == "suppressed:hard_bounce"

    other = RecipientProfileFactory(user=UserFactory(username="grace", email="grace@example.com")).user
    complained = DeliveryFactory(recipient=other, status="sent", category=delivery.category)
    tracking.receipt_record(delivery=complained, kind="complained", source="anymail:test", provider_event_id="c-1")
    notify([other], title="Your order SO-3", channels=["email"], category=orders)
    assert Delivery.objects.get(content__subject="Your order SO-3").status_reason == "suppressed:complaint"


def test_recipient_deleted_the_address_is_suppressed_and_the_receipt_kept(mail_client, delivery, user):
    """No account, no preference to hold the choice: suppressing the address is the safe fallback."""
    user.delete()
    page = mail_client.get(url(delivery))
    assert page.status_code == 200 and b"Stop sending messages to ada@example.com" in page.content
    assert b"/notifications/preferences/" not in page.content
    assert mail_client.post(url(delivery), ONE_CLICK).status_code == 200
    suppression = Suppression.objects.get()
    assert (suppression.channel, suppression.address, suppression.reason, suppression.user) == (
        "email", "ada@example.com", "unsubscribe", None
    )
    assert DeliveryEvent.objects.get(delivery=delivery, kind="unsubscribed").data == {"scope": "address"}


def test_a_category_nobody_may_leave_falls_back_to_all_marketing(mail_client, user, newsletter, promotions):
    locked = CategoryFactory(key="security", name="Security", kind="system", user_can_opt_out=False)
    delivery = DeliveryFactory(recipient=user, status="sent", category=locked)
    page = mail_client.get(url(delivery))
    assert b'name="scope" value="category"' not in page.content
    assert b'name="scope" value="marketing"' in page.content
    mail_client.post(url(delivery), ONE_CLICK)
    assert off(user) == {("newsletter", "email"), ("promotions", "email")}
