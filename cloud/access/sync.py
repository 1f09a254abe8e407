"""Compiling each gateway's list from the records, and choosing what to send it: plain
functions over a session; the caller commits.

A compile that says the same as the last one changes nothing (its content hash is compared).
The publisher does not compile every gateway at every look: it gathers each gateway's inputs
(doors, the grants at that moment, the rows naming its credentials) without opening anything
sealed, and compiles only where their digest moved since its last compile (`sync_changed`).
A new list gets a version above both the last compiled and the gateway's applied one (a
restored database never sends a version the gateway would take for a replay). What is sent is
a delta on the version the gateway reports applied when that version is still kept, else the
whole list; it is sent again after `RESEND` while the gateway does not report it applied.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cloud.access.compile import DoorSecret, Pin, compile_list, content_hash, delta
from cloud.access.records import door_facts, door_secret, keypad_id, load_facts
from cloud.access.rights import Grant, rights
from cloud.db import as_utc
from cloud.db.bulk import insert_ignoring_duplicates
from cloud.face.enrollment import unseal
from cloud.models import (
    AccessListVersion,
    Door,
    FaceEnrollment,
    GatewayAccess,
    PinCredential,
    VisitorPass,
)
from cloud.security import contexts
from cloud.security.crypto import FieldKeys, decrypt, encrypt
from protocols.access.schema import AccessList
from protocols.access.signing import canonical_body, encode_signed
from protocols.face.contract import embedding_to_text

RESEND = timedelta(seconds=15)
KEEP_VERSIONS = 8  # kept for deltas, besides the one the gateway has applied


@dataclass(frozen=True)
class Inputs:
    """What one gateway's list is compiled from, read without opening anything sealed. Its
    `digest` changes whenever a compile could say something new: the grants are computed at
    `now` (a lease or pass that ends, a staff window that rolls at midnight, a work order), and
    the credentials are named by rows that are replaced, never edited, when they change (a new
    enrollment is a new row; a PIN's hash changes with it)."""

    doors: list[Door]
    grants: list[Grant]
    faces: list[tuple[int, int]]  # (enrollment id, tenant id)
    pins: list[tuple[str, str, str]]  # (subject, keypad id, argon2id hash)

    def digest(self) -> str:
        h = hashlib.sha256()
        for d in self.doors:
            h.update(f"door {d.id} {d.code} {d.scope} {d.property_id} {d.building_id} "
                     f"{d.unit_id} {d.secret_enc.hex()}\n".encode())  # fmt: skip
        for g in self.grants:
            h.update(f"grant {g.subject} {g.source} {g.doors} {g.valid_from.isoformat()} "
                     f"{g.valid_until.isoformat()} {g.uses}\n".encode())  # fmt: skip
        for face in self.faces:
            h.update(f"face {face}\n".encode())
        for pin in self.pins:
            h.update(f"pin {pin}\n".encode())
        return h.hexdigest()


def gather(session: Session, gateway_id: str, *, now: datetime, tz: ZoneInfo) -> Inputs:
    """The gateway's doors, the grants over them at `now`, and their subjects' credentials."""
    doors = list(
        session.scalars(select(Door).where(Door.gateway_id == gateway_id).order_by(Door.id))
    )
    facts = load_facts(session, doors, now)
    grants = rights(
        [door_facts(d) for d in doors], facts.leases, facts.staff, facts.passes,
        now=now, tz=tz, work=facts.work,
    )  # fmt: skip
    subjects = {g.subject for g in grants}
    tenant_ids = [int(s.split(":")[1]) for s in subjects if s.startswith("tenant:")]
    user_ids = [int(s.split(":")[1]) for s in subjects if s.startswith("user:")]
    pass_ids = [int(s.split(":")[1]) for s in subjects if s.startswith("pass:")]
    faces = session.execute(
        select(FaceEnrollment.id, FaceEnrollment.tenant_id)
        .where(FaceEnrollment.tenant_id.in_(tenant_ids))
        .order_by(FaceEnrollment.id)
    ).all()
    pins: list[tuple[str, str, str]] = []
    for pin in session.scalars(
        select(PinCredential)
        .where(PinCredential.tenant_id.in_(tenant_ids) | PinCredential.user_id.in_(user_ids))
        .order_by(PinCredential.id)
    ):
        who = f"tenant:{pin.tenant_id}" if pin.tenant_id is not None else f"user:{pin.user_id}"
        pins.append((who, keypad_id(pin), pin.pin_hash))
    visits = session.scalars(
        select(VisitorPass).where(VisitorPass.id.in_(pass_ids)).order_by(VisitorPass.id)
    )
    pins.extend((f"pass:{v.id}", keypad_id(v), v.code_hash) for v in visits)
    return Inputs(doors, grants, [(i, t) for i, t in faces], pins)


def build(
    session: Session, keys: FieldKeys, gateway_id: str, *, now: datetime, tz: ZoneInfo,
    version: int, inputs: Inputs | None = None,
) -> AccessList:  # fmt: skip
    """The gateway's whole list as the records say at `now` (`inputs`: gathered already)."""
    inputs = inputs or gather(session, gateway_id, now=now, tz=tz)
    faces = {
        f"tenant:{row.tenant_id}": [embedding_to_text(v) for v in unseal(keys, row)]
        for row in session.scalars(
            select(FaceEnrollment).where(FaceEnrollment.id.in_([i for i, _ in inputs.faces]))
        )
    }
    pins = {who: Pin(keypad, phc) for who, keypad, phc in inputs.pins}
    secrets = [DoorSecret(d.id, d.code, door_secret(keys, d)) for d in inputs.doors]
    return compile_list(
        gateway_id, secrets, inputs.grants, faces=faces, pins=pins, version=version,
        issued_at=now,
    )  # fmt: skip


def state_of(session: Session, gateway_id: str) -> GatewayAccess:
    """The gateway's sync row, locked (two workers never compile one gateway at once)."""
    insert_ignoring_duplicates(
        session,
        GatewayAccess.__table__,
        [{"gateway_id": gateway_id, "compiled_version": 0, "compiled_hash": "", "entries": 0,
          "sent_version": 0, "applied_version": 0, "inputs_digest": ""}],
    )  # fmt: skip
    return session.scalars(
        select(GatewayAccess).where(GatewayAccess.gateway_id == gateway_id).with_for_update()
    ).one()


def compile_gateway(
    session: Session, keys: FieldKeys, gateway_id: str, *, now: datetime, tz: ZoneInfo,
    inputs: Inputs | None = None,
) -> GatewayAccess:  # fmt: skip
    """Compile; keep a new version only if the list says something new. Either way the
    inputs' digest is kept: a look compiles the gateway again only when they move."""
    state = state_of(session, gateway_id)
    version = max(state.compiled_version, state.applied_version) + 1
    inputs = inputs or gather(session, gateway_id, now=now, tz=tz)
    state.inputs_digest = inputs.digest()
    access = build(session, keys, gateway_id, now=now, tz=tz, version=version, inputs=inputs)
    digest = content_hash(access)
    if digest == state.compiled_hash and state.compiled_version >= state.applied_version:
        return state
    session.add(
        AccessListVersion(
            gateway_id=gateway_id,
            version=version,
            sha256=digest,
            body_enc=encrypt(
                keys, canonical_body(access), context=contexts.access_list(gateway_id, version)
            ),
            created_at=now,
        )
    )
    state.compiled_version, state.compiled_hash, state.compiled_at = version, digest, now
    state.entries = len(access.rights)
    kept = session.scalars(
        select(AccessListVersion.version)
        .where(AccessListVersion.gateway_id == gateway_id)
        .order_by(AccessListVersion.version.desc())
        .limit(KEEP_VERSIONS - 1)
    ).all()
    session.execute(
        delete(AccessListVersion).where(
            AccessListVersion.gateway_id == gateway_id,
            AccessListVersion.version.not_in([version, state.applied_version, *kept]),
        )
    )
    return state


def kept_list(
    session: Session, keys: FieldKeys, gateway_id: str, version: int
) -> AccessList | None:
    row = session.get(AccessListVersion, (gateway_id, version))
    if row is None:
        return None
    body = decrypt(keys, row.body_enc, context=contexts.access_list(gateway_id, version))
    return AccessList.model_validate_json(body)


def payload_for(
    session: Session,
    keys: FieldKeys,
    key: Ed25519PrivateKey,
    state: GatewayAccess,
    *,
    now: datetime,
) -> bytes | None:
    """The signed `down/access` payload the gateway needs now, marked sent; None if nothing."""
    if state.compiled_version in (0, state.applied_version):
        return None
    recent = state.sent_at is not None and now - as_utc(state.sent_at) < RESEND
    if state.sent_version == state.compiled_version and recent:
        return None
    new = kept_list(session, keys, state.gateway_id, state.compiled_version)
    if new is None:
        return None
    held = (
        kept_list(session, keys, state.gateway_id, state.applied_version)
        if state.applied_version
        else None
    )
    message = new if held is None or held.version >= new.version else delta(held, new)
    state.sent_version, state.sent_at = state.compiled_version, now
    return encode_signed(message, key)


@dataclass(frozen=True, slots=True)
class Outgoing:
    gateway_id: str
    version: int
    payload: bytes


def sync_all(
    session: Session,
    keys: FieldKeys,
    key: Ed25519PrivateKey,
    *,
    now: datetime,
    tz: ZoneInfo,
    gateway_ids: Sequence[str] | None = None,
) -> list[Outgoing]:
    """Compile every gateway that drives a door (or held a list), and what to send each."""
    if gateway_ids is None:
        with_doors = set(session.scalars(select(Door.gateway_id).distinct()))
        with_lists = set(session.scalars(select(GatewayAccess.gateway_id)))
        gateway_ids = sorted(with_doors | with_lists)
    out = []
    for gateway_id in gateway_ids:
        state = compile_gateway(session, keys, gateway_id, now=now, tz=tz)
        payload = payload_for(session, keys, key, state, now=now)
        if payload is not None:
            out.append(Outgoing(gateway_id, state.compiled_version, payload))
    return out


def sync_changed(
    session: Session,
    keys: FieldKeys,
    key: Ed25519PrivateKey,
    *,
    now: datetime,
    tz: ZoneInfo,
) -> tuple[list[Outgoing], list[str]]:
    """One look of the publisher: compile only the gateways whose inputs' digest is not the
    one their last compile kept (`GatewayAccess.inputs_digest`, so a restarted publisher
    compiles nothing that did not move), and send what any gateway lacks (its reported
    version behind, or a compile above it). Returns what to publish and whom it compiled."""
    with_doors = set(session.scalars(select(Door.gateway_id).distinct()))
    rows = session.execute(
        select(GatewayAccess.gateway_id, GatewayAccess.compiled_version,
               GatewayAccess.applied_version, GatewayAccess.inputs_digest)
    ).all()  # fmt: skip
    kept = {gid: digest for gid, _, _, digest in rows}
    behind = {gid: compiled < applied for gid, compiled, applied, _ in rows if compiled != applied}
    out, compiled = [], []
    for gateway_id in sorted(with_doors | set(kept)):
        inputs = gather(session, gateway_id, now=now, tz=tz)
        if kept.get(gateway_id) != inputs.digest() or behind.get(gateway_id):
            # changed, or restored from a backup above what the cloud compiled
            state = compile_gateway(session, keys, gateway_id, now=now, tz=tz, inputs=inputs)
            compiled.append(gateway_id)
        elif gateway_id in behind:
            state = state_of(session, gateway_id)
        else:
            continue
        payload = payload_for(session, keys, key, state, now=now)
        if payload is not None:
            out.append(Outgoing(gateway_id, state.compiled_version, payload))
    return out, compiled


def unsend(session: Session, gateway_ids: Sequence[str]) -> None:
    """Lists that could not be published are sent at the next look, not after `RESEND`."""
    for gateway_id in gateway_ids:
        state = session.get(GatewayAccess, gateway_id)
        if state is not None:
            state.sent_at = None


def record_applied(session: Session, gateway_id: str, version: int, ts: datetime) -> None:
    """What a gateway's `up/state` says it applied (it may be behind what was sent)."""
    state = state_of(session, gateway_id)
    if version != state.applied_version:
        state.applied_version, state.applied_at = version, ts
        if version != state.compiled_version:
            # It moved, yet not to the last list sent: that one was a delta on a base it no
            # longer holds (lists queued while it was offline) or was lost. Send again at the
            # next look, on the version it holds now, rather than after `RESEND`.
            state.sent_at = None
    elif (
        version != state.compiled_version
        and state.sent_at is not None
        and ts >= as_utc(state.sent_at)
    ):
        # Still behind in a report made after the send (a broker that kept no queue for it
        # while it was away): send at the next look, so it is not left waiting for `RESEND`.
        state.sent_at = None
