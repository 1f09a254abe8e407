"""`rotate-keys` covers every value sealed with the old field key: after it the old key opens
nothing and the new one alone opens everything, an offline code issued before still verifies
and the next list is a delta on the one sent before."""

from __future__ import annotations

import base64
from datetime import timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.access import records, sync
from cloud.face import enrollment
from cloud.models import Door, Tenant
from cloud.security import crypto, rotation
from cloud.security.crypto import FieldKeys
from protocols.access import codes
from protocols.access.signing import decode_signed
from tests.cloud.access.test_sync import add_doors
from tests.cloud.world import COMMAND_KEY, NOW, build_world

TZ = ZoneInfo("Asia/Shanghai")


def only(ring: FieldKeys, key_id: str) -> FieldKeys:
    return FieldKeys(current=key_id, keys={key_id: ring.keys[key_id]}, index_key=ring.index_key)


def opened(session: Session, keys: FieldKeys) -> dict[str, tuple[int, int]]:
    """Per sealed column: (values that open with `keys`, values that do not)."""
    counts = {}
    for col in rotation.ENCRYPTED_COLUMNS:
        good = bad = 0
        for row in session.scalars(select(col.model)):
            blob = getattr(row, col.attr)
            if blob is None:
                continue
            try:
                crypto.decrypt(keys, blob, context=col.context(row))
                good += 1
            except crypto.DecryptionError:
                bad += 1
        counts[f"{col.model.__tablename__}.{col.attr}"] = (good, bad)
    return counts


def test_rotation_reseals_door_secrets_and_kept_lists(session: Session, keys: FieldKeys) -> None:
    site = build_world(session, keys).sites["P1"]
    _own, gate = add_doors(session, keys, site)
    tenant = session.get_one(Tenant, site.tenant_id)
    vectors = np.random.default_rng(3).standard_normal((2, 192)).astype(np.float32)
    enrollment.enroll(session, keys, tenant, vectors, consent_at=NOW, consent_method="paper",
                      now=NOW)  # fmt: skip
    records.set_pin(session, "582913", now=NOW, tenant_id=site.tenant_id)
    (first,) = sync.sync_all(session, keys, COMMAND_KEY, now=NOW, tz=TZ,
                             gateway_ids=[site.gateway_id])  # fmt: skip
    held = decode_signed(first.payload, COMMAND_KEY.public_key(), gateway_id=site.gateway_id)
    sync.record_applied(session, site.gateway_id, held.version, NOW)
    start = NOW.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    _issue, code = records.issue_offline_code(
        session, keys, gate, start=start, hours=4, issued_by="manager", now=NOW
    )
    session.commit()

    doors = len(session.scalars(select(Door.id)).all())
    ring = rotation.new_key_ring(keys, "k2")
    counts = rotation.rotate(session, ring)
    assert counts["doors.secret_enc"] == doors >= 3
    assert counts["access_list_versions.body_enc"] == 1
    assert rotation.stale_count(session, ring) == 0

    old, new = only(ring, keys.current), only(ring, "k2")
    after = opened(session, new)
    assert after == {name: (good, 0) for name, (good, _bad) in after.items()}
    assert opened(session, old) == {name: (0, good) for name, (good, _bad) in after.items()}
    assert after["doors.secret_enc"][0] == doors
    assert after["access_list_versions.body_enc"][0] == 1
    assert after["face_enrollments.embeddings_enc"][0] >= 1

    # The code issued before the rotation verifies against the secret the new key opens, and
    # the list the gateway holds carries that same secret.
    door = session.scalars(select(Door).where(Door.id == gate.id)).one()
    secret = records.door_secret(new, door)
    window = codes.match(secret, "gate", records.CODE_DIGITS, code, start + timedelta(hours=1))
    assert window is not None
    (held_gate,) = [d for d in held.doors if d.id == "gate"]
    assert held_gate.code_secret is not None
    assert codes.match(
        base64.b64decode(held_gate.code_secret), "gate", records.CODE_DIGITS, code,
        start + timedelta(hours=1),
    ) == window  # fmt: skip

    # With the new key alone the cloud still reads the kept list: a change goes as a delta.
    records.remove_pin(session, tenant_id=site.tenant_id)
    (second,) = sync.sync_all(session, new, COMMAND_KEY, now=NOW, tz=TZ,
                              gateway_ids=[site.gateway_id])  # fmt: skip
    delta = decode_signed(second.payload, COMMAND_KEY.public_key(), gateway_id=site.gateway_id)
    assert (delta.base_version, delta.version) == (held.version, held.version + 1)
    assert sync.kept_list(session, new, site.gateway_id, held.version) == held
    with pytest.raises(crypto.DecryptionError):
        sync.kept_list(session, old, site.gateway_id, held.version)
