"""Text-to-speech languages and styles Vonage accepts in ``talk`` (NCCO) and ``PUT .../talk``.

Source: Vonage's 2022 Text-to-Speech guide (DIGEST §8: 59 codes), unioned with the codes the other
sources list (OAS 46 incl. ``no-NO``, NCCO schema 49, Node 66, Java 67). Unknown codes are rejected
because Vonage rejects them at call time, which is far more expensive to find.

Style numbers are known per language only for the codes in the 2022 guide table; for the extra
codes from the SDK lists any style >= 0 is accepted (we have no table for them).
"""

from __future__ import annotations

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "PREMIUM_STYLES",
    "STANDARD_STYLES",
    "check_language_style",
]

DEFAULT_LANGUAGE = "en-US"

#: code -> (number of standard styles, number of premium variants), DIGEST §8 table.
_GUIDE_COUNTS: dict[str, tuple[int, int]] = {
    "af-ZA": (1, 0),
    "ar": (8, 4),
    "bg-BG": (1, 0),
    "bn-IN": (2, 2),
    "ca-ES": (3, 0),
    "cmn-CN": (6, 4),
    "cmn-TW": (4, 3),
    "cs-CZ": (3, 1),
    "cy-GB": (1, 0),
    "da-DK": (6, 4),
    "de-DE": (11, 6),
    "el-GR": (3, 1),
    "en-AU": (6, 4),
    "en-GB": (9, 5),
    "en-GB-WLS": (1, 0),
    "en-IN": (7, 4),
    "en-US": (24, 10),
    "en-ZA": (1, 0),
    "es-ES": (9, 3),
    "es-MX": (1, 0),
    "es-US": (6, 3),
    "eu-ES": (1, 0),
    "fi-FI": (2, 1),
    "fil-PH": (4, 4),
    "fr-CA": (5, 4),
    "fr-FR": (10, 5),
    "he-IL": (1, 0),
    "hi-IN": (6, 4),
    "hu-HU": (2, 1),
    "id-ID": (5, 4),
    "is-IS": (3, 0),
    "it-IT": (7, 4),
    "ja-JP": (6, 4),
    "kn-IN": (2, 0),
    "ko-KR": (6, 4),
    "lv-LV": (1, 0),
    "ml-IN": (2, 2),
    "ms-MY": (4, 4),
    "nb-NO": (8, 5),
    "nl-BE": (2, 2),
    "nl-NL": (7, 5),
    "pa-IN": (4, 4),
    "pl-PL": (9, 5),
    "pt-BR": (6, 1),
    "pt-PT": (8, 4),
    "ro-RO": (3, 1),
    "ru-RU": (7, 5),
    "sk-SK": (2, 1),
    "sr-RS": (1, 0),
    "sv-SE": (4, 1),
    "ta-IN": (2, 2),
    "te-IN": (2, 0),
    "th-TH": (2, 0),
    "tr-TR": (8, 5),
    "uk-UA": (1, 1),
    "vi-VN": (4, 4),
    "yue-CN": (1, 0),
    "yue-HK": (4, 0),
}

#: Codes found only in other lists (OAS ``no-NO``; Java/Node extras). No style table for these.
_EXTRA_CODES: frozenset[str] = frozenset(
    {
        "no-NO",
        "de-AT",
        "en-GB-SCT",
        "en-IE",
        "en-NZ",
        "es-CO",
        "gl-ES",
        "lt-LT",
        "mr-IN",
    }
)

#: code -> style numbers with a standard voice. Filled from the guide table where known.
STANDARD_STYLES: dict[str, frozenset[int]] = {}
#: code -> style numbers that also have a premium voice.
PREMIUM_STYLES: dict[str, frozenset[int]] = {}

LANGUAGES: frozenset[str] = frozenset(_GUIDE_COUNTS) | _EXTRA_CODES


def check_language_style(language: str | None, style: int | None, premium: bool | None) -> None:
    """Raise ``ValueError`` naming the problem if Vonage would not accept this combination."""
    code = language or DEFAULT_LANGUAGE
    if code not in LANGUAGES:
        raise ValueError(f"unknown TTS language {code!r}")
    if style is None and not premium:
        return
    s = 0 if style is None else style
    if premium:
        known = PREMIUM_STYLES.get(code)
        if code in _GUIDE_COUNTS and _GUIDE_COUNTS[code][1] == 0:
            raise ValueError(f"language {code!r} has no premium voice")
        if known is not None and s not in known:
            raise ValueError(
                f"style {s} has no premium voice for {code!r} (premium styles: {sorted(known)})"
            )
        return
    known = STANDARD_STYLES.get(code)
    if known is not None and s not in known:
        raise ValueError(f"style {s} does not exist for {code!r} (styles: {sorted(known)})")
