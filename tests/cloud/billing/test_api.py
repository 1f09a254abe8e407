"""The billing API on a real app and database, with the roles of the shared test world."""

from __future__ import annotations

import base64
import csv
import io
import json
from typing import Any

import pytest
from pypdf import PdfReader
from sqlalchemy import select

from cloud.api import progress as api_progress
from cloud.api.routes import billing as billing_routes
from cloud.billing.service import reports
from cloud.models import AuditEvent, Role, Tenant, Unit
from cloud.progress import Board
from tests.cloud.conftest import Api


def pdf_text(document: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(document)).pages)


async def get(api: Api, role: Role, path: str, **params: Any) -> Any:
    return await api.client.get(f"/api/v1{path}", params=params, headers=api.as_role(role))


async def post(api: Api, role: Role, path: str, body: dict[str, Any]) -> Any:
    return await api.client.post(f"/api/v1{path}", json=body, headers=api.as_role(role))


async def test_runs_are_idempotent_through_the_api(api: Api) -> None:
    pid = api.world.sites["P1"].property_id
    first = await post(
        api, Role.FINANCE, "/billing-runs", {"property_id": pid, "period": "2026-04"}
    )
    assert first.status_code == 200, first.text
    assert first.json()["invoices_created"] == 1  # the second quarter's rent, due Mar 25
    again = await post(
        api, Role.FINANCE, "/billing-runs", {"property_id": pid, "period": "2026-04"}
    )
    assert again.json()["invoices_created"] == 1
    invoices = (await get(api, Role.FINANCE, "/invoices", property_id=pid)).json()["items"]
    assert [i["total_fen"] for i in invoices] == [800000, 600000]
    bad = await post(api, Role.FINANCE, "/billing-runs", {"property_id": pid, "period": "2026-13"})
    assert bad.status_code == 422


async def test_a_tenant_sees_their_own_bills_as_pdf(api: Api) -> None:
    site = api.world.sites["P1"]
    mine = (await get(api, Role.TENANT, "/invoices")).json()["items"]
    assert [i["id"] for i in mine] == [site.invoice_id]
    detail = (await get(api, Role.TENANT, f"/invoices/{site.invoice_id}")).json()
    assert [line["kind"] for line in detail["lines"]] == ["rent", "deposit"]
    assert detail["lines"][0]["description"] == "Rent 2026-01-01 to 2026-03-31"
    other = api.world.sites["P2"].invoice_id
    assert (await get(api, Role.TENANT, f"/invoices/{other}")).status_code == 404
    zh = await get(api, Role.TENANT, f"/invoices/{site.invoice_id}/pdf")
    assert zh.headers["content-type"] == "application/pdf"
    text = pdf_text(zh.content)
    assert f"账单 {detail['number']}" in text
    assert "租金: Rent 2026-01-01 to 2026-03-31" in text
    assert "押金" in text
    assert "8,000.00" in text  # the total
    en = pdf_text(
        (await get(api, Role.TENANT, f"/invoices/{site.invoice_id}/pdf", lang="en")).content
    )
    assert f"Invoice {detail['number']}" in en
    assert "Owed" in en
    again = await get(api, Role.TENANT, f"/invoices/{site.invoice_id}/pdf")
    assert again.content == zh.content  # the same invoice gives the same bytes


async def test_payments_reversals_and_the_account(api: Api) -> None:
    site = api.world.sites["P1"]
    account = (await get(api, Role.FRONT_DESK, f"/leases/{site.lease_id}/account")).json()
    assert account == {"lease_id": site.lease_id, "balance_fen": 700000, "credit_fen": 0,
                       "open_invoices": 1, "deposit_fen": 200000, "deposit_billed_fen": 200000,
                       "deposit_received_fen": 0, "deposit_settled": False}  # fmt: skip
    paid = await post(api, Role.FRONT_DESK, "/payments",
                      {"lease_id": site.lease_id, "amount_fen": 750000})  # fmt: skip
    assert paid.status_code == 201
    account = (await get(api, Role.TENANT, f"/leases/{site.lease_id}/account")).json()
    assert (account["balance_fen"], account["credit_fen"]) == (-50000, 50000)
    pid = paid.json()["id"]
    denied = await post(api, Role.FRONT_DESK, f"/payments/{pid}/reversal", {"reason": "oops"})
    assert denied.status_code == 403
    undone = await post(api, Role.FINANCE, f"/payments/{pid}/reversal", {"reason": "bounced"})
    assert undone.status_code == 201
    assert undone.json()["amount_fen"] == -750000
    twice = await post(api, Role.FINANCE, f"/payments/{pid}/reversal", {"reason": "again"})
    assert twice.status_code == 409
    account = (await get(api, Role.FINANCE, f"/leases/{site.lease_id}/account")).json()
    assert account["balance_fen"] == 700000
    with api.sessions() as s:
        actions = s.scalars(select(AuditEvent.action).where(AuditEvent.target_type == "payment"))
        assert sorted(actions) == ["payment.record", "payment.reverse"]


