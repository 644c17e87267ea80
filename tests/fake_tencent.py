"""A local fake of Tencent Cloud SMS (API 2021-01-11 ``SendSms``), for the adapter's tests.

The real SDK signs each request (TC3-HMAC-SHA256) and posts JSON to ``/`` with the action in
``X-TC-Action``. The fake checks the SecretId in the ``Authorization`` header and answers as
Tencent does: HTTP 200 with ``{"Response": {"SendStatusSet": [...], "RequestId": ...}}`` (a
per-number ``Code``), or HTTP 200 with ``{"Response": {"Error": {...}}}`` for the whole request.
Per number (E.164, as the SDK sends it)::

    server.invalid_numbers.add("+8613800138001")   # per number InvalidParameterValue.IncorrectPhoneNumber
    server.throttled_numbers.add("+8613800138002") # per number LimitExceeded.PhoneNumberThirtySecondLimit
    server.approved_templates = {"1110"}           # any other id: FailedOperation.TemplateIncorrectOrUnapproved

and ``unavailable``/``slow``/``dropped`` from ``FakeProviderServer`` (503 is a gateway error).
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass

from tests.fake_provider import FakeProviderServer


@dataclass(frozen=True)
class TencentRequest:
    phone: str
    app_id: str
    sign_name: str
    template_id: str
    params: list
    session_context: str
    outcome: str  # "accepted", "invalid", "template", "throttled", "unavailable", "slow", "dropped"
    serial_no: str
    peer: tuple


class FakeTencentServer(FakeProviderServer):
    name = "fake-tencent"

    def __init__(self, secret_id: str, secret_key: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.invalid_numbers: set[str] = set()
        self.throttled_numbers: set[str] = set()
        self.approved_templates: set[str] | None = None
        self.requests: list[TencentRequest] = []

    @property
    def messages(self) -> list[TencentRequest]:
        return [r for r in self.requests if r.outcome == "accepted"]

    def handle_request(self, handler, raw: bytes):
        request_id = str(uuid.uuid4())

        def error(code: str, message: str):
            return 200, {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": request_id}}

        if handler.headers.get("X-TC-Action") != "SendSms":
            return error("InvalidAction", "The action does not exist.")
        if f"Credential={self.secret_id}/" not in handler.headers.get("Authorization", ""):
            return error("AuthFailure.SecretIdNotFound", "The SecretId is not found.")
        body = json.loads(raw or b"{}")
        [phone] = body.get("PhoneNumberSet") or [""]
        template = str(body.get("TemplateId", ""))
        outcome = self.outcome_for(phone)
        if not outcome:
            if self.approved_templates is not None and template not in self.approved_templates:
                outcome = "template"
            elif phone in self.invalid_numbers:
                outcome = "invalid"
            elif phone in self.throttled_numbers:
                outcome = "throttled"
            else:
                outcome = "accepted"
        serial = f"{secrets.randbelow(9000) + 1000}:{secrets.randbelow(10**28):028d}" if outcome in (
            "accepted", "slow", "dropped") else ""
        with self.lock:
            self.requests.append(TencentRequest(
                phone=phone, app_id=str(body.get("SmsSdkAppId", "")), sign_name=body.get("SignName", ""),
                template_id=template, params=list(body.get("TemplateParamSet") or []),
                session_context=body.get("SessionContext", ""), outcome=outcome, serial_no=serial,
                peer=handler.client_address,
            ))
        if outcome == "unavailable":
            return 503, {"message": "Service Unavailable"}, "text/html"
        if self.misbehave(handler, outcome):
            return None
        if outcome == "template":
            return error("FailedOperation.TemplateIncorrectOrUnapproved", "template is not approved or not exist")
        codes = {
            "invalid": ("InvalidParameterValue.IncorrectPhoneNumber", "incorrect phone number"),
            "throttled": ("LimitExceeded.PhoneNumberThirtySecondLimit", "the number of sms messages sent from a single mobile number within 30 seconds exceeds the upper limit"),
            "accepted": ("Ok", "send success"),
        }
        code, message = codes[outcome]
        return 200, {"Response": {"SendStatusSet": [{
            "SerialNo": serial, "PhoneNumber": phone, "Fee": 1 if code == "Ok" else 0,
            "SessionContext": body.get("SessionContext", ""), "Code": code, "Message": message,
            "IsoCode": "CN" if phone.startswith("+86") else "",
        }], "RequestId": request_id}}
