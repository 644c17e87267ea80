"""A local fake of Alibaba Cloud SMS (Dysmsapi 2017-05-25 ``SendSms``), for the adapter's tests.

The real SDK signs each request (ACS3-HMAC-SHA256) and posts it to ``/`` with the parameters in
the query string and the action in ``x-acs-action``. The fake checks the access key id in the
``Authorization`` header and answers as Aliyun does: HTTP 200 with ``Code`` ``OK`` and a
``BizId``, or HTTP 200 with a business error code, or an HTTP error. Per number (as the SDK
sends it: ``13800138000`` for +86, country code and number otherwise)::

    server.invalid_numbers.add("13800138001")   # isv.MOBILE_NUMBER_ILLEGAL
    server.throttled_numbers.add("13800138002") # isv.BUSINESS_LIMIT_CONTROL
    server.approved_templates = {"SMS_1"}       # any other code: isv.SMS_TEMPLATE_ILLEGAL

and ``unavailable``/``slow``/``dropped`` from ``FakeProviderServer``.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from tests.fake_provider import FakeProviderServer


@dataclass(frozen=True)
class AliyunRequest:
    phone: str
    sign_name: str
    template_code: str
    params: dict
    out_id: str
    outcome: str  # "accepted", "invalid", "template", "throttled", "unavailable", "slow", "dropped"
    biz_id: str
    peer: tuple


class FakeAliyunServer(FakeProviderServer):
    name = "fake-aliyun"

    def __init__(self, access_key_id: str, access_key_secret: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.access_key_id = access_key_id
        self.access_key_secret = access_key_secret
        self.invalid_numbers: set[str] = set()
        self.throttled_numbers: set[str] = set()
        self.approved_templates: set[str] | None = None  # None: every code is approved
        self.requests: list[AliyunRequest] = []

    @property
    def messages(self) -> list[AliyunRequest]:
        return [r for r in self.requests if r.outcome == "accepted"]

    def handle_request(self, handler, raw: bytes):
        request_id = secrets.token_hex(8).upper()
        if handler.headers.get("x-acs-action") != "SendSms":
            return 404, {"Code": "InvalidAction.NotFound", "Message": "Specified api is not found", "RequestId": request_id}
        if f"Credential={self.access_key_id}," not in handler.headers.get("Authorization", ""):
            return 404, {"Code": "InvalidAccessKeyId.NotFound", "Message": "Specified access key is not found.",
                         "RequestId": request_id}
        query = {key: values[-1] for key, values in parse_qs(urlsplit(handler.path).query).items()}
        phone = query.get("PhoneNumbers", "")
        template = query.get("TemplateCode", "")
        outcome = self.outcome_for(phone)
        if not outcome:
            if phone in self.invalid_numbers:
                outcome = "invalid"
            elif self.approved_templates is not None and template not in self.approved_templates:
                outcome = "template"
            elif phone in self.throttled_numbers:
                outcome = "throttled"
            else:
                outcome = "accepted"
        biz_id = f"{secrets.randbelow(10**15):015d}^0" if outcome in ("accepted", "slow", "dropped") else ""
        with self.lock:
            self.requests.append(AliyunRequest(
                phone=phone, sign_name=query.get("SignName", ""), template_code=template,
                params=json.loads(query.get("TemplateParam") or "{}"), out_id=query.get("OutId", ""),
                outcome=outcome, biz_id=biz_id, peer=handler.client_address,
            ))
        if outcome == "unavailable":
            return 503, {"Code": "ServiceUnavailable", "Message": "The request has failed due to a temporary failure of the server.",
                         "RequestId": request_id}
        if self.misbehave(handler, outcome):
            return None
        errors = {
            "invalid": ("isv.MOBILE_NUMBER_ILLEGAL", "非法手机号"),
            "template": ("isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板"),
            "throttled": ("isv.BUSINESS_LIMIT_CONTROL", "触发号码天级流控Permits:10"),
        }
        if outcome in errors:
            code, message = errors[outcome]
            return 200, {"Code": code, "Message": message, "RequestId": request_id}
        return 200, {"Code": "OK", "Message": "OK", "BizId": biz_id, "RequestId": request_id}
