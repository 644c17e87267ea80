"""Where Signalbox keeps something about a person: one ``Kind`` per kind of row.

Each kind knows how to find the person's rows (for the export) and what erasing does to them.
Erasure keeps what the figures count (a delivery's channel, status, timestamps and campaign; an
inbox row's read state; a receipt's kind and time) and removes whatever says who it was: names,
addresses, rendered content, provider ids, free-text details. Suppressions are kept, as keyed
hashes, so the address stays unreachable.

``KINDS`` is the list in export and erasure order (the user row last: the others find their
rows through it). Another app adds its own with ``kind_register`` in ``AppConfig.ready()``.
``links`` name the relations to a person each kind covers: a test walks every model and fails
on a relation to a user or a delivery that no kind (and no entry of ``NOT_PERSONAL``) covers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import CharField, F, Q, Value
from django.db.models.functions import Cast, Concat

from ..models import (
    AudienceMember,
    AuditEntry,
    BroadcastRead,
    Delivery,
    DeliveryEvent,
    JourneyEnrollment,
    Notification,
    Preference,
    RecipientProfile,
    Suppression,
    TrackedLink,
)
from ..querysets import SUPPRESSION_HASH_PREFIX, suppression_hash, suppression_is_hashed
from .people import Person

CHUNK = 2000


class Kind:
    """One kind of personal data: its rows for the export, and what erasing does to them."""

    name: str = ""
    links: tuple[str, ...] = ()

    def columns(self) -> list[str]:
        raise NotImplementedError(f"{type(self).__name__} must implement columns()")

    def rows(self, person: Person) -> Iterator[dict]:
        raise NotImplementedError(f"{type(self).__name__} must implement rows()")

    def erase(self, person: Person) -> int:
        """Anonymise or delete the person's rows; return how many were touched."""
        raise NotImplementedError(f"{type(self).__name__} must implement erase()")


class ModelKind(Kind):
    """The rows of one model that ``select`` finds, exported field by field (``values()``, streamed).

    ``wipe(person, queryset)`` is what erasure does to them; ``extra`` adds computed columns
    (name -> expression); ``exclude`` leaves fields out of the export (a password hash).
    """

    def __init__(
        self, name: str, model: type[models.Model], select: Callable[[Person], models.QuerySet],
        wipe: Callable[[Person, models.QuerySet], int], *, links: tuple[str, ...] = (),
        exclude: tuple[str, ...] = (), extra: dict | None = None,
    ):
        self.name, self.model, self.select, self.wipe = name, model, select, wipe
        self.links, self.exclude, self.extra = links, exclude, extra or {}

    def columns(self) -> list[str]:
        names = [f.attname for f in self.model._meta.concrete_fields if f.name not in self.exclude]
        return [*names, *self.extra]

    def rows(self, person: Person) -> Iterator[dict]:
        names = [f.attname for f in self.model._meta.concrete_fields if f.name not in self.exclude]
        queryset = self.select(person).order_by("pk").values(*names, **self.extra)
        yield from queryset.iterator(chunk_size=CHUNK)

    def erase(self, person: Person) -> int:
        return self.wipe(person, self.select(person))


def _updating(**values) -> Callable[[Person, models.QuerySet], int]:
    return lambda person, queryset: queryset.update(**values)


# --- The kinds -------------------------------------------------------------------------------


def _user_rows(person: Person):
    return get_user_model()._default_manager.filter(pk=person.pk)


def _user_wipe(person: Person, queryset) -> int:
    """The account stays as a nameless, disabled shell: the ledger and the inbox rows keep their
    foreign key (campaign figures count them), and nothing on it says who it was."""
    user = person.user
    user.username = f"erased-{user.pk}"
    for name in ("email", "first_name", "last_name"):
        if hasattr(user, name):
            setattr(user, name, "")
    user.is_active = False
    user.last_login = None
    user.set_unusable_password()
    user.save()
    user.groups.clear()
    user.user_permissions.clear()
    return 1


def _suppression_rows(person: Person):
    return Suppression.objects.filter(pk__in=person.suppression_ids)


def _suppression_wipe(person: Person, queryset) -> int:
    """Each suppression stays, its address replaced by the keyed hash: mail to it stays stopped."""
    done = 0
    for suppression in list(queryset):
        if suppression.address.startswith(SUPPRESSION_HASH_PREFIX) or not suppression_is_hashed(suppression.channel):
            hashed = suppression.address  # already a hash, or an inbox's user id: nothing to hide
        else:
            hashed = suppression_hash(suppression.channel, suppression.address)
        if Suppression.objects.filter(channel=suppression.channel, address=hashed).exclude(pk=suppression.pk).exists():
            suppression.delete()  # already kept as a hash (erased before, or another row of theirs)
        else:
            Suppression.objects.filter(pk=suppression.pk).update(address=hashed, user=None, note="")
        done += 1
    return done


