"""WeChat as a ledger channel of its own (``wechat``), end to end through wechatpy against the
local fake: the openid comes from ``RecipientProfile.chat_ids["wechat"]`` because the adapter says
so (``address_source``), each outcome is recorded honestly, a 43004 answer suppresses that openid
for later sends, and a recipient's opt-out of WeChat is honoured."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.utils import timezone

from notifications import ledger
from notifications.api import notify
from notifications.models import Category, Delivery, Preference, Suppression
from tests.factories import RecipientProfileFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def wechat(settings, fake_wechat):
    cache.clear()
    settings.NOTIFICATION_CHANNELS = {
        "wechat": {"BACKEND": "channels_adapters.wechat.WeChatChannel", "OPTIONS": {
            "app_id": fake_wechat.app_id, "app_secret": fake_wechat.app_secret, "base_url": fake_wechat.base_url,
            "timeout": 0.5, "default_template": {"template_code": "tmpl-notice", "text_param": "first"},
        }},
        "email": {"BACKEND": "channels_adapters.locmem.LocmemChannel", "OPTIONS": {}},
    }
    yield fake_wechat
    cache.clear()


def send_all_due() -> None:
    ids = list(Delivery.objects.due(timezone.now()).order_by("id").values_list("id", flat=True))
    if ids:
        ledger.deliveries_send(delivery_ids=ids)


def openid(n: int) -> str:
    return f"oPerson{n:021d}"


def test_openids_from_the_profile_receive_the_message_and_an_unfollower_is_suppressed(wechat):
    follower = RecipientProfileFactory(chat_ids={"wechat": openid(1)})
    gone = RecipientProfileFactory(chat_ids={"wechat": openid(2)})
    nobody = RecipientProfileFactory(chat_ids={"apprise": "json://example.com/hook"})  # no openid
    wechat.unsubscribed.add(openid(2))
    Category.objects.create(key="orders", name="Orders", kind="transactional", user_can_opt_out=False)

    notify([follower.user, gone.user, nobody.user], title="Order shipped", body="Your order A-17 has shipped.",
           url="https://shop.example.com/orders/17", channels=["wechat"], category="orders",
           idempotency_key="ship-1")
    send_all_due()

    [sent] = wechat.messages
    assert sent.touser == openid(1) and sent.template_id == "tmpl-notice"
    assert "A-17" in sent.data["first"]["value"] and sent.url == "https://shop.example.com/orders/17"
    statuses = {d.recipient_id: (d.status, d.status_reason) for d in Delivery.objects.all()}
    assert statuses[follower.user_id][0] == "sent"
    assert statuses[gone.user_id] == ("failed", "wechat:43004")
    assert statuses[nobody.user_id] == ("suppressed", "suppressed:no_address")  # unreachable, with a reason
    assert Suppression.objects.filter(channel="wechat", address=openid(2)).exists()

    # The next message to them is suppressed when planned; WeChat is not asked again.
    notify([gone.user], title="Another", body="Another message.", channels=["wechat"], category="orders",
           idempotency_key="ship-2")
    send_all_due()
    assert Delivery.objects.get(recipient=gone.user, idempotency_key__contains="ship-2").status == "suppressed"
    assert [r.touser for r in wechat.requests].count(openid(2)) == 1


def test_success_permanent_transient_and_timeout_each_get_their_honest_outcome(wechat):
    people = [RecipientProfileFactory(chat_ids={"wechat": openid(n)}) for n in range(4)]
    ok, invalid, busy, slow = people
    wechat.invalid_openids.add(openid(1))
    wechat.busy.add(openid(2))
    wechat.slow.add(openid(3))
    Category.objects.create(key="orders", name="Orders", kind="transactional", user_can_opt_out=False)

    notify([p.user for p in people], title="Order shipped", body="On its way.", channels=["wechat"],
           category="orders", idempotency_key="ship")
    send_all_due()

    rows = {d.recipient_id: d for d in Delivery.objects.all()}
    assert rows[ok.user_id].status == "sent" and rows[ok.user_id].provider_message_id.isdigit()
    assert (rows[invalid.user_id].status, rows[invalid.user_id].status_reason) == ("failed", "wechat:40003")
    assert (rows[busy.user_id].status, rows[busy.user_id].status_reason) == ("deferred", "wechat:-1")
    assert rows[busy.user_id].next_attempt_at > timezone.now()  # retried later, with backoff
    assert rows[slow.user_id].status == "unknown"  # it may have arrived: never re-sent blind

    # Once due again, only the busy one is tried again; the timed-out one never is.
    Delivery.objects.filter(pk=rows[busy.user_id].pk).update(next_attempt_at=timezone.now())
    wechat.busy.clear()
    send_all_due()
    assert Delivery.objects.get(pk=rows[busy.user_id].pk).status == "sent"
    sent_to = [r.touser for r in wechat.requests]
    assert sent_to.count(openid(2)) == 2 and sent_to.count(openid(3)) == 1


def test_an_opt_out_of_wechat_is_honoured_and_leaves_the_other_channels_alone(wechat):
    keen, opted_out = (RecipientProfileFactory(chat_ids={"wechat": openid(n)}) for n in (1, 2))
    deals = Category.objects.create(key="deals", name="Deals", kind="marketing")
    Preference.objects.create(user=opted_out.user, category=deals, channel="wechat", enabled=False)

    notify([keen.user, opted_out.user], title="Sale", body="20% off.", channels=["wechat", "email"],
           category="deals", idempotency_key="sale")
    send_all_due()

    assert [r.touser for r in wechat.messages] == [openid(1)]
    assert Delivery.objects.get(recipient=opted_out.user, channel="wechat").status_reason == "suppressed:opted_out"
    assert Delivery.objects.get(recipient=opted_out.user, channel="email").status == "sent"


def test_subscribe_messages_through_the_ledger_and_a_refusal_fails_only_that_delivery(wechat, settings):
    from channels_adapters.handler import channels

    settings.NOTIFICATION_CHANNELS["wechat"]["OPTIONS"]["default_template"] = {
        "kind": "subscribe", "template_code": "sub-notice", "text_param": "thing1"}
    channels.reset()
    accepted, refused = (RecipientProfileFactory(chat_ids={"wechat": openid(n)}) for n in (1, 2))
    wechat.refused.add(openid(2))
    Category.objects.create(key="orders", name="Orders", kind="transactional", user_can_opt_out=False)

    notify([accepted.user, refused.user], title="Shipped", body="A-17 shipped", url="https://shop.example.com/o/17",
           channels=["wechat"], category="orders", idempotency_key="sub-1")
    send_all_due()

    [sent] = wechat.messages
    assert (sent.kind, sent.touser, sent.template_id, sent.page) == (
        "subscribe", openid(1), "sub-notice", "https://shop.example.com/o/17")
    rows = {d.recipient_id: d for d in Delivery.objects.all()}
    assert rows[accepted.user_id].status == "sent" and rows[accepted.user_id].provider_message_id == str(sent.msgid)
    assert (rows[refused.user_id].status, rows[refused.user_id].status_reason) == ("failed", "wechat:43101")

    # Not suppressed: once they accept the subscribe template, the next message reaches them.
    wechat.refused.discard(openid(2))
    notify([refused.user], title="Again", body="Again", channels=["wechat"], category="orders",
           idempotency_key="sub-2")
    send_all_due()
    assert Delivery.objects.get(recipient=refused.user, idempotency_key__contains="sub-2").status == "sent"
    assert [r.touser for r in wechat.messages].count(openid(2)) == 1
    assert not Suppression.objects.exists()
