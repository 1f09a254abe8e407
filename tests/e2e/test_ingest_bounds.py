"""No message stops ingest: out-of-bounds numbers, strings a database refuses, a message that
fails in the database anyway, and a worker that fails outright (it restarts, and says so)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiomqtt
import httpx
import pytest
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from cloud.app import create_app
from cloud.ingest import worker as ingest
from cloud.ingest.store import Batch
from cloud.ingest.worker import RESTART_S, IngestWorker
from cloud.security.crypto import development_keys
from protocols.mqtt import messages as msg
from protocols.mqtt.topics import Kind, topic
from tests.e2e.link_harness import (
    Link,
    Row,
    as_async,
    as_rows,
    assert_same,
    mqtt_client,
    publish_until_acked,
    reading_payloads,
    wait_until,
)

pytestmark = pytest.mark.timeout(90)

BEYOND = 2**63  # one past a signed 64-bit column
TS = "2026-03-01T08:00:00+00:00"


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def poison_telemetry(gid: str) -> bytes:
    reading = {"seq": BEYOND, "meter": "m-1", "point": "energy", "value": 1.0, "ts": now_iso()}
    body = {"schema": 1, "gateway_id": gid, "seq": BEYOND, "ts": now_iso(), "after": 0}
    return json.dumps({**body, "readings": [reading]}).encode()


def poison_state(gid: str) -> bytes:
    body = {"schema": 1, "gateway_id": gid, "seq": 0, "ts": now_iso(), "online": True}
    return json.dumps({**body, "pending": BEYOND}).encode()


POISONS: dict[str, tuple[Kind, Callable[[str], bytes], str]] = {
    "telemetry seq 2^63": (Kind.TELEMETRY, poison_telemetry, "seq"),
    "state pending 2^63": (Kind.STATE, poison_state, "pending"),
}


@pytest.mark.parametrize("poison", list(POISONS))
async def test_one_number_beyond_64_bits_is_quarantined_and_ingest_goes_on(
    link: Link, poison: str
) -> None:
    kind, build, field = POISONS[poison]
    gid = link.gateway_id
    link.open_outbox()
    produced = link.produce(0, 50)
    async with link.ingest():
        async with mqtt_client(link.mqtt_url, f"test-{gid}") as client:
            await client.publish(topic(gid, kind), build(gid), qos=1)
        await wait_until(as_async(link.quarantined), 20, f"the {poison} to be quarantined")
        async with link.uplink():
            await wait_until(link.drained, 30, "the good batch to be stored and acknowledged")
    ((reason, detail),) = link.quarantined()
    assert reason == "invalid"
    assert field in detail
    assert_same(produced, link.stored())


async def test_a_message_that_fails_in_the_database_is_quarantined_alone(
    link: Link, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the bounds let through and the database still refuses (here: any message of epoch
    99 fails inside the transaction) is found among the messages stored with it, quarantined
    with its error, and the others are stored and acknowledged."""
    store_batch = ingest.store_batch

    def failing(
        session: Any, batches: list[tuple[str, Batch]], states: list[tuple[str, msg.State]], at: Any
    ) -> Any:
        if any(m.epoch == 99 for _, m in batches):
            raise RuntimeError("injected: the database refuses this one")
        return store_batch(session, batches, states, at)

    monkeypatch.setattr(ingest, "store_batch", failing)
    gid = link.gateway_id
    payloads = [{"meter": "m-1", "point": "p", "value": float(i), "ts": datetime.now(UTC)}
                for i in range(30)]  # fmt: skip
    rows = list(enumerate(msg.encode_records(msg.RecordKind.READING, payloads), start=1))

    def batch(after: int, upto: int, epoch: int = 0) -> bytes:
        return msg.encode_batch(
            msg.RecordKind.READING,
            gateway_id=gid,
            after=after,
            ts=datetime.now(UTC),
            records=rows[after:upto],
            epoch=epoch,
        )

    sequence = [
        batch(0, 10),
        batch(0, 5, epoch=99),
        batch(10, 20),
        b"{",
        batch(20, 30),
    ]
    async with link.ingest() as worker:
        await publish_until_acked(link.mqtt_url, gid, sequence, 30)
        assert worker.metrics.rejected["error"] == 1
    assert sorted(reason for reason, _ in link.quarantined()) == ["error", "malformed"]
    assert ("error", "RuntimeError: injected: the database refuses this one") in link.quarantined()
    assert [(s, v) for s, _, _, v, _ in link.stored()] == [(s, float(s - 1)) for s in range(1, 31)]


