"""Acceptance: a trigger enabled in the admin fires in running processes, with no restart.

Real processes against the test database: two web servers (staff use one for the admin, the shop
runs on the other, so the change must cross processes) and a task worker (``db_worker``, or
``rqworker`` when the suite runs on the RQ backend). Everything goes over HTTP, as a browser
would: log in, create the trigger, enable it with the admin action, mark an order paid.
"""

from __future__ import annotations

import re
import time
from decimal import Decimal

import pytest
import requests
from django.contrib.auth import get_user_model

from demo_shop.models import Customer, Order
from notifications.models import Category, Delivery, MessageTemplate, Notification, SignalTrigger
from notifications.inbox.tasks import inbox_fanout
from tests.processes import Processes, free_port, start_worker, wait_for
from tests.factories import PASSWORD, RecipientProfileFactory, UserFactory

pytestmark = [pytest.mark.tasks, pytest.mark.django_db(transaction=True)]

# The acceptance target: the in-app notification is there within 2 s of the save's response.
VISIBLE_WITHIN = 2.0
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def start_web(processes: Processes, name: str) -> str:
    port = free_port()
    processes.start(name, "manage.py", "runserver", "--noreload", "--skip-checks", f"127.0.0.1:{port}")
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            # A server still starting refuses the connection or, on a busy machine, answers its
            # first request (template loading, imports) after a while: both mean "not yet".
            if requests.get(f"{base}/admin/login/", timeout=10).status_code == 200:
                return base
        except (requests.ConnectionError, requests.Timeout):
            pass
        time.sleep(0.1)
    pytest.fail(f"{name} did not start.\n{processes.logs()}")


def worker_drained(processes: Processes, staff, label: str) -> None:
    """Enqueue a marker task and wait for it: the single worker has run everything enqueued before."""
    inbox_fanout.enqueue(recipient_ids=[staff.pk], title=label)
    wait_for(lambda: Notification.objects.filter(recipient=staff, title=label).exists(), seconds=60,
             what=f"worker ran {label}", processes=processes)


class Staff:
    """A logged-in admin session on one web process."""

    def __init__(self, base: str, username: str) -> None:
        self.base = base
        self.http = requests.Session()
        page = self.http.get(f"{base}/admin/login/?next=/admin/", timeout=10)
        response = self.http.post(
            f"{base}/admin/login/?next=/admin/",
            data={"username": username, "password": PASSWORD, "next": "/admin/", "csrfmiddlewaretoken": token(page)},
            allow_redirects=False, timeout=10,
        )
        assert response.status_code == 302 and response.headers["Location"] == "/admin/", response.text[:2000]

    def form_post(self, page_path: str, data: dict, *, post_path: str | None = None) -> requests.Response:
        """GET the page for its CSRF token, then POST ``data`` like its form would."""
        page = self.http.get(f"{self.base}{page_path}", timeout=10)
        assert page.status_code == 200, page.text[:2000]
        return self.http.post(f"{self.base}{post_path or page_path}", data={**data, "csrfmiddlewaretoken": token(page)},
                              allow_redirects=False, timeout=10)

    def action(self, changelist: str, action: str, pks: list[int]) -> requests.Response:
        response = self.form_post(changelist, {"action": action, "_selected_action": pks, "index": 0})
        assert response.status_code == 302, response.text[:3000]
        return response


def token(page: requests.Response) -> str:
    match = CSRF.search(page.text)
    assert match, page.text[:2000]
    return match.group(1)


ORDERS = "/admin/demo_shop/order/"
TRIGGERS = "/admin/notifications/signaltrigger/"


def test_trigger_enabled_in_the_admin_fires_in_running_processes_and_stops_when_disabled(processes):
    User = get_user_model()
    admin = User.objects.create_superuser("root", "root@example.com", PASSWORD)
    category = Category.objects.create(key="order-updates", name="Order updates", kind="transactional",
                                       user_can_opt_out=False)
    template = MessageTemplate.objects.create(
        key="order-paid-live", name="Order paid", inapp_title="Order {{ instance.number }} is paid",
        inapp_body="{{ instance.total }} {{ instance.currency }}", email_subject="Order {{ instance.number }}",
        email_body="Thanks, {{ recipient.first_name }}.",
    )
    customer = Customer.objects.create(user=RecipientProfileFactory(user=UserFactory(username="shopper")).user)
    first, second, warmup = (
        Order.objects.create(customer=customer, number=number, total=Decimal("42.00"))
        for number in ("LIVE-1", "LIVE-2", "LIVE-0")
    )

    start_worker(processes)
    admin_web = start_web(processes, "web-admin")
    shop_web = start_web(processes, "web-shop")
    worker_drained(processes, admin, "worker is up")
    staff_admin, staff_shop = Staff(admin_web, "root"), Staff(shop_web, "root")

    # The shop process has its trigger cache loaded (nothing active) before anything is enabled.
    staff_shop.action(ORDERS, "mark_paid", [warmup.pk])
    assert Order.objects.get(pk=warmup.pk).status == "paid"

    response = staff_admin.form_post(f"{TRIGGERS}add/", {
        "name": "Order paid → customer", "signal": "model.post_save", "model": "demo_shop.order",
        "events": ["updated", "created"], "changed_field": "status", "changed_to": "paid", "conditions": "[]",
        "recipient_path": "customer.user", "audience": "", "template": template.pk, "category": category.pk,
        "channels": ["inapp", "email"], "dedupe_window": "0", "_save": "Save",
    })
    assert response.status_code == 302, response.text[:3000]
    trigger = SignalTrigger.objects.get()
    assert not trigger.is_active
    staff_admin.action(TRIGGERS, "enable", [trigger.pk])
    assert SignalTrigger.objects.get(pk=trigger.pk).is_active

    staff_shop.action(ORDERS, "mark_paid", [first.pk])
    took = wait_for(
        lambda: Notification.objects.filter(recipient=customer.user, title="Order LIVE-1 is paid").exists(),
        seconds=VISIBLE_WITHIN, what="in-app notification for the paid order", processes=processes,
    )
    assert took <= VISIBLE_WITHIN
    # The in-app part was planned by the shop process as the save committed (triggers.inline);
    # the email part is the worker's.
    worker_drained(processes, admin, "the email part")
    assert Delivery.objects.filter(trigger=trigger, recipient=customer.user).count() == 2  # in-app and email
    assert SignalTrigger.objects.get(pk=trigger.pk).fired_count == 1

    staff_admin.action(TRIGGERS, "disable", [trigger.pk])
    staff_shop.action(ORDERS, "mark_paid", [second.pk])
    assert Order.objects.get(pk=second.pk).status == "paid"
    worker_drained(processes, admin, "after the disabled trigger")  # anything enqueued has run
    worker_drained(processes, admin, "and whatever that enqueued")
    assert not Notification.objects.filter(recipient=customer.user, title__contains="LIVE-2").exists()
    assert not Delivery.objects.filter(idempotency_key__startswith=f"trigger:{trigger.pk}:demo_shop.order:{second.pk}:")
    assert SignalTrigger.objects.get(pk=trigger.pk).fired_count == 1
    assert Notification.objects.filter(recipient=customer.user).count() == 1
