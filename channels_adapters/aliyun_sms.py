"""SMS through Alibaba Cloud SMS (Dysmsapi ``SendSms``), with the official
``alibabacloud-dysmsapi20170525`` SDK.

Chosen per alias, beside Twilio: ``"sms"`` may use ``channels_adapters.sms.SmsChannel`` and
another SMS alias this one (see README "Aliyun and Tencent Cloud SMS" for what a second SMS
alias needs). Every message is an approved template with a signature name, mapped in OPTIONS
(``channels_adapters.provider_templates``).

OPTIONS (credentials default to settings; missing ones are a ``ChannelConfigurationError``):

- ``access_key_id``, ``access_key_secret``: default ``settings.ALIYUN_ACCESS_KEY_ID``,
  ``ALIYUN_ACCESS_KEY_SECRET``.
- ``sign_name`` (default ``settings.ALIYUN_SMS_SIGN_NAME``), ``templates``, ``default_template``:
  see ``provider_templates``.
- ``endpoint``: default ``dysmsapi.aliyuncs.com``. ``base_url`` (``http://127.0.0.1:8123``)
  sends every request there over plain HTTP: for the local fake in tests.
- ``timeout``: seconds to connect and to wait for the reply; default 10.

Delivery reports come back through Aliyun's HTTP batch push (SmsReport) to
``/webhooks/aliyun/sms-report/<ALIYUN_SMS_CALLBACK_TOKEN>/`` (``notifications.receipts.sms_reports``).

Each message is one ``SendSms`` request for one number, over ``concurrency`` lanes (default 16)
that share the SDK's kept-alive connection pool (sized to the lanes). The SDK's own retries are
off: the pipeline retries. Aliyun takes no idempotency key, so what each failure means:

- ``Code`` ``OK`` with a ``BizId``: accepted; the BizId is the provider id the report names.
- A business error in the reply (HTTP 200, ``Code`` ``isv.*``): permanent (invalid number
  ``isv.MOBILE_NUMBER_ILLEGAL``, template not approved ``isv.SMS_TEMPLATE_ILLEGAL``, ...),
  except ``TRANSIENT_CODES`` (per-number rate limits, balance, platform errors) and ``isp.*``.
- HTTP 4xx with ``Throttling*`` or credential codes, HTTP 5xx: transient.
- No connection: transient (``aliyun_connect``). A read timeout or a dropped connection after
  the request left: ``UnknownOutcomeError``; never re-sent automatically.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
import requests
from alibabacloud_dysmsapi20170525 import models as sms_models
from alibabacloud_dysmsapi20170525.client import Client
from alibabacloud_tea_openapi import utils_models as open_api_models
from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException
from darabonba.core import DaraCore
from darabonba.exceptions import DaraException, RetryError, UnretryableException
from darabonba.runtime import RuntimeOptions
from django.conf import settings

from .base import BaseChannel, OutboundMessage
from .errors import (
    ChannelError,
    PermanentChannelError,
    TransientChannelError,
    UnknownOutcomeError,
)
from .features import SMS
from .http import request_failure, wrapped_request_error
from .phones import e164_address
from .provider_templates import TemplateMap

# Codes in a reply that mean "not now" rather than "never".
TRANSIENT_CODES = frozenset({
    "isv.BUSINESS_LIMIT_CONTROL",  # per-number minute/hour/day limits
    "isv.DAY_LIMIT_CONTROL",
    "isv.AMOUNT_NOT_ENOUGH",  # the account needs topping up
    "isv.OUT_OF_SERVICE",  # the account is suspended (arrears)
    "isv.ACCOUNT_ABNORMAL",
    "isv.RAM_PERMISSION_DENY",
    "SignatureDoesNotMatch",
    "InvalidAccessKeyId.NotFound",
    "InvalidAccessKeyId.Inactive",
    "Forbidden.RAM",
    "ServiceUnavailable",
    "InternalError",
})
# Seconds before a per-number limit may pass again (Aliyun's smallest window is a minute).
LIMIT_RETRY_AFTER = {"isv.BUSINESS_LIMIT_CONTROL": 60.0}


def aliyun_phone(e164: str) -> str:
    """Aliyun's number form: mainland numbers without ``+86``, others as country code + number."""
    number = phonenumbers.parse(e164, None)
    if number.country_code == 86:
        return str(number.national_number)
    return e164.lstrip("+")


def code_error(code: str, message: str, *, status: int = 200, retry_after: float | None = None) -> ChannelError:
    """Translate Aliyun's error code: the message was not accepted."""
    text = f"Aliyun SMS {code}" + (f" (HTTP {status})" if status != 200 else "") + (f": {message}" if message else "")
    reason = f"aliyun:{code}"[:64]
    if (code in TRANSIENT_CODES or code.startswith(("isp.", "Throttling")) or status == 429 or status >= 500):
        return TransientChannelError(text, reason=reason, retry_after=retry_after or LIMIT_RETRY_AFTER.get(code))
    return PermanentChannelError(text, reason=reason)


