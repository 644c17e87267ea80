"""Query vocabulary for the notifications models, exposed through ``QuerySet.as_manager()``."""

from __future__ import annotations

from django.db import models
from django.db.models import Q


class NotificationQuerySet(models.QuerySet):
    def for_recipient(self, user) -> NotificationQuerySet:
        return self.filter(recipient=user)

    def unread(self) -> NotificationQuerySet:
        # Matches the partial index ``notification_unread_idx`` exactly (read_at IS NULL).
        return self.filter(read_at__isnull=True)

    def newest_first(self) -> NotificationQuerySet:
        return self.order_by("-created_at", "-id")


class PreferenceQuerySet(models.QuerySet):
    def for_user(self, user) -> PreferenceQuerySet:
        return self.filter(user=user)


class SuppressionQuerySet(models.QuerySet):
    def for_address(self, channel: str, address: str) -> SuppressionQuerySet:
        return self.filter(channel=channel, address=normalise_address(channel, address))


class DeliveryQuerySet(models.QuerySet):
    def due(self, now) -> DeliveryQuerySet:
        """Deliveries a worker may pick up now."""
        return self.filter(
            Q(status="planned") | Q(status="deferred"),
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
        )


def normalise_address(channel: str, address: str) -> str:
    """The form an address is stored and compared in (emails compare case-insensitively)."""
    address = address.strip()
    return address.lower() if channel == "email" else address
