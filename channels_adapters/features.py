"""What a channel can do, declared by its adapter (as Django's ``db.backends.base.features``).

The domain never compares channel names (``channel == "email"``); it asks the adapter of the
alias through ``channels.features(alias)`` and reads one of these facts. Two kinds live here:

* what the *medium* is (an email tracks opens, an SMS interrupts, an inbox message may be
  folded into a digest, how addresses are written), which a stand-in adapter (the capture
  Outbox, the locmem test twin) borrows from the channel it stands in for;
* what the *transport* guarantees (it writes only to our database; a re-send after a lost
  lease cannot reach the recipient as a second, different message; how many messages it sends
  at once).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Literal

AddressForm = Literal["email", "phone", "text"]
#: Where a recipient's address for the channel is kept: the user's email, the profile's phone,
#: the user id itself (the inbox), their newest web push subscription, the profile's chat target,
#: the profile's WeChat openid (``chat_ids["wechat"]``), their newest mobile device (``PushDevice``).
AddressSource = Literal[
    "user_email", "profile_phone", "user_id", "push_subscription", "profile_chat", "profile_wechat", "push_device", ""
]


@dataclass(frozen=True)
class ChannelFeatures:
    #: The "provider" is our own database (the inbox, the capture Outbox): the pipeline runs the
    #: batch and its ledger update in one transaction, so a row exists exactly when its delivery
    #: is ``sent``. Nothing leaves the machine, so nothing is ever in flight.
    local: bool = False
    #: HTML bodies get an open pixel / opaque click links (``notifications.receipts.tracking``).
    tracks_opens: bool = False
    tracks_clicks: bool = False
    #: Marketing messages carry RFC 8058 one-click unsubscribe headers.
    one_click_unsubscribe: bool = False
    #: The message interrupts someone, so the recipient's quiet hours hold it back.
    interrupts: bool = True
    #: Several messages of one category may be folded into one hourly/daily digest.
    digestible: bool = False
    #: How addresses are normalised and compared: lower-cased email, E.164 phone, trimmed text.
    address_form: AddressForm = "text"
    #: Where planning finds each recipient's address (``notifications.ledger.decisions``); an
    #: alias with none ("") has no recipient addresses, so every delivery on it is suppressed.
    address_source: AddressSource = ""
    #: The text goes out in segments (SMS: 160 GSM-7 or 70 UCS-2 characters each), which the
    #: template preview counts.
    segmented_text: bool = False
    #: The message carries an identity chosen by us and kept across re-sends (email's
    #: Message-ID), so a second copy is recognisably the same message.
    supports_message_id: bool = False
    #: The provider takes an idempotency key and drops a second request with the same key.
    provider_idempotency: bool = False
    #: A delivery that was in flight when its worker died may be sent again under a category
    #: whose policy is ``at_least_once``: a re-send either cannot duplicate (the provider's
    #: idempotency key) or arrives as the same message (the same Message-ID, which mailbox
    #: providers and mail clients fold). False where a re-send is a second, separate message
    #: (an SMS, a chat post, a push notification).
    safe_to_resend_after_lost_lease: bool = False
    #: How many messages of one batch are sent at once (connections or requests in flight);
    #: ``OPTIONS["concurrency"]`` overrides it per alias.
    concurrency: int = 1

    @property
    def addresses_ignore_case(self) -> bool:
        """Two addresses differing only in case reach the same recipient (email); a stored
        delivery address may keep the case it was given, so lookups compare without it."""
        return self.address_form == "email"

    def replace(self, **changes) -> ChannelFeatures:
        return dataclasses.replace(self, **changes)


EMAIL = ChannelFeatures(
    tracks_opens=True, tracks_clicks=True, one_click_unsubscribe=True, digestible=True, address_form="email",
    address_source="user_email",
    # Twenty connections, as Postfix's default per-destination concurrency; a small relay may
    # want fewer (OPTIONS["concurrency"]).
    supports_message_id=True, safe_to_resend_after_lost_lease=True, concurrency=20,
)
# Sixteen requests in flight per worker, well inside the account's limit of concurrent API
# requests (100 by default at Twilio); the shared max_per_second still paces the account.
SMS = ChannelFeatures(address_form="phone", address_source="profile_phone", segmented_text=True, concurrency=16)
INAPP = ChannelFeatures(local=True, interrupts=False, digestible=True, address_source="user_id")
WEBPUSH = ChannelFeatures(address_source="push_subscription", concurrency=8)
CHAT = ChannelFeatures(address_source="profile_chat", concurrency=4)
# A template message to an Official Account follower; a re-send is a second message.
WECHAT = ChannelFeatures(address_source="profile_wechat", concurrency=8)
# A push to the newest registered app installation; no idempotency key, so never re-sent blind.
MOBILEPUSH = ChannelFeatures(address_source="push_device", concurrency=8)

#: The media of the standard aliases (``config.settings.NOTIFICATION_CHANNELS``), for adapters
#: that stand in for another one (capture, locmem) and for an alias that is not configured at
#: all (an SMS number arriving on a webhook is still compared in E.164).
STANDARD_FEATURES: dict[str, ChannelFeatures] = {
    "email": EMAIL, "sms": SMS, "inapp": INAPP, "webpush": WEBPUSH, "chat": CHAT, "wechat": WECHAT,
    "mobilepush": MOBILEPUSH,
}


def features_for_alias(alias: str) -> ChannelFeatures:
    """The medium a standard alias name stands for; plain defaults for any other name."""
    return STANDARD_FEATURES.get(alias, ChannelFeatures())
