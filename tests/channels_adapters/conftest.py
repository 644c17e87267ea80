"""Fixtures for the channel adapters: a real SMTP server to send to, a clean locmem outbox."""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from channels_adapters.locmem import LocmemChannel


@dataclass(frozen=True)
class ReceivedMail:
    peer: tuple
    mail_from: str
    rcpt_tos: list[str]
    content: bytes


class SinkHandler:
    """Stores what arrives; ``refuse[address] = 450`` (or 550) refuses that recipient at RCPT.

    ``connections`` counts TCP connections, ``sessions`` EHLO greetings. ``data_delay`` seconds
    pass before the reply to a message's final "." (a relay that takes its time to accept);
    ``pipelining`` advertises PIPELINING (RFC 2920) in the EHLO reply.
    """

    def __init__(self) -> None:
        self.received: list[ReceivedMail] = []
        self.sessions = 0
        self.connections = 0
        self.refuse: dict[str, int] = {}
        self.data_delay = 0.0
        self.pipelining = False

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions += 1
        session.host_name = hostname
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        code = self.refuse.get(address)
        if code:
            return f"{code} Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append(ReceivedMail(session.peer, envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        return "250 Message accepted for delivery"


class CountingSMTP(SMTP):
    def connection_made(self, transport) -> None:
        self.event_handler.connections += 1
        super().connection_made(transport)


class SinkController(Controller):
    def factory(self) -> SMTP:
        return CountingSMTP(self.handler, **self.SMTP_kwargs)


@dataclass
class SmtpSink:
    host: str
    port: int
    handler: SinkHandler


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp_sink():
    handler = SinkHandler()
    controller = SinkController(handler, hostname="127.0.0.1", port=free_port(), server_hostname="sink.test")
    controller.start()
    handler.connections = 0  # start() makes one connection to check the server is up
    try:
        yield SmtpSink(controller.hostname, controller.port, handler)
    finally:
        controller.stop()


@pytest.fixture
def unused_port() -> int:
    """A local port nothing listens on (for "server unreachable")."""
    return free_port()


@pytest.fixture(autouse=True)
def empty_locmem_outbox():
    LocmemChannel.outbox.clear()
    yield
    LocmemChannel.outbox.clear()


# --- A local HTTP server (chat webhooks, web push service) -----------------------------------


@dataclass(frozen=True)
class ReceivedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    peer: tuple = ()  # the client's (host, port): one per TCP connection


class HttpSink:
    """Records every request; answers ``status`` with ``response_headers`` (settable per test)."""

    def __init__(self, server) -> None:
        self.server = server
        self.host, self.port = server.server_address[:2]
        self.received: list[ReceivedRequest] = []
        self.status = 200
        self.response_headers: dict[str, str] = {}
        self.latency = 0.0  # seconds between receiving a request and answering it

    def url(self, path: str = "/", scheme: str = "http") -> str:
        return f"{scheme}://{self.host}:{self.port}{path}"


def _sink_handler(sink_holder: list):
    from http.server import BaseHTTPRequestHandler

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            sink = sink_holder[0]
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if len(body) < length:  # the client went away mid-request: nothing was posted
                self.close_connection = True
                return
            sink.received.append(
                ReceivedRequest(self.command, self.path, dict(self.headers.items()), body, self.client_address)
            )
            if sink.latency:
                time.sleep(sink.latency)
            self.send_response(sink.status)
            for name, value in sink.response_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_PUT = do_DELETE = _handle

        def log_message(self, format, *args) -> None:  # keep test output quiet
            pass

    return Handler


@pytest.fixture
def http_sink():
    import threading
    from http.server import ThreadingHTTPServer

    holder: list = []
    class SinkServer(ThreadingHTTPServer):
        request_queue_size = 128  # a worker's lanes connect at once

    server = SinkServer(("127.0.0.1", 0), _sink_handler(holder))
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
def fake_twilio():
    """A local fake of Twilio's Messages API (``tests/fake_twilio.py``): ``base_url``,
    ``account_sid``, ``auth_token``, and what it received in ``requests``/``messages``."""
    from tests.fake_twilio import FakeTwilioServer

    server = FakeTwilioServer("AC" + "0123456789abcdef" * 2, "fake-twilio-auth-token")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_aliyun():
    """A local fake of Aliyun's SendSms API (``tests/fake_aliyun.py``), driven by the real SDK."""
    from tests.fake_aliyun import FakeAliyunServer

    server = FakeAliyunServer("LTAI-fake-access-key", "fake-aliyun-secret")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_tencent():
    """A local fake of Tencent Cloud's SendSms API (``tests/fake_tencent.py``), driven by the real SDK."""
    from tests.fake_tencent import FakeTencentServer

    server = FakeTencentServer("AKID-fake-secret-id", "fake-tencent-secret")
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_wechat():
    """A local fake of the WeChat Official Account API (``tests/fake_wechat.py``), driven by wechatpy."""
    from tests.fake_wechat import FakeWeChatServer

    server = FakeWeChatServer("wx0123456789abcdef", "fake-wechat-app-secret")
    server.start()
    try:
        yield server
    finally:
        server.stop()


WECHAT_DEFAULT_TEMPLATE = {"template_code": "tmpl-notice", "text_param": "first"}


@pytest.fixture
def wechat_templates() -> dict:
    """The ``templates`` OPTIONS of the ``wechat`` fixture's alias: a test module overrides this."""
    return {}


@pytest.fixture
def wechat(settings, fake_wechat, wechat_templates):
    """The ``wechat`` alias on the local fake, with ``wechat_templates`` and a default template;
    the cached access token is cleared before and after."""
    from django.core.cache import cache

    cache.clear()
    settings.NOTIFICATION_CHANNELS = {"wechat": {"BACKEND": "channels_adapters.wechat.WeChatChannel", "OPTIONS": {
        "app_id": fake_wechat.app_id, "app_secret": fake_wechat.app_secret, "base_url": fake_wechat.base_url,
        "timeout": 0.5, "templates": wechat_templates, "default_template": WECHAT_DEFAULT_TEMPLATE,
    }}}
    yield fake_wechat
    cache.clear()


@pytest.fixture
def fake_fcm():
    """A local fake of FCM HTTP v1 and Google's OAuth token endpoint (``tests/fake_fcm.py``)."""
    from tests.fake_fcm import FakeFcmServer

    server = FakeFcmServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fake_apns():
    """A local fake of APNs over HTTP/2 and TLS (``tests/fake_apns.py``), driven by aioapns."""
    from tests.fake_apns import FakeApnsServer

    server = FakeApnsServer(slow_seconds=1.0)
    server.start()
    try:
        yield server
    finally:
        server.stop()
