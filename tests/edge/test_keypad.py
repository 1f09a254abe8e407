"""A serial keypad at the door: a simulated keypad on a pseudo-terminal, read by the gateway's
serial driver, entries decided by the access service, the lock opened on a grant. Brute force
on the keypad meets the lockout (the gateway's clocks are driven, nothing sleeps)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from anju.sim.keypad import SimulatedKeypad
from edge.door.config import DoorConfig, KeypadSettings, door_relative_to
from edge.door.keypad import KeypadService, SerialKeypad
from edge.door.lock import SimulatedLock, UnlockRequest
from edge.parts import Parts
from protocols.access import codes
from protocols.access.codes import CodeWindow
from protocols.access.signing import encode_signed
from protocols.lock.errors import LockTimeoutError
from tests.access_lists import KEY, access_list, door_secret, pin, right
from tests.edge.test_access_service import NOON, Gateway
from tests.face_assets import models_dir

pytestmark = pytest.mark.timeout(60)

HOUR = NOON.replace(minute=0, second=0, microsecond=0)


def offline_code(counter: int = 0) -> str:
    window = CodeWindow("front", HOUR, HOUR + timedelta(hours=2), counter)
    return codes.issue(door_secret("front"), window, 9)


@dataclass
class Door:
    gw: Gateway
    keypad: SimulatedKeypad
    service: KeypadService
    lock: SimulatedLock

    def decisions(self) -> list[tuple[str, str, str]]:
        return [
            (e["type"], e["how"], e["reason"])
            for e in self.gw.events()
            if e["type"] in ("access.granted", "access.refused")
        ]


def listed_gateway(tmp_path: Path) -> Gateway:
    """A gateway whose list gives ann's PIN the front door (which takes offline codes)."""
    gw = Gateway(tmp_path)
    listed = access_list(
        1,
        credentials=[pin("p-ann", "tenant:ann", "1203", "246810")],
        rights=[right("r-ann", "tenant:ann", "front")],
    )
    assert gw.service.receive(encode_signed(listed, KEY))
    return gw


@pytest.fixture
async def door(tmp_path: Path) -> AsyncIterator[Door]:
    gw = listed_gateway(tmp_path)
    lock = SimulatedLock()
    with SimulatedKeypad() as keypad:
        settings = KeypadSettings(port=Path(keypad.port))
        service = KeypadService("front", settings, gw.service, lock, now=lambda: NOON)
        port = SerialKeypad(settings.port, settings.baud)
        serving = asyncio.create_task(service.serve(port))
        try:
            yield Door(gw, keypad, service, lock)
        finally:
            serving.cancel()
            with pytest.raises(asyncio.CancelledError):
                await serving
            port.close()
            gw.close()


async def test_a_pin_and_an_offline_code_open_the_door(door: Door) -> None:
    assert await door.keypad.enter("1203*246810") == "OK"
    code = offline_code()
    assert await door.keypad.enter(code) == "OK"
    assert await door.keypad.enter(code) == "NO"  # a one-time code opens once
    assert await door.keypad.enter("1203*246811") == "NO"
    assert door.decisions() == [
        ("access.granted", "pin", "granted"),
        ("access.granted", "code", "granted"),
        ("access.refused", "code", "code_used"),
        ("access.refused", "pin", "wrong_pin"),
    ]
    assert [r.person_id for r in door.lock.requests] == [
        "tenant:ann",
        f"front@{HOUR:%Y%m%dT%H}Z+2h#0",  # a code names no one: its id stands in
    ]


async def test_noise_on_the_line_is_refused_unread(door: Door) -> None:
    door.keypad.send(b"12\x0003*246810#")
    assert await door.keypad.answer() == "NO"
    door.keypad.send(b"1203*246810\r\n")  # a keypad that sends lines
    assert await door.keypad.answer() == "OK"
    assert door.service.reader.spoiled == 1
    assert door.decisions() == [("access.granted", "pin", "granted")]


async def test_brute_forcing_codes_meets_the_lockout(door: Door) -> None:
    """An attacker types a random code every 10 s for an hour (driven clocks). The gateway
    evaluates 5 guesses, then one after each lock of 1, 2, 4, 8 and 16 minutes: 10 in the hour;
    every other entry is answered WAIT unread, even the right code."""
    rng = random.Random(14)
    answers: list[str] = []
    for _ in range(360):
        answers.append(await door.keypad.enter(f"{rng.randrange(10**9):09d}"))
        door.gw.clocks.mono += 10.0
    evaluated = [i for i, a in enumerate(answers) if a != "WAIT"]
    assert [i * 10 for i in evaluated] == [0, 10, 20, 30, 40, 100, 220, 460, 940, 1900]
    assert {answers[i] for i in evaluated} == {"NO"}
    reasons = [r for _, _, r in door.decisions()]
    assert reasons.count("wrong_code") == 10
    assert reasons.count("locked_out") == 350
    # Locked out (32 minutes from 1900 s): the right code and the tenant's PIN wait too.
    assert await door.keypad.enter(offline_code()) == "WAIT"
    assert await door.keypad.enter("1203*246810") == "WAIT"
    door.gw.clocks.mono += 32 * 60.0
    assert await door.keypad.enter(offline_code()) == "OK"
    assert door.lock.requests[-1].person_id.startswith("front@")


