"""Lockout after repeated failed sign-ins, on top of django-axes.

django-axes counts failures per account *and* per client address (``AXES_LOCKOUT_PARAMETERS``)
on every login form that authenticates through ``django.contrib.auth`` (``/accounts/login/`` and
``/admin/login/``). A locked-out account or address is refused even with the right password
until the cool-off has passed since its last counted failure, or a superuser clears the attempts
(admin → Recipients → Sign-in lockouts).

This module holds what axes leaves to the project: which address a request comes from behind
proxies, the page a locked-out person sees (with when they may try again), and clearing a
lockout with an audit entry.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from datetime import datetime

from axes.helpers import get_client_parameters, get_client_username, get_failure_limit
from axes.models import AccessAttempt
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from . import conf

# 429 Too Many Requests: the client may retry later, which the page says when.
LOCKOUT_STATUS = 429


def _ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip_address(request: HttpRequest) -> str | None:
    """The address failed sign-ins are counted against (``AXES_CLIENT_IP_CALLABLE``).

    With ``SIGNALBOX_TRUSTED_PROXY_COUNT = N`` (N proxies in front, each appending the address it
    received the request from to ``X-Forwarded-For``) it is the N-th address from the right: the
    one the outermost trusted proxy saw. Anything left of it was written by the client and is
    ignored. With N = 0 (the default), or a header shorter than N (the request did not come
    through the proxies), it is the socket's ``REMOTE_ADDR``.
    """
    count = conf.trusted_proxy_count()
    if count:
        forwarded = [part for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= count and (address := _ip(forwarded[-count])):
            return address
    return _ip(request.META.get("REMOTE_ADDR", "") or "")


def lockout_ends_at(*, username: str | None, ip_address: str | None, request=None, now: datetime) -> datetime | None:
    """When the lockout of this account/address pair ends, or None if it is not locked out.

    Axes counts, per lockout parameter (the account; the address), the failures of attempt rows
    whose last failure is within the cool-off. A parameter stays locked while its newest rows
    still add up to the limit, so it unlocks a cool-off after the row that completes the limit
    (counting from the newest); the pair unlocks when every locked parameter has.
    """
    cooloff = conf.login_cooloff()
    limit = get_failure_limit(request, None)
    ends: list[datetime] = []
    for filters in get_client_parameters(username, ip_address, None, request, None):
        rows = (
            AccessAttempt.objects.filter(**filters, attempt_time__gte=now - cooloff)
            .order_by("-attempt_time")
            .values_list("attempt_time", "failures_since_start")
        )
        counted = 0
        for attempt_time, failures in rows.iterator():
            counted += failures
            if counted >= limit:
                ends.append(attempt_time + cooloff)
                break
    return max(ends) if ends else None


def lockout_response(request: HttpRequest, original_response=None, credentials: dict | None = None) -> HttpResponse:
    """The page a locked-out person sees (``AXES_LOCKOUT_CALLABLE``), in their language.

    ``credentials`` is read from the request: axes' async middleware passes its arguments shifted
    by one (``get_lockout_response(request, credentials)``), so neither argument can be trusted.
    """
    credentials = getattr(request, "axes_credentials", None)
    username = get_client_username(request, credentials)
    now = timezone.now()
    ends_at = lockout_ends_at(
        username=username, ip_address=getattr(request, "axes_ip_address", None), request=request, now=now
    )
    ends_at = ends_at or now + conf.login_cooloff()
    minutes = max(1, -(-int((ends_at - now).total_seconds()) // 60))  # rounded up: never "0 minutes"
    from .views import layout_context

    context = {"ends_at": ends_at, "minutes": minutes, "login_path": request.path, **layout_context(request)}
    return render(request, "registration/locked_out.html", context, status=LOCKOUT_STATUS)


def lockouts_clear(*, attempts: Iterable[AccessAttempt], actor) -> int:
    """Forget the failed sign-ins of ``attempts`` (unlocking their accounts and addresses); audited.

    Returns how many attempt rows were removed.
    """
    from notifications.services import audit_record

    rows = list(attempts)
    with transaction.atomic():
        for attempt in rows:
            audit_record(
                actor=actor, action="account.lockout_cleared",
                changes={"username": attempt.username or "", "ip_address": attempt.ip_address or "",
                         "failures": attempt.failures_since_start},
            )
        _total, by_model = AccessAttempt.objects.filter(pk__in=[a.pk for a in rows]).delete()
    return by_model.get(AccessAttempt._meta.label, 0)