async def test_a_deposit_is_received_by_finance_not_the_front_desk(api: Api) -> None:
    site = api.world.sites["P1"]
    path = f"/leases/{site.lease_id}/deposit-payments"
    body = {"amount_fen": 150000, "method": "cash", "received_at": "2026-01-02T10:00:00+08:00"}
    assert (await post(api, Role.FRONT_DESK, path, body)).status_code == 403
    other = api.world.sites["P3"].lease_id  # another organisation's lease
    assert (
        await post(api, Role.FINANCE, f"/leases/{other}/deposit-payments", body)
    ).status_code == 404
    paid = await post(api, Role.FINANCE, path, body)
    assert paid.status_code == 201, paid.text
    assert (paid.json()["deposit"], paid.json()["method"]) == (True, "cash")
    too_much = await post(api, Role.MANAGER, path, {"amount_fen": 50001})
    assert too_much.status_code == 409
    for when in ("2026-01-02T10:00:00", "0001-01-01T00:00:00+08:00", "9999-12-31T23:00:00-08:00"):
        # a day with no zone, and days no bill can have (the year 1 is past UTC's start)
        for route, extra in ((path, {}), ("/payments", {"lease_id": site.lease_id})):
            odd = {"amount_fen": 1, "received_at": when, **extra}
            refused = await post(api, Role.FINANCE, route, odd)
            assert refused.status_code == 422, (route, when, refused.text)
    account = (await get(api, Role.FRONT_DESK, f"/leases/{site.lease_id}/account")).json()
    assert (account["deposit_received_fen"], account["balance_fen"]) == (150000, 550000)
    with api.sessions() as s:
        actions = s.scalars(select(AuditEvent.action).where(AuditEvent.target_type == "payment"))
        assert list(actions) == ["deposit.receive"]


async def test_reports_as_json_and_csv(api: Api) -> None:
    pid = api.world.sites["P1"].property_id
    aging = (await get(api, Role.FINANCE, "/reports/ar-aging", property_id=pid,
                       as_of="2026-03-01")).json()["items"]  # fmt: skip
    lease_id = api.world.sites["P1"].lease_id
    assert aging == [{"lease_id": lease_id, "current": 0, "d0_30": 0, "d31_60": 700000,
                      "d61_90": 0, "d90_plus": 0, "total_fen": 700000}]  # fmt: skip
    roll = await get(api, Role.FINANCE, "/reports/rent-roll", property_id=pid, format="csv",
                     as_of="2026-03-01")  # fmt: skip
    assert roll.headers["content-type"].startswith("text/csv")
    lines = roll.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("unit,lease_id,tenant,")
    assert "租客1" in lines[1]
    other = api.world.sites["P2"].property_id
    assert (await get(api, Role.FINANCE, "/reports/ar-aging", property_id=other)).status_code == 404


async def test_rent_roll_csv_does_not_run_a_tenants_formula(api: Api) -> None:
    """A tenant named as a DDE payload (and a unit code that starts with a sign) exported to CSV:
    the spreadsheet must show them as text, not run them."""
    site = api.world.sites["P1"]
    payload = "=cmd|' /C calc'!A0"
    with api.sessions() as s:
        s.get_one(Tenant, site.tenant_id).name = payload
        s.get_one(Unit, site.unit_id).code = "-1+1"
        s.commit()
    res = await get(api, Role.FINANCE, "/reports/rent-roll", property_id=site.property_id,
                    format="csv", as_of="2026-03-01")  # fmt: skip
    [row] = list(csv.DictReader(io.StringIO(res.content.decode("utf-8-sig"), newline="")))
    assert (row["unit"], row["tenant"]) == ("'-1+1", "'" + payload)
    assert row["monthly_rent_fen"] == "200000"


@pytest.mark.parametrize("lead", ["=", "+", "-", "@", "\t", "\r"])
def test_every_csv_export_escapes_a_formula_lead(lead: str) -> None:
    text = reports.to_csv([{"name": f"{lead}1+2", "safe": "a=b", "owed_fen": -300}])
    [row] = list(csv.DictReader(io.StringIO(text.removeprefix("\ufeff"), newline="")))
    assert row == {"name": f"'{lead}1+2", "safe": "a=b", "owed_fen": "-300"}


