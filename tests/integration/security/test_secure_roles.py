"""Every role over SASL_SSL, each as its own SCRAM user under the generated least-privilege ACLs,
and the one-line failures of a wrong password and of an untrusted CA.

One secure broker for the module (``--tls`` plus SCRAM users named after the generated
``KafkaUser`` resources, Kafka's ``StandardAuthorizer`` on, deny by default) with the ACLs of
``deploy/k8s/kafka-users`` applied for this module's topic prefix. Nothing is mocked: the roles are
separate processes started the way a pod starts them, and a campaign goes the whole way (CLI ->
controller -> dispatcher -> Voice API simulator -> signed webhooks -> ingress -> worker ->
controller -> results -> CLI), so every role reads and writes its topics through TLS with SCRAM
credentials and nothing more than its ACLs allow.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from deploy import gen_users
from orchestrator.kafka.admin import ensure_topics
from orchestrator.localbroker import LocalBroker, free_port
from orchestrator.localbroker.security import BrokerSecurity, SaslUser
from orchestrator.localbroker.tls import load_or_create_ca
from orchestrator.sandbox.simulator import Simulator
from tests.conftest import make_settings
from tests.integration.campaign.harness import private_key_pem
from tests.integration.security.acls import apply_generated_acls
from tests.integration.security.helpers import (
    Finished,
    Role,
    clean_env,
    run_to_end,
    strimzi_mount,
    wait_ready,
)

pytestmark = [pytest.mark.integration]

PREFIX = f"sec{os.getpid()}."
USERS = {u.role: u.name for u in gen_users.users()}
PASSWORDS = {name: f"pw-{secrets.token_urlsafe(12)}" for name in USERS.values()}
#: Exit within this, says the issue; every failure below is measured against it.
FAIL_WITHIN_S = 30.0


@pytest.fixture(scope="module")
def secure_broker() -> Iterator[LocalBroker]:
    scram = tuple(SaslUser(name, PASSWORDS[name]) for name in USERS.values())
    broker = LocalBroker(security=BrokerSecurity(tls=True, scram=scram, authorizer=True)).start()
    try:
        # Topics as Strimzi's Topic Operator would make them (roles may not create topics).
        admin = make_settings(broker.bootstrap, topic_prefix=PREFIX, topic_partitions=2)
        asyncio.run(ensure_topics(admin, create=True))
        asyncio.run(apply_generated_acls(broker.bootstrap, PREFIX))
        yield broker
    finally:
        broker.stop()


def _secure_env(broker: LocalBroker, role: str, **extra: str) -> dict[str, str]:
    user = USERS[role]
    return clean_env(
        KAFKA_BOOTSTRAP_SERVERS=broker.secure_bootstrap,
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        KAFKA_SASL_USERNAME=user,
        KAFKA_SASL_PASSWORD=PASSWORDS[user],
        KAFKA_SSL_CA_FILE=str(broker.ca_file),
        TOPIC_PREFIX=PREFIX,
        LOG_FORMAT="json",
        LOG_LEVEL="warning",
        **extra,
    )


def _strimzi_env(broker: LocalBroker, role: str, mount: Path, **extra: str) -> dict[str, str]:
    """The pod's way: the KafkaUser secret and the cluster CA mounted as KAFKA_CREDENTIALS_DIR,
    the user name taken from ``sasl.jaas.config`` (Strimzi writes no ``username`` key)."""
    user = USERS[role]
    jaas = (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{user}" password="{PASSWORDS[user]}";'
    )
    strimzi_mount(
        mount,
        {
            "ca.crt": broker.ca_file.read_bytes(),
            "password": PASSWORDS[user].encode(),
            "sasl.jaas.config": jaas.encode(),
        },
    )
    env = _secure_env(broker, role, KAFKA_CREDENTIALS_DIR=str(mount), **extra)
    for name in ("KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD", "KAFKA_SSL_CA_FILE"):
        del env[name]
    return env


CAMPAIGN = """\
name: {name}
contacts: {{csv: {contacts}}}
from: {{numbers: ["+14155550000"]}}
flow: {{ncco: [{{action: talk, text: "Hello {{{{name}}}}"}}]}}
calling_hours: null
"""

PROFILE = {
    "seed": 7,
    "outcomes": {"human": 100},
    "timing": {"ring": [1, 1], "talk": [1, 1], "amd": [1, 1]},
    "events": {"reorder_started_ringing": 0.0, "reorder_final_completed": 0.0, "duplicate": 0.0},
}


def _no_password_in(text: str, where: str) -> None:
    for pw in PASSWORDS.values():
        assert pw not in text, f"a password appears in the output of {where}"


async def test_every_role_works_over_sasl_ssl_as_its_own_user(
    secure_broker: LocalBroker, tmp_path: Path
) -> None:
    b = secure_broker
    secret, token = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    pem, app_id = private_key_pem(), str(uuid.uuid4())
    ingress_port = free_port()
    health = {r: free_port() for r in ("worker", "dispatcher", "controller")}
    async with Simulator(
        cps=20,
        rps=60,
        seed=7,
        time_scale=10,
        profile=PROFILE,
        signature_secret=secret,
        application_id=app_id,
        private_key=pem,
    ) as sim:
        vonage = {
            "VONAGE_APPLICATION_ID": app_id,
            "VONAGE_PRIVATE_KEY": pem,
            "VONAGE_API_HOST": sim.base_url,
            "VONAGE_SIGNATURE_SECRET": secret,
            "VONAGE_CPS": "10",
            "VONAGE_RPS": "30",
            "PUBLIC_BASE_URL": f"http://127.0.0.1:{ingress_port}",
        }
        public = {"PUBLIC_BASE_URL": vonage["PUBLIC_BASE_URL"]}
        local = ("--health-host", "127.0.0.1", "--health-port")
        roles = [
            Role(
                "ingress",
                ["ingress", "--host", "127.0.0.1", "--port", str(ingress_port)],
                _secure_env(b, gen_users.INGRESS, CONTROL_API_TOKEN=token, **vonage),
                tmp_path / "ingress.log",
            ),
            Role(
                "worker",
                ["worker", *local, str(health["worker"]), "--settle-ms", "200"],
                _strimzi_env(b, gen_users.WORKER, tmp_path / "worker-kafka", **public),
                tmp_path / "worker.log",
            ),
            Role(
                "dispatcher",
                ["dispatcher", *local, str(health["dispatcher"])],
                _strimzi_env(b, gen_users.DISPATCHER, tmp_path / "dispatcher-kafka", **vonage),
                tmp_path / "dispatcher.log",
            ),
            Role(
                "campaign-controller",
                ["campaign", "controller", *local, str(health["controller"])],
                _secure_env(b, gen_users.CAMPAIGN_CONTROLLER, **public),
                tmp_path / "controller.log",
            ),
        ]
        cli_env = _secure_env(b, gen_users.EXTERNAL)
        started = time.monotonic()
        try:
            await asyncio.gather(*(r.start() for r in roles))
            await asyncio.gather(
                wait_ready(f"http://127.0.0.1:{ingress_port}/readyz", roles[0], 45),
                wait_ready(f"http://127.0.0.1:{health['worker']}/readyz", roles[1], 45),
                wait_ready(f"http://127.0.0.1:{health['dispatcher']}/readyz", roles[2], 45),
                wait_ready(f"http://127.0.0.1:{health['controller']}/readyz", roles[3], 45),
            )
            ready_s = time.monotonic() - started

            checked = await run_to_end("topics", ["topics", "ensure", "--check-only"], cli_env, 30)
            assert (checked.returncode, checked.lines()) == (0, ["topics ok"]), checked.output

            (tmp_path / "contacts.csv").write_text(
                "number,name\n+14155550101,Ann\n+14155550102,Bo\n"
            )
            name = f"sec{os.getpid()}"
            f = tmp_path / "campaign.yaml"
            f.write_text(CAMPAIGN.format(name=name, contacts=tmp_path / "contacts.csv"))
            start = await run_to_end("campaign start", ["campaign", "start", str(f)], cli_env, 30)
            assert start.returncode == 0, start.output
            assert f"started {name} (2 contacts)" in start.output

            # The ingress reads campaign.state for the control API, as its own user.
            progress: dict[str, object] = {}
            deadline = time.monotonic() + 60
            async with httpx.AsyncClient(timeout=5) as http:
                while time.monotonic() < deadline:
                    r = await http.get(
                        f"http://127.0.0.1:{ingress_port}/v1/campaigns/{name}",
                        headers={"Authorization": f"Bearer {token}"},
                    )
                    if r.status_code == 200:
                        progress = r.json()
                        if progress.get("status") == "completed":
                            break
                    for role in roles:
                        assert role.proc is not None and role.proc.returncode is None, (
                            f"{role.name} exited:\n{role.output()[-3000:]}"
                        )
                    await asyncio.sleep(0.5)
            assert progress.get("status") == "completed", (
                f"{progress}\n"
                + "\n".join(f"== {r.name}\n{r.output()[-2500:]}" for r in roles)
                + f"\n== simulator calls {sim.ledger()['calls']}"
            )
            campaign_s = time.monotonic() - started - ready_s

            out = tmp_path / "results.jsonl"
            res = await run_to_end(
                "campaign results", ["campaign", "results", name, "--out", str(out)], cli_env, 30
            )
            assert res.returncode == 0, res.output
            results = [orjson.loads(line) for line in out.read_text().splitlines()]
            assert sorted(r["disposition"] for r in results) == ["answered", "answered"]
            calls = [c for c in sim.ledger()["calls"] if (c.get("call_ref") or "").startswith(name)]
            assert len(calls) == 2, "each contact dialled once, through the dispatcher"
        finally:
            codes = await asyncio.gather(*(r.stop() for r in roles))
        print(f"roles ready over SASL_SSL in {ready_s:.1f}s; campaign done in {campaign_s:.1f}s")
        assert codes == [0, 0, 0, 0], "\n".join(
            f"== {r.name} exit {c}\n{r.output()[-4000:]}"
            for r, c in zip(roles, codes, strict=True)
            if c != 0
        )
        for role in roles:
            _no_password_in(role.output(), role.name)
        for done in (checked, start, res):
            _no_password_in(done.output, done.name)


def _failing_commands(port: int) -> dict[str, tuple[str, list[str]]]:
    """Each entry point that connects to Kafka: (role whose user it runs as, arguments)."""
    local = ("--health-host", "127.0.0.1", "--health-port", "0")
    return {
        "ingress": (gen_users.INGRESS, ["ingress", "--host", "127.0.0.1", "--port", str(port)]),
        "worker": (gen_users.WORKER, ["worker", *local]),
        "dispatcher": (gen_users.DISPATCHER, ["dispatcher", *local]),
        "campaign controller": (gen_users.CAMPAIGN_CONTROLLER, ["campaign", "controller", *local]),
        "campaign status": (gen_users.EXTERNAL, ["campaign", "status", "x", "--once"]),
        "topics ensure": (gen_users.EXTERNAL, ["topics", "ensure", "--check-only"]),
    }


async def _run_all_failing(broker: LocalBroker, tmp_path: Path, **override: str) -> list[Finished]:
    pem = private_key_pem()
    vonage = {
        "VONAGE_APPLICATION_ID": str(uuid.uuid4()),
        "VONAGE_PRIVATE_KEY": pem,
        "VONAGE_SIGNATURE_SECRET": "sig",
    }
    runs = []
    for name, (role, args) in _failing_commands(free_port()).items():
        env = {**_secure_env(broker, role, **vonage), **override}
        runs.append(run_to_end(name, args, env, FAIL_WITHIN_S + 10))
    return list(await asyncio.gather(*runs))


def _assert_one_line_naming(done: list[Finished], setting: str, *secrets_: str) -> None:
    for d in done:
        assert d.returncode != 0, f"{d.name} exited 0:\n{d.output}"
        assert d.seconds < FAIL_WITHIN_S, f"{d.name} took {d.seconds:.1f}s"
        assert len(d.lines()) == 1, f"{d.name} printed more than one line:\n{d.output}"
        assert d.lines()[0].startswith(f"config error: {setting}: "), d.output
        assert "Traceback" not in d.output
        for s in secrets_:
            assert s not in d.output, f"{d.name} printed a password"
        _no_password_in(d.output, d.name)


async def test_a_wrong_password_ends_every_entry_point_in_one_line(
    secure_broker: LocalBroker, tmp_path: Path
) -> None:
    wrong = f"wrong-{secrets.token_urlsafe(9)}"
    done = await _run_all_failing(secure_broker, tmp_path, KAFKA_SASL_PASSWORD=wrong)
    _assert_one_line_naming(done, "KAFKA_SASL_PASSWORD", wrong)
    print("wrong password, exit after:", {d.name: round(d.seconds, 2) for d in done})


async def test_an_untrusted_ca_ends_every_entry_point_in_one_line(
    secure_broker: LocalBroker, tmp_path: Path
) -> None:
    other = load_or_create_ca(tmp_path / "other-ca", "some other CA")
    done = await _run_all_failing(secure_broker, tmp_path, KAFKA_SSL_CA_FILE=str(other.ca_file))
    _assert_one_line_naming(done, "KAFKA_SSL_CA_FILE")
    print("untrusted CA, exit after:", {d.name: round(d.seconds, 2) for d in done})
