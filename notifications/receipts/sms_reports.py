"""Delivery reports of the Chinese SMS providers: Aliyun's SmsReport HTTP push and Tencent
Cloud's status callback (回执推送). Validate, parse into normalised events, then act.

Neither provider signs these pushes, so each URL carries a secret token of its own
(``ALIYUN_SMS_CALLBACK_TOKEN``, ``TENCENT_SMS_CALLBACK_TOKEN``), compared in constant time: a
wrong token, or none configured, is a 404 and changes nothing. Both post a JSON array of
reports; a body that is not one is a 400. Reports are matched to deliveries on the aliases
whose backend is that provider's adapter, by the provider id the send returned (Aliyun's
``biz_id``, Tencent's ``sid``), and deduplicated by (provider id, outcome): a replayed push
records nothing twice. Reports for messages Signalbox does not know are acknowledged, so the
provider stops pushing them.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ..models import Delivery
from . import tracking

Kind = tracking.Kind
MAX_REPORTS = 1000  # per push; Aliyun sends at most a few hundred at once


def _token_ok(setting: str, token: str) -> bool:
    expected = getattr(settings, setting, "")
    return bool(expected) and constant_time_compare(expected, token)


def _reports(request: HttpRequest) -> list[dict] | None:
    try:
        reports = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(reports, dict):
        reports = [reports]
    if not isinstance(reports, list) or len(reports) > MAX_REPORTS or not all(isinstance(r, dict) for r in reports):
        return None
    return reports


def _record(*, reports: list[dict], backend: str, source: str,
            parse: Callable[[dict], tuple[str, str, dict] | None]) -> int:
    """Record each report as a receipt of its delivery (one query finds them all); returns how
    many were new."""
    from django.utils.module_loading import import_string

    from channels_adapters.handler import channels

    parsed = [p for p in map(parse, reports) if p is not None]
    aliases = channels.aliases_with_backend(import_string(backend))
    ids = {provider_id for provider_id, _kind, _data in parsed}
    deliveries = {
        d.provider_message_id: d
        for d in Delivery.objects.filter(channel__in=aliases, provider_message_id__in=ids)
    } if aliases and ids else {}
    recorded = 0
    for provider_id, kind, data in parsed:
        delivery = deliveries.get(provider_id)
        if delivery is None:
            continue
        recorded += tracking.receipt_record(
            delivery=delivery, kind=kind, source=source, provider_event_id=f"{provider_id}:{kind}", data=data,
        )
    return recorded


def _aliyun_report(report: dict) -> tuple[str, str, dict] | None:
    biz_id = str(report.get("biz_id") or "")
    if not biz_id or "success" not in report:
        return None
    success = report["success"] in (True, "true", "True", 1)
    data = {"err_code": str(report.get("err_code") or "")[:100], "err_msg": str(report.get("err_msg") or "")[:300]}
    return biz_id, Kind.DELIVERED if success else Kind.FAILED, data


def _tencent_report(report: dict) -> tuple[str, str, dict] | None:
    sid = str(report.get("sid") or "")
    status = str(report.get("report_status") or "").upper()
    if not sid or status not in ("SUCCESS", "FAIL"):
        return None
    data = {"errmsg": str(report.get("errmsg") or "")[:100], "description": str(report.get("description") or "")[:300]}
    return sid, Kind.DELIVERED if status == "SUCCESS" else Kind.FAILED, data


@csrf_exempt  # Aliyun cannot send our CSRF token; the secret token in the URL authenticates it.
@require_POST
def aliyun_sms_report(request: HttpRequest, token: str) -> HttpResponse:
    if not _token_ok("ALIYUN_SMS_CALLBACK_TOKEN", token):
        raise Http404
    reports = _reports(request)
    if reports is None:
        return HttpResponseBadRequest("Expected a JSON array of SMS reports.")
    _record(reports=reports, backend="channels_adapters.aliyun_sms.AliyunSmsChannel", source="aliyun",
            parse=_aliyun_report)
    # The answer Aliyun's push expects; anything else makes it push the batch again.
    return JsonResponse({"code": 0, "msg": "成功"}, json_dumps_params={"ensure_ascii": False})


@csrf_exempt  # As above.
@require_POST
def tencent_sms_status(request: HttpRequest, token: str) -> HttpResponse:
    if not _token_ok("TENCENT_SMS_CALLBACK_TOKEN", token):
        raise Http404
    reports = _reports(request)
    if reports is None:
        return HttpResponseBadRequest("Expected a JSON array of SMS status reports.")
    _record(reports=reports, backend="channels_adapters.tencent_sms.TencentSmsChannel", source="tencent",
            parse=_tencent_report)
    return JsonResponse({"result": 0, "errmsg": "OK"})
