"""The chat adapter (Apprise) against real HTTP servers on 127.0.0.1 (``http_sink``) and 127.0.0.2.

The SSRF rules (``channels_adapters.chat`` docstring): only the documented services, every
connection checked after resolution at connect time, no redirects, ``allow_private`` narrow.
A name's answers are faked at ``socket.getaddrinfo``, the boundary between us and DNS.
"""

from __future__ import annotations

import json
import socket
import threading
from contextlib import contextmanager
from http.server import ThreadingHTTPServer

import pytest

from tests.channels_adapters.helpers import send
from channels_adapters.base import OutboundMessage
from channels_adapters.chat import ChatChannel, inspect_chat_address
from channels_adapters.errors import ChannelConfigurationError, InvalidAddressError, PermanentChannelError, TransientChannelError
from channels_adapters.handler import channels
from tests.channels_adapters.conftest import HttpSink, _sink_handler

SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"

# The self-hosted services of the finding, each aimed at {host}:{port}; Apprise parses every one.
FORBIDDEN = {
    "ntfy": "ntfy://{host}:{port}/alerts",
    "gotify": "gotify://{host}:{port}/abcdefghijklmno",
    "mmost": "mmost://{host}:{port}/abcdefghijklmnopqrstuvwxyz",
    "rocket": "rocket://user:pass@{host}:{port}/#general",
    "matrix": "matrix://user:pass@{host}:{port}/#room",
    "apprise": "apprise://{host}:{port}/token",
    "rsyslog": "rsyslog://{host}:{port}",
    "form": "form://{host}:{port}/hook",
    "xml": "xml://{host}:{port}/hook",
}


def chat_channel(settings, **options) -> ChatChannel:
    settings.NOTIFICATION_CHANNELS = {"chat": {"BACKEND": "channels_adapters.chat.ChatChannel", "OPTIONS": options}}
    return channels["chat"]


def message(delivery_id: int, address: str, **kwargs) -> OutboundMessage:
    defaults = {"subject": f"Deploy {delivery_id}", "text": f"Build {delivery_id} is green"}
    return OutboundMessage(delivery_id=delivery_id, address=address, **{**defaults, **kwargs})


def hook_url(http_sink, path: str = "/hook") -> str:
    return f"json://{http_sink.host}:{http_sink.port}{path}"


@contextmanager
def sink_on(host: str):
    """An ``HttpSink`` listening on ``host`` (e.g. 127.0.0.2: another "internal" machine)."""
    holder: list = []
    server = ThreadingHTTPServer((host, 0), _sink_handler(holder))
    server.daemon_threads = True
    sink = HttpSink(server)
    holder.append(sink)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def internal_sink():
    with sink_on("127.0.0.2") as sink:
        yield sink


def fake_dns(monkeypatch, answers: dict[str, list[str]]):
    """``socket.getaddrinfo`` answers ``answers[name]`` in turn (the last one repeats) for the
    names given, and asks the real resolver for any other. Returns the names looked up."""
    real = socket.getaddrinfo
    asked: list[str] = []

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if host not in answers:
            return real(host, port, family, type, proto, flags)
        asked.append(host)
        address = answers[host][min(asked.count(host), len(answers[host])) - 1]
        af = socket.AF_INET6 if ":" in address else socket.AF_INET
        sockaddr = (address, int(port or 0), 0, 0) if af == socket.AF_INET6 else (address, int(port or 0))
        return [(af, socket.SOCK_STREAM, 6, "", sockaddr)]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return asked


# --- Allowed services still work -------------------------------------------------------------


def test_a_json_webhook_receives_title_and_message(settings, http_sink):
    channel = chat_channel(settings, allow_private=True)

    [result] = send(channel, [message(1, hook_url(http_sink), url="https://signalbox.test/n/1")])

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
    results = send(channel, [message(1, hook_url(http_sink, "/a")), message(2, hook_url(http_sink, "/b"))])
    assert all(result.ok for result in results)
    assert results[0].provider_message_id != results[1].provider_message_id
    assert sorted(request.path for request in http_sink.received) == ["/a", "/b"]


