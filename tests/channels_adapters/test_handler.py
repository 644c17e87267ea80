from __future__ import annotations

import pytest

from channels_adapters.email import EmailChannel
from channels_adapters.errors import ChannelConfigurationError
from channels_adapters.handler import ChannelHandler, channels
from channels_adapters.locmem import LocmemChannel

LOCMEM = "channels_adapters.locmem.LocmemChannel"


def test_builds_each_alias_from_settings_with_its_options(settings):
    settings.NOTIFICATION_CHANNELS = {
        "email": {"BACKEND": "channels_adapters.email.EmailChannel", "OPTIONS": {"from_email": "a@example.com"}},
        "sms": {"BACKEND": LOCMEM, "OPTIONS": {"max_batch_size": 5, "fail_permanent": ["+15550000000"]}},
    }
    handler = ChannelHandler()

    email, sms = handler["email"], handler["sms"]

    assert isinstance(email, EmailChannel) and email.alias == "email" and email.from_email == "a@example.com"
    assert isinstance(sms, LocmemChannel) and sms.alias == "sms"
    assert sms.max_batch_size == 5 and sms.fail_permanent == {"+15550000000"}
    assert handler["sms"] is sms
    assert list(handler) == ["email", "sms"]


def test_unknown_alias_is_a_clear_configuration_error(settings):
    settings.NOTIFICATION_CHANNELS = {"email": {"BACKEND": LOCMEM}}

    with pytest.raises(ChannelConfigurationError, match=r"No channel 'fax' in NOTIFICATION_CHANNELS \(configured: email\)"):
        ChannelHandler()["fax"]


def test_bad_backend_path_is_a_clear_configuration_error(settings):
    settings.NOTIFICATION_CHANNELS = {"sms": {"BACKEND": "channels_adapters.nowhere.SmsChannel"}}

    with pytest.raises(ChannelConfigurationError, match=r"NOTIFICATION_CHANNELS\['sms'\]: cannot import BACKEND"):
        ChannelHandler()["sms"]


def test_backend_that_is_not_a_channel_is_refused(settings):
    settings.NOTIFICATION_CHANNELS = {"sms": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}

    with pytest.raises(ChannelConfigurationError, match="is not a BaseChannel subclass"):
        ChannelHandler()["sms"]


def test_unknown_option_is_a_configuration_error(settings):
    settings.NOTIFICATION_CHANNELS = {"email": {"BACKEND": "channels_adapters.email.EmailChannel", "OPTIONS": {"hots": "x"}}}

    with pytest.raises(ChannelConfigurationError, match="EmailChannel 'email': unknown OPTIONS hots"):
        ChannelHandler()["email"]


def test_entry_without_backend_is_refused(settings):
    settings.NOTIFICATION_CHANNELS = {"email": {"OPTIONS": {}}}

    with pytest.raises(ChannelConfigurationError, match="must be a dict with a BACKEND"):
        ChannelHandler()["email"]


def test_defaults_apply_when_the_setting_is_absent(settings):
    del settings.NOTIFICATION_CHANNELS  # absent in config/settings.py today; make sure either way

    assert isinstance(ChannelHandler()["email"], EmailChannel)


def test_module_handler_follows_setting_changes(settings):
    settings.NOTIFICATION_CHANNELS = {"chat": {"BACKEND": LOCMEM, "OPTIONS": {"fail_transient": ["x"]}}}
    first = channels["chat"]
    assert first.fail_transient == {"x"}

    settings.NOTIFICATION_CHANNELS = {"chat": {"BACKEND": LOCMEM, "OPTIONS": {}}}

    second = channels["chat"]
    assert second is not first and second.fail_transient == frozenset()


@pytest.mark.parametrize("timeout", [0, -1, "soon", float("nan"), True])
@pytest.mark.parametrize(("backend", "options"), [
    ("channels_adapters.sms.SmsChannel", {"account_sid": "AC1", "auth_token": "t", "from_number": "+15005550006"}),
    ("channels_adapters.aliyun_sms.AliyunSmsChannel", {"access_key_id": "k", "access_key_secret": "s",
                                                       "sign_name": "Signalbox"}),
    ("channels_adapters.tencent_sms.TencentSmsChannel", {"secret_id": "k", "secret_key": "s",
                                                         "sms_sdk_app_id": "1400000000", "sign_name": "Signalbox"}),
    ("channels_adapters.wechat.WeChatChannel", {"app_id": "wx1", "app_secret": "s"}),
])
def test_a_provider_timeout_that_cannot_wait_is_refused_at_start_up(settings, backend, options, timeout):
    # The same rule as the push adapters' (BaseChannel.positive_timeout): a bad value is named by
    # signalbox.E202 instead of crashing the check or making every send fail later.
    from channels_adapters.checks import channels_configuration_check

    settings.NOTIFICATION_CHANNELS = {"provider": {"BACKEND": backend, "OPTIONS": {**options, "timeout": timeout}}}

    with pytest.raises(ChannelConfigurationError, match="timeout must be a positive number of seconds"):
        channels["provider"]
    [problem] = channels_configuration_check()
    assert problem.id == "signalbox.E202" and "timeout" in problem.msg


def test_the_ledgers_webhook_channel_cannot_be_taken_by_an_alias(settings):
    """Outbound webhook posts are deliveries with channel "webhook", sent by their endpoints'
    drains: an adapter under that name would be handed none of them, so start-up says so."""
    from channels_adapters.checks import channels_configuration_check

    settings.NOTIFICATION_CHANNELS = {"webhook": {"BACKEND": "channels_adapters.chat.ChatChannel"}}

    [problem] = channels_configuration_check()
    assert problem.id == "signalbox.E202" and "'webhook' is reserved" in problem.msg
