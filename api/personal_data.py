"""The API's rows about a person, for ``notifications.privacy`` (export and erasure): the id the
integrator's system knows them by, exported, and deleted on erasure (it names them elsewhere)."""

from __future__ import annotations

from notifications.privacy.kinds import ModelKind

from .models import ExternalId

KINDS = [
    ModelKind(
        "api_external_id", ExternalId, lambda person: ExternalId.objects.filter(user_id=person.pk),
        lambda person, queryset: queryset.delete()[0], links=("api.ExternalId.user",),
    ),
]