async def test_pin_guesses_behind_a_known_keypad_id_meet_the_lockout(door: Door) -> None:
    answers = [await door.keypad.enter(f"1203*{guess:06d}") for guess in range(8)]
    assert answers == ["NO"] * 5 + ["WAIT"] * 3
    assert door.lock.requests == []


async def test_a_grant_the_lock_does_not_acknowledge_is_recorded(door: Door) -> None:
    class DeadLock:
        async def unlock(self, request: UnlockRequest) -> None:
            raise LockTimeoutError("no answer")

    door.service.lock = DeadLock()  # the lock fails once the service is up
    assert await door.keypad.enter("1203*246810") == "OK"  # granted; the event tells the rest
    (event,) = [e for e in door.gw.events() if e["type"] == "access.granted"]
    assert event["lock_error"] == "no answer"


async def test_a_keypad_that_goes_away_is_reopened(tmp_path: Path) -> None:
    """Missing at start, then unplugged: the service pauses (driven) and opens it again."""
    gw = listed_gateway(tmp_path)
    pauses: list[float] = []
    with SimulatedKeypad() as first, SimulatedKeypad() as second:
        ports: list[str | None] = [None, first.port, second.port]

        def open_port(settings: KeypadSettings) -> SerialKeypad:
            port = ports.pop(0)
            if port is None:
                raise FileNotFoundError("no such device")
            return SerialKeypad(Path(port))

        async def pause(s: float) -> None:
            pauses.append(s)

        service = KeypadService(
            "front", KeypadSettings(port=tmp_path / "tty"), gw.service, SimulatedLock(),
            now=lambda: NOON, open_port=open_port, sleep=pause,
        )  # fmt: skip
        running = asyncio.create_task(service.run())
        try:
            assert await first.enter("1203*246810") == "OK"
            first.close()  # unplugged
            assert await second.enter("1203*246810") == "OK"
        finally:
            running.cancel()
            with pytest.raises(asyncio.CancelledError):
                await running
            gw.close()
    assert len(pauses) == 2
    assert ports == []


def test_a_door_keypad_is_configured_with_a_serial_port(tmp_path: Path) -> None:
    door = door_relative_to(
        DoorConfig.model_validate(
            {"id": "front", "source": "cam", "keypad": {"port": "tty/keypad", "baud": 19200}}
        ),
        tmp_path,
    )
    assert door.keypad is not None
    assert door.keypad.port == tmp_path / "tty" / "keypad"
    with pytest.raises(ValueError, match="baud"):
        DoorConfig.model_validate({"id": "f", "source": "c", "keypad": {"port": "p", "baud": 1}})


async def test_the_gateway_runs_a_door_keypad_and_stops_it_with_the_door(tmp_path: Path) -> None:
    """A door with a `keypad:` block gets a keypad service beside its camera; a configuration
    without the door stops both."""
    gw = listed_gateway(tmp_path)
    frames = tmp_path / "frames"
    frames.mkdir()
    lock = SimulatedLock()
    parts = Parts("gw-1", gw.outbox, lambda: None, lambda door: lock, now=lambda: NOON,
                  access=gw.service)  # fmt: skip
    try:
        with SimulatedKeypad() as keypad:
            door = DoorConfig.model_validate(
                {"id": "front", "source": str(frames), "models_dir": str(models_dir()),
                 "keypad": {"port": keypad.port}}
            )  # fmt: skip
            async with asyncio.TaskGroup() as tg:
                parts.commit(parts.prepare([], [door]))
                parts.start(tg)
                assert await keypad.enter("1203*246810") == "OK"
                assert "keypad-front" in {t.get_name() for t in asyncio.all_tasks()}
                parts.commit(parts.prepare([], []))  # the door leaves: its tasks end
            assert "keypad-front" not in {t.get_name() for t in asyncio.all_tasks()}
    finally:
        gw.close()
    assert [r.person_id for r in lock.requests] == ["tenant:ann"]
