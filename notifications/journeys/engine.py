"""The journey tick: due enrollments advanced in bulk, each step exactly once.

``journeys_tick(now=...)`` (registered with the scheduler) walks the enrollments whose
``due_at`` has come, in keyset chunks:

1. **Claim**: on PostgreSQL the chunk is ``SELECT ... FOR UPDATE SKIP LOCKED`` in the transaction
   that advances it, so two ticks racing (two processes, a duplicated task) take disjoint rows and
   a tick that dies rolls back and unlocks them. Elsewhere (SQLite) one conditional UPDATE,
   committed on its own, moves the chunk's ``due_at`` a lease ahead and stamps ``lease_owner``:
   a second tick's UPDATE no longer matches those rows, and a tick that dies leaves them due
   again once the lease runs out (as the ledger claims deliveries).
2. **Advance** (one transaction per chunk, re-reading the leased rows only while still ours):
   each enrollment runs its instant steps (branch, split, exit) and sends until it reaches a wait
   or the end. Steps are taken in rounds, all enrollments at once, so the facts a round needs
   (users and profiles, receipts of earlier sends) cost one query each, not one per person.
3. **Write**: step runs (UNIQUE per enrollment and step, conflicts ignored), the sends through
   the same planning as campaigns (``ledger.decisions`` then ``ledger.deliveries_plan``:
   preferences, suppression, quiet hours, caps, honest outcomes) with ledger keys
   ``journey:<enrollment>:<step>:<channel>``, and the enrollments' new step and due time in a
   few grouped UPDATEs. All of it commits together or not at all, and the ledger keys make a
   send planned twice (whatever went wrong) one delivery.

Waits are only a later ``due_at``: nothing is queued per person. A tick run with a ``now`` in the
past (a reordered or late task) finds nothing due that a later tick already advanced.
"""

from __future__ import annotations

import decimal
import hashlib
import json
import zoneinfo
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Case, Q, Value, When
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from ..ledger import PlannedDelivery, deliveries_plan, worker_id
from ..ledger.decisions import channel_decision, hold_reason, recipient_facts
from ..models import Category, Delivery, Journey, JourneyEnrollment, JourneyStepRun, JourneyVersion, MessageTemplate, Preference
from ..querysets import pg_array
from .graph import parse_time_of_day, steps_by_id, wait_seconds

State = JourneyEnrollment.State
START = ""  # an enrollment that has not run its first step
END = "#end"  # an enrollment that ends when its last wait is over
LEASE = timedelta(minutes=5)
CHUNK_SIZE = 1000
MAX_ROUNDS = 200  # a valid graph has no cycles; this only bounds a corrupt one


@dataclass
class TickResult:
    enrollments: int = 0  # enrollments advanced
    steps: int = 0  # steps run
    sends: int = 0  # deliveries planned (new)
    finished: int = 0  # enrollments that ended
    chunks: int = 0

    def add(self, other: TickResult) -> None:
        for name in ("enrollments", "steps", "sends", "finished", "chunks"):
            setattr(self, name, getattr(self, name) + getattr(other, name))


@dataclass(frozen=True)
class VersionPlan:
    """What the tick needs of one published version, read once per tick."""

    id: int
    journey_id: int
    journey_key: str
    journey_name: str
    category: Category
    start: str
    steps: dict[str, dict]
    goals: tuple[dict, ...]
    exits: tuple[dict, ...]
    templates: dict[str, int]  # template key -> id
    categories: dict[str, Category]
    winners: dict[str, str] = field(default_factory=dict)  # auto-winner split step -> winning arm


@dataclass(slots=True)
class Walker:
    """One enrollment being advanced in memory."""

    id: int
    version_id: int
    user_id: int
    step: str
    context: dict
    variants: dict
    entered_at: datetime
    variants_changed: bool = False
    state: str = State.ACTIVE
    reason: str = ""
    due_at: datetime | None = None
    done: bool = False


@dataclass
class _Writes:
    step_runs: list[tuple] = field(default_factory=list)
    sends: dict[tuple[int, str], list[Walker]] = field(default_factory=lambda: defaultdict(list))
    users: dict[int, Any] | None = None  # the chunk's users, when a step of the walk read them


