"""The message template admin: "Line N" errors on the right field, audit entries, the preview for
a real recipient and instance, and "send a test to me" (POST, CSRF, change permission)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from channels_adapters.locmem import LocmemChannel
from notifications import ledger
from notifications.models import AuditEntry, Delivery, MessageTemplate, Notification
from tests.factories import (
    MessageTemplateFactory,
    OrderFactory,
    RecipientProfileFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

ADD_URL = "admin:notifications_messagetemplate_add"
CHANGE_URL = "admin:notifications_messagetemplate_change"
PREVIEW_URL = "admin:notifications_messagetemplate_preview"
PARTS = ("email_subject", "email_body", "sms_text", "push_title", "push_body", "inapp_title", "inapp_body",
         "inapp_url", "chat_text")


def staff_with(*codenames: str, username: str | None = None):
    user = UserFactory(username=username or f"staff-{'-'.join(codenames) or 'none'}", is_staff=True,
                       email="marketer@example.com")
    RecipientProfileFactory(user=user)
    perms = Permission.objects.filter(content_type__app_label="notifications", codename__in=codenames)
    user.user_permissions.set(perms)
    return user


EDITOR_PERMS = ("view_messagetemplate", "add_messagetemplate", "change_messagetemplate",
                "view_messagetemplatevariant", "add_messagetemplatevariant", "change_messagetemplatevariant",
                "delete_messagetemplatevariant")


@pytest.fixture
def marketer():
    return staff_with(*EDITOR_PERMS, username="maya")


@pytest.fixture
def marketer_client(client, marketer):
    client.force_login(marketer)
    return client


@pytest.fixture
def grace():
    return RecipientProfileFactory(
        user=UserFactory(username="grace", first_name="Grace", last_name="Hopper", email="grace@example.com"),
        locale="en",
    ).user


def form_data(template: MessageTemplate | None = None, variants: list[dict] | None = None, **fields) -> dict:
    data = {"name": "Welcome", "key": "welcome", "locale": "en", "category": "", "variables": ""}
    if template is not None:
        data.update({name: getattr(template, name) for name in ("name", "key", "locale")})
        data["variables"] = ", ".join(template.variables)
        data.update({part: getattr(template, part) for part in PARTS})
    else:
        data.update({part: "" for part in PARTS})
        data.update({"email_subject": "Hello {{ recipient.first_name }}",
                     "email_body": "Hi **{{ recipient.first_name }}**", "inapp_title": "Welcome"})
    data.update(fields)
    variants = variants or []
    initial = [v for v in variants if v.get("id")]
    data.update({
        "variants-TOTAL_FORMS": str(len(variants)), "variants-INITIAL_FORMS": str(len(initial)),
        "variants-MIN_NUM_FORMS": "0", "variants-MAX_NUM_FORMS": "1000",
    })
    for index, variant in enumerate(variants):
        row = {"locale": "zh-hans", **{part: "" for part in PARTS}, **variant}
        if template is not None:
            row["template"] = str(template.pk)
        data.update({f"variants-{index}-{name}": value for name, value in row.items()})
    return data


def form_errors(response) -> dict[str, list[str]]:
    return response.context["adminform"].form.errors


# --- The form ------------------------------------------------------------------------------------

def test_problems_show_on_their_field_as_line_n_and_nothing_is_saved(marketer_client):
    response = marketer_client.post(reverse(ADD_URL), form_data(
        email_body="Hello\n\n{{ recipient.frist_name }}",
        sms_text="Hi\n{% for x in %}",
        inapp_body="{{ coupon }}",
    ))
    assert response.status_code == 200
    errors = form_errors(response)
    assert errors["email_body"] == ["Line 3: 'recipient' has no field 'frist_name'. Did you mean 'first_name'?"]
    assert errors["sms_text"][0].startswith("Line 2: ")
    assert errors["inapp_body"] == ["Line 1: 'coupon' is undefined."]
    assert "Line 3: &#x27;recipient&#x27; has no field" in response.content.decode()
    assert not MessageTemplate.objects.exists()
    assert not AuditEntry.objects.filter(action__startswith="message_template.").exists()


def test_a_runaway_loop_is_caught_before_saving(marketer_client):
    response = marketer_client.post(reverse(ADD_URL), form_data(
        chat_text="{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    ))
    assert response.status_code == 200
    assert form_errors(response)["chat_text"] == ["Line 1: Rendering took longer than 200 ms."]
    assert not MessageTemplate.objects.exists()


def test_declared_variables_are_allowed_in_parts_and_variants(marketer_client, marketer):
    response = marketer_client.post(reverse(ADD_URL), form_data(
        variables="coupon, order_number", sms_text="Code {{ coupon }}",
        variants=[{"locale": "zh-hans", "sms_text": "优惠码 {{ coupon }}"}],
    ))
    assert response.status_code == 302, form_errors(response)
    template = MessageTemplate.objects.get(key="welcome")
    assert template.variables == ["coupon", "order_number"]
    assert template.variants.get().sms_text == "优惠码 {{ coupon }}"
    assert template.updated_by == marketer
    entry = AuditEntry.objects.get(action="message_template.create")
    assert entry.actor == marketer and entry.target_id == str(template.pk)
    assert "sms_text" in entry.changes["fields"] and entry.changes["variants"] == {"zh-hans": "added"}


def test_variant_problems_show_on_the_variant(marketer_client):
    response = marketer_client.post(reverse(ADD_URL), form_data(
        variants=[{"locale": "zh-hans", "email_subject": "你好\n{{ coupon }}"}, {"locale": "en"}],
    ))
    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.forms[0].errors["email_subject"] == ["Line 2: 'coupon' is undefined."]
    assert "own locale" in formset.forms[1].errors["locale"][0]
    assert not MessageTemplate.objects.exists()


@pytest.mark.parametrize("value, message", [
    ("recipient", "always available"),
    ("9lives", "not a valid variable name"),
    ("_private", "not a valid variable name"),
])
def test_declared_variables_are_checked(marketer_client, value, message):
    response = marketer_client.post(reverse(ADD_URL), form_data(variables=value))
    assert message in form_errors(response)["variables"][0]


def test_an_edit_is_audited_with_the_changed_fields(marketer_client, marketer):
    template = MessageTemplateFactory(key="welcome")
    response = marketer_client.post(
        reverse(CHANGE_URL, args=[template.pk]),
        form_data(template, sms_text="New SMS for {{ recipient.first_name }}",
                  variants=[{"locale": "zh-hans", "inapp_title": "欢迎"}]),
    )
    assert response.status_code == 302, form_errors(response)
    template.refresh_from_db()
    assert template.sms_text == "New SMS for {{ recipient.first_name }}" and template.updated_by == marketer
    entry = AuditEntry.objects.get(action="message_template.edit")
    assert entry.actor == marketer
    assert entry.changes == {"fields": ["sms_text"], "variants": {"zh-hans": "added"}}

    unchanged = marketer_client.post(reverse(CHANGE_URL, args=[template.pk]), form_data(
        template, variants=[{"id": str(template.variants.get().pk), "locale": "zh-hans", "inapp_title": "欢迎"}],
    ))
    assert unchanged.status_code == 302, form_errors(unchanged)
    assert AuditEntry.objects.filter(action="message_template.edit").count() == 1


def test_editing_needs_the_change_permission(client):
    template = MessageTemplateFactory(key="welcome")
    client.force_login(staff_with("view_messagetemplate"))
    response = client.post(reverse(CHANGE_URL, args=[template.pk]), form_data(template, sms_text="x"))
    assert response.status_code == 403
    template.refresh_from_db()
    assert template.sms_text != "x"


# --- Preview -------------------------------------------------------------------------------------

def test_preview_renders_every_channel_for_a_real_recipient(marketer_client, grace):
    template = MessageTemplateFactory(
        key="welcome", email_body="Hi **{{ recipient.first_name }}**\n\nYour [account]({{ site_url }}/account).",
        sms_text="Hi {{ recipient.first_name }}, " + "x" * 160,
    )
    response = marketer_client.get(reverse(PREVIEW_URL, args=[template.pk]), {"recipient": "grace"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="email-subject">Hello Grace<' in html
    assert '<iframe sandbox="" srcdoc="' in html
    assert "&lt;strong" in html  # the email HTML, escaped into srcdoc
    assert "Your account (" in html  # the plain-text part
    assert 'data-segments="2"' in html and "GSM-7 · 2 segments" in html
    assert 'data-testid="inapp-title">Welcome, Grace<' in html
    assert 'data-testid="send-test"' in html
    preview = response.context["preview"]
    assert [c.channel for c in preview.channels] == ["email", "sms", "inapp", "webpush", "wechat", "mobilepush"]
    assert preview.locale == "en" and preview.ok


def test_preview_defaults_to_yourself_and_uses_the_recipients_locale(marketer_client, marketer):
    template = MessageTemplateFactory(key="welcome")
    template.variants.create(locale="zh-hans", email_subject="你好 {{ recipient.first_name }}")
    zh = RecipientProfileFactory(user=UserFactory(username="li", first_name="Lei"), locale="zh-hans").user
    mine = marketer_client.get(reverse(PREVIEW_URL, args=[template.pk]))
    assert mine.context["recipient"] == marketer
    by_id = marketer_client.get(reverse(PREVIEW_URL, args=[template.pk]), {"recipient": str(zh.pk)})
    assert by_id.context["preview"].locale == "zh-hans"
    assert 'data-testid="email-subject">你好 Lei<' in by_id.content.decode()
    forced = marketer_client.get(reverse(PREVIEW_URL, args=[template.pk]), {"recipient": "li", "locale": "en"})
    assert 'data-testid="email-subject">Hello Lei<' in forced.content.decode()


def test_preview_with_a_trigger_instance_sees_only_allow_listed_fields(marketer_client, grace):
    template = MessageTemplateFactory(
        key="paid", sms_text="Order {{ instance.number }} of {{ instance.total }} is paid."
    )
    order = OrderFactory(number="SO-4242", total="99.50")
    response = marketer_client.get(reverse(PREVIEW_URL, args=[template.pk]), {
        "recipient": "grace", "instance_model": "demo_shop.order", "instance_id": str(order.pk),
    })
    assert 'data-testid="sms-text">Order SO-4242 of 99.50 is paid.<' in response.content.decode()
    missing = marketer_client.get(reverse(PREVIEW_URL, args=[template.pk]), {
        "instance_model": "demo_shop.order", "instance_id": "999999",
    })
    assert missing.context["preview"] is None
    assert "No demo_shop.order with id 999999" in missing.content.decode()


def test_preview_shows_render_errors_clearly(marketer_client):
    template = MessageTemplateFactory(key="broken", sms_text="Hi\n{{ 1 / 0 }}", inapp_title="{{ recipient.nope }}")
    response = marketer_client.get(reverse(PREVIEW_URL, args=[template.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "SMS text:</strong> Line 2: division by zero" in html
    assert "In-app title:</strong> Line 1: &#x27;dict object&#x27; has no attribute &#x27;nope&#x27;" in html
    assert not response.context["preview"].ok


def test_an_unknown_recipient_is_a_form_error(marketer_client):
    template = MessageTemplateFactory(key="welcome")
    response = marketer_client.get(reverse(PREVIEW_URL, args=[template.pk]), {"recipient": "nobody"})
    assert response.context["preview"] is None
    assert "No user “nobody”." in response.content.decode()


def test_preview_needs_the_view_permission(client):
    template = MessageTemplateFactory(key="welcome")
    client.force_login(staff_with("view_campaign"))
    assert client.get(reverse(PREVIEW_URL, args=[template.pk])).status_code == 403


# --- Send a test to me ---------------------------------------------------------------------------

def test_send_a_test_delivers_the_preview_to_me(marketer_client, marketer, grace, locmem_channels,
                                                django_capture_on_commit_callbacks):
    template = MessageTemplateFactory(key="welcome")
    url = reverse(PREVIEW_URL, args=[template.pk])
    with django_capture_on_commit_callbacks() as callbacks:
        response = marketer_client.post(url, {"recipient": "grace", "locale": ""})
    assert response.status_code == 302 and response["Location"] == f"{url}?recipient=grace"
    assert callbacks  # sends are enqueued after commit
    deliveries = Delivery.objects.filter(recipient=marketer).order_by("channel")
    assert [d.channel for d in deliveries] == ["email", "inapp"]
    assert not Delivery.objects.filter(recipient=grace).exists()
    assert deliveries[0].content["subject"] == "[Test] Hello Grace"

    ledger.deliveries_send(delivery_ids=[d.pk for d in deliveries])
    notification = Notification.objects.get(recipient=marketer)
    assert notification.title == "[Test] Welcome, Grace" and notification.url == "/notifications/"
    [email] = [p for p in LocmemChannel.outbox if p.alias == "email"]
    assert email.message.address == "marketer@example.com"
    assert "<strong" in email.message.html and "Grace" in email.message.text
    entry = AuditEntry.objects.get(action="message_template.test_send")
    assert entry.actor == marketer and entry.changes["sent"] == ["Email", "In-app"]

    page = marketer_client.get(response["Location"])
    assert "Test sent to you: Email, In-app." in page.content.decode()


def test_send_a_test_needs_the_change_permission(client):
    template = MessageTemplateFactory(key="welcome")
    viewer = staff_with("view_messagetemplate")
    client.force_login(viewer)
    url = reverse(PREVIEW_URL, args=[template.pk])
    page = client.get(url)
    assert page.status_code == 200 and 'data-testid="send-test"' not in page.content.decode()
    assert client.post(url, {}).status_code == 403
    assert not Delivery.objects.exists()


def test_send_a_test_needs_a_csrf_token(marketer):
    template = MessageTemplateFactory(key="welcome")
    checked = Client(enforce_csrf_checks=True)
    checked.force_login(marketer)
    assert checked.post(reverse(PREVIEW_URL, args=[template.pk]), {}).status_code == 403
    assert not Delivery.objects.exists()
