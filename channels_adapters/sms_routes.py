"""One SMS channel, several providers: each number goes out through the provider its country needs.

The ledger channel is the *medium* (``sms``): opt-outs, STOP and other suppressions, quiet hours,
frequency caps, the resend policy and the analytics are per medium, so a person who texted STOP
is not texted again through another provider. Which provider carries one message is a transport
fact, decided here per number (longest E.164 prefix first)::

    NOTIFICATION_CHANNELS = {
        "sms": {"BACKEND": "channels_adapters.sms_routes.SmsRoutes", "OPTIONS": {
            "routes": {"+86": "sms-cn"},   # mainland China numbers through Aliyun
            "default": "sms-twilio",       # every other number (omit: they fail, reason "no_sms_route")
        }},
        "sms-twilio": {"BACKEND": "channels_adapters.sms.SmsChannel", "OPTIONS": {}},
        "sms-cn": {"BACKEND": "channels_adapters.aliyun_sms.AliyunSmsChannel", "OPTIONS": {...}},
    }

The provider aliases (``sms-twilio``, ``sms-cn``) are ordinary adapters with their own OPTIONS
(template mappings, credentials, ``concurrency``); they are not ledger channels (``notify()``
refuses them), only transports of ``sms``. Their receipts reach the ``sms`` deliveries: the
webhooks look deliveries up on every alias built from their provider's adapter, which includes
a routing alias with a route to one (``ChannelHandler.aliases_with_backend``).

Limits: a batch is split per provider and each part sent through that provider's adapter in
turn (its lanes, its hand-off), so the router takes the smallest ``max_batch_size`` of its
providers, and paces the whole channel at the slowest declared ``max_per_second`` unless OPTIONS
set its own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from .base import BaseChannel, HandoffCallback, OutboundMessage, ResultCallback, SendResult
from .errors import ChannelConfigurationError, PermanentChannelError
from .features import SMS

PREFIX = re.compile(r"^\+[1-9]\d{0,5}$")


class SmsRoutes(BaseChannel):
    features = SMS

    def __init__(self, alias: str, *, routes: dict | None = None, default: str = "", **options: Any) -> None:
        explicit_batch = "max_batch_size" in options
        explicit_rate = "max_per_second" in options
        super().__init__(alias, **options)
        self.refuse_unknown_options()
        owner = f"{type(self).__name__} {alias!r}"
        if not isinstance(routes, dict) or not routes:
            raise ChannelConfigurationError(f"{owner}: routes must map E.164 prefixes (\"+86\") to SMS aliases.")
        for prefix in routes:
            if not isinstance(prefix, str) or not PREFIX.match(prefix):
                raise ChannelConfigurationError(
                    f"{owner}: route {prefix!r} is not an E.164 country or area prefix like \"+86\"."
                )
        # Longest prefix first: "+852" (Hong Kong) before a "+8" catch-all.
        self.routes = sorted(((p, str(a)) for p, a in routes.items()), key=lambda item: -len(item[0]))
        self.default = str(default or "")
        targets = self.routed_aliases({"routes": routes, "default": default})
        from .handler import channels

        for target in sorted(targets):
            if target == alias or target not in channels.settings:
                raise ChannelConfigurationError(
                    f"{owner}: route to {target!r}, which is not another alias in NOTIFICATION_CHANNELS."
                )
            provider = channels[target]
            if isinstance(provider, SmsRoutes):
                raise ChannelConfigurationError(f"{owner}: route to {target!r}, which routes itself; name a provider.")
            if not explicit_batch:
                self.max_batch_size = min(self.max_batch_size, provider.max_batch_size)
        rates = [channels[t].max_per_second for t in targets if channels[t].max_per_second]
        if not explicit_rate:
            self.max_per_second = min(rates) if rates else None

    @classmethod
    def routed_aliases(cls, options: dict) -> set[str]:
        """The provider aliases named in these OPTIONS (read without building anything)."""
        routes = options.get("routes") or {}
        targets = {str(a) for a in routes.values()} if isinstance(routes, dict) else set()
        return targets | ({str(options["default"])} if options.get("default") else set())

    def route(self, address: str) -> str:
        """The provider alias for ``address`` (an E.164 number), or "" when none is configured."""
        number = address.strip()
        return next((alias for prefix, alias in self.routes if number.startswith(prefix)), self.default)

    def send_batch(
        self,
        messages: Sequence[OutboundMessage],
        *,
        on_result: ResultCallback,
        on_handoff: HandoffCallback | None = None,
    ) -> list[SendResult]:
        """Split the batch per provider and let each provider's adapter send its part (the steps,
        lanes and hand-offs of ``BaseChannel.send_batch`` are theirs; a router has none)."""
        self.refuse_oversize_batch(messages)
        from .handler import channels

        results: dict[int, SendResult] = {}
        parts: dict[str, list[OutboundMessage]] = {}
        for message in messages:
            target = self.route(message.address)
            if target:
                parts.setdefault(target, []).append(message)
                continue
            result = SendResult(message.delivery_id, error=PermanentChannelError(
                f"No SMS provider is routed for {message.address[:4]}… and {self.alias!r} has no default.",
                reason="no_sms_route",
            ))
            results[message.delivery_id] = result
            on_result(result)
        for target, part in parts.items():
            for result in channels[target].send_batch(part, on_result=on_result, on_handoff=on_handoff):
                results[result.delivery_id] = result
        return [results[m.delivery_id] for m in messages if m.delivery_id in results]
