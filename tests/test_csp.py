"""Content-Security-Policy (config/csp.py): a strict policy on recipient pages, Unfold's minimum in
the admin, nothing loadable from JSON; the nonce pages use is the one in the header.

The browser half (no violation on any page, features still working) is tests/e2e/test_csp.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from notifications import tokens
from notifications.models import Audience, Campaign, Category
from tests.factories import DeliveryFactory, MessageTemplateFactory, RecipientProfileFactory

pytestmark = pytest.mark.django_db

HEADER = "Content-Security-Policy"
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
# Rendered by WeasyPrint or sent as email, never shown by a browser under our policy.
NOT_WEB_PAGES = ("emails", "reports")


def directives(response) -> dict[str, list[str]]:
    assert HEADER in response, f"no {HEADER} on {response.request['PATH_INFO']}"
    policy = {}
    for part in response[HEADER].split(";"):
        name, *sources = part.split()
        assert name not in policy, f"{name} twice"
        policy[name] = sources
    return policy


def nonce_of(policy: dict[str, list[str]]) -> str:
    nonces = [s for s in policy["script-src"] if s.startswith("'nonce-")]
    assert len(nonces) == 1
    return nonces[0][len("'nonce-"):-1]


STRICT = {
    "default-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "connect-src": ["'self'"],
    "frame-ancestors": ["'none'"],
    "base-uri": ["'self'"],
    "form-action": ["'self'"],
    "object-src": ["'none'"],
}


def assert_strict(response) -> None:
    policy = directives(response)
    nonce = nonce_of(policy)
    assert policy.pop("script-src") == ["'self'", f"'nonce-{nonce}'"]
    assert policy == STRICT
    assert "unsafe" not in response[HEADER]
    # Every script the page loads is ours (src) or carries this response's nonce; nothing inline.
    html = response.content.decode()
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert "src=" in tag or 'type="application/json"' in tag, tag
        if "nonce=" in tag:
            assert f'nonce="{nonce}"' in tag, tag
    assert not re.search(r"\son[a-z]+\s*=", html), "inline event handler"
    assert not re.search(r"\sstyle\s*=", html), "style attribute (blocked by style-src 'self')"


@pytest.fixture
def reader():
    return RecipientProfileFactory().user


@pytest.fixture
def superuser_client(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "x")
    RecipientProfileFactory(user=user)
    client.force_login(user)
    return client


# --- Recipient pages -----------------------------------------------------------------------------


def test_login_page_is_strict(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert_strict(response)


def test_inbox_preferences_and_badge_are_strict(client, reader):
    client.force_login(reader)
    for name in ("notifications:inbox", "notifications:preferences", "notifications:badge"):
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        assert_strict(response)


def test_inbox_scripts_carry_the_nonce_of_their_own_response(client, reader):
    client.force_login(reader)
    first, second = client.get(reverse("notifications:inbox")), client.get(reverse("notifications:inbox"))
    nonces = [nonce_of(directives(r)) for r in (first, second)]
    assert nonces[0] != nonces[1]  # fresh for every request
    for response, nonce in zip((first, second), nonces):
        assert f'nonce="{nonce}"' in response.content.decode()  # django-htmx's script tags


def test_htmx_on_recipient_pages_neither_injects_styles_nor_evals(client, reader):
    client.force_login(reader)
    html = client.get(reverse("notifications:inbox")).content.decode()
    assert """<meta name="htmx-config" content='{"includeIndicatorStyles": false, "allowEval": false}'>""" in html


def test_token_pages_are_strict(client, reader):
    delivery = DeliveryFactory(recipient=reader, status="sent")
    unsubscribe = client.get(reverse("notifications:unsubscribe", args=[tokens.unsubscribe_token(delivery.pk)]))
    preferences = client.get(reverse("notifications:preferences_token", args=[tokens.preferences_token(reader.pk)]))
    bad_token = client.get(reverse("notifications:unsubscribe", args=["not-a-token"]))
    for response in (unsubscribe, preferences, bad_token):
        assert response.status_code in (200, 400, 404)
        assert_strict(response)


def test_not_found_page_is_strict(client):
    response = client.get("/notifications/no-such-page/")
    assert response.status_code == 404
    assert_strict(response)


# --- Admin pages ---------------------------------------------------------------------------------


def assert_admin(response) -> None:
    policy = directives(response)
    nonce = nonce_of(policy)
    # Alpine.js (Unfold) needs eval; inline scripts still need the nonce.
    assert policy.pop("script-src") == ["'self'", f"'nonce-{nonce}'", "'unsafe-eval'"]
    # Unfold's inline theme <style>, Alpine's style bindings, the previewed email's CSS.
    assert policy.pop("style-src") == ["'self'", "'unsafe-inline'"]
    assert policy == {k: v for k, v in STRICT.items() if k != "style-src"}
    for tag in re.findall(r"<script\b[^>]*>", response.content.decode()):
        assert "src=" in tag or 'type="application/json"' in tag or f'nonce="{nonce}"' in tag, tag


def test_admin_login_has_the_admin_policy(client):
    response = client.get(reverse("admin:login"))
    assert response.status_code == 200
    assert_admin(response)


def test_admin_pages_have_the_admin_policy(superuser_client):
    template = MessageTemplateFactory(email_body="<p style='color: red'>Hi</p><script>alert(1)</script>")
    audience = Audience.objects.create(name="Everyone", kind=Audience.Kind.RULES, rules={})
    category = Category.objects.create(key="news", name="News", kind="marketing")
    campaign = Campaign.objects.create(
        name="Spring", audience=audience, template=template, category=category, channels=["email"]
    )
    urls = [
        reverse("admin:index"),
        reverse("admin:notifications_campaign_change", args=[campaign.pk]),
        reverse("admin:notifications_audience_add"),
        reverse("admin:notifications_messagetemplate_preview", args=[template.pk]) + "?recipient=root",
        reverse("dashboard:analytics"),
        reverse("reports:index"),
    ]
    for url in urls:
        response = superuser_client.get(url)
        assert response.status_code == 200, url
        assert_admin(response)


def test_cancel_confirmation_is_not_an_inline_handler(superuser_client):
    template = MessageTemplateFactory()
    audience = Audience.objects.create(name="Everyone", kind=Audience.Kind.RULES, rules={})
    category = Category.objects.create(key="news", name="News", kind="marketing")
    campaign = Campaign.objects.create(
        name="Spring", audience=audience, template=template, category=category, channels=["email"],
        status=Campaign.Status.SCHEDULED,
    )
    html = superuser_client.get(reverse("admin:notifications_campaign_change", args=[campaign.pk])).content.decode()
    assert 'data-action="cancel"' in html
    assert "data-confirm=" in html and "signalbox/confirm.js" in html
    assert not re.search(r"\sonclick\s*=", html)


# --- Other responses -----------------------------------------------------------------------------


def test_json_endpoint_gets_the_minimal_policy(client, reader):
    client.force_login(reader)
    response = client.post(reverse("push:subscribe"), data="{not json", content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"].startswith("application/json")
    assert response[HEADER] == "default-src 'none'; frame-ancestors 'none'"


def test_one_click_unsubscribe_text_response_gets_the_minimal_policy(reader):
    delivery = DeliveryFactory(recipient=reader, status="sent")
    url = reverse("notifications:unsubscribe", args=[tokens.unsubscribe_token(delivery.pk)])
    response = Client().post(url, {"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200
    assert response[HEADER] == "default-src 'none'; frame-ancestors 'none'"


def test_static_files_get_the_minimal_policy(client):
    response = client.get("/static/signalbox/app.css")
    assert response.status_code == 200
    assert response[HEADER] == "default-src 'none'; frame-ancestors 'none'"


def test_debug_error_pages_go_without_a_policy(client, settings):
    """Django 5.2's debug 404/500 pages carry inline CSS/JS without a nonce; only under DEBUG."""
    settings.DEBUG = True
    response = client.get("/notifications/no-such-page/")
    assert response.status_code == 404
    assert HEADER not in response


def test_switch_turns_the_header_off(client, reader, settings):
    settings.SIGNALBOX_CSP = False
    client.force_login(reader)
    response = client.get(reverse("notifications:inbox"))
    assert response.status_code == 200
    assert HEADER not in response
    assert "nonce=" not in response.content.decode()


# --- Templates -----------------------------------------------------------------------------------


def web_templates():
    for path in sorted(TEMPLATES.rglob("*.html")):
        if path.relative_to(TEMPLATES).parts[0] not in NOT_WEB_PAGES:
            yield path


@pytest.mark.parametrize("path", list(web_templates()), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_templates_hold_no_inline_script(path):
    """Inline scripts run only with the nonce; event handlers and javascript: URLs never."""
    source = path.read_text()
    for tag in re.findall(r"<script\b[^>]*>", source):
        assert "src=" in tag or "nonce=" in tag, f"{path.name}: {tag}"
    assert not re.search(r"<[^>]*(?:\s|%\})on[a-z]+\s*=", source), f"{path.name}: inline event handler"
    assert "javascript:" not in source.lower(), f"{path.name}: javascript: URL"
