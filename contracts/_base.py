"""Field types shared by the Vonage models: the normalisation rules live here, once.

Vonage is inconsistent about a few wire types (money and durations arrive as strings or numbers,
times in two formats, empty strings where a value is "not yet known"). Every model uses these
annotated types so that the rest of the system sees one shape: money as a decimal string, durations
as ``int``, times as timezone-aware ``datetime``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

__all__ = [
    "NO_BOOL",
    "ApiModel",
    "AwareTime",
    "DurationSeconds",
    "HttpMethod",
    "MoneyStr",
    "NonEmptyStr",
    "NumericStr",
    "OptDuration",
    "OptMoney",
    "OptTime",
    "Url",
    "UrlList",
    "VonageModel",
    "error_text",
    "format_validation_error",
    "number_range",
    "number_schema",
]


class VonageModel(BaseModel):
    """Something Vonage sends us: unknown fields are kept, never dropped (Vonage adds fields)."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class ApiModel(BaseModel):
    """Something we send to Vonage: unknown fields are refused, because a typo there is a bug.

    Aliases are accepted on input so that both the wire name (``from``, ``content-type``) and the
    Python name validate.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    #: Fields always part of the wire form even when left at their default (discriminators such
    #: as ``action``/``type``), so a model built in Python dumps to what Vonage needs.
    ALWAYS_DUMP: ClassVar[tuple[str, ...]] = ()

    def model_post_init(self, context: Any, /) -> None:
        if self.ALWAYS_DUMP:
            self.__pydantic_fields_set__.update(self.ALWAYS_DUMP)

    def to_json_dict(self) -> dict[str, Any]:
        """The wire form: aliases, nothing that was not set, ready for ``orjson.dumps``."""
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


NonEmptyStr = Annotated[str, Field(min_length=1)]
HttpMethod = Literal["GET", "POST"]


def _empty_to_none(value: Any) -> Any:
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _to_aware(value: datetime) -> datetime:
    # Vonage's "YYYY-MM-DD HH:MM:SS" form carries no zone; the API works in UTC.
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


AwareTime = Annotated[datetime, AfterValidator(_to_aware)]
"""Either ``2020-01-01 12:00:00`` or ``2020-01-01T12:00:00.000Z``; naive values are UTC."""

OptTime = Annotated[AwareTime | None, BeforeValidator(_empty_to_none)]
"""An optional time; ``""`` (Vonage's "not yet known") becomes ``None``."""


def _money(value: Any) -> Any:
    value = _empty_to_none(value)
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError("must be a decimal amount, not a boolean")
    if isinstance(value, int | float | Decimal):
        text = str(value) if not isinstance(value, float) else repr(value)
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise ValueError("must be a decimal amount (string or number)")
    try:
        parsed = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"not a decimal amount: {text[:40]!r}") from None
    if not parsed.is_finite():
        raise ValueError("must be a finite decimal amount")
    return text


MoneyStr = Annotated[str, BeforeValidator(_money)]
"""Money stays a string (``"0.00450000"``) so no float rounding ever touches a price."""

OptMoney = Annotated[str | None, BeforeValidator(_money)]
"""Optional money; numbers become decimal strings, ``""`` becomes ``None``."""


def _duration(value: Any) -> Any:
    value = _empty_to_none(value)
    if isinstance(value, bool):
        raise ValueError("must be a whole number of seconds")
    if isinstance(value, str):
        text = value.strip()
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValueError(f"not a number of seconds: {text[:40]!r}") from None
        if not number.is_finite() or number != number.to_integral_value():
            raise ValueError("must be a whole number of seconds")
        return int(number)
    return value


DurationSeconds = Annotated[int, Field(ge=0), BeforeValidator(_duration)]
"""A duration in whole seconds; ``"2"``, ``2`` and ``2.0`` all become ``2``."""

OptDuration = Annotated[Annotated[int, Field(ge=0)] | None, BeforeValidator(_duration)]
"""Optional duration in whole seconds; ``""`` becomes ``None``."""


