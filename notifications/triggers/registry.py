"""What a marketer may bind a trigger to, and what each binding exposes.

Nothing reaches the trigger builder unless an app registered it here, usually from its
``AppConfig.ready()``:

* ``register_model(Order, fields=[...], recipient_paths=[...])`` offers the model's
  ``post_save``/``post_delete``/``m2m_changed`` signals. ``fields`` is the **allow-list**: the only
  values conditions may test and the only ones a marketer-authored template ever sees (as plain
  JSON data, never the instance). ``recipient_paths`` are the dotted paths offered as recipients.
* ``register_signal("billing.invoice_overdue", invoice_overdue, label=..., provides=[...])`` offers
  an app's own ``Signal``; ``provides`` names the keyword arguments the signal is sent with.

Built in: the three model signals for every registered model, ``auth.user_signed_up`` (the user
model's ``post_save`` with ``created``) and ``auth.user_logged_in``. The user model is registered
with a small default allow-list; an app may register it again to change that.

Receivers are connected as things are registered (once the notifications app is ready), each with
its ``sender`` and a ``dispatch_uid``; see ``notifications.triggers.receivers``.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import models
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.dispatch import Signal
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy

MODEL_POST_SAVE = "model.post_save"
MODEL_POST_DELETE = "model.post_delete"
MODEL_M2M_CHANGED = "model.m2m_changed"
USER_SIGNED_UP = "auth.user_signed_up"
USER_LOGGED_IN = "auth.user_logged_in"
MODEL_SIGNAL_KEYS = (MODEL_POST_SAVE, MODEL_POST_DELETE, MODEL_M2M_CHANGED)

SELF = "self"
# The events as the trigger form's sentence says them ("When Order is Updated").
EVENT_LABELS = {
    "created": pgettext_lazy("trigger event", "Created"),
    "updated": pgettext_lazy("trigger event", "Updated"),
    "deleted": pgettext_lazy("trigger event", "Deleted"),
    "fired": pgettext_lazy("trigger event", "Signal sent"),
}
# What the user model exposes unless an app registers it with its own allow-list.
DEFAULT_USER_FIELDS = ("username", "first_name", "last_name", "is_active", "date_joined")


@dataclass(frozen=True)
class RegisteredModel:
    """A model whose signals may be bound, with its allow-listed fields and recipient paths."""

    model: type[models.Model]
    label: str  # "demo_shop.order"
    verbose_name: Any
    fields: tuple[str, ...]  # concrete fields (a foreign key exposes the related id)
    m2m_fields: tuple[str, ...]  # many-to-many fields whose changes ``model.m2m_changed`` reports
    recipient_paths: tuple[str, ...]

    def field(self, name: str) -> models.Field:
        return self.model._meta.get_field(name)

    @property
    def attnames(self) -> dict[str, str]:
        """Field name -> the attribute holding its value (``customer`` -> ``customer_id``)."""
        return {name: self.model._meta.get_field(name).attname for name in self.fields}


@dataclass(frozen=True)
class RegisteredSignal:
    """A bindable signal. ``model_signal`` ones apply to whichever registered model a trigger names."""

    key: str
    signal: Signal
    label: Any
    events: tuple[str, ...]
    model_signal: bool = False
    # Custom signals: the keyword arguments the signal is sent with, and paths from them.
    provides: tuple[str, ...] = ()
    sender: Any = None
    recipient_paths: tuple[str, ...] = ()
    # Auth signals: the subject is a user, with the user model's registered fields.
    user_signal: bool = False


@dataclass
class TriggerRegistry:
    models: dict[str, RegisteredModel] = field(default_factory=dict)
    signals: dict[str, RegisteredSignal] = field(default_factory=dict)
    # Set by ``receivers.connect_receivers()``; later registrations connect at once.
    on_register: Any = None

    def model_for(self, label: str) -> RegisteredModel | None:
        return self.models.get(label)


registry = TriggerRegistry()


def model_label(model: type[models.Model] | models.Model) -> str:
    return model._meta.concrete_model._meta.label_lower


def _builtin_signals() -> None:
    from django.contrib.auth.signals import user_logged_in

    for key, signal, label, events in (
        (MODEL_POST_SAVE, post_save, _("Saved (created or updated)"), ("created", "updated")),
        (MODEL_POST_DELETE, post_delete, _("Deleted"), ("deleted",)),
        (MODEL_M2M_CHANGED, m2m_changed, _("Many-to-many relation changed"), ("updated",)),
    ):
        registry.signals.setdefault(key, RegisteredSignal(key=key, signal=signal, label=label, events=events,
                                                          model_signal=True))
    registry.signals.setdefault(USER_SIGNED_UP, RegisteredSignal(
        key=USER_SIGNED_UP, signal=post_save, label=_("User signed up"), events=("fired",), user_signal=True,
    ))
    registry.signals.setdefault(USER_LOGGED_IN, RegisteredSignal(
        key=USER_LOGGED_IN, signal=user_logged_in, label=_("User logged in"), events=("fired",), user_signal=True,
    ))


def register_model(
    model: type[models.Model],
    *,
    fields: Sequence[str],
    recipient_paths: Sequence[str],
    label: Any = None,
) -> RegisteredModel:
    """Offer ``model``'s save/delete/m2m signals to the trigger builder.

    ``fields`` are field names of ``model``: concrete ones become the allow-list for conditions and
    templates; many-to-many ones are reported by ``model.m2m_changed``. Each recipient path must
    lead to users (see ``recipient_lookup``); it is checked now, so a typo fails at start-up
    rather than when a marketer's trigger fires.
    """
    concrete, m2m = [], []
    for name in fields:
        try:
            model_field = model._meta.get_field(name)
        except FieldDoesNotExist as exc:
            raise ImproperlyConfigured(f"register_model({model.__name__}): no field {name!r}.") from exc
        if model_field.many_to_many and not model_field.auto_created:
            m2m.append(name)
        elif model_field.concrete:
            concrete.append(name)
        else:
            raise ImproperlyConfigured(
                f"register_model({model.__name__}): {name!r} is a reverse relation; expose it from the other model."
            )
    for path in recipient_paths:
        try:
            recipient_lookup(model, path)
        except ValueError as exc:
            raise ImproperlyConfigured(f"register_model({model.__name__}): {exc}") from exc
    entry = RegisteredModel(
        model=model,
        label=model_label(model),
        verbose_name=label or model._meta.verbose_name,
        fields=tuple(concrete),
        m2m_fields=tuple(m2m),
        recipient_paths=tuple(recipient_paths),
    )
    registry.models[entry.label] = entry
    if registry.on_register:
        registry.on_register(model=entry)
    return entry


def register_signal(
    key: str,
    signal: Signal,
    *,
    label: Any,
    provides: Sequence[str],
    sender: Any = None,
    recipient_paths: Sequence[str] = (),
) -> RegisteredSignal:
    """Offer an app's own ``signal`` to the trigger builder under ``key`` (e.g. ``"billing.overdue"``).

    ``provides`` names the keyword arguments the signal is sent with; they are what conditions
    test and templates see (model instances among them as their registered fields). A recipient
    path starts at one of them: ``user`` (a user, or a user id), or ``invoice.account.owner``.
    ``sender`` restricts the receiver to that sender; ``None`` accepts any, for signals sent with
    varying senders.
    """
    if key in MODEL_SIGNAL_KEYS or key in (USER_SIGNED_UP, USER_LOGGED_IN):
        raise ImproperlyConfigured(f"{key!r} is a built-in trigger signal.")
    if "." not in key:
        raise ImproperlyConfigured(f"Name custom trigger signals app_label.name, not {key!r}.")
    for path in recipient_paths:
        if path.split(".")[0] not in provides:
            raise ImproperlyConfigured(f"register_signal({key}): {path!r} does not start at a provided argument.")
    entry = RegisteredSignal(
        key=key, signal=signal, label=label, events=("fired",), provides=tuple(provides), sender=sender,
        recipient_paths=tuple(recipient_paths),
    )
    registry.signals[key] = entry
    if registry.on_register:
        registry.on_register(signal=entry)
    return entry


def ensure_user_model() -> RegisteredModel:
    """Register the user model with the default allow-list unless an app already did."""
    User = get_user_model()
    existing = registry.model_for(model_label(User))
    if existing:
        return existing
    names = [name for name in DEFAULT_USER_FIELDS if _has_field(User, name)]
    return register_model(User, fields=names, recipient_paths=[SELF])


def _has_field(model: type[models.Model], name: str) -> bool:
    try:
        model._meta.get_field(name)
    except FieldDoesNotExist:
        return False
    return True


# --- Recipients ---------------------------------------------------------------------------------

def recipient_lookup(model: type[models.Model], path: str) -> str:
    """The ORM lookup from ``model`` to user ids along the dotted ``path``; ``ValueError`` if none.

    Each step is a relation (foreign key, one-to-one, many-to-many or reverse), so ``project.members``
    reaches many users. The path ends at the user model, or at an object with a ``user`` relation
    (``customer`` -> ``Customer.user``). ``self`` is the instance itself.
    """
    User = get_user_model()
    current = model
    lookups: list[str] = []
    if path != SELF:
        for part in path.split("."):
            try:
                step = current._meta.get_field(part)
            except FieldDoesNotExist:
                raise ValueError(
                    _("%(model)s has no relation %(name)s.") % {"model": current._meta.verbose_name, "name": part}
                ) from None
            if not step.is_relation or step.related_model is None:
                raise ValueError(
                    _("%(name)s on %(model)s is not a relation.") % {"name": part, "model": current._meta.verbose_name}
                )
            lookups.append(step.name)  # a reverse relation's name is its query name
            current = step.related_model
    if current._meta.concrete_model is User._meta.concrete_model:
        return "__".join(lookups) or "pk"
    user_field = _user_relation(current)
    if user_field is None:
        raise ValueError(
            _("%(path)s leads to %(model)s, which is neither a user nor has a user.")
            % {"path": path, "model": current._meta.verbose_name}
        )
    return "__".join([*lookups, user_field])


def _user_relation(model: type[models.Model]) -> str | None:
    User = get_user_model()
    try:
        user_field = model._meta.get_field("user")
    except FieldDoesNotExist:
        return None
    if user_field.is_relation and user_field.related_model is not None and (
        user_field.related_model._meta.concrete_model is User._meta.concrete_model
    ):
        return "user"
    return None


# --- Plain data for conditions and templates ------------------------------------------------------

def json_safe(value: Any) -> Any:
    """A JSON-safe copy of a field value: dates as ISO strings, decimals and UUIDs as strings."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (datetime.date, datetime.time)):  # datetime is a date
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (decimal.Decimal, uuid.UUID, Promise)):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_safe(v) for v in value]
    if isinstance(value, models.Model):
        return json_safe(value.pk)
    return str(value)


