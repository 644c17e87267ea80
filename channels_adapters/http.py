"""What the HTTP adapters (Twilio, Aliyun, Tencent Cloud, WeChat, web push, chat, anymail ESPs)
share about failed requests.

A request that failed tells one of two stories, and the pipeline must not confuse them:

* the connection could not be made (refused, DNS, connect timeout): nothing left this machine,
  so a retry is safe (``TransientChannelError``);
* the request may have left (read timeout, connection dropped while waiting): the provider may
  have accepted it, so the outcome is unknown (``UnknownOutcomeError``), never "not sent".
"""

from __future__ import annotations

import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError

from .errors import ChannelError, TransientChannelError, UnknownOutcomeError


def nothing_was_sent(error: BaseException) -> bool:
    """True when the connection could not be made, so no request left this machine.

    Libraries that wrap the ``requests`` exception (anymail) are looked through to its cause.
    """
    cause = error.__cause__
    if isinstance(cause, requests.exceptions.RequestException) and nothing_was_sent(cause):
        return True
    if isinstance(error, requests.exceptions.ConnectTimeout):
        return True
    if not isinstance(error, requests.exceptions.ConnectionError):
        return False
    cause = error.args[0] if error.args else None
    if isinstance(cause, MaxRetryError):
        cause = cause.reason
    return isinstance(cause, (NewConnectionError, ConnectTimeoutError, ConnectionRefusedError))


def wrapped_request_error(error: BaseException) -> requests.exceptions.RequestException | None:
    """The ``requests`` failure inside what an SDK raised (its ``__cause__``/``__context__``, or
    the Aliyun SDK's ``inner_exception``), or ``None`` when there is none."""
    cause: BaseException | None = error
    while cause is not None and not isinstance(cause, requests.exceptions.RequestException):
        cause = getattr(cause, "inner_exception", None) or cause.__cause__ or cause.__context__
    return cause


def request_failure(
    cause: requests.exceptions.RequestException | None, *, provider: str, reason: str, consequence: str,
    shown: BaseException | None = None,
) -> ChannelError:
    """What a request to ``provider`` that got no reply means (the two stories above).

    ``cause`` is the ``requests`` failure (``None``: none was found, so the request may have
    left). Reasons are ``<reason>_connect`` (transient: nothing was sent), ``<reason>_timeout`` and
    ``<reason>_no_reply`` (unknown: ``consequence``, e.g. "the SMS may have been accepted").
    ``shown`` is the error the no-reply message names (default ``cause``).
    """
    if cause is not None and nothing_was_sent(cause):
        return TransientChannelError(f"Could not connect to {provider}: {cause}", reason=f"{reason}_connect")
    if isinstance(cause, requests.exceptions.Timeout):
        return UnknownOutcomeError(f"No reply from {provider} in time; {consequence}: {cause}",
                                   reason=f"{reason}_timeout")
    return UnknownOutcomeError(
        f"The connection to {provider} failed after the request was sent; {consequence}: {shown or cause}",
        reason=f"{reason}_no_reply",
    )


def keepalive_session(*, pool_size: int = 1) -> requests.Session:
    """A ``requests.Session`` that keeps its connections open between requests (one lane's)."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
