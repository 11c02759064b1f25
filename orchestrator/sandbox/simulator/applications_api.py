"""Application API v2 handlers: ``/v2/applications`` CRUD with Basic auth (spec ``application.v2.yml``)."""

from __future__ import annotations

import math

from orchestrator.sandbox.simulator import problems
from orchestrator.sandbox.simulator.applications import validate_application_body
from orchestrator.sandbox.simulator.http import MAX_INDEX, Ctx, Resp

__all__ = ["HANDLERS"]


async def list_applications(ctx: Ctx) -> Resp:
    q = ctx.query
    invalid: list[tuple[str, str]] = []
    values: dict[str, int] = {}
    for name, default, lo, hi in (("page_size", 10, 1, 100), ("page", 1, 1, MAX_INDEX)):
        raw = q.get(name)
        if raw is None:
            values[name] = default
            continue
        try:
            v = int(raw)
        except ValueError:
            invalid.append((name, "must be an integer"))
            continue
        if v < lo or (hi is not None and v > hi):
            invalid.append((name, f"must be between {lo} and {hi}" if hi else f"must be >= {lo}"))
            continue
        values[name] = v
    if invalid:
        return Resp(400, problems.application_list_validation(invalid))
    size, page = values["page_size"], values["page"]
    apps, total = ctx.engine.apps.page(page, size)
    pages = max(1, math.ceil(total / size))

    def href(p: int | None) -> dict[str, str]:
        tail = f"&page={p}" if p is not None else ""
        return {"href": f"/v2/applications?page_size={size}{tail}"}

    links = {"self": href(page), "first": href(None), "last": href(pages)}
    if page < pages:
        links["next"] = href(page + 1)
    if page > 1:
        links["prev"] = href(page - 1)
    return Resp(
        200,
        {
            "page_size": size,
            "page": page,
            "total_items": total,
            "total_pages": pages,
            "_embedded": {"applications": [a.to_json() for a in apps]},
            "_links": links,
        },
    )


async def create_application(ctx: Ctx) -> Resp:
    invalid, fields = validate_application_body(ctx.body)
    if invalid:
        return Resp(400, problems.payload_validation(invalid))
    app = ctx.engine.apps.create(
        fields["name"],
        public_key_pem=fields["public_key"],
        capabilities=fields["capabilities"],
        privacy=fields["privacy"],
    )
    return Resp(201, app.to_json(include_private=True))


async def get_application(ctx: Ctx) -> Resp:
    app = ctx.engine.apps.get(ctx.params["id"])
    if app is None:
        return Resp(404, problems.not_found(ctx.params["id"]))
    return Resp(200, app.to_json())


async def update_application(ctx: Ctx) -> Resp:
    app = ctx.engine.apps.get(ctx.params["id"])
    if app is None:
        return Resp(404, problems.not_found(ctx.params["id"]))
    invalid, fields = validate_application_body(ctx.body)
    if invalid:
        return Resp(400, problems.payload_validation(invalid))
    ctx.engine.apps.update(app, fields)
    ctx.engine.verifier.forget()  # a new public key invalidates cached tokens
    return Resp(200, app.to_json())


async def delete_application(ctx: Ctx) -> Resp:
    if not ctx.engine.apps.delete(ctx.params["id"]):
        return Resp(404, problems.not_found(ctx.params["id"]))
    ctx.engine.verifier.forget()
    return Resp(204, None)


HANDLERS = {
    "list_applications": list_applications,
    "create_application": create_application,
    "get_application": get_application,
    "update_application": update_application,
    "delete_application": delete_application,
}
