"""The endpoints of /api/v1/: thin, each one a call to the service the admin or ``notify()`` uses.

Server endpoints take a key with a scope (``ServerKey``); recipient endpoints (``/me/...``) take
the signed-in session or a token a server minted (``RECIPIENT``) and only ever touch that user's
own rows.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated

from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext as _
from ninja import Header, Path, Query, Router, Status

from notifications.api import broadcast, notify
from notifications.campaigns.progress import runs_progress_of
from notifications.inbox.selectors import InboxItem, inbox_counts, inbox_items
from notifications.inbox.services import (
    broadcast_mark_read,
    notification_mark_read,
    notifications_mark_all_read,
)
from notifications.models import (
    Campaign,
    Category,
    Delivery,
    MessageTemplate,
    Suppression,
)
from notifications.receipts.tracking import address_suppress, suppression_lift

from . import schemas as s
from .auth import RECIPIENT, ServerKey
from .models import Scope
from .preferences import preferences_change, preferences_read
from .problems import Problem
from .recipients import RecipientRef, UpsertRefused, recipient_upsert, recipients_resolve, recipients_upsert
from .tokens import recipient_token_mint

router = Router()
# An id in the path: past 2**62 it would overflow the column, so a 422 rather than a database error.
PathId = Annotated[int, Path(..., ge=1, le=s.MAX_ID)]
PAGE_SIZE = 50
_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:\-]{1,100}$")


def _invalid(field: str, message: str) -> Problem:
    return Problem(422, "validation", _("The request is not valid."), errors=[{"field": field, "message": message}])


def _category(key: str | None) -> Category | None:
    if key is None:
        return None
    category = Category.objects.filter(key=key).first()
    if category is None:
        raise _invalid("category", _("Unknown category: %(key)s") % {"key": key})
    return category


# --- Sending -------------------------------------------------------------------------------------

@router.post("/notifications", response={202: s.NotificationOut, **s.ERRORS}, auth=ServerKey(Scope.NOTIFY), tags=["sending"])
def notifications_send(
    request: HttpRequest, payload: s.NotificationIn,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", description="Sends once per key."),
):
    """``notify()`` over HTTP. With an ``Idempotency-Key`` header the same key sends once, also
    when two requests race (the ledger's unique key decides); keys are per API key."""
    if idempotency_key is not None and not _IDEMPOTENCY_KEY.match(idempotency_key):
        raise _invalid("Idempotency-Key", _("1 to 100 letters, digits and . _ : -"))
    refs = [RecipientRef(id=r.id, external_id=r.external_id, email=r.email) for r in payload.recipients]
    ids, missing = recipients_resolve(refs)
    if missing:
        raise Problem(422, "validation", _("The request is not valid."),
                      errors=[{"field": f"recipients.{i}", "message": _("No such recipient.")} for i in missing])
    template_id = None
    if payload.template is not None:
        template_id = MessageTemplate.objects.filter(key=payload.template).values_list("pk", flat=True).first()
        if template_id is None:
            raise _invalid("template", _("Unknown template: %(key)s") % {"key": payload.template})
    category = _category(payload.category)
    key = f"api:{request.auth.prefix}:{idempotency_key or uuid.uuid4().hex}"
    wanted = [f"notify:{key}:{pk}:{channel}" for pk in ids for channel in payload.channels]
    if idempotency_key is not None and _reused_differently(wanted, payload, template_id, category):
        raise _key_reused()
    try:
        with transaction.atomic():
            result = notify(ids, template=payload.template, context=payload.context, title=payload.title,
                            body=payload.body, url=payload.url, channels=payload.channels, category=category,
                            idempotency_key=key)
            if idempotency_key is not None and result.already_known and _reused_differently(
                    wanted, payload, template_id, category):
                # Another request with this key planned first while this one was on its way (the
                # check above saw nothing yet): its rows stand, and this body is refused as if it
                # came second, with whatever it planned beside them undone.
                raise _key_reused()
    except Category.DoesNotExist as exc:  # no category given, and no "system" one to fall back on
        raise _invalid("category", _("Give a category: this site has no “system” category.")) from exc
    except ValueError as exc:
        raise _invalid("body", str(exc)) from exc
    delivery_ids = sorted(Delivery.objects.filter(idempotency_key__in=wanted).values_list("pk", flat=True))
    return Status(202, {"planned": result.planned, "suppressed": result.suppressed,
                 "already_known": result.already_known, "delivery_ids": delivery_ids})


def _key_reused() -> Problem:
    return Problem(422, "idempotency-key-reused", _("This Idempotency-Key was used with a different request."),
                   _("Send the same body again, or use a new key."))


def _reused_differently(wanted: list[str], payload: s.NotificationIn, template_id: int | None,
                        category: Category | None) -> bool:
    """Whether the ledger rows of an earlier call with this Idempotency-Key show another request:
    some of ``wanted`` exist and others not (other recipients or channels), or one holds another
    message (the content ``notify()`` stores: the template and its context, or the literal parts)
    or another category (when this call names one). The rows themselves are compared, so nothing
    more is stored; an earlier call that named none of these recipients on these channels leaves
    no row to compare and is not seen, nor is one that named more of them."""
    if template_id is not None:
        content = {"template_id": template_id, "context": payload.context}
    else:
        content = {"subject": payload.title, "text": payload.body, "html": "", "url": payload.url}
    stored = list(Delivery.objects.filter(idempotency_key__in=set(wanted)).values_list("content", "category_id"))
    return bool(stored) and (
        len(stored) != len(set(wanted))
        or any(row != content or (category is not None and category_id != category.pk) for row, category_id in stored)
    )


@router.post("/broadcasts", response={201: s.BroadcastOut, **s.ERRORS}, auth=ServerKey(Scope.NOTIFY), tags=["sending"])
def broadcasts_send(request: HttpRequest, payload: s.BroadcastIn):
    """An announcement in every inbox (or those of a category's subscribers): ``broadcast()``."""
    made = broadcast(title=payload.title, body=payload.body, url=payload.url, category=_category(payload.category))
    return Status(201, made)


@router.post("/journeys/{journey_key}/enter", response={200: s.JourneyEnterOut, 409: s.ProblemOut, **s.ERRORS},
             auth=ServerKey(Scope.NOTIFY), tags=["sending"])
def journey_enter_people(
    request: HttpRequest, journey_key: str, payload: s.JourneyEnterIn,
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", description="Used as entry_key when none."),
):
    """Put people on a live journey (``journeys.enter``). With an ``entry_key`` (or an
    ``Idempotency-Key``, namespaced per API key), the same key enters each person once; otherwise
    the journey's re-entry policy decides. ``skipped`` counts those already in it or not allowed back yet."""
    from notifications.journeys.services import JourneyNotLive, journey_enter
    from notifications.models import Journey

    if idempotency_key is not None and not _IDEMPOTENCY_KEY.match(idempotency_key):
        raise _invalid("Idempotency-Key", _("1 to 100 letters, digits and . _ : -"))
    journey = Journey.objects.filter(key=journey_key[:64]).first()
    if journey is None:
        raise Problem(404, "not-found", _("Not found."))
    ids, missing = recipients_resolve(
        [RecipientRef(id=r.id, external_id=r.external_id, email=r.email) for r in payload.recipients])
    if missing:
        raise Problem(422, "validation", _("The request is not valid."),
                      errors=[{"field": f"recipients.{i}", "message": _("No such recipient.")} for i in missing])
    entry_key = payload.entry_key
    if entry_key is None and idempotency_key is not None:
        # Per API key, as for /notifications: two integrators' "order-1" are two occasions. An
        # explicit entry_key is not namespaced: it names the occasion for code and API alike.
        entry_key = f"api:{request.auth.prefix}:{idempotency_key}"
    try:
        result = journey_enter(journey=journey, user_ids=ids, context=payload.context, entry_key=entry_key)
    except JourneyNotLive as exc:
        raise Problem(409, "journey-not-live", _("This journey is not live."),
                      _("Publish or resume it in the admin first.")) from exc
    return {"entered": result.entered, "skipped": result.skipped}


# --- Recipients ----------------------------------------------------------------------------------

@router.put("/recipients", response={200: s.RecipientOut, **s.ERRORS}, auth=ServerKey(Scope.RECIPIENTS_WRITE), tags=["recipients"])
def recipients_upsert_one(request: HttpRequest, payload: s.RecipientIn):
    """Create or update one recipient, found by ``external_id``, else ``email``."""
    try:
        done = recipient_upsert(data=payload.dict(exclude_unset=True))
    except UpsertRefused as exc:
        raise Problem(422, "validation", _("The request is not valid."),
                      errors=[{"field": field, "message": message} for _position, field, message in exc.errors]) from exc
    return {"id": done.user_id, "created": done.created}


@router.post("/recipients/bulk", response={200: s.RecipientBulkOut, **s.ERRORS}, auth=ServerKey(Scope.RECIPIENTS_WRITE),
             tags=["recipients"])
def recipients_upsert_bulk(request: HttpRequest, payload: s.RecipientBulkIn):
    """Up to 500 upserts; a bad one refuses the whole request (422 naming it), nothing saved.
    Matched and written in bulk: the same dozen queries for 1 or 500."""
    try:
        done = recipients_upsert(items=[item.dict(exclude_unset=True) for item in payload.recipients])
    except UpsertRefused as exc:
        raise Problem(422, "validation", _("The request is not valid."), errors=[
            {"field": f"recipients.{position}.{field}", "message": message} for position, field, message in exc.errors
        ]) from exc
    return {"results": [{"id": one.user_id, "created": one.created} for one in done]}


def _recipient(recipient_id: int):
    return get_object_or_404(get_user_model()._default_manager, pk=recipient_id, is_active=True)


@router.post("/recipients/{int:recipient_id}/token", response={200: s.RecipientTokenOut, **s.ERRORS},
             auth=ServerKey(Scope.RECIPIENTS_READ, Scope.RECIPIENTS_WRITE), tags=["recipients"])
def recipient_token(request: HttpRequest, recipient_id: PathId, payload: s.RecipientTokenIn):
    """A short-lived token for this recipient's app to call ``/me/...`` (``Bearer sbr_...``): it
    reads their inbox and preferences and changes them, so the key needs both recipient scopes.
    It stops working when the key is revoked."""
    user = _recipient(recipient_id)
    if user.is_staff or user.is_superuser:
        # A server key speaks for the integrator's customers, not for the people who run Signalbox:
        # a /me/ token for a staff account would act as them (as upsert, which refuses staff too).
        raise Problem(403, "staff-account", _("The API does not mint tokens for staff accounts."),
                      _("Staff sign in to Signalbox themselves."))
    token, expires = recipient_token_mint(user=user, key=request.auth, ttl_seconds=payload.ttl_seconds)
    return {"token": token, "expires_at": expires}


@router.get("/recipients/{int:recipient_id}/preferences", response={200: s.PreferencesOut, **s.ERRORS},
            auth=ServerKey(Scope.RECIPIENTS_READ), tags=["recipients"])
def recipient_preferences(request: HttpRequest, recipient_id: PathId):
    return preferences_read(user=_recipient(recipient_id))


@router.patch("/recipients/{int:recipient_id}/preferences", response={200: s.PreferencesOut, **s.ERRORS},
              auth=ServerKey(Scope.RECIPIENTS_WRITE), tags=["recipients"])
def recipient_preferences_change(request: HttpRequest, recipient_id: PathId, payload: s.PreferencesIn):
    return preferences_change(user=_recipient(recipient_id), **payload.dict())


# --- Suppressions --------------------------------------------------------------------------------

@router.get("/suppressions", response={200: s.SuppressionPage, **s.ERRORS}, auth=ServerKey(Scope.RECIPIENTS_READ), tags=["suppressions"])
def suppressions_list(request: HttpRequest, channel: s.ChannelName | None = None,
                      cursor: int | None = Query(None, ge=1, le=s.MAX_ID)):
    """Newest first, 50 a page; ``next_cursor`` gives the next page."""
    rows = Suppression.objects.order_by("-id")
    if channel:
        rows = rows.filter(channel=channel)
    if cursor:
        rows = rows.filter(id__lt=cursor)
    items = list(rows[:PAGE_SIZE + 1])
    more = len(items) > PAGE_SIZE
    items = items[:PAGE_SIZE]
    return {"items": items, "next_cursor": items[-1].pk if more else None}


@router.post("/suppressions", response={201: s.SuppressionOut, 200: s.SuppressionOut, **s.ERRORS},
             auth=ServerKey(Scope.RECIPIENTS_WRITE), tags=["suppressions"])
def suppressions_add(request: HttpRequest, payload: s.SuppressionIn):
    """Stop all mail to an address on a channel (201; 200 when it already was)."""
    from notifications.querysets import normalise_address

    created = address_suppress(channel=payload.channel, address=payload.address, reason=payload.reason,
                               note=payload.note)
    row = Suppression.objects.for_address(payload.channel, payload.address).first()
    if row is None:
        raise _invalid("address", _("Not an address on this channel: %(address)s") % {
            "address": normalise_address(payload.channel, payload.address)})
    return Status(201 if created else 200, row)


@router.delete("/suppressions/{int:suppression_id}", response={204: None, **s.ERRORS}, auth=ServerKey(Scope.RECIPIENTS_WRITE),
               tags=["suppressions"])
def suppressions_lift(request: HttpRequest, suppression_id: PathId):
    suppression_lift(suppression=get_object_or_404(Suppression, pk=suppression_id), via="api")
    return Status(204, None)


# --- Deliveries and campaigns --------------------------------------------------------------------

@router.get("/deliveries/{int:delivery_id}", response={200: s.DeliveryOut, **s.ERRORS}, auth=ServerKey(Scope.EVENTS_READ),
            tags=["deliveries"])
def delivery_status(request: HttpRequest, delivery_id: PathId):
    delivery = get_object_or_404(Delivery.objects.to_people(), pk=delivery_id)
    events = list(delivery.events.order_by("occurred_at", "id").values("kind", "source", "occurred_at")[:200])
    return {**{f: getattr(delivery, f) for f in s.DeliveryOut.model_fields if f != "events"}, "events": events}


def _campaign_row(campaign: Campaign) -> dict:
    return {"id": campaign.pk, "name": campaign.name, "status": campaign.status, "schedule": campaign.schedule,
            "channels": list(campaign.channels or []), "next_run_at": campaign.next_run_at,
            "created_at": campaign.created_at}


@router.get("/campaigns", response={200: s.CampaignPage, **s.ERRORS}, auth=ServerKey(Scope.CAMPAIGNS_READ), tags=["campaigns"])
def campaigns_list(request: HttpRequest, status: str | None = Query(None, max_length=20),
                   cursor: int | None = Query(None, ge=1, le=s.MAX_ID)):
    rows = Campaign.objects.order_by("-id")
    if status:
        rows = rows.filter(status=status)
    if cursor:
        rows = rows.filter(id__lt=cursor)
    items = list(rows[:PAGE_SIZE + 1])
    more = len(items) > PAGE_SIZE
    items = items[:PAGE_SIZE]
    return {"items": [_campaign_row(c) for c in items], "next_cursor": items[-1].pk if more else None}


@router.get("/campaigns/{int:campaign_id}", response={200: s.CampaignStatusOut, **s.ERRORS}, auth=ServerKey(Scope.CAMPAIGNS_READ),
            tags=["campaigns"])
def campaign_status(request: HttpRequest, campaign_id: PathId):
    """The campaign and its ten latest runs with their progress figures (as the admin shows them)."""
    campaign = get_object_or_404(Campaign, pk=campaign_id)
    runs = list(campaign.runs.order_by("-occurrence")[:10])
    progress = runs_progress_of(runs)
    return {**_campaign_row(campaign), "runs": [
        {"id": r.pk, "status": r.status, "occurrence": r.occurrence, "finished_at": r.finished_at,
         "audience_size": r.audience_size, "total": p.total, "sent": p.sent, "failed": p.failed,
         "unknown": p.unknown, "suppressed": p.suppressed, "waiting": p.waiting, "percent": p.percent}
        for r in runs for p in [progress[r.pk]]
    ]}


# --- The recipient's own (apps) ------------------------------------------------------------------

# micros.id.kind (n or b); a cursor without the kind (as given before it was added) is read as
# ending on a broadcast, which is what it skipped to then.
_CURSOR = re.compile(r"^(\d{1,17})\.(\d{1,18})(?:\.([nb]))?$")
_KIND_OF = {"n": "notification", "b": "broadcast", None: "broadcast"}


def _cursor_decode(cursor: str) -> tuple[datetime, int, str]:
    match = _CURSOR.match(cursor)
    if not match:
        raise _invalid("cursor", _("Not a cursor this API gave."))
    from datetime import UTC, timedelta

    micros, pk = int(match[1]), int(match[2])
    try:
        # Whole microseconds in integers: a float's rounding could move the cursor off its item.
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros), pk, _KIND_OF[match[3]]
    except (OverflowError, OSError, ValueError) as exc:
        raise _invalid("cursor", _("Not a cursor this API gave.")) from exc


