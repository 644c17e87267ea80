"""Inbound provider webhooks: verify, parse into normalised events, then act (anymail's shape).

Twilio signs each request with ``X-Twilio-Signature``: an HMAC of the *public* URL it called
(``SITE_URL`` + path, which is what Twilio saw, not what a proxy forwarded) and the POST
parameters, keyed with the auth token. Unsigned or mis-signed requests get 403 and change
nothing. Status callbacks are deduplicated by (MessageSid, MessageStatus), so a replay changes
nothing either. Numbers are compared in E.164 (``querysets.normalise_address``).
"""

from __future__ import annotations

import contextlib
import logging

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseForbidden
from django.utils import translation
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST
from twilio.request_validator import RequestValidator

from .. import conf
from ..models import Delivery, Suppression
from ..querysets import normalise_address
from . import tracking

logger = logging.getLogger(__name__)

# Twilio MessageStatus -> receipt kind. "queued"/"sending"/"accepted" say nothing new.
TWILIO_STATUS_KINDS = {"sent": "sent", "delivered": "delivered", "read": "read", "failed": "failed",
                       "undelivered": "failed"}
STOP_KEYWORDS = frozenset({"stop", "stopall", "unsubscribe", "cancel", "end", "quit", "退订", "td"})
START_KEYWORDS = frozenset({"start", "unstop", "开始"})
CHINESE_KEYWORDS = frozenset({"退订", "td", "开始"})


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
    """Inbound SMS: STOP / 退订 suppress the number, START / 开始 lift that; each confirms once.

    START lifts only a suppression the number made itself (reason STOP): one an Operator made,
    or a bounce, stays. The lift is audited as the system's doing; the STOP suppression carries
    its note. A repeated keyword changes nothing and is not answered.
    """
    if not _twilio_signature_ok(request):
        return HttpResponseForbidden("Invalid Twilio signature.")
    keyword = request.POST.get("Body", "").strip().lower()
    number = normalise_address("sms", request.POST.get("From", ""))
    if not number or keyword not in STOP_KEYWORDS | START_KEYWORDS:
        return _twiml()
    # A Chinese keyword is answered in Chinese; others in the site's language.
    with translation.override("zh-hans") if keyword in CHINESE_KEYWORDS else contextlib.nullcontext():
        if keyword in STOP_KEYWORDS:
            if not tracking.address_suppress(
                channel="sms", address=number, reason=Suppression.Reason.STOP, note="inbound SMS keyword"
            ):
                return _twiml()  # one confirmation only
            return _twiml(_("You are unsubscribed and will receive no more messages. Reply START to resubscribe."))
        if not tracking.address_unsuppress(
            channel="sms", address=number, reasons=[Suppression.Reason.STOP], via=f"inbound SMS {keyword.upper()}"
        ):
            return _twiml()  # not stopped (or stopped by staff): nothing to confirm
        return _twiml(_("You are subscribed again and will receive messages. Reply STOP to unsubscribe."))
