"""Keypad PINs: the weak ones a guesser tries first are refused; managers set, reset and
remove staff and tenant PINs only for people of their own properties (a manager must not hand
out a PIN that opens another property's doors, or an admin's); every change is audited and
reaches the gateway's list."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.access import records
from cloud.access.pins import new_pin, weakness
from cloud.models import AuditEvent, Organisation, PinCredential, Role
from cloud.security.crypto import FieldKeys
from protocols.access.schema import CredentialKind
from tests.cloud.access.test_sync import add_doors, sent
from tests.cloud.conftest import Api
from tests.cloud.world import NOW, add_user, build_world

V1 = "/api/v1"


@pytest.mark.parametrize(
    "weak",
    [
        "000000", "123456", "654321", "789012", "210987", "121212", "123123", "112211",
        "147258", "5201314", "19900101", "01011990", "900101", "311299", "1234", "12a456",
        "123456789", "٣٤٥٦٧٨",
    ],
)  # fmt: skip
def test_weak_pins_are_refused(weak: str) -> None:
    assert weakness(weak) is not None


@pytest.mark.parametrize("good", ["582913", "602817", "729164", "48271593", "9038462"])
def test_unremarkable_pins_are_taken(good: str) -> None:
    assert weakness(good) is None


def test_a_new_pin_is_random_and_never_weak() -> None:
    made = {new_pin() for _ in range(200)}
    assert len(made) == 200
    assert all(len(p) == 6 and weakness(p) is None for p in made)
    assert weakness(new_pin(8)) is None
    with pytest.raises(ValueError, match="digits"):
        new_pin(4)


def pin_row(api: Api, **owner: int) -> PinCredential | None:
    with api.sessions() as session:
        return records._pin_row(session, **owner)


def audit_actions(api: Api, target_type: str, target_id: int) -> list[str]:
    with api.sessions() as session:
        rows = session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.target_type == target_type)
            .where(AuditEvent.target_id == str(target_id))
            .order_by(AuditEvent.id)
        )
        return list(rows)


async def test_a_manager_sets_resets_and_removes_a_staff_pin(api: Api) -> None:
    desk = api.world.users[Role.FRONT_DESK]
    url = f"{V1}/users/{desk}/pin"
    manager = api.as_role(Role.MANAGER)
    r = await api.client.put(url, json={"pin": "123456"}, headers=manager)
    assert r.status_code == 422
    r = await api.client.put(url, json={"pin": "582913"}, headers=manager)
    assert r.status_code == 200, r.text
    assert (r.json()["user_id"], r.json()["pin"]) == (desk, None)
    assert "582913" not in r.text
    row = pin_row(api, user_id=desk)
    assert row is not None
    assert PasswordHasher().verify(row.pin_hash, "582913")
    # a reset hands over a new random PIN once; the old one stops verifying
    r = await api.client.post(f"{url}/reset", headers=manager)
    assert r.status_code == 200, r.text
    fresh = r.json()["pin"]
    assert weakness(fresh) is None
    row = pin_row(api, user_id=desk)
    assert row is not None
    assert PasswordHasher().verify(row.pin_hash, fresh)
    assert (await api.client.delete(url, headers=manager)).status_code == 204
    assert pin_row(api, user_id=desk) is None
    assert (await api.client.delete(url, headers=manager)).status_code == 204  # nothing left
    assert audit_actions(api, "user", desk) == [
        "access.pin_set", "access.pin_reset", "access.pin_remove"
    ]  # fmt: skip


async def test_staff_pins_stay_inside_the_managers_properties(api: Api) -> None:
    """A manager of P1 cannot give a PIN to an admin, to staff of P2 or of another
    organisation, to staff who also work in P2 (it would open P2's doors), or to a tenant's
    login; the front desk sets no staff PIN at all. The admin can, except for tenants."""
    world = api.world
    p1, p2 = world.sites["P1"], world.sites["P2"]
    with api.sessions() as session:
        org = session.get_one(Organisation, p1.org_id)
        both = add_user(session, org, "both", Role.MAINTENANCE, [p1.property_id, p2.property_id])
        session.commit()
        both_id = both.id
    manager, admin = api.as_role(Role.MANAGER), api.as_role(Role.ADMIN)
    body = {"pin": "582913"}
    for target in (world.users[Role.ADMIN], p2.user_id, world.sites["P3"].user_id, both_id,
                   world.users[Role.TENANT]):  # fmt: skip
        r = await api.client.put(f"{V1}/users/{target}/pin", json=body, headers=manager)
        assert r.status_code == 404, (target, r.text)
    r = await api.client.put(
        f"{V1}/users/{world.users[Role.MAINTENANCE]}/pin", json=body,
        headers=api.as_role(Role.FRONT_DESK),
    )  # fmt: skip
    assert r.status_code == 403
    for target in (both_id, p2.user_id):
        r = await api.client.put(f"{V1}/users/{target}/pin", json=body, headers=admin)
        assert r.status_code == 200, r.text
    r = await api.client.put(f"{V1}/users/{world.users[Role.TENANT]}/pin", json=body,
                             headers=admin)  # fmt: skip
    assert r.status_code == 404
    assert pin_row(api, user_id=world.users[Role.ADMIN]) is None


async def test_a_tenant_pin_is_reset_and_removed_by_the_desk_or_the_tenant(api: Api) -> None:
    tenant_id = api.world.sites["P1"].tenant_id
    url = f"{V1}/tenants/{tenant_id}/pin"
    r = await api.client.post(f"{url}/reset", headers=api.as_role(Role.FRONT_DESK))
    assert r.status_code == 200, r.text
    assert r.json()["tenant_id"] == tenant_id
    assert weakness(r.json()["pin"]) is None
    other = api.world.sites["P2"].tenant_id
    r = await api.client.delete(f"{V1}/tenants/{other}/pin", headers=api.as_role(Role.TENANT))
    assert r.status_code == 404
    r = await api.client.delete(url, headers=api.as_role(Role.TENANT))
    assert r.status_code == 204
    assert pin_row(api, tenant_id=tenant_id) is None
    assert audit_actions(api, "tenant", tenant_id) == ["access.pin_reset", "access.pin_remove"]


def test_a_staff_pin_reaches_the_gateway_list_and_leaves_it(
    session: Session, keys: FieldKeys
) -> None:
    world = build_world(session, keys)
    p1 = world.sites["P1"]
    add_doors(session, keys, p1)
    desk = world.users[Role.FRONT_DESK]
    records.set_pin(session, "582913", now=NOW, user_id=desk)
    access = sent(session, keys, p1.gateway_id)
    assert access is not None
    (pin,) = [c for c in access.credentials if c.subject == f"user:{desk}"]
    assert pin.kind is CredentialKind.PIN
    assert records.remove_pin(session, user_id=desk)
    access = sent(session, keys, p1.gateway_id)
    assert access is not None
    assert all(c.subject != f"user:{desk}" for c in access.credentials)
