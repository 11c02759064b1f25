"""Text-to-speech languages and styles Vonage accepts in ``talk`` (NCCO) and ``PUT .../talk``.

Source: Vonage's Text-to-Speech guide table (DIGEST §8: 59 codes, plus premium-only ``gu-IN`` from
a later revision of the same page), unioned with the codes the other
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
    "TtsError",
    "check_language_style",
]

DEFAULT_LANGUAGE = "en-US"


def _r(n: int) -> frozenset[int]:
    return frozenset(range(n))


def _s(*styles: int) -> frozenset[int]:
    return frozenset(styles)


_NONE: frozenset[int] = frozenset()

#: code -> (standard styles, styles with a premium variant), from the 2022 guide table.
#: Style numbers are not always contiguous (en-GB has no 8, nl-BE no 1, gu-IN is premium only).
_GUIDE: dict[str, tuple[frozenset[int], frozenset[int]]] = {
    "af-ZA": (_r(1), _NONE),
    "ar": (_r(8), _s(1, 3, 4, 7)),
    "bg-BG": (_r(1), _NONE),
    "bn-IN": (_r(2), _r(2)),
    "ca-ES": (_r(3), _NONE),
    "cmn-CN": (_r(6), _s(1, 2, 4, 5)),
    "cmn-TW": (_r(4), _s(1, 2, 3)),
    "cs-CZ": (_r(3), _s(0)),
    "cy-GB": (_r(1), _NONE),
    "da-DK": (_r(6), _s(1, 3, 4, 5)),
    "de-DE": (_r(11), _s(2, 4, 5, 6, 7, 8)),
    "el-GR": (_r(3), _s(0)),
    "en-AU": (_r(6), _s(1, 2, 4, 5)),
    "en-GB": (_s(0, 1, 2, 3, 4, 5, 6, 7, 9), _s(2, 3, 5, 6, 7)),
    "en-GB-WLS": (_r(1), _NONE),
    "en-IN": (_r(7), _s(2, 3, 4, 5)),
    "en-US": (_r(24), _s(5, 6, 10, 11, 12, 13, 14, 20, 21, 22)),
    "en-ZA": (_r(1), _NONE),
    "es-ES": (_r(9), _s(5, 6, 8)),
    "es-MX": (_r(1), _NONE),
    "es-US": (_r(6), _s(3, 4, 5)),
    "eu-ES": (_r(1), _NONE),
    "fi-FI": (_r(2), _s(0)),
    "fil-PH": (_r(4), _r(4)),
    "fr-CA": (_r(5), _s(1, 2, 3, 4)),
    "fr-FR": (_r(10), _s(2, 3, 4, 6, 7)),
    "gu-IN": (_NONE, _r(2)),
    "he-IL": (_r(1), _NONE),
    "hi-IN": (_r(6), _s(1, 3, 4, 5)),
    "hu-HU": (_r(2), _s(0)),
    "id-ID": (_r(5), _s(0, 2, 3, 4)),
    "is-IS": (_r(3), _NONE),
    "it-IT": (_r(7), _s(2, 3, 5, 6)),
    "ja-JP": (_r(6), _s(1, 2, 4, 5)),
    "kn-IN": (_r(2), _NONE),
    "ko-KR": (_r(6), _s(1, 2, 4, 5)),
    "lv-LV": (_r(1), _NONE),
    "ml-IN": (_r(2), _r(2)),
    "ms-MY": (_r(4), _r(4)),
    "nb-NO": (_r(8), _s(1, 2, 3, 4, 5)),
    "nl-BE": (_s(0, 2), _s(0, 2)),
    "nl-NL": (_r(7), _s(1, 2, 3, 5, 6)),
    "pa-IN": (_r(4), _r(4)),
    "pl-PL": (_r(9), _s(2, 3, 4, 7, 8)),
    "pt-BR": (_r(6), _s(1)),
    "pt-PT": (_r(8), _s(1, 2, 6, 7)),
    "ro-RO": (_r(3), _s(2)),
    "ru-RU": (_r(7), _s(1, 2, 3, 5, 6)),
    "sk-SK": (_r(2), _s(0)),
    "sr-RS": (_r(1), _NONE),
    "sv-SE": (_r(4), _s(1)),
    "ta-IN": (_r(2), _r(2)),
    "te-IN": (_r(2), _NONE),
    "th-TH": (_r(2), _NONE),
    "tr-TR": (_r(8), _s(1, 2, 3, 5, 6)),
    "uk-UA": (_r(1), _s(0)),
    "vi-VN": (_r(4), _r(4)),
    "yue-CN": (_r(1), _NONE),
    "yue-HK": (_r(4), _NONE),
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

#: code -> style numbers with a standard voice (codes with a known table only).
STANDARD_STYLES: dict[str, frozenset[int]] = {code: std for code, (std, _) in _GUIDE.items()}
#: code -> style numbers that have a premium voice (codes with a known table only).
PREMIUM_STYLES: dict[str, frozenset[int]] = {code: prem for code, (_, prem) in _GUIDE.items()}

LANGUAGES: frozenset[str] = frozenset(_GUIDE) | _EXTRA_CODES


class TtsError(ValueError):
    """A language/style/premium combination Vonage does not offer; ``field`` names the culprit."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def check_language_style(language: str | None, style: int | None, premium: bool | None) -> None:
    """Raise ``ValueError`` naming the problem if Vonage would not accept this combination."""
    code = language or DEFAULT_LANGUAGE
    if code not in LANGUAGES:
        raise TtsError("language", f"unknown TTS language {code!r}")
    s = 0 if style is None else style
    if premium:
        known = PREMIUM_STYLES.get(code)
        if known is not None and not known:
            raise TtsError("premium", f"language {code!r} has no premium voice")
        if known is not None and s not in known:
            raise TtsError(
                "style",
                f"style {s} has no premium voice for {code!r} (premium styles: {sorted(known)})",
            )
        return
    known = STANDARD_STYLES.get(code)
    if known is not None and not known:
        raise TtsError("language", f"language {code!r} has only premium voices (set premium: true)")
    if known is not None and s not in known:
        raise TtsError("style", f"style {s} does not exist for {code!r} (styles: {sorted(known)})")
