"""Query vocabulary for the notifications models, exposed through ``QuerySet.as_manager()``."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
from collections.abc import Callable, Iterable
from functools import lru_cache

import phonenumbers
from django.conf import settings
from django.core.exceptions import EmptyResultSet, ValidationError
from django.core.validators import validate_email
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext as _


def unsized_db_type(field: models.Field, connection) -> str:
    """``field``'s column type without its size (``varchar(255)`` -> ``varchar``), to cast bound
    values to. An explicit cast to ``varchar(n)`` cuts a longer value silently: an over-long key
    would be stored cut (or, compared, match the row holding its first ``n`` characters) where
    the database should refuse it (the column's own length still applies on assignment)."""
    db_type = field.db_type(connection)
    return db_type.split("(", 1)[0] if db_type.endswith(")") else db_type


def pg_array(values: Iterable) -> str | list:
    """``values`` as one PostgreSQL array literal (``{1,2}``, ``{"a","b"}``) for a ``%s::type[]``
    parameter, when they are all ints, strings, datetimes, dates or None; else the list itself.

    psycopg dumps a list element by element in Python, quoting each string through a regular
    expression: for the ten thousand ids, keys and times of a fan-out or a journey tick that cost
    more than PostgreSQL takes to read them. Built here with ``str.replace`` and one ``join``, the
    literal is one string parameter, and the cast parses it server-side (the same array: a test
    compares them)."""
    values = values if isinstance(values, list) else list(values)
    out = []
    for value in values:
        kind = type(value)
        if kind is int:
            out.append(str(value))
        elif isinstance(value, str):  # choices' values too (``Delivery.Status.SENT``)
            out.append('"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"')
        elif value is None:
            out.append("NULL")
        elif kind is datetime.datetime or kind is datetime.date:
            out.append('"' + value.isoformat() + '"')
        else:
            return values  # a bool, a float, a JSON adapter...: psycopg's own dumper
    return "{" + ",".join(out) + "}"


@models.Field.register_lookup
@models.ForeignObject.register_lookup
class InList(models.Lookup):
    """``field__in_list=values``: ``field__in`` for long lists of plain values (ints, strings).

    Django prepares an ``__in`` list value by value, which for the thousand ids of a planning
    chunk costs more than running the query. On SQLite the whole list goes as one JSON parameter
    (``IN (SELECT value FROM json_each(%s))``), on PostgreSQL as one array of the column's type (``= ANY(%s::integer[])``: a
    thousand placeholders cost psycopg more to interpolate than the query takes); elsewhere this is
    exactly ``__in``. Pass a set (any iterable but a list or tuple, which the query walks value by
    value before any lookup).
    """

    lookup_name = "in_list"

    def get_prep_lookup(self):
        return sorted(self.rhs)

    def as_sql(self, compiler, connection):
        if connection.vendor == "postgresql":
            if not self.rhs:
                raise EmptyResultSet  # as ``__in`` does: the condition matches nothing
            lhs, lhs_params = self.process_lhs(compiler, connection)
            # Cast to the column's type: psycopg sends a list of small ints as ``smallint[]``, and
            # ``integer = ANY(smallint[])`` has no hashed or index form, so PostgreSQL compared
            # every row of the table with every id (a seq scan, 30 ms per thousand ids on 10k users).
            array_type = unsized_db_type(self.lhs.output_field, connection)
            return f"{lhs} = ANY(%s::{array_type}[])", [*lhs_params, pg_array(self.rhs)]
        if connection.vendor != "sqlite":
            return models.lookups.In(self.lhs, self.rhs).as_sql(compiler, connection)
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} IN (SELECT value FROM json_each(%s))", [*lhs_params, json.dumps(self.rhs)]


class NotificationQuerySet(models.QuerySet):
    def for_recipient(self, user) -> NotificationQuerySet:
        return self.filter(recipient=user)

    def unread(self) -> NotificationQuerySet:
        # Matches the partial index ``notification_unread_idx`` exactly (read_at IS NULL).
        return self.filter(read_at__isnull=True)

    def newest_first(self) -> NotificationQuerySet:
        return self.order_by("-created_at", "-id")


class CategoryQuerySet(models.QuerySet):
    def listed(self) -> CategoryQuerySet:
        """The categories people choose between or filter by: internal ones (template tests) are
        the system's bookkeeping, never a recipient's choice or a reporting dimension."""
        return self.exclude(key__in=self.model.INTERNAL_KEYS)