Url = Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^https?://[^\s/?#]+\S*$")]
"""An absolute http(s) URL kept as the exact string given (no normalisation, so round-trips are
exact). Webhook, audio and NCCO URLs are all fetched over HTTP by Vonage."""

UrlList = Annotated[list[Url], Field(min_length=1)]


def _str_number(value: Any) -> Any:
    # Used for identifiers that some SDKs send as numbers (vbc extensions, digits).
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value


NumericStr = Annotated[str, BeforeValidator(_str_number)]


def _no_bool_int(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("must be a number, not a boolean")
    return value


NO_BOOL = BeforeValidator(_no_bool_int)
"""Metadata for ``Annotated[int, Field(ge=..., le=...), NO_BOOL]``: refuses ``true`` where a number
goes (pydantic's lax mode would read it as 1); numeric strings such as ``"45"``, which Vonage's own
examples use, are still accepted."""


def _number_in(ge: float | None, gt: float | None, le: float | None) -> Any:
    def check(value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a number, not a boolean")
        if isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise ValueError("must be a number") from None
            value = int(number) if number.is_integer() and "." not in value else number
        if not isinstance(value, int | float):
            raise ValueError("must be a number")
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        if ge is not None and value < ge:
            raise ValueError(f"must be >= {ge}")
        if gt is not None and value <= gt:
            raise ValueError(f"must be > {gt}")
        if le is not None and value > le:
            raise ValueError(f"must be <= {le}")
        return value

    return check


def number_range(
    ge: float | None = None, le: float | None = None, *, gt: float | None = None
) -> BeforeValidator:
    """Metadata for ``Annotated[int | float, number_range(...)]``: in range, kept as given
    (``1`` stays ``1``, ``0.5`` stays ``0.5``), numeric strings parsed, booleans refused."""
    return BeforeValidator(_number_in(ge, gt, le))


def number_schema(
    ge: float | None = None, le: float | None = None, *, gt: float | None = None
) -> Any:
    """JSON Schema bounds to go with :func:`number_range`."""
    schema: dict[str, Any] = {}
    if ge is not None:
        schema["minimum"] = ge
    if gt is not None:
        schema["exclusiveMinimum"] = gt
    if le is not None:
        schema["maximum"] = le
    return Field(json_schema_extra=schema or None)


def error_text(err: Mapping[str, Any]) -> str:
    """Pydantic's message, shortened to the ``must be ...`` style used in our errors."""
    kind = err.get("type", "")
    ctx = err.get("ctx") or {}
    if kind == "less_than_equal":
        return f"must be <= {ctx.get('le')}"
    if kind == "greater_than_equal":
        return f"must be >= {ctx.get('ge')}"
    if kind == "less_than":
        return f"must be < {ctx.get('lt')}"
    if kind == "greater_than":
        return f"must be > {ctx.get('gt')}"
    if kind in {"too_long", "string_too_long"}:
        return f"must have at most {ctx.get('max_length')} {'characters' if 'string' in kind else 'item(s)'}"
    if kind in {"too_short", "string_too_short"}:
        return f"must have at least {ctx.get('min_length')} {'characters' if 'string' in kind else 'item(s)'}"
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    if kind == "string_pattern_mismatch":
        pattern = str(ctx.get("pattern"))
        if pattern.startswith("^https?://"):
            return "must be an absolute http(s) URL"
        return f"must match {pattern}"
    msg = str(err.get("msg", "invalid"))
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def format_validation_error(errors: Sequence[Mapping[str, Any]], prefix: str = "") -> str:
    """One short human line per pydantic error: ``field.path: message``."""
    parts: list[str] = []
    for err in errors[:3]:
        loc = ".".join(str(p) for p in err.get("loc", ()) if p != "__root__")
        where = f"{prefix}{loc}" if loc else prefix.rstrip(".") or "body"
        parts.append(f"{where}: {error_text(err)}")
    if len(errors) > 3:
        parts.append(f"(+{len(errors) - 3} more)")
    return "; ".join(parts)
