"""The rent roll paged in the database: every lease in force exactly once, in the report's
order, across unit codes shared by two buildings, with the whole report's totals."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy.orm import Session

from cloud.api.paging import decode_key, encode_key
from cloud.billing.service import accounts, reports
from cloud.billing.service.runs import run_billing
from cloud.models import Building, Lease, LeaseStatus
from tests.cloud.billing.world import TZ, World

NOW = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
AS_OF = date(2026, 3, 1)


def test_paging_returns_every_row_once_with_the_reports_totals(session: Session) -> None:
    w = World(session)
    other = Building(property_id=w.prop.id, name="B", floors=10)
    session.add(other)
    session.flush()
    first = w.building
    for n in range(11):
        for w.building in (first, other):  # the same codes in both buildings
            unit = w.unit(f"单元-{n:02d}", "30")
            w.lease(unit, date(2026, 1, 1), date(2026, 12, 31), rent=100000 + n * 100 + unit.id)
    spare = w.unit("Z-99", "30")  # leases not in force: ended, draft, not started
    w.lease(spare, date(2025, 1, 1), date(2025, 12, 31), rent=1, status=LeaseStatus.ENDED)
    w.lease(spare, date(2026, 1, 1), date(2026, 12, 31), rent=2, status=LeaseStatus.DRAFT)
    w.lease(spare, date(2026, 6, 1), date(2026, 12, 31), rent=3, status=LeaseStatus.SIGNED)
    run_billing(session, w.prop.id, "2026-03", now=NOW, tz=TZ)
    whole = reports.rent_roll(session, w.prop.id, AS_OF)
    assert len(whole) == 22
    paid = session.get_one(Lease, whole[3]["lease_id"])
    accounts.record_payment(session, paid, 5000, received_at=NOW, method="cash")
    whole = reports.rent_roll(session, w.prop.id, AS_OF)

    for limit in (1, 4, 22, 50):
        seen, after = [], None
        while True:
            rows, key = reports.rent_roll_page(session, w.prop.id, AS_OF, after, limit)
            assert len(rows) <= limit
            seen.extend(rows)
            if key is None:
                break
            after = decode_key(encode_key(*key))  # as the API sends it and gets it back
        assert seen == whole, limit  # every row once, in the report's order and values

    totals = reports.rent_roll_totals(session, w.prop.id, AS_OF)
    assert totals == {
        "leases": len(whole),
        "monthly_rent_fen": sum(r["monthly_rent_fen"] for r in whole),
        "balance_fen": sum(r["balance_fen"] for r in whole),
    }
    assert totals["balance_fen"] > 0