async def test_a_time_of_use_tariff_names_a_register_per_zone(api: Api) -> None:
    pid = api.world.sites["P1"].property_id
    body: dict[str, Any] = {
        "property_id": pid,
        "utility": "electricity",
        "effective_from": "2026-07-01",
        "kind": "time_of_use",
        "tiers": [
            {"zone": "peak", "point": "import_peak", "price": "1.00"},
            {"zone": "valley", "point": "import_valley", "price": "0.30"},
        ],
    }
    made = await post(api, Role.MANAGER, "/tariffs", body)
    assert made.status_code == 201, made.text
    assert made.json()["tiers"] == [
        {"zone": "peak", "point": "import_peak", "price": "1.00"},
        {"zone": "valley", "point": "import_valley", "price": "0.30"},
    ]
    same_register = [{"zone": "peak", "point": "p", "price": "1"}, {"zone": "flat", "point": "p",
                     "price": "0.5"}]  # fmt: skip
    no_register = [{"zone": "peak", "price": "1"}]
    for tiers in (same_register, no_register):
        bad = await post(
            api, Role.MANAGER, "/tariffs", {**body, "effective_from": "2026-08-01", "tiers": tiers}
        )
        assert bad.status_code == 422, tiers


async def test_a_run_reports_its_progress(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    board = Board()  # nothing has run in this process yet
    monkeypatch.setattr(billing_routes, "BOARD", board)
    monkeypatch.setattr(api_progress, "BOARD", board)
    pid = api.world.sites["P1"].property_id
    path = "/billing-runs/progress"
    before = await get(api, Role.FINANCE, path, property_id=pid, period="2031-01")
    assert before.status_code == 200
    assert before.json() is None  # none has run here
    run = await post(api, Role.FINANCE, "/billing-runs", {"property_id": pid, "period": "2031-01"})
    done = run.json()["progress"]
    assert done["phase"] == "done"
    assert done["finished"] is True
    assert done["done"] == done["total"] == run.json()["invoices_created"]
    assert (await get(api, Role.FINANCE, path, property_id=pid, period="2031-01")).json() == done
    listed = (await get(api, Role.FINANCE, "/billing-runs", property_id=pid)).json()["items"]
    assert [r["progress"] for r in listed if r["period"] == "2031-01"] == [done]
    other = api.world.sites["P2"].property_id  # out of finance's scope, run by the admin
    await post(api, Role.ADMIN, "/billing-runs", {"property_id": other, "period": "2031-01"})
    assert (
        await get(api, Role.ADMIN, path, property_id=other, period="2031-01")
    ).status_code == 200
    seen = await get(api, Role.FINANCE, path, property_id=other, period="2031-01")
    assert seen.status_code == 404
    desk = await get(api, Role.FRONT_DESK, path, property_id=pid, period="2031-01")
    assert desk.status_code == 403  # the front desk may not run billing at all


async def test_the_rent_roll_pages_in_the_database_with_the_reports_totals(api: Api) -> None:
    pid = api.world.sites["P1"].property_id
    await post(api, Role.FINANCE, "/billing-runs", {"property_id": pid, "period": "2026-03"})
    whole = (await get(api, Role.FINANCE, "/reports/rent-roll", property_id=pid)).json()["items"]
    assert whole
    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"property_id": pid, "limit": 1}
    while True:
        page = (await get(api, Role.FINANCE, "/rent-roll", **params)).json()
        seen.extend(page["items"])
        assert page["totals"] == {
            "leases": len(whole),
            "monthly_rent_fen": sum(r["monthly_rent_fen"] for r in whole),
            "balance_fen": sum(r["balance_fen"] for r in whole),
        }
        if page["next_after"] is None:
            break
        params["after"] = page["next_after"]
    assert seen == whole
    bad = await get(api, Role.FINANCE, "/rent-roll", property_id=pid, after="not-a-cursor")
    assert bad.status_code == 422


async def test_the_rent_roll_of_a_property_out_of_scope_is_not_found(api: Api) -> None:
    for role, site in ((Role.ADMIN, "P3"), (Role.FINANCE, "P2")):  # another org; not finance's
        pid = api.world.sites[site].property_id
        hidden = await get(api, role, "/rent-roll", property_id=pid)
        assert hidden.status_code == 404, (role, site, hidden.text)
    tenant = await get(
        api, Role.TENANT, "/rent-roll", property_id=api.world.sites["P1"].property_id
    )
    assert tenant.status_code == 403


@pytest.mark.parametrize("text", ["A\x00", "A\ud800"])
async def test_a_forged_rent_roll_cursor_holding_unstorable_text_is_refused(
    api: Api, text: str
) -> None:
    # A well-formed token whose unit code PostgreSQL cannot compare (NUL) or no driver can
    # encode (a lone surrogate): the query string itself is clean base64.
    token = base64.urlsafe_b64encode(json.dumps([text, 1]).encode()).decode().rstrip("=")
    pid = api.world.sites["P1"].property_id
    bad = await get(api, Role.FINANCE, "/rent-roll", property_id=pid, after=token)
    assert bad.status_code == 422
