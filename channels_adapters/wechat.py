"""WeChat Official Account template messages (模板消息) and subscribe messages (订阅通知) to a
recipient's ``openid``, with wechatpy.

The address is the recipient's openid for this Official Account, kept in
``RecipientProfile.chat_ids["wechat"]`` (``features.address_source = "profile_wechat"``). The
template and its fields are mapped per alias in OPTIONS, as for the Chinese SMS providers
(``channels_adapters.provider_templates``): ``template_code`` is the WeChat template id,
``params`` maps template fields (``first``, ``keyword1``, ``remark``, ...) to context paths, and a
``default_template`` puts the rendered text in one field::

    "OPTIONS": {
        "app_id": "wx...", "app_secret": "...",          # default WECHAT_APP_ID / WECHAT_APP_SECRET
        "templates": {"order-shipped": {"template_code": "tmpl-id", "params": {"keyword1": "order.number"}}},
        "default_template": {"template_code": "tmpl-notice", "text_param": "first"},
    }

The message's link (``url``) becomes the template message's URL.

**Subscribe messages** (订阅通知, ``/cgi-bin/message/subscribe/bizsend``, wechatpy's
``message.send_subscribe_message``): a template with ``"kind": "subscribe"`` goes out as one; its
``template_code`` is the subscribe template id and ``params`` map its fields (``thing1``,
``time2``, ...) the same way. A template of either kind may name a mini program to open
(``"miniprogram": {"appid": "wx...", "pagepath": "pages/order?id=17"}``); a subscribe message may
name the web ``page`` it opens (default: the message's link)::

    "templates": {"order-shipped": {"kind": "subscribe", "template_code": "sub-id",
                                    "params": {"thing1": "order.number"}, "page": "https://..."}}

A subscribe message reaches only someone who accepted that template (in the account's pop-up or
settings; a one-time subscription allows one message): WeChat answers 43101 otherwise (below).

**Access token.** One token per Official Account is valid at a time and fetching a new one
invalidates the old one after a few minutes, so every worker shares it through Django's cache
(``signalbox:wechat:<app id>:access_token``, kept until 5 minutes before it expires). A worker
that finds none takes a lock in the cache (``cache.add``), looks again (another worker may have
just fetched one), fetches, stores, and releases it; workers that find the lock taken wait up to
``token_wait`` seconds for the new token (then: transient ``wechat_token_busy``). Use a cache
shared by all workers (Redis) in production; the local-memory cache shares only within a process.

**Errors.** 40001/40014/42001 (token invalid or expired): the token is refreshed (unless another
worker already did) and the message sent again, once; a second refusal is transient. 43004 (the
user does not follow the account): permanent, and the openid is suppressed on this alias (reason
"unsubscribed", with a note) so it is not tried again until they follow again (the event
callback lifts it). 43101 (the user refused, or never accepted, this subscribe template, or used up
a one-time subscription): permanent for that delivery only, nothing suppressed (``after_send``). 40003 invalid openid, 40037 invalid template, 47003 bad template data and
other 4xxxx codes: permanent. -1 (system busy), 45009/45047 (rate limits), an HTTP error:
transient. No connection: transient. A read timeout or a dropped connection after the request
left: ``UnknownOutcomeError``, never re-sent.

Receipts: the Official Account's server URL (``/webhooks/wechat/events/``, plaintext mode,
signed with ``WECHAT_TOKEN``) receives ``TEMPLATESENDJOBFINISH`` (delivered / failed) and
subscribe/unsubscribe events (``notifications.receipts.wechat``).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

import requests
from django.core.cache import caches
from wechatpy import WeChatClient
from wechatpy.exceptions import WeChatClientException
from wechatpy.session import SessionStorage

from .base import BaseChannel, OutboundMessage, SendResult
from .errors import (
    ChannelConfigurationError,
    ChannelError,
    InvalidAddressError,
    PermanentChannelError,
    TransientChannelError,
    UnknownOutcomeError,
)
from .features import WECHAT
from .http import keepalive_session, request_failure, wrapped_request_error
from .provider_templates import TemplateMap

TOKEN_ERRORS = frozenset({40001, 40014, 42001})
NOT_SUBSCRIBED = 43004
#: The note of the suppression a 43004 answer makes (the follow event lifts it).
NOT_SUBSCRIBED_NOTE = "WeChat 43004: the recipient does not follow the Official Account"
TEMPLATE = "template"
SUBSCRIBE = "subscribe"
TEMPLATE_KEYS = frozenset({"kind", "page", "miniprogram"})
TRANSIENT_ERRORS = frozenset({-1, 45009, 45047, 45011})
TOKEN_MARGIN = 300  # seconds before expiry a cached token is dropped


class DjangoCacheStorage(SessionStorage):
    """wechatpy's session storage on a Django cache, so every worker shares one access token."""

    def __init__(self, cache_alias: str = "default", prefix: str = "signalbox:wechat") -> None:
        self.cache = caches[cache_alias]
        self.prefix = prefix

    def key(self, key: str) -> str:
        return f"{self.prefix}:{key}"

    def get(self, key, default=None):
        return self.cache.get(self.key(key), default)

    def set(self, key, value, ttl=None):
        self.cache.set(self.key(key), value, None if ttl is None else max(int(ttl) - TOKEN_MARGIN, 1))

    def delete(self, key):
        self.cache.delete(self.key(key))

    def add(self, key, value, ttl) -> bool:
        return self.cache.add(self.key(key), value, ttl)


