"""The door's decision: one test per reason, and the trusted clock under jumps and reboots."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from edge.access.service import verify_pin  # the gateway's Argon2id check
from protocols.access.clock import MAX_BOOT_LEAP, Instant, TrustedClock
from protocols.access.codes import CodeWindow, issue
from protocols.access.decide import (
    AccessIndex,
    Code,
    Decision,
    Face,
    GuardState,
    Pin,
    Reason,
    decide,
)
from protocols.access.schema import AccessList, RevocationKind, RightKind
from tests.access_lists import (
    T0,
    access_list,
    door_secret,
    face,
    pin,
    revoke,
    right,
)

BOOT = "boot-1"
NOON = T0 + timedelta(hours=4)


class Door:
    """A gateway's state and clock, driven by hand: `at` seconds after the sync at NOON."""

    def __init__(self, access: AccessList | None, synced: datetime = NOON) -> None:
        self.index = None if access is None else AccessIndex(access)
        self.state = GuardState()
        self.mono = 100.0
        self.state.clock.synced(synced, self.instant(synced))

    def instant(self, wall: datetime) -> Instant:
        return Instant(wall, self.mono, BOOT)

    def present(
        self, presented: Face | Pin | Code, door: str = "front", *, after: timedelta | None = None
    ) -> Decision:
        if after is not None:
            self.mono += after.total_seconds()
        return decide(
            self.index, door, presented, self.instant(NOON), self.state, verify_pin=verify_pin
        )


def the_list(**fields: Any) -> AccessList:
    base: dict[str, Any] = {
        "credentials": [
            face("f-ann", "ann", 1),
            pin("p-ann", "ann", "1203", "246810"),
            face("f-bob", "bob", 2),
            face("f-vic", "vic", 3),
            face("f-old", "old", 4),
        ],
        "rights": [
            right("r-ann", "ann", "front", "garage"),
            right("r-bob", "bob", "garage"),
            right("r-vic", "vic", kind=RightKind.VISITOR, days=1, uses=2),
            right("r-old", "old", start=T0 - timedelta(days=30), days=30),
        ],
    }
    return access_list(**(base | fields))


def test_granted_by_face_and_by_pin_names_the_subject_and_right() -> None:
    door = Door(the_list())
    got = door.present(Face("f-ann"))
    assert (got.granted, got.reason, got.subject, got.right, got.credential, got.at) == (
        True,
        Reason.GRANTED,
        "ann",
        "r-ann",
        "f-ann",
        NOON,
    )
    by_pin = door.present(Pin("1203", "246810"), "garage")
    assert (by_pin.granted, by_pin.how, by_pin.credential) == (True, "pin", "p-ann")
    assert by_pin.event() | {"ts": None} == {
        "type": "access.granted",
        "source": "garage",
        "ts": None,
        "door": "garage",
        "how": "pin",
        "reason": "granted",
        "subject": "ann",
        "right": "r-ann",
        "credential": "p-ann",
    }


def test_no_list_no_time_and_an_unknown_door_are_refused() -> None:
    assert Door(None).present(Face("f-ann")).reason is Reason.NO_LIST
    fresh = GuardState()
    assert (
        decide(AccessIndex(the_list()), "front", Face("f-ann"), Instant(NOON, 1.0, BOOT), fresh)
    ).reason is Reason.NO_TIME
    assert Door(the_list()).present(Face("f-ann"), "roof").reason is Reason.UNKNOWN_DOOR


def test_an_unknown_face_or_keypad_id_and_a_wrong_pin_are_refused() -> None:
    door = Door(the_list())
    assert door.present(Face(None)).reason is Reason.UNKNOWN_CREDENTIAL
    assert door.present(Face("p-ann")).reason is Reason.UNKNOWN_CREDENTIAL  # a PIN's id
    assert door.present(Pin("9999", "246810")).reason is Reason.UNKNOWN_CREDENTIAL
    wrong = door.present(Pin("1203", "000000"))
    assert (wrong.reason, wrong.subject) == (Reason.WRONG_PIN, "ann")
    assert door.present(Pin("1203", "2" * 100)).reason is Reason.WRONG_PIN


def test_a_pin_needs_a_verifier() -> None:
    door = Door(the_list())
    with pytest.raises(ValueError, match="verifier"):
        decide(door.index, "front", Pin("1203", "246810"), door.instant(NOON), door.state)


