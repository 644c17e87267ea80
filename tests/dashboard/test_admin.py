"""The Unfold admin shell: dashboard, grouped sidebar, model admins, read-only ledger."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from notifications.models import AuditEntry, Delivery, DeliveryEvent
from tests.factories import (
    CategoryFactory,
    DeliveryFactory,
    NotificationFactory,
    RecipientProfileFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    user = get_user_model().objects.create_superuser("root", "root@example.com", "pw-root-123")
    client.force_login(user)
    return client


@pytest.fixture
def ledger():
    profile = RecipientProfileFactory()
    category = CategoryFactory(key="newsletter", name="Newsletter")
    delivery = DeliveryFactory(recipient=profile.user, category=category, status="sent")
    DeliveryEvent.objects.create(delivery=delivery, kind="sent", source="smtp", provider_event_id="evt-1")
    NotificationFactory(recipient=profile.user, category=category)
    AuditEntry.objects.create(actor_repr="system", action="test", target_repr="x")
    return delivery


def test_anonymous_admin_goes_to_the_unfold_login(client):
    response = client.get("/admin/")
    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/admin/")
    login = client.get(response["Location"])
    assert login.status_code == 200
    assert b"Signalbox" in login.content


def test_dashboard_has_kpis_and_sidebar_grouped_by_domain(admin_client, ledger):
    html = admin_client.get(reverse("admin:index")).content.decode()
    assert 'data-testid="kpis"' in html
    for group in ("Recipients", "Messaging", "Delivery ledger", "Demo shop"):
        assert group in html
    for url in (
        reverse("admin:notifications_delivery_changelist"),
        reverse("admin:notifications_suppression_changelist"),
        reverse("admin:demo_shop_order_changelist"),
    ):
        assert f'href="{url}"' in html


@pytest.mark.parametrize(
    "name",
    [
        "auth_user",
        "auth_group",
        "notifications_recipientprofile",
        "notifications_category",
        "notifications_preference",
        "notifications_suppression",
        "notifications_notification",
        "notifications_delivery",
        "notifications_deliveryevent",
        "notifications_auditentry",
        "demo_shop_customer",
        "demo_shop_order",
    ],
)
def test_every_changelist_renders(admin_client, ledger, name):
    assert admin_client.get(reverse(f"admin:{name}_changelist")).status_code == 200


@pytest.mark.parametrize("model", [Delivery, DeliveryEvent, AuditEntry])
def test_ledger_tables_are_read_only_even_for_superusers(admin_client, ledger, model):
    obj = model.objects.first()
    opts = model._meta
    assert admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add")).status_code == 403
    assert admin_client.post(reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[obj.pk]), {"post": "yes"}).status_code == 403
    change = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
    assert change.status_code == 200
    assert b'name="_save"' not in change.content
    assert model.objects.filter(pk=obj.pk).exists()


def test_delivery_changelist_query_count_does_not_grow_with_rows(admin_client, django_assert_max_num_queries):
    for _ in range(3):
        DeliveryFactory(recipient=UserFactory())
    url = reverse("admin:notifications_delivery_changelist")
    with django_assert_max_num_queries(12) as small:
        admin_client.get(url)
    for _ in range(30):
        DeliveryFactory(recipient=UserFactory())
    with django_assert_max_num_queries(len(small.captured_queries)):
        admin_client.get(url)


def test_non_staff_recipient_cannot_use_the_admin(client, recipient):
    client.force_login(recipient)
    response = client.get("/admin/")
    assert response.status_code == 302
