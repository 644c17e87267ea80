"""Entries that are not a signal: an audience, a date field, a campaign run's recipients.

* **Audience** ``{"kind": "audience", "audience": <id>}``: a person enters when they match the
  audience's rules (or are a member of a static one) and the re-entry policy lets them in. The
  journeys tick scans each such journey at most every ``AUDIENCE_SCAN_EVERY`` (the watermark is
  ``Journey.entries_scanned_at``) in one set query per chunk: the audience's users *without* an
  enrollment that blocks them, an anti-join in SQL (never a query per person). "Every time" is
  refused for audience entries: a person who keeps matching would be re-entered on every scan.
* **Date** ``{"kind": "date", "model": "user" | "<app.model>", "field": "date_joined",
  "offset_days": 3, "recipient_path": "customer"}``: a person enters ``offset_days`` after (before,
  when negative) the date in that field of their user or of a registered model's row. The tick
  scans the rows whose moment (date + offset) fell in ``(watermark, now]``; the entry key is
  ``date:<model>:<pk>:<field>:<date>`` so a date occurrence enters once, however often the scan
  overlaps (the first scan after publishing looks back ``DATE_LOOKBACK``).
* **Campaign** ``{"kind": "campaign", "campaign": <id>}``: when a run of that campaign completes
  (``signals.campaign_finished``), the people it reached (a delivery not suppressed, failed or
  bounced) enter, with the entry key ``campaign_run:<run id>`` (a repeated signal enters nobody twice).

The re-entry policy applies to all of them, through ``services.journey_enter``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext as _

logger = logging.getLogger(__name__)

AUDIENCE_SCAN_EVERY = timedelta(minutes=10)
DATE_LOOKBACK = timedelta(days=1)
SCAN_CHUNK = 2000
SCHEDULED_KINDS = ("audience", "date")
USER_MODEL = "user"


@dataclass
class EntryScanResult:
    journeys: int = 0  # journeys scanned
    entered: int = 0


# --- Validation -----------------------------------------------------------------------------------

def scheduled_entry_problems(entry: dict, *, reentry: str | None = None) -> list[str]:
    """What is wrong with an audience, date or campaign entry; [] when it can run."""
    from ..models import Audience, Campaign, Journey

    kind = entry.get("kind")
    if kind == "audience":
        ident = entry.get("audience")
        if not isinstance(ident, int) or isinstance(ident, bool) or not Audience.objects.filter(pk=ident).exists():
            return [_("Entry: choose an existing audience.")]
        if reentry == Journey.Reentry.ALWAYS:
            return [_("Entry: people who keep matching an audience would enter on every scan; choose "
                      "“once ever” or “once per N days”.")]
        return []
    if kind == "campaign":
        ident = entry.get("campaign")
        if not isinstance(ident, int) or isinstance(ident, bool) or not Campaign.objects.filter(pk=ident).exists():
            return [_("Entry: choose an existing campaign.")]
        return []
    if kind == "date":
        try:
            date_source(entry)
        except ValueError as exc:
            return [_("Entry: %(problem)s") % {"problem": exc}]
        offset = entry.get("offset_days", 0)
        if not isinstance(offset, int) or isinstance(offset, bool) or abs(offset) > 3660:
            return [_("Entry: offset_days must be a whole number of days (negative: before the date).")]
        if entry.get("yearly") not in (None, True, False):
            return [_("Entry: yearly is true or false.")]
        if entry.get("yearly") and reentry == Journey.Reentry.ONCE:
            return [_("Entry: a yearly date enters people each year, but “once ever” would keep them out after "
                      "the first; choose “every time” (each year's date still enters once) or “once per N days”.")]
        return []
    return [_("Entry: unknown kind %(kind)s.") % {"kind": kind}]


def date_source(entry: dict) -> tuple[type, str, str, str]:
    """(model, label, date field, lookup to the user id) of a date entry; ``ValueError`` in words."""
    from django.db import models

    from ..triggers import registry as reg

    label = entry.get("model") or USER_MODEL
    if label == USER_MODEL:
        registered = reg.ensure_user_model()
    else:
        registered = reg.registry.model_for(label)
        if registered is None:
            raise ValueError(_("%(model)s is not a model registered for triggers.") % {"model": label})
    name = entry.get("field")
    if not isinstance(name, str) or name not in registered.fields:
        raise ValueError(_("%(field)s is not a registered field of %(model)s.") % {"field": name, "model": label})
    if not isinstance(registered.field(name), (models.DateField, models.DateTimeField)):
        raise ValueError(_("%(field)s is not a date.") % {"field": name})
    lookup = reg.recipient_lookup(registered.model, entry.get("recipient_path") or reg.SELF)
    return registered.model, registered.label if label != USER_MODEL else USER_MODEL, name, lookup


# --- The tick's scans -----------------------------------------------------------------------------

def scheduled_entries_scan(*, now: datetime | None = None) -> EntryScanResult:
    """Enter the people that live audience and date journeys gained since their watermark."""
    from ..models import Journey

    now = now or timezone.now()
    result = EntryScanResult()
    journeys = Journey.objects.filter(status=Journey.Status.LIVE, current_version__isnull=False,
                                      entry__kind__in=list(SCHEDULED_KINDS))
    for journey in journeys:
        kind = journey.entry.get("kind")
        since = journey.entries_scanned_at
        if kind == "audience" and since is not None and now - since < AUDIENCE_SCAN_EVERY:
            continue
        # Move the watermark first, compare-and-set: of two ticks racing, one scans.
        moved = Journey.objects.filter(pk=journey.pk, entries_scanned_at=since) if since else \
            Journey.objects.filter(pk=journey.pk, entries_scanned_at__isnull=True)
        if not moved.update(entries_scanned_at=now):
            continue
        result.journeys += 1
        try:
            if kind == "audience":
                result.entered += _audience_scan(journey, now=now)
            else:
                result.entered += _date_scan(journey, since=since or now - DATE_LOOKBACK, now=now)
        except Exception:  # one broken journey (a deleted audience, a renamed field) must not stop the others
            logger.exception("Journey %s: its %s entry could not be scanned", journey.pk, kind)
            Journey.objects.filter(pk=journey.pk).update(entries_scanned_at=since)
    return result


def audience_entry_key(journey, *, now: datetime) -> str:
    """The entry key of an audience entry: "audience" once ever; one per day under "once per N
    days" (the policy checks the days). The scan and the check on save use the same one."""
    from ..models import Journey

    return "audience" if journey.reentry == Journey.Reentry.ONCE else f"audience:{now.date().isoformat()}"


