"""A local fake of Firebase Cloud Messaging HTTP v1 and of Google's OAuth token endpoint, for
the mobile push adapter's tests, driven by pyfcm and google-auth.

``service_account_info()`` returns a service account whose ``token_uri`` is this server; the
token endpoint checks the JWT assertion's signature with the account's public key and issues access
tokens (``token_fetches`` counts them). ``POST /v1/projects/<project>/messages:send`` checks the
bearer token (unknown or revoked: 401 UNAUTHENTICATED) and answers per device token::

    server.unregistered.add(token)   # 404 UNREGISTERED (the app was uninstalled)
    server.mismatched.add(token)     # 403 SENDER_ID_MISMATCH
    server.invalid.add(token)        # 400 INVALID_ARGUMENT
    server.quota.add(token)          # 429 QUOTA_EXCEEDED with Retry-After: 30
    server.revoke_tokens()           # every issued access token now gets 401

and ``unavailable`` (503 with Retry-After) / ``slow`` / ``dropped`` from ``FakeProviderServer``.
"""

from __future__ import annotations

import itertools
import json
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fake_provider import FakeProviderServer

PROJECT = "signalbox-test"


@dataclass(frozen=True)
class FcmRequest:
    token: str
    message: dict
    outcome: str
    name: str
    peer: tuple


class FakeFcmServer(FakeProviderServer):
    name = "fake-fcm"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.client_email = "signalbox@signalbox-test.iam.gserviceaccount.com"
        self.access_tokens: set[str] = set()
        self.token_fetches = 0
        self.unregistered: set[str] = set()
        self.mismatched: set[str] = set()
        self.invalid: set[str] = set()
        self.quota: set[str] = set()
        self.requests: list[FcmRequest] = []
        self._ids = itertools.count(1)
        self.retry_after_seconds = "30"  # sent with 429 and 503

    @property
    def messages(self) -> list[FcmRequest]:
        return [r for r in self.requests if r.outcome == "accepted"]

    def service_account_info(self) -> dict:
        pem = self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()).decode()
        return {
            "type": "service_account", "project_id": PROJECT, "private_key_id": "k1", "private_key": pem,
            "client_email": self.client_email, "client_id": "1", "token_uri": f"{self.base_url}/token",
        }

    def revoke_tokens(self) -> None:
        with self.lock:
            self.access_tokens.clear()

    def handle_request(self, handler, raw: bytes):
        path = handler.path.split("?", 1)[0]
        if path == "/token":
            form = {k: v[-1] for k, v in parse_qs(raw.decode()).items()}
            try:
                claims = jwt.decode(form.get("assertion", ""), self.key.public_key(), algorithms=["RS256"],
                                    options={"verify_aud": False})
            except jwt.PyJWTError as error:
                return 400, {"error": "invalid_grant", "error_description": str(error)}
            if claims.get("iss") != self.client_email:
                return 400, {"error": "invalid_grant", "error_description": "unknown issuer"}
            token = "ya29." + secrets.token_urlsafe(32)
            with self.lock:
                self.token_fetches += 1
                self.access_tokens.add(token)
            return 200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}
        if path != f"/v1/projects/{PROJECT}/messages:send":
            return 404, {"error": {"code": 404, "message": "Not found", "status": "NOT_FOUND"}}
        bearer = handler.headers.get("Authorization", "").removeprefix("Bearer ")
        if bearer not in self.access_tokens:
            return 401, {"error": {"code": 401, "message": "Request had invalid authentication credentials.",
                                   "status": "UNAUTHENTICATED"}}
        message = (json.loads(raw or b"{}")).get("message") or {}
        token = message.get("token", "")
        outcome = self.outcome_for(token)
        if not outcome:
            outcome = next((name for name, tokens in (("unregistered", self.unregistered), ("mismatched", self.mismatched),
                                                      ("invalid", self.invalid), ("quota", self.quota)) if token in tokens),
                           "accepted")
        name = f"projects/{PROJECT}/messages/0:{next(self._ids)}%{secrets.token_hex(8)}" if outcome in (
            "accepted", "slow", "dropped") else ""
        with self.lock:
            self.requests.append(FcmRequest(token=token, message=message, outcome=outcome, name=name,
                                            peer=handler.client_address))
        if self.misbehave(handler, outcome):
            return None

        def error(code: int, status: str, fcm_code: str, text: str):
            details = [{"@type": "type.googleapis.com/google.firebase.fcm.v1.FcmError", "errorCode": fcm_code}]
            return code, {"error": {"code": code, "message": text, "status": status, "details": details}}

        if outcome == "unavailable":
            return error(503, "UNAVAILABLE", "UNAVAILABLE", "The service is currently unavailable.")
        answers = {
            "unregistered": (404, "NOT_FOUND", "UNREGISTERED", "Requested entity was not found."),
            "mismatched": (403, "PERMISSION_DENIED", "SENDER_ID_MISMATCH", "SenderId mismatch"),
            "invalid": (400, "INVALID_ARGUMENT", "INVALID_ARGUMENT", "The registration token is not a valid FCM registration token"),
            "quota": (429, "RESOURCE_EXHAUSTED", "QUOTA_EXCEEDED", "Quota exceeded."),
        }
        if outcome in answers:
            return error(*answers[outcome])
        return 200, {"name": name}
