"""The door's decision: who presented what, at which door, at what trusted time.

`decide` is the one rule, used by the gateway online and offline alike. It reads the applied
list (through an `AccessIndex`) and the gateway's `GuardState` (trusted clock, uses counted,
codes used, keypad failures) and records in that state what the decision consumed; the gateway
persists the state. A refusal names its reason, checked in this order: no list, no time,
unknown door, keypad locked out, unknown or wrong credential, revoked, no right on the door,
then the rights' windows and use counts.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from protocols.access.clock import Instant, TrustedClock, _aware
from protocols.access.codes import Keypad, match
from protocols.access.schema import (
    MAX_CREDENTIALS,
    MAX_DOORS,
    MAX_RIGHTS,
    AccessList,
    Credential,
    CredentialKind,
    Door,
    PinHash,
    RevocationKind,
    Right,
)

PinVerifier = Callable[[PinHash, str], bool]
MAX_PIN_CHARS = 12
# The used-code memory: a code is remembered until its window ends (at most a week).
MAX_CODES_USED = 100_000


class Reason(StrEnum):
    GRANTED = "granted"
    NO_LIST = "no_list"  # no access list applied yet
    NO_TIME = "no_time"  # the gateway has never known the time
    UNKNOWN_DOOR = "unknown_door"
    LOCKED_OUT = "locked_out"  # the keypad, after wrong entries
    UNKNOWN_CREDENTIAL = "unknown_credential"  # no such face / keypad id
    WRONG_PIN = "wrong_pin"
    WRONG_CODE = "wrong_code"  # no code of this door holds now (or the door takes none)
    CODE_USED = "code_used"
    REVOKED = "revoked"
    NO_RIGHT = "no_right"  # the subject has no right on this door
    NOT_YET = "not_yet"
    EXPIRED = "expired"
    USED_UP = "used_up"


@dataclass(frozen=True, slots=True)
class Face:
    """A face matched (by the gateway's recognizer) to a face credential; None: no match."""

    credential_id: str | None


@dataclass(frozen=True, slots=True)
class Pin:
    keypad_id: str
    pin: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class Code:
    code: str = field(repr=False)


Presented = Face | Pin | Code


@dataclass(frozen=True, slots=True)
class Decision:
    granted: bool
    reason: Reason
    door: str
    how: CredentialKind
    subject: str | None = None
    right: str | None = None  # the right used or refused by; a code's id for a code
    credential: str | None = None
    at: datetime | None = None  # trusted time

    def event(self) -> dict[str, Any]:
        """The `up/events` record (EventBody fields) the gateway writes for this decision."""
        return {
            "type": "access.granted" if self.granted else "access.refused",
            "source": self.door,
            "ts": self.at.isoformat() if self.at else None,
            "door": self.door,
            "how": str(self.how),
            "reason": str(self.reason),
            "subject": self.subject,
            "right": self.right,
            "credential": self.credential,
        }


class AccessIndex:
    """An applied list with the lookups a decision needs (built once per version)."""

    def __init__(self, access: AccessList) -> None:
        self.list = access
        self.doors: dict[str, Door] = {d.id: d for d in access.doors}
        self.credentials: dict[str, Credential] = {c.id: c for c in access.credentials}
        self.keypad: dict[str, Credential] = {
            c.keypad_id: c for c in access.credentials if c.keypad_id is not None
        }
        self.rights: dict[str, list[Right]] = {}
        for right in access.rights:
            self.rights.setdefault(right.subject, []).append(right)
        self.revoked: set[str] = {r.key for r in access.revocations}
        self.code_secrets: dict[str, bytes] = {
            d.id: base64.b64decode(d.code_secret) for d in access.doors if d.code_secret
        }

    @property
    def version(self) -> int:
        return self.list.version

    def is_revoked(self, kind: RevocationKind, id_: str) -> bool:
        return f"{kind}/{id_}" in self.revoked


@dataclass
class GuardState:
    """What decisions remember between each other, saved by the gateway after each one."""

    clock: TrustedClock = field(default_factory=TrustedClock)
    uses: dict[str, int] = field(default_factory=dict)  # right id → uses granted
    codes_used: dict[str, datetime] = field(default_factory=dict)  # code id → window end
    keypads: dict[str, Keypad] = field(default_factory=dict)  # door id → wrong entries

    def keypad(self, door: str) -> Keypad:
        return self.keypads.setdefault(door, Keypad())

    def prune(self, index: AccessIndex, t: datetime | None) -> None:
        """Forget what no longer matters: rights and doors gone from the list, ended codes."""
        rights = {r.id for rs in index.rights.values() for r in rs}
        self.uses = {k: v for k, v in self.uses.items() if k in rights}
        self.keypads = {k: v for k, v in self.keypads.items() if k in index.doors}
        if t is not None:
            self.codes_used = {k: end for k, end in self.codes_used.items() if end > t}

    def to_dict(self) -> dict[str, Any]:
        return {
            "clock": self.clock.to_dict(),
            "uses": dict(self.uses),
            "codes_used": {k: v.isoformat() for k, v in self.codes_used.items()},
            "keypads": {
                door: {
                    "failures": k.failures,
                    "last_failure": None if k.last_failure is None else k.last_failure.isoformat(),
                }
                for door, k in self.keypads.items()
            },
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GuardState:
        """Inverse of `to_dict`, bounded; ValueError/TypeError/KeyError on anything else."""
        uses, codes, keypads = data["uses"], data["codes_used"], data["keypads"]
        if not (isinstance(uses, dict) and isinstance(codes, dict) and isinstance(keypads, dict)):
            raise TypeError("a guard state's parts are objects")
        if len(uses) > MAX_RIGHTS or len(codes) > MAX_CODES_USED or len(keypads) > MAX_DOORS:
            raise ValueError("a guard state larger than any list")
        state = cls(clock=TrustedClock.from_dict(data["clock"]))
        for key, count in uses.items():
            if type(count) is not int or not 0 <= count <= MAX_CREDENTIALS:
                raise ValueError(f"uses of {key!r} is not a count")
            state.uses[str(key)] = count
        state.codes_used = {str(k): _aware(v) for k, v in codes.items()}
        for door, raw in keypads.items():
            failures, last = raw["failures"], raw["last_failure"]
            if type(failures) is not int or not 0 <= failures <= 1_000_000:
                raise ValueError("keypad failures is not a count")
            state.keypads[str(door)] = Keypad(failures, None if last is None else _aware(last))
        return state


def _how(presented: Presented) -> CredentialKind:
    if isinstance(presented, Face):
        return CredentialKind.FACE
    return CredentialKind.PIN if isinstance(presented, Pin) else CredentialKind.CODE


def decide(
    index: AccessIndex | None,
    door: str,
    presented: Presented,
    at: Instant,
    state: GuardState,
    *,
    verify_pin: PinVerifier | None = None,
) -> Decision:
    """Decide and record what the decision consumed in `state` (see the module)."""
    how = _how(presented)
    if index is None:
        return Decision(False, Reason.NO_LIST, door, how)
    t = state.clock.now(at)
    if t is None:
        return Decision(False, Reason.NO_TIME, door, how)
    if door not in index.doors:
        return Decision(False, Reason.UNKNOWN_DOOR, door, how, at=t)
    if isinstance(presented, Face):
        credential = index.credentials.get(presented.credential_id or "")
        if credential is None or credential.kind is not CredentialKind.FACE:
            return Decision(False, Reason.UNKNOWN_CREDENTIAL, door, how, at=t)
        return _rights(index, credential, t, state, door=door, how=how)
    return _keypad(index, door, presented, t, state, verify_pin=verify_pin)


def _keypad(
    index: AccessIndex,
    door: str,
    presented: Pin | Code,
    t: datetime,
    state: GuardState,
    *,
    verify_pin: PinVerifier | None,
) -> Decision:
    keypad = state.keypad(door)
    if keypad.locked(t):
        return Decision(False, Reason.LOCKED_OUT, door, _how(presented), at=t)
    if isinstance(presented, Code):
        decision = _code(index, door, presented.code, t, state)
    else:
        decision = _pin(index, door, presented, t, state, verify_pin=verify_pin)
    if decision.reason in _KEYPAD_FAILURES:
        keypad.failed(t)
    return decision


# Wrong entries that count towards the keypad's lockout.
_KEYPAD_FAILURES = {
    Reason.UNKNOWN_CREDENTIAL,
    Reason.WRONG_PIN,
    Reason.WRONG_CODE,
    Reason.CODE_USED,
}


def _pin(
    index: AccessIndex,
    door: str,
    presented: Pin,
    t: datetime,
    state: GuardState,
    *,
    verify_pin: PinVerifier | None,
) -> Decision:
    how = CredentialKind.PIN
    credential = index.keypad.get(presented.keypad_id)
    if credential is None or credential.pin is None:
        return Decision(False, Reason.UNKNOWN_CREDENTIAL, door, how, at=t)
    if verify_pin is None:
        raise ValueError("a PIN was presented and no verifier given")
    if len(presented.pin) > MAX_PIN_CHARS or not verify_pin(credential.pin, presented.pin):
        return Decision(
            False,
            Reason.WRONG_PIN,
            door,
            how,
            subject=credential.subject,
            credential=credential.id,
            at=t,
        )
    return _rights(index, credential, t, state, door=door, how=how)


def _usable(right: Right, t: datetime, state: GuardState) -> bool:
    in_window = right.valid_from <= t < right.valid_until
    return in_window and (right.uses is None or state.uses.get(right.id, 0) < right.uses)


def _rights(
    index: AccessIndex,
    credential: Credential,
    t: datetime,
    state: GuardState,
    *,
    door: str,
    how: CredentialKind,
) -> Decision:
    """The decision for a known, verified credential: revocations, then the subject's rights."""

    def outcome(reason: Reason, right: str | None = None) -> Decision:
        granted = reason is Reason.GRANTED
        subject = credential.subject
        return Decision(granted, reason, door, how, subject, right, credential.id, t)

    if index.is_revoked(RevocationKind.CREDENTIAL, credential.id) or index.is_revoked(
        RevocationKind.SUBJECT, credential.subject
    ):
        return outcome(Reason.REVOKED)
    on_door = [r for r in index.rights.get(credential.subject, ()) if door in r.doors]
    live = [r for r in on_door if not index.is_revoked(RevocationKind.RIGHT, r.id)]
    if not live:
        return outcome(Reason.REVOKED if on_door else Reason.NO_RIGHT)
    usable = [r for r in live if _usable(r, t, state)]
    if usable:
        # A right without a use count first, so a visitor's uses are not spent needlessly.
        right = min(usable, key=lambda r: (r.uses is not None, -r.valid_until.timestamp(), r.id))
        if right.uses is not None:
            state.uses[right.id] = state.uses.get(right.id, 0) + 1
        return outcome(Reason.GRANTED, right.id)
    if any(t < r.valid_from for r in live):
        return outcome(Reason.NOT_YET, live[0].id)
    if any(r.valid_from <= t < r.valid_until for r in live):
        return outcome(Reason.USED_UP, live[0].id)
    return outcome(Reason.EXPIRED, live[0].id)


def _code(index: AccessIndex, door: str, code: str, t: datetime, state: GuardState) -> Decision:
    how = CredentialKind.CODE
    secret = index.code_secrets.get(door)
    window = None
    if secret is not None:
        window = match(secret, door, index.doors[door].code_digits, code, t)
    if window is None:
        return Decision(False, Reason.WRONG_CODE, door, how, at=t)
    if index.is_revoked(RevocationKind.CODE, window.id):
        return Decision(False, Reason.REVOKED, door, how, right=window.id, at=t)
    if window.id in state.codes_used:
        return Decision(False, Reason.CODE_USED, door, how, right=window.id, at=t)
    if len(state.codes_used) >= MAX_CODES_USED:
        state.codes_used = {k: end for k, end in state.codes_used.items() if end > t}
    state.codes_used[window.id] = window.end
    return Decision(True, Reason.GRANTED, door, how, right=window.id, at=t)
