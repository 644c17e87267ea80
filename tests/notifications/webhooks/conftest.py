import pytest

from notifications.models import WebhookEndpoint, WebhookEvent
from notifications.webhooks.events import routes_forget
from notifications.webhooks.services import webhook_endpoint_save
from tests.fake_webhook_receiver import FakeWebhookReceiver


@pytest.fixture
def receiver():
    server = FakeWebhookReceiver(slow_seconds=1.5)
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fresh_routes():
    routes_forget()
    yield
    routes_forget()


@pytest.fixture
def loopback_allowed(settings):
    """The receiver runs on 127.0.0.1: allow that one address (the default refuses loopback)."""
    settings.SIGNALBOX_WEBHOOK_ALLOW_PRIVATE = ["127.0.0.1/32"]


def make_endpoint(url: str, events=None, **fields) -> tuple[WebhookEndpoint, str]:
    endpoint = WebhookEndpoint(url=url, events=list(events or WebhookEvent.values), **fields)
    shown = webhook_endpoint_save(endpoint=endpoint)
    return endpoint, shown.secret


@pytest.fixture
def endpoint(db, receiver, loopback_allowed):
    return make_endpoint(receiver.url)
