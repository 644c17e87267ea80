"""Built-in audience fields: the user, their recipient profile, groups and static audiences.

Related rows are matched with ``Exists`` so no condition multiplies user rows. A user without a
recipient profile is treated as having the profile defaults (locale, time zone, no phone), the same
way the delivery pipeline treats them, so "locale in [en]" and "locale not in [zh-hans]" agree.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth.models import Group
from django.db.models import Exists, OuterRef, Q
from django.utils.translation import gettext_lazy as _

from ..models import Audience, AudienceMember, RecipientProfile
from ..timezones import flat_zone_choices, zone_aliases, zone_names_for
from .registry import AudienceOp, now, register_audience_field, start_of_day

USER = _("User")
PROFILE = _("Recipient profile")
MEMBERSHIP = _("Membership")

TEXT_OPS = {
    "eq": _("is"),
    "contains": _("contains"),
    "startswith": _("starts with"),
}
TEXT_LOOKUPS = {"eq": "iexact", "contains": "icontains", "startswith": "istartswith", "endswith": "iendswith"}
IN_OPS = {"in": _("is any of"), "not_in": _("is none of")}
IS_OP = {"is": _("is")}


def _negate_if(op: str, q: Q) -> Q:
    return ~q if op == "not_in" else q


def _text_q(column: str) -> Any:
    def to_q(op: str, value: str) -> Q:
        return Q(**{f"{column}__{TEXT_LOOKUPS[op]}": value})

    return to_q


def _bool_q(make_q: Any) -> Any:
    """``make_q()`` builds a fresh ``Q`` per compilation: compiled trees never share expressions."""

    def to_q(op: str, value: bool) -> Q:
        q = make_q()
        return q if value else ~q

    return to_q


def _profile_exists(**lookups: Any) -> Q:
    return Q(Exists(RecipientProfile.objects.filter(user_id=OuterRef("pk"), **lookups)))


def _profile_value_in(column: str, values: list[str]) -> Q:
    """Profile ``column`` is one of ``values``; users without a profile count as the default."""
    q = _profile_exists(**{f"{column}__in": values})
    if RecipientProfile._meta.get_field(column).get_default() in values:
        q |= ~_profile_exists()
    return q


def _timezone_choices() -> list[tuple[str, str]]:
    return flat_zone_choices()  # canonical zones with their offset (cached per hour)


def _group_choices() -> list[tuple[str, str]]:
    return [(name, name) for name in Group.objects.order_by("name").values_list("name", flat=True)]


def _static_audience_choices() -> list[tuple[int, str]]:
    return list(Audience.objects.filter(kind=Audience.Kind.STATIC).order_by("name").values_list("pk", "name"))


def _date_joined_q(op: str, value: Any) -> Q:
    if op == "within_days":
        return Q(date_joined__gte=now() - timedelta(days=value))
    if op == "older_than_days":
        return Q(date_joined__lt=now() - timedelta(days=value))
    if op == "before":
        return Q(date_joined__lt=start_of_day(value))
    return Q(date_joined__gte=start_of_day(value))  # on_or_after


def _last_login_q(op: str, value: Any) -> Q:
    if op == "within_days":
        return Q(last_login__gte=now() - timedelta(days=value))
    if op == "not_within_days":
        return Q(last_login__lt=now() - timedelta(days=value)) | Q(last_login__isnull=True)
    if op == "never":
        return Q(last_login__isnull=True)
    return Q(last_login__isnull=False)  # ever


def _groups_q(op: str, value: list[str]) -> Q:
    from django.contrib.auth import get_user_model

    memberships = get_user_model().groups.through.objects.filter(user_id=OuterRef("pk"), group__name__in=value)
    return _negate_if(op, Q(Exists(memberships)))


def _audience_member_q(op: str, value: list[int]) -> Q:
    members = AudienceMember.objects.filter(user_id=OuterRef("pk"), audience_id__in=value)
    return _negate_if(op, Q(Exists(members)))


# The user's own columns change when the user is saved ("user": the user model, path "self").
SAVED_WITH_USER = {"user": "self"}


def register_builtin_fields() -> None:
    """Register the built-in fields (idempotent: ``replace=True``)."""
    days = "days"
    for key, label, column, ops in [
        ("user.email", _("Email address"), "email", {**TEXT_OPS, "endswith": _("ends with")}),
        ("user.username", _("Username"), "username", TEXT_OPS),
        ("user.first_name", _("First name"), "first_name", TEXT_OPS),
        ("user.last_name", _("Last name"), "last_name", TEXT_OPS),
    ]:
        register_audience_field(
            key, label=label, group=USER, ops=ops, value_type="text", to_q=_text_q(column), replace=True,
            saved_with=SAVED_WITH_USER, saved_columns=[column],
        )
    register_audience_field(
        "user.has_email", label=_("Has an email address"), group=USER, ops=IS_OP, value_type="bool",
        to_q=_bool_q(lambda: ~Q(email="")), replace=True, saved_with=SAVED_WITH_USER,
        saved_columns=["email"],
    )
    register_audience_field(
        "user.is_staff", label=_("Is staff"), group=USER, ops=IS_OP, value_type="bool",
        to_q=_bool_q(lambda: Q(is_staff=True)), replace=True, saved_with=SAVED_WITH_USER,
        saved_columns=["is_staff"],
        help_text=_("Add “Is staff is no” to leave colleagues out of a campaign."),
    )
    register_audience_field(
        "user.date_joined", label=_("Joined"), group=USER,
        ops={
            "within_days": AudienceOp(_("in the last … days"), days),
            "older_than_days": AudienceOp(_("more than … days ago"), days),
            "before": AudienceOp(_("before"), "date"),
            "on_or_after": AudienceOp(_("on or after"), "date"),
        },
        to_q=_date_joined_q, replace=True,
    )
    register_audience_field(
        "user.last_login", label=_("Last logged in"), group=USER,
        ops={
            "within_days": AudienceOp(_("in the last … days"), days),
            "not_within_days": AudienceOp(_("not in the last … days (or never)"), days),
            "never": AudienceOp(_("never"), "none"),
            "ever": AudienceOp(_("at least once"), "none"),
        },
        to_q=_last_login_q, replace=True,
    )
    register_audience_field(
        "profile.locale", label=_("Language"), group=PROFILE, ops=IN_OPS, value_type="choices",
        choices=RecipientProfile.Locale.choices,
        to_q=lambda op, value: _negate_if(op, _profile_value_in("locale", value)), replace=True,
    )
    register_audience_field(
        "profile.timezone", label=_("Time zone"), group=PROFILE, ops=IN_OPS, value_type="choices",
        choices=_timezone_choices, also_accepts=lambda values: zone_aliases().intersection(values),
        to_q=lambda op, value: _negate_if(op, _profile_value_in("timezone", zone_names_for(value))), replace=True,
    )
    register_audience_field(
        "profile.has_phone", label=_("Has a phone number"), group=PROFILE, ops=IS_OP, value_type="bool",
        to_q=_bool_q(lambda: _profile_exists(phone__gt="")), replace=True,
    )
    register_audience_field(
        "user.groups", label=_("Group"), group=MEMBERSHIP, ops=IN_OPS, value_type="choices",
        choices=_group_choices, to_q=_groups_q, replace=True,
    )
    register_audience_field(
        "audience.member", label=_("Member of static audience"), group=MEMBERSHIP,
        ops={"in": _("any of"), "not_in": _("none of")}, value_type="ids",
        choices=_static_audience_choices, to_q=_audience_member_q, replace=True,
    )
