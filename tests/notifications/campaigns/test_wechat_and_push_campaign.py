"""A campaign on the WeChat and mobile push channels, through the real SDKs against the local
fakes: each member is reached where they can be, the unreachable are recorded with a reason, and
the run completes."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import TestCase

from channels_adapters.devices import device_register
from notifications import ledger
from notifications.campaigns import services
from notifications.campaigns.runs import campaign_run_plan, campaigns_launch_due
from notifications.models import CampaignRun, Delivery, RecipientProfile
from tests.fake_fcm import FakeFcmServer
from tests.fake_wechat import FakeWeChatServer

from .conftest import make_recipients, static_audience

pytestmark = pytest.mark.django_db


@pytest.fixture
def providers(settings):
    wechat, fcm = FakeWeChatServer("wx0123456789abcdef", "fake-wechat-app-secret"), FakeFcmServer()
    wechat.start()
    fcm.start()
    cache.clear()
    settings.NOTIFICATION_CHANNELS = {
        "wechat": {"BACKEND": "channels_adapters.wechat.WeChatChannel", "OPTIONS": {
            "app_id": wechat.app_id, "app_secret": wechat.app_secret, "base_url": wechat.base_url, "timeout": 0.5,
            "default_template": {"template_code": "tmpl-notice", "text_param": "first"}}},
        "mobilepush": {"BACKEND": "channels_adapters.mobilepush.MobilePushChannel", "OPTIONS": {
            "service_account": fcm.service_account_info(), "base_url": fcm.base_url, "timeout": 0.5}},
    }
    try:
        yield wechat, fcm
    finally:
        wechat.stop()
        fcm.stop()
        cache.clear()


def test_a_campaign_reaches_followers_on_wechat_and_phones_by_push_then_completes(providers, staff, make_campaign):
    wechat, fcm = providers
    ids = make_recipients(4)
    RecipientProfile.objects.filter(user_id__in=ids[:2]).update(chat_ids={"wechat": "oFollower00000000000000001"})
    RecipientProfile.objects.filter(user_id=ids[1]).update(chat_ids={"wechat": "oFollower00000000000000002"})
    device_register(user=RecipientProfile.objects.get(user_id=ids[2]).user, token="phone-of-r2")
    campaign = make_campaign(static_audience("Four", ids), author=staff["marketer"], channels=["wechat", "mobilepush"])

    services.campaign_launch(campaign=campaign, actor=staff["marketer"])
    (run_id,) = campaigns_launch_due()
    campaign_run_plan(run_id=run_id)
    with TestCase.captureOnCommitCallbacks(execute=True):
        ledger.deliveries_send(delivery_ids=list(Delivery.objects.filter(run_id=run_id, status="planned")
                                                 .values_list("id", flat=True)))

    # The template has no push parts: both channels use its in-app title and body.
    assert sorted(m.touser for m in wechat.messages) == ["oFollower00000000000000001", "oFollower00000000000000002"]
    assert {m.data["first"]["value"] for m in wechat.messages} == {"Spring sale"}
    [push] = fcm.messages
    assert push.token == "phone-of-r2" and push.message["notification"] == {"title": "Sale for N2", "body": "Spring sale"}
    rows = {(d.recipient_id, d.channel): (d.status, d.status_reason) for d in Delivery.objects.filter(run_id=run_id)}
    assert rows[(ids[0], "wechat")][0] == rows[(ids[1], "wechat")][0] == rows[(ids[2], "mobilepush")][0] == "sent"
    assert rows[(ids[3], "wechat")] == rows[(ids[3], "mobilepush")] == ("suppressed", "suppressed:no_address")
    assert CampaignRun.objects.get(pk=run_id).status == "completed"
