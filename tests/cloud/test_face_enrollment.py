"""Face enrollment through the API on real photos: consent, refusals with reasons, encrypted
storage, deletion on request and when access ends, audit, and the door gallery that matches."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime

import cv2
import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.face import enrollment as rules
from cloud.models import AuditEvent, FaceEnrollment, LeaseStatus, Property, Role
from cloud.security.crypto import DecryptionError, FieldKeys, decrypt
from protocols.face.gallery import GalleryExport
from protocols.face.quality import ENROLLMENT_GATES
from protocols.face.threshold import DEFAULT_THRESHOLD
from tests.cloud.conftest import Api, add_lease, add_portfolio, add_tenant, cn_id
from tests.cloud.world import NOW as WORLD_NOW
from tests.face_assets import empty_frame, engine, photo, side_by_side

CONSENT = {"given": True, "method": "paper form", "at": "2026-03-01T09:00:00+00:00"}


def _jpeg(image: np.ndarray) -> str:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return base64.b64encode(data.tobytes()).decode()


def _probe(name: str) -> np.ndarray:
    main = engine().analyze(photo(name), gates=ENROLLMENT_GATES).main
    assert main is not None
    assert main.embedding is not None
    return main.embedding


@dataclass
class Face:
    api: Api
    obama: int  # P1's tenant, signed lease for 2026
    biden: int  # another P1 tenant, no lease
    building: int

    async def put(self, tenant: int, photos: list[str], role: Role = Role.FRONT_DESK, **consent):
        body = {"consent": {**CONSENT, **consent}, "photos": photos}
        return await self.api.client.put(
            f"/api/v1/tenants/{tenant}/face", json=body, headers=self.api.as_role(role)
        )

    async def get(self, path: str, role: Role = Role.MANAGER):
        return await self.api.client.get(f"/api/v1{path}", headers=self.api.as_role(role))


@pytest.fixture
def face(api: Api, keys: FieldKeys) -> Face:
    engine()  # fetch the models (and fail loudly) before the app loads them
    site = api.world.sites["P1"]
    with api.sessions() as s:
        biden = add_tenant(
            s, keys, s.get_one(Property, site.property_id), name="Biden", id_number=cn_id(77)
        )
        s.commit()
        return Face(api, site.tenant_id, biden.id, site.building_id)


async def test_enrolled_tenant_is_in_the_door_gallery_and_matches_other_photos(
    face: Face, keys: FieldKeys
) -> None:
    r = await face.put(face.obama, [_jpeg(photo("obama.jpg"))])
    assert r.status_code == 201, r.text
    assert r.json()["photos"] == 1
    status = (await face.get(f"/tenants/{face.obama}/face", Role.TENANT)).json()
    assert (status["enrolled"], status["consent_method"]) == (True, "paper form")

    r = await face.get(f"/buildings/{face.building}/face-gallery?door=front")
    assert r.status_code == 200, r.text
    export = GalleryExport.model_validate(r.json())
    assert [e.person_id for e in export.entries] == [f"tenant-{face.obama}"]
    gallery = export.gallery()
    for name in ("obama2.jpg", "obama3.jpg"):
        match = gallery.match(_probe(name))
        assert match.score >= DEFAULT_THRESHOLD
        assert match.identity is not None
        assert match.identity.valid_at(WORLD_NOW)
    assert gallery.match(_probe("biden.jpg")).score < DEFAULT_THRESHOLD

    with face.api.sessions() as s:
        row = s.scalars(select(FaceEnrollment)).one()
        plain = rules.unseal(keys, row)
        assert plain.tobytes() not in row.embeddings_enc  # stored only encrypted
        with pytest.raises(DecryptionError):  # and bound to its tenant
            decrypt(keys, row.embeddings_enc, context=f"face_enrollments:{face.biden}".encode())
        actions = s.scalars(select(AuditEvent.action).where(AuditEvent.action.like("face.%")))
        assert sorted(actions) == ["face.enroll", "face.gallery_export"]


async def test_photos_are_refused_with_the_reason(face: Face) -> None:
    big = photo("obama2.jpg")
    tiny = cv2.resize(big, (big.shape[1] // 6, big.shape[0] // 6), interpolation=cv2.INTER_AREA)
    photos = [
        _jpeg(empty_frame(3, (640, 640))),
        _jpeg(side_by_side(photo("obama.jpg"), photo("biden.jpg"))),
        _jpeg(tiny),
        _jpeg(cv2.GaussianBlur(big, (0, 0), 6)),
        base64.b64encode(b"GIF89a not really").decode(),
    ]
    r = await face.put(face.biden, photos)
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    body = r.json()
    assert [(x["photo"], x["reason"]) for x in body["refusals"]] == [
        (1, "no_face"),
        (2, "several_faces"),
        (3, "too_small"),
        (4, "blurred"),
        (5, "not_an_image"),
    ]
    assert "photo 2: 2 faces" in body["detail"]
    assert (await face.get(f"/tenants/{face.biden}/face")).json()["enrolled"] is False

    assert (await face.put(face.biden, [_jpeg(photo("biden.jpg"))] * 6)).status_code == 422
    r = await face.put(face.biden, [_jpeg(photo("biden.jpg"))], given=False)
    assert r.status_code == 422
    assert "consent" in r.json()["detail"]

    mixed = [_jpeg(photo("obama.jpg")), _jpeg(photo("obama2.jpg")), _jpeg(photo("biden.jpg"))]
    r = await face.put(face.biden, mixed)
    assert r.status_code == 422
    assert [(x["photo"], x["reason"]) for x in r.json()["refusals"]] == [(3, "different_person")]


async def test_deleted_on_request_and_gone_from_the_gallery(face: Face) -> None:
    photos = [_jpeg(photo("obama.jpg")), _jpeg(photo("obama3.jpg"))]
    assert (await face.put(face.obama, photos)).status_code == 201
    url = f"/api/v1/tenants/{face.obama}/face"
    headers = face.api.as_role(Role.FRONT_DESK)
    assert (await face.api.client.delete(url, headers=headers)).status_code == 204
    assert (await face.get(f"/tenants/{face.obama}/face")).json()["enrolled"] is False
    assert (await face.api.client.delete(url, headers=headers)).status_code == 204  # idempotent
    gallery = (await face.get(f"/buildings/{face.building}/face-gallery")).json()
    assert gallery["entries"] == []
    # a maintenance user may not enroll anyone; a tenant may not export the gallery
    assert (await face.put(face.obama, photos, Role.MAINTENANCE)).status_code == 403
    r = await face.get(f"/buildings/{face.building}/face-gallery", Role.TENANT)
    assert r.status_code == 403


def test_enrollments_are_purged_when_access_ends(session: Session, keys: FieldKeys) -> None:
    prop, _, unit = add_portfolio(session)
    staying = add_tenant(session, keys, prop, name="A", id_number=cn_id(11))
    leaving = add_tenant(session, keys, prop, name="B", id_number=cn_id(12))
    never = add_tenant(session, keys, prop, name="C", id_number=cn_id(13))
    now = datetime(2026, 6, 1, tzinfo=UTC)
    for tenant, status in ((staying, LeaseStatus.ACTIVE), (leaving, LeaseStatus.ENDED)):
        lease = add_lease(session, unit, tenant)
        lease.status = status
        if status is LeaseStatus.ENDED:
            lease.closed_at = now  # as the lease service records an end
    vector = _probe("obama.jpg")[None, :]
    for tenant in (staying, leaving, never):
        rules.enroll(session, keys, tenant, vector, consent_at=now, consent_method="app", now=now)
    assert sorted(rules.purge_ended_access(session, now)) == sorted([leaving.id, never.id])
    session.commit()
    assert session.scalars(select(FaceEnrollment.tenant_id)).all() == [staying.id]
    # the lease ends 2027-02-28, inclusive: from the next midnight access is over
    assert rules.purge_ended_access(session, datetime(2027, 3, 1, 0, 0, 1, tzinfo=UTC)) == [
        staying.id
    ]
