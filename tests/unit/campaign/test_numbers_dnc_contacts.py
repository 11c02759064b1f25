"""E.164 normalisation, DNC lists and the lazy contact readers."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from contracts.campaign import ContactsSource, parse_campaign_yaml
from handlers.campaign import CampaignMachine, FinalResult, LegOutcome
from orchestrator.campaign.contacts import ContactFileError, FileContactReader, iter_contacts
from orchestrator.campaign.dnc import load_dnc
from orchestrator.campaign.numbers import to_e164


@pytest.mark.parametrize(
    ("raw", "region", "expected"),
    [
        ("+44 7700 900123", "US", "+447700900123"),
        ("07700 900123", "GB", "+447700900123"),
        ("0044 7700 900123", "US", "+447700900123"),
        ("(415) 555-0100", "US", "+14155550100"),
        ("1-415-555-0100", "US", "+14155550100"),
        ("14155550100", "US", "+14155550100"),
        ("not a number", "US", None),
        ("12", "US", None),
        ("", "US", None),
    ],
)
def test_e164(raw: str, region: str, expected: str | None) -> None:
    assert to_e164(raw, region) == expected


def test_dnc_matches_any_spelling(tmp_path: Path) -> None:
    f = tmp_path / "dnc.txt"
    f.write_text("number\n# comment\n+1 (415) 555-0100\n\n0044 7700 900123,extra\nbogus1\n")
    dnc = load_dnc([str(f)], "US")
    assert "+14155550100" in dnc
    assert "+447700900123" in dnc
    assert len(dnc) == 2
    assert dnc.rejected == [(str(f), 6)]  # the line, never its text


def test_csv_reader_columns_variables_and_start(tmp_path: Path) -> None:
    f = tmp_path / "c.csv"
    f.write_text(
        "Number,name,timezone,plan\n"
        "415 555 0100,Ann,America/Los_Angeles,gold\n"
        "+447700900123,Bob,,silver\n"
        "garbage,Eve,,x\n"
    )
    src = ContactsSource(csv=str(f))
    got = list(iter_contacts(src))
    assert [c.number for c in got] == ["+14155550100", "+447700900123", "garbage"]
    assert [c.valid for c in got] == [True, True, False]
    assert got[0].timezone == "America/Los_Angeles" and got[1].timezone is None
    assert got[0].variables == {"plan": "gold"}
    assert [c.contact_id for c in got] == ["0", "1", "2"]
    assert [c.index for c in iter_contacts(src, start=2)] == [2]


def test_jsonl_reader_nested_variables_and_errors(tmp_path: Path) -> None:
    f = tmp_path / "c.jsonl"
    f.write_text(
        '{"id": "a1", "number": "+14155550100", "variables": {"amount": 12}}\n\n'
        '{"number": "+447700900123", "name": "Bob"}\n'
    )
    got = list(iter_contacts(ContactsSource(jsonl=str(f))))
    assert got[0].contact_id == "a1" and got[0].variables == {"amount": "12"}
    assert got[1].contact_id == "1" and got[1].name == "Bob"
    f.write_text("{nope\n")
    with pytest.raises(ContactFileError, match=r"c.jsonl:1: not JSON"):
        list(iter_contacts(ContactsSource(jsonl=str(f))))
    f2 = tmp_path / "bad.csv"
    f2.write_text("name,city\nAnn,Paris\n")
    with pytest.raises(ContactFileError, match="no number column"):
        list(iter_contacts(ContactsSource(csv=str(f2))))


def _write_contacts(path: Path, n: int) -> None:
    with path.open("wb") as fh:
        for i in range(n):
            fh.write(
                orjson.dumps({"number": f"+1415555{i % 10000:04d}", "name": f"Person {i}"}) + b"\n"
            )


SPEC = """\
name: mem
contacts: {jsonl: x}
from: {numbers: ["14155550000"]}
flow: {ncco: [{action: talk, text: "hi {{name}}"}]}
pacing: {max_concurrent: 50}
calling_hours: null
"""


def _stream_through_machine(path: Path) -> tuple[int, int]:
    """Run every contact of the file through the machine (each call ends at once); peak bytes."""
    spec = parse_campaign_yaml(SPEC).model_copy(
        update={"contacts": ContactsSource(jsonl=str(path))}
    )
    machine = CampaignMachine(spec, run="r", cps_limit=1000.0)
    reader = FileContactReader(spec.contacts)
    now = datetime(2026, 1, 5, 12, tzinfo=UTC)
    finals = 0
    tracemalloc.start()
    try:
        while machine.active:
            outs = machine.add_contacts(reader.read(machine.wants()), reader.eof, now)
            outs += machine.tick(now)
            for ref in list(machine.in_flight):
                outs += machine.on_event(LegOutcome(ref, "answered", now), now)
            finals += sum(isinstance(o, FinalResult) for o in outs)
            machine.drain_changes()
            now += timedelta(milliseconds=50)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return finals, peak


def test_memory_grows_with_calls_in_flight_not_with_the_list(tmp_path: Path) -> None:
    warm, small, big = (tmp_path / f"{n}.jsonl" for n in ("warm", "small", "big"))
    _write_contacts(warm, 300)
    _write_contacts(small, 3_000)
    _write_contacts(big, 100_000)
    _stream_through_machine(warm)  # imports, metadata and caches load once
    n_small, peak_small = _stream_through_machine(small)
    n_big, peak_big = _stream_through_machine(big)
    print(f"peak bytes: 3k contacts {peak_small:,}  100k contacts {peak_big:,}")
    assert (n_small, n_big) == (3_000, 100_000)
    # 33x the contacts, about the same peak: the list is never held in memory.
    assert peak_big < 2 * peak_small + 256 * 1024
    assert peak_big < 8 * 1024 * 1024
