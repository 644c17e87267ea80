"""Phone numbers as the SMS adapters send them (Twilio, Aliyun, Tencent Cloud): E.164."""

from __future__ import annotations

import phonenumbers

from .errors import InvalidAddressError


def e164_address(address: str) -> str:
    """Return the number in E.164, or raise ``InvalidAddressError``. Only international numbers
    ("+" and country code) are accepted: there is no default region to read a national number in."""
    address = address.strip()
    try:
        number = phonenumbers.parse(address, None)
    except phonenumbers.NumberParseException as error:
        raise InvalidAddressError(
            f"Not a phone number in international format (+ and country code): {address!r}."
        ) from error
    if not phonenumbers.is_valid_number(number):
        raise InvalidAddressError(f"Not a valid phone number: {address!r}.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
