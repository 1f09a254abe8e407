"""Text the databases cannot store (NUL, lone surrogates, bytes that are not UTF-8) is refused
with 422 naming the field, on every kind of input, before it reaches a route or the database."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from cloud.api.paging import next_char
from cloud.models import Property, Role, Tenant
from cloud.people import new_tenant
from cloud.security.crypto import FieldKeys
from tests.cloud.conftest import Api
from tests.cloud.world import NOW, cn_id

V1 = "/api/v1"


def assert_refused(r: Any, field: str) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["field"] == field


@pytest.mark.parametrize(
    ("url", "field"),
    [
        ("/tenants?q=%ED%A0%80", "q"),  # U+D800 encoded as UTF-8: not UTF-8 at all
        ("/units?q=%ED%A0%80", "q"),
        ("/tenants?q=%FF", "q"),
        ("/units?q=A%00", "q"),
        ("/audit?action=x%00", "action"),
        ("/tenants?phone=139%0012345678", "phone"),
        ("/meters/m%00", "meter_id"),  # a string path parameter goes to the database
        ("/meters/%ED%B0%80", "meter_id"),
        ("/gateways/gw%00/commands/c", "gateway_id"),
    ],
)
async def test_query_and_path_with_unstorable_text_are_refused(
    api: Api, url: str, field: str
) -> None:
    r = await api.client.get(V1 + url, headers=api.as_role(Role.ADMIN))
    assert_refused(r, field)


async def test_login_with_nul_in_username_or_password_is_refused(api: Api) -> None:
    """Unauthenticated: before the throttle, the user lookup or the password hash."""
    for body, field in (
        ({"username": "user-admin\x00", "password": "x"}, "username"),
        ({"username": "user-admin", "password": "pw\x00"}, "password"),
        ({"username": "\ud800", "password": "x"}, "username"),
    ):
        r = await api.client.post(f"{V1}/auth/login", json=None, content=_json(body),
                                  headers={"content-type": "application/json"})  # fmt: skip
        assert_refused(r, field)


def _json(body: Any) -> bytes:
    """JSON as a client may send it: lone surrogates as \\u escapes (httpx cannot encode them)."""
    return json.dumps(body, ensure_ascii=True).encode()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "P\x00"}, "name"),
        ({"name": "P\udc00"}, "name"),
        ({"name": "P", "address": "路\ud83d"}, "address"),
        ({"name": "P", "\x00": 1}, "body"),
    ],
)
async def test_json_strings_and_keys_with_unstorable_text_are_refused(
    api: Api, body: dict[str, Any], field: str
) -> None:
    r = await api.client.post(f"{V1}/properties", content=_json(body),
                              headers={**api.as_role(Role.ADMIN),
                                       "content-type": "application/json"})  # fmt: skip
    assert_refused(r, field)
    with api.sessions() as s:
        assert s.scalar(select(Property).where(Property.name == "P")) is None


async def test_raw_utf8_encoded_surrogate_in_a_json_body_is_refused(api: Api) -> None:
    pid = api.world.sites["P1"].property_id
    body = b'{"property_id": %d, "name": "\xed\xa0\x80", "id_number": "%s"}' % (
        pid,
        cn_id(40).encode(),
    )
    r = await api.client.post(f"{V1}/tenants", content=body,
                              headers={**api.as_role(Role.ADMIN),
                                       "content-type": "application/json"})  # fmt: skip
    assert_refused(r, "name")


async def test_nested_json_names_the_path_to_the_string(api: Api) -> None:
    site = api.world.sites["P1"]
    tiers = [{"lower": "0", "price": "4.5\x00"}]
    body = {"property_id": site.property_id, "utility": "water", "kind": "flat",
            "effective_from": "2026-06-01", "tiers": tiers}  # fmt: skip
    r = await api.client.post(f"{V1}/tariffs", content=_json(body),
                              headers={**api.as_role(Role.ADMIN),
                                       "content-type": "application/json"})  # fmt: skip
    assert_refused(r, "tiers.0.price")


async def test_header_with_nul_is_refused(api: Api) -> None:
    r = await api.client.get(f"{V1}/auth/me", headers={"authorization": "Bearer x\x00"})
    assert_refused(r, "authorization")


async def test_prefix_search_spans_the_surrogate_gap(api: Api, keys: FieldKeys) -> None:
    """U+D7FF is valid text; the SQLite prefix range must not end in U+D800 (a surrogate)."""
    site = api.world.sites["P1"]
    with api.sessions() as s:
        prop = s.get_one(Property, site.property_id)
        tenant = new_tenant(s, keys, prop, name="\ud7ff\U0001f600", id_number=cn_id(41),
                            now=NOW)  # fmt: skip
        s.commit()
        tid = tenant.id
    admin = api.as_role(Role.ADMIN)
    r = await api.client.get(f"{V1}/tenants?q=%ED%9F%BF", headers=admin)
    assert r.status_code == 200, r.text
    assert [t["id"] for t in r.json()["items"]] == [tid]
    r = await api.client.get(f"{V1}/units?q=%ED%9F%BF", headers=admin)
    assert (r.status_code, r.json()["items"]) == (200, [])
    with api.sessions() as s:
        assert s.scalar(select(Tenant.name).where(Tenant.id == tid)) == "\ud7ff\U0001f600"


def test_next_char_never_builds_a_surrogate() -> None:
    assert next_char("\ud7ff") == "\ue000"
    assert next_char("a") == "b"
    assert all(
        not 0xD800 <= ord(next_char(chr(c))) <= 0xDFFF
        for c in (*range(0xD700, 0xD800), *range(0xE000, 0xE100))
    )