def _cursor_encode(item: InboxItem) -> str:
    from datetime import UTC, timedelta

    micros = (item.created_at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    return f"{micros}.{item.pk}.{item.kind[0]}"


@router.get("/me/inbox", response={200: s.InboxPageOut, **s.ERRORS}, auth=RECIPIENT, tags=["me"])
def my_inbox(request: HttpRequest, cursor: str | None = Query(None, max_length=50),
             limit: int = Query(20, ge=1, le=100)):
    """Newest first; ``next_cursor`` asks for the page after this one (keyset: items arriving
    meanwhile neither shift nor repeat it)."""
    user = request.auth
    before = _cursor_decode(cursor) if cursor else None
    rows = [InboxItem(*row) for row in inbox_items(user_id=user.pk, before=before)[:limit + 1]]
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [{"id": item.dom_id, "kind": item.kind, "title": item.title, "body": item.body,
                   "url": item.safe_url, "category": item.category_name, "created_at": item.created_at,
                   "read_at": item.read_at} for item in rows],
        "unread": inbox_counts(user_id=user.pk).unread,
        "next_cursor": _cursor_encode(rows[-1]) if more else None,
    }


@router.get("/me/inbox/unread-count", response={200: s.UnreadOut, **s.ERRORS}, auth=RECIPIENT, tags=["me"])
def my_unread(request: HttpRequest):
    return {"unread": inbox_counts(user_id=request.auth.pk).unread}


