"""The staff "System status" page: readiness and the /metrics figures as tables, for the roles that may see it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from notifications.models import DeliveryEvent
from ops.models import Heartbeat
from ops.services import heartbeat_record, ledger_count
from tests.factories import DeliveryFactory, UserFactory, staff_in

URL = "/admin/status/"
pytestmark = pytest.mark.django_db


@pytest.fixture
def ledger():
    now = timezone.now()
    for _ in range(2):
        delivery = DeliveryFactory(channel="email", status="sent", created_at=now - timedelta(seconds=2), sent_at=now)
        DeliveryEvent.objects.create(delivery=delivery, kind="sent", source="email", occurred_at=now)
    DeliveryFactory(channel="sms", status="unknown")
    DeliveryFactory(channel="email", status="planned", created_at=now - timedelta(minutes=5))
    heartbeat_record(name=Heartbeat.SCHEDULER, now=now - timedelta(seconds=3))
    ledger_count(now=now)


@pytest.mark.parametrize("group", ["Operators", "Managers", None])
def test_operators_managers_and_superusers_see_the_figures(client, ledger, group):
    client.force_login(staff_in(group, "viewer"))
    response = client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "System status" in html
    assert 'data-testid="check-database" data-ok="true"' in html
    assert 'data-testid="check-worker" data-ok="false"' in html and "no heartbeat yet" in html
    assert 'data-testid="check-scheduler" data-ok="true"' in html
    assert 'data-testid="queue-depth" data-value="1"' in html
    assert 'data-testid="unknown-outcomes" data-value="1"' in html
    assert 'data-testid="deliveries-sent" data-total="2"' in html
    assert 'data-testid="latency-email" data-count="2"' in html
    assert "Counted by the scheduler" in html
    # In the sidebar, under Overview.
    assert f'href="{URL}"' in html


@pytest.mark.parametrize("group", ["Marketers"])
def test_other_staff_are_refused_and_not_shown_the_entry(client, group):
    client.force_login(staff_in(group, "mara"))
    assert client.get(URL).status_code == 403
    assert f'href="{URL}"' not in client.get("/admin/").content.decode()


def test_recipients_and_visitors_are_sent_to_the_login(client):
    assert client.get(URL)["Location"].startswith("/admin/login/")
    client.force_login(UserFactory(username="ada"))
    assert client.get(URL)["Location"].startswith("/admin/login/")


def test_the_page_speaks_simplified_chinese(client, ledger):
    client.force_login(staff_in("Operators", "oscar"))
    html = client.get(URL, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    assert '<html lang="zh-hans"' in html
    for text in ("系统状态", "就绪检查", "按渠道和状态的投递", "发送延迟", "结果未知"):
        assert text in html, text


def test_before_the_first_count_the_page_says_so(client):
    client.force_login(staff_in("Managers", "meg"))
    html = client.get(URL).content.decode()
    assert 'data-testid="deliveries-not-counted"' in html


def test_webhook_posts_have_their_own_column_and_stay_out_of_the_figures_for_people(client, ledger):
    """The ledger holds the outbound webhook posts too: counted in a column of their own, named in
    the reader's language, and not in the queue or the unknown outcomes of messages to people."""
    from notifications.models import WebhookEndpoint, WebhookMessage

    endpoint = WebhookEndpoint.objects.create(url="https://hooks.example.com/", events=["campaign.finished"],
                                              secret="whsec_x")
    for n, status in enumerate(["planned", "unknown"]):
        WebhookMessage.objects.create(
            idempotency_key=f"webhook:{endpoint.pk}:run:{n}", channel="webhook", webhook_endpoint=endpoint,
            address=f"run:{n}", provider_message_id=f"msg_{n}", status=status, next_attempt_at=timezone.now()
            if status == "planned" else None, content={"event_type": "campaign.finished", "payload": {}})
    ledger_count(now=timezone.now(), force=True)
    client.force_login(staff_in("Operators", "oscar"))

    html = client.get(URL).content.decode()
    assert "Webhook posts</th>" in html
    assert 'data-testid="queue-depth" data-value="1"' in html  # the email planned, not the post
    assert 'data-testid="unknown-outcomes" data-value="1"' in html  # the SMS, not the post
    assert "Webhook 推送</th>" in client.get(URL, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
