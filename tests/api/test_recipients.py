"""Recipients, preferences, suppressions, deliveries and campaigns through server keys."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from api.models import ExternalId
from notifications.models import (
    Campaign,
    Delivery,
    DeliveryEvent,
    Preference,
    RecipientProfile,
    Suppression,
)
from tests.factories import (
    AudienceFactory,
    CategoryFactory,
    DeliveryFactory,
    MessageTemplateFactory,
)

pytestmark = pytest.mark.django_db
User = get_user_model()


def test_upsert_creates_then_updates_by_external_id(api):
    body = {"external_id": "crm-7", "email": "li.lei@example.com", "first_name": "Lei", "phone": "+8613812345678",
            "timezone": "Asia/Shanghai", "locale": "zh-hans", "chat_ids": {"telegram": "12345"}}
    first = api.call("PUT", "/api/v1/recipients", body)
    assert first.status_code == 200, first.content
    assert first.json()["created"] is True
    user = User.objects.get(pk=first.json()["id"])
    profile = RecipientProfile.objects.get(user=user)
    assert (user.email, user.first_name, profile.phone, profile.timezone, profile.locale, profile.chat_ids) == (
        "li.lei@example.com", "Lei", "+8613812345678", "Asia/Shanghai", "zh-hans", {"telegram": "12345"})
    assert not user.has_usable_password()
    second = api.call("PUT", "/api/v1/recipients", {"external_id": "crm-7", "timezone": "Europe/London"})
    assert second.json() == {"id": user.pk, "created": False}
    profile.refresh_from_db()
    assert (profile.timezone, profile.phone) == ("Europe/London", "+8613812345678")  # only what was sent changed


def test_upsert_finds_an_existing_user_by_email_and_links_the_external_id(api, recipient):
    response = api.call("PUT", "/api/v1/recipients", {"external_id": "crm-1", "email": recipient.email.upper()})
    assert response.json() == {"id": recipient.pk, "created": False}
    assert ExternalId.objects.get(user=recipient).external_id == "crm-1"


def test_a_staff_account_is_not_changed_through_the_api(api):
    # A new email on a staff account would receive its password reset: refused, as the CSV import does.
    root = User.objects.create_superuser("root", "root@example.com", "pw")
    response = api.call("PUT", "/api/v1/recipients", {"external_id": "crm-9", "email": "ROOT@example.com",
                                                      "first_name": "Mallory"})
    assert response.status_code == 422, response.content
    assert [e["field"] for e in response.json()["errors"]] == ["email"]
    response = api.post("/api/v1/recipients/bulk", {"recipients": [{"email": "new@example.com"},
                                                                   {"email": "root@example.com"}]})
    assert response.status_code == 422 and response.json()["errors"][0]["field"] == "recipients.1.email"
    root.refresh_from_db()
    assert (root.email, root.first_name) == ("root@example.com", "")
    assert not ExternalId.objects.exists() and not User.objects.filter(email="new@example.com").exists()


def test_a_bad_phone_or_time_zone_is_422_naming_the_field_and_saves_nothing(api):
    response = api.call("PUT", "/api/v1/recipients", {"email": "x@example.com", "phone": "12345",
                                                      "timezone": "Mars/Olympus"})
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"phone", "timezone"}
    assert not User.objects.filter(email="x@example.com").exists()


def test_bulk_upserts_all_or_nothing(api):
    good = {"recipients": [{"email": f"p{i}@example.com", "locale": "en"} for i in range(3)]}
    response = api.post("/api/v1/recipients/bulk", good)
    assert response.status_code == 200 and [r["created"] for r in response.json()["results"]] == [True] * 3
    bad = {"recipients": [{"email": "q1@example.com"}, {"email": "q2@example.com", "phone": "nope"}]}
    response = api.post("/api/v1/recipients/bulk", bad)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "recipients.1.phone"
    assert not User.objects.filter(email="q1@example.com").exists()


def test_bulk_is_capped(api):
    response = api.post("/api/v1/recipients/bulk", {"recipients": [{"email": f"p{i}@x.org"} for i in range(501)]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "recipients"


def test_preferences_read_and_partial_write(api, recipient):
    news = CategoryFactory(key="news", name="News", default_enabled=True)
    path = f"/api/v1/recipients/{recipient.pk}/preferences"
    state = api.get(path).json()
    row = next(c for c in state["categories"] if c["key"] == "news")
    assert row["channels"]["email"] is True
    response = api.call("PATCH", path, {"channels": {"news": {"email": False}}, "timezone": "Asia/Shanghai",
                                        "quiet_hours": {"start": "22:00:00", "end": "07:00:00"}})
    assert response.status_code == 200, response.content
    row = next(c for c in response.json()["categories"] if c["key"] == "news")
    assert row["channels"] == {**row["channels"], "email": False, "sms": True}
    assert Preference.objects.get(user=recipient, category=news, channel="email").enabled is False
    assert response.json()["quiet_hours"] == {"start": "22:00:00", "end": "07:00:00"}
    response = api.call("PATCH", path, {"channels": {"nope": {"email": False}}})
    assert response.status_code == 422


def test_suppressions_add_list_lift(api):
    added = api.post("/api/v1/suppressions", {"channel": "email", "address": "Gone@Example.com", "note": "asked"})
    assert added.status_code == 201, added.content
    assert added.json()["address"] == "gone@example.com"
    again = api.post("/api/v1/suppressions", {"channel": "email", "address": "gone@example.com"})
    assert again.status_code == 200 and again.json()["id"] == added.json()["id"]
    listed = api.get("/api/v1/suppressions?channel=email").json()
    assert [s["address"] for s in listed["items"]] == ["gone@example.com"] and listed["next_cursor"] is None
    assert api.call("DELETE", f"/api/v1/suppressions/{added.json()['id']}").status_code == 204
    assert not Suppression.objects.exists()
    assert api.call("DELETE", f"/api/v1/suppressions/{added.json()['id']}").status_code == 404


def test_suppressions_page_by_cursor(api):
    Suppression.objects.bulk_create(
        [Suppression(channel="email", address=f"s{i}@example.com", reason="manual") for i in range(55)])
    first = api.get("/api/v1/suppressions").json()
    second = api.get(f"/api/v1/suppressions?cursor={first['next_cursor']}").json()
    assert len(first["items"]) == 50 and len(second["items"]) == 5 and second["next_cursor"] is None
    assert not {s["id"] for s in first["items"]} & {s["id"] for s in second["items"]}


def test_delivery_status_with_its_receipts(api):
    delivery = DeliveryFactory(status="delivered")
    DeliveryEvent.objects.create(delivery=delivery, kind="delivered", source="smtp")
    body = api.get(f"/api/v1/deliveries/{delivery.pk}").json()
    assert (body["id"], body["status"], [e["kind"] for e in body["events"]]) == (delivery.pk, "delivered", ["delivered"])
    assert api.get("/api/v1/deliveries/999999").status_code == 404


def test_campaigns_list_and_status(api):
    campaign = Campaign.objects.create(name="Spring sale", audience=AudienceFactory(), template=MessageTemplateFactory(),
                                       category=CategoryFactory(), channels=["email"])
    listed = api.get("/api/v1/campaigns").json()
    assert [c["name"] for c in listed["items"]] == ["Spring sale"]
    status = api.get(f"/api/v1/campaigns/{campaign.pk}").json()
    assert (status["status"], status["runs"]) == ("draft", [])
    assert api.get("/api/v1/campaigns?status=running").json()["items"] == []
    assert not Delivery.objects.exists()


def test_erasing_a_person_deletes_their_external_id(api):
    from notifications.privacy.erase import person_erase
    from notifications.privacy.people import person_load

    user_id = api.call("PUT", "/api/v1/recipients", {"external_id": "crm-9", "email": "gone@example.com"}).json()["id"]
    root = User.objects.create_superuser("root", "root@example.com", "pw")
    person_erase(person=person_load(User.objects.get(pk=user_id)), actor=root)
    assert not ExternalId.objects.exists()
    response = api.post("/api/v1/notifications", {"recipients": [{"external_id": "crm-9"}], "title": "Hi"})
    assert response.status_code == 422


def test_list_endpoints_cost_the_same_queries_for_5_or_50_rows(api):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries(path: str) -> int:
        api.get(path)  # last_used is written on the first call only
        with CaptureQueriesContext(connection) as captured:
            assert api.get(path).status_code == 200
        return len(captured)

    Suppression.objects.bulk_create(
        [Suppression(channel="email", address=f"s{i}@example.com", reason="manual") for i in range(5)])
    few = queries("/api/v1/suppressions")
    Suppression.objects.bulk_create(
        [Suppression(channel="email", address=f"t{i}@example.com", reason="manual") for i in range(45)])
    assert queries("/api/v1/suppressions") == few
    audience, template, category = AudienceFactory(), MessageTemplateFactory(), CategoryFactory()
    Campaign.objects.bulk_create([Campaign(name=f"c{i}", audience=audience, template=template, category=category)
                                  for i in range(5)])
    few = queries("/api/v1/campaigns")
    Campaign.objects.bulk_create([Campaign(name=f"d{i}", audience=audience, template=template, category=category)
                                  for i in range(45)])
    assert queries("/api/v1/campaigns") == few


def test_bulk_upsert_of_500_costs_the_same_few_queries_as_of_5(api, django_assert_max_num_queries):
    # Matched and written in bulk, as the CSV import does: not a dozen queries per recipient.
    def body(prefix, n):
        return {"recipients": [
            {"external_id": f"{prefix}-{i}", "email": f"{prefix}{i}@example.com", "first_name": f"P{i}",
             "phone": "+8613812345678", "timezone": "Asia/Shanghai", "locale": "zh-hans",
             "chat_ids": {"telegram": str(i)}} for i in range(n)]}

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    api.post("/api/v1/recipients/bulk", body("warm", 5))  # the key's row and caches
    with CaptureQueriesContext(connection) as for_5:
        small = api.post("/api/v1/recipients/bulk", body("small", 5))
    with django_assert_max_num_queries(len(for_5)), CaptureQueriesContext(connection) as for_500:
        large = api.post("/api/v1/recipients/bulk", body("large", 500))
    assert small.status_code == large.status_code == 200, large.content
    assert len(for_500) == len(for_5) <= 16  # the key, its limit and audit, a savepoint, the upsert's dozen
    assert [r["created"] for r in large.json()["results"]] == [True] * 500
    # Half of them again, changed, beside 250 new ones: updates are bulk too.
    again = body("large", 250)["recipients"]
    for item in again:
        item.update(first_name="Changed", timezone="Europe/London")
    with django_assert_max_num_queries(len(for_5) + 3):  # + updates of users, profiles, external ids
        mixed = api.post("/api/v1/recipients/bulk", {"recipients": again + body("more", 250)["recipients"]})
    assert mixed.status_code == 200, mixed.content
    results = mixed.json()["results"]
    assert [r["created"] for r in results] == [False] * 250 + [True] * 250
    assert [r["id"] for r in results[:250]] == [r["id"] for r in large.json()["results"][:250]]
    user = User.objects.get(pk=results[0]["id"])
    profile = RecipientProfile.objects.get(user=user)
    assert (user.first_name, user.email, profile.timezone, profile.phone, profile.chat_ids) == (
        "Changed", "large0@example.com", "Europe/London", "+8613812345678", {"telegram": "0"})
    assert ExternalId.objects.get(user=user).external_id == "large-0"
    new = User.objects.get(pk=results[-1]["id"])
    assert (new.email, new.recipient_profile.locale, new.api_external_id.external_id, new.has_usable_password()) == (
        "more249@example.com", "zh-hans", "more-249", False)


def test_bulk_refuses_two_items_naming_one_recipient(api, recipient):
    response = api.post("/api/v1/recipients/bulk", {"recipients": [
        {"external_id": "a", "email": "dup@example.com"}, {"external_id": "b", "email": "DUP@example.com"}]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "recipients.1.email"
    ExternalId.objects.create(user=recipient, external_id="crm-1")
    response = api.post("/api/v1/recipients/bulk", {"recipients": [
        {"external_id": "crm-1"}, {"email": recipient.email}]})
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "recipients.1.email"
    assert not User.objects.filter(email="dup@example.com").exists()


def test_an_upsert_that_loses_a_race_for_the_external_id_matches_again_and_updates(api, recipient, monkeypatch):
    # Another upsert linked "crm-9" after this one looked: its INSERT hits the unique constraint,
    # and the retry finds the winner. On PostgreSQL the rows go in by COPY, whose error must reach
    # the retry as Django's IntegrityError too (not the driver's own class).
    from api import recipients

    ExternalId.objects.create(user=recipient, external_id="crm-9")
    real_upsert, calls = recipients._upsert, []

    def blind_first(items):
        calls.append(len(items))
        if len(calls) == 1:  # as if the other upsert had not committed when this one matched
            return recipients._create(items, now=timezone.now())
        return real_upsert(items)

    monkeypatch.setattr(recipients, "_upsert", blind_first)
    response = api.call("PUT", "/api/v1/recipients", {"external_id": "crm-9", "first_name": "Won"})

    assert response.status_code == 200, response.content
    assert response.json() == {"id": recipient.pk, "created": False} and calls == [1, 1]
    recipient.refresh_from_db()
    assert recipient.first_name == "Won" and User.objects.filter(api_external_id__external_id="crm-9").count() == 1
