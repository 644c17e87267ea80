"""Send-time re-checks: what changed between planning and sending wins.

An unsubscribe, an opt-out or a suppression that committed after a delivery was planned stops
it; a recipient whose quiet hours began meanwhile gets it when they end; and a templated
message is rendered now, with the template's current wording, once per batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import F

from channels_adapters.errors import ChannelError, PermanentChannelError
from channels_adapters.handler import channels

from ..models import Category, Delivery, Preference, Suppression
from ..querysets import normalise_address
from . import outbound
from .decisions import QUIET_HOURS_REASON, quiet_hours_end
from .planning import _enqueue_batches

Status = Delivery.Status


def drop_suppressed(claimed: list[Delivery], *, owner: str, summary) -> list[Delivery]:
    """Re-check suppression at send time: an unsubscribe that committed after planning wins."""
    if not claimed:
        return []
    addresses = {(d.channel, normalise_address(d.channel, d.address)) for d in claimed}
    reasons = Suppression.objects.reasons(addresses)
    keep = []
    for delivery in claimed:
        reason = reasons.get((delivery.channel, normalise_address(delivery.channel, delivery.address)))
        if reason is None:
            keep.append(delivery)
            continue
        updated = Delivery.objects.filter(pk=delivery.pk, lease_owner=owner, status=Status.SENDING).update(
            status=Status.SUPPRESSED, status_reason=f"suppressed:{reason}", lease_owner="", lease_expires_at=None
        )
        summary.suppressed += updated
    return keep


def _release(delivery: Delivery, *, owner: str, **fields) -> int:
    """Give a claimed delivery back without spending an attempt."""
    return Delivery.objects.filter(pk=delivery.pk, lease_owner=owner, status=Status.SENDING).update(
        lease_owner="", lease_expires_at=None, attempts=F("attempts") - 1, **fields
    )


def hold_for_recipient(claimed: list[Delivery], *, owner: str, now: datetime, summary) -> list[Delivery]:
    """Re-check opt-outs and quiet hours for non-transactional deliveries (two queries a batch)."""
    optional = [
        d for d in claimed
        if d.recipient_id and d.category is not None and d.category.kind != Category.Kind.TRANSACTIONAL
    ]
    if not optional:
        return claimed
    optional_ids = {d.pk for d in optional}
    user_ids = {d.recipient_id for d in optional}
    category_ids = {d.category_id for d in optional}
    choices = {
        (user_id, category_id, channel): enabled
        for user_id, category_id, channel, enabled in Preference.objects.filter(
            user_id__in=user_ids, category_id__in=category_ids
        ).values_list("user_id", "category_id", "channel", "enabled")
    }
    quiet = {
        user_id: (tz, start, end)
        for user_id, tz, start, end in get_user_model().objects.filter(
            pk__in=user_ids, recipient_profile__quiet_hours_start__isnull=False
        ).values_list(
            "pk", "recipient_profile__timezone", "recipient_profile__quiet_hours_start",
            "recipient_profile__quiet_hours_end",
        )
    }
    keep, held = [], []
    for delivery in claimed:
        category = delivery.category
        if delivery.pk not in optional_ids:
            keep.append(delivery)
            continue
        enabled = choices.get((delivery.recipient_id, category.pk, delivery.channel), category.default_enabled)
        if category.user_can_opt_out and not enabled:
            summary.suppressed += _release(delivery, owner=owner, status=Status.SUPPRESSED,
                                           status_reason="suppressed:opted_out")
            continue
        window = quiet.get(delivery.recipient_id)
        until = None
        if window and channels.features(delivery.channel).interrupts:
            until = quiet_hours_end(now=now, tz=window[0], start=window[1], end=window[2])
        if until is None:
            keep.append(delivery)
            continue
        fields = {"status": Status.PLANNED, "next_attempt_at": until}
        if not delivery.status_reason.startswith("digest:"):
            fields["status_reason"] = QUIET_HOURS_REASON
        if _release(delivery, owner=owner, **fields):
            held.append((delivery.pk, delivery.channel, until))
    with transaction.atomic():
        for run_after in {until for _pk, _channel, until in held}:
            _enqueue_batches([(pk, ch) for pk, ch, u in held if u == run_after], run_after=run_after)
    return keep


@dataclass(slots=True)
class _Profile:
    locale: str
    timezone: str
    phone: str


@dataclass(slots=True)
class _Recipient:
    """What a message's context reads of its recipient (``templating.recipient_context``): plain
    values, one row each (a user and profile instance cost more than rendering the message)."""

    pk: int
    username: str
    first_name: str
    last_name: str
    email: str
    recipient_profile: _Profile | None

    def get_username(self) -> str:
        return self.username


def _recipients(user_ids: set[int]) -> dict[int, _Recipient]:
    User = get_user_model()
    rows = User.objects.filter(pk__in=user_ids).values_list(
        "pk", User.USERNAME_FIELD, "first_name", "last_name", "email", "recipient_profile__pk",
        "recipient_profile__locale", "recipient_profile__timezone", "recipient_profile__phone",
    )
    return {
        pk: _Recipient(pk, str(username), first or "", last or "", email or "",
                       _Profile(locale, tz, phone) if profile_pk is not None else None)
        for pk, username, first, last, email, profile_pk, locale, tz, phone in rows
    }


def render_templates(
    claimed: list[Delivery], *, compiled: dict | None = None,
) -> tuple[list[Delivery], list[tuple[Delivery, ChannelError]]]:
    """Render templated deliveries in place (``content`` in memory; the row keeps the reference).

    Each template is compiled once per batch and each recipient loaded once. A template that
    fails to render (over the time or size cap, an undefined variable) fails its delivery
    permanently with the reason; the rest of the batch goes on. ``compiled`` keeps compiled
    templates across calls of one transaction (planning's chunks: a compile costs as much as
    rendering a hundred messages).
    """
    templated = [d for d in claimed if (d.content or {}).get("template_id")]
    if not templated:
        return claimed, []
    from ..models import MessageTemplate
    from ..templating import TemplateRenderError, compile_template, message_context

    template_ids = {d.content["template_id"] for d in templated}
    templates = {
        t.pk: t for t in MessageTemplate.objects.filter(pk__in=template_ids).prefetch_related("variants")
    }
    # A template compiled once per subject it is sent with (an A/B test's subject-only variant
    # carries ``content["subject"]``; everything else uses the template's own).
    compiled = {} if compiled is None else compiled
    for pk, subject in {(d.content["template_id"], d.content.get("subject") or "") for d in templated}:
        if pk in templates and (pk, subject) not in compiled:
            compiled[(pk, subject)] = compile_template(templates[pk], email_subject=subject)
    users = _recipients({d.recipient_id for d in templated if d.recipient_id})
    keep, failed = [], []
    for delivery in claimed:
        content = delivery.content or {}
        template_id = content.get("template_id")
        if not template_id:
            keep.append(delivery)
            continue
        try:
            which = (template_id, content.get("subject") or "")
            if which not in compiled or template_id not in templates:  # (kept compiled from an earlier call)
                raise TemplateRenderError("The message template was deleted.")
            user = users.get(delivery.recipient_id)
            if user is None:
                raise TemplateRenderError("The recipient was deleted.")
            marketing = delivery.category is not None and delivery.category.kind == Category.Kind.MARKETING
            unsubscribe = outbound.unsubscribe_url(delivery) if marketing else ""
            context = message_context(user=user, extra=content.get("context") or {}, unsubscribe_url=unsubscribe)
            profile = getattr(user, "recipient_profile", None)
            delivery.content = compiled[which].render(
                channel=delivery.channel, locale=getattr(profile, "locale", "") or "en", context=context
            )
            # Which template and values made the message: providers that send only approved
            # templates (Aliyun, Tencent SMS; channels_adapters.provider_templates) fill theirs
            # from them. In memory only, like the rendered content.
            metadata = {"template": {"key": templates[template_id].key, "context": context}}
            if unsubscribe:  # the same link for the List-Unsubscribe header: sign it once
                metadata["unsubscribe_url"] = unsubscribe
            delivery.content["metadata"] = metadata
        except TemplateRenderError as error:
            failed.append((delivery, PermanentChannelError(str(error), reason="template_error")))
            continue
        keep.append(delivery)
    return keep, failed
