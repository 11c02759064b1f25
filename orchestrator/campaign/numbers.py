"""Phone numbers to E.164, the one form used for matching DNC lists and for dialing."""

from __future__ import annotations

import phonenumbers

__all__ = ["to_e164"]


def to_e164(raw: str, default_region: str | None = "US") -> str | None:
    """``+<digits>`` for a possible number, else None.

    Numbers with a leading ``+`` or ``00`` carry their country; otherwise ``default_region``
    supplies it. "Possible" (length and country code) rather than "valid" (allocated ranges),
    because test ranges such as 555 numbers must still match the DNC list they appear in.
    """
    text = raw.strip()
    if not text:
        return None
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
