"""Staff never get a recipient's working links: previews, the Outbox and the ledger show them inert.

On the old code the template preview for a real recipient and the Outbox carried live preference
and unsubscribe tokens; posted anonymously, a preview link switched off the admin's own channels.
Each test collects every token link a staff page shows and tries it as an anonymous visitor.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from accounts.roles import roles_ensure
from channels_adapters.models import CapturedMessage
from notifications import ledger
from notifications.api import notify
from notifications.models import Category, Delivery, MessageTemplate, Preference
from notifications.receipts.tracking import unsubscribe_url
from notifications.redaction import inert_links
from notifications.templating.context import preferences_url
from tests.factories import RecipientProfileFactory, UserFactory

pytestmark = pytest.mark.django_db

TOKEN_LINK = re.compile(r"/notifications/(?:preferences|u|t/o|t/c)/[^\s\"'<>/…]+/")


@pytest.fixture
def capture(settings):
    settings.NOTIFICATION_CHANNELS = {
        "email": {"BACKEND": "channels_adapters.capture.CaptureChannel", "OPTIONS": {}},
        "inapp": {"BACKEND": "channels_adapters.inapp.InappChannel", "OPTIONS": {}},
    }


@pytest.fixture
def marketer():
    roles_ensure()
    user = UserFactory(username="maya", is_staff=True, email="maya@example.com")
    RecipientProfileFactory(user=user)
    user.groups.add(Group.objects.get(name="Marketers"))
    return user


@pytest.fixture
def ada():
    return RecipientProfileFactory(user=UserFactory(username="ada", first_name="Ada", email="ada@example.com")).user


@pytest.fixture
def newsletter():
    return Category.objects.create(key="newsletter", name="Newsletter", kind="marketing")


@pytest.fixture
def template(newsletter):
    return MessageTemplate.objects.create(
        key="news", name="News", category=newsletter, email_subject="News for {{ recipient.first_name }}",
        email_body="Hello {{ recipient.first_name }}. [Your choices]({{ preferences_url }}) · "
                   "[Leave]({{ unsubscribe_url }})",
    )


def token_links(html: str) -> list[str]:
    return TOKEN_LINK.findall(html)


def anonymous_tries(links: list[str]) -> list[int]:
    anonymous = Client()
    statuses = []
    for link in links:
        statuses.append(anonymous.get(link).status_code)
        statuses.append(anonymous.post(link, {"List-Unsubscribe": "One-Click"}).status_code)
    return statuses


def test_the_template_preview_for_a_real_recipient_carries_no_working_link(client, marketer, ada, template):
    client.force_login(marketer)
    url = reverse("admin:notifications_messagetemplate_preview", args=[template.pk])
    for recipient in ("ada", ""):  # someone else, and the marketer themselves
        html = client.get(url, {"recipient": recipient}).content.decode()
        assert "News for" in html
        assert token_links(html) == []
        assert "#preferences" in html


def test_posting_a_link_from_a_staff_page_anonymously_changes_nobodys_choices(client, marketer, template):
    client.force_login(marketer)
    html = client.get(reverse("admin:notifications_messagetemplate_preview", args=[template.pk])).content.decode()
    statuses = anonymous_tries(token_links(html))
    assert all(status >= 400 for status in statuses)
    assert not Preference.objects.filter(user=marketer, enabled=False).exists()


def test_the_outbox_shows_a_captured_marketing_email_with_inert_links(client, capture, marketer, ada, template):
    notify([ada], template="news", channels=["email"])
    ledger.deliveries_send(delivery_ids=list(Delivery.objects.values_list("id", flat=True)))
    captured = CapturedMessage.objects.get()
    assert token_links(captured.html), "the message as sent carries the recipient's links"

    client.force_login(marketer)
    html = client.get(reverse("admin:channels_adapters_capturedmessage_change", args=[captured.pk])).content.decode()

    assert "ada@example.com" in html and "News for Ada" in html
    assert token_links(html) == []
    assert "/notifications/preferences/…/" in html and "/notifications/u/…/" in html


def test_a_superuser_sees_the_message_exactly_as_sent(client, capture, ada, template):
    notify([ada], template="news", channels=["email"])
    ledger.deliveries_send(delivery_ids=list(Delivery.objects.values_list("id", flat=True)))
    captured = CapturedMessage.objects.get()
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")
    client.force_login(root)
    html = client.get(reverse("admin:channels_adapters_capturedmessage_change", args=[captured.pk])).content.decode()
    assert set(token_links(html)) == set(token_links(captured.html))


def test_the_delivery_ledger_shows_links_in_a_messages_content_inert(client, ada, newsletter):
    roles_ensure()
    manager = UserFactory(username="meg", is_staff=True)
    manager.groups.add(Group.objects.get(name="Managers"))
    link = preferences_url(ada.pk)
    notify([ada], title="Your choices", body=f"Change them here: {link}", channels=["email"], category=newsletter)
    delivery = Delivery.objects.get()

    client.force_login(manager)
    html = client.get(reverse("admin:notifications_delivery_change", args=[delivery.pk])).content.decode()

    assert "Change them here" in html
    assert token_links(html) == []


def test_inert_links_keep_other_links_and_our_own_pages(ada):
    delivery = Delivery.objects.create(idempotency_key="k", recipient=ada, channel="email", address="ada@example.com")
    text = (f'<a href="{unsubscribe_url(delivery)}">Leave</a> <a href="https://example.org/sale">Sale</a> '
            f'<a href="http://127.0.0.1:8000/notifications/">Inbox</a>')
    shown = inert_links(text)
    assert "/notifications/u/…/" in shown
    assert "https://example.org/sale" in shown and "http://127.0.0.1:8000/notifications/" in shown
