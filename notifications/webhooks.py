"""Inbound provider webhooks: verify, parse into normalised events, then act (anymail's shape).

Twilio signs each request with ``X-Twilio-Signature``: an HMAC of the *public* URL it called
(``SITE_URL`` + path, which is what Twilio saw, not what a proxy forwarded) and the POST
parameters, keyed with the auth token. Unsigned or mis-signed requests get 403 and change
nothing. Status callbacks are deduplicated by (MessageSid, MessageStatus), so a replay changes
nothing either.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator

from . import conf, tracking
from .models import Delivery, Suppression
from .querysets import normalise_address

logger = logging.getLogger(__name__)

# Twilio MessageStatus -> receipt kind. "queued"/"sending"/"accepted" say nothing new.
TWILIO_STATUS_KINDS = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed",
                       "undelivered": "failed"}
STOP_KEYWORDS = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "退订", "td"})


def _twilio_signature_ok(request: HttpRequest) -> bool:
    token = settings.TWILIO_AUTH_TOKEN
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature:
        return False
    url = f"{conf.site_url()}{request.get_full_path()}"
    return RequestValidator(token).validate(url, request.POST.dict(), signature)


def _twiml(message: str = "") -> HttpResponse:
    body = f"<Message>{escape(message)}</Message>" if message else ""
    return HttpResponse(f'<?xml version="1.0" encoding="UTF-8"?><Response>{body}</Response>',
                        content_type="text/xml")


@csrf_exempt  # Twilio cannot send our CSRF token; the request signature authenticates it.
@require_POST
def twilio_status(request: HttpRequest) -> HttpResponse:
    if not _twilio_signature_ok(request):
        return HttpResponseForbidden("Invalid Twilio signature.")
    sid = request.POST.get("MessageSid", "")
    status = request.POST.get("MessageStatus", "")
    kind = TWILIO_STATUS_KINDS.get(status)
    delivery = Delivery.objects.filter(channel="sms", provider_message_id=sid).first() if sid else None
    if kind is None or delivery is None:
        # Unknown message or an intermediate status: acknowledged so Twilio stops retrying.
        return HttpResponse(status=204)
    data = {"twilio_status": status}
    if error_code := request.POST.get("ErrorCode"):
        data["error_code"] = error_code
    tracking.receipt_record(delivery=delivery, kind=kind, source="twilio", provider_event_id=f"{sid}:{status}", data=data)
    return HttpResponse(status=204)


@csrf_exempt  # As above: authenticated by the signature.
@require_POST
def twilio_inbound(request: HttpRequest) -> HttpResponse:
    """Inbound SMS: STOP / UNSUBSCRIBE / 退订 suppress the number and confirm once."""
    if not _twilio_signature_ok(request):
        return HttpResponseForbidden("Invalid Twilio signature.")
    keyword = request.POST.get("Body", "").strip().lower()
    number = normalise_address("sms", request.POST.get("From", ""))
    if keyword not in STOP_KEYWORDS or not number:
        return _twiml()
    created = tracking.address_suppress(
        channel="sms", address=number, reason=Suppression.Reason.STOP, note="inbound SMS keyword"
    )
    if not created:
        return _twiml()  # one confirmation only
    return _twiml(_("You are unsubscribed and will receive no more messages. Reply START to resubscribe."))
