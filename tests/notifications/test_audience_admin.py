"""The audience admin: rule builder page, live preview endpoint, form errors, member upload,
permissions."""

from __future__ import annotations

import json

import pytest
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from notifications.audiences import audience_members_add
from notifications.models import Audience, AudienceMember
from tests.factories import AudienceFactory, CustomerFactory, OrderFactory, RecipientProfileFactory, UserFactory

pytestmark = pytest.mark.django_db

PREVIEW_URL = "admin:notifications_audience_preview"


def staff_with(*codenames: str):
    user = UserFactory(username=f"staff-{'-'.join(codenames) or 'none'}", is_staff=True)
    perms = Permission.objects.filter(content_type__app_label="notifications", codename__in=codenames)
    user.user_permissions.set(perms)
    return user


@pytest.fixture
def marketer_client(client):
    client.force_login(
        staff_with("view_audience", "add_audience", "change_audience", "delete_audience",
                   "view_audiencemember", "add_audiencemember", "change_audiencemember", "delete_audiencemember")
    )
    return client


@pytest.fixture
def people():
    ada = RecipientProfileFactory(
        user=UserFactory(username="ada", first_name="Ada", last_name="Lovelace", email="ada@example.com"),
        locale="en", timezone="Europe/London",
    ).user
    grace = RecipientProfileFactory(
        user=UserFactory(username="grace", first_name="Grace", last_name="Hopper", email="grace@corp.cn"),
        locale="zh-hans", timezone="Asia/Shanghai",
    ).user
    customer = CustomerFactory(user=ada, vip=True)
    OrderFactory.create_batch(3, customer=customer)
    return {"ada": ada, "grace": grace}


def post_preview(client, rules, **extra):
    text = rules if isinstance(rules, str) else json.dumps(rules)
    return client.post(reverse(PREVIEW_URL), {"rules": text}, HTTP_HX_REQUEST="true", **extra)


# --- Live preview -------------------------------------------------------------------------------


def test_preview_returns_the_count_and_a_sample(marketer_client, people):
    response = post_preview(
        marketer_client, {"all": [{"field": "shop.paid_orders", "op": "gte", "value": {"count": 2, "days": 90}}]}
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-count="1"' in html
    assert "1 active user" in html
    assert "Ada Lovelace" in html and "ada@example.com" in html and "Europe/London" in html
    assert "Grace" not in html
    assert "<html" not in html  # the partial, not the page


def test_preview_of_everyone_lists_at_most_ten(marketer_client, people):
    UserFactory.create_batch(12)
    html = post_preview(marketer_client, {}).content.decode()
    assert "15 active users" in html  # ada, grace, 12 more and the marketer
    assert html.count("<tr>") == 1 + 10


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ({"all": [{"field": "user.is_staff", "op": "is", "value": True}, {"field": "foo", "op": "eq"}]},
         "Condition 2: unknown field &#x27;foo&#x27;"),
        ("{not json", "not valid JSON"),
        ("[" * 70_000, "too long"),
        ("[" * 20_000, "nested too deeply"),
        ({"all": [{"field": "user.date_joined", "op": "within_days", "value": -1}]}, "between 1 and 3650"),
    ],
)
def test_invalid_rules_are_listed_in_the_preview_never_a_500(marketer_client, people, rules, message):
    response = post_preview(marketer_client, rules)
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="audience-errors"' in html
    assert message in html


def test_preview_is_post_only(marketer_client):
    assert marketer_client.get(reverse(PREVIEW_URL)).status_code == 405


def test_preview_needs_the_audience_view_permission(client, people):
    client.force_login(staff_with())
    assert post_preview(client, {}).status_code == 403
    client.force_login(staff_with("view_audience"))
    assert post_preview(client, {}).status_code == 200


def test_preview_needs_a_staff_login_and_a_csrf_token(client, people):
    response = post_preview(client, {})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(staff_with("view_audience"))
    assert post_preview(strict, {}).status_code == 403


# --- The change form -----------------------------------------------------------------------------


def test_add_page_renders_the_builder_with_the_registry_and_the_preview_region(marketer_client, people):
    html = marketer_client.get(reverse("admin:notifications_audience_add")).content.decode()
    assert "signalbox/audience_builder.js" in html
    assert "data-audience-builder" in html
    assert f'hx-post="{reverse(PREVIEW_URL)}"' in html
    assert "load, rules-changed from:body delay:400ms" in html
    schema = json.loads(html.split('id="id_rules_builder" type="application/json">')[1].split("</script>")[0])
    keys = {f["key"] for f in schema["fields"]}
    assert {"user.email", "profile.locale", "shop.paid_orders", "shop.vip"} <= keys
    assert schema["labels"]["add_condition"] == "Add condition"