def version_plans(version_ids) -> dict[int, VersionPlan]:
    """The versions' graphs with their templates and categories resolved (a few queries)."""
    versions = list(JourneyVersion.objects.filter(pk__in=set(version_ids)).select_related("journey__category"))
    keys, category_keys = set(), set()
    for version in versions:
        for step in (version.graph or {}).get("steps") or []:
            if step.get("type") == "send":
                keys.add(step.get("template"))
                if step.get("category"):
                    category_keys.add(step["category"])
    templates = dict(MessageTemplate.objects.filter(key__in=keys).values_list("key", "pk"))
    categories = {c.key: c for c in Category.objects.filter(key__in=category_keys)}
    return {
        version.pk: VersionPlan(
            id=version.pk, journey_id=version.journey_id, journey_key=version.journey.key,
            journey_name=version.journey.name, category=version.journey.category,
            start=(version.graph or {}).get("start", ""), steps=steps_by_id(version.graph or {}),
            goals=tuple(version.goals or ()), exits=tuple(version.exits or ()),
            templates=templates, categories=categories,
            winners={step: str(chosen.get("arm")) for step, chosen in (version.winners or {}).items()
                     if isinstance(chosen, dict)},
        )
        for version in versions
    }


def journeys_tick(*, now: datetime | None = None, chunk_size: int = CHUNK_SIZE, limit: int | None = None) -> TickResult:
    """Advance every due enrollment of live journeys (at most ``limit``); what was done."""
    now = now or timezone.now()
    total = TickResult()
    live = list(Journey.objects.filter(status=Journey.Status.LIVE).values_list("pk", flat=True))
    if not live:
        return total
    from .winners import split_winners_decide

    split_winners_decide(now=now)  # before walking: who reaches a decided split takes the winner
    plans: dict[int, VersionPlan] = {}
    compiled: dict = {}  # templates compiled for in-app sends, kept for the tick as ``plans`` are
    last_id = 0
    owner = "" if connection.features.has_select_for_update_skip_locked else worker_id()
    while limit is None or total.enrollments < limit:
        size = chunk_size if limit is None else min(chunk_size, limit - total.enrollments)
        due = JourneyEnrollment.objects.filter(
            state=State.ACTIVE, due_at__lte=now, id__gt=last_id, journey_id__in=live
        ).order_by("id")
        if not owner:
            # PostgreSQL: the chunk is claimed by locking it in the transaction that advances it
            # (SKIP LOCKED: another tick takes the next rows); a crash rolls back and unlocks.
            with transaction.atomic():
                ids = list(due.select_for_update(skip_locked=True).values_list("id", flat=True)[:size])
                if not ids:
                    break
                last_id = ids[-1]
                total.add(_advance_chunk(ids=ids, owner="", now=now, plans=plans, compiled=compiled))
            continue
        ids = list(due.values_list("id", flat=True)[:size])
        if not ids:
            break
        last_id = ids[-1]
        # Elsewhere (SQLite): a compare-and-set UPDATE, committed on its own, leases the chunk.
        claimed = JourneyEnrollment.objects.filter(id__in_list=set(ids), state=State.ACTIVE, due_at__lte=now).update(
            due_at=now + LEASE, lease_owner=owner
        )
        if not claimed:
            continue
        total.add(_advance_chunk(ids=ids, owner=owner, now=now, plans=plans, compiled=compiled))
    return total


def _advance_chunk(*, ids: list[int], owner: str, now: datetime, plans: dict[int, VersionPlan],
                   compiled: dict | None = None) -> TickResult:
    """Advance the chunk ``ids``: locked by the caller's transaction (``owner`` ""), or leased to ``owner``."""
    result = TickResult(chunks=1)
    with transaction.atomic():
        rows = JourneyEnrollment.objects.filter(id__in_list=set(ids), state=State.ACTIVE).order_by("id")
        if owner:
            rows = rows.filter(lease_owner=owner)  # re-read only while still ours
        walkers = [
            Walker(id=r[0], version_id=r[1], user_id=r[2], step=r[3], context=r[4] or {}, variants=r[5] or {},
                   entered_at=r[6])
            for r in rows.values_list("id", "version_id", "user_id", "current_step", "context", "variants", "entered_at")
        ]
        if not walkers:
            return result
        missing = {w.version_id for w in walkers} - plans.keys()
        if missing:
            plans.update(version_plans(missing))
        writes = _Writes()
        woken = [w.id for w in walkers if w.step != START]
        _check_exits_and_goals(walkers, plans=plans, now=now)
        for walker in walkers:
            if not walker.done and walker.step == END:
                _finish(walker, State.COMPLETED, "end")
        _walk(walkers, plans=plans, now=now, writes=writes, result=result)
        if woken:
            # The waits these enrollments were in are over (whatever they do next).
            JourneyStepRun.objects.filter(enrollment_id__in_list=set(woken), status=JourneyStepRun.Status.WAITING).update(
                status=JourneyStepRun.Status.DONE, finished_at=now
            )
        _insert_step_runs(writes.step_runs)
        result.sends += _plan_sends(writes.sends, plans=plans, now=now, users=writes.users,
                                     compiled=compiled)
        _write_enrollments(walkers, owner=owner, now=now)
        result.enrollments += len(walkers)
        result.finished += sum(1 for w in walkers if w.state != State.ACTIVE)
    return result


