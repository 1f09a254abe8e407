"""Face enrollment (consent + 1-5 photos → encrypted embeddings), status, deletion, and the
gallery export for a building's door."""

from __future__ import annotations

import base64
import binascii
import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import select

from cloud.api.deps import SessionDep
from cloud.api.problems import ProblemError
from cloud.face import enrollment as rules
from cloud.models import Building, FaceEnrollment, Tenant
from cloud.security.crypto import FieldKeys, load_field_keys
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
    recorded_by: Annotated[str, Field(max_length=64)] = ""


class EnrollIn(BaseModel):
    consent: Consent
    photos: Annotated[list[str], Field(min_length=1, max_length=rules.MAX_PHOTOS)]  # base64


class EnrollmentOut(BaseModel):
    tenant_id: int
    photos: int
    contract: str
    consent_at: datetime
    consent_method: str
    enrolled_at: datetime


def _keys(request: Request) -> FieldKeys:
    keys: FieldKeys | None = getattr(request.app.state, "field_keys", None)
    if keys is None:
        settings = request.app.state.settings
        keys = load_field_keys(
            spec=settings.field_keys,
            index_key=settings.index_key,
            data_dir=settings.data_dir,
            development=settings.env == "development",
        )
        request.app.state.field_keys = keys
    return keys


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


def _tenant(session: SessionDep, tenant_id: int) -> Tenant:
    tenant = session.get(Tenant, tenant_id)
    if tenant is None:
        raise ProblemError(404, f"no tenant {tenant_id}")
    return tenant


def _out(row: FaceEnrollment) -> EnrollmentOut:
    return EnrollmentOut(
        tenant_id=row.tenant_id,
        photos=row.photo_count,
        contract=row.contract,
        consent_at=row.consent_at,
        consent_method=row.consent_method,
        enrolled_at=row.created_at,
    )


@router.put("/tenants/{tenant_id}/face", status_code=201)
def enroll_face(
    tenant_id: int, body: EnrollIn, request: Request, session: SessionDep
) -> EnrollmentOut:
    """Enroll (or re-enroll) a tenant's face. Photos are used once and never stored."""
    tenant = _tenant(session, tenant_id)
    if not body.consent.given:
        raise ProblemError(422, "the tenant's consent to face recognition is required")
    photos: list[bytes] = []
    for index, text in enumerate(body.photos, 1):
        try:
            photos.append(base64.b64decode(text, validate=True))
        except (binascii.Error, ValueError):
            raise ProblemError(
                422, f"photo {index}: not base64", type_=REFUSED, photos=[index]
            ) from None
    try:
        vectors = rules.embed_photos(_engine(request), photos)
    except rules.PhotosRefusedError as exc:
        refusals = [
            {"photo": r.photo, "reason": r.reason, "detail": r.detail} for r in exc.refusals
        ]
        raise ProblemError(422, str(exc), type_=REFUSED, refusals=refusals) from None
    now = datetime.now(UTC)
    row = rules.enroll(
        session,
        _keys(request),
        tenant,
        vectors,
        consent_at=body.consent.at,
        consent_method=body.consent.method,
        consent_note=body.consent.note,
        recorded_by=body.consent.recorded_by,
        now=now,
    )
    session.commit()
    log.info("face enrolled for tenant %d (%d photos)", tenant_id, len(vectors))
    return _out(row)


@router.get("/tenants/{tenant_id}/face")
def face_status(tenant_id: int, session: SessionDep) -> EnrollmentOut:
    _tenant(session, tenant_id)
    row = session.scalar(select(FaceEnrollment).where(FaceEnrollment.tenant_id == tenant_id))
    if row is None:
        raise ProblemError(404, f"tenant {tenant_id} has no face enrollment")
    return _out(row)


@router.delete("/tenants/{tenant_id}/face", status_code=204)
def delete_face(tenant_id: int, session: SessionDep) -> Response:
    """Delete on the tenant's request: the embeddings are gone, not flagged."""
    _tenant(session, tenant_id)
    row = session.scalar(select(FaceEnrollment).where(FaceEnrollment.tenant_id == tenant_id))
    if row is None:
        raise ProblemError(404, f"tenant {tenant_id} has no face enrollment")
    session.delete(row)
    session.commit()
    return Response(status_code=204)


@router.get("/buildings/{building_id}/face-gallery")
def face_gallery(
    building_id: int,
    request: Request,
    session: SessionDep,
    door: Annotated[str, Query(min_length=1, max_length=64)] = "main",
) -> GalleryExport:
    """Embeddings of everyone with current access to the building, for its door's gateway."""
    if session.get(Building, building_id) is None:
        raise ProblemError(404, f"no building {building_id}")
    return rules.gallery_export(
        session, _keys(request), building_id, f"{building_id}/{door}", datetime.now(UTC)
    )