def test_saving_valid_rules_creates_the_audience(marketer_client, people):
    rules = {"any": [{"field": "profile.locale", "op": "in", "value": ["zh-hans"]}]}
    response = marketer_client.post(
        reverse("admin:notifications_audience_add"),
        {"name": "Chinese speakers", "description": "", "kind": "rules", "rules": json.dumps(rules)},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    audience = Audience.objects.get(name="Chinese speakers")
    assert audience.rules == rules
    assert audience.created_by.username.startswith("staff-")


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (json.dumps({"all": [{"field": "foo", "op": "eq", "value": 1}]}), "Condition 1: unknown field"),
        ("{broken", "not valid JSON"),
        ("[" * 20_000, "nested too deeply"),
        (json.dumps({"all": [{"field": "user.is_staff", "op": "is", "value": "yes"}]}), "true or false"),
    ],
)
def test_invalid_rules_are_form_errors_on_the_rules_field(marketer_client, people, rules, message):
    response = marketer_client.post(
        reverse("admin:notifications_audience_add"),
        {"name": "Broken", "description": "", "kind": "rules", "rules": rules},
    )
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert any(message in error for error in form.errors["rules"]), form.errors
    assert not Audience.objects.filter(name="Broken").exists()


def test_a_static_audience_ignores_its_rules(marketer_client):
    response = marketer_client.post(
        reverse("admin:notifications_audience_add"),
        {"name": "List", "description": "", "kind": "static", "rules": json.dumps({"all": [{"field": "foo"}]})},
    )
    assert response.status_code == 302


def test_change_page_of_a_static_audience_shows_members_and_the_upload_action(marketer_client, people):
    audience = AudienceFactory(kind="static")
    audience_members_add(audience=audience, user_ids=[people["ada"].pk])
    html = marketer_client.get(reverse("admin:notifications_audience_change", args=[audience.pk])).content.decode()
    assert reverse("admin:notifications_audience_upload_members", args=[audience.pk]) in html
    assert "members-0-user" in html
    rule_audience = AudienceFactory()
    html = marketer_client.get(reverse("admin:notifications_audience_change", args=[rule_audience.pk])).content.decode()
    assert "upload-members" not in html and "members-TOTAL_FORMS" not in html


def test_changelist_shows_live_sizes_without_a_query_per_row(marketer_client, people, django_assert_max_num_queries):
    static = AudienceFactory(name="A static", kind="static")
    audience_members_add(audience=static, user_ids=[people["ada"].pk, people["grace"].pk])
    AudienceFactory(name="B locale", rules={"all": [{"field": "profile.locale", "op": "in", "value": ["en"]}]})
    AudienceFactory(name="C broken", rules={"all": [{"field": "gone"}]})
    url = reverse("admin:notifications_audience_changelist")
    marketer_client.get(url)  # warm caches (content types, session)
    with django_assert_max_num_queries(12) as few:
        html = marketer_client.get(url).content.decode()
    assert "invalid rules" in html
    for n in range(10):
        AudienceFactory(name=f"D{n}", rules={"all": [{"field": "user.is_staff", "op": "is", "value": False}]})
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert marketer_client.get(url).status_code == 200


# --- Upload members ----------------------------------------------------------------------------


def upload(client, audience, content: bytes, name: str = "members.csv", **extra):
    url = reverse("admin:notifications_audience_upload_members", args=[audience.pk])
    return client.post(url, {"file": SimpleUploadedFile(name, content, content_type="text/csv")}, **extra)


def test_upload_adds_members_and_reports_unknown_rows(marketer_client, people):
    audience = AudienceFactory(kind="static")
    url = reverse("admin:notifications_audience_upload_members", args=[audience.pk])
    assert marketer_client.get(url).status_code == 200
    csv_text = "email\nada@example.com\nGRACE@corp.cn\nwho@nowhere.test\n"
    response = upload(marketer_client, audience, csv_text.encode("gbk"))
    assert response.status_code == 200
    html = response.content.decode()
    assert 'data-testid="added">2<' in html
    assert "who@nowhere.test" in html
    members = AudienceMember.objects.filter(audience=audience).values_list("user__username", flat=True)
    assert set(members) == {"ada", "grace"}


def test_upload_through_htmx_returns_the_partial(marketer_client, people):
    audience = AudienceFactory(kind="static")
    response = upload(marketer_client, audience, "\ufeffada\n".encode(), HTTP_HX_REQUEST="true")
    html = response.content.decode()
    assert response.status_code == 200 and "<html" not in html
    assert 'id="audience-upload"' in html and 'data-testid="added">1<' in html


def test_an_unreadable_upload_is_a_form_error(marketer_client):
    audience = AudienceFactory(kind="static")
    response = upload(marketer_client, audience, b"\xff\xfe\x00a\x00b" * 3)
    assert response.status_code == 200
    assert "not UTF-8 or GBK" in response.content.decode()
    assert not audience.members.exists()


def test_upload_needs_the_change_permission_and_a_static_audience(client, people):
    audience = AudienceFactory(kind="static")
    client.force_login(staff_with("view_audience"))
    assert upload(client, audience, b"ada\n").status_code == 403
    assert not audience.members.exists()
    client.force_login(staff_with("view_audience", "change_audience"))
    assert upload(client, AudienceFactory(kind="rules"), b"ada\n").status_code == 403
    assert upload(client, audience, b"ada\n").status_code == 200
    assert audience.members.count() == 1
