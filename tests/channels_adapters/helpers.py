"""Calling an adapter the way the pipeline does, for tests that only look at the results."""

from __future__ import annotations

import threading

from channels_adapters.base import BaseChannel, OutboundMessage, SendResult


def send(channel: BaseChannel, messages: list[OutboundMessage]) -> list[SendResult]:
    """``channel.send_batch(messages)``, checking the contract on the way: one ``on_result``
    per message, always in this thread, and the same results as the returned list."""
    reported: list[SendResult] = []
    caller = threading.get_ident()

    def on_result(result: SendResult) -> None:
        assert threading.get_ident() == caller, "on_result must be called in the calling thread"
        reported.append(result)

    results = channel.send_batch(messages, on_result=on_result)
    assert sorted(reported, key=lambda r: r.delivery_id) == sorted(results, key=lambda r: r.delivery_id)
    return results