STEP_RUN_COLUMNS = ("enrollment_id", "version_id", "step_id", "status", "outcome", "started_at", "finished_at")
STEP_RUNS_PER_INSERT = 500


def _insert_step_runs(rows: list[tuple]) -> None:
    """INSERT step runs, many rows per statement, conflicts on (enrollment, step) ignored.

    A chunk writes several thousand: one multi-row statement per 500 costs a fraction of
    ``executemany``'s statement per row on PostgreSQL, and the same on SQLite.
    """
    if not rows:
        return
    quote = connection.ops.quote_name
    table = quote(JourneyStepRun._meta.db_table)
    columns = ", ".join(quote(c) for c in STEP_RUN_COLUMNS)
    if connection.vendor == "postgresql":
        # One statement, seven array parameters: no per-row parameter handling at all.
        arrays = [pg_array(column) for column in zip(*rows, strict=True)]
        types = ("bigint[]", "bigint[]", "text[]", "text[]", "text[]", "timestamptz[]", "timestamptz[]")
        unnest = ", ".join(f"%s::{t}" for t in types)
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {table} ({columns}) SELECT * FROM unnest({unnest}) ON CONFLICT DO NOTHING",
                           arrays)
        return
    stamp = JourneyStepRun._meta.get_field("started_at")
    # A chunk's rows share a handful of times (the tick's ``now``, None): prepare each once, not
    # twice per row (Django's datetime preparation was a fifth of the tick's CPU on SQLite).
    prepared: dict[datetime | None, Any] = {}

    def db_time(value: datetime | None) -> Any:
        if value not in prepared:
            prepared[value] = stamp.get_db_prep_save(value, connection)
        return prepared[value]

    for start in range(0, len(rows), STEP_RUNS_PER_INSERT):
        batch = rows[start:start + STEP_RUNS_PER_INSERT]
        marks = ", ".join(["(" + ", ".join(["%s"] * len(STEP_RUN_COLUMNS)) + ")"] * len(batch))
        params = []
        for enrollment_id, version_id, step_id, status, outcome, started_at, finished_at in batch:
            params += [enrollment_id, version_id, step_id, status, outcome, db_time(started_at), db_time(finished_at)]
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {marks} ON CONFLICT DO NOTHING", params)


def _finish(walker: Walker, state: str, reason: str) -> None:
    walker.state, walker.reason, walker.done, walker.due_at = state, reason, True, None


