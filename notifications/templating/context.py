"""What a template may see: plain dicts and strings built here, never model instances.

``BASE_NAMES`` are available to every template:

- ``recipient``: the person the message is for (``RECIPIENT_FIELDS``; ``full_name`` falls back to
  the username, ``phone_last4`` is the last four digits of their phone or "").
- ``campaign``: ``{"id", "name"}`` of the sending campaign; empty values when sent by ``notify()``.
- ``instance``: for trigger templates, the allow-listed fields of the instance that fired
  (``notifications.triggers.registry.instance_fields``); ``{}`` otherwise.
- ``site_url``: the site's base URL, without a trailing slash.
- ``unsubscribe_url``: the one-click unsubscribe link of this delivery; "" where there is none
  (transactional mail, SMS). The email layout shows it in the footer when present.
- ``preferences_url``: a link to the recipient's preference centre (signed, no login needed).

A template may use further names only if it declares them (``MessageTemplate.variables``); the
caller supplies their values (``notify(context=...)``) as plain JSON data.
"""

from __future__ import annotations

import importlib
from typing import Any

from accounts.names import full_name

from .. import conf
from ..links import page_url, token_url
from ..tokens import preferences_token

BASE_NAMES = frozenset({
    "recipient", "campaign", "instance", "site_url", "unsubscribe_url", "preferences_url",
    # A trigger's message also gets the event ("created", "updated", ...), the trigger and the change.
    "event", "trigger", "change",
})
RECIPIENT_FIELDS = ("first_name", "last_name", "full_name", "username", "email", "locale", "timezone", "phone_last4")
CAMPAIGN_FIELDS = ("id", "name")
# The structure of the names above, for save-time checks of ``recipient.frist_name`` typos.
KNOWN_FIELDS = {"recipient": frozenset(RECIPIENT_FIELDS), "campaign": frozenset(CAMPAIGN_FIELDS)}


def recipient_context(user: Any) -> dict[str, str]:
    """The recipient's own fields as plain strings. Reads ``user.recipient_profile`` (select it
    with ``select_related`` when building many)."""
    profile = getattr(user, "recipient_profile", None)
    first, last = (user.first_name or "").strip(), (user.last_name or "").strip()
    phone = (getattr(profile, "phone", "") or "")
    return {
        "first_name": first,
        "last_name": last,
        "full_name": full_name(first, last) or user.get_username(),  # 杨欢 / Huan Yang
        "username": user.get_username(),
        "email": user.email or "",
        "locale": getattr(profile, "locale", "") or "en",
        "timezone": getattr(profile, "timezone", "") or "UTC",
        "phone_last4": phone[-4:] if len(phone) >= 4 else "",
    }


def campaign_context(campaign: Any | None) -> dict[str, Any]:
    if campaign is None:
        return {"id": None, "name": ""}
    return {"id": campaign.pk, "name": campaign.name}


def instance_context(instance: Any | None) -> dict[str, Any]:
    """The allow-listed fields of a trigger's instance, or ``{}`` when there is none (or no
    registry, or the model is not registered: a template sees nothing it was not allowed)."""
    if instance is None:
        return {}
    try:
        registry = importlib.import_module("notifications.triggers.registry")
    except ImportError:
        return {}
    fields = getattr(registry, "instance_fields", None)
    if fields is None:
        return {}
    try:
        return fields(instance)
    except LookupError:
        return {}


def preferences_url(user_id: int) -> str:
    return token_url("notifications:preferences_token", preferences_token(user_id))


def default_context() -> dict[str, Any]:
    """Values for the base names a caller did not give."""
    return {
        "campaign": campaign_context(None),
        "instance": {},
        "event": "",
        "trigger": {},
        "change": {},
        "site_url": conf.site_url(),
        "unsubscribe_url": "",
        "preferences_url": page_url("notifications:preferences"),
    }


def message_context(
    *,
    user: Any,
    campaign: Any | None = None,
    instance: Any | None = None,
    instance_data: dict[str, Any] | None = None,
    unsubscribe_url: str = "",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The full context for one recipient.

    ``extra`` is the caller's plain data (``notify(context=...)``, a trigger's event data): the
    declared variables, and ``campaign``/``instance`` when the caller has them as data already.
    ``recipient``, ``site_url``, ``preferences_url`` and ``unsubscribe_url`` always come from
    here, so no caller data can pose as the recipient or point their links elsewhere.
    ``instance_data`` is an instance's fields already made plain; ``instance`` a model instance
    (its allow-listed fields are read).
    """
    context = {**default_context(), **(extra or {})}
    if campaign is not None:
        context["campaign"] = campaign_context(campaign)
    if instance_data is not None:
        context["instance"] = instance_data
    elif instance is not None:
        context["instance"] = instance_context(instance)
    context.update({
        "recipient": recipient_context(user),
        "site_url": conf.site_url(),
        "unsubscribe_url": unsubscribe_url,
        "preferences_url": preferences_url(user.pk),
    })
    return context