def audience_rules_changed(*, audience_id: int) -> None:
    """An audience's rules were saved: if a live journey enters from it, the saves it is checked
    on may have changed, so every process reloads its bindings (``triggers.cache``)."""
    from ..models import Journey
    from ..triggers.cache import trigger_state_bump

    if Journey.objects.filter(status=Journey.Status.LIVE, entry__kind="audience", entry__audience=audience_id).exists():
        trigger_state_bump()


def _audience_scan(journey, *, now: datetime) -> int:
    from ..audiences.selectors import audience_users
    from ..models import Audience, JourneyEnrollment
    from .services import JourneyNotLive, journey_enter, reentry_blocking

    audience = Audience.objects.get(pk=journey.entry["audience"])
    # The re-entry policy as an anti-join in SQL; "every time" is refused for audiences (any
    # earlier enrollment then keeps a person out, as a safeguard).
    blocking = reentry_blocking(journey, now=now)
    if blocking is None:
        blocking = JourneyEnrollment.objects.filter(journey=journey, user_id=OuterRef("pk"))
    newcomers = audience_users(audience=audience).filter(~Exists(blocking)).values_list("pk", flat=True)
    key = audience_entry_key(journey, now=now)
    entered, last = 0, 0
    while True:
        ids = list(newcomers.filter(pk__gt=last)[:SCAN_CHUNK])
        if not ids:
            return entered
        last = ids[-1]
        try:
            entered += journey_enter(journey=journey, user_ids=ids, entry_key=key, now=now,
                                     context={"audience": audience.pk}).entered
        except JourneyNotLive:
            return entered