def _walk(walkers: list[Walker], *, plans: dict[int, VersionPlan], now: datetime, writes: _Writes,
          result: TickResult) -> None:
    users: dict[int, Any] | None = None
    pending = [w for w in walkers if not w.done]
    for walker in pending:
        if walker.step == START:
            walker.step = plans[walker.version_id].start
    rounds = 0
    while pending and rounds < MAX_ROUNDS:
        rounds += 1
        steps = {(w.version_id, w.step): plans[w.version_id].steps.get(w.step) for w in pending}
        if users is None and any(_needs_user(step) for step in steps.values() if step):
            users = writes.users = _users([w.user_id for w in walkers])
        receipts = _receipts([w for w in pending if (s := steps[(w.version_id, w.step)]) and s.get("type") == "branch"
                              and "step" in (s.get("if") or {})], plans=plans)
        following = []
        for walker in pending:
            step = steps[(walker.version_id, walker.step)]
            if step is None:  # the version was published valid; a missing step only ends the walk
                _finish(walker, State.COMPLETED, "missing_step")
                continue
            result.steps += 1
            step_id, kind = walker.step, step["type"]
            outcome, nxt, wait_until = "", None, None
            if kind == "send":
                writes.sends[(walker.version_id, step_id)].append(walker)
                outcome, nxt = "planned", step.get("next")
            elif kind == "wait":
                wait_until, outcome = wake_time(step, walker=walker, user=(users or {}).get(walker.user_id), now=now)
                nxt = step.get("next")
            elif kind == "branch":
                taken = branch_taken(step, walker=walker, user=(users or {}).get(walker.user_id), receipts=receipts,
                                      now=now)
                outcome, nxt = ("yes", step.get("yes")) if taken else ("no", step.get("no"))
            elif kind == "split":
                arm = split_arm(step, enrollment_id=walker.id, winner=plans[walker.version_id].winners.get(step_id))
                walker.variants[step_id] = arm["name"]
                walker.variants_changed = True
                outcome, nxt = str(arm["name"]), arm.get("next")
            elif kind == "exit":
                outcome = "exit"
            if wait_until is not None and wait_until > now:
                writes.step_runs.append((walker.id, walker.version_id, step_id, JourneyStepRun.Status.WAITING, outcome,
                                         now, None))
                walker.step, walker.due_at = nxt or END, wait_until
                continue
            writes.step_runs.append((walker.id, walker.version_id, step_id, JourneyStepRun.Status.DONE, outcome, now, now))
            if not nxt:
                _finish(walker, State.COMPLETED, "exit_step" if kind == "exit" else "end")
                continue
            walker.step = nxt
            following.append(walker)
        pending = following


def _needs_user(step: dict) -> bool:
    kind = step.get("type")
    if kind == "wait":
        return "until_time" in step or str(step.get("until_field", "")).split(".")[0] in ("user", "profile")
    if kind == "branch":
        return str((step.get("if") or {}).get("field", "")).split(".")[0] in ("user", "profile")
    return False


def _users(user_ids: list[int]) -> dict[int, Any]:
    return get_user_model().objects.select_related("recipient_profile").in_bulk(set(user_ids))


# --- Waits ----------------------------------------------------------------------------------------
# wake_time, branch_taken and split_arm are the rules the tick and the builder's simulation
# (``simulate.journey_simulate``) share: public, so a simulation never drifts from a real walk.

def _zone(user) -> zoneinfo.ZoneInfo:
    profile = getattr(user, "recipient_profile", None) if user is not None else None
    try:
        return zoneinfo.ZoneInfo(getattr(profile, "timezone", "") or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def wake_time(step: dict, *, walker: Walker, user, now: datetime) -> tuple[datetime | None, str]:
    """When a wait started now ends, and what to record; ``None`` or a past time: go on at once."""
    seconds = wait_seconds(step)
    if seconds:
        return now + timedelta(seconds=seconds), ""
    zone = _zone(user)
    if "until_time" in step:
        at = parse_time_of_day(step["until_time"])
        local = now.astimezone(zone)
        wake = datetime.combine(local.date(), at, tzinfo=zone)
        if wake <= local:
            wake = datetime.combine(local.date() + timedelta(days=1), at, tzinfo=zone)
        return wake.astimezone(zoneinfo.ZoneInfo("UTC")), ""
    value = _field_value(step.get("until_field", ""), walker=walker, user=user)
    when = _as_datetime(value, zone)
    if when is None:
        return None, "no_date"
    when += timedelta(days=step.get("offset_days") or 0)
    return (when, "") if when > now else (None, "past")


def _as_datetime(value: Any, zone: zoneinfo.ZoneInfo) -> datetime | None:
    if isinstance(value, str):
        value = parse_datetime(value) or parse_date(value)
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else value.replace(tzinfo=zone)
    if isinstance(value, date):
        return datetime.combine(value, datetime.min.time(), tzinfo=zone)
    return None


# --- Branches and splits --------------------------------------------------------------------------

def _field_value(ref: str, *, walker: Walker, user) -> Any:
    source, _dot, name = ref.partition(".")
    if source == "context":
        value: Any = walker.context
        for part in name.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        return value
    if user is None:
        return None
    if source == "profile":
        return getattr(getattr(user, "recipient_profile", None), name, None)
    from ..triggers import registry as reg

    registered = reg.ensure_user_model()
    if name not in registered.fields:  # only the user fields registered for triggers are readable
        return None
    return getattr(user, registered.field(name).attname, None)


def branch_taken(step: dict, *, walker: Walker, user, receipts: dict, now: datetime) -> bool:
    from ..triggers.conditions import condition_holds

    condition = step.get("if") or {}
    if "step" in condition:
        times = receipts.get((walker.id, condition["step"]), ())
        within = condition.get("within_hours")
        for sent_at, happened_at in times:
            if happened_at is None:
                continue
            if within is None or happened_at <= (sent_at or happened_at) + timedelta(hours=within):
                return True
        return False
    actual = _field_value(condition.get("field", ""), walker=walker, user=user)
    value = condition.get("value")
    numbers = value if isinstance(value, list) else [value]
    if isinstance(actual, str) and numbers and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in numbers
    ):
        # Plain JSON keeps amounts as text ("250.00"): compared with a number, compare numbers.
        try:
            actual = decimal.Decimal(actual)
            value = [decimal.Decimal(str(v)) for v in numbers] if isinstance(value, list) else decimal.Decimal(str(value))
        except decimal.InvalidOperation:
            pass
    return condition_holds(condition.get("op"), actual, value, typed=False)


