"""E-contract PDFs (zh-CN, English) and signatures over the exact document."""

from __future__ import annotations

import io

from pypdf import PdfReader
from sqlalchemy import select

from cloud.models import AuditEvent, Role
from tests.cloud.conftest import Api
from tests.cloud.world import cn_id


def text_of(document: bytes) -> str:
    return "".join(page.extract_text() for page in PdfReader(io.BytesIO(document)).pages)


async def fetch(api: Api, role: Role, lease_id: int, lang: str) -> tuple[bytes, str]:
    r = await api.client.get(
        f"/api/v1/leases/{lease_id}/contract.pdf", params={"lang": lang},
        headers=api.as_role(role),
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    return r.content, r.headers["x-document-sha256"]


async def test_contract_in_chinese_and_english(api: Api) -> None:
    lid = api.world.sites["P1"].lease_id
    zh, zh_hash = await fetch(api, Role.FRONT_DESK, lid, "zh-CN")
    text = text_of(zh)
    for needle in ("房屋租赁合同", "租客1", "P1-101", "2,000.00", "每三个月", "押金"):
        assert needle in text, needle
    assert cn_id(1)[:4] + "*" * 10 + cn_id(1)[-4:] in text
    assert cn_id(1) not in text  # the full ID number is not printed
    en, en_hash = await fetch(api, Role.FRONT_DESK, lid, "en")
    assert "Residential Lease Agreement" in text_of(en)
    assert "quarterly" in text_of(en)
    assert en_hash != zh_hash
    again, again_hash = await fetch(api, Role.MANAGER, lid, "zh-CN")
    assert (again, again_hash) == (zh, zh_hash)  # deterministic bytes


async def test_tenant_signs_what_they_saw(api: Api) -> None:
    lid = api.world.sites["P1"].lease_id
    _doc, digest = await fetch(api, Role.TENANT, lid, "zh-CN")
    url = f"/api/v1/leases/{lid}/signatures"
    stale = await api.client.post(url, json={"language": "zh-CN", "document_sha256": "0" * 64},
                                  headers=api.as_role(Role.TENANT))  # fmt: skip
    assert stale.status_code == 409
    assert stale.json()["document_sha256"] == digest
    r = await api.client.post(url, json={"language": "zh-CN", "document_sha256": digest},
                              headers=api.as_role(Role.TENANT))  # fmt: skip
    assert r.status_code == 201, r.text
    record = r.json()
    assert (record["signer_name"], record["signer_tenant_id"]) == (
        "租客1", api.world.sites["P1"].tenant_id,
    )  # fmt: skip
    assert record["document_sha256"] == digest
    assert record["ip"] == "198.51.100.7"
    listed = (await api.client.get(url, headers=api.as_role(Role.MANAGER))).json()
    assert [s["id"] for s in listed] == [record["id"]]
    with api.sessions() as s:
        actions = s.scalars(select(AuditEvent.action).where(AuditEvent.target_id == str(lid)))
        assert "lease.contract_signed" in set(actions)
    # Another tenant's lease is invisible to this tenant.
    other = api.world.sites["P2"].lease_id
    r = await api.client.get(f"/api/v1/leases/{other}/contract.pdf",
                             headers=api.as_role(Role.TENANT))  # fmt: skip
    assert r.status_code == 404
