"""A campaign spec from an HTTP body: bounded parsing off the event loop, refusals as 4xx.

The spec is YAML or JSON from whoever holds the control token. It is parsed with the bounded
loaders (:mod:`contracts.bounded`: no YAML aliases, nesting capped), in a worker thread so a
large one cannot hold up ``/healthz``, and every refusal is a 4xx whose reason quotes at most
the caller's own text, never a file's.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import yaml
from pydantic import ValidationError
from starlette.responses import Response

from contracts._base import error_text, format_validation_error
from contracts.bounded import TooDeep, load_json, load_yaml
from contracts.campaign import CampaignSpec
from orchestrator.web.responses import FieldProblem, problem

__all__ = ["YAML_TYPES", "Refused", "parse_spec", "refuse"]

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")


class Refused(Exception):
    """A campaign request that gets ``response`` (a 4xx) instead of a start."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def refuse(status: int, reason: str, error: str = "invalid campaign") -> Refused:
    return Refused(problem(status, error, reason))


def _fields(err: ValidationError) -> list[FieldProblem]:
    out = []
    for e in err.errors(include_url=False, include_input=False):
        loc = ".".join(str(p) for p in e["loc"] if p != "__root__").replace("from_", "from")
        msg = "unknown field" if e.get("type") == "extra_forbidden" else error_text(e)
        out.append(FieldProblem(field=loc or "(top level)", message=msg))
    return out


def _decode(raw: bytes, as_yaml: bool, where: str) -> dict[str, Any]:
    kind = "YAML" if as_yaml else "JSON"
    try:
        data = load_yaml(raw.decode("utf-8")) if as_yaml else load_json(raw)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark
        line = f"line {mark.line + 1}: " if mark is not None else ""
        raise refuse(400, f"{where}: not valid YAML ({line}{err.problem})") from None
    except yaml.YAMLError:
        raise refuse(400, f"{where}: not valid YAML") from None
    except UnicodeDecodeError:
        raise refuse(400, f"{where}: not UTF-8 text") from None
    except orjson.JSONDecodeError as err:
        raise refuse(400, f"{where}: not valid JSON ({err})") from None
    except TooDeep as err:
        raise refuse(400, f"{where}: not valid {kind} ({err})") from None
    if not isinstance(data, dict):
        raise refuse(422, f"{where}: a campaign is an object (name, ...)")
    return data


def _validate(data: dict[str, Any]) -> CampaignSpec:
    try:
        return CampaignSpec.model_validate(data)
    except ValidationError as err:
        errors = err.errors(include_url=False, include_input=False)
        raise Refused(
            problem(422, "invalid campaign", format_validation_error(errors), fields=_fields(err))
        ) from None


def _names_a_source(contacts: Any) -> bool:
    return isinstance(contacts, dict) and any(
        contacts.get(k) for k in ("csv", "jsonl", "topic", "upload")
    )


def _parse(
    raw: bytes, as_yaml: bool, where: str, upload: dict[str, Any] | None
) -> tuple[CampaignSpec, bool]:
    data = _decode(raw, as_yaml, where)
    awaiting = upload is not None and not _names_a_source(data.get("contacts"))
    if awaiting:
        given = data.get("contacts")
        data["contacts"] = {**(given if isinstance(given, dict) else {}), "upload": upload}
    return _validate(data), awaiting


async def parse_spec(
    raw: bytes, *, as_yaml: bool, where: str = "body", upload: dict[str, Any] | None = None
) -> tuple[CampaignSpec, bool]:
    """The validated spec of ``raw``; :class:`Refused` (400/422) when it is not one.

    With ``upload`` (a placeholder :class:`~contracts.campaign.TopicSlice`), a spec whose
    ``contacts`` names no source gets it, and the second value says so: the contacts are to
    come with the request.
    """
    return await asyncio.to_thread(_parse, raw, as_yaml, where, upload)
