"""Links and keys built once per pattern or key are exactly what the per-message way built.

Messages carry signed links that are verified years later and compared by tests and people;
the fast builders (``notifications.links``, ``tokens``, ``querysets._suppression_keyer``) must
not change one byte of them.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
from django.core import signing
from django.urls import reverse, set_script_prefix

from notifications import links, tokens
from notifications.ledger.rechecks import render_templates
from notifications.models import Delivery
from notifications.querysets import suppression_keys
from notifications.templating import message_context
from tests.factories import CategoryFactory, MessageTemplateFactory, RecipientProfileFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def frozen_second(monkeypatch):
    # Both Django's TimestampSigner and ours read time.time(): one second for both.
    monkeypatch.setattr(time, "time", lambda: 1_796_000_000.75)


@pytest.mark.parametrize("user_id", [1, 42, 10**9])
def test_preferences_tokens_are_byte_for_byte_djangos_and_open_the_page(user_id, settings, frozen_second):
    for secret in ("one-secret", "another-secret"):
        settings.SECRET_KEY = secret
        expected = signing.TimestampSigner(salt="signalbox.preferences").sign_object(user_id, compress=False)
        assert tokens.preferences_token(user_id) == expected
        assert tokens.read_preferences_token(tokens.preferences_token(user_id)) == user_id


def test_links_are_site_url_plus_reverse_under_any_prefix_and_site(settings):
    token = tokens.unsubscribe_token(123)
    try:
        for site, prefix in (("https://mail.example.com", "/"), ("https://example.org/", "/app/")):
            settings.SITE_URL = site
            set_script_prefix(prefix)
            root = site.rstrip("/")
            for name in ("notifications:unsubscribe", "notifications:preferences_token",
                         "notifications:track_open", "notifications:track_click"):
                assert links.token_url(name, token) == root + reverse(name, args=[token])
            assert links.page_url("notifications:preferences") == root + reverse("notifications:preferences")
            # Not from a signer: reverse() quotes it, and so does the builder.
            assert links.token_url("notifications:unsubscribe", "a b%c") == root + reverse(
                "notifications:unsubscribe", args=["a b%c"])
    finally:
        set_script_prefix("/")


def test_a_recipients_context_links_are_what_reverse_and_djangos_signer_make(settings, frozen_second):
    settings.SITE_URL = "https://mail.example.com"
    user = UserFactory(first_name="Ada", last_name="Lovelace")
    context = message_context(user=user, unsubscribe_url="https://mail.example.com/u/x/")
    signed = signing.TimestampSigner(salt="signalbox.preferences").sign_object(user.pk, compress=False)
    assert context["preferences_url"] == "https://mail.example.com" + reverse(
        "notifications:preferences_token", args=[signed])
    assert context["unsubscribe_url"] == "https://mail.example.com/u/x/"
    assert context["site_url"] == "https://mail.example.com"


def test_suppression_keys_are_the_plain_hmacs_under_every_key(settings):
    settings.SIGNALBOX_SUPPRESSION_KEY = ""
    settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS = "new-secret", ["old-secret"]

    def plain(channel, address, secret):
        key = hashlib.sha256(f"signalbox.suppression.{channel}".encode() + secret.encode()).digest()
        return "hmac-sha256:" + hmac.new(key, address.encode(), hashlib.sha256).hexdigest()

    for channel, address in (("email", "ada@example.com"), ("sms", "+14155550100")):
        assert suppression_keys(channel, address) == [
            address, plain(channel, address, "new-secret"), plain(channel, address, "old-secret")]
        assert suppression_keys(channel, "") == []
    assert suppression_keys("inapp", "17") == ["17"]  # a user id names nobody: never hashed


def test_a_batch_renders_every_recipients_own_links(settings, frozen_second):
    settings.SITE_URL = "https://mail.example.com"
    marketing = CategoryFactory(kind="marketing")
    template = MessageTemplateFactory(
        inapp_title="Hi {{ recipient.first_name }}",
        inapp_body="{{ preferences_url }} {{ unsubscribe_url }}",
    )
    people = [UserFactory(first_name=name) for name in ("Ada", "Grace", "Huan")]
    RecipientProfileFactory(user=people[1], locale="zh-hans")
    batch = [
        Delivery(pk=1000 + i, recipient_id=user.pk, channel="inapp", address=str(user.pk), category=marketing,
                 content={"template_id": template.pk})
        for i, user in enumerate(people)
    ]
    rendered, failed = render_templates(batch)
    assert failed == []
    for delivery, user in zip(rendered, people, strict=True):
        preferences = "https://mail.example.com" + reverse("notifications:preferences_token", args=[
            signing.TimestampSigner(salt="signalbox.preferences").sign_object(user.pk, compress=False)])
        unsubscribe = "https://mail.example.com" + reverse("notifications:unsubscribe", args=[
            signing.Signer(salt="signalbox.unsubscribe").sign_object(delivery.pk, compress=False)])
        assert delivery.content["title"] == f"Hi {user.first_name}"
        assert delivery.content["body"] == f"{preferences} {unsubscribe}"
        assert delivery.content["metadata"]["unsubscribe_url"] == unsubscribe