class TokenBusy(Exception):
    """Another worker is fetching the access token and did not finish in time."""


class SharedTokenWeChatClient(WeChatClient):
    """wechatpy's client with the access token shared across workers and fetched under a lock.

    ``base_url`` replaces ``https://api.weixin.qq.com`` (tests); wechatpy's own retry on token
    errors is off (``auto_retry=False``): the adapter retries once itself, after a refresh that
    another worker may already have done.
    """

    def __init__(self, app_id: str, app_secret: str, *, storage: DjangoCacheStorage, base_url: str, timeout: float,
                 token_wait: float) -> None:
        super().__init__(app_id, app_secret, session=storage, timeout=timeout, auto_retry=False)
        self.API_BASE_URL = f"{base_url.rstrip('/')}/cgi-bin/"
        self.token_url = f"{base_url.rstrip('/')}/cgi-bin/token"
        self.token_wait = token_wait
        self._http = keepalive_session()

    @property
    def lock_key(self) -> str:
        return f"{self.access_token_key}:lock"

    @property
    def access_token(self) -> str:
        token = self.session.get(self.access_token_key)
        return token or self.refresh_token(stale=None)

    def refresh_token(self, *, stale: str | None) -> str:
        """A token other than ``stale``: the one another worker just stored, or a new one."""
        deadline = time.monotonic() + self.token_wait
        owner = uuid.uuid4().hex
        while True:
            token = self.session.get(self.access_token_key)
            if token and token != stale:
                return token
            if self.session.add(self.lock_key, owner, ttl=max(int(self.timeout or 10) * 2, 10)):
                try:
                    token = self.session.get(self.access_token_key)
                    if token and token != stale:
                        return token
                    self.fetch_access_token()
                    return self.session.get(self.access_token_key) or ""
                finally:
                    if self.session.get(self.lock_key) == owner:
                        self.session.delete(self.lock_key)
            if time.monotonic() > deadline:
                raise TokenBusy
            time.sleep(0.05)

    def fetch_access_token(self):
        result = self._fetch_access_token(
            url=self.token_url,
            params={"grant_type": "client_credential", "appid": self.appid, "secret": self.secret},
        )
        return result

    def _fetch_access_token(self, url, params):
        # wechatpy's own fetch has no timeout; the same request with ours.
        response = self._http.get(url, params=params, timeout=self.timeout)
        response.raise_for_status()
        result = response.json()
        if result.get("errcode"):
            raise WeChatClientException(result["errcode"], result.get("errmsg", ""), client=self, response=response)
        self.session.set(self.access_token_key, result["access_token"], int(result.get("expires_in", 7200)))
        return result