def network_error(error: BaseException) -> ChannelError:
    # The SDK wraps the ``requests`` failure twice (``UnretryableException.inner_exception``, a
    # ``RetryError`` raised while handling it): look through both to the original.
    return request_failure(wrapped_request_error(error), provider="Aliyun", reason="aliyun",
                           consequence="the SMS may have been accepted", shown=error)


class AliyunSmsChannel(BaseChannel):
    max_batch_size = 100
    max_per_second = 50.0
    features = SMS

    def __init__(
        self,
        alias: str,
        *,
        access_key_id: str | None = None,
        access_key_secret: str | None = None,
        sign_name: str | None = None,
        templates: dict | None = None,
        default_template: dict | None = None,
        endpoint: str = "dysmsapi.aliyuncs.com",
        base_url: str | None = None,
        timeout: float = 10,
        **options: Any,
    ) -> None:
        super().__init__(alias, **options)
        self.refuse_unknown_options()
        owner = f"{type(self).__name__} {alias!r}"
        self.access_key_id, self.access_key_secret = self.required_options(
            access_key_id=(access_key_id, "ALIYUN_ACCESS_KEY_ID"),
            access_key_secret=(access_key_secret, "ALIYUN_ACCESS_KEY_SECRET"),
        )
        self.templates = TemplateMap(owner, sign_name=sign_name or getattr(settings, "ALIYUN_SMS_SIGN_NAME", ""),
                                     templates=templates, default_template=default_template)
        self.timeout = self.positive_timeout(timeout)
        self.protocol, self.endpoint = "https", endpoint
        if base_url:
            parts = urlsplit(base_url)
            self.protocol, self.endpoint = parts.scheme or "http", parts.netloc
        self._client: Client | None = None

    def client(self) -> Client:
        # One client per adapter: it holds only configuration; connections live in the SDK's
        # process-wide pool, one per host, sized by ``max_idle_conns`` below.
        if self._client is None:
            self._client = Client(open_api_models.Config(
                access_key_id=self.access_key_id, access_key_secret=self.access_key_secret,
                endpoint=self.endpoint, protocol=self.protocol,
            ))
        return self._client

    @property
    def _pool_size(self) -> int:
        return max(self.features.concurrency, 1)

    def runtime(self) -> RuntimeOptions:
        milliseconds = int(self.timeout * 1000)
        return RuntimeOptions(autoretry=False, max_attempts=0, connect_timeout=milliseconds,
                              read_timeout=milliseconds, max_idle_conns=self._pool_size)

    def normalise_address(self, address: str) -> str:
        return e164_address(address)

    def build_payload(self, message: OutboundMessage) -> sms_models.SendSmsRequest:
        filled = self.templates.fill(message)
        return sms_models.SendSmsRequest(
            phone_numbers=aliyun_phone(message.address),
            sign_name=filled.sign_name,
            template_code=filled.template_code,
            template_param=json.dumps(dict(filled.values), ensure_ascii=False) if filled.values else None,
            # Echoed in the delivery report: ties a report to its delivery even without the BizId.
            out_id=str(message.delivery_id),
        )

    def open(self) -> None:
        # The SDK keeps one requests session per (host, pool size) for the whole process, but
        # creates it on first use without a lock: lanes starting at once would each make one and
        # all but one would be dropped with their connections. Creating it here, before the lanes
        # start, gives every lane the same pool of at most ``concurrency`` kept-alive connections.
        DaraCore._get_session(
            session_key=f"{self.protocol}://{self.endpoint}:80:pool={self._pool_size}",
            protocol=self.protocol, verify=True, pool_size=self._pool_size,
        )

    def open_lane(self) -> Client:
        return self.client()

    def send_payload(self, payload: sms_models.SendSmsRequest, message: OutboundMessage, lane: Client) -> str:
        try:
            response = lane.send_sms_with_options(payload, self.runtime())
        except ThrottlingException as error:
            raise code_error(error.code or "Throttling", error.message or "", status=error.status_code or 400,
                             retry_after=(error.retry_after or 0) / 1000 or None) from error
        except (ClientException, ServerException) as error:
            raise code_error(error.code or "", error.message or "", status=error.status_code or 500) from error
        except (RetryError, UnretryableException, requests.exceptions.RequestException) as error:
            raise network_error(error) from error
        except (DaraException, ValueError, KeyError) as error:
            # A success status with a body the SDK could not read: maybe accepted, id unknown.
            raise UnknownOutcomeError(f"Unreadable reply from Aliyun: {error!r}", reason="aliyun_bad_reply") from error
        body = response.body
        code = getattr(body, "code", None) or ""
        if code != "OK":
            raise code_error(code or "unknown", getattr(body, "message", "") or "")
        if not body.biz_id:
            raise UnknownOutcomeError("Aliyun accepted the SMS without a BizId.", reason="aliyun_bad_reply")
        return body.biz_id
