"""Recipient-facing views: the inbox (notifications and broadcasts), its badge, read marks and
the live stream.

Thin by design: they check the method and the owner, call a selector or a service, and render.
With htmx they render only the region that changed (``page.html#partial``).
"""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.handlers.asgi import ASGIRequest
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import trigger_client_event

from ..models import Broadcast, Notification
from . import live, selectors, services

INBOX_TEMPLATE = "notifications/inbox.html"


def _page_number(request: HttpRequest) -> str:
    return request.POST.get("page") or request.GET.get("page") or "1"


def _render_inbox(request: HttpRequest, *, partial: str | None = None) -> HttpResponse:
    inbox = selectors.inbox_page(user=request.user, page_number=_page_number(request))
    counts = inbox.counts
    state = live.InboxState.of(counts)
    context = {"inbox": inbox, "page": inbox.page, "unread": inbox.unread, "live_state": state.event_id}
    template = f"{INBOX_TEMPLATE}#{partial}" if partial else INBOX_TEMPLATE
    return render(request, template, context)


@login_required
@require_GET
def inbox(request: HttpRequest) -> HttpResponse:
    if request.htmx and not request.htmx.history_restore_request:
        return _render_inbox(request, partial="inbox-list")
    return _render_inbox(request)


@login_required
@require_GET
def badge(request: HttpRequest) -> HttpResponse:
    return render(
        request, "notifications/base.html#badge", {"unread": selectors.unread_count(user=request.user)}
    )


# How many items the embeddable inbox may ask for at once (``?limit=``).
FEED_LIMIT_DEFAULT = 10
FEED_LIMIT_MAX = 50


@login_required
@require_GET
def feed(request: HttpRequest) -> JsonResponse:
    """The newest inbox items as JSON, for ``<signalbox-inbox>`` (static/signalbox/inbox.js).

    Read marks go through the same POST views as the inbox page; ``state`` is the live stream's
    event id for these counts, so the component's stream starts from what it has shown.
    """
    try:
        limit = min(max(int(request.GET.get("limit", FEED_LIMIT_DEFAULT)), 1), FEED_LIMIT_MAX)
    except ValueError:
        limit = FEED_LIMIT_DEFAULT
    feed = selectors.inbox_newest(user=request.user, limit=limit)
    counts = feed.counts
    state = live.InboxState.of(counts)
    items = [
        {
            "id": item.dom_id,
            "kind": item.kind,
            "title": item.title,
            "body": item.body,
            "url": item.safe_url,
            "category": item.category_name or "",
            "created_at": item.created_at.isoformat(),
            "read": item.read_at is not None,
            "mark_read_url": item.mark_read_url,
        }
        for item in feed.items
    ]
    response = JsonResponse({"unread": counts.unread, "state": state.event_id, "items": items})
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def mark_read(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        services.notification_mark_read(user=request.user, notification_id=pk)
    except Notification.DoesNotExist:
        # Someone else's notification is indistinguishable from a missing one.
        raise Http404 from None
    return _after_change(request)


@login_required
@require_POST
def mark_all_read(request: HttpRequest) -> HttpResponse:
    services.notifications_mark_all_read(user=request.user)
    return _after_change(request)


@login_required
@require_POST
def open_notification(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark read and follow the notification's link (only to this site or an http(s) URL)."""
    try:
        notification = services.notification_mark_read(user=request.user, notification_id=pk)
    except Notification.DoesNotExist:
        raise Http404 from None
    return redirect(notification.safe_url or "notifications:inbox")


@login_required
@require_POST
def broadcast_read(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        services.broadcast_mark_read(user=request.user, broadcast_id=pk)
    except Broadcast.DoesNotExist:
        # A broadcast this user does not see (another category's, older than the account) is
        # indistinguishable from a missing one.
        raise Http404 from None
    return _after_change(request)


@login_required
@require_POST
def broadcast_open(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark a broadcast read and follow its link (only to this site or an http(s) URL)."""
    try:
        broadcast = services.broadcast_mark_read(user=request.user, broadcast_id=pk)
    except Broadcast.DoesNotExist:
        raise Http404 from None
    return redirect(broadcast.safe_url or "notifications:inbox")


def _after_change(request: HttpRequest) -> HttpResponse:
    if request.htmx:
        response = _render_inbox(request, partial="inbox-list")
        return trigger_client_event(response, "inbox-changed")
    return redirect(f"{reverse('notifications:inbox')}?page={_page_number(request)}")


@login_required
@require_GET
def stream(request: HttpRequest) -> StreamingHttpResponse:
    known = live.InboxState.parse(request.headers.get("Last-Event-ID") or request.GET.get("state"))
    if isinstance(request, ASGIRequest):
        content = live.aevent_stream(request.user.pk, known)
    else:
        content = live.event_stream(request.user.pk, known)
    response = StreamingHttpResponse(content, content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
