"""The chat adapter (Apprise) against a real HTTP server on 127.0.0.1 (``http_sink``)."""

from __future__ import annotations

import json

import apprise
import pytest

from channels_adapters.base import OutboundMessage
from channels_adapters.chat import ChatChannel, webhook_target
from channels_adapters.errors import ChannelConfigurationError, InvalidAddressError, PermanentChannelError, TransientChannelError
from channels_adapters.handler import channels


def chat_channel(settings, **options) -> ChatChannel:
    settings.NOTIFICATION_CHANNELS = {"chat": {"BACKEND": "channels_adapters.chat.ChatChannel", "OPTIONS": options}}
    return channels["chat"]


def message(delivery_id: int, address: str, **kwargs) -> OutboundMessage:
    defaults = {"subject": f"Deploy {delivery_id}", "text": f"Build {delivery_id} is green"}
    return OutboundMessage(delivery_id=delivery_id, address=address, **{**defaults, **kwargs})


def hook_url(http_sink, path: str = "/hook") -> str:
    return f"json://{http_sink.host}:{http_sink.port}{path}"


def test_a_json_webhook_receives_title_and_message(settings, http_sink):
    channel = chat_channel(settings, allow_private=True)

    [result] = channel.send_batch([message(1, hook_url(http_sink), url="https://signalbox.test/n/1")])

    assert result.ok, result.error
    assert len(result.provider_message_id) == 32 and int(result.provider_message_id, 16) >= 0
    [request] = http_sink.received
    assert (request.method, request.path) == ("POST", "/hook")
    assert request.headers["Content-Type"].startswith("application/json")
    body = json.loads(request.body)
    assert body["title"] == "Deploy 1"
    assert body["message"] == "Build 1 is green\n\nhttps://signalbox.test/n/1"


def test_each_message_gets_its_own_provider_id(settings, http_sink):
    channel = chat_channel(settings, allow_private=True)
    results = channel.send_batch([message(1, hook_url(http_sink, "/a")), message(2, hook_url(http_sink, "/b"))])
    assert all(result.ok for result in results)
    assert results[0].provider_message_id != results[1].provider_message_id
    assert [request.path for request in http_sink.received] == ["/a", "/b"]


def test_the_shared_url_option_sends_every_message_to_the_team_channel(settings, http_sink):
    channel = chat_channel(settings, url=hook_url(http_sink, "/team"), allow_private=True)
    results = channel.send_batch([message(1, ""), message(2, "ignored")])
    assert all(result.ok for result in results)
    assert [request.path for request in http_sink.received] == ["/team", "/team"]


def test_a_webhook_on_a_private_address_is_refused_and_never_contacted(settings, http_sink):
    channel = chat_channel(settings)

    [result] = channel.send_batch([message(1, hook_url(http_sink))])

    assert isinstance(result.error, PermanentChannelError)
    assert result.error.reason == "ssrf"
    assert http_sink.received == []


@pytest.mark.parametrize("scheme", ["json", "form", "xml"])
def test_every_generic_webhook_scheme_is_checked(settings, http_sink, scheme):
    channel = chat_channel(settings)
    [result] = channel.send_batch([message(1, f"{scheme}://127.0.0.1:{http_sink.port}/hook")])
    assert result.error.reason == "ssrf"
    assert http_sink.received == []


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("json://127.0.0.1:8000/hook", "http://127.0.0.1:8000/hook"),
        ("jsons://user:pw@hooks.example/a/b", "https://hooks.example/a/b"),
        ("xml://[::1]:81/x", "http://[::1]:81/x"),
        ("form://hooks.example", "http://hooks.example/"),
    ],
)
def test_webhook_target_is_the_url_apprise_posts_to(url, target):
    assert webhook_target(apprise.Apprise.instantiate(url)) == target


@pytest.mark.parametrize("address", ["not a url", "nosuchservice://token", "https://hooks.slack.com/x", "", "   "])
def test_an_invalid_or_unsupported_url_fails_without_sending(settings, http_sink, address):
    channel = chat_channel(settings, allow_private=True)
    [result] = channel.send_batch([message(1, address)])
    assert isinstance(result.error, InvalidAddressError)
    assert http_sink.received == []


def test_the_error_message_does_not_leak_the_webhook_token(settings):
    channel = chat_channel(settings)
    [result] = channel.send_batch([message(1, "nosuchservice://SECRET-TOKEN/x")])
    assert "SECRET-TOKEN" not in result.error.message


def test_a_server_error_is_transient(settings, http_sink):
    http_sink.status = 500
    channel = chat_channel(settings, allow_private=True)

    [result] = channel.send_batch([message(1, hook_url(http_sink))])

    assert isinstance(result.error, TransientChannelError)
    assert result.error.reason == "chat_not_accepted"
    assert len(http_sink.received) == 1


def test_an_unreachable_server_is_transient(settings, unused_port):
    channel = chat_channel(settings, allow_private=True)
    [result] = channel.send_batch([message(1, f"json://127.0.0.1:{unused_port}/hook")])
    assert isinstance(result.error, TransientChannelError)


def test_one_failure_does_not_stop_the_batch(settings, http_sink):
    channel = chat_channel(settings, allow_private=True)
    results = channel.send_batch([message(1, "bogus"), message(2, hook_url(http_sink))])
    assert [result.ok for result in results] == [False, True]
    assert len(http_sink.received) == 1


def test_an_empty_message_is_refused(settings, http_sink):
    channel = chat_channel(settings, allow_private=True)
    [result] = channel.send_batch([message(1, hook_url(http_sink), subject="", text="")])
    assert result.error.reason == "empty_message"
    assert http_sink.received == []


def test_unknown_options_are_a_configuration_error(settings):
    with pytest.raises(ChannelConfigurationError, match="allow_privat"):
        chat_channel(settings, allow_privat=True)
