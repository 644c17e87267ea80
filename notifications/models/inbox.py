"""The inbox beyond one row per message: shared content and broadcasts (fan-out on read).

``NotificationContent`` is what many inbox notifications say, stored once: a ``notify()`` to
10,000 people writes one content row and 10,000 narrow ``Notification`` rows that reference it
(a templated message rendered per recipient keeps its own text on its row instead).

A ``Broadcast`` is one row that every matching inbox shows: everyone, or, with a category, the
people who have not opted out of that category in the inbox (transactional and non-optional
categories reach everyone, exactly as a delivery would). A user sees the broadcasts made since
they joined (``date_joined``); older announcements are not news to a new account. Read state
is kept per user only once they read one (``BroadcastRead``), so sending costs one INSERT
whatever the audience.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ..querysets import BroadcastQuerySet


def safe_link(url: str) -> str:
    """The link if it is site-relative or http(s); never ``javascript:`` and friends."""
    url = (url or "").strip()
    if url.startswith("/") and not url.startswith("//"):
        return url
    if urlsplit(url).scheme in ("http", "https"):
        return url
    return ""


class NotificationContent(models.Model):
    """The title, body and link of a message many inbox notifications share (written once)."""

    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("body"), blank=True)
    url = models.CharField(_("link"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("shared inbox content")
        verbose_name_plural = _("shared inbox contents")

    def __str__(self) -> str:
        return self.title


class Broadcast(models.Model):
    """An announcement shown in every matching inbox; one row however many people see it.

    Broadcasts live on the inbox channel (``CHANNEL``): its opt-outs and suppressions hide them,
    and analytics filtered to any other channel leave them out.
    """

    CHANNEL = "inapp"

    title = models.CharField(_("title"), max_length=200)
    body = models.TextField(_("body"), blank=True)
    url = models.CharField(_("link"), max_length=500, blank=True)
    category = models.ForeignKey(
        "notifications.Category", null=True, blank=True, on_delete=models.PROTECT, related_name="+",
        verbose_name=_("category"),
        help_text=_("Empty: everyone. A category: the people who have not opted out of it in the inbox."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("sent by"),
    )
    created_at = models.DateTimeField(_("sent"), default=timezone.now)

    objects = BroadcastQuerySet.as_manager()

    class Meta:
        verbose_name = _("broadcast")
        verbose_name_plural = _("broadcasts")
        ordering = ["-created_at", "-id"]
        indexes = [
            # Every inbox reads the broadcasts made since its owner joined, newest first.
            models.Index(fields=["created_at", "category"], name="broadcast_created_idx"),
        ]
        permissions = [
            # Marketers hold it (``accounts.roles``: the "broadcast.send" action).
            ("send_broadcast", _("Can send broadcasts to every inbox")),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def safe_url(self) -> str:
        return safe_link(self.url)


class BroadcastRead(models.Model):
    """That one user read one broadcast (the only per-user row a broadcast ever gets)."""

    broadcast = models.ForeignKey(Broadcast, on_delete=models.CASCADE, related_name="reads", verbose_name=_("broadcast"))
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("user")
    )
    read_at = models.DateTimeField(_("read"), default=timezone.now)

    class Meta:
        verbose_name = _("broadcast read")
        verbose_name_plural = _("broadcast reads")
        constraints = [
            # Also the index the unread count probes: (user, broadcast).
            models.UniqueConstraint(fields=["user", "broadcast"], name="broadcastread_unique_user_broadcast"),
        ]
        indexes = [models.Index(fields=["broadcast", "read_at"], name="broadcastread_broadcast_idx")]

    def __str__(self) -> str:
        return f"{self.user_id} · {self.broadcast_id}"
