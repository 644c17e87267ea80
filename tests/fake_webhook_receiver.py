"""A webhook receiver on loopback (an integrator's endpoint) for the outbound webhook tests.

It keeps every request (headers and raw body) in ``received`` and the ones it answered 2xx in
``accepted``; misbehaves through ``FakeProviderServer``'s knobs with the target ``"all"``::

    receiver.unavailable["all"] = None   # HTTP 503 to everything
    receiver.slow.add("all")             # no answer for slow_seconds (a read timeout)
"""

from __future__ import annotations

from .fake_provider import FakeProviderHandler, FakeProviderServer


class FakeWebhookReceiver(FakeProviderServer):
    name = "fake-webhook-receiver"

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.accepted: list[tuple[dict[str, str], bytes]] = []

    @property
    def url(self) -> str:
        return self.base_url + "/hooks"

    def handle_request(self, handler: FakeProviderHandler, raw: bytes):
        headers = {name.lower(): value for name, value in handler.headers.items()}
        with self.lock:
            self.received.append((headers, raw))
        outcome = self.outcome_for("all")
        if self.misbehave(handler, outcome):
            return None
        if outcome == "unavailable":
            return 503, {"error": "down for maintenance"}
        with self.lock:
            self.accepted.append((headers, raw))
        return 200, {"ok": True}
