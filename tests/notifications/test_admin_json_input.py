"""Admin JSON fields against nested, huge or unstorable JSON: a form error, never a 500.

Each form is posted over HTTP as the role that uses it (a Marketer for triggers, templates and
audiences, an Operator for recipients' profiles). On the old code ``forms.JSONField`` called
``json.loads``, whose ``RecursionError`` escaped as a 500 when cleaning and again when the bound
value was shown back. A last test walks every model admin so a new JSON field cannot miss it.
"""

from __future__ import annotations

import json
from html.parser import HTMLParser

import pytest
from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import RequestFactory
from django.urls import reverse

from accounts.roles import roles_ensure
from notifications.jsonsafe import SafeJSONField
from notifications.models import Audience, Category, MessageTemplate, RecipientProfile, SignalTrigger
from tests.factories import RecipientProfileFactory, UserFactory

pytestmark = pytest.mark.django_db

DEEP_LIST = "[" * 5000 + "]" * 5000
DEEP_OBJECT = '{"a":' * 1500 + "1" + "}" * 1500
UNCLOSED = "[" * 20_000


class _FormFields(HTMLParser):
    """The values a browser would post from an admin change form (``<form id="<model>_form">``)."""

    def __init__(self) -> None:
        super().__init__()
        self.data: dict[str, list[str]] = {}
        self._in_form = self._done = False
        self._textarea: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if self._done:
            return
        if tag == "form" and (a.get("id") or "").endswith("_form"):  # the admin's change form
            self._in_form = True
        if not self._in_form or "name" not in a and tag != "option":
            return
        if tag == "input" and a.get("type") not in ("submit", "button", "file", "image"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.data.setdefault(a["name"], []).append(a.get("value") or ("on" if a.get("type") == "checkbox" else ""))
        elif tag == "textarea":
            self._textarea = a["name"]
            self.data.setdefault(a["name"], []).append("")
        elif tag == "select":
            self._select = a["name"]
        elif tag == "option" and self._select and "selected" in a:
            self.data.setdefault(self._select, []).append(a.get("value", ""))

    def handle_data(self, data):
        if self._textarea:
            self.data[self._textarea][-1] += data

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "select":
            self._select = None
        elif tag == "form" and self._in_form:
            self._in_form, self._done = False, True


def page_form(client, url: str) -> dict[str, list[str]]:
    page = client.get(url)
    assert page.status_code == 200
    parser = _FormFields()
    parser.feed(page.content.decode())
    data = parser.data
    data.pop("csrfmiddlewaretoken", None)
    return data


def staff(username: str, group: str):
    roles_ensure()
    user = UserFactory(username=username, is_staff=True)
    RecipientProfileFactory(user=user)
    user.groups.add(Group.objects.get(name=group))
    return user


@pytest.fixture
def marketer_client(client):
    client.force_login(staff("mia", "Marketers"))
    return client


@pytest.fixture
def operator_client(client):
    client.force_login(staff("otto", "Operators"))
    return client


@pytest.fixture
def ada():
    return RecipientProfileFactory(user=UserFactory(username="ada"), chat_ids={"telegram": "42"}).user


def assert_form_error(response, text: str) -> None:
    assert response.status_code == 200, response.status_code
    assert text in response.content.decode()


# --- Triggers: conditions ------------------------------------------------------------------------

@pytest.fixture
def trigger_form():
    category = Category.objects.get_or_create(key="orders", defaults={"name": "Orders", "kind": "transactional"})[0]
    template = MessageTemplate.objects.create(key="paid", name="Paid", inapp_title="Paid", category=category)

    def data(conditions: str) -> dict:
        return {
            "name": "Hostile", "is_active": "on", "signal": "model.post_save", "model": "demo_shop.order",
            "events": ["created"], "conditions": conditions, "recipient_path": "customer.user",
            "template": template.pk, "category": category.pk, "channels": ["inapp"], "dedupe_window": "0",
            "max_recipients": "1", "_save": "Save",
        }

    return data


@pytest.mark.parametrize("conditions", [DEEP_LIST, DEEP_OBJECT, UNCLOSED], ids=["lists", "objects", "unclosed"])
def test_nested_trigger_conditions_are_a_form_error(marketer_client, trigger_form, conditions):
    response = marketer_client.post(reverse("admin:notifications_signaltrigger_add"), trigger_form(conditions))

    assert_form_error(response, "nested too deeply")
    assert not SignalTrigger.objects.exists()


def test_huge_or_unstorable_trigger_conditions_are_a_form_error(marketer_client, trigger_form):
    url = reverse("admin:notifications_signaltrigger_add")
    huge = json.dumps([{"field": "total", "op": "gte", "value": 1}] * 3000)
    assert_form_error(marketer_client.post(url, trigger_form(huge)), "too long")
    nul = '[{"field": "number", "op": "eq", "value": "a\\u0000b"}]'
    assert_form_error(marketer_client.post(url, trigger_form(nul)), "cannot be stored")
    assert not SignalTrigger.objects.exists()


# --- Recipients' chat ids: the profile admin and the user admin's inline -------------------------

@pytest.mark.parametrize("chat_ids", [DEEP_LIST, DEEP_OBJECT, '{"telegram": NaN}'], ids=["lists", "objects", "NaN"])
def test_nested_chat_ids_are_a_form_error_on_the_profile(operator_client, ada, chat_ids):
    url = reverse("admin:notifications_recipientprofile_change", args=[ada.recipient_profile.pk])
    data = page_form(operator_client, url)
    data["chat_ids"] = [chat_ids]

    response = operator_client.post(url, data)

    assert_form_error(response, "Enter a valid JSON" if "NaN" in chat_ids else "nested too deeply")
    assert RecipientProfile.objects.get(user=ada).chat_ids == {"telegram": "42"}


def test_nested_chat_ids_are_a_form_error_on_the_users_page(operator_client, ada):
    url = reverse("admin:auth_user_change", args=[ada.pk])
    data = page_form(operator_client, url)
    assert "recipient_profile-0-chat_ids" in data  # the inline is on the page
    data["recipient_profile-0-chat_ids"] = [DEEP_LIST]

    response = operator_client.post(url, data)

    assert_form_error(response, "nested too deeply")
    assert RecipientProfile.objects.get(user=ada).chat_ids == {"telegram": "42"}


# --- Template preview variables and audience rules -----------------------------------------------

@pytest.mark.parametrize("variables", [DEEP_LIST, '{"coupon": ' + "[" * 900 + "]" * 900 + "}"],
                         ids=["past the recursion limit", "under it but deep"])
def test_nested_preview_variables_are_a_form_error(marketer_client, variables):
    template = MessageTemplate.objects.create(key="welcome", name="Welcome", sms_text="Code {{ coupon }}",
                                              variables=["coupon"])
    url = reverse("admin:notifications_messagetemplate_preview", args=[template.pk])

    response = marketer_client.get(url, {"variables": variables})

    assert response.status_code == 200
    assert response.context["preview"] is None
    assert "nested too deeply" in response.content.decode()


@pytest.mark.parametrize("rules", [DEEP_LIST, DEEP_OBJECT], ids=["lists", "objects"])
def test_nested_audience_rules_are_a_form_error(marketer_client, rules):
    response = marketer_client.post(reverse("admin:notifications_audience_add"), {
        "name": "Hostile", "description": "", "kind": "rules", "rules": rules, "_save": "Save",
    })

    assert_form_error(response, "nested too deeply")
    assert not Audience.objects.exists()


# --- Every editable JSON field of every model admin ----------------------------------------------

def test_every_json_field_in_the_admin_is_parsed_safely():
    """A new model admin (or inline) with an editable JSON field fails here until it uses
    ``SafeJSONField`` (``notifications.jsonsafe.SAFE_JSON_FORMFIELDS``)."""
    root = get_user_model().objects.create_superuser("root", "root@example.com", "pw")
    request = RequestFactory().get("/admin/")
    request.user = root
    unsafe = []
    for model, model_admin in admin.site._registry.items():
        forms_to_check = []
        if model_admin.has_add_permission(request) or model_admin.has_change_permission(request):
            forms_to_check.append(("", model_admin.get_form(request)))  # read-only admins edit nothing
        forms_to_check += [
            (f" inline {type(inline).__name__}", inline.get_formset(request).form)
            for inline in model_admin.get_inline_instances(request)
            if inline.has_add_permission(request, None) or inline.has_change_permission(request)
        ]
        for where, form_class in forms_to_check:
            for name, field in form_class.base_fields.items():
                if isinstance(field, forms.JSONField) and not isinstance(field, SafeJSONField):
                    unsafe.append(f"{model._meta.label}{where}: {name}")
    assert unsafe == []
