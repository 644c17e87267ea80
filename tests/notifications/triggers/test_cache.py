"""The per-process cache of active triggers, reloaded when another process changes the table.

Each test runs with the database token; with REDIS_URL set (CI's Redis stage) also with the
Redis token.
"""

from __future__ import annotations

import uuid
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.db import connection, transaction

from demo_shop.models import Order
from notifications.models import SignalTrigger, TriggerState
from notifications.triggers import cache
from notifications.triggers.services import trigger_set_active
from tests.conftest import run_python

from .conftest import firings

SOURCES = ["db"] + (["redis"] if django_settings.REDIS_URL else [])


@pytest.fixture(params=SOURCES)
def source(request, settings):
    settings.SIGNALBOX_TRIGGER_VERSION_CHECK = request.param
    assert cache.version_source() == request.param
    return request.param


def another_process_changes(sql: str, params: list, *, source: str) -> None:
    """What another process's committed change looks like from here: new rows, a new token."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        cursor.execute(f"UPDATE {TriggerState._meta.db_table} SET version = version + 1")
    if source == "redis":
        cache._redis().set(cache.REDIS_TOKEN_KEY, uuid.uuid4().hex, ex=cache.REDIS_TOKEN_TTL)


def pay_and_collect(order: Order, capture) -> list[dict]:
    """Flip the order's status in a transaction; the firings enqueued when it commits.

    Works in both kinds of test: in a test transaction the commit is simulated by running the
    captured callbacks, in a ``transaction=True`` test the commit is real.
    """
    enqueued: list[dict] = []
    task = mock.Mock()
    task.enqueue.side_effect = lambda *, firings: enqueued.extend(firings)
    # The in-app part delivered at once (triggers.inline) is left out: every firing is enqueued.
    inline = mock.patch("notifications.triggers.inline.trigger_fire_local", lambda *, firing: dict(firing))
    with mock.patch("notifications.triggers.tasks.trigger_fire_task", task), inline, capture(execute=True):
        with transaction.atomic():
            order.status = Order.Status.PAID if order.status != Order.Status.PAID else Order.Status.PENDING
            order.save()
    return enqueued


@pytest.mark.django_db
def test_a_trigger_enabled_elsewhere_fires_on_the_next_save(
    source, make_trigger, make_order, django_capture_on_commit_callbacks
):
    trigger = make_trigger(is_active=False)
    first = make_order()
    assert pay_and_collect(first, django_capture_on_commit_callbacks) == []  # cache loaded: nothing active

    table = SignalTrigger._meta.db_table
    # A row changed without the version moving is not seen: the cache is really a cache.
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET is_active = %s WHERE id = %s", [True, trigger.pk])
    if source == "db":
        assert pay_and_collect(make_order(), django_capture_on_commit_callbacks) == []

    another_process_changes(f"UPDATE {table} SET is_active = %s WHERE id = %s", [True, trigger.pk], source=source)
    second = make_order()
    assert [f["pk"] for f in pay_and_collect(second, django_capture_on_commit_callbacks)] == [second.pk]

    another_process_changes(f"UPDATE {table} SET is_active = %s WHERE id = %s", [False, trigger.pk], source=source)
    assert pay_and_collect(make_order(), django_capture_on_commit_callbacks) == []


@pytest.mark.django_db
def test_an_edit_elsewhere_is_seen_on_the_next_save(
    source, make_trigger, make_order, django_capture_on_commit_callbacks
):
    trigger = make_trigger()
    assert pay_and_collect(make_order(), django_capture_on_commit_callbacks)
    table = SignalTrigger._meta.db_table
    another_process_changes(f"UPDATE {table} SET changed_to = %s WHERE id = %s", ["shipped", trigger.pk],
                            source=source)
    assert pay_and_collect(make_order(), django_capture_on_commit_callbacks) == []
    shipped = make_order(status=Order.Status.PAID)
    with django_capture_on_commit_callbacks() as callbacks:
        shipped.status = Order.Status.SHIPPED
        shipped.save()
    assert [f["pk"] for t in firings(callbacks) for f in t] == [shipped.pk]


@pytest.mark.django_db
def test_a_save_outside_the_services_still_moves_the_version(make_trigger):
    trigger = make_trigger()
    before = TriggerState.objects.get().version
    trigger.name = "Renamed in a shell"
    trigger.save()  # the post_save safety net
    assert TriggerState.objects.get().version > before
    version = TriggerState.objects.get().version
    trigger.delete()
    assert TriggerState.objects.get().version > version


@pytest.mark.django_db
def test_an_unreachable_redis_falls_back_to_the_database(settings, make_trigger, make_order,
                                                          django_capture_on_commit_callbacks):
    settings.SIGNALBOX_TRIGGER_VERSION_CHECK = "redis"
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    make_trigger()  # its token cannot be published: logged, not raised
    order = make_order()
    assert [f["pk"] for f in pay_and_collect(order, django_capture_on_commit_callbacks)] == [order.pk]


@pytest.mark.live
@pytest.mark.django_db(transaction=True)
def test_a_trigger_enabled_by_another_process_fires_here(source, make_trigger, make_order,
                                                         django_capture_on_commit_callbacks):
    """A real second process enables the trigger through the service; this process's next save fires."""
    trigger = make_trigger(is_active=False)
    assert pay_and_collect(make_order(), django_capture_on_commit_callbacks) == []
    run_python(
        "from django.conf import settings\n"
        f"settings.SIGNALBOX_TRIGGER_VERSION_CHECK = {source!r}\n"
        "from notifications.models import SignalTrigger\n"
        "from notifications.triggers.services import trigger_set_active\n"
        f"assert trigger_set_active(trigger=SignalTrigger.objects.get(pk={trigger.pk}), active=True, actor=None)\n"
    )
    order = make_order()
    assert [f["pk"] for f in pay_and_collect(order, django_capture_on_commit_callbacks)] == [order.pk]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_trigger_change_is_never_seen(source, make_trigger, make_order,
                                                    django_capture_on_commit_callbacks):
    trigger = make_trigger(is_active=False)

    class Abort(Exception):
        pass

    with pytest.raises(Abort), transaction.atomic():
        trigger_set_active(trigger=trigger, active=True, actor=None)
        order = make_order()
        # This transaction sees its own change...
        with django_capture_on_commit_callbacks() as callbacks:
            order.status = Order.Status.PAID
            order.save()
        assert len(callbacks) == 1
        raise Abort
    # ...and after the rollback nobody does, this thread included.
    assert pay_and_collect(make_order(), django_capture_on_commit_callbacks) == []
    assert not SignalTrigger.objects.get(pk=trigger.pk).is_active


@pytest.mark.django_db
def test_a_reload_reads_the_triggers_and_the_journeys_bindings_in_three_queries(django_assert_num_queries):
    with django_assert_num_queries(3):  # active triggers, live journeys' entries, bound versions' goals and exits
        cache._load()