def _delivery_rows(person: Person):
    return Delivery.objects.filter(recipient_id=person.pk)


def _delivery_wipe(person: Person, queryset) -> int:
    touched = queryset.update(
        address="", content={}, provider_message_id="", last_error="", lease_owner="",
    )
    # A campaign's key is ids only (run:<run>:<user>:<channel>) and keeps a re-planned run from
    # planning them again; any other key is the caller's text and may name them.
    queryset.exclude(idempotency_key__startswith="run:").update(
        idempotency_key=Concat(Value("erased:"), Cast("pk", CharField()))
    )
    return touched


def _receipt_rows(person: Person):
    return DeliveryEvent.objects.filter(delivery__recipient_id=person.pk)


def _receipt_wipe(person: Person, queryset) -> int:
    # Provider payloads, addresses and user agents go; the one detail the figures read
    # (``machine_open``: a mail scanner's open, not counted) stays.
    machine = Q(data__has_key="machine_open") & Q(data__machine_open=True)
    touched = queryset.filter(machine).update(data={"machine_open": True}, provider_event_id=None)
    return touched + queryset.exclude(machine).update(data={}, provider_event_id=None)


def _link_rows(person: Person):
    return TrackedLink.objects.filter(delivery__recipient_id=person.pk)


def _inbox_rows(person: Person):
    return Notification.objects.filter(recipient_id=person.pk)


def _audit_rows(person: Person):
    content_type = ContentType.objects.get_for_model
    about = Q(target_type=content_type(get_user_model()), target_id=str(person.pk))
    if person.profile_id:
        about |= Q(target_type=content_type(RecipientProfile), target_id=str(person.profile_id))
    if person.suppression_ids:
        about |= Q(target_type=content_type(Suppression), target_id__in=[str(pk) for pk in person.suppression_ids])
    return AuditEntry.objects.filter(about | Q(actor_id=person.pk))


def _audit_wipe(person: Person, queryset) -> int:
    """Who did what and when stays; what the entry said about them goes."""
    ids = list(queryset.values_list("pk", flat=True))
    entries = AuditEntry.objects.filter(pk__in=ids)
    entries.filter(actor_id=person.pk).update(actor_repr="")
    return entries.update(target_repr="", changes={})


def _admin_log_rows(person: Person):
    from django.contrib.admin.models import LogEntry

    content_type = ContentType.objects.get_for_model
    about = Q(content_type=content_type(get_user_model()), object_id=str(person.pk))
    if person.profile_id:
        about |= Q(content_type=content_type(RecipientProfile), object_id=str(person.profile_id))
    return LogEntry.objects.filter(about)


def _sign_in_rows(model):
    def select(person: Person):
        names = Q()
        for name in person.sign_in_names:
            names |= Q(username__iexact=name)
        return model.objects.filter(names) if names else model.objects.none()
    return select


def _captured_rows(person: Person):
    from channels_adapters.models import CapturedMessage

    sent_to = Q(delivery_id__in=Delivery.objects.filter(recipient_id=person.pk).values("pk"))
    for channel, address in person.addresses:
        sent_to |= Q(channel=channel, address=address)
    return CapturedMessage.objects.filter(sent_to)


def _push_rows(person: Person):
    from channels_adapters.models import WebPushSubscription

    return WebPushSubscription.objects.filter(user_id=person.pk)


def _device_rows(person: Person):
    from channels_adapters.models import PushDevice

    return PushDevice.objects.filter(user_id=person.pk)


def _profile_rows(person: Person):
    return RecipientProfile.objects.filter(user_id=person.pk)


def _journey_wipe(person: Person, queryset) -> int:
    """Where they were and when stays (the step counters read it); what they entered with goes:
    the context (an order's fields...) and the entry key, which is the caller's text."""
    return queryset.update(context={}, entry_key=Concat(Value("erased:"), Cast("pk", CharField())))


def _delete_rows(person: Person, queryset) -> int:
    return queryset.delete()[0]


