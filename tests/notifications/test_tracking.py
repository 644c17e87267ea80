"""Receipts: signed tokens, the open pixel, click redirects, link rewriting and receipt_record."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from notifications import tokens
from notifications.receipts import tracking
from notifications.models import Delivery, DeliveryEvent, Suppression, TrackedLink
from tests.factories import DeliveryFactory

pytestmark = pytest.mark.django_db

SAFARI = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"


@pytest.fixture
def delivery():
    return DeliveryFactory(status="sent")


def tampered(token: str) -> str:
    value, signature = token.rsplit(":", 1)
    return f"{value}:{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}"


def state() -> tuple:
    return (
        DeliveryEvent.objects.count(),
        Suppression.objects.count(),
        list(Delivery.objects.order_by("pk").values_list("status", flat=True)),
    )


# --- tokens ---------------------------------------------------------------------------------

def test_tokens_round_trip_and_reject_tampering_and_other_purposes():
    token = tokens.unsubscribe_token(42)
    assert tokens.read_unsubscribe_token(token) == 42
    for bad in (tampered(token), tokens.open_token(42), tokens.click_token(42), "", "abc", token + "x"):
        with pytest.raises(tokens.BadToken):
            tokens.read_unsubscribe_token(bad)
    # Changing the id without the key breaks the signature.
    forged = tokens.click_token(1).replace(tokens.click_token(1).split(":")[0], tokens.click_token(2).split(":")[0])
    with pytest.raises(tokens.BadToken):
        tokens.read_click_token(forged)


def test_preference_tokens_expire():
    token = tokens.preferences_token(7)
    assert tokens.read_preferences_token(token) == 7
    with pytest.raises(tokens.BadToken):
        tokens.read_preferences_token(token, max_age=-1)
    with pytest.raises(tokens.BadToken):
        tokens.read_preferences_token(tokens.unsubscribe_token(7))


# --- open pixel -----------------------------------------------------------------------------

def test_open_pixel_returns_uncached_gif_and_advances_status(client, delivery):
    response = client.get(tracking.open_pixel_url(delivery), HTTP_USER_AGENT=SAFARI, REMOTE_ADDR="203.0.113.9")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert response.content.startswith(b"GIF89a")
    assert "no-store" in response["Cache-Control"]
    delivery.refresh_from_db()
    assert delivery.status == "opened" and delivery.opened_at is not None
    event = DeliveryEvent.objects.get(kind="opened")
    assert (event.source, event.data, event.hits) == ("pixel", {}, 1)


def test_forty_pixel_hits_make_one_receipt_that_counts_them(client, delivery):
    for _ in range(40):
        assert client.get(tracking.open_pixel_url(delivery), HTTP_USER_AGENT=SAFARI).status_code == 200
    event = DeliveryEvent.objects.get(delivery=delivery)
    assert (event.kind, event.hits) == ("opened", 40)


def test_a_machine_open_then_a_real_open_are_two_receipts_and_the_real_one_counts(client, delivery):
    for _ in range(3):  # Apple's proxy fetches, maybe more than once
        client.get(tracking.open_pixel_url(delivery), HTTP_USER_AGENT="Mozilla/5.0", REMOTE_ADDR="17.58.100.1")
    delivery.refresh_from_db()
    assert delivery.status == "sent"
    client.get(tracking.open_pixel_url(delivery), HTTP_USER_AGENT=SAFARI, REMOTE_ADDR="203.0.113.9")
    client.get(tracking.open_pixel_url(delivery), HTTP_USER_AGENT=SAFARI, REMOTE_ADDR="203.0.113.9")
    events = {bool(e.data.get("machine_open")): e.hits for e in DeliveryEvent.objects.filter(kind="opened")}
    assert events == {True: 3, False: 2}
    delivery.refresh_from_db()
    assert delivery.status == "opened"


def test_tampered_pixel_is_404_and_changes_nothing(client, delivery):
    before = state()
    token = tokens.open_token(delivery.pk)
    for bad in (tampered(token), tokens.click_token(delivery.pk), "nonsense"):
        response = client.get(reverse("notifications:track_open", args=[bad]), HTTP_USER_AGENT=SAFARI)
        assert response.status_code == 404
    assert state() == before


@pytest.mark.parametrize(
    ("user_agent", "ip"),
    [("Mozilla/5.0", "203.0.113.9"), ("", "203.0.113.9"), (SAFARI, "17.58.100.1")],
    ids=["apple-mpp-agent", "no-agent", "apple-network"],
)
def test_machine_open_is_flagged_and_does_not_advance(client, delivery, user_agent, ip):
    client.get(tracking.open_pixel_url(delivery), HTTP_USER_AGENT=user_agent, REMOTE_ADDR=ip)
    event = DeliveryEvent.objects.get(kind="opened")
    assert event.data == {"machine_open": True}
    delivery.refresh_from_db()
    assert delivery.status == "sent"


# --- links and clicks -----------------------------------------------------------------------

HTML = (
    '<p><a href="https://shop.example/sale?a=1&amp;b=2">Sale</a> '
    "<a href='http://blog.example/post'>Blog</a> "
    '<a href="mailto:help@example.com">Mail us</a> <a href="/relative">x</a></p>'
)


def test_links_rewrite_stores_links_and_hides_urls(delivery, settings, django_assert_num_queries):
    settings.SITE_URL = "https://signalbox.test"
    with django_assert_num_queries(1):
        rewritten = tracking.links_rewrite(delivery=delivery, html=HTML)
    links = list(TrackedLink.objects.filter(delivery=delivery).order_by("position"))
    assert [(link.position, link.url) for link in links] == [
        (0, "https://shop.example/sale?a=1&b=2"),
        (1, "http://blog.example/post"),
    ]
    assert "shop.example" not in rewritten and "blog.example" not in rewritten
    click_urls = re.findall(r"""href=["']([^"']+)["']""", rewritten)
    assert click_urls[:2] == [tracking.click_url(link) for link in links]
    assert all(url.startswith("https://signalbox.test/notifications/t/c/") and "?" not in url for url in click_urls[:2])
    assert click_urls[2:] == ["mailto:help@example.com", "/relative"]


def test_click_redirects_to_stored_url_and_records(client, delivery, settings):
    settings.SITE_URL = "http://testserver"
    rewritten = tracking.links_rewrite(delivery=delivery, html=HTML)
    first = re.findall(r'href="(http://testserver[^"]+)"', rewritten)[0]
    response = client.get(first + "?next=https://evil.example/")
    assert response.status_code == 302
    assert response["Location"] == "https://shop.example/sale?a=1&b=2"
    event = DeliveryEvent.objects.get(kind="clicked")
    assert event.source == "click" and event.data["position"] == 0
    delivery.refresh_from_db()
    assert delivery.status == "clicked"


def test_repeated_clicks_count_per_link_without_new_rows(client, delivery, settings):
    settings.SITE_URL = "http://testserver"
    rewritten = tracking.links_rewrite(delivery=delivery, html=HTML)
    first, second = re.findall(r"""href=["'](http://testserver[^"']+)["']""", rewritten)[:2]
    for _ in range(25):
        assert client.get(first).status_code == 302
    client.get(second)
    hits = dict(DeliveryEvent.objects.filter(kind="clicked").values_list("data__position", "hits"))
    assert hits == {0: 25, 1: 1}


def test_click_token_for_another_link_cannot_be_forged(client, delivery):
    link = TrackedLink.objects.create(delivery=delivery, url="https://shop.example/", position=0)
    before = state()
    good = tokens.click_token(link.pk)
    forged = good.replace(good.split(":")[0], tokens.click_token(link.pk + 1).split(":")[0])
    for bad in (forged, tampered(good), tokens.open_token(link.pk), tokens.click_token(link.pk + 1)):
        response = client.get(reverse("notifications:track_click", args=[bad]))
        assert response.status_code == 404
    assert state() == before


# --- receipt_record -------------------------------------------------------------------------

def test_replayed_receipt_changes_nothing(delivery):
    assert tracking.receipt_record(delivery=delivery, kind="delivered", source="anymail", provider_event_id="ev-1")
    delivery.refresh_from_db()
    stamped = delivery.delivered_at
    assert delivery.status == "delivered"
    Delivery.objects.filter(pk=delivery.pk).update(status="sent")  # so a second advance would show
    assert not tracking.receipt_record(delivery=delivery, kind="delivered", source="anymail", provider_event_id="ev-1")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.delivered_at) == ("sent", stamped)
    assert DeliveryEvent.objects.count() == 1
    # The same id from another source is another event.
    assert tracking.receipt_record(delivery=delivery, kind="delivered", source="twilio", provider_event_id="ev-1")


def test_status_never_goes_backwards(delivery):
    tracking.receipt_record(delivery=delivery, kind="opened", source="pixel")
    tracking.receipt_record(delivery=delivery, kind="delivered", source="anymail", provider_event_id="late")
    delivery.refresh_from_db()
    assert delivery.status == "opened"
    assert delivery.delivered_at is None
    assert DeliveryEvent.objects.filter(kind="delivered").exists()


def test_hard_bounce_suppresses_and_ends_the_delivery(delivery):
    delivery.address = "Ada@Example.com"
    delivery.save()
    tracking.receipt_record(delivery=delivery, kind="bounced", source="anymail", provider_event_id="b-1")
    delivery.refresh_from_db()
    assert delivery.status == "bounced"
    suppression = Suppression.objects.get()
    assert (suppression.channel, suppression.address, suppression.reason) == ("email", "ada@example.com", "hard_bounce")
    assert suppression.user_id == delivery.recipient_id


def test_soft_bounce_neither_suppresses_nor_ends(delivery):
    tracking.receipt_record(
        delivery=delivery, kind="bounced", source="anymail", provider_event_id="b-2", data={"bounce_type": "soft"}
    )
    delivery.refresh_from_db()
    assert delivery.status == "sent"
    assert not Suppression.objects.exists()


def test_complaint_suppresses_without_changing_status(delivery):
    tracking.receipt_record(delivery=delivery, kind="complained", source="anymail", provider_event_id="c-1")
    delivery.refresh_from_db()
    assert delivery.status == "sent"
    assert Suppression.objects.get().reason == "complaint"
    # A later hard bounce keeps the first reason and adds no second row.
    tracking.receipt_record(delivery=delivery, kind="bounced", source="anymail", provider_event_id="b-3")
    assert list(Suppression.objects.values_list("reason", flat=True)) == ["complaint"]


def test_unknown_kind_is_refused(delivery):
    with pytest.raises(ValueError):
        tracking.receipt_record(delivery=delivery, kind="teleported", source="x")
    assert not DeliveryEvent.objects.exists()


def test_a_hard_bounce_also_stops_mail_still_waiting_for_that_address(delivery):
    waiting = DeliveryFactory(channel="email", address=delivery.address.upper(), status="planned")
    elsewhere = DeliveryFactory(channel="email", address="someone.else@example.com", status="planned")
    tracking.receipt_record(delivery=delivery, kind="bounced", source="anymail:test", provider_event_id="b-1")
    waiting.refresh_from_db()
    elsewhere.refresh_from_db()
    assert (waiting.status, waiting.status_reason) == ("suppressed", "suppressed:hard_bounce")
    assert elsewhere.status == "planned"


@pytest.mark.parametrize("value", [1, 42, 10**12])
def test_fast_token_signing_is_byte_for_byte_djangos(value, settings):
    from django.core import signing

    from notifications import tokens

    for secret in ("one-secret", "another-secret"):
        settings.SECRET_KEY = secret
        for salt in ("signalbox.open", "signalbox.unsubscribe"):
            assert tokens._sign(value, salt=salt) == signing.Signer(salt=salt).sign_object(value, compress=False)