def test_a_batch_posts_over_concurrency_kept_alive_connections(settings, http_sink):
    """Apprise opens a connection per post; inside a lane its posts reuse the lane's session."""
    http_sink.latency = 0.02  # both lanes busy at once
    channel = chat_channel(settings, allow_private=True, concurrency=2)

    results = send(channel, [message(n, hook_url(http_sink, f"/hook/{n}")) for n in range(8)])

    assert all(result.ok for result in results), [r.error for r in results]
    assert sorted(request.path for request in http_sink.received) == sorted(f"/hook/{n}" for n in range(8))
    assert len({request.peer for request in http_sink.received}) == 2


def test_the_shared_url_option_sends_every_message_to_the_team_channel(settings, http_sink):
    channel = chat_channel(settings, url=hook_url(http_sink, "/team"), allow_private=True)
    results = send(channel, [message(1, ""), message(2, "ignored")])
    assert all(result.ok for result in results)
    assert [request.path for request in http_sink.received] == ["/team", "/team"]


def test_a_name_that_resolves_to_an_allowed_address_is_posted_to_that_address(settings, http_sink, monkeypatch):
    asked = fake_dns(monkeypatch, {"hooks.example": ["127.0.0.1"]})
    channel = chat_channel(settings, allow_private=["127.0.0.1"])

    [result] = send(channel, [message(1, f"json://hooks.example:{http_sink.port}/hook")])

    assert result.ok, result.error
    assert [request.headers["Host"] for request in http_sink.received] == [f"hooks.example:{http_sink.port}"]
    assert "hooks.example" in asked


# --- Private targets ------------------------------------------------------------------------


def test_a_webhook_on_a_private_address_is_refused_and_never_contacted(settings, http_sink):
    channel = chat_channel(settings)

    [result] = send(channel, [message(1, hook_url(http_sink))])

    assert isinstance(result.error, PermanentChannelError)
    assert result.error.reason == "ssrf"
    assert http_sink.received == []


def test_dns_rebinding_between_the_check_and_the_connection_is_refused(settings, http_sink, monkeypatch):
    # The attacker's name answers a public address to the check, then 127.0.0.1 to the client.
    asked = fake_dns(monkeypatch, {"rebind.example": ["93.184.216.34", "127.0.0.1"]})
    channel = chat_channel(settings)

    [result] = send(channel, [message(1, f"json://rebind.example:{http_sink.port}/hook")])

    assert isinstance(result.error, PermanentChannelError) and result.error.reason == "ssrf"
    assert "127.0.0.1" in result.error.message
    assert http_sink.received == []
    assert len(asked) == 2  # the check, then the connection (which is refused, not retried elsewhere)


def test_a_fixed_host_service_whose_name_resolves_inside_is_refused(settings, monkeypatch):
    # E.g. a poisoned resolver or /etc/hosts: Slack's host must still be a public address.
    asked = fake_dns(monkeypatch, {"hooks.slack.com": ["10.0.0.7"]})
    channel = chat_channel(settings)

    [result] = send(channel, [message(1, SLACK)])

    assert isinstance(result.error, PermanentChannelError) and result.error.reason == "ssrf"
    assert "10.0.0.7" in result.error.message
    assert asked == ["hooks.slack.com"]


def test_allow_private_never_reaches_the_metadata_service(settings):
    channel = chat_channel(settings, allow_private=True)
    [result] = send(channel, [message(1, "json://169.254.169.254/latest/meta-data/")])
    assert isinstance(result.error, PermanentChannelError) and result.error.reason == "ssrf"


def test_allow_private_with_a_list_reaches_only_those_networks(settings, http_sink, internal_sink):
    channel = chat_channel(settings, allow_private=["127.0.0.1/32"])

    results = send(channel, [message(1, hook_url(http_sink)), message(2, hook_url(internal_sink))])

    assert results[0].ok, results[0].error
    assert results[1].error.reason == "ssrf"
    assert len(http_sink.received) == 1
    assert internal_sink.received == []


