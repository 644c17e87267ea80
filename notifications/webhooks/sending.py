"""The drain: POST an endpoint's due messages, in order per delivery, and record what came back.

The messages are deliveries on the ledger (``WebhookMessage``: ``channel = "webhook"``); the
ledger's send workers never pick them up (``DeliveryQuerySet.due``), because an endpoint's posts
follow rules no person's message has: one stream at a time, the endpoint's health, its signature.

Order: a message is due only when no earlier message of the same stream (``address``: the same
delivery, the same run) still waits or is in flight, so one delivery's events reach an endpoint
one at a time, in the order they were recorded, even across retries.

Once only: messages are claimed with a conditional UPDATE under a lease before anything is
POSTed; a second drain (a duplicated task, another worker) finds nothing to claim.

Honest outcomes, per attempt: ``sent`` only on a 2xx; a refused or failed connection (nothing
left this machine) or a non-2xx answer is ``failed`` and retried after the next delay; a read
timeout or a connection cut after the request left is an unknown outcome, retried too (receivers
deduplicate on ``webhook-id``, which a retry keeps: ``deferred`` with ``status_reason``
"unknown") and final as ``unknown``, never ``sent``. A worker that died mid-POST leaves its lease
to expire; the next drain marks those unknown and retries them. A message that used up its
attempts while the endpoint never answered 2xx since the first attempt of that series disables
the endpoint, and staff are told (``services``).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import requests
from django.db import transaction
from django.db.models import Case, Exists, OuterRef, Value, When
from django.utils import timezone

from channels_adapters.http import keepalive_session, nothing_was_sent
from channels_adapters.ssrf import AddressPolicy, guarded_connections

from .. import conf
from ..models import WebhookAttempt, WebhookEndpoint, WebhookMessage
from ..models.webhooks import OWED, UNKNOWN_REASON, WAITING
from .signing import signed_headers

Status = WebhookMessage.Status
Outcome = WebhookAttempt.Outcome
RESPONSE_CAP = 2048  # bytes of a receiver's answer kept as the error text
MAX_ROUNDS = 50  # claims per drain task before it hands over to a new task
# What a drain reads again before each POST (one primary-key read beside a network round trip).
LIVE_FIELDS = ["url", "enabled", "secret", "previous_secret", "previous_secret_expires_at", "failing_since"]


@dataclass
class DrainResult:
    sent: int = 0
    failed: int = 0
    unknown: int = 0
    disabled: bool = False


def address_policy() -> AddressPolicy:
    return AddressPolicy.from_option(conf.webhooks().allow_private, alias="webhooks")


def retry_delay(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed POST: the configured delays, the last repeating."""
    delays = conf.webhooks().retry_delays
    return timedelta(seconds=delays[min(attempts, len(delays)) - 1])


def webhook_endpoint_drain(*, endpoint_id: int, now: datetime | None = None, only_ids: list[int] | None = None,
                           limit: int = 100) -> DrainResult:
    """POST what is due for one endpoint (or just ``only_ids``), on one keep-alive session."""
    result = DrainResult()
    endpoint = WebhookEndpoint.objects.filter(pk=endpoint_id).first()
    if endpoint is None or not endpoint.enabled:
        return result
    now = now or timezone.now()
    _settle_lost_leases(endpoint_id=endpoint_id, now=now)
    settings_ = conf.webhooks()
    policy = address_policy()
    session = keepalive_session()
    claimed: list[WebhookMessage] = []
    try:
        # Round after round: a message sent makes the next of its delivery due (the order rule).
        for _round in range(MAX_ROUNDS):
            if not endpoint.enabled:
                break
            claimed = _claim(endpoint_id=endpoint_id, now=now, limit=limit, only_ids=only_ids)
            renewed_at, ours = time.monotonic(), {message.pk for message in claimed}
            for index, message in enumerate(claimed):
                if time.monotonic() - renewed_at >= conf.lease_seconds() / 3:
                    # A round of slow POSTs may outlast the lease: keep the rest of it, and POST
                    # nothing another drain has taken since (it settled those as unknown).
                    renewed_at, ours = time.monotonic(), _renew(claimed[index:])
                if message.pk not in ours:
                    continue
                # Read again before each POST: staff may have disabled the endpoint, changed its
                # URL or rotated its secret meanwhile (or deleted it, with its messages), and
                # another drain may have changed its health.
                try:
                    endpoint.refresh_from_db(fields=LIVE_FIELDS)
                except WebhookEndpoint.DoesNotExist:
                    break
                if not endpoint.enabled:
                    _release(claimed[index:])
                    break
                _post(endpoint, message, session=session, policy=policy, settings_=settings_, now=now, result=result)
                if not endpoint.enabled:
                    _release(claimed[index + 1:])
                    result.disabled = True
                    break
            if not claimed or only_ids is not None:
                break
        else:
            # Still busy after MAX_ROUNDS (a steady stream): another task carries on, so one
            # endpoint never holds a worker for good.
            from .tasks import webhook_endpoint_drain_task

            transaction.on_commit(lambda: webhook_endpoint_drain_task.enqueue(endpoint_id=endpoint_id))
    finally:
        session.close()
    return result