_ITEM = re.compile(r"^(notification|broadcast)-(\d{1,18})$")


@router.post("/me/inbox/{item_id}/read", response={200: s.UnreadOut, **s.ERRORS}, auth=RECIPIENT, tags=["me"])
def my_mark_read(request: HttpRequest, item_id: str):
    """Mark one item read (``notification-12`` or ``broadcast-3``, as listed)."""
    match = _ITEM.match(item_id)
    if not match:
        raise Problem(404, "not-found", _("Not found."))
    kind, pk = match[1], int(match[2])
    if kind == "notification":
        notification_mark_read(user=request.auth, notification_id=pk)
    else:
        broadcast_mark_read(user=request.auth, broadcast_id=pk)
    return {"unread": inbox_counts(user_id=request.auth.pk).unread}


@router.post("/me/inbox/read-all", response={200: s.ChangedOut, **s.ERRORS}, auth=RECIPIENT, tags=["me"])
def my_mark_all_read(request: HttpRequest):
    return {"changed": notifications_mark_all_read(user=request.auth)}


@router.get("/me/preferences", response={200: s.PreferencesOut, **s.ERRORS}, auth=RECIPIENT, tags=["me"])
def my_preferences(request: HttpRequest):
    return preferences_read(user=request.auth)


@router.patch("/me/preferences", response={200: s.PreferencesOut, **s.ERRORS}, auth=RECIPIENT, tags=["me"])
def my_preferences_change(request: HttpRequest, payload: s.PreferencesIn):
    return preferences_change(user=request.auth, **payload.dict())