class BroadcastQuerySet(models.QuerySet):
    """Broadcasts as one inbox sees them (``notifications.models.inbox``).

    A broadcast is in a user's inbox when it was made since they joined and their inbox is not
    suppressed, and it has no category or one they have not left on the ``inapp`` channel
    (transactional and non-optional categories cannot be left): the same rules a delivery
    follows (``decisions.channel_decision``), applied when the inbox is read.
    """

    def visible_to(self, user_id: int) -> BroadcastQuerySet:
        from django.contrib.auth import get_user_model

        from .models import Category, Preference, Suppression

        User = get_user_model()
        qs = self
        if any(f.name == "date_joined" for f in User._meta.concrete_fields):
            joined = User._default_manager.filter(pk=user_id).values("date_joined")[:1]
            qs = qs.filter(created_at__gte=models.Subquery(joined))
        inapp = Preference.objects.filter(user_id=user_id, category=models.OuterRef("pk"), channel=self.model.CHANNEL)
        left = (
            Category.objects.exclude(kind="transactional")
            .filter(user_can_opt_out=True)
            .filter(
                models.Exists(inapp.filter(enabled=False))
                | Q(default_enabled=False) & ~models.Exists(inapp.filter(enabled=True))
            )
            .values("pk")
        )
        suppressed = Suppression.objects.filter(channel=self.model.CHANNEL, address=str(user_id))
        return qs.filter(~models.Exists(suppressed)).filter(Q(category__isnull=True) | ~Q(category__in=left))

    def unread_by(self, user_id: int) -> BroadcastQuerySet:
        from .models import BroadcastRead

        read = BroadcastRead.objects.filter(user_id=user_id, broadcast=models.OuterRef("pk"))
        return self.filter(~models.Exists(read))

    def newest_first(self) -> BroadcastQuerySet:
        return self.order_by("-created_at", "-id")


class PreferenceQuerySet(models.QuerySet):
    def for_user(self, user) -> PreferenceQuerySet:
        return self.filter(user=user)


class SuppressionQuerySet(models.QuerySet):
    def for_address(self, channel: str, address: str) -> SuppressionQuerySet:
        """The suppression of ``address``: stored as typed, or as an erased person's keyed hash."""
        return self.filter(channel=channel, address__in=suppression_keys(channel, normalise_address(channel, address)))

    def reasons(self, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], str]:
        """``{(channel, address): reason}`` for those of ``pairs`` ((channel, normalised address))
        that are suppressed, whether stored as typed or as an erased person's keyed hash. One
        query; each address is hashed once."""
        keyers: dict[str, Callable[[str], list[str]]] = {}
        asked = {}
        for channel, address in pairs:
            keyer = keyers.get(channel)
            if keyer is None:
                keyer = keyers[channel] = _suppression_keyer(channel)
            for key in keyer(address):
                asked[(channel, key)] = address
        if not asked:
            return {}
        rows = self.filter(
            channel__in={channel for channel, _ in asked}, address__in_list={key for _, key in asked}
        ).values_list("channel", "address", "reason")
        reasons: dict[tuple[str, str], str] = {}
        for channel, stored, reason in rows:
            address = asked.get((channel, stored))
            if address is not None:
                reasons.setdefault((channel, address), reason)
        return reasons


#: The ledger's channel value of an outbound webhook post (``WebhookMessage``); reserved, so never
#: an alias of ``NOTIFICATION_CHANNELS`` (``channels_adapters.handler.RESERVED_ALIASES``).
WEBHOOK_CHANNEL = "webhook"


class DeliveryQuerySet(models.QuerySet):
    def due(self, now) -> DeliveryQuerySet:
        """Deliveries a send worker may pick up now. Webhook posts are never among them: each
        endpoint's drain posts its own, in order (``webhooks.sending``)."""
        return self.filter(
            Q(status="planned") | Q(status="deferred"),
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now),
        ).exclude(channel=WEBHOOK_CHANNEL)

    def to_people(self) -> DeliveryQuerySet:
        """Messages to recipients: the ledger without the webhook posts to integrators' endpoints
        (what analytics, reports and the delivery list count)."""
        return self.exclude(channel=WEBHOOK_CHANNEL)


