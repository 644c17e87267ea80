"""A trigger sends by itself, so it is held to what a campaign is held to.

On the old code a Marketer could build ``user_logged_in → an audience of 1,019`` that fanned out
on every event with no approval, and triggers could be built without the launch permission.
Here: building, editing or enabling needs the launch permission; a trigger that can reach more
people than the approval threshold is active only with a Manager's approval of exactly that
configuration; every event is checked against the trigger's per-event cap when it fires.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from accounts.roles import roles_ensure
from notifications.models import Audience, AuditEntry, Delivery, MessageTemplate, SignalTrigger
from notifications.triggers.services import (
    trigger_approve,
    trigger_create,
    trigger_fire,
    trigger_set_active,
    trigger_update,
)
from tests.notifications.campaigns.conftest import make_recipients

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _threshold(settings):
    settings.SIGNALBOX_APPROVAL_THRESHOLD = 10


@pytest.fixture
def staff(db):
    roles_ensure()
    User = get_user_model()
    users = {}
    for name, group in [("mia", "Marketers"), ("meg", "Managers"), ("otto", "Operators")]:
        users[group] = User.objects.create_user(name, f"{name}@example.com", "pw", is_staff=True)
        users[group].groups.add(Group.objects.get(name=group))
    builders = Group.objects.create(name="Builders without launch")
    builders.permissions.set(Group.objects.get(name="Marketers").permissions.exclude(codename="launch_campaign"))
    users["builder"] = User.objects.create_user("bea", "bea@example.com", "pw", is_staff=True)
    users["builder"].groups.add(builders)
    return users


def fans(count: int, prefix: str = "fan") -> Audience:
    make_recipients(count, prefix=prefix)
    return Audience.objects.create(
        name=f"{prefix} audience", kind=Audience.Kind.RULES,
        rules={"all": [{"field": "user.username", "op": "startswith", "value": prefix}]},
    )


def login_trigger(audience, template, category, **fields) -> SignalTrigger:
    values = {
        "name": "Welcome back", "signal": "auth.user_logged_in", "model": "", "events": ["fired"],
        "audience": audience, "template": template, "category": category, "channels": ["inapp"],
        "dedupe_window": timedelta(0), "is_active": False, **fields,
    }
    return SignalTrigger(**values)


def fire(trigger: SignalTrigger, user) -> object:
    return trigger_fire(
        trigger_id=trigger.pk, model="auth.user", pk=user.pk, event="fired", fields={"id": user.pk},
        fired_at=timezone.now().isoformat(), event_id=f"e{timezone.now().timestamp()}",
    )


def test_building_a_trigger_needs_the_launch_permission(staff, paid_template, order_updates):
    audience = fans(3)
    with pytest.raises(PermissionDenied):
        trigger_create(trigger=login_trigger(audience, paid_template, order_updates), actor=staff["builder"])
    trigger = trigger_create(trigger=login_trigger(audience, paid_template, order_updates), actor=staff["Marketers"])
    with pytest.raises(PermissionDenied):
        trigger_set_active(trigger=trigger, active=True, actor=staff["builder"])
    with pytest.raises(PermissionDenied):
        trigger_set_active(trigger=trigger, active=True, actor=staff["Operators"])
    assert trigger_set_active(trigger=trigger, active=True, actor=staff["Marketers"])


def test_a_trigger_on_a_large_audience_cannot_go_live_without_approval(staff, paid_template, order_updates):
    audience = fans(15)
    draft = login_trigger(audience, paid_template, order_updates, is_active=True, max_recipients=100)
    with pytest.raises(ValidationError, match="15 recipients is above the approval threshold of 10"):
        trigger_create(trigger=draft, actor=staff["Marketers"])

    draft.is_active = False
    trigger = trigger_create(trigger=draft, actor=staff["Marketers"])
    with pytest.raises(ValidationError, match="approval threshold"):
        trigger_set_active(trigger=trigger, active=True, actor=staff["Marketers"])
    with pytest.raises(PermissionDenied):
        trigger_approve(trigger=trigger, actor=staff["Marketers"])  # not a Manager

    trigger_approve(trigger=trigger, actor=staff["Managers"])
    assert trigger_set_active(trigger=trigger, active=True, actor=staff["Marketers"])
    result = fire(SignalTrigger.objects.get(pk=trigger.pk), staff["Marketers"])
    assert result.planned == 15
    assert AuditEntry.objects.filter(action="trigger.approve", actor=staff["Managers"]).exists()


def test_a_manager_cannot_approve_a_trigger_they_built(staff, paid_template, order_updates):
    manager = staff["Managers"]
    manager.groups.add(Group.objects.get(name="Marketers"))
    trigger = trigger_create(trigger=login_trigger(fans(15), paid_template, order_updates), actor=manager)
    with pytest.raises(PermissionDenied, match="you built"):
        trigger_approve(trigger=trigger, actor=manager)


def test_an_event_reaching_more_than_the_cap_is_held_not_sent(staff, paid_template, order_updates):
    trigger = trigger_create(
        trigger=login_trigger(fans(5), paid_template, order_updates, max_recipients=3, is_active=True),
        actor=staff["Marketers"],
    )

    assert fire(trigger, staff["Marketers"]) is None

    trigger.refresh_from_db()
    assert Delivery.objects.filter(trigger=trigger).count() == 0
    assert trigger.held_count == 1
    assert "5 people, more than this trigger's limit of 3 per event" in trigger.last_held_reason


def test_an_approved_trigger_holds_its_events_once_its_template_or_audience_changed(
    staff, paid_template, order_updates
):
    trigger = trigger_create(
        trigger=login_trigger(fans(15), paid_template, order_updates, max_recipients=100), actor=staff["Marketers"]
    )
    trigger_approve(trigger=trigger, actor=staff["Managers"])
    trigger_set_active(trigger=trigger, active=True, actor=staff["Marketers"])
    MessageTemplate.objects.filter(pk=paid_template.pk).update(inapp_title="Something else")

    assert fire(SignalTrigger.objects.get(pk=trigger.pk), staff["Marketers"]) is None
    trigger.refresh_from_db()
    assert "the template changed" in trigger.last_held_reason

    trigger_approve(trigger=trigger, actor=staff["Managers"])
    make_recipients(5, prefix="fanx")  # 20 > 15 + 10%: growth past the approval is held too
    assert fire(SignalTrigger.objects.get(pk=trigger.pk), staff["Marketers"]) is None
    assert "covers up to 16 recipients" in SignalTrigger.objects.get(pk=trigger.pk).last_held_reason
    assert Delivery.objects.filter(trigger=trigger).count() == 0


def test_a_cap_above_the_threshold_needs_approval_even_without_an_audience(staff, paid_template, order_updates):
    draft = login_trigger(None, paid_template, order_updates, recipient_path="self", max_recipients=5000,
                          is_active=True)
    with pytest.raises(ValidationError, match="5000 recipients is above the approval threshold"):
        trigger_create(trigger=draft, actor=staff["Marketers"])


def test_editing_an_approved_live_trigger_so_it_no_longer_matches_its_approval_is_refused(
    staff, paid_template, order_updates
):
    trigger = trigger_create(
        trigger=login_trigger(fans(15), paid_template, order_updates, max_recipients=100), actor=staff["Marketers"]
    )
    trigger_approve(trigger=trigger, actor=staff["Managers"])
    trigger_set_active(trigger=trigger, active=True, actor=staff["Marketers"])
    trigger = SignalTrigger.objects.get(pk=trigger.pk)
    trigger.channels = ["inapp", "email"]
    with pytest.raises(ValidationError, match="the channels changed"):
        trigger_update(trigger=trigger, actor=staff["Marketers"])


# --- Over HTTP: the admin ------------------------------------------------------------------------

def form(paid_template, order_updates, audience, **overrides) -> dict:
    values = {
        "name": "Everyone who logs in", "is_active": "on", "signal": "auth.user_logged_in", "model": "",
        "events": ["fired"], "changed_field": "", "changed_to": "", "conditions": "[]", "recipient_path": "",
        "audience": audience.pk, "max_recipients": "5000", "template": paid_template.pk,
        "category": order_updates.pk, "channels": ["inapp"], "dedupe_window": "0", "_save": "Save",
    }
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


def test_over_http_a_marketers_trigger_on_a_large_audience_cannot_send_until_a_manager_approves(
    client, staff, paid_template, order_updates
):
    audience = fans(15)
    client.force_login(staff["Marketers"])
    add = reverse("admin:notifications_signaltrigger_add")

    refused = client.post(add, form(paid_template, order_updates, audience))
    assert refused.status_code == 200
    assert "above the approval threshold" in refused.content.decode()
    assert not SignalTrigger.objects.exists()

    saved = client.post(add, form(paid_template, order_updates, audience, is_active=None))
    assert saved.status_code == 302
    trigger = SignalTrigger.objects.get()
    assert not trigger.is_active
    client.post(reverse("admin:login"), {"username": "x"})  # anything: logging in fires nothing yet
    client.force_login(staff["Marketers"])
    assert Delivery.objects.count() == 0

    approve = reverse("admin:notifications_signaltrigger_approve", args=[trigger.pk])
    assert client.post(approve).status_code in (302, 403)
    assert SignalTrigger.objects.get().approved_by is None  # a Marketer cannot approve

    client.force_login(staff["Managers"])
    assert "Approve" in client.get(approve).content.decode()
    assert SignalTrigger.objects.get().approved_by is None  # GET only asks
    assert client.post(approve).status_code == 302
    assert SignalTrigger.objects.get().approved_by == staff["Managers"]

    client.force_login(staff["Marketers"])
    enabled = client.post(
        reverse("admin:notifications_signaltrigger_changelist"),
        {"action": "enable", "_selected_action": [trigger.pk]},
    )
    assert enabled.status_code == 302
    assert SignalTrigger.objects.get().is_active


def test_over_http_a_marketer_without_the_launch_permission_sees_triggers_read_only(
    client, staff, make_trigger
):
    trigger = make_trigger(max_recipients=5)
    client.force_login(staff["builder"])
    assert client.get(reverse("admin:notifications_signaltrigger_add")).status_code == 403
    page = client.get(reverse("admin:notifications_signaltrigger_change", args=[trigger.pk]))
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()
    client.post(reverse("admin:notifications_signaltrigger_changelist"),
                {"action": "disable", "_selected_action": [trigger.pk]})
    assert SignalTrigger.objects.get(pk=trigger.pk).is_active
