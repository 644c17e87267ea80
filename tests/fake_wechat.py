"""A local fake of the WeChat Official Account API (access token, template messages and subscribe
messages), for the ``wechat`` adapter's tests, driven by wechatpy.

``GET /cgi-bin/token`` issues access tokens (``token_fetches`` counts them; a wrong secret gets
40125); ``POST /cgi-bin/message/template/send`` (template messages) and
``POST /cgi-bin/message/subscribe/bizsend`` (subscribe messages, ``kind="subscribe"`` in
``requests``) check the token (unknown: 40001, expired: 42001) and answer per openid::

    server.unsubscribed.add(openid)     # 43004 require subscribe
    server.refused.add(openid)          # 43101 user refuse to accept the msg (subscribe messages)
    server.invalid_openids.add(openid)  # 40003 invalid openid
    server.busy.add(openid)             # -1 system error
    server.approved_templates = {"t1"}  # any other template id: 40037
    server.expire_tokens()              # every issued token now answers 42001
    server.revoke_tokens()              # ... or 40001 (as after another fetch elsewhere)
    server.reject_tokens = True         # every token, even a fresh one, answers 40001
    server.subscribe_msgids = False     # an accepted subscribe message's answer carries no msgid

and ``unavailable``/``slow``/``dropped`` from ``FakeProviderServer``.
"""

from __future__ import annotations

import itertools
import json
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from tests.fake_provider import FakeProviderServer


@dataclass(frozen=True)
class TemplateSend:
    touser: str
    template_id: str
    data: dict
    url: str
    access_token: str
    outcome: str  # "accepted", "token_invalid", "token_expired", "not_subscribed", "refused", "invalid", "busy", ...
    msgid: int
    kind: str = "template"  # or "subscribe"
    page: str = ""  # a subscribe message's page
    miniprogram: dict | None = None


class FakeWeChatServer(FakeProviderServer):
    name = "fake-wechat"

    def __init__(self, app_id: str, app_secret: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.app_id = app_id
        self.app_secret = app_secret
        self.tokens: dict[str, str] = {}  # token -> "valid" | "expired" | "revoked"
        self.token_fetches = 0
        self.token_fetch_delay = 0.0
        self.reject_tokens = False  # every token answers 40001, however fresh
        self.unsubscribed: set[str] = set()
        self.invalid_openids: set[str] = set()
        self.busy: set[str] = set()
        self.refused: set[str] = set()
        self.subscribe_msgids = True  # False: an accepted subscribe message is answered without a msgid
        self.approved_templates: set[str] | None = None
        self.requests: list[TemplateSend] = []
        self._msgids = itertools.count(2_000_000_001)

    @property
    def messages(self) -> list[TemplateSend]:
        return [r for r in self.requests if r.outcome == "accepted"]

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens = dict.fromkeys(self.tokens, "expired")

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens = dict.fromkeys(self.tokens, "revoked")

    def handle_request(self, handler, raw: bytes):
        url = urlsplit(handler.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        if url.path == "/cgi-bin/token" and handler.command == "GET":
            if query.get("appid") != self.app_id or query.get("secret") != self.app_secret:
                return 200, {"errcode": 40125, "errmsg": "invalid appsecret"}
            if self.token_fetch_delay:
                self.stopping.wait(self.token_fetch_delay)
            token = secrets.token_urlsafe(48)
            with self.lock:
                self.token_fetches += 1
                self.tokens[token] = "valid"
            return 200, {"access_token": token, "expires_in": 7200}
        kinds = {"/cgi-bin/message/template/send": "template", "/cgi-bin/message/subscribe/bizsend": "subscribe"}
        kind = kinds.get(url.path)
        if kind is None or handler.command != "POST":
            return 404, {"errcode": 404, "errmsg": "not found"}
        body = json.loads(raw or b"{}")
        touser = body.get("touser", "")
        token = query.get("access_token", "")
        state = self.tokens.get(token)
        outcome = {None: "token_invalid", "revoked": "token_invalid", "expired": "token_expired"}.get(state, "")
        if self.reject_tokens:
            outcome = "token_invalid"
        if not outcome:
            outcome = self.outcome_for(touser)
        if not outcome:
            if touser in self.invalid_openids:
                outcome = "invalid"
            elif touser in self.unsubscribed:
                outcome = "not_subscribed"
            elif kind == "subscribe" and touser in self.refused:
                outcome = "refused"
            elif self.approved_templates is not None and body.get("template_id") not in self.approved_templates:
                outcome = "template"
            elif touser in self.busy:
                outcome = "busy"
            else:
                outcome = "accepted"
        msgid = next(self._msgids) if outcome in ("accepted", "slow", "dropped") else 0
        with self.lock:
            self.requests.append(TemplateSend(
                touser=touser, template_id=body.get("template_id", ""), data=body.get("data") or {},
                url=body.get("url", ""), access_token=token, outcome=outcome, msgid=msgid, kind=kind,
                page=body.get("page", ""), miniprogram=body.get("miniprogram"),
            ))
        if outcome == "unavailable":
            return 502, {"errmsg": "bad gateway"}, "text/html"
        if self.misbehave(handler, outcome):
            return None
        errors = {
            "token_invalid": (40001, "invalid credential, access_token is invalid or not latest"),
            "token_expired": (42001, "access_token expired"),
            "invalid": (40003, "invalid openid"),
            "not_subscribed": (43004, "require subscribe"),
            "refused": (43101, "user refuse to accept the msg"),
            "template": (40037, "invalid template_id"),
            "busy": (-1, "system error"),
        }
        if outcome in errors:
            code, message = errors[outcome]
            return 200, {"errcode": code, "errmsg": f"{message} rid: {secrets.token_hex(8)}"}
        if kind == "subscribe" and not self.subscribe_msgids:
            return 200, {"errcode": 0, "errmsg": "ok"}
        return 200, {"errcode": 0, "errmsg": "ok", "msgid": msgid}