def _transport_error(error: BaseException) -> ChannelError:
    return request_failure(wrapped_request_error(error), provider="WeChat", reason="wechat",
                           consequence="the message may have been sent", shown=error)


def wechat_error(error: WeChatClientException) -> ChannelError:
    code = error.errcode
    if code is None:  # an HTTP error status: WeChat did not take the request
        status = getattr(error.response, "status_code", "?")
        return TransientChannelError(f"WeChat answered HTTP {status}.", reason=f"wechat_http_{status}")
    text = f"WeChat error {code}: {error.errmsg}"
    if code in TOKEN_ERRORS or code in TRANSIENT_ERRORS:
        return TransientChannelError(text, reason=f"wechat:{code}")
    return PermanentChannelError(text, reason=f"wechat:{code}")


def _check_template_extras(owner: str, key: str, extra: dict) -> None:
    kind = extra.get("kind", TEMPLATE)
    if kind not in (TEMPLATE, SUBSCRIBE):
        raise ChannelConfigurationError(f"{owner}: templates[{key!r}]['kind'] must be 'template' or 'subscribe'.")
    if "page" in extra and (kind != SUBSCRIBE or not isinstance(extra["page"], str)):
        raise ChannelConfigurationError(f"{owner}: templates[{key!r}]['page'] is a URL, for subscribe messages only.")
    miniprogram = extra.get("miniprogram")
    if miniprogram is not None and not (
        isinstance(miniprogram, dict) and set(miniprogram) <= {"appid", "pagepath"}
        and isinstance(miniprogram.get("appid"), str) and miniprogram["appid"]
        and isinstance(miniprogram.get("pagepath", ""), str)
    ):
        raise ChannelConfigurationError(
            f"{owner}: templates[{key!r}]['miniprogram'] must be {{'appid': 'wx...', 'pagepath': '...'}}."
        )


@dataclass
class WeChatPayload:
    touser: str
    template_id: str
    data: dict
    url: str | None
    kind: str = TEMPLATE
    miniprogram: dict | None = None


