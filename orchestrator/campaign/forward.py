"""Route what happens to campaign calls to their campaign's partition of ``campaign.control``.

``voice.outcomes`` (leg outcomes) and ``voice.events`` (the dispatcher's create-call results) are
keyed by call_ref, so one campaign's records are spread over every partition; the controller owns
campaigns by name. This stateless relay re-keys each campaign record by its campaign name (read
from the call_ref; on voice.events only dispatcher results are copied, found without parsing the
JSON) and commits only after the broker confirmed the copies: at least once, and the controller
ignores duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiokafka.errors import KafkaError

from contracts.topics import CAMPAIGN_CONTROL, VOICE_EVENTS, VOICE_OUTCOMES
from orchestrator.campaign.app import campaign_of
from orchestrator.config import Settings
from orchestrator.kafka.clients import make_consumer, make_producer
from orchestrator.logs import get_logger

__all__ = ["FORWARD_GROUP", "OutcomeForwarder"]

log = get_logger("campaign.forward")

FORWARD_GROUP = "campaign-controller-outcomes"
#: How a dispatcher result looks in its JSON (orjson writes no spaces).
_RESULT_MARK = b'"type":"dispatcher.result"'


class OutcomeForwarder:
    def __init__(self, settings: Settings, *, group_id: str = FORWARD_GROUP) -> None:
        self.settings = settings
        self.source = f"{settings.topic_prefix}{VOICE_OUTCOMES.name}"
        self.events = f"{settings.topic_prefix}{VOICE_EVENTS.name}"
        self.target = f"{settings.topic_prefix}{CAMPAIGN_CONTROL.name}"
        self.group_id = group_id
        self.forwarded = 0
        self._stop = asyncio.Event()

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        consumer = make_consumer(self.settings, self.source, self.events, group_id=self.group_id)
        producer = make_producer(self.settings)
        await producer.start()
        try:
            await consumer.start()
            try:
                while not self._stop.is_set():
                    try:
                        batch = await consumer.getmany(timeout_ms=100, max_records=2000)
                    except KafkaError as err:
                        log.warning("outcome fetch failed", error=str(err))
                        await asyncio.sleep(0.5)
                        continue
                    if not batch:
                        continue
                    futs = []
                    for tp, msgs in batch.items():
                        results_only = tp.topic == self.events
                        for m in msgs:
                            name = campaign_of(m.key.decode("utf-8", "replace") if m.key else None)
                            if name is None or m.value is None:
                                continue
                            if not results_only or _RESULT_MARK in m.value:
                                futs.append(
                                    await producer.send(self.target, m.value, key=name.encode())
                                )
                    if futs:
                        await asyncio.gather(*futs)
                        self.forwarded += len(futs)
                    with contextlib.suppress(KafkaError):
                        await consumer.commit()
            finally:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(consumer.stop(), 8)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), 8)
