"""The audience field registry: which conditions a rule tree may use, and how each compiles.

Built-in fields live in ``fields.py``; integrating apps call :func:`register_audience_field` from
their ``AppConfig.ready()`` (see ``demo_shop/audiences.py``).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q
from django.utils import timezone

from .values import VALUE_TYPES

FIELD_KEY_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")

Choices = Sequence[tuple[Any, Any]]


@dataclass(frozen=True)
class AudienceOp:
    """One operator of a field: its label in the builder and the type of value it takes."""

    label: Any
    value_type: str


@dataclass(frozen=True)
class AudienceField:
    """A condition marketers can use: ``{"field": key, "op": ..., "value": ...}``.

    ``to_q(op, value)`` receives a validated value (see ``VALUE_TYPES``) and returns a ``Q`` over
    the user model. It must not multiply user rows: express to-many relations with ``Exists`` (or
    a subquery), never a plain join, so audience counts stay exact without ``distinct()``.
    ``choices`` (a sequence of ``(value, label)`` or a callable returning one, evaluated on each
    validation) restricts the values of ``choices``/``ids``/``text`` operators.
    """

    key: str
    label: Any
    ops: Mapping[str, AudienceOp]
    to_q: Callable[[str, Any], Q]
    choices: Choices | Callable[[], Choices] | None = None
    group: Any = ""
    help_text: Any = ""
    # Of the values a rule gives, those accepted besides the choices offered (a time-zone alias an
    # old rule holds, a run too old for the builder's list): asked with the given values only, so
    # a field over a big table checks them with one ``pk__in`` query instead of listing every row.
    also_accepts: Callable[[list], Iterable[Any]] | None = None
    # The models whose save can change this field's answer for a person, each with the path from
    # it to the person in the trigger registry's terms (``"user"``: the user model itself, path
    # ``"self"``). A journey entered from an audience whose fields all say so checks the person on
    # such a save (``journeys.entry``); otherwise only the periodic scan finds newcomers.
    saved_with: Mapping[str, str] = field(default_factory=dict)
    # Of those models, the fields whose change can alter the answer: a save that names its
    # ``update_fields`` without any of them (``last_login`` at every sign-in) is not checked.
    # Empty: every save is.
    saved_columns: frozenset[str] = frozenset()

    def choice_list(self) -> list[tuple[Any, str]] | None:
        choices = self.choices() if callable(self.choices) else self.choices
        if choices is None:
            return None
        return [(value, str(label)) for value, label in choices]


@dataclass
class AudienceFieldRegistry:
    """The fields a rule tree may use, in registration order (which is the builder's order)."""

    _fields: dict[str, AudienceField] = field(default_factory=dict)

    def register(
        self,
        key: str,
        *,
        label: Any,
        ops: Mapping[str, Any],
        to_q: Callable[[str, Any], Q],
        value_type: str | None = None,
        choices: Choices | Callable[[], Choices] | None = None,
        group: Any = "",
        help_text: Any = "",
        replace: bool = False,
        also_accepts: Callable[[list], Iterable[Any]] | None = None,
        saved_with: Mapping[str, str] | None = None,
        saved_columns: Iterable[str] | None = None,
    ) -> AudienceField:
        """Add a field. ``ops`` maps operator names to a label (taking ``value_type``) or to an
        :class:`AudienceOp` when operators of one field take different values.

        Registering a key twice is a programming error (two apps claiming one name) unless
        ``replace=True``; a bad definition fails here, at start-up, not in a marketer's preview.
        """
        if not FIELD_KEY_RE.match(key):
            raise ImproperlyConfigured(f"Audience field key {key!r} must look like 'app.field_name'.")
        if key in self._fields and not replace:
            raise ImproperlyConfigured(f"Audience field {key!r} is already registered.")
        if not ops:
            raise ImproperlyConfigured(f"Audience field {key!r} needs at least one operator.")
        if not callable(to_q):
            raise ImproperlyConfigured(f"Audience field {key!r}: to_q must be callable.")
        resolved: dict[str, AudienceOp] = {}
        for op, spec in ops.items():
            if not isinstance(op, str) or not re.fullmatch(r"[a-z][a-z0-9_]*", op):
                raise ImproperlyConfigured(f"Audience field {key!r}: bad operator name {op!r}.")
            if not isinstance(spec, AudienceOp):
                if value_type is None:
                    raise ImproperlyConfigured(f"Audience field {key!r}: operator {op!r} needs a value_type.")
                spec = AudienceOp(label=spec, value_type=value_type)
            if spec.value_type not in VALUE_TYPES:
                raise ImproperlyConfigured(
                    f"Audience field {key!r}: unknown value type {spec.value_type!r} "
                    f"(one of {', '.join(VALUE_TYPES)})."
                )
            resolved[op] = spec
        audience_field = AudienceField(
            key=key, label=label, ops=resolved, to_q=to_q, choices=choices, group=group, help_text=help_text,
            also_accepts=also_accepts, saved_with=dict(saved_with or {}), saved_columns=frozenset(saved_columns or ()),
        )
        self._fields[key] = audience_field
        return audience_field

    def unregister(self, key: str) -> None:
        self._fields.pop(key, None)

    def get(self, key: str) -> AudienceField | None:
        return self._fields.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._fields

    def __iter__(self):
        return iter(list(self._fields.values()))

    def __len__(self) -> int:
        return len(self._fields)


audience_fields = AudienceFieldRegistry()


def register_audience_field(
    key: str,
    *,
    label: Any,
    ops: Mapping[str, Any],
    to_q: Callable[[str, Any], Q],
    value_type: str | None = None,
    choices: Choices | Callable[[], Choices] | None = None,
    group: Any = "",
    help_text: Any = "",
    replace: bool = False,
    also_accepts: Callable[[list], Iterable[Any]] | None = None,
    saved_with: Mapping[str, str] | None = None,
    saved_columns: Iterable[str] | None = None,
) -> AudienceField:
    """Expose a condition to the audience builder; call it from your ``AppConfig.ready()``.

    ``saved_with`` maps the models whose save can change the answer (labels registered for
    triggers, or ``"user"``) to the path from them to the person, e.g. ``{"demo_shop.customer":
    "user"}``: a journey entered from an audience using the field then checks the person on such
    a save instead of waiting for its periodic scan. ``saved_columns`` names the fields of those
    models that can change the answer (e.g. ``["vip"]``): a save with ``update_fields`` naming none
    of them is not checked.

    Example (what ``demo_shop`` does)::

        register_audience_field(
            "shop.vip", label=_("VIP customer"), group=_("Shop"),
            ops={"is": _("is")}, value_type="bool",
            to_q=lambda op, value: Q(Exists(Customer.objects.filter(user=OuterRef("pk"), vip=True))),
        )
    """
    return audience_fields.register(
        key, label=label, ops=ops, to_q=to_q, value_type=value_type, choices=choices,
        group=group, help_text=help_text, replace=replace, also_accepts=also_accepts, saved_with=saved_with,
        saved_columns=saved_columns,
    )


def now() -> dt.datetime:
    """The compilation clock: one definition, so every field measures "the last N days" alike."""
    return timezone.now()


def start_of_day(day: dt.date) -> dt.datetime:
    """Midnight at the start of ``day`` in the site's time zone."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))