def _settle_lost_leases(*, endpoint_id: int, now: datetime) -> int:
    """Messages whose drain stopped mid-POST: the receiver may have them, so ``unknown``, retried."""
    return WebhookMessage.objects.filter(webhook_endpoint_id=endpoint_id, status=Status.SENDING,
                                         lease_expires_at__lt=now).update(
        status=Status.DEFERRED, status_reason=UNKNOWN_REASON, next_attempt_at=now, lease_owner="",
        lease_expires_at=None, last_error="The worker stopped during the POST; the receiver may have it (outcome unknown).",
    )


def _claim(*, endpoint_id: int, now: datetime, limit: int, only_ids: list[int] | None) -> list[WebhookMessage]:
    earlier_waiting = WebhookMessage.objects.filter(
        webhook_endpoint_id=endpoint_id, address=OuterRef("address"), id__lt=OuterRef("id"), status__in=WAITING,
    )
    due = WebhookMessage.objects.filter(webhook_endpoint_id=endpoint_id, next_attempt_at__lte=now, status__in=OWED)
    if only_ids is not None:
        due = due.filter(id__in=only_ids)
    else:
        due = due.exclude(Exists(earlier_waiting))
    ids = list(due.order_by("id").values_list("id", flat=True)[:limit])
    if not ids:
        return []
    token = uuid.uuid4().hex
    # The lease runs from the claim, not from ``now`` (the drain's start, or a test's clock): a
    # later round must not claim messages whose lease has already run out.
    WebhookMessage.objects.filter(id__in=ids, next_attempt_at__lte=now, status__in=OWED).update(
        status=Status.SENDING, lease_owner=token,
        lease_expires_at=timezone.now() + timedelta(seconds=conf.lease_seconds()),
    )
    return list(WebhookMessage.objects.filter(lease_owner=token, status=Status.SENDING).order_by("id"))


def _renew(messages: list[WebhookMessage]) -> set[int]:
    """Push the lease of one claim's ``messages`` ahead; the ids still ours."""
    still_ours = WebhookMessage.objects.filter(
        id__in=[m.pk for m in messages], lease_owner=messages[0].lease_owner, status=Status.SENDING,
    )
    still_ours.update(lease_expires_at=timezone.now() + timedelta(seconds=conf.lease_seconds()))
    return set(still_ours.values_list("id", flat=True))


def _release(messages: list[WebhookMessage]) -> None:
    if messages:
        # Back in line as they were: never posted, or waiting for a retry.
        WebhookMessage.objects.filter(id__in=[m.pk for m in messages], lease_owner=messages[0].lease_owner).update(
            status=Case(When(attempts=0, then=Value(Status.PLANNED)), default=Value(Status.DEFERRED)),
            lease_owner="", lease_expires_at=None)


def _secrets(endpoint: WebhookEndpoint) -> list[str]:
    keys = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and endpoint.previous_secret_expires_at > timezone.now():
        keys.append(endpoint.previous_secret)
    return keys


@dataclass
class Answer:
    outcome: str
    code: int | None = None
    error: str = ""
    permanent: bool = False  # no retry: the target is refused (SSRF guard)


