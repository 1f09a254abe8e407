"""Face enrollment (consent + 1-5 photos → encrypted embeddings), status, deletion, and the
gallery export for a building's door. Enrollment, deletion and export are audited."""

from __future__ import annotations

import base64
import binascii
import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, Field

from cloud.api.deps import KeysDep, NowDep, SessionDep, guard, scoped_get
from cloud.api.paging import PathId
from cloud.api.problems import ProblemError
from cloud.face import enrollment as rules
from cloud.models import Building, FaceEnrollment, Tenant
from cloud.security import audit
from cloud.security.authz import P, Principal
from protocols.face.engine import FaceEngine
from protocols.face.gallery import GalleryExport
from protocols.face.models import ModelsMissingError

log = logging.getLogger(__name__)
router = APIRouter(tags=["face"])
REFUSED = "https://anju.dev/problems/face-photo-refused"


class Consent(BaseModel):
    given: bool
    method: Annotated[str, Field(min_length=1, max_length=64)]  # "paper form", "tenant app"
    at: AwareDatetime
    note: Annotated[str, Field(max_length=500)] = ""


class EnrollIn(BaseModel):
    consent: Consent
    photos: Annotated[list[str], Field(min_length=1, max_length=rules.MAX_PHOTOS)]  # base64


class EnrollmentOut(BaseModel):
    tenant_id: int
    enrolled: bool
    photos: int = 0
    contract: str | None = None
    consent_at: datetime | None = None
    consent_method: str | None = None
    enrolled_at: datetime | None = None


def _engine(request: Request) -> FaceEngine:
    engine: FaceEngine | None = getattr(request.app.state, "face_engine", None)
    if engine is None:
        from cloud.face.models import load_engine  # noqa: PLC0415 - onnxruntime on first use

        try:
            engine = load_engine()  # ANJU_MODELS_DIR or the user cache, like the door
        except ModelsMissingError as exc:
            raise ProblemError(503, f"face models are not installed here: {exc}") from None
        request.app.state.face_engine = engine
    return engine


def _out(tenant_id: int, row: FaceEnrollment | None) -> EnrollmentOut:
    if row is None:
        return EnrollmentOut(tenant_id=tenant_id, enrolled=False)
    return EnrollmentOut(
        tenant_id=row.tenant_id,
        enrolled=True,
        photos=row.photo_count,
        contract=row.contract,
        consent_at=row.consent_at,
        consent_method=row.consent_method,
        enrolled_at=row.created_at,
    )


def _photos(body: EnrollIn) -> list[bytes]:
    photos: list[bytes] = []
    for index, text in enumerate(body.photos, 1):
        try:
            photos.append(base64.b64decode(text, validate=True))
        except (binascii.Error, ValueError):
            raise ProblemError(
                422, f"photo {index}: not base64", type_=REFUSED, photos=[index]
            ) from None
    return photos


@router.put("/tenants/{tenant_id}/face", status_code=201)
def enroll_face(
    tenant_id: PathId,
    body: EnrollIn,
    request: Request,
    me: Annotated[Principal, guard(P.TENANTS_WRITE, "path")],
    session: SessionDep,
    keys: KeysDep,
    now: NowDep,
) -> EnrollmentOut:
    """Enroll (or re-enroll) a tenant's face. Photos are used once and never stored."""
    tenant = scoped_get(session, me, Tenant, tenant_id)
    if not body.consent.given:
        raise ProblemError(422, "the tenant's consent to face recognition is required")
    try:
        vectors = rules.embed_photos(_engine(request), _photos(body))
    except rules.PhotosRefusedError as exc:
        refusals = [
            {"photo": r.photo, "reason": r.reason, "detail": r.detail} for r in exc.refusals
        ]
        raise ProblemError(422, str(exc), type_=REFUSED, refusals=refusals) from None
    row = rules.enroll(
        session,
        keys,
        tenant,
        vectors,
        consent_at=body.consent.at,
        consent_method=body.consent.method,
        consent_note=body.consent.note,
        recorded_by=me.username,
        now=now,
    )
    audit.record(
        session,
        me,
        "face.enroll",
        now,
        target_type="tenant",
        target_id=tenant.id,
        property_id=tenant.property_id,
        detail={"photos": len(vectors), "consent_method": body.consent.method},
    )
    session.commit()
    log.info("face enrolled for tenant %d (%d photos)", tenant.id, len(vectors))
    return _out(tenant.id, row)


@router.get("/tenants/{tenant_id}/face")
def face_status(
    tenant_id: PathId,
    me: Annotated[Principal, guard(P.TENANTS_READ, "path")],
    session: SessionDep,
) -> EnrollmentOut:
    """Whether the tenant is enrolled, with the recorded consent (never the embeddings)."""
    tenant = scoped_get(session, me, Tenant, tenant_id)
    return _out(tenant.id, rules.enrollment_of(session, tenant.id))


@router.delete("/tenants/{tenant_id}/face", status_code=204)
def delete_face(
    tenant_id: PathId,
    me: Annotated[Principal, guard(P.TENANTS_WRITE, "path")],
    session: SessionDep,
    now: NowDep,
) -> Response:
    """Delete on the tenant's request: the embeddings are gone, not flagged. Idempotent."""
    tenant = scoped_get(session, me, Tenant, tenant_id)
    row = rules.enrollment_of(session, tenant.id)
    if row is not None:
        session.delete(row)
        audit.record(
            session,
            me,
            "face.delete",
            now,
            target_type="tenant",
            target_id=tenant.id,
            property_id=tenant.property_id,
        )
        session.commit()
    return Response(status_code=204)


@router.get("/buildings/{building_id}/face-gallery")
def face_gallery(
    building_id: PathId,
    me: Annotated[Principal, guard(P.TENANTS_REVEAL, "path")],
    session: SessionDep,
    keys: KeysDep,
    now: NowDep,
    door: Annotated[str, Query(min_length=1, max_length=64)] = "main",
) -> GalleryExport:
    """Embeddings of everyone with current access to the building, for its door's gateway.
    Decrypted biometric data: revealing roles only, and audited."""
    building = scoped_get(session, me, Building, building_id)
    export = rules.gallery_export(session, keys, building.id, f"{building.id}/{door}", now)
    audit.record(
        session,
        me,
        "face.gallery_export",
        now,
        target_type="building",
        target_id=building.id,
        property_id=building.property_id,
        detail={"door": door, "people": len(export.entries)},
    )
    session.commit()
    return export
