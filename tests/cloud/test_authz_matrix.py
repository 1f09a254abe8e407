"""The authorization matrix, generated from the route table.

Every API route must declare a Guard (permission + how it finds its property). For every guarded
route, every role, and own / other-property / other-organisation record, the test sends a real
request and compares the answer with what `ROLE_PERMISSIONS` and the scope say: allowed → 2xx,
no permission → 403, out of scope → 404, no credentials → 401; list answers may hold only
records the caller may see. Each request runs in a transaction that is rolled back, so the
~600 requests see the same data and the whole matrix takes a few seconds on SQLite.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest
from fastapi.routing import APIRoute
from sqlalchemy import Connection, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from cloud.api.deps import Guard, guard_of
from cloud.app import ROUTERS, create_app
from cloud.config import Settings
from cloud.contracts import pdf
from cloud.contracts.fonts import find_fonts
from cloud.contracts.record import contract_data
from cloud.models import Base, Lease, Role
from cloud.security.authz import ROLE_PERMISSIONS
from cloud.security.crypto import FieldKeys, development_keys
from tests.cloud.world import COMMAND_KEY, NOW, PASSWORD, PNG, Site, World, build_world, cn_id
from tests.face_assets import models_dir, photo

PREFIX = "/api/v1"
SIDES = ("P1", "P2", "P3")  # P1: the staff users' property; P2: same org; P3: another org
# Routes without a guard: login, and enrolment (its one-time token is the credential).
UNGUARDED = {("POST", "/auth/login"), ("POST", "/gateways/enrol")}


@functools.cache
def face_photo() -> str:
    """A real enrollable photo (fetches the face models too, failing loudly without them)."""
    models_dir()
    ok, data = cv2.imencode(".jpg", photo("obama.jpg"))
    assert ok
    return base64.b64encode(data.tobytes()).decode()


def visible_sides(role: Role) -> set[str]:
    if role is Role.ADMIN:
        return {"P1", "P2"}
    return {"P1"}  # staff scoped to P1; the tenant's own records are on P1


Case = tuple[str, dict[str, Any] | None]  # url (with query) and JSON body
CASES: dict[tuple[str, str], Callable[[World, Site], Case]] = {
    ("GET", "/meters/{meter_id}/readings"): lambda w, s: (f"/meters/{s.meter_id}/readings", None),
    ("POST", "/auth/logout"): lambda w, s: ("/auth/logout", None),
    ("GET", "/auth/me"): lambda w, s: ("/auth/me", None),
    ("POST", "/auth/password"): lambda w, s: ("/auth/password",
        {"old_password": PASSWORD, "new_password": "another long password"}),
    ("POST", "/users"): lambda w, s: ("/users", {"username": "new-user", "password":
        "long enough pw", "role": "front_desk", "property_ids": [s.property_id]}),
    ("GET", "/users"): lambda w, s: ("/users", None),
    ("PUT", "/users/{user_id}/role"): lambda w, s: (f"/users/{s.user_id}/role",
        {"role": "finance", "property_ids": [s.property_id]}),
    ("POST", "/users/{user_id}/deactivate"): lambda w, s: (f"/users/{s.user_id}/deactivate",
        None),
    ("POST", "/users/{user_id}/activate"): lambda w, s: (f"/users/{s.user_id}/activate", None),
    ("POST", "/users/{user_id}/revoke-sessions"): lambda w, s: (
        f"/users/{s.user_id}/revoke-sessions", None),
    ("GET", "/properties"): lambda w, s: ("/properties", None),
    ("POST", "/properties"): lambda w, s: ("/properties", {"name": "New"}),
    ("GET", "/properties/{property_id}"): lambda w, s: (f"/properties/{s.property_id}", None),
    ("GET", "/buildings"): lambda w, s: (f"/buildings?property_id={s.property_id}", None),
    ("POST", "/buildings"): lambda w, s: ("/buildings", {"property_id": s.property_id,
        "name": "B"}),
    ("GET", "/units"): lambda w, s: (f"/units?property_id={s.property_id}", None),
    ("POST", "/units"): lambda w, s: ("/units", {"building_id": s.building_id, "code": "X-1",
        "floor": 1, "area_m2": "10", "base_rent_fen": 1}),
    ("GET", "/units/{unit_id}"): lambda w, s: (f"/units/{s.unit_id}", None),
    ("PATCH", "/units/{unit_id}"): lambda w, s: (f"/units/{s.unit_id}", {"layout": "2室"}),
    ("GET", "/meters"): lambda w, s: (f"/meters?property_id={s.property_id}", None),
    ("POST", "/meters"): lambda w, s: ("/meters", {"id": "m-new", "building_id": s.building_id,
        "unit_id": s.unit_id, "utility": "water", "profile": "p"}),
    ("GET", "/meters/{meter_id}"): lambda w, s: (f"/meters/{s.meter_id}", None),
    ("GET", "/meters/{meter_id}/daily-usage"): lambda w, s: (
        f"/meters/{s.meter_id}/daily-usage", None),
    ("GET", "/meter-health"): lambda w, s: ("/meter-health", None),
    ("POST", "/meters/{meter_id}/swap"): lambda w, s: (f"/meters/{s.meter_id}/swap", {
        "new_meter_id": s.meter_id.removesuffix("1") + "2", "swapped_at": "2026-02-01T00:00:00Z",
        "old_final": "10", "new_initial": "0"}),  # the world's spare meter of the unit
    ("GET", "/tenants"): lambda w, s: (f"/tenants?property_id={s.property_id}", None),
    ("POST", "/tenants"): lambda w, s: ("/tenants", {"property_id": s.property_id,
        "name": "N", "id_number": cn_id(99)}),
    ("GET", "/tenants/{tenant_id}"): lambda w, s: (f"/tenants/{s.tenant_id}", None),
    ("POST", "/tenants/{tenant_id}/reveal"): lambda w, s: (f"/tenants/{s.tenant_id}/reveal",
        {"fields": ["bank_card"], "reason": "refund"}),
    ("GET", "/leases"): lambda w, s: (f"/leases?property_id={s.property_id}", None),
    ("POST", "/leases"): lambda w, s: ("/leases", {"unit_id": s.unit_id,
        "primary_tenant_id": s.tenant_id, "start_date": "2027-01-01",
        "end_date": "2027-06-30", "rent_fen": 1, "deposit_fen": 1}),
    ("GET", "/leases/{lease_id}"): lambda w, s: (f"/leases/{s.lease_id}", None),
    ("PATCH", "/leases/{lease_id}"): lambda w, s: (f"/leases/{s.draft_lease_id}",
        {"rent_fen": 210000}),
    ("POST", "/leases/{lease_id}/transitions"): lambda w, s: (
        f"/leases/{s.lease_id}/transitions", {"action": "activate"}),
    ("POST", "/leases/{lease_id}/renewals"): lambda w, s: (f"/leases/{s.lease_id}/renewals",
        {"months": 6}),
    ("GET", "/leases/{lease_id}/contract.pdf"): lambda w, s: (
        f"/leases/{s.lease_id}/contract.pdf?lang=en", None),
    ("POST", "/leases/{lease_id}/signatures"): lambda w, s: (f"/leases/{s.lease_id}/signatures",
        {"language": "en", "document_sha256": s.contract_sha256}),
    ("GET", "/leases/{lease_id}/signatures"): lambda w, s: (f"/leases/{s.lease_id}/signatures",
        None),
    ("GET", "/audit"): lambda w, s: (f"/audit?property_id={s.property_id}", None),
    ("GET", "/tariffs"): lambda w, s: (f"/tariffs?property_id={s.property_id}", None),
    ("POST", "/tariffs"): lambda w, s: ("/tariffs", {"property_id": s.property_id,
        "utility": "water", "effective_from": "2026-06-01", "kind": "flat",
        "tiers": [{"lower": "0", "price": "4.50"}]}),
    ("POST", "/imports/{kind}"): lambda w, s: ("/imports/units?dry_run=true",
        "property,building,code,floor,area_m2,base_rent\n"),
    ("GET", "/imports/progress"): lambda w, s: ("/imports/progress", None),
    ("GET", "/rent-roll"): lambda w, s: (f"/rent-roll?property_id={s.property_id}", None),
    ("GET", "/billing-runs/progress"): lambda w, s: (
        f"/billing-runs/progress?property_id={s.property_id}&period=2026-04", None),
    ("GET", "/billing-runs"): lambda w, s: (f"/billing-runs?property_id={s.property_id}", None),
    ("POST", "/billing-runs"): lambda w, s: ("/billing-runs", {"property_id": s.property_id,
        "period": "2026-04"}),
    ("GET", "/invoices"): lambda w, s: (f"/invoices?property_id={s.property_id}", None),
    ("GET", "/invoices/{invoice_id}"): lambda w, s: (f"/invoices/{s.invoice_id}", None),
    ("GET", "/invoices/{invoice_id}/pdf"): lambda w, s: (f"/invoices/{s.invoice_id}/pdf?lang=en",
        None),
    ("POST", "/payments"): lambda w, s: ("/payments", {"lease_id": s.lease_id,
        "amount_fen": 5000}),
    ("POST", "/payments/{payment_id}/reversal"): lambda w, s: (
        f"/payments/{s.payment_id}/reversal", {"reason": "transfer bounced"}),
    ("GET", "/leases/{lease_id}/account"): lambda w, s: (f"/leases/{s.lease_id}/account", None),
    ("POST", "/leases/{lease_id}/deposit-payments"): lambda w, s: (
        f"/leases/{s.lease_id}/deposit-payments", {"amount_fen": 100, "method": "cash"}),
    ("POST", "/leases/{lease_id}/deposit-settlement"): lambda w, s: (
        f"/leases/{s.lease_id}/deposit-settlement", {"deductions": [{"kind": "damage",
        "amount_fen": 1000, "reason": "scratched door"}]}),
    ("GET", "/reports/{name}"): lambda w, s: (f"/reports/ar-aging?property_id={s.property_id}",
        None),
    ("GET", "/late-fee-policies"): lambda w, s: ("/late-fee-policies", None),
    ("POST", "/late-fee-policies"): lambda w, s: ("/late-fee-policies", {
        "property_id": s.property_id, "kind": "percent", "rate": "1/1000", "mode": "daily"}),
    ("GET", "/late-fee-policies/{policy_id}"): lambda w, s: (
        f"/late-fee-policies/{s.late_fee_policy_id}", None),
    ("PUT", "/late-fee-policies/{policy_id}"): lambda w, s: (
        f"/late-fee-policies/{s.late_fee_policy_id}", {"kind": "fixed", "amount_fen": 3000}),
    ("DELETE", "/late-fee-policies/{policy_id}"): lambda w, s: (
        f"/late-fee-policies/{s.late_fee_policy_id}", None),
    ("GET", "/leases/{lease_id}/late-fee-policy"): lambda w, s: (
        f"/leases/{s.lease_id}/late-fee-policy", None),
    ("PUT", "/leases/{lease_id}/late-fee-policy"): lambda w, s: (
        f"/leases/{s.lease_id}/late-fee-policy", {"kind": "fixed", "amount_fen": 2000}),
    ("DELETE", "/leases/{lease_id}/late-fee-policy"): lambda w, s: (
        f"/leases/{s.lease_id}/late-fee-policy", None),
    ("GET", "/usage-holds"): lambda w, s: ("/usage-holds", None),
    ("POST", "/usage-holds/{hold_id}/release"): lambda w, s: (
        f"/usage-holds/{s.hold_id}/release", {"note": "new tenant moved in with a kiln"}),
    ("PUT", "/tenants/{tenant_id}/face"): lambda w, s: (f"/tenants/{s.tenant_id}/face",
        {"consent": {"given": True, "method": "paper form", "at": "2026-03-01T09:00:00Z"},
         "photos": [face_photo()]}),
    ("GET", "/tenants/{tenant_id}/face"): lambda w, s: (f"/tenants/{s.tenant_id}/face", None),
    ("DELETE", "/tenants/{tenant_id}/face"): lambda w, s: (f"/tenants/{s.tenant_id}/face", None),
    ("GET", "/buildings/{building_id}/face-gallery"): lambda w, s: (
        f"/buildings/{s.building_id}/face-gallery", None),
    ("GET", "/gateways"): lambda w, s: (f"/gateways?property_id={s.property_id}", None),
    ("GET", "/gateways/{gateway_id}"): lambda w, s: (f"/gateways/{s.gateway_id}", None),
    ("POST", "/gateways/{gateway_id}/commands"): lambda w, s: (
        # the route's own permission; door.unlock's extra one: test_commands
        f"/gateways/{s.gateway_id}/commands", {"name": "ping"}),
    ("GET", "/gateways/{gateway_id}/commands/{command_id}"): lambda w, s: (
        f"/gateways/{s.gateway_id}/commands/{s.command_id}", None),
    ("GET", "/gateways/{gateway_id}/health"): lambda w, s: (f"/gateways/{s.gateway_id}/health",
        None),
    ("GET", "/gateways/{gateway_id}/config"): lambda w, s: (f"/gateways/{s.gateway_id}/config",
        None),
    ("PUT", "/gateways/{gateway_id}/config"): lambda w, s: (f"/gateways/{s.gateway_id}/config",
        {"state_interval_s": 30}),
    ("GET", "/gateways/{gateway_id}/events"): lambda w, s: (f"/gateways/{s.gateway_id}/events",
        None),
    ("POST", "/gateways/enrolment-tokens"): lambda w, s: (
        "/gateways/enrolment-tokens", {"property_id": s.property_id}),
    ("GET", "/work-orders"): lambda w, s: (f"/work-orders?property_id={s.property_id}", None),
    ("POST", "/work-orders"): lambda w, s: ("/work-orders", {"unit_id": s.unit_id,
        "category": "plumbing", "description": "the tap drips"}),
    ("GET", "/work-orders/{order_id}"): lambda w, s: (f"/work-orders/{s.work_order_id}", None),
    ("POST", "/work-orders/{order_id}/assignment"): lambda w, s: (
        f"/work-orders/{s.work_order_id}/assignment", {"assignee_id": s.user_id}),
    ("POST", "/work-orders/{order_id}/progress"): lambda w, s: (
        f"/work-orders/{s.work_order_id}/progress", {"state": "in_progress"}),
    ("POST", "/work-orders/{order_id}/confirmation"): lambda w, s: (
        f"/work-orders/{s.done_order_id}/confirmation", {"action": "confirm"}),
    ("POST", "/work-orders/{order_id}/rating"): lambda w, s: (
        f"/work-orders/{s.done_order_id}/rating", {"rating": 4, "comment": "quick"}),
    ("POST", "/work-orders/{order_id}/photos"): lambda w, s: (
        f"/work-orders/{s.work_order_id}/photos", {"data": base64.b64encode(PNG).decode()}),
    ("GET", "/work-orders/{order_id}/photos/{photo_id}"): lambda w, s: (
        f"/work-orders/{s.work_order_id}/photos/{s.photo_id}", None),
    ("GET", "/work-order-figures"): lambda w, s: (
        f"/work-order-figures?property_id={s.property_id}", None),
    ("POST", "/assets"): lambda w, s: ("/assets", {"property_id": s.property_id,
        "unit_id": s.unit_id, "kind": "lock", "name": "front door lock"}),
    ("GET", "/assets"): lambda w, s: (f"/assets?property_id={s.property_id}", None),
    ("POST", "/parts"): lambda w, s: ("/parts", {"code": "TAP-1", "name": "tap", "price_fen": 900}),
    ("GET", "/part-stock"): lambda w, s: (f"/part-stock?property_id={s.property_id}", None),
    ("POST", "/parts/{part_id}/receipts"): lambda w, s: (f"/parts/{s.part_id}/receipts",
        {"property_id": s.property_id, "quantity": 3}),
    ("POST", "/work-orders/{order_id}/parts"): lambda w, s: (
        f"/work-orders/{s.work_order_id}/parts", {"part_id": s.part_id, "quantity": 1}),
    ("GET", "/work-orders/{order_id}/charge"): lambda w, s: (
        f"/work-orders/{s.done_order_id}/charge", None),
    ("POST", "/work-orders/{order_id}/charge"): lambda w, s: (
        f"/work-orders/{s.done_order_id}/charge", {"labour_fen": 5000}),
    ("GET", "/alarms"): lambda w, s: (f"/alarms?property_id={s.property_id}", None),
    ("GET", "/alarms/{alarm_id}"): lambda w, s: (f"/alarms/{s.alarm_id}", None),
    ("POST", "/alarms/{alarm_id}/acknowledgement"): lambda w, s: (
        f"/alarms/{s.alarm_id}/acknowledgement", None),
    ("POST", "/alarms/{alarm_id}/resolution"): lambda w, s: (
        f"/alarms/{s.alarm_id}/resolution", None),
    ("GET", "/alarm-subscriptions"): lambda w, s: ("/alarm-subscriptions", None),
    ("POST", "/alarm-subscriptions"): lambda w, s: ("/alarm-subscriptions",
        {"channel": "wecom", "target": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k"}),
    ("DELETE", "/alarm-subscriptions/{subscription_id}"): lambda w, s: (
        "/alarm-subscriptions/1", None),
    ("GET", "/alarm-deliveries"): lambda w, s: (
        f"/alarm-deliveries?property_id={s.property_id}", None),
    ("POST", "/alarm-deliveries/{delivery_id}/retry"): lambda w, s: (
        f"/alarm-deliveries/{s.delivery_id}/retry", None),
    ("GET", "/doors"): lambda w, s: (f"/doors?property_id={s.property_id}", None),
    ("POST", "/doors"): lambda w, s: ("/doors", {"gateway_id": s.gateway_id, "code": "gate",
        "scope": "property", "property_id": s.property_id}),
    ("GET", "/doors/{door_id}"): lambda w, s: (f"/doors/{s.door_id}", None),
    ("PATCH", "/doors/{door_id}"): lambda w, s: (f"/doors/{s.door_id}", {"name": "Front"}),
    ("DELETE", "/doors/{door_id}"): lambda w, s: (f"/doors/{s.door_id}", None),
    ("GET", "/doors/{door_id}/events"): lambda w, s: (f"/doors/{s.door_id}/events", None),
    ("GET", "/doors/{door_id}/audit"): lambda w, s: (f"/doors/{s.door_id}/audit", None),
    ("PUT", "/doors/{door_id}/lock-key"): lambda w, s: (f"/doors/{s.door_id}/lock-key",
        {"fingerprint": "0123456789abcdef"}),
    ("POST", "/doors/{door_id}/offline-codes"): lambda w, s: (
        f"/doors/{s.door_id}/offline-codes", {"valid_from": "2026-03-01T02:00:00Z", "hours": 4}),
    ("GET", "/gateways/{gateway_id}/access"): lambda w, s: (f"/gateways/{s.gateway_id}/access",
        None),
    ("GET", "/visitor-passes"): lambda w, s: ("/visitor-passes", None),
    ("POST", "/visitor-passes"): lambda w, s: ("/visitor-passes", {"door_ids": [s.door_id],
        "visitor_name": "Li", "valid_from": "2026-03-01T02:00:00Z",
        "valid_until": "2026-03-01T06:00:00Z"}),
    ("POST", "/visitor-passes/{pass_id}/revoke"): lambda w, s: (
        f"/visitor-passes/{s.pass_id}/revoke", None),
    ("PUT", "/tenants/{owner_id}/pin"): lambda w, s: (f"/tenants/{s.tenant_id}/pin",
        {"pin": "582913"}),
    ("GET", "/jobs"): lambda w, s: ("/jobs", None),
    ("GET", "/jobs/{name}"): lambda w, s: ("/jobs/late-fees", None),
    ("POST", "/jobs/{name}/runs"): lambda w, s: ("/jobs/late-fees/runs",
        {"property_id": s.property_id}),
    ("POST", "/tenants/{owner_id}/pin/reset"): lambda w, s: (
        f"/tenants/{s.tenant_id}/pin/reset", None),
    ("DELETE", "/tenants/{owner_id}/pin"): lambda w, s: (f"/tenants/{s.tenant_id}/pin", None),
    # staff PINs: the site's manager (P1's works only in P1)
    ("PUT", "/users/{owner_id}/pin"): lambda w, s: (f"/users/{s.user_id}/pin", {"pin": "582913"}),
    ("POST", "/users/{owner_id}/pin/reset"): lambda w, s: (f"/users/{s.user_id}/pin/reset", None),
    ("DELETE", "/users/{owner_id}/pin"): lambda w, s: (f"/users/{s.user_id}/pin", None),
}  # fmt: skip


@dataclass(frozen=True)
class RouteRow:
    method: str
    path: str
    guard: Guard | None


def route_table() -> list[RouteRow]:
    rows = []
    for module in ROUTERS:
        for route in module.router.routes:
            assert isinstance(route, APIRoute)
            calls = [d.call for d in route.dependant.dependencies]
            rows.extend(RouteRow(m, route.path, guard_of(calls)) for m in sorted(route.methods))
    return rows


def test_every_route_is_guarded_and_has_a_case() -> None:
    rows = route_table()
    unguarded = {(r.method, r.path) for r in rows if r.guard is None}
    assert unguarded == UNGUARDED
    guarded = {(r.method, r.path) for r in rows if r.guard is not None}
    assert guarded == set(CASES), "add new routes to CASES (or remove stale ones)"


def test_route_table_covers_the_openapi_schema() -> None:
    app = create_app(Settings(env="development"), keys=development_keys())
    paths = {
        (m.upper(), p.removeprefix(PREFIX))
        for p, ops in app.openapi()["paths"].items()
        for m in ops
    }
    assert paths == {(r.method, r.path) for r in route_table()}


@dataclass
class Harness:
    client: httpx.AsyncClient
    world: World
    conn: Connection
    app: Any

    async def send(self, role: Role | None, method: str, url: str, body: Any) -> httpx.Response:
        """One request inside a transaction that is rolled back afterwards."""
        trans = self.conn.begin()
        self.app.state.sessions = sessionmaker(
            bind=self.conn, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        headers = {"Authorization": f"Bearer {self.world.tokens[role]}"} if role else {}
        try:
            return await self.client.request(method, PREFIX + url, json=body, headers=headers)
        finally:
            trans.rollback()


@pytest.fixture
async def harness(tmp_path: Path, keys: FieldKeys) -> AsyncIterator[Harness]:
    engine = create_engine(
        f"sqlite:///{tmp_path / 'matrix.db'}", connect_args={"check_same_thread": False}
    )

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_conn: Any, _rec: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy emit BEGIN / SAVEPOINT itself
        dbapi_conn.execute("PRAGMA foreign_keys=ON")

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN")

    Base.metadata.create_all(engine)
    with Session(engine) as s:
        world = build_world(s, keys)
        for site in world.sites.values():
            data = contract_data(s, keys, s.get_one(Lease, site.lease_id))
            site.contract_sha256 = pdf.sha256(pdf.render(data, "en", find_fonts()))
    app = create_app(
        Settings(env="development"), keys=keys, clock=lambda: NOW, command_key=COMMAND_KEY
    )
    try:
        with engine.connect() as conn:
            async with (
                app.router.lifespan_context(app),
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://anju.test"
                ) as client,
            ):
                app.state.sessions = None
                yield Harness(client, world, conn, app)
    finally:
        engine.dispose()


def item_visible(role: Role, world: World, path: str, item: dict[str, Any]) -> bool:
    p1 = world.sites["P1"]
    if role is Role.TENANT:
        if path == "/leases":
            return item["primary_tenant_id"] == p1.tenant_id or p1.tenant_id in item[
                "co_tenant_ids"]  # fmt: skip
        if path == "/tenants":
            return item["id"] == p1.tenant_id
        if path == "/invoices":
            return item["lease_id"] == p1.lease_id
        if path == "/work-orders":
            return bool(item["tenant_id"] == p1.tenant_id)
        if path == "/visitor-passes":
            return item["issued_by_tenant_id"] == p1.tenant_id
        return False
    allowed = {world.sites[s].property_id for s in visible_sides(role)}
    if path == "/late-fee-policies" and item["property_id"] is None:  # the org's default
        return item["org_id"] == p1.org_id
    if path == "/users":
        return item["id"] not in {world.sites["P3"].user_id}
    if path == "/properties":
        return item["id"] in allowed
    return item.get("property_id") in allowed or (
        path == "/audit" and item.get("property_id") is None and role is Role.ADMIN
    )


async def test_authorization_matrix(harness: Harness) -> None:
    world = harness.world
    failures: list[str] = []
    checked = 0
    for row in route_table():
        if row.guard is None:
            continue
        make_case = CASES[(row.method, row.path)]
        sides = SIDES if row.guard.scope in ("path", "body", "list") else ("P1",)
        for side in sides:
            url, body = make_case(world, world.sites[side])
            anon = await harness.send(None, row.method, url, body)
            if anon.status_code != 401:
                failures.append(f"{row.method} {url} without credentials → {anon.status_code}")
            for role in Role:
                permitted = row.guard.permission in ROLE_PERMISSIONS[role]
                in_scope = row.guard.scope in ("self", "org") or side in visible_sides(role)
                r = await harness.send(role, row.method, url, body)
                checked += 1
                got = r.status_code
                where = f"{role:>11} {row.method} {url} [{side}] → {got}"
                if not permitted:
                    if got != 403:
                        failures.append(f"{where}, expected 403 (no {row.guard.permission})")
                elif row.guard.scope == "list" and got == 200:
                    leaked = [i for i in r.json()["items"]
                              if not item_visible(role, world, row.path, i)]  # fmt: skip
                    if leaked:
                        failures.append(f"{where}: shows records out of scope {leaked}")
                    if in_scope and not r.json()["items"] and row.path != "/audit":
                        failures.append(f"{where}: own records missing")
                elif in_scope:
                    if not 200 <= got < 300:
                        failures.append(f"{where}, expected 2xx: {r.text[:200]}")
                elif got != 404:
                    failures.append(f"{where}, expected 404 (out of scope)")
    assert not failures, "\n".join(failures)
    assert checked > 400