# --- Redirects ------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_a_failure_and_never_followed(settings, http_sink, internal_sink, status):
    # Both servers are allowed, so only the no-redirect rule stands between them.
    channel = chat_channel(settings, allow_private=["127.0.0.1", "127.0.0.2"])
    http_sink.status = status
    http_sink.response_headers = {"Location": f"http://127.0.0.2:{internal_sink.port}/stolen"}

    [result] = send(channel, [message(1, hook_url(http_sink))])

    assert isinstance(result.error, PermanentChannelError) and result.error.reason == "ssrf"
    assert "redirect" in result.error.message
    assert len(http_sink.received) == 1
    assert internal_sink.received == []


def test_a_redirect_to_the_metadata_service_is_not_followed(settings, http_sink):
    channel = chat_channel(settings, allow_private=["127.0.0.1"])
    http_sink.status = 307
    http_sink.response_headers = {"Location": "http://169.254.169.254/latest/meta-data/iam/"}

    [result] = send(channel, [message(1, hook_url(http_sink))])

    assert isinstance(result.error, PermanentChannelError) and result.error.reason == "ssrf"
    assert len(http_sink.received) == 1


def test_asking_apprise_to_follow_redirects_changes_nothing(settings, http_sink, internal_sink):
    channel = chat_channel(settings, allow_private=["127.0.0.1", "127.0.0.2"])
    http_sink.status = 302
    http_sink.response_headers = {"Location": f"http://127.0.0.2:{internal_sink.port}/stolen"}

    [result] = send(channel, [message(1, hook_url(http_sink) + "?redirect=yes")])

    assert result.error.reason == "ssrf"
    assert internal_sink.received == []


# --- Only the documented services -----------------------------------------------------------


@pytest.mark.parametrize("scheme", sorted(FORBIDDEN))
def test_other_services_to_loopback_are_refused_at_send(settings, http_sink, scheme):
    channel = chat_channel(settings, allow_private=True)  # even a deployment that allows private hosts

    [result] = send(channel, [message(1, FORBIDDEN[scheme].format(host="127.0.0.1", port=http_sink.port))])

    assert isinstance(result.error, PermanentChannelError) and result.error.reason == "ssrf"
    assert "Slack" in result.error.message and f"{scheme}://" in result.error.message
    assert http_sink.received == []


@pytest.mark.parametrize("scheme", sorted(FORBIDDEN))
def test_other_services_to_the_metadata_service_are_refused_at_send(settings, scheme):
    channel = chat_channel(settings)
    [result] = send(channel, [message(1, FORBIDDEN[scheme].format(host="169.254.169.254", port=80))])
    assert isinstance(result.error, PermanentChannelError) and result.error.reason == "ssrf"


def test_every_generic_webhook_scheme_is_checked(settings, http_sink):
    channel = chat_channel(settings)
    results = send(channel, [message(n, f"{scheme}://127.0.0.1:{http_sink.port}/hook") for n, scheme in enumerate(["json", "jsons", "form", "xml"])])
    assert [result.error.reason for result in results] == ["ssrf"] * 4
    assert http_sink.received == []


def test_the_template_parameter_is_refused(settings):
    channel = chat_channel(settings)
    [result] = send(channel, [message(1, f"{SLACK}?template=file:///etc/passwd")])
    assert result.error.reason == "ssrf"
    assert "template" in result.error.message


def test_a_refused_shared_url_is_a_configuration_error(settings):
    with pytest.raises(ChannelConfigurationError, match="ntfy://"):
        chat_channel(settings, url="ntfy://127.0.0.1/alerts", allow_private=True)


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("json://127.0.0.1:8000/hook", "127.0.0.1", 8000),
        ("jsons://user:pw@hooks.example/a/b", "hooks.example", 443),
        ("json://hooks.example", "hooks.example", 80),
        ("json://[::1]:81/x", "::1", 81),
        ("workflow://prod-1.westeurope.logic.azure.com/abc123/sig-456", "prod-1.westeurope.logic.azure.com", 443),
        (SLACK, "", 0),
        ("https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ", "", 0),
        ("tgram://123456789:abcdefg_hijklmnop/12315544/", "", 0),
        ("wecombot://botkey", "", 0),
        ("dingtalk://secret@token/", "", 0),
        ("feishu://token", "", 0),
        ("discord://1234/abcd", "", 0),
    ],
)
def test_allowed_services_and_the_host_each_one_names(url, host, port):
    target = inspect_chat_address(url)
    assert (target.host, target.port) == (host, port)
    assert target.service.redirects is False


