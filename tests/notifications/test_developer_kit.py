"""notifications.testing, the fixtures integrators load into their own suites: used here the way an
integrator's test would use them (imported, as ``pytest_plugins = ["notifications.testing"]`` does)."""

from __future__ import annotations

import pytest

from channels_adapters.models import CapturedMessage
from notifications.api import notify
from notifications.models import Preference
from notifications.testing import assert_notified, signalbox_outbox  # noqa: F401  (the fixtures)
from tests.factories import CategoryFactory, MessageTemplateFactory, RecipientProfileFactory, UserFactory


@pytest.fixture
def people(db):
    return [RecipientProfileFactory(user=UserFactory(username=name, first_name=name.title(), email=f"{name}@example.com"),
                                    phone=phone).user
            for name, phone in (("ada", "+14155550101"), ("grace", "+14155550102"))]


@pytest.fixture
def orders(db):
    return CategoryFactory(key="orders", kind="transactional", user_can_opt_out=False)


@pytest.fixture
def marketing(db):
    return CategoryFactory(key="promotions", kind="marketing")


def test_outbox_holds_what_each_channel_sent_without_a_worker(signalbox_outbox, assert_notified, people, orders):
    ada, grace = people
    template = MessageTemplateFactory(key="order-paid", email_subject="Paid, {{ recipient.first_name }}",
                                      inapp_title="Order paid", category=orders)
    notify([ada], template="order-paid", channels=["inapp", "email", "sms"])

    email = assert_notified(ada, template="order-paid", channel="email", count=1)
    assert (email[0].subject, email[0].address) == ("Paid, Ada", "ada@example.com")
    assert [m.subject for m in signalbox_outbox["inapp"]] == ["Order paid"]
    assert [m.address for m in signalbox_outbox["sms"]] == ["+14155550101"]  # SMS's own addressing kept
    assert len(assert_notified(ada, template=template)) == 3  # a MessageTemplate works as well as its key
    assert_notified(grace, count=0)
    # Nothing left the process, and nothing went to the capture Outbox either: the twins took it.
    assert not CapturedMessage.objects.exists()


def test_literal_messages_and_clear(signalbox_outbox, assert_notified, people, orders):
    ada, grace = people
    notify(people, title="Shipped", body="Tracking 1Z", channels=["email"], category=orders)
    assert [(m.recipient_id, m.subject, m.template) for m in signalbox_outbox["email"]] == [
        (ada.pk, "Shipped", None), (grace.pk, "Shipped", None)]
    signalbox_outbox.clear()
    assert len(signalbox_outbox) == 0
    notify([grace], title="Delivered", channels=["email"], category=orders)
    assert [m.subject for m in signalbox_outbox.to(grace)] == ["Delivered"]
    assert_notified(ada, count=0)


def test_failure_lists_what_was_sent_and_what_was_not_instead(signalbox_outbox, assert_notified, people, orders,
                                                              marketing):
    ada, grace = people
    MessageTemplateFactory(key="order-paid", email_subject="Paid", category=orders)
    Preference.objects.create(user=ada, category=marketing, channel="email", enabled=False)
    notify([grace], template="order-paid", channels=["email"])
    notify([ada], title="Spring sale", channels=["email"], category=marketing)

    with pytest.raises(pytest.fail.Exception) as failure:
        assert_notified(ada, template="order-paid", channel="email")
    message = str(failure.value)
    assert message.splitlines()[0] == (
        f"Expected at least one message to user {ada.pk} (ada) with template 'order-paid' over 'email'; 0 sent."
    )
    assert f"email → user {grace.pk} <grace@example.com>: template 'order-paid', 'Paid'" in message
    assert "Planned but not sent (1):" in message
    assert f"email → user {ada.pk}: no template, suppressed (suppressed:opted_out)" in message
    assert [n.reason for n in signalbox_outbox.not_sent] == ["suppressed:opted_out"]


def test_count_must_match_exactly(signalbox_outbox, assert_notified, people, orders):
    ada, _grace = people
    notify([ada], title="One", channels=["inapp"], category=orders)
    notify([ada], title="Two", channels=["inapp"], category=orders)
    assert len(assert_notified(ada, channel="inapp", count=2)) == 2
    with pytest.raises(pytest.fail.Exception, match=r"Expected 1 message to user \d+ \(ada\) over 'inapp'; 2 sent"):
        assert_notified(ada, channel="inapp", count=1)


INTEGRATOR_CONFTEST = 'pytest_plugins = ["notifications.testing"]\n'
INTEGRATOR_TESTS = '''
import pytest
from django.contrib.auth import get_user_model
from notifications.api import notify
from notifications.models import Category


@pytest.fixture
def customer(db):
    Category.objects.create(key="orders", name="Orders", kind="transactional", user_can_opt_out=False)
    return get_user_model().objects.create_user("mei", email="mei@example.com")


def test_passes(customer, assert_notified):
    notify([customer], title="Your order shipped", channels=["email"], category="orders")
    assert_notified(customer, channel="email", count=1)


def test_fails(customer, signalbox_outbox, assert_notified):
    notify([customer], title="Your order shipped", channels=["inapp"], category="orders")
    assert_notified(customer, channel="email")
'''


@pytest.mark.slow
def test_an_integrators_suite_loads_the_plugin_with_one_line(tmp_path):
    """A project of its own (its own rootdir and conftest), run by pytest in a child process."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    (tmp_path / "conftest.py").write_text(INTEGRATOR_CONFTEST)
    (tmp_path / "test_integration.py").write_text(INTEGRATOR_TESTS)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "DJANGO_SETTINGS_MODULE": "config.settings_test",
           "SQLITE_TEST_NAME": str(tmp_path / "integrator.sqlite3")}
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    out = result.stdout
    assert "1 failed, 1 passed" in out, out + result.stderr
    assert "Expected at least one message to user" in out and "(mei) over 'email'; 0 sent." in out
    assert "inapp → user" in out and "no template, 'Your order shipped'" in out
