"""One definition of every figure: outcome groups and rates over ``Delivery`` rows.

Analytics (and its rollups), the staff home, campaign progress, CSV/XLSX exports and PDF reports
all read this module; none of them names a delivery status itself. Two numbers for one meaning
is a bug, so a new surface adds a property here rather than a ``status__in`` of its own.

Every figure is about a *cohort* of deliveries (those of a run, a campaign, or created in a
period) and how far each got by now.

**Groups** partition the cohort by *current* status; every status is in exactly one group, so the
groups add up to ``planned`` (the progress bar and the "volume by status" charts):

============== ===================================================================
``waiting``    planned, paused, sending, retrying (deferred): not settled yet
``suppressed`` not sent on purpose (suppressed, opted out, cancelled, capped)
``sent``       accepted by the provider, no later receipt
``unknown``    handed over but the outcome never came back (e.g. an SMS timeout)
``delivered``  confirmed delivered, not opened
``opened``     opened or read (an inbox read counts as an open), not clicked
``clicked``    clicked
``failed``     failed or bounced (a bounce after "sent" stays here: status moves forward)
============== ===================================================================

**Funnel stages** (``reached_*``) are cumulative: each includes every later stage, from the
timestamps as well as the status, so the funnel never widens (a click counts as an open even when
the pixel never loaded; an opened email counts as delivered even when no delivery receipt came):

* ``sent``: the provider accepted it at some point, *including* those that bounced or failed
  afterwards (``sent_at`` is kept); so ``sent + failed`` may exceed ``planned``.
* ``delivered``, ``opened``, ``clicked``: reached that stage or a later one.

**Headline figures**: Sent = ``reached_sent``, Delivered = ``reached_delivered``, Opened =
``reached_opened``, Clicked = ``reached_clicked``, Failed = group ``failed`` (failed + bounced;
``unknown`` is its own figure, never counted as failed or sent), Not sent = group ``suppressed``,
Waiting = group ``waiting``, Planned = every row.

**Rates** (``RATES``; ``None`` when the denominator is 0):

* sent rate = sent / planned; failure rate = failed / planned;
* delivered rate = delivered / sent;
* open rate, click rate and unsubscribe rate = opened, clicked, unsubscribed / **delivered**
  (delivered includes every open and click, so a rate never exceeds 100 %);
* open and click rate of sent = opened, clicked / **sent** (what A/B tests compare variants on).

**Progress** of a run = (planned − waiting) / planned: everything settled, whatever the outcome;
never shown as 100 % while a delivery waits (``Outcomes.percent_done``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from ..models import Delivery, DeliveryEvent

S = Delivery.Status

# Current status -> the group it is shown in. Every status is in exactly one group. The names are
# also the columns of the analytics rollups (``status_<group>``): renaming one needs a migration.
STATUS_GROUPS: dict[str, tuple[str, ...]] = {
    "waiting": (S.PLANNED, S.PAUSED, S.SENDING, S.DEFERRED),
    "suppressed": (S.SUPPRESSED,),
    "sent": (S.SENT,),
    "unknown": (S.UNKNOWN,),
    "delivered": (S.DELIVERED,),
    "opened": (S.OPENED, S.READ),
    "clicked": (S.CLICKED,),
    "failed": (S.FAILED, S.BOUNCED),
}
assert sorted(s for group in STATUS_GROUPS.values() for s in group) == sorted(S.values), "a status without a group"

_clicked = Q(clicked_at__isnull=False) | Q(status=S.CLICKED)
_opened = _clicked | Q(opened_at__isnull=False) | Q(read_at__isnull=False) | Q(status__in=[S.OPENED, S.READ])
_delivered = _opened | Q(delivered_at__isnull=False) | Q(status=S.DELIVERED)
_sent = _delivered | Q(sent_at__isnull=False) | Q(status=S.SENT)
# Cumulative funnel stages, as filters on ``Delivery``.
REACHED: dict[str, Q] = {"sent": _sent, "delivered": _delivered, "opened": _opened, "clicked": _clicked}

COUNTER_NAMES: tuple[str, ...] = (
    "total",
    *(f"status_{name}" for name in STATUS_GROUPS),
    *(f"reached_{name}" for name in REACHED),
    "unsubscribed",
)

# Rate name -> (figure, denominator figure). The one place a denominator is chosen.
RATES: dict[str, tuple[str, str]] = {
    "sent_rate": ("sent", "planned"),
    "delivered_rate": ("delivered", "sent"),
    "open_rate": ("opened", "delivered"),
    "click_rate": ("clicked", "delivered"),
    "failure_rate": ("failed", "planned"),
    "unsubscribe_rate": ("unsubscribed", "delivered"),
    # A/B tests compare variants per message sent: email over SMTP reports no delivery, so a
    # rate of delivered would read 100 % opened for every variant.
    "open_rate_of_sent": ("opened", "sent"),
    "click_rate_of_sent": ("clicked", "sent"),
}


def group_q(name: str) -> Q:
    """Deliveries whose current status is in group ``name`` (e.g. ``failed``)."""
    return Q(status__in=STATUS_GROUPS[name])


def delivery_counters(*, with_unsubscribed: bool = True, only: tuple[str, ...] | None = None) -> dict:
    """Aggregates over ``Delivery`` rows, one per counter, for ``.annotate()``/``.aggregate()``:
    every figure of a slice in one pass over its rows (``only``: just those counters; the others
    read as 0, so ask for what the caller shows).

    ``unsubscribed`` is an EXISTS per delivery (one probe of ``deliveryevent_delivery_idx``
    each); callers counting a recent window count unsubscribes from the receipts instead.
    """
    counters = {
        "total": Count("id"),
        **{f"status_{name}": Count("id", filter=Q(status__in=statuses)) for name, statuses in STATUS_GROUPS.items()},
        **{f"reached_{name}": Count("id", filter=q) for name, q in REACHED.items()},
    }
    if with_unsubscribed:
        unsubscribed = Exists(
            DeliveryEvent.objects.filter(delivery_id=OuterRef("pk"), kind=DeliveryEvent.Kind.UNSUBSCRIBED)
        )
        counters["unsubscribed"] = Count("id", filter=Q(unsubscribed))
    if only is not None:
        counters = {name: counters[name] for name in only if name in counters}
    return counters


@dataclass
class Outcomes:
    """The counters of one slice (a day, a channel, a run, a campaign, or all of them), and the
    headline figures and rates read from them (see the module docstring)."""

    total: int = 0
    status_waiting: int = 0
    status_suppressed: int = 0
    status_sent: int = 0
    status_unknown: int = 0
    status_delivered: int = 0
    status_opened: int = 0
    status_clicked: int = 0
    status_failed: int = 0
    reached_sent: int = 0
    reached_delivered: int = 0
    reached_opened: int = 0
    reached_clicked: int = 0
    unsubscribed: int = 0

    @classmethod
    def from_row(cls, row: dict | None, *, unsubscribed: int | None = None) -> Outcomes:
        outcomes = cls().add(row or {})
        if unsubscribed is not None:
            outcomes.unsubscribed = unsubscribed
        return outcomes

    def add(self, row: dict | Outcomes) -> Outcomes:
        get = row.get if isinstance(row, dict) else row.__dict__.get
        for name in COUNTER_NAMES:
            setattr(self, name, getattr(self, name) + (get(name) or 0))
        return self

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    # Headline figures ---------------------------------------------------------------------
    @property
    def planned(self) -> int:
        return self.total

    @property
    def sent(self) -> int:
        return self.reached_sent

    @property
    def delivered(self) -> int:
        return self.reached_delivered

    @property
    def opened(self) -> int:
        return self.reached_opened

    @property
    def clicked(self) -> int:
        return self.reached_clicked

    @property
    def failed(self) -> int:
        return self.status_failed

    @property
    def unknown(self) -> int:
        return self.status_unknown

    @property
    def suppressed(self) -> int:
        return self.status_suppressed

    @property
    def waiting(self) -> int:
        return self.status_waiting

    @property
    def settled(self) -> int:
        """Rows with a final outcome of any kind (all but the waiting ones)."""
        return self.total - self.status_waiting

    @property
    def percent_done(self) -> int:
        """Progress 0..100; 99 at most while anything waits, 100 for an empty slice."""
        if not self.total:
            return 100
        percent = round(100 * self.settled / self.total)
        return min(percent, 99) if self.status_waiting else percent

    # Rates -----------------------------------------------------------------------------------
    def rate(self, name: str) -> float | None:
        """``RATES[name]`` as a fraction, ``None`` when its denominator is 0."""
        part, of = RATES[name]
        whole = getattr(self, of)
        return getattr(self, part) / whole if whole else None

    @property
    def sent_rate(self) -> float | None:
        return self.rate("sent_rate")

    @property
    def delivered_rate(self) -> float | None:
        return self.rate("delivered_rate")

    @property
    def open_rate(self) -> float | None:
        return self.rate("open_rate")

    @property
    def click_rate(self) -> float | None:
        return self.rate("click_rate")

    @property
    def failure_rate(self) -> float | None:
        return self.rate("failure_rate")

    @property
    def unsubscribe_rate(self) -> float | None:
        return self.rate("unsubscribe_rate")

    @property
    def open_rate_of_sent(self) -> float | None:
        return self.rate("open_rate_of_sent")

    @property
    def click_rate_of_sent(self) -> float | None:
        return self.rate("click_rate_of_sent")


assert tuple(f.name for f in fields(Outcomes)) == COUNTER_NAMES


# What progress shows (planned, sent, failed, unknown, not sent, waiting): the status groups and
# ``reached_sent``, without the engagement stages it does not show.
PROGRESS_COUNTERS: tuple[str, ...] = ("total", *(f"status_{name}" for name in STATUS_GROUPS), "reached_sent")


def outcomes_by(
    deliveries: QuerySet[Delivery], key: str, *, with_unsubscribed: bool = True, only: tuple[str, ...] | None = None
) -> dict:
    """The figures of ``deliveries`` per value of ``key`` (e.g. ``run_id``), in one query."""
    counters = delivery_counters(with_unsubscribed=with_unsubscribed, only=only)
    rows = deliveries.order_by().values(key).annotate(**counters)
    return {row[key]: Outcomes.from_row(row) for row in rows}