def instance_fields(instance: models.Model) -> dict[str, Any]:
    """The allow-listed fields of a registered instance as plain JSON data (plus ``id``).

    This is all a trigger's template sees of the instance; a foreign key gives the related id.
    Reads only attributes already loaded, so it costs no query. ``LookupError`` for a model
    that is not registered.
    """
    entry = registry.model_for(model_label(instance))
    if entry is None:
        raise LookupError(f"{model_label(instance)} is not registered for triggers.")
    values = {"id": json_safe(instance.pk)}
    for name, attname in entry.attnames.items():
        values[name] = json_safe(getattr(instance, attname))
    return values


def provided_fields(entry: RegisteredSignal, kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, list]]:
    """Plain data and model references for a custom signal's provided arguments.

    Model instances become their registered fields (or just ``{"id": pk}``) in the data, and a
    ``[label, pk]`` reference so the task can follow recipient paths from them.
    """
    data: dict[str, Any] = {}
    refs: dict[str, list] = {}
    for name in entry.provides:
        value = kwargs.get(name)
        if isinstance(value, models.Model):
            refs[name] = [model_label(value), json_safe(value.pk)]
            try:
                data[name] = instance_fields(value)
            except LookupError:
                data[name] = {"id": json_safe(value.pk)}
        else:
            data[name] = json_safe(value)
    return data, refs


