"""Why deliveries of the ``waiting`` group (``outcomes.STATUS_GROUPS``) have not gone out yet.

Progress reads this so that a bar at 99 % says what it waits for ("35 held for quiet hours until
08:00 Asia/Shanghai", "12 waiting for the rate limit", "4 retrying (next attempt 10:32)") instead
of a bare "Sending". The reason is read from the ledger row, as the sender sets it:

* ``paused``: the row is paused with its campaign;
* ``sending``: a worker holds it right now;
* ``retrying``: ``deferred`` after a transient error (or a lost lease), next try at ``next_attempt_at``;
* ``quiet_hours``: ``planned`` with reason ``deferred:quiet_hours``, held until the recipient's quiet
  hours end (``next_attempt_at``), counted per recipient time zone;
* ``digest``: held to go out in a digest (reason ``digest:...``);
* ``scheduled``: held until a later time (a campaign's throttle or local send time);
* ``queue``: due now, waiting its turn under the channel's send-rate limit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.db.models import Case, CharField, Count, Min, Q, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from ..models import Delivery
from .decisions import QUIET_HOURS_REASON
from .outcomes import STATUS_GROUPS
from .recording import DIGEST_PREFIX

S = Delivery.Status

# Shown in this order: what will happen soonest or needs attention first.
KINDS = ("sending", "queue", "retrying", "quiet_hours", "scheduled", "digest", "paused", "approval")


@dataclass(frozen=True)
class WaitingReason:
    """``count`` deliveries wait for one reason; ``until`` is the earliest next attempt (if any),
    ``zone`` the recipients' time zone for quiet hours (one row per zone)."""

    kind: str
    count: int
    until: datetime | None = None
    zone: str = ""

    @property
    def label(self) -> str:
        n = self.count
        when = self._when()
        if self.kind == "quiet_hours":
            if when:
                return ngettext(
                    "%(n)s held for quiet hours until %(when)s %(zone)s",
                    "%(n)s held for quiet hours until %(when)s %(zone)s", n,
                ) % {"n": n, "when": when, "zone": self.zone}
            return ngettext("%(n)s held for quiet hours", "%(n)s held for quiet hours", n) % {"n": n}
        if self.kind == "retrying":
            if when:
                return ngettext(
                    "%(n)s retrying (next attempt %(when)s)", "%(n)s retrying (next attempt %(when)s)", n
                ) % {"n": n, "when": when}
            return ngettext("%(n)s retrying", "%(n)s retrying", n) % {"n": n}
        if self.kind == "scheduled":
            if when:
                return ngettext("%(n)s scheduled for %(when)s", "%(n)s scheduled for %(when)s", n) % {"n": n, "when": when}
            return ngettext("%(n)s scheduled for later", "%(n)s scheduled for later", n) % {"n": n}
        labels = {
            "queue": ngettext("%(n)s waiting for the rate limit", "%(n)s waiting for the rate limit", n),
            "sending": ngettext("%(n)s being sent now", "%(n)s being sent now", n),
            "digest": ngettext("%(n)s held for a digest", "%(n)s held for a digest", n),
            "paused": ngettext("%(n)s paused", "%(n)s paused", n),
        }
        if self.kind == "approval":
            return _("awaiting approval")
        return labels[self.kind] % {"n": n}

    def _when(self) -> str:
        """``HH:MM`` in the recipients' zone (quiet hours) or the current one; with the date when
        it is not within the next 24 hours."""
        if self.until is None:
            return ""
        tz = timezone.get_current_timezone()
        if self.zone:
            try:
                tz = ZoneInfo(self.zone)
            except (ZoneInfoNotFoundError, ValueError):
                pass
        local = self.until.astimezone(tz)
        if abs((self.until - timezone.now()).total_seconds()) < 24 * 3600:
            return local.strftime("%H:%M")
        return local.strftime("%Y-%m-%d %H:%M")


def _kind(now: datetime) -> Case:
    return Case(
        When(status=S.PAUSED, then=Value("paused")),
        When(status=S.SENDING, then=Value("sending")),
        When(status=S.DEFERRED, then=Value("retrying")),
        When(status_reason=QUIET_HOURS_REASON, then=Value("quiet_hours")),
        When(status_reason__startswith=DIGEST_PREFIX, then=Value("digest")),
        When(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now), then=Value("queue")),
        default=Value("scheduled"),
        output_field=CharField(),
    )


def waiting_reasons_by(
    deliveries, key: str, *, now: datetime | None = None
) -> dict[object, list[WaitingReason]]:
    """The waiting deliveries of ``deliveries`` per value of ``key`` (e.g. ``run_id``), by reason,
    in one query (filtered on the status, e.g. ``delivery_run_status_idx``)."""
    now = now or timezone.now()
    kind = _kind(now)
    zone = Case(
        When(status=S.PLANNED, status_reason=QUIET_HOURS_REASON, then="recipient__recipient_profile__timezone"),
        default=Value(""), output_field=CharField(),
    )
    rows = (
        deliveries.filter(status__in=STATUS_GROUPS["waiting"])
        .annotate(waiting_kind=kind, waiting_zone=zone)
        .values(key, "waiting_kind", "waiting_zone")
        .annotate(n=Count("id"), until=Min("next_attempt_at"))
        .order_by()
    )
    result: dict[object, list[WaitingReason]] = {}
    for row in rows:
        until = row["until"] if row["waiting_kind"] in ("quiet_hours", "retrying", "scheduled") else None
        reason = WaitingReason(row["waiting_kind"], row["n"], until, row["waiting_zone"] or "")
        result.setdefault(row[key], []).append(reason)
    return {k: sort_reasons(v) for k, v in result.items()}


def sort_reasons(reasons: Iterable[WaitingReason]) -> list[WaitingReason]:
    return sorted(reasons, key=lambda r: (KINDS.index(r.kind), -r.count, r.zone))
