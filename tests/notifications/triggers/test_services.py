"""Trigger changes through the services: validated, audited, versioned."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from notifications.models import AuditEntry, SignalTrigger, TriggerState
from notifications.triggers.services import trigger_set_active, trigger_update

pytestmark = pytest.mark.django_db


def test_an_edit_keeps_the_counters_a_task_moved_meanwhile(make_trigger):
    trigger = make_trigger()
    stale = SignalTrigger.objects.get(pk=trigger.pk)
    SignalTrigger.objects.filter(pk=trigger.pk).update(fired_count=7)  # a task fired meanwhile
    stale.name = "Renamed"
    assert trigger_update(trigger=stale, actor=None) == {"name": ["Order paid", "Renamed"]}
    trigger.refresh_from_db()
    assert (trigger.name, trigger.fired_count) == ("Renamed", 7)


def test_saving_no_change_writes_nothing(make_trigger):
    trigger = make_trigger()
    version = TriggerState.objects.get().version
    assert trigger_update(trigger=trigger, actor=None) == {}
    assert TriggerState.objects.get().version == version
    assert not AuditEntry.objects.filter(action="trigger.update").exists()


def test_invalid_changes_are_refused(make_trigger):
    trigger = make_trigger()
    trigger.conditions = [{"field": "total", "op": "gte", "value": "a lot"}]
    with pytest.raises(ValidationError) as error:
        trigger_update(trigger=trigger, actor=None)
    assert "conditions" in error.value.message_dict
    assert SignalTrigger.objects.get(pk=trigger.pk).conditions == []


def test_set_active_is_a_no_op_when_already_there(make_trigger):
    trigger = make_trigger()
    assert not trigger_set_active(trigger=trigger, active=True, actor=None)
    assert trigger_set_active(trigger=trigger, active=False, actor=None)
    assert not trigger_set_active(trigger=trigger, active=False, actor=None)
    assert AuditEntry.objects.filter(action="trigger.disable").count() == 1