class DrivenSleep:
    """The worker's pauses, each ended by the test: no time passes unless it says so."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self._asked = asyncio.Event()
        self._go = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        self._asked.set()
        await self._go.wait()
        self._go.clear()

    async def asked(self) -> None:
        await asyncio.wait_for(self._asked.wait(), 20)
        self._asked.clear()

    def release(self) -> None:
        self._go.set()


def sample(text: str, name: str) -> float:
    (line,) = [line for line in text.splitlines() if line.startswith(f"{name} ")]
    return float(line.split()[1])


async def test_a_failed_worker_is_logged_restarted_counted_and_unhealthy_meanwhile(
    link: Link, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The in-process worker of `anju cloud serve` fails on something nothing handles (here
    its first session raises as soon as it has subscribed)."""
    consume = IngestWorker._consume
    calls = 0

    async def consume_once_failing(self: IngestWorker, client: aiomqtt.Client) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("injected bug")
        await consume(self, client)

    monkeypatch.setattr(IngestWorker, "_consume", consume_once_failing)
    sleep = DrivenSleep()
    app = create_app(link.settings(), keys=development_keys(), sleep=sleep)
    link.open_outbox()
    produced = link.produce(0, 40)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        worker: IngestWorker = app.state.ingest
        await sleep.asked()  # failed: waits out its backoff
        assert sleep.delays == [RESTART_S]
        down = await http.get("/healthz")
        assert down.status_code == 503
        assert down.headers["content-type"] == "application/problem+json"
        metrics = (await http.get("/metrics")).text
        assert sample(metrics, "anju_ingest_restarts_total") == 1
        assert sample(metrics, "anju_ingest_down") == 1
        (failure,) = [r for r in caplog.records if "ingest failed" in r.getMessage()]
        assert failure.levelno == logging.ERROR
        assert failure.exc_info is not None
        assert "injected bug" in str(failure.exc_info[1])

        sleep.release()
        await wait_until(as_async(lambda: not worker.down), 20, "the worker to be back")
        assert (await http.get("/healthz")).status_code == 200
        metrics = (await http.get("/metrics")).text
        assert (
            sample(metrics, "anju_ingest_restarts_total"),
            sample(metrics, "anju_ingest_down"),
        ) == (1, 0)
        async with link.uplink():
            await wait_until(link.drained, 30, "the restarted worker to store and acknowledge")
        assert sleep.delays == [RESTART_S]
    assert_same(produced, link.stored())


# ---- any payload, between good batches ------------------------------------------------------

GW = "@gateway"  # replaced by the link's gateway id when published
SHAPES: dict[Kind, dict[str, Any]] = {
    Kind.TELEMETRY: {
        "schema": 1, "gateway_id": GW, "epoch": 0, "seq": 1, "ts": TS, "after": 0,
        "readings": [{"seq": 1, "meter": "m-1", "point": "p", "value": 1.0, "ts": TS}],
    },
    Kind.EVENTS: {
        "schema": 1, "gateway_id": GW, "seq": 1, "ts": TS, "after": 0,
        "events": [{"seq": 1, "type": "door.decision", "ts": TS, "door": "front"}],
    },
    Kind.STATE: {"schema": 1, "gateway_id": GW, "seq": 0, "ts": TS, "online": True},
    Kind.UP_ACK: {
        "schema": 1, "gateway_id": GW, "command_id": None, "status": "rejected",
        "reason": "malformed", "ts": TS,
    },
}  # fmt: skip


def deep(levels: int) -> Any:
    value: Any = 0
    for _ in range(levels):
        value = {"a": [value]}
    return value


# Values at and beyond the bounds, and of the wrong kind: what the rest of a message is made of.
NUMBERS = [0, 1, -1, 2**53, 2**63 - 1, 2**63, -(2**63) - 1, 10**30, 1e15, 1e16, -1e308, 0.5]
OTHERS = ["", "\x00", "a\ud800", "x" * 1025, "字" * 65, None, True, [], {}, deep(3), deep(40)]
EDGES = st.sampled_from([*NUMBERS, *OTHERS])
# One field of the shape made certainly wrong: whatever the rest holds, the message is refused.
WRONG: dict[Kind, list[tuple[tuple[str | int, ...], Any]]] = {
    Kind.TELEMETRY: [
        (("seq",), 2**63),
        (("readings", 0, "seq"), 2**63),
        (("epoch",), 2**63),
        (("after",), -1),
        (("readings", 0, "value"), 1e16),
        (("readings", 0, "value"), float("nan")),
        (("readings", 0, "meter"), "m\x00"),
        (("readings", 0, "point"), "p\udc80"),
        (("readings", 0, "unit"), "u" * 17),
        (("readings", 0, "ts"), "0001-01-01T00:00:00+01:00"),
        (("readings",), []),
        (("surplus",), 1),
    ],
    Kind.EVENTS: [
        (("events", 0, "x"), 2**64),
        (("events", 0, "x"), float("inf")),
        (("events", 0, "x"), deep(6)),
        (("events", 0, "x"), "y\x00"),
        (("events", 0, "type"), "t" * 65),
        (("events", 0, "ts"), "9999-12-31T23:59:59-01:00"),
    ],
    Kind.STATE: [
        (("pending",), 2**63),
        (("dropped",), -1),
        (("epoch_start",), 2**63),
        (("online",), "maybe"),
        (("gateway_id",), "gw\x00"),
    ],
    Kind.UP_ACK: [
        (("detail",), "d\x00"),
        (("data",), {"k": 2**63}),
        (("data",), {"k": "\ud800"}),
        (("status",), "unheard-of"),
    ],
}