# --- What the trigger form offers -----------------------------------------------------------------

def signal_choices() -> list[tuple[str, Any]]:
    _builtin_signals()
    return [(key, entry.label) for key, entry in registry.signals.items()]


def model_choices() -> list[tuple[str, Any]]:
    return sorted(((label, f"{entry.verbose_name} ({label})") for label, entry in registry.models.items()),
                  key=lambda choice: choice[0])


def subject_fields(*, signal: str, model: str) -> dict[str, models.Field | None]:
    """Field name -> model field (``None`` for a custom signal's arguments) a trigger may test."""
    entry = registry.signals.get(signal)
    if entry is None:
        return {}
    if entry.model_signal or entry.user_signal:
        registered = registry.model_for(model_label(get_user_model()) if entry.user_signal else model)
        if registered is None:
            return {}
        return {name: registered.field(name) for name in registered.fields}
    return {name: None for name in entry.provides}


def subject_recipient_paths(*, signal: str, model: str) -> tuple[str, ...]:
    entry = registry.signals.get(signal)
    if entry is None:
        return ()
    if entry.model_signal or entry.user_signal:
        registered = registry.model_for(model_label(get_user_model()) if entry.user_signal else model)
        return registered.recipient_paths if registered else ()
    return entry.recipient_paths


def field_choices() -> list[tuple[Any, list[tuple[str, str]]]]:
    """Fields grouped by model (the trigger form checks the choice against the chosen model)."""
    groups = []
    for label, entry in sorted(registry.models.items()):
        names = [*entry.fields, *entry.m2m_fields]
        groups.append((f"{entry.verbose_name} ({label})", [(name, name) for name in names]))
    custom = [(f"{entry.label} ({key})", [(name, name) for name in entry.provides])
              for key, entry in registry.signals.items() if entry.provides]
    return groups + custom


def recipient_path_choices() -> list[tuple[Any, list[tuple[str, str]]]]:
    """Offered recipient paths grouped by model or signal."""
    groups = []
    for label, entry in sorted(registry.models.items()):
        if entry.recipient_paths:
            groups.append((f"{entry.verbose_name} ({label})", [(p, p) for p in entry.recipient_paths]))
    for key, entry in registry.signals.items():
        if entry.recipient_paths:
            groups.append((f"{entry.label} ({key})", [(p, p) for p in entry.recipient_paths]))
    return groups


def registered_models() -> Iterable[RegisteredModel]:
    return list(registry.models.values())
