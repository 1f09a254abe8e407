"""Enrollment rules as plain functions: photos → embeddings or a refusal with the reason;
sealing, the per-door gallery, and deletion when access ends."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

import cv2
import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cloud.db import as_utc
from cloud.models import FaceEnrollment, Lease, LeaseStatus, LeaseTenant, Tenant, Unit
from cloud.security import contexts
from cloud.security.crypto import FieldKeys, decrypt, encrypt
from protocols.errors import AnjuError
from protocols.face.contract import (
    RECOGNIZER,
    FloatArray,
    decode_embedding,
    embedding_to_text,
    encode_embedding,
)
from protocols.face.engine import FaceEngine
from protocols.face.gallery import ExportEntry, GalleryExport, export_contract
from protocols.face.quality import ENROLLMENT_GATES
from protocols.face.threshold import DEFAULT_THRESHOLD

MAX_PHOTOS = 5
MAX_PHOTO_BYTES = 10 * 1024 * 1024
# Leases under which a person may enter.
ACCESS_STATUSES = (LeaseStatus.SIGNED, LeaseStatus.ACTIVE)


@dataclass(frozen=True, slots=True)
class Refusal:
    photo: int  # 1-based
    reason: str  # no_face | several_faces | too_small | blurred | not_frontal | not_an_image | …
    detail: str


class PhotosRefusedError(AnjuError):
    def __init__(self, refusals: list[Refusal]) -> None:
        super().__init__("; ".join(f"photo {r.photo}: {r.detail}" for r in refusals))
        self.refusals = refusals


def decode_photo(data: bytes) -> np.ndarray | None:
    if not data or len(data) > MAX_PHOTO_BYTES:
        return None
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else np.asarray(image, dtype=np.uint8)


def embed_photos(engine: FaceEngine, photos: Sequence[bytes]) -> FloatArray:
    """One embedding per photo, or PhotosRefusedError listing every photo that failed and why."""
    if not 1 <= len(photos) <= MAX_PHOTOS:
        raise PhotosRefusedError(
            [Refusal(0, "photo_count", f"send 1 to {MAX_PHOTOS} photos, not {len(photos)}")]
        )
    refusals: list[Refusal] = []
    vectors: list[FloatArray] = []
    for index, data in enumerate(photos, 1):
        image = decode_photo(data)
        if image is None:
            refusals.append(Refusal(index, "not_an_image", "not a JPEG/PNG photo up to 10 MB"))
            continue
        faces = engine.analyze(image, gates=ENROLLMENT_GATES).faces
        if not faces:
            refusals.append(Refusal(index, "no_face", "no face found"))
        elif len(faces) > 1:
            refusals.append(
                Refusal(index, "several_faces", f"{len(faces)} faces; one person per photo")
            )
        elif faces[0].reject is not None or faces[0].embedding is None:
            reason = faces[0].reject.value if faces[0].reject else "unusable"
            refusals.append(Refusal(index, reason, _REJECT_TEXT.get(reason, reason)))
        else:
            vectors.append(faces[0].embedding)
    if refusals:
        raise PhotosRefusedError(refusals)
    stacked = np.asarray(vectors, dtype=np.float32)
    # Photos of someone else slipped into the set would let two people in on one consent.
    centre = stacked.mean(axis=0)
    centre /= max(float(np.linalg.norm(centre)), 1e-12)
    odd = [
        Refusal(i, "different_person", "not the same person as the other photos")
        for i, score in enumerate(stacked @ centre, 1)
        if len(stacked) > 1 and float(score) < DEFAULT_THRESHOLD
    ]
    if odd:
        raise PhotosRefusedError(odd)
    return stacked


_REJECT_TEXT = {
    "too_small": "the face is too small; move closer or crop less",
    "blurred": "the face is blurred",
    "not_frontal": "the face is not frontal; look at the camera",
}


def seal(keys: FieldKeys, tenant_id: int, vectors: FloatArray) -> bytes:
    plain = b"".join(encode_embedding(v) for v in vectors)
    return encrypt(keys, plain, context=contexts.face_embeddings(tenant_id))


def unseal(keys: FieldKeys, enrollment: FaceEnrollment) -> FloatArray:
    plain = decrypt(
        keys, enrollment.embeddings_enc, context=contexts.face_embeddings(enrollment.tenant_id)
    )
    size = RECOGNIZER.dim * 4
    rows = [decode_embedding(plain[i : i + size]) for i in range(0, len(plain), size)]
    return np.asarray(rows, dtype=np.float32)


def enroll(
    session: Session,
    keys: FieldKeys,
    tenant: Tenant,
    vectors: FloatArray,
    *,
    consent_at: datetime,
    consent_method: str,
    consent_note: str = "",
    recorded_by: str = "",
    now: datetime,
) -> FaceEnrollment:
    """Replace any earlier enrollment of the tenant; the caller commits."""
    session.execute(delete(FaceEnrollment).where(FaceEnrollment.tenant_id == tenant.id))
    row = FaceEnrollment(
        tenant_id=tenant.id,
        embeddings_enc=seal(keys, tenant.id, vectors),
        photo_count=len(vectors),
        contract=RECOGNIZER.key,
        consent_at=consent_at,
        consent_method=consent_method,
        consent_note=consent_note,
        recorded_by=recorded_by,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return row


def _start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def access_windows(
    session: Session, building_id: int | None = None
) -> dict[int, tuple[datetime, datetime]]:
    """tenant id → (valid_from, valid_until) over their signed or active leases (UTC days;
    the end date is inclusive, so access runs to the next midnight)."""
    query = (
        select(Lease.primary_tenant_id, LeaseTenant.tenant_id, Lease.start_date, Lease.end_date)
        .join(LeaseTenant, LeaseTenant.lease_id == Lease.id, isouter=True)
        .where(Lease.status.in_(ACCESS_STATUSES))
    )
    if building_id is not None:
        query = query.join(Unit, Unit.id == Lease.unit_id).where(Unit.building_id == building_id)
    windows: dict[int, tuple[datetime, datetime]] = {}
    for primary, co, start, end in session.execute(query):
        for tid in {primary, co} - {None}:
            lo, hi = _start(start), _start(end) + timedelta(days=1)
            if tid in windows:
                lo, hi = min(lo, windows[tid][0]), max(hi, windows[tid][1])
            windows[tid] = (lo, hi)
    return windows


def gallery_export(
    session: Session, keys: FieldKeys, building_id: int, door_id: str, now: datetime
) -> GalleryExport:
    """Everyone enrolled with a signed or active lease in the building, with their window."""
    windows = access_windows(session, building_id)
    rows = session.scalars(
        select(FaceEnrollment)
        .where(FaceEnrollment.tenant_id.in_(list(windows)))
        .order_by(FaceEnrollment.tenant_id)
    ).all()
    entries = [
        ExportEntry(
            person_id=f"tenant-{row.tenant_id}",
            valid_from=windows[row.tenant_id][0],
            valid_until=windows[row.tenant_id][1],
            embeddings=[embedding_to_text(v) for v in unseal(keys, row)],
        )
        for row in rows
        if windows[row.tenant_id][1] > now
    ]
    return GalleryExport(
        door_id=door_id, generated_at=now, contract=export_contract(), entries=entries
    )


# Leases that once gave access; the end of the last one starts the purge grace.
_HELD_STATUSES = (*ACCESS_STATUSES, LeaseStatus.ENDED, LeaseStatus.TERMINATED)


def _access_end(
    status: LeaseStatus, end: date, terminated_on: date | None, closed_at: datetime | None
) -> datetime:
    """When a lease stops letting its people in: the day after its end date, or earlier for
    a lease ended or terminated early (the day after the last day occupied, or its closing)."""
    moment = _start(end) + timedelta(days=1)
    if status in (LeaseStatus.ENDED, LeaseStatus.TERMINATED):
        if terminated_on is not None:
            moment = min(moment, _start(terminated_on) + timedelta(days=1))
        if closed_at is not None:
            moment = min(moment, closed_at)
    return moment


def last_access(session: Session) -> dict[int, datetime]:
    """tenant id → when their last lease that gave access stops (or stopped) giving it."""
    query = select(
        Lease.primary_tenant_id,
        LeaseTenant.tenant_id,
        Lease.status,
        Lease.end_date,
        Lease.terminated_on,
        Lease.closed_at,
    ).join(LeaseTenant, LeaseTenant.lease_id == Lease.id, isouter=True)
    ends: dict[int, datetime] = {}
    for primary, co, status, end, terminated_on, closed_at in session.execute(
        query.where(Lease.status.in_(_HELD_STATUSES))
    ):
        closed = None if closed_at is None else as_utc(closed_at)  # SQLite: naive UTC
        moment = _access_end(status, end, terminated_on, closed)
        for tid in {primary, co} - {None}:
            ends[tid] = max(moment, ends.get(tid, moment))
    return ends


def purge_ended_access(
    session: Session, now: datetime, grace: timedelta = timedelta(0)
) -> list[int]:
    """Delete the enrollments of everyone whose access ended at least `grace` ago. An
    enrollment made after the access ended (or by someone who never had access, e.g. before
    the lease is signed) gets its grace from its own creation. Returns the tenant ids; the
    caller commits."""
    ends = last_access(session)
    enrolled = session.execute(select(FaceEnrollment.tenant_id, FaceEnrollment.created_at)).all()
    ended = sorted(
        tid
        for tid, created in enrolled
        if max(as_utc(created), ends.get(tid, as_utc(created))) + grace <= now
    )
    if ended:
        session.execute(delete(FaceEnrollment).where(FaceEnrollment.tenant_id.in_(ended)))
    return ended


def enrollment_of(session: Session, tenant_id: int) -> FaceEnrollment | None:
    return session.scalar(select(FaceEnrollment).where(FaceEnrollment.tenant_id == tenant_id))
