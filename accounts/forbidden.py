"""The 403 page: which action the page needs and which roles allow it, read from the policy.

``handler403`` (``config/urls.py``) renders it for every ``PermissionDenied``. The page looks up
the requested URL's rule in ``accounts.url_policy`` and names, from ``accounts.roles``, the
actions (or model permissions) it needs and the roles that hold them, so a Marketer who opens
Reports reads "Export CSV/XLSX or download PDF reports: Managers" rather than a bare
"403 Forbidden". Staff see it inside the admin's layout; everyone else gets a plain page.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.apps import apps
from django.contrib import admin
from django.http import HttpRequest, HttpResponseForbidden
from django.template.response import TemplateResponse
from django.urls import Resolver404, resolve
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from .roles import ACTIONS, role_of, roles_allowed, roles_holding
from .url_policy import rule_for

ROLE_LABELS = {"Marketers": _("Marketers"), "Operators": _("Operators"), "Managers": _("Managers")}
VERBS = {"view": _("see %(things)s"), "add": _("add %(things)s"), "change": _("change %(things)s"),
         "delete": _("delete %(things)s")}
logger = logging.getLogger(__name__)
STAFF_TEMPLATE = "accounts/403_staff.html"
PLAIN_TEMPLATE = "accounts/403.html"


@dataclass(frozen=True)
class Need:
    """One way to be allowed: what it lets you do, and who may."""

    what: str
    roles: list[str]


def _role_labels(roles: list[str]) -> list[str]:
    return [str(ROLE_LABELS.get(role, role)) for role in roles] + [gettext("superusers")]


def _permission_label(perm: str) -> str:
    app_label, codename = perm.split(".", 1)
    verb, _sep, model_name = codename.partition("_")
    if verb in VERBS:
        try:
            model = apps.get_model(app_label, model_name)
        except LookupError:
            model = None
        if model is not None:
            return str(VERBS[verb]) % {"things": model._meta.verbose_name_plural}
    from django.contrib.auth.models import Permission

    stored = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
    return gettext(stored.name) if stored else perm


def needs_for(path: str) -> list[Need]:
    """What opening ``path`` needs, one ``Need`` per action or permission that would suffice."""
    try:
        name = resolve(path).view_name
    except Resolver404:
        return []
    rule = rule_for(name)
    if rule is None:
        return []
    if rule.kind == "action":
        return [Need(gettext(ACTIONS[action].description), _role_labels(roles_allowed(action)))
                for action in rule.names]
    if rule.kind == "perm":
        return [Need(_permission_label(perm), _role_labels(roles_holding(perm))) for perm in rule.names]
    if rule.kind == "superuser":
        return [Need(gettext("this page"), [gettext("superusers")])]
    return []


def permission_denied(request: HttpRequest, exception=None):
    """``handler403``: the friendly 403, inside the staff layout for staff."""
    reason = str(exception) if exception is not None and str(exception) else ""
    user = getattr(request, "user", None)
    context = {
        "title": _("You may not do this"),
        "needs": needs_for(request.path_info),
        "reason": reason,
        "role": _role_name(user),
    }
    try:
        if user is not None and user.is_active and user.is_staff:
            context = {**admin.site.each_context(request), **context}
            response = TemplateResponse(request, STAFF_TEMPLATE, context, status=403)
        else:
            from notifications.inbox.selectors import unread_count  # the recipient header's badge

            signed_in = user is not None and user.is_authenticated
            context["unread"] = unread_count(user=user) if signed_in else 0
            response = TemplateResponse(request, PLAIN_TEMPLATE, context, status=403)
        return response.render()
    except Exception:  # a broken page must still say 403, never turn into a 500
        logger.exception("The 403 page could not be rendered for %s", request.path_info)
        return HttpResponseForbidden(gettext("You may not open this page."))


def _role_name(user) -> str:
    role = role_of(user)
    labels = {"superuser": _("superuser"), "staff": _("staff (no role)"), "recipient": _("recipient"),
              "anonymous": _("not signed in")}
    return str(ROLE_LABELS.get(role) or labels.get(role, role))

