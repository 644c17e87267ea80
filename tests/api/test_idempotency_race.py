"""Two requests with the same Idempotency-Key at the same moment, over real HTTP (a threaded live
server, each request on its own connection and thread): one delivery, one inbox row."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest
from django_tasks_db.models import DBTaskResult

from api.keys import api_key_create
from channels_adapters.models import CapturedMessage
from notifications.ledger import deliveries_send
from notifications.models import Delivery, Notification
from tests.factories import CategoryFactory, RecipientProfileFactory, UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


def post_notification(server: str, *, secret: str, body: bytes, idempotency_key: str) -> tuple[int, dict]:
    """POST /api/v1/notifications over real HTTP; the status and the JSON answer (problems too)."""
    request = Request(server + "/api/v1/notifications", data=body, method="POST", headers={
        "Authorization": f"Bearer {secret}", "Content-Type": "application/json", "Idempotency-Key": idempotency_key})
    try:
        with urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_racing_requests_with_one_idempotency_key_send_once(live_server):
    CategoryFactory(key="system", kind="system", user_can_opt_out=False)
    people = [RecipientProfileFactory(user=UserFactory(username=f"racer{i}")).user for i in range(20)]
    secret = api_key_create(name="racer", scopes=["notify"]).secret
    body = json.dumps({"recipients": [{"id": p.pk} for p in people], "title": "Once only",
                       "channels": ["inapp", "email"]}).encode()
    start = threading.Barrier(4)

    def send(_):
        start.wait()
        return post_notification(live_server.url, secret=secret, body=body, idempotency_key="race-1")

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(send, range(4)))
    assert [status for status, _ in answers] == [202] * 4, answers
    # One ledger row per (person, channel): the unique key decided, whoever came first.
    assert Delivery.objects.count() == 40
    assert Notification.objects.count() == 20
    assert len({tuple(result["delivery_ids"]) for _, result in answers}) == 1  # every answer names the same rows
    # Every send task the racing requests enqueued, run as workers would (duplicates included):
    # each person gets one email.
    for task in DBTaskResult.objects.filter(task_path="notifications.ledger.tasks.deliveries_send_task"):
        deliveries_send(delivery_ids=task.args_kwargs["kwargs"]["delivery_ids"])
    sent = CapturedMessage.objects.filter(channel="email")
    assert sorted(sent.values_list("address", flat=True)) == sorted(p.email for p in people)


def test_racing_requests_with_one_key_and_two_bodies_send_one_and_refuse_the_other(live_server, monkeypatch):
    """Both requests pass the first check (no row yet) before either plans: the one that plans
    second finds the other's rows and is refused, never answered 202 for a message it did not send,
    and nothing it planned for the one person only it named is kept."""
    import api.endpoints as endpoints

    CategoryFactory(key="system", kind="system", user_can_opt_out=False)
    person = RecipientProfileFactory(user=UserFactory(username="racer")).user
    other = RecipientProfileFactory(user=UserFactory(username="bystander")).user
    recipients = {"Refund approved": [person], "Refund DENIED": [person, other]}  # the second names one more
    secret = api_key_create(name="racer", scopes=["notify"]).secret
    both_checked = threading.Barrier(2, timeout=20)
    first_check = threading.local()
    real = endpoints._reused_differently

    def checked_then_wait(*args, **kwargs):
        answer = real(*args, **kwargs)
        if not getattr(first_check, "done", False):
            first_check.done = True
            both_checked.wait()  # both requests have checked before either writes
        return answer

    monkeypatch.setattr(endpoints, "_reused_differently", checked_then_wait)

    def send(title):
        body = json.dumps({"recipients": [{"id": p.pk} for p in recipients[title]], "title": title}).encode()
        return post_notification(live_server.url, secret=secret, body=body, idempotency_key="same")

    with ThreadPoolExecutor(max_workers=2) as pool:
        answers = dict(zip(["Refund approved", "Refund DENIED"], pool.map(send, ["Refund approved", "Refund DENIED"])))

    assert sorted(status for status, _ in answers.values()) == [202, 422], answers
    [sent] = [title for title, (status, _) in answers.items() if status == 202]
    # Only the accepted request's messages exist: what the refused one planned beside them is undone.
    assert sorted(Delivery.objects.values_list("content__subject", "recipient_id")) == sorted(
        (sent, p.pk) for p in recipients[sent])
    assert sorted(Notification.objects.values_list("recipient_id", flat=True)) == sorted(p.pk for p in recipients[sent])
    [(_, refused)] = [answer for answer in answers.values() if answer[0] == 422]
    assert refused["type"] == "/api/problems/idempotency-key-reused"