class WeChatChannel(BaseChannel):
    max_batch_size = 100
    max_per_second = 50.0
    features = WECHAT

    def __init__(
        self,
        alias: str,
        *,
        app_id: str | None = None,
        app_secret: str | None = None,
        templates: dict | None = None,
        default_template: dict | None = None,
        base_url: str = "https://api.weixin.qq.com",
        timeout: float = 10,
        token_wait: float = 15,
        cache: str = "default",
        **options: Any,
    ) -> None:
        super().__init__(alias, **options)
        self.refuse_unknown_options()
        owner = f"{type(self).__name__} {alias!r}"
        self.app_id, self.app_secret = self.required_options(
            app_id=(app_id, "WECHAT_APP_ID"), app_secret=(app_secret, "WECHAT_APP_SECRET"),
        )
        self.templates = TemplateMap(owner, sign_name="", templates=templates, default_template=default_template,
                                     signed=False, names="WeChat template message", extra_keys=TEMPLATE_KEYS)
        for key, template in [*self.templates.templates.items(), ("default_template", self.templates.default)]:
            if template is not None:
                _check_template_extras(owner, key, template.extra)
        self.base_url = base_url
        self.timeout = self.positive_timeout(timeout)
        self.token_wait = float(token_wait)
        self.storage = DjangoCacheStorage(cache)

    def normalise_address(self, address: str) -> str:
        address = address.strip()
        # An openid is 28 characters of [A-Za-z0-9_-]; accept any plausible token, refuse the rest.
        if not address or len(address) > 64 or not all(c.isalnum() or c in "-_" for c in address):
            raise InvalidAddressError(f"Not a WeChat openid: {address!r}.")
        return address

    def build_payload(self, message: OutboundMessage) -> WeChatPayload:
        filled = self.templates.fill(message)
        data = {name: {"value": value} for name, value in filled.values}
        kind = filled.extra.get("kind", TEMPLATE)
        # A template message opens ``url``; a subscribe message calls it ``page``.
        url = filled.extra.get("page") or message.url or None
        return WeChatPayload(touser=message.address, template_id=filled.template_code, data=data, url=url, kind=kind,
                             miniprogram=filled.extra.get("miniprogram"))

    def open_lane(self) -> SharedTokenWeChatClient:
        return SharedTokenWeChatClient(self.app_id, self.app_secret, storage=self.storage, base_url=self.base_url,
                                       timeout=self.timeout, token_wait=self.token_wait)

    def close_lane(self, lane: SharedTokenWeChatClient) -> None:
        lane._http.close()

    def _token(self, lane: SharedTokenWeChatClient, *, stale: str | None = None) -> str:
        """The shared access token (a new one when ``stale`` was refused). Nothing has been sent
        yet, so every failure here is transient."""
        try:
            return lane.refresh_token(stale=stale) if stale else lane.access_token
        except TokenBusy:
            raise TransientChannelError("Another worker is fetching the WeChat access token.",
                                        reason="wechat_token_busy") from None
        except WeChatClientException as error:
            raise TransientChannelError(f"Could not get a WeChat access token: {error.errcode} {error.errmsg}",
                                        reason=f"wechat_token:{error.errcode}") from error
        except (requests.exceptions.RequestException, ValueError, KeyError) as error:
            raise TransientChannelError(f"Could not get a WeChat access token: {error}",
                                        reason="wechat_token") from error

    @staticmethod
    def _post(lane: SharedTokenWeChatClient, payload: WeChatPayload) -> dict:
        """One request through wechatpy: a subscribe message or a template message."""
        if payload.kind == SUBSCRIBE:
            return lane.message.send_subscribe_message(payload.touser, payload.template_id, payload.data,
                                                       miniprogram=payload.miniprogram, page=payload.url)
        return lane.message.send_template(payload.touser, payload.template_id, payload.data, url=payload.url,
                                          mini_program=payload.miniprogram)

    def send_payload(self, payload: WeChatPayload, message: OutboundMessage, lane: SharedTokenWeChatClient) -> str:
        token = self._token(lane)
        try:
            try:
                result = self._post(lane, payload)
            except WeChatClientException as error:
                if error.errcode not in TOKEN_ERRORS:
                    raise
                # The token was refused: replace it (unless another worker already did), send once more.
                self._token(lane, stale=token)
                result = self._post(lane, payload)
        except WeChatClientException as error:
            raise wechat_error(error) from error
        except requests.exceptions.RequestException as error:
            raise _transport_error(error) from error
        except (ValueError, KeyError) as error:
            raise UnknownOutcomeError(f"Unreadable reply from WeChat: {error!r}", reason="wechat_bad_reply") from error
        if not isinstance(result, dict):
            raise UnknownOutcomeError(f"Unreadable reply from WeChat: {result!r}"[:300], reason="wechat_bad_reply")
        msgid = result.get("msgid")
        if payload.kind == SUBSCRIBE and result.get("errcode") == 0:
            # errcode 0 is WeChat's acceptance; a subscribe message's reply may carry no msgid.
            return str(msgid or "")
        if not msgid:
            raise UnknownOutcomeError(f"WeChat replied without a msgid: {result!r}"[:300], reason="wechat_bad_reply")
        return str(msgid)

    def after_send(self, payload: WeChatPayload | None, result: SendResult) -> None:
        """43004 (the recipient does not follow the account): stop trying their openid here.

        43101 (a subscribe message they have not accepted) suppresses nothing: their consent is
        per template, and a one-time subscription is used up by the message it allowed, so WeChat
        refuses again until they accept again. Suppressing the openid on the alias would stop the
        template messages (order receipts) and the other subscribe templates they did accept."""
        if payload is None or result.error is None or result.error.reason != f"wechat:{NOT_SUBSCRIBED}":
            return
        from notifications.models import Suppression
        from notifications.receipts.tracking import address_suppress

        address_suppress(channel=self.alias, address=payload.touser, reason=Suppression.Reason.UNSUBSCRIBE,
                         note=NOT_SUBSCRIBED_NOTE)