# What a receipt branch reads on a delivery: the first time it reached that stage (engagement
# implies what comes before it: a click is also an open).
_EVENT_FIELDS = {
    "delivered": ("delivered_at", "opened_at", "read_at", "clicked_at"),
    "opened": ("opened_at", "read_at", "clicked_at"),
    "read": ("read_at",),
    "clicked": ("clicked_at",),
}


def _receipts(walkers: list[Walker], *, plans: dict[int, VersionPlan]) -> dict[tuple[int, str], list]:
    """(enrollment, send step) -> [(created_at, first time of the asked event or None)] for each
    delivery the send step planned. One query for all the receipt branches of a round."""
    if not walkers:
        return {}
    wanted: dict[str, tuple[int, str, str]] = {}
    for walker in walkers:
        condition = plans[walker.version_id].steps[walker.step]["if"]
        send = plans[walker.version_id].steps.get(condition["step"]) or {}
        for channel in send.get("channels") or []:
            wanted[delivery_key(walker.id, condition["step"], channel)] = (walker.id, condition["step"],
                                                                         condition["event"])
    # The window starts when the send step ran (the tick's clock), not when a row was written.
    ran_at = {
        (enrollment_id, step_id): started_at
        for enrollment_id, step_id, started_at in JourneyStepRun.objects.filter(
            enrollment_id__in_list={w.id for w in walkers}, step_id__in={s for _e, s, _k in wanted.values()}
        ).values_list("enrollment_id", "step_id", "started_at")
    }
    found: dict[tuple[int, str], list] = defaultdict(list)
    names = ("delivered_at", "opened_at", "read_at", "clicked_at")
    for key, created_at, *stamps in Delivery.objects.filter(idempotency_key__in_list=set(wanted)).values_list(
        "idempotency_key", "created_at", *names
    ):
        enrollment_id, step_id, event = wanted[key]
        by_name = dict(zip(names, stamps, strict=True))
        times = [by_name[n] for n in _EVENT_FIELDS[event] if by_name[n] is not None]
        found[(enrollment_id, step_id)].append((ran_at.get((enrollment_id, step_id), created_at),
                                                min(times) if times else None))
    return found


def split_arm(step: dict, *, enrollment_id: int | str, winner: str | None = None) -> dict:
    """The arm of a split for one enrollment: the same every time it is asked (hash, not random);
    the winner's once an auto-winner split has one."""
    if winner is not None:
        for arm in step["arms"]:
            if str(arm["name"]) == winner:
                return arm
    digest = hashlib.blake2b(f"{enrollment_id}:{step['id']}".encode(), digest_size=8).digest()
    point = int.from_bytes(digest, "big") % 100
    total = 0
    for arm in step["arms"]:
        total += arm["percent"]
        if point < total:
            return arm
    return step["arms"][-1]


# --- Goals and exit conditions at the tick --------------------------------------------------------