def test_no_right_on_this_door() -> None:
    assert Door(the_list()).present(Face("f-bob"), "front").reason is Reason.NO_RIGHT


@pytest.mark.parametrize(
    ("kind", "id_"),
    [
        (RevocationKind.SUBJECT, "ann"),
        (RevocationKind.CREDENTIAL, "f-ann"),
        (RevocationKind.RIGHT, "r-ann"),
    ],
)
def test_a_revocation_wins_over_the_right(kind: RevocationKind, id_: str) -> None:
    door = Door(the_list(revocations=[revoke(kind, id_)]))
    assert door.present(Face("f-ann")).reason is Reason.REVOKED


def test_not_yet_and_expired_by_the_rights_window() -> None:
    later = right("r-ann", "ann", start=NOON + timedelta(days=1))
    door = Door(the_list(rights=[later]))
    assert door.present(Face("f-ann")).reason is Reason.NOT_YET
    assert door.present(Face("f-ann"), after=timedelta(days=1)).granted
    assert Door(the_list()).present(Face("f-old")).reason is Reason.EXPIRED


def test_a_lease_that_ends_during_an_outage_is_refused_after_its_end() -> None:
    ends = right("r-ann", "ann", start=T0, days=1)  # until T0 + 1 day
    door = Door(the_list(rights=[ends]))
    assert door.present(Face("f-ann"), after=timedelta(hours=19)).granted  # T0+23h
    assert door.present(Face("f-ann"), after=timedelta(hours=1)).reason is Reason.EXPIRED


def test_a_visitor_pass_opens_its_number_of_times() -> None:
    door = Door(the_list())
    assert [door.present(Face("f-vic")).reason for _ in range(3)] == [
        Reason.GRANTED,
        Reason.GRANTED,
        Reason.USED_UP,
    ]
    assert door.state.uses == {"r-vic": 2}


def test_a_counted_right_is_spent_only_when_no_other_right_opens() -> None:
    rights = [right("r-ann", "ann"), right("r-pass", "ann", uses=1, kind=RightKind.VISITOR)]
    door = Door(the_list(rights=rights))
    assert door.present(Face("f-ann")).right == "r-ann"
    assert door.state.uses == {}


def code_for(start: datetime, hours: int, counter: int = 0, door: str = "front") -> str:
    return issue(
        door_secret(door), CodeWindow(door, start, start + timedelta(hours=hours), counter), 9
    )


def test_an_offline_code_opens_once_inside_its_window() -> None:
    door = Door(the_list())
    code = code_for(NOON - timedelta(hours=1), 2)
    first = door.present(Code(code))
    assert (first.granted, first.how, first.right) == (True, "code", "front@20260301T11Z+2h#0")
    assert door.present(Code(code)).reason is Reason.CODE_USED
    assert door.present(Code(code), "garage").reason is Reason.WRONG_CODE  # another door's


def test_an_offline_code_is_refused_outside_its_window() -> None:
    door = Door(the_list())
    code = code_for(NOON + timedelta(hours=1), 1)
    assert door.present(Code(code)).reason is Reason.WRONG_CODE
    assert door.present(Code(code), after=timedelta(hours=1)).granted
    late = code_for(NOON + timedelta(hours=1), 1, counter=1)
    assert door.present(Code(late), after=timedelta(hours=1)).reason is Reason.WRONG_CODE


def test_a_revoked_code_and_a_door_without_codes_are_refused() -> None:
    code = code_for(NOON, 24)
    revoked = Door(the_list(revocations=[revoke(RevocationKind.CODE, "front@20260301T12Z+24h#0")]))
    assert revoked.present(Code(code)).reason is Reason.REVOKED
    from tests.access_lists import door as make_door  # noqa: PLC0415

    closed = Door(the_list(doors=[make_door("front", codes=False)]))
    assert closed.present(Code(code)).reason is Reason.WRONG_CODE


def test_the_keypad_locks_after_five_wrong_entries_faces_still_work() -> None:
    door = Door(the_list())
    reasons = [door.present(Code("000000000")).reason for _ in range(6)]
    assert reasons == [Reason.WRONG_CODE] * 5 + [Reason.LOCKED_OUT]
    assert door.present(Pin("1203", "246810")).reason is Reason.LOCKED_OUT
    assert door.present(Face("f-ann")).granted
    assert door.present(Pin("1203", "246810"), "garage").granted  # another keypad
    assert door.present(Pin("1203", "246810"), after=timedelta(minutes=1)).granted


