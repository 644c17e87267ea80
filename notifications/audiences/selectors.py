"""Reads over audiences: who is in one, how many, a sample, and the ids in keyset chunks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Exists, OuterRef, Q, QuerySet

from accounts.names import full_name

from ..models import Audience, AudienceMember, RecipientProfile
from .rules import AudienceRuleError, audience_q

MAX_SAMPLE_SIZE = 100
# Rule audiences counted per aggregate query: with MAX_TOTAL_VALUES listed values and MAX_NODES
# conditions per tree, 20 trees stay well inside SQLite's parameter limit.
AGGREGATE_BATCH = 20


def _active_users() -> QuerySet:
    return get_user_model().objects.filter(is_active=True)


def _static_members_q(audience: Audience) -> Q:
    return Q(Exists(AudienceMember.objects.filter(audience_id=audience.pk, user_id=OuterRef("pk"))))


def audience_users(*, audience: Audience) -> QuerySet:
    """Active users in the audience, ordered by pk, each once.

    Rule audiences are compiled now (raising ``AudienceRuleError`` for a broken tree); the
    queryset is lazy, so a caller that wants one consistent evaluation keeps this queryset.
    Every condition is an ``Exists``/column test, so there are no joins to deduplicate.
    """
    if audience.kind == Audience.Kind.STATIC:
        q = _static_members_q(audience)
    else:
        q = audience_q(rules=audience.rules)
    return _active_users().filter(q).order_by("pk")


@dataclass(frozen=True)
class AudiencePreview:
    """What the editor shows beside the rules: the exact count and the first few recipients."""

    count: int
    sample: list[dict[str, Any]] = field(default_factory=list)


def _profile_default(name: str) -> Any:
    return RecipientProfile._meta.get_field(name).get_default()


def audience_preview(
    *, rules: Any = None, audience: Audience | None = None, sample_size: int = 10
) -> AudiencePreview:
    """Count and sample for unsaved ``rules`` (the live editor) or a saved ``audience``.

    Two queries whatever the audience size (one when it is empty), plus at most one per field
    with database-backed choices (groups, static audiences) used in the rules: the sample reads
    the profile through the one-to-one join, which cannot multiply rows.
    """
    if not 0 <= sample_size <= MAX_SAMPLE_SIZE:
        raise ValueError(f"sample_size must be between 0 and {MAX_SAMPLE_SIZE}.")
    if rules is not None:
        users = _active_users().filter(audience_q(rules=rules)).order_by("pk")
    elif audience is not None:
        users = audience_users(audience=audience)
    else:
        raise TypeError("audience_preview() needs rules or an audience.")
    count = users.count()
    if not count or not sample_size:
        return AudiencePreview(count=count, sample=[])
    rows = users.values(
        "pk", "username", "first_name", "last_name", "email",
        "recipient_profile__locale", "recipient_profile__timezone",
    )[:sample_size]
    locale, tz = _profile_default("locale"), _profile_default("timezone")
    sample = [
        {
            "id": row["pk"],
            "username": row["username"],
            "full_name": full_name(row["first_name"], row["last_name"]),
            "email": row["email"],
            "locale": row["recipient_profile__locale"] or locale,
            "timezone": row["recipient_profile__timezone"] or tz,
        }
        for row in rows
    ]
    return AudiencePreview(count=count, sample=sample)


def audience_sizes(*, audiences: Iterable[Audience]) -> dict[int, int | None]:
    """Live size of each audience (``None`` for broken rules) in a fixed number of queries.

    Static audiences are counted with one grouped query over members; every rule audience
    becomes one filtered ``COUNT`` in an aggregate over users (one query per 20 rule audiences,
    plus one per database-backed choice list the rules use). For the changelist, where a query
    per row would be an N+1.
    """
    audiences = list(audiences)
    sizes: dict[int, int | None] = {}
    static_ids = [a.pk for a in audiences if a.kind == Audience.Kind.STATIC]
    if static_ids:
        sizes.update({pk: 0 for pk in static_ids})
        sizes.update(
            AudienceMember.objects.filter(audience_id__in=static_ids, user__is_active=True)
            .values_list("audience_id")
            .annotate(n=Count("pk"))
            .order_by()
        )
    counts: dict[str, Count] = {}
    choices_cache: dict = {}
    for audience in audiences:
        if audience.kind == Audience.Kind.STATIC:
            continue
        try:
            q = audience_q(rules=audience.rules, choices_cache=choices_cache)
        except AudienceRuleError:
            sizes[audience.pk] = None
            continue
        counts[f"a{audience.pk}"] = Count("pk", filter=q) if q else Count("pk")
    aliases = list(counts)
    for start in range(0, len(aliases), AGGREGATE_BATCH):
        batch = {alias: counts[alias] for alias in aliases[start : start + AGGREGATE_BATCH]}
        for alias, n in _active_users().aggregate(**batch).items():
            sizes[int(alias[1:])] = n
    return sizes


def audience_user_ids(*, audience: Audience, chunk_size: int = 2000) -> Iterator[list[int]]:
    """The audience's user ids in ascending chunks, by keyset (``pk > last``), never OFFSET.

    The rules are compiled once, here, before the first chunk: a broken tree raises now, and
    relative windows ("joined in the last 7 days") stay fixed for the whole stream. Each chunk is
    one indexed query, so a launch can stream millions of recipients in constant memory.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1.")
    users = audience_users(audience=audience).values_list("pk", flat=True)

    def chunks() -> Iterator[list[int]]:
        last: int | None = None
        while True:
            page = users if last is None else users.filter(pk__gt=last)
            ids = list(page[:chunk_size])
            if not ids:
                return
            yield ids
            if len(ids) < chunk_size:
                return
            last = ids[-1]

    return chunks()