def _check_exits_and_goals(walkers: list[Walker], *, plans: dict[int, VersionPlan], now: datetime) -> None:
    """End enrollments that reached a goal (``since_field`` goals) or meet an exit condition.

    Goals without ``since_field`` are caught when the model is saved (``journeys.receivers``).
    """
    by_version: dict[int, list[Walker]] = defaultdict(list)
    for walker in walkers:
        by_version[walker.version_id].append(walker)
    for version_id, group in by_version.items():
        plan = plans[version_id]
        for goal in plan.goals:
            if goal.get("since_field"):
                for walker in _matching(goal, [w for w in group if not w.done]):
                    _finish(walker, State.CONVERTED, f"goal:{goal.get('name', '')}"[:100])
        for rule in plan.exits:
            alive = [w for w in group if not w.done]
            if not alive:
                break
            if rule.get("kind") == "opted_out":
                out = set(Preference.objects.filter(
                    user_id__in_list={w.user_id for w in alive}, category=plan.category, enabled=False
                ).values_list("user_id", flat=True))
                for walker in alive:
                    if walker.user_id in out:
                        _finish(walker, State.EXITED, "opted_out")
            elif rule.get("kind") == "condition" and rule.get("since_field"):
                for walker in _matching(rule, alive):
                    _finish(walker, State.EXITED, f"exit:{rule.get('name', '')}"[:100])


def model_condition_q(rule: dict) -> tuple[type, str, Q]:
    """A goal or exit condition as (model, lookup to the user id, Q of its conditions)."""
    from ..triggers import registry as reg
    from ..triggers.conditions import compile_condition

    registered = reg.registry.model_for(rule["model"])
    lookup = reg.recipient_lookup(registered.model, rule.get("recipient_path") or reg.SELF)
    fields = {name: registered.field(name) for name in registered.fields}
    q = Q()
    for index, raw in enumerate(rule.get("conditions") or []):
        condition = compile_condition(index, raw, fields)
        name, value = condition.field, condition.value
        if condition.op == "eq":
            q &= Q(**{name: value})
        elif condition.op == "ne":
            q &= ~Q(**{name: value})
        elif condition.op in ("gt", "gte", "lt", "lte", "in"):
            q &= Q(**{f"{name}__{condition.op}": value})
        elif condition.op == "contains":
            q &= Q(**{f"{name}__icontains": value})
        elif condition.op == "is_empty":
            empty = Q(**{f"{name}__isnull": True})
            if isinstance(registered.field(name), (reg.models.CharField, reg.models.TextField)):
                empty |= Q(**{name: ""})
            q &= empty if value else ~empty
    return registered.model, lookup, q


def _matching(rule: dict, walkers: list[Walker]) -> Iterator[Walker]:
    """The walkers for whom ``rule`` holds on a row whose ``since_field`` is after their entry."""
    if not walkers:
        return
    model, lookup, q = model_condition_q(rule)
    since = rule["since_field"]
    earliest = min(w.entered_at for w in walkers)
    latest: dict[int, datetime] = {}
    for user_id, at in model._base_manager.filter(
        q, **{f"{lookup}__in": {w.user_id for w in walkers}, f"{since}__gte": earliest}
    ).values_list(lookup, since):
        if user_id is not None and at is not None:
            latest[user_id] = max(at, latest.get(user_id, at))
    for walker in walkers:
        if walker.user_id in latest and latest[walker.user_id] >= walker.entered_at:
            yield walker


# --- Sends ----------------------------------------------------------------------------------------

def delivery_key(enrollment_id: int, step_id: str, channel: str) -> str:
    """The ledger key of a journey send (also read by receipt branches, auto-winners and analytics)."""
    return f"journey:{enrollment_id}:{step_id}:{channel}"


