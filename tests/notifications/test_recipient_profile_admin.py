"""Saving a recipient's personal chat address in the admin: only the documented chat services,
and a host that resolves only to public addresses (``channels_adapters.chat.validate_chat_address``).

Made as an Operator (who manages recipients' profiles) over HTTP with the Django test client; a
name's answers are faked at ``socket.getaddrinfo``, the boundary between us and DNS.
"""

from __future__ import annotations

import json
import socket

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from channels_adapters.chat import validate_chat_ids
from tests.factories import RecipientProfileFactory, UserFactory

pytestmark = pytest.mark.django_db

SLACK = "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"

FORBIDDEN = [
    "ntfy://{host}/alerts",
    "gotify://{host}/abcdefghijklmno",
    "mmost://{host}/abcdefghijklmnopqrstuvwxyz",
    "rocket://user:pass@{host}/#general",
    "matrix://user:pass@{host}/#room",
    "apprise://{host}/token",
    "rsyslog://{host}",
    "form://{host}/hook",
    "xml://{host}/hook",
]


@pytest.fixture
def operator_client(client):
    operator = UserFactory(username="otto", is_staff=True)
    operator.groups.add(Group.objects.get(name="Operators"))
    client.force_login(operator)
    return client


@pytest.fixture
def profile():
    return RecipientProfileFactory(user=UserFactory(username="ada"), chat_ids={})


@pytest.fixture
def dns(monkeypatch):
    """``dns["name"] = "address"`` makes that name resolve to that address (others: real DNS)."""
    answers: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if host not in answers:
            return real(host, port, family, type, proto, flags)
        if answers[host] is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], int(port or 0)))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def save_chat_ids(client, profile, chat_ids):
    url = reverse("admin:notifications_recipientprofile_change", args=[profile.pk])
    data = {
        "user": profile.user_id,
        "phone": profile.phone,
        "timezone": profile.timezone,
        "locale": profile.locale,
        "chat_ids": json.dumps(chat_ids),
        "quiet_hours_start": "",
        "quiet_hours_end": "",
        "frequency_cap_per_day": "",
    }
    return client.post(url, data)


def chat_ids_errors(response) -> list[str]:
    assert response.status_code == 200, "the form should be shown again with an error"
    return list(response.context["adminform"].form.errors.get("chat_ids", []))


@pytest.mark.parametrize("template", FORBIDDEN)
@pytest.mark.parametrize("host", ["127.0.0.1:8080", "169.254.169.254"])
def test_other_services_are_refused_when_saved(operator_client, profile, template, host):
    address = template.format(host=host)
    response = save_chat_ids(operator_client, profile, {"apprise": address})

    [error] = chat_ids_errors(response)
    assert "Slack" in error and f"{address.split('://')[0]}://" in error
    profile.refresh_from_db()
    assert profile.chat_ids == {}


def test_a_webhook_whose_name_resolves_to_loopback_is_refused_when_saved(operator_client, profile, dns):
    dns["hooks.example"] = "127.0.0.1"

    response = save_chat_ids(operator_client, profile, {"apprise": "json://hooks.example/hook"})

    [error] = chat_ids_errors(response)
    assert "127.0.0.1" in error
    profile.refresh_from_db()
    assert profile.chat_ids == {}


@pytest.mark.parametrize("address", ["json://169.254.169.254/latest/meta-data/", "jsons://10.0.0.8/hook", "json://[::1]/hook"])
def test_a_webhook_on_an_internal_address_is_refused_when_saved(operator_client, profile, address):
    [error] = chat_ids_errors(save_chat_ids(operator_client, profile, {"apprise": address}))
    assert "Signalbox never sends to" in error


def test_a_name_that_does_not_resolve_is_a_form_error(operator_client, profile, dns):
    dns["nowhere.example"] = None
    [error] = chat_ids_errors(save_chat_ids(operator_client, profile, {"apprise": "jsons://nowhere.example/hook"}))
    assert "nowhere.example" in error


def test_the_template_parameter_is_refused_when_saved(operator_client, profile):
    [error] = chat_ids_errors(save_chat_ids(operator_client, profile, {"apprise": f"{SLACK}?template=file:///etc/passwd"}))
    assert "template" in error


@pytest.mark.parametrize(
    "address",
    [SLACK, "tgram://123456789:abcdefg_hijklmnop/12315544/", "wecombot://botkey", "dingtalk://secret@token/"],
)
def test_a_documented_service_is_saved(operator_client, profile, address):
    response = save_chat_ids(operator_client, profile, {"apprise": address, "slack": "U0123"})
    assert response.status_code == 302
    profile.refresh_from_db()
    assert profile.chat_ids == {"apprise": address, "slack": "U0123"}


def test_a_webhook_on_a_public_host_is_saved(operator_client, profile, dns):
    dns["hooks.example"] = "93.184.216.34"
    response = save_chat_ids(operator_client, profile, {"apprise": "jsons://hooks.example/hook"})
    assert response.status_code == 302
    profile.refresh_from_db()
    assert profile.chat_ids["apprise"] == "jsons://hooks.example/hook"


@pytest.mark.parametrize(("value", "fragment"), [(["slack://x"], "JSON object"), ({"apprise": 7}, "text")])
def test_chat_ids_of_the_wrong_shape_are_refused(value, fragment):
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError, match=fragment):
        validate_chat_ids(value)


@pytest.mark.django_db
def test_the_profile_zone_is_a_searchable_list_of_canonical_zones(operator_client):
    alias = RecipientProfileFactory(user=UserFactory(username="bo"), timezone="US/Pacific", chat_ids={})
    page = operator_client.get(reverse("admin:notifications_recipientprofile_change", args=[alias.pk])).content.decode()
    assert "data-tz-picker" in page and "signalbox/timezone_picker.js" in page
    assert '<option value="America/Los_Angeles" selected>' in page
    assert 'value="Factory"' not in page and 'value="localtime"' not in page and 'value="US/Pacific"' not in page
