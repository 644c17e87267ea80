"""Registering mobile push devices (services; apps reach them through `/api/v1/me/devices`).

A token identifies one app installation; it is unique, so a token registered again (the same
phone, now signed in as someone else) moves to the new user instead of being duplicated.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from .models import PushDevice

MAX_TOKEN_LENGTH = 512


def device_register(*, user, token: str, platform: str = PushDevice.Platform.FCM, app_id: str = "") -> PushDevice:
    """Register (or re-register) ``token`` for ``user``; ``ValidationError`` for a bad token or platform."""
    token = (token or "").strip()
    if not token or len(token) > MAX_TOKEN_LENGTH or any(c.isspace() for c in token):
        raise ValidationError(_("Enter a device token."), code="invalid_token")
    if platform not in PushDevice.Platform.values:
        raise ValidationError(_("Unknown push platform."), code="invalid_platform")
    with transaction.atomic():
        device, created = PushDevice.objects.select_for_update().get_or_create(
            token=token, defaults={"user": user, "platform": platform, "app_id": app_id[:200]},
        )
        if not created and (device.user_id, device.platform, device.app_id) != (user.pk, platform, app_id[:200]):
            device.user, device.platform, device.app_id = user, platform, app_id[:200]
            device.save(update_fields=["user", "platform", "app_id"])
    return device


def device_unregister(*, user, token: str) -> bool:
    """Forget ``token`` if it is ``user``'s (signing out of the app). Returns whether it was."""
    deleted, _rows = PushDevice.objects.filter(user=user, token=(token or "").strip()).delete()
    return bool(deleted)


def devices_remove_unregistered(*, tokens: list[str]) -> int:
    """Delete tokens the push service said are no longer registered (the app was uninstalled)."""
    if not tokens:
        return 0
    deleted, _rows = PushDevice.objects.filter(token__in=tokens).delete()
    return deleted


def devices_mark_used(*, tokens: list[str], when=None) -> int:
    """Stamp ``last_used_at`` on the devices a push just reached: one UPDATE for a whole batch."""
    if not tokens:
        return 0
    from django.utils import timezone

    return PushDevice.objects.filter(token__in=set(tokens)).update(last_used_at=when or timezone.now())
