"""The WeChat Official Account's server URL (服务器配置, plaintext mode): receipts and follows.

WeChat signs every call with ``signature = sha1(sorted([WECHAT_TOKEN, timestamp, nonce]))`` in
the query string; a wrong or missing signature (or no ``WECHAT_TOKEN`` configured) is a 404, as
for the SMS report URLs' tokens, and changes nothing. GET is WeChat's URL check (the ``echostr`` is echoed back). POST carries XML:

- ``TEMPLATESENDJOBFINISH`` (a template message's outcome): ``success`` is a ``delivered``
  receipt, ``failed:user block`` and ``failed: system failed`` ``failed`` ones; the user who
  blocked the account's template messages is also suppressed. Matched by ``MsgID`` among
  deliveries on the aliases using ``channels_adapters.wechat.WeChatChannel``, deduplicated by
  (msgid, outcome).
- ``subscribe_msg_sent_event`` (a subscribe message's outcome, one ``List`` item per message):
  ``ErrorCode`` 0 is a ``delivered`` receipt, any other a ``failed`` one; matched by ``MsgID``
  and deduplicated as above.
- ``subscribe_msg_popup_event`` / ``subscribe_msg_change_event`` (the user answered the pop-up, or
  changed the setting, per template): acknowledged only. Consent to a subscribe template is
  WeChat's to keep: a message without it fails with 43101, that delivery alone, and suppresses
  nothing (``channels_adapters.wechat``).
- ``unsubscribe`` (unfollowed): the openid is suppressed on those aliases (reason "unsubscribed");
  ``subscribe`` (followed again) lifts only such a suppression (one staff made stays).

Everything else is acknowledged with ``success`` so WeChat does not retry. Encrypted mode
(安全模式) is not supported: configure the Official Account in plaintext mode (明文模式).
"""

from __future__ import annotations

from xml.parsers.expat import ExpatError

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from wechatpy import parse_message
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.utils import check_signature

from ..models import Delivery, Suppression
from . import tracking

Kind = tracking.Kind
BLOCKED = "failed:user block"


def _signed(request: HttpRequest) -> bool:
    token = getattr(settings, "WECHAT_TOKEN", "")
    if not token:
        return False
    try:
        check_signature(token, request.GET.get("signature", ""), request.GET.get("timestamp", ""),
                        request.GET.get("nonce", ""))
    except InvalidSignatureException:
        return False
    return True


def _wechat_aliases() -> list[str]:
    from channels_adapters.handler import channels
    from channels_adapters.wechat import WeChatChannel

    return channels.aliases_with_backend(WeChatChannel)


def _template_finished(event) -> None:
    aliases = _wechat_aliases()
    status = str(event.status or "")
    kind = Kind.DELIVERED if status == "success" else Kind.FAILED
    delivery = Delivery.objects.filter(channel__in=aliases, provider_message_id=str(event.id)).first()
    if delivery is not None:
        tracking.receipt_record(delivery=delivery, kind=kind, source="wechat",
                                provider_event_id=f"{event.id}:{kind}", data={"wechat_status": status[:100]})
    if status == BLOCKED:
        for alias in aliases:
            tracking.address_suppress(channel=alias, address=event.source, reason=Suppression.Reason.UNSUBSCRIBE,
                                      note="WeChat: the recipient blocked the account's template messages")


def _subscribe_items(data: dict, container: str) -> list[dict]:
    """The ``<List>`` items of a subscribe event (xmltodict gives one item as a dict, several as a list)."""
    block = data.get(container)
    items = block.get("List") if isinstance(block, dict) else None
    if isinstance(items, dict):
        items = [items]
    return [item for item in items or [] if isinstance(item, dict)]


def _subscribe_sent(data: dict) -> None:
    aliases = _wechat_aliases()
    for item in _subscribe_items(data, "SubscribeMsgSentEvent"):
        msgid = str(item.get("MsgID") or "").strip()
        if not msgid:
            continue
        code = str(item.get("ErrorCode") or "").strip()
        kind = Kind.DELIVERED if code == "0" else Kind.FAILED
        delivery = Delivery.objects.filter(channel__in=aliases, provider_message_id=msgid).first()
        if delivery is not None:
            tracking.receipt_record(
                delivery=delivery, kind=kind, source="wechat", provider_event_id=f"{msgid}:{kind}",
                data={"wechat_status": str(item.get("ErrorStatus") or "")[:100], "wechat_error": code[:20]},
            )


@csrf_exempt  # WeChat cannot send our CSRF token; the signature authenticates the call.
@require_http_methods(["GET", "POST"])
def wechat_events(request: HttpRequest) -> HttpResponse:
    if not _signed(request):
        raise Http404
    if request.method == "GET":
        return HttpResponse(request.GET.get("echostr", ""), content_type="text/plain")
    try:
        event = parse_message(request.body)
    except (ExpatError, KeyError, TypeError, ValueError, AttributeError):
        return HttpResponseBadRequest("Expected a WeChat XML message.")
    data = getattr(event, "_data", None) or {}
    # wechatpy has no classes for the subscribe message events: they are read from its parsed dict.
    kind = getattr(event, "event", "") or str(data.get("Event") or "").lower()
    source = str(getattr(event, "source", "") or "")
    if kind == "templatesendjobfinish":
        _template_finished(event)
    elif kind == "subscribe_msg_sent_event":
        _subscribe_sent(data)
    elif kind == "unsubscribe" and source:
        for alias in _wechat_aliases():
            tracking.address_suppress(channel=alias, address=source, reason=Suppression.Reason.UNSUBSCRIBE,
                                      note="WeChat: unfollowed the Official Account")
    elif kind == "subscribe" and source:
        for alias in _wechat_aliases():
            tracking.address_unsuppress(channel=alias, address=source, reasons=[Suppression.Reason.UNSUBSCRIBE],
                                        via="WeChat follow event")
    return HttpResponse("success", content_type="text/plain")