@st.composite
def bad_messages(draw: st.DrawFn) -> tuple[Kind, bytes | dict[str, Any]]:
    kind = draw(st.sampled_from(list(SHAPES)))
    if draw(st.integers(0, 3)) == 0:  # bytes: one not JSON at all (nor an object)
        return kind, draw(st.binary(min_size=1, max_size=200).filter(lambda b: b[:1] != b"{"))
    path, wrong = draw(st.sampled_from(WRONG[kind]))
    message = json.loads(json.dumps(SHAPES[kind]))
    for key in draw(st.lists(st.sampled_from(sorted(message)), max_size=3)):
        if key != path[0]:
            message[key] = draw(EDGES)
    target = message
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = wrong
    return kind, message


def good_batch(gid: str, after: int, count: int) -> tuple[bytes, list[Row]]:
    """Readings `after + 1 ..` as the gateway would send them."""
    payloads = reading_payloads(after, count)
    seqs = list(range(after + 1, after + count + 1))
    bodies = msg.encode_records(msg.RecordKind.READING, payloads)
    payload = msg.encode_batch(
        msg.RecordKind.READING,
        gateway_id=gid,
        after=after,
        ts=datetime.now(UTC),
        records=list(zip(seqs, bodies, strict=True)),
    )
    return payload, as_rows(seqs, payloads)


Step = tuple[Kind, bytes | dict[str, Any]] | int  # a bad message, or a good batch of n readings
STEPS = st.lists(st.one_of(bad_messages(), st.integers(1, 20)), min_size=1, max_size=8)
PROPERTIES = settings(
    max_examples=25,
    deadline=None,  # each example goes through a broker and a database
    database=None,
    phases=[Phase.explicit, Phase.generate],  # an example fails as drawn: at most 9 steps
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


async def test_any_payload_between_good_batches_is_quarantined_and_the_good_are_stored(
    link: Link,
) -> None:
    """Hypothesis draws the messages (in a thread); a gateway's client publishes them on the
    test's loop, where the worker runs. After each example every good reading so far is stored
    once and acknowledged, and every bad message is in quarantine."""
    loop = asyncio.get_running_loop()
    gid = link.gateway_id
    produced: list[Row] = []
    bad = 0

    async def run(steps: list[Step]) -> None:
        nonlocal produced, bad
        async with mqtt_client(link.mqtt_url, f"test-{gid}") as client:
            await client.subscribe(topic(gid, Kind.DOWN_ACK), qos=1)
            for step in [*steps, 1]:  # a good batch last: its ack says all before are handled
                if isinstance(step, int):
                    payload, rows = good_batch(gid, len(produced), step)
                    produced += rows
                    await client.publish(topic(gid, Kind.TELEMETRY), payload, qos=1)
                else:
                    kind, body = step
                    raw = (
                        body
                        if isinstance(body, bytes)
                        else json.dumps(body).replace(GW, gid).encode()
                    )
                    bad += 1
                    await client.publish(topic(gid, kind), raw, qos=1)

            async def acked() -> bool:
                while len(client.messages):
                    message = await anext(client.messages)
                    assert isinstance(message.payload, bytes)
                    if msg.decode(msg.Ack, message.payload).stored_seq == len(produced):
                        return True
                return False

            await wait_until(acked, 20, f"stored_seq {len(produced)} to be acknowledged")
        assert len(await asyncio.to_thread(link.quarantined)) == bad
        assert_same(produced, await asyncio.to_thread(link.stored))

    @PROPERTIES
    @given(STEPS)
    @example([(Kind.TELEMETRY, SHAPES[Kind.TELEMETRY] | {"seq": 2**63}), 3])
    @example([(Kind.STATE, SHAPES[Kind.STATE] | {"pending": 2**63}), 3])
    def check(steps: list[Step]) -> None:
        future = asyncio.run_coroutine_threadsafe(run(steps), loop)
        try:
            future.result(timeout=60)
        finally:
            future.cancel()

    async with link.ingest():
        await asyncio.to_thread(check)