@pytest.mark.parametrize("address", ["not a url", "nosuchservice://token", "https://hooks.slack.com/x", "", "   "])
def test_an_invalid_or_unsupported_url_fails_without_sending(settings, http_sink, address):
    channel = chat_channel(settings, allow_private=True)
    [result] = send(channel, [message(1, address)])
    assert isinstance(result.error, InvalidAddressError)
    assert http_sink.received == []


def test_the_error_message_does_not_leak_the_webhook_token(settings):
    channel = chat_channel(settings)
    results = send(channel, 
        [message(1, "nosuchservice://SECRET-TOKEN/x"), message(2, "json://127.0.0.1/SECRET-TOKEN")]
    )
    assert [result.error.reason for result in results] == ["ssrf", "ssrf"]
    assert all("SECRET-TOKEN" not in result.error.message for result in results)


# --- Everything else ------------------------------------------------------------------------


def test_a_server_error_is_transient(settings, http_sink):
    http_sink.status = 500
    channel = chat_channel(settings, allow_private=True)

    [result] = send(channel, [message(1, hook_url(http_sink))])

    assert isinstance(result.error, TransientChannelError)
    assert result.error.reason == "chat_not_accepted"
    assert len(http_sink.received) == 1


def test_an_unreachable_server_is_transient(settings, unused_port):
    channel = chat_channel(settings, allow_private=True)
    [result] = send(channel, [message(1, f"json://127.0.0.1:{unused_port}/hook")])
    assert isinstance(result.error, TransientChannelError)


def test_a_name_that_does_not_resolve_is_transient(settings, monkeypatch):
    def no_answer(*args, **kwargs):
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", no_answer)
    channel = chat_channel(settings)
    [result] = send(channel, [message(1, "jsons://hooks.example/hook")])
    assert isinstance(result.error, TransientChannelError) and result.error.reason == "dns"


def test_one_failure_does_not_stop_the_batch(settings, http_sink):
    channel = chat_channel(settings, allow_private=True)
    results = send(channel, [message(1, "bogus"), message(2, hook_url(http_sink))])
    assert [result.ok for result in results] == [False, True]
    assert len(http_sink.received) == 1


def test_an_empty_message_is_refused(settings, http_sink):
    channel = chat_channel(settings, allow_private=True)
    [result] = send(channel, [message(1, hook_url(http_sink), subject="", text="")])
    assert result.error.reason == "empty_message"
    assert http_sink.received == []


def test_unknown_options_are_a_configuration_error(settings):
    with pytest.raises(ChannelConfigurationError, match="allow_privat"):
        chat_channel(settings, allow_privat=True)


@pytest.mark.parametrize("value", ["yes", ["not-a-network"], 3])
def test_a_malformed_allow_private_is_a_configuration_error(settings, value):
    with pytest.raises(ChannelConfigurationError, match="allow_private"):
        chat_channel(settings, allow_private=value)


# --- Through the pipeline -------------------------------------------------------------------


@pytest.mark.django_db
def test_a_delivery_to_a_refused_address_fails_with_a_reason_a_marketer_can_read(settings, http_sink):
    """An address saved before these checks existed (or written around the admin) fails at send."""
    from notifications import ledger
    from notifications.api import notify
    from notifications.models import Delivery
    from tests.factories import CategoryFactory, RecipientProfileFactory, UserFactory

    chat_channel(settings, allow_private=True)
    profile = RecipientProfileFactory(
        user=UserFactory(username="ops"), chat_ids={"apprise": f"ntfy://127.0.0.1:{http_sink.port}/alerts"}
    )
    category = CategoryFactory(key="deploys", name="Deploys", kind="transactional", user_can_opt_out=False)
    notify([profile.user], title="Deploy", body="Build 7 is green", channels=["chat"], category=category)

    summary = ledger.deliveries_send(delivery_ids=list(Delivery.objects.values_list("id", flat=True)))

    delivery = Delivery.objects.get()
    assert (summary.sent, summary.failed) == (0, 1)
    assert (delivery.status, delivery.status_reason) == ("failed", "ssrf")
    assert "ntfy://" in delivery.last_error and "Slack" in delivery.last_error
    assert http_sink.received == []
