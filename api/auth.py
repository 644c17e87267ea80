"""Who is calling: a server key with a scope, or a recipient (session or signed token)."""

from __future__ import annotations

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja.security import HttpBearer
from ninja.security.base import AuthBase
from ninja.utils import check_csrf

from .keys import KeyRefused, api_key_authenticate, api_key_throttle
from .problems import Problem, ScopeMissing
from .tokens import TokenRefused, recipient_token_user


class ServerKey(HttpBearer):
    """``Authorization: Bearer sbk_...`` with every one of ``scopes``. A missing, wrong or revoked key is 401;
    a key without the scope 403; a key over its rate limit 429. The key is kept on the request
    (``request.api_key``) for the audit (``api.middleware``)."""

    def __init__(self, *scopes: str) -> None:
        super().__init__()
        self.scopes = scopes

    def authenticate(self, request: HttpRequest, token: str):
        try:
            key = api_key_authenticate(token)
        except KeyRefused:
            return None
        request.api_key = key
        api_key_throttle(key=key)
        for scope in self.scopes:
            if scope not in key.scopes:
                raise ScopeMissing(scope)
        return key


class RecipientToken(HttpBearer):
    """``Authorization: Bearer sbr_...``: a token a server minted for one of its users."""

    def authenticate(self, request: HttpRequest, token: str):
        try:
            return recipient_token_user(token)
        except TokenRefused:
            return None


class RecipientSession(AuthBase):
    """The signed-in user's session; writes need the CSRF token (``X-CSRFToken``)."""

    openapi_type = "apiKey"

    def __init__(self) -> None:
        self.openapi_in = "cookie"
        self.openapi_name = "sessionid"
        super().__init__()

    def __call__(self, request: HttpRequest):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or not user.is_active:
            return None
        if check_csrf(request) is not None:
            raise Problem(403, "csrf", _("CSRF check failed."), _("Send the CSRF token in the X-CSRFToken header."))
        return user


RECIPIENT = [RecipientToken(), RecipientSession()]
