"""The campaign commands that need no broker, and what each says when there is none."""

from __future__ import annotations

import socket
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner

from orchestrator.cli import cli

CAMPAIGN = """\
name: offline
contacts: {csv: contacts.csv}
from: {numbers: ["14155550000"]}
flow:
  ncco:
    - action: talk
      text: "Hi {{first_name}}"
calling_hours: null
"""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "contacts.csv").write_text(
        "number,first_name,timezone\n+14155550100,Chen,\n+14155550101,Ann,Mars/Olympus\n"
    )
    f = tmp_path / "c.yaml"
    f.write_text(CAMPAIGN)
    return f


def test_validate_exits_nonzero_naming_each_mistake(files: Path) -> None:
    files.write_text(CAMPAIGN.replace("first_name", "firstname"))
    res = CliRunner().invoke(cli, ["campaign", "validate", str(files)])
    assert res.exit_code == 1, res.output
    assert (
        f"error: {files}:7: flow.ncco.0.text: {{{{firstname}}}} is not a contact column; "
        "did you mean first_name?"
    ) in res.stderr
    assert "row 2, column timezone: unknown time zone 'Mars/Olympus'" in res.stderr
    assert "2 error(s)" in res.stdout


def test_validate_a_good_file_shows_counts_samples_retries_and_estimate(files: Path) -> None:
    (files.parent / "contacts.csv").write_text(
        "number,first_name\n+14155550100,Chen\n+14155550101,Ann\n12\n+14155550103,Bo\n"
        "+14155550104,Di\n"
    )
    files.write_text(CAMPAIGN + "dnc: [dnc.txt]\n")
    (files.parent / "dnc.txt").write_text("+14155550101\n")
    res = CliRunner().invoke(cli, ["campaign", "validate", str(files)])
    assert res.exit_code == 0, res.output
    out = res.stdout
    assert "contacts: 5 rows, 1 invalid, 1 on the DNC list, 3 to dial" in out
    assert out.count("sample: row") == 3
    assert '{"action":"talk","text":"Hi Chen"}' in out
    assert "estimated: 18 s for the first attempts" in out  # 10 calls of 60 s at once
    assert "timeout        30 min                    3" in out
    assert max(len(line) for line in out.splitlines()) <= 80


def test_validate_json(files: Path) -> None:
    res = CliRunner().invoke(cli, ["campaign", "validate", "--json", str(files)])
    assert res.exit_code == 1
    doc = orjson.loads(res.stdout)
    assert doc["ok"] is False
    assert [(e["row"], e["column"]) for e in doc["errors"]] == [(2, "timezone")]
    assert doc["retry"][2] == {"disposition": "timeout", "delay_s": 1800.0, "max_attempts": 3}


def test_unknown_flow_name_with_the_ingress_flows(files: Path) -> None:
    examples = Path(__file__).parents[3] / "examples" / "flows"
    files.write_text(
        CAMPAIGN.replace(
            '  ncco:\n    - action: talk\n      text: "Hi {{first_name}}"\n', "  name: welcom\n"
        )
    )
    res = CliRunner().invoke(cli, ["campaign", "validate", "--flows", str(examples), str(files)])
    assert res.exit_code == 1
    assert f"{files}:5: flow.name: no flow named 'welcom'; did you mean welcome?" in res.stderr


def test_start_dry_run_validates_without_a_broker(files: Path) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{_closed_port()}"}
    res = CliRunner().invoke(cli, ["campaign", "start", "--dry-run", str(files)], env=env)
    assert res.exit_code == 1  # Mars/Olympus
    assert "unknown time zone 'Mars/Olympus'" in res.stderr
    assert "cannot reach" not in res.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["start", "FILE"],
        ["status", "x"],
        ["status", "x", "--json"],
        ["list"],
        ["results", "x", "--json"],
        ["pause", "x"],
        ["resume", "x"],
        ["cancel", "x"],
    ],
)
def test_unreachable_broker_is_one_line_and_exit_1(files: Path, args: list[str]) -> None:
    (files.parent / "contacts.csv").write_text("number,first_name\n+14155550100,Chen\n")
    addr = f"127.0.0.1:{_closed_port()}"
    args = [str(files) if a == "FILE" else a for a in args]
    res = CliRunner().invoke(cli, ["campaign", *args], env={"KAFKA_BOOTSTRAP_SERVERS": addr})
    assert res.exit_code == 1, res.output
    assert res.stderr == (
        f"error: cannot reach the Kafka broker at {addr} (KAFKA_BOOTSTRAP_SERVERS): "
        "is it running?\n"
    )
    assert res.stdout == ""


def test_start_refuses_what_validate_refuses_before_any_connection(files: Path) -> None:
    env = {"KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{_closed_port()}"}
    res = CliRunner().invoke(cli, ["campaign", "start", str(files)], env=env)
    assert res.exit_code == 2
    assert res.stderr.splitlines() == [
        f"error: {files.parent / 'contacts.csv'}: row 2, column timezone: "
        "unknown time zone 'Mars/Olympus'",
        f"not started: `orchestrator campaign validate {files}` shows the report",
    ]
