"""The official Vonage Python SDK works against the simulator with only the host swapped.

The SDK only speaks https (``https://{api_host}``), so the simulator serves TLS with its own local
CA, and ``requests`` is told to trust that CA through its standard ``REQUESTS_CA_BUNDLE``
variable. Nothing else in the SDK is configured or patched.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.integration.simulator.conftest import only
from tests.integration.simulator.receiver import Receiver

pytestmark = pytest.mark.integration

vonage = pytest.importorskip("vonage", reason="the official SDK is a test-only dependency")


def _sdk_session(sim_host: str, event_url: str) -> dict[str, Any]:
    """Everything the SDK does, in one blocking function (run in a thread)."""
    from vonage import Auth, HttpClientOptions, Vonage
    from vonage_application import (
        ApplicationConfig,
        Capabilities,
        Voice,
        VoiceUrl,
        VoiceWebhooks,
    )
    from vonage_application.requests import ListApplicationsFilter
    from vonage_voice import (
        AudioStreamOptions,
        CreateCallRequest,
        ListCallsFilter,
        Phone,
        Talk,
        ToPhone,
        TtsStreamOptions,
    )

    options = HttpClientOptions(api_host=sim_host, timeout=10)
    out: dict[str, Any] = {}

    # Application API with the account's key and secret.
    account = Vonage(Auth(api_key="simkey01", api_secret="sim-api-secret"), options)
    config = ApplicationConfig(
        name="sdk-app",
        capabilities=Capabilities(
            voice=Voice(
                webhooks=VoiceWebhooks(event_url=VoiceUrl(address=event_url, http_method="POST")),
                signed_callbacks=True,
            )
        ),
    )
    created = account.application.create_application(config)
    private_key = created.keys.model_extra["private_key"]  # type: ignore[union-attr]
    out["app_id"] = created.id
    apps, _next = account.application.list_applications(ListApplicationsFilter(page_size=10))
    out["app_listed"] = any(a.id == created.id for a in apps)
    out["app_get"] = account.application.get_application(created.id).name
    renamed = account.application.update_application(
        created.id, ApplicationConfig(name="sdk-app-renamed", capabilities=config.capabilities)
    )
    out["app_renamed"] = renamed.name

    # Voice API with the generated application key.
    client = Vonage(Auth(application_id=created.id, private_key=private_key), options)
    voice = client.voice
    call = voice.create_call(
        CreateCallRequest(
            to=[ToPhone(number="447700900555")],
            from_=Phone(number="447700900000"),
            ncco=[Talk(text="Hello from the SDK test", loop=0)],
            event_url=[event_url],
        )
    )
    out["call"] = call
    deadline = time.monotonic() + 10
    while voice.get_call(call.uuid).status != "answered":
        assert time.monotonic() < deadline, "call never answered"
        time.sleep(0.05)
    time.sleep(0.2)  # past the "too early" window (1.5 simulated s at time-scale 10)
    calls, _ = voice.list_calls(ListCallsFilter(page_size=10))
    out["listed"] = [c.uuid for c in calls]
    out["get"] = voice.get_call(call.uuid)
    out["tts"] = voice.play_tts_into_call(call.uuid, TtsStreamOptions(text="Your code is 1 2 3"))
    out["tts_stop"] = voice.stop_tts(call.uuid)
    out["stream"] = voice.play_audio_into_call(
        call.uuid, AudioStreamOptions(stream_url=["https://example.com/hold.mp3"])
    )
    out["stream_stop"] = voice.stop_audio_stream(call.uuid)
    out["dtmf"] = voice.play_dtmf_into_call(call.uuid, dtmf="1234#")
    voice.mute(call.uuid)
    voice.unmute(call.uuid)
    voice.earmuff(call.uuid)
    voice.unearmuff(call.uuid)
    voice.transfer_call_ncco(call.uuid, [Talk(text="Transferred", loop=0)])
    voice.hangup(call.uuid)
    deadline = time.monotonic() + 10
    while voice.get_call(call.uuid).status != "completed":
        assert time.monotonic() < deadline, "call never completed"
        time.sleep(0.05)
    out["final"] = voice.get_call(call.uuid)
    account.application.delete_application(created.id)
    return out


async def test_official_sdk_against_simulator(
    make_sim: Any, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    prof = only("human", timing={"setup": 0.1, "ring": 0.5, "talk": 600.0})
    async with make_sim(tls=True, profile=prof, time_scale=10.0, rps=100) as sim:
        assert sim.ca_file is not None and sim.base_url.startswith("https://")
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(sim.ca_file))
        host = f"localhost:{sim.port}"
        out = await asyncio.to_thread(_sdk_session, host, receiver.url("/webhooks/event/sdk-1"))

        assert out["app_listed"] and out["app_get"] == "sdk-app"
        assert out["app_renamed"] == "sdk-app-renamed"
        call = out["call"]
        assert call.status == "started" and call.direction == "outbound"
        assert call.conversation_uuid.startswith("CON-")
        assert call.uuid in out["listed"]
        assert out["get"].to.number == "447700900555"
        assert out["tts"].message == "Talk started" and out["tts"].uuid == call.uuid
        assert out["tts_stop"].message == "Talk stopped"
        assert out["stream"].message == "Stream started"
        assert out["stream_stop"].message == "Stream stopped"
        assert out["dtmf"].message == "DTMF sent"
        final = out["final"]
        assert final.status == "completed"
        assert final.price is not None and final.duration is not None

        # The hang-up produced the completed webhook, signed, with the SDK app's id.
        async with asyncio.timeout(10):
            await sim.wait_idle()
        events = receiver.under("/webhooks/event/sdk-1")
        statuses = [e.data.get("status") for e in events]
        assert statuses[:3] == ["started", "ringing", "answered"]
        assert statuses[-1] == "completed"
        assert "transfer" not in statuses  # transfer events carry no status
        assert any("conversation_uuid_to" in e.data for e in events)
        assert all(e.signed_ok and e.claims["application_id"] == out["app_id"] for e in events)  # type: ignore[index]
        # Every SDK request went through the ledger with auth ok.
        ops = [r for r in sim.ledger(calls=False)["requests"] if r["op"]]
        assert ops and all(r["auth_ok"] for r in ops)
        assert {r["op"] for r in ops} >= {
            "create_application",
            "list_applications",
            "get_application",
            "update_application",
            "delete_application",
            "create_call",
            "list_calls",
            "get_call",
            "update_call",
            "start_talk",
            "stop_talk",
            "start_stream",
            "stop_stream",
            "start_dtmf",
        }
