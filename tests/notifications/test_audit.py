import pytest

from notifications.models import AuditEntry
from notifications.services import audit_record
from tests.factories import CategoryFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_audit_record_names_actor_and_target():
    marketer = UserFactory(username="maya")
    category = CategoryFactory(key="promotions", name="Promotions")
    entry = audit_record(actor=marketer, action="category.change", target=category, changes={"name": ["Promos", "Promotions"]})
    entry.refresh_from_db()
    assert (entry.actor, entry.actor_repr, entry.action) == (marketer, "maya", "category.change")
    assert entry.target_type.model == "category" and entry.target_id == str(category.pk)
    assert entry.target_repr == "Promotions"
    assert entry.changes == {"name": ["Promos", "Promotions"]}


def test_system_actions_are_attributed_to_the_system_and_survive_user_deletion():
    user = UserFactory()
    system_entry = audit_record(actor=None, action="trigger.fire")
    user_entry = audit_record(actor=user, action="campaign.launch")
    user.delete()
    user_entry.refresh_from_db()
    assert system_entry.actor_repr == "system" and system_entry.actor is None
    assert user_entry.actor is None and user_entry.actor_repr == user.username
    assert AuditEntry.objects.filter(action__in=["trigger.fire", "campaign.launch"]).count() == 2
