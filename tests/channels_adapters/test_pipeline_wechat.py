"""WeChat through the whole ledger. Until ``notifications.models.Channel`` lists ``wechat`` (see
README), the WeChat adapter is configured on an alias the ledger knows (``chat``): the openid
comes from ``RecipientProfile.chat_ids["wechat"]`` because the adapter says so
(``address_source``), and a 43004 answer suppresses that openid for later sends."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.utils import timezone

from notifications import ledger
from notifications.api import notify
from notifications.models import Category, Delivery, Suppression
from tests.factories import RecipientProfileFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def wechat_on_chat(settings, fake_wechat):
    cache.clear()
    settings.NOTIFICATION_CHANNELS = {"chat": {"BACKEND": "channels_adapters.wechat.WeChatChannel", "OPTIONS": {
        "app_id": fake_wechat.app_id, "app_secret": fake_wechat.app_secret, "base_url": fake_wechat.base_url,
        "timeout": 0.5, "default_template": {"template_code": "tmpl-notice", "text_param": "first"},
    }}}
    yield fake_wechat
    cache.clear()


def send_all_due() -> None:
    ids = list(Delivery.objects.due(timezone.now()).order_by("id").values_list("id", flat=True))
    if ids:
        ledger.deliveries_send(delivery_ids=ids)


def test_openids_from_the_profile_receive_the_message_and_an_unfollower_is_suppressed(wechat_on_chat):
    follower = RecipientProfileFactory(chat_ids={"wechat": "oFollower000000000000000001"})
    gone = RecipientProfileFactory(chat_ids={"wechat": "oUnfollowed00000000000000002"})
    nobody = RecipientProfileFactory(chat_ids={"apprise": "json://example.com/hook"})  # no openid
    wechat_on_chat.unsubscribed.add("oUnfollowed00000000000000002")
    Category.objects.create(key="orders", name="Orders", kind="transactional", user_can_opt_out=False)

    notify([follower.user, gone.user, nobody.user], title="Order shipped", body="Your order A-17 has shipped.",
           channels=["chat"], category="orders", idempotency_key="ship-1")
    send_all_due()

    [sent] = wechat_on_chat.messages
    assert sent.touser == "oFollower000000000000000001" and sent.template_id == "tmpl-notice"
    assert "A-17" in sent.data["first"]["value"]
    statuses = {d.recipient_id: (d.status, d.status_reason) for d in Delivery.objects.all()}
    assert statuses[follower.user_id][0] == "sent"
    assert statuses[gone.user_id] == ("failed", "wechat:43004")
    assert statuses[nobody.user_id][0] == "suppressed"  # no openid: unreachable, recorded with a reason
    assert Suppression.objects.filter(channel="chat", address="oUnfollowed00000000000000002").exists()

    # The next message to them is suppressed when planned; WeChat is not asked again.
    notify([gone.user], title="Another", body="Another message.", channels=["chat"], category="orders", idempotency_key="ship-2")
    send_all_due()
    assert Delivery.objects.get(recipient=gone.user, idempotency_key__contains="ship-2").status == "suppressed"
    assert [r.touser for r in wechat_on_chat.requests].count("oUnfollowed00000000000000002") == 1
