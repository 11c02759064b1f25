"""Budget shares across replicas, and the pure parts of the dial ledger (matching a listing)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contracts.envelopes import CommandKind
from orchestrator.dispatcher.budgets import Budgets
from orchestrator.dispatcher.ledger import (
    LedgerEntry,
    LedgerState,
    destination,
    endpoint_id,
    match_created_call,
)


async def test_rps_is_shared_by_partitions_and_cps_is_not() -> None:
    budgets = Budgets(cps=3, rps=15, app_rps=10)
    acct = budgets.get("default")
    budgets.set_share(owned=1, total=3)
    assert acct.cps.rate == 3  # the account partition's owner has the whole CPS budget
    assert acct.rps.rate == 5
    assert round(acct.app.rate, 3) == 3.333
    later = budgets.get("other")  # created after the rebalance: born with the share
    assert later.rps.rate == 5
    budgets.set_share(owned=2, total=3)
    assert acct.rps.rate == 10
    assert acct.for_kind(CommandKind.CREATE_CALL)[0] == "cps"
    assert acct.for_kind(CommandKind.HANGUP)[0] == "rps"
    assert acct.for_kind(CommandKind.APPLICATION_LIST)[0] == "app"
    # Two replicas' shares never add up to more than the budget, whatever the split (a replica
    # with no partition keeps a token rate: it has no commands to send anyway).
    for owned in range(13):
        a, b = Budgets(3, 15), Budgets(3, 15)
        a.set_share(owned, 12)
        b.set_share(12 - owned, 12)
        la, lb = a.get("d").rps, b.get("d").rps
        assert la.rate + lb.rate <= 15 + 1e-3
        assert la.log.limit(0.0) * (la.rate >= 1) + lb.log.limit(0.0) * (lb.rate >= 1) <= 15
        await a.aclose()
        await b.aclose()
    await budgets.aclose()


def test_a_new_limiter_is_born_saturated() -> None:
    """It may take over from a replica that used the whole window a moment ago."""
    budgets = Budgets(cps=3, rps=15)
    import asyncio

    async def check() -> None:
        acct = budgets.get("default")
        assert acct.cps.acquire_nowait() is None
        assert acct.cps.log.active(acct.cps.now()) == 3
        await budgets.aclose()

    asyncio.run(check())


def test_destination_identity() -> None:
    body = {"to": [{"type": "phone", "number": "+447700900001"}, {"type": "phone", "number": "1"}]}
    assert destination(body) == "phone:447700900001"  # Vonage dials the first; '+' ignored
    assert endpoint_id({"type": "sip", "uri": "sip:a@b.example"}) == "sip:sip:a@b.example"
    assert endpoint_id({"type": "app", "user": "alice"}) == "app:alice"
    assert destination({}) is None


T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def call(uuid: str, number: str, **kw: object) -> dict[str, object]:
    return {"uuid": uuid, "to": {"type": "phone", "number": number}, "direction": "outbound", **kw}


def test_match_finds_our_call_and_nothing_else() -> None:
    to = "phone:447700900001"
    listing = [
        call("old", "447700900001", start_time=(T0 - timedelta(minutes=5)).isoformat()),
        call("other-number", "447700900002"),
        call("inbound", "447700900001", direction="inbound"),
        call("claimed", "447700900001"),
        call("ours", "447700900001"),
        call("later", "447700900001", start_time=(T0 + timedelta(seconds=30)).isoformat()),
    ]
    found = match_created_call(listing, to=to, first_at=T0, claimed={"claimed"})
    assert found is not None and found["uuid"] == "ours"
    assert match_created_call(listing[:4], to=to, first_at=T0, claimed={"claimed"}) is None
    assert match_created_call(listing, to=None, first_at=T0, claimed=set()) is None


def test_ledger_entry_round_trip() -> None:
    entry = LedgerEntry(
        command_id="c1",
        call_ref="r1",
        state=LedgerState.SENDING,
        to="phone:1",
        at=T0,
        first_at=T0,
        source_partition=2,
        source_offset=7,
    )
    back = LedgerEntry.model_validate_json(entry.to_bytes())
    assert back == entry and back.state is LedgerState.SENDING and not back.final
    assert entry.model_copy(update={"state": LedgerState.CREATED}).final
