"""Webhook endpoints and their messages on the ledger: the verbs the admin (and later the API) call.

Every change is audited and forgets the cached routing table (``events.routes_forget``), so the
record path sees it at once. Who may: ``webhook.manage`` (``accounts.roles``), checked by callers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.roles import roles_allowed
from channels_adapters.errors import PermanentChannelError, TransientChannelError
from channels_adapters.ssrf import check_host

from ..models import Category, WebhookAttempt, WebhookEndpoint, WebhookMessage
from ..models.webhooks import TEST_EVENT
from .events import Event, message_key, routes_forget, webhook_events_record
from .signing import secret_new

ROTATION_GRACE = timedelta(hours=24)
DELETE_BATCH = 500  # messages deleted per statement when an endpoint is deleted
NOTICE_CATEGORY = "staff-webhooks"


def webhook_url_check(url: str) -> None:
    """Raise ``ValidationError`` unless ``url`` is http(s), has no credentials, and its host
    resolves only to addresses the webhook policy allows (the SSRF guard checks again on send)."""
    from .sending import address_policy

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise ValidationError(_("This is not a valid URL.")) from error
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError(_("Use an http:// or https:// URL."))
    if parts.username or parts.password:
        raise ValidationError(_("Put no user name or password in the URL: verify the signature instead."))
    try:
        check_host(parts.hostname, port or (443 if parts.scheme == "https" else 80), policy=address_policy())
    except (PermanentChannelError, TransientChannelError) as error:
        raise ValidationError(str(error.message)) from error


def _forget() -> None:
    # Now, and again after commit: a process that read the table before the commit must not keep it.
    routes_forget()
    transaction.on_commit(routes_forget)


@dataclass(frozen=True)
class SecretShown:
    endpoint: WebhookEndpoint
    secret: str  # shown once to the person who made or rotated it


def webhook_endpoint_save(*, endpoint: WebhookEndpoint, actor=None) -> SecretShown | None:
    """Create or update ``endpoint`` (URL checked); a new one gets a secret, returned to show once."""
    from ..services import audit_record

    webhook_url_check(endpoint.url)
    created = endpoint.pk is None
    shown = None
    reenabled = not created and endpoint.enabled and endpoint.disabled_at is not None
    if reenabled:  # ticked "enabled" again in the form: as "Enable again"
        endpoint.disabled_at, endpoint.disabled_reason, endpoint.failing_since = None, "", None
    if created:
        endpoint.secret = secret_new()
        endpoint.created_by = actor if getattr(actor, "pk", None) else None
        shown = endpoint.secret
    with transaction.atomic():
        endpoint.save()
        audit_record(actor=actor, action="webhook.create" if created else "webhook.change", target=endpoint,
                     changes={"url": endpoint.url, "events": endpoint.events, "enabled": endpoint.enabled})
        if reenabled:
            from .tasks import webhook_endpoint_drain_task

            transaction.on_commit(lambda: webhook_endpoint_drain_task.enqueue(endpoint_id=endpoint.pk))
    _forget()
    return SecretShown(endpoint, shown) if shown else None


def webhook_endpoint_delete(*, endpoint: WebhookEndpoint, actor=None) -> bool:
    """Delete ``endpoint`` with its messages and their delivery log, audited.

    The messages go first, ``DELETE_BATCH`` messages at a time (a large one is never read into
    memory at once, and no lock on the endpoint is held meanwhile, so a drain posting to it is not
    held up). Then the row, locked (``FOR UPDATE``): a recorder that holds it (``events``:
    key-share, inside a ledger transaction) is waited for and what it wrote goes too; recorders
    after it skip an endpoint being deleted rather than wait for it."""
    from ..services import audit_record

    messages = WebhookMessage.objects.filter(webhook_endpoint_id=endpoint.pk).order_by("pk")
    while True:
        with transaction.atomic():
            # Locked first: a drain finishing a POST to one of them meanwhile writes its outcome
            # and attempt before this batch (and they go with it) or finds the message gone after.
            ids = list(messages.select_for_update().values_list("pk", flat=True)[:DELETE_BATCH])
            if not ids:
                break
            WebhookAttempt.objects.filter(delivery_id__in=ids).delete()
            # Webhook posts have no receipts, links or inbox rows: nothing else points at them.
            WebhookMessage.objects.filter(pk__in=ids)._raw_delete(WebhookMessage.objects.db)
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().filter(pk=endpoint.pk).first()
        if locked is None:
            return False
        audit_record(actor=actor, action="webhook.delete", target=locked, changes={"url": locked.url})
        locked.delete()
    _forget()
    return True


def webhook_secret_rotate(*, endpoint: WebhookEndpoint, actor=None) -> SecretShown:
    """A new secret; the old one keeps signing beside it for ``ROTATION_GRACE``."""
    from ..services import audit_record

    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = timezone.now() + ROTATION_GRACE
    endpoint.secret = secret_new()
    with transaction.atomic():
        endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
        audit_record(actor=actor, action="webhook.rotate_secret", target=endpoint)
    return SecretShown(endpoint, endpoint.secret)


def webhook_endpoint_enable(*, endpoint: WebhookEndpoint, actor=None) -> bool:
    """Turn a disabled endpoint back on: what waited for it goes out again."""
    from ..services import audit_record
    from .tasks import webhook_endpoint_drain_task

    with transaction.atomic():
        changed = WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=False).update(
            enabled=True, disabled_at=None, disabled_reason="", failing_since=None)
        if changed:
            audit_record(actor=actor, action="webhook.enable", target=endpoint)
            transaction.on_commit(lambda: webhook_endpoint_drain_task.enqueue(endpoint_id=endpoint.pk))
    endpoint.refresh_from_db()
    _forget()
    return bool(changed)


def webhook_endpoint_disable(*, endpoint: WebhookEndpoint, reason: str, now: datetime | None = None,
                             actor=None) -> bool:
    """Disable ``endpoint`` (once); when the system did it, tell the staff who manage webhooks."""
    now = now or timezone.now()
    changed = WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
        enabled=False, disabled_at=now, disabled_reason=reason[:200])
    endpoint.enabled, endpoint.disabled_at, endpoint.disabled_reason = False, now, reason[:200]
    if changed:
        _forget()
        if actor is None:
            transaction.on_commit(lambda: staff_notify_disabled(endpoint=endpoint))
    return bool(changed)


def webhook_messages_resend(*, messages: Iterable[WebhookMessage], actor=None) -> int:
    """Post the chosen messages again (same ``webhook-id``, so receivers can tell a repeat), with
    a fresh set of attempts and retries; audited."""
    from ..services import audit_record
    from .tasks import webhook_endpoint_drain_task

    ids = [m.pk for m in messages]
    now = timezone.now()
    with transaction.atomic():
        changed = WebhookMessage.objects.filter(id__in=ids).exclude(status=WebhookMessage.Status.SENDING).update(
            status=WebhookMessage.Status.PLANNED, status_reason="", next_attempt_at=now, lease_owner="",
            lease_expires_at=None, attempts=0, failed_at=None)
        if changed:
            audit_record(actor=actor, action="webhook.resend", changes={"messages": changed})
        for endpoint_id in set(WebhookMessage.objects.filter(id__in=ids).values_list("webhook_endpoint_id", flat=True)):
            transaction.on_commit(lambda pk=endpoint_id: webhook_endpoint_drain_task.enqueue(endpoint_id=pk))
    return changed


def webhook_test_send(*, endpoint: WebhookEndpoint, actor=None) -> WebhookMessage:
    """Post a ``webhook.test`` event to ``endpoint`` now, in this request; the message as it ended."""
    from .sending import webhook_endpoint_drain

    stamp = timezone.now()
    key = f"test:{endpoint.pk}:{stamp.timestamp()}"
    webhook_events_record([Event(type=TEST_EVENT, key=key, ordering_key=key,
                                 data={"endpoint": endpoint.pk, "by": getattr(actor, "pk", None)})],
                          endpoint_ids=[endpoint.pk])
    message = WebhookMessage.objects.get(idempotency_key=message_key(endpoint.pk, key))
    if endpoint.enabled:
        webhook_endpoint_drain(endpoint_id=endpoint.pk, only_ids=[message.pk])
    message.refresh_from_db()
    return message


# --- Telling staff ----------------------------------------------------------------------------

def notice_category() -> Category:
    from ..services import category_ensure

    return category_ensure(key=NOTICE_CATEGORY, name="Webhook alerts", name_zh_hans="Webhook 警报",
                           kind=Category.Kind.TRANSACTIONAL, user_can_opt_out=False)


def webhook_managers():
    """Active superusers and staff whose role may manage webhooks."""
    return get_user_model().objects.filter(is_active=True).filter(
        Q(is_superuser=True) | Q(is_staff=True, groups__name__in=roles_allowed("webhook.manage"))
    ).select_related("recipient_profile").order_by("pk").distinct()


def staff_notify_disabled(*, endpoint: WebhookEndpoint) -> int:
    """An inbox message and an email to every webhook manager: the endpoint was disabled, why."""
    from ..api import notify

    path = reverse("admin:notifications_webhookendpoint_change", args=[endpoint.pk])
    stamp = int((endpoint.disabled_at or timezone.now()).timestamp())
    by_locale: dict[str, list[int]] = {}
    for user in webhook_managers():
        profile = getattr(user, "recipient_profile", None)
        by_locale.setdefault((profile.locale if profile and profile.locale else None) or "en", []).append(user.pk)
    for locale, ids in by_locale.items():
        with translation.override(locale):
            title = _("Webhook endpoint disabled: %(name)s") % {"name": str(endpoint)}
            body = _("Signalbox stopped posting to %(url)s after repeated failures: %(reason)s. "
                     "Fix the receiver, then enable the endpoint again; what waited is sent then.") % {
                "url": endpoint.url, "reason": endpoint.disabled_reason}
            notify(ids, title=title, body=body, url=path, channels=["inapp"], category=notice_category(),
                   idempotency_key=f"webhook-disabled:{endpoint.pk}:{stamp}:inapp")
            notify(ids, title=title, body=body, channels=["email"], category=notice_category(),
                   idempotency_key=f"webhook-disabled:{endpoint.pk}:{stamp}:email")
    return sum(len(ids) for ids in by_locale.values())
