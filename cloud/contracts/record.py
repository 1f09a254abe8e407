"""From a lease row to the data printed on its contract. No commits."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cloud.contracts.pdf import ContractData
from cloud.models import Building, Lease, LeaseTenant, Organisation, Property, Tenant, Unit
from cloud.security import pii
from cloud.security.crypto import FieldKeys


def contract_data(session: Session, keys: FieldKeys, lease: Lease) -> ContractData:
    unit = session.get_one(Unit, lease.unit_id)
    building = session.get_one(Building, unit.building_id)
    prop = session.get_one(Property, lease.property_id)
    org = session.get_one(Organisation, prop.org_id)
    tenant = session.get_one(Tenant, lease.primary_tenant_id)
    co = session.scalars(
        select(Tenant.name)
        .join(LeaseTenant, LeaseTenant.tenant_id == Tenant.id)
        .where(LeaseTenant.lease_id == lease.id)
        .order_by(Tenant.id)
    )
    return ContractData(
        lease_id=lease.id,
        landlord=org.name,
        property_name=prop.name,
        address=prop.address or prop.city,
        building=building.name,
        unit_code=unit.code,
        area_m2=str(unit.area_m2),
        layout=unit.layout or "-",
        tenant_name=tenant.name,
        tenant_id_masked=pii.masked(tenant, keys, "id_number") or "",
        co_tenants=tuple(co),
        occupants=lease.occupant_count,
        start=lease.start_date,
        end=lease.end_date,
        rent_fen=lease.rent_fen,
        deposit_fen=lease.deposit_fen,
        cycle_months=lease.payment_cycle_months,
        due_days_before=lease.due_days_before,
        proration=str(lease.proration),
        late_fee_policy=str(lease.late_fee_policy_id or "-"),
        issued=lease.created_at,
    )