def normalise_address(channel: str, address: str) -> str:
    """The one form an address is stored and compared in, by every writer and reader.

    Email: trimmed and lower-cased (``Ada@Example.com`` and ``ada@example.com`` are one address).
    SMS: E.164, read with ``SIGNALBOX_IMPORT_PHONE_REGION`` as the region of numbers written
    without ``+``, else only ``+`` international numbers. Other channels: trimmed. Best effort: a
    phone number that cannot be read comes back trimmed, so it still equals itself; use
    ``address_validate`` where bad input must be refused.
    """
    address = (address or "").strip()
    form = _address_form(channel)
    if form == "email":
        return address.lower()
    if form == "phone" and address:
        return _phone_e164(address, _phone_region()) or address
    return address


SUPPRESSION_HASH_PREFIX = "hmac-sha256:"


def suppression_hash(channel: str, address: str, *, secret: str | None = None) -> str:
    """The keyed hash an erased person's suppression is kept as (``address`` already normalised).

    HMAC-SHA256 under ``SIGNALBOX_SUPPRESSION_KEY`` (else ``SECRET_KEY``), with a key per
    channel: the row still stops mail to the address, but nobody can read the address from it,
    and without the key nobody can test guesses against it.
    """
    from . import conf

    mac = _suppression_hmac(channel, secret or conf.suppression_keys()[0]).copy()
    mac.update(address.encode())
    return SUPPRESSION_HASH_PREFIX + mac.hexdigest()


@lru_cache(maxsize=64)
def _suppression_hmac(channel: str, secret: str) -> hmac.HMAC:
    # Keyed once per key and channel (planning hashes every recipient's address): each hash is
    # then a copy of it, the key's pads already absorbed.
    key = hashlib.sha256(f"signalbox.suppression.{channel}".encode() + secret.encode()).digest()
    return hmac.new(key, digestmod=hashlib.sha256)


def suppression_keys(channel: str, address: str) -> list[str]:
    """Every stored form a suppression of ``address`` may have: the address, and its keyed hash
    under the current key and each older one (``SECRET_KEY_FALLBACKS`` when derived from it).
    Channels addressed by user id (the inbox) keep suppressions as they are: only the address."""
    return _suppression_keyer(channel)(address)


def _suppression_keyer(channel: str) -> Callable[[str], list[str]]:
    """``suppression_keys`` for one channel, its settings read once (``reasons`` keys a chunk's
    thousands of addresses with one)."""
    if not suppression_is_hashed(channel):
        # A user id is never hashed (the fan-out to 10,000 inboxes hashes nothing).
        return lambda address: [address] if address else []
    from . import conf

    secrets = conf.suppression_keys()
    macs = [_suppression_hmac(channel, secret or secrets[0]) for secret in secrets]

    def keys(address: str) -> list[str]:
        if not address:
            return []
        encoded = address.encode()
        forms = [address]
        for mac in macs:
            mac = mac.copy()
            mac.update(encoded)
            forms.append(SUPPRESSION_HASH_PREFIX + mac.hexdigest())
        return forms

    return keys


def suppression_is_hashed(channel: str) -> bool:
    """Whether an erased person's suppressions on ``channel`` are kept as keyed hashes: not where
    the address is the user id (the inbox's, ``features.address_source``), which names nobody."""
    from channels_adapters.handler import channels

    return channels.features(channel).address_source != "user_id"


def _address_form(channel: str) -> str:
    """How ``channel`` writes addresses, as its adapter declares (``features.address_form``)."""
    from channels_adapters.handler import channels

    return channels.features(channel).address_form


def address_validate(channel: str, address: str) -> str:
    """``normalise_address``, refusing what is not an address: ``ValidationError`` with a sentence."""
    normalised = normalise_address(channel, address)
    if not normalised:
        raise ValidationError(_("Enter an address."), code="required")
    form = _address_form(channel)
    if form == "email":
        try:
            validate_email(normalised)
        except ValidationError:
            raise ValidationError(_("Enter a valid email address."), code="invalid") from None
    elif form == "phone" and _phone_e164(normalised, _phone_region()) is None:
        raise ValidationError(
            _("Enter a valid phone number in international form, e.g. +14155550123."), code="invalid"
        )
    return normalised


def _phone_region() -> str | None:
    region = (getattr(settings, "SIGNALBOX_IMPORT_PHONE_REGION", "") or "").upper()
    return region or None


@lru_cache(maxsize=65536)
def _phone_e164(number: str, region: str | None) -> str | None:
    """E.164 for a valid number, else None. Cached: planning normalises every recipient's phone."""
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