# ---- the trusted clock --------------------------------------------------------------------


def test_a_wall_clock_that_jumps_back_does_not_reopen_an_expired_right() -> None:
    door = Door(the_list())
    at = Instant(NOON - timedelta(days=60), door.mono, BOOT)  # NTP lost, clock reset
    got = decide(door.index, "front", Face("f-old"), at, door.state)
    assert (got.reason, got.at) == (Reason.EXPIRED, NOON)


def test_a_wall_clock_that_jumps_forward_does_not_lock_everyone_out() -> None:
    door = Door(the_list())
    at = Instant(NOON + timedelta(days=3650), door.mono + 60, BOOT)
    got = decide(door.index, "front", Face("f-ann"), at, door.state)
    assert (got.granted, got.at) == (True, NOON + timedelta(minutes=1))


def test_after_a_reboot_without_time_the_clock_starts_from_its_high_water() -> None:
    clock = TrustedClock()
    clock.synced(NOON, Instant(NOON, 50.0, "boot-1"))
    assert clock.now(Instant(NOON, 3650.0, "boot-1")) == NOON + timedelta(seconds=3600)
    saved = TrustedClock.from_dict(clock.to_dict())
    high = NOON + timedelta(seconds=3600)
    # No battery clock: the wall clock reads 1970 after the reboot.
    epoch = datetime.fromtimestamp(0).astimezone()
    assert saved.now(Instant(epoch, 5.0, "boot-2")) == high
    assert saved.now(Instant(epoch, 65.0, "boot-2")) == high + timedelta(seconds=60)
    assert not saved.synced_now


def test_after_a_reboot_a_plausible_wall_clock_is_taken_and_a_wild_one_is_not() -> None:
    clock = TrustedClock(high_water=NOON)
    assert clock.now(Instant(NOON + timedelta(hours=5), 1.0, "b2")) == NOON + timedelta(hours=5)
    wild = TrustedClock(high_water=NOON)
    assert wild.now(Instant(NOON + MAX_BOOT_LEAP * 2, 1.0, "b2")) == NOON


def test_ntp_behind_the_high_water_never_moves_time_back() -> None:
    clock = TrustedClock(high_water=NOON)
    clock.synced(NOON - timedelta(hours=1), Instant(NOON, 10.0, "b"))
    assert clock.now(Instant(NOON, 20.0, "b")) == NOON
    assert clock.now(Instant(NOON, 3610.0 + 60, "b")) == NOON + timedelta(seconds=60)


def test_an_applied_lists_issue_time_is_a_floor() -> None:
    clock = TrustedClock()
    assert clock.now(Instant(NOON, 1.0, "b")) is None
    clock.observe(T0)
    assert clock.now(Instant(datetime.fromtimestamp(0).astimezone(), 1.0, "b")) == T0


def test_the_guard_state_survives_a_save_and_refuses_garbage() -> None:
    door = Door(the_list())
    door.present(Face("f-vic"))
    door.present(Code(code_for(NOON, 1)))
    door.present(Code("1"))
    saved = door.state.to_dict()
    again = GuardState.from_dict(saved)
    assert again.to_dict() == saved
    for bad in (
        saved | {"uses": {"r": -1}},
        saved | {"uses": []},
        saved | {"codes_used": {"x": "yesterday"}},
        saved | {"keypads": {"front": {"failures": "many", "last_failure": None}}},
        saved | {"clock": {"high_water": "2026-01-01T00:00:00", "anchor": None}},
    ):
        with pytest.raises((ValueError, TypeError, KeyError)):
            GuardState.from_dict(bad)


def test_prune_forgets_rights_doors_and_codes_that_are_gone() -> None:
    door = Door(the_list())
    door.present(Face("f-vic"))
    door.present(Code(code_for(NOON, 1)))
    door.present(Code("1"))
    assert door.index is not None
    door.state.prune(AccessIndex(the_list(rights=[], doors=[])), NOON + timedelta(hours=2))
    assert (door.state.uses, door.state.codes_used, door.state.keypads) == ({}, {}, {})
