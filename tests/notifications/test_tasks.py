"""Tasks run by a real worker process on the configured backend (DB by default, RQ in CI)."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import transaction

from notifications.models import Notification
from notifications.inbox.tasks import inbox_fanout
from tests.processes import worker_run_until_idle
from tests.factories import CategoryFactory, UserFactory

pytestmark = [pytest.mark.tasks, pytest.mark.django_db(transaction=True)]


def test_backend_matches_configuration():
    expected = "django_tasks_rq.RQBackend" if settings.TASK_BACKEND == "rq" else "django_tasks_db.DatabaseBackend"
    assert settings.TASKS["default"]["BACKEND"] == expected


def test_inbox_fanout_runs_in_a_worker_process():
    users = [UserFactory() for _ in range(25)]
    CategoryFactory(key="service-status", name="Service status")
    with transaction.atomic():
        inbox_fanout.enqueue(
            recipient_ids=[u.pk for u in users], title="Maintenance tonight", category_key="service-status"
        )
    assert Notification.objects.count() == 0  # nothing ran in this process
    worker_run_until_idle()
    rows = Notification.objects.filter(content__title="Maintenance tonight")  # one shared text for 25
    assert rows.count() == 25
    assert set(rows.values_list("category__key", flat=True)) == {"service-status"}
    assert set(rows.values_list("recipient_id", flat=True)) == {u.pk for u in users}


def test_notify_in_a_rolled_back_transaction_sends_nothing():
    """Planning enqueues its send tasks on commit: a rolled-back caller leaves no trace anywhere."""
    from notifications.api import notify
    from notifications.models import Delivery

    user = UserFactory()
    CategoryFactory(key="order-updates", name="Order updates", kind="transactional")

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        notify([user], title="Never", category="order-updates")
        assert Delivery.objects.count() == 1  # planned inside the transaction...
        raise Abort
    worker_run_until_idle()  # ...and no task survived the rollback for a worker to find
    assert not Delivery.objects.exists()
    assert not Notification.objects.exists()