def _plan_sends(sends: dict[tuple[int, str], list[Walker]], *, plans: dict[int, VersionPlan], now: datetime,
                users: dict[int, Any] | None = None, compiled: dict | None = None) -> int:
    """Plan every send step taken in this chunk through the ledger; how many deliveries are new.

    ``users`` are the chunk's users when the walk loaded them already; otherwise the active ones
    are read as the decisions need them (``recipients_for_decisions``: no model instances).
    """
    if not sends:
        return 0
    everyone = {w.user_id for group in sends.values() for w in group}
    if users is not None:
        loaded = {pk: u for pk, u in users.items() if pk in everyone and u.is_active}
    else:
        from ..recipients.selectors import recipients_for_decisions

        active = set(get_user_model()._default_manager.filter(pk__in_list=everyone, is_active=True)
                     .values_list("pk", flat=True))
        wanted = list(dict.fromkeys(c for (version_id, step_id) in sends
                                    for c in plans[version_id].steps[step_id]["channels"]))
        loaded = {u.pk: u for u in recipients_for_decisions(user_ids=active, channels=wanted)} if active else {}

    def planned() -> Iterator[PlannedDelivery]:
        for (version_id, step_id), walkers in sends.items():
            plan = plans[version_id]
            step = plan.steps[step_id]
            category = plan.categories.get(step.get("category") or "", plan.category)
            template_id = plan.templates.get(step["template"])
            channels = list(step["channels"])
            if template_id is None:
                continue  # deleted since publishing: nothing can be rendered (the step run says planned)
            present = [loaded[w.user_id] for w in walkers if w.user_id in loaded]
            facts = {f.user_id: f for f in recipient_facts(present, category=category, channels=channels)}
            shared = {"template_id": template_id, "context": {"journey": {"key": plan.journey_key, "name": plan.journey_name}}}
            for walker in walkers:
                person = facts.get(walker.user_id)
                if person is None:
                    continue
                content = shared if not walker.context else {
                    "template_id": template_id, "context": {**walker.context, **shared["context"]},
                }
                decisions = [(c, channel_decision(facts=person, channel=c, category=category, now=now)) for c in channels]
                if step.get("fallback"):
                    reachable = [(c, d) for c, d in decisions if not d.reason]
                    decisions = reachable[:1] or decisions[:1]
                for channel, decision in decisions:
                    yield PlannedDelivery(
                        idempotency_key=delivery_key(walker.id, step_id, channel),
                        channel=channel,
                        address=decision.address,
                        recipient_id=walker.user_id,
                        category_id=category.pk,
                        content=content,
                        status=Delivery.Status.SUPPRESSED if decision.reason else Delivery.Status.PLANNED,
                        status_reason=decision.reason or hold_reason(decision),
                        not_before=decision.not_before,
                    )

    result = deliveries_plan(planned=planned(), compiled_templates=compiled)
    return result.planned + result.suppressed


DUE_CASES_PER_UPDATE = 300  # wake times given per statement as CASE WHEN id = ... (two parameters each)


def _write_enrollments(walkers: list[Walker], *, owner: str, now: datetime) -> None:
    """The chunk's new positions in one UPDATE per distinct outcome (a chunk has a handful).

    Wake times are not part of the outcome: a wait until a date field gives each person their own,
    so within an outcome they are set by a CASE on the id (never an UPDATE per person).
    """
    groups: dict[tuple, list[Walker]] = defaultdict(list)
    for w in walkers:
        variants = json.dumps(w.variants, sort_keys=True) if w.variants_changed else None
        groups[(w.step, w.state, w.reason, variants)].append(w)
    for (step, state, reason, variants), group in groups.items():
        values: dict[str, Any] = {"current_step": step, "state": state, "lease_owner": ""}
        if state != State.ACTIVE:
            values.update(state_reason=reason, finished_at=now)
        if variants is not None:
            values["variants"] = json.loads(variants)
        by_due: dict[datetime | None, list[int]] = defaultdict(list)
        for w in group:
            by_due[w.due_at].append(w.id)
        if len(by_due) <= 2:  # the usual case: everyone wakes at the same time (or has ended)
            batches = [({**values, "due_at": due_at}, ids) for due_at, ids in by_due.items()]
        else:
            batches = []
            for start in range(0, len(group), DUE_CASES_PER_UPDATE):
                part = group[start:start + DUE_CASES_PER_UPDATE]
                due = Case(*(When(id=w.id, then=Value(w.due_at)) for w in part),
                           output_field=JourneyEnrollment._meta.get_field("due_at"))
                batches.append(({**values, "due_at": due}, [w.id for w in part]))
        for fields, ids in batches:
            JourneyEnrollment.objects.filter(id__in_list=set(ids), lease_owner=owner).update(**fields)  # "" when locked
        if state == State.CONVERTED:
            from ..signals import journey_goal_reached

            ids, goal = [w.id for w in group], reason.removeprefix("goal:")
            transaction.on_commit(lambda ids=ids, goal=goal: journey_goal_reached.send(
                sender=JourneyEnrollment, enrollment_ids=ids, goal=goal))
