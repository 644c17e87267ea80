"""Who a person is to Signalbox: their user row and every address they can be reached at."""

from __future__ import annotations

from dataclasses import dataclass, replace

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils.translation import gettext as _

from ..models import RecipientProfile, Suppression
from ..querysets import normalise_address


class PersonNotFound(LookupError):
    """No one (or more than one person) matches: the message says which, for a form or a command."""


@dataclass(frozen=True)
class Person:
    """A user and the addresses Signalbox may hold about them, gathered before anything changes."""

    user: object
    email: str
    phone: str
    push_endpoints: tuple[str, ...]
    chat_target: str
    profile_id: int | None = None
    wechat_openid: str = ""  # chat_ids["wechat"]: the WeChat channel's address
    suppression_ids: tuple[int, ...] = ()

    @property
    def pk(self) -> int:
        return self.user.pk

    @property
    def addresses(self) -> set[tuple[str, str]]:
        """``(channel, normalised address)`` pairs: where suppressions and sends find them, on every
        configured and standard channel, by where its adapter keeps addresses (``address_source``)."""
        from channels_adapters.features import STANDARD_FEATURES
        from channels_adapters.handler import channels

        by_source = {
            "user_email": (self.user.email or "",), "profile_phone": (self.phone,), "user_id": (str(self.user.pk),),
            "push_subscription": self.push_endpoints, "profile_chat": (self.chat_target,),
            "profile_wechat": (self.wechat_openid,),
        }
        pairs = set()
        for alias in dict.fromkeys([*channels.settings, *STANDARD_FEATURES]):
            for value in by_source.get(channels.features(alias).address_source, ()):
                if address := normalise_address(alias, value):
                    pairs.add((alias, address))
        return pairs

    @property
    def sign_in_names(self) -> set[str]:
        """What they may have typed to sign in (sign-in records keep it)."""
        return {name for name in (self.user.get_username(), self.user.email) if name}


def phone_e164(number: str) -> str:
    """A phone number in the one form profiles and suppressions keep (E.164, ``normalise_address``)."""
    from channels_adapters.features import STANDARD_FEATURES

    sms = next(alias for alias, features in STANDARD_FEATURES.items() if features.address_form == "phone")
    return normalise_address(sms, number)


def person_load(user) -> Person:
    """The ``Person`` for ``user`` (three small queries)."""
    from channels_adapters.models import WebPushSubscription

    profile = RecipientProfile.objects.filter(user=user).first()
    chat_ids = (profile.chat_ids if profile else None) or {}
    person = Person(
        user=user,
        email=(user.email or "").strip().lower(),
        phone=phone_e164(profile.phone) if profile and profile.phone else "",
        push_endpoints=tuple(
            WebPushSubscription.objects.filter(user=user).order_by("pk").values_list("endpoint", flat=True)
        ),
        chat_target=(chat_ids.get("apprise", "") if isinstance(chat_ids, dict) else "") or "",
        wechat_openid=str((chat_ids.get("wechat", "") if isinstance(chat_ids, dict) else "") or ""),
        profile_id=profile.pk if profile else None,
    )
    by_address = Q(user_id=user.pk)
    for channel, address in person.addresses:
        by_address |= Q(channel=channel, address=address)
    return replace(person, suppression_ids=tuple(Suppression.objects.filter(by_address).values_list("pk", flat=True)))


def person_find(identifier: str) -> Person:
    """The person an id, an email address or a phone number names; ``PersonNotFound`` otherwise.

    Digits only: a user id. With ``@``: an email (any case). Else a phone number, read as the
    import reads it (E.164, or national with ``SIGNALBOX_IMPORT_PHONE_REGION``). Two people with
    one address is refused: the caller must use the id.
    """
    User = get_user_model()
    identifier = (identifier or "").strip()
    if not identifier:
        raise PersonNotFound(_("Give a user id, an email address or a phone number."))
    if identifier.isdigit():
        users = User._default_manager.filter(pk=int(identifier)) if len(identifier) < 19 else User.objects.none()
    elif "@" in identifier:
        users = User._default_manager.filter(email__iexact=identifier)
    else:
        phone = phone_e164(identifier)
        users = User._default_manager.filter(recipient_profile__phone=phone)
    found = list(users.order_by("pk")[:2])
    if not found:
        raise PersonNotFound(_("No one matches “%(identifier)s”.") % {"identifier": identifier})
    if len(found) > 1:
        raise PersonNotFound(
            _("More than one person matches “%(identifier)s”: use the user id.") % {"identifier": identifier}
        )
    return person_load(found[0])