def _request(endpoint: WebhookEndpoint, message: WebhookMessage, *, session: requests.Session,
             policy: AddressPolicy, settings_) -> Answer:
    body = json.dumps(message.payload, separators=(",", ":"), ensure_ascii=False).encode()
    headers = signed_headers(secrets_=_secrets(endpoint), webhook_id=message.webhook_id,
                             timestamp=int(time.time()), body=body)
    host = urlsplit(endpoint.url).hostname or ""
    with guarded_connections(policy=policy) as guard:
        try:
            response = session.post(endpoint.url, data=body, headers=headers, allow_redirects=False, stream=True,
                                    timeout=(settings_.connect_timeout, settings_.read_timeout))
            try:
                text = response.raw.read(RESPONSE_CAP, decode_content=True) or b""
            finally:
                response.close()
        except requests.RequestException as error:
            if guard.refusal is not None:
                return Answer(Outcome.FAILED, error=str(guard.refusal.message), permanent=True)
            if nothing_was_sent(error):
                return Answer(Outcome.FAILED, error=f"Could not connect to {host}: {type(error).__name__}")
            what = "No answer in time" if isinstance(error, requests.Timeout) else "The connection failed after the request was sent"
            return Answer(Outcome.UNKNOWN, error=f"{what}; the receiver may have it: {type(error).__name__}")
    if 200 <= response.status_code < 300:
        return Answer(Outcome.SENT, code=response.status_code)
    return Answer(Outcome.FAILED, code=response.status_code,
                  error=f"HTTP {response.status_code}: {text.decode('utf-8', 'replace')[:500]}")


def _post(endpoint: WebhookEndpoint, message: WebhookMessage, *, session, policy, settings_, now: datetime,
          result: DrainResult) -> None:
    started = time.monotonic()
    answer = _request(endpoint, message, session=session, policy=policy, settings_=settings_)
    latency = int((time.monotonic() - started) * 1000)
    attempts = message.attempts + 1
    exhausted = answer.permanent or attempts >= settings_.max_attempts
    fields = {"attempts": attempts, "last_error": answer.error, "lease_owner": "", "lease_expires_at": None}
    if answer.outcome == Outcome.SENT:
        fields.update(status=Status.SENT, status_reason="", next_attempt_at=None, sent_at=now)
        result.sent += 1
    else:
        unknown = answer.outcome == Outcome.UNKNOWN
        if exhausted:
            fields.update(status=Status.UNKNOWN if unknown else Status.FAILED, status_reason="", next_attempt_at=None)
            if not unknown:
                fields["failed_at"] = now
        else:
            fields.update(status=Status.DEFERRED, status_reason=UNKNOWN_REASON if unknown else "",
                          next_attempt_at=now + retry_delay(attempts))
        if unknown:
            result.unknown += 1
        else:
            result.failed += 1
    with transaction.atomic():
        # Only a message out of attempts asks when its series began (one read of its log).
        first = _series_started(message, now=now) if exhausted and answer.outcome != Outcome.SENT else now
        if not WebhookMessage.objects.filter(pk=message.pk, lease_owner=message.lease_owner).update(**fields) \
                and not WebhookMessage.objects.filter(pk=message.pk).exists():
            return  # deleted with its endpoint during the POST: nothing left to log it against
        WebhookAttempt.objects.create(delivery_id=message.pk, attempted_at=now, outcome=answer.outcome,
                                      response_code=answer.code, latency_ms=latency, error=answer.error)
        _endpoint_health(endpoint, message=message, answer=answer, first=first, exhausted=exhausted, now=now)
        retry_at = fields["next_attempt_at"]
        if retry_at is not None and endpoint.enabled:
            from .tasks import webhook_endpoint_drain_task

            task = webhook_endpoint_drain_task.using(run_after=retry_at)
            transaction.on_commit(lambda: task.enqueue(endpoint_id=endpoint.pk))


def _series_started(message: WebhookMessage, *, now: datetime) -> datetime:
    """When this series of attempts began (a resend starts a new one): the log's entry
    ``attempts`` back, or now for a first attempt."""
    if message.attempts == 0:
        return now
    started = (WebhookAttempt.objects.filter(delivery_id=message.pk).order_by("-pk")
               .values_list("attempted_at", flat=True)[message.attempts - 1:message.attempts])
    return next(iter(started), now)


def _endpoint_health(endpoint: WebhookEndpoint, *, message, answer: Answer, first: datetime, exhausted: bool,
                     now: datetime) -> None:
    from .services import webhook_endpoint_disable

    if answer.outcome == Outcome.SENT:
        if endpoint.failing_since is not None:
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
            endpoint.failing_since = None
        return
    if endpoint.failing_since is None:
        WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(failing_since=now)
        endpoint.failing_since = now
    if answer.permanent:
        webhook_endpoint_disable(endpoint=endpoint, reason=answer.error[:200], now=now)
    elif exhausted and endpoint.failing_since <= first:
        webhook_endpoint_disable(
            endpoint=endpoint, now=now,
            reason=f"{message.attempts + 1} attempts failed for {message.webhook_id}: {answer.error}"[:200],
        )
