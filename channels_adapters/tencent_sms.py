"""SMS through Tencent Cloud SMS (``SendSms``, API 2021-01-11), with the official
``tencentcloud-sdk-python-sms`` SDK.

Chosen per alias, beside Twilio and Aliyun. Every message is an approved template (its numeric
id) with a signature name, mapped in OPTIONS (``channels_adapters.provider_templates``; Tencent's
variables are positional, so ``params`` is a list in template order).

OPTIONS (credentials default to settings; missing ones are a ``ChannelConfigurationError``):

- ``secret_id``, ``secret_key``: default ``settings.TENCENTCLOUD_SECRET_ID``,
  ``TENCENTCLOUD_SECRET_KEY``; ``sms_sdk_app_id``: default ``settings.TENCENT_SMS_SDK_APP_ID``.
- ``sign_name`` (default ``settings.TENCENT_SMS_SIGN_NAME``), ``templates``, ``default_template``.
- ``region``: default ``ap-guangzhou``. ``base_url`` (``http://127.0.0.1:8123``) sends every
  request there over plain HTTP: for the local fake in tests.
- ``timeout``: seconds to connect and to wait for the reply; default 10.

Delivery reports come back through Tencent's status callback (回执推送) to
``/webhooks/tencent/sms-status/<TENCENT_SMS_CALLBACK_TOKEN>/``.

Each message is one ``SendSms`` request for one number, over ``concurrency`` lanes (default 16),
each with its own SDK client and kept-alive session. The SDK retries nothing by default.
Tencent takes no idempotency key. What each failure means:

- per-number ``Code`` ``Ok``: accepted; its ``SerialNo`` is the provider id the report names.
- per-number or request errors: permanent (``InvalidParameterValue.IncorrectPhoneNumber``,
  ``FailedOperation.TemplateIncorrectOrUnapproved``, ...), except ``LimitExceeded.*``,
  ``RequestLimitExceeded``, ``InternalError*``, ``AuthFailure*``, ``UnauthorizedOperation*``,
  ``ResourceUnavailable*`` and an exhausted package (``TRANSIENT_CODES``), which are transient;
  an HTTP status other than 200 (``ServerNetworkError``) is transient too.
- No connection: transient (``tencent_connect``). A read timeout or a dropped connection after
  the request left, or a reply that cannot be read: ``UnknownOutcomeError``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.sms.v20210111 import models as sms_models
from tencentcloud.sms.v20210111.sms_client import SmsClient

from .base import BaseChannel, OutboundMessage
from .errors import ChannelError, PermanentChannelError, TransientChannelError, UnknownOutcomeError
from .features import SMS
from .http import request_failure, wrapped_request_error
from .phones import e164_address
from .provider_templates import TemplateMap

TRANSIENT_PREFIXES = ("LimitExceeded", "RequestLimitExceeded", "InternalError", "AuthFailure", "UnauthorizedOperation",
                      "ResourceUnavailable", "ServerNetworkError")
TRANSIENT_CODES = frozenset({
    "FailedOperation.InsufficientBalanceInSmsPackage",  # the package needs topping up
    "FailedOperation.FailResolvePacket",  # Tencent could not read the request (its side)
})


def code_error(code: str, message: str) -> ChannelError:
    text = f"Tencent Cloud SMS {code}" + (f": {message}" if message else "")
    reason = f"tencent:{code}"[:64]
    if code in TRANSIENT_CODES or code.startswith(TRANSIENT_PREFIXES):
        return TransientChannelError(text, reason=reason, retry_after=30.0 if code.startswith("LimitExceeded") else None)
    return PermanentChannelError(text, reason=reason)


def sdk_error(error: TencentCloudSDKException) -> ChannelError:
    """Translate what the SDK raised: an API error code, or a wrapped failure to get a reply."""
    cause = wrapped_request_error(error)
    if cause is not None:
        return request_failure(cause, provider="Tencent Cloud", reason="tencent",
                               consequence="the SMS may have been accepted")
    code = error.code or ""
    if code == "ServerNetworkError":
        return TransientChannelError(f"Tencent Cloud answered with an HTTP error: {error.message!r}"[:500],
                                     reason="tencent_http_error")
    if code in ("ClientNetworkError", "JSONDecodeError", "KeyError", "TypeError", "ValueError", "AttributeError"):
        return UnknownOutcomeError(f"Unreadable reply from Tencent Cloud: {error}", reason="tencent_bad_reply")
    return code_error(code, error.message or "")


@dataclass
class TencentLane:
    client: SmsClient


class TencentSmsChannel(BaseChannel):
    max_batch_size = 100
    max_per_second = 50.0
    features = SMS

    def __init__(
        self,
        alias: str,
        *,
        secret_id: str | None = None,
        secret_key: str | None = None,
        sms_sdk_app_id: str | None = None,
        sign_name: str | None = None,
        templates: dict | None = None,
        default_template: dict | None = None,
        region: str = "ap-guangzhou",
        base_url: str | None = None,
        timeout: float = 10,
        **options: Any,
    ) -> None:
        super().__init__(alias, **options)
        self.refuse_unknown_options()
        owner = f"{type(self).__name__} {alias!r}"
        self.secret_id, self.secret_key, sms_sdk_app_id = self.required_options(
            secret_id=(secret_id, "TENCENTCLOUD_SECRET_ID"),
            secret_key=(secret_key, "TENCENTCLOUD_SECRET_KEY"),
            sms_sdk_app_id=(sms_sdk_app_id, "TENCENT_SMS_SDK_APP_ID"),
        )
        self.sms_sdk_app_id = str(sms_sdk_app_id)  # a number in settings is still the app id
        self.templates = TemplateMap(owner, sign_name=sign_name or getattr(settings, "TENCENT_SMS_SIGN_NAME", ""),
                                     templates=templates, default_template=default_template)
        self.region = region
        self.timeout = self.positive_timeout(timeout)
        self.protocol, self.endpoint = "https", None
        if base_url:
            parts = urlsplit(base_url)
            self.protocol, self.endpoint = parts.scheme or "http", parts.netloc

    def normalise_address(self, address: str) -> str:
        # E.164, as Twilio and Aliyun: Tencent takes it as it is ("+8613711112222").
        return e164_address(address)

    def build_payload(self, message: OutboundMessage) -> sms_models.SendSmsRequest:
        filled = self.templates.fill(message)
        request = sms_models.SendSmsRequest()
        request.PhoneNumberSet = [message.address]
        request.SmsSdkAppId = self.sms_sdk_app_id
        request.SignName = filled.sign_name
        request.TemplateId = filled.template_code
        request.TemplateParamSet = [value for _name, value in filled.values]
        # Echoed in the status report ("ext"): ties a report to its delivery.
        request.SessionContext = str(message.delivery_id)
        return request

    def open_lane(self) -> TencentLane:
        http_profile = HttpProfile(protocol=self.protocol, endpoint=self.endpoint, reqTimeout=self.timeout,
                                   keepAlive=True)
        client = SmsClient(credential.Credential(self.secret_id, self.secret_key), self.region,
                           ClientProfile(httpProfile=http_profile))
        return TencentLane(client)

    def close_lane(self, lane: TencentLane) -> None:
        lane.client.request.conn._session.close()

    def send_payload(self, payload: sms_models.SendSmsRequest, message: OutboundMessage, lane: TencentLane) -> str:
        try:
            response = lane.client.SendSms(payload)
        except TencentCloudSDKException as error:
            raise sdk_error(error) from error
        except requests.exceptions.RequestException as error:  # reading the body, outside the SDK's wrapper
            wrapped = TencentCloudSDKException("ClientNetworkError", str(error))
            wrapped.__cause__ = error
            raise sdk_error(wrapped) from error
        except (json.JSONDecodeError, KeyError, TypeError, ValueError) as error:
            raise UnknownOutcomeError(f"Unreadable reply from Tencent Cloud: {error!r}",
                                      reason="tencent_bad_reply") from error
        statuses = response.SendStatusSet or []
        status = next((s for s in statuses if s.PhoneNumber == message.address), statuses[0] if statuses else None)
        if status is None:
            raise UnknownOutcomeError("Tencent Cloud replied without a send status.", reason="tencent_bad_reply")
        if status.Code != "Ok":
            raise code_error(status.Code or "unknown", status.Message or "")
        if not status.SerialNo:
            raise UnknownOutcomeError("Tencent Cloud accepted the SMS without a SerialNo.", reason="tencent_bad_reply")
        return status.SerialNo