def _kinds() -> list[Kind]:
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from channels_adapters.models import CapturedMessage, PushDevice, WebPushSubscription
    from django.contrib.admin.models import LogEntry

    return [
        ModelKind("profile", RecipientProfile, _profile_rows, _delete_rows, links=("notifications.RecipientProfile.user",)),
        ModelKind(
            "preferences", Preference, lambda p: Preference.objects.filter(user_id=p.pk), _delete_rows,
            links=("notifications.Preference.user",),
        ),
        ModelKind("suppressions", Suppression, _suppression_rows, _suppression_wipe,
                  links=("notifications.Suppression.user",)),
        ModelKind("deliveries", Delivery, _delivery_rows, _delivery_wipe, links=("notifications.Delivery.recipient",)),
        ModelKind("receipts", DeliveryEvent, _receipt_rows, _receipt_wipe, links=("notifications.DeliveryEvent.delivery",)),
        ModelKind("tracked_links", TrackedLink, _link_rows, _updating(url=""), links=("notifications.TrackedLink.delivery",)),
        ModelKind(
            "inbox", Notification, _inbox_rows, _updating(title="", body="", url="", content=None),
            links=("notifications.Notification.recipient", "notifications.Notification.delivery"),
            extra={"shared_title": F("content__title"), "shared_body": F("content__body"),
                   "shared_url": F("content__url")},
        ),
        ModelKind(
            "broadcast_reads", BroadcastRead, lambda p: BroadcastRead.objects.filter(user_id=p.pk),
            # Read state only (which announcement, when): kept for the broadcast's read count.
            lambda person, queryset: 0,
            links=("notifications.BroadcastRead.user",),
            extra={"broadcast_title": F("broadcast__title")},
        ),
        ModelKind("push_subscriptions", WebPushSubscription, _push_rows, _delete_rows,
                  links=("channels_adapters.WebPushSubscription.user",)),
        ModelKind("push_devices", PushDevice, _device_rows, _delete_rows, links=("channels_adapters.PushDevice.user",)),
        ModelKind(
            "audience_memberships", AudienceMember, lambda p: AudienceMember.objects.filter(user_id=p.pk),
            _delete_rows, links=("notifications.AudienceMember.user",), extra={"audience_name": F("audience__name")},
        ),
        ModelKind(
            "journey_enrollments", JourneyEnrollment, lambda p: JourneyEnrollment.objects.filter(user_id=p.pk),
            _journey_wipe, links=("notifications.JourneyEnrollment.user",),
            extra={"journey_key": F("journey__key"), "version_number": F("version__number")},
        ),
        ModelKind("captured_messages", CapturedMessage, _captured_rows, _delete_rows),
        ModelKind("audit_entries", AuditEntry, _audit_rows, _audit_wipe, links=("notifications.AuditEntry.actor",)),
        ModelKind("admin_log", LogEntry, _admin_log_rows, _updating(object_repr="", change_message="")),
        ModelKind("sign_in_failures", AccessAttempt, _sign_in_rows(AccessAttempt), _delete_rows),
        ModelKind("sign_in_failure_log", AccessFailureLog, _sign_in_rows(AccessFailureLog), _delete_rows),
        ModelKind("sign_ins", AccessLog, _sign_in_rows(AccessLog), _delete_rows),
        *_registered,
        ModelKind("user", get_user_model(), _user_rows, _user_wipe, exclude=("password",)),
    ]


_registered: list[Kind] = []


def kind_register(kind: Kind) -> None:
    """Add another app's kind of personal data (call from its ``AppConfig.ready()``)."""
    if all(k.name != kind.name for k in _registered):
        _registered.append(kind)


def kinds() -> list[Kind]:
    """Every kind, in export and erasure order."""
    return _kinds()


# Relations to a user that are not the person's data: the staff member who did something.
# Erasure refuses staff accounts, so these never point at someone being erased.
NOT_PERSONAL = frozenset({
    "admin.LogEntry.user",
    "notifications.Audience.created_by",
    "notifications.MessageTemplate.updated_by",
    "notifications.Campaign.author",
    "notifications.Campaign.approved_by",
    "notifications.ApprovalDecision.decided_by",
    "notifications.CampaignRun.launched_by",
    "notifications.CampaignRun.winner_chosen_by",  # the marketer who picked an A/B winner
    "notifications.SignalTrigger.approved_by",
    "notifications.SignalTrigger.created_by",
    "notifications.Broadcast.created_by",
    "notifications.Journey.created_by",
    "notifications.Journey.approved_by",
    "notifications.JourneyVersion.published_by",
    "dashboard.ImportJob.created_by",
    "dashboard.Report.created_by",
    "api.ApiKey.created_by",  # a superuser who made a REST API key
    "notifications.WebhookEndpoint.created_by",  # the Manager who configured an outbound webhook
    # The POSTs of a webhook post (a delivery to an integrator's endpoint, never to a person): codes,
    # latencies and errors. Its payload names ids only (``webhooks.receivers``).
    "notifications.WebhookAttempt.delivery",
})
