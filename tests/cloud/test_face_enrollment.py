"""Face enrollment through the API on real photos: consent, refusals with reasons, encrypted
storage, deletion on request and when access ends, and the door gallery that matches."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import cv2
import httpx
import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.app import create_app
from cloud.config import Settings
from cloud.face import enrollment as rules
from cloud.models import FaceEnrollment, LeaseStatus
from cloud.security.crypto import DecryptionError, FieldKeys, decrypt
from protocols.face.contract import DEFAULT_THRESHOLD
from protocols.face.gallery import GalleryExport
from protocols.face.quality import ENROLLMENT_GATES
from tests.cloud.conftest import add_lease, add_portfolio, add_tenant, cn_id
from tests.face_assets import empty_frame, engine, photo, side_by_side

CONSENT = {"given": True, "method": "paper form", "at": "2026-03-01T09:00:00+00:00"}


def _jpeg(image: np.ndarray) -> str:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 92])
    assert ok
    return base64.b64encode(data.tobytes()).decode()


@pytest.fixture
async def api(database_url: str, keys: FieldKeys) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        Settings(env="development", database_url=database_url, ingest_in_process=False)
    )
    app.state.face_engine = engine()
    app.state.field_keys = keys
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http,
    ):
        yield http


@pytest.fixture
def building_with_tenants(session: Session, keys: FieldKeys) -> dict[str, int]:
    prop, bld, unit = add_portfolio(session)
    obama = add_tenant(session, keys, prop, name="Obama", id_number=cn_id(1))
    biden = add_tenant(session, keys, prop, name="Biden", id_number=cn_id(2))
    lease = add_lease(session, unit, obama)
    lease.status = LeaseStatus.ACTIVE
    lease.end_date = (datetime.now(UTC) + timedelta(days=200)).date()
    session.commit()
    return {"building": bld.id, "obama": obama.id, "biden": biden.id}


def _probe(name: str) -> np.ndarray:
    main = engine().analyze(photo(name), gates=ENROLLMENT_GATES).main
    assert main is not None
    assert main.embedding is not None
    return main.embedding


async def test_enrolled_tenant_is_in_the_door_gallery_and_matches_other_photos(
    api: httpx.AsyncClient, building_with_tenants: dict[str, int], session: Session, keys
) -> None:
    ids = building_with_tenants
    r = await api.put(
        f"/api/v1/tenants/{ids['obama']}/face",
        json={"consent": CONSENT, "photos": [_jpeg(photo("obama.jpg"))]},
    )
    assert r.status_code == 201, r.text
    assert r.json()["photos"] == 1
    assert (await api.get(f"/api/v1/tenants/{ids['obama']}/face")).json()["consent_method"] == (
        "paper form"
    )

    r = await api.get(f"/api/v1/buildings/{ids['building']}/face-gallery?door=front")
    assert r.status_code == 200, r.text
    export = GalleryExport.model_validate(r.json())
    assert [e.person_id for e in export.entries] == [f"tenant-{ids['obama']}"]
    gallery = export.gallery()
    for name in ("obama2.jpg", "obama3.jpg"):
        match = gallery.match(_probe(name))
        assert match.score >= DEFAULT_THRESHOLD
        assert match.identity is not None
        assert match.identity.valid_at(datetime.now(UTC))
    assert gallery.match(_probe("biden.jpg")).score < DEFAULT_THRESHOLD

    # stored only encrypted, bound to the tenant
    row = session.scalars(select(FaceEnrollment)).one()
    plain = rules.unseal(keys, row)
    assert plain.tobytes() not in row.embeddings_enc
    with pytest.raises(DecryptionError):
        decrypt(keys, row.embeddings_enc, context=f"face_enrollments:{ids['biden']}".encode())


async def test_photos_are_refused_with_the_reason(
    api: httpx.AsyncClient, building_with_tenants: dict[str, int]
) -> None:
    url = f"/api/v1/tenants/{building_with_tenants['biden']}/face"
    big = photo("obama2.jpg")
    tiny = cv2.resize(big, (big.shape[1] // 6, big.shape[0] // 6), interpolation=cv2.INTER_AREA)
    photos = [
        _jpeg(empty_frame(3, (640, 640))),
        _jpeg(side_by_side(photo("obama.jpg"), photo("biden.jpg"))),
        _jpeg(tiny),
        _jpeg(cv2.GaussianBlur(big, (0, 0), 6)),
        base64.b64encode(b"GIF89a not really").decode(),
    ]
    r = await api.put(url, json={"consent": CONSENT, "photos": photos})
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
    assert (await api.get(url)).status_code == 404  # nothing stored

    r = await api.put(url, json={"consent": CONSENT, "photos": [_jpeg(photo("biden.jpg"))] * 6})
    assert r.status_code == 422  # more than 5

    r = await api.put(
        url, json={"consent": {**CONSENT, "given": False}, "photos": [_jpeg(photo("biden.jpg"))]}
    )
    assert r.status_code == 422
    assert "consent" in r.json()["detail"]

    mixed = [_jpeg(photo("obama.jpg")), _jpeg(photo("obama2.jpg")), _jpeg(photo("biden.jpg"))]
    r = await api.put(url, json={"consent": CONSENT, "photos": mixed})
    assert r.status_code == 422
    assert [(x["photo"], x["reason"]) for x in r.json()["refusals"]] == [(3, "different_person")]


async def test_deleted_on_request_and_gone_from_the_gallery(
    api: httpx.AsyncClient, building_with_tenants: dict[str, int]
) -> None:
    ids = building_with_tenants
    url = f"/api/v1/tenants/{ids['obama']}/face"
    photos = [_jpeg(photo("obama.jpg")), _jpeg(photo("obama3.jpg"))]
    assert (await api.put(url, json={"consent": CONSENT, "photos": photos})).status_code == 201
    assert (await api.delete(url)).status_code == 204
    assert (await api.get(url)).status_code == 404
    assert (await api.delete(url)).status_code == 404
    gallery = (await api.get(f"/api/v1/buildings/{ids['building']}/face-gallery")).json()
    assert gallery["entries"] == []
    assert (
        await api.put("/api/v1/tenants/999999/face", json={"consent": CONSENT, "photos": photos})
    ).status_code == 404


def test_enrollments_are_purged_when_access_ends(session: Session, keys: FieldKeys) -> None:
    prop, _, unit = add_portfolio(session)
    staying = add_tenant(session, keys, prop, name="A", id_number=cn_id(11))
    leaving = add_tenant(session, keys, prop, name="B", id_number=cn_id(12))
    never = add_tenant(session, keys, prop, name="C", id_number=cn_id(13))
    now = datetime(2026, 6, 1, tzinfo=UTC)
    for tenant, status in ((staying, LeaseStatus.ACTIVE), (leaving, LeaseStatus.ENDED)):
        lease = add_lease(session, unit, tenant)
        lease.status = status
    vector = _probe("obama.jpg")[None, :]
    for tenant in (staying, leaving, never):
        rules.enroll(session, keys, tenant, vector, consent_at=now, consent_method="app", now=now)
    assert sorted(rules.purge_ended_access(session, now)) == sorted([leaving.id, never.id])
    session.commit()
    left = session.scalars(select(FaceEnrollment.tenant_id)).all()
    assert left == [staying.id]
    # the lease ends on 2027-02-28 inclusive: the day after, access is over
    assert rules.purge_ended_access(session, datetime(2027, 3, 1, 0, 0, 1, tzinfo=UTC)) == [
        staying.id
    ]
