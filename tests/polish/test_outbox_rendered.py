"""The Outbox shows a captured email as a mail client would, in a sandboxed frame, beside its text."""

from __future__ import annotations

import html as html_lib
import re

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from accounts.roles import roles_ensure
from channels_adapters.models import CapturedMessage
from notifications import ledger
from notifications.api import notify
from notifications.models import Category, Delivery, DeliveryEvent, MessageTemplate
from tests.factories import RecipientProfileFactory, UserFactory

pytestmark = pytest.mark.django_db
SRCDOC = re.compile(r'<iframe sandbox="" srcdoc="([^"]*)"')


@pytest.fixture
def captured_email(settings):
    settings.NOTIFICATION_CHANNELS = {
        "email": {"BACKEND": "channels_adapters.capture.CaptureChannel", "OPTIONS": {}},
        "inapp": {"BACKEND": "channels_adapters.inapp.InappChannel", "OPTIONS": {}},
    }
    news = Category.objects.create(key="newsletter", name="Newsletter", kind="marketing")
    MessageTemplate.objects.create(key="news", name="News", category=news, email_subject="News for Ada",
                                   email_body="Hello **Ada**. [Leave]({{ unsubscribe_url }})")
    ada = RecipientProfileFactory(user=UserFactory(username="ada", first_name="Ada", email="ada@example.com")).user
    notify([ada], template="news", channels=["email"])
    ledger.deliveries_send(delivery_ids=list(Delivery.objects.values_list("id", flat=True)))
    return CapturedMessage.objects.get()


@pytest.fixture
def marketer_client(client):
    roles_ensure()
    user = UserFactory(username="maya", is_staff=True)
    user.groups.add(Group.objects.get(name="Marketers"))
    client.force_login(user)
    return client


def test_the_outbox_renders_the_email_in_a_sandboxed_frame_beside_its_text(marketer_client, captured_email):
    response = marketer_client.get(reverse("admin:channels_adapters_capturedmessage_change", args=[captured_email.pk]))
    page = response.content.decode()
    assert response.status_code == 200

    [srcdoc] = SRCDOC.findall(page)  # sandbox="" : no scripts, no origin
    shown = html_lib.unescape(srcdoc)
    assert "<strong>Ada</strong>" in shown and "<html" in shown.lower()
    assert 'data-testid="outbox-text"' in page and "Hello Ada" in page  # the plain-text part beside it
    assert 'data-testid="outbox-source"' in page and "&lt;strong&gt;Ada&lt;/strong&gt;" in page  # the source, folded
    # The page's own policy stays strict: no inline scripts, so nothing in the email can run.
    script_src = next(d for d in response["Content-Security-Policy"].split(";") if d.strip().startswith("script-src"))
    assert "'unsafe-inline'" not in script_src


def test_looking_at_a_captured_email_records_no_open(marketer_client, captured_email):
    assert "/notifications/t/o/" in captured_email.html, "the email as sent carries an open pixel"
    page = marketer_client.get(
        reverse("admin:channels_adapters_capturedmessage_change", args=[captured_email.pk])).content.decode()
    [srcdoc] = SRCDOC.findall(page)
    assert "/notifications/t/o/" not in html_lib.unescape(srcdoc)
    assert "data:image/gif;base64," in html_lib.unescape(srcdoc)
    assert not DeliveryEvent.objects.filter(kind="opened").exists()


def test_an_sms_in_the_outbox_has_no_frame(marketer_client):
    sms = CapturedMessage.objects.create(channel="sms", address="+4915112345678", text="Your code is 1234")
    page = marketer_client.get(reverse("admin:channels_adapters_capturedmessage_change", args=[sms.pk])).content.decode()
    assert "Your code is 1234" in page and "<iframe" not in page
