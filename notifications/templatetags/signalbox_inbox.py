"""``{% signalbox_inbox %}``: the embeddable inbox (``<signalbox-inbox>``) for any page of a site
that runs Signalbox, with what it needs filled in: the endpoints, the CSRF token, the unread count
and stream state as of this render, and its strings in the page's language.

    {% load signalbox_inbox %}
    {% signalbox_inbox %}                      {# bell, dropdown of the 10 newest #}
    {% signalbox_inbox limit=5 align="start" %}

Renders nothing for a visitor who is not signed in. The element and its script are static files
(``signalbox/inbox.js``, ``signalbox/inbox.css``): no CDN, no inline script or style, so the page
can keep a strict Content-Security-Policy (``config/csp.py``).
"""

from __future__ import annotations

import json

from django import template
from django.middleware.csrf import get_token
from django.templatetags.static import static
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from ..inbox import live

register = template.Library()

LIMIT_MAX = 50


def inbox_labels() -> dict[str, str]:
    """The component's strings, translated into the active language (English is built into the
    script as well, for a page that renders the element by hand)."""
    return {
        "notifications": _("Notifications"),
        # {n} is filled in by the script: announced when the count changes, and the bell's name.
        "unread": _("{n} unread"),
        "bellUnread": _("Notifications, {n} unread"),
        "markRead": _("Mark as read"),
        "markAllRead": _("Mark all as read"),
        "empty": _("You're all caught up."),
        "openInbox": _("Open inbox"),
        "announcement": _("Announcement"),
        "unreadItem": _("Unread"),
        "loadError": _("Could not load your notifications."),
    }


@register.inclusion_tag("signalbox/inbox.html", takes_context=True)
def signalbox_inbox(context, limit: int = 10, align: str = "end") -> dict:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"show": False}
    try:
        limit = min(max(int(limit), 1), LIMIT_MAX)
    except (TypeError, ValueError):
        limit = 10
    state = live.inbox_state(user.pk)
    return {
        "show": True,
        "feed_url": reverse("notifications:feed"),
        "stream_url": reverse("notifications:stream"),
        "mark_all_url": reverse("notifications:mark_all_read"),
        "inbox_url": reverse("notifications:inbox"),
        "csrf": get_token(request),
        "lang": get_language() or "en",
        "labels": json.dumps(inbox_labels(), ensure_ascii=False),
        "unread": state.unread,
        "state": state.event_id,
        "limit": limit,
        "align": "start" if align == "start" else "end",
        "script": static("signalbox/inbox.js"),
        "stylesheet": static("signalbox/inbox.css"),
    }
