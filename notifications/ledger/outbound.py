"""What other rooms add to a message on its way out, without the ledger importing them.

The ledger builds the channel-neutral message (``sending.outbound_message``) and renders
templated content (``rechecks.render_templates``). Receipts register here, in
``NotificationsConfig.ready()``, what they add: opaque click links and an open pixel in HTML,
the signed one-click unsubscribe URL. The ledger calls the hooks and never imports the room that
provides them (STYLE.md: the ledger is the ground floor).

* ``register_decorator(fn)``: ``fn(delivery, *, html, metadata) -> (html, metadata)`` runs on
  every outbound message, in registration order; it may rewrite the HTML body and add metadata
  (the adapter reads ``metadata["unsubscribe_url"]`` for its headers).
* ``register_unsubscribe_url(fn)``: ``fn(delivery) -> str``, the link a marketing template's
  ``unsubscribe_url`` variable renders. Without one, templates get an empty string.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..models import Delivery

Decorator = Callable[..., tuple[str, dict]]

_decorators: list[Decorator] = []
_unsubscribe_url: list[Callable[[Delivery], str]] = []


def register_decorator(fn: Decorator) -> None:
    """Add ``fn`` to the decorators of outbound messages (once, however often it is registered)."""
    if fn not in _decorators:
        _decorators.append(fn)


def register_unsubscribe_url(fn: Callable[[Delivery], str]) -> None:
    """Make ``fn`` the source of unsubscribe links (the last registration wins)."""
    _unsubscribe_url[:] = [fn]


def decorate(delivery: Delivery, *, html: str, metadata: dict) -> tuple[str, dict]:
    """Run the registered decorators over one outbound message's HTML and metadata."""
    for fn in _decorators:
        html, metadata = fn(delivery, html=html, metadata=metadata)
    return html, metadata


def unsubscribe_url(delivery: Delivery) -> str:
    """The unsubscribe link for ``delivery``, or "" when no room provides one."""
    return _unsubscribe_url[0](delivery) if _unsubscribe_url else ""
