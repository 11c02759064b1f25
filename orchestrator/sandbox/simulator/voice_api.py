"""Voice API v1 handlers: ``/v1/calls`` and ``/v1/files`` (spec ``voice.yml`` + DIGEST §2.1).

Request validation is deliberately *lenient about extra fields and strict about the documented
ones*, like the real API: unknown keys are ignored, a documented key with a wrong type or range is
a 400. The NCCO of a created call is only checked when the call runs (an invalid NCCO produces an
``error`` event, not a 400); an NCCO in a transfer is checked at once, because the request carries
it and can be refused.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from orchestrator.sandbox.simulator import problems
from orchestrator.sandbox.simulator.calls import ANSWERED_STATUSES, Call, Hangup, Transfer
from orchestrator.sandbox.simulator.http import MAX_INDEX, Ctx, Resp
from orchestrator.sandbox.simulator.ncco_runner import validate_ncco

__all__ = ["HANDLERS"]

_PHONE = re.compile(r"^\d{7,15}$")
_DIGITS = re.compile(r"^[0-9*#p]+$")
_STATUSES = (
    "started",
    "ringing",
    "answered",
    "machine",
    "completed",
    "busy",
    "cancelled",
    "failed",
    "rejected",
    "timeout",
    "unanswered",
)
_WS_TYPES = ("audio/l16;rate=8000", "audio/l16;rate=16000", "audio/l16;rate=24000")


def _is_url(v: Any) -> bool:
    return isinstance(v, str) and "://" in v and len(v) <= 2048


def _url_list(body: dict[str, Any], key: str, invalid: list[tuple[str, str]]) -> list[str] | None:
    v = body.get(key)
    if v is None:
        return None
    if not isinstance(v, list) or not v or not all(_is_url(u) for u in v):
        invalid.append((key, "must be an array of absolute URLs"))
        return None
    return [str(u) for u in v]


def _int_in(
    body: dict[str, Any], key: str, lo: int, hi: int, invalid: list[tuple[str, str]]
) -> int | None:
    v = body.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        invalid.append((key, f"must be an integer between {lo} and {hi}"))
        return None
    return v


def _check_endpoint(ep: Any, where: str, invalid: list[tuple[str, str]]) -> None:
    if not isinstance(ep, dict):
        invalid.append((where, "must be an endpoint object"))
        return
    kind = ep.get("type")
    if kind == "phone":
        if not isinstance(ep.get("number"), str) or not _PHONE.match(ep["number"]):
            invalid.append((f"{where}.number", "must be 7-15 digits (E.164 without +)"))
    elif kind == "sip":
        uri = ep.get("uri")
        if not isinstance(uri, str) or not uri.startswith(("sip:", "sips:")):
            invalid.append((f"{where}.uri", "must be a SIP URI"))
    elif kind == "websocket":
        if not isinstance(ep.get("uri"), str) or not ep["uri"].startswith(("ws://", "wss://")):
            invalid.append((f"{where}.uri", "must be a ws:// or wss:// URI"))
        if ep.get("content-type") not in _WS_TYPES:
            invalid.append((f"{where}.content-type", f"must be one of {', '.join(_WS_TYPES)}"))
    elif kind == "vbc":
        if not isinstance(ep.get("extension"), str | int) or isinstance(ep.get("extension"), bool):
            invalid.append((f"{where}.extension", "is required"))
    elif kind == "app":
        if not isinstance(ep.get("user"), str) or not ep["user"]:
            invalid.append((f"{where}.user", "is required"))
    else:
        invalid.append((f"{where}.type", "must be one of phone, sip, websocket, vbc, app"))


def _bad(invalid: list[tuple[str, str]]) -> Resp:
    detail = "; ".join(f"{n}: {r}" for n, r in invalid[:3])
    return Resp(400, problems.bad_request(detail, invalid_parameters=invalid))


# --- create ---------------------------------------------------------------------------------------


async def create_call(ctx: Ctx) -> Resp:
    body = ctx.body
    engine = ctx.engine
    app = ctx.app
    assert app is not None
    if not isinstance(body, dict):
        return _bad([("body", "must be a JSON object")])
    invalid: list[tuple[str, str]] = []
    to = body.get("to")
    if not isinstance(to, list) or not to:
        invalid.append(("to", "is required: an array of endpoints"))
    else:
        for i, ep in enumerate(to):
            _check_endpoint(ep, f"to[{i}]", invalid)
    has_ncco, has_answer = body.get("ncco") is not None, body.get("answer_url") is not None
    if has_ncco == has_answer:
        invalid.append(("ncco", "give exactly one of ncco or answer_url"))
    if has_ncco and not isinstance(body.get("ncco"), list):
        invalid.append(("ncco", "must be an array of actions"))
    answer_url = _url_list(body, "answer_url", invalid)
    event_url = _url_list(body, "event_url", invalid)
    for key, default in (("answer_method", "GET"), ("event_method", "POST")):
        if body.get(key, default) not in ("GET", "POST"):
            invalid.append((key, "must be GET or POST"))
    from_ = body.get("from")
    random_from = body.get("random_from_number")
    if random_from is not None and not isinstance(random_from, bool):
        invalid.append(("random_from_number", "must be a boolean"))
    if from_ is not None and random_from:
        invalid.append(("from", "from and random_from_number are mutually exclusive"))
    elif from_ is None and not random_from:
        invalid.append(("from", "give from, or random_from_number: true"))
    elif from_ is not None:
        if not isinstance(from_, dict) or from_.get("type", "phone") != "phone":
            invalid.append(("from", "must be a phone endpoint"))
        else:
            num = from_.get("number")
            if not isinstance(num, str) or not (
                _PHONE.match(num) or num.startswith(("sip:", "sips:"))
            ):
                invalid.append(("from.number", "must be 7-15 digits or a SIP URI"))
    md = body.get("machine_detection")
    if md is not None and md not in ("continue", "hangup"):
        invalid.append(("machine_detection", "must be continue or hangup"))
    amd = body.get("advanced_machine_detection")
    if amd is not None:
        if not isinstance(amd, dict):
            invalid.append(("advanced_machine_detection", "must be an object"))
        else:
            if amd.get("behavior", "continue") not in ("continue", "hangup"):
                invalid.append(
                    ("advanced_machine_detection.behavior", "must be continue or hangup")
                )
            if amd.get("mode", "detect") not in ("default", "detect", "detect_beep"):
                invalid.append(
                    ("advanced_machine_detection.mode", "must be default, detect or detect_beep")
                )
            _int_in(amd, "beep_timeout", 30, 120, invalid)
    length_timer = _int_in(body, "length_timer", 1, 86400, invalid)
    ringing_timer = _int_in(body, "ringing_timer", 1, 120, invalid)
    if event_url is None and "event_url" not in body and app.webhook_address("event_url") is None:
        invalid.append(("event_url", "is required unless the application has an event_url"))
    if invalid:
        return _bad(invalid)

    ev_url: str | None
    if event_url is not None:
        ev_url, ev_method = event_url[0], str(body.get("event_method") or "POST")
    else:
        hook = app.webhook_address("event_url")
        ev_url, ev_method = (
            (hook[0], str(body.get("event_method") or hook[1])) if hook else (None, "POST")
        )
    if from_ is None:
        from_ = {"type": "phone", "number": "447700900000"}
    assert isinstance(to, list)
    call = engine.new_leg(
        app_id=app.id,
        to=dict(to[0]),
        from_=dict(from_),
        event_url=ev_url,
        event_method=ev_method,
        now_mono=ctx.mono,
    )
    if has_ncco:
        call.ncco = list(body["ncco"])
    else:
        call.answer_url = answer_url
        call.answer_method = str(body.get("answer_method") or "GET")
    call.machine_detection = md
    call.amd = dict(amd) if isinstance(amd, dict) else None
    if length_timer is not None:
        call.length_timer = length_timer
    if ringing_timer is not None:
        call.ringing_timer = ringing_timer
    ctx.rec.call_uuid = call.uuid
    ctx.legs.launch(call)
    return Resp(
        201,
        {
            "uuid": call.uuid,
            "status": "started",
            "direction": "outbound",
            "conversation_uuid": call.conversation_uuid,
        },
    )


# --- read -----------------------------------------------------------------------------------------


def _parse_time(value: str) -> float | None:
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.timestamp()


async def list_calls(ctx: Ctx) -> Resp:
    q = ctx.query
    invalid: list[tuple[str, str]] = []

    def int_param(name: str, default: int, lo: int, hi: int | None) -> int:
        raw = q.get(name)
        if raw is None:
            return default
        try:
            v = int(raw)
        except ValueError:
            invalid.append((name, "must be an integer"))
            return default
        if v < lo or (hi is not None and v > hi):
            invalid.append((name, f"must be between {lo} and {hi}" if hi else f"must be >= {lo}"))
            return default
        return v

    page_size = int_param("page_size", 10, 1, 100)
    record_index = int_param("record_index", 0, 0, MAX_INDEX)
    order = q.get("order", "asc")
    if order not in ("asc", "desc"):
        invalid.append(("order", "must be asc or desc"))
    status = q.get("status")
    if status is not None and status not in _STATUSES:
        invalid.append(("status", f"must be one of {', '.join(_STATUSES)}"))
    start = end = None
    if "date_start" in q:
        start = _parse_time(q["date_start"])
        if start is None:
            invalid.append(("date_start", "must be an ISO 8601 date-time"))
    if "date_end" in q:
        end = _parse_time(q["date_end"])
        if end is None:
            invalid.append(("date_end", "must be an ISO 8601 date-time"))
    if invalid:
        return _bad(invalid)
    conv = q.get("conversation_uuid")
    calls: list[Call] = [
        c
        for c in ctx.engine.calls
        if (status is None or c.status == status)
        and (conv is None or c.conversation_uuid == conv or c.origin_conversation_uuid == conv)
        # Filtered on the real clock: a client windows its listing by its own clock, which
        # agrees with Vonage's; the simulated (scaled) telephony clock runs far ahead of it.
        and (start is None or c.created_wall >= start)
        and (end is None or c.created_wall <= end)
    ]
    if order == "desc":
        calls.reverse()
    total = len(calls)
    page = calls[record_index : record_index + page_size]
    base = {k: v for k, v in q.items() if k not in ("page_size", "record_index")}

    def href(index: int | None) -> dict[str, str]:
        params: dict[str, Any] = {"page_size": page_size, **base}
        if index is not None:
            params["record_index"] = index
        return {"href": "/v1/calls?" + urlencode(params)}

    last_index = max(0, ((total - 1) // page_size) * page_size) if total else 0
    links: dict[str, Any] = {
        "self": href(record_index),
        "first": href(None),
        "last": href(last_index),
    }
    if record_index + page_size < total:
        links["next"] = href(record_index + page_size)
    if record_index > 0:
        links["prev"] = href(max(0, record_index - page_size))
    return Resp(
        200,
        {
            "count": total,
            "page_size": page_size,
            "record_index": record_index,
            "_links": links,
            "_embedded": {"calls": [c.to_api() for c in page]},
        },
    )


def _call_or_404(ctx: Ctx) -> Call | Resp:
    uuid = ctx.params["uuid"]
    call = ctx.engine.calls.get(uuid)
    if call is None:
        return Resp(404, problems.not_found(uuid))
    ctx.rec.call_uuid = call.uuid
    return call


async def get_call(ctx: Ctx) -> Resp:
    call = _call_or_404(ctx)
    if isinstance(call, Resp):
        return call
    return Resp(200, call.to_api())


# --- modify ---------------------------------------------------------------------------------------


def _live_call(ctx: Ctx, *, need_answer: bool) -> Call | Resp:
    """The call, if it can be modified now: 404 if unknown or over, 400 if too early."""
    call = _call_or_404(ctx)
    if isinstance(call, Resp):
        return call
    engine = ctx.engine
    if call.ended:
        return Resp(404, problems.not_found(call.uuid))
    if engine.clock.sim_elapsed(call.created_mono) < engine.profile.limits.too_early_seconds:
        ctx.rec.reason = "too_early"
        engine.ledger.count("too_early")
        return Resp(400, problems.too_early())
    if need_answer and call.status not in ANSWERED_STATUSES:
        return Resp(
            400, problems.bad_request(f"Call {call.uuid} is not answered (status {call.status}).")
        )
    return call


async def update_call(ctx: Ctx) -> Resp:
    body = ctx.body
    if not isinstance(body, dict) or body.get("action") not in (
        "transfer",
        "hangup",
        "mute",
        "unmute",
        "earmuff",
        "unearmuff",
    ):
        return _bad(
            [("action", "must be one of transfer, hangup, mute, unmute, earmuff, unearmuff")]
        )
    action = body["action"]
    ncco: list[Any] | None = None
    urls: list[str] | None = None
    if action == "transfer":
        dest = body.get("destination")
        if not isinstance(dest, dict) or dest.get("type", "ncco") != "ncco":
            return _bad(
                [("destination", "must be {type: ncco, ncco: [...]} or {type: ncco, url: [...]}")]
            )
        if (dest.get("ncco") is None) == (dest.get("url") is None):
            return _bad([("destination", "give exactly one of ncco or url")])
        if dest.get("ncco") is not None:
            problem = validate_ncco(dest["ncco"])
            if problem is not None:
                return _bad([("destination.ncco", problem)])
            ncco = list(dest["ncco"])
        else:
            invalid: list[tuple[str, str]] = []
            urls = _url_list(dest, "url", invalid)
            if invalid:
                return _bad([("destination.url", "must be an array of absolute URLs")])
    call = _live_call(ctx, need_answer=False)
    if isinstance(call, Resp):
        return call
    if action == "hangup":
        call.interrupt(Hangup("api"))
    elif action == "transfer":
        if call.answered:
            call.interrupt(Transfer(ncco, urls))
        else:
            # Not answered yet: the new NCCO is what runs on answer.
            call.ncco, call.answer_url = ncco, urls
    elif action in ("mute", "unmute"):
        call.muted = action == "mute"
    else:
        call.earmuffed = action == "earmuff"
    return Resp(204, None)


def _message(call: Call, text: str) -> Resp:
    return Resp(200, {"message": text, "uuid": call.uuid})


def _loop_level(body: dict[str, Any], invalid: list[tuple[str, str]]) -> None:
    loop = body.get("loop")
    if loop is not None and (isinstance(loop, bool) or not isinstance(loop, int) or loop < 0):
        invalid.append(("loop", "must be an integer >= 0"))
    level = body.get("level")
    if level is not None:
        try:
            ok = -1 <= float(level) <= 1 and not isinstance(level, bool)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            invalid.append(("level", "must be between -1 and 1"))


async def start_talk(ctx: Ctx) -> Resp:
    body = ctx.body if isinstance(ctx.body, dict) else None
    invalid: list[tuple[str, str]] = []
    if body is None or not isinstance(body.get("text"), str) or not body["text"].strip():
        invalid.append(("text", "is required"))
    else:
        _loop_level(body, invalid)
        if len(body["text"]) > 3000:
            invalid.append(("text", "is too long"))
    if invalid:
        return _bad(invalid)
    call = _live_call(ctx, need_answer=True)
    return call if isinstance(call, Resp) else _message(call, "Talk started")


async def stop_talk(ctx: Ctx) -> Resp:
    call = _live_call(ctx, need_answer=True)
    return call if isinstance(call, Resp) else _message(call, "Talk stopped")


async def start_stream(ctx: Ctx) -> Resp:
    body = ctx.body if isinstance(ctx.body, dict) else None
    invalid: list[tuple[str, str]] = []
    if body is None:
        invalid.append(("stream_url", "is required"))
    else:
        _url_list(body, "stream_url", invalid)
        if body.get("stream_url") is None:
            invalid.append(("stream_url", "is required"))
        _loop_level(body, invalid)
    if invalid:
        return _bad(invalid)
    call = _live_call(ctx, need_answer=True)
    return call if isinstance(call, Resp) else _message(call, "Stream started")


async def stop_stream(ctx: Ctx) -> Resp:
    call = _live_call(ctx, need_answer=True)
    return call if isinstance(call, Resp) else _message(call, "Stream stopped")


async def start_dtmf(ctx: Ctx) -> Resp:
    body = ctx.body if isinstance(ctx.body, dict) else None
    digits = body.get("digits") if body else None
    if isinstance(digits, int) and not isinstance(digits, bool):
        digits = str(digits)
    if not isinstance(digits, str) or not _DIGITS.match(digits):
        return _bad([("digits", "must be a string of 0-9, *, # and p")])
    call = _live_call(ctx, need_answer=True)
    return call if isinstance(call, Resp) else _message(call, "DTMF sent")


async def subscribe_dtmf(ctx: Ctx) -> Resp:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    invalid: list[tuple[str, str]] = []
    urls = _url_list(body, "event_url", invalid)
    if urls is None and not invalid:
        invalid.append(("event_url", "is required"))
    if invalid:
        return _bad(invalid)
    call = _live_call(ctx, need_answer=True)
    if isinstance(call, Resp):
        return call
    call.dtmf_subscription = urls
    return Resp(200, None)


async def unsubscribe_dtmf(ctx: Ctx) -> Resp:
    call = _live_call(ctx, need_answer=True)
    if isinstance(call, Resp):
        return call
    call.dtmf_subscription = None
    return Resp(200, None)


async def get_file(ctx: Ctx) -> Resp:
    file_id = ctx.params["id"]
    rec = ctx.engine.recordings.get(file_id)
    if rec is None:
        return Resp(404, problems.not_found(file_id))
    if ctx.app is None or ctx.app.id != rec.app_id:
        ctx.rec.reason = "recording belongs to another application"
        return Resp(401, problems.unauthorized())
    return Resp(200, rec.data, rec.content_type)


HANDLERS = {
    "create_call": create_call,
    "list_calls": list_calls,
    "get_call": get_call,
    "update_call": update_call,
    "start_talk": start_talk,
    "stop_talk": stop_talk,
    "start_stream": start_stream,
    "stop_stream": stop_stream,
    "start_dtmf": start_dtmf,
    "subscribe_dtmf": subscribe_dtmf,
    "unsubscribe_dtmf": unsubscribe_dtmf,
    "get_file": get_file,
}
