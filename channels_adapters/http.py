"""What the HTTP adapters (Twilio, web push, chat, anymail ESPs) share about failed requests.

A request that failed tells one of two stories, and the pipeline must not confuse them:

* the connection could not be made (refused, DNS, connect timeout): nothing left this machine,
  so a retry is safe (``TransientChannelError``);
* the request may have left (read timeout, connection dropped while waiting): the provider may
  have accepted it, so the outcome is unknown (``UnknownOutcomeError``), never "not sent".
"""

from __future__ import annotations

import requests
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError


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


def keepalive_session(*, pool_size: int = 1) -> requests.Session:
    """A ``requests.Session`` that keeps its connections open between requests (one lane's)."""
    session = requests.Session()
    adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session
