from __future__ import annotations

from tests.channels_adapters.helpers import send
from channels_adapters.base import OutboundMessage
from channels_adapters.errors import PermanentChannelError, TransientChannelError, UnknownOutcomeError
from channels_adapters.handler import channels
from channels_adapters.locmem import LocmemChannel


def message(delivery_id: int, address: str) -> OutboundMessage:
    return OutboundMessage(delivery_id=delivery_id, address=address, subject="Order shipped", text="On its way")


def test_accepted_messages_land_in_the_outbox_with_alias_and_provider_id(settings):
    settings.NOTIFICATION_CHANNELS = {"inapp": {"BACKEND": "channels_adapters.locmem.LocmemChannel"}}

    results = send(channels["inapp"], [message(1, " ada "), message(2, "grace")])

    assert [sent.message.address for sent in LocmemChannel.outbox] == ["ada", "grace"]
    assert {sent.alias for sent in LocmemChannel.outbox} == {"inapp"}
    assert [result.provider_message_id for result in results] == [sent.provider_message_id for sent in LocmemChannel.outbox]
    assert all(result.provider_message_id.startswith("locmem-") for result in results)
    assert results[0].provider_message_id != results[1].provider_message_id
    assert LocmemChannel.outbox[0].message.subject == "Order shipped"


def test_simulated_failures_are_typed_and_leave_the_rest_of_the_batch_alone():
    channel = LocmemChannel(
        "sms", fail_transient={"+1555001"}, fail_permanent={"+1555002"}, unknown_outcome={"+1555003"}
    )

    results = send(channel, [message(n, f"+155500{n}") for n in range(1, 5)])

    assert isinstance(results[0].error, TransientChannelError)
    assert isinstance(results[1].error, PermanentChannelError)
    assert isinstance(results[2].error, UnknownOutcomeError)
    assert results[3].ok
    assert [sent.message.delivery_id for sent in LocmemChannel.outbox] == [4]


def test_failure_addresses_are_matched_after_normalising():
    channel = LocmemChannel("sms", fail_permanent=["+1555002"])

    [result] = send(channel, [message(1, "  +1555002 ")])

    assert isinstance(result.error, PermanentChannelError)
    assert LocmemChannel.outbox == []