def _date_scan(journey, *, since: datetime, now: datetime) -> int:
    from django.db import models

    from .services import JourneyNotLive, journey_enter_many

    model, label, name, lookup = date_source(journey.entry)
    offset = timedelta(days=journey.entry.get("offset_days") or 0)
    if journey.entry.get("yearly"):
        rows, occurrence = _yearly_rows(model, name, since=since, now=now, offset=offset)
    else:
        # The moment is date + offset: it fell in (since, now] when the date is in (since - offset, now - offset].
        low, high = since - offset, now - offset
        if not isinstance(model._meta.get_field(name), models.DateTimeField):
            low, high = low.date(), high.date()  # a plain date: its day counts from midnight (UTC)
        rows = model._base_manager.filter(Q(**{f"{name}__gt": low, f"{name}__lte": high}))

        def occurrence(value) -> str:
            return value.date().isoformat() if isinstance(value, datetime) else value.isoformat()
    rows = rows.exclude(**{f"{lookup}__isnull": True}).order_by("pk")
    if model._meta.concrete_model is _user_model():
        rows = rows.filter(is_active=True)
    # Everyone whose date fell due enters in one bulk insert per 2,000 rows; the entry key names the
    # row and the occurrence (the date, or the anniversary's year), so it enters once however often
    # the tick runs.
    entries = [
        (user_id, f"date:{label}:{pk}:{name}:{occurrence(value)}", {"date": {"model": label, "pk": pk, "field": name}})
        for pk, user_id, value in rows.values_list("pk", lookup, name).iterator(chunk_size=SCAN_CHUNK)
    ]
    if not entries:
        return 0
    try:
        return journey_enter_many(journey=journey, entries=entries, now=now).entered
    except JourneyNotLive:
        return 0


def _yearly_rows(model, name: str, *, since: datetime, now: datetime, offset: timedelta):
    """Rows whose date's anniversary, plus ``offset``, fell on a day in (since, now] (UTC days),
    with the occurrence named by the anniversary's year. 29 February is kept on the 28th in
    other years. At most a year of days is looked at."""
    import calendar
    from datetime import timezone as dt_timezone

    from django.db import models

    days = []
    day = max(since.date(), (now - timedelta(days=366)).date())
    while day <= now.date():
        days.append(day)
        day += timedelta(days=1)
    anniversaries = {d - offset for d in days}
    match = Q()
    for anniversary in anniversaries:
        match |= Q(**{f"{name}__month": anniversary.month, f"{name}__day": anniversary.day})
        if anniversary.month == 2 and anniversary.day == 28 and not calendar.isleap(anniversary.year):
            match |= Q(**{f"{name}__month": 2, f"{name}__day": 29})
    # Only earlier dates have an anniversary (a birthday, not the day of birth).
    first = min(anniversaries)
    if isinstance(model._meta.get_field(name), models.DateTimeField):
        first = datetime(first.year, first.month, first.day, tzinfo=dt_timezone.utc)
    rows = model._base_manager.filter(match, **{f"{name}__lt": first})
    # A window longer than a year holds a day twice: the occurrence is the later one, whatever
    # order the set gives.
    years = {(a.month, a.day): a.year for a in sorted(anniversaries)}

    def occurrence(value) -> str:
        value = value.date() if isinstance(value, datetime) else value
        key = (value.month, value.day) if (value.month, value.day) in years else (2, 28)
        return f"year{years.get(key, now.year)}"

    return rows, occurrence


def _user_model():
    from django.contrib.auth import get_user_model

    return get_user_model()._meta.concrete_model


# --- Campaign runs --------------------------------------------------------------------------------

REACHED_EXCLUDED = ("suppressed", "failed", "bounced")


def campaign_run_entries(*, run_id: int, campaign_id: int) -> int:
    """Enter the people a completed run of ``campaign_id`` reached into every live journey that
    enters on that campaign; how many entered (all journeys together)."""
    from ..models import Delivery, Journey
    from .services import JourneyNotLive, journey_enter

    journeys = [j for j in Journey.objects.filter(status=Journey.Status.LIVE, entry__kind="campaign")
                if j.entry.get("campaign") == campaign_id]
    if not journeys:
        return 0
    reached = sorted(set(Delivery.objects.filter(run_id=run_id).exclude(status__in=REACHED_EXCLUDED)
                         .values_list("recipient_id", flat=True)))
    entered = 0
    for journey in journeys:
        try:
            entered += journey_enter(journey=journey, user_ids=reached, entry_key=f"campaign_run:{run_id}",
                                     context={"campaign": {"id": campaign_id, "run": run_id}}).entered
        except JourneyNotLive:
            continue
    return entered


def on_campaign_finished(sender, *, run_id: int, campaign_id: int, status: str, **kwargs) -> None:
    """``campaign_finished`` receiver: queue the entries (a big run is many people)."""
    if status != "completed":
        return
    from ..models import Journey

    if not Journey.objects.filter(status=Journey.Status.LIVE, entry__kind="campaign").exists():
        return
    from .tasks import journey_campaign_entries_task

    journey_campaign_entries_task.enqueue(run_id=run_id, campaign_id=campaign_id)
