"""The gateway's access service: applies signed lists from `down/access`, decides at the doors.

A payload is checked in the order of `protocols.access.signing` (size, signature, schema,
address) and then against the applied version (a replay or a delta on another base is
refused), merged, written to the store in one transaction, and only then made the list the
doors decide from. Each applied or refused list is an event on `up/events`, so the cloud learns
what the gateway holds; an applied list also asks the uplink for an `up/state` at once (it
reports `access_version`).

Decisions run under one lock with the list they started on; the guard state (trusted clock,
uses, used codes, keypad failures) is saved after each, and the clock every `CLOCK_SAVE_S`, so a
reboot without time starts from a recent high water (docs/access.md).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from edge.access.clock import GatewayClock
from edge.access.store import AccessStore
from protocols.access.decide import (
    AccessIndex,
    Decision,
    GuardState,
    Presented,
    decide,
)
from protocols.access.schema import (
    EMBEDDING_DIM,
    SET_ASIDE,
    AccessList,
    CredentialKind,
    PinHash,
    RevocationKind,
    apply,
)
from protocols.access.signing import AccessRefusedError, Refusal, admit, decode_signed

if TYPE_CHECKING:
    from protocols.ed25519 import PublicKey
    from protocols.face.gallery import Gallery

log = logging.getLogger(__name__)

EVENT_KIND = "event"
# Lists waiting to be applied; past this a flood is dropped (a newer list supersedes them).
MAX_WAITING = 4
CLOCK_SAVE_S = 60.0


class EventSink(Protocol):
    def append(self, kind: str, payloads: list[dict[str, object]]) -> list[int]: ...


def verify_pin(stored: PinHash, typed: str) -> bool:
    """Argon2id of the typed PIN with the stored parameters, compared in constant time.
    argon2 (and cffi under it) is imported here: only a gateway whose door takes a PIN uses it."""
    from argon2.exceptions import Argon2Error  # noqa: PLC0415
    from argon2.low_level import Type, hash_secret_raw  # noqa: PLC0415

    try:
        expected = base64.b64decode(stored.hash)
        raw = hash_secret_raw(
            typed.encode(),
            base64.b64decode(stored.salt),
            time_cost=stored.time_cost,
            memory_cost=stored.memory_kib,
            parallelism=stored.parallelism,
            hash_len=len(expected),
            type=Type.ID,
        )
    except (Argon2Error, ValueError):
        return False
    return hmac.compare_digest(raw, expected)


class AccessService:
    def __init__(
        self,
        gateway_id: str,
        key: PublicKey | None,
        store: AccessStore,
        events: EventSink,
        clock: GatewayClock,
        *,
        on_stored: Callable[[], None] = lambda: None,
        on_applied: Callable[[], None] = lambda: None,
        sleep: Callable[[float], Any] = asyncio.sleep,
    ) -> None:
        self._gid = gateway_id
        self._key = key
        self._store = store
        self._events = events
        self._clock = clock
        self.on_stored = on_stored  # set by the gateway once the uplink exists
        # Also set by the gateway: report the applied version in `up/state` now, not within
        # the state interval (the cloud's sync view shows a change applied within seconds).
        self.on_applied = on_applied
        self._sleep = sleep
        self._lock = threading.Lock()
        self._inbox: asyncio.Queue[bytes] = asyncio.Queue(MAX_WAITING)
        held = store.load(faces=bytearray())  # the vectors stay sealed in the store
        self.index: AccessIndex | None = None if held is None else AccessIndex(held)
        self.state: GuardState = store.load_guard()
        if held is not None:
            self.state.clock.observe(held.issued_at)
        self.refused: dict[Refusal, int] = {}
        self.dropped = 0

    @property
    def version(self) -> int | None:
        index = self.index
        return None if index is None else index.version

    # ---- lists ---------------------------------------------------------------------------

    def deliver(self, payload: bytes) -> None:
        """The uplink received a `down/access` payload."""
        try:
            self._inbox.put_nowait(payload)
        except asyncio.QueueFull:
            self.dropped += 1
            log.warning("[%s] %d access lists already waiting; dropped one", self._gid, MAX_WAITING)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._apply_loop(), name=f"access-apply-{self._gid}")
            tg.create_task(self._clock_loop(), name=f"access-clock-{self._gid}")

    async def _apply_loop(self) -> None:
        while True:
            payload = await self._inbox.get()
            await asyncio.to_thread(self.receive, payload)

    async def _clock_loop(self) -> None:
        while True:
            await asyncio.to_thread(self.tick)
            await self._sleep(CLOCK_SAVE_S)

    def tick(self) -> None:
        """Advance and save the trusted clock (its high water survives a reboot)."""
        with self._lock:
            self.state.clock.now(self._clock.instant(self.state.clock))
            self._store.save_guard(self.state)

    def receive(self, payload: bytes) -> bool:
        """Apply one payload, or refuse it; either way one event. True if applied."""
        try:
            applied = self.apply(payload)
        except AccessRefusedError as exc:
            self.refused[exc.reason] = self.refused.get(exc.reason, 0) + 1
            log.warning("[%s] access list refused: %s", self._gid, exc)
            self._record(
                {"type": "access.list_refused", "reason": str(exc.reason), "detail": exc.detail}
            )
            return False
        log.info(
            "[%s] access list %d applied: %d doors, %d credentials, %d rights",
            self._gid,
            applied.version,
            len(applied.doors),
            len(applied.credentials),
            len(applied.rights),
        )
        self._record(
            {
                "type": "access.list_applied",
                "version": applied.version,
                "credentials": len(applied.credentials),
                "rights": len(applied.rights),
            }
        )
        self.on_applied()
        return True

    def apply(self, payload: bytes) -> AccessList:
        """Verify, merge, persist, then swap in; `AccessRefusedError` for a refusal."""
        faces = bytearray()  # the update's face vectors, set aside as they are parsed
        update = decode_signed(payload, self._key, gateway_id=self._gid, faces=faces)
        with self._lock:
            held = None if self.index is None else self.index.list
            admit(update, None if held is None else held.version)
            try:
                applied = apply(held, update)
            except ValueError as exc:  # the merge breaks the list (a keypad id used twice)
                raise AccessRefusedError(Refusal.MALFORMED, str(exc)[:200]) from None
            bad = _bad_embeddings(update, faces)
            if bad:
                raise AccessRefusedError(Refusal.MALFORMED, f"non-finite embedding in {bad}")
            self._store.save(applied, update, faces)
            del faces
            index = AccessIndex(applied)
            self.state.clock.observe(applied.issued_at)
            self.state.prune(index, self.state.clock.high_water)
            self._store.save_guard(self.state)
            self.index = index
        return applied

    def _record(self, event: dict[str, Any]) -> None:
        event = {"source": "access", "ts": self._clock.wall().isoformat(), **event}
        self._events.append(EVENT_KIND, [event])
        self.on_stored()

    # ---- doors ---------------------------------------------------------------------------

    def gallery(self, door: str) -> Gallery:
        """The faces that may be presented at `door`: of subjects with a right naming it.
        Rows are credential ids; `decide` judges the rights."""
        from protocols.face.gallery import Gallery, Identity  # noqa: PLC0415

        index = self.index
        if index is None:
            return Gallery.empty()
        subjects = {
            subject
            for subject, rights in index.rights.items()
            if any(
                door in r.doors and not index.is_revoked(RevocationKind.RIGHT, r.id) for r in rights
            )
        }
        faces = [
            c
            for c in index.list.credentials
            if c.kind is CredentialKind.FACE and c.subject in subjects
        ]
        if not faces:
            return Gallery.empty()
        vectors = self._store.faces([c.id for c in faces])
        return Gallery([Identity(c.id) for c in faces], vectors)

    def decide(self, door: str, presented: Presented) -> Decision:
        """Decide and save what it consumed; the caller unlocks and records the event."""
        with self._lock:
            at = self._clock.instant(self.state.clock)
            decision = decide(self.index, door, presented, at, self.state, verify_pin=verify_pin)
            self._store.save_guard(self.state)
        return decision

    def record(self, decision: Decision, **extra: object) -> None:
        """The decision's event on `up/events` (with what the door adds: score, lock error)."""
        event = decision.event()
        if event["ts"] is None:
            event["ts"] = self._clock.wall().isoformat()
        self._events.append(EVENT_KIND, [event | extra])
        self.on_stored()


def _bad_embeddings(update: AccessList, faces: bytes | bytearray) -> str | None:
    """The first face credential whose vector (set aside in `faces`, in order) is not finite:
    it would poison every match."""
    if not faces:
        return None
    import numpy as np  # noqa: PLC0415 - only lists with faces need it

    vectors = np.frombuffer(faces, dtype="<f4").reshape(-1, EMBEDDING_DIM)
    finite = np.isfinite(vectors).all(axis=1)
    if finite.all():
        return None
    set_aside = [c for c in update.credentials if c.embedding == SET_ASIDE]
    return set_aside[int(np.argmin(finite))].id
